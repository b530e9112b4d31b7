"""Tests of :class:`twisted_sslfile.sslfile.SSLFile` (specified in docs/sslfile.rst).

The ten scenarios of docs/sslfile.rst ("Reference scenarios") run four
times each: over a ``socketpair()`` and over loopback TCP, with the global
reactor (a trial ``TestCase`` returning Deferreds) and with a separately
constructed ``SelectReactor`` running in its own thread (an "arbitrary
backend"; the test thread waits for it with bounded timeouts).  Scenario
code always runs on the backend's thread, as the rules for nonblocking
SSLFiles ask.

Every error path is reached by a real event on a real socket - a peer that
resets, truncates, sends garbage, sends a fatal alert or never answers -
never by setting state by hand.  Tests peek at private attributes only to
*observe* (how much is buffered, whether the socket is watched).

The reset scenario exists only for TCP (a socketpair cannot be reset), so
it lives in a mixin that only the TCP classes use.
"""

from __future__ import annotations

import concurrent.futures
import errno
import gc
import hashlib
import io
import os
import socket
import struct
import threading
import weakref
from collections.abc import Callable
from typing import Any

from twisted.internet import defer, task
from twisted.internet.selectreactor import SelectReactor
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase, TestCase

from tests.certs import CertificateFactory
from twisted_sslfile.constants import (
    TLS13_CIPHER_SUITES,
    AlertDescription,
    ProtocolVersion,
)
from twisted_sslfile.context import Context
from twisted_sslfile.engine.connection import Connection
from twisted_sslfile.errors import TLSError
from twisted_sslfile.sslfile import (
    READ_BUFFER_LIMIT,
    WRITE_LIMIT,
    ReactorThreadError,
    SSLFile,
    SSLHandshakeError,
)

#: Bound of any wait on another thread or on a peer, in seconds.
TIMEOUT = 20.0

TLS12 = ProtocolVersion.TLS_1_2
TLS13 = ProtocolVersion.TLS_1_3

HTTP_REQUEST = b"GET /index.html HTTP/1.1\r\nHost: example.com\r\n\r\n"


# ---------------------------------------------------------------------------
# Sockets and backends
# ---------------------------------------------------------------------------


def tcp_pair() -> tuple[socket.socket, socket.socket]:
    """Two connected loopback TCP sockets (client end, server end)."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        client = socket.create_connection(listener.getsockname(), timeout=TIMEOUT)
        client.settimeout(None)
        listener.settimeout(TIMEOUT)
        server, _ = listener.accept()
        server.settimeout(None)
    finally:
        listener.close()
    return client, server


def recv_exactly(sock: socket.socket, n: int) -> bytes:
    """Read n bytes from a blocking socket (its timeout bounds each wait)."""
    data = bytearray()
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            break
        data += chunk
    return bytes(data)


def plain_recv(f: SSLFile, raw: socket.socket, n: int) -> bytes:
    """n plaintext bytes after a clean close: first what the SSLFile read
    past the peer's close_notify, then the socket."""
    try:
        data = f.read(n) or b""
    except OSError:
        data = b""
    return data + recv_exactly(raw, n - len(data))


def recv_to_end(sock: socket.socket) -> bytes:
    data = bytearray()
    while chunk := sock.recv(65536):
        data += chunk
    return bytes(data)


class ThreadedReactor:
    """A ``SelectReactor`` of its own, running in a thread.

    The reactor does not register itself as Twisted's "I/O thread" (that is
    global state, and the global reactor's).  :meth:`call` runs a function
    on the reactor's thread and waits for its result.
    """

    def __init__(self) -> None:
        self.reactor = SelectReactor()
        self.reactor._registerAsIOThread = False
        self._started = threading.Event()
        self.reactor.callWhenRunning(self._started.set)
        self.thread = threading.Thread(
            target=self.reactor.run,
            kwargs={"installSignalHandlers": False},
            name="sslfile-test-reactor",
            daemon=True,
        )

    def start(self) -> ThreadedReactor:
        self.thread.start()
        if not self._started.wait(TIMEOUT):
            raise AssertionError("the threaded reactor did not start")
        return self

    def call(self, function: Callable[..., Any], *args: Any) -> Any:
        """Run ``function(*args)`` on the reactor thread; return its result."""
        if threading.get_ident() == self.thread.ident:
            return function(*args)
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()

        def run() -> None:
            try:
                future.set_result(function(*args))
            except BaseException as exc:
                future.set_exception(exc)

        self.reactor.callFromThread(run)
        return future.result(TIMEOUT)

    def wait(self, function: Callable[[], defer.Deferred[Any]]) -> Any:
        """Start ``function`` on the reactor thread; wait for its Deferred."""
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()

        def failed(failure: Failure) -> None:
            future.set_exception(AssertionError(failure.getTraceback()))

        def start() -> None:
            d = defer.maybeDeferred(function)
            d.addCallbacks(future.set_result, failed)

        self.reactor.callFromThread(start)
        return future.result(TIMEOUT)

    def stop(self) -> None:
        if self.thread.is_alive():
            self.reactor.callFromThread(self.reactor.stop)
            self.thread.join(TIMEOUT)
        waker = getattr(self.reactor, "waker", None)
        if waker is not None:
            waker.connectionLost(None)


# ---------------------------------------------------------------------------
# Harness mixins
# ---------------------------------------------------------------------------


class PKIMixin:
    """A fresh PKI and matching client/server contexts per test."""

    def setUp(self) -> None:
        super().setUp()  # type: ignore[misc]
        self.pki = CertificateFactory(self.mktemp())  # type: ignore[attr-defined]
        self.leaf = self.pki.server("example.com")
        self.server_context = Context(credentials=[self.leaf.credential()])
        self.client_context = Context(trust_roots=self.pki.trust_roots)


class SocketpairMixin:
    transport = "socketpair"

    def make_pair(self) -> tuple[socket.socket, socket.socket]:
        return socket.socketpair()


class TCPMixin:
    transport = "tcp"

    def make_pair(self) -> tuple[socket.socket, socket.socket]:
        return tcp_pair()


class GlobalReactorMixin:
    """Scenarios under trial's global reactor; tests return Deferreds."""

    timeout = 60

    def setUp(self) -> None:
        from twisted.internet import reactor

        self.reactor = reactor
        super().setUp()  # type: ignore[misc]

    def run_scenario(self, scenario: Callable[[], Any]) -> defer.Deferred[Any]:
        return defer.maybeDeferred(scenario)

    def call(self, function: Callable[..., Any], *args: Any) -> Any:
        return function(*args)


class ThreadedReactorMixin:
    """Scenarios on a SelectReactor in a thread; the test thread waits."""

    def setUp(self) -> None:
        self.backend = ThreadedReactor().start()
        self.reactor = self.backend.reactor
        self.addCleanup(self.backend.stop)  # type: ignore[attr-defined]
        super().setUp()  # type: ignore[misc]

    def run_scenario(self, scenario: Callable[[], Any]) -> None:
        self.backend.wait(scenario)

    def call(self, function: Callable[..., Any], *args: Any) -> Any:
        return self.backend.call(function, *args)


def _never() -> bool:
    return False


def _dispose(f: SSLFile) -> None:
    sock = f.shutdown()
    if sock is not None:
        sock.close()


class SSLFileHelpers(PKIMixin):
    """Making SSLFiles and waiting for things, on whatever backend."""

    reactor: Any
    call: Callable[..., Any]
    make_pair: Callable[[], tuple[socket.socket, socket.socket]]

    def pair(self) -> tuple[socket.socket, socket.socket]:
        client, server = self.make_pair()
        self.addCleanup(client.close)  # type: ignore[attr-defined]
        self.addCleanup(server.close)  # type: ignore[attr-defined]
        return client, server

    def track(self, f: SSLFile) -> SSLFile:
        self.addCleanup(self.call, _dispose, f)  # type: ignore[attr-defined]
        return f

    def client(
        self, sock: socket.socket, blocking: bool = False, **kwargs: Any
    ) -> SSLFile:
        kwargs.setdefault("server_name", "example.com")
        kwargs.setdefault("backend", self.reactor)
        context = kwargs.pop("ctx", self.client_context)
        return self.track(SSLFile(sock, context, True, blocking, **kwargs))

    def server(
        self, sock: socket.socket, blocking: bool = False, **kwargs: Any
    ) -> SSLFile:
        kwargs.setdefault("backend", self.reactor)
        context = kwargs.pop("ctx", self.server_context)
        return self.track(SSLFile(sock, context, False, blocking, **kwargs))

    def in_thread(self, function: Callable[..., Any], *args: Any) -> defer.Deferred:
        """Run blocking code in a new thread; its result comes back in the
        backend's thread."""
        d: defer.Deferred[Any] = defer.Deferred()
        reactor = self.reactor

        def run() -> None:
            try:
                result = function(*args)
            except BaseException:
                failure = Failure()
                reactor.callFromThread(d.errback, failure)
            else:
                reactor.callFromThread(d.callback, result)

        threading.Thread(target=run, daemon=True).start()
        return d

    def turns(self, count: int = 3) -> defer.Deferred[None]:
        """Fires after ``count`` turns of the backend's loop."""
        d: defer.Deferred[None] = task.deferLater(self.reactor, 0, lambda: None)
        for _ in range(count - 1):
            d.addCallback(lambda _: task.deferLater(self.reactor, 0, lambda: None))
        return d

    def wait_until(
        self, predicate: Callable[[], bool], timeout: float = TIMEOUT
    ) -> defer.Deferred[None]:
        """Fires once ``predicate()`` holds, checked as the backend turns."""
        d: defer.Deferred[None] = defer.Deferred()
        deadline = self.reactor.seconds() + timeout

        def check() -> None:
            nonlocal predicate
            try:
                ok = predicate()
            except BaseException:
                predicate = _never
                d.errback()
                return
            if ok:
                # check() refers to itself (a cycle only gc frees): let go of
                # the predicate, and so of the objects it names, at once.
                predicate = _never
                d.callback(None)
            elif self.reactor.seconds() > deadline:
                predicate = _never
                d.errback(AssertionError(f"not reached in {timeout}s"))
            else:
                self.reactor.callLater(0.001, check)

        check()
        return d

    @staticmethod
    def guard(d: defer.Deferred[Any], function: Callable[..., Any]) -> Callable:
        """Wrap a callback so an assertion in it fails ``d`` (not just a log)."""

        def wrapper(*args: Any) -> Any:
            try:
                return function(*args)
            except BaseException:
                if d.called:
                    raise
                d.errback()
                return None

        return wrapper

    def handshake(self, client: SSLFile, server: SSLFile) -> defer.Deferred[None]:
        """Both NB sides finished their handshake (observed, not driven)."""
        return self.wait_until(
            lambda: (
                client.query_version() is not None
                and server.query_version() is not None
            )
        )


