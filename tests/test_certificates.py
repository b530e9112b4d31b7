"""Tests for twisted_sslfile.engine.certificates: the engine's chain checks.

The engine takes trust roots, time and limits as plain values
(:class:`VerificationPolicy`) and reads no file; a Context builds the policy
once and hands over the default roots only when a check needs them.
"""

from __future__ import annotations

import datetime

from cryptography.x509.verification import Store
from twisted.trial.unittest import SynchronousTestCase

from tests.certs import CertificateFactory
from tests.test_connection import pump
from twisted_sslfile import x509 as tx509
from twisted_sslfile.constants import AlertDescription, ClientCertificatePolicy
from twisted_sslfile.context import Context
from twisted_sslfile.engine import certificates
from twisted_sslfile.engine.certificates import (
    MIN_RSA_KEY_BITS,
    TrustRoots,
    VerificationPolicy,
)
from twisted_sslfile.engine.connection import Connection
from twisted_sslfile.errors import CertificateError, ConfigurationError, InternalError

NOW = datetime.datetime(2031, 5, 17, 12, 0, 0, tzinfo=datetime.UTC)


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
