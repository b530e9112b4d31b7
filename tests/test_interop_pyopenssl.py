"""Interoperability with pyOpenSSL, whose bundled OpenSSL (3.5 or later)
offers the hybrid post-quantum group X25519MLKEM768 by default.

The system ``openssl`` (3.0) knows nothing of ML-KEM, so this is the peer
that proves our hybrid key exchange (draft-ietf-tls-ecdhe-mlkem) is the real
thing: both sides must report X25519MLKEM768 and still agree on every byte.
"""

from __future__ import annotations

import os
import socket

from OpenSSL import SSL
from twisted.trial.unittest import SynchronousTestCase

from tests import peers
from tests.certs import CertificateFactory
from tests.driver import Driver
from twisted_sslfile.constants import (
    AlertDescription,
    ClientCertificatePolicy,
    NamedGroup,
    ProtocolVersion,
)
from twisted_sslfile.context import Context
from twisted_sslfile.engine.connection import Connection
from twisted_sslfile.errors import RemoteAlertError, TLSError

MESSAGE = b"post-quantum hello"
MLKEM = "X25519MLKEM768"


class PyOpenSSLTestCase(SynchronousTestCase):
    def setUp(self) -> None:
        self.pki = CertificateFactory(self.mktemp())
        self.server_cert = self.pki.server("localhost")
        self.client_cert = self.pki.client("client.example")

    def pyopenssl_server(
        self, talk: peers.Talk = peers.echo, **options: object
    ) -> peers.ListeningPeer:
        ctx = peers.pyopenssl_context(
            cert_chain=self.server_cert.chain_path,
            key=self.server_cert.key_path,
            **options,  # type: ignore[arg-type]
        )
        return peers.pyopenssl_server(ctx, talk)

    def pyopenssl_client(
        self, port: int, talk: peers.Talk, **options: object
    ) -> peers.PeerThread:
        options.setdefault("ca_file", self.pki.ca_path)
        ctx = peers.pyopenssl_context(**options)  # type: ignore[arg-type]
        return peers.pyopenssl_client(ctx, port, talk)

    def our_client(self, port: int, **options: object) -> Driver:
        options.setdefault("trust_roots", self.pki.ca_path)
        context = Context(**options)  # type: ignore[arg-type]
        sock = peers.connect_to(port)()
        self.addCleanup(sock.close)
        conn = Connection(context, is_client=True, server_name="localhost")
        return Driver(conn, sock)

    def listen(self) -> tuple[socket.socket, int]:
        listener, port = peers.accept_one()
        self.addCleanup(listener.close)
        return listener, port

    def our_server(self, listener: socket.socket, **options: object) -> Driver:
        options.setdefault("credentials", [self.server_cert.credential()])
        context = Context(**options)  # type: ignore[arg-type]
        sock = peers.accept(listener)
        self.addCleanup(sock.close)
        return Driver(Connection(context, is_client=False), sock)