# ---------------------------------------------------------------------------
# docs/sslfile.rst: "Reference scenarios" and the error paths of "Reading
# and writing", "Closing" and "Callbacks", on every backend and transport
# ---------------------------------------------------------------------------


class ScenarioTests(SSLFileHelpers):
    """The scenarios; concrete classes below pick backend and transport."""

    run_scenario: Callable[[Callable[[], Any]], Any]
    transport: str

    # -- 1. NB echo ------------------------------------------------------------

    def test_nb_echo(self) -> Any:
        """
        65519 random bytes in writes of at most 4096 from the client's write
        callback come back exactly through a server echoing from its read
        callback; version and suite are right at the first write callback;
        the server closes when all is echoed, the client in its close
        callback.
        """
        return self.run_scenario(self._nb_echo)

    def test_nb_echo_tls12(self) -> Any:
        """The NB echo over TLS 1.2."""
        return self.run_scenario(lambda: self._nb_echo(TLS12))

    def _nb_echo(self, version: ProtocolVersion = TLS13) -> defer.Deferred[None]:
        csock, ssock = self.pair()
        payload = os.urandom(65519)
        done: defer.Deferred[None] = defer.Deferred()
        server = self.server(ssock)
        client = self.client(csock, max_version=version)
        pending = bytearray()
        echoed = [0]
        sent = [0]
        received = bytearray()
        write_callbacks = [0]

        def server_flush() -> None:
            while pending:
                n = server.write(bytes(pending[:WRITE_LIMIT]))
                if n <= 0:
                    self.assertEqual(server.errno(), errno.EAGAIN)
                    return
                del pending[:n]
                echoed[0] += n
            if echoed[0] == len(payload):
                self.assertEqual(server.close(), 1)

        def server_read(ident: object, data: bytes) -> None:
            self.assertIs(ident, server)
            pending.extend(data)
            server_flush()

        def server_write(ident: object) -> None:
            server_flush()

        def client_write(ident: object) -> None:
            self.assertIs(ident, client)
            write_callbacks[0] += 1
            if write_callbacks[0] == 1:
                # (The TLS 1.3 server finishes only when our Finished
                # arrives, so only the client's view is settled here.)
                self.assertEqual(client.query_version(), version)
                self.assertEqual(
                    client.query_suite() in TLS13_CIPHER_SUITES, version == TLS13
                )
                self.assertIsNotNone(client.query_suite())
            if sent[0] < len(payload):
                n = client.write(payload[sent[0] : sent[0] + 4096])
                self.assertGreater(n, 0)
                sent[0] += n

        def client_read(ident: object, data: bytes) -> None:
            received.extend(data)

        def client_close(ident: object) -> None:
            self.assertEqual(client.errno(), 0)
            self.assertEqual(client.close(), 1)
            self.assertEqual(bytes(received), payload)
            self.assertEqual(sent[0], len(payload))
            done.callback(None)

        server.set_nonblocking(
            self.guard(done, server_read), self.guard(done, server_write)
        )
        client.set_nonblocking(
            self.guard(done, client_read),
            self.guard(done, client_write),
            self.guard(done, client_close),
        )
        return done

    # -- 2. resumption ---------------------------------------------------------

    def test_resumption_tls13(self) -> Any:
        """A second TLS 1.3 connection with the first one's session resumes."""
        return self.run_scenario(lambda: self._resumption(TLS13))

    def test_resumption_tls12(self) -> Any:
        """A second TLS 1.2 connection with the first one's session resumes."""
        return self.run_scenario(lambda: self._resumption(TLS12))

    @defer.inlineCallbacks
    def _resumption(self, version: ProtocolVersion) -> Any:
        csock, ssock = self.pair()
        kwargs = {"min_version": version, "max_version": version}
        server = self.server(ssock, **kwargs)
        client = self.client(csock, **kwargs)
        yield self.handshake(client, server)
        # TLS 1.3 tickets come after the handshake: exchange data first.
        self.assertEqual(server.write(b"ticket time"), 11)
        yield self.wait_until(lambda: client.read() == b"ticket time")
        session = client.session
        self.assertIsNotNone(session)
        client.close()
        server.close()
        csock2, ssock2 = self.pair()
        server2 = self.server(ssock2, **kwargs)
        client2 = self.client(csock2, session=session, **kwargs)
        yield self.handshake(client2, server2)
        result = client2.query_connection().handshake_result
        self.assertTrue(result.resumed)
        self.assertTrue(server2.query_connection().handshake_result.resumed)
        self.assertEqual(client2.query_version(), version)
        # The same session: its suite and the certificates verified then.
        self.assertEqual(client2.query_suite(), session.cipher_suite)
        self.assertEqual(
            client2.get_peer_certificates(), list(session.peer_certificates)
        )
        self.assertTrue(client2.get_peer_certificate_info()["verified"])
        if version == TLS12:
            # RFC 5246 §7.4.1.3: the server echoes the session's identity.
            self.assertEqual(client2.session.session_id, session.session_id)

    # -- 3. version matrix (test methods generated below) ----------------------

    @defer.inlineCallbacks
    def _version_pair(
        self, client_range: tuple[int, int], server_range: tuple[int, int]
    ) -> Any:
        overlap = max(client_range[0], server_range[0]) <= min(
            client_range[1], server_range[1]
        )
        csock, ssock = self.pair()
        server = self.server(
            ssock, min_version=server_range[0], max_version=server_range[1]
        )
        client = self.client(
            csock, min_version=client_range[0], max_version=client_range[1]
        )
        calls: list[tuple[str, str, int]] = []
        finished: defer.Deferred[None] = defer.Deferred()

        def recorder(side: SSLFile, name: str, kind: str) -> Callable[..., None]:
            def callback(*args: object) -> None:
                calls.append((name, kind, side.errno()))
                if overlap and name == "client" and kind == "write":
                    finished.callback(None)
                if not overlap and len(calls) == 3 and not finished.called:
                    finished.callback(None)

            return callback

        for side, name in ((client, "client"), (server, "server")):
            side.set_callbacks(
                write_cb=recorder(side, name, "write"),
                close_cb=recorder(side, name, "close"),
            )
        yield finished
        yield self.turns()
        if overlap:
            expected = min(client_range[1], server_range[1])
            self.assertEqual(client.query_version(), expected)
            self.assertEqual(server.query_version(), expected)
            return
        # docs/sslfile.rst, "Callbacks": the sender of the fatal alert (the
        # server: no common version) sees close (ECONNABORTED) then write
        # (EPIPE); the receiver only close (ECONNRESET).
        self.assertEqual(
            sorted(calls),
            sorted(
                [
                    ("server", "close", errno.ECONNABORTED),
                    ("server", "write", errno.EPIPE),
                    ("client", "close", errno.ECONNRESET),
                ]
            ),
        )
        server_calls = [c for c in calls if c[0] == "server"]
        self.assertEqual([c[1] for c in server_calls], ["close", "write"])
        self.assertIsNone(client.query_version())
        self.assertEqual(client.write(b"x"), -1)
        self.assertEqual(client.errno(), errno.ECONNRESET)
        self.assertIsNone(client.read())
        self.assertEqual(client.errno(), errno.EPIPE)
        self.assertEqual(server.write(b"x"), -1)
        self.assertEqual(server.errno(), errno.EPIPE)
        self.assertEqual(server.close(), 0)
        self.assertEqual(server.errno(), errno.ECONNABORTED)
        self.assertEqual(client.close(), 0)
        self.assertEqual(client.errno(), errno.ECONNRESET)

    # -- 4. blocking mode in threads -------------------------------------------

    def test_blocking_threads(self) -> Any:
        """
        A blocking server thread echoes with read(1024)/write; the blocking
        client writes 65519 bytes from one thread while another thread reads
        them back; both complete.

        The server reads with ``not_all=True``: a plain ``read(1024)`` waits
        for a full 1024 bytes, and 65519 is not a multiple of 1024, so it
        would hold the tail back until the client closed - which the client
        does only after getting the tail.
        """
        return self.run_scenario(self._blocking_threads)

    def _blocking_threads(self) -> defer.Deferred[Any]:
        csock, ssock = self.pair()
        payload = os.urandom(65519)
        reactor = self.reactor

        def serve() -> int:
            server = SSLFile(ssock, self.server_context, False, True, backend=reactor)
            echoed = 0
            while True:
                data = server.read(1024, not_all=True)
                if not data:
                    break
                self.assertLessEqual(len(data), 1024)
                self.assertEqual(server.write(data), len(data))
                echoed += len(data)
            self.assertEqual(data, b"")
            self.assertEqual(server.errno(), 0)
            self.assertEqual(server.close(), 1)
            return echoed

        def talk() -> bytes:
            client = SSLFile(
                csock,
                self.client_context,
                True,
                True,
                server_name="example.com",
                backend=reactor,
            )
            self.assertEqual(client.query_version(), TLS13)
            result: dict[str, Any] = {}

            def reader() -> None:
                result["data"] = client.read(len(payload))

            thread = threading.Thread(target=reader, daemon=True)
            thread.start()
            self.assertEqual(client.write(payload), len(payload))
            thread.join(TIMEOUT)
            self.assertFalse(thread.is_alive(), "the reading thread is stuck")
            self.assertEqual(client.close(), 1)
            return result["data"]

        def check(results: list[Any]) -> None:
            echoed, data = results
            self.assertEqual(echoed, len(payload))
            self.assertEqual(data, payload)

        d = defer.gatherResults(
            [self.in_thread(serve), self.in_thread(talk)], consumeErrors=True
        )
        d.addErrback(lambda f: f.value.subFailure)
        return d.addCallback(check)

    # -- 5. plain HTTP on the TLS port -----------------------------------------

    def test_plain_http_alert_callback(self) -> Any:
        """
        Plain HTTP sent to an NB TLS server reaches the alert callback as a
        prefix of the request, before any alert goes out; shutdown() there
        hands back the socket and the server answers in plain HTTP.
        """
        return self.run_scenario(self._plain_http)

    def _plain_http(self) -> defer.Deferred[None]:
        csock, ssock = self.pair()
        server = self.server(ssock)
        done: defer.Deferred[None] = defer.Deferred()
        seen: list[tuple[object, int, bytes]] = []
        response = b"HTTP/1.1 301 Moved Permanently\r\nLocation: https://x/\r\n\r\n"

        def alert(alert: object, seq: int, raw: bytes) -> None:
            seen.append((alert, seq, raw))
            self.assertTrue(raw, "no raw bytes")
            self.assertTrue(HTTP_REQUEST.startswith(raw), raw)
            self.assertIsInstance(alert, TLSError)
            raw_socket = server.shutdown()
            self.assertIs(raw_socket, ssock)
            self.assertEqual(server.errno(), 0)
            # Handed back in the mode it came in: blocking.
            self.assertIsNone(raw_socket.gettimeout())
            raw_socket.sendall(response)
            raw_socket.shutdown(socket.SHUT_WR)
            done.callback(None)

        server.set_alert_callback(self.guard(done, alert))
        csock.sendall(HTTP_REQUEST)

        def check(_: object) -> None:
            self.assertEqual(len(seen), 1)
            csock.settimeout(TIMEOUT)
            # Exactly the plaintext answer: no TLS alert went out first.
            self.assertEqual(recv_to_end(csock), response)

        return done.addCallback(check)

    def test_plain_http_without_shutdown_gets_alert(self) -> Any:
        """
        Without shutdown() in the callback the fatal alert goes out
        (decode_error or unexpected_message, in plaintext) and the server
        records ECONNABORTED.
        """
        return self.run_scenario(self._plain_http_alert)

    @defer.inlineCallbacks
    def _plain_http_alert(self) -> Any:
        csock, ssock = self.pair()
        server = self.server(ssock)
        seen: list[bytes] = []
        server.set_alert_callback(lambda alert, seq, raw: seen.append(raw))
        csock.sendall(HTTP_REQUEST)
        yield self.wait_until(lambda: bool(seen))
        self.assertEqual(server.close(), 0)
        self.assertEqual(server.errno(), errno.ECONNABORTED)
        csock.settimeout(TIMEOUT)
        answer = recv_to_end(csock)
        self.assertEqual(answer[:3], b"\x15\x03\x03")
        self.assertEqual(answer[5], 2)  # fatal
        self.assertIn(
            answer[6],
            (AlertDescription.decode_error, AlertDescription.unexpected_message),
        )

    # -- 6. stalled handshake --------------------------------------------------

    def test_stalled_handshake_nb_close(self) -> Any:
        """
        The peer accepts but never answers: an NB normal close returns 1 at
        once, and the close_notify goes out right behind the ClientHello.
        """

        def scenario() -> None:
            csock, ssock = self.pair()
            client = self.client(csock)
            self.assertEqual(client.close(), 1)
            self.assertEqual(client.query_fd(), -1)
            ssock.settimeout(TIMEOUT)
            wire = recv_to_end(ssock)
            self.assertEqual(wire[0], 22)  # the ClientHello record
            self.assertTrue(wire.endswith(b"\x15\x03\x03\x00\x02\x01\x00"), wire[-7:])

        return self.run_scenario(scenario)

    def test_stalled_handshake_nb_clean_close(self) -> Any:
        """
        An NB clean close on a stalled handshake is pending (is_open() == 2);
        shutdown() then closes the socket and returns None with EPIPE.
        """

        def scenario() -> None:
            csock, _ssock = self.pair()
            client = self.client(csock)
            self.assertEqual(client.close(None, True), 1)
            self.assertEqual(client.is_open(), 2)
            self.assertIsNone(client.shutdown())
            self.assertEqual(client.errno(), errno.EPIPE)
            self.assertEqual(csock.fileno(), -1)

        return self.run_scenario(scenario)

    def test_stalled_handshake_blocking_close(self) -> Any:
        """
        In B mode too a normal close of a stalled handshake returns 1
        promptly: a client switched to blocking, and a blocking server whose
        client never speaks (close only advances a lazy handshake, it does
        not wait for it).
        """

        def scenario() -> defer.Deferred[Any]:
            csock, _ssock = self.pair()
            client = self.client(csock)
            client.set_blocking()
            _c2, s2 = self.pair()
            server = self.server(s2, blocking=True)

            def close_both() -> tuple[int, int]:
                return client.close(), server.close()

            d = self.in_thread(close_both)
            d.addCallback(self.assertEqual, (1, 1))
            return d

        return self.run_scenario(scenario)

    def test_stalled_handshake_blocking_timeout(self) -> Any:
        """
        set_timeout bounds each wait of a blocking call: a read on a stalled
        handshake fails with EIO (and the SSLFile stays usable).
        """

        def scenario() -> defer.Deferred[Any]:
            csock, _ssock = self.pair()
            client = self.client(csock)
            client.set_blocking()
            client.set_timeout(0.05)

            def read() -> tuple[object, int, int]:
                return client.read(10), client.errno(), client.is_open()

            d = self.in_thread(read)
            d.addCallback(self.assertEqual, (None, errno.EIO, 1))
            return d

        return self.run_scenario(scenario)

    # -- bounded closes (issue 10) ---------------------------------------------

    @defer.inlineCallbacks
    def stuck_client(self, **kwargs: Any) -> Any:
        """A client whose peer stopped reading, with its queue full: the
        server side is handed back raw (open, never read) after the
        handshake, and the client writes until NB writes take nothing more."""
        csock, ssock = self.pair()
        # Small kernel buffers that TCP autotuning cannot grow later (which
        # would let a queue "stuck" now leave after all).
        for sock in (csock, ssock):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 32768)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32768)
        server = self.server(ssock)
        client = self.client(csock, close_timeout=0.3, **kwargs)
        yield self.handshake(client, server)
        raw = server.shutdown()
        self.assertIsNotNone(raw)
        chunk = b"q" * 65536
        for _ in range(10_000):
            if client.write(chunk) == 0:
                break
        self.assertEqual(client.errno(), errno.EAGAIN)
        return client, csock

    def test_nb_close_peer_never_reads(self) -> Any:
        """
        An NB normal close whose close_notify cannot leave (the peer reads
        nothing): after close_timeout the queue is dropped and the socket
        closed, instead of staying registered forever.
        """
        return self.run_scenario(self._nb_close_peer_never_reads)

    @defer.inlineCallbacks
    def _nb_close_peer_never_reads(self) -> Any:
        client, csock = yield self.stuck_client()
        started = self.reactor.seconds()
        self.assertEqual(client.close(), 1)
        self.assertNotEqual(csock.fileno(), -1)  # still trying to write
        yield self.wait_until(lambda: csock.fileno() == -1, timeout=5)
        self.assertGreaterEqual(self.reactor.seconds() - started, 0.25)
        self.assertIsNone(client.shutdown())
        self.assertEqual(client.errno(), errno.ETIMEDOUT)

    def test_nb_clean_close_peer_never_reads(self) -> Any:
        """
        An NB clean close that cannot finish ends after close_timeout: the
        close callback reports ETIMEDOUT, is_open() drops from 2 to 0.
        """
        return self.run_scenario(self._nb_clean_close_peer_never_reads)

    @defer.inlineCallbacks
    def _nb_clean_close_peer_never_reads(self) -> Any:
        client, csock = yield self.stuck_client()
        closed: defer.Deferred[int] = defer.Deferred()
        client.set_close_callback(lambda ident: closed.callback(client.errno()))
        self.assertEqual(client.close(None, True), 1)
        self.assertEqual(client.is_open(), 2)
        code = yield closed
        self.assertEqual(code, errno.ETIMEDOUT)
        self.assertEqual(client.is_open(), 0)
        self.assertEqual(csock.fileno(), -1)
        self.assertIsNone(client.shutdown())
        self.assertEqual(client.errno(), errno.ETIMEDOUT)

    def test_blocking_close_peer_never_reads(self) -> Any:
        """
        A blocking close waits at most close_timeout for its queue to leave;
        then the socket is closed and the close fails with ETIMEDOUT (an
        OSError, or 0 and errno() with dont_throw).
        """
        return self.run_scenario(self._blocking_close_peer_never_reads)

    @defer.inlineCallbacks
    def _blocking_close_peer_never_reads(self) -> Any:
        first, first_sock = yield self.stuck_client()
        second, second_sock = yield self.stuck_client()
        first.set_blocking()
        second.set_blocking()

        def close_first() -> int:
            with self.assertRaises(OSError) as caught:
                first.close()
            return caught.exception.errno

        code = yield self.in_thread(close_first)
        self.assertEqual(code, errno.ETIMEDOUT)
        self.assertEqual(first_sock.fileno(), -1)
        result = yield self.in_thread(
            lambda: (second.close(None, True, True), second.errno())
        )
        self.assertEqual(result, (0, errno.ETIMEDOUT))
        self.assertEqual(second_sock.fileno(), -1)

    def test_close_timeout_validation(self) -> None:
        csock, _ssock = self.pair()
        for bad in (0, -1, "3", True):
            self.assertRaises(
                (ValueError, TypeError), self.client, csock, close_timeout=bad
            )

    # -- 7. abrupt close, reset, fatal alerts ----------------------------------

    def test_abrupt_close(self) -> Any:
        """
        The peer's TCP goes away without close_notify: data first, then the
        close callback with EPIPE; read -> None EPIPE, write -> -1 EPIPE,
        close -> 0 EPIPE.
        """
        return self.run_scenario(self._abrupt_close)

    @defer.inlineCallbacks
    def _abrupt_close(self) -> Any:
        csock, ssock = self.pair()
        server = self.server(ssock)
        client = self.client(csock)
        events: list[tuple[str, object]] = []
        closed: defer.Deferred[None] = defer.Deferred()

        def on_close(ident: object) -> None:
            events.append(("close", client.errno()))
            closed.callback(None)

        client.set_callbacks(
            read_cb=lambda ident, data: events.append(("read", data)),
            close_cb=on_close,
        )
        yield self.handshake(client, server)
        self.assertEqual(server.write(b"last words"), 10)
        raw = server.shutdown()  # no close asked: no close_notify either
        self.assertIsNotNone(raw)
        raw.close()
        yield closed
        self.assertEqual(events, [("read", b"last words"), ("close", errno.EPIPE)])
        self.assertIsNone(client.read())
        self.assertEqual(client.errno(), errno.EPIPE)
        self.assertEqual(client.write(b"x"), -1)
        self.assertEqual(client.errno(), errno.EPIPE)
        self.assertEqual(client.is_open(), 0)
        self.assertEqual(client.close(), 0)
        self.assertEqual(client.errno(), errno.EPIPE)
        self.assertEqual(client.close(), 1)  # closing twice

    def test_abrupt_close_without_callbacks(self) -> Any:
        """
        Without callbacks the buffered data still comes first from read(),
        then None with EPIPE.
        """
        return self.run_scenario(self._abrupt_close_plain)

    @defer.inlineCallbacks
    def _abrupt_close_plain(self) -> Any:
        csock, ssock = self.pair()
        server = self.server(ssock)
        client = self.client(csock)
        yield self.handshake(client, server)
        self.assertEqual(server.write(b"buffered"), 8)
        server.shutdown().close()
        yield self.wait_until(lambda: client.is_open() == 1 and client._eof)
        self.assertEqual(client.read(), b"buffered")
        self.assertEqual(client.errno(), 0)
        self.assertIsNone(client.read())
        self.assertEqual(client.errno(), errno.EPIPE)
        self.assertEqual(client.is_open(), 0)

    def test_peer_fatal_alert(self) -> Any:
        """
        Bytes corrupted on the wire: the receiver's record layer refuses them
        (alert callback with the raw record), it sends bad_record_mac and
        sees close (ECONNABORTED) then write (EPIPE); the other side receives
        the alert: data sent before it first, then close (ECONNRESET); write
        -> -1 ECONNRESET, read -> None EPIPE, close -> 0 ECONNRESET.
        """
        return self.run_scenario(self._peer_fatal_alert)

    @defer.inlineCallbacks
    def _peer_fatal_alert(self) -> Any:
        csock, ssock = self.pair()
        server = self.server(ssock)
        client = self.client(csock)
        client_events: list[tuple[str, object]] = []
        server_events: list[tuple[str, object]] = []
        done: defer.Deferred[None] = defer.Deferred()

        def server_write(ident: object) -> None:
            server_events.append(("write", server.errno()))
            if server.errno():
                done.callback(None)

        server.set_callbacks(
            close_cb=lambda ident: server_events.append(("close", server.errno())),
            write_cb=server_write,
        )
        server.set_alert_callback(
            lambda alert, seq, raw: server_events.append(("alert", (alert.alert, raw)))
        )
        client.set_callbacks(
            read_cb=lambda ident, data: client_events.append(("read", data)),
            close_cb=lambda ident: client_events.append(("close", client.errno())),
        )
        yield self.handshake(client, server)
        self.assertEqual(server.write(b"before the alert"), 16)
        yield self.wait_until(lambda: bool(client_events))
        bogus = b"\x17\x03\x03\x00\x20" + bytes(32)
        # The peer's bytes are damaged on the way: inject a forged record.
        csock.send(bogus)
        yield done
        yield self.wait_until(lambda: len(client_events) == 2)
        # Before the alert the write callback said "ready" once or twice
        # (after the handshake, and again after the write if the poll came
        # in between): one-shot until the next write.
        while server_events[:1] == [("write", 0)]:
            del server_events[0]
        self.assertEqual(
            server_events,
            [
                ("alert", (AlertDescription.bad_record_mac, bogus)),
                ("close", errno.ECONNABORTED),
                ("write", errno.EPIPE),
            ],
        )
        self.assertEqual(
            client_events,
            [("read", b"before the alert"), ("close", errno.ECONNRESET)],
        )
        self.assertEqual(client.write(b"x"), -1)
        self.assertEqual(client.errno(), errno.ECONNRESET)
        self.assertIsNone(client.read())
        self.assertEqual(client.errno(), errno.EPIPE)
        self.assertEqual(client.close(), 0)
        self.assertEqual(client.errno(), errno.ECONNRESET)
        self.assertIsNone(server.read())
        self.assertEqual(server.errno(), errno.EPIPE)
        self.assertEqual(server.close(), 0)
        self.assertEqual(server.errno(), errno.ECONNABORTED)

    # -- 8. clean close both sides, blocking -----------------------------------

    def test_blocking_clean_close(self) -> Any:
        """
        Both sides close(None, True) in B mode: each returns 1, shutdown()
        hands back the open socket, and plaintext flows both ways on it.
        """
        return self.run_scenario(self._blocking_clean_close)

    def _blocking_clean_close(self) -> defer.Deferred[Any]:
        csock, ssock = self.pair()
        reactor = self.reactor

        def serve() -> bytes:
            server = SSLFile(ssock, self.server_context, False, True, backend=reactor)
            self.assertEqual(server.read(5), b"hello")
            self.assertEqual(server.close(None, True), 1)
            self.assertEqual(server.is_open(), 0)
            raw = server.shutdown()
            self.assertIs(raw, ssock)
            self.assertEqual(server.errno(), 0)
            raw.settimeout(TIMEOUT)
            raw.sendall(b"plain from server")
            return plain_recv(server, raw, 17)

        def talk() -> bytes:
            client = SSLFile(
                csock,
                self.client_context,
                True,
                True,
                server_name="example.com",
                backend=reactor,
            )
            self.assertEqual(client.write(b"hello"), 5)
            self.assertEqual(client.close(None, True), 1)
            raw = client.shutdown()
            self.assertIs(raw, csock)
            raw.settimeout(TIMEOUT)
            raw.sendall(b"plain from client")
            return plain_recv(client, raw, 17)

        d = defer.gatherResults(
            [self.in_thread(serve), self.in_thread(talk)], consumeErrors=True
        )
        d.addErrback(lambda f: f.value.subFailure)
        d.addCallback(self.assertEqual, [b"plain from client", b"plain from server"])
        return d

    def test_nb_clean_close(self) -> Any:
        """
        An NB clean close is pending (is_open() == 2) until the peer's
        close_notify; the close callback then reports it with errno 0 and
        shutdown() hands back the open socket.
        """
        return self.run_scenario(self._nb_clean_close)

    @defer.inlineCallbacks
    def _nb_clean_close(self) -> Any:
        csock, ssock = self.pair()
        server = self.server(ssock)
        client = self.client(csock)
        yield self.handshake(client, server)
        client_closed: defer.Deferred[int] = defer.Deferred()
        client.set_close_callback(lambda ident: client_closed.callback(client.errno()))
        server_closed: defer.Deferred[None] = defer.Deferred()
        server.set_close_callback(lambda ident: server_closed.callback(None))
        self.assertEqual(client.close(None, True), 1)
        self.assertEqual(client.is_open(), 2)
        yield server_closed
        self.assertEqual(server.close(), 1)
        self.assertEqual((yield client_closed), 0)
        self.assertEqual(client.is_open(), 0)
        raw = client.shutdown()
        self.assertIs(raw, csock)
        self.assertEqual(client.errno(), 0)

    def test_unused_data_after_shutdown(self) -> Any:
        """
        Bytes that follow the peer's close_notify in the same segment belong
        to the plaintext phase: after shutdown() read() returns them first.
        """
        return self.run_scenario(self._unused_data)

    @defer.inlineCallbacks
    def _unused_data(self) -> Any:
        csock, ssock = self.pair()
        server = self.server(ssock)
        client = self.client(csock)
        yield self.handshake(client, server)
        self.assertEqual(server.write(b"tls data"), 8)
        # The peer closes TLS and starts its plaintext phase in one write.
        engine = server.query_connection()
        engine.close()
        wire = engine.data_to_send()
        raw_server = server.shutdown()
        raw_server.sendall(wire + b"PLAIN-1")
        yield self.wait_until(lambda: client.is_open() == 1 and client._peer_closed)
        self.assertEqual(client.read(), b"tls data")
        self.assertEqual(client.read(), b"")
        self.assertEqual(client.errno(), 0)
        self.assertEqual(client.close(None, True), 1)
        raw = client.shutdown()
        self.assertIs(raw, csock)
        raw_server.sendall(b"PLAIN-2")
        self.assertEqual(client.read(), b"PLAIN-1")
        raw.settimeout(TIMEOUT)
        self.assertEqual(recv_exactly(raw, 7), b"PLAIN-2")
        with self.assertRaises(OSError) as caught:
            client.read()
        self.assertEqual(caught.exception.errno, errno.EBADF)

    # -- 9. back-pressure ------------------------------------------------------

    def test_back_pressure(self) -> Any:
        """
        NB write(1_000_000 bytes) accepts 65536; a receiver without a read
        callback stops reading at 64 KiB; the sender's writes then stall
        (0, EAGAIN, no write callback) until the receiver reads, after which
        everything arrives intact.
        """
        return self.run_scenario(self._back_pressure)

    @defer.inlineCallbacks
    def _back_pressure(self) -> Any:
        csock, ssock = self.pair()
        # Small kernel buffers, so "stalled" comes after kilobytes, not the
        # megabytes TCP autotuning would otherwise absorb.
        for sock in (csock, ssock):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 32768)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32768)
        receiver = self.server(ssock)
        sender = self.client(csock)
        yield self.handshake(sender, receiver)
        sent_digest = hashlib.sha256()
        state = {"total": 0, "callbacks": 0, "stalled": False}
        block = bytes(range(256)) * 256  # 64 KiB

        first = sender.write(b"x" * 1_000_000)
        self.assertEqual(first, 65536)
        sent_digest.update(b"x" * first)
        state["total"] = first

        def write_more(ident: object) -> None:
            state["callbacks"] += 1
            while state["total"] < 16 * 1024 * 1024:
                n = sender.write(block)
                if n == 0:
                    self.assertEqual(sender.errno(), errno.EAGAIN)
                    state["stalled"] = True
                    return
                sent_digest.update(block[:n])
                state["total"] += n

        sender.set_write_callback(write_more)
        yield self.wait_until(
            lambda: (
                state["stalled"]
                and not receiver._reading
                and len(receiver._inbuf) >= READ_BUFFER_LIMIT
            )
        )
        stalled_at = state["total"], state["callbacks"]
        yield self.turns(5)
        self.assertEqual((state["total"], state["callbacks"]), stalled_at)
        self.assertTrue(state["total"] < 16 * 1024 * 1024)
        # The receiver's buffer is bounded: 64 KiB plus less than one read.
        buffered = receiver.read()
        self.assertGreaterEqual(len(buffered), READ_BUFFER_LIMIT)
        self.assertLessEqual(len(buffered), READ_BUFFER_LIMIT + 65536)
        received_digest = hashlib.sha256(buffered)
        count = [len(buffered)]
        closed: defer.Deferred[None] = defer.Deferred()

        def on_read(ident: object, data: bytes) -> None:
            received_digest.update(data)
            count[0] += len(data)

        receiver.set_nonblocking(on_read, None, lambda ident: closed.callback(None))
        # The sender resumes only because the receiver read.
        yield self.wait_until(lambda: state["callbacks"] > stalled_at[1])
        sender.set_write_callback(None)
        self.assertEqual(sender.close(), 1)
        yield closed
        self.assertEqual(count[0], state["total"])
        self.assertEqual(received_digest.digest(), sent_digest.digest())

    # -- 10. dropping an NB client ---------------------------------------------

    def test_drop_open_client(self) -> Any:
        """
        Dropping the last reference to an open NB client (no callbacks)
        frees it at once (gc disabled) and its best-effort close makes the
        server's close callback fire with errno 0.
        """
        gc.disable()
        self.addCleanup(gc.enable)
        return self.run_scenario(self._drop_client)

    def _drop_client(self) -> defer.Deferred[None]:
        csock, ssock = self.pair()
        server = self.server(ssock)
        holder = [
            SSLFile(
                csock,
                self.client_context,
                True,
                False,
                server_name="example.com",
                backend=self.reactor,
            )
        ]
        ref = weakref.ref(holder[0])
        done: defer.Deferred[None] = defer.Deferred()

        def accepted(f: SSLFile, ident: object) -> None:
            self.assertIs(f, server)
            holder.clear()
            self.assertIsNone(ref(), "the SSLFile was not freed at once")

        def closed(ident: object) -> None:
            self.assertEqual(server.errno(), 0)
            self.assertEqual(server.read(), b"")
            done.callback(None)

        server.set_callbacks(
            accept_cb=self.guard(done, accepted), close_cb=self.guard(done, closed)
        )
        return done

    # -- more error paths and features -----------------------------------------

    def test_untrusted_server_nb(self) -> Any:
        """
        An NB client that rejects the server's certificate sends the alert:
        its live callbacks see close (ECONNABORTED) then write (EPIPE), the
        server's set_nonblocking callbacks (held back) are never called and
        a live close callback there reports ECONNRESET.
        """
        return self.run_scenario(self._untrusted_server_nb)

    @defer.inlineCallbacks
    def _untrusted_server_nb(self) -> Any:
        csock, ssock = self.pair()
        stranger = CertificateFactory(None)
        client = self.client(csock, ctx=Context(trust_roots=stranger.trust_roots))
        server = self.server(ssock)
        held: list[str] = []
        server.set_nonblocking(
            lambda *a: held.append("read"),
            lambda *a: held.append("write"),
            lambda *a: held.append("close"),
            accept_cb=lambda *a: held.append("accept"),
        )
        server_closed: defer.Deferred[int] = defer.Deferred()
        server.set_close_callback(lambda ident: server_closed.callback(server.errno()))
        client_calls: list[tuple[str, int]] = []
        client_done: defer.Deferred[None] = defer.Deferred()

        def client_write(ident: object) -> None:
            client_calls.append(("write", client.errno()))
            client_done.callback(None)

        client.set_callbacks(
            close_cb=lambda ident: client_calls.append(("close", client.errno())),
            write_cb=client_write,
        )
        self.assertEqual((yield server_closed), errno.ECONNRESET)
        yield client_done
        yield self.turns()
        self.assertEqual(
            client_calls, [("close", errno.ECONNABORTED), ("write", errno.EPIPE)]
        )
        self.assertEqual(held, [])
        self.assertIsNone(server.query_version())

    def test_blocking_client_handshake_failure(self) -> Any:
        """
        A blocking client whose handshake fails raises SSLHandshakeError (an
        OSError, EPIPE, "SSL handshake failure: ...") and hands the socket
        back open and blocking; the server received the alert.
        """
        return self.run_scenario(self._blocking_handshake_failure)

    def _blocking_handshake_failure(self) -> defer.Deferred[Any]:
        csock, ssock = self.pair()
        server = self.server(ssock)
        server_closed: defer.Deferred[int] = defer.Deferred()
        server.set_close_callback(lambda ident: server_closed.callback(server.errno()))
        stranger = Context(trust_roots=CertificateFactory(None).trust_roots)
        reactor = self.reactor

        def connect() -> None:
            with self.assertRaises(SSLHandshakeError) as caught:
                SSLFile(
                    csock,
                    stranger,
                    True,
                    True,
                    server_name="example.com",
                    backend=reactor,
                )
            error = caught.exception
            self.assertIsInstance(error, OSError)
            self.assertEqual(error.errno, errno.EPIPE)
            self.assertTrue(error.strerror.startswith("SSL handshake failure: "))
            self.assertIsInstance(error.tls_error, TLSError)
            self.assertGreaterEqual(csock.fileno(), 0)  # detached, not closed
            self.assertIsNone(csock.gettimeout())

        d = self.in_thread(connect)
        d.addCallback(lambda _: server_closed)
        d.addCallback(self.assertEqual, errno.ECONNRESET)
        return d

    def test_renegotiate_tls13(self) -> Any:
        """
        renegotiate() in TLS 1.3 is a KeyUpdate asking the peer to follow;
        the accept callback fires again when the peer's update arrives, and
        data keeps flowing under the new keys.
        """
        return self.run_scenario(self._renegotiate)

    @defer.inlineCallbacks
    def _renegotiate(self) -> Any:
        csock, ssock = self.pair()
        server = self.server(ssock)
        client = self.client(csock)
        accepts: list[SSLFile] = []
        second: defer.Deferred[None] = defer.Deferred()

        def accepted(f: SSLFile, ident: object) -> None:
            accepts.append(f)
            if len(accepts) == 2:
                second.callback(None)

        client.set_accept_callback(accepted)
        received = bytearray()
        server.set_read_callback(lambda ident, data: received.extend(data))
        yield self.handshake(client, server)
        yield self.wait_until(lambda: len(accepts) == 1)
        self.assertEqual(client.write(b"before"), 6)
        self.assertEqual(client.renegotiate(), 1)
        self.assertEqual(client.write(b"after"), 5)
        yield second
        self.assertEqual(accepts, [client, client])
        yield self.wait_until(lambda: bytes(received) == b"beforeafter")

    def test_renegotiate_tls12(self) -> Any:
        """
        renegotiate() in TLS 1.2 runs a secure renegotiation (the server
        allows it): both accept callbacks fire again, and data written
        meanwhile arrives in order.
        """
        return self.run_scenario(self._renegotiate12)

    @defer.inlineCallbacks
    def _renegotiate12(self) -> Any:
        csock, ssock = self.pair()
        context = self.server_context.replace(allow_peer_renegotiation=True)
        server = self.server(ssock, ctx=context, max_version=TLS12)
        client = self.client(csock, max_version=TLS12)
        accepts: dict[str, int] = {"client": 0, "server": 0}
        client.set_accept_callback(
            lambda f, ident: accepts.__setitem__("client", accepts["client"] + 1)
        )
        server.set_accept_callback(
            lambda f, ident: accepts.__setitem__("server", accepts["server"] + 1)
        )
        received = bytearray()
        server.set_read_callback(lambda ident, data: received.extend(data))
        yield self.wait_until(lambda: accepts == {"client": 1, "server": 1})
        self.assertEqual(client.query_version(), TLS12)
        self.assertEqual(client.write(b"before"), 6)
        self.assertEqual(client.renegotiate(), 1)
        # During the renegotiation writes are accepted (the engine holds
        # them until the new keys are in place).
        self.assertEqual(client.write(b"during"), 6)
        yield self.wait_until(lambda: accepts == {"client": 2, "server": 2})
        self.assertEqual(client.write(b"after"), 5)
        yield self.wait_until(lambda: bytes(received) == b"beforeduringafter")

    def test_renegotiate_refused_tls12(self) -> Any:
        """
        A TLS 1.2 server that does not allow peer renegotiation declines with
        a no_renegotiation warning: no accept callback, the connection goes
        on with its keys.
        """
        return self.run_scenario(self._renegotiate12_refused)

    @defer.inlineCallbacks
    def _renegotiate12_refused(self) -> Any:
        csock, ssock = self.pair()
        server = self.server(ssock, max_version=TLS12)
        client = self.client(csock, max_version=TLS12)
        accepts: list[SSLFile] = []
        client.set_accept_callback(lambda f, ident: accepts.append(f))
        received = bytearray()
        server.set_read_callback(lambda ident, data: received.extend(data))
        yield self.wait_until(lambda: len(accepts) == 1)
        self.assertEqual(client.renegotiate(), 1)
        yield self.wait_until(lambda: not client._renegotiating)
        self.assertEqual(client.write(b"still here"), 10)
        yield self.wait_until(lambda: bytes(received) == b"still here")
        self.assertEqual(len(accepts), 1)
        self.assertEqual(client.is_open(), 1)

    def test_next_protocol_tls12(self) -> Any:
        """
        NPN in TLS 1.2: next_protocol is the protocol the client selected
        from the server's list, on both sides.
        """
        return self.run_scenario(self._next_protocol)

    @defer.inlineCallbacks
    def _next_protocol(self) -> Any:
        csock, ssock = self.pair()
        server = self.server(
            ssock,
            ctx=self.server_context.replace(npn_protocols=[b"spdy/3", b"http/1.1"]),
        )
        client = self.client(
            csock,
            ctx=self.client_context.replace(npn_protocols=[b"http/1.1"]),
            max_version=TLS12,
        )
        yield self.handshake(client, server)
        self.assertEqual(client.next_protocol, b"http/1.1")
        self.assertEqual(server.next_protocol, b"http/1.1")
        self.assertIsNone(client.application_protocol)

    def test_application_protocol(self) -> Any:
        """ALPN's choice is application_protocol; NPN is None in TLS 1.3."""
        return self.run_scenario(self._application_protocol)

    @defer.inlineCallbacks
    def _application_protocol(self) -> Any:
        csock, ssock = self.pair()
        server = self.server(
            ssock,
            ctx=self.server_context.replace(
                alpn_protocols=[b"h2", b"http/1.1"], npn_protocols=[b"spdy/3"]
            ),
        )
        client = self.client(
            csock,
            ctx=self.client_context.replace(
                alpn_protocols=[b"http/1.1", b"h2"], npn_protocols=[b"spdy/3"]
            ),
        )
        yield self.handshake(client, server)
        self.assertEqual(client.application_protocol, b"h2")
        self.assertEqual(server.application_protocol, b"h2")
        self.assertIsNone(client.next_protocol)
        self.assertIsNone(server.next_protocol)
        self.assertEqual(client.get_server_name(), "example.com")
        self.assertEqual(server.get_server_name(), "example.com")
        self.assertEqual(server.get_server_names(), ["example.com"])
        self.assertEqual(client.get_peer_certificates(), self.leaf.chain_der)
        info = client.get_peer_certificate_info()
        self.assertTrue(info["verified"])
        self.assertEqual(info["common_name"], "example.com")
        self.assertEqual(info["dns_names"], ["example.com"])
        self.assertFalse(info["self_signed"])
        # The server verifies nobody: no verification result to report.
        self.assertEqual(server.get_peer_certificates(), [])
        self.assertIsNone(server.get_peer_certificate_info())

    def test_plain_http_blocking_server(self) -> Any:
        """
        The alert callback works in B mode too: it runs inside the blocking
        read that met the HTTP bytes; shutdown() there makes the read return
        None and the server answers in plain HTTP on the returned socket.
        """
        return self.run_scenario(self._plain_http_blocking)

    def _plain_http_blocking(self) -> defer.Deferred[Any]:
        csock, ssock = self.pair()
        server = self.server(ssock, blocking=True)
        response = b"HTTP/1.0 400 Bad Request\r\n\r\nThis is a TLS port.\n"
        seen: list[bytes] = []

        def alert(alert: object, seq: int, raw: bytes) -> None:
            seen.append(raw)
            raw_socket = server.shutdown()
            raw_socket.sendall(response)
            raw_socket.close()

        server.set_alert_callback(alert)

        def serve() -> object:
            return server.read(100)

        csock.sendall(HTTP_REQUEST)
        d = self.in_thread(serve)

        def check(result: object) -> None:
            self.assertIsNone(result)
            self.assertEqual(len(seen), 1)
            self.assertTrue(HTTP_REQUEST.startswith(seen[0]))
            csock.settimeout(TIMEOUT)
            self.assertEqual(recv_to_end(csock), response)

        return d.addCallback(check)

    def test_blocking_abrupt_close(self) -> Any:
        """
        B mode after an abrupt peer close: read(n) returns the data there is
        (end of stream), then None with EPIPE; write -> -1 EPIPE; close -> 0
        EPIPE.
        """
        return self.run_scenario(self._blocking_abrupt_close)

    @defer.inlineCallbacks
    def _blocking_abrupt_close(self) -> Any:
        csock, ssock = self.pair()
        server = self.server(ssock)
        client = self.client(csock)
        yield self.handshake(client, server)
        client.set_blocking()
        self.assertEqual(server.write(b"partial"), 7)
        server.shutdown().close()

        def use() -> list[object]:
            results: list[object] = [client.read(100), client.errno()]
            results += [client.read(100), client.errno()]
            results += [client.write(b"x"), client.errno()]
            results += [client.close(), client.errno()]
            return results

        results = yield self.in_thread(use)
        self.assertEqual(
            results,
            [b"partial", 0, None, errno.EPIPE, -1, errno.EPIPE, 0, errno.EPIPE],
        )

    def test_blocking_read_above_buffer_limit(self) -> Any:
        """
        A blocking read(n) with n above the 64 KiB buffer bound raises the
        bound for its own duration and gets all n bytes.
        """
        return self.run_scenario(self._blocking_big_read)

    @defer.inlineCallbacks
    def _blocking_big_read(self) -> Any:
        csock, ssock = self.pair()
        server = self.server(ssock)
        client = self.client(csock)
        yield self.handshake(client, server)
        payload = os.urandom(300_000)
        client.set_blocking()
        reader = self.in_thread(client.read, len(payload))
        sent = 0
        while sent < len(payload):
            n = server.write(payload[sent:])
            if n == 0:
                yield self.turns(1)
            sent += max(n, 0)
        self.assertEqual((yield reader), payload)
        self.assertEqual(client._read_limit, READ_BUFFER_LIMIT)

    def test_drop_after_close_drains(self) -> Any:
        """
        Dropping an NB SSLFile right after close(), while its last records
        still wait for the socket, still delivers them: the backend drains
        them (holding the socket, not the SSLFile) and then closes.
        """
        return self.run_scenario(self._drop_after_close)

    @defer.inlineCallbacks
    def _drop_after_close(self) -> Any:
        csock, ssock = self.pair()
        for sock in (csock, ssock):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16384)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
        server = self.server(ssock)
        holder = [
            SSLFile(
                csock,
                self.client_context,
                True,
                False,
                server_name="example.com",
                backend=self.reactor,
            )
        ]
        yield self.handshake(holder[0], server)
        # Stall the receiver until the sender's queue is non-empty.
        total = 0
        while not holder[0]._outbuf:
            n = holder[0].write(os.urandom(WRITE_LIMIT))
            self.assertGreater(n, 0)
            total += n
        self.assertEqual(holder[0].close(), 1)
        self.assertNotEqual(holder[0].query_fd(), -1)  # still flushing
        ref = weakref.ref(holder[0])
        holder.clear()
        self.assertIsNone(ref())
        received = [0]
        closed: defer.Deferred[int] = defer.Deferred()
        server.set_nonblocking(
            lambda ident, data: received.__setitem__(0, received[0] + len(data)),
            None,
            lambda ident: closed.callback(server.errno()),
        )
        self.assertEqual((yield closed), 0)
        self.assertEqual(received[0], total)

    def test_write_after_peer_vanished(self) -> Any:
        """
        The first write after the peer's socket went away (before we read
        its end of stream) may still return a count - with EPIPE where the
        kernel already knows (a socketpair) - and later writes return -1
        with EPIPE.
        """
        return self.run_scenario(self._write_after_vanish)

    @defer.inlineCallbacks
    def _write_after_vanish(self) -> Any:
        csock, ssock = self.pair()
        server = self.server(ssock)
        client = self.client(csock)
        yield self.handshake(client, server)
        server.shutdown().close()
        self.assertEqual(client.write(b"abc"), 3)
        if self.transport == "socketpair":
            self.assertEqual(client.errno(), errno.EPIPE)
        else:
            self.assertIn(client.errno(), (0, errno.EPIPE))
        yield self.wait_until(lambda: client.is_open() == 0)
        self.assertEqual(client.write(b"abc"), -1)
        self.assertIn(client.errno(), (errno.EPIPE, errno.ECONNRESET))

    def test_blocking_close_timeout(self) -> Any:
        """
        A blocking normal close whose close_notify cannot be written in time
        (the peer reads nothing, the buffers are full) fails with EIO: raised,
        or returned with dont_throw; either way the socket is closed.
        """
        return self.run_scenario(self._blocking_close_timeout)

    @defer.inlineCallbacks
    def _blocking_close_timeout(self) -> Any:
        results = []
        for dont_throw in (False, True):
            csock, ssock = self.pair()
            for sock in (csock, ssock):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16384)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
            server = self.server(ssock)
            client = self.client(csock)
            yield self.handshake(client, server)
            server.set_blocking()  # a receiver that reads nothing at all
            while client.write(os.urandom(WRITE_LIMIT)) > 0 or not client._outbuf:
                pass
            client.set_blocking()
            client.set_timeout(0.05)

            def close(f: SSLFile = client, flag: bool = dont_throw) -> object:
                try:
                    return f.close(dont_throw=flag), f.errno()
                except OSError as exc:
                    return exc.errno, f.errno()

            results.append((yield self.in_thread(close)))
            self.assertEqual(client.query_fd(), -1)
        self.assertEqual(results, [(errno.EIO, errno.EIO), (0, errno.EIO)])

    def test_blocking_callbacks_run_in_backend(self) -> Any:
        """
        Callbacks set with set_callbacks keep running in the backend for
        events that a blocking call in another thread processed.
        """
        return self.run_scenario(self._blocking_callbacks)

    def _blocking_callbacks(self) -> defer.Deferred[Any]:
        csock, ssock = self.pair()
        client = self.client(csock)
        server = self.server(ssock, blocking=True)
        accepted: defer.Deferred[int] = defer.Deferred()
        server.set_callbacks(
            accept_cb=lambda f, ident: accepted.callback(threading.get_ident())
        )
        backend_thread = threading.get_ident()
        self.assertEqual(client.write(b""), 0)

        def serve() -> bytes | None:
            return server.read(5)

        def say_hello(ident: object) -> None:
            client.set_write_callback(None)
            self.assertEqual(client.write(b"hello"), 5)

        client.set_write_callback(say_hello)
        d = self.in_thread(serve)
        d.addCallback(self.assertEqual, b"hello")
        d.addCallback(lambda _: accepted)
        d.addCallback(self.assertEqual, backend_thread)
        return d

    def test_blocking_call_on_reactor_thread(self) -> Any:
        """
        A blocking call that would have to wait on the backend's own thread
        raises ReactorThreadError (EDEADLK) instead of hanging the reactor;
        one that need not wait works.
        """

        def scenario() -> defer.Deferred[None]:
            return task.deferLater(self.reactor, 0, self._blocking_on_reactor)

        return self.run_scenario(scenario)

    def _blocking_on_reactor(self) -> None:
        csock, _ssock = self.pair()
        with self.assertRaises(ReactorThreadError) as caught:
            SSLFile(
                csock,
                self.client_context,
                True,
                True,
                server_name="example.com",
                backend=self.reactor,
            )
        self.assertEqual(caught.exception.errno, errno.EDEADLK)
        self.assertGreaterEqual(csock.fileno(), 0)  # handed back
        _c2, s2 = self.pair()
        server = self.server(s2, blocking=True)
        with self.assertRaises(ReactorThreadError):
            server.read(1)
        # Closing needs no wait: allowed.
        self.assertEqual(server.close(), 1)

    def test_pending_data(self) -> Any:
        """
        Bytes already read from the socket (STARTTLS sniffing) are given as
        pending_data and processed first.
        """
        return self.run_scenario(self._pending_data)

    @defer.inlineCallbacks
    def _pending_data(self) -> Any:
        csock, ssock = self.pair()
        client = self.client(csock)
        ssock.settimeout(TIMEOUT)
        sniffed = ssock.recv(3)
        self.assertEqual(sniffed[:1], b"\x16")
        server = self.server(ssock, pending_data=sniffed)
        yield self.handshake(client, server)
        self.assertEqual(server.query_version(), TLS13)


