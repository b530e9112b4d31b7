"""The engine against itself, in memory: every handshake path and rule.

Interop with other implementations lives in ``test_interop_*``; these tests
pin down behaviour that is easiest to observe with both ends in hand: which
alert each side sends, which events come out, and that no byte is lost.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import itertools
import random
import weakref
from collections.abc import Sequence

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from tests.certs import CA, CertificateFactory
from twisted_sslfile.constants import (
    AlertDescription,
    CipherSuite,
    ClientCertificatePolicy,
    ContentType,
    ExtensionType,
    HandshakeType,
    NamedGroup,
    ProtocolVersion,
    SignatureScheme,
)
from twisted_sslfile.context import Context
from twisted_sslfile.engine.connection import (
    MAX_CLIENT_HELLO_SIZE,
    Connection,
    ConnectionState,
)
from twisted_sslfile.engine.events import (
    ApplicationData,
    CloseNotify,
    Event,
    HandshakeCompleted,
    KeyUpdated,
    SessionTicket,
)
from twisted_sslfile.engine.messages import (
    ClientHello,
    KeyShareEntry,
    ServerHello,
    encode_handshake,
)
from twisted_sslfile.engine.negotiation import ClientNegotiator
from twisted_sslfile.engine.record import RecordProtection
from twisted_sslfile.engine.sessions import ServerSessionState, Session
from twisted_sslfile.errors import (
    CertificateError,
    ConnectionClosedError,
    RemoteAlertError,
    TLSError,
)


def pump(
    client: Connection, server: Connection, limit: int = 20
) -> tuple[list[Event], list[Event]]:
    """Move bytes both ways until neither side has anything to say."""
    client_events: list[Event] = []
    server_events: list[Event] = []
    for _ in range(limit):
        to_server = client.data_to_send()
        if to_server:
            server_events += server.receive_data(to_server)
        to_client = server.data_to_send()
        if to_client:
            client_events += client.receive_data(to_client)
        if not to_server and not to_client:
            return client_events, server_events
    raise AssertionError("connections kept talking")


def of_type(events: Sequence[Event], kind: type) -> list:
    return [event for event in events if isinstance(event, kind)]


class KeyKeeper(Connection):
    """A real Connection that keeps its live write protection.

    Tests seal records under the connection's own current keys that it
    would never send itself (empty application data, a bare handshake
    header); the protection comes through the public ``set_write_protection``
    hook the state machines call, not from the record layer's insides.
    Sealing advances the same sequence numbers the connection uses.
    """

    write_protection: RecordProtection | None = None

    def set_write_protection(self, protection: RecordProtection) -> None:
        self.write_protection = protection
        super().set_write_protection(protection)

    def seal(self, content_type: int, payload: bytes) -> bytes:
        """One record of ``payload``, next in this connection's sequence."""
        assert self.write_protection is not None
        return self.write_protection.seal(content_type, payload)


class HandshakeTestsMixin:
    """Shared PKI and connection set-up."""

    def setUp(self) -> None:
        self.pki = CertificateFactory(self.mktemp())  # type: ignore[attr-defined]

    def contexts(
        self,
        key_type: str = "ecdsa-p256",
        server: dict | None = None,
        client: dict | None = None,
    ) -> tuple[Context, Context]:
        leaf = self.pki.server("example.com", key_type=key_type)
        server_context = Context(credentials=[leaf.credential()], **(server or {}))
        client_context = Context(trust_roots=self.pki.trust_roots, **(client or {}))
        return client_context, server_context

    def connect(
        self,
        client_context: Context,
        server_context: Context,
        server_name: str | None = "example.com",
        client_class: type[Connection] = Connection,
    ) -> tuple[Connection, Connection, list[Event], list[Event]]:
        client = client_class(client_context, is_client=True, server_name=server_name)
        server = Connection(server_context, is_client=False)
        client.start()
        client_events, server_events = pump(client, server)
        return client, server, client_events, server_events

    def fail_handshake(
        self, client_context: Context, server_context: Context, **kwargs: object
    ) -> tuple[Connection, Connection, TLSError]:
        """Run a handshake that must fail; return the error raised."""
        kwargs.setdefault("server_name", "example.com")
        client = Connection(client_context, is_client=True, **kwargs)  # type: ignore[arg-type]
        server = Connection(server_context, is_client=False)
        client.start()
        try:
            pump(client, server)
        except TLSError as exc:
            error = exc
        else:
            raise AssertionError("handshake succeeded")
        # Deliver the alert the failing side queued to the other side.
        for sender, receiver in ((client, server), (server, client)):
            data = sender.data_to_send()
            if data and receiver.error is None:
                with contextlib.suppress(TLSError):
                    receiver.receive_data(data)
        return client, server, error