class ClientAgainstPyOpenSSLServerTests(PyOpenSSLTestCase):
    """Our client; a pyOpenSSL server with its library's default groups."""

    def test_hybrid_group(self) -> None:
        server = self.pyopenssl_server()
        driver = self.our_client(server.port)
        completed = driver.handshake()
        self.assertEqual(completed.version, ProtocolVersion.TLS_1_3)
        self.assertEqual(completed.group, NamedGroup.X25519MLKEM768)
        driver.send_all(MESSAGE)
        self.assertEqual(driver.receive_exactly(len(MESSAGE)), MESSAGE)
        driver.close(wait_for_peer=True)
        result = server.result()
        self.assertEqual(result.group, MLKEM)
        self.assertEqual(result.received, MESSAGE)

    def test_hybrid_group_bulk(self) -> None:
        """1 MiB echoed under keys from the hybrid exchange."""
        server = self.pyopenssl_server()
        driver = self.our_client(server.port)
        driver.handshake()
        self.assertEqual(driver.conn.group, NamedGroup.X25519MLKEM768)
        blob = os.urandom(1024 * 1024)
        driver.send_all(blob)
        self.assertEqual(driver.receive_exactly(len(blob)), blob)
        driver.close(wait_for_peer=True)
        self.assertEqual(server.result().received, blob)

    def test_hello_retry_request_to_hybrid_group(self) -> None:
        """No hybrid share offered, yet OpenSSL wants the hybrid group.

        OpenSSL 3.5+ ranks X25519MLKEM768 in a tier of its own above x25519
        and asks for it with a HelloRetryRequest rather than take the x25519
        share.  Ending on the hybrid group without having sent a share for
        it is only possible through HRR, so this proves our HRR handling
        with the 1,184-byte hybrid share in the second ClientHello.
        """
        for shares in ([NamedGroup.x25519], [NamedGroup.secp256r1], []):
            server = self.pyopenssl_server()
            driver = self.our_client(server.port, key_share_groups=shares)
            driver.handshake()
            self.assertEqual(driver.conn.group, NamedGroup.X25519MLKEM768)
            driver.send_all(MESSAGE)
            self.assertEqual(driver.receive_exactly(len(MESSAGE)), MESSAGE)
            driver.close(wait_for_peer=True)
            self.assertEqual(server.result().group, MLKEM)

    def test_classical_only_client(self) -> None:
        """Without the hybrid group we fall back to x25519; OpenSSL agrees."""
        server = self.pyopenssl_server()
        driver = self.our_client(
            server.port, groups=[NamedGroup.x25519, NamedGroup.secp256r1]
        )
        driver.handshake()
        self.assertEqual(driver.conn.group, NamedGroup.x25519)
        driver.send_all(MESSAGE)
        self.assertEqual(driver.receive_exactly(len(MESSAGE)), MESSAGE)
        driver.close(wait_for_peer=True)
        self.assertEqual(server.result().group, "x25519")

    def test_alpn_and_client_certificate(self) -> None:
        issued = self.client_cert
        server = self.pyopenssl_server(
            alpn=[b"h2", b"http/1.1"], client_ca=self.pki.ca_path
        )
        driver = self.our_client(
            server.port,
            alpn_protocols=[b"h2"],
            credentials=[issued.credential()],
        )
        driver.handshake()
        self.assertEqual(driver.conn.alpn_protocol, b"h2")
        driver.send_all(MESSAGE)
        self.assertEqual(driver.receive_exactly(len(MESSAGE)), MESSAGE)
        driver.close(wait_for_peer=True)
        result = server.result()
        self.assertEqual(result.alpn_protocol, "h2")
        self.assertEqual(result.peer_certificate, issued.der)
        self.assertEqual(result.group, MLKEM)

    def test_key_update(self) -> None:
        """KeyUpdate under hybrid keys; pyOpenSSL follows our request."""
        server = self.pyopenssl_server()
        driver = self.our_client(server.port)
        driver.handshake()
        for _ in range(3):
            driver.conn.key_update(request_peer=True)
            driver.send_all(MESSAGE)
            self.assertEqual(driver.receive_exactly(len(MESSAGE)), MESSAGE)
        driver.close(wait_for_peer=True)
        self.assertEqual(server.result().received, MESSAGE * 3)