def _make_version_test(client_range: tuple[int, int], server_range: tuple[int, int]):
    def test(self: ScenarioTests) -> Any:
        return self.run_scenario(lambda: self._version_pair(client_range, server_range))

    def name(r: tuple[int, int]) -> str:
        return f"{r[0] - 0x0301}{r[1] - 0x0301}"

    overlap = max(client_range[0], server_range[0]) <= min(
        client_range[1], server_range[1]
    )
    test.__name__ = (
        f"test_versions_client_{name(client_range)}_server_{name(server_range)}"
    )
    test.__doc__ = (
        f"Client {ProtocolVersion(client_range[0]).name}.."
        f"{ProtocolVersion(client_range[1]).name}, server "
        f"{ProtocolVersion(server_range[0]).name}.."
        f"{ProtocolVersion(server_range[1]).name}: "
        + ("connects." if overlap else "fails with the §5 callback pattern.")
    )
    return test


_RANGES = [(TLS12, TLS12), (TLS12, TLS13), (TLS13, TLS13)]
for _client_range in _RANGES:
    for _server_range in _RANGES:
        _test = _make_version_test(_client_range, _server_range)
        setattr(ScenarioTests, _test.__name__, _test)
del _client_range, _server_range, _test


class TCPResetScenarios:
    """Scenarios only TCP can show: a socketpair has no reset."""

    def test_peer_reset(self) -> Any:
        """
        A TCP reset from the peer: close callback with ECONNRESET, read ->
        None EPIPE, write -> -1 ECONNRESET, close -> 0 ECONNRESET.
        """
        return self.run_scenario(self._peer_reset)

    @defer.inlineCallbacks
    def _peer_reset(self) -> Any:
        csock, ssock = self.pair()
        server = self.server(ssock)
        client = self.client(csock)
        events: list[tuple[str, object]] = []
        closed: defer.Deferred[None] = defer.Deferred()

        def on_close(ident: object) -> None:
            events.append(("close", client.errno()))
            closed.callback(None)

        client.set_callbacks(
            read_cb=lambda ident, data: events.append(("read", data)),
            close_cb=on_close,
        )
        yield self.handshake(client, server)
        self.assertEqual(server.write(b"data"), 4)
        yield self.wait_until(lambda: bool(events))
        self.assertEqual(server.linger(0), 1)
        raw = server.shutdown()
        raw.close()  # SO_LINGER 0: an RST instead of a FIN
        yield closed
        self.assertEqual(events, [("read", b"data"), ("close", errno.ECONNRESET)])
        self.assertIsNone(client.read())
        self.assertEqual(client.errno(), errno.EPIPE)
        self.assertEqual(client.write(b"x"), -1)
        self.assertEqual(client.errno(), errno.ECONNRESET)
        self.assertEqual(client.close(), 0)
        self.assertEqual(client.errno(), errno.ECONNRESET)

    def test_stalled_handshake_blocking_clean_close_reset(self) -> Any:
        """
        A blocking clean close of a stalled handshake that ends in a reset
        (the peer never answers, then resets) returns 0 with ECONNRESET,
        and a later shutdown() keeps that errno rather than overwriting it
        with EPIPE (Pike 8.0 and 9.x agree: close has shut down already).
        """
        return self.run_scenario(self._stalled_clean_close_reset)

    @defer.inlineCallbacks
    def _stalled_clean_close_reset(self) -> Any:
        csock, ssock = self.pair()
        client = self.client(csock)
        client.set_blocking()
        closing = self.in_thread(lambda: (client.close(None, True), client.errno()))
        # is_open() takes the lock the closing thread holds until it waits.
        yield self.wait_until(lambda: client.is_open() == 2)
        ssock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        ssock.close()  # a reset (the ClientHello is unread anyway)
        result = yield closing
        self.assertEqual(result, (0, errno.ECONNRESET))
        self.assertIsNone(client.shutdown())
        self.assertEqual(client.errno(), errno.ECONNRESET)


