"""Replay of RFC 8448 §3, "Simple 1-RTT Handshake", through the engine.

The RFC's keys and randoms are injected through ``Context.random``; the
engine must then derive every secret the RFC lists and put the RFC's bytes
on the wire.

The client side is replayed whole. Its ClientHello offers things this
library deliberately does not (ffdhe groups, SHA-1 signature schemes), so a
scripted client sends the RFC's ClientHello verbatim; everything after it —
processing the server's flight, the secrets, the Finished record, the
application data and close_notify records — is the real engine.

The server side is replayed up to its encrypted flight: the ServerHello is
byte for byte the RFC's, the handshake traffic secrets are the RFC's, and
the Certificate message inside the flight is the RFC's. The rest of that
flight differs on purpose: the RFC's server lists ffdhe groups in
EncryptedExtensions, which ours never advertises, and acknowledges a server
name that did not choose its certificate, so the transcript (and
with it CertificateVerify and Finished) diverges from there. Those two are
checked for correctness instead (signature verifies with the RFC's public
key; Finished is the HMAC the key schedule gives for our transcript).
"""

from __future__ import annotations

from collections.abc import Iterator

from cryptography import x509 as cx509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from twisted.trial.unittest import SynchronousTestCase

from tests import rfc8448 as rfc
from twisted_sslfile.constants import CipherSuite, NamedGroup, ProtocolVersion
from twisted_sslfile.context import Context, Credential
from twisted_sslfile.engine import keyschedule, messages
from twisted_sslfile.engine.connection import Connection
from twisted_sslfile.engine.events import (
    ApplicationData,
    HandshakeCompleted,
    SessionTicket,
)
from twisted_sslfile.engine.negotiation import ClientNegotiator
from twisted_sslfile.engine.record import RecordLayer, TLS13Protection


def scripted_random(*values: bytes) -> object:
    """A ``Context.random`` that hands out the RFC's values in order."""
    queue: Iterator[bytes] = iter(values)

    def random(length: int) -> bytes:
        value = next(queue)
        if len(value) != length:
            raise AssertionError(
                f"engine asked for {length} bytes, script has {value!r}"
            )
        return value

    return random


def logged(keylog: list[str], label: str) -> bytes:
    """The one secret ``label`` names in an NSS-format key log."""
    [secret] = [line.split()[2] for line in keylog if line.split()[0] == label]
    return bytes.fromhex(secret)


class RFC8448Client(ClientNegotiator):
    """Sends the RFC's ClientHello instead of building its own."""

    def _build_client_hello(self) -> messages.ClientHello:
        return messages.ClientHello.parse(rfc.CLIENT_HELLO[4:])


class RFC8448Connection(Connection):
    client_negotiator_class = RFC8448Client


class ClientReplayTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.keylog: list[str] = []
        context = Context(
            # The RFC's certificate is a bare self-signed "rsa" test cert.
            insecure_skip_verify=True,
            groups=[NamedGroup.x25519],
            key_share_groups=[NamedGroup.x25519],
            min_version=ProtocolVersion.TLS_1_3,
            random=scripted_random(rfc.CLIENT_X25519_PRIVATE),  # type: ignore[arg-type]
            keylog=self.keylog.append,
        )
        self.client = RFC8448Connection(context, is_client=True, server_name="server")
        self.client.start()

    def test_client_hello(self) -> None:
        self.assertEqual(self.client.data_to_send(), rfc.CLIENT_HELLO_RECORD)

    def test_full_exchange(self) -> None:
        client = self.client
        client.data_to_send()
        events = client.receive_data(rfc.SERVER_HELLO_RECORD)
        self.assertEqual(events, [])
        # The secrets as a key log sees them: the connection exposes none.
        self.assertEqual(
            logged(self.keylog, "CLIENT_HANDSHAKE_TRAFFIC_SECRET"),
            rfc.CLIENT_HANDSHAKE_TRAFFIC_SECRET,
        )
        self.assertEqual(
            logged(self.keylog, "SERVER_HANDSHAKE_TRAFFIC_SECRET"),
            rfc.SERVER_HANDSHAKE_TRAFFIC_SECRET,
        )
        # No compatibility-mode CCS: the RFC's ClientHello has no session id.
        self.assertEqual(client.data_to_send(), b"")

        [done] = client.receive_data(rfc.SERVER_FLIGHT_RECORD)
        self.assertIsInstance(done, HandshakeCompleted)
        self.assertEqual(done.cipher_suite, CipherSuite.TLS_AES_128_GCM_SHA256)
        self.assertEqual(done.group, NamedGroup.x25519)
        self.assertEqual(done.peer_certificates, (rfc.CERTIFICATE_DER,))
        self.assertEqual(client.data_to_send(), rfc.CLIENT_FINISHED_RECORD)
        self.assertEqual(
            logged(self.keylog, "EXPORTER_SECRET"), rfc.EXPORTER_MASTER_SECRET
        )
        # The resumption master secret is checked through what it derives:
        # the ticket's PSK below (RFC 8446 §4.6.1).

        # The ticket becomes a Session holding the RFC's resumption PSK.
        [ticket] = client.receive_data(rfc.NEW_SESSION_TICKET_RECORD)
        self.assertIsInstance(ticket, SessionTicket)
        self.assertEqual(ticket.session.resumption_psk, rfc.RESUMPTION_PSK)
        self.assertEqual(ticket.session.ticket, rfc_ticket())
        self.assertIs(client.session, ticket.session)
        client.send(rfc.APPLICATION_DATA)
        self.assertEqual(client.data_to_send(), rfc.CLIENT_APPLICATION_DATA_RECORD)
        self.assertEqual(
            client.receive_data(rfc.SERVER_APPLICATION_DATA_RECORD),
            [ApplicationData(rfc.APPLICATION_DATA)],
        )
        client.close()
        self.assertEqual(client.data_to_send(), rfc.CLIENT_ALERT_RECORD)

    def test_key_log(self) -> None:
        """
        Context(keylog=...) receives the RFC's five secrets, named by the
        RFC's ClientHello.random, in the NSS key log format; and the
        CertificateVerify scheme is reported.
        """
        client = self.client
        client.data_to_send()
        client.receive_data(rfc.SERVER_HELLO_RECORD)
        client.receive_data(rfc.SERVER_FLIGHT_RECORD)
        random = rfc.CLIENT_RANDOM.hex()
        self.assertEqual(
            self.keylog,
            [
                f"{label} {random} {secret.hex()}"
                for label, secret in (
                    (
                        "CLIENT_HANDSHAKE_TRAFFIC_SECRET",
                        rfc.CLIENT_HANDSHAKE_TRAFFIC_SECRET,
                    ),
                    (
                        "SERVER_HANDSHAKE_TRAFFIC_SECRET",
                        rfc.SERVER_HANDSHAKE_TRAFFIC_SECRET,
                    ),
                    (
                        "CLIENT_TRAFFIC_SECRET_0",
                        rfc.CLIENT_APPLICATION_TRAFFIC_SECRET_0,
                    ),
                    (
                        "SERVER_TRAFFIC_SECRET_0",
                        rfc.SERVER_APPLICATION_TRAFFIC_SECRET_0,
                    ),
                    ("EXPORTER_SECRET", rfc.EXPORTER_MASTER_SECRET),
                )
            ],
        )
        self.assertEqual(client.peer_signature_scheme, rfc.SIGNATURE_SCHEME)


class ServerReplayTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.keylog: list[str] = []
        certificate = cx509.load_der_x509_certificate(rfc.CERTIFICATE_DER)
        context = Context(
            credentials=[Credential([certificate], rfc.server_rsa_private_key())],
            cipher_suites=[CipherSuite.TLS_AES_128_GCM_SHA256],
            min_version=ProtocolVersion.TLS_1_3,
            record_size_limit=0x4001,
            random=scripted_random(  # type: ignore[arg-type]
                rfc.SERVER_X25519_PRIVATE, rfc.SERVER_RANDOM
            ),
            keylog=self.keylog.append,
        )
        self.server = Connection(context, is_client=False)

    def test_server_flight(self) -> None:
        self.server.receive_data(rfc.CLIENT_HELLO_RECORD)
        wire = self.server.data_to_send()
        self.assertEqual(wire[: len(rfc.SERVER_HELLO_RECORD)], rfc.SERVER_HELLO_RECORD)
        # A server logs under its client's random too (what Wireshark looks up).
        random = rfc.CLIENT_RANDOM.hex()
        self.assertEqual(
            self.keylog[:2],
            [
                f"CLIENT_HANDSHAKE_TRAFFIC_SECRET {random} "
                f"{rfc.CLIENT_HANDSHAKE_TRAFFIC_SECRET.hex()}",
                f"SERVER_HANDSHAKE_TRAFFIC_SECRET {random} "
                f"{rfc.SERVER_HANDSHAKE_TRAFFIC_SECRET.hex()}",
            ],
        )

        # Decrypt the flight with the RFC's server handshake key and iv.
        reader = RecordLayer()
        reader.set_read_protection(
            TLS13Protection(
                CipherSuite.TLS_AES_128_GCM_SHA256,
                rfc.SERVER_HANDSHAKE_KEY,
                rfc.SERVER_HANDSHAKE_IV,
            )
        )
        reader.feed(wire[len(rfc.SERVER_HELLO_RECORD) :])
        plaintext = b""
        while (record := reader.next_record()) is not None:
            plaintext += bytes(record.payload)
        reassembler = messages.HandshakeReassembler(1 << 16)
        reassembler.feed(plaintext)
        found = []
        while (message := reassembler.pop()) is not None:
            found.append(message)
        types = [msg_type for msg_type, _, _ in found]
        self.assertEqual(types, [8, 11, 15, 20])
        encrypted_extensions = messages.EncryptedExtensions.parse(found[0][2])
        # Ours acknowledges SNI only when the name chose the certificate
        # (RFC 6066 §3); the RFC's certificate is for "rsa", not "server".
        self.assertFalse(encrypted_extensions.server_name_ack)
        self.assertEqual(encrypted_extensions.record_size_limit, 0x4001)
        self.assertEqual(found[1][1], rfc.CERTIFICATE)

        transcript = keyschedule.Transcript()
        transcript.set_hash(rfc_hash())
        for raw in (rfc.CLIENT_HELLO, rfc.SERVER_HELLO, found[0][1], found[1][1]):
            transcript.update(raw)
        verify = messages.CertificateVerify.parse(found[2][2])
        self.assertEqual(verify.algorithm, rfc.SIGNATURE_SCHEME)
        rfc.server_rsa_private_key().public_key().verify(
            verify.signature,
            b" " * 64 + b"TLS 1.3, server CertificateVerify\x00" + transcript.digest(),
            padding.PSS(padding.MGF1(rfc_hash()()), rfc_hash().digest_size),
            rfc_hash()(),
        )
        transcript.update(found[2][1])
        finished = messages.Finished.parse(found[3][2])
        self.assertEqual(
            finished.verify_data,
            keyschedule.finished_verify_data(
                rfc_hash(), rfc.SERVER_HANDSHAKE_TRAFFIC_SECRET, transcript.digest()
            ),
        )


def rfc_ticket() -> bytes:
    """The ticket field of the RFC's NewSessionTicket."""
    return messages.NewSessionTicket.parse(rfc.NEW_SESSION_TICKET[4:]).ticket


def rfc_hash() -> type[hashes.HashAlgorithm]:
    """RFC 8448 §3 negotiates TLS_AES_128_GCM_SHA256."""
    return hashes.SHA256
