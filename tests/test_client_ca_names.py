"""The CA names in a server's CertificateRequest (issue 9.16), both versions.

RFC 5246 §7.4.4 (the TLS 1.2 certificate_authorities list) and RFC 8446
§4.2.4 (the TLS 1.3 extension): a server that verifies client certificates
against its own roots names them, because some clients (Pike 8.0) only send
a certificate issued under a listed name.  Here: which names
:func:`twisted_sslfile.x509.client_ca_names` gives and its bounds, that both
versions' CertificateRequest carry them, and that our client, holding
several certificates, sends one the server named.  Real peers reading the
names are in ``tests.test_interop_tls12`` and ``tests.test_interop_gnutls``.
"""

from __future__ import annotations

import datetime
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.x509.oid import NameOID
from cryptography.x509.verification import Store
from twisted.trial.unittest import SynchronousTestCase

from tests.certs import CertificateFactory
from tests.test_connection import of_type, pump
from tests.test_tls12 import Recorder
from twisted_sslfile import x509 as tx509
from twisted_sslfile.constants import (
    ClientCertificatePolicy,
    HandshakeType,
    ProtocolVersion,
)
from twisted_sslfile.context import Context
from twisted_sslfile.engine import messages
from twisted_sslfile.engine.events import HandshakeCompleted

VERSIONS = (ProtocolVersion.TLS_1_2, ProtocolVersion.TLS_1_3)


def ca_certificates(count: int, units: int = 1) -> list[x509.Certificate]:
    """``count`` self-signed CA certificates with distinct subjects, each
    with ``units`` 60-character OUs (to make long names)."""
    key = ed25519.Ed25519PrivateKey.generate()
    now = datetime.datetime.now(datetime.UTC)
    certs = []
    for index in range(count):
        attributes = [x509.NameAttribute(NameOID.COMMON_NAME, f"CA {index}")]
        attributes += [
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, f"{unit:02d}" * 30)
            for unit in range(units)
        ]
        name = x509.Name(attributes)
        certs.append(
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(index + 1)
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
            .sign(key, None)
        )
    return certs


def der_name(cert: x509.Certificate) -> bytes:
    return cert.subject.public_bytes()


class ClientCANamesTests(SynchronousTestCase):
    """What :func:`client_ca_names` lists, and when it lists nothing."""

    def test_configured_roots_in_order(self) -> None:
        certs = ca_certificates(3)
        context = Context(trust_roots=certs)
        self.assertEqual(tx509.client_ca_names(context), [der_name(c) for c in certs])

    def test_repeated_subject_listed_once(self) -> None:
        """Two roots of one name (a re-keyed CA): the name appears once."""
        first, second = ca_certificates(1), ca_certificates(1)
        self.assertEqual(first[0].subject, second[0].subject)
        context = Context(trust_roots=first + second)
        self.assertEqual(tx509.client_ca_names(context), [der_name(first[0])])

    def test_system_bundle_lists_nothing(self) -> None:
        """trust_roots=None (the system bundle): no names, and the bundle
        is not even loaded for them."""
        context = Context()
        self.assertEqual(tx509.client_ca_names(context), [])
        self.assertIsNone(context._trust_anchors)

    def test_ready_store_lists_nothing(self) -> None:
        context = Context(trust_roots=Store(ca_certificates(2)))
        self.assertEqual(tx509.client_ca_names(context), [])

    def test_count_bound(self) -> None:
        """Up to MAX_CLIENT_CA_NAMES names; one more and the list is empty
        ("any CA"), never cut short."""
        limit = tx509.MAX_CLIENT_CA_NAMES
        self.assertEqual(limit, 100)
        certs = ca_certificates(limit + 1)
        self.assertEqual(
            len(tx509.client_ca_names(Context(trust_roots=certs[:-1]))), limit
        )
        self.assertEqual(tx509.client_ca_names(Context(trust_roots=certs)), [])

    def test_size_bound(self) -> None:
        """At most MAX_CLIENT_CA_NAMES_BYTES of encoded names (each with its
        2-byte length); past that the list is empty."""
        self.assertEqual(tx509.MAX_CLIENT_CA_NAMES_BYTES, 16384)
        certs = ca_certificates(60, units=4)
        sizes = [2 + len(der_name(c)) for c in certs]
        fitting = 0
        while sum(sizes[: fitting + 1]) <= tx509.MAX_CLIENT_CA_NAMES_BYTES:
            fitting += 1
        self.assertLess(fitting, len(certs))
        names = tx509.client_ca_names(Context(trust_roots=certs[:fitting]))
        self.assertEqual(len(names), fitting)
        self.assertEqual(
            tx509.client_ca_names(Context(trust_roots=certs[: fitting + 1])), []
        )