class GlobalReactorSocketpairTests(
    GlobalReactorMixin, SocketpairMixin, ScenarioTests, TestCase
):
    """The scenarios over socketpair() with the global reactor."""


class GlobalReactorTCPTests(
    GlobalReactorMixin, TCPMixin, TCPResetScenarios, ScenarioTests, TestCase
):
    """The scenarios over loopback TCP with the global reactor."""


class ThreadedReactorSocketpairTests(
    ThreadedReactorMixin, SocketpairMixin, ScenarioTests, SynchronousTestCase
):
    """The scenarios over socketpair() with a SelectReactor in a thread."""


class ThreadedReactorTCPTests(
    ThreadedReactorMixin,
    TCPMixin,
    TCPResetScenarios,
    ScenarioTests,
    SynchronousTestCase,
):
    """The scenarios over loopback TCP with a SelectReactor in a thread."""


# ---------------------------------------------------------------------------
# The API itself: construction, bad use, queries, lifetime
# ---------------------------------------------------------------------------


class APITests(SSLFileHelpers, SocketpairMixin, SynchronousTestCase):
    """Synchronous checks; the global reactor is not running here."""

    def setUp(self) -> None:
        from twisted.internet import reactor

        self.reactor = reactor
        super().setUp()

    def call(self, function: Callable[..., Any], *args: Any) -> Any:
        return function(*args)

    def test_protocol_version_names(self) -> None:
        """ProtocolVersion is re-exported with Pike's names."""
        from twisted_sslfile import sslfile

        v = sslfile.ProtocolVersion
        self.assertIs(v, ProtocolVersion)
        self.assertEqual(v.PROTOCOL_SSL_3_0, 0x0300)
        self.assertEqual(v.PROTOCOL_TLS_1_0, 0x0301)
        self.assertEqual(v.PROTOCOL_TLS_1_1, 0x0302)
        self.assertEqual(v.PROTOCOL_TLS_1_2, v.TLS_1_2)
        self.assertEqual(v.PROTOCOL_TLS_1_3, 0x0304)
        self.assertEqual(v.PROTOCOL_TLS_MAX, v.TLS_1_3)

    def test_non_socket_stream(self) -> None:
        """A stream that is not a socket is refused with a TypeError."""
        with self.assertRaises(TypeError) as caught:
            SSLFile(io.BytesIO(), self.server_context)  # type: ignore[arg-type]
        self.assertIn("connected stream socket", str(caught.exception))

    def test_unconnected_socket(self) -> None:
        """An unconnected socket is refused with ENOTCONN."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.addCleanup(sock.close)
        with self.assertRaises(OSError) as caught:
            SSLFile(sock, self.server_context)
        self.assertEqual(caught.exception.errno, errno.ENOTCONN)
        self.assertIn("connected", str(caught.exception))

    def test_closed_socket(self) -> None:
        a, _b = self.pair()
        a.close()
        with self.assertRaises(OSError) as caught:
            SSLFile(a, self.server_context)
        self.assertEqual(caught.exception.errno, errno.EBADF)

    def test_datagram_socket(self) -> None:
        a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.addCleanup(a.close)
        self.addCleanup(b.close)
        with self.assertRaises(ValueError):
            SSLFile(a, self.server_context)

    def test_bad_backend(self) -> None:
        """A backend must provide IReactorFDSet and IReactorTime."""
        a, _b = self.pair()
        with self.assertRaises(TypeError) as caught:
            SSLFile(a, self.server_context, backend=object())
        self.assertIn("IReactorFDSet", str(caught.exception))

    def test_not_a_context(self) -> None:
        a, _b = self.pair()
        with self.assertRaises(TypeError):
            SSLFile(a, object())  # type: ignore[arg-type]

    def test_server_name_is_client_only(self) -> None:
        a, _b = self.pair()
        with self.assertRaises(ValueError):
            SSLFile(a, self.server_context, False, server_name="example.com")

    def test_server_name_checked_and_mapped(self) -> None:
        """An invalid name is refused by the constructor; an internationalised
        one is kept (and sent) as A-labels."""
        a, _b = self.pair()
        with self.assertRaises(ValueError) as caught:
            SSLFile(a, self.client_context, True, server_name="a_b.example")
        self.assertIn("'a_b.example'", str(caught.exception))
        c, _d = self.pair()
        f = SSLFile(c, self.client_context, True, server_name="bücher.example")
        self.addCleanup(f.close)
        self.assertEqual(f.get_server_name(), "xn--bcher-kva.example")

    def test_version_rules(self) -> None:
        """
        Pike's version rules: a minimum below TLS 1.2 is raised to it, a
        maximum below it is an error naming what is supported, min > max
        lowers min to max; None keeps the context's bounds.
        """
        a, _b = self.pair()
        f = self.server(a, min_version=ProtocolVersion.PROTOCOL_SSL_3_0)
        self.assertEqual(f.query_context().min_version, TLS12)
        self.assertEqual(f.query_context().max_version, TLS13)
        c, _d = self.pair()
        f = self.server(c, min_version=TLS13, max_version=TLS12)
        self.assertEqual(f.query_context().min_version, TLS12)
        self.assertEqual(f.query_context().max_version, TLS12)
        e, _g = self.pair()
        f = self.server(e)
        self.assertIs(f.query_context(), self.server_context)
        h, _i = self.pair()
        with self.assertRaises(ValueError) as caught:
            SSLFile(h, self.server_context, max_version=ProtocolVersion.TLS_1_1)
        self.assertIn("TLS_1_2 and TLS_1_3", str(caught.exception))
        self.assertIsNone(h.gettimeout())  # not taken over

    def test_close_how(self) -> None:
        """close("r") and close("w") are refused: TLS cannot half-close so."""
        a, _b = self.pair()
        f = self.server(a)
        for how in ("r", "w", "x"):
            with self.assertRaises(ValueError):
                f.close(how)
        self.assertEqual(f.close("rw"), 1)

    def test_operations_after_close(self) -> None:
        """After close: read/write/renegotiate/mode switches raise EBADF."""
        a, _b = self.pair()
        f = self.server(a)
        self.assertEqual(f.close(), 1)
        self.assertEqual(f.close(), 1)
        for operation in (
            f.read,
            lambda: f.write(b"x"),
            f.renegotiate,
            f.set_nonblocking,
            f.set_blocking,
        ):
            with self.assertRaises(OSError) as caught:
                operation()
            self.assertEqual(caught.exception.errno, errno.EBADF)
            self.assertEqual(caught.exception.strerror, "Not open.")
        self.assertEqual(f.is_open(), 0)
        self.assertIsNone(f.shutdown())
        self.assertEqual(f.query_fd(), -1)

    def test_nb_read_write_during_handshake(self) -> None:
        """NB read and write during the handshake: b"" / 0 with EAGAIN."""
        a, _b = self.pair()
        f = self.client(a)
        self.assertEqual(f.read(), b"")
        self.assertEqual(f.errno(), errno.EAGAIN)
        self.assertEqual(f.write(b"early"), 0)
        self.assertEqual(f.errno(), errno.EAGAIN)
        self.assertEqual(f.is_open(), 1)

    def test_write_argument_forms(self) -> None:
        """Lists are packed, formatted writes use ``%``, str is refused."""
        from twisted_sslfile._sslfile_pump import _payload

        self.assertEqual(_payload([b"a", bytearray(b"b"), b"c"], ()), b"abc")
        self.assertEqual(_payload(b"%d-%s", (5, b"x")), b"5-x")
        with self.assertRaises(TypeError):
            _payload("text", ())  # type: ignore[arg-type]
        with self.assertRaises(TypeError):
            _payload([b"a", "b"], ())  # type: ignore[list-item]

    def test_callback_setters_and_queries(self) -> None:
        a, _b = self.pair()
        f = self.server(a)

        def r(*args: object) -> None:
            pass

        def w(*args: object) -> None:
            pass

        f.set_callbacks(read_cb=r)
        f.set_write_callback(w)
        self.assertIs(f.query_read_callback(), r)
        self.assertIs(f.query_write_callback(), w)
        self.assertEqual(f.query_callbacks(), (r, w, None, None, None, None))
        f.set_callbacks(write_cb=None)
        self.assertEqual(f.query_callbacks(), (r, None, None, None, None, None))
        f.set_read_oob_callback(w)
        self.assertIs(f.query_read_oob_callback(), w)
        f.set_alert_callback(r)
        self.assertIs(f.query_alert_callback(), r)
        f.set_blocking()
        self.assertEqual(f.query_callbacks(), (None,) * 6)
        self.assertIs(f.query_alert_callback(), r)
        self.assertIsNone(f.query_id())
        f.set_id("me")
        self.assertEqual(f.query_id(), "me")
        self.assertIs(f.query_backend(), self.reactor)
        self.assertIs(f.query_stream(), a)
        self.assertEqual(f.query_fd(), a.fileno())
        self.assertIsInstance(f.query_connection(), Connection)
        self.assertIsNone(f.next_protocol)
        self.assertIsNone(f.application_protocol)
        self.assertIsNone(f.query_version())
        self.assertEqual(f.get_peer_certificates(), [])
        self.assertIsNone(f.get_peer_certificate_info())
        self.assertEqual(f.query_address(), "")

    def test_query_address_tcp(self) -> None:
        a, b = tcp_pair()
        self.addCleanup(a.close)
        self.addCleanup(b.close)
        f = self.server(b)
        host, port = a.getsockname()
        self.assertEqual(f.query_address(), f"{host} {port}")
        host, port = b.getsockname()
        self.assertEqual(f.query_address(local=True), f"{host} {port}")

    def test_linger(self) -> None:
        a, _b = self.pair()
        f = self.server(a)
        self.assertEqual(f.linger(5), 1)
        onoff, seconds = struct.unpack(
            "ii", a.getsockopt(socket.SOL_SOCKET, socket.SO_LINGER, 8)
        )
        self.assertEqual((onoff, seconds), (1, 5))
        self.assertEqual(f.linger(), 1)
        onoff, _ = struct.unpack(
            "ii", a.getsockopt(socket.SOL_SOCKET, socket.SO_LINGER, 8)
        )
        self.assertEqual(onoff, 0)

    def test_set_timeout_validation(self) -> None:
        a, _b = self.pair()
        f = self.server(a)
        with self.assertRaises(ValueError):
            f.set_timeout(-1)
        f.set_timeout(None)

    def test_drop_frees_at_once_and_closes(self) -> None:
        """
        With gc disabled, dropping an NB SSLFile frees it at once (no cycles
        of its own) and makes a best-effort close: the peer gets a
        close_notify behind the ClientHello, then end of stream.
        """
        gc.disable()
        self.addCleanup(gc.enable)
        a, b = self.pair()
        f = SSLFile(
            a,
            self.client_context,
            True,
            server_name="example.com",
            backend=self.reactor,
        )
        f.set_nonblocking(lambda *x: None, lambda *x: None)
        self.assertTrue(f._reading)
        ref = weakref.ref(f)
        del f
        self.assertIsNone(ref())
        self.assertEqual(a.fileno(), -1)
        b.settimeout(TIMEOUT)
        wire = recv_to_end(b)
        self.assertTrue(wire.endswith(b"\x15\x03\x03\x00\x02\x01\x00"))
        from twisted_sslfile._sslfile_io import _Descriptor

        watched = self.reactor.getReaders() + self.reactor.getWriters()
        self.assertFalse([d for d in watched if isinstance(d, _Descriptor)])

    def test_drop_blocking_frees_at_once(self) -> None:
        gc.disable()
        self.addCleanup(gc.enable)
        a, _b = self.pair()
        f = SSLFile(a, self.server_context, False, True, backend=self.reactor)
        ref = weakref.ref(f)
        del f
        self.assertIsNone(ref())
        self.assertEqual(a.fileno(), -1)

    def test_shutdown_hands_back_open_socket(self) -> None:
        """shutdown() with no close asked returns the open socket, errno 0."""
        a, _b = self.pair()
        a.settimeout(3.5)
        f = self.client(a)
        self.assertEqual(a.gettimeout(), 0.0)
        self.assertIs(f.shutdown(), a)
        self.assertEqual(f.errno(), 0)
        self.assertEqual(a.gettimeout(), 3.5)
        self.assertEqual(f.is_open(), 0)
        self.assertIsNone(f.shutdown())
        self.assertEqual(f.errno(), errno.EBADF)
        with self.assertRaises(OSError):
            f.write(b"x")
        with self.assertRaises(OSError):
            f.read()

    def test_shutdown_after_normal_close(self) -> None:
        a, _b = self.pair()
        f = self.client(a)
        self.assertEqual(f.close(), 1)
        self.assertIsNone(f.shutdown())


if not hasattr(socket, "socketpair"):  # pragma: no cover
    del GlobalReactorSocketpairTests, ThreadedReactorSocketpairTests