class HandshakeTests(HandshakeTestsMixin, SynchronousTestCase):
    def test_default_handshake(self) -> None:
        """Defaults: TLS 1.3, X25519MLKEM768, verified chain, both events."""
        client, server, client_events, server_events = self.connect(*self.contexts())
        [done] = of_type(client_events, HandshakeCompleted)
        self.assertEqual(done.version, ProtocolVersion.TLS_1_3)
        self.assertEqual(done.group, NamedGroup.X25519MLKEM768)
        self.assertTrue(done.verified)
        self.assertEqual(done.server_name, "example.com")
        self.assertEqual(len(done.peer_certificates), 2)  # leaf + intermediate
        [server_done] = of_type(server_events, HandshakeCompleted)
        self.assertEqual(server_done.server_name, "example.com")
        self.assertEqual(server_done.cipher_suite, done.cipher_suite)
        self.assertEqual(server_done.peer_certificates, ())
        self.assertIs(client.state, ConnectionState.CONNECTED)
        self.assertIs(server.state, ConnectionState.CONNECTED)

    def test_every_suite_group_and_key(self) -> None:
        """Each TLS 1.3 suite with each group and each key type."""
        suites = [
            CipherSuite.TLS_AES_128_GCM_SHA256,
            CipherSuite.TLS_AES_256_GCM_SHA384,
            CipherSuite.TLS_CHACHA20_POLY1305_SHA256,
        ]
        groups = list(NamedGroup)
        key_types = ["rsa-2048", "ecdsa-p256", "ecdsa-p384", "ed25519"]
        for index, (suite, group) in enumerate((s, g) for s in suites for g in groups):
            key_type = key_types[index % len(key_types)]
            client_context, server_context = self.contexts(
                key_type,
                client={
                    "cipher_suites": [suite],
                    "min_version": ProtocolVersion.TLS_1_3,
                    "groups": [group],
                    "key_share_groups": [group],
                },
            )
            client, server, events, _ = self.connect(client_context, server_context)
            [done] = of_type(events, HandshakeCompleted)
            self.assertEqual((done.cipher_suite, done.group), (suite, group))
            client.send(b"ping %d" % index)
            _, server_events = pump(client, server)
            self.assertEqual(
                of_type(server_events, ApplicationData),
                [ApplicationData(b"ping %d" % index)],
            )

    def test_hello_retry_request(self) -> None:
        """A share the server does not accept leads to HelloRetryRequest."""
        client_context, server_context = self.contexts(
            client={"key_share_groups": [NamedGroup.x25519]},
            server={"groups": [NamedGroup.secp384r1]},
        )
        _client, _server, events, _ = self.connect(client_context, server_context)
        [done] = of_type(events, HandshakeCompleted)
        self.assertEqual(done.group, NamedGroup.secp384r1)

    def test_server_hello_after_retry_keeps_the_version(self) -> None:
        """RFC 8446 §4.1.4: the ServerHello after a HelloRetryRequest keeps
        the version it selected.  One without supported_versions (TLS 1.2)
        is an illegal_parameter, whether or not the client allows TLS 1.2."""
        for min_version in (ProtocolVersion.TLS_1_2, ProtocolVersion.TLS_1_3):
            client_context, server_context = self.contexts(
                client={
                    "key_share_groups": [NamedGroup.x25519],
                    "min_version": min_version,
                },
                server={"groups": [NamedGroup.secp384r1]},
            )
            client = Connection(
                client_context, is_client=True, server_name="example.com"
            )
            server = Connection(server_context, is_client=False)
            client.start()
            server.receive_data(client.data_to_send())
            client.receive_data(server.data_to_send())  # HelloRetryRequest
            server.receive_data(client.data_to_send())
            flight = server.data_to_send()
            length = int.from_bytes(flight[3:5], "big")
            self.assertEqual(flight[5], HandshakeType.server_hello)
            hello = ServerHello.parse(flight[9 : 5 + length])
            tls12_hello = dataclasses.replace(
                hello,
                supported_versions=None,
                key_share=None,
                pre_shared_key=None,
                extension_order=[],
            )
            payload = encode_handshake(tls12_hello)
            with self.assertRaises(TLSError) as caught:
                client.receive_data(
                    bytes((ContentType.handshake, 3, 3))
                    + len(payload).to_bytes(2, "big")
                    + payload
                )
            self.assertEqual(caught.exception.alert, AlertDescription.illegal_parameter)

    def test_server_prefers_among_offered_shares(self) -> None:
        """The server picks by its own order among the shares offered."""
        client_context, server_context = self.contexts(
            client={"key_share_groups": [NamedGroup.X25519MLKEM768, NamedGroup.x25519]},
            server={"groups": [NamedGroup.x25519, NamedGroup.X25519MLKEM768]},
        )
        _, _, events, _ = self.connect(client_context, server_context)
        self.assertEqual(
            of_type(events, HandshakeCompleted)[0].group, NamedGroup.x25519
        )

    def test_no_common_group(self) -> None:
        client_context, server_context = self.contexts(
            client={
                "groups": [NamedGroup.x25519],
                "key_share_groups": [NamedGroup.x25519],
            },
            server={"groups": [NamedGroup.secp256r1]},
        )
        client, _server, error = self.fail_handshake(client_context, server_context)
        self.assertEqual(error.alert, AlertDescription.handshake_failure)
        self.assertIsInstance(client.error, RemoteAlertError)
        self.assertEqual(client.error.alert, AlertDescription.handshake_failure)

    def test_no_common_suite(self) -> None:
        client_context, server_context = self.contexts(
            client={
                "cipher_suites": [CipherSuite.TLS_AES_128_GCM_SHA256],
                "min_version": ProtocolVersion.TLS_1_3,
            },
            server={
                "cipher_suites": [CipherSuite.TLS_AES_256_GCM_SHA384],
                "min_version": ProtocolVersion.TLS_1_3,
            },
        )
        _, _, error = self.fail_handshake(client_context, server_context)
        self.assertEqual(error.alert, AlertDescription.handshake_failure)

    def test_alpn_server_preference(self) -> None:
        client_context, server_context = self.contexts(
            client={"alpn_protocols": [b"http/1.1", b"h2"]},
            server={"alpn_protocols": [b"h2", b"http/1.1"]},
        )
        client, server, _, _ = self.connect(client_context, server_context)
        self.assertEqual(client.alpn_protocol, b"h2")
        self.assertEqual(server.alpn_protocol, b"h2")

    def test_alpn_no_overlap(self) -> None:
        client_context, server_context = self.contexts(
            client={"alpn_protocols": [b"http/1.1"]},
            server={"alpn_protocols": [b"h2"]},
        )
        client, _, error = self.fail_handshake(client_context, server_context)
        self.assertEqual(error.alert, AlertDescription.no_application_protocol)
        self.assertEqual(client.error.alert, AlertDescription.no_application_protocol)

    def test_wrong_host_name(self) -> None:
        client_context, server_context = self.contexts()
        _client, server, error = self.fail_handshake(
            client_context, server_context, server_name="other.example"
        )
        self.assertEqual(error.alert, AlertDescription.bad_certificate)
        self.assertIn("other.example", str(error))
        self.assertEqual(server.error.alert, AlertDescription.bad_certificate)

    def test_untrusted_root(self) -> None:
        client_context, server_context = self.contexts()
        stranger = CertificateFactory(self.mktemp())
        client_context = Context(trust_roots=stranger.trust_roots)
        _, server, error = self.fail_handshake(
            client_context, server_context, server_name="example.com"
        )
        self.assertEqual(error.alert, AlertDescription.unknown_ca)
        self.assertEqual(server.error.alert, AlertDescription.unknown_ca)

    def test_insecure_skip_verify(self) -> None:
        client_context, server_context = self.contexts()
        client_context = Context(insecure_skip_verify=True)
        _, _, events, _ = self.connect(client_context, server_context, "wrong.name")
        [done] = of_type(events, HandshakeCompleted)
        self.assertFalse(done.verified)

    def test_mutual_tls(self) -> None:
        client_leaf = self.pki.client("alice", key_type="ed25519")
        client_context, server_context = self.contexts(
            server={
                "client_certificate": ClientCertificatePolicy.REQUIRE,
                "trust_roots": self.pki.trust_roots,
            },
        )
        client_context = Context(
            trust_roots=self.pki.trust_roots, credentials=[client_leaf.credential()]
        )
        _, _server, _, server_events = self.connect(client_context, server_context)
        [done] = of_type(server_events, HandshakeCompleted)
        self.assertTrue(done.verified)
        self.assertEqual(done.peer_certificates[0], client_leaf.der)

    def test_client_certificate_required_but_missing(self) -> None:
        client_context, server_context = self.contexts(
            server={
                "client_certificate": ClientCertificatePolicy.REQUIRE,
                "trust_roots": self.pki.trust_roots,
            },
        )
        client, _server, error = self.fail_handshake(client_context, server_context)
        self.assertEqual(error.alert, AlertDescription.certificate_required)
        self.assertEqual(client.error.alert, AlertDescription.certificate_required)

    def test_client_certificate_requested_and_missing(self) -> None:
        client_context, server_context = self.contexts(
            server={
                "client_certificate": ClientCertificatePolicy.REQUEST,
                "trust_roots": self.pki.trust_roots,
            },
        )
        _, _server, _, server_events = self.connect(client_context, server_context)
        [done] = of_type(server_events, HandshakeCompleted)
        self.assertEqual(done.peer_certificates, ())
        self.assertFalse(done.verified)

    def test_sni_selects_certificate(self) -> None:
        first = self.pki.server("one.example")
        second = self.pki.server("two.example", key_type="rsa-2048")
        server_context = Context(credentials=[first.credential(), second.credential()])
        client_context = Context(trust_roots=self.pki.trust_roots)
        for name, leaf in (("one.example", first), ("two.example", second)):
            client, server, _, _ = self.connect(client_context, server_context, name)
            self.assertEqual(client.peer_certificates[0], leaf.der)
            self.assertEqual(server.server_name, name)

    def test_record_size_limit(self) -> None:
        """RFC 8449: each side's records respect the peer's limit."""
        client_context, server_context = self.contexts(
            client={"record_size_limit": 512}, server={"record_size_limit": 1024}
        )
        client, server, _, _ = self.connect(client_context, server_context)
        server.send(b"s" * 5000)
        records = server.pending_output()
        # 511 bytes of content + 1 type byte + 16 tag + 5 header per record.
        self.assertEqual(max(len(r) for r in records), 511 + 1 + 16 + 5)
        client.send(b"c" * 5000)
        self.assertEqual(
            max(len(r) for r in client.pending_output()), 1023 + 1 + 16 + 5
        )

    def test_verifying_client_needs_a_name(self) -> None:
        client_context, _ = self.contexts()
        with self.assertRaises(ValueError) as caught:
            Connection(client_context, is_client=True)
        self.assertIn("server_name", str(caught.exception))

    def test_exporter(self) -> None:
        client, server, _, _ = self.connect(*self.contexts())
        client_key = client.export_keying_material(b"EXPERIMENTAL test", b"ctx", 32)
        self.assertEqual(
            client_key, server.export_keying_material(b"EXPERIMENTAL test", b"ctx", 32)
        )
        self.assertNotEqual(
            client_key, server.export_keying_material(b"EXPERIMENTAL test", b"", 32)
        )


