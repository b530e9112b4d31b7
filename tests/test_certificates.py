"""Tests for twisted_sslfile.engine.certificates: the engine's chain checks.

The engine takes trust roots, time and limits as plain values
(:class:`VerificationPolicy`) and reads no file; a Context builds the policy
once and hands over the default roots only when a check needs them.
"""

from __future__ import annotations

import contextlib
import datetime

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import ExtensionOID
from cryptography.x509.verification import Store
from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from tests.certs import KEY_TYPES, CertificateFactory, make_key
from tests.test_connection import pump
from twisted_sslfile import x509 as tx509
from twisted_sslfile.constants import (
    AlertDescription,
    ClientCertificatePolicy,
)
from twisted_sslfile.context import Context
from twisted_sslfile.engine import certificates
from twisted_sslfile.engine.certificates import (
    MIN_RSA_KEY_BITS,
    TrustRoots,
    VerificationPolicy,
)
from twisted_sslfile.engine.connection import Connection
from twisted_sslfile.errors import (
    CertificateError,
    ConfigurationError,
    EmptyCertificateChainError,
    InternalError,
    TLSError,
)

NOW = datetime.datetime(2031, 5, 17, 12, 0, 0, tzinfo=datetime.UTC)
DAY = datetime.timedelta(days=1)


def der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


