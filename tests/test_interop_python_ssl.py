"""Interoperability with Python's ``ssl`` module (the system's OpenSSL).

The stdlib peer runs in a thread over a loopback socket; the engine runs in
the test's thread through the blocking driver.  Python's client is set up as
applications set it up - ``create_default_context``: chain and host name
verification on - so these tests also prove that what the engine sends
satisfies an ordinary strict verifier.  The bulk tests move 4 MiB each way.
"""

from __future__ import annotations

import os
import socket
import ssl

from twisted.trial.unittest import SynchronousTestCase

from tests import peers
from tests.certs import CertificateFactory
from tests.driver import Driver
from twisted_sslfile.constants import (
    AlertDescription,
    ClientCertificatePolicy,
    ProtocolVersion,
)
from twisted_sslfile.context import Context
from twisted_sslfile.engine.connection import Connection
from twisted_sslfile.errors import CertificateError, RemoteAlertError, TLSError

MESSAGE = b"hello through the engine"
BULK = 4 * 1024 * 1024


class PythonSSLTestCase(SynchronousTestCase):
    def setUp(self) -> None:
        self.pki = CertificateFactory(self.mktemp())
        self.server_cert = self.pki.server("localhost")
        self.client_cert = self.pki.client("client.example")

    # -- the stdlib as server, the engine as client ----------------------------

    def python_server(
        self, talk: peers.Talk = peers.echo, **options: object
    ) -> peers.ListeningPeer:
        issued = self.server_cert
        assert issued.chain_path and issued.key_path
        ctx = peers.python_ssl_server_context(
            issued.chain_path,
            issued.key_path,
            **options,  # type: ignore[arg-type]
        )
        return peers.python_ssl_server(ctx, talk)

    def our_client(
        self, port: int, server_name: str = "localhost", **options: object
    ) -> Driver:
        options.setdefault("trust_roots", self.pki.ca_path)
        context = Context(**options)  # type: ignore[arg-type]
        sock = peers.connect_to(port)()
        self.addCleanup(sock.close)
        return Driver(
            Connection(context, is_client=True, server_name=server_name), sock
        )

    # -- the engine as server, the stdlib as client ----------------------------

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

    def python_client_context(self, **options: object) -> ssl.SSLContext:
        assert self.pki.ca_path is not None
        return peers.python_ssl_client_context(
            self.pki.ca_path,
            **options,  # type: ignore[arg-type]
        )


class ClientAgainstPythonServerTests(PythonSSLTestCase):
    """Our client, a stdlib ``ssl`` server echoing what it receives."""

    def test_echo(self) -> None:
        server = self.python_server()
        driver = self.our_client(server.port)
        completed = driver.handshake()
        self.assertEqual(completed.version, ProtocolVersion.TLS_1_3)
        self.assertTrue(completed.verified)
        driver.send_all(MESSAGE)
        self.assertEqual(driver.receive_exactly(len(MESSAGE)), MESSAGE)
        driver.close(wait_for_peer=True)
        self.assertTrue(driver.close_notify_received)
        result = server.result()
        self.assertEqual(result.received, MESSAGE)
        self.assertEqual(result.version, "TLSv1.3")
        self.assertEqual(result.cipher, driver.conn.cipher_suite.name)

    def test_bulk_echo(self) -> None:
        """4 MiB out and the same 4 MiB back, interleaved, through full records."""
        server = self.python_server()
        driver = self.our_client(server.port)
        driver.handshake()
        blob = os.urandom(BULK)
        driver.send_all(blob)
        self.assertEqual(driver.receive_exactly(BULK), blob)
        driver.close(wait_for_peer=True)
        self.assertEqual(server.result().received, blob)

    def test_alpn(self) -> None:
        server = self.python_server(alpn=["h2", "http/1.1"])
        driver = self.our_client(server.port, alpn_protocols=[b"http/1.1"])
        driver.handshake()
        self.assertEqual(driver.conn.alpn_protocol, b"http/1.1")
        driver.send_all(MESSAGE)
        self.assertEqual(driver.receive_exactly(len(MESSAGE)), MESSAGE)
        driver.close(wait_for_peer=True)
        self.assertEqual(server.result().alpn_protocol, "http/1.1")

    def test_client_certificate(self) -> None:
        server = self.python_server(client_ca=self.pki.ca_path)
        driver = self.our_client(
            server.port, credentials=[self.client_cert.credential()]
        )
        driver.handshake()
        driver.send_all(MESSAGE)
        self.assertEqual(driver.receive_exactly(len(MESSAGE)), MESSAGE)
        driver.close(wait_for_peer=True)
        self.assertEqual(server.result().peer_certificate, self.client_cert.der)

    def test_client_certificate_required_but_missing(self) -> None:
        server = self.python_server(client_ca=self.pki.ca_path)
        driver = self.our_client(server.port)
        with self.assertRaises(RemoteAlertError) as caught:
            driver.handshake()
            driver.receive_until_close()
        self.assertEqual(caught.exception.alert, AlertDescription.certificate_required)
        self.assertRaises(ssl.SSLError, server.result)

    def test_wrong_host_name(self) -> None:
        """We verify the name: a certificate for localhost is not example.org's."""
        server = self.python_server()
        driver = self.our_client(server.port, server_name="example.org")
        with self.assertRaises(CertificateError) as caught:
            driver.handshake()
        self.assertEqual(caught.exception.alert, AlertDescription.bad_certificate)
        with self.assertRaises(ssl.SSLError) as peer_error:
            server.result()
        self.assertIn("BAD_CERTIFICATE", str(peer_error.exception))


