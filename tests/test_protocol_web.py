"""Issue 4's remaining proof on real loopback TCP, with the global reactor.

* A 100 MiB file served by ``twisted.web``'s static ``File`` resource
  through :class:`TLSFactory` and fetched by ``curl --cacert -o``: the file
  arrives byte-exact (SHA-256) while the web server's push producer is
  paused and resumed by TLS back-pressure over and over.
* Truncation, both directions, against peers that never send close_notify:
  ``openssl s_client`` killed while our server streams to it, a Python
  ``ssl`` client closing its socket without close_notify, and
  ``openssl s_server`` killed while our client reads from it.

What the adapter reports depends on how the TCP connection ended, and the
kernel decides that when a process dies: a FIN when the dead process's socket
had no unread input, a reset (RST) when it had.  The tests make each case
deterministic instead of hoping for one:

* FIN: the peer has read everything before it dies (``s_client`` printed
  every byte we sent; our client sends nothing after its Finished, so
  ``s_server`` has nothing unread).  The adapter sees end of stream without
  close_notify and reports :class:`TLSTruncationError`.
* RST: the peer is stopped (SIGSTOP) mid-stream, the test waits until the
  kernel shows bytes queued unread on the peer's socket (``/proc/net/tcp``),
  then kills it.  The adapter hands on the transport's reason unchanged:
  ``twisted.internet.error.ConnectionLost`` (connection reset), of which
  ``TLSTruncationError`` is a subclass.
* Never ``ConnectionDone``: that is reserved for a close_notify.

Waits are bounded (``Deferred.addTimeout`` and trial's ``timeout``); no test
sleeps to synchronise.  The only polling is of kernel state that has no
event (a stopped process, bytes in a socket queue), every 10 ms with a
deadline.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import signal
from collections.abc import Callable
from typing import Any

from twisted.internet import defer, error, reactor
from twisted.internet.interfaces import IHandshakeListener, IPushProducer
from twisted.internet.protocol import Factory, ProcessProtocol, Protocol
from twisted.internet.task import deferLater
from twisted.internet.threads import deferToThread
from twisted.python.failure import Failure
from twisted.trial.unittest import TestCase
from twisted.web import http, resource, server, static
from zope.interface import implementer

from tests.certs import CertificateFactory, IssuedCertificate
from twisted_sslfile.context import Context
from twisted_sslfile.protocol import TLSFactory, TLSTruncationError

#: Upper bound of any single wait in these tests, in seconds.
WAIT = 30.0

#: The download: 100 MiB plus an odd tail, so the last record is a short one.
DOWNLOAD_SIZE = 100 * 1024 * 1024 + 12345

LOOPBACK = "127.0.0.1"

# Every byte value to one of the ten decimal digits.
_DIGITS = bytes(48 + i % 10 for i in range(256))


def openssl() -> str:
    path = shutil.which("openssl")
    if path is None:
        raise AssertionError("the openssl command is required for these tests")
    return path


def bounded(d: defer.Deferred[Any], what: str, timeout: float = WAIT) -> Any:
    """``d`` with a deadline; the failure names what was awaited."""

    def named(failure: Failure) -> Failure:
        if failure.check(defer.TimeoutError):
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        return failure

    return d.addTimeout(timeout, reactor).addErrback(named)


@defer.inlineCallbacks
def poll(condition: Callable[[], bool], what: str, timeout: float = WAIT) -> Any:
    """Wait for kernel state that raises no event; every 10 ms, bounded."""
    deadline = reactor.seconds() + timeout
    while not condition():
        if reactor.seconds() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        yield deferLater(reactor, 0.01)


def tcp_receive_queue(local_port: int, remote_port: int) -> int | None:
    """Unread bytes in the receive queue of the IPv4 socket local->remote.

    From ``/proc/net/tcp`` (``tx_queue:rx_queue``, hex), which shows every
    socket of the machine: the peers here are other processes.
    """
    with open("/proc/net/tcp", encoding="ascii") as f:
        next(f)
        for line in f:
            fields = line.split()
            local, remote, queues = fields[1], fields[2], fields[4]
            if (
                int(local.split(":")[1], 16) == local_port
                and int(remote.split(":")[1], 16) == remote_port
            ):
                return int(queues.split(":")[1], 16)
    return None


def require_proc(test: TestCase) -> None:
    """The reset tests read kernel state from Linux's /proc (this project
    runs on Linux; elsewhere they fail rather than pass unseen)."""
    test.assertTrue(
        os.path.exists("/proc/net/tcp"), "the reset tests need Linux's /proc/net/tcp"
    )


def process_state(pid: int) -> str:
    """The one-letter state of a process ("T": stopped), from /proc."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        return f.read().rsplit(")", 1)[1].split()[0]