class DataAndCloseTests(HandshakeTestsMixin, SynchronousTestCase):
    def test_writes_before_handshake_are_kept_in_order(self) -> None:
        client_context, server_context = self.contexts()
        client = Connection(client_context, is_client=True, server_name="example.com")
        server = Connection(server_context, is_client=False)
        client.start()
        client.send(b"first ")
        client.send(b"second")
        client.close()
        _, server_events = pump(client, server)
        data = b"".join(e.data for e in of_type(server_events, ApplicationData))
        self.assertEqual(data, b"first second")
        self.assertEqual(of_type(server_events, CloseNotify), [CloseNotify()])

    def test_bulk_both_ways(self) -> None:
        client, server, _, _ = self.connect(*self.contexts())
        payload = bytes(range(256)) * 4096  # 1 MiB
        client.send(payload)
        server.send(payload[::-1])
        client_events, server_events = pump(client, server)
        self.assertEqual(
            b"".join(e.data for e in of_type(server_events, ApplicationData)), payload
        )
        self.assertEqual(
            b"".join(e.data for e in of_type(client_events, ApplicationData)),
            payload[::-1],
        )

    def test_records_of_one_call_are_one_event(self) -> None:
        """All the application-data records of one receive_data come out as
        one ApplicationData, and the close_notify after them still follows
        it."""
        payload = bytes(range(256)) * 200  # 51,200 bytes: four records
        for max_version in (ProtocolVersion.TLS_1_2, ProtocolVersion.TLS_1_3):
            client, server, _, _ = self.connect(
                *self.contexts(client={"max_version": max_version})
            )
            client.send(payload)
            client.send(b"and a second write")
            client.close()
            events = server.receive_data(client.data_to_send())
            self.assertEqual(
                events,
                [ApplicationData(payload + b"and a second write"), CloseNotify()],
                max_version,
            )

    def test_key_update_splits_the_data(self) -> None:
        """Data before and after a KeyUpdate are two events, with the
        KeyUpdated between them: events keep the order of the records."""
        client, server, _, _ = self.connect(*self.contexts())
        client.send(b"old keys " * 3000)
        client.key_update(request_peer=False)
        client.send(b"new keys " * 3000)
        events = server.receive_data(client.data_to_send())
        self.assertEqual(
            events,
            [
                ApplicationData(b"old keys " * 3000),
                KeyUpdated("receive"),
                ApplicationData(b"new keys " * 3000),
            ],
        )

    @given(st.lists(st.integers(min_value=0, max_value=70_000), max_size=12))
    @settings(max_examples=40, deadline=None)
    def test_any_split_delivers_the_data_in_order(self, cuts: list[int]) -> None:
        """However the wire bytes are cut into receive_data calls, the
        ApplicationData events join to exactly the data sent, each call
        gives at most one ApplicationData per run between other events, and
        the KeyUpdated and CloseNotify come where they were sent."""
        client, server, _, _ = self.connect(*self.contexts())
        before = bytes(range(256)) * 100
        after = b"after the key update " * 1000
        client.send(before)
        client.key_update(request_peer=False)
        client.send(after)
        client.close()
        wire = client.data_to_send()
        points = sorted({min(cut, len(wire)) for cut in cuts} | {0, len(wire)})
        kinds: list[str] = []
        received = b""
        for start, end in itertools.pairwise(points):
            events = server.receive_data(wire[start:end])
            names = [type(event).__name__ for event in events]
            for first, second in itertools.pairwise(names):
                self.assertFalse(first == second == "ApplicationData", names)
            for event in events:
                if isinstance(event, ApplicationData):
                    self.assertIs(type(event.data), bytes)
                    received += event.data
                else:
                    kinds.append(type(event).__name__)
                    if isinstance(event, KeyUpdated):
                        self.assertEqual(received, before)
        self.assertEqual(received, before + after)
        self.assertEqual(kinds, ["KeyUpdated", "CloseNotify"])

    def test_close_notify_half_close(self) -> None:
        """RFC 8446 §6.1: after our close_notify the peer may still send."""
        client, server, _, _ = self.connect(*self.contexts())
        client.close()
        _, server_events = pump(client, server)
        self.assertEqual(of_type(server_events, CloseNotify), [CloseNotify()])
        server.send(b"late reply")
        client_events, _ = pump(client, server)
        self.assertEqual(
            of_type(client_events, ApplicationData), [ApplicationData(b"late reply")]
        )
        self.assertRaises(ConnectionClosedError, client.send, b"more")
        server.close()
        client_events, _ = pump(client, server)
        self.assertEqual(of_type(client_events, CloseNotify), [CloseNotify()])
        self.assertIs(client.state, ConnectionState.CLOSED)

    def test_bytes_after_close_notify_are_kept(self) -> None:
        client, server, _, _ = self.connect(*self.contexts())
        server.close()
        wire = server.data_to_send() + b"PLAINTEXT NEXT"
        events = client.receive_data(wire)
        self.assertEqual(events, [CloseNotify()])
        self.assertEqual(client.unused_data, b"PLAINTEXT NEXT")

    def test_key_update_both_directions(self) -> None:
        client, server, _, _ = self.connect(*self.contexts())
        client.key_update(request_peer=True)
        client.send(b"after update")
        client_events, server_events = pump(client, server)
        self.assertEqual(
            of_type(server_events, KeyUpdated),
            [KeyUpdated("receive"), KeyUpdated("send")],
        )
        self.assertEqual(of_type(client_events, KeyUpdated), [KeyUpdated("receive")])
        server.send(b"reply")
        client_events, _ = pump(client, server)
        self.assertEqual(
            of_type(client_events, ApplicationData), [ApplicationData(b"reply")]
        )

    def test_fatal_alert_reaches_peer(self) -> None:
        client, server, _, _ = self.connect(*self.contexts())
        wire = bytearray(client.data_to_send() or b"")
        client.send(b"x" * 100)
        wire = bytearray(client.data_to_send())
        wire[-1] ^= 1  # break the AEAD tag
        with self.assertRaises(TLSError) as caught:
            server.receive_data(bytes(wire))
        self.assertEqual(caught.exception.alert, AlertDescription.bad_record_mac)
        with self.assertRaises(RemoteAlertError) as remote:
            client.receive_data(server.data_to_send())
        self.assertEqual(remote.exception.alert, AlertDescription.bad_record_mac)
        self.assertIs(client.state, ConnectionState.FAILED)

    def test_application_data_before_handshake(self) -> None:
        _, server_context = self.contexts()
        server = Connection(server_context, is_client=False)
        with self.assertRaises(TLSError) as caught:
            server.receive_data(bytes([ContentType.application_data, 3, 3, 0, 1, 0]))
        self.assertEqual(caught.exception.alert, AlertDescription.unexpected_message)
        self.assertEqual(
            server.data_to_send(),
            bytes(
                [ContentType.alert, 3, 3, 0, 2, 2, AlertDescription.unexpected_message]
            ),
        )

    def test_change_cipher_spec_after_handshake_is_rejected(self) -> None:
        _client, server, _, _ = self.connect(*self.contexts())
        with self.assertRaises(TLSError) as caught:
            server.receive_data(bytes([ContentType.change_cipher_spec, 3, 3, 0, 1, 1]))
        self.assertEqual(caught.exception.alert, AlertDescription.unexpected_message)


class KeyUpdateLimitTests(HandshakeTestsMixin, SynchronousTestCase):
    """RFC 8446 §4.6.3 sets no bound on KeyUpdates; each costs a key
    derivation (and an answer when update_requested), so a peer may send
    only 32 in a row without application data between (as BoringSSL)."""

    def flood(
        self, sender: Connection, receiver: Connection, count: int, request: bool
    ) -> list[Event]:
        for _ in range(count):
            sender.key_update(request_peer=request)
        return receiver.receive_data(sender.data_to_send())

    def test_thirty_two_in_a_row_are_answered(self) -> None:
        for role in ("client", "server"):
            for request in (True, False):
                client, server, _, _ = self.connect(*self.contexts())
                sender, receiver = (
                    (client, server) if role == "client" else (server, client)
                )
                events = self.flood(sender, receiver, 32, request)
                self.assertEqual(events.count(KeyUpdated("receive")), 32)
                self.assertEqual(events.count(KeyUpdated("send")), 32 if request else 0)
                sender.receive_data(receiver.data_to_send())
                receiver.send(b"still talking")
                self.assertEqual(
                    of_type(
                        sender.receive_data(receiver.data_to_send()), ApplicationData
                    ),
                    [ApplicationData(b"still talking")],
                )

    def test_thirty_third_in_a_row_is_refused(self) -> None:
        for role in ("client", "server"):
            for request in (True, False):
                client, server, _, _ = self.connect(*self.contexts())
                sender, receiver = (
                    (client, server) if role == "client" else (server, client)
                )
                with self.assertRaises(TLSError) as caught:
                    self.flood(sender, receiver, 33, request)
                label = f"{role} receives, update_requested={request}"
                self.assertEqual(
                    caught.exception.alert, AlertDescription.unexpected_message, label
                )
                self.assertEqual(
                    caught.exception.events.count(KeyUpdated("receive")), 32, label
                )
                with self.assertRaises(RemoteAlertError) as remote:
                    sender.receive_data(receiver.data_to_send())
                self.assertEqual(
                    remote.exception.alert, AlertDescription.unexpected_message, label
                )

    def test_answers_to_our_requests_do_not_count(self) -> None:
        """A client that uploads and asks for fresh keys now and then gets
        only the peer's answers back, never data: that is no flood."""
        client, server, _, _ = self.connect(*self.contexts())
        for round_ in range(40):
            if round_ % 2:
                client.renegotiate()  # TLS 1.3: a KeyUpdate, update_requested
            else:
                client.key_update(request_peer=True)
            client.send(b"upload")
            server.receive_data(client.data_to_send())
            events = client.receive_data(server.data_to_send())
            self.assertEqual(events, [KeyUpdated("receive")])
        # Answered requests are settled: the next unrequested run is counted.
        with self.assertRaises(TLSError) as caught:
            self.flood(server, client, 33, False)
        self.assertEqual(caught.exception.alert, AlertDescription.unexpected_message)

    def test_application_data_resets_the_count(self) -> None:
        client, server, _, _ = self.connect(*self.contexts(), client_class=KeyKeeper)
        assert isinstance(client, KeyKeeper)
        for round_ in range(5):
            for _ in range(32):
                client.key_update(request_peer=False)
            client.send(b"%d" % round_)
            events = server.receive_data(client.data_to_send())
            self.assertEqual(
                of_type(events, ApplicationData), [ApplicationData(b"%d" % round_)]
            )
        # Empty application data records carry nothing: they do not reset it.
        for _ in range(32):
            client.key_update(request_peer=False)
        wire = client.data_to_send()
        wire += client.seal(ContentType.application_data, b"")
        client.key_update(request_peer=False)
        with self.assertRaises(TLSError) as caught:
            server.receive_data(wire + client.data_to_send())
        self.assertEqual(caught.exception.alert, AlertDescription.unexpected_message)


class KeyUsageLimitTests(HandshakeTestsMixin, SynchronousTestCase):
    def test_key_update_before_usage_limit(self) -> None:
        """Near the AEAD limit the sender changes keys by itself (§5.5)."""
        client, server, _, _ = self.connect(*self.contexts(), client_class=KeyKeeper)
        assert isinstance(client, KeyKeeper)
        write = client.write_protection
        assert write is not None
        write.rekey_after = write.sequence + 3
        client.send(b"a" * (3 * 16384))
        client.send(b"b")
        _, server_events = pump(client, server)
        self.assertEqual(of_type(server_events, KeyUpdated), [KeyUpdated("receive")])
        received = b"".join(e.data for e in of_type(server_events, ApplicationData))
        self.assertEqual(received, b"a" * (3 * 16384) + b"b")


