"""Which sessions a verifying client offers, and what a resumed one reports.

Issue 9, item 1: a session saved from an ``insecure_skip_verify=True``
connection used to resume on a client that verifies and trusts only an
unrelated root - the handshake completed with ``verified=False`` and no
error.  The rule now: a verifying client offers a session only when its
chain was verified for the same server name under the same verification
policy (trust roots and chain-length limit, see
:func:`twisted_sslfile.x509.verification_policy`); otherwise it behaves as
if it had no session.  In memory, engine against engine, for the three
resumption mechanisms: TLS 1.3 tickets, TLS 1.2 tickets and TLS 1.2 session
IDs.  ``tests.test_interop_session_verification`` does the same against
``openssl s_server``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from tests.certs import CertificateFactory
from tests.test_connection import of_type, pump
from twisted_sslfile.constants import AlertDescription, ProtocolVersion
from twisted_sslfile.context import Context
from twisted_sslfile.engine.connection import Connection
from twisted_sslfile.engine.events import HandshakeCompleted
from twisted_sslfile.engine.messages import ClientHello
from twisted_sslfile.engine.sessions import Session
from twisted_sslfile.errors import CertificateError, TLSError

TLS12 = ProtocolVersion.TLS_1_2
TLS13 = ProtocolVersion.TLS_1_3

TICKET13 = "TLS 1.3 ticket"
TICKET12 = "TLS 1.2 ticket"
SESSION_ID12 = "TLS 1.2 session ID"
MECHANISMS = (TICKET13, TICKET12, SESSION_ID12)


def first_client_hello(flight: bytes) -> ClientHello:
    """The ClientHello in a client's first flight (one record, one message)."""
    # Record header: type(1) version(2) length(2); handshake: type(1) length(3).
    length = int.from_bytes(flight[6:9], "big")
    return ClientHello.parse(flight[9 : 9 + length])


def as_format_1(session: Session) -> bytes:
    """``session`` in the file format of releases before the rule (format 1).

    Format 2 is format 1 plus the verification policy as a last field, so
    dropping that field and the format byte gives what an old release wrote.
    """
    data = session.to_bytes()
    return (
        data[:8] + b"\x01" + data[9 : len(data) - 1 - len(session.verification_policy)]
    )


