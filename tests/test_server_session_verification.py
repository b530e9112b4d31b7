"""Which sessions a server resumes, and what it reports of the client's chain.

Issue 9, item 1, server side: a resumed handshake carries no client
Certificate, so the sealed ticket (or the session-ID cache entry) stands for
the check of the client's chain.  Servers that share a ticket key file may
trust different client CAs, and a server's own configuration may change
while its tickets live; a ticket used to say only "verified", and another
server resumed it reporting ``verified=True`` for a chain it never checked.
The rule now (:func:`twisted_sslfile.engine.handshake.
resumed_client_authentication`): the state records the server's
:func:`~twisted_sslfile.x509.client_verification_policy`, and a server
resumes it only when the client-authentication state is valid under its own
current policy; otherwise it declines and does a full handshake (RFC 8446
§4.2.11, RFC 5077 §3.3, RFC 5246 §7.4.1.2).

In memory, our client against our servers, for TLS 1.3 tickets, TLS 1.2
tickets and TLS 1.2 session IDs.  The servers share a ticket key file (as a
fleet does) or a session cache (as a server whose Context was replaced
does).  ``tests.test_interop_server_session_verification`` does the same
with ``openssl s_client``.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from tests.certs import CertificateFactory
from tests.test_connection import of_type, pump
from tests.test_session_verification import first_client_hello
from twisted_sslfile.constants import (
    AlertDescription,
    ClientCertificatePolicy,
    ProtocolVersion,
)
from twisted_sslfile.context import Context
from twisted_sslfile.engine.connection import Connection
from twisted_sslfile.engine.events import HandshakeCompleted
from twisted_sslfile.engine.messages import ClientHello
from twisted_sslfile.engine.sessions import ServerSessionState, Session, SessionCache
from twisted_sslfile.errors import CertificateError, HandshakeFailureError, TLSError
from twisted_sslfile.ticketkeyfile import generate_key_file

TLS12 = ProtocolVersion.TLS_1_2

TICKET13 = "TLS 1.3 ticket"
TICKET12 = "TLS 1.2 ticket"
SESSION_ID12 = "TLS 1.2 session ID"
MECHANISMS = (TICKET13, TICKET12, SESSION_ID12)

REQUEST = ClientCertificatePolicy.REQUEST
REQUIRE = ClientCertificatePolicy.REQUIRE
NONE = ClientCertificatePolicy.NONE


def offered(mechanism: str, hello: ClientHello, session: Session) -> bool:
    """Whether ``hello`` offers ``session``, in its mechanism's own way."""
    if mechanism == TICKET13:
        psks = hello.pre_shared_key
        return psks is not None and psks.identities[0].identity == session.ticket
    if mechanism == TICKET12:
        return hello.session_ticket == session.ticket
    return hello.legacy_session_id == session.session_id


def as_format_1(state: ServerSessionState) -> bytes:
    """``state`` as a release before the rule sealed it (format 1).

    Format 2 is format 1 plus the client verification policy as a last
    field (a one-byte length and the digest), and the format byte first.
    """
    data = state.encode()
    return b"\x01" + data[1 : len(data) - 1 - len(state.verification_policy)]


@dataclasses.dataclass
class Outcome:
    """One connection: what the client offered and how each side ended."""

    hello: ClientHello = dataclasses.field(repr=False)
    client: Connection = dataclasses.field(repr=False)
    server: HandshakeCompleted | None = None
    error: TLSError | None = None

    def completed(self) -> HandshakeCompleted:
        assert self.server is not None, self.error
        return self.server


