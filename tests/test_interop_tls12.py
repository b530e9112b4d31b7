"""TLS 1.2 interoperability: openssl s_server/s_client, tlslite-ng, pyOpenSSL.

Every TLS 1.2 suite with RSA and ECDSA certificates in both roles, NPN in
both roles (our client gets the protocol it chose; the other client's choice
shows as our ``next_protocol``), ALPN, client certificates, resumption and
secure renegotiation started by either side.  Nothing here is skipped: where
a peer cannot do something, the test asserts what it does instead.
"""

from __future__ import annotations

import socket
from typing import Any

from OpenSSL import SSL
from tlslite.api import HandshakeSettings, TLSConnection, X509CertChain, parsePEMKey

from tests import peers
from tests.driver import Driver
from tests.test_interop_openssl import InteropTestCase, line, traced_signature_schemes
from twisted_sslfile.constants import (
    AlertDescription,
    CipherSuite,
    ClientCertificatePolicy,
    ProtocolVersion,
)
from twisted_sslfile.context import Context
from twisted_sslfile.engine.connection import Connection
from twisted_sslfile.engine.events import AlertReceived, HandshakeCompleted
from twisted_sslfile.errors import RemoteAlertError, TLSError

TLS12 = ProtocolVersion.TLS_1_2
CS = CipherSuite

#: Our suite -> (OpenSSL's name, the certificate key type that serves it).
SUITES = {
    CS.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256: (
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "ecdsa-p256",
    ),
    CS.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384: (
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "ecdsa-p384",
    ),
    CS.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256: (
        "ECDHE-ECDSA-CHACHA20-POLY1305",
        "ecdsa-p256",
    ),
    CS.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256: (
        "ECDHE-RSA-AES128-GCM-SHA256",
        "rsa-2048",
    ),
    CS.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384: (
        "ECDHE-RSA-AES256-GCM-SHA384",
        "rsa-2048",
    ),
    CS.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256: (
        "ECDHE-RSA-CHACHA20-POLY1305",
        "rsa-2048",
    ),
}


def completions(driver: Driver) -> list[HandshakeCompleted]:
    return [e for e in driver.events if isinstance(e, HandshakeCompleted)]


# ---------------------------------------------------------------------------
# Our client, openssl s_server
# ---------------------------------------------------------------------------