class VerificationPolicyTests(SynchronousTestCase):
    """The engine's checks run on plain values, without a Context."""

    def setUp(self) -> None:
        self.pki = CertificateFactory(now=NOW)
        self.roots = TrustRoots.from_certificates(self.pki.trust_roots)
        self.server = self.pki.server("example.com")

    def verify(self, policy: VerificationPolicy, chain: list[bytes]) -> list:
        return certificates.verify_peer_chain(
            policy,
            chain,
            now=NOW.timestamp(),
            server_name="example.com",
            is_server_cert=True,
        )

    def test_roots_time_and_name_as_values(self) -> None:
        policy = VerificationPolicy(trust_roots=self.roots)
        path = self.verify(policy, self.server.chain_der)
        self.assertEqual(path[0], self.server.certificate)
        self.assertEqual(path[-1], self.pki.root.certificate)
        # The time is an input too: a year on, the same chain has expired.
        exc = self.assertRaises(
            CertificateError,
            certificates.verify_peer_chain,
            policy,
            self.server.chain_der,
            now=NOW + datetime.timedelta(days=400),
            server_name="example.com",
            is_server_cert=True,
        )
        self.assertEqual(exc.alert, AlertDescription.certificate_expired)

    def test_rsa_minimum_is_an_input(self) -> None:
        leaf = self.pki.server("example.com", key_type="rsa-2048")
        self.verify(VerificationPolicy(trust_roots=self.roots), leaf.chain_der)
        strict = VerificationPolicy(trust_roots=self.roots, min_rsa_bits=3072)
        exc = self.assertRaises(CertificateError, self.verify, strict, leaf.chain_der)
        self.assertEqual(exc.alert, AlertDescription.insufficient_security)
        self.assertIn("at least 3072 bits", str(exc))
        # The minimum is part of what a verified session stands for.
        self.assertNotEqual(
            certificates.server_policy_digest(strict, "example.com"),
            certificates.server_policy_digest(
                VerificationPolicy(trust_roots=self.roots), "example.com"
            ),
        )
        self.assertEqual(VerificationPolicy().min_rsa_bits, MIN_RSA_KEY_BITS)

    def test_chain_length_is_an_input(self) -> None:
        short = VerificationPolicy(trust_roots=self.roots, max_chain_length=1)
        exc = self.assertRaises(
            CertificateError, self.verify, short, self.server.chain_der
        )
        self.assertIn("at most 1", str(exc))

    def test_default_roots_loaded_only_when_needed(self) -> None:
        calls = []

        def load() -> TrustRoots:
            calls.append(1)
            return self.roots

        server = VerificationPolicy(load_default_roots=load)
        self.assertEqual(certificates.client_policy_digest(server), b"")
        self.assertEqual(certificates.certificate_authorities(server), [])
        self.assertEqual(calls, [])
        self.verify(server, self.server.chain_der)
        self.assertEqual(calls, [1])
        self.assertEqual(len(certificates.server_policy_digest(server, "a.test")), 32)
        self.assertEqual(calls, [1, 1])

    def test_server_digest_kept_per_name_and_roots(self) -> None:
        """
        The digest a policy keeps for a name is the one it would compute
        afresh; other roots (a reload of the system bundle) or another name
        get their own, and the table stays bounded.
        """
        roots = [self.roots, TrustRoots.from_certificates([self.server.certificate])]
        policy = VerificationPolicy(load_default_roots=lambda: roots[0])
        first = certificates.server_policy_digest(policy, "Example.COM.")
        self.assertEqual(
            certificates.server_policy_digest(policy, "Example.COM."), first
        )
        self.assertEqual(
            first,
            certificates.server_policy_digest(
                VerificationPolicy(trust_roots=self.roots), "example.com"
            ),
        )
        roots.reverse()
        other = certificates.server_policy_digest(policy, "Example.COM.")
        self.assertNotEqual(other, first)
        self.assertEqual(
            other,
            certificates.server_policy_digest(
                VerificationPolicy(trust_roots=roots[0]), "example.com"
            ),
        )
        for i in range(200):
            certificates.server_policy_digest(policy, f"host{i}.test")
        self.assertLessEqual(len(policy.server_digests), 64)

    def test_no_roots_at_all(self) -> None:
        policy = VerificationPolicy(client_certificate=ClientCertificatePolicy.REQUIRE)
        exc = self.assertRaises(
            InternalError, self.verify, policy, self.server.chain_der
        )
        self.assertIn("no trust roots are configured", str(exc))
        self.assertEqual(certificates.server_policy_digest(policy, "a.test"), b"")
        self.assertEqual(certificates.client_policy_digest(policy), b"")

    def test_bare_store(self) -> None:
        """
        A Store given without a digest verifies chains, but no session ever
        counts as verified under it: nothing names its roots.
        """
        roots = TrustRoots(Store(self.pki.trust_roots), (), "<Store>")
        policy = VerificationPolicy(
            trust_roots=roots, client_certificate=ClientCertificatePolicy.REQUEST
        )
        self.assertEqual(len(self.verify(policy, self.server.chain_der)), 3)
        self.assertEqual(certificates.server_policy_digest(policy, "a.test"), b"")
        self.assertEqual(certificates.client_policy_digest(policy), b"")
        path = certificates.verify_server_certificates(
            self.server.chain_der,
            trust_roots=Store(self.pki.trust_roots),
            server_name="example.com",
            time=NOW,
        )
        self.assertEqual(len(path), 3)

    def test_parsed_certificates_are_reused(self) -> None:
        """
        A policy parses a DER certificate once: the next handshake that gets
        the same bytes gets the same object, with the key and extensions
        ``cryptography`` already decoded on it (issue 12).
        """
        policy = VerificationPolicy(trust_roots=self.roots)
        first = self.verify(policy, self.server.chain_der)
        second = self.verify(policy, self.server.chain_der)
        self.assertIs(first[0], second[0])
        self.assertIs(first[1], second[1])
        self.assertEqual(len(policy.parsed), len(self.server.chain_der))
        # Another policy (another Context) has its own.
        other = VerificationPolicy(trust_roots=self.roots)
        self.assertIsNot(self.verify(other, self.server.chain_der)[0], first[0])

    def test_parse_cache_is_no_verdict(self) -> None:
        """Every check still runs on a chain whose parse was kept."""
        policy = VerificationPolicy(trust_roots=self.roots)
        self.verify(policy, self.server.chain_der)
        exc = self.assertRaises(
            CertificateError,
            certificates.verify_peer_chain,
            policy,
            self.server.chain_der,
            now=NOW + datetime.timedelta(days=400),
            server_name="example.com",
            is_server_cert=True,
        )
        self.assertEqual(exc.alert, AlertDescription.certificate_expired)
        exc = self.assertRaises(
            CertificateError,
            certificates.verify_peer_chain,
            policy,
            self.server.chain_der,
            now=NOW.timestamp(),
            server_name="other.example",
            is_server_cert=True,
        )
        self.assertIn("does not match host name", str(exc))
        untrusted = CertificateFactory(now=NOW).server("example.com")
        self.assertRaises(CertificateError, self.verify, policy, untrusted.chain_der)

    def test_parse_cache_keeps_no_bad_der(self) -> None:
        """DER that does not parse fails each time and is not stored."""
        policy = VerificationPolicy(trust_roots=self.roots)
        bad = [der(self.server.certificate)[:-7]]
        for _ in range(2):
            exc = self.assertRaises(CertificateError, self.verify, policy, bad)
            self.assertEqual(exc.alert, AlertDescription.bad_certificate)
        self.assertEqual(len(policy.parsed), 0)

    def test_parse_cache_is_bounded(self) -> None:
        """At most ``max_entries`` certificates of at most ``max_der`` bytes."""
        cache = certificates.ParsedCertificates(max_entries=2)
        ders = [der(self.pki.server(f"h{i}.test").certificate) for i in range(5)]
        for item in ders:
            self.assertEqual(cache.load(item), x509.load_der_x509_certificate(item))
            self.assertLessEqual(len(cache), 2)
        small = certificates.ParsedCertificates(max_der=len(ders[0]) - 1)
        self.assertIsNot(small.load(ders[0]), small.load(ders[0]))
        self.assertEqual(len(small), 0)

    def test_trust_roots_are_loaded_by_the_configuration_side(self) -> None:
        for source in (self.pki.ca_path or "/etc/ssl/certs", b"pem"):
            exc = self.assertRaises(
                TypeError,
                certificates.verify_server_certificates,
                self.server.chain_der,
                trust_roots=source,  # type: ignore[arg-type]
                server_name="example.com",
                time=NOW,
            )
            self.assertIn("load_trust_roots", str(exc))


