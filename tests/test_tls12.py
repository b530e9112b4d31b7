"""TLS 1.2 (twisted_sslfile.engine.tls12) against itself, in memory.

Every suite with every key type, client certificates, ALPN and NPN, the
extended master secret, secure renegotiation started by either side while
data flows, and hostile input in every handshake state: out-of-order
messages, stray ChangeCipherSpec records and (with hypothesis) mutated
messages, each of which must end in the right alert and nothing else.
Interop with other implementations is in ``test_interop_tls12``.
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import random
import time
from collections.abc import Callable, Iterator
from typing import Any, ClassVar

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from tests.certs import CertificateFactory
from tests.test_connection import HandshakeTestsMixin, of_type, pump
from twisted_sslfile.constants import (
    AlertDescription,
    AlertLevel,
    CipherSuite,
    ClientCertificatePolicy,
    ContentType,
    HandshakeType,
    NamedGroup,
    ProtocolVersion,
    SignatureScheme,
)
from twisted_sslfile.context import Context
from twisted_sslfile.engine import messages
from twisted_sslfile.engine.connection import Connection, ConnectionState
from twisted_sslfile.engine.events import (
    AlertReceived,
    ApplicationData,
    Event,
    HandshakeCompleted,
    SessionTicket,
)
from twisted_sslfile.engine.negotiation import ClientNegotiator
from twisted_sslfile.engine.record import RecordProtection
from twisted_sslfile.engine.tls12 import State
from twisted_sslfile.engine.tls12_client import TLS12Client
from twisted_sslfile.engine.tls12_server import TLS12Server
from twisted_sslfile.errors import (
    ConnectionClosedError,
    IllegalParameterError,
    InternalError,
    RecordOverflowError,
    RemoteAlertError,
    TLSError,
    UnsupportedExtensionError,
)

A = AlertDescription
TLS12 = ProtocolVersion.TLS_1_2
CS = CipherSuite
H = HandshakeType
ECDSA_SUITES = (
    CS.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
    CS.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
    CS.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
)
RSA_SUITES = (
    CS.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
    CS.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
    CS.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
)
GROUPS12 = (NamedGroup.x25519, NamedGroup.secp256r1, NamedGroup.secp384r1)


def make_context(**kwargs: Any) -> Context:
    return Context(**kwargs)


def data_of(events: list[Event]) -> bytes:
    return b"".join(e.data for e in of_type(events, ApplicationData))


class TLS12TestsMixin(HandshakeTestsMixin):
    """A fresh PKI per test and TLS 1.2 connection pairs (``connect`` and
    ``fail_handshake`` come from the TLS 1.3 tests' mixin)."""

    def setUp(self) -> None:
        super().setUp()
        self._leaves: dict[str, Any] = {}

    def leaf(self, key_type: str) -> Any:
        if key_type not in self._leaves:
            self._leaves[key_type] = self.pki.server("example.com", key_type=key_type)
        return self._leaves[key_type]

    def contexts(
        self,
        key_type: str = "ecdsa-p256",
        server: dict | None = None,
        client: dict | None = None,
        *,
        client_max: ProtocolVersion = TLS12,
        server_max: ProtocolVersion = TLS12,
    ) -> tuple[Context, Context]:
        server_options = {"max_version": server_max, **(server or {})}
        client_options = {"max_version": client_max, **(client or {})}
        server_context = make_context(
            credentials=[self.leaf(key_type).credential()], **server_options
        )
        client_context = make_context(
            trust_roots=self.pki.trust_roots, **client_options
        )
        return client_context, server_context

    def assertTalks(self, client: Connection, server: Connection) -> None:
        """Data flows both ways and both export the same keying material."""
        client.send(b"ping")
        server.send(b"pong")
        client_events, server_events = pump(client, server)
        self.assertEqual(data_of(server_events), b"ping")  # type: ignore[attr-defined]
        self.assertEqual(data_of(client_events), b"pong")  # type: ignore[attr-defined]
        for context_value in (b"ctx", b"", None):
            self.assertEqual(  # type: ignore[attr-defined]
                client.export_keying_material(b"EXPERIMENTAL t", context_value, 32),
                server.export_keying_material(b"EXPERIMENTAL t", context_value, 32),
            )


# -- full handshakes -------------------------------------------------------------------


class HandshakeTests(TLS12TestsMixin, SynchronousTestCase):
    def test_every_suite_and_key_type(self) -> None:
        """Each suite with each fitting key type, rotating through the groups."""
        cases = [(s, k) for s in ECDSA_SUITES for k in ("ecdsa-p256", "ecdsa-p384")]
        cases += [(s, "rsa-2048") for s in RSA_SUITES]
        for index, (suite, key_type) in enumerate(cases):
            group = GROUPS12[index % len(GROUPS12)]
            client_context, server_context = self.contexts(
                key_type, client={"cipher_suites": [suite], "groups": [group]}
            )
            client, server, client_events, server_events = self.connect(
                client_context, server_context
            )
            [done] = of_type(client_events, HandshakeCompleted)
            [server_done] = of_type(server_events, HandshakeCompleted)
            self.assertEqual(
                (done.version, done.cipher_suite, done.group), (TLS12, suite, group)
            )
            self.assertEqual(server_done.cipher_suite, suite)
            self.assertTrue(done.verified)
            self.assertEqual(done.peer_certificates[0], self.leaf(key_type).der)
            self.assertIsNone(done.next_protocol)
            self.assertFalse(done.resumed)
            self.assertTrue(client.handshake_state.extended_master_secret)
            self.assertTrue(server.handshake_state.extended_master_secret)
            self.assertTalks(client, server)

    def test_ed25519_certificate(self) -> None:
        client, server, events, _ = self.connect(*self.contexts("ed25519"))
        [done] = of_type(events, HandshakeCompleted)
        self.assertEqual(done.cipher_suite.name[:11], "TLS_ECDHE_E")
        self.assertTalks(client, server)

    def test_rsa_signature_schemes(self) -> None:
        """PKCS#1 v1.5 and PSS both sign ServerKeyExchange in TLS 1.2."""
        for scheme in (
            SignatureScheme.rsa_pkcs1_sha256,
            SignatureScheme.rsa_pkcs1_sha384,
            SignatureScheme.rsa_pkcs1_sha512,
            SignatureScheme.rsa_pss_rsae_sha256,
            SignatureScheme.rsa_pss_rsae_sha384,
        ):
            client_context, server_context = self.contexts(
                "rsa-2048", client={"signature_schemes": [scheme]}
            )
            _client, _server, events, _ = self.connect(client_context, server_context)
            self.assertEqual(len(of_type(events, HandshakeCompleted)), 1, scheme)

    def test_ecdsa_with_other_hash(self) -> None:
        """TLS 1.2 lets a P-256 key sign with SHA-384 (RFC 5246 §7.4.1.4.1)."""
        client_context, server_context = self.contexts(
            "ecdsa-p256",
            client={"signature_schemes": [SignatureScheme.ecdsa_secp384r1_sha384]},
        )
        _, _, events, _ = self.connect(client_context, server_context)
        self.assertEqual(len(of_type(events, HandshakeCompleted)), 1)

    def test_server_picks_certificate_for_suite(self) -> None:
        """With an RSA and an ECDSA certificate the client's suites decide."""
        rsa = self.pki.server("example.com", key_type="rsa-2048")
        ecdsa = self.pki.server("example.com", key_type="ecdsa-p256")
        server_context = Context(
            credentials=[rsa.credential(), ecdsa.credential()], max_version=TLS12
        )
        for suites, leaf in ((RSA_SUITES, rsa), (ECDSA_SUITES, ecdsa)):
            client_context = Context(
                trust_roots=self.pki.trust_roots,
                max_version=TLS12,
                cipher_suites=list(suites),
            )
            client, _, _, _ = self.connect(client_context, server_context)
            self.assertEqual(client.peer_certificates[0], leaf.der)

    def test_sni_selects_certificate(self) -> None:
        first = self.pki.server("one.example")
        second = self.pki.server("two.example", key_type="rsa-2048")
        server_context = Context(
            credentials=[first.credential(), second.credential()], max_version=TLS12
        )
        client_context = Context(trust_roots=self.pki.trust_roots, max_version=TLS12)
        for name, leaf in (("one.example", first), ("two.example", second)):
            client = Connection(client_context, is_client=True, server_name=name)
            server = Connection(server_context, is_client=False)
            client.start()
            pump(client, server)
            self.assertEqual(client.peer_certificates[0], leaf.der)
            self.assertEqual(server.server_name, name)

    def test_server_preference_of_suites(self) -> None:
        client_context, server_context = self.contexts(
            client={"cipher_suites": list(ECDSA_SUITES)},
            server={"cipher_suites": list(reversed(ECDSA_SUITES))},
        )
        client, _, _, _ = self.connect(client_context, server_context)
        self.assertEqual(client.cipher_suite, ECDSA_SUITES[-1])

    def test_no_common_suite(self) -> None:
        client_context, server_context = self.contexts(
            client={"cipher_suites": [ECDSA_SUITES[0]]},
            server={"cipher_suites": [ECDSA_SUITES[1]]},
        )
        client, _, error = self.fail_handshake(client_context, server_context)
        self.assertEqual(error.alert, A.handshake_failure)
        self.assertEqual(client.error.alert, A.handshake_failure)

    def test_suite_without_certificate(self) -> None:
        """Only ECDHE_RSA offered, only an ECDSA certificate: no handshake."""
        client_context, server_context = self.contexts(
            "ecdsa-p256", client={"cipher_suites": list(RSA_SUITES)}
        )
        _, _, error = self.fail_handshake(client_context, server_context)
        self.assertEqual(error.alert, A.handshake_failure)

    def test_no_common_group(self) -> None:
        client_context, server_context = self.contexts(
            client={"groups": [NamedGroup.x25519]},
            server={"groups": [NamedGroup.secp384r1]},
        )
        _, _, error = self.fail_handshake(client_context, server_context)
        self.assertEqual(error.alert, A.handshake_failure)

    def test_hybrid_group_is_not_used_in_tls12(self) -> None:
        client_context, server_context = self.contexts(
            client={"groups": [NamedGroup.X25519MLKEM768, NamedGroup.secp256r1]}
        )
        client, _, _, _ = self.connect(client_context, server_context)
        self.assertEqual(client.group, NamedGroup.secp256r1)

    def test_wrong_host_name(self) -> None:
        client_context, server_context = self.contexts()
        client = Connection(client_context, is_client=True, server_name="other.example")
        server = Connection(server_context, is_client=False)
        client.start()
        with self.assertRaises(TLSError) as caught:
            pump(client, server)
        self.assertEqual(caught.exception.alert, A.bad_certificate)
        with self.assertRaises(RemoteAlertError):
            server.receive_data(client.data_to_send())

    def test_untrusted_root(self) -> None:
        _, server_context = self.contexts()
        stranger = CertificateFactory(self.mktemp())
        client_context = Context(trust_roots=stranger.trust_roots, max_version=TLS12)
        _, server, error = self.fail_handshake(client_context, server_context)
        self.assertEqual(error.alert, A.unknown_ca)
        self.assertEqual(server.error.alert, A.unknown_ca)

    def test_insecure_skip_verify(self) -> None:
        _, server_context = self.contexts()
        client_context = Context(insecure_skip_verify=True, max_version=TLS12)
        client = Connection(client_context, is_client=True, server_name="wrong.name")
        server = Connection(server_context, is_client=False)
        client.start()
        events, _ = pump(client, server)
        [done] = of_type(events, HandshakeCompleted)
        self.assertFalse(done.verified)

    def test_version_negotiation_picks_tls12(self) -> None:
        """A 1.3-capable client and a 1.2-only server settle on TLS 1.2."""
        client_context, server_context = self.contexts(
            client_max=ProtocolVersion.TLS_1_3
        )
        client, _, events, _ = self.connect(client_context, server_context)
        self.assertEqual(of_type(events, HandshakeCompleted)[0].version, TLS12)
        self.assertTrue(issubclass(client.handshake_state.machine, TLS12Client))

    def test_downgrade_sentinel_written(self) -> None:
        """A 1.3-capable server talking 1.2 marks its random (RFC 8446 §4.1.3)."""
        client_context, server_context = self.contexts(
            server_max=ProtocolVersion.TLS_1_3
        )
        client, server, _, _ = self.connect(client_context, server_context)
        self.assertEqual(
            server.handshake_state.server_random[-8:], messages.DOWNGRADE_TLS12
        )
        self.assertTalks(client, server)
        # A 1.2-only server does not.
        client, server, _, _ = self.connect(*self.contexts())
        self.assertNotEqual(
            server.handshake_state.server_random[-8:], messages.DOWNGRADE_TLS12
        )

    def test_downgrade_detected(self) -> None:
        """A man in the middle strips TLS 1.3 from the ClientHello: the client,
        which offered 1.3, sees the sentinel and aborts."""
        client_context, server_context = self.contexts(
            client_max=ProtocolVersion.TLS_1_3, server_max=ProtocolVersion.TLS_1_3
        )
        client = Connection(client_context, is_client=True, server_name="example.com")
        server = Connection(server_context, is_client=False)
        client.start()
        wire = client.data_to_send()
        raw = wire[5:]
        hello = messages.ClientHello.parse(raw[4:])
        downgraded = dataclasses.replace(
            hello,
            supported_versions=None,
            key_share=None,
            extension_order=[],
            cipher_suites=[s for s in hello.cipher_suites if s > 0x1303],
        )
        server.receive_data(
            _plain(ContentType.handshake, messages.encode_handshake(downgraded))
        )
        with self.assertRaises(TLSError) as caught:
            client.receive_data(server.data_to_send())
        self.assertEqual(caught.exception.alert, A.illegal_parameter)

    def test_writes_before_handshake(self) -> None:
        client_context, server_context = self.contexts()
        client = Connection(client_context, is_client=True, server_name="example.com")
        server = Connection(server_context, is_client=False)
        client.start()
        client.send(b"early ")
        client.send(b"bird")
        client.close()
        _, server_events = pump(client, server)
        self.assertEqual(data_of(server_events), b"early bird")

    def test_bulk_both_ways(self) -> None:
        for suite in (ECDSA_SUITES[0], ECDSA_SUITES[2]):
            client_context, server_context = self.contexts(
                client={"cipher_suites": [suite]}
            )
            client, server, _, _ = self.connect(client_context, server_context)
            payload = bytes(range(256)) * 1024
            client.send(payload)
            server.send(payload[::-1])
            client_events, server_events = pump(client, server)
            self.assertEqual(data_of(server_events), payload)
            self.assertEqual(data_of(client_events), payload[::-1])

    def test_no_key_update(self) -> None:
        client, _, _, _ = self.connect(*self.contexts())
        with self.assertRaises(TLSError):
            client.key_update(True)

    def test_exporter_contexts_differ(self) -> None:
        """RFC 5705 §4: no context and an empty context are different inputs."""
        client, _server, _, _ = self.connect(*self.contexts())
        self.assertNotEqual(
            client.export_keying_material(b"EXPERIMENTAL t", b"", 16),
            client.export_keying_material(b"EXPERIMENTAL t", None, 16),
        )
        with self.assertRaises(TLSError):
            client.export_keying_material(b"master secret", b"", 16)


# -- client certificates ---------------------------------------------------------------


class ClientCertificateTests(TLS12TestsMixin, SynchronousTestCase):
    def mtls(self, policy: ClientCertificatePolicy, client_key: str | None) -> Any:
        server = {"client_certificate": policy, "trust_roots": self.pki.trust_roots}
        client: dict[str, Any] = {}
        leaf = None
        if client_key is not None:
            leaf = self.pki.client("alice", key_type=client_key)
            client["credentials"] = [leaf.credential()]
        return leaf, self.contexts(server=server, client=client)

    def test_mutual_tls_each_key_type(self) -> None:
        for key_type in ("rsa-2048", "ecdsa-p256", "ecdsa-p384", "ed25519"):
            leaf, contexts = self.mtls(ClientCertificatePolicy.REQUIRE, key_type)
            client, server, _, server_events = self.connect(*contexts)
            [done] = of_type(server_events, HandshakeCompleted)
            self.assertTrue(done.verified, key_type)
            self.assertEqual(done.peer_certificates[0], leaf.der)
            self.assertEqual(server.peer_certificates[0], leaf.der)
            self.assertTalks(client, server)

    def test_required_but_missing(self) -> None:
        _, contexts = self.mtls(ClientCertificatePolicy.REQUIRE, None)
        client, _, error = self.fail_handshake(*contexts)
        self.assertEqual(error.alert, A.handshake_failure)
        self.assertEqual(client.error.alert, A.handshake_failure)

    def test_requested_and_missing(self) -> None:
        _, contexts = self.mtls(ClientCertificatePolicy.REQUEST, None)
        _, _server, _, server_events = self.connect(*contexts)
        [done] = of_type(server_events, HandshakeCompleted)
        self.assertEqual(done.peer_certificates, ())
        self.assertFalse(done.verified)

    def test_client_certificate_from_unknown_ca(self) -> None:
        stranger = CertificateFactory(self.mktemp()).client("mallory")
        client_context, server_context = self.contexts(
            server={
                "client_certificate": ClientCertificatePolicy.REQUIRE,
                "trust_roots": self.pki.trust_roots,
            },
            client={"credentials": [stranger.credential()]},
        )
        client, _, error = self.fail_handshake(client_context, server_context)
        self.assertEqual(error.alert, A.unknown_ca)
        self.assertEqual(client.error.alert, A.unknown_ca)

    def test_client_key_that_cannot_sign_what_server_asks(self) -> None:
        """The server asks only for ECDSA signatures; an RSA client key then
        sends an empty Certificate, which REQUEST accepts."""
        leaf = self.pki.client("alice", key_type="rsa-2048")
        client_context, server_context = self.contexts(
            server={
                "client_certificate": ClientCertificatePolicy.REQUEST,
                "trust_roots": self.pki.trust_roots,
                "signature_schemes": [SignatureScheme.ecdsa_secp256r1_sha256],
            },
            client={"credentials": [leaf.credential()]},
        )
        _, _, _, server_events = self.connect(client_context, server_context)
        self.assertEqual(
            of_type(server_events, HandshakeCompleted)[0].peer_certificates, ()
        )


# -- ALPN and NPN ----------------------------------------------------------------------


class ApplicationProtocolTests(TLS12TestsMixin, SynchronousTestCase):
    def test_alpn_server_preference(self) -> None:
        client_context, server_context = self.contexts(
            client={"alpn_protocols": [b"http/1.1", b"h2"]},
            server={"alpn_protocols": [b"h2", b"http/1.1"]},
        )
        client, server, events, _ = self.connect(client_context, server_context)
        self.assertEqual(client.alpn_protocol, b"h2")
        self.assertEqual(server.alpn_protocol, b"h2")
        self.assertEqual(of_type(events, HandshakeCompleted)[0].alpn_protocol, b"h2")

    def test_alpn_no_overlap(self) -> None:
        client_context, server_context = self.contexts(
            client={"alpn_protocols": [b"http/1.1"]},
            server={"alpn_protocols": [b"h2"]},
        )
        client, _, error = self.fail_handshake(client_context, server_context)
        self.assertEqual(error.alert, A.no_application_protocol)
        self.assertEqual(client.error.alert, A.no_application_protocol)

    def test_npn_selection_rule(self) -> None:
        """Client picks its first protocol the server lists, else its own first."""
        cases = [
            ([b"c", b"b"], [b"a", b"b", b"c"], b"c"),
            ([b"x", b"b"], [b"a", b"b"], b"b"),
            ([b"x", b"y"], [b"a", b"b"], b"x"),
            ([b"spdy/3"], [b"spdy/3"], b"spdy/3"),
        ]
        for client_protocols, server_protocols, expected in cases:
            client_context, server_context = self.contexts(
                client={"npn_protocols": client_protocols},
                server={"npn_protocols": server_protocols},
            )
            client, server, client_events, server_events = self.connect(
                client_context, server_context
            )
            self.assertEqual(client.next_protocol, expected)
            self.assertEqual(server.next_protocol, expected)
            for events in (client_events, server_events):
                [done] = of_type(events, HandshakeCompleted)
                self.assertEqual(done.next_protocol, expected)
                self.assertIsNone(done.alpn_protocol)
            self.assertTalks(client, server)

    def test_npn_with_client_certificate_and_every_suite_hash(self) -> None:
        """NextProtocol sits between CCS and Finished also after CertificateVerify."""
        leaf = self.pki.client("alice", key_type="ecdsa-p384")
        for suite in ECDSA_SUITES:
            client_context, server_context = self.contexts(
                client={
                    "npn_protocols": [b"p"],
                    "credentials": [leaf.credential()],
                    "cipher_suites": [suite],
                },
                server={
                    "npn_protocols": [b"p"],
                    "client_certificate": ClientCertificatePolicy.REQUIRE,
                    "trust_roots": self.pki.trust_roots,
                },
            )
            client, server, _, _ = self.connect(client_context, server_context)
            self.assertEqual(server.next_protocol, b"p")
            self.assertTalks(client, server)

    def test_npn_server_without_protocols(self) -> None:
        client_context, server_context = self.contexts(client={"npn_protocols": [b"a"]})
        client, server, _, _ = self.connect(client_context, server_context)
        self.assertIsNone(client.next_protocol)
        self.assertIsNone(server.next_protocol)

    def test_npn_client_without_protocols(self) -> None:
        client_context, server_context = self.contexts(server={"npn_protocols": [b"a"]})
        client, server, _, _ = self.connect(client_context, server_context)
        self.assertIsNone(client.next_protocol)
        self.assertIsNone(server.next_protocol)

    def test_alpn_wins_over_npn(self) -> None:
        client_context, server_context = self.contexts(
            client={"npn_protocols": [b"npn"], "alpn_protocols": [b"alpn"]},
            server={"npn_protocols": [b"npn"], "alpn_protocols": [b"alpn"]},
        )
        client, server, _, _ = self.connect(client_context, server_context)
        self.assertEqual(client.alpn_protocol, b"alpn")
        self.assertIsNone(client.next_protocol)
        self.assertIsNone(server.next_protocol)

    def test_npn_when_alpn_not_shared_by_server(self) -> None:
        """The client offers both; a server with NPN only answers NPN."""
        client_context, server_context = self.contexts(
            client={"npn_protocols": [b"npn"], "alpn_protocols": [b"alpn"]},
            server={"npn_protocols": [b"npn"]},
        )
        client, server, _, _ = self.connect(client_context, server_context)
        self.assertIsNone(client.alpn_protocol)
        self.assertEqual(client.next_protocol, b"npn")
        self.assertEqual(server.next_protocol, b"npn")

    def test_npn_not_in_tls13(self) -> None:
        client_context, server_context = self.contexts(
            client={"npn_protocols": [b"a"]},
            server={"npn_protocols": [b"a"]},
            client_max=ProtocolVersion.TLS_1_3,
            server_max=ProtocolVersion.TLS_1_3,
        )
        client, server, _, _ = self.connect(client_context, server_context)
        self.assertEqual(client.version, ProtocolVersion.TLS_1_3)
        self.assertIsNone(client.next_protocol)
        self.assertIsNone(server.next_protocol)


# -- extended master secret ------------------------------------------------------------


class _NoEMSClient(ClientNegotiator):
    """A client whose ClientHello does not offer the extended master secret."""

    def _build_client_hello(self) -> messages.ClientHello:
        return dataclasses.replace(
            super()._build_client_hello(), extended_master_secret=False
        )


class _NoEMSConnection(Connection):
    client_negotiator_class = _NoEMSClient


class _NoEMSServer(TLS12Server):
    """A server that never answers the extended master secret."""

    def receive_client_hello(self, raw: bytes, hello: messages.ClientHello) -> None:
        super().receive_client_hello(
            raw, dataclasses.replace(hello, extended_master_secret=False)
        )


class _NoEMSServerConnection(Connection):
    tls12_server_class = _NoEMSServer


class ExtendedMasterSecretTests(TLS12TestsMixin, SynchronousTestCase):
    def test_on_by_default(self) -> None:
        client, server, _, _ = self.connect(*self.contexts())
        self.assertTrue(client.handshake_state.extended_master_secret)
        self.assertTrue(server.handshake_state.extended_master_secret)

    def test_client_without_ems(self) -> None:
        """A full handshake still works; the session is not resumable."""
        client_context, server_context = self.contexts()
        client = _NoEMSConnection(
            client_context, is_client=True, server_name="example.com"
        )
        server = Connection(server_context, is_client=False)
        client.start()
        pump(client, server)
        self.assertFalse(client.handshake_state.extended_master_secret)
        self.assertFalse(server.handshake_state.extended_master_secret)
        self.assertIsNone(client.session)
        self.assertIsNone(server.session)
        self.assertTalks(client, server)

    def test_server_without_ems(self) -> None:
        client_context, server_context = self.contexts()
        client = Connection(client_context, is_client=True, server_name="example.com")
        server = _NoEMSServerConnection(server_context, is_client=False)
        client.start()
        pump(client, server)
        self.assertIs(server.handshake_state.machine, _NoEMSServer)
        self.assertFalse(client.handshake_state.extended_master_secret)
        self.assertIsNone(client.session)
        self.assertTalks(client, server)


# -- record size limit (RFC 8449) ------------------------------------------------------

#: AES-128-GCM in TLS 1.2: 5 header + 8 explicit nonce + 16 tag bytes a record.
GCM12_OVERHEAD = 5 + 8 + 16
GCM12_SUITE = [CS.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256]


def _largest_plaintext(records: list[bytes]) -> int:
    """The largest TLS 1.2 AES-GCM record's plaintext among ``records``."""
    return max(len(r) for r in records) - GCM12_OVERHEAD


class _ServerHelloRewriter(TLS12Server):
    """A TLS 1.2 server whose ServerHello the test rewrites (``rewrite``)."""

    rewrite: ClassVar[Callable[[messages.ServerHello], messages.ServerHello]]

    def _send(self, message: messages.HandshakeMessage) -> bytes:
        if isinstance(message, messages.ServerHello):
            message = type(self).rewrite(message)
        return super()._send(message)


def _server_hello_connection(
    rewrite: Callable[[messages.ServerHello], messages.ServerHello],
) -> type[Connection]:
    server_class = type("Server", (_ServerHelloRewriter,), {"rewrite": rewrite})
    return type("ServerConnection", (Connection,), {"tls12_server_class": server_class})


class _NoLimitRenegotiationClient(TLS12Client):
    """A client whose renegotiation ClientHello drops record_size_limit."""

    def _build_renegotiation_hello(
        self, client_verify_data: bytes
    ) -> messages.ClientHello:
        return dataclasses.replace(
            super()._build_renegotiation_hello(client_verify_data),
            record_size_limit=None,
        )


class _NoLimitRenegotiationConnection(Connection):
    tls12_client_class = _NoLimitRenegotiationClient


class RecordSizeLimitTests(TLS12TestsMixin, SynchronousTestCase):
    """RFC 8449 in TLS 1.2: the limit counts plaintext only (no type byte),
    is answered in the ServerHello and applies to records protected under
    the keys of the handshake that negotiated it."""

    def limited_pair(
        self,
        client_limit: int | None,
        server_limit: int | None,
        server_class: type[Connection] = Connection,
        client_class: type[Connection] = Connection,
        client_max: ProtocolVersion = TLS12,
        **options: Any,
    ) -> tuple[Connection, Connection, list[bytes]]:
        """A connected pair; the third value is the handshake's records,
        client's first then server's first flight, and so on."""
        client_context, server_context = self.contexts(
            client={
                "record_size_limit": client_limit,
                "cipher_suites": GCM12_SUITE,
                **options,
            },
            server={
                "record_size_limit": server_limit,
                "cipher_suites": GCM12_SUITE,
                **options,
            },
            client_max=client_max,
        )
        client = client_class(client_context, is_client=True, server_name="example.com")
        server = server_class(server_context, is_client=False)
        client.start()
        flights: list[bytes] = []
        for _ in range(10):
            to_server = client.data_to_send()
            if to_server:
                flights.append(to_server)
                server.receive_data(to_server)
            to_client = server.data_to_send()
            if to_client:
                flights.append(to_client)
                client.receive_data(to_client)
            if not to_server and not to_client:
                break
        self.assertIs(client.state, ConnectionState.CONNECTED)
        self.assertIs(server.state, ConnectionState.CONNECTED)
        return client, server, flights

    def server_hello(self, flights: list[bytes]) -> messages.ServerHello:
        payload = _records(flights[1])[0][5:]
        self.assertEqual(payload[0], H.server_hello)
        length = int.from_bytes(payload[1:4], "big")
        return messages.ServerHello.parse(payload[4 : 4 + length])

    def client_hello(self, flights: list[bytes]) -> messages.ClientHello:
        payload = _records(flights[0])[0][5:]
        length = int.from_bytes(payload[1:4], "big")
        return messages.ClientHello.parse(payload[4 : 4 + length])

    def writes(self, sender: Connection, receiver: Connection, size: int) -> int:
        """Send ``size`` bytes; deliver them; the largest record's plaintext."""
        sender.send(b"x" * size)
        records = sender.pending_output()
        events = receiver.receive_data(b"".join(records))
        self.assertEqual(data_of(events), b"x" * size)
        return _largest_plaintext(records)

    def test_both_limits(self) -> None:
        """Each side's records fit the other's limit, exactly (no type byte)."""
        client, server, flights = self.limited_pair(512, 1024)
        self.assertEqual(self.client_hello(flights).record_size_limit, 512)
        self.assertEqual(self.server_hello(flights).record_size_limit, 1024)
        self.assertEqual(self.writes(server, client, 5000), 512)
        self.assertEqual(self.writes(client, server, 5000), 1024)
        self.assertTalks(client, server)

    def test_smallest_limit(self) -> None:
        client, server, _ = self.limited_pair(64, 64)
        self.assertEqual(self.writes(server, client, 1000), 64)
        self.assertEqual(self.writes(client, server, 1000), 64)

    def test_client_limit_only(self) -> None:
        """A server without a limit of its own still honours the client's
        (RFC 8449 §4 lets it send any size; smaller is always allowed) and
        does not answer: the client's records stay at 2^14."""
        client, server, flights = self.limited_pair(512, None)
        self.assertIsNone(self.server_hello(flights).record_size_limit)
        self.assertEqual(self.writes(server, client, 5000), 512)
        self.assertEqual(self.writes(client, server, 40000), 16384)

    def test_server_limit_only(self) -> None:
        """Without the client's extension the server says nothing and
        neither side limits the other."""
        client, server, flights = self.limited_pair(None, 512)
        self.assertIsNone(self.client_hello(flights).record_size_limit)
        self.assertIsNone(self.server_hello(flights).record_size_limit)
        self.assertEqual(self.writes(server, client, 40000), 16384)
        self.assertEqual(self.writes(client, server, 40000), 16384)

    def test_values_above_tls12_maximum_are_capped(self) -> None:
        """RFC 8449 §4: 2^14 is TLS 1.2's largest value; a TLS 1.2 server
        sends no more, and a TLS 1.2-only client offers no more."""
        client, server, flights = self.limited_pair(16385, 16385)
        self.assertEqual(self.client_hello(flights).record_size_limit, 16384)
        self.assertEqual(self.server_hello(flights).record_size_limit, 16384)
        self.assertEqual(self.writes(server, client, 40000), 16384)

    def test_tls13_capable_client_offers_its_value(self) -> None:
        """A client offering TLS 1.3 too sends 2^14+1; the TLS 1.2 server
        does not refuse it (RFC 8449 §4) and caps it to 2^14."""
        client, server, flights = self.limited_pair(
            16385, 1000, client_max=ProtocolVersion.TLS_1_3
        )
        self.assertEqual(client.version, TLS12)  # the server speaks TLS 1.2 only
        self.assertEqual(self.client_hello(flights).record_size_limit, 16385)
        self.assertEqual(self.server_hello(flights).record_size_limit, 1000)
        self.assertEqual(self.writes(server, client, 40000), 16384)
        self.assertEqual(self.writes(client, server, 5000), 1000)

    def test_limits_apply_to_handshake_records(self) -> None:
        """Protected handshake records (a renegotiation) fit the limit too."""
        client, server, _ = self.limited_pair(64, 64, allow_peer_renegotiation=True)
        client.renegotiate()
        for _ in range(10):
            to_server = client.data_to_send()
            if to_server:
                self.assertLessEqual(_largest_plaintext(_records(to_server)), 64)
                server.receive_data(to_server)
            to_client = server.data_to_send()
            if to_client:
                self.assertLessEqual(_largest_plaintext(_records(to_client)), 64)
                client.receive_data(to_client)
            if not to_server and not to_client:
                break
        self.assertIs(client._handshake.state, State.CONNECTED)
        self.assertEqual(self.writes(server, client, 1000), 64)
        self.assertEqual(self.writes(client, server, 1000), 64)

    def test_renegotiation_settles_the_limit_again(self) -> None:
        """RFC 8449 §4: a renegotiation negotiates the limit afresh and its
        result applies from the new keys on; until the ChangeCipherSpec the
        old limits hold."""
        client, server, _ = self.limited_pair(
            512,
            1024,
            client_class=_NoLimitRenegotiationConnection,
            allow_peer_renegotiation=True,
        )
        client.renegotiate()
        server.receive_data(client.data_to_send())  # ClientHello without it
        # The server's flight goes out under the old keys: still 512.
        server.send(b"y" * 5000)
        flight = server.data_to_send()
        self.assertEqual(_largest_plaintext(_records(flight)), 512)
        client.receive_data(flight)
        pump(client, server)
        self.assertIs(client._handshake.state, State.CONNECTED)
        self.assertIs(server._handshake.state, State.CONNECTED)
        self.assertEqual(self.writes(server, client, 40000), 16384)
        self.assertEqual(self.writes(client, server, 40000), 16384)

    def test_renegotiation_keeps_the_limit(self) -> None:
        """Our renegotiation ClientHello offers the limit again."""
        client, server, _ = self.limited_pair(512, 1024, allow_peer_renegotiation=True)
        for initiator in (client, server):
            initiator.renegotiate()
            client_events, server_events = pump(client, server)
            self.assertEqual(len(of_type(client_events, HandshakeCompleted)), 1)
            self.assertEqual(len(of_type(server_events, HandshakeCompleted)), 1)
            self.assertEqual(self.writes(server, client, 5000), 512)
            self.assertEqual(self.writes(client, server, 5000), 1024)

    def test_resumption_negotiates_the_limit(self) -> None:
        client, server, _ = self.limited_pair(512, 1024)
        session = client.session
        self.assertIsNotNone(session)
        client2 = Connection(
            client._context, is_client=True, server_name="example.com", session=session
        )
        server2 = Connection(server._context, is_client=False)
        client2.start()
        pump(client2, server2)
        self.assertTrue(client2._handshake.resumed)
        self.assertEqual(self.writes(server2, client2, 5000), 512)
        self.assertEqual(self.writes(client2, server2, 5000), 1024)

    def overflow(self, sender: Connection, receiver: Connection, size: int) -> None:
        """A peer that ignores our limit gets record_overflow."""
        sender._records.write_limit = size
        sender.send(b"z" * size)
        with self.assertRaises(RecordOverflowError) as caught:
            receiver.receive_data(sender.data_to_send())
        self.assertEqual(caught.exception.alert, A.record_overflow)
        alert = _records(receiver.data_to_send())
        self.assertEqual(len(alert), 1)

    def test_client_enforces_its_limit(self) -> None:
        client, server, _ = self.limited_pair(512, 1024)
        self.assertEqual(self.writes(server, client, 512), 512)
        self.overflow(server, client, 513)

    def test_server_enforces_its_limit(self) -> None:
        client, server, _ = self.limited_pair(512, 1024)
        self.assertEqual(self.writes(client, server, 1024), 1024)
        self.overflow(client, server, 1025)

    def test_client_limit_not_enforced_unless_acknowledged(self) -> None:
        """RFC 8449 §4: without the server's answer nothing was negotiated,
        so the client accepts full-size records (its limit is a wish)."""
        client, server, _ = self.limited_pair(512, None)
        server._records.write_limit = 16384
        self.assertEqual(self.writes(server, client, 16384), 16384)

    def test_server_limit_not_enforced_unless_answered(self) -> None:
        client, server, _ = self.limited_pair(None, 512)
        self.assertEqual(self.writes(client, server, 16384), 16384)

    # -- hostile ServerHellos ----------------------------------------------------

    def hostile_server_hello(self, client_limit: int | None, value: bytes) -> TLSError:
        def rewrite(hello: messages.ServerHello) -> messages.ServerHello:
            return dataclasses.replace(
                hello,
                record_size_limit=None,
                other_extensions=[(28, value)],  # record_size_limit
            )

        client_context, server_context = self.contexts(
            client={"record_size_limit": client_limit},
        )
        client = Connection(client_context, is_client=True, server_name="example.com")
        server = _server_hello_connection(rewrite)(server_context, is_client=False)
        client.start()
        server.receive_data(client.data_to_send())
        with self.assertRaises(TLSError) as caught:
            client.receive_data(server.data_to_send())
        self.assertIsNotNone(client.error)
        return caught.exception

    def test_server_hello_limit_below_64(self) -> None:
        """RFC 8449 §4: a value below 64 is an illegal_parameter."""
        for value in (0, 1, 63):
            error = self.hostile_server_hello(512, value.to_bytes(2, "big"))
            self.assertEqual(error.alert, A.illegal_parameter, value)

    def test_server_hello_limit_malformed(self) -> None:
        for value in (b"", b"\x01", b"\x01\x00\x00"):
            error = self.hostile_server_hello(512, value)
            self.assertEqual(error.alert, A.decode_error, value)

    def test_server_hello_limit_not_offered(self) -> None:
        """RFC 5246 §7.4.1.4: an extension we did not offer is refused."""
        error = self.hostile_server_hello(None, b"\x02\x00")
        self.assertIsInstance(error, UnsupportedExtensionError)
        self.assertEqual(error.alert, A.unsupported_extension)

    def test_server_hello_limit_accepted_when_offered(self) -> None:
        """The same crafted extension, offered, works and sets the limit."""

        def rewrite(hello: messages.ServerHello) -> messages.ServerHello:
            return dataclasses.replace(hello, record_size_limit=200)

        client, server, _ = self.limited_pair(
            512, None, server_class=_server_hello_connection(rewrite)
        )
        # The client keeps to 200 and now enforces its own 512.
        self.assertEqual(self.writes(client, server, 1000), 200)
        self.overflow(server, client, 513)

    def test_tls13_server_hello_may_not_carry_it(self) -> None:
        """RFC 8449 §4: TLS 1.3 servers answer in EncryptedExtensions."""
        with self.assertRaises(IllegalParameterError):
            messages.ServerHello.parse(
                messages.ServerHello(
                    random=bytes(32),
                    cipher_suite=CS.TLS_AES_128_GCM_SHA256,
                    supported_versions=ProtocolVersion.TLS_1_3,
                    key_share=messages.KeyShareEntry(
                        group=NamedGroup.x25519, key_exchange=bytes(32)
                    ),
                    record_size_limit=512,
                ).serialize()
            )


# -- renegotiation ---------------------------------------------------------------------


class _NoRFC5746Client(ClientNegotiator):
    """A client from before RFC 5746: neither the SCSV nor renegotiation_info."""

    def _build_client_hello(self) -> messages.ClientHello:
        hello = super()._build_client_hello()
        return dataclasses.replace(
            hello,
            cipher_suites=[
                suite
                for suite in hello.cipher_suites
                if suite != CipherSuite.TLS_EMPTY_RENEGOTIATION_INFO_SCSV
            ],
            renegotiation_info=None,
        )


class _NoRFC5746Connection(Connection):
    client_negotiator_class = _NoRFC5746Client


class _WrongRenegotiationInfoClient(TLS12Client):
    """A client whose renegotiation ClientHello carries the wrong
    verify_data in renegotiation_info (RFC 5746 §3.5)."""

    def _build_renegotiation_hello(
        self, client_verify_data: bytes
    ) -> messages.ClientHello:
        return super()._build_renegotiation_hello(bytes(len(client_verify_data)))


class _WrongRenegotiationInfoServer(TLS12Server):
    """A server whose renegotiation ServerHello carries the wrong
    verify_data in renegotiation_info (RFC 5746 §3.6)."""

    def _send(self, message: messages.HandshakeMessage) -> bytes:
        if isinstance(message, messages.ServerHello) and message.renegotiation_info:
            message = dataclasses.replace(message, renegotiation_info=bytes(24))
        return super()._send(message)


class _WrongRenegotiationInfoConnection(Connection):
    tls12_client_class = _WrongRenegotiationInfoClient
    tls12_server_class = _WrongRenegotiationInfoServer


class RenegotiationTests(TLS12TestsMixin, SynchronousTestCase):
    def renegotiating_pair(
        self, *, client_allows: bool = True, server_allows: bool = True, **kw: Any
    ) -> tuple[Connection, Connection]:
        client_context, server_context = self.contexts(
            client={"allow_peer_renegotiation": client_allows, **kw.get("client", {})},
            server={"allow_peer_renegotiation": server_allows, **kw.get("server", {})},
        )
        client, server, _, _ = self.connect(client_context, server_context)
        return client, server

    def check_renegotiation(self, initiator: str) -> None:
        client, server = self.renegotiating_pair(
            client={"npn_protocols": [b"p"]}, server={"npn_protocols": [b"p"]}
        )
        first_keys = client.export_keying_material(b"EXPERIMENTAL r", b"", 16)
        client.send(b"c-before ")
        server.send(b"s-before ")
        (client if initiator == "client" else server).renegotiate()
        client.send(b"c-during ")
        server.send(b"s-during ")
        # Interleave more data with each flight of the new handshake.
        client_events: list[Event] = []
        server_events: list[Event] = []
        for step in itertools.count():
            to_server = client.data_to_send()
            if to_server:
                server_events += server.receive_data(to_server)
                if step < 6:
                    server.send(b"s%d " % step)
            to_client = server.data_to_send()
            if to_client:
                client_events += client.receive_data(to_client)
                if step < 6:
                    client.send(b"c%d " % step)
            if not to_server and not to_client:
                break
            self.assertLess(step, 20)
        client.send(b"c-after")
        server.send(b"s-after")
        more_client, more_server = pump(client, server)
        client_events += more_client
        server_events += more_server
        for events in (client_events, server_events):
            [done] = of_type(events, HandshakeCompleted)
            self.assertEqual(done.version, TLS12)
            self.assertEqual(done.next_protocol, b"p")
        client_data = data_of(server_events)
        server_data = data_of(client_events)
        self.assertTrue(client_data.startswith(b"c-before c-during "), client_data)
        self.assertTrue(client_data.endswith(b"c-after"), client_data)
        self.assertTrue(server_data.startswith(b"s-before s-during "), server_data)
        self.assertTrue(server_data.endswith(b"s-after"), server_data)
        # Numbered chunks arrive in order, none lost.
        for data, prefix in ((client_data, b"c"), (server_data, b"s")):
            numbers = [int(w[1:]) for w in data.split() if w[1:].isdigit()]
            self.assertEqual(numbers, sorted(numbers))
            self.assertEqual(numbers, list(range(len(numbers))))
            self.assertTrue(all(w.startswith(prefix) for w in data.split()))
        self.assertNotEqual(
            client.export_keying_material(b"EXPERIMENTAL r", b"", 16), first_keys
        )
        self.assertEqual(
            client.export_keying_material(b"EXPERIMENTAL r", b"", 16),
            server.export_keying_material(b"EXPERIMENTAL r", b"", 16),
        )
        self.assertEqual(client.next_protocol, b"p")
        self.assertTalks(client, server)

    def test_client_initiated(self) -> None:
        self.check_renegotiation("client")

    def test_server_initiated(self) -> None:
        self.check_renegotiation("server")

    def test_repeated(self) -> None:
        client, server = self.renegotiating_pair()
        for round_ in range(3):
            (client if round_ % 2 else server).renegotiate()
            client_events, server_events = pump(client, server)
            self.assertEqual(len(of_type(client_events, HandshakeCompleted)), 1)
            self.assertEqual(len(of_type(server_events, HandshakeCompleted)), 1)
        self.assertTalks(client, server)

    def check_ticket_in_renegotiation(self, initiator: str) -> None:
        """Issue 9.15: the renegotiation asks for and gets a ticket again.

        The client's renegotiation ClientHello carries an empty
        session_ticket (its first one did), the server answers with a
        NewSessionTicket sealing the renegotiated master secret and the
        connection's ALPN protocol, and the client reads it and keeps the
        session of the first handshake.
        """
        # The master secrets as the key log sees them (NSS format, one
        # CLIENT_RANDOM line per handshake): no reaching into the server.
        keylog: list[str] = []
        client_context, server_context = self.contexts(
            client={"allow_peer_renegotiation": True, "alpn_protocols": [b"h2"]},
            server={
                "allow_peer_renegotiation": True,
                "alpn_protocols": [b"h2"],
                "keylog": keylog.append,
            },
        )
        client = Recorder(client_context, is_client=True, server_name="example.com")
        server = Recorder(server_context, is_client=False)
        client.start()
        first_events, _ = pump(client, server)
        session = client.session
        self.assertIsNotNone(session)
        self.assertTrue(session.ticket)
        [first_line] = keylog
        first_secret = bytes.fromhex(first_line.split()[2])
        client.units.clear()
        server.units.clear()
        (client if initiator == "client" else server).renegotiate()
        client_events, server_events = pump(client, server)
        for events in (client_events, server_events):
            self.assertEqual(len(of_type(events, HandshakeCompleted)), 1)
        [hello] = [
            messages.ClientHello.parse(raw[4:])
            for kind, _, raw in client.units
            if kind == "hs" and raw[0] == H.client_hello
        ]
        self.assertEqual(hello.session_ticket, b"")
        self.assertEqual(hello.legacy_session_id, b"")
        [ticket] = [
            messages.NewSessionTicket12.parse(raw[4:])
            for kind, _, raw in server.units
            if kind == "hs" and raw[0] == H.new_session_ticket
        ]
        assert server_context.session_tickets is not None
        state = server_context.session_tickets.open_state(ticket.ticket, version=TLS12)
        assert state is not None
        [_, second_line] = keylog
        self.assertEqual(
            second_line.split()[1], server.handshake_state.client_random.hex()
        )
        self.assertEqual(state.secret, bytes.fromhex(second_line.split()[2]))
        self.assertNotEqual(state.secret, first_secret)
        self.assertEqual(state.alpn_protocol, b"h2")
        # The client's session is still the first handshake's.
        self.assertEqual(of_type(client_events, SessionTicket), [])
        self.assertIs(client.session, session)
        self.assertEqual(len(of_type(first_events, SessionTicket)), 1)
        self.assertEqual(client.alpn_protocol, b"h2")
        self.assertTalks(client, server)

    def test_ticket_in_client_initiated_renegotiation(self) -> None:
        self.check_ticket_in_renegotiation("client")

    def test_ticket_in_server_initiated_renegotiation(self) -> None:
        self.check_ticket_in_renegotiation("server")

    def test_no_ticket_in_renegotiation_without_tickets(self) -> None:
        """A server without tickets issues none in a renegotiation either."""
        client, server = self.renegotiating_pair(server={"session_tickets": False})
        client.renegotiate()
        client_events, _ = pump(client, server)
        self.assertEqual(len(of_type(client_events, HandshakeCompleted)), 1)
        self.assertTalks(client, server)

    def test_renegotiation_adds_client_certificate(self) -> None:
        """The classic use: the server asks for a certificate later on."""
        leaf = self.pki.client("alice")
        client_context = make_context(
            trust_roots=self.pki.trust_roots,
            max_version=TLS12,
            credentials=[leaf.credential()],
            allow_peer_renegotiation=True,
        )
        plain_server = make_context(
            credentials=[self.leaf("ecdsa-p256").credential()], max_version=TLS12
        )
        # A server that, renegotiating, asks for a certificate (as an
        # application would by reconfiguring its server).
        later = make_context(
            credentials=[self.leaf("ecdsa-p256").credential()],
            max_version=TLS12,
            client_certificate=ClientCertificatePolicy.REQUIRE,
            trust_roots=self.pki.trust_roots,
        )

        class Reconfigured(TLS12Server):
            def renegotiate(self) -> None:
                self._context = later
                super().renegotiate()

        class ReconfiguredConnection(Connection):
            tls12_server_class = Reconfigured

        client = Connection(client_context, is_client=True, server_name="example.com")
        server = ReconfiguredConnection(plain_server, is_client=False)
        client.start()
        pump(client, server)
        self.assertEqual(server.peer_certificates, ())
        server.renegotiate()
        _, server_events = pump(client, server)
        [done] = of_type(server_events, HandshakeCompleted)
        self.assertEqual(done.peer_certificates[0], leaf.der)
        self.assertEqual(server.peer_certificates[0], leaf.der)

    def test_client_refuses_hello_request(self) -> None:
        client, server = self.renegotiating_pair(client_allows=False)
        server.renegotiate()
        client_events, server_events = pump(client, server)
        self.assertEqual(
            of_type(server_events, AlertReceived),
            [AlertReceived(AlertLevel.warning, A.no_renegotiation)],
        )
        self.assertEqual(of_type(client_events, HandshakeCompleted), [])
        self.assertTalks(client, server)
        # The server may ask again later.
        server.renegotiate()
        _, server_events = pump(client, server)
        self.assertEqual(len(of_type(server_events, AlertReceived)), 1)

    def test_server_refuses_client_renegotiation(self) -> None:
        client, server = self.renegotiating_pair(server_allows=False)
        client.renegotiate()
        client.send(b"still here")
        client_events, server_events = pump(client, server)
        self.assertEqual(
            of_type(client_events, AlertReceived),
            [AlertReceived(AlertLevel.warning, A.no_renegotiation)],
        )
        self.assertEqual(data_of(server_events), b"still here")
        self.assertIs(client.handshake_state.state, State.CONNECTED)
        self.assertTalks(client, server)

    def test_refused_by_default(self) -> None:
        client_context, server_context = self.contexts()
        self.assertFalse(server_context.allow_peer_renegotiation)
        client, server, _, _ = self.connect(client_context, server_context)
        client.renegotiate()
        client_events, _ = pump(client, server)
        self.assertEqual(len(of_type(client_events, AlertReceived)), 1)

    def test_no_renegotiation_without_rfc5746(self) -> None:
        """A peer that did not signal RFC 5746 is never renegotiated with."""
        client_context, server_context = self.contexts(
            client={"allow_peer_renegotiation": True},
            server={"allow_peer_renegotiation": True},
        )
        _client = _NoRFC5746Connection(
            client_context, is_client=True, server_name="example.com"
        )
        server = Connection(server_context, is_client=False)
        _client.start()
        pump(_client, server)
        self.assertFalse(server.handshake_state.secure_renegotiation)
        with self.assertRaises(ValueError):
            server.renegotiate()
        # Refusing is not fatal: the connection goes on.
        server.send(b"still fine")
        client_events, _ = pump(_client, server)
        self.assertEqual(data_of(client_events), b"still fine")

    def test_wrong_renegotiation_info(self) -> None:
        """RFC 5746 §3.7: a renegotiation ClientHello must carry our last
        client verify_data; anything else is a handshake_failure."""
        client_context, server_context = self.contexts(
            client={"allow_peer_renegotiation": True},
            server={"allow_peer_renegotiation": True},
        )
        client = _WrongRenegotiationInfoConnection(
            client_context, is_client=True, server_name="example.com"
        )
        server = Connection(server_context, is_client=False)
        client.start()
        pump(client, server)
        client.renegotiate()
        with self.assertRaises(TLSError) as caught:
            pump(client, server)
        self.assertEqual(caught.exception.alert, A.handshake_failure)

    def test_wrong_renegotiation_info_from_server(self) -> None:
        client_context, server_context = self.contexts(
            client={"allow_peer_renegotiation": True},
            server={"allow_peer_renegotiation": True},
        )
        client = Connection(client_context, is_client=True, server_name="example.com")
        server = _WrongRenegotiationInfoConnection(server_context, is_client=False)
        client.start()
        pump(client, server)
        client.renegotiate()
        with self.assertRaises(TLSError) as caught:
            pump(client, server)
        self.assertEqual(caught.exception.alert, A.handshake_failure)
        self.assertIs(client.state, ConnectionState.FAILED)

    def test_hello_request_ignored_mid_handshake(self) -> None:
        """RFC 5246 §7.4.1.1: a HelloRequest during a handshake is ignored."""
        client_context, server_context = self.contexts(
            client={"allow_peer_renegotiation": True}
        )
        client = Connection(client_context, is_client=True, server_name="example.com")
        server = Connection(server_context, is_client=False)
        client.start()
        server.receive_data(client.data_to_send())
        hello_request = _plain(
            ContentType.handshake, messages.encode_handshake(messages.HelloRequest())
        )
        client.receive_data(server.data_to_send() + hello_request)
        client_flight = client.data_to_send()
        # The flight is the usual one: no new ClientHello, no alert.
        self.assertEqual(
            [r[0] for r in _records(client_flight)],
            [
                ContentType.handshake,
                ContentType.change_cipher_spec,
                ContentType.handshake,
            ],
        )
        server.receive_data(client_flight)
        client_events, _ = pump(client, server)
        self.assertEqual(len(of_type(client_events, HandshakeCompleted)), 1)
        self.assertTrue(client.handshake_complete)

    def test_renegotiate_on_tls13_is_a_key_update(self) -> None:
        client_context, server_context = self.contexts(
            client_max=ProtocolVersion.TLS_1_3, server_max=ProtocolVersion.TLS_1_3
        )
        client, server, _, _ = self.connect(client_context, server_context)
        client.renegotiate()
        self.assertTalks(client, server)


# -- hostile input ---------------------------------------------------------------------


def _plain(content_type: int, payload: bytes) -> bytes:
    return bytes((content_type, 3, 3)) + len(payload).to_bytes(2, "big") + payload


def _records(wire: bytes) -> list[bytes]:
    out = []
    while wire:
        end = 5 + int.from_bytes(wire[3:5], "big")
        out.append(wire[:end])
        wire = wire[end:]
    return out


class Recorder(Connection):
    """A Connection that keeps each handshake message and CCS it writes, in
    order, with a copy of the write protection it goes out under."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        #: (kind, epoch, payload): kind is "hs" or "ccs"; epoch counts the
        #: write protections installed before it (0: plaintext).
        self.units: list[tuple[str, int, bytes]] = []
        self.protections: list[RecordProtection] = []
        super().__init__(*args, **kwargs)

    def write_handshake(self, raw: bytes) -> None:
        self.units.append(("hs", len(self.protections), raw))
        super().write_handshake(raw)

    def write_change_cipher_spec(self) -> None:
        self.units.append(("ccs", len(self.protections), b"\x01"))
        super().write_change_cipher_spec()

    def set_write_protection(self, protection: Any) -> None:
        self.protections.append(copy.copy(protection))
        super().set_write_protection(protection)


@dataclasses.dataclass(frozen=True)
class Config:
    victim_is_client: bool
    key_type: str = "ecdsa-p256"
    suite: CipherSuite = ECDSA_SUITES[0]
    mtls: bool = False
    npn: bool = False


CONFIGS = (
    Config(True),
    Config(False),
    Config(True, "rsa-2048", RSA_SUITES[2], mtls=True, npn=True),
    Config(False, "rsa-2048", RSA_SUITES[1], mtls=True, npn=True),
    Config(True, "ecdsa-p384", ECDSA_SUITES[1], npn=True),
    Config(False, "ecdsa-p384", ECDSA_SUITES[2], mtls=True),
)


class Stage:
    """A victim stopped after ``cursor`` units of its live peer's flights."""

    def __init__(self, config: Config, client: Recorder, server: Recorder) -> None:
        self.config = config
        self.victim, self.peer = (
            (client, server) if config.victim_is_client else (server, client)
        )
        self.cursor = 0
        self._sequences: dict[int, int] = {}

    def __repr__(self) -> str:
        return f"<Stage {self.config} cursor={self.cursor} {self.victim_state}>"

    @property
    def victim_state(self) -> Any:
        return self.victim.handshake_state.state

    def seal(self, content_type: int, payload: bytes, epoch: int) -> bytes:
        if epoch == 0:
            return _plain(content_type, payload)
        sealer = copy.copy(self.peer.protections[epoch - 1])
        sealer.sequence = self._sequences.get(epoch, 0)
        self._sequences[epoch] = sealer.sequence + 1
        return sealer.seal(content_type, payload)

    def frame(self, kind: str, epoch: int, payload: bytes) -> bytes:
        content_type = (
            ContentType.handshake if kind == "hs" else ContentType.change_cipher_spec
        )
        return self.seal(content_type, payload, epoch)

    @property
    def read_epoch(self) -> int:
        """The peer write epoch the victim reads at the cursor."""
        if self.cursor < len(self.peer.units):
            return self.peer.units[self.cursor][1]
        return len(self.peer.protections)

    def flush(self) -> None:
        out = self.victim.data_to_send()
        if out:
            self.peer.receive_data(out)
        self.peer.data_to_send()

    def deliver_next(self) -> None:
        kind, epoch, payload = self.peer.units[self.cursor]
        self.cursor += 1
        self.victim.receive_data(self.frame(kind, epoch, payload))
        self.flush()

    def attack(self, wire: bytes) -> TLSError | None:
        try:
            self.victim.receive_data(wire)
        except TLSError as error:
            return error
        return None


class HostileTests(TLS12TestsMixin, SynchronousTestCase):
    """Whatever a peer sends, the victim fails with the right alert."""

    def build(self, config: Config, cursor: int) -> Stage:
        client_leaf = self.pki.client("alice", key_type=config.key_type)
        npn = {"npn_protocols": [b"p"]} if config.npn else {}
        server_options: dict[str, Any] = {**npn}
        client_options: dict[str, Any] = {"cipher_suites": [config.suite], **npn}
        if config.mtls:
            server_options["client_certificate"] = ClientCertificatePolicy.REQUIRE
            server_options["trust_roots"] = self.pki.trust_roots
            client_options["credentials"] = [client_leaf.credential()]
        client_context, server_context = self.contexts(
            config.key_type, server=server_options, client=client_options
        )
        client = Recorder(client_context, is_client=True, server_name="example.com")
        server = Recorder(server_context, is_client=False)
        stage = Stage(config, client, server)
        client.start()
        if config.victim_is_client:
            server.receive_data(client.data_to_send())
            server.data_to_send()
        while stage.cursor < cursor:
            stage.deliver_next()
        return stage

    def stages(self, config: Config) -> Iterator[Stage]:
        """A stage at every cursor position of an honest run of ``config``."""
        honest = self.build(config, 0)
        while honest.cursor < len(honest.peer.units):
            honest.deliver_next()
        self.assertTrue(honest.victim.handshake_complete, config)
        total = len(honest.peer.units)
        for cursor in range(total):
            yield self.build(config, cursor)

    def check_failure(
        self, stage: Stage, error: TLSError | None, allowed: set[AlertDescription]
    ) -> None:
        self.assertIsNotNone(error, f"{stage}: hostile input accepted")
        assert error is not None
        if isinstance(error, InternalError):
            self.fail(f"{stage}: {error!r} caused by {error.__cause__!r}")
        self.assertNotIsInstance(error, RemoteAlertError)
        self.assertIn(error.alert, allowed, f"{stage}: {error}")
        self.assertIs(stage.victim.state, ConnectionState.FAILED)
        last = _records(stage.victim.data_to_send())[-1]
        self.assertEqual(last[0], ContentType.alert, f"{stage}: no alert queued")
        if len(last) == 7:
            self.assertEqual(last[5:], bytes((AlertLevel.fatal, error.alert)))
        self.assertRaises(ConnectionClosedError, stage.victim.receive_data, b"\x16")

    def test_out_of_order_messages(self) -> None:
        """In every state, each message of another state (or a CCS where none
        belongs) is an unexpected_message."""
        checked = 0
        for config in CONFIGS:
            for stage in self.stages(config):
                units = stage.peer.units
                expected_kind, epoch, expected = units[stage.cursor]
                # The machine's class-level dispatch table: every message each
                # state accepts (engine/handshake.py), read from the class.
                machine = stage.victim.handshake_state.machine
                handlers = (
                    machine._handlers[stage.victim_state]
                    if hasattr(machine, "_handlers")
                    else {H.client_hello: None}  # the server's version selector
                )
                candidates = {
                    (kind, payload[:1]): (kind, payload)
                    for kind, _, payload in units
                    if kind != expected_kind or payload[:1] != expected[:1]
                }
                for kind, payload in candidates.values():
                    if kind == "hs" and (
                        payload[0] in handlers or payload[0] == H.hello_request
                    ):
                        continue
                    victim = self.build(config, stage.cursor)
                    error = victim.attack(victim.frame(kind, epoch, payload))
                    self.check_failure(victim, error, {A.unexpected_message})
                    checked += 1
        self.assertGreater(checked, 40)

    def test_finished_without_ccs(self) -> None:
        for config in CONFIGS:
            stage = self.build(config, 0)
            while stage.cursor < len(stage.peer.units):
                kind, _epoch, _payload = stage.peer.units[stage.cursor]
                if kind == "ccs":
                    finished = stage.peer.units[stage.cursor + 1]
                    if finished[2][0] == H.next_protocol:
                        finished = stage.peer.units[stage.cursor + 2]
                    # Finished in plaintext where the CCS should be.
                    error = stage.attack(_plain(ContentType.handshake, finished[2]))
                    self.check_failure(stage, error, {A.unexpected_message})
                    break
                stage.deliver_next()
            else:
                self.fail(f"{config}: no CCS in the peer's flights")

    def test_bad_ccs_payload(self) -> None:
        stage = self.build(CONFIGS[0], 0)
        while stage.peer.units[stage.cursor][0] != "ccs":
            stage.deliver_next()
        error = stage.attack(_plain(ContentType.change_cipher_spec, b"\x02"))
        self.check_failure(stage, error, {A.unexpected_message})

    def test_ccs_after_handshake(self) -> None:
        client, server, _, _ = self.connect(*self.contexts())
        for victim in (client, server):
            with self.assertRaises(TLSError) as caught:
                victim.receive_data(_plain(ContentType.change_cipher_spec, b"\x01"))
            self.assertIn(
                caught.exception.alert, {A.unexpected_message, A.bad_record_mac}
            )

    def test_protected_ccs_after_handshake(self) -> None:
        """A CCS under the current keys outside a renegotiation."""
        client, server = (
            Recorder(c, is_client=i, **({"server_name": "example.com"} if i else {}))
            for c, i in zip(self.contexts(), (True, False), strict=True)
        )
        client.start()
        pump(client, server)
        sealer = copy.copy(client.protections[-1])
        sealer.sequence = client.handshake_state.write_sequence
        with self.assertRaises(TLSError) as caught:
            server.receive_data(sealer.seal(ContentType.change_cipher_spec, b"\x01"))
        self.assertEqual(caught.exception.alert, A.unexpected_message)

    def test_wrong_finished(self) -> None:
        for config in CONFIGS[:2]:
            stage = self.build(config, 0)
            while True:
                kind, epoch, payload = stage.peer.units[stage.cursor]
                if kind == "hs" and payload[0] == H.finished:
                    break
                stage.deliver_next()
            bad = payload[:-1] + bytes([payload[-1] ^ 1])
            error = stage.attack(stage.frame("hs", epoch, bad))
            self.check_failure(stage, error, {A.decrypt_error})
            stage = self.build(config, stage.cursor)
            short = messages.encode_handshake(messages.Finished(verify_data=bytes(11)))
            error = stage.attack(stage.frame("hs", epoch, short))
            self.check_failure(stage, error, {A.decode_error})

    def test_unoffered_npn(self) -> None:
        """NextProtocol where NPN was not negotiated."""
        stage = self.build(Config(False), 0)
        while stage.peer.units[stage.cursor][0] != "ccs":
            stage.deliver_next()
        stage.deliver_next()  # the CCS
        epoch = stage.read_epoch
        message = messages.encode_handshake(messages.NextProtocol(b"p"))
        error = stage.attack(stage.frame("hs", epoch, message))
        self.check_failure(stage, error, {A.unexpected_message})

    @settings(
        max_examples=120,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(data=st.data())
    def test_mutated_messages(self, data: st.DataObject) -> None:
        """Any mutation of any message: a proper alert or (rarely) acceptance."""
        config = data.draw(st.sampled_from(CONFIGS))
        cursor = data.draw(st.integers(0, 30))
        stage = self.build(config, 0)
        while stage.cursor < min(cursor, len(stage.peer.units) - 1):
            stage.deliver_next()
        kind, epoch, payload = stage.peer.units[stage.cursor]
        mutate = data.draw(st.sampled_from(MUTATIONS))
        mutated = mutate(payload, data)
        if mutated == payload:
            return
        error = stage.attack(stage.frame(kind, epoch, mutated))
        if error is None:
            return  # e.g. a flipped bit in a random: later checks catch it
        self.check_failure(stage, error, HOSTILE_ALERTS)

    @settings(max_examples=60, deadline=None)
    @given(data=st.data(), noise=st.binary(min_size=1, max_size=300))
    def test_random_records(self, data: st.DataObject, noise: bytes) -> None:
        """Random handshake bytes in every state."""
        config = data.draw(st.sampled_from(CONFIGS[:2]))
        cursor = data.draw(st.integers(0, 12))
        stage = self.build(config, 0)
        while stage.cursor < min(cursor, len(stage.peer.units) - 1):
            stage.deliver_next()
        content_type = data.draw(
            st.sampled_from([ContentType.handshake, ContentType.change_cipher_spec])
        )
        error = stage.attack(stage.seal(content_type, noise, stage.read_epoch))
        if error is not None:
            self.check_failure(stage, error, HOSTILE_ALERTS)


def _flip(payload: bytes, data: st.DataObject) -> bytes:
    i = data.draw(st.integers(0, 2**20)) % len(payload)
    bit = 1 << data.draw(st.integers(0, 7))
    return payload[:i] + bytes([payload[i] ^ bit]) + payload[i + 1 :]


def _truncate(payload: bytes, data: st.DataObject) -> bytes:
    keep = 4 + data.draw(st.integers(0, 2**20)) % max(1, len(payload) - 4)
    body = payload[4:keep]
    return payload[:1] + len(body).to_bytes(3, "big") + body


def _extend(payload: bytes, data: st.DataObject) -> bytes:
    body = payload[4:] + data.draw(st.binary(min_size=1, max_size=40))
    return payload[:1] + len(body).to_bytes(3, "big") + body


def _retype(payload: bytes, data: st.DataObject) -> bytes:
    return bytes([data.draw(st.integers(0, 255))]) + payload[1:]


def _overwrite(payload: bytes, data: st.DataObject) -> bytes:
    if len(payload) <= 4:
        return payload + b"\x00"
    i = 4 + data.draw(st.integers(0, 2**20)) % (len(payload) - 4)
    chunk = data.draw(st.binary(min_size=1, max_size=8))
    return payload[:i] + chunk + payload[i + len(chunk) :]


def _bad_length(payload: bytes, data: st.DataObject) -> bytes:
    length = data.draw(st.integers(0, 2**24 - 1))
    return payload[:1] + length.to_bytes(3, "big") + payload[4:]


MUTATIONS: tuple[Callable[[bytes, st.DataObject], bytes], ...] = (
    _flip,
    _truncate,
    _extend,
    _retype,
    _overwrite,
    _bad_length,
)

#: Alerts a mutated message may legitimately cause; never internal_error.
HOSTILE_ALERTS = {
    A.unexpected_message,
    A.bad_record_mac,
    A.record_overflow,
    A.handshake_failure,
    A.bad_certificate,
    A.unsupported_certificate,
    A.certificate_expired,
    A.certificate_unknown,
    A.illegal_parameter,
    A.unknown_ca,
    A.decode_error,
    A.decrypt_error,
    A.protocol_version,
    A.unsupported_extension,
    A.no_application_protocol,
    A.missing_extension,
}


class DeterminismTests(SynchronousTestCase):
    """The engine draws randomness only from the Context (DESIGN.md)."""

    def test_client_hello_replays(self) -> None:
        def hello() -> bytes:
            rng = random.Random(7)
            context = Context(
                insecure_skip_verify=True, max_version=TLS12, random=rng.randbytes
            )
            client = Connection(context, is_client=True, server_name="example.com")
            client.start()
            return client.data_to_send()

        self.assertEqual(hello(), hello())


# -- resumption ----------------------------------------------------------------------


def _client_connection(
    context: Context, session: Any = None, connection_class: type = Connection
) -> Connection:
    """A client Connection offering ``session`` (a sessions.Session)."""
    return connection_class(
        context, is_client=True, server_name="example.com", session=session
    )


class ResumptionTests(TLS12TestsMixin, SynchronousTestCase):
    def run_pair(
        self, client_context: Context, server_context: Context, session: Any = None
    ) -> tuple[Connection, Connection, list[Event], list[Event]]:
        client = _client_connection(client_context, session)
        server = Connection(server_context, is_client=False)
        client.start()
        client_events, server_events = pump(client, server)
        return client, server, client_events, server_events

    def first_and_second(
        self, server: dict | None = None, client: dict | None = None
    ) -> tuple[list[Event], list[Event], Connection, Connection]:
        client_context, server_context = self.contexts(server=server, client=client)
        first, _, first_events, _ = self.run_pair(client_context, server_context)
        session = first.session
        self.assertIsNotNone(session)
        self.assertEqual(of_type(first_events, SessionTicket)[0].session, session)
        client, server_conn, client_events, server_events = self.run_pair(
            client_context, server_context, session
        )
        return client_events, server_events, client, server_conn

    def test_ticket_resumption(self) -> None:
        client_events, server_events, client, server = self.first_and_second()
        for events in (client_events, server_events):
            [done] = of_type(events, HandshakeCompleted)
            self.assertTrue(done.resumed)
            self.assertEqual(done.version, TLS12)
        [client_done] = of_type(client_events, HandshakeCompleted)
        self.assertTrue(client_done.verified)
        self.assertEqual(client_done.peer_certificates[0], self.leaf("ecdsa-p256").der)
        # RFC 5077 §3.1: the ticket is renewed on resumption.
        [renewed] = of_type(client_events, SessionTicket)
        self.assertTrue(renewed.session.ticket)
        self.assertIs(client.session, renewed.session)
        self.assertTalks(client, server)

    def test_session_id_resumption(self) -> None:
        client_events, server_events, client, server = self.first_and_second(
            server={"session_tickets": False}
        )
        self.assertTrue(of_type(client_events, HandshakeCompleted)[0].resumed)
        self.assertTrue(of_type(server_events, HandshakeCompleted)[0].resumed)
        self.assertEqual(of_type(client_events, SessionTicket), [])
        self.assertTalks(client, server)

    def test_no_tickets_no_cache(self) -> None:
        client_context, server_context = self.contexts(
            server={"session_tickets": False, "session_cache": False}
        )
        client, _, events, _ = self.run_pair(client_context, server_context)
        self.assertIsNone(client.session)
        self.assertEqual(of_type(events, SessionTicket), [])

    def test_npn_and_alpn_again_on_resumption(self) -> None:
        protocols = {"npn_protocols": [b"p"]}
        client_events, _server_events, client, server = self.first_and_second(
            server=protocols, client=protocols
        )
        self.assertTrue(of_type(client_events, HandshakeCompleted)[0].resumed)
        self.assertEqual(client.next_protocol, b"p")
        self.assertEqual(server.next_protocol, b"p")
        client_events, _, client, _ = self.first_and_second(
            server={"alpn_protocols": [b"h2"]}, client={"alpn_protocols": [b"h2"]}
        )
        self.assertTrue(of_type(client_events, HandshakeCompleted)[0].resumed)
        self.assertEqual(client.alpn_protocol, b"h2")

    def test_client_certificate_kept(self) -> None:
        leaf = self.pki.client("alice")
        _, server_events, _, _server = self.first_and_second(
            server={
                "client_certificate": ClientCertificatePolicy.REQUIRE,
                "trust_roots": self.pki.trust_roots,
            },
            client={"credentials": [leaf.credential()]},
        )
        [done] = of_type(server_events, HandshakeCompleted)
        self.assertTrue(done.resumed)
        self.assertEqual(done.peer_certificates[0], leaf.der)
        self.assertTrue(done.verified)

    def test_no_resumption_without_ems(self) -> None:
        """RFC 7627 §5.3: a session without EMS is never resumable."""
        client_context, server_context = self.contexts()
        client = _client_connection(client_context, None, _NoEMSConnection)
        server = Connection(server_context, is_client=False)
        client.start()
        events, _ = pump(client, server)
        self.assertIsNone(client.session)
        self.assertEqual(of_type(events, SessionTicket), [])
        self.assertEqual(len(server_context.session_cache), 0)

    def test_hello_without_ems_gets_full_handshake(self) -> None:
        """A ClientHello without EMS offering an EMS session: full handshake."""
        client_context, server_context = self.contexts()
        first, _, _, _ = self.run_pair(client_context, server_context)
        client = _client_connection(client_context, first.session, _NoEMSConnection)
        server = Connection(server_context, is_client=False)
        client.start()
        events, _ = pump(client, server)
        self.assertFalse(of_type(events, HandshakeCompleted)[0].resumed)

    def test_expired_and_tampered_tickets(self) -> None:
        now = [time.time()]
        client_context, server_context = self.contexts(
            server={"clock": lambda: now[0], "session_cache": False},
            client={"clock": lambda: now[0]},
        )
        first, _, _, _ = self.run_pair(client_context, server_context)
        session = first.session
        tampered = dataclasses.replace(
            session, ticket=session.ticket[:-1] + bytes([session.ticket[-1] ^ 1])
        )
        _, _, events, _ = self.run_pair(client_context, server_context, tampered)
        self.assertFalse(of_type(events, HandshakeCompleted)[0].resumed)
        now[0] += server_context.session_lifetime + 1
        # Offered (the client's session clock says it is young) but expired.
        young = dataclasses.replace(session, created_at=now[0])
        _, _, events, _ = self.run_pair(client_context, server_context, young)
        self.assertFalse(of_type(events, HandshakeCompleted)[0].resumed)

    def test_server_echoing_unknown_session_id(self) -> None:
        """The client offered no 1.2 session: an echoed ID is illegal."""
        client_context, server_context = self.contexts(
            client_max=ProtocolVersion.TLS_1_3
        )
        client = Connection(client_context, is_client=True, server_name="example.com")
        server = Connection(server_context, is_client=False)
        client.start()
        wire = client.data_to_send()
        hello = messages.ClientHello.parse(wire[9:])
        server.receive_data(wire)
        records = _records(server.data_to_send())
        raw = records[0][5:]
        length = int.from_bytes(raw[1:4], "big")
        server_hello = messages.ServerHello.parse(raw[4 : 4 + length])
        echoed = dataclasses.replace(
            server_hello, legacy_session_id_echo=hello.legacy_session_id
        )
        forged = messages.encode_handshake(echoed) + raw[4 + length :]
        with self.assertRaises(TLSError) as caught:
            client.receive_data(_plain(ContentType.handshake, forged))
        self.assertEqual(caught.exception.alert, A.illegal_parameter)


def _handshake_messages(wire: bytes) -> list[tuple[int, bytes]]:
    """(type, body) of the plaintext handshake messages at the start of
    ``wire``, up to the first ChangeCipherSpec record."""
    out = []
    buffer = b""
    for record in _records(wire):
        if record[0] != ContentType.handshake:
            break
        buffer += record[5:]
    while buffer:
        length = int.from_bytes(buffer[1:4], "big")
        out.append((buffer[0], buffer[4 : 4 + length]))
        buffer = buffer[4 + length :]
    return out


class RFC5077ResumptionTests(TLS12TestsMixin, SynchronousTestCase):
    """Issue 9.14: tickets and session IDs as RFC 5077 §3 and RFC 5246
    §7.4.1.2 have them, whatever session ID the client sends."""

    run_pair = ResumptionTests.run_pair

    def first_session(self, **server: Any) -> tuple[Context, Context, Any]:
        client_context, server_context = self.contexts(server=server)
        first, _, _, _ = self.run_pair(client_context, server_context)
        self.assertIsNotNone(first.session)
        return client_context, server_context, first.session

    def server_answer(
        self,
        client_context: Context,
        server_context: Context,
        session: Any,
        **changes: Any,
    ) -> tuple[messages.ClientHello, list[tuple[int, bytes]]]:
        """Our client's hello offering ``session``, changed by ``changes``
        (fields of ClientHello), and the server's plaintext answer."""
        client = _client_connection(client_context, session)
        client.start()
        wire = client.data_to_send()
        hello = dataclasses.replace(messages.ClientHello.parse(wire[9:]), **changes)
        server = Connection(server_context, is_client=False)
        server.receive_data(
            _plain(ContentType.handshake, messages.encode_handshake(hello))
        )
        return hello, _handshake_messages(server.data_to_send())

    def assertAbbreviated(
        self, answer: list[tuple[int, bytes]], echo: bytes, ticket: bool = True
    ) -> None:
        """ServerHello echoing ``echo`` then (with ``ticket``) a
        NewSessionTicket: an abbreviated handshake (RFC 5077 §3.1)."""
        expected = [H.server_hello, *([H.new_session_ticket] if ticket else [])]
        self.assertEqual([t for t, _ in answer], expected)
        server_hello = messages.ServerHello.parse(answer[0][1])
        self.assertEqual(server_hello.legacy_session_id_echo, echo)
        self.assertEqual(server_hello.session_ticket, ticket)

    def test_ticket_with_empty_session_id(self) -> None:
        """§3.4: the client may send no session ID with its ticket; the
        resumption is then told by the messages that follow, and the
        ServerHello's session ID is empty."""
        client_context, server_context, session = self.first_session()
        _, answer = self.server_answer(
            client_context, server_context, session, legacy_session_id=b""
        )
        self.assertAbbreviated(answer, echo=b"")

    def test_ticket_with_random_session_id(self) -> None:
        """§3.4: a session ID the client made up is echoed when the ticket
        is accepted (whatever its length), and never looked up."""
        client_context, server_context, session = self.first_session()
        for length in (1, 16, 32):
            made_up = bytes(range(length))
            _, answer = self.server_answer(
                client_context, server_context, session, legacy_session_id=made_up
            )
            self.assertAbbreviated(answer, echo=made_up)

    def test_bad_ticket_never_falls_back_to_the_session_id(self) -> None:
        """§3.4: "If a ticket is presented by the client, the server MUST NOT
        attempt to use the Session ID in the ClientHello for stateful
        session resumption" - even when the ticket does not open and the ID
        is in our cache."""
        client_context, server_context, session = self.first_session()
        self.assertTrue(session.ticket and session.session_id)
        assert server_context.session_cache is not None
        self.assertIsNotNone(server_context.session_cache.get(session.session_id))
        spoiled = dataclasses.replace(
            session, ticket=session.ticket[:-1] + bytes([session.ticket[-1] ^ 1])
        )
        _, _, events, _ = self.run_pair(client_context, server_context, spoiled)
        [done] = of_type(events, HandshakeCompleted)
        self.assertFalse(done.resumed)
        # The full handshake issued a fresh ticket (the extension was sent).
        self.assertEqual(len(of_type(events, SessionTicket)), 1)

    def test_session_id_resumption_issues_a_ticket(self) -> None:
        """§3.2: resuming by session ID, a client that sends an empty
        session_ticket extension asks for a ticket and gets one."""
        client_context, server_context, session = self.first_session()
        without_ticket = dataclasses.replace(session, ticket=b"")
        _, answer = self.server_answer(client_context, server_context, without_ticket)
        self.assertAbbreviated(answer, echo=session.session_id)
        _, _, events, _ = self.run_pair(client_context, server_context, without_ticket)
        self.assertTrue(of_type(events, HandshakeCompleted)[0].resumed)
        [renewed] = of_type(events, SessionTicket)
        self.assertTrue(renewed.session.ticket)
        self.assertEqual(renewed.session.master_secret, session.master_secret)
        # And that ticket resumes in turn.
        _, _, events, _ = self.run_pair(client_context, server_context, renewed.session)
        self.assertTrue(of_type(events, HandshakeCompleted)[0].resumed)

    def test_session_id_resumption_without_the_extension(self) -> None:
        """No session_ticket extension at all: resumed, and no ticket."""
        client_context, server_context, session = self.first_session()
        _, answer = self.server_answer(
            client_context,
            server_context,
            dataclasses.replace(session, ticket=b""),
            session_ticket=None,
        )
        self.assertAbbreviated(answer, echo=session.session_id, ticket=False)

    def test_full_handshake_with_random_session_id_issues_a_ticket(self) -> None:
        """A first ClientHello with a random session ID (TLS 1.3 middlebox
        compatibility) and an empty ticket extension gets a full handshake,
        a ticket and a session ID of ours, not the client's."""
        client_context, server_context = self.contexts(
            client_max=ProtocolVersion.TLS_1_3
        )
        client = _client_connection(client_context)
        client.start()
        wire = client.data_to_send()
        hello = messages.ClientHello.parse(wire[9:])
        self.assertEqual(len(hello.legacy_session_id), 32)
        self.assertEqual(hello.session_ticket, b"")
        server = Connection(server_context, is_client=False)
        server.receive_data(wire)
        answer = _handshake_messages(server.data_to_send())
        self.assertEqual(answer[0][0], H.server_hello)
        server_hello = messages.ServerHello.parse(answer[0][1])
        self.assertTrue(server_hello.session_ticket)
        self.assertEqual(len(server_hello.legacy_session_id_echo), 32)
        self.assertNotEqual(
            server_hello.legacy_session_id_echo, hello.legacy_session_id
        )
        self.assertIn(H.certificate, [t for t, _ in answer])

    def check_suite_not_offered(self, **server: Any) -> None:
        client_context, server_context, session = self.first_session(**server)
        client = _client_connection(client_context, session)
        client.start()
        hello = messages.ClientHello.parse(client.data_to_send()[9:])
        others = [s for s in hello.cipher_suites if s != session.cipher_suite]
        self.assertTrue(others)
        forged = dataclasses.replace(hello, cipher_suites=others)
        server_conn = Connection(server_context, is_client=False)
        with self.assertRaises(TLSError) as caught:
            server_conn.receive_data(
                _plain(ContentType.handshake, messages.encode_handshake(forged))
            )
        self.assertEqual(caught.exception.alert, A.illegal_parameter)
        self.assertIn("without offering it", str(caught.exception))

    def test_ticket_resumption_without_its_suite(self) -> None:
        """RFC 5246 §7.4.1.2: the ClientHello MUST offer the session's suite;
        a ticket resumption that does not is refused with illegal_parameter."""
        self.check_suite_not_offered()

    def test_session_id_resumption_without_its_suite(self) -> None:
        self.check_suite_not_offered(session_tickets=False)

    def test_suite_we_no_longer_allow_is_a_full_handshake(self) -> None:
        """The server's own policy changed: not the client's fault, so a
        full handshake with another suite."""
        client_context, server_context, session = self.first_session()
        other = [s for s in server_context.cipher_suites if s != session.cipher_suite]
        narrowed = server_context.replace(cipher_suites=other)
        _, _, events, _ = self.run_pair(client_context, narrowed, session)
        [done] = of_type(events, HandshakeCompleted)
        self.assertFalse(done.resumed)
        self.assertNotEqual(done.cipher_suite, session.cipher_suite)

    def test_client_refuses_resumption_with_another_suite(self) -> None:
        """Our client: a server resuming our session must keep its suite
        (RFC 5246 §7.4.1.3); the session claims another one here."""
        client_context, server_context, session = self.first_session()
        other = next(
            s
            for s in client_context.cipher_suites
            if s != session.cipher_suite and s in ECDSA_SUITES
        )
        claimed = dataclasses.replace(session, cipher_suite=other)
        with self.assertRaises(TLSError) as caught:
            self.run_pair(client_context, server_context, claimed)
        self.assertEqual(caught.exception.alert, A.illegal_parameter)
        self.assertIn("another cipher suite", str(caught.exception))