class SessionVerificationTests(SynchronousTestCase):
    """The session-verification rule, for each resumption mechanism."""

    def setUp(self) -> None:
        self.pki = CertificateFactory(self.mktemp())
        self.unrelated = CertificateFactory(self.mktemp(), name="Unrelated")
        credential = self.pki.server("example.com").credential()
        # One server Context per mechanism, kept for the whole test, so its
        # ticket keys and session cache outlive each connection.
        self.servers = {
            TICKET13: Context(credentials=[credential]),
            TICKET12: Context(credentials=[credential], max_version=TLS12),
            SESSION_ID12: Context(
                credentials=[credential], max_version=TLS12, session_tickets=False
            ),
        }

    def client_context(self, mechanism: str, **options: Any) -> Context:
        options.setdefault("trust_roots", self.pki.trust_roots)
        if mechanism != TICKET13:
            options["max_version"] = TLS12
        return Context(**options)

    def connect(
        self,
        mechanism: str,
        context: Context,
        session: Session | None = None,
        server_name: str = "example.com",
    ) -> tuple[ClientHello, Connection, HandshakeCompleted | TLSError]:
        """One connection: the ClientHello sent, the client, and how it ended."""
        client = Connection(
            context, is_client=True, server_name=server_name, session=session
        )
        server = Connection(self.servers[mechanism], is_client=False)
        client.start()
        flight = client.data_to_send()
        hello = first_client_hello(flight)
        try:
            server.receive_data(flight)
            client_events, _ = pump(client, server)
        except TLSError as e:
            return hello, client, e
        [done] = of_type(client_events, HandshakeCompleted)
        return hello, client, done

    def session(self, mechanism: str, context: Context) -> Session:
        """The session a full handshake under ``context`` leaves."""
        _, client, done = self.connect(mechanism, context)
        assert isinstance(done, HandshakeCompleted), done
        self.assertFalse(done.resumed)
        session = client.session
        assert session is not None
        self.assertEqual(bool(session.ticket), mechanism != SESSION_ID12, mechanism)
        return session

    def offered(self, mechanism: str, hello: ClientHello, session: Session) -> bool:
        """Whether ``hello`` offers ``session``, in its mechanism's own way."""
        if mechanism == TICKET13:
            psks = hello.pre_shared_key
            return psks is not None and psks.identities[0].identity == session.ticket
        if mechanism == TICKET12:
            return hello.session_ticket == session.ticket
        return hello.legacy_session_id == session.session_id

    def assertResumed(
        self, mechanism: str, result: HandshakeCompleted | TLSError, verified: bool
    ) -> None:
        assert isinstance(result, HandshakeCompleted), (mechanism, result)
        self.assertTrue(result.resumed, mechanism)
        self.assertEqual(result.verified, verified, mechanism)

    # -- the case ------------------------------------------------------

    def test_insecure_session_refused_by_unrelated_root(self) -> None:
        """The reported attack: a session from an insecure connection offered
        by a client that trusts only an unrelated root.  It is not offered;
        the full handshake then fails verification (unknown_ca)."""
        for mechanism in MECHANISMS:
            insecure = self.client_context(mechanism, insecure_skip_verify=True)
            session = self.session(mechanism, insecure)
            self.assertFalse(session.verified, mechanism)
            self.assertEqual(session.verification_policy, b"", mechanism)
            strict = self.client_context(
                mechanism, trust_roots=self.unrelated.trust_roots
            )
            hello, _, result = self.connect(mechanism, strict, session)
            self.assertFalse(self.offered(mechanism, hello, session), mechanism)
            assert isinstance(result, CertificateError), (mechanism, result)
            self.assertEqual(result.alert, AlertDescription.unknown_ca, mechanism)

    def test_insecure_session_not_offered_by_a_verifying_client(self) -> None:
        """Even a client whose roots would accept the server does not take an
        unverified session on trust: it verifies in a full handshake."""
        for mechanism in MECHANISMS:
            insecure = self.client_context(mechanism, insecure_skip_verify=True)
            session = self.session(mechanism, insecure)
            hello, client, result = self.connect(
                mechanism, self.client_context(mechanism), session
            )
            self.assertFalse(self.offered(mechanism, hello, session), mechanism)
            assert isinstance(result, HandshakeCompleted), (mechanism, result)
            self.assertFalse(result.resumed, mechanism)
            self.assertTrue(result.verified, mechanism)
            # The new session is a verified one, and resumes.
            assert client.session is not None
            self.assertTrue(client.session.verified, mechanism)
            _, _, again = self.connect(
                mechanism, self.client_context(mechanism), client.session
            )
            self.assertResumed(mechanism, again, verified=True)

    # -- what counts as the same policy ------------------------------------------

    def test_same_roots_resume(self) -> None:
        """Same roots, another Context (roots from a file rather than a list)
        and a session that went through a file: offered and resumed, and the
        sessions a resumption leaves resume too."""
        for mechanism in MECHANISMS:
            session = self.session(mechanism, self.client_context(mechanism))
            self.assertTrue(session.verified, mechanism)
            self.assertEqual(len(session.verification_policy), 32, mechanism)
            restored = Session.from_bytes(session.to_bytes())
            other = self.client_context(mechanism, trust_roots=self.pki.ca_path)
            hello, client, result = self.connect(mechanism, other, restored)
            self.assertTrue(self.offered(mechanism, hello, restored), mechanism)
            self.assertResumed(mechanism, result, verified=True)
            assert client.session is not None
            self.assertTrue(client.session.verified, mechanism)
            hello, _, result = self.connect(mechanism, other, client.session)
            self.assertResumed(mechanism, result, verified=True)

    def test_name_compared_as_verification_sees_it(self) -> None:
        """Case and a trailing dot do not make another name (verification
        ignores both); another name is another policy."""
        for mechanism in MECHANISMS:
            session = self.session(mechanism, self.client_context(mechanism))
            context = self.client_context(mechanism)
            hello, _, _ = self.connect(
                mechanism, context, session, server_name="example.com."
            )
            self.assertTrue(self.offered(mechanism, hello, session), mechanism)
            _, _, result = self.connect(
                mechanism, context, session, server_name="EXAMPLE.com"
            )
            self.assertResumed(mechanism, result, verified=True)
            other = dataclasses.replace(session, server_name="other.example")
            hello, _, _ = self.connect(
                mechanism, context, other, server_name="other.example"
            )
            self.assertFalse(self.offered(mechanism, hello, other), mechanism)

    def test_other_roots_are_another_policy(self) -> None:
        """Adding a root, or trusting another one, changes the policy."""
        for mechanism in MECHANISMS:
            session = self.session(mechanism, self.client_context(mechanism))
            wider = self.client_context(
                mechanism,
                trust_roots=self.pki.trust_roots + self.unrelated.trust_roots,
            )
            hello, _, result = self.connect(mechanism, wider, session)
            self.assertFalse(self.offered(mechanism, hello, session), mechanism)
            assert isinstance(result, HandshakeCompleted), (mechanism, result)
            self.assertFalse(result.resumed, mechanism)
            self.assertTrue(result.verified, mechanism)
            unrelated = self.client_context(
                mechanism, trust_roots=self.unrelated.trust_roots
            )
            hello, _, result = self.connect(mechanism, unrelated, session)
            self.assertFalse(self.offered(mechanism, hello, session), mechanism)
            self.assertIsInstance(result, CertificateError, mechanism)

    def test_chain_length_limit_is_part_of_the_policy(self) -> None:
        """A limit that could refuse a chain the other accepted is another
        policy: the session is not offered."""
        for mechanism in MECHANISMS:
            session = self.session(mechanism, self.client_context(mechanism))
            stricter = self.client_context(mechanism, max_certificate_chain_length=3)
            hello, _, result = self.connect(mechanism, stricter, session)
            self.assertFalse(self.offered(mechanism, hello, session), mechanism)
            assert isinstance(result, HandshakeCompleted), (mechanism, result)
            self.assertFalse(result.resumed, mechanism)

    # -- clients that do not verify --------------------------------------------------

    def test_insecure_client_resumes_but_reports_unverified(self) -> None:
        """A client that does not verify may offer any session for the name,
        and a resumed connection then says it is not verified - as a full
        handshake of that client would."""
        for mechanism in MECHANISMS:
            insecure = self.client_context(mechanism, insecure_skip_verify=True)
            for source in (self.client_context(mechanism), insecure):
                session = self.session(mechanism, source)
                hello, _, result = self.connect(mechanism, insecure, session)
                self.assertTrue(self.offered(mechanism, hello, session), mechanism)
                self.assertResumed(mechanism, result, verified=False)

    # -- files written before the rule -------------------------------------------------

    def test_old_format_file_is_unverified(self) -> None:
        """A session file without the policy cannot say what it was verified
        under: it loads as unverified, and only a client that does not
        verify offers it."""
        for mechanism in MECHANISMS:
            session = self.session(mechanism, self.client_context(mechanism))
            loaded = Session.from_bytes(as_format_1(session))
            self.assertFalse(loaded.verified, mechanism)
            self.assertEqual(loaded.verification_policy, b"", mechanism)
            self.assertEqual(loaded.peer_certificates, session.peer_certificates)
            hello, _, result = self.connect(
                mechanism, self.client_context(mechanism), loaded
            )
            self.assertFalse(self.offered(mechanism, hello, loaded), mechanism)
            assert isinstance(result, HandshakeCompleted), (mechanism, result)
            self.assertFalse(result.resumed, mechanism)
            insecure = self.client_context(mechanism, insecure_skip_verify=True)
            _, _, result = self.connect(mechanism, insecure, loaded)
            self.assertResumed(mechanism, result, verified=False)