class ServerSessionVerificationTests(SynchronousTestCase):
    """The server's rule, for each resumption mechanism."""

    def setUp(self) -> None:
        self.pki = CertificateFactory(self.mktemp())
        self.other = CertificateFactory(self.mktemp(), name="Other")
        self.server_credential = self.pki.server("example.com").credential()
        self.client_certificate = self.pki.client("client.example")
        # What every server of the "fleet" shares: a ticket key file, and
        # (for session IDs) a session cache.
        self.key_file = self.mktemp()
        generate_key_file(self.key_file, 2, os.urandom)
        self.cache = SessionCache(clock=Context().clock)

    def server(self, mechanism: str, **options: Any) -> Context:
        """A server of the fleet: client CAs of self.pki, a certificate
        required, unless ``options`` say otherwise."""
        options.setdefault("credentials", [self.server_credential])
        options.setdefault("trust_roots", self.pki.trust_roots)
        options.setdefault("client_certificate", REQUIRE)
        if mechanism == SESSION_ID12:
            options.update(session_tickets=False, session_cache=self.cache)
        else:
            options.update(ticket_key_file=self.key_file, session_cache=False)
        if mechanism != TICKET13:
            options["max_version"] = TLS12
        return Context(**options)

    def client(self, mechanism: str, *, certificate: bool = True) -> Context:
        options: dict[str, Any] = {"trust_roots": self.pki.trust_roots}
        if certificate:
            options["credentials"] = [self.client_certificate.credential()]
        if mechanism != TICKET13:
            options["max_version"] = TLS12
        return Context(**options)

    def connect(
        self, client_context: Context, server_context: Context, session: Session | None
    ) -> Outcome:
        client = Connection(
            client_context, is_client=True, server_name="example.com", session=session
        )
        server = Connection(server_context, is_client=False)
        client.start()
        flight = client.data_to_send()
        outcome = Outcome(first_client_hello(flight), client)
        try:
            server_events = server.receive_data(flight)
            _, more = pump(client, server)
        except TLSError as e:
            outcome.error = e
            return outcome
        [outcome.server] = of_type(server_events + more, HandshakeCompleted)
        return outcome

    def session(
        self, mechanism: str, server: Context, *, certificate: bool = True
    ) -> Session:
        """The session a full handshake with ``server`` leaves the client."""
        outcome = self.connect(
            self.client(mechanism, certificate=certificate), server, None
        )
        done = outcome.completed()
        self.assertFalse(done.resumed, mechanism)
        self.assertEqual(done.verified, certificate, mechanism)
        session = outcome.client.session
        assert session is not None, mechanism
        return session

    def resume(
        self,
        mechanism: str,
        server: Context,
        session: Session,
        *,
        certificate: bool = True,
    ) -> Outcome:
        """Offer ``session`` to ``server`` (the client always offers it)."""
        outcome = self.connect(
            self.client(mechanism, certificate=certificate), server, session
        )
        self.assertTrue(offered(mechanism, outcome.hello, session), mechanism)
        return outcome

    def assertFullHandshake(self, mechanism: str, outcome: Outcome) -> None:
        """A full handshake that verified the client's chain anew."""
        done = outcome.completed()
        self.assertFalse(done.resumed, mechanism)
        self.assertTrue(done.verified, mechanism)
        self.assertEqual(
            done.peer_certificates, tuple(self.client_certificate.chain_der), mechanism
        )

    def assertResumed(
        self, mechanism: str, outcome: Outcome, *, chain: bool, verified: bool
    ) -> None:
        done = outcome.completed()
        self.assertTrue(done.resumed, mechanism)
        self.assertEqual(done.verified, verified, mechanism)
        expected = tuple(self.client_certificate.chain_der) if chain else ()
        self.assertEqual(done.peer_certificates, expected, mechanism)

    # -- servers with other client CAs ----------------------------------------

    def test_other_client_cas_do_not_resume(self) -> None:
        """The issue's case: two servers share the ticket keys (or the
        cache) and trust different client CAs.  The second does not resume
        the first one's session: in the full handshake that follows it
        refuses the client's chain, as it must (unknown_ca)."""
        for mechanism in MECHANISMS:
            session = self.session(mechanism, self.server(mechanism))
            other = self.server(mechanism, trust_roots=self.other.trust_roots)
            outcome = self.resume(mechanism, other, session)
            assert isinstance(outcome.error, CertificateError), (mechanism, outcome)
            self.assertEqual(outcome.error.alert, AlertDescription.unknown_ca)

    def test_wider_client_cas_verify_again(self) -> None:
        """A server that trusts one more client CA is another policy too:
        full handshake, the chain verified under its own roots; the session
        that handshake leaves then resumes there."""
        for mechanism in MECHANISMS:
            session = self.session(mechanism, self.server(mechanism))
            wider = self.server(
                mechanism, trust_roots=self.pki.trust_roots + self.other.trust_roots
            )
            outcome = self.resume(mechanism, wider, session)
            self.assertFullHandshake(mechanism, outcome)
            assert outcome.client.session is not None
            again = self.resume(mechanism, wider, outcome.client.session)
            self.assertResumed(mechanism, again, chain=True, verified=True)

    def test_chain_length_limit_is_part_of_the_policy(self) -> None:
        for mechanism in MECHANISMS:
            session = self.session(mechanism, self.server(mechanism))
            stricter = self.server(mechanism, max_certificate_chain_length=4)
            self.assertFullHandshake(
                mechanism, self.resume(mechanism, stricter, session)
            )

    # -- the same policy keeps resuming ---------------------------------------

    def test_same_policy_resumes(self) -> None:
        """Another server with the same client CAs (from a file rather than
        a list) resumes, reporting the chain as verified, whether it
        requires a certificate or only requests one; the sessions those
        resumptions leave resume too."""
        for mechanism in MECHANISMS:
            session = self.session(mechanism, self.server(mechanism))
            for requirement in (REQUIRE, REQUEST):
                same = self.server(
                    mechanism,
                    trust_roots=self.pki.ca_path,
                    client_certificate=requirement,
                )
                outcome = self.resume(mechanism, same, session)
                self.assertResumed(mechanism, outcome, chain=True, verified=True)
                renewed = outcome.client.session
                assert renewed is not None
                again = self.resume(mechanism, self.server(mechanism), renewed)
                self.assertResumed(mechanism, again, chain=True, verified=True)

    # -- a certificate required now -------------------------------------------

    def test_optional_then_required(self) -> None:
        """A session of a client that sent no certificate to a server that
        only requested one does not let the client skip a server that
        requires one: no resumption; the full handshake then asks for the
        certificate (and fails without one)."""
        for mechanism in MECHANISMS:
            optional = self.server(mechanism, client_certificate=REQUEST)
            session = self.session(mechanism, optional, certificate=False)
            # The same requirement resumes it, with no chain.
            outcome = self.resume(mechanism, optional, session, certificate=False)
            self.assertResumed(mechanism, outcome, chain=False, verified=False)

            required = self.server(mechanism, client_certificate=REQUIRE)
            outcome = self.resume(mechanism, required, session)
            self.assertFullHandshake(mechanism, outcome)
            outcome = self.resume(mechanism, required, session, certificate=False)
            if mechanism == TICKET13:
                assert isinstance(outcome.error, CertificateError), outcome
                self.assertEqual(
                    outcome.error.alert, AlertDescription.certificate_required
                )
            else:
                self.assertIsInstance(outcome.error, HandshakeFailureError, mechanism)

    # -- servers that do not verify client certificates -----------------------

    def test_server_without_client_authentication(self) -> None:
        """A server that asks for no client certificate resumes a session
        that carries a verified chain, but reports what its own full
        handshakes report: no chain, not verified.  It never claims a
        verification under CAs it does not have; the session it leaves
        carries no chain, so a server that requires one does not resume it."""
        for mechanism in MECHANISMS:
            session = self.session(mechanism, self.server(mechanism))
            plain = self.server(mechanism, client_certificate=NONE, trust_roots=None)
            outcome = self.resume(mechanism, plain, session)
            self.assertResumed(mechanism, outcome, chain=False, verified=False)
            if mechanism != SESSION_ID12:
                # A session ID is resumed as it was cached; tickets are new.
                renewed = outcome.client.session
                assert renewed is not None and renewed is not session
                self.assertFullHandshake(
                    mechanism, self.resume(mechanism, self.server(mechanism), renewed)
                )

    def test_server_that_does_not_verify(self) -> None:
        """``insecure_skip_verify=True`` on a server: it resumes a verified
        chain but reports it unverified, as its full handshakes do; and a
        verifying server does not resume the unverified chain it sealed."""
        for mechanism in MECHANISMS:
            session = self.session(mechanism, self.server(mechanism))
            insecure = self.server(mechanism, insecure_skip_verify=True)
            outcome = self.resume(mechanism, insecure, session)
            self.assertResumed(mechanism, outcome, chain=True, verified=False)

            fresh = self.connect(self.client(mechanism), insecure, None)
            done = fresh.completed()
            self.assertFalse(done.resumed)
            self.assertFalse(done.verified)
            assert fresh.client.session is not None
            outcome = self.resume(
                mechanism, self.server(mechanism), fresh.client.session
            )
            self.assertFullHandshake(mechanism, outcome)

    # -- tickets sealed before the rule ---------------------------------------

    def test_old_format_ticket_ignored(self) -> None:
        """A ticket whose state is of format 1 (sealed by a release before
        the rule, under keys still in the file) says nothing about the
        client CAs: it is ignored and a full handshake follows.  The same
        state sealed in format 2 resumes, so only the format decides."""
        for mechanism in (TICKET13, TICKET12):
            server = self.server(mechanism)
            session = self.session(mechanism, server)
            keys = server.session_tickets
            assert keys is not None
            plaintext = keys.open(session.ticket)
            assert plaintext is not None
            state = ServerSessionState.decode(plaintext)
            assert state is not None and state.verified
            old = dataclasses.replace(session, ticket=keys.seal(as_format_1(state)))
            self.assertFullHandshake(mechanism, self.resume(mechanism, server, old))
            resealed = dataclasses.replace(session, ticket=keys.seal(plaintext))
            outcome = self.resume(mechanism, server, resealed)
            self.assertResumed(mechanism, outcome, chain=True, verified=True)