class PeerProcess(ProcessProtocol):
    """A peer program (``openssl s_server``/``s_client``, ``curl``) under the
    reactor.

    Collects stdout and stderr, and fires the Deferreds of :meth:`wait_for`
    when what they wait for has been printed.  ``ended`` fires with the exit
    reason.
    """

    def __init__(self, args: list[str]) -> None:
        self.args = args
        self.stdout = bytearray()
        self.stderr = bytearray()
        #: Fires with ``[reason]`` (a list, so that a Failure is a result).
        self.ended: defer.Deferred[list[Failure]] = defer.Deferred()
        self.running = False
        self._waits: list[tuple[Callable[[], bool], defer.Deferred[None]]] = []

    def start(self, test: TestCase) -> PeerProcess:
        reactor.spawnProcess(self, self.args[0], self.args, env=None)
        self.running = True
        test.addCleanup(self.stop)
        return self

    @property
    def pid(self) -> int:
        return self.transport.pid

    def stop(self) -> defer.Deferred[Any] | None:
        """Cleanup: kill the process if it runs and wait until it is reaped
        (its pipes closed), so the reactor is left clean."""
        if not self.running:
            return None
        self.kill()
        return bounded(self.ended, f"{self.args[0]} to exit")

    def kill(self) -> None:
        """SIGKILL: the process cannot send close_notify or anything else."""
        with contextlib.suppress(error.ProcessExitedAlready):
            self.transport.signalProcess("KILL")

    def describe(self) -> str:
        return (
            f"command: {' '.join(self.args)}\n"
            f"--- stdout (last 2000 bytes) ---\n{bytes(self.stdout[-2000:])!r}\n"
            f"--- stderr ---\n{bytes(self.stderr[-4000:])!r}"
        )

    def wait_for(self, condition: Callable[[], bool], what: str) -> Any:
        d: defer.Deferred[None] = defer.Deferred()
        if condition():
            d.callback(None)
        else:
            self._waits.append((condition, d))
        return bounded(d, f"{what}\n{self.describe()}")

    def _check(self) -> None:
        waiting, self._waits = self._waits, []
        for condition, d in waiting:
            if condition():
                d.callback(None)
            else:
                self._waits.append((condition, d))

    def outReceived(self, data: bytes) -> None:
        self.stdout += data
        self._check()

    def errReceived(self, data: bytes) -> None:
        self.stderr += data
        self._check()

    def processEnded(self, reason: Failure) -> None:
        self.running = False
        self.ended.callback([reason])