class FakeClock:
    """A settable ``Context.clock``."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class ResumptionTests(HandshakeTestsMixin, SynchronousTestCase):
    """TLS 1.3 tickets and PSK resumption (RFC 8446 §2.2, §4.2.11, §4.6.1)."""

    def setUp(self) -> None:
        super().setUp()
        self.clock = FakeClock()
        leaf = self.pki.server("example.com")
        self.server_context = Context(
            credentials=[leaf.credential()], clock=self.clock, alpn_protocols=[b"h2"]
        )
        self.client_context = Context(
            trust_roots=self.pki.trust_roots, clock=self.clock, alpn_protocols=[b"h2"]
        )

    def first_session(self) -> Session:
        _, _, events, _ = self.connect(self.client_context, self.server_context)
        tickets = of_type(events, SessionTicket)
        self.assertEqual(len(tickets), self.server_context.tickets_per_handshake)
        return tickets[-1].session

    def resume(
        self, session: Session, server_name: str = "example.com"
    ) -> tuple[Connection, Connection, HandshakeCompleted, HandshakeCompleted]:
        client = Connection(
            self.client_context,
            is_client=True,
            server_name=server_name,
            session=session,
        )
        server = Connection(self.server_context, is_client=False)
        client.start()
        client_events, server_events = pump(client, server)
        [client_done] = of_type(client_events, HandshakeCompleted)
        [server_done] = of_type(server_events, HandshakeCompleted)
        return client, server, client_done, server_done

    def test_resumes_with_ticket(self) -> None:
        session = self.first_session()
        self.assertEqual(session.server_name, "example.com")
        client, server, done, server_done = self.resume(session)
        self.assertTrue(done.resumed)
        self.assertTrue(server_done.resumed)
        self.assertTrue(done.verified)  # carried over from the full handshake
        self.assertEqual(done.peer_certificates, session.peer_certificates)
        self.assertEqual(done.alpn_protocol, b"h2")
        # psk_dhe_ke by default: a fresh key exchange still happens.
        self.assertIsNotNone(done.group)
        client.send(b"after resumption")
        _, server_events = pump(client, server)
        self.assertEqual(
            of_type(server_events, ApplicationData),
            [ApplicationData(b"after resumption")],
        )

    def test_resumed_connection_issues_new_tickets(self) -> None:
        session = self.first_session()
        client, _, _, _ = self.resume(session)
        self.assertIsNotNone(client.session)
        self.assertNotEqual(client.session.ticket, session.ticket)
        _, _, done, _ = self.resume(client.session)
        self.assertTrue(done.resumed)

    def test_every_ticket_is_what_full_validation_builds(self) -> None:
        """The second and later tickets of a handshake are built from the
        first (``for_next_ticket``) without checking the shared fields again:
        on both sides, each must equal what the full constructor makes of its
        values, and differ from the first only in the per-ticket fields."""
        alice = self.pki.client("alice")
        self.server_context = self.server_context.replace(
            client_certificate=ClientCertificatePolicy.REQUIRE,
            trust_roots=self.pki.trust_roots,
            tickets_per_handshake=3,
        )
        self.client_context = self.client_context.replace(
            credentials=[alice.credential()]
        )
        keys = self.server_context.session_tickets
        assert keys is not None
        sealed: list[ServerSessionState] = []
        seal_state = keys.seal_state

        def record(state: ServerSessionState) -> bytes | None:
            sealed.append(state)
            return seal_state(state)

        keys.seal_state = record  # type: ignore[method-assign]

        def values(obj: object) -> dict[str, tuple[type, object]]:
            return {
                f.name: (type(v), v)
                for f in dataclasses.fields(obj)  # type: ignore[arg-type]
                for v in [getattr(obj, f.name)]
            }

        def check(objects: Sequence[object], per_ticket: set[str]) -> None:
            self.assertEqual(len(objects), 3)
            first = values(objects[0])
            for obj in objects:
                rebuilt = type(obj)(**{k: v for k, (_, v) in values(obj).items()})
                self.assertEqual(values(rebuilt), values(obj))
                current = values(obj)
                for name in first.keys() - per_ticket:
                    self.assertEqual(current[name], first[name], name)

        server_per_ticket = {"secret", "ticket_age_add"}
        client_per_ticket = {
            "created_at",
            "lifetime",
            "ticket",
            "resumption_psk",
            "ticket_age_add",
            "max_early_data",
        }
        _, _, events, _ = self.connect(self.client_context, self.server_context)
        sessions = [e.session for e in of_type(events, SessionTicket)]
        check(sealed, server_per_ticket)
        check(sessions, client_per_ticket)
        self.assertTrue(sealed[0].verified)
        self.assertEqual(sealed[0].alpn_protocol, b"h2")
        self.assertTrue(sessions[0].verified)
        self.assertEqual(len({s.secret for s in sealed}), 3)
        self.assertEqual(len({s.resumption_psk for s in sessions}), 3)
        # A resumed connection's tickets keep the first authentication time.
        self.clock.now += 60
        sealed.clear()
        client, _, done, _ = self.resume(sessions[1])
        self.assertTrue(done.resumed)
        check(sealed, server_per_ticket)
        self.assertEqual(sealed[0].authenticated_at, sealed[0].created_at - 60)
        assert client.session is not None
        _, _, done, _ = self.resume(client.session)
        self.assertTrue(done.resumed)

    def test_expired_ticket_gives_full_handshake(self) -> None:
        session = self.first_session()
        self.clock.now += self.server_context.session_lifetime + 1
        _, _, done, server_done = self.resume(session)
        self.assertFalse(done.resumed)
        self.assertFalse(server_done.resumed)

    def test_other_server_name_is_not_offered(self) -> None:
        session = self.first_session()
        other = self.pki.server("other.example")
        self.server_context = Context(
            credentials=[self.server_context.credentials[0], other.credential()],
            clock=self.clock,
            session_tickets=self.server_context.session_tickets,
        )
        _, _, done, _ = self.resume(session, server_name="other.example")
        self.assertFalse(done.resumed)

    def test_ticket_from_another_server_is_ignored(self) -> None:
        session = self.first_session()
        leaf = self.pki.server("example.com")
        self.server_context = Context(credentials=[leaf.credential()], clock=self.clock)
        _, _, done, _ = self.resume(session)
        self.assertFalse(done.resumed)

    def test_bad_binder_is_decrypt_error(self) -> None:
        """§4.2.11.2: a binder that does not verify aborts the handshake."""
        session = self.first_session()
        forged = dataclasses.replace(
            session, resumption_psk=bytes(len(session.resumption_psk))
        )
        client = Connection(
            self.client_context,
            is_client=True,
            server_name="example.com",
            session=forged,
        )
        server = Connection(self.server_context, is_client=False)
        client.start()
        with self.assertRaises(TLSError) as caught:
            server.receive_data(client.data_to_send())
        self.assertEqual(caught.exception.alert, AlertDescription.decrypt_error)

    def test_psk_ke_only_when_enabled(self) -> None:
        """A client offering only psk_ke gets a full handshake by default."""
        session = self.first_session()
        client_context = self.client_context.replace(allow_psk_ke=True)
        server_context = self.server_context.replace(allow_psk_ke=True)
        client = Connection(
            client_context, is_client=True, server_name="example.com", session=session
        )
        server = Connection(server_context, is_client=False)
        client.start()
        client_events, _ = pump(client, server)
        [done] = of_type(client_events, HandshakeCompleted)
        self.assertTrue(done.resumed)
        # Both sides allow psk_ke, but psk_dhe_ke is still preferred.
        self.assertIsNotNone(done.group)

    def test_resumption_after_hello_retry_request(self) -> None:
        session = self.first_session()
        self.server_context = self.server_context.replace(groups=[NamedGroup.secp256r1])
        client_context = self.client_context.replace(
            key_share_groups=[NamedGroup.x25519]
        )
        client = Connection(
            client_context, is_client=True, server_name="example.com", session=session
        )
        server = Connection(self.server_context, is_client=False)
        client.start()
        client_events, _ = pump(client, server)
        [done] = of_type(client_events, HandshakeCompleted)
        self.assertTrue(done.resumed)
        self.assertEqual(done.group, NamedGroup.secp256r1)

    def test_early_data_is_refused_and_skipped(self) -> None:
        """§4.2.10: a client's 0-RTT is skipped; the handshake goes on."""
        session = self.first_session()
        client = EarlyDataClientConnection(
            self.client_context,
            is_client=True,
            server_name="example.com",
            session=session,
        )
        server = Connection(self.server_context, is_client=False)
        client.start()
        # What a 0-RTT record looks like to a server without early keys.
        early_record = bytes([23, 3, 3, 0, 40]) + bytes(40)
        server.receive_data(client.data_to_send() + early_record)
        _client_events, server_events = pump(client, server)
        [done] = of_type(server_events, HandshakeCompleted)
        self.assertTrue(done.resumed)
        self.assertEqual(of_type(server_events, ApplicationData), [])

    def test_no_tickets_without_psk_modes(self) -> None:
        """§4.2.9: no psk_key_exchange_modes, no NewSessionTicket."""
        client = NoPskModesClientConnection(
            self.client_context, is_client=True, server_name="example.com"
        )
        server = Connection(self.server_context, is_client=False)
        client.start()
        client_events, _ = pump(client, server)
        self.assertEqual(len(of_type(client_events, HandshakeCompleted)), 1)
        self.assertEqual(of_type(client_events, SessionTicket), [])


class _EarlyDataClient(ClientNegotiator):
    """Says it sends 0-RTT data (the binder then covers the early_data flag)."""

    def _build_client_hello(self) -> ClientHello:
        return dataclasses.replace(super()._build_client_hello(), early_data=True)


class EarlyDataClientConnection(Connection):
    client_negotiator_class = _EarlyDataClient


class _NoPskModesClient(ClientNegotiator):
    def _build_client_hello(self) -> ClientHello:
        return dataclasses.replace(
            super()._build_client_hello(), psk_key_exchange_modes=None
        )


class NoPskModesClientConnection(Connection):
    client_negotiator_class = _NoPskModesClient


def client_sending(**changes: object) -> type[Connection]:
    """A client Connection whose ClientHello has ``changes`` applied: the
    crafted hellos of a conformance probe, with a real client behind them."""

    class Client(ClientNegotiator):
        def _build_client_hello(self) -> ClientHello:
            return dataclasses.replace(super()._build_client_hello(), **changes)

    class CraftedClientConnection(Connection):
        client_negotiator_class = Client

    return CraftedClientConnection


