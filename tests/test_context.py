"""Tests for twisted_sslfile.context: Credential and Context."""

from __future__ import annotations

import datetime
import inspect
import os
import time

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import dsa
from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from tests.certs import CertificateFactory
from twisted_sslfile import context as context_module
from twisted_sslfile import context_fields
from twisted_sslfile import x509 as tx509
from twisted_sslfile.constants import (
    TLS13_CIPHER_SUITES,
    CipherSuite,
    ClientCertificatePolicy,
    NamedGroup,
    ProtocolVersion,
    SignatureScheme,
)
from twisted_sslfile.context import (
    DEFAULT_CIPHER_SUITES,
    DEFAULT_SIGNATURE_SCHEMES,
    Context,
    Credential,
)
from twisted_sslfile.engine.sessions import SessionCache
from twisted_sslfile.engine.ticketkeys import DEFAULT_ROTATION_INTERVAL, TicketKeys
from twisted_sslfile.x509 import ConfigurationError

NOW = datetime.datetime(2031, 5, 17, 12, 0, 0, tzinfo=datetime.UTC)
TLS12 = ProtocolVersion.TLS_1_2
TLS13 = ProtocolVersion.TLS_1_3
SS = SignatureScheme


class DefaultsTests(SynchronousTestCase):
    def test_defaults(self) -> None:
        context = Context()
        self.assertEqual(context.min_version, TLS12)
        self.assertEqual(context.max_version, TLS13)
        self.assertEqual(context.versions, (TLS12, TLS13))
        self.assertEqual(len(context.cipher_suites), 9)
        self.assertEqual(set(context.cipher_suites), context_module.ALL_CIPHER_SUITES)
        self.assertEqual(
            context.groups,
            (
                NamedGroup.X25519MLKEM768,
                NamedGroup.x25519,
                NamedGroup.secp256r1,
                NamedGroup.secp384r1,
            ),
        )
        self.assertEqual(
            context.key_share_groups, (NamedGroup.X25519MLKEM768, NamedGroup.x25519)
        )
        self.assertEqual(context.signature_schemes, DEFAULT_SIGNATURE_SCHEMES)
        self.assertEqual(set(context.signature_schemes), set(SignatureScheme))
        self.assertEqual(context.alpn_protocols, ())
        self.assertEqual(context.npn_protocols, ())
        self.assertIs(context.random, os.urandom)
        self.assertIs(context.clock, time.time)
        self.assertEqual(context.max_handshake_message_size, 131072)
        self.assertEqual(context.max_certificate_chain_length, 10)
        self.assertIsNone(context.record_size_limit)
        self.assertTrue(context.verify)
        self.assertFalse(context.insecure_skip_verify)
        self.assertIs(context.client_certificate, ClientCertificatePolicy.NONE)
        self.assertIsNone(context.trust_roots)
        self.assertEqual(context.credentials, ())
        self.assertEqual(context.server_names, ())

    def test_cipher_order(self) -> None:
        with_aes = context_fields._default_cipher_suites(True)
        without = context_fields._default_cipher_suites(False)
        self.assertEqual(with_aes[0], CipherSuite.TLS_AES_128_GCM_SHA256)
        self.assertEqual(without[0], CipherSuite.TLS_CHACHA20_POLY1305_SHA256)
        self.assertEqual(set(with_aes), set(without))
        self.assertEqual(len(set(with_aes)), 9)
        self.assertIn(DEFAULT_CIPHER_SUITES, (with_aes, without))
        # TLS 1.3 suites first.
        self.assertEqual(set(with_aes[:3]), TLS13_CIPHER_SUITES)

    def test_insecure_skip_verify(self) -> None:
        context = Context(insecure_skip_verify=True)
        self.assertFalse(context.verify)
        self.assertRaises(ValueError, Context, insecure_skip_verify="yes")

    def test_repr(self) -> None:
        self.assertEqual(
            repr(Context()), "<Context TLS 1.2..TLS 1.3 verify 0 credential(s)>"
        )