class CertificateRequestTests(SynchronousTestCase):
    """The names on the wire, and our client's use of them."""

    def setUp(self) -> None:
        self.pki = CertificateFactory(self.mktemp())
        self.server_leaf = self.pki.server("example.com")

    def handshake(
        self, version: ProtocolVersion, server: dict[str, Any], client: dict[str, Any]
    ) -> tuple[Recorder, list[Any]]:
        """Run a handshake; return the server (a Recorder) and its events."""
        server_context = Context(
            credentials=[self.server_leaf.credential()], max_version=version, **server
        )
        client_context = Context(
            trust_roots=self.pki.trust_roots, max_version=version, **client
        )
        client_conn = Recorder(
            client_context, is_client=True, server_name="example.com"
        )
        server_conn = Recorder(server_context, is_client=False)
        client_conn.start()
        _, server_events = pump(client_conn, server_conn)
        return server_conn, server_events

    def certificate_authorities(
        self, server: Recorder, version: ProtocolVersion
    ) -> list[bytes] | None:
        [raw] = [
            raw
            for kind, _, raw in server.units
            if kind == "hs" and raw[0] == HandshakeType.certificate_request
        ]
        if version == ProtocolVersion.TLS_1_2:
            return messages.CertificateRequest12.parse(raw[4:]).certificate_authorities
        return messages.CertificateRequest.parse(raw[4:]).certificate_authorities

    def test_request_lists_the_client_cas(self) -> None:
        """REQUEST and REQUIRE both name the configured roots: the PKI's
        root, and a second, unrelated one."""
        other = CertificateFactory(self.mktemp(), name="Other")
        roots = [self.pki.root.certificate, other.root.certificate]
        leaf = self.pki.client("alice")
        for version in VERSIONS:
            for policy in (
                ClientCertificatePolicy.REQUEST,
                ClientCertificatePolicy.REQUIRE,
            ):
                server, events = self.handshake(
                    version,
                    {"client_certificate": policy, "trust_roots": roots},
                    {"credentials": [leaf.credential()]},
                )
                self.assertEqual(
                    self.certificate_authorities(server, version),
                    [der_name(c) for c in roots],
                    (version, policy),
                )
                [done] = of_type(events, HandshakeCompleted)
                self.assertEqual(done.peer_certificates[0], leaf.der)

    def test_system_bundle_lists_none(self) -> None:
        """No explicit client CAs: TLS 1.2 sends an empty list and TLS 1.3
        leaves the extension out ("any CA" in both)."""
        for version in VERSIONS:
            server, _ = self.handshake(
                version, {"client_certificate": ClientCertificatePolicy.REQUEST}, {}
            )
            expected = [] if version == ProtocolVersion.TLS_1_2 else None
            self.assertEqual(self.certificate_authorities(server, version), expected)

    def test_client_sends_the_listed_certificate(self) -> None:
        """Two client certificates from two CAs, the server trusting the
        second: the client sends the second although the first comes first
        in its Context (which used to fail with unknown_ca)."""
        stranger = CertificateFactory(self.mktemp(), name="Stranger").client("mallory")
        alice = self.pki.client("alice")
        for version in VERSIONS:
            _, events = self.handshake(
                version,
                {
                    "client_certificate": ClientCertificatePolicy.REQUIRE,
                    "trust_roots": self.pki.trust_roots,
                },
                {"credentials": [stranger.credential(), alice.credential()]},
            )
            [done] = of_type(events, HandshakeCompleted)
            self.assertEqual(done.peer_certificates[0], alice.der, version)
            self.assertTrue(done.verified)

    def test_unlisted_order_kept(self) -> None:
        """Without names (the server's roots are a ready Store) the client
        keeps its own order: its first usable credential goes."""
        first, second = self.pki.client("first"), self.pki.client("second")
        for version in VERSIONS:
            server, events = self.handshake(
                version,
                {
                    "client_certificate": ClientCertificatePolicy.REQUIRE,
                    "trust_roots": Store(self.pki.trust_roots),
                },
                {"credentials": [first.credential(), second.credential()]},
            )
            self.assertFalse(self.certificate_authorities(server, version))
            [done] = of_type(events, HandshakeCompleted)
            self.assertEqual(done.peer_certificates[0], first.der, version)
