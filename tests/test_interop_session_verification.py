"""The session-verification rule against ``openssl s_server`` (issue 9 item 1).

A session that our client got from a connection that did not verify the
server (``insecure_skip_verify=True``) must not be offered by a client that
verifies: offered to a real server that knows the session, it would resume,
and the resumed connection would skip the certificate check.  Here the
server is OpenSSL's, which resumes whatever it is offered, so the only thing
standing between the session and a resumption is our client's rule; its
``-trace`` shows what each ClientHello offered.  For TLS 1.3 tickets, TLS
1.2 RFC 5077 tickets and TLS 1.2 session IDs (``-no_ticket``), and the
positive case: a session verified under the same roots and name still
resumes.  ``tests.test_session_verification`` covers the rule engine
against engine.
"""

from __future__ import annotations

from typing import Any

from tests import peers
from tests.certs import CertificateFactory
from tests.driver import Driver
from tests.test_interop_openssl import InteropTestCase, line
from tests.test_interop_resumption import psk_in
from tests.test_interop_tls12_resumption import (
    session_id_of,
    ticket_extension,
    traced_messages,
)
from twisted_sslfile.constants import AlertDescription, ProtocolVersion
from twisted_sslfile.context import Context
from twisted_sslfile.engine.connection import Connection
from twisted_sslfile.engine.events import HandshakeCompleted
from twisted_sslfile.engine.sessions import Session
from twisted_sslfile.errors import CertificateError

TLS12 = ProtocolVersion.TLS_1_2
TLS13 = ProtocolVersion.TLS_1_3

TICKET13 = "TLS 1.3 ticket"
TICKET12 = "TLS 1.2 ticket"
SESSION_ID12 = "TLS 1.2 session ID"


class OpenSSLServerTests(InteropTestCase):
    """Our client, one ``s_server`` per test accepting several connections."""

    def start_server(self, mechanism: str, naccept: int) -> peers.OpenSSLServer:
        issued = self.issue()
        assert issued.cert_path and issued.key_path
        server = peers.OpenSSLServer(
            issued.cert_path,
            issued.key_path,
            cert_chain=self.intermediates_path(issued),
            tls_version="1.3" if mechanism == TICKET13 else "1.2",
            naccept=naccept,
            extra=["-no_ticket"] if mechanism == SESSION_ID12 else [],
        )
        self.addCleanup(server.stop)
        return server.start()

    def context(self, mechanism: str, **options: Any) -> Context:
        if mechanism != TICKET13:
            options["max_version"] = TLS12
        return self.client_context(**options)

    def connect(
        self,
        server: peers.OpenSSLServer,
        context: Context,
        session: Session | None = None,
    ) -> Driver:
        sock = server.connect()
        self.addCleanup(sock.close)
        conn = Connection(
            context, is_client=True, server_name="localhost", session=session
        )
        return Driver(conn, sock, describe_peer=server.describe)

    def full_exchange(
        self,
        server: peers.OpenSSLServer,
        context: Context,
        session: Session | None = None,
    ) -> tuple[HandshakeCompleted, Session]:
        """A connection that completes: data both ways (a TLS 1.3 ticket
        arrives after the handshake and is read by then), then close."""
        driver = self.connect(server, context, session)
        completed = driver.handshake()
        ours = line("from-engine")
        driver.send_all(ours)
        server.expect_output(ours)
        theirs = line("from-openssl")
        server.write(theirs)
        self.assertEqual(driver.receive_exactly(len(theirs)), theirs)
        driver.close(wait_for_peer=True)
        session = driver.conn.session
        assert session is not None, server.describe()
        return completed, session

    def offers(self, server: peers.OpenSSLServer, mechanism: str) -> list[str]:
        """What each ClientHello s_server received offered, in order: the
        TLS 1.3 PSK ("psk"), the TLS 1.2 ticket or session ID (hex), or ""."""
        if mechanism == TICKET13:
            return ["psk" if p else "" for p in psk_in(server.trace, "ClientHello")]
        hellos = [
            text
            for direction, name, text in traced_messages(server.trace)
            if (direction, name) == ("Received", "ClientHello")
        ]
        if mechanism == TICKET12:
            return [ticket_extension(text) or "" for text in hellos]
        return [session_id_of(text) for text in hellos]

    def offer_of(self, mechanism: str, session: Session) -> str:
        """How :meth:`offers` shows ``session`` being offered."""
        if mechanism == TICKET13:
            return "psk"
        if mechanism == TICKET12:
            return session.ticket.hex().upper()
        return session.session_id.hex().upper()

    def check_insecure_session_not_offered(self, mechanism: str) -> None:
        """An insecure connection's session; a client trusting only an
        unrelated root is offered it and must not use it: full handshake,
        unknown_ca.  Then a client trusting the right root does not use it
        either: full handshake, verified."""
        server = self.start_server(mechanism, naccept=3)
        insecure = self.context(mechanism, insecure_skip_verify=True)
        completed, session = self.full_exchange(server, insecure)
        self.assertFalse(completed.verified)
        self.assertFalse(session.verified)

        unrelated = CertificateFactory(self.mktemp(), name="Unrelated").ca_path
        strict = self.context(mechanism, trust_roots=unrelated)
        driver = self.connect(server, strict, session)
        with self.assertRaises(CertificateError) as caught:
            driver.handshake()
        self.assertEqual(caught.exception.alert, AlertDescription.unknown_ca)

        completed, _ = self.full_exchange(server, self.context(mechanism), session)
        self.assertFalse(completed.resumed)
        self.assertTrue(completed.verified)
        server.wait()
        self.assertNotIn("Reused session-id", server.stdout.text)
        # Three full handshakes, each with a Certificate; no ClientHello
        # offered the insecure session.
        self.assertEqual(server.count_in_trace("Certificate"), 3, server.trace)
        offers = self.offers(server, mechanism)
        self.assertEqual(len(offers), 3, server.trace)
        self.assertNotIn(self.offer_of(mechanism, session), offers)
        if mechanism != SESSION_ID12:
            self.assertEqual(offers, ["", "", ""])

    def check_verified_session_resumes(self, mechanism: str) -> None:
        """The other side of the rule: a session verified under the same
        roots and name resumes, from another Context and through a file."""
        server = self.start_server(mechanism, naccept=2)
        _, session = self.full_exchange(server, self.context(mechanism))
        self.assertTrue(session.verified)
        restored = Session.from_bytes(session.to_bytes())
        completed, _ = self.full_exchange(server, self.context(mechanism), restored)
        self.assertTrue(completed.resumed, server.describe())
        self.assertTrue(completed.verified)
        self.assertEqual(server.wait(), 0, server.describe())
        self.assertEqual(server.count_in_trace("Certificate"), 1, server.trace)
        offers = self.offers(server, mechanism)
        self.assertEqual(offers[1], self.offer_of(mechanism, session))

    def test_tls13_ticket_of_insecure_session_not_offered(self) -> None:
        self.check_insecure_session_not_offered(TICKET13)

    def test_tls12_ticket_of_insecure_session_not_offered(self) -> None:
        self.check_insecure_session_not_offered(TICKET12)

    def test_tls12_session_id_of_insecure_session_not_offered(self) -> None:
        self.check_insecure_session_not_offered(SESSION_ID12)

    def test_tls13_verified_session_resumes(self) -> None:
        self.check_verified_session_resumes(TICKET13)

    def test_tls12_verified_ticket_resumes(self) -> None:
        self.check_verified_session_resumes(TICKET12)

    def test_tls12_verified_session_id_resumes(self) -> None:
        self.check_verified_session_resumes(SESSION_ID12)
