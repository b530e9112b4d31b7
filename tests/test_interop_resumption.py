"""TLS 1.3 session resumption against real peers, both directions.

The in-memory tests (``tests.test_connection.ResumptionTests``) show that the
engine resumes its own tickets; that proves little, since a client and a
server that share a misreading of RFC 8446 §4.2.11 agree with each other.
Here the other side is always somebody else's TLS stack over loopback:

* Python's ``ssl`` (the system OpenSSL 3.0) through ``session=`` and
  ``session_reused``, as client and as server;
* ``openssl s_client -sess_out``/``-sess_in`` and ``-reconnect`` against our
  server, ``openssl s_server`` against our client, with the ``-trace`` log
  showing whether a pre_shared_key went out and came back;
* pyOpenSSL (its bundled OpenSSL 4, hybrid ML-KEM key exchange) through
  ``get_session``/``set_session``.

Each resumed connection is confirmed from both sides (our
``HandshakeCompleted.resumed`` and the peer's own report) and then carries
application data, so the keys derived from the PSK are proven too.  The
negative cases - a ticket taken to another server, an expired session - must
end in a full handshake, never an error.
"""

from __future__ import annotations

import contextlib
import re
import secrets
import socket
import ssl
import time
from collections.abc import Callable
from typing import Any

from OpenSSL import SSL
from OpenSSL._util import lib as _openssl_lib
from twisted.trial.unittest import SynchronousTestCase

from tests import peers
from tests.certs import CertificateFactory
from tests.driver import Driver
from twisted_sslfile.constants import NamedGroup, ProtocolVersion
from twisted_sslfile.context import Context
from twisted_sslfile.engine.connection import Connection
from twisted_sslfile.engine.events import HandshakeCompleted, SessionTicket
from twisted_sslfile.engine.sessions import Session
from twisted_sslfile.x509 import write_pem

MESSAGE = b"resumed hello"
REPLY = b"resumed reply"


def line(label: str) -> bytes:
    """A unique line: s_server and s_client are line-oriented."""
    return f"{label}-{secrets.token_hex(8)}\n".encode()


class Clock:
    """A settable ``Context.clock`` that starts at the real time.

    Real time, because the same Context verifies certificates issued "now".
    """

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def records(trace: str, message: str) -> list[str]:
    """The ``-trace`` records (sent or received) that carry ``message``.

    OpenSSL's trace starts every record with "Sent Record" or "Received
    Record"; a ClientHello or a TLS 1.3 ServerHello travels in a record of
    its own, so its extensions are the ones listed in that record.
    """
    chunks = re.split(r"^(?=(?:Sent|Received) Record)", trace, flags=re.MULTILINE)
    return [c for c in chunks if re.search(rf"^\s+{message}, Length=", c, re.M)]


def psk_in(trace: str, message: str) -> list[bool]:
    """For each ``message`` (ClientHello/ServerHello) traced: pre_shared_key?"""
    # OpenSSL 3.0 names extension 41 "psk".
    marker = re.compile(r"extension_type=(?:psk|pre_shared_key)\(41\)")
    return [marker.search(r) is not None for r in records(trace, message)]


# --- threaded peers that report their sessions --------------------------------
#
# peers.py's stdlib and pyOpenSSL peers return a PeerResult without the
# session; these variants put ``session`` (what to offer next time) and
# ``reused`` (the peer's own verdict) in ``PeerResult.extra``.


def python_ssl_client(
    ctx: ssl.SSLContext,
    port: int,
    talk: peers.Talk,
    session: ssl.SSLSession | None = None,
) -> peers.PeerThread:
    """A stdlib client offering ``session``; reports the newest session.

    The session is read after ``talk`` has received data: a TLS 1.3 ticket
    arrives after the handshake, and OpenSSL only sees it while reading.
    """

    def run() -> peers.PeerResult:
        sock = peers.connect_to(port)()
        with ctx.wrap_socket(
            sock,
            server_hostname="localhost",
            suppress_ragged_eofs=False,
            session=session,
        ) as tls:

            def recv() -> bytes:
                try:
                    return tls.recv(65536)
                except ssl.SSLZeroReturnError:
                    return b""

            received = talk(tls.sendall, recv)
            result = peers.PeerResult(
                version=tls.version(),
                received=received,
                extra={"session": tls.session, "reused": tls.session_reused},
            )
            # The peer may close the socket right after its close_notify.
            with contextlib.suppress(OSError, ssl.SSLError):
                tls.unwrap()
            return result

    return peers.PeerThread(run).start()