class ClientAgainstOpenSSLServerTests(InteropTestCase):
    def start_server(
        self, key_type: str = "ecdsa-p256", **options: Any
    ) -> peers.OpenSSLServer:
        issued = self.issue(key_type)
        assert issued.cert_path and issued.key_path
        options.setdefault("cert_chain", self.intermediates_path(issued))
        options.setdefault("tls_version", "1.2")
        server = peers.OpenSSLServer(issued.cert_path, issued.key_path, **options)
        self.addCleanup(server.stop)
        return server.start()

    def connect(
        self, server: peers.OpenSSLServer, session: Any = None, **context: Any
    ) -> Driver:
        context.setdefault("max_version", TLS12)
        sock = server.connect()
        self.addCleanup(sock.close)
        kwargs: dict[str, Any] = {"session": session} if session is not None else {}
        conn = Connection(
            self.client_context(**context),
            is_client=True,
            server_name="localhost",
            **kwargs,
        )
        return Driver(conn, sock, describe_peer=server.describe)

    def exchange(self, driver: Driver, server: peers.OpenSSLServer) -> None:
        ours = line("from-engine")
        driver.send_all(ours)
        server.expect_output(ours)
        theirs = line("from-openssl")
        server.write(theirs)
        self.assertEqual(driver.receive_exactly(len(theirs)), theirs)

    def close(self, driver: Driver, server: peers.OpenSSLServer) -> None:
        driver.close(wait_for_peer=True)
        self.assertTrue(driver.close_notify_received, "s_server sent no close_notify")
        self.assertEqual(server.wait(), 0, server.describe())

    def check_suite(self, suite: CipherSuite) -> None:
        name, key_type = SUITES[suite]
        server = self.start_server(key_type, ciphers=name)
        driver = self.connect(server)
        done = driver.handshake()
        self.assertEqual((done.version, done.cipher_suite), (TLS12, suite))
        self.assertTrue(done.verified)
        self.assertTrue(driver.conn.handshake_state.extended_master_secret)
        self.exchange(driver, server)
        server.expect_output(f"CIPHER is {name}")
        server.expect_output("Secure Renegotiation IS supported")
        self.close(driver, server)
        # ServerKeyExchange's scheme, as s_server's trace (complete once it
        # exited) has it.
        assert done.peer_signature_scheme is not None
        self.assertEqual(
            traced_signature_schemes(server), [done.peer_signature_scheme.name]
        )

    def test_ecdhe_ecdsa_aes128_gcm(self) -> None:
        self.check_suite(CS.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256)

    def test_ecdhe_ecdsa_aes256_gcm(self) -> None:
        self.check_suite(CS.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384)

    def test_ecdhe_ecdsa_chacha20(self) -> None:
        self.check_suite(CS.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256)

    def test_ecdhe_rsa_aes128_gcm(self) -> None:
        self.check_suite(CS.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256)

    def test_ecdhe_rsa_aes256_gcm(self) -> None:
        self.check_suite(CS.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384)

    def test_ecdhe_rsa_chacha20(self) -> None:
        self.check_suite(CS.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256)

    def test_tls13_capable_client_settles_on_tls12(self) -> None:
        server = self.start_server()
        driver = self.connect(server, max_version=ProtocolVersion.TLS_1_3)
        self.assertEqual(driver.handshake().version, TLS12)
        self.exchange(driver, server)
        self.close(driver, server)

    def test_npn(self) -> None:
        """We choose by NPN's rule; s_server reports our choice."""
        server = self.start_server(npn="foo,bar")
        driver = self.connect(server, npn_protocols=[b"bar", b"baz"])
        done = driver.handshake()
        self.assertEqual(done.next_protocol, b"bar")
        self.assertEqual(driver.conn.next_protocol, b"bar")
        self.exchange(driver, server)
        server.expect_output("NEXTPROTO is bar")
        self.close(driver, server)

    def test_npn_no_overlap_picks_our_first(self) -> None:
        server = self.start_server(npn="foo")
        driver = self.connect(server, npn_protocols=[b"mine", b"other"])
        self.assertEqual(driver.handshake().next_protocol, b"mine")
        self.exchange(driver, server)
        server.expect_output("NEXTPROTO is mine")
        self.close(driver, server)

    def test_alpn(self) -> None:
        server = self.start_server(alpn="http/1.1,h2")
        driver = self.connect(server, alpn_protocols=[b"h2"])
        self.assertEqual(driver.handshake().alpn_protocol, b"h2")
        self.exchange(driver, server)
        self.close(driver, server)

    def test_client_certificate(self) -> None:
        for key_type in ("rsa-2048", "ecdsa-p256"):
            client = self.issue_client(key_type)
            server = self.start_server(
                verify=2, require_client_certificate=True, ca_file=self.pki.ca_path
            )
            driver = self.connect(server, credentials=[client.credential()])
            driver.handshake()
            self.exchange(driver, server)
            server.expect_output(b"Client certificate")
            self.close(driver, server)

    def test_resumption(self) -> None:
        """Ticket (default) and session-ID (-no_ticket) resumption."""
        for extra in ((), ("-no_ticket",)):
            server = self.start_server(naccept=2, extra=extra)
            first = self.connect(server)
            self.assertFalse(first.handshake().resumed)
            self.exchange(first, server)
            session = first.conn.session
            self.assertIsNotNone(session)
            self.assertEqual(bool(session.ticket), not extra)
            first.close(wait_for_peer=True)
            second = self.connect(server, session=session)
            done = second.handshake()
            self.assertTrue(done.resumed, extra)
            self.assertEqual(done.peer_certificates, session.peer_certificates)
            self.exchange(second, server)
            self.close(second, server)
            self.assertEqual(server.count_in_trace("Certificate"), 1, server.trace)

    def test_renegotiation_from_us(self) -> None:
        server = self.start_server(extra=["-client_renegotiation"])
        driver = self.connect(server)
        driver.handshake()
        self.exchange(driver, server)
        # No data inside the new handshake: OpenSSL 3.0 answers application
        # data between its ServerHello and our Finished with
        # unexpected_message (the in-memory tests interleave it).
        driver.conn.renegotiate()
        driver.wait_for(lambda: len(completions(driver)) == 2, "renegotiating")
        self.exchange(driver, server)
        self.assertEqual(server.count_in_trace("ClientHello"), 2, server.trace)
        self.close(driver, server)

    def test_renegotiation_refused_by_openssl(self) -> None:
        """OpenSSL 3 refuses client renegotiation by default (a warning
        no_renegotiation); the connection goes on."""
        server = self.start_server()
        driver = self.connect(server)
        driver.handshake()
        driver.conn.renegotiate()
        driver.wait_for(
            lambda: any(isinstance(e, AlertReceived) for e in driver.events),
            "waiting for no_renegotiation",
        )
        [alert] = [e for e in driver.events if isinstance(e, AlertReceived)]
        self.assertEqual(alert.description, AlertDescription.no_renegotiation)
        self.exchange(driver, server)
        self.close(driver, server)

    def test_renegotiation_from_openssl(self) -> None:
        """s_server's ``r`` command sends HelloRequest; we renegotiate."""
        server = self.start_server()
        driver = self.connect(server, allow_peer_renegotiation=True)
        driver.handshake()
        self.exchange(driver, server)
        server.write(b"r\n")
        driver.wait_for(lambda: len(completions(driver)) == 2, "renegotiating")
        self.exchange(driver, server)
        self.assertEqual(server.count_in_trace("HelloRequest"), 1, server.trace)
        self.close(driver, server)

    def test_renegotiation_from_openssl_refused(self) -> None:
        """We refuse with a no_renegotiation warning; OpenSSL, having asked,
        answers with a fatal handshake_failure."""
        server = self.start_server()
        driver = self.connect(server)
        driver.handshake()
        self.exchange(driver, server)
        server.write(b"r\n")
        with self.assertRaises(RemoteAlertError) as caught:
            driver.wait_for(lambda: False, "waiting for OpenSSL's answer")
        self.assertEqual(caught.exception.alert, AlertDescription.handshake_failure)
        server.expect_error_output("no renegotiation")


