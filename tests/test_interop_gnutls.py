"""Interoperability with GnuTLS 3.7: ``gnutls-serv`` and ``gnutls-cli``.

GnuTLS is a third, independent TLS stack (besides OpenSSL and tlslite-ng),
and the one that found the renegotiation bug of issue 9.15.  Compact on
purpose - the breadth is in the OpenSSL modules - but both roles and both
versions, ALPN, resumption (tickets and session IDs), TLS 1.2 renegotiation
after a handshake with tickets started by either side (issue 9.15), and the
client CA names of a CertificateRequest (issue 9.16).

``.ci/run`` installs Debian's gnutls-bin; without it these tests fail
(:func:`tests.peers.gnutls_binary`), they never skip.
"""

from __future__ import annotations

from typing import Any

from tests import peers
from tests.certs import CertificateFactory
from tests.driver import Driver
from tests.test_interop_openssl import InteropTestCase, line
from twisted_sslfile.constants import (
    CipherSuite,
    ClientCertificatePolicy,
    ContentType,
    ProtocolVersion,
)
from twisted_sslfile.context import Context
from twisted_sslfile.engine.connection import Connection
from twisted_sslfile.engine.events import HandshakeCompleted
from twisted_sslfile.engine.sessions import Session

TLS12 = ProtocolVersion.TLS_1_2
TLS13 = ProtocolVersion.TLS_1_3
VERSIONS = {"1.2": TLS12, "1.3": TLS13}


def completions(driver: Driver) -> list[HandshakeCompleted]:
    return [e for e in driver.events if isinstance(e, HandshakeCompleted)]


#: One TLS 1.2 AES-GCM suite, so that a record's plaintext is its length
#: less 5 header, 8 explicit nonce and 16 tag bytes.
GCM12 = [CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256]
GCM12_OVERHEAD = 5 + 8 + 16


class RecordSizes(Connection):
    """A Connection noting the plaintext size of each application_data
    record it sends (``data_to_send`` returns whole records)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sent_sizes: list[int] = []

    def data_to_send(self) -> bytes:
        data = super().data_to_send()
        offset = 0
        while offset < len(data):
            length = int.from_bytes(data[offset + 3 : offset + 5], "big")
            if data[offset] == ContentType.application_data:
                self.sent_sizes.append(length - (GCM12_OVERHEAD - 5))
            offset += 5 + length
        return data


def gnutls_name(cert: Any) -> str:
    """How gnutls-cli prints one of our test CAs' names ("O=...,CN=...")."""
    return ",".join(f"{a.rfc4514_attribute_name}={a.value}" for a in cert.subject)


# ---------------------------------------------------------------------------
# Our client, gnutls-serv
# ---------------------------------------------------------------------------