class Recorder(Protocol):
    """Collects what arrives; ``lost`` fires with ``[reason]`` of connectionLost;
    ``got(n)`` fires once ``n`` bytes have arrived."""

    def __init__(self) -> None:
        self.data = bytearray()
        #: Fires with ``[reason]`` (a list, so that a Failure is a result).
        self.lost: defer.Deferred[list[Failure]] = defer.Deferred()
        self._thresholds: list[tuple[int, defer.Deferred[None]]] = []

    def got(self, count: int, peer: PeerProcess | None = None) -> Any:
        """Fires once ``count`` bytes have arrived; a timeout shows ``peer``."""
        d: defer.Deferred[None] = defer.Deferred()
        self._thresholds.append((count, d))
        self._check()

        def explain(failure: Failure) -> Failure:
            lost = self.lost.result if self.lost.called else "not yet"
            details = peer.describe() if peer is not None else ""
            raise AssertionError(
                f"{failure.value}; have {len(self.data)}; connectionLost: {lost}\n"
                f"{details}"
            )

        return bounded(d, f"{count} bytes").addErrback(explain)

    def _check(self) -> None:
        waiting, self._thresholds = self._thresholds, []
        for count, d in waiting:
            if len(self.data) >= count:
                d.callback(None)
            else:
                self._thresholds.append((count, d))

    def dataReceived(self, data: bytes) -> None:
        self.data += data
        self._check()

    def connectionLost(self, reason: Failure = error.ConnectionDone) -> None:  # type: ignore[assignment]
        self.lost.callback([reason])


@implementer(IHandshakeListener, IPushProducer)
class Streamer(Recorder):
    """Once the handshake is done: either one ``payload`` write, or (without
    a payload) an endless stream of 64 KiB chunks as a push producer that
    TLS back-pressure pauses and resumes."""

    CHUNK = os.urandom(65536)

    def __init__(self, payload: bytes | None = None) -> None:
        super().__init__()
        self.payload = payload
        self.paused = False
        self.stopped = False
        self._call: Any = None

    def handshakeCompleted(self) -> None:
        if self.payload is not None:
            self.transport.write(self.payload)
            return
        self.transport.registerProducer(self, True)
        self._schedule()

    def _schedule(self) -> None:
        if self._call is None and not (self.paused or self.stopped):
            self._call = reactor.callLater(0, self._produce)

    def _produce(self) -> None:
        self._call = None
        # The transport pauses us from inside write() once its buffer is full.
        while not (self.paused or self.stopped):
            self.transport.write(self.CHUNK)

    def pauseProducing(self) -> None:
        self.paused = True

    def resumeProducing(self) -> None:
        self.paused = False
        self._schedule()

    def stopProducing(self) -> None:
        self.stopped = True

    def connectionLost(self, reason: Failure = error.ConnectionDone) -> None:  # type: ignore[assignment]
        self.stopped = True
        if self._call is not None and self._call.active():
            self._call.cancel()
        super().connectionLost(reason)


class LoopbackTestCase(TestCase):
    timeout = 120

    def setUp(self) -> None:
        self.pki = CertificateFactory(self.mktemp())
        # Issued by the root directly: the root alone is the whole chain
        # for curl's and openssl's --cacert / -CAfile.
        self.leaf: IssuedCertificate = self.pki.server(
            "example.com", ip_addresses=["127.0.0.1"], direct=True
        )

    def serve(self, factory: Any) -> int:
        tls = TLSFactory(factory, Context(credentials=[self.leaf.credential()]), False)
        port = reactor.listenTCP(0, tls, interface=LOOPBACK)
        self.addCleanup(port.stopListening)
        return port.getHost().port

    def assertReason(self, reason: Failure, expected: type[Exception]) -> None:
        """``reason`` is exactly ``expected`` (not a subclass or superclass)."""
        self.assertIs(reason.type, expected, f"got {reason!r}")


# -- twisted.web ------------------------------------------------------------


class CountingChannel(http.HTTPChannel):
    """An HTTP channel that counts how often TLS pauses and resumes it (it is
    the push producer the web server registers with its transport) and
    reports its end on the Site's ``lost``."""

    def pauseProducing(self) -> None:
        self.factory.pauses += 1
        super().pauseProducing()

    def resumeProducing(self) -> None:
        self.factory.resumes += 1
        super().resumeProducing()

    def connectionLost(self, reason: Failure) -> None:
        super().connectionLost(reason)
        self.factory.lost.callback([reason])