# ---------------------------------------------------------------------------
# Our server, openssl s_client
# ---------------------------------------------------------------------------


class ServerForOpenSSLClientTests(InteropTestCase):
    def start_client(
        self, context: Context | None = None, **options: Any
    ) -> tuple[Driver, peers.OpenSSLClient]:
        listener, port = peers.accept_one()
        options.setdefault("ca_file", self.pki.ca_path)
        options.setdefault("tls_version", "1.2")
        client = peers.OpenSSLClient(port, **options)
        self.addCleanup(client.stop)
        client.start()
        sock = peers.accept(listener)
        self.addCleanup(sock.close)
        conn = Connection(context or self.server_context(), is_client=False)
        return Driver(conn, sock, describe_peer=client.describe), client

    def exchange(self, driver: Driver, client: peers.OpenSSLClient) -> None:
        theirs = line("from-openssl")
        client.write(theirs)
        self.assertEqual(driver.receive_exactly(len(theirs)), theirs)
        ours = line("from-engine")
        driver.send_all(ours)
        client.expect_output(ours)

    def close(self, driver: Driver, client: peers.OpenSSLClient) -> None:
        client.close_stdin()
        driver.receive_until_close()
        self.assertTrue(driver.close_notify_received, "s_client sent no close_notify")
        driver.close()
        self.assertEqual(client.wait(), 0, client.describe())

    def serve(
        self, context: Context | None = None, **options: Any
    ) -> tuple[Driver, peers.OpenSSLClient]:
        driver, client = self.start_client(context, **options)
        done = driver.handshake()
        self.assertEqual(done.version, TLS12)
        client.expect_connected()
        self.exchange(driver, client)
        self.assertEqual(client.summary("Protocol version"), "TLSv1.2")
        return driver, client

    def check_suite(self, suite: CipherSuite) -> None:
        name, key_type = SUITES[suite]
        driver, client = self.serve(self.server_context(key_type), ciphers=name)
        self.assertEqual(driver.conn.cipher_suite, suite)
        self.assertEqual(client.summary("Ciphersuite"), name)
        self.assertTrue(driver.conn.handshake_state.extended_master_secret)
        self.close(driver, client)
        self.assertEqual(client.summary("Verification"), "OK", client.describe())

    def test_ecdhe_ecdsa_aes128_gcm(self) -> None:
        self.check_suite(CS.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256)

    def test_ecdhe_ecdsa_aes256_gcm(self) -> None:
        self.check_suite(CS.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384)

    def test_ecdhe_ecdsa_chacha20(self) -> None:
        self.check_suite(CS.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256)

    def test_ecdhe_rsa_aes128_gcm(self) -> None:
        self.check_suite(CS.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256)

    def test_ecdhe_rsa_aes256_gcm(self) -> None:
        self.check_suite(CS.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384)

    def test_ecdhe_rsa_chacha20(self) -> None:
        self.check_suite(CS.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256)

    def test_downgrade_sentinel_is_harmless_to_a_tls12_client(self) -> None:
        """Our 1.3-capable server marks its random; a 1.2 client ignores it."""
        driver, client = self.serve(self.server_context())
        self.assertEqual(
            driver.conn.handshake_state.server_random[-8:].hex(), "444f574e47524401"
        )
        self.close(driver, client)

    def test_npn(self) -> None:
        """s_client's choice shows as our next_protocol.

        OpenSSL's SSL_select_next_proto walks the *server's* list and picks
        the first protocol the client also has (server preference), not the
        draft's client-preference rule; with server [foo, bar] and client
        [bar, foo] it picks foo.
        """
        context = self.server_context(npn_protocols=[b"foo", b"bar"])
        driver, client = self.serve(context, npn="bar,foo")
        self.assertEqual(driver.conn.next_protocol, b"foo")
        self.close(driver, client)

    def test_npn_no_overlap(self) -> None:
        """No common protocol: OpenSSL's client sends its own first."""
        context = self.server_context(npn_protocols=[b"foo"])
        driver, client = self.serve(context, npn="mine,other")
        self.assertEqual(driver.conn.next_protocol, b"mine")
        self.close(driver, client)

    def test_alpn(self) -> None:
        context = self.server_context(alpn_protocols=[b"h2", b"http/1.1"])
        driver, client = self.serve(context, alpn="http/1.1,h2")
        self.assertEqual(driver.conn.alpn_protocol, b"h2")
        self.close(driver, client)

    def test_client_certificate(self) -> None:
        for key_type in ("rsa-2048", "ecdsa-p384"):
            issued = self.issue_client(key_type)
            context = self.server_context(
                client_certificate=ClientCertificatePolicy.REQUIRE,
                trust_roots=self.pki.ca_path,
            )
            driver, client = self.serve(
                context,
                cert=issued.cert_path,
                key=issued.key_path,
                cert_chain=self.intermediates_path(issued),
            )
            self.assertEqual(driver.conn.peer_certificates[0], issued.der)
            self.close(driver, client)

    def test_client_ca_names(self) -> None:
        """Issue 9.16: the CertificateRequest names our client CAs (RFC 5246
        §7.4.4), and s_client lists them; without explicit client CAs (the
        system bundle) it says none were sent."""
        self.check_client_ca_names(TLS12)

    def test_resumption_sess_out_sess_in(self) -> None:
        """s_client -sess_out, then -sess_in: tickets, then session IDs."""
        for options in ({}, {"session_tickets": False}):
            context = self.server_context(**options)
            path = self.mktemp()
            driver, client = self.serve(context, extra=["-sess_out", path])
            self.assertFalse(completions(driver)[0].resumed)
            self.close(driver, client)
            driver, client = self.serve(context, extra=["-sess_in", path])
            self.assertTrue(completions(driver)[0].resumed, options)
            self.close(driver, client)

    def test_resumption_sess_in_no_ticket(self) -> None:
        """``-no_ticket``: s_client sends no session_ticket extension at all
        and resumes by our session ID, tickets on here (issue 9.14)."""
        context = self.server_context()
        path = self.mktemp()
        driver, client = self.serve(context, extra=["-sess_out", path, "-no_ticket"])
        self.assertFalse(completions(driver)[0].resumed)
        self.close(driver, client)
        driver, client = self.serve(context, extra=["-sess_in", path, "-no_ticket"])
        self.assertTrue(completions(driver)[0].resumed)
        self.close(driver, client)
        self.assertEqual(client.count_in_trace("Certificate"), 0, client.trace)
        self.assertEqual(client.count_in_trace("NewSessionTicket"), 0, client.trace)

    def test_session_id_resumption_issues_a_ticket(self) -> None:
        """RFC 5077 §3.2 (issue 9.14): a session from a server without
        tickets resumes by its session ID on one with them; s_client sent an
        empty session_ticket extension, so it gets a ticket in the
        abbreviated handshake.  (s_client saves no session from a TLS 1.2
        resumption, so that the ticket resumes in turn is shown in
        tests.test_tls12.)"""
        without_tickets = self.server_context(session_tickets=False)
        with_tickets = without_tickets.replace(session_tickets=True)
        self.assertIs(with_tickets.session_cache, without_tickets.session_cache)
        path = self.mktemp()
        driver, client = self.serve(without_tickets, extra=["-sess_out", path])
        self.close(driver, client)
        self.assertEqual(client.count_in_trace("NewSessionTicket"), 0, client.trace)
        driver, client = self.serve(with_tickets, extra=["-sess_in", path])
        self.assertTrue(completions(driver)[0].resumed)
        self.close(driver, client)
        self.assertEqual(client.count_in_trace("Certificate"), 0, client.trace)
        self.assertEqual(client.count_in_trace("NewSessionTicket"), 1, client.trace)

    def test_resumption_without_the_session_suite(self) -> None:
        """RFC 5246 §7.4.1.2 (issue 9.14): s_client offers its saved session
        (ticket or session ID) with a cipher list that lacks the session's
        suite; we refuse with illegal_parameter, as OpenSSL's own server
        does (docs/security.rst)."""
        for options in ({}, {"session_tickets": False}):
            context = self.server_context(**options)
            path = self.mktemp()
            driver, client = self.serve(
                context,
                ciphers="ECDHE-ECDSA-AES128-GCM-SHA256",
                extra=["-sess_out", path],
            )
            self.close(driver, client)
            driver, client = self.start_client(
                context,
                ciphers="ECDHE-ECDSA-AES256-GCM-SHA384",
                extra=["-sess_in", path],
            )
            with self.assertRaises(TLSError) as caught:
                driver.handshake()
            self.assertEqual(caught.exception.alert, AlertDescription.illegal_parameter)
            client.expect_error_output("alert illegal parameter")

    def test_renegotiation_from_openssl(self) -> None:
        context = self.server_context(allow_peer_renegotiation=True)
        driver, client = self.serve(context)
        client.write(b"R\n")
        client.expect_error_output("RENEGOTIATING")
        driver.wait_for(lambda: len(completions(driver)) == 2, "renegotiating")
        self.exchange(driver, client)
        self.close(driver, client)

    def test_renegotiation_from_openssl_refused(self) -> None:
        """We refuse with a warning; OpenSSL's client then fails the
        connection with handshake_failure (it insists on renegotiating)."""
        driver, client = self.serve(self.server_context())
        client.write(b"R\n")
        with self.assertRaises(RemoteAlertError) as caught:
            driver.wait_for(lambda: False, "waiting for OpenSSL's answer")
        self.assertEqual(caught.exception.alert, AlertDescription.handshake_failure)
        client.expect_error_output("no renegotiation")

    def test_renegotiation_from_us(self) -> None:
        """HelloRequest: s_client renegotiates, data keeps flowing."""
        driver, client = self.serve(self.server_context())
        driver.conn.renegotiate()
        driver.wait_for(lambda: len(completions(driver)) == 2, "renegotiating")
        self.exchange(driver, client)
        self.assertEqual(client.count_in_trace("ClientHello"), 2, client.trace)
        self.close(driver, client)