class ContextPolicyTests(SynchronousTestCase):
    """What a Context hands the engine."""

    def setUp(self) -> None:
        self.pki = CertificateFactory(self.mktemp(), now=NOW)

    def test_built_once_from_the_settings(self) -> None:
        context = Context(
            trust_roots=self.pki.ca_path,
            client_certificate="require",
            max_certificate_chain_length=4,
        )
        policy = context.certificate_policy
        self.assertIs(context.certificate_policy, policy)
        self.assertTrue(policy.verify)
        self.assertIs(policy.trust_roots, context.trust_anchors)
        self.assertIs(policy.client_certificate, ClientCertificatePolicy.REQUIRE)
        self.assertEqual(policy.max_chain_length, 4)
        insecure = context.replace(insecure_skip_verify=True).certificate_policy
        self.assertFalse(insecure.verify)

    def test_default_roots_stay_out_of_the_policy(self) -> None:
        """
        The system bundle is not part of the policy (it is not "configured":
        no CA names are listed for it) and is read only on first need,
        through the Context, which keeps it.
        """
        calls = []
        roots = tx509.load_trust_roots(self.pki.trust_roots)

        def system_roots() -> TrustRoots:
            calls.append(1)
            return roots

        self.patch(tx509, "system_trust_roots", system_roots)
        context = Context()
        policy = context.certificate_policy
        self.assertIsNone(policy.trust_roots)
        self.assertEqual(calls, [])
        self.assertIs(policy.anchors(), roots)
        self.assertIs(policy.anchors(), roots)
        self.assertEqual(calls, [1])

    def test_server_handshake_reads_no_bundle(self) -> None:
        """
        A server that asks for no client certificate never loads the
        default roots, even though it verifies by default.
        """

        def no_roots() -> TrustRoots:
            raise ConfigurationError("no system CA bundle found")

        self.patch(tx509, "system_trust_roots", no_roots)
        leaf = self.pki.server("example.com")
        server_context = Context(
            credentials=[leaf.credential()], clock=lambda: NOW.timestamp()
        )
        client_context = Context(
            trust_roots=self.pki.trust_roots, clock=lambda: NOW.timestamp()
        )
        client = Connection(client_context, is_client=True, server_name="example.com")
        server = Connection(server_context, is_client=False)
        client.start()
        pump(client, server)
        self.assertTrue(client.handshake_complete)
        self.assertTrue(server.handshake_complete)