class WebDownloadTests(LoopbackTestCase):
    @defer.inlineCallbacks
    def test_curl_100mb_static_file(self) -> Any:
        """
        A 100 MiB static.File through TLSFactory, fetched by curl --cacert -o:
        the file on disk has the same SHA-256, curl sees a verified TLS 1.3
        session, and the web server's producer was paused and resumed.
        """
        curl = shutil.which("curl")
        self.assertIsNotNone(curl, "curl is needed (.ci/run installs it)")
        directory = self.mktemp()
        os.makedirs(directory)
        source = os.path.join(directory, "big.bin")
        target = os.path.join(directory, "download.bin")
        self.addCleanup(shutil.rmtree, directory, ignore_errors=True)
        digest = hashlib.sha256()
        with open(source, "wb") as f:
            left = DOWNLOAD_SIZE
            while left:
                block = os.urandom(min(left, 1 << 20))
                digest.update(block)
                f.write(block)
                left -= len(block)

        root = resource.Resource()
        root.putChild(b"big.bin", static.File(source, "application/octet-stream"))
        site = server.Site(root)
        site.protocol = CountingChannel
        site.pauses = site.resumes = 0
        site.lost = defer.Deferred()
        port = self.serve(site)

        process = PeerProcess(
            [
                curl,
                "--silent",
                "--show-error",
                "--fail",
                "--tlsv1.3",
                "--cacert",
                self.pki.ca_path,
                "--max-time",
                "60",
                "--output",
                target,
                "--write-out",
                "%{http_code} %{size_download} %{ssl_verify_result}",
                f"https://127.0.0.1:{port}/big.bin",
            ]
        )
        started = reactor.seconds()
        process.start(self)
        [reason] = yield bounded(process.ended, "curl", timeout=90)
        elapsed = reactor.seconds() - started
        self.assertTrue(
            reason.check(error.ProcessDone), f"{reason!r}\n{process.describe()}"
        )
        self.assertEqual(
            bytes(process.stdout).split(), [b"200", str(DOWNLOAD_SIZE).encode(), b"0"]
        )
        self.assertEqual(os.path.getsize(target), DOWNLOAD_SIZE)
        received = hashlib.sha256()
        with open(target, "rb") as f:
            while block := f.read(1 << 20):
                received.update(block)
        self.assertEqual(received.hexdigest(), digest.hexdigest())
        self.assertGreater(site.pauses, 0)
        self.assertGreater(site.resumes, 0)
        # curl ends with close_notify; the web server's connection then ends
        # cleanly too.
        [server_reason] = yield bounded(site.lost, "the server connection to end")
        self.assertReason(server_reason, error.ConnectionDone)
        self.assertLess(elapsed, 60)


# -- truncation: our server, openssl s_client and a Python client -------------