class ValidationTests(SynchronousTestCase):
    """Every bad option raises ValueError at construction, saying what to fix."""

    def assertInvalid(self, *fragments: str, **kwargs: object) -> ValueError:
        exc = self.assertRaises(ValueError, Context, **kwargs)
        for fragment in fragments:
            self.assertIn(fragment, str(exc))
        return exc

    def test_keyword_only(self) -> None:
        self.assertRaises(TypeError, Context, ())

    def test_old_versions_refused(self) -> None:
        for old, name in (
            (ProtocolVersion.SSL_3_0, "SSL 3.0"),
            (ProtocolVersion.TLS_1_0, "TLS 1.0"),
            (ProtocolVersion.TLS_1_1, "TLS 1.1"),
        ):
            exc = self.assertInvalid(name, "TLS 1.2 and TLS 1.3", min_version=old)
            self.assertIn("min_version", str(exc))
        self.assertInvalid("max_version", max_version="TLSv1.1")

    def test_version_spellings(self) -> None:
        for spelling in ("TLSv1.3", "tls1_3", "PROTOCOL_TLS_1_3", 0x0304, "TLS 1.3"):
            self.assertEqual(Context(min_version=spelling).min_version, TLS13)
        self.assertEqual(
            Context(max_version=ProtocolVersion.PROTOCOL_TLS_1_2).max_version, TLS12
        )
        self.assertInvalid("unknown protocol version", min_version="TLSv9")
        self.assertInvalid("unknown protocol version", min_version=True)

    def test_min_above_max(self) -> None:
        self.assertInvalid(
            "min_version TLS 1.3 is above max_version TLS 1.2",
            min_version=TLS13,
            max_version=TLS12,
        )

    def test_single_version(self) -> None:
        context = Context(min_version=TLS13, max_version=TLS13)
        self.assertEqual(context.versions, (TLS13,))

    def test_cipher_suites(self) -> None:
        context = Context(
            cipher_suites=[
                "TLS_CHACHA20_POLY1305_SHA256",
                0xC02F,
                CipherSuite.TLS_AES_128_GCM_SHA256,
            ]
        )
        self.assertEqual(
            context.cipher_suites,
            (
                CipherSuite.TLS_CHACHA20_POLY1305_SHA256,
                CipherSuite.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
                CipherSuite.TLS_AES_128_GCM_SHA256,
            ),
        )
        self.assertInvalid(
            "unknown cipher suite",
            "TLS_AES_128_GCM_SHA256",
            cipher_suites=["TLS_RSA_WITH_RC4_128_MD5"],
        )
        self.assertInvalid("unknown cipher suite", cipher_suites=[0x002F])
        self.assertInvalid(
            "unknown cipher suite",
            cipher_suites=[CipherSuite.TLS_EMPTY_RENEGOTIATION_INFO_SCSV],
        )
        self.assertInvalid("must not be empty", cipher_suites=[])
        self.assertInvalid(
            "twice",
            cipher_suites=[
                CipherSuite.TLS_AES_128_GCM_SHA256,
                CipherSuite.TLS_AES_128_GCM_SHA256,
            ],
        )
        self.assertInvalid("sequence", cipher_suites="TLS_AES_128_GCM_SHA256")

    def test_cipher_suites_must_cover_a_version(self) -> None:
        self.assertInvalid(
            "no suite for TLS 1.3",
            cipher_suites=[CipherSuite.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256],
            min_version=TLS13,
        )
        self.assertInvalid(
            "no suite for TLS 1.2",
            cipher_suites=[CipherSuite.TLS_AES_128_GCM_SHA256],
            max_version=TLS12,
        )
        # One usable version is enough: the other is never negotiated.
        Context(cipher_suites=[CipherSuite.TLS_AES_128_GCM_SHA256])
        Context(cipher_suites=[CipherSuite.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256])

    def test_groups(self) -> None:
        context = Context(groups=["secp256r1", NamedGroup.x25519])
        self.assertEqual(context.groups, (NamedGroup.secp256r1, NamedGroup.x25519))
        # The default shares follow the configured groups.
        self.assertEqual(context.key_share_groups, (NamedGroup.x25519,))
        context = Context(groups=[NamedGroup.secp384r1])
        self.assertEqual(context.key_share_groups, (NamedGroup.secp384r1,))
        self.assertInvalid("unknown group", "x25519", groups=["ffdhe2048"])
        self.assertInvalid("unknown group", groups=[0x0100])
        self.assertInvalid("must not be empty", groups=[])

    def test_key_share_groups(self) -> None:
        context = Context(key_share_groups=[NamedGroup.secp256r1])
        self.assertEqual(context.key_share_groups, (NamedGroup.secp256r1,))
        self.assertEqual(Context(key_share_groups=[]).key_share_groups, ())
        self.assertInvalid(
            "key_share_groups secp384r1 not in groups",
            groups=[NamedGroup.x25519],
            key_share_groups=[NamedGroup.secp384r1],
        )

    def test_signature_schemes(self) -> None:
        context = Context(signature_schemes=["ed25519", 0x0403])
        self.assertEqual(
            context.signature_schemes, (SS.ed25519, SS.ecdsa_secp256r1_sha256)
        )
        self.assertInvalid("unknown signature scheme", signature_schemes=[0x0201])
        self.assertInvalid("unknown signature scheme", signature_schemes=["rsa_md5"])

    def test_alpn(self) -> None:
        context = Context(alpn_protocols=["h2", b"http/1.1"])
        self.assertEqual(context.alpn_protocols, (b"h2", b"http/1.1"))
        self.assertInvalid("sequence of protocol names", alpn_protocols="h2")
        self.assertInvalid("sequence of protocol names", alpn_protocols=b"h2")
        self.assertInvalid("1 to 255 bytes", alpn_protocols=[b""])
        self.assertInvalid("1 to 255 bytes", alpn_protocols=[b"x" * 256])
        self.assertInvalid("twice", alpn_protocols=[b"h2", "h2"])
        self.assertInvalid("not ASCII", alpn_protocols=["hé"])
        self.assertInvalid(
            "65535", alpn_protocols=[b"%03d" % i + b"x" * 197 for i in range(400)]
        )
        self.assertInvalid("protocol names are bytes or str", alpn_protocols=[2])

    def test_npn(self) -> None:
        self.assertEqual(
            Context(npn_protocols=[b"spdy/2", "http/1.1"]).npn_protocols,
            (b"spdy/2", b"http/1.1"),
        )
        self.assertInvalid("npn_protocols", npn_protocols=[b""])

    def test_record_size_limit(self) -> None:
        self.assertEqual(Context(record_size_limit=64).record_size_limit, 64)
        self.assertEqual(Context(record_size_limit=16385).record_size_limit, 16385)
        for bad in (63, 16386, 0, -1):
            self.assertInvalid(
                "record_size_limit", "between 64 and 16385", record_size_limit=bad
            )
        self.assertInvalid("integer", record_size_limit=True)
        self.assertInvalid("integer", record_size_limit="1024")

    def test_limits(self) -> None:
        self.assertInvalid("max_handshake_message_size", max_handshake_message_size=100)
        self.assertInvalid(
            "max_handshake_message_size", max_handshake_message_size=2**24
        )
        self.assertInvalid(
            "max_certificate_chain_length", max_certificate_chain_length=0
        )
        context = Context(
            max_handshake_message_size=2**14, max_certificate_chain_length=1
        )
        self.assertEqual(context.max_handshake_message_size, 2**14)

    def test_random_and_clock(self) -> None:
        context = Context(random=lambda n: b"\x00" * n, clock=lambda: 1.5)
        self.assertEqual(context.random(3), b"\x00\x00\x00")
        self.assertEqual(context.clock(), 1.5)
        self.assertInvalid("random must be a callable", random=b"1234")
        self.assertInvalid("clock must be a callable", clock=12.0)

    def test_client_certificate(self) -> None:
        for value, policy in (
            ("require", ClientCertificatePolicy.REQUIRE),
            ("REQUEST", ClientCertificatePolicy.REQUEST),
            (ClientCertificatePolicy.NONE, ClientCertificatePolicy.NONE),
        ):
            self.assertIs(Context(client_certificate=value).client_certificate, policy)
        self.assertInvalid("none, request, require", client_certificate="always")

    def test_credentials_type(self) -> None:
        self.assertInvalid("Credential objects", credentials=[("chain", "key")])


class CredentialTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.dir = self.mktemp()
        self.pki = CertificateFactory(self.dir, now=NOW)

    def test_basic(self) -> None:
        leaf = self.pki.server(
            "example.com",
            dns_names=["example.com", "*.example.org"],
            ip_addresses=["192.0.2.1"],
        )
        credential = Credential(leaf.chain, leaf.key)
        self.assertEqual(credential.chain, tuple(leaf.chain))
        self.assertEqual(credential.chain_der, tuple(leaf.chain_der))
        self.assertEqual(credential.certificate, leaf.certificate)
        self.assertEqual(credential.dns_names, ("example.com", "*.example.org"))
        self.assertEqual([str(ip) for ip in credential.ip_addresses], ["192.0.2.1"])
        self.assertIs(credential.private_key, leaf.key)

    def test_single_certificate(self) -> None:
        leaf = self.pki.server("example.com", direct=True)
        self.assertEqual(
            Credential(leaf.certificate, leaf.key).chain, (leaf.certificate,)
        )

    def test_matches(self) -> None:
        leaf = self.pki.server(
            "example.com",
            dns_names=["example.com", "*.example.org"],
            ip_addresses=["192.0.2.1"],
        )
        credential = leaf.credential()
        self.assertTrue(credential.matches_exactly("EXAMPLE.com."))
        self.assertFalse(credential.matches_wildcard("example.com"))
        self.assertTrue(credential.matches("www.example.org"))
        self.assertTrue(credential.matches_wildcard("www.example.org"))
        self.assertFalse(credential.matches_exactly("www.example.org"))
        self.assertFalse(credential.matches("a.b.example.org"))
        self.assertFalse(credential.matches("example.org"))
        self.assertTrue(credential.matches("192.0.2.1"))
        self.assertFalse(credential.matches("192.0.2.2"))
        self.assertFalse(credential.matches("..bad.."))

    def test_common_name_fallback(self) -> None:
        leaf = self.pki.server("legacy.example", include_san=False)
        self.assertEqual(leaf.credential().dns_names, ("legacy.example",))
        self.assertTrue(leaf.credential().matches("legacy.example"))

    def test_key_mismatch(self) -> None:
        a = self.pki.server("a.example")
        b = self.pki.server("b.example")
        exc = self.assertRaises(ValueError, Credential, a.chain, b.key)
        self.assertIn("does not match certificate", str(exc))
        self.assertIn("CN=a.example", str(exc))

    def test_key_type_mismatch(self) -> None:
        a = self.pki.server("a.example", key_type="rsa-2048")
        b = self.pki.server("b.example", key_type="ed25519")
        exc = self.assertRaises(ValueError, Credential, a.chain, b.key)
        self.assertIn("Ed25519", str(exc))
        self.assertIn("RSA-2048", str(exc))

    def test_empty_chain(self) -> None:
        leaf = self.pki.server("a.example")
        exc = self.assertRaises(ValueError, Credential, [], leaf.key)
        self.assertIn("at least one certificate", str(exc))

    def test_bad_entries(self) -> None:
        leaf = self.pki.server("a.example")
        exc = self.assertRaises(ValueError, Credential, [leaf.der], leaf.key)
        self.assertIn("#0", str(exc))
        exc = self.assertRaises(ValueError, Credential, leaf.chain, "not a key")
        self.assertIn("sign() and public_key()", str(exc))

    def test_unsupported_key_type(self) -> None:
        key = dsa.generate_private_key(2048)
        leaf = self.pki.server("dsa.example", key=key)
        exc = self.assertRaises(ValueError, Credential, leaf.chain, key)
        self.assertIn("TLS credentials need", str(exc))

    def test_duck_typed_key(self) -> None:
        leaf = self.pki.server("a.example")

        class Token:
            def sign(self, *args: object) -> bytes:
                return leaf.key.sign(*args)

            def public_key(self):
                return leaf.key.public_key()

        credential = Credential(leaf.chain, Token())
        self.assertIsInstance(credential.private_key, Token)

    def test_repr_has_no_secret(self) -> None:
        leaf = self.pki.server("a.example", key_type="rsa-2048")
        text = repr(leaf.credential())
        self.assertIn("CN=a.example", text)
        self.assertIn("RSA-2048", text)
        self.assertNotIn(str(leaf.key.private_numbers().d)[:20], text)

    def test_signature_schemes(self) -> None:
        credential = self.pki.server("a.example", key_type="ecdsa-p384").credential()
        self.assertEqual(
            credential.signature_schemes(TLS13), (SS.ecdsa_secp384r1_sha384,)
        )
        self.assertIn(SS.ecdsa_secp256r1_sha256, credential.signature_schemes(TLS12))

    def test_from_files_mismatch_names_both_files(self) -> None:
        a = self.pki.server("a.example")
        b = self.pki.server("b.example")
        exc = self.assertRaises(
            ConfigurationError, Credential.from_files, a.chain_path, b.key_path
        )
        self.assertIn(a.chain_path, str(exc))
        self.assertIn(b.key_path, str(exc))


class LoadCertChainTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.pki = CertificateFactory(self.mktemp(), now=NOW)

    def test_combined_file(self) -> None:
        leaf = self.pki.server("example.com")
        context = Context()
        credential = context.load_cert_chain(leaf.combined_path)
        self.assertEqual(context.credentials, (credential,))
        self.assertEqual(credential.chain, tuple(leaf.chain))
        self.assertEqual(context.server_names, ("example.com",))

    def test_separate_key_with_password(self) -> None:
        leaf = self.pki.server("example.com", key_password="pw")
        context = Context()
        context.load_cert_chain(leaf.chain_path, leaf.key_path, password="pw")
        context.load_cert_chain(leaf.combined_path, password=b"pw")
        self.assertEqual(len(context.credentials), 2)

    def test_errors_name_the_file(self) -> None:
        leaf = self.pki.server("example.com", key_password="pw")
        context = Context()
        exc = self.assertRaises(
            ConfigurationError, context.load_cert_chain, leaf.chain_path, leaf.key_path
        )
        self.assertIn(leaf.key_path, str(exc))
        exc = self.assertRaises(
            ConfigurationError,
            context.load_cert_chain,
            leaf.chain_path,
            leaf.key_path,
            "wrong",
        )
        self.assertIn(leaf.key_path, str(exc))
        missing = os.path.join(self.pki.directory, "missing.pem")
        exc = self.assertRaises(ConfigurationError, context.load_cert_chain, missing)
        self.assertIn(missing, str(exc))
        self.assertEqual(context.credentials, ())

    def test_credentials_argument(self) -> None:
        leaf = self.pki.server("example.com")
        credential = leaf.credential()
        self.assertEqual(Context(credentials=[credential]).credentials, (credential,))
        self.assertEqual(Context(credentials=credential).credentials, (credential,))