class ServerVerificationTests(SynchronousTestCase):
    """verify_server_certificates: the matrix of good and bad chains."""

    def setUp(self) -> None:
        self.pki = CertificateFactory(now=NOW)
        self.roots = tx509.load_trust_roots(self.pki.trust_roots)

    def verify(
        self, chain, name: str | None = "example.com", *, roots=None, **kwargs
    ) -> list[x509.Certificate]:
        if hasattr(chain, "chain_der"):
            chain = chain.chain_der
        kwargs.setdefault("time", NOW)
        return certificates.verify_server_certificates(
            chain,
            trust_roots=roots if roots is not None else self.roots,
            server_name=name,
            **kwargs,
        )

    def reject(
        self, chain, alert: AlertDescription, *fragments: str, name="example.com", **kw
    ) -> CertificateError:
        exc = self.assertRaises(CertificateError, self.verify, chain, name, **kw)
        self.assertEqual(exc.alert, alert, str(exc))
        for fragment in fragments:
            self.assertIn(fragment, str(exc))
        return exc

    # -- good chains ------------------------------------------------------------

    def test_good_chains_via_intermediate(self) -> None:
        for key_type in KEY_TYPES:
            leaf = self.pki.server("example.com", key_type=key_type)
            path = self.verify(leaf)
            self.assertEqual(
                path,
                [leaf.certificate, self.pki.intermediate.certificate, leaf.root],
                key_type,
            )

    def test_good_chain_direct(self) -> None:
        leaf = self.pki.server("example.com", direct=True)
        self.assertEqual(len(self.verify(leaf)), 2)

    def test_time_as_timestamp(self) -> None:
        leaf = self.pki.server("example.com")
        self.assertEqual(len(self.verify(leaf, time=NOW.timestamp())), 3)

    def test_ip_address_san(self) -> None:
        leaf = self.pki.server("server", ip_addresses=["192.0.2.7", "2001:db8::1"])
        for name in ("192.0.2.7", "2001:db8::1", "[2001:db8::1]"):
            self.assertEqual(len(self.verify(leaf, name)), 3)
        exc = self.reject(
            leaf, AlertDescription.bad_certificate, "'192.0.2.8'", name="192.0.2.8"
        )
        self.assertIn("IP:192.0.2.7", str(exc))

    def test_ip_does_not_match_dns_san(self) -> None:
        leaf = self.pki.server("127.0.0.1", dns_names=["127.0.0.1.example"])
        self.reject(leaf, AlertDescription.bad_certificate, name="127.0.0.1")

    def test_case_and_trailing_dot(self) -> None:
        leaf = self.pki.server("example.com")
        self.assertEqual(len(self.verify(leaf, "EXAMPLE.com.")), 3)

    def test_wildcard(self) -> None:
        leaf = self.pki.server("*.example.com")
        self.assertEqual(len(self.verify(leaf, "www.example.com")), 3)
        self.reject(leaf, AlertDescription.bad_certificate, name="a.b.example.com")
        self.reject(leaf, AlertDescription.bad_certificate, name="example.com")

    # -- bad chains -------------------------------------------------------------

    def test_wrong_host_name(self) -> None:
        leaf = self.pki.server(
            "example.com", dns_names=["example.com", "www.example.com"]
        )
        exc = self.reject(
            leaf,
            AlertDescription.bad_certificate,
            "'other.example'",
            "DNS:example.com",
            "DNS:www.example.com",
            "CN=example.com",
            name="other.example",
        )
        self.assertEqual(exc.certificate, leaf.certificate)

    def test_no_subject_alt_name(self) -> None:
        leaf = self.pki.server("example.com", include_san=False)
        self.reject(leaf, AlertDescription.bad_certificate, "no subjectAltName")

    def test_expired(self) -> None:
        leaf = self.pki.server("example.com", not_after=-DAY)
        exc = self.reject(
            leaf,
            AlertDescription.certificate_expired,
            "CN=example.com",
            "has expired",
            "2031-05-16 12:00:00 UTC",
        )
        self.assertEqual(exc.certificate, leaf.certificate)

    def test_not_yet_valid(self) -> None:
        leaf = self.pki.server("example.com", not_before=DAY)
        self.reject(
            leaf,
            AlertDescription.certificate_expired,
            "CN=example.com",
            "not yet valid",
            "2031-05-18 12:00:00 UTC",
        )

    def test_validity_bounds_inclusive(self) -> None:
        # RFC 5280 §4.1.2.5: the window includes both ends.
        leaf = self.pki.server("example.com", not_before=NOW, not_after=NOW)
        self.assertEqual(len(self.verify(leaf)), 3)

    def test_expired_intermediate(self) -> None:
        ca = self.pki.make_intermediate("Old Intermediate", not_after=-DAY)
        leaf = self.pki.server("example.com", issuer=ca, not_after=DAY * 30)
        exc = self.reject(
            leaf,
            AlertDescription.certificate_expired,
            "CN=Old Intermediate",
            "has expired",
        )
        self.assertEqual(exc.certificate, ca.certificate)

    def test_expired_root(self) -> None:
        root = self.pki.make_root("Old Root", not_after=-DAY)
        ca = self.pki.make_intermediate(issuer=root)
        leaf = self.pki.server("example.com", issuer=ca)
        roots = tx509.load_trust_roots([root.certificate])
        self.reject(
            leaf,
            AlertDescription.certificate_expired,
            "trust root",
            "Old Root",
            roots=roots,
        )

    def test_untrusted_root(self) -> None:
        other = CertificateFactory(now=NOW, name="Other")
        leaf = other.server("example.com")
        exc = self.reject(
            leaf,
            AlertDescription.unknown_ca,
            "Other Root CA",
            "neither a trust root nor among the certificates sent",
        )
        self.assertEqual(exc.certificate, other.intermediate.certificate)

    def test_impostor_root_with_same_name(self) -> None:
        impostor = self.pki.make_root(self.pki.root.name)
        ca = self.pki.make_intermediate(issuer=impostor)
        leaf = self.pki.server("example.com", issuer=ca)
        self.reject(leaf, AlertDescription.unknown_ca, "did not sign it")

    def test_missing_intermediate(self) -> None:
        leaf = self.pki.server("example.com")
        exc = self.reject(
            leaf.chain_der[:1],
            AlertDescription.unknown_ca,
            "missing intermediate",
            self.pki.intermediate.name,
        )
        self.assertEqual(exc.certificate, leaf.certificate)

    def test_untrusted_self_signed(self) -> None:
        cert, _ = tx509.generate_self_signed("example.com", now=NOW)
        self.reject([der(cert)], AlertDescription.unknown_ca, "self-signed")

    def test_client_only_leaf_as_server(self) -> None:
        leaf = self.pki.client("example.com", dns_names=["example.com"])
        exc = self.reject(
            leaf,
            AlertDescription.unsupported_certificate,
            "serverAuth",
            "allows clientAuth",
            "CN=example.com",
        )
        self.assertEqual(exc.certificate, leaf.certificate)

    def test_code_signing_leaf(self) -> None:
        leaf = self.pki.server("example.com", extended_key_usage="code_signing")
        self.reject(leaf, AlertDescription.unsupported_certificate, "codeSigning")

    def test_no_eku_is_accepted(self) -> None:
        leaf = self.pki.server("example.com", extended_key_usage=None)
        self.assertEqual(len(self.verify(leaf)), 3)

    def test_key_usage_without_digital_signature(self) -> None:
        leaf = self.pki.server("example.com", key_usage=["key_encipherment"])
        self.reject(leaf, AlertDescription.unsupported_certificate, "digitalSignature")

    def test_chain_too_long(self) -> None:
        ca = self.pki.make_chain(3)
        leaf = self.pki.server("example.com", issuer=ca)
        self.assertEqual(len(leaf.chain), 4)
        self.assertEqual(len(self.verify(leaf, max_length=4)), 5)
        self.reject(
            leaf, AlertDescription.bad_certificate, "4 certificates", max_length=3
        )

    def test_garbage_der(self) -> None:
        exc = self.reject([b"\x30\x03\x02\x01"], AlertDescription.bad_certificate)
        self.assertIn("leaf certificate is not valid DER", str(exc))
        leaf = self.pki.server("example.com")
        self.reject(
            [leaf.der, b"junk"], AlertDescription.bad_certificate, "certificate #1"
        )

    def test_empty_chain(self) -> None:
        exc = self.assertRaises(EmptyCertificateChainError, self.verify, [])
        self.assertEqual(exc.alert, AlertDescription.decode_error)
        self.assertIsInstance(exc, CertificateError)

    def test_no_server_name(self) -> None:
        leaf = self.pki.server("example.com")
        exc = self.assertRaises(InternalError, self.verify, leaf, None)
        self.assertIn("no server name", str(exc))

    def test_certificate_objects_accepted(self) -> None:
        leaf = self.pki.server("example.com")
        self.assertEqual(len(self.verify(leaf.chain)), 3)

    def test_errors_are_tls_errors(self) -> None:
        leaf = self.pki.server("example.com", not_after=-DAY)
        exc = self.assertRaises(TLSError, self.verify, leaf)
        self.assertIn("certificate_expired", str(exc))