class ServerForPythonClientTests(PythonSSLTestCase):
    """Our server; a stdlib ``ssl`` client with default verification."""

    def test_echo(self) -> None:
        listener, port = self.listen()
        client = peers.python_ssl_client(
            self.python_client_context(), port, peers.say_then_read(MESSAGE)
        )
        driver = self.our_server(listener)
        completed = driver.handshake()
        self.assertEqual(completed.version, ProtocolVersion.TLS_1_3)
        self.assertEqual(completed.server_name, "localhost")
        self.assertEqual(driver.receive_exactly(len(MESSAGE)), MESSAGE)
        driver.send_all(MESSAGE[::-1])
        driver.close(wait_for_peer=True)
        result = client.result()
        self.assertEqual(result.received, MESSAGE[::-1])
        self.assertEqual(result.version, "TLSv1.3")
        self.assertEqual(result.peer_certificate, self.server_cert.der)

    def test_bulk_echo(self) -> None:
        """4 MiB from the stdlib client, echoed back by our server."""
        blob = os.urandom(BULK)

        def talk(send, recv):  # type: ignore[no-untyped-def]
            # Send from here while the echo comes back: read in between
            # so neither side's buffers fill up.
            received = bytearray()
            for i in range(0, len(blob), 256 * 1024):
                send(blob[i : i + 256 * 1024])
                while len(received) < i:
                    received += recv()
            while len(received) < len(blob):
                received += recv()
            return bytes(received)

        listener, port = self.listen()
        client = peers.python_ssl_client(self.python_client_context(), port, talk)
        driver = self.our_server(listener)
        driver.handshake()
        echoed = driver.echo_until_close()
        driver.close()
        self.assertEqual(echoed, blob)
        self.assertEqual(client.result().received, blob)

    def test_alpn(self) -> None:
        listener, port = self.listen()
        ctx = self.python_client_context(alpn=["http/1.1", "h2"])
        client = peers.python_ssl_client(ctx, port, peers.say_then_read(MESSAGE))
        driver = self.our_server(listener, alpn_protocols=[b"h2", b"http/1.1"])
        driver.handshake()
        self.assertEqual(driver.conn.alpn_protocol, b"h2")
        self.assertEqual(driver.receive_exactly(len(MESSAGE)), MESSAGE)
        driver.close(wait_for_peer=True)
        self.assertEqual(client.result().alpn_protocol, "h2")

    def test_alpn_no_overlap(self) -> None:
        listener, port = self.listen()
        ctx = self.python_client_context(alpn=["http/1.1"])
        client = peers.python_ssl_client(ctx, port, peers.say_then_read(MESSAGE))
        driver = self.our_server(listener, alpn_protocols=[b"h2"])
        with self.assertRaises(TLSError) as caught:
            driver.handshake()
        self.assertEqual(
            caught.exception.alert, AlertDescription.no_application_protocol
        )
        with self.assertRaises(ssl.SSLError) as peer_error:
            client.result()
        self.assertIn("no application protocol", str(peer_error.exception))

    def test_client_certificate(self) -> None:
        issued = self.client_cert
        listener, port = self.listen()
        ctx = self.python_client_context(
            cert_chain=issued.chain_path, key=issued.key_path
        )
        client = peers.python_ssl_client(ctx, port, peers.say_then_read(MESSAGE))
        driver = self.our_server(
            listener,
            client_certificate=ClientCertificatePolicy.REQUIRE,
            trust_roots=self.pki.ca_path,
        )
        driver.handshake()
        self.assertEqual(list(driver.conn.peer_certificates), issued.chain_der)
        self.assertEqual(driver.receive_exactly(len(MESSAGE)), MESSAGE)
        driver.close(wait_for_peer=True)
        client.result()

    def test_client_rejects_wrong_host_name(self) -> None:
        """The stdlib checks our certificate's name and says so with an alert.

        OpenSSL sends that alert before it has handshake write keys, so it is
        an unprotected record arriving after we switched our read keys: RFC
        8446 §5 lets the sender's current state decide, and OpenSSL's own
        servers accept plaintext alerts until the first protected record.
        """
        listener, port = self.listen()
        client = peers.python_ssl_client(
            self.python_client_context(),
            port,
            peers.say_then_read(MESSAGE),
            server_hostname="example.org",
        )
        driver = self.our_server(listener)
        with self.assertRaises(RemoteAlertError):
            driver.handshake()
        with self.assertRaises(ssl.SSLCertVerificationError) as caught:
            client.result()
        self.assertIn("Hostname mismatch", str(caught.exception))