def python_ssl_server(ctx: ssl.SSLContext, talk: peers.Talk) -> peers.ListeningPeer:
    """A stdlib server (one connection) reporting whether it resumed."""

    def serve(sock: socket.socket) -> peers.PeerResult:
        with ctx.wrap_socket(sock, server_side=True, suppress_ragged_eofs=False) as tls:

            def recv() -> bytes:
                try:
                    return tls.recv(65536)
                except ssl.SSLZeroReturnError:
                    return b""

            received = talk(tls.sendall, recv)
            result = peers.PeerResult(
                version=tls.version(),
                received=received,
                extra={"reused": tls.session_reused},
            )
            with contextlib.suppress(OSError, ssl.SSLError):
                tls.unwrap()
            return result

    return peers.ListeningPeer(serve).start()


def _pyopenssl_reused(tls: SSL.Connection) -> bool:
    # pyOpenSSL has no session_reused(); its binding has SSL_session_reused.
    return bool(_openssl_lib.SSL_session_reused(tls._ssl))


def _pyopenssl_talk(tls: SSL.Connection, talk: peers.Talk) -> peers.PeerResult:
    tls.do_handshake()

    def recv() -> bytes:
        try:
            return tls.recv(65536)
        except SSL.ZeroReturnError:
            return b""

    received = talk(tls.sendall, recv)
    result = peers.PeerResult(
        version=tls.get_protocol_version_name(),
        group=tls.get_group_name(),
        received=received,
        extra={"session": tls.get_session(), "reused": _pyopenssl_reused(tls)},
    )
    with contextlib.suppress(SSL.Error):
        tls.shutdown()
    return result


def pyopenssl_client(
    ctx: SSL.Context, port: int, talk: peers.Talk, session: Any = None
) -> peers.PeerThread:
    def run() -> peers.PeerResult:
        with peers.connect_to(port)() as sock:
            peers._os_level_timeout(sock)
            tls = SSL.Connection(ctx, sock)
            tls.set_connect_state()
            tls.set_tlsext_host_name(b"localhost")
            if session is not None:
                tls.set_session(session)
            return _pyopenssl_talk(tls, talk)

    return peers.PeerThread(run).start()


def pyopenssl_server(ctx: SSL.Context, talk: peers.Talk) -> peers.ListeningPeer:
    def serve(sock: socket.socket) -> peers.PeerResult:
        peers._os_level_timeout(sock)
        tls = SSL.Connection(ctx, sock)
        tls.set_accept_state()
        return _pyopenssl_talk(tls, talk)

    return peers.ListeningPeer(serve).start()


# --- the test case base ----------------------------------------------------------


class ResumptionTestCase(peers.EngineServerMixin, SynchronousTestCase):
    """A PKI per test, and our engine as client or server over real sockets."""

    def setUp(self) -> None:
        self.pki = CertificateFactory(self.mktemp())
        self.server_cert = self.pki.server("localhost")

    # -- our server --------------------------------------------------------------

    def server_context(self, **options: object) -> Context:
        options.setdefault("credentials", [self.server_cert.credential()])
        return Context(**options)  # type: ignore[arg-type]

    def serve_once(
        self,
        listener: socket.socket,
        context: Context,
        describe_peer: Callable[[], str] | None = None,
    ) -> HandshakeCompleted:
        """Our server: handshake, read MESSAGE, answer REPLY, close both ways."""
        driver = self.accept(listener, context, describe_peer)
        completed = driver.handshake()
        self.assertEqual(completed.version, ProtocolVersion.TLS_1_3)
        self.assertEqual(driver.receive_exactly(len(MESSAGE)), MESSAGE)
        driver.send_all(REPLY)
        driver.close(wait_for_peer=True)
        return completed

    # -- our client --------------------------------------------------------------

    def client_context(self, **options: object) -> Context:
        options.setdefault("trust_roots", self.pki.ca_path)
        return Context(**options)  # type: ignore[arg-type]

    def connect(
        self,
        sock: socket.socket,
        context: Context,
        session: Session | None = None,
        describe_peer: Callable[[], str] | None = None,
    ) -> Driver:
        self.addCleanup(sock.close)
        conn = Connection(
            context, is_client=True, server_name="localhost", session=session
        )
        return Driver(conn, sock, describe_peer=describe_peer)

    def tickets(self, driver: Driver) -> list[Session]:
        """The sessions of the SessionTicket events so far, oldest first."""
        sessions = []
        for event in driver.events:
            if isinstance(event, SessionTicket):
                assert isinstance(event.session, Session)
                sessions.append(event.session)
        return sessions

    def echo_and_collect(self, driver: Driver) -> list[Session]:
        """Send MESSAGE to an echoing peer, read it back, close; the tickets.

        The peer sends its tickets right after our Finished, so by the time
        the echo is back they have been processed.
        """
        driver.send_all(MESSAGE)
        self.assertEqual(driver.receive_exactly(len(MESSAGE)), MESSAGE)
        driver.wait_for(lambda: bool(self.tickets(driver)), "waiting for a ticket")
        driver.close(wait_for_peer=True)
        return self.tickets(driver)