class ServerTruncationTests(LoopbackTestCase):
    """Our TLSFactory server streaming to a peer that dies without close_notify."""

    def s_client(self, port: int) -> PeerProcess:
        # -quiet: stdout carries exactly the application data received.
        return PeerProcess(
            [
                openssl(),
                "s_client",
                "-connect",
                f"{LOOPBACK}:{port}",
                "-tls1_3",
                "-quiet",
                "-CAfile",
                self.pki.ca_path,
                "-servername",
                "example.com",
                "-verify_hostname",
                "example.com",
                "-verify_return_error",
            ]
        ).start(self)

    @defer.inlineCallbacks
    def test_s_client_read_everything_then_killed(self) -> Any:
        """
        s_client has printed every byte we sent (so nothing is unread in its
        socket) when it is killed: the kernel sends a FIN without
        close_notify, and our server reports exactly TLSTruncationError.
        """
        payload = os.urandom(3 * 1024 * 1024 + 7)
        app = Streamer(payload)
        port = self.serve(Factory.forProtocol(lambda: app))
        client = self.s_client(port)
        yield client.wait_for(
            lambda: len(client.stdout) >= len(payload), "s_client to print the data"
        )
        self.assertEqual(bytes(client.stdout), payload)
        self.assertFalse(app.lost.called)
        client.kill()
        [reason] = yield bounded(app.lost, "our server's connectionLost")
        self.assertReason(reason, TLSTruncationError)

    @defer.inlineCallbacks
    def test_s_client_killed_mid_stream(self) -> Any:
        """
        The issue's scenario as is: s_client killed while we stream to it
        and it reads.  Whether the kernel sends a FIN or a reset depends on
        what was unread at that instant; either way our server reports a
        ConnectionLost (TLSTruncationError or a reset), never ConnectionDone.
        """
        app = Streamer()
        port = self.serve(Factory.forProtocol(lambda: app))
        client = self.s_client(port)
        yield client.wait_for(lambda: len(client.stdout) >= 4 << 20, "4 MiB streamed")
        client.kill()
        [reason] = yield bounded(app.lost, "our server's connectionLost")
        self.assertFalse(reason.check(error.ConnectionDone), reason)
        self.assertTrue(reason.check(error.ConnectionLost), reason)
        self.assertIn(reason.type, (TLSTruncationError, error.ConnectionLost))
        # What arrived is exactly what was sent, up to where it stopped.
        received = bytes(client.stdout)
        stream = Streamer.CHUNK * (len(received) // len(Streamer.CHUNK) + 1)
        self.assertEqual(received, stream[: len(received)])

    @defer.inlineCallbacks
    def test_s_client_killed_with_unread_data(self) -> Any:
        """
        s_client stopped mid-stream, then killed once the kernel holds
        unread bytes for it: the kernel resets the connection and our
        server reports the transport's ConnectionLost, not a clean close.
        """
        require_proc(self)
        app = Streamer()
        port = self.serve(Factory.forProtocol(lambda: app))
        client = self.s_client(port)
        yield client.wait_for(lambda: len(client.stdout) >= 1 << 20, "1 MiB streamed")
        peer_port = app.transport.getPeer().port
        os.kill(client.pid, signal.SIGSTOP)
        yield poll(
            lambda: (
                process_state(client.pid) == "T"
                and (tcp_receive_queue(peer_port, port) or 0) > 0
            ),
            "s_client stopped with unread bytes",
        )
        client.kill()
        [reason] = yield bounded(app.lost, "our server's connectionLost")
        self.assertReason(reason, error.ConnectionLost)

    @defer.inlineCallbacks
    def test_python_client_closes_without_close_notify(self) -> Any:
        """
        A Python ssl client reads everything, then closes its socket without
        close_notify (a FIN): TLSTruncationError.  The same client ending
        with close_notify (``unwrap``) gives ConnectionDone: the difference
        is the close_notify alone.
        """
        import socket
        import ssl

        payload = os.urandom(1 << 20)
        context = ssl.create_default_context(cafile=self.pki.ca_path)
        context.minimum_version = ssl.TLSVersion.TLSv1_3

        def fetch(port: int, close_notify: bool) -> bytes:
            raw = socket.create_connection((LOOPBACK, port), timeout=WAIT)
            tls = context.wrap_socket(raw, server_hostname="example.com")
            data = bytearray()
            while len(data) < len(payload):
                chunk = tls.recv(1 << 16)
                if not chunk:
                    break
                data += chunk
            if close_notify:
                tls.unwrap().close()
            else:
                tls.close()  # Python's ssl sends no close_notify here
            return bytes(data)

        for close_notify, expected in (
            (False, TLSTruncationError),
            (True, error.ConnectionDone),
        ):
            app = Streamer(payload)
            port = self.serve(Factory.forProtocol(lambda app=app: app))
            data = yield bounded(deferToThread(fetch, port, close_notify), "the client")
            self.assertEqual(data, payload)
            [reason] = yield bounded(app.lost, "our server's connectionLost")
            self.assertReason(reason, expected)


# -- truncation: our client against openssl s_server --------------------------


class ClientTruncationTests(LoopbackTestCase):
    """Our TLSFactory client reading from an ``openssl s_server`` that is killed."""

    @defer.inlineCallbacks
    def start_s_server(self) -> Any:
        assert self.leaf.cert_path and self.leaf.key_path
        process = PeerProcess(
            [
                openssl(),
                "s_server",
                "-accept",
                f"{LOOPBACK}:0",
                "-cert",
                self.leaf.cert_path,
                "-key",
                self.leaf.key_path,
                "-tls1_3",
                "-naccept",
                "1",
            ]
        ).start(self)
        yield process.wait_for(
            lambda: b"ACCEPT " in process.stdout and b"\n" in process.stdout,
            "s_server to listen",
        )
        line = bytes(process.stdout).split(b"ACCEPT ", 1)[1].split(b"\n", 1)[0]
        return process, int(line.rsplit(b":", 1)[1])

    @staticmethod
    def stdin_payload(size: int) -> bytes:
        """Random decimal digits, which s_server sends as they are.

        Without ``-quiet`` (which would also hide the ACCEPT line that gives
        the port), s_server reads a stdin chunk starting with a command
        letter (Q, q, P, r, K...) as a command; digits never are one.
        """
        return os.urandom(size).translate(_DIGITS)

    def connect(self, port: int, app: Protocol) -> None:
        factory = TLSFactory(
            Factory.forProtocol(lambda: app),
            Context(trust_roots=self.pki.trust_roots),
            True,
            "example.com",
        )
        reactor.connectTCP(LOOPBACK, port, factory)

    def feed_after_handshake(self, process: PeerProcess, size: int) -> Recorder:
        """A client application that has s_server send ``size`` bytes once
        the handshake is done (``app.payload``).

        Not earlier: s_server serves stdin and the socket from one select()
        loop, and when both are readable in its first round, writing stdin
        data runs the handshake implicitly, after which it calls a blocking
        SSL_read for the socket readiness it saw - that was the ClientHello,
        already consumed - and waits for data our client never sends.
        """

        @implementer(IHandshakeListener)
        class Feeder(Recorder):
            payload = self.stdin_payload(size)

            def handshakeCompleted(self) -> None:
                process.transport.write(self.payload)

        return Feeder()

    @defer.inlineCallbacks
    def test_s_server_killed_mid_stream(self) -> Any:
        """
        s_server sends 16 MiB from its stdin; after 2 MiB it is killed.  It
        had nothing unread (our client sends nothing after its Finished), so
        the kernel sends a FIN: the application sees exactly
        TLSTruncationError, and what it received is a prefix of what was sent.
        """
        process, port = yield self.start_s_server()
        app = self.feed_after_handshake(process, 16 << 20)
        self.connect(port, app)
        yield app.got(2 << 20, process)
        process.kill()
        [reason] = yield bounded(app.lost, "our client's connectionLost")
        self.assertReason(reason, TLSTruncationError)
        self.assertLess(len(app.data), len(app.payload))
        self.assertEqual(bytes(app.data), app.payload[: len(app.data)])

    @defer.inlineCallbacks
    def test_s_server_killed_with_unread_data(self) -> Any:
        """
        s_server stopped while streaming to us; we write to it, and it is
        killed once our bytes wait unread in its socket: a reset, which the
        application sees as ConnectionLost, not as a clean close.
        """
        require_proc(self)
        process, port = yield self.start_s_server()
        app = self.feed_after_handshake(process, 16 << 20)
        self.connect(port, app)
        yield app.got(1 << 20, process)
        os.kill(process.pid, signal.SIGSTOP)
        yield poll(lambda: process_state(process.pid) == "T", "s_server to stop")
        # Written after it stopped: these bytes can only wait in its socket.
        app.transport.write(os.urandom(64 << 10))
        local_port = app.transport.getHost().port
        yield poll(
            lambda: (tcp_receive_queue(port, local_port) or 0) > 0,
            "unread bytes in s_server's socket",
        )
        process.kill()
        [reason] = yield bounded(app.lost, "our client's connectionLost")
        self.assertReason(reason, error.ConnectionLost)
        self.assertEqual(bytes(app.data), app.payload[: len(app.data)])
