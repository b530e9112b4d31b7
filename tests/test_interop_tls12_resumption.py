"""TLS 1.2 session resumption against other TLS stacks, over loopback.

``tests.test_tls12`` shows that the engine resumes its own sessions, and
``tests.test_interop_tls12`` resumes once with ``openssl s_server`` and with
``s_client -sess_out``/``-sess_in``.  Issue 3 asks for more peers, and a
client and a server that share a misreading of RFC 5246 §7.3 or RFC 5077
agree with each other, so here the other side is always somebody else's
code:

* ``openssl s_client -reconnect`` (the system OpenSSL 3.0) against our
  server: TLS 1.2 with RFC 5077 tickets, with session IDs (our tickets off,
  or s_client's ``-no_ticket``), and TLS 1.3, where OpenSSL 3.0 does not
  resume at all (see :meth:`OpenSSLReconnectTests.test_tls13`);
* tlslite-ng 0.8, pure Python: its client resuming with our tickets, and our
  client resuming with the RFC 5077 tickets its server issues when
  ``HandshakeSettings.ticketKeys`` is set (and with its session cache);
* Python's ``ssl`` (OpenSSL 3.0) through ``session=`` and
  ``session_reused``, in both roles, with tickets and with session IDs;
* pyOpenSSL (its bundled OpenSSL 4) through ``get_session``/``set_session``,
  in both roles.

Every resumption is confirmed from both sides - our
``HandshakeCompleted.resumed`` and the peer's own report - and which
mechanism carried it (ticket or session ID) is pinned down where the peer
lets us see it, because "it resumed" through the wrong mechanism would hide
a broken one.  Each resumed connection then carries application data, which
proves the keys derived from the cached master secret.  Nothing is skipped.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import ssl
from collections.abc import Callable
from typing import Any

from OpenSSL import SSL
from OpenSSL._util import lib as _openssl_lib
from tlslite.api import (
    HandshakeSettings,
    TLSConnection,
    X509CertChain,
    parsePEMKey,
)
from tlslite.api import SessionCache as TLSLiteSessionCache

from tests import peers
from tests.driver import Driver
from tests.test_interop_openssl import InteropTestCase, line
from twisted_sslfile.constants import ProtocolVersion
from twisted_sslfile.context import Context
from twisted_sslfile.engine.connection import Connection
from twisted_sslfile.engine.events import HandshakeCompleted
from twisted_sslfile.engine.sessions import Session

TLS12 = ProtocolVersion.TLS_1_2
TLS13 = ProtocolVersion.TLS_1_3

#: What our server sends in a full TLS 1.2 handshake before its Finished (and
#: a NewSessionTicket, when it issues tickets).
FULL_HANDSHAKE = ["ServerHello", "Certificate", "ServerKeyExchange", "ServerHelloDone"]

MESSAGE = b"tls12 resumption hello"
REPLY = b"tls12 resumption reply"


# ---------------------------------------------------------------------------
# Reading OpenSSL's -trace output
# ---------------------------------------------------------------------------

#: A handshake message header in the trace, e.g. "    ServerHello, Length=91".
_MESSAGE = re.compile(r"^    (\w+), Length=\d+$", re.MULTILINE)


def traced_messages(trace: str) -> list[tuple[str, str, str]]:
    """Every handshake message of a trace: (``"Sent"``/``"Received"``, name,
    the message's text up to the next message).

    A TLS 1.2 server packs several messages in one record (a resumed
    ServerHello, NewSessionTicket...), so records are cut into messages.
    """
    found = []
    for record in re.split(r"^(?=(?:Sent|Received) Record$)", trace, flags=re.M):
        direction = record.split(" ", 1)[0]
        starts = list(_MESSAGE.finditer(record))
        ends = [m.start() for m in starts[1:]] + [len(record)] * bool(starts)
        for match, end in zip(starts, ends, strict=True):
            found.append((direction, match.group(1), record[match.start() : end]))
    return found


def per_connection(trace: str) -> list[list[tuple[str, str, str]]]:
    """The traced messages grouped by connection: each starts at a ClientHello
    the client sent (s_client -reconnect writes one trace for all)."""
    connections: list[list[tuple[str, str, str]]] = []
    for direction, name, text in traced_messages(trace):
        if direction == "Sent" and name == "ClientHello":
            connections.append([])
        if connections:
            connections[-1].append((direction, name, text))
    return connections


def message(connection: list[tuple[str, str, str]], direction: str, name: str) -> str:
    """The text of the one ``name`` message sent or received."""
    [text] = [t for d, n, t in connection if (d, n) == (direction, name)]
    return text


def received_names(connection: list[tuple[str, str, str]]) -> list[str]:
    return [n for d, n, _ in connection if d == "Received"]


def session_id_of(hello_text: str) -> str:
    """The (legacy) session ID of a traced hello, hex; "" when empty."""
    match = re.search(r"session_id \(len=\d+\): ?([0-9A-F]*)$", hello_text, re.M)
    assert match is not None, hello_text
    return match.group(1)


def ticket_extension(hello_text: str) -> str | None:
    """The session_ticket extension of a traced hello: None when absent, ""
    when empty (support announced), else the ticket in hex."""
    match = re.search(
        r"extension_type=session_ticket\(35\), length=(\d+)"
        r"(?:\n\s+ticket \(len=\d+\): ([0-9A-F]+))?",
        hello_text,
    )
    if match is None:
        return None
    return match.group(2) or ""


def new_ticket(ticket_text: str) -> str:
    """The ticket of a traced NewSessionTicket, hex."""
    match = re.search(r"ticket \(len=\d+\): ([0-9A-F]+)", ticket_text)
    assert match is not None, ticket_text
    return match.group(1)


# ---------------------------------------------------------------------------
# Threaded peers that report their session and whether they reused it
# ---------------------------------------------------------------------------
#
# peers.py's threaded peers return no session; these put ``session`` (what
# to offer next time) and ``reused`` (the peer's own verdict) in
# PeerResult.extra.  The client says MESSAGE and reads until our close; the
# server echoes until the client closes.


def _python_ssl_result(tls: ssl.SSLSocket, talk: peers.Talk) -> peers.PeerResult:
    def recv() -> bytes:
        try:
            return tls.recv(65536)
        except ssl.SSLZeroReturnError:
            return b""

    received = talk(tls.sendall, recv)
    result = peers.PeerResult(
        version=tls.version(),
        cipher=(tls.cipher() or (None,))[0],
        received=received,
        extra={"session": tls.session, "reused": tls.session_reused},
    )
    # The peer may close the socket right after its close_notify.
    with contextlib.suppress(OSError, ssl.SSLError):
        tls.unwrap()
    return result


def python_ssl_client(
    ctx: ssl.SSLContext, port: int, session: ssl.SSLSession | None = None
) -> peers.PeerThread:
    def run() -> peers.PeerResult:
        sock = peers.connect_to(port)()
        with ctx.wrap_socket(
            sock,
            server_hostname="localhost",
            suppress_ragged_eofs=False,
            session=session,
        ) as tls:
            return _python_ssl_result(tls, peers.say_then_read(MESSAGE))

    return peers.PeerThread(run).start()


def python_ssl_server(ctx: ssl.SSLContext) -> peers.ListeningPeer:
    def serve(sock: socket.socket) -> peers.PeerResult:
        with ctx.wrap_socket(sock, server_side=True, suppress_ragged_eofs=False) as tls:
            return _python_ssl_result(tls, peers.echo)

    return peers.ListeningPeer(serve).start()


def _pyopenssl_result(tls: SSL.Connection, talk: peers.Talk) -> peers.PeerResult:
    tls.do_handshake()

    def recv() -> bytes:
        try:
            return tls.recv(65536)
        except SSL.ZeroReturnError:
            return b""

    received = talk(tls.sendall, recv)
    result = peers.PeerResult(
        version=tls.get_protocol_version_name(),
        cipher=tls.get_cipher_name(),
        received=received,
        extra={
            "session": tls.get_session(),
            # pyOpenSSL has no session_reused(); its binding has the call.
            "reused": bool(_openssl_lib.SSL_session_reused(tls._ssl)),
        },
    )
    with contextlib.suppress(SSL.Error):
        tls.shutdown()
    return result


def pyopenssl_client(
    ctx: SSL.Context, port: int, session: SSL.Session | None = None
) -> peers.PeerThread:
    def run() -> peers.PeerResult:
        with peers.connect_to(port)() as sock:
            peers._os_level_timeout(sock)
            tls = SSL.Connection(ctx, sock)
            tls.set_connect_state()
            tls.set_tlsext_host_name(b"localhost")
            if session is not None:
                tls.set_session(session)
            return _pyopenssl_result(tls, peers.say_then_read(MESSAGE))

    return peers.PeerThread(run).start()


def pyopenssl_server(ctx: SSL.Context) -> peers.ListeningPeer:
    def serve(sock: socket.socket) -> peers.PeerResult:
        peers._os_level_timeout(sock)
        tls = SSL.Connection(ctx, sock)
        tls.set_accept_state()
        return _pyopenssl_result(tls, peers.echo)

    return peers.ListeningPeer(serve).start()


def tlslite_settings(**attributes: Any) -> HandshakeSettings:
    """TLS 1.2 only: a 1.3-capable tlslite would settle on 1.3 with us."""
    settings = HandshakeSettings()
    settings.minVersion = (3, 3)
    settings.maxVersion = (3, 3)
    for name, value in attributes.items():
        setattr(settings, name, value)
    return settings


def tlslite_client(port: int, session: Any = None) -> peers.PeerThread:
    def run() -> peers.PeerResult:
        with peers.connect_to(port)() as sock:
            tls = TLSConnection(sock)
            tls.handshakeClientCert(
                session=session, settings=tlslite_settings(), serverName="localhost"
            )
            tls.write(MESSAGE)
            received = bytearray()
            while len(received) < len(REPLY):
                received += tls.read(max=len(REPLY) - len(received))
            # close() exchanges close_notify both ways.
            tls.close()
            return peers.PeerResult(
                received=bytes(received),
                extra={"session": tls.session, "reused": tls.resumed},
            )

    return peers.PeerThread(run).start()


def tlslite_server(
    chain: X509CertChain,
    key: Any,
    settings: HandshakeSettings,
    session_cache: TLSLiteSessionCache | None = None,
) -> peers.ListeningPeer:
    def serve(sock: socket.socket) -> peers.PeerResult:
        tls = TLSConnection(sock)
        tls.handshakeServer(
            certChain=chain,
            privateKey=key,
            settings=settings,
            sessionCache=session_cache,
        )
        received = bytearray()
        while len(received) < len(MESSAGE):
            received += tls.read(max=len(MESSAGE) - len(received))
        tls.write(bytes(received))
        tls.close()
        return peers.PeerResult(received=bytes(received), extra={"reused": tls.resumed})

    return peers.ListeningPeer(serve).start()


# ---------------------------------------------------------------------------
# The test case base
# ---------------------------------------------------------------------------


class ResumptionTestCase(peers.EngineServerMixin, InteropTestCase):
    """Our engine as server (several connections on one listener) or client."""

    def serve_once(
        self, listener: socket.socket, context: Context
    ) -> HandshakeCompleted:
        """Our server: read MESSAGE, answer REPLY, close both ways."""
        driver = self.accept(listener, context)
        completed = driver.handshake()
        self.assertEqual(completed.version, TLS12)
        self.assertEqual(driver.receive_exactly(len(MESSAGE)), MESSAGE)
        driver.send_all(REPLY)
        driver.close(wait_for_peer=True)
        return completed

    def connect_once(
        self, port: int, context: Context, session: Session | None = None
    ) -> tuple[HandshakeCompleted, Session | None]:
        """Our client against an echoing peer: MESSAGE there and back, close.

        Returns the handshake result and the session to offer next time.
        """
        sock = peers.connect_to(port)()
        self.addCleanup(sock.close)
        conn = Connection(
            context, is_client=True, server_name="localhost", session=session
        )
        driver = Driver(conn, sock)
        completed = driver.handshake()
        self.assertEqual(completed.version, TLS12)
        self.assertTrue(completed.verified)
        driver.send_all(MESSAGE)
        self.assertEqual(driver.receive_exactly(len(MESSAGE)), MESSAGE)
        driver.close(wait_for_peer=True)
        return completed, conn.session

    def tls12_client_context(self, **options: Any) -> Context:
        options.setdefault("max_version", TLS12)
        return self.client_context(**options)


# ---------------------------------------------------------------------------
# openssl s_client -reconnect against our server
# ---------------------------------------------------------------------------


class OpenSSLReconnectTests(ResumptionTestCase):
    """``s_client -reconnect``: one full handshake, then five reconnections
    offering the session (``-reconnect`` reconnects five times)."""

    CONNECTIONS = 6

    def reconnect(
        self, context: Context, tls_version: str, *extra: str
    ) -> tuple[list[HandshakeCompleted], peers.OpenSSLClient, list[str]]:
        """Serve every connection of one ``s_client -reconnect``.

        Returns our HandshakeCompleted per connection, the client, and its
        per-connection verdicts ("New" or "Reused"), which must agree with
        ours connection by connection.
        """
        listener, port = self.listen()
        client = peers.OpenSSLClient(
            port,
            ca_file=self.pki.ca_path,
            tls_version=tls_version,
            extra=["-reconnect", *extra],
        )
        # -brief prints no "New"/"Reused" verdict; the full output does.
        client.args.remove("-brief")
        self.addCleanup(client.stop)
        client.start()
        completed = []
        for _ in range(self.CONNECTIONS - 1):
            driver = self.accept(listener, context, client.describe)
            completed.append(driver.handshake())
            # s_client sends close_notify right after its handshake and
            # closes.  With TLS 1.3 our tickets are still unread on its side
            # then, and its kernel may reset the connection; its Finished has
            # arrived by then, so end of stream stands in for close_notify.
            driver.receive_until_close()
            if tls_version == "1.2":
                self.assertTrue(driver.close_notify_received, client.describe())
            driver.sock.close()
        # The last connection stays up: data both ways, then the end.
        driver = self.accept(listener, context, client.describe)
        completed.append(driver.handshake())
        ours = line("from-engine")
        driver.send_all(ours)
        client.expect_output(ours)
        theirs = line("from-openssl")
        client.write(theirs)
        self.assertEqual(driver.receive_exactly(len(theirs)), theirs)
        client.close_stdin()
        driver.receive_until_close()
        self.assertTrue(driver.close_notify_received, "s_client sent no close_notify")
        driver.close()
        self.assertEqual(client.wait(), 0, client.describe())

        out = client.stdout.text
        self.assertEqual(out.count("drop connection and then reconnect"), 5, out)
        verdicts = re.findall(
            r"^(New|Reused), (TLSv1\.[23]), Cipher is (\S+)$", out, re.MULTILINE
        )
        self.assertEqual(len(verdicts), self.CONNECTIONS, out)
        expected_version = {"1.2": "TLSv1.2", "1.3": "TLSv1.3"}[tls_version]
        self.assertEqual({v[1] for v in verdicts}, {expected_version})
        self.assertEqual(
            [v[0] == "Reused" for v in verdicts],
            [c.resumed for c in completed],
            "s_client and our server disagree on which connections resumed",
        )
        self.assertEqual(len({c.cipher_suite for c in completed}), 1)
        self.assertEqual(len(per_connection(client.trace)), self.CONNECTIONS)
        return completed, client, [v[0] for v in verdicts]

    def test_tls12_tickets(self) -> None:
        """Every reconnection resumes with the ticket of the one before.

        RFC 5077 §3.1: we renew the ticket on each ticket resumption, so the
        five resumed handshakes are ServerHello, NewSessionTicket, Finished
        from us (no Certificate, no key exchange), and s_client's next
        ClientHello carries the ticket it has just been given.  s_client
        sends a random session ID with the ticket and we echo it (RFC 5077
        §3.4): that echo is how it learns the ticket was accepted.
        """
        context = self.server_context()
        completed, client, verdicts = self.reconnect(context, "1.2")
        self.assertEqual([c.resumed for c in completed], [False] + [True] * 5)
        self.assertEqual(verdicts, ["New"] + ["Reused"] * 5)
        for c in completed[1:]:
            self.assertEqual(c.peer_certificates, ())  # client sent none

        connections = per_connection(client.trace)
        first = connections[0]
        self.assertEqual(ticket_extension(message(first, "Sent", "ClientHello")), "")
        self.assertEqual(
            ticket_extension(message(first, "Received", "ServerHello")), ""
        )
        self.assertEqual(
            received_names(first), [*FULL_HANDSHAKE, "NewSessionTicket", "Finished"]
        )
        ticket = new_ticket(message(first, "Received", "NewSessionTicket"))
        for connection in connections[1:]:
            hello = message(connection, "Sent", "ClientHello")
            self.assertEqual(ticket_extension(hello), ticket)
            self.assertEqual(len(session_id_of(hello)), 64)
            server_hello = message(connection, "Received", "ServerHello")
            self.assertEqual(session_id_of(server_hello), session_id_of(hello))
            self.assertEqual(
                received_names(connection),
                ["ServerHello", "NewSessionTicket", "Finished"],
            )
            renewed = new_ticket(message(connection, "Received", "NewSessionTicket"))
            self.assertNotEqual(renewed, ticket)
            ticket = renewed

    def check_session_ids(
        self, context: Context, client: peers.OpenSSLClient, offers_tickets: bool
    ) -> None:
        """Reconnections offer the first connection's session ID, which we
        echo; no ticket is issued at any point."""
        connections = per_connection(client.trace)
        first = connections[0]
        session_id = session_id_of(message(first, "Received", "ServerHello"))
        self.assertEqual(len(session_id), 64)
        self.assertIsNone(ticket_extension(message(first, "Received", "ServerHello")))
        self.assertEqual(received_names(first), [*FULL_HANDSHAKE, "Finished"])
        for connection in connections[1:]:
            hello = message(connection, "Sent", "ClientHello")
            self.assertEqual(session_id_of(hello), session_id)
            self.assertEqual(ticket_extension(hello), "" if offers_tickets else None)
            server_hello = message(connection, "Received", "ServerHello")
            self.assertEqual(session_id_of(server_hello), session_id)
            self.assertEqual(received_names(connection), ["ServerHello", "Finished"])
        # The full handshake was cached once; resumptions add nothing.
        assert context.session_cache is not None
        self.assertEqual(len(context.session_cache), 1)

    def test_tls12_session_ids(self) -> None:
        """Our tickets off: s_client still announces tickets (an empty
        extension), we do not take them up, and it resumes by session ID."""
        context = self.server_context(session_tickets=False)
        completed, client, verdicts = self.reconnect(context, "1.2")
        self.assertEqual([c.resumed for c in completed], [False] + [True] * 5)
        self.assertEqual(verdicts, ["New"] + ["Reused"] * 5)
        self.check_session_ids(context, client, offers_tickets=True)

    def test_tls12_session_ids_client_without_tickets(self) -> None:
        """``-no_ticket``: s_client sends no session_ticket extension, so our
        server (tickets on) falls back to its session-ID cache."""
        context = self.server_context()
        completed, client, verdicts = self.reconnect(context, "1.2", "-no_ticket")
        self.assertEqual([c.resumed for c in completed], [False] + [True] * 5)
        self.assertEqual(verdicts, ["New"] + ["Reused"] * 5)
        self.check_session_ids(context, client, offers_tickets=False)

    def test_tls13(self) -> None:
        """What ``-reconnect`` does with TLS 1.3 in OpenSSL 3.0: it never
        resumes, whatever the server does.

        A TLS 1.3 session becomes resumable only with a NewSessionTicket,
        which a server sends after the handshake (RFC 8446 §4.6.1; ours, like
        OpenSSL's, after the client's Finished).  s_client -reconnect drops
        the connection the moment its handshake is complete: the trace shows
        Finished, then close_notify, then the next ClientHello, without a
        single read in between.  It never sees a ticket, so each of the five
        reconnections is a full handshake offering no pre_shared_key, s_client
        prints "New" six times and our server reports no resumption.  Only
        the last connection, which stays up and reads data, receives our two
        tickets - too late to be used.  TLS 1.3 resumption with s_client is
        proven with -sess_out/-sess_in in tests.test_interop_resumption.
        """
        context = self.server_context()
        completed, client, verdicts = self.reconnect(context, "1.3")
        self.assertEqual([c.resumed for c in completed], [False] * 6)
        self.assertEqual(verdicts, ["New"] * 6)
        connections = per_connection(client.trace)
        for connection in connections:
            hello = message(connection, "Sent", "ClientHello")
            self.assertNotRegex(hello, r"extension_type=(?:psk|pre_shared_key)\(41\)")
            self.assertIn("Certificate", received_names(connection))
        for connection in connections[:-1]:
            self.assertNotIn("NewSessionTicket", received_names(connection))
        self.assertEqual(
            received_names(connections[-1]).count("NewSessionTicket"),
            context.tickets_per_handshake,
        )


# ---------------------------------------------------------------------------
# tlslite-ng
# ---------------------------------------------------------------------------


class TLSLiteClientTests(ResumptionTestCase):
    """tlslite-ng's client (``handshakeClientCert(session=...)``) against our
    server.  tlslite keeps an RFC 5077 ticket in ``Session.tls_1_0_tickets``
    and offers it in the next ClientHello together with the session's ID.
    Its client takes any answer to a ticket for a resumption (tlslite-ng
    0.8 ``_clientResume``), so a ticket we refuse cannot be shown with it:
    see ``s_client`` in tests.test_interop_tls12 for that.
    """

    def two_connections(
        self, context: Context, between: Callable[[], None] | None = None
    ) -> tuple[peers.PeerResult, peers.PeerResult, list[HandshakeCompleted]]:
        listener, port = self.listen()
        results = []
        completed = []
        session = None
        for n in range(2):
            if n == 1 and between is not None:
                between()
            thread = tlslite_client(port, session)
            driver = self.accept(listener, context)
            done = driver.handshake()
            self.assertEqual(done.version, TLS12)
            self.assertEqual(driver.receive_exactly(len(MESSAGE)), MESSAGE)
            driver.send_all(REPLY)
            driver.receive_until_close()
            self.assertTrue(driver.close_notify_received)
            driver.close()
            result = thread.result()
            self.assertEqual(result.received, REPLY)
            results.append(result)
            completed.append(done)
            session = result.extra["session"]
        first, second = results
        self.assertFalse(completed[0].resumed)
        self.assertFalse(first.extra["reused"])
        self.assertTrue(completed[1].resumed, "our server did not resume")
        self.assertTrue(second.extra["reused"], "tlslite did not resume")
        return first, second, completed

    def test_ticket(self) -> None:
        """Our session cache off: the ServerHello has an empty session ID, so
        the ticket is the only thing tlslite can resume with."""
        context = self.server_context("rsa-2048", session_cache=False)
        first, _, _ = self.two_connections(context)
        session = first.extra["session"]
        self.assertEqual(bytes(session.sessionID), b"")
        self.assertEqual(len(session.tls_1_0_tickets), 1)
        self.assertTrue(session.extendedMasterSecret)

    def test_ticket_with_session_id(self) -> None:
        """Both mechanisms offered; emptying our session cache before the
        second connection shows that the ticket carried the resumption."""
        context = self.server_context("rsa-2048")
        cache = context.session_cache
        assert cache is not None
        first, _, _ = self.two_connections(context, between=cache.clear)
        session = first.extra["session"]
        self.assertEqual(len(session.sessionID), 32)
        self.assertEqual(len(session.tls_1_0_tickets), 1)

    def test_session_id(self) -> None:
        """Our tickets off: tlslite resumes through our session-ID cache."""
        context = self.server_context("rsa-2048", session_tickets=False)
        first, _, _ = self.two_connections(context)
        session = first.extra["session"]
        self.assertEqual(len(session.sessionID), 32)
        self.assertEqual(list(session.tls_1_0_tickets), [])


class TLSLiteServerTests(ResumptionTestCase):
    """Our client against tlslite-ng's server.

    tlslite-ng 0.8 does issue RFC 5077 tickets in TLS 1.2: with
    ``HandshakeSettings.ticketKeys`` set (and ``ticket_count`` > 0, the
    default) it acknowledges the client's empty session_ticket extension and
    sends one NewSessionTicket; without a session cache its ServerHello
    carries an empty session ID, so the ticket is all there is to resume
    with.
    """

    def setUp(self) -> None:
        super().setUp()
        issued = self.issue("rsa-2048")
        assert issued.chain_path and issued.key_path
        with open(issued.chain_path) as f:
            self.chain = X509CertChain()
            self.chain.parsePemList(f.read())
        with open(issued.key_path) as f:
            self.key = parsePEMKey(f.read(), private=True)

    def two_connections(
        self, settings: HandshakeSettings, cache: TLSLiteSessionCache | None
    ) -> tuple[Session, Session | None]:
        context = self.tls12_client_context()
        results = []
        completed = []
        sessions: list[Session | None] = []
        session = None
        for _ in range(2):
            server = tlslite_server(self.chain, self.key, settings, cache)
            done, session = self.connect_once(server.port, context, session)
            result = server.result()
            self.assertEqual(result.received, MESSAGE)
            results.append(result)
            completed.append(done)
            sessions.append(session)
            self.assertIsNotNone(session)
        self.assertFalse(completed[0].resumed)
        self.assertFalse(results[0].extra["reused"])
        self.assertTrue(completed[1].resumed, "our client did not resume")
        self.assertTrue(results[1].extra["reused"], "tlslite did not resume")
        self.assertEqual(completed[1].peer_certificates, completed[0].peer_certificates)
        self.assertEqual(completed[1].cipher_suite, completed[0].cipher_suite)
        first = sessions[0]
        assert first is not None
        return first, sessions[1]

    def test_ticket(self) -> None:
        settings = tlslite_settings(ticketKeys=[bytearray(os.urandom(32))])
        first, second = self.two_connections(settings, cache=None)
        self.assertEqual(first.session_id, b"")
        self.assertNotEqual(first.ticket, b"")
        self.assertTrue(first.extended_master_secret)
        # tlslite sends no fresh ticket on a resumption; the session is
        # still the one it resumed.
        assert second is not None
        self.assertEqual(second.ticket, first.ticket)

    def test_session_id(self) -> None:
        """No ticket keys: tlslite announces no tickets and resumes from its
        SessionCache by ID."""
        first, _ = self.two_connections(tlslite_settings(), TLSLiteSessionCache())
        self.assertEqual(len(first.session_id), 32)
        self.assertEqual(first.ticket, b"")


# ---------------------------------------------------------------------------
# Python's ssl module
# ---------------------------------------------------------------------------


class PythonClientTests(ResumptionTestCase):
    """A stdlib client capped at TLS 1.2 resumes with our server."""

    def ssl_context(self) -> ssl.SSLContext:
        assert self.pki.ca_path is not None
        ctx = peers.python_ssl_client_context(self.pki.ca_path, tls13_only=False)
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        return ctx

    def two_connections(
        self, ctx: ssl.SSLContext, context: Context
    ) -> tuple[ssl.SSLSession, ssl.SSLSession]:
        listener, port = self.listen()
        results = []
        completed = []
        session = None
        for _ in range(2):
            client = python_ssl_client(ctx, port, session)
            completed.append(self.serve_once(listener, context))
            result = client.result()
            self.assertEqual((result.version, result.received), ("TLSv1.2", REPLY))
            results.append(result)
            session = result.extra["session"]
        self.assertFalse(completed[0].resumed)
        self.assertFalse(results[0].extra["reused"])
        self.assertTrue(completed[1].resumed, "our server did not resume")
        self.assertTrue(results[1].extra["reused"], "ssl did not resume")
        return results[0].extra["session"], results[1].extra["session"]

    def test_ticket(self) -> None:
        """Our session cache off: only the ticket can carry it."""
        context = self.server_context(session_cache=False)
        first, _ = self.two_connections(self.ssl_context(), context)
        self.assertTrue(first.has_ticket)
        self.assertGreater(first.ticket_lifetime_hint, 0)

    def test_session_id(self) -> None:
        """Our tickets off: the session holds our session ID and no ticket."""
        context = self.server_context(session_tickets=False)
        first, second = self.two_connections(self.ssl_context(), context)
        self.assertFalse(first.has_ticket)
        self.assertEqual(len(first.id), 32)
        self.assertEqual(second.id, first.id)

    def test_session_id_client_without_tickets(self) -> None:
        """``OP_NO_TICKET`` on the client: our cache carries it."""
        ctx = self.ssl_context()
        ctx.options |= ssl.OP_NO_TICKET
        first, second = self.two_connections(ctx, self.server_context())
        self.assertFalse(first.has_ticket)
        self.assertEqual(second.id, first.id)


class PythonServerTests(ResumptionTestCase):
    """Our client resumes with a stdlib server capped at TLS 1.2.

    One SSLContext serves both connections: OpenSSL's session cache and
    ticket keys live in the SSL_CTX.
    """

    def ssl_context(self, *, tickets: bool = True) -> ssl.SSLContext:
        issued = self.issue()
        assert issued.chain_path and issued.key_path
        ctx = peers.python_ssl_server_context(
            issued.chain_path, issued.key_path, tls13_only=False
        )
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        if not tickets:
            ctx.options |= ssl.OP_NO_TICKET
        return ctx

    def two_connections(
        self, ctx: ssl.SSLContext, context: Context
    ) -> tuple[Session, HandshakeCompleted]:
        results = []
        completed = []
        sessions = []
        session = None
        for _ in range(2):
            server = python_ssl_server(ctx)
            done, session = self.connect_once(server.port, context, session)
            result = server.result()
            self.assertEqual((result.version, result.received), ("TLSv1.2", MESSAGE))
            results.append(result)
            completed.append(done)
            sessions.append(session)
        self.assertFalse(completed[0].resumed)
        self.assertFalse(results[0].extra["reused"])
        self.assertTrue(completed[1].resumed, "our client did not resume")
        self.assertTrue(results[1].extra["reused"], "ssl did not resume")
        first = sessions[0]
        assert first is not None
        self.assertEqual(first.version, TLS12)
        self.assertTrue(first.extended_master_secret)
        return first, completed[1]

    def test_ticket(self) -> None:
        first, _ = self.two_connections(self.ssl_context(), self.tls12_client_context())
        self.assertNotEqual(first.ticket, b"")

    def test_session_id(self) -> None:
        first, _ = self.two_connections(
            self.ssl_context(tickets=False), self.tls12_client_context()
        )
        self.assertEqual(first.ticket, b"")
        self.assertEqual(len(first.session_id), 32)

    def test_tls13_capable_client(self) -> None:
        """A client that also offers TLS 1.3 keeps the TLS 1.2 session the
        server gave it and offers it again (session ID and ticket in the
        ClientHello next to its TLS 1.3 key shares)."""
        context = self.client_context(max_version=TLS13)
        first, resumed = self.two_connections(self.ssl_context(), context)
        self.assertNotEqual(first.ticket, b"")
        self.assertEqual(resumed.version, TLS12)


# ---------------------------------------------------------------------------
# pyOpenSSL
# ---------------------------------------------------------------------------


def _pyopenssl_tls12(ctx: SSL.Context, *, tickets: bool = True) -> SSL.Context:
    ctx.set_max_proto_version(SSL.TLS1_2_VERSION)
    if not tickets:
        ctx.set_options(SSL.OP_NO_TICKET)
    return ctx


class PyOpenSSLClientTests(ResumptionTestCase):
    """pyOpenSSL's client (``get_session``/``set_session``) against us."""

    def two_connections(
        self, ctx: SSL.Context, context: Context
    ) -> tuple[peers.PeerResult, peers.PeerResult]:
        listener, port = self.listen()
        results = []
        completed = []
        session = None
        for _ in range(2):
            client = pyopenssl_client(ctx, port, session)
            completed.append(self.serve_once(listener, context))
            result = client.result()
            self.assertEqual((result.version, result.received), ("TLSv1.2", REPLY))
            results.append(result)
            session = result.extra["session"]
            self.assertIsNotNone(session)
        self.assertFalse(completed[0].resumed)
        self.assertFalse(results[0].extra["reused"])
        self.assertTrue(completed[1].resumed, "our server did not resume")
        self.assertTrue(results[1].extra["reused"], "pyOpenSSL did not resume")
        self.assertEqual(results[1].cipher, results[0].cipher)
        return results[0], results[1]

    def client_ssl_context(self, *, tickets: bool = True) -> SSL.Context:
        ctx = peers.pyopenssl_context(ca_file=self.pki.ca_path, tls13_only=False)
        return _pyopenssl_tls12(ctx, tickets=tickets)

    def test_ticket(self) -> None:
        """Our session cache off: only the ticket can carry it."""
        self.two_connections(
            self.client_ssl_context(), self.server_context(session_cache=False)
        )

    def test_session_id(self) -> None:
        self.two_connections(
            self.client_ssl_context(), self.server_context(session_tickets=False)
        )

    def test_session_id_client_without_tickets(self) -> None:
        self.two_connections(
            self.client_ssl_context(tickets=False), self.server_context()
        )


class PyOpenSSLServerTests(ResumptionTestCase):
    """Our client against a pyOpenSSL server; one SSL.Context for both
    connections (it holds OpenSSL's session cache and ticket keys)."""

    def server_ssl_context(self, *, tickets: bool = True) -> SSL.Context:
        issued = self.issue()
        ctx = peers.pyopenssl_context(
            cert_chain=issued.chain_path, key=issued.key_path, tls13_only=False
        )
        if tickets:
            # No stateful cache: a resumption can only come from the ticket.
            ctx.set_session_cache_mode(SSL.SESS_CACHE_OFF)
        return _pyopenssl_tls12(ctx, tickets=tickets)

    def two_connections(self, ctx: SSL.Context) -> Session:
        context = self.tls12_client_context()
        results = []
        completed = []
        sessions = []
        session = None
        for _ in range(2):
            server = pyopenssl_server(ctx)
            done, session = self.connect_once(server.port, context, session)
            result = server.result()
            self.assertEqual((result.version, result.received), ("TLSv1.2", MESSAGE))
            results.append(result)
            completed.append(done)
            sessions.append(session)
        self.assertFalse(completed[0].resumed)
        self.assertFalse(results[0].extra["reused"])
        self.assertTrue(completed[1].resumed, "our client did not resume")
        self.assertTrue(results[1].extra["reused"], "pyOpenSSL did not resume")
        first = sessions[0]
        assert first is not None
        return first

    def test_ticket(self) -> None:
        session = self.two_connections(self.server_ssl_context())
        self.assertNotEqual(session.ticket, b"")

    def test_session_id(self) -> None:
        session = self.two_connections(self.server_ssl_context(tickets=False))
        self.assertEqual(session.ticket, b"")
        self.assertEqual(len(session.session_id), 32)