class ClientAgainstGnuTLSServerTests(InteropTestCase):
    def start_server(self, **options: Any) -> peers.GnuTLSServer:
        issued = self.issue()
        assert issued.chain_path and issued.key_path
        server = peers.GnuTLSServer(issued.chain_path, issued.key_path, **options)
        self.addCleanup(server.stop)
        return server.start()

    def connect(
        self, server: peers.GnuTLSServer, session: Session | None = None, **context: Any
    ) -> Driver:
        sock = server.connect()
        self.addCleanup(sock.close)
        conn = Connection(
            self.client_context(**context),
            is_client=True,
            server_name="localhost",
            session=session,
        )
        return Driver(conn, sock, describe_peer=server.describe)

    def echo(self, driver: Driver) -> None:
        """A line there and back (gnutls-serv --echo)."""
        data = line("from-engine")
        driver.send_all(data)
        self.assertEqual(driver.receive_exactly(len(data)), data)

    def session(self, server: peers.GnuTLSServer, **context: Any) -> Session:
        """One connection with data and a clean close; its session."""
        driver = self.connect(server, **context)
        self.assertFalse(driver.handshake().resumed)
        self.echo(driver)
        driver.close(wait_for_peer=True)
        session = driver.conn.session
        assert session is not None
        return session

    def test_versions(self) -> None:
        for name, version in VERSIONS.items():
            server = self.start_server(tls_version=name)
            driver = self.connect(server)
            done = driver.handshake()
            self.assertEqual(done.version, version)
            self.assertTrue(done.verified)
            self.echo(driver)
            driver.close(wait_for_peer=True)
            self.assertTrue(driver.close_notify_received)
            server.expect_output(f"- Version: TLS{name}")

    def test_alpn(self) -> None:
        """gnutls-serv takes the client's order (GnuTLS's default, without
        GNUTLS_ALPN_SERVER_PRECEDENCE), which RFC 7301 §3.2 leaves to it."""
        for name in VERSIONS:
            server = self.start_server(tls_version=name, alpn=["h2", "http/1.1"])
            driver = self.connect(server, alpn_protocols=[b"http/1.1", b"h2"])
            self.assertEqual(driver.handshake().alpn_protocol, b"http/1.1")
            self.echo(driver)
            server.expect_output("- Application protocol: http/1.1")

    def check_resumption(self, tls_version: str, *, tickets: bool) -> Session:
        server = self.start_server(tls_version=tls_version, tickets=tickets)
        session = self.session(server)
        driver = self.connect(server, session=session)
        done = driver.handshake()
        self.assertTrue(done.resumed)
        self.assertEqual(done.peer_certificates, session.peer_certificates)
        self.echo(driver)
        server.expect_output("*** This is a resumed session")
        return session

    def test_resumption_tls13(self) -> None:
        self.check_resumption("1.3", tickets=True)

    def test_resumption_tls12_ticket(self) -> None:
        session = self.check_resumption("1.2", tickets=True)
        self.assertTrue(session.ticket)

    def test_resumption_tls12_session_id(self) -> None:
        session = self.check_resumption("1.2", tickets=False)
        self.assertEqual(session.ticket, b"")
        self.assertEqual(len(session.session_id), 32)

    def renegotiating(self, **context: Any) -> tuple[peers.GnuTLSServer, Driver]:
        """A TLS 1.2 connection whose handshake got a ticket (issue 9.15)."""
        server = self.start_server(tls_version="1.2")
        driver = self.connect(server, **context)
        driver.handshake()
        session = driver.conn.session
        self.assertTrue(session is not None and session.ticket)
        self.echo(driver)
        return server, driver

    def test_renegotiation_with_tickets_from_us(self) -> None:
        """Issue 9.15: GnuTLS sends a NewSessionTicket in every
        renegotiation of a connection that had tickets, asked or not; we ask
        (as OpenSSL does), so it is expected."""
        server, driver = self.renegotiating()
        for round_ in range(2):
            driver.conn.renegotiate()
            driver.wait_for(
                lambda n=round_ + 2: len(completions(driver)) == n, "renegotiating"
            )
            self.echo(driver)
        driver.close(wait_for_peer=True)
        self.assertTrue(driver.close_notify_received, server.describe())

    def test_renegotiation_with_tickets_from_gnutls(self) -> None:
        """Issue 9.15, the server starting it: the **REHANDSHAKE** command
        makes gnutls-serv send HelloRequest."""
        server, driver = self.renegotiating(allow_peer_renegotiation=True)
        driver.send_all(b"**REHANDSHAKE**\n")
        driver.wait_for(lambda: len(completions(driver)) == 2, "renegotiating")
        answer = b"Successfully executed command\n"
        self.assertEqual(driver.receive_exactly(len(answer)), answer)
        self.echo(driver)
        driver.close(wait_for_peer=True)
        self.assertTrue(driver.close_notify_received, server.describe())

    def test_record_size_limit_tls12(self) -> None:
        """RFC 8449 in TLS 1.2: gnutls-serv answers our 1024 with its 512
        in the ServerHello; our 5000 bytes go out in records of 512 (GnuTLS
        would answer a larger one with record_overflow) and come back.

        GnuTLS ignores (does not answer) a client limit below 512, its own
        smallest record size, so ours is 1024."""
        server = self.start_server(tls_version="1.2", extra=["--recordsize", "512"])
        sock = server.connect()
        self.addCleanup(sock.close)
        conn = RecordSizes(
            self.client_context(
                record_size_limit=1024, max_version=TLS12, cipher_suites=GCM12
            ),
            is_client=True,
            server_name="localhost",
        )
        driver = Driver(conn, sock, describe_peer=server.describe)
        self.assertEqual(driver.handshake().version, TLS12)
        data = line("x" * 5000)
        driver.send_all(data)
        self.assertEqual(driver.receive_exactly(len(data)), data)
        self.assertEqual(max(conn.sent_sizes), 512)
        self.assertEqual(sum(conn.sent_sizes), len(data))
        driver.close(wait_for_peer=True)
        self.assertTrue(driver.close_notify_received, server.describe())

    def test_client_certificate_chosen_by_ca_names(self) -> None:
        """Issue 9.16, our client's side: holding a certificate from another
        CA first, we send the one issued under the CA gnutls-serv names."""
        stranger = CertificateFactory(self.mktemp(), name="Stranger").client("mallory")
        alice = self.issue_client()
        for name, version in VERSIONS.items():
            server = self.start_server(
                tls_version=name,
                client_ca=self.pki.ca_path,
                require_client_certificate=True,
            )
            driver = self.connect(
                server, credentials=[stranger.credential(), alice.credential()]
            )
            self.assertEqual(driver.handshake().version, version)
            self.echo(driver)
            server.expect_output("client.example")