# ---------------------------------------------------------------------------
# Python's ssl module (system OpenSSL 3.0)
# ---------------------------------------------------------------------------


class PythonClientAgainstOurServerTests(ResumptionTestCase):
    """A stdlib client resumes with our server through ``session=``."""

    def client_ssl_context(self) -> ssl.SSLContext:
        assert self.pki.ca_path is not None
        return peers.python_ssl_client_context(self.pki.ca_path)

    def connection(
        self,
        ssl_ctx: ssl.SSLContext,
        our_ctx: Context,
        session: ssl.SSLSession | None = None,
    ) -> tuple[peers.PeerResult, HandshakeCompleted]:
        listener, port = self.listen()
        client = python_ssl_client(
            ssl_ctx, port, peers.say_then_read(MESSAGE), session=session
        )
        completed = self.serve_once(listener, our_ctx)
        result = client.result()
        self.assertEqual(result.received, REPLY)
        self.assertEqual(result.version, "TLSv1.3")
        return result, completed

    def test_resumes(self) -> None:
        ssl_ctx = self.client_ssl_context()
        our_ctx = self.server_context()
        first, completed = self.connection(ssl_ctx, our_ctx)
        self.assertFalse(completed.resumed)
        self.assertFalse(first.extra["reused"])
        session = first.extra["session"]
        self.assertTrue(session.has_ticket, "the client kept no ticket")
        self.assertEqual(session.ticket_lifetime_hint, our_ctx.session_lifetime)

        second, completed = self.connection(ssl_ctx, our_ctx, session)
        self.assertTrue(second.extra["reused"], "Python did not resume")
        self.assertTrue(completed.resumed, "our server did not resume")
        self.assertEqual(completed.server_name, "localhost")

        # The ticket issued on the resumed connection resumes again.
        third, completed = self.connection(ssl_ctx, our_ctx, second.extra["session"])
        self.assertTrue(third.extra["reused"])
        self.assertTrue(completed.resumed)

    def test_ticket_for_another_server(self) -> None:
        """Another Context has other ticket keys: a full handshake, no error."""
        ssl_ctx = self.client_ssl_context()
        first, _ = self.connection(ssl_ctx, self.server_context())
        session = first.extra["session"]
        self.assertTrue(session.has_ticket)
        second, completed = self.connection(ssl_ctx, self.server_context(), session)
        self.assertFalse(completed.resumed)
        self.assertFalse(second.extra["reused"])