# ---------------------------------------------------------------------------
# tlslite-ng: NPN in both roles
# ---------------------------------------------------------------------------


def _tlslite_settings() -> HandshakeSettings:
    settings = HandshakeSettings()
    settings.minVersion = (3, 3)
    settings.maxVersion = (3, 3)
    return settings


class TLSLiteTests(InteropTestCase):
    """tlslite-ng: pure Python, with NPN in both roles."""

    def test_our_client_npn(self) -> None:
        issued = self.issue("rsa-2048")
        assert issued.chain_path and issued.key_path
        with open(issued.chain_path) as f:
            chain = X509CertChain()
            chain.parsePemList(f.read())
        with open(issued.key_path) as f:
            key = parsePEMKey(f.read(), private=True)

        def serve(sock: socket.socket) -> peers.PeerResult:
            tls = TLSConnection(sock)
            tls.handshakeServer(
                certChain=chain,
                privateKey=key,
                nextProtos=[b"spdy/2", b"http/1.1"],
                settings=_tlslite_settings(),
            )
            data = tls.read(max=5)
            tls.write(data.upper())
            tls.close()
            return peers.PeerResult(
                version=tls.version,
                extra={"next_proto": tls.next_proto},
                received=data,
            )

        peer = peers.ListeningPeer(serve).start()
        conn = Connection(
            self.client_context(npn_protocols=[b"http/1.1", b"spdy/3"]),
            is_client=True,
            server_name="localhost",
        )
        sock = peer.connect()
        self.addCleanup(sock.close)
        driver = Driver(conn, sock)
        done = driver.handshake()
        self.assertEqual((done.version, done.next_protocol), (TLS12, b"http/1.1"))
        driver.send_all(b"hello")
        self.assertEqual(driver.receive_exactly(5), b"HELLO")
        driver.close(wait_for_peer=True)
        result = peer.result()
        self.assertEqual(result.extra["next_proto"], b"http/1.1")

    def test_our_server_npn(self) -> None:
        context = self.server_context(
            "rsa-2048", npn_protocols=[b"spdy/2", b"http/1.1"]
        )

        def run() -> peers.PeerResult:
            with peers.connect_to(port)() as sock:
                tls = TLSConnection(sock)
                tls.handshakeClientCert(
                    nextProtos=[b"http/1.1"],
                    settings=_tlslite_settings(),
                    serverName="localhost",
                )
                tls.write(b"hello")
                data = tls.read(max=5)
                tls.close()
                return peers.PeerResult(
                    extra={"next_proto": tls.next_proto}, received=data
                )

        listener, port = peers.accept_one()
        thread = peers.PeerThread(run).start()
        sock = peers.accept(listener)
        self.addCleanup(sock.close)
        driver = Driver(Connection(context, is_client=False), sock)
        done = driver.handshake()
        self.assertEqual(done.next_protocol, b"http/1.1")
        self.assertEqual(driver.receive_exactly(5), b"hello")
        driver.send_all(b"HELLO")
        driver.receive_until_close()
        driver.close()
        result = thread.result()
        self.assertEqual(result.received, b"HELLO")
        self.assertEqual(result.extra["next_proto"], b"http/1.1")