class ClientHelloConformanceTests(HandshakeTestsMixin, SynchronousTestCase):
    """How a server answers unusual but possible ClientHellos (issue 9)."""

    def attempt(
        self,
        client_context: Context,
        server_context: Context,
        **changes: object,
    ) -> tuple[Connection, Connection, TLSError | None]:
        """A handshake with a crafted ClientHello; the error, if it failed."""
        client = client_sending(**changes)(
            client_context, is_client=True, server_name="example.com"
        )
        server = Connection(server_context, is_client=False)
        client.start()
        try:
            pump(client, server)
        except TLSError as exc:
            with contextlib.suppress(TLSError):
                client.receive_data(server.data_to_send())
            return client, server, exc
        return client, server, None

    def test_legacy_version_below_tls(self) -> None:
        """RFC 8446 §D.5: legacy_version 0x0300 or below (SSL 3.0, and the
        malformed major versions 0, 1 and 2) is a protocol_version, whether
        or not supported_versions offers a version we speak."""
        for max_version in (ProtocolVersion.TLS_1_3, ProtocolVersion.TLS_1_2):
            client_context, server_context = self.contexts(
                client={"max_version": max_version}
            )
            for legacy in (0x0000, 0x0002, 0x0100, 0x0103, 0x0200, 0x02FF, 0x0300):
                label = f"{max_version.name} hello, legacy_version {legacy:#06x}"
                client, server, error = self.attempt(
                    client_context, server_context, legacy_version=legacy
                )
                self.assertIsNotNone(error, label)
                assert error is not None
                self.assertEqual(error.alert, AlertDescription.protocol_version, label)
                self.assertIs(server.error, error, label)
                self.assertIsInstance(client.error, RemoteAlertError, label)
            # A TLS 1.2 hello that lists TLS 1.2 in supported_versions too.
            _, server, error = self.attempt(
                client_context,
                server_context,
                legacy_version=0x0200,
                supported_versions=[ProtocolVersion.TLS_1_2],
            )
            self.assertIsNotNone(error)
            assert error is not None
            self.assertEqual(error.alert, AlertDescription.protocol_version)

    def test_legacy_version_tolerance(self) -> None:
        """Above 0x0300 legacy_version does not negotiate anything when
        supported_versions is there (RFC 8446 §4.2.1); without it, a value
        above TLS 1.2 means "TLS 1.2 or newer" (RFC 5246 §E.1)."""
        for legacy in (0x0301, 0x0302, 0x0303, 0x0304, 0x0400, 0x0403, 0xFFFF):
            _, server, error = self.attempt(*self.contexts(), legacy_version=legacy)
            self.assertIsNone(error, hex(legacy))
            self.assertEqual(server.version, ProtocolVersion.TLS_1_3, hex(legacy))
        tls12 = self.contexts(client={"max_version": ProtocolVersion.TLS_1_2})
        for legacy in (0x0303, 0x0304, 0x0400, 0xFFFF):
            _, server, error = self.attempt(*tls12, legacy_version=legacy)
            self.assertIsNone(error, hex(legacy))
            self.assertEqual(server.version, ProtocolVersion.TLS_1_2, hex(legacy))

    def test_thousands_of_unknown_extensions(self) -> None:
        """RFC 8446 §4.2: unknown extensions are ignored, however many fit in
        the ClientHello bound: 7,000 empty ones (28 KB), or 1,000 with random
        payloads; none is echoed back."""
        rng = random.Random(9)
        empty = [(0x4000 + i, b"") for i in range(7000)]
        payloads = [
            (0x4000 + i, rng.randbytes(rng.randint(1, 24))) for i in range(1000)
        ]
        for max_version in (ProtocolVersion.TLS_1_3, ProtocolVersion.TLS_1_2):
            for extensions in (empty, payloads):
                client, server, error = self.attempt(
                    *self.contexts(client={"max_version": max_version}),
                    other_extensions=extensions,
                )
                self.assertIsNone(error)
                self.assertEqual(server.version, max_version)
                self.assertTrue(client.handshake_complete)

    def test_only_unknown_groups(self) -> None:
        """RFC 8446 §4.1.1: no group in common is a handshake_failure, not a
        HelloRetryRequest for a group the client never offered, with or
        without key shares for the unknown groups (TLS 1.2 alike)."""
        unknown = list(range(0x6000, 0x6000 + 8000))
        shares = [KeyShareEntry(group, b"\xab" * 64) for group in unknown[:200]]
        cases: list[tuple[ProtocolVersion, dict[str, object]]] = [
            (ProtocolVersion.TLS_1_3, {"supported_groups": unknown, "key_share": []}),
            (
                ProtocolVersion.TLS_1_3,
                {"supported_groups": unknown, "key_share": shares},
            ),
            (ProtocolVersion.TLS_1_2, {"supported_groups": unknown}),
        ]
        for max_version, changes in cases:
            _, server_context = self.contexts()
            client_context, _ = self.contexts(client={"max_version": max_version})
            client = client_sending(**changes)(
                client_context, is_client=True, server_name="example.com"
            )
            server = Connection(server_context, is_client=False)
            client.start()
            with self.assertRaises(TLSError) as caught:
                server.receive_data(client.data_to_send())
            self.assertEqual(caught.exception.alert, AlertDescription.handshake_failure)
            # Nothing but the alert went out: no HelloRetryRequest.
            self.assertEqual(
                server.data_to_send(),
                bytes((ContentType.alert, 3, 3, 0, 2, 2))
                + bytes((AlertDescription.handshake_failure,)),
            )

    def test_unknown_groups_around_a_known_one(self) -> None:
        """Unknown groups (and shares for them) around one we know: a
        HelloRetryRequest for the known group when it has no share, no
        retry when it has one, wherever it is in the list."""
        unknown = list(range(0x6000, 0x6000 + 200))
        shares = [KeyShareEntry(group, b"\xab" * 64) for group in unknown]
        client_context, server_context = self.contexts(
            client={"groups": [NamedGroup.x25519], "key_share_groups": []}
        )
        for groups, with_share, retried in (
            ([NamedGroup.x25519, *unknown], False, True),
            ([*unknown, NamedGroup.x25519], True, False),
        ):

            class Client(ClientNegotiator):
                def _build_client_hello(
                    self, groups: list[int] = groups, with_share: bool = with_share
                ) -> ClientHello:
                    hello = super()._build_client_hello()
                    own = hello.key_share or []
                    return dataclasses.replace(
                        hello,
                        supported_groups=groups,
                        key_share=[*shares, *own] if with_share else shares,
                    )

            class Conn(Connection):
                client_negotiator_class = Client

            context = (
                self.contexts(client={"groups": [NamedGroup.x25519]})[0]
                if with_share
                else client_context
            )
            client = Conn(context, is_client=True, server_name="example.com")
            server = Connection(server_context, is_client=False)
            client.start()
            pump(client, server)
            self.assertTrue(server.handshake_complete)
            self.assertEqual(server.group, NamedGroup.x25519)
            self.assertEqual(client.handshake_result.group, NamedGroup.x25519)
            self.assertEqual(server.handshake_state.hello_retried, retried)

    def test_early_data_offered_with_tls12_only(self) -> None:
        """early_data is a TLS 1.3 extension (RFC 8446 §4.2.10): a hello that
        offers only TLS 1.2 is answered as TLS 1.2, the extension ignored
        and not echoed; data then flows both ways."""
        client_context, server_context = self.contexts(
            client={"max_version": ProtocolVersion.TLS_1_2}
        )
        client, server, error = self.attempt(
            client_context,
            server_context,
            early_data=True,
            psk_key_exchange_modes=[1],
        )
        self.assertIsNone(error)
        self.assertEqual(server.version, ProtocolVersion.TLS_1_2)
        client.send(b"ping")
        _, server_events = pump(client, server)
        self.assertEqual(
            of_type(server_events, ApplicationData), [ApplicationData(b"ping")]
        )
        server.send(b"pong")
        client_events, _ = pump(client, server)
        self.assertEqual(
            of_type(client_events, ApplicationData), [ApplicationData(b"pong")]
        )