class OurClientAgainstPythonServerTests(ResumptionTestCase):
    """Our client resumes with a stdlib server; both report it."""

    def server_ssl_context(self) -> ssl.SSLContext:
        issued = self.server_cert
        assert issued.chain_path and issued.key_path
        return peers.python_ssl_server_context(issued.chain_path, issued.key_path)

    def connection(
        self,
        ssl_ctx: ssl.SSLContext,
        our_ctx: Context,
        session: Session | None = None,
    ) -> tuple[peers.PeerResult, HandshakeCompleted, list[Session]]:
        server = python_ssl_server(ssl_ctx, peers.echo)
        driver = self.connect(server.connect(), our_ctx, session)
        completed = driver.handshake()
        self.assertEqual(completed.version, ProtocolVersion.TLS_1_3)
        tickets = self.echo_and_collect(driver)
        result = server.result()
        self.assertEqual(result.received, MESSAGE)
        return result, completed, tickets

    def test_resumes(self) -> None:
        ssl_ctx = self.server_ssl_context()
        our_ctx = self.client_context()
        first, completed, tickets = self.connection(ssl_ctx, our_ctx)
        self.assertFalse(completed.resumed)
        self.assertFalse(first.extra["reused"])
        # OpenSSL servers send two tickets after a full handshake.
        self.assertEqual(len(tickets), ssl_ctx.num_tickets)
        session = tickets[-1]
        self.assertEqual(session.version, ProtocolVersion.TLS_1_3)
        self.assertEqual(session.server_name, "localhost")
        self.assertTrue(session.verified)

        second, completed, _ = self.connection(ssl_ctx, our_ctx, session)
        self.assertTrue(completed.resumed, "our client did not resume")
        self.assertTrue(second.extra["reused"], "Python did not resume")
        # Resumption carries over what the full handshake verified.
        self.assertTrue(completed.verified)
        self.assertEqual(completed.peer_certificates[0], self.server_cert.der)

    def test_session_saved_and_restored(self) -> None:
        """Session.to_bytes() to a file, from_bytes() back, then resumed."""
        ssl_ctx = self.server_ssl_context()
        our_ctx = self.client_context()
        _, _, tickets = self.connection(ssl_ctx, our_ctx)
        path = self.mktemp()
        with open(path, "wb") as f:
            f.write(tickets[-1].to_bytes())
        with open(path, "rb") as f:
            restored = Session.from_bytes(f.read())
        self.assertEqual(restored, tickets[-1])
        # A new Context too: as after a restart of the client process.
        second, completed, _ = self.connection(ssl_ctx, self.client_context(), restored)
        self.assertTrue(completed.resumed)
        self.assertTrue(second.extra["reused"])


# ---------------------------------------------------------------------------
# openssl s_client against our server
# ---------------------------------------------------------------------------