class HostileChainTests(SynchronousTestCase):
    """Whatever a peer sends, only CertificateError (a TLSError) comes out."""

    pki = CertificateFactory(now=NOW)
    leaf = pki.server("example.com")
    roots = tx509.load_trust_roots(pki.trust_roots)

    def check(self, chain: list[bytes]) -> None:
        for verify in (
            lambda: certificates.verify_server_certificates(
                chain, trust_roots=self.roots, server_name="example.com", time=NOW
            ),
            lambda: certificates.verify_client_certificates(
                chain, trust_roots=self.roots, time=NOW
            ),
        ):
            with contextlib.suppress(CertificateError):
                verify()

    def test_corrupt_extension(self) -> None:
        # A SAN whose body does not parse: cryptography only notices when
        # the extension is read, long after the certificate "loaded".
        key = make_key()
        issuer = self.pki.intermediate
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([]))
            .issuer_name(issuer.certificate.subject)
            .public_key(key.public_key())
            .serial_number(7)
            .not_valid_before(NOW - DAY)
            .not_valid_after(NOW + DAY)
            .add_extension(
                x509.UnrecognizedExtension(
                    ExtensionOID.SUBJECT_ALTERNATIVE_NAME, b"\x30\x03\x01\x01"
                ),
                critical=False,
            )
            .sign(issuer.key, hashes.SHA256())
        )
        chain = [der(cert), der(issuer.certificate)]
        exc = self.assertRaises(
            CertificateError,
            certificates.verify_server_certificates,
            chain,
            trust_roots=self.roots,
            server_name="example.com",
            time=NOW,
        )
        self.assertEqual(exc.alert, AlertDescription.bad_certificate)
        self.assertIn("malformed", str(exc))
        exc = self.assertRaises(
            CertificateError,
            certificates.verify_client_certificates,
            chain,
            trust_roots=self.roots,
            time=NOW,
        )
        self.assertEqual(exc.alert, AlertDescription.bad_certificate)

    @settings(max_examples=200, deadline=None)
    @given(st.lists(st.binary(max_size=64), min_size=0, max_size=3))
    def test_random_bytes(self, chain: list[bytes]) -> None:
        self.check(chain)

    @settings(max_examples=300, deadline=None)
    @given(
        st.integers(min_value=0, max_value=1),
        st.lists(
            st.tuples(st.integers(min_value=0), st.integers(0, 255)),
            min_size=1,
            max_size=4,
        ),
    )
    def test_mutated_certificates(
        self, which: int, edits: list[tuple[int, int]]
    ) -> None:
        chain = [bytearray(d) for d in self.leaf.chain_der]
        target = chain[which]
        for position, value in edits:
            target[position % len(target)] = value
        self.check([bytes(c) for c in chain])