class HalfBuiltHandshakeTests(HandshakeTestsMixin, SynchronousTestCase):
    """What a server holds for a client that has not finished its handshake
    (issue 10): 32 KiB of a ClientHello (or of anything else), the Context's
    max_handshake_message_size only for a client Certificate it asked for."""

    def padded_hello(self, body_length: int, **client: object) -> type[Connection]:
        """A client whose ClientHello body is ``body_length`` bytes long,
        padded with the RFC 7685 padding extension."""
        client_context, _ = self.contexts(client=client)
        probe = client_sending(other_extensions=[(ExtensionType.padding, b"")])(
            client_context, is_client=True, server_name="example.com"
        )
        probe.start()
        # The body length, from the handshake header of the hello it sent.
        unpadded = int.from_bytes(probe.data_to_send()[6:9], "big")
        padding = bytes(body_length - unpadded)
        return client_sending(other_extensions=[(ExtensionType.padding, padding)])

    def test_client_hello_at_the_bound(self) -> None:
        client_context, server_context = self.contexts()
        for length, accepted in (
            (MAX_CLIENT_HELLO_SIZE, True),
            (MAX_CLIENT_HELLO_SIZE + 1, False),
        ):
            client = self.padded_hello(length)(
                client_context, is_client=True, server_name="example.com"
            )
            server = Connection(server_context, is_client=False)
            client.start()
            wire = client.data_to_send()
            self.assertEqual(int.from_bytes(wire[6:9], "big"), length)
            if accepted:
                server.receive_data(wire)
                pump(client, server)
                self.assertTrue(server.handshake_complete)
                continue
            # Refused on the header, in the first record: the rest of the
            # hello is never held.
            with self.assertRaises(TLSError) as caught:
                server.receive_data(wire[: 5 + 2**14])
            self.assertEqual(caught.exception.alert, AlertDescription.illegal_parameter)
            self.assertIn("client_hello of 32769 bytes", str(caught.exception))
            with self.assertRaises(RemoteAlertError) as remote:
                client.receive_data(server.data_to_send())
            self.assertEqual(remote.exception.alert, AlertDescription.illegal_parameter)

    def test_smaller_context_bound_wins(self) -> None:
        client_context, server_context = self.contexts(
            server={"max_handshake_message_size": 2**14}
        )
        client = self.padded_hello(2**14 + 1)(
            client_context, is_client=True, server_name="example.com"
        )
        client.start()
        server = Connection(server_context, is_client=False)
        with self.assertRaises(TLSError) as caught:
            server.receive_data(client.data_to_send())
        self.assertEqual(caught.exception.alert, AlertDescription.illegal_parameter)

    def test_every_message_but_a_requested_certificate(self) -> None:
        """A client Finished (or an unasked-for Certificate) declared larger
        than 32 KiB is refused on its header, in TLS 1.3 and TLS 1.2."""
        for version in (ProtocolVersion.TLS_1_3, ProtocolVersion.TLS_1_2):
            for msg_type in (HandshakeType.finished, HandshakeType.certificate):
                client_context, server_context = self.contexts(
                    client={"max_version": version}
                )
                client = KeyKeeper(
                    client_context, is_client=True, server_name="example.com"
                )
                server = Connection(server_context, is_client=False)
                client.start()
                server.receive_data(client.data_to_send())
                client.receive_data(server.data_to_send())
                header = bytes((msg_type,)) + (MAX_CLIENT_HELLO_SIZE + 1).to_bytes(
                    3, "big"
                )
                wire = client.data_to_send()
                wire += client.seal(ContentType.handshake, header)
                with self.assertRaises(TLSError) as caught:
                    server.receive_data(wire)
                self.assertEqual(
                    caught.exception.alert,
                    AlertDescription.illegal_parameter,
                    (version, msg_type),
                )

    def test_requested_certificate_keeps_the_chain_bound(self) -> None:
        """A client chain over 32 KiB still gets through to a server that
        asked for it (the Context's max_handshake_message_size, 128 KiB);
        it is too large to seal in a ticket, so that client gets none."""
        names = [f"host-{i:04d}.clients.example" for i in range(1500)]
        big = self.pki.client("alice", dns_names=names)
        small = self.pki.client("bob")
        self.assertGreater(len(big.der), MAX_CLIENT_HELLO_SIZE)
        for version in (ProtocolVersion.TLS_1_3, ProtocolVersion.TLS_1_2):
            _, server_context = self.contexts(
                server={
                    "client_certificate": ClientCertificatePolicy.REQUIRE,
                    "trust_roots": self.pki.trust_roots,
                },
            )
            for leaf, tickets in ((big, False), (small, True)):
                client_context = Context(
                    trust_roots=self.pki.trust_roots,
                    credentials=[leaf.credential()],
                    max_version=version,
                )
                _, _, client_events, server_events = self.connect(
                    client_context, server_context
                )
                [done] = of_type(server_events, HandshakeCompleted)
                self.assertEqual(done.peer_certificates[0], leaf.der, version)
                # TLS 1.2 reports its session (ID) either way; its ticket is
                # empty when the server sent none (RFC 5077 §3.3).
                sessions = [e.session for e in of_type(client_events, SessionTicket)]
                issued = any(session.ticket for session in sessions)
                self.assertEqual(issued, tickets, (version, leaf.name))


class AfterTicketsTests(HandshakeTestsMixin, SynchronousTestCase):
    """The server's NewSessionTickets (RFC 8446 §4.6.1) come after the
    handshake, so a client may close at any point around them (issue 9)."""

    def until_client_finished(self) -> tuple[Connection, Connection, bytes]:
        """A client that has sent its Finished, and that Finished."""
        client = Connection(
            self.contexts()[0], is_client=True, server_name="example.com"
        )
        server = Connection(self.contexts()[1], is_client=False)
        client.start()
        server.receive_data(client.data_to_send())
        client.receive_data(server.data_to_send())
        self.assertTrue(client.handshake_complete)
        return client, server, client.data_to_send()

    def test_tickets_before_data_written_as_the_handshake_completes(self) -> None:
        """Data the server's application writes on HandshakeCompleted, or
        wrote before, goes out after both tickets."""
        for early in (False, True):
            client, server, finished = self.until_client_finished()
            if early:
                server.send(b"written before the handshake completed")
            events = server.receive_data(finished)
            self.assertEqual(len(of_type(events, HandshakeCompleted)), 1)
            server.send(b"written on HandshakeCompleted")
            received = client.receive_data(server.data_to_send())
            # Both writes' records arrive in one call: one ApplicationData.
            self.assertEqual(
                [type(e).__name__ for e in received],
                ["SessionTicket", "SessionTicket", "ApplicationData"],
                early,
            )
            self.assertEqual(
                received[-1],
                ApplicationData(
                    b"written before the handshake completed" * early
                    + b"written on HandshakeCompleted"
                ),
            )

    def test_client_closes_at_every_point(self) -> None:
        """The client sends close_notify after reading any prefix of what
        the server sent after its handshake (tickets, then data): both ends
        close cleanly, and the tickets still reach the client."""
        client, server, finished = self.until_client_finished()
        server.receive_data(finished)
        server.send(b"data after the tickets")
        after = server.data_to_send()
        # Each record's first, second and last byte, its middle, and the end.
        cuts = {len(after)}
        start = 0
        while start < len(after):
            end = start + 5 + int.from_bytes(after[start + 3 : start + 5], "big")
            cuts |= {start, start + 1, (start + end) // 2, end - 1}
            start = end
        self.assertEqual(start, len(after))
        for cut in sorted(cuts):
            client, server, finished = self.until_client_finished()
            server.receive_data(finished)
            server.send(b"data after the tickets")
            wire = server.data_to_send()
            self.assertEqual(len(wire), len(after))
            events = client.receive_data(wire[:cut])
            client.close()
            server_events = server.receive_data(client.data_to_send())
            self.assertEqual(server_events, [CloseNotify()], cut)
            server.close()
            events += client.receive_data(wire[cut:] + server.data_to_send())
            self.assertEqual(len(of_type(events, SessionTicket)), 2, cut)
            self.assertEqual(events[-1], CloseNotify(), cut)
            self.assertIs(client.state, ConnectionState.CLOSED, cut)
            self.assertIs(server.state, ConnectionState.CLOSED, cut)

    def test_client_closes_with_its_finished(self) -> None:
        """Finished and close_notify in one flight: the server completes,
        still issues its tickets, and closes cleanly."""
        client, server, finished = self.until_client_finished()
        client.close()
        events = server.receive_data(finished + client.data_to_send())
        self.assertEqual(
            [type(e).__name__ for e in events], ["HandshakeCompleted", "CloseNotify"]
        )
        server.close()
        events = client.receive_data(server.data_to_send())
        self.assertEqual(
            [type(e).__name__ for e in events],
            ["SessionTicket", "SessionTicket", "CloseNotify"],
        )
        self.assertIs(client.state, ConnectionState.CLOSED)


class VersionMatrixTests(HandshakeTestsMixin, SynchronousTestCase):
    """Every (min, max) pair on each side over {1.2, 1.3} (issue 3)."""

    def test_matrix(self) -> None:
        versions = [ProtocolVersion.TLS_1_2, ProtocolVersion.TLS_1_3]
        ranges = [(low, high) for low in versions for high in versions if low <= high]
        leaf = self.pki.server("example.com")
        for client_range in ranges:
            for server_range in ranges:
                client_context = Context(
                    trust_roots=self.pki.trust_roots,
                    min_version=client_range[0],
                    max_version=client_range[1],
                )
                server_context = Context(
                    credentials=[leaf.credential()],
                    min_version=server_range[0],
                    max_version=server_range[1],
                )
                common = [
                    v
                    for v in versions
                    if client_range[0] <= v <= client_range[1]
                    and server_range[0] <= v <= server_range[1]
                ]
                label = f"client {client_range} server {server_range}"
                if common:
                    client, server, events, _ = self.connect(
                        client_context, server_context
                    )
                    [done] = of_type(events, HandshakeCompleted)
                    self.assertEqual(done.version, max(common), label)
                    self.assertEqual(server.version, max(common), label)
                else:
                    client, server, error = self.fail_handshake(
                        client_context, server_context
                    )
                    self.assertEqual(
                        error.alert, AlertDescription.protocol_version, label
                    )
                    self.assertIsInstance(client.error, RemoteAlertError, label)


class LifetimeTests(HandshakeTestsMixin, SynchronousTestCase):
    def test_no_reference_cycles(self) -> None:
        """A Connection is freed (keys and all) as soon as it is dropped,
        even with the garbage collector off: SSLFile relies on it."""
        gc.disable()
        self.addCleanup(gc.enable)
        for max_version in (ProtocolVersion.TLS_1_2, ProtocolVersion.TLS_1_3):
            client_context, server_context = self.contexts(
                client={"max_version": max_version}
            )
            client, server, _, _ = self.connect(client_context, server_context)
            client.send(b"x")
            pump(client, server)
            refs = [weakref.ref(client), weakref.ref(server)]
            del client, server
            self.assertEqual([ref() for ref in refs], [None, None], max_version)

    def test_events_before_a_failure_are_kept(self) -> None:
        """Data that arrived intact before a bad record is not lost."""
        client, server, _, _ = self.connect(*self.contexts())
        client.send(b"intact")
        good = client.data_to_send()
        client.send(b"to be broken")
        bad = bytearray(client.data_to_send())
        bad[-1] ^= 1
        with self.assertRaises(TLSError) as caught:
            server.receive_data(good + bytes(bad))
        self.assertEqual(caught.exception.alert, AlertDescription.bad_record_mac)
        self.assertEqual(caught.exception.events, [ApplicationData(b"intact")])
        self.assertEqual(server.rejected_bytes, bytes(bad))


class HandshakeStateTests(HandshakeTestsMixin, SynchronousTestCase):
    """Connection.handshake_state: a read-only view without secrets."""

    def test_snapshot_follows_the_handshake(self) -> None:
        client_context, server_context = self.contexts()
        client = Connection(client_context, is_client=True, server_name="example.com")
        server = Connection(server_context, is_client=False)
        before = client.handshake_state
        self.assertIs(before.machine, ClientNegotiator)
        self.assertIsNone(before.version)
        self.assertFalse(before.complete)
        client.start()
        pump(client, server)
        after = client.handshake_state
        self.assertEqual(after.version, ProtocolVersion.TLS_1_3)
        self.assertTrue(after.complete)
        self.assertEqual(after.state.name, "CONNECTED")
        self.assertEqual(after.client_random, server.handshake_state.client_random)
        self.assertEqual(len(after.client_random), 32)
        self.assertEqual(after.write_sequence, server.handshake_state.read_sequence)
        # A snapshot: it does not change under the caller, nor can it be set.
        client.send(b"x")
        pump(client, server)
        self.assertEqual(
            client.handshake_state.write_sequence, after.write_sequence + 1
        )
        with self.assertRaises(dataclasses.FrozenInstanceError):
            after.complete = False  # type: ignore[misc]

    def test_no_secret_in_view(self) -> None:
        """No secret the key log shows appears in the view, TLS 1.3 or 1.2."""
        for version in (ProtocolVersion.TLS_1_3, ProtocolVersion.TLS_1_2):
            keylog: list[str] = []
            client_context, server_context = self.contexts(
                client={"max_version": version, "keylog": keylog.append}
            )
            client, server, _, _ = self.connect(client_context, server_context)
            secrets = [bytes.fromhex(line.split()[2]) for line in keylog]
            self.assertTrue(secrets, version)
            for conn in (client, server):
                view = conn.handshake_state
                values = [
                    getattr(view, field.name) for field in dataclasses.fields(view)
                ]
                for secret in secrets:
                    self.assertNotIn(secret, values, version)
                    self.assertNotIn(secret.hex(), repr(view), version)
                names = " ".join(field.name for field in dataclasses.fields(view))
                self.assertNotIn("verify_data", names)
                self.assertEqual(names.count("secret"), 1)  # extended_master_secret


class IdleRecordTests(HandshakeTestsMixin, SynchronousTestCase):
    """Records that carry nothing are allowed, but not without end."""

    def test_empty_application_data_is_not_reported(self) -> None:
        client, server, _, _ = self.connect(*self.contexts(), client_class=KeyKeeper)
        assert isinstance(client, KeyKeeper)
        record = client.seal(ContentType.application_data, b"")
        client.send(b"then data")
        events = server.receive_data(record + client.data_to_send())
        self.assertEqual(events, [ApplicationData(b"then data")])

    def test_endless_empty_records_are_refused(self) -> None:
        client, server, _, _ = self.connect(*self.contexts(), client_class=KeyKeeper)
        assert isinstance(client, KeyKeeper)
        write = client.write_protection
        assert write is not None
        records = b"".join(
            write.seal(ContentType.application_data, b"") for _ in range(33)
        )
        with self.assertRaises(TLSError) as caught:
            server.receive_data(records)
        self.assertEqual(caught.exception.alert, AlertDescription.unexpected_message)

    def test_data_resets_the_count(self) -> None:
        client, server, _, _ = self.connect(*self.contexts(), client_class=KeyKeeper)
        assert isinstance(client, KeyKeeper)
        write = client.write_protection
        assert write is not None
        chunks = []
        for index in range(4):
            chunks += [write.seal(ContentType.application_data, b"") for _ in range(30)]
            chunks.append(write.seal(ContentType.application_data, b"%d" % index))
        events = server.receive_data(b"".join(chunks))
        self.assertEqual(
            b"".join(e.data for e in of_type(events, ApplicationData)), b"0123"
        )


class WeakKeyTests(HandshakeTestsMixin, SynchronousTestCase):
    def test_short_rsa_key_is_refused(self) -> None:
        """A verified chain may not rest on an RSA key under 2048 bits."""
        weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)
        leaf = self.pki.leaf("example.com", key=weak)
        server_context = Context(credentials=[leaf.credential()])
        client_context = Context(trust_roots=self.pki.trust_roots)
        _, server, error = self.fail_handshake(client_context, server_context)
        self.assertEqual(error.alert, AlertDescription.insufficient_security)
        self.assertIn("1024-bit RSA key", str(error))
        self.assertEqual(server.error.alert, AlertDescription.insufficient_security)