class SelectCredentialTests(SynchronousTestCase):
    def setUp(self) -> None:
        pki = CertificateFactory(now=NOW)
        self.default = pki.server("default.example", key_type="rsa-2048").credential()
        self.wildcard = pki.server("*.example.com").credential()
        self.exact = pki.server("www.example.com", key_type="ecdsa-p384").credential()
        self.ed = pki.server("www.example.com", key_type="ed25519").credential()
        self.context = Context(
            credentials=[self.default, self.wildcard, self.exact, self.ed]
        )
        self.all = list(DEFAULT_SIGNATURE_SCHEMES)

    def select(self, name, schemes=None, version=TLS13):
        return self.context.select_credential(name, schemes, version)

    def test_exact_before_wildcard(self) -> None:
        self.assertIs(self.select("www.example.com", self.all), self.exact)
        self.assertIs(self.select("WWW.Example.COM", None), self.exact)

    def test_wildcard(self) -> None:
        self.assertIs(self.select("mail.example.com", self.all), self.wildcard)

    def test_no_match_gives_first(self) -> None:
        self.assertIs(self.select("other.example", self.all), self.default)
        self.assertIs(self.select(None, self.all), self.default)
        self.assertIs(self.select("", self.all), self.default)

    def test_scheme_decides_among_matches(self) -> None:
        self.assertIs(self.select("www.example.com", [SS.ed25519]), self.ed)
        # No exact match can sign: the wildcard (P-256) can.
        self.assertIs(
            self.select("www.example.com", [SS.ecdsa_secp256r1_sha256]), self.wildcard
        )

    def test_scheme_falls_back_to_any_credential(self) -> None:
        self.assertIs(
            self.select("www.example.com", [SS.rsa_pss_rsae_sha256]), self.default
        )

    def test_version_matters(self) -> None:
        # In TLS 1.2 ecdsa_secp256r1_sha256 only names the hash: P-384 may use it.
        self.assertIs(
            self.select("www.example.com", [SS.ecdsa_secp256r1_sha256], TLS12),
            self.exact,
        )
        # PKCS#1 v1.5 is TLS 1.2 only.
        self.assertIsNone(self.select("x", [SS.rsa_pkcs1_sha256], TLS13))
        self.assertIs(self.select("x", [SS.rsa_pkcs1_sha256], TLS12), self.default)

    def test_nothing_can_sign(self) -> None:
        self.assertIsNone(self.select("www.example.com", [SS.ed448]))
        self.assertIsNone(self.select("www.example.com", []))

    def test_no_credentials(self) -> None:
        self.assertIsNone(Context().select_credential("x", None, TLS13))

    def test_our_schemes_restrict(self) -> None:
        context = self.context.replace(signature_schemes=[SS.ecdsa_secp384r1_sha384])
        self.assertIs(
            context.select_credential(
                "www.example.com", [SS.ed25519, SS.ecdsa_secp384r1_sha384], TLS13
            ),
            self.exact,
        )
        self.assertIsNone(
            context.select_credential("www.example.com", [SS.ed25519], TLS13)
        )

    def test_choose_signature_scheme(self) -> None:
        self.assertEqual(
            self.context.choose_signature_scheme(
                self.default, [SS.rsa_pkcs1_sha256, SS.rsa_pss_rsae_sha384], TLS13
            ),
            SS.rsa_pss_rsae_sha384,
        )
        self.assertEqual(
            self.context.choose_signature_scheme(self.default, None, TLS13),
            SS.rsa_pss_rsae_sha256,
        )

    @settings(max_examples=300, deadline=None)
    @given(st.text(max_size=80), st.lists(st.integers(0, 0xFFFF), max_size=6))
    def test_hostile_server_name(self, name: str, schemes: list[int]) -> None:
        # The SNI comes from the peer: any text must give a credential or None.
        result = self.context.select_credential(name, schemes, TLS13)
        self.assertIn(result, [None, self.default, self.wildcard, self.exact, self.ed])

    def test_server_names(self) -> None:
        self.assertEqual(
            self.context.server_names,
            ("default.example", "*.example.com", "www.example.com"),
        )

    def test_set_credentials(self) -> None:
        """
        A reload swaps the whole set: the next selection sees only the new
        credentials, and the new first one is the default.
        """
        before = self.context.credentials
        self.context.set_credentials([self.wildcard, self.ed])
        self.assertEqual(self.context.credentials, (self.wildcard, self.ed))
        self.assertIs(self.select("other.example", self.all), self.wildcard)
        self.assertIs(self.select("www.example.com", self.all), self.ed)
        self.assertIsNot(self.context.credentials, before)

    def test_set_credentials_refuses_other_objects(self) -> None:
        before = self.context.credentials
        self.assertRaises(ValueError, self.context.set_credentials, [object()])
        self.assertIs(self.context.credentials, before)


