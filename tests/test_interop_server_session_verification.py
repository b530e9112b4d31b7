"""The server's session-verification rule against ``openssl s_client``.

Issue 9 item 1, server side: ``s_client -cert``/``-key`` authenticates to
our server and saves the session (``-sess_out``); the next ``s_client``
offers it (``-sess_in``) to another of our servers sharing the ticket key
file (or, for TLS 1.2 session IDs, the session cache).  OpenSSL's client
offers whatever it saved, so only our server's rule decides: it resumes -
s_client prints "Reused" - only when the session's client-authentication
state holds under its own policy; with other client CAs, or a certificate
required where the session has none, s_client prints "New" and our server
reports a freshly verified chain.  For TLS 1.3 tickets, TLS 1.2 RFC 5077
tickets and TLS 1.2 session IDs (``-no_ticket``).
``tests.test_server_session_verification`` covers the rule engine against
engine.
"""

from __future__ import annotations

import os
from typing import Any

from tests import peers
from tests.certs import CertificateFactory
from tests.test_interop_openssl import InteropTestCase, line
from tests.test_interop_resumption import psk_in
from tests.test_interop_tls12_resumption import (
    session_id_of,
    ticket_extension,
    traced_messages,
)
from twisted_sslfile.constants import ClientCertificatePolicy, ProtocolVersion
from twisted_sslfile.context import Context
from twisted_sslfile.engine.events import HandshakeCompleted
from twisted_sslfile.engine.sessions import SessionCache
from twisted_sslfile.ticketkeyfile import generate_key_file

TICKET13 = "TLS 1.3 ticket"
TICKET12 = "TLS 1.2 ticket"
SESSION_ID12 = "TLS 1.2 session ID"

REQUEST = ClientCertificatePolicy.REQUEST
REQUIRE = ClientCertificatePolicy.REQUIRE