# ---------------------------------------------------------------------------
# Our server, gnutls-cli
# ---------------------------------------------------------------------------


class ServerForGnuTLSClientTests(peers.EngineServerMixin, InteropTestCase):
    def start_client(
        self, context: Context, **options: Any
    ) -> tuple[Any, peers.GnuTLSClient]:
        listener, port = self.listen()
        options.setdefault("ca_file", self.pki.ca_path)
        client = peers.GnuTLSClient(port, **options)
        self.addCleanup(client.stop)
        client.start()
        return listener, client

    def exchange(self, driver: Driver, client: peers.GnuTLSClient) -> None:
        """Data both ways; gnutls-cli closes at end of input; clean exit."""
        client.expect_connected()
        theirs = line("from-gnutls")
        client.write(theirs)
        self.assertEqual(driver.receive_exactly(len(theirs)), theirs)
        ours = line("from-engine")
        driver.send_all(ours)
        client.expect_output(ours)
        client.close_stdin()
        driver.receive_until_close()
        self.assertTrue(driver.close_notify_received, client.describe())
        driver.close()
        self.assertEqual(client.wait(), 0, client.describe())

    def serve(
        self, context: Context, **options: Any
    ) -> tuple[Driver, peers.GnuTLSClient]:
        """One connection: handshake, exchange, close."""
        listener, client = self.start_client(context, **options)
        driver = self.accept(listener, context, client.describe)
        driver.handshake()
        self.exchange(driver, client)
        return driver, client

    def test_versions(self) -> None:
        for name, version in VERSIONS.items():
            driver, client = self.serve(self.server_context(), tls_version=name)
            self.assertEqual(driver.conn.version, version)
            description = client.description()
            assert description is not None
            self.assertTrue(description.startswith(f"(TLS{name}-X.509)"), description)
            client.expect_output("- Status: The certificate is trusted.")

    def test_alpn(self) -> None:
        for name in VERSIONS:
            context = self.server_context(alpn_protocols=[b"h2", b"http/1.1"])
            driver, client = self.serve(
                context, tls_version=name, alpn=["http/1.1", "h2"]
            )
            self.assertEqual(driver.conn.alpn_protocol, b"h2")
            client.expect_output("- Application protocol: h2")

    def check_resumption(
        self, context: Context, tls_version: str, **options: Any
    ) -> None:
        """``gnutls-cli --resume``: a full handshake, then a resumed one."""
        listener, client = self.start_client(
            context, tls_version=tls_version, resume=True, **options
        )
        first = self.accept(listener, context, client.describe)
        self.assertFalse(first.handshake().resumed)
        first.receive_until_close()
        first.sock.close()
        second = self.accept(listener, context, client.describe)
        self.assertTrue(second.handshake().resumed)
        self.exchange(second, client)
        client.expect_output("*** This is a resumed session")

    def test_resumption_tls13(self) -> None:
        # --waitresumption: read our NewSessionTicket before reconnecting.
        self.check_resumption(self.server_context(), "1.3", extra=["--waitresumption"])

    def test_resumption_tls12_ticket(self) -> None:
        """Issue 9.14: the RFC 5077 ticket alone (our session cache off)."""
        self.check_resumption(self.server_context(session_cache=False), "1.2")

    def test_resumption_tls12_session_id(self) -> None:
        """``--noticket``: no session_ticket extension; our session ID."""
        context = self.server_context()
        self.check_resumption(context, "1.2", tickets=False)
        assert context.session_cache is not None
        self.assertEqual(len(context.session_cache), 1)

    def test_renegotiation_with_tickets_from_gnutls(self) -> None:
        """Issue 9.15: ``--rehandshake`` right after a handshake that issued
        a ticket.  GnuTLS then waits for a NewSessionTicket in the
        renegotiation too, and we send it (it used to fail with "An
        unexpected TLS packet was received")."""
        context = self.server_context(allow_peer_renegotiation=True)
        listener, client = self.start_client(
            context, tls_version="1.2", rehandshake=True
        )
        driver = self.accept(listener, context, client.describe)
        driver.handshake()
        driver.wait_for(lambda: len(completions(driver)) == 2, "renegotiating")
        client.expect_output("- ReHandshake was completed")
        self.exchange(driver, client)

    def test_renegotiation_with_tickets_from_us(self) -> None:
        """Issue 9.15: our HelloRequest; gnutls-cli renegotiates, offering
        tickets again, and gets one."""
        context = self.server_context()
        listener, client = self.start_client(context, tls_version="1.2")
        driver = self.accept(listener, context, client.describe)
        driver.handshake()
        client.expect_connected()
        # No data until the renegotiation is over: GnuTLS refuses
        # application data in the middle of its handshake.
        driver.conn.renegotiate()
        driver.wait_for(lambda: len(completions(driver)) == 2, "renegotiating")
        client.expect_output("*** Rehandshake was performed")
        self.exchange(driver, client)

    def test_record_size_limit_tls12(self) -> None:
        """RFC 8449 in TLS 1.2: ``gnutls-cli --recordsize 512``; our
        ServerHello answers with 1024.  Our 5000-byte reply goes out in
        records of 512 (gnutls-cli would fail on a larger one).

        gnutls-cli 3.7.9 with ``--recordsize 512`` sends nothing of a line
        longer than 512 typed after the handshake (against gnutls-serv too),
        so its line is short; our read limit is tested in test_tls12."""
        context = self.server_context(
            record_size_limit=1024, max_version=TLS12, cipher_suites=GCM12
        )
        listener, client = self.start_client(
            context, tls_version="1.2", extra=["--recordsize", "512"]
        )
        sock, _ = listener.accept()
        self.addCleanup(sock.close)
        conn = RecordSizes(context, is_client=False)
        driver = Driver(conn, sock, describe_peer=client.describe)
        self.assertEqual(driver.handshake().version, TLS12)
        client.expect_connected()
        theirs = line("y" * 400)
        client.write(theirs)
        self.assertEqual(driver.receive_exactly(len(theirs)), theirs)
        ours = line("z" * 5000)
        driver.send_all(ours)
        client.expect_output(ours)
        self.assertEqual(max(conn.sent_sizes), 512)
        client.close_stdin()
        driver.receive_until_close()
        self.assertTrue(driver.close_notify_received, client.describe())
        driver.close()
        self.assertEqual(client.wait(), 0, client.describe())

    def test_client_ca_names(self) -> None:
        """Issue 9.16: gnutls-cli lists the CA names of our CertificateRequest
        in both versions, and sends its certificate."""
        other = CertificateFactory(self.mktemp(), name="Other")
        roots = [self.pki.root.certificate, other.root.certificate]
        issued = self.issue_client()
        for name in VERSIONS:
            context = self.server_context(
                client_certificate=ClientCertificatePolicy.REQUIRE, trust_roots=roots
            )
            driver, client = self.serve(
                context,
                tls_version=name,
                cert_chain=issued.chain_path,
                key=issued.key_path,
                verbose=True,
            )
            self.assertEqual(
                client.trusted_authorities(), [gnutls_name(root) for root in roots]
            )
            self.assertEqual(driver.conn.peer_certificates[0], issued.der)