class ChainRefusalReasonTests(HandshakeTestsMixin, SynchronousTestCase):
    """
    A chain refused for breaking a rule says which rule and which
    certificate, not "untrusted root"; both ends agree on the alert.
    """

    def refuse(
        self,
        intermediates: Sequence[CA],
        alert: AlertDescription,
        *fragments: str,
        pki: CertificateFactory | None = None,
    ) -> TLSError:
        """A leaf under ``intermediates[-1]``: the handshake must fail so."""
        pki = pki or self.pki
        leaf = pki.server("example.com", issuer=intermediates[-1])
        server_context = Context(credentials=[leaf.credential()])
        client_context = Context(trust_roots=pki.trust_roots)
        _, server, error = self.fail_handshake(client_context, server_context)
        message = str(error)
        self.assertEqual(error.alert, alert, message)
        # The refused chain, as sent, for a report of what was refused.
        self.assertEqual(list(error.peer_certificates), leaf.chain_der)
        self.assertEqual(server.error.alert, alert)
        self.assertNotIn("untrusted root", message)
        self.assertIn("verifier: ", message)
        for fragment in fragments:
            self.assertIn(fragment, message)
        return error

    def test_intermediate_not_a_ca(self) -> None:
        bad = self.pki.make_intermediate("Not A CA", is_ca=False)
        error = self.refuse(
            [bad],
            AlertDescription.unknown_ca,
            "CN=Not A CA",
            "is not a CA (its basicConstraints say cA=FALSE)",
            "issuer of CN=example.com",
            "basicConstraints.cA must be asserted",
        )
        self.assertEqual(error.certificate, bad.certificate)

    def test_intermediate_without_basic_constraints(self) -> None:
        bad = self.pki.make_intermediate("No Constraints", is_ca=None)
        self.refuse(
            [bad],
            AlertDescription.unknown_ca,
            "CN=No Constraints",
            "has no basicConstraints extension, so it is not a CA",
        )

    def test_path_length_exceeded(self) -> None:
        upper = self.pki.make_intermediate("Upper", path_length=0)
        lower = self.pki.make_intermediate("Lower", issuer=upper)
        self.refuse(
            [upper, lower],
            AlertDescription.unknown_ca,
            "CA certificate CN=Upper",
            "allows at most 0 intermediate CA certificate(s) below it",
            "the chain has 1",
            "path length constraint",
        )

    def test_name_constraints_violated(self) -> None:
        constraints = x509.NameConstraints(
            permitted_subtrees=[x509.DNSName("other.example")],
            excluded_subtrees=None,
        )
        bad = self.pki.make_intermediate("Constrained", name_constraints=constraints)
        self.refuse(
            [bad],
            AlertDescription.bad_certificate,
            "CN=example.com",
            "outside the name constraints of CA CN=Constrained",
            "permitted: DNS:other.example",
            "name constraint",
        )

    def test_rsa_1024_intermediate(self) -> None:
        weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)
        bad = self.pki.make_intermediate("Weak", key=weak)
        self.refuse(
            [bad],
            AlertDescription.insufficient_security,
            "CA certificate CN=Weak",
            "1024-bit RSA key; at least 2048 bits are required",
        )

    def test_sha1_signature(self) -> None:
        pki = CertificateFactory(self.mktemp(), root_key_type="rsa-2048")
        bad = pki.make_intermediate("SHA-1 Signed", sha1_signature=True)
        self.refuse(
            [bad],
            AlertDescription.bad_certificate,
            "CN=SHA-1 Signed",
            "is signed with SHA-1 (sha1WithRSAEncryption)",
            pki=pki,
        )

    def test_client_chain_reason(self) -> None:
        """The server says the same about a client's chain."""
        bad = self.pki.make_intermediate("Client Not A CA", is_ca=False)
        alice = self.pki.client("alice", issuer=bad)
        client_context, server_context = self.contexts(
            server={
                "client_certificate": ClientCertificatePolicy.REQUIRE,
                "trust_roots": self.pki.trust_roots,
            },
        )
        client_context = Context(
            trust_roots=self.pki.trust_roots, credentials=[alice.credential()]
        )
        client, _, error = self.fail_handshake(client_context, server_context)
        self.assertEqual(error.alert, AlertDescription.unknown_ca)
        self.assertIn("CN=Client Not A CA", str(error))
        self.assertIn("is not a CA", str(error))
        self.assertEqual(client.error.alert, AlertDescription.unknown_ca)