class ImmutabilityTests(SynchronousTestCase):
    def test_cannot_set_or_delete(self) -> None:
        context = Context()
        exc = self.assertRaises(AttributeError, setattr, context, "verify", False)
        self.assertIn("replace", str(exc))
        self.assertRaises(AttributeError, setattr, context, "clock", time.monotonic)
        self.assertRaises(AttributeError, setattr, context, "anything", 1)
        self.assertRaises(AttributeError, delattr, context, "clock")

    def test_replace(self) -> None:
        pki = CertificateFactory(now=NOW)
        context = Context(
            trust_roots=pki.trust_roots,
            alpn_protocols=[b"h2"],
            groups=[NamedGroup.x25519, NamedGroup.secp256r1],
            key_share_groups=[NamedGroup.secp256r1],
        )
        copy = context.replace(alpn_protocols=[b"http/1.1"])
        self.assertEqual(copy.alpn_protocols, (b"http/1.1",))
        self.assertEqual(context.alpn_protocols, (b"h2",))
        self.assertIs(copy.trust_anchors, context.trust_anchors)
        self.assertEqual(copy.key_share_groups, (NamedGroup.secp256r1,))
        regrouped = context.replace(groups=[NamedGroup.secp384r1])
        self.assertEqual(regrouped.key_share_groups, (NamedGroup.secp384r1,))
        self.assertRaises(TypeError, context.replace, verify=False)
        self.assertRaises(
            ValueError, context.replace, min_version=ProtocolVersion.TLS_1_0
        )


class TrustRootsTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.pki = CertificateFactory(self.mktemp(), now=NOW)

    def test_explicit_roots_load_at_construction(self) -> None:
        missing = os.path.join(self.pki.directory, "missing.pem")
        exc = self.assertRaises(ConfigurationError, Context, trust_roots=missing)
        self.assertIn(missing, str(exc))
        self.assertIsInstance(exc, ValueError)
        context = Context(trust_roots=self.pki.ca_path)
        self.assertEqual(context.trust_roots, self.pki.ca_path)
        self.assertEqual(
            context.trust_anchors.certificates, (self.pki.root.certificate,)
        )
        self.assertIs(context.trust_store, context.trust_anchors.store)

    def test_system_roots_are_lazy(self) -> None:
        calls = []
        roots = tx509.load_trust_roots(self.pki.trust_roots)

        def fake_system_roots() -> tx509.TrustRoots:
            calls.append(1)
            return roots

        self.patch(tx509, "system_trust_roots", fake_system_roots)
        context = Context()
        self.assertEqual(calls, [])
        self.assertIs(context.trust_store, roots.store)
        self.assertIs(context.trust_anchors, roots)
        self.assertEqual(calls, [1])

    def test_server_without_bundle(self) -> None:
        def no_roots() -> tx509.TrustRoots:
            raise ConfigurationError("no system CA bundle found")

        self.patch(tx509, "system_trust_roots", no_roots)
        leaf = self.pki.server("example.com")
        # A server that never asks for client certificates needs no bundle.
        context = Context(credentials=[leaf.credential()])
        self.assertIsNone(context.trust_roots)
        self.assertRaises(ConfigurationError, lambda: context.trust_store)

    def test_roots_as_certificate_list(self) -> None:
        context = Context(trust_roots=self.pki.trust_roots)
        leaf = self.pki.server("example.com")
        clocked = context.replace(clock=lambda: NOW.timestamp())
        path = tx509.verify_server_chain(clocked, leaf.chain_der, "example.com")
        self.assertIsInstance(path[0], x509.Certificate)


class FieldTableTests(SynchronousTestCase):
    """The constructor is its table of fields: complete and in order."""

    def test_every_argument_and_attribute(self) -> None:
        parameters = set(inspect.signature(Context).parameters)
        attributes = set(Context.__slots__) - {"_frozen", *Context._CACHED}
        written: list[str] = []
        for row in context_module._FIELDS:
            for name in row.reads:
                # A row reads an argument, or an attribute an earlier row set
                # (then it sees the converted value).
                self.assertTrue(name in parameters or name in written, (row, name))
            written.extend(row.attributes)
        self.assertEqual(sorted(written), sorted(attributes))
        read = {name for row in context_module._FIELDS for name in row.reads}
        self.assertEqual(read, parameters)

    def test_convert_fields_is_the_constructor(self) -> None:
        arguments = {
            name: parameter.default
            for name, parameter in inspect.signature(Context).parameters.items()
        }
        arguments["alpn_protocols"] = ["h2"]
        arguments["min_version"] = "TLSv1.3"
        values = context_module.convert_fields(arguments)
        context = Context(alpn_protocols=["h2"], min_version="TLSv1.3")
        for name in ("alpn_protocols", "min_version", "groups", "cipher_suites"):
            self.assertEqual(values[name], getattr(context, name))
        self.assertIs(values["random"], os.urandom)

    def test_first_bad_field_is_reported(self) -> None:
        """With several bad arguments, the first row of the table speaks."""
        for arguments, expected in (
            ({"credentials": [1], "min_version": "x"}, "min_version"),
            ({"insecure_skip_verify": 3, "groups": []}, "groups"),
            ({"session_lifetime": 0, "allow_psk_ke": 3}, "allow_psk_ke"),
            ({"client_certificate": "x", "random": 1}, "random"),
        ):
            exc = self.assertRaises(ValueError, Context, **arguments)
            self.assertIn(expected, str(exc))