class ClientVerificationTests(SynchronousTestCase):
    """verify_client_certificates: clientAuth chains."""

    def setUp(self) -> None:
        self.pki = CertificateFactory(now=NOW)
        self.roots = tx509.load_trust_roots(self.pki.trust_roots)

    def verify(self, chain, **kwargs) -> list[x509.Certificate]:
        kwargs.setdefault("time", NOW)
        return certificates.verify_client_certificates(
            chain, trust_roots=self.roots, **kwargs
        )

    def test_good_client_chains(self) -> None:
        for key_type in KEY_TYPES:
            leaf = self.pki.client("alice", key_type=key_type)
            self.assertEqual(len(self.verify(leaf.chain_der)), 3)

    def test_client_without_san(self) -> None:
        leaf = self.pki.client("bob", include_san=False)
        self.assertEqual(len(self.verify(leaf.chain_der)), 3)

    def test_server_only_leaf_as_client(self) -> None:
        leaf = self.pki.server("example.com")
        exc = self.assertRaises(CertificateError, self.verify, leaf.chain_der)
        self.assertEqual(exc.alert, AlertDescription.unsupported_certificate)
        self.assertIn("clientAuth", str(exc))
        self.assertIn("allows serverAuth", str(exc))

    def test_both_usages(self) -> None:
        leaf = self.pki.leaf("both", extended_key_usage="both")
        self.assertEqual(len(self.verify(leaf.chain_der)), 3)

    def test_expired_client(self) -> None:
        leaf = self.pki.client("carol", not_after=-DAY)
        exc = self.assertRaises(CertificateError, self.verify, leaf.chain_der)
        self.assertEqual(exc.alert, AlertDescription.certificate_expired)
        self.assertIn("client certificate CN=carol", str(exc))

    def test_untrusted_client(self) -> None:
        leaf = CertificateFactory(now=NOW).client("mallory")
        exc = self.assertRaises(CertificateError, self.verify, leaf.chain_der)
        self.assertEqual(exc.alert, AlertDescription.unknown_ca)

    def test_empty(self) -> None:
        exc = self.assertRaises(EmptyCertificateChainError, self.verify, [])
        self.assertEqual(exc.alert, AlertDescription.certificate_required)