# ---------------------------------------------------------------------------
# pyOpenSSL: TLS 1.2 both roles
# ---------------------------------------------------------------------------


class PyOpenSSLTests(InteropTestCase):
    def tls12_context(self, **kwargs: Any) -> SSL.Context:
        ctx = peers.pyopenssl_context(tls13_only=False, **kwargs)
        ctx.set_max_proto_version(SSL.TLS1_2_VERSION)
        return ctx

    def test_our_client(self) -> None:
        for key_type in ("rsa-2048", "ecdsa-p256"):
            issued = self.issue(key_type)
            peer = peers.pyopenssl_server(
                self.tls12_context(
                    cert_chain=issued.chain_path,
                    key=issued.key_path,
                    alpn=[b"h2"],
                )
            )
            sock = peer.connect()
            self.addCleanup(sock.close)
            conn = Connection(
                self.client_context(alpn_protocols=[b"h2"]),
                is_client=True,
                server_name="localhost",
            )
            driver = Driver(conn, sock)
            done = driver.handshake()
            self.assertEqual((done.version, done.alpn_protocol), (TLS12, b"h2"))
            driver.send_all(b"echo me")
            self.assertEqual(driver.receive_exactly(7), b"echo me")
            driver.close(wait_for_peer=True)
            result = peer.result()
            self.assertEqual(result.version, "TLSv1.2")
            self.assertEqual(result.received, b"echo me")

    def test_our_server(self) -> None:
        for key_type in ("rsa-2048", "ecdsa-p384"):
            listener, port = peers.accept_one()
            thread = peers.pyopenssl_client(
                self.tls12_context(ca_file=self.pki.ca_path),
                port,
                peers.say_then_read(b"from pyopenssl"),
            )
            sock = peers.accept(listener)
            self.addCleanup(sock.close)
            driver = Driver(
                Connection(self.server_context(key_type), is_client=False), sock
            )
            self.assertEqual(driver.handshake().version, TLS12)
            self.assertEqual(driver.receive_exactly(14), b"from pyopenssl")
            driver.send_all(b"from engine")
            driver.close(wait_for_peer=False)
            result = thread.result()
            self.assertEqual(result.version, "TLSv1.2")
            self.assertEqual(result.received, b"from engine")