class SharedFieldConverterTests(SynchronousTestCase):
    """The converters of the fields that hold shared objects."""

    def test_session_tickets(self) -> None:
        convert = context_module.convert_session_tickets
        keys, own = convert(None, None, os.urandom, time.time, 600)
        self.assertIsInstance(keys, TicketKeys)
        self.assertTrue(own)
        assert keys is not None
        self.assertEqual(keys.rotation_interval, 600)
        self.assertEqual(keys.decrypt_window, 600)
        keys, own = convert(True)
        assert keys is not None
        self.assertEqual(keys.rotation_interval, DEFAULT_ROTATION_INTERVAL)
        self.assertTrue(own)
        self.assertEqual(convert(False), (None, False))
        given = TicketKeys(random=os.urandom, clock=time.time)
        self.assertEqual(convert(given), (given, False))
        for args, message in (
            (
                (False, "/k"),
                "ticket_key_file is set but session_tickets=False turns "
                "tickets off; drop one of them",
            ),
            ((given, "/k"), "give session_tickets or ticket_key_file, not both"),
            (
                ("yes",),
                "session_tickets must be a TicketKeys, None (keys of this "
                "Context's own) or False (no tickets), not 'yes'",
            ),
        ):
            exc = self.assertRaises(ValueError, convert, *args)
            self.assertEqual(str(exc), message)

    def test_session_tickets_file(self) -> None:
        missing = os.path.abspath(self.mktemp())
        exc = self.assertRaises(
            ConfigurationError, context_module.convert_session_tickets, None, missing
        )
        self.assertIn(missing, str(exc))

    def test_session_cache(self) -> None:
        convert = context_module.convert_session_cache
        cache, own = convert(None, time.time, 60)
        self.assertIsInstance(cache, SessionCache)
        self.assertTrue(own)
        self.assertEqual(convert(False), (None, False))
        given = SessionCache(clock=time.time)
        self.assertEqual(convert(given), (given, False))
        exc = self.assertRaises(ValueError, convert, "yes")
        self.assertEqual(
            str(exc),
            "session_cache must be a SessionCache, None (a cache of this "
            "Context's own) or False (no session IDs), not 'yes'",
        )

    def test_trust_roots(self) -> None:
        pki = CertificateFactory(self.mktemp(), now=NOW)
        convert = context_module.convert_trust_roots
        self.assertEqual(convert(None), (None, None))
        source, roots = convert(pki.ca_path)
        self.assertEqual(source, pki.ca_path)
        assert roots is not None
        self.assertEqual(roots.certificates, (pki.root.certificate,))
        missing = os.path.join(pki.directory, "missing.pem")
        exc = self.assertRaises(ConfigurationError, convert, missing)
        self.assertIn(missing, str(exc))

    def test_credentials(self) -> None:
        convert = context_module.convert_credentials
        credential = CertificateFactory(now=NOW).server("a.example").credential()
        self.assertEqual(convert(credential), (credential,))
        self.assertEqual(convert([credential, credential]), (credential, credential))
        self.assertEqual(convert(()), ())
        exc = self.assertRaises(ValueError, convert, [credential, "key"])
        self.assertEqual(
            str(exc),
            "credentials must be Credential objects, not str; use "
            "Credential(chain, key) or Context.load_cert_chain()",
        )