class ServerNameTests(HandshakeTestsMixin, SynchronousTestCase):
    """
    Internationalised names go out as A-labels and are verified as such;
    names that cannot be host names are refused when configured (client) or
    with illegal_parameter (server, RFC 6066 §3), never internal_error.
    """

    def test_internationalised_name(self) -> None:
        leaf = self.pki.server("xn--bcher-kva.example")
        server_context = Context(credentials=[leaf.credential()])
        client_context = Context(trust_roots=self.pki.trust_roots)
        for name in ("bücher.example", "BÜCHER.Example.", "xn--bcher-kva.example"):
            client, server, events, _ = self.connect(
                client_context, server_context, name
            )
            [done] = of_type(events, HandshakeCompleted)
            self.assertTrue(done.verified)
            self.assertEqual(client.server_name, "xn--bcher-kva.example")
            # What the server read from the SNI extension.
            self.assertEqual(server.server_name, "xn--bcher-kva.example")

    def test_idna_2008_not_2003(self) -> None:
        """
        UTS #46 non-transitional mapping keeps ß: faß.example is
        xn--fa-hia.example (IDNA 2003 made it fass.example).
        """
        leaf = self.pki.server("xn--fa-hia.example")
        server_context = Context(credentials=[leaf.credential()])
        client_context = Context(trust_roots=self.pki.trust_roots)
        client, _, events, _ = self.connect(
            client_context, server_context, "faß.example"
        )
        [done] = of_type(events, HandshakeCompleted)
        self.assertTrue(done.verified)
        self.assertEqual(client.server_name, "xn--fa-hia.example")

    def test_ip_address_is_not_sent(self) -> None:
        leaf = self.pki.server("::1")
        server_context = Context(credentials=[leaf.credential()])
        client_context = Context(trust_roots=self.pki.trust_roots)
        client, server, events, _ = self.connect(
            client_context, server_context, "[::1]"
        )
        self.assertTrue(of_type(events, HandshakeCompleted)[0].verified)
        self.assertEqual(client.server_name, "::1")
        self.assertIsNone(server.server_name)

    def test_invalid_names_refused_at_configuration(self) -> None:
        verifying, _ = self.contexts()
        insecure = Context(insecure_skip_verify=True)
        for name in (
            "a..b",
            "-a.example",
            "a_b.example",
            "xn--zz.example",
            "☃.example",
            "bücher..example",
            "x" * 64 + ".example",
            "*.example.com",
            "",
        ):
            for context in (verifying, insecure):
                with self.assertRaises(ValueError) as caught:
                    Connection(context, is_client=True, server_name=name)
                self.assertIn(repr(name)[:40], str(caught.exception))

    def hello_with_server_name(self, host: bytes, context: Context) -> bytes:
        """Our client's first flight with ``host`` spliced in as the SNI."""
        placeholder = b"q" * len(host)
        client = Connection(context, is_client=True, server_name=placeholder.decode())
        client.start()
        wire = client.data_to_send()
        self.assertEqual(wire.count(placeholder), 1)
        return wire.replace(placeholder, host)

    def refuse_server_name(self, host: bytes, **server: object) -> None:
        _, server_context = self.contexts(server=server)
        client_context = Context(insecure_skip_verify=True)
        conn = Connection(server_context, is_client=False)
        with self.assertRaises(TLSError) as caught:
            conn.receive_data(self.hello_with_server_name(host, client_context))
        self.assertEqual(caught.exception.alert, AlertDescription.illegal_parameter)
        # The alert on the wire says the same to the client.
        peer = Connection(client_context, is_client=True)
        peer.start()
        peer.data_to_send()
        with self.assertRaises(RemoteAlertError) as received:
            peer.receive_data(conn.data_to_send())
        self.assertEqual(received.exception.alert, AlertDescription.illegal_parameter)

    def test_hostile_server_names_get_illegal_parameter(self) -> None:
        """Bytes that no host name holds (not ASCII; test_messages: too long)."""
        for host in ("bücher.example".encode(), b"b\x00cher.example"):
            for server in ({}, {"max_version": ProtocolVersion.TLS_1_2}):
                with self.subTest(host=host, server=server):
                    self.refuse_server_name(host, **server)

    def test_odd_server_names_tolerated(self) -> None:
        """
        Printable ASCII that RFC 6066 §3 does not allow a client to send
        (a trailing dot, underscores, a malformed A-label) is accepted, as
        OpenSSL and BoringSSL do: "example.com." selects the certificate for
        example.com, a name no certificate holds gets the default one.
        """
        named = self.pki.server("example.com")
        default = self.pki.server("default.example")
        server_context = Context(credentials=[default.credential(), named.credential()])
        expected = {
            b"example.com.": named,
            b"EXAMPLE.com.": named,
            b"a_b.example": default,
            b"xn--zz.example": default,
            b"*.example.com": default,
        }
        for host, leaf in expected.items():
            for version in (ProtocolVersion.TLS_1_3, ProtocolVersion.TLS_1_2):
                with self.subTest(host=host, version=version):
                    client = Context(insecure_skip_verify=True, max_version=version)
                    server = Connection(server_context, is_client=False)
                    server.receive_data(self.hello_with_server_name(host, client))
                    self.assertEqual(server.server_name, host.decode())
                    flight = server.data_to_send()
                    if version == ProtocolVersion.TLS_1_2:
                        # Certificate travels in the clear in TLS 1.2.
                        self.assertIn(leaf.der, flight)
                        other = default if leaf is named else named
                        self.assertNotIn(other.der, flight)

    @given(st.binary(min_size=12, max_size=12))
    @settings(max_examples=100, deadline=None)
    def test_arbitrary_server_name_bytes(self, host: bytes) -> None:
        """Any SNI bytes: a handshake that goes on, or a peer-fault alert."""
        _, server_context = self.contexts()
        wire = self.hello_with_server_name(host, Context(insecure_skip_verify=True))
        conn = Connection(server_context, is_client=False)
        try:
            conn.receive_data(wire)
        except TLSError as e:
            self.assertIn(
                e.alert,
                {AlertDescription.illegal_parameter, AlertDescription.decode_error},
            )


class RefusedChainTests(HandshakeTestsMixin, SynchronousTestCase):
    """
    A chain refused by verification travels on the error (DER, leaf first,
    as sent) so that a report can show it; the handshake still fails.
    """

    def check(self, version: ProtocolVersion) -> None:
        other = CertificateFactory(self.mktemp(), name="Other")
        leaf = other.server("example.com")
        server_context = Context(
            credentials=[leaf.credential()], min_version=version, max_version=version
        )
        client_context = Context(trust_roots=self.pki.trust_roots)
        client, _, error = self.fail_handshake(client_context, server_context)
        self.assertIsInstance(error, CertificateError)
        self.assertEqual(error.alert, AlertDescription.unknown_ca)
        self.assertEqual(list(error.peer_certificates), leaf.chain_der)
        # Nothing about the refused chain is published as the peer's.
        self.assertEqual(client.state, ConnectionState.FAILED)
        self.assertEqual(client.peer_certificates, ())
        self.assertIsNone(client.handshake_result)

    def test_tls13(self) -> None:
        self.check(ProtocolVersion.TLS_1_3)

    def test_tls12(self) -> None:
        self.check(ProtocolVersion.TLS_1_2)

    def test_client_chain_refused_by_server(self) -> None:
        other = CertificateFactory(self.mktemp(), name="Other")
        stranger = other.client("client.example")
        client_context, server_context = self.contexts(
            server={
                "client_certificate": ClientCertificatePolicy.REQUIRE,
                "trust_roots": self.pki.trust_roots,
            },
            client={"credentials": [stranger.credential()]},
        )
        _, server, _ = self.fail_handshake(client_context, server_context)
        assert server.error is not None
        self.assertEqual(list(server.error.peer_certificates), stranger.chain_der)

    def test_other_errors_carry_no_chain(self) -> None:
        client_context, server_context = self.contexts(
            server={"alpn_protocols": [b"h2"]},
            client={"alpn_protocols": [b"http/1.1"]},
        )
        _, _, error = self.fail_handshake(client_context, server_context)
        self.assertEqual(error.alert, AlertDescription.no_application_protocol)
        self.assertEqual(error.peer_certificates, ())


class PeerSignatureSchemeTests(HandshakeTestsMixin, SynchronousTestCase):
    """
    ``peer_signature_scheme``: what the peer signed the handshake with, in
    the event and as a query; None when it signed nothing.
    """

    def check(
        self, key_type: str, version: ProtocolVersion, expected: SignatureScheme
    ) -> None:
        client_context, server_context = self.contexts(
            key_type,
            server={"min_version": version, "max_version": version},
        )
        client, server, client_events, _ = self.connect(client_context, server_context)
        [done] = of_type(client_events, HandshakeCompleted)
        self.assertEqual(done.peer_signature_scheme, expected)
        self.assertEqual(client.peer_signature_scheme, expected)
        # The server's peer (a client without certificate) signed nothing.
        self.assertIsNone(server.peer_signature_scheme)

    def test_tls13_ecdsa(self) -> None:
        self.check(
            "ecdsa-p256",
            ProtocolVersion.TLS_1_3,
            SignatureScheme.ecdsa_secp256r1_sha256,
        )

    def test_tls13_rsa(self) -> None:
        self.check(
            "rsa-2048", ProtocolVersion.TLS_1_3, SignatureScheme.rsa_pss_rsae_sha256
        )

    def test_tls13_ed25519(self) -> None:
        self.check("ed25519", ProtocolVersion.TLS_1_3, SignatureScheme.ed25519)

    def test_tls12_server_key_exchange(self) -> None:
        self.check(
            "rsa-2048", ProtocolVersion.TLS_1_2, SignatureScheme.rsa_pss_rsae_sha256
        )

    def test_client_certificate_verify(self) -> None:
        for version in (ProtocolVersion.TLS_1_3, ProtocolVersion.TLS_1_2):
            issued = self.pki.client("client.example", key_type="ecdsa-p256")
            client_context, server_context = self.contexts(
                server={
                    "client_certificate": ClientCertificatePolicy.REQUIRE,
                    "trust_roots": self.pki.trust_roots,
                    "max_version": version,
                },
                client={"credentials": [issued.credential()]},
            )
            _, server, _, _ = self.connect(client_context, server_context)
            self.assertEqual(server.version, version)
            self.assertEqual(
                server.peer_signature_scheme, SignatureScheme.ecdsa_secp256r1_sha256
            )

    def test_none_before_the_handshake(self) -> None:
        client_context, _ = self.contexts()
        client = Connection(client_context, is_client=True, server_name="example.com")
        client.start()
        self.assertIsNone(client.peer_signature_scheme)

    def test_none_when_resumed(self) -> None:
        """A resumption carries no CertificateVerify (RFC 8446 §2.2)."""
        client_context, server_context = self.contexts()
        client, _, _, _ = self.connect(client_context, server_context)
        session = client.session
        assert session is not None
        resumed = Connection(
            client_context, is_client=True, server_name="example.com", session=session
        )
        server = Connection(server_context, is_client=False)
        resumed.start()
        events, _ = pump(resumed, server)
        [done] = of_type(events, HandshakeCompleted)
        self.assertTrue(done.resumed)
        self.assertIsNone(done.peer_signature_scheme)
        self.assertIsNone(resumed.peer_signature_scheme)