class OpenSSLClientAgainstOurServerTests(ResumptionTestCase):
    """``s_client -sess_out``/``-sess_in`` and ``-reconnect``.

    ``-brief`` (peers.OpenSSLClient's default) prints no "New"/"Reused"
    verdict, so these clients run with the full output, where OpenSSL 3.0
    prints "New, TLSv1.3, Cipher is ..." or "Reused, TLSv1.3, ...".
    """

    def s_client(self, port: int, *extra: str) -> peers.OpenSSLClient:
        client = peers.OpenSSLClient(port, ca_file=self.pki.ca_path, extra=extra)
        client.args.remove("-brief")
        self.addCleanup(client.stop)
        return client.start()

    def exchange(
        self, listener: socket.socket, context: Context, *extra: str
    ) -> tuple[peers.OpenSSLClient, HandshakeCompleted]:
        """One s_client connection; data both ways; s_client ends it."""
        listener_port = listener.getsockname()[1]
        client = self.s_client(listener_port, *extra)
        driver = self.accept(listener, context, client.describe)
        completed = driver.handshake()
        self.assertEqual(completed.version, ProtocolVersion.TLS_1_3)
        ours = line("from-engine")
        driver.send_all(ours)
        client.expect_output(ours)
        theirs = line("from-openssl")
        client.write(theirs)
        self.assertEqual(driver.receive_exactly(len(theirs)), theirs)
        # End of input: s_client sends close_notify, we answer and it exits.
        client.close_stdin()
        driver.receive_until_close()
        self.assertTrue(driver.close_notify_received)
        driver.close()
        self.assertEqual(client.wait(), 0, client.describe())
        return client, completed

    def test_sess_out_sess_in(self) -> None:
        listener, _ = self.listen()
        context = self.server_context()
        path = self.mktemp()
        first, completed = self.exchange(listener, context, "-sess_out", path)
        self.assertFalse(completed.resumed)
        first.expect_output("New, TLSv1.3, Cipher is")
        self.assertEqual(
            first.stdout.text.count("Post-Handshake New Session Ticket"), 2
        )
        with open(path) as f:
            self.assertIn("BEGIN SSL SESSION PARAMETERS", f.read())

        second, completed = self.exchange(listener, context, "-sess_in", path)
        self.assertTrue(completed.resumed, "our server did not resume")
        second.expect_output("Reused, TLSv1.3, Cipher is")
        self.assertNotIn("New, TLSv1.3", second.stdout.text)
        self.assertEqual(psk_in(second.trace, "ClientHello"), [True])
        self.assertEqual(psk_in(second.trace, "ServerHello"), [True], second.trace)
        # No Certificate from us on a resumed connection (RFC 8446 §2.2).
        self.assertEqual(second.count_in_trace("Certificate"), 0)

    def test_sess_in_to_another_server(self) -> None:
        """A session file from one server, offered to another: full handshake."""
        listener, _ = self.listen()
        path = self.mktemp()
        self.exchange(listener, self.server_context(), "-sess_out", path)
        second, completed = self.exchange(
            listener, self.server_context(), "-sess_in", path
        )
        self.assertFalse(completed.resumed)
        second.expect_output("New, TLSv1.3, Cipher is")
        self.assertEqual(psk_in(second.trace, "ClientHello"), [True])
        self.assertEqual(psk_in(second.trace, "ServerHello"), [False])

    def test_resumes_after_hello_retry_request(self) -> None:
        """Our server asks for another key share; s_client's second
        ClientHello offers the ticket again with a new binder (§4.1.2)."""
        listener, _ = self.listen()
        context = self.server_context(groups=[NamedGroup.secp256r1])
        path = self.mktemp()
        # s_client sends a key share for its first group only.
        groups = ("-groups", "X25519:P-256")
        self.exchange(listener, context, "-sess_out", path, *groups)
        second, completed = self.exchange(listener, context, "-sess_in", path, *groups)
        self.assertTrue(completed.resumed)
        self.assertEqual(completed.group, NamedGroup.secp256r1)
        second.expect_output("Reused, TLSv1.3, Cipher is")
        self.assertEqual(psk_in(second.trace, "ClientHello"), [True, True])

    def test_reconnect(self) -> None:
        """What ``-reconnect`` does with TLS 1.3 in OpenSSL 3.0: no resumption.

        s_client reconnects (five times) as soon as its handshake is done,
        before it has read anything - so before the NewSessionTickets that a
        TLS 1.3 server sends after the handshake (RFC 8446 §4.6.1).  The
        session it carries over has no ticket: every ClientHello goes out
        without a pre_shared_key and all six connections are full
        handshakes, "New" on s_client's side.  Our server must serve all six
        cleanly; resumption itself is proven with -sess_out/-sess_in.
        """
        listener, port = self.listen()
        context = self.server_context()
        client = self.s_client(port, "-reconnect")
        resumed = []
        for _ in range(5):
            driver = self.accept(listener, context, client.describe)
            resumed.append(driver.handshake().resumed)
            # s_client sends close_notify and closes right away.
            driver.receive_until_close()
            driver.sock.close()
        # The sixth connection stays up: data both ways, then the end.
        driver = self.accept(listener, context, client.describe)
        resumed.append(driver.handshake().resumed)
        ours = line("from-engine")
        driver.send_all(ours)
        client.expect_output(ours)
        client.close_stdin()
        driver.receive_until_close()
        self.assertTrue(driver.close_notify_received)
        driver.close()
        self.assertEqual(client.wait(), 0, client.describe())

        self.assertEqual(resumed, [False] * 6)
        out = client.stdout.text
        self.assertEqual(out.count("drop connection and then reconnect"), 5, out)
        self.assertEqual(out.count("New, TLSv1.3, Cipher is"), 6, out)
        self.assertNotIn("Reused", out)
        self.assertEqual(psk_in(client.trace, "ClientHello"), [False] * 6)


# ---------------------------------------------------------------------------
# openssl s_server against our client
# ---------------------------------------------------------------------------