class ServerForPyOpenSSLClientTests(PyOpenSSLTestCase):
    """Our server; a pyOpenSSL client sending its default key shares."""

    def test_hybrid_group(self) -> None:
        listener, port = self.listen()
        client = self.pyopenssl_client(port, peers.say_then_read(MESSAGE))
        driver = self.our_server(listener)
        completed = driver.handshake()
        self.assertEqual(completed.group, NamedGroup.X25519MLKEM768)
        self.assertEqual(completed.server_name, "localhost")
        self.assertEqual(driver.receive_exactly(len(MESSAGE)), MESSAGE)
        driver.send_all(MESSAGE.upper())
        driver.close(wait_for_peer=True)
        result = client.result()
        self.assertEqual(result.group, MLKEM)
        self.assertEqual(result.received, MESSAGE.upper())
        self.assertEqual(result.version, "TLSv1.3")

    def test_hybrid_group_bulk(self) -> None:
        blob = os.urandom(1024 * 1024)

        def talk(send, recv):  # type: ignore[no-untyped-def]
            received = bytearray()
            for i in range(0, len(blob), 128 * 1024):
                send(blob[i : i + 128 * 1024])
                while len(received) < i:
                    received += recv()
            while len(received) < len(blob):
                received += recv()
            return bytes(received)

        listener, port = self.listen()
        client = self.pyopenssl_client(port, talk)
        driver = self.our_server(listener)
        driver.handshake()
        self.assertEqual(driver.conn.group, NamedGroup.X25519MLKEM768)
        echoed = driver.echo_until_close()
        driver.close()
        self.assertEqual(echoed, blob)
        self.assertEqual(client.result().received, blob)

    def test_server_without_hybrid_group(self) -> None:
        """We do not take the hybrid group: x25519 from the client's shares."""
        listener, port = self.listen()
        client = self.pyopenssl_client(port, peers.say_then_read(MESSAGE))
        driver = self.our_server(
            listener, groups=[NamedGroup.x25519, NamedGroup.secp256r1]
        )
        driver.handshake()
        self.assertEqual(driver.conn.group, NamedGroup.x25519)
        self.assertEqual(driver.receive_exactly(len(MESSAGE)), MESSAGE)
        driver.close(wait_for_peer=True)
        self.assertEqual(client.result().group, "x25519")

    def test_hello_retry_request(self) -> None:
        """We accept P-256 only; OpenSSL sent hybrid and x25519 shares: HRR."""
        listener, port = self.listen()
        client = self.pyopenssl_client(port, peers.say_then_read(MESSAGE))
        driver = self.our_server(listener, groups=[NamedGroup.secp256r1])
        driver.handshake()
        self.assertEqual(driver.conn.group, NamedGroup.secp256r1)
        self.assertEqual(driver.receive_exactly(len(MESSAGE)), MESSAGE)
        driver.close(wait_for_peer=True)
        self.assertEqual(client.result().group, "secp256r1")

    def test_alpn_and_client_certificate(self) -> None:
        issued = self.client_cert
        listener, port = self.listen()
        client = self.pyopenssl_client(
            port,
            peers.say_then_read(MESSAGE),
            cert_chain=issued.chain_path,
            key=issued.key_path,
            alpn=[b"http/1.1", b"h2"],
        )
        driver = self.our_server(
            listener,
            alpn_protocols=[b"h2"],
            client_certificate=ClientCertificatePolicy.REQUIRE,
            trust_roots=self.pki.ca_path,
        )
        driver.handshake()
        self.assertEqual(driver.conn.alpn_protocol, b"h2")
        self.assertEqual(list(driver.conn.peer_certificates), issued.chain_der)
        self.assertEqual(driver.receive_exactly(len(MESSAGE)), MESSAGE)
        driver.close(wait_for_peer=True)
        self.assertEqual(client.result().alpn_protocol, "h2")

    def test_client_certificate_required_but_missing(self) -> None:
        listener, port = self.listen()
        client = self.pyopenssl_client(port, peers.say_then_read(MESSAGE))
        driver = self.our_server(
            listener,
            client_certificate=ClientCertificatePolicy.REQUIRE,
            trust_roots=self.pki.ca_path,
        )
        with self.assertRaises(TLSError) as caught:
            driver.handshake()
        self.assertEqual(caught.exception.alert, AlertDescription.certificate_required)
        with self.assertRaises(SSL.Error) as peer_error:
            client.result()
        self.assertIn("certificate required", str(peer_error.exception))

    def test_untrusted_server(self) -> None:
        """pyOpenSSL does not trust another PKI's root: its alert reaches us."""
        other = CertificateFactory(self.mktemp(), name="Other")
        listener, port = self.listen()
        client = self.pyopenssl_client(
            port, peers.say_then_read(MESSAGE), ca_file=other.ca_path
        )
        driver = self.our_server(listener)
        with self.assertRaises(RemoteAlertError) as caught:
            driver.handshake()
        self.assertEqual(caught.exception.alert, AlertDescription.unknown_ca)
        self.assertRaises(SSL.Error, client.result)