class OpenSSLClientTests(peers.EngineServerMixin, InteropTestCase):
    """``s_client -sess_out``/``-sess_in`` with a client certificate,
    against our servers sharing ticket keys or a session cache."""

    def setUp(self) -> None:
        super().setUp()
        self.other = CertificateFactory(self.mktemp(), name="Other")
        self.server_credential = self.issue().credential()
        self.client_certificate = self.issue_client()
        self.key_file = self.mktemp()
        generate_key_file(self.key_file, 2, os.urandom)
        self.cache = SessionCache(clock=Context().clock)
        self.listener, self.port = self.listen()

    def server(self, mechanism: str, **options: Any) -> Context:
        """One of the servers: client CAs of self.pki, a certificate
        required, ticket keys or session cache shared."""
        options.setdefault("credentials", [self.server_credential])
        options.setdefault("trust_roots", self.pki.ca_path)
        options.setdefault("client_certificate", REQUIRE)
        if mechanism == SESSION_ID12:
            options.update(session_tickets=False, session_cache=self.cache)
        else:
            options.update(ticket_key_file=self.key_file, session_cache=False)
        return Context(**options)

    def s_client(
        self, mechanism: str, *extra: str, certificate: bool = True
    ) -> peers.OpenSSLClient:
        options: dict[str, Any] = {}
        if certificate:
            issued = self.client_certificate
            options.update(
                cert=issued.cert_path,
                key=issued.key_path,
                cert_chain=self.intermediates_path(issued),
            )
        if mechanism == SESSION_ID12:
            extra = (*extra, "-no_ticket")
        client = peers.OpenSSLClient(
            self.port,
            ca_file=self.pki.ca_path,
            tls_version="1.3" if mechanism == TICKET13 else "1.2",
            extra=extra,
            **options,
        )
        # -brief prints no "New"/"Reused" verdict; the full output does.
        client.args.remove("-brief")
        self.addCleanup(client.stop)
        return client.start()

    def exchange(
        self,
        mechanism: str,
        server: Context,
        *extra: str,
        certificate: bool = True,
    ) -> tuple[HandshakeCompleted, str]:
        """One s_client connection: data both ways, s_client ends it.

        Returns our HandshakeCompleted and s_client's verdict, "New" or
        "Reused", which must agree with ours.
        """
        client = self.s_client(mechanism, *extra, certificate=certificate)
        driver = self.accept(self.listener, server, client.describe)
        completed = driver.handshake()
        version = "TLSv1.3" if mechanism == TICKET13 else "TLSv1.2"
        self.assertEqual(
            completed.version,
            ProtocolVersion.TLS_1_3
            if mechanism == TICKET13
            else ProtocolVersion.TLS_1_2,
        )
        ours = line("from-engine")
        driver.send_all(ours)
        client.expect_output(ours)
        theirs = line("from-openssl")
        client.write(theirs)
        self.assertEqual(driver.receive_exactly(len(theirs)), theirs)
        client.close_stdin()
        driver.receive_until_close()
        self.assertTrue(driver.close_notify_received, client.describe())
        driver.close()
        self.assertEqual(client.wait(), 0, client.describe())
        out = client.stdout.text
        verdict = "Reused" if f"Reused, {version}, Cipher is" in out else "New"
        if verdict == "New":
            self.assertIn(f"New, {version}, Cipher is", out)
        self.assertEqual(completed.resumed, verdict == "Reused", out)
        if "-sess_in" in extra:
            self.assertTrue(self.offered(mechanism, client), client.trace)
        return completed, verdict

    def offered(self, mechanism: str, client: peers.OpenSSLClient) -> bool:
        """Whether s_client's ClientHello offered a session."""
        if mechanism == TICKET13:
            return psk_in(client.trace, "ClientHello") == [True]
        [hello] = [
            text
            for direction, name, text in traced_messages(client.trace)
            if (direction, name) == ("Sent", "ClientHello")
        ]
        if mechanism == TICKET12:
            return bool(ticket_extension(hello))
        return bool(session_id_of(hello))

    def assertVerifiedClient(self, completed: HandshakeCompleted) -> None:
        self.assertTrue(completed.verified)
        self.assertEqual(completed.peer_certificates[0], self.client_certificate.der)

    def check_client_cas(self, mechanism: str) -> None:
        """A session from a server trusting self.pki's client CA: a server
        that trusts one more client CA does not resume it (s_client: New),
        a server with the same CA does (Reused), both verified."""
        path = self.mktemp()
        completed, verdict = self.exchange(
            mechanism, self.server(mechanism), "-sess_out", path
        )
        self.assertEqual(verdict, "New")
        self.assertVerifiedClient(completed)

        wider = self.server(
            mechanism, trust_roots=self.pki.trust_roots + self.other.trust_roots
        )
        completed, verdict = self.exchange(mechanism, wider, "-sess_in", path)
        self.assertEqual(verdict, "New")
        self.assertVerifiedClient(completed)

        same = self.server(mechanism, trust_roots=self.pki.trust_roots)
        completed, verdict = self.exchange(mechanism, same, "-sess_in", path)
        self.assertEqual(verdict, "Reused")
        self.assertVerifiedClient(completed)

    def check_optional_then_required(self, mechanism: str) -> None:
        """A session without a client certificate, from a server that only
        requests one: the same policy resumes it, a server that requires a
        certificate does not (and gets one in the full handshake)."""
        path = self.mktemp()
        optional = self.server(mechanism, client_certificate=REQUEST)
        completed, verdict = self.exchange(
            mechanism, optional, "-sess_out", path, certificate=False
        )
        self.assertEqual(verdict, "New")
        self.assertEqual(completed.peer_certificates, ())

        completed, verdict = self.exchange(
            mechanism, self.server(mechanism), "-sess_in", path
        )
        self.assertEqual(verdict, "New")
        self.assertVerifiedClient(completed)

        completed, verdict = self.exchange(
            mechanism, optional, "-sess_in", path, certificate=False
        )
        self.assertEqual(verdict, "Reused")
        self.assertEqual(completed.peer_certificates, ())
        self.assertFalse(completed.verified)

    def test_tls13_ticket_client_cas(self) -> None:
        self.check_client_cas(TICKET13)

    def test_tls12_ticket_client_cas(self) -> None:
        self.check_client_cas(TICKET12)

    def test_tls12_session_id_client_cas(self) -> None:
        self.check_client_cas(SESSION_ID12)

    def test_tls13_ticket_optional_then_required(self) -> None:
        self.check_optional_then_required(TICKET13)

    def test_tls12_ticket_optional_then_required(self) -> None:
        self.check_optional_then_required(TICKET12)

    def test_tls12_session_id_optional_then_required(self) -> None:
        self.check_optional_then_required(SESSION_ID12)