class OurClientAgainstOpenSSLServerTests(ResumptionTestCase):
    """Our client resumes with ``s_server`` (one process, several accepts)."""

    def s_server(self, naccept: int = 2, **options: object) -> peers.OpenSSLServer:
        issued = self.server_cert
        assert issued.cert_path and issued.key_path
        # -cert takes the leaf alone; -cert_chain the intermediates to send.
        intermediates = write_pem(
            issued.cert_path.replace(".pem", "-intermediates.pem"),
            issued.intermediates,
        )
        server = peers.OpenSSLServer(
            issued.cert_path,
            issued.key_path,
            cert_chain=intermediates,
            naccept=naccept,
            **options,  # type: ignore[arg-type]
        )
        self.addCleanup(server.stop)
        return server.start()

    def exchange(
        self,
        server: peers.OpenSSLServer,
        context: Context,
        session: Session | None = None,
    ) -> tuple[HandshakeCompleted, list[Session]]:
        """One connection: data both ways, we close, s_server answers."""
        driver = self.connect(server.connect(), context, session, server.describe)
        completed = driver.handshake()
        self.assertEqual(completed.version, ProtocolVersion.TLS_1_3)
        self.assertTrue(completed.verified)
        ours = line("from-engine")
        driver.send_all(ours)
        server.expect_output(ours)
        theirs = line("from-openssl")
        server.write(theirs)
        self.assertEqual(driver.receive_exactly(len(theirs)), theirs)
        driver.close(wait_for_peer=True)
        self.assertTrue(driver.close_notify_received, "s_server sent no close_notify")
        return completed, self.tickets(driver)

    def test_resumes(self) -> None:
        server = self.s_server(naccept=3)
        context = self.client_context()
        completed, tickets = self.exchange(server, context)
        self.assertFalse(completed.resumed)
        self.assertEqual(len(tickets), 2)  # OpenSSL's default num_tickets
        session = tickets[-1]
        self.assertEqual(session.lifetime, 7200)  # OpenSSL's default timeout

        completed, tickets = self.exchange(server, context, session)
        self.assertTrue(completed.resumed, "our client did not resume")
        self.assertTrue(completed.verified)
        self.assertEqual(completed.peer_certificates[0], self.server_cert.der)
        # A resumed handshake brings one fresh ticket in OpenSSL: use it.
        self.assertEqual(len(tickets), 1)
        completed, _ = self.exchange(server, context, tickets[-1])
        self.assertTrue(completed.resumed)
        self.assertEqual(server.wait(), 0, server.describe())

        self.assertEqual(server.stdout.text.count("Reused session-id"), 2)
        self.assertEqual(psk_in(server.trace, "ClientHello"), [False, True, True])
        self.assertEqual(psk_in(server.trace, "ServerHello"), [False, True, True])
        # A full handshake sends a Certificate, the resumed ones do not.
        self.assertEqual(server.count_in_trace("Certificate"), 1)

    def test_resumes_after_hello_retry_request(self) -> None:
        """s_server wants P-256; we offer an X25519 share and the ticket, and
        offer the ticket again, with a binder over the new transcript, in the
        second ClientHello (§4.1.4, §4.2.11.2)."""
        server = self.s_server(groups="P-256")
        context = self.client_context(key_share_groups=[NamedGroup.x25519])
        _, tickets = self.exchange(server, context)
        completed, _ = self.exchange(server, context, tickets[-1])
        self.assertEqual(server.wait(), 0, server.describe())
        self.assertTrue(completed.resumed)
        self.assertEqual(completed.group, NamedGroup.secp256r1)
        self.assertEqual(
            psk_in(server.trace, "ClientHello"), [False, False, True, True]
        )
        self.assertEqual(server.stdout.text.count("Reused session-id"), 1)

    def test_session_saved_and_restored(self) -> None:
        """to_bytes() / from_bytes() round trip, offered from a new Context."""
        server = self.s_server()
        _, tickets = self.exchange(server, self.client_context())
        path = self.mktemp()
        with open(path, "wb") as f:
            f.write(tickets[-1].to_bytes())
        with open(path, "rb") as f:
            restored = Session.from_bytes(f.read())
        completed, _ = self.exchange(server, self.client_context(), restored)
        self.assertTrue(completed.resumed)
        self.assertEqual(server.wait(), 0, server.describe())
        self.assertEqual(server.stdout.text.count("Reused session-id"), 1)

    def test_ticket_for_another_server(self) -> None:
        """A ticket from one s_server offered to another: full handshake."""
        first = self.s_server(naccept=1)
        context = self.client_context()
        _, tickets = self.exchange(first, context)
        self.assertEqual(first.wait(), 0, first.describe())
        other = self.s_server(naccept=1)
        completed, _ = self.exchange(other, context, tickets[-1])
        self.assertFalse(completed.resumed)
        self.assertEqual(other.wait(), 0, other.describe())
        self.assertEqual(psk_in(other.trace, "ClientHello"), [True])
        self.assertEqual(psk_in(other.trace, "ServerHello"), [False])
        self.assertNotIn("Reused session-id", other.stdout.text)

    def test_expired_session_is_not_offered(self) -> None:
        """Past its lifetime (our client's clock) a session is not offered."""
        clock = Clock()
        context = self.client_context(clock=clock)
        server = self.s_server()
        _, tickets = self.exchange(server, context)
        session = tickets[-1]
        clock.now = session.expires_at + 1
        self.assertFalse(session.is_resumable(clock()))
        completed, _ = self.exchange(server, context, session)
        self.assertFalse(completed.resumed)
        self.assertEqual(server.wait(), 0, server.describe())
        self.assertEqual(psk_in(server.trace, "ClientHello"), [False, False])

    def test_session_just_before_expiry_is_offered(self) -> None:
        """The other side of the clock check: one second early still resumes.

        The obfuscated ticket age we send then says about 7199 s while only
        a moment passed for s_server: OpenSSL uses the client's age only to
        judge early data (RFC 8446 §8.3), so it still resumes.  This is also
        the control for the expiry test: the fake clock alone decides.
        """
        clock = Clock()
        context = self.client_context(clock=clock)
        server = self.s_server()
        _, tickets = self.exchange(server, context)
        clock.now = tickets[-1].expires_at - 1
        completed, _ = self.exchange(server, context, tickets[-1])
        self.assertEqual(server.wait(), 0, server.describe())
        self.assertEqual(psk_in(server.trace, "ClientHello"), [False, True])
        self.assertTrue(completed.resumed)