class ContextVerificationTests(SynchronousTestCase):
    """verify_chain / verify_server_chain / verify_client_chain with a Context."""

    def setUp(self) -> None:
        self.pki = CertificateFactory(now=NOW)
        self.server = self.pki.server("example.com")
        self.client = self.pki.client("alice")

    def context(self, when: datetime.datetime = NOW, **kwargs) -> Context:
        kwargs.setdefault("trust_roots", self.pki.trust_roots)
        return Context(clock=lambda: when.timestamp(), **kwargs)

    def test_server_chain(self) -> None:
        path = certificates.verify_server_chain(
            self.context(), self.server.chain_der, "example.com"
        )
        self.assertEqual(path[0], self.server.certificate)
        self.assertEqual(path[-1], self.pki.root.certificate)

    def test_client_chain(self) -> None:
        path = certificates.verify_client_chain(self.context(), self.client.chain_der)
        self.assertEqual(path[0], self.client.certificate)

    def test_clock_is_used(self) -> None:
        later = self.context(NOW + 400 * DAY)
        exc = self.assertRaises(
            CertificateError,
            certificates.verify_chain,
            later,
            self.server.chain_der,
            server_name="example.com",
            is_server_cert=True,
        )
        self.assertEqual(exc.alert, AlertDescription.certificate_expired)

    def test_chain_length_from_context(self) -> None:
        ca = self.pki.make_chain(3)
        leaf = self.pki.server("example.com", issuer=ca)
        context = self.context(max_certificate_chain_length=3)
        exc = self.assertRaises(
            CertificateError,
            certificates.verify_server_chain,
            context,
            leaf.chain_der,
            "example.com",
        )
        self.assertEqual(exc.alert, AlertDescription.bad_certificate)

    def test_insecure_skip_verify_parses_only(self) -> None:
        other = CertificateFactory(now=NOW).server("elsewhere")
        context = self.context(insecure_skip_verify=True, trust_roots=None)
        certs = certificates.verify_server_chain(
            context, other.chain_der, "example.com"
        )
        self.assertEqual(certs, other.chain)
        exc = self.assertRaises(
            CertificateError, certificates.verify_server_chain, context, [b"junk"], "x"
        )
        self.assertEqual(exc.alert, AlertDescription.bad_certificate)

    def test_missing_system_bundle_is_internal_error(self) -> None:
        def no_roots() -> TrustRoots:
            raise ConfigurationError("no system CA bundle found")

        self.patch(tx509, "system_trust_roots", no_roots)
        context = self.context(trust_roots=None)
        exc = self.assertRaises(
            InternalError,
            certificates.verify_server_chain,
            context,
            self.server.chain_der,
            "example.com",
        )
        self.assertIn("no system CA bundle", str(exc))
        self.assertEqual(exc.alert, AlertDescription.internal_error)