# ---------------------------------------------------------------------------
# pyOpenSSL (OpenSSL 4)
# ---------------------------------------------------------------------------


class PyOpenSSLTests(ResumptionTestCase):
    """Both directions with pyOpenSSL's get_session/set_session."""

    def test_pyopenssl_client_resumes(self) -> None:
        ctx = peers.pyopenssl_context(ca_file=self.pki.ca_path)
        our_ctx = self.server_context()
        listener, port = self.listen()
        client = pyopenssl_client(ctx, port, peers.say_then_read(MESSAGE))
        completed = self.serve_once(listener, our_ctx)
        first = client.result()
        self.assertFalse(completed.resumed)
        self.assertFalse(first.extra["reused"])
        self.assertIsNotNone(first.extra["session"])

        client = pyopenssl_client(
            ctx, port, peers.say_then_read(MESSAGE), first.extra["session"]
        )
        completed = self.serve_once(listener, our_ctx)
        second = client.result()
        self.assertEqual(second.received, REPLY)
        self.assertTrue(second.extra["reused"], "pyOpenSSL did not resume")
        self.assertTrue(completed.resumed, "our server did not resume")
        self.assertEqual(second.group, "X25519MLKEM768")
        self.assertEqual(completed.group, NamedGroup.X25519MLKEM768)

    def test_our_client_resumes(self) -> None:
        ctx = peers.pyopenssl_context(
            cert_chain=self.server_cert.chain_path, key=self.server_cert.key_path
        )
        our_ctx = self.client_context()
        results = []
        session = None
        for _ in range(2):
            server = pyopenssl_server(ctx, peers.echo)
            driver = self.connect(server.connect(), our_ctx, session)
            completed = driver.handshake()
            tickets = self.echo_and_collect(driver)
            results.append((completed, server.result()))
            session = tickets[-1]
        (full, first), (resumed, second) = results
        self.assertFalse(full.resumed)
        self.assertFalse(first.extra["reused"])
        self.assertTrue(resumed.resumed, "our client did not resume")
        self.assertTrue(second.extra["reused"], "pyOpenSSL did not resume")
        self.assertEqual(second.received, MESSAGE)
        # psk_dhe_ke with OpenSSL 4's default group: the ML-KEM hybrid.
        self.assertEqual([first.group, second.group], ["X25519MLKEM768"] * 2)
        self.assertEqual(resumed.group, NamedGroup.X25519MLKEM768)
        self.assertEqual(full.group, NamedGroup.X25519MLKEM768)
