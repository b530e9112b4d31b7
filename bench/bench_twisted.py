"""Twisted-level figures: plain TCP, Twisted's TLS and ours, in one run.

Run from the repository root::

    python bench/bench_twisted.py            # the full run, about 2.5 minutes
    python bench/bench_twisted.py --quick    # 32 MiB bulk, 1 round: 35 s
    python bench/bench_twisted.py --profile ours:download   # where time goes

Three stacks carry the same application over real loopback TCP, each with
the global reactor of its own process:

* ``tcp``: the application's factory listening and connecting directly;
* ``twisted``: ``twisted.protocols.tls.TLSMemoryBIOFactory`` over pyOpenSSL,
  configured the usual way (``CertificateOptions`` for the server,
  ``optionsForClientTLS`` for the client);
* ``ours``: :class:`twisted_sslfile.protocol.TLSFactory`.

Both ends of a connection use the same stack.  Server and client are
separate processes (``--role server`` / ``--role client`` of this script),
pinned to different CPUs when there are two, so each has a core; the
process that runs the command only starts them and collects their JSON.

Both TLS stacks get the same configuration: one self-signed ECDSA P-256
certificate for ``example.com`` that the client verifies (chain and host
name), the x25519 group (P-256 is offered second, because TLS 1.2 peers
also read the group list as the curves an ECDSA certificate may use),
AES-128-GCM (TLS_AES_128_GCM_SHA256 in TLS 1.3, ECDHE-ECDSA-AES128-GCM-SHA256
in TLS 1.2), session tickets as each stack sends them by default, and no
resumption: every handshake is a full one.  pyOpenSSL has no public call
for the groups or the TLS 1.3 suites, so the bench calls
``SSL_CTX_set1_curves_list`` and ``SSL_CTX_set_ciphersuites`` through
pyOpenSSL's private ``OpenSSL._util.lib`` on the context that Twisted's
options object built (``CertificateOptions.getContext()``; for the client,
the ``CertificateOptions`` inside ``ClientTLSOptions``).  What each client
negotiated is printed.

Figures, per TLS version (plain TCP is measured once and shown with both):

* ``download`` / ``upload``: MB/s (10^6 bytes per second of wall time) of
  256 MiB (``--quick``: 32 MiB) sent in 64 KiB writes by a push producer
  that the transport pauses and resumes, from the request to the last byte
  (download) or to the receiver's acknowledgement (upload), after the
  handshake.  The receiver discards the data.
* ``handshakes``: full handshakes per second, sequential and 8 at a time:
  TCP connect, handshake, one request byte and its answer (so the server's
  side of the handshake is complete too), then the client's ordinary
  ``loseConnection``.  For plain TCP it is connections per second.
* ``echo``: round trips per second of 1 KiB messages on one connection.
* ``memory``: growth of the server process's resident set (``/proc``,
  after ``gc.collect()``) from 0 to 2,000 idle connections whose handshake
  is complete, divided by 2,000, in a fresh server process after 20
  warm-up connections.

Except memory, each figure is the median over ``--rounds`` rounds (default
3; ``--quick``: 1), with ``--repeats`` bulk transfers per round (default 5,
each on a new connection); a round runs every stack in turn, so that drift
in the machine's speed hits all of them.  A second table gives the CPU time
each process spent per operation (per 10^6 bytes for bulk), from
``time.process_time()`` of the client and of the server (which a query
connection asks before and after each timed span): it shows which side
limits a figure.

``--no-tickets`` makes our server send no session tickets.  Twisted's
``CertificateOptions`` turns tickets off and the session cache off by
default (its TLS 1.3 server still sends OpenSSL's two stateful tickets,
which nothing can resume), while our server sends two resumable tickets by
default; the flag compares the two without resumption on either side.
``--stacks``, ``--versions`` and ``--scenarios`` select a subset.
``--json FILE`` saves the results (with every sample) and ``--render FILE``
prints the tables of a saved run again (text, and with
``--rst``/``--markdown`` for the docs); ``--render A B C`` pools the samples
of several saved runs (their rounds add up) and prints the medians and
spreads of all of them.

The first table printed is issue 12's: each of its figures as ours /
Twisted's ratio (and ours / plain TCP for bulk and echo), the CPU time
behind it for both stacks (each process per handshake and echo, the
receiving process per 10^6 bytes of bulk), the floor and moonshot
targets and whether they are met.

``--profile STACK:SCENARIO`` (scenario: download, upload, handshakes,
handshakes8, echo) runs one scenario with both the server and the client
under cProfile and prints, for each side, its own time by area (our
engine, our adapter, Twisted, pyOpenSSL, crypto in C, system calls, idle)
and its top functions; ``--profile-dir DIR`` keeps the two ``.prof`` files
for ``pstats`` (callers, callees).  cProfile slows Python calls down and C calls much
less, so Python areas look larger than they are.  ``--sample`` replaces
cProfile with a CPU-time stack sampler (``stack_sampler.py``: ``SIGPROF``
every tick of process CPU time, nothing added per call) and prints each
side's functions by inclusive and own CPU µs per operation; the kernel's
timer ticks every few milliseconds, so give it ``--seconds 10`` or more.
"""

from __future__ import annotations

import argparse
import cProfile
import datetime
import gc
import io
import json
import os
import platform
import pstats
import resource
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))

HOST = "example.com"
CHUNK = 65536
ECHO_SIZE = 1024
IDLE_CONNECTIONS = 2000
WARMUP_CONNECTIONS = 20
STACKS = ("tcp", "twisted", "ours")
VERSIONS = ("1.3", "1.2")
SCENARIOS = ("download", "upload", "handshakes", "handshakes8", "echo")

#: Whether our server sends session tickets (its default); --no-tickets.
OUR_TICKETS = True

#: Issue 12's targets, as (ours / Twisted's TLS) ratios: (floor, moonshot).
#: Memory is a ceiling ("keep <= 0.5x") and has no moonshot.
TARGETS: dict[str, tuple[float, float | None]] = {
    "download": (1.1, 1.3),
    "upload": (1.1, 1.3),
    "handshakes": (1.0, 1.5),
    "handshakes8": (1.0, 1.5),
    "echo": (1.2, 1.5),
    "memory": (0.5, None),
}
#: Figures where ours / plain TCP means something (TCP has no handshake).
TCP_RATIO = ("download", "upload", "echo")

LABELS = {
    "download": "Bulk download (MB/s)",
    "upload": "Bulk upload (MB/s)",
    "handshakes": "Full handshakes/s, sequential",
    "handshakes8": "Full handshakes/s, 8 concurrent",
    "echo": "1 KiB echo round trips/s",
    "memory": "Server memory per idle connection (KiB)",
}


# ---------------------------------------------------------------------------
# Stacks: the same application factory, wrapped three ways
# ---------------------------------------------------------------------------


def _twisted_options(version: str, is_client: bool, cert_pem: bytes, key_pem: bytes):
    """Twisted's usual options objects, narrowed to the bench's configuration."""
    from OpenSSL._util import lib as openssl_lib  # private: see module docstring
    from twisted.internet import ssl

    tls_version = ssl.TLSVersion.TLSv1_3 if version == "1.3" else ssl.TLSVersion.TLSv1_2
    extra: dict[str, Any] = {
        "raiseMinimumTo": tls_version,
        "lowerMaximumSecurityTo": tls_version,
        "acceptableCiphers": ssl.AcceptableCiphers.fromOpenSSLCipherString(
            "ECDHE-ECDSA-AES128-GCM-SHA256"
        ),
    }
    if is_client:
        options = ssl.optionsForClientTLS(
            HOST,
            trustRoot=ssl.Certificate.loadPEM(cert_pem),
            extraCertificateOptions=extra,
        )
        # The CertificateOptions whose context every connection shares.
        ctx = options._createConnection.__self__.getContext()
    else:
        private = ssl.PrivateCertificate.loadPEM(cert_pem + key_pem)
        options = ssl.CertificateOptions(
            privateKey=private.privateKey.original,
            certificate=private.original,
            **extra,
        )
        ctx = options.getContext()
    if (
        openssl_lib.SSL_CTX_set_ciphersuites(ctx._context, b"TLS_AES_128_GCM_SHA256")
        != 1
    ):
        raise RuntimeError("OpenSSL refused TLS_AES_128_GCM_SHA256")
    # P-256 is listed after x25519 because TLS 1.2 peers also read the
    # group list as the curves an ECDSA certificate may use (RFC 8422 §5.1).
    if openssl_lib.SSL_CTX_set1_curves_list(ctx._context, b"X25519:P-256") != 1:
        raise RuntimeError("OpenSSL refused X25519:P-256")
    return options


def _our_context(version: str, is_client: bool, cert_pem: bytes, key_pem: bytes):
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    from twisted_sslfile.constants import ProtocolVersion
    from twisted_sslfile.context import Context, Credential

    cert = x509.load_pem_x509_certificate(cert_pem)
    tls_version = (
        ProtocolVersion.TLS_1_3 if version == "1.3" else ProtocolVersion.TLS_1_2
    )
    common: dict[str, Any] = {
        "min_version": tls_version,
        "max_version": tls_version,
        "cipher_suites": [
            "TLS_AES_128_GCM_SHA256",
            "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
        ],
        "groups": ["x25519", "secp256r1"],
        "key_share_groups": ["x25519"],
    }
    if is_client:
        return Context(trust_roots=[cert], **common)
    key = load_pem_private_key(key_pem, None)
    if not OUR_TICKETS:
        common["session_tickets"] = False
    return Context(credentials=[Credential([cert], key)], **common)


def wrap(stack: str, version: str, is_client: bool, factory: Any, pem: tuple) -> Any:
    """``factory`` as the stack would deploy it."""
    if stack == "tcp":
        return factory
    if stack == "twisted":
        from twisted.protocols.tls import TLSMemoryBIOFactory

        return TLSMemoryBIOFactory(
            _twisted_options(version, is_client, *pem), is_client, factory
        )
    from twisted_sslfile.protocol import TLSFactory

    context = _our_context(version, is_client, *pem)
    if is_client:
        return TLSFactory(factory, context, True, HOST)
    return TLSFactory(factory, context, False)


def negotiated(stack: str, transport: Any) -> dict[str, Any]:
    """What the client's TLS transport agreed on (for the printed check)."""
    if stack == "tcp":
        return {}
    if stack == "twisted":
        from OpenSSL._util import lib as openssl_lib

        handle = transport.getHandle()
        return {
            "version": handle.get_protocol_version_name(),
            "cipher": handle.get_cipher_name(),
            "group": handle.get_group_name(),
            "resumed": bool(openssl_lib.SSL_session_reused(handle._ssl)),
        }
    result = transport.handshakeResult
    return {
        "version": result.version.name,
        "cipher": result.cipher_suite.name,
        "group": result.group.name,
        "resumed": result.resumed,
    }


def engine_supports(version: str, pem: tuple) -> str | None:
    """None if our engine completes a handshake at ``version`` in memory,
    else why not (TLS 1.2 may still be landing)."""
    from twisted_sslfile.engine.connection import Connection
    from twisted_sslfile.engine.events import HandshakeCompleted

    try:
        client = Connection(
            _our_context(version, True, *pem), is_client=True, server_name=HOST
        )
        server = Connection(_our_context(version, False, *pem), is_client=False)
        client.start()
        done = 0
        for _ in range(8):
            for sender, receiver in ((client, server), (server, client)):
                data = sender.data_to_send()
                if data:
                    done += sum(
                        isinstance(e, HandshakeCompleted)
                        for e in receiver.receive_data(data)
                    )
        if done != 2:
            return "handshake did not complete"
    except Exception as exc:  # any failure means "not available"
        return f"{type(exc).__name__}: {exc}"
    return None


def raise_fd_limit(want: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = want if hard == resource.RLIM_INFINITY else min(want, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    if target < want:
        raise SystemExit(f"the open-file limit ({hard}) is below {want}")


def rss_bytes() -> int:
    with open("/proc/self/statm", encoding="ascii") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


# ---------------------------------------------------------------------------
# The server process
# ---------------------------------------------------------------------------


def run_server(args: argparse.Namespace) -> None:
    from twisted.internet import reactor
    from twisted.internet.interfaces import IPushProducer
    from twisted.internet.protocol import Factory, Protocol
    from zope.interface import implementer

    payload = bytes(CHUNK)  # the content does not matter to any stack

    @implementer(IPushProducer)
    class Server(Protocol):
        """One byte of command, then: D<size> stream to the client, U<size>
        receive and acknowledge with K, H answer !, E echo, I answer ! and
        idle; C and M start a query connection, where each C is answered
        with the process's CPU seconds and each M with its resident set size
        (after gc.collect()), one line each."""

        def __init__(self) -> None:
            self.mode = b""
            self.header = b""
            self.remaining = 0
            self.paused = False

        def connectionMade(self) -> None:
            self.transport.setTcpNoDelay(True)

        def dataReceived(self, data: bytes) -> None:
            mode = self.mode
            if mode == b"E":
                self.transport.write(data)
                return
            if mode == b"U":
                self.remaining -= len(data)
                if self.remaining <= 0:
                    self.mode = b"done"
                    self.transport.write(b"K")
                return
            if mode == b"Q":
                for command in data:
                    if command == ord("C"):
                        self.transport.write(b"%r\n" % time.process_time())
                    else:
                        gc.collect()
                        self.transport.write(b"%d\n" % rss_bytes())
                return
            if mode:
                return
            self.header += data
            command = self.header[:1]
            if command in (b"D", b"U"):
                if len(self.header) < 9:
                    return
                (size,) = struct.unpack("!Q", self.header[1:9])
                rest = self.header[9:]
                self.header = b""
                self.mode = command
                self.remaining = size
                if command == b"D":
                    self.transport.registerProducer(self, True)
                    self.resumeProducing()
                elif rest:
                    self.dataReceived(rest)
                return
            rest = self.header[1:]
            self.header = b""
            self.mode = command
            if command in (b"H", b"I"):
                self.transport.write(b"!")
            elif command in (b"C", b"M"):
                self.mode = b"Q"
                self.dataReceived(command + rest)
            elif command == b"E" and rest:
                self.dataReceived(rest)

        # IPushProducer, for the download
        def resumeProducing(self) -> None:
            self.paused = False
            write = self.transport.write
            while not self.paused and self.remaining > 0:
                if self.remaining >= CHUNK:
                    write(payload)
                    self.remaining -= CHUNK
                else:
                    write(payload[: self.remaining])
                    self.remaining = 0
            if self.remaining <= 0 and self.mode == b"D":
                self.mode = b"done"
                self.transport.unregisterProducer()

        def pauseProducing(self) -> None:
            self.paused = True

        def stopProducing(self) -> None:
            self.remaining = 0

    raise_fd_limit(IDLE_CONNECTIONS * 2 + 200)
    pem = (read(args.cert), read(args.key))
    factory = wrap(args.stack, args.version, False, Factory.forProtocol(Server), pem)
    port = reactor.listenTCP(0, factory, backlog=1024, interface="127.0.0.1")

    def stop_on_eof() -> None:
        sys.stdin.read()
        reactor.callFromThread(reactor.stop)

    threading.Thread(target=stop_on_eof, daemon=True).start()
    print(f"PORT {port.getHost().port}", flush=True)
    profile = _profiler(args)
    if profile is not None:
        profile.enable()
    reactor.run()
    if profile is not None:
        profile.disable()
        profile.dump_stats(args.profile_out)


class _SamplingProfile:
    """``StackSampler`` behind cProfile's enable/disable/dump_stats names."""

    def __init__(self) -> None:
        from stack_sampler import StackSampler

        self.sampler = StackSampler()

    def enable(self) -> None:
        self.sampler.start()

    def disable(self) -> None:
        self.sampler.stop()

    def dump_stats(self, path: str) -> None:
        self.sampler.dump(path)


def _profiler(args: argparse.Namespace) -> Any:
    """cProfile, or the CPU-time stack sampler with ``--sample``."""
    if not args.profile_out:
        return None
    return _SamplingProfile() if args.sample else cProfile.Profile()


def read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


# ---------------------------------------------------------------------------
# The client process
# ---------------------------------------------------------------------------


def run_client(args: argparse.Namespace) -> None:
    from twisted.internet import defer, reactor
    from twisted.internet.interfaces import IHandshakeListener, IPushProducer
    from twisted.internet.protocol import ClientFactory, Protocol
    from zope.interface import implementer

    raise_fd_limit(IDLE_CONNECTIONS * 2 + 200)
    pem = (read(args.cert), read(args.key))
    stack = args.stack
    plain = stack == "tcp"
    payload = bytes(CHUNK)

    @implementer(IHandshakeListener, IPushProducer)
    class Client(Protocol):
        """``ready`` fires once the connection can carry data (TLS: the
        handshake completed); ``sink`` gets what arrives; ``greeting`` is
        written at once (before the handshake: queued by the TLS stacks)."""

        def __init__(self, greeting: bytes = b"") -> None:
            self.ready: defer.Deferred[Client] = defer.Deferred()
            self.lost: defer.Deferred[None] = defer.Deferred()
            self.sink: Callable[[bytes], None] = lambda data: None
            self.greeting = greeting
            self.remaining = 0
            self.paused = False

        def connectionMade(self) -> None:
            self.transport.setTcpNoDelay(True)
            if self.greeting:
                self.transport.write(self.greeting)
            if plain:
                self.ready.callback(self)

        def handshakeCompleted(self) -> None:
            self.ready.callback(self)

        def dataReceived(self, data: bytes) -> None:
            self.sink(data)

        def connectionLost(self, reason: Any = None) -> None:
            if not self.ready.called:
                self.ready.errback(reason)
            self.lost.callback(None)

        # IPushProducer, for the upload
        def resumeProducing(self) -> None:
            self.paused = False
            write = self.transport.write
            while not self.paused and self.remaining > 0:
                if self.remaining >= CHUNK:
                    write(payload)
                    self.remaining -= CHUNK
                else:
                    write(payload[: self.remaining])
                    self.remaining = 0
            if self.remaining <= 0:
                self.transport.unregisterProducer()

        def pauseProducing(self) -> None:
            self.paused = True

        def stopProducing(self) -> None:
            self.remaining = 0

    class Pending(ClientFactory):
        """Hands out the prepared protocols, one per connection."""

        def __init__(self) -> None:
            self.queue: deque[Client] = deque()

        def buildProtocol(self, addr: Any) -> Client:
            return self.queue.popleft()

        def clientConnectionFailed(self, connector: Any, reason: Any) -> None:
            client = self.queue.popleft()
            client.ready.errback(reason)

    pending = Pending()
    factory = wrap(stack, args.version, True, pending, pem)

    def connect(greeting: bytes = b"") -> Client:
        client = Client(greeting)
        pending.queue.append(client)
        reactor.connectTCP("127.0.0.1", args.port, factory)
        return client

    def wait_for(
        client: Client, count: int, keep: bool = True
    ) -> defer.Deferred[bytes]:
        """The next ``count`` bytes from ``client`` (only counted, and b""
        returned, unless ``keep``)."""
        d: defer.Deferred[bytes] = defer.Deferred()
        got = bytearray()
        seen = 0

        def sink(data: bytes) -> None:
            nonlocal seen
            seen += len(data)
            if keep:
                got.extend(data)
            if seen >= count and not d.called:
                client.sink = lambda data: None
                d.callback(bytes(got))

        client.sink = sink
        return d

    info: dict[str, Any] = {}

    class Control:
        """A connection for questions to the server, one line per answer:
        C its CPU seconds so far, M its resident set size."""

        def __init__(self, client: Client) -> None:
            self.client = client
            self.buffer = bytearray()
            self.waiting: deque[defer.Deferred[bytes]] = deque()
            client.sink = self.sink

        def sink(self, data: bytes) -> None:
            self.buffer.extend(data)
            while b"\n" in self.buffer:
                line, _, rest = bytes(self.buffer).partition(b"\n")
                self.buffer[:] = rest
                self.waiting.popleft().callback(line)

        def expect(self) -> defer.Deferred[bytes]:
            d: defer.Deferred[bytes] = defer.Deferred()
            self.waiting.append(d)
            return d

        def query(self, command: bytes) -> defer.Deferred[bytes]:
            d = self.expect()
            self.client.transport.write(command)
            return d

    control: Control | None = None

    @defer.inlineCallbacks
    def cpu_mark() -> Any:
        """(client CPU seconds, server CPU seconds) now."""
        assert control is not None
        server = yield control.query(b"C")
        return time.process_time(), float(server)

    @defer.inlineCallbacks
    def timed(run: Callable[[], Any]) -> Any:
        """Run ``run()`` (-> (value, elapsed seconds)) between two CPU marks:
        the figure plus both processes' CPU seconds over that span."""
        before = yield cpu_mark()
        value, elapsed = yield run()
        after = yield cpu_mark()
        return {
            "value": value,
            "elapsed": elapsed,
            "client_cpu": after[0] - before[0],
            "server_cpu": after[1] - before[1],
        }

    @defer.inlineCallbacks
    def one_round_trip() -> Any:
        """Connect, handshake, H -> !, close: one full handshake."""
        client = connect(b"H")
        answer = wait_for(client, 1)
        yield client.ready
        if not info and not plain:
            info.update(negotiated(stack, client.transport))
        yield answer
        client.transport.loseConnection()

    @defer.inlineCallbacks
    def handshakes(concurrency: int) -> Any:
        for _ in range(10):  # warm-up
            yield one_round_trip()

        @defer.inlineCallbacks
        def run() -> Any:
            deadline = time.perf_counter() + args.seconds
            count = 0

            @defer.inlineCallbacks
            def slot() -> Any:
                nonlocal count
                while time.perf_counter() < deadline:
                    yield one_round_trip()
                    count += 1

            started = time.perf_counter()
            yield defer.gatherResults(
                [slot() for _ in range(concurrency)], consumeErrors=True
            )
            elapsed = time.perf_counter() - started
            return count / elapsed, elapsed

        sample = yield timed(run)
        sample["per_op"] = sample["value"] * sample["elapsed"]
        return [sample]

    @defer.inlineCallbacks
    def bulk(direction: str) -> Any:
        samples = []
        for _ in range(args.repeats):
            client = connect()
            yield client.ready

            @defer.inlineCallbacks
            def run(client: Client = client) -> Any:
                header = direction.encode() + struct.pack("!Q", args.size)
                if direction == "D":
                    done = wait_for(client, args.size, keep=False)
                    started = time.perf_counter()
                    client.transport.write(header)
                else:
                    done = wait_for(client, 1)
                    started = time.perf_counter()
                    client.transport.write(header)
                    client.remaining = args.size
                    client.transport.registerProducer(client, True)
                    client.resumeProducing()
                yield done
                elapsed = time.perf_counter() - started
                return args.size / elapsed / 1e6, elapsed

            sample = yield timed(run)
            sample["per_op"] = args.size / 1e6
            samples.append(sample)
            client.transport.loseConnection()
            yield client.lost
        return samples

    @defer.inlineCallbacks
    def echo() -> Any:
        client = connect(b"E")
        yield client.ready
        message = os.urandom(ECHO_SIZE)
        for _ in range(200):  # warm-up
            answer = wait_for(client, ECHO_SIZE)
            client.transport.write(message)
            yield answer

        @defer.inlineCallbacks
        def run() -> Any:
            count = 0
            started = time.perf_counter()
            deadline = started + args.seconds
            while time.perf_counter() < deadline:
                answer = wait_for(client, ECHO_SIZE)
                client.transport.write(message)
                reply = yield answer
                count += 1
            elapsed = time.perf_counter() - started
            if reply != message:
                raise RuntimeError("echo mismatch")
            return count / elapsed, elapsed

        sample = yield timed(run)
        sample["per_op"] = sample["value"] * sample["elapsed"]
        client.transport.loseConnection()
        yield client.lost
        return [sample]

    @defer.inlineCallbacks
    def memory() -> Any:
        assert control is not None

        @defer.inlineCallbacks
        def open_idle(count: int, keep: list[Client]) -> Any:
            todo = count

            @defer.inlineCallbacks
            def slot() -> Any:
                nonlocal todo
                while todo > 0:
                    todo -= 1
                    client = connect(b"I")
                    answer = wait_for(client, 1)
                    yield client.ready
                    yield answer
                    keep.append(client)

            yield defer.gatherResults([slot() for _ in range(32)], consumeErrors=True)

        warm: list[Client] = []
        yield open_idle(WARMUP_CONNECTIONS, warm)
        for client in warm:
            client.transport.loseConnection()
        yield defer.gatherResults([c.lost for c in warm])
        baseline = int((yield control.query(b"M")))
        idle: list[Client] = []
        yield open_idle(IDLE_CONNECTIONS, idle)
        after = int((yield control.query(b"M")))
        info["server_rss_mib"] = round(after / 2**20, 1)
        for client in idle:
            client.transport.abortConnection()
        return [{"value": (after - baseline) / IDLE_CONNECTIONS / 1024}]

    scenarios = {
        "download": lambda: bulk("D"),
        "upload": lambda: bulk("U"),
        "handshakes": lambda: handshakes(1),
        "handshakes8": lambda: handshakes(8),
        "echo": echo,
        "memory": memory,
    }
    results: dict[str, Any] = {}
    profile = _profiler(args)

    @defer.inlineCallbacks
    def main() -> Any:
        nonlocal control
        try:
            client = connect(b"C")
            control = Control(client)
            greeting = control.expect()
            yield client.ready
            yield greeting
            for name in args.scenarios.split(","):
                if profile is not None:
                    profile.enable()
                results[name] = yield scenarios[name]()
                if profile is not None:
                    profile.disable()
        except Exception as exc:
            results["error"] = f"{type(exc).__name__}: {exc}"
            import traceback

            traceback.print_exc()
        finally:
            reactor.stop()

    def watchdog() -> None:
        results["error"] = "timed out"
        reactor.stop()

    reactor.callLater(args.timeout, watchdog)
    reactor.callWhenRunning(main)
    reactor.run()
    if profile is not None:
        profile.dump_stats(args.profile_out)
    results["negotiated"] = info
    print(json.dumps(results), flush=True)


# ---------------------------------------------------------------------------
# The orchestrator
# ---------------------------------------------------------------------------


class Run:
    """Starts server and client processes and collects their figures."""

    def __init__(self, args: argparse.Namespace, directory: str) -> None:
        self.args = args
        self.cert = os.path.join(directory, "cert.pem")
        self.key = os.path.join(directory, "key.pem")
        self.pin = args.pin and len(os.sched_getaffinity(0)) >= 2
        cpus = sorted(os.sched_getaffinity(0))
        self.server_cpu, self.client_cpu = (
            (cpus[0], cpus[1]) if self.pin else (None, None)
        )

    def _command(self, role: str, stack: str, version: str) -> list[str]:
        return [
            sys.executable,
            os.path.abspath(__file__),
            "--role",
            role,
            "--stack",
            stack,
            "--tls",
            version,
            "--cert",
            self.cert,
            "--key",
            self.key,
            *([] if OUR_TICKETS else ["--no-tickets"]),
        ]

    def _preexec(self, cpu: int | None) -> Callable[[], None] | None:
        if cpu is None:
            return None
        return lambda: os.sched_setaffinity(0, {cpu})

    def start_server(
        self, stack: str, version: str, profile_out: str | None = None
    ) -> tuple[subprocess.Popen[bytes], int]:
        command = self._command("server", stack, version)
        if profile_out:
            command += ["--profile-out", profile_out]
            command += ["--sample"] if self.args.sample else []
        server = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            preexec_fn=self._preexec(self.server_cpu),
        )
        assert server.stdout is not None
        line = server.stdout.readline().decode()
        if not line.startswith("PORT "):
            server.kill()
            raise RuntimeError(f"server {stack} TLS {version} did not start: {line!r}")
        return server, int(line.split()[1])

    def stop_server(self, server: subprocess.Popen[bytes]) -> None:
        assert server.stdin is not None
        server.stdin.close()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()

    def client(
        self,
        stack: str,
        version: str,
        port: int,
        scenarios: list[str],
        profile_out: str | None = None,
    ) -> dict[str, Any]:
        command = [
            *self._command("client", stack, version),
            "--port",
            str(port),
            "--scenarios",
            ",".join(scenarios),
            "--size",
            str(self.args.size),
            "--seconds",
            str(self.args.seconds),
            "--repeats",
            str(self.args.repeats),
        ]
        if profile_out:
            command += ["--profile-out", profile_out]
            command += ["--sample"] if self.args.sample else []
        done = subprocess.run(
            command,
            stdout=subprocess.PIPE,
            timeout=600,
            preexec_fn=self._preexec(self.client_cpu),
        )
        lines = done.stdout.decode().strip().splitlines()
        if not lines:
            raise RuntimeError(f"client {stack} TLS {version} printed nothing")
        result = json.loads(lines[-1])
        if "error" in result:
            raise RuntimeError(f"client {stack} TLS {version}: {result['error']}")
        return result

    def measure(self, stack: str, version: str, scenarios: list[str]) -> dict[str, Any]:
        server, port = self.start_server(stack, version)
        try:
            return self.client(stack, version, port, scenarios)
        finally:
            self.stop_server(server)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run_all(args: argparse.Namespace, directory: str) -> dict[str, Any]:
    from twisted_sslfile.x509 import generate_self_signed, write_pem

    cert, key = generate_self_signed(HOST, "ecdsa-p256")
    run = Run(args, directory)
    write_pem(run.cert, cert)
    write_pem(run.key, key)
    pem = (read(run.cert), read(run.key))

    versions = [v for v in VERSIONS if v in args.versions.split(",")]
    combos: list[tuple[str, str]] = [("tcp", "-")] if "tcp" in args.stacks else []
    unsupported: dict[str, str] = {}
    for version in versions:
        why = engine_supports(version, pem)
        if why is not None:
            unsupported[version] = why
            log(f"TLS {version}: our engine cannot run it here ({why}): n/a (engine)")
        for stack in ("twisted", "ours"):
            if stack in args.stacks and not (stack == "ours" and why is not None):
                combos.append((stack, version))

    names = args.scenarios.split(",") if args.scenarios else list(SCENARIOS)
    samples: dict[str, dict[str, list[dict[str, float]]]] = {}
    negotiated_info: dict[str, Any] = {}
    started = time.perf_counter()
    for round_number in range(args.rounds):
        order = combos if round_number % 2 == 0 else combos[::-1]
        for stack, version in order:
            key = f"{stack}/{version}"
            tls = "1.3" if version == "-" else version
            t0 = time.perf_counter()
            result = run.measure(stack, tls, names)
            negotiated_info[key] = result.pop("negotiated")
            for name, values in result.items():
                samples.setdefault(key, {}).setdefault(name, []).extend(values)
            log(
                f"round {round_number + 1}/{args.rounds} {key:12} "
                + " ".join(
                    f"{n}={statistics.median(v['value'] for v in vs):.0f}"
                    for n, vs in result.items()
                )
                + f"  ({time.perf_counter() - t0:.1f} s)"
            )
    if not args.no_memory:
        for stack, version in combos:
            key = f"{stack}/{version}"
            tls = "1.3" if version == "-" else version
            t0 = time.perf_counter()
            result = run.measure(stack, tls, ["memory"])
            samples.setdefault(key, {})["memory"] = result["memory"]
            log(
                f"memory {key:12} {result['memory'][0]['value']:.1f} KiB/connection,"
                f" server RSS {result['negotiated'].get('server_rss_mib')} MiB with"
                f" {IDLE_CONNECTIONS} idle  ({time.perf_counter() - t0:.1f} s)"
            )

    return {
        **summarize(samples),
        "samples": samples,
        "negotiated": negotiated_info,
        "unsupported": unsupported,
        "versions": versions,
        "settings": {
            "bulk_bytes": args.size,
            "seconds": args.seconds,
            "rounds": args.rounds,
            "repeats": args.repeats,
            "our_tickets": OUR_TICKETS,
            "pinned": run.pin,
            "quick": args.quick,
        },
        "environment": environment(),
        "wall_seconds": round(time.perf_counter() - started, 1),
    }


def summarize(samples: dict[str, dict[str, list[dict[str, float]]]]) -> dict[str, Any]:
    """Figures (medians), their spread and the CPU per operation of samples."""

    def median(values: list[dict[str, float]], field: str) -> float:
        return statistics.median(v[field] for v in values)

    figures = {
        key: {name: median(values, "value") for name, values in by_name.items()}
        for key, by_name in samples.items()
    }
    spread = {
        key: {
            name: (min(v["value"] for v in values), max(v["value"] for v in values))
            for name, values in by_name.items()
            if len(values) > 1
        }
        for key, by_name in samples.items()
    }
    # CPU microseconds per operation (per MB for bulk), median over samples.
    cpu = {
        key: {
            name: {
                side: statistics.median(
                    v[f"{side}_cpu"] / v["per_op"] * 1e6 for v in values
                )
                for side in ("server", "client")
            }
            for name, values in by_name.items()
            if name != "memory"
        }
        for key, by_name in samples.items()
    }
    return {"figures": figures, "spread": spread, "cpu": cpu}


def merge_runs(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Several saved runs as one: their samples pooled, figures recomputed."""
    merged = dict(runs[0])
    samples: dict[str, dict[str, list[dict[str, float]]]] = {}
    for data in runs:
        for key, by_name in data["samples"].items():
            for name, values in by_name.items():
                samples.setdefault(key, {}).setdefault(name, []).extend(values)
    merged.update(summarize(samples), samples=samples)
    merged["settings"] = {
        **runs[0]["settings"],
        "rounds": sum(data["settings"]["rounds"] for data in runs),
    }
    merged["wall_seconds"] = sum(data["wall_seconds"] for data in runs)
    return merged


def environment() -> dict[str, Any]:
    import cryptography
    import OpenSSL
    from cryptography.hazmat.backends.openssl.backend import backend

    import twisted

    return {
        "date": datetime.date.today().isoformat(),
        "python": platform.python_version(),
        "twisted": twisted.__version__,
        "cryptography": cryptography.__version__,
        "pyopenssl": OpenSSL.__version__,
        "openssl": backend.openssl_version_text(),
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
        "kernel": platform.release(),
    }


# ---------------------------------------------------------------------------
# Tables
# ---------------------------------------------------------------------------


def _fmt(value: float | None, name: str) -> str:
    if value is None:
        return "n/a"
    if name == "memory":
        return f"{value:.1f}"
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:.1f}"


def table_rows(data: dict[str, Any], version: str) -> list[list[str]]:
    """Rows: figure, ours, Twisted, TCP, ours/Twisted, ours/TCP, target, met."""
    figures = data["figures"]
    ours = figures.get(f"ours/{version}")
    theirs = figures.get(f"twisted/{version}")
    tcp = figures.get("tcp/-", {})
    rows = []
    for name in (*SCENARIOS, "memory"):
        if theirs is None or name not in theirs:
            continue
        mine = ours.get(name) if ours else None
        ref_target, _ = TARGETS[name]
        ratio = mine / theirs[name] if mine is not None else None
        tcp_value = tcp.get(name)
        tcp_ratio = (
            mine / tcp_value
            if (mine is not None and name in TCP_RATIO and tcp_value)
            else None
        )
        if name == "memory":
            target = f"<= {ref_target}x Twisted"
            met = ratio is not None and ratio <= ref_target
        else:
            target = f">= {ref_target}x Twisted"
            met = ratio is not None and ratio >= ref_target
        engine_na = version in data["unsupported"]
        rows.append(
            [
                LABELS[name],
                "n/a (engine)" if engine_na else _fmt(mine, name),
                _fmt(theirs[name], name),
                _fmt(tcp_value, name) if tcp_value is not None else "n/a",
                f"{ratio:.2f}" if ratio is not None else "n/a",
                f"{tcp_ratio:.2f}" if tcp_ratio is not None else "",
                target,
                "n/a" if engine_na else ("yes" if met else "NO"),
            ]
        )
    return rows


HEADER = [
    "Figure",
    "ours",
    "Twisted TLS",
    "plain TCP",
    "ours/Twisted",
    "ours/TCP",
    "target",
    "met",
]


CPU_UNITS = {
    "download": "per MB downloaded",
    "upload": "per MB uploaded",
    "handshakes": "per handshake, sequential",
    "handshakes8": "per handshake, 8 concurrent",
    "echo": "per echo round trip",
}
CPU_HEADER = [
    "CPU microseconds",
    "ours server",
    "ours client",
    "Twisted server",
    "Twisted client",
    "TCP server",
    "TCP client",
]


def cpu_rows(data: dict[str, Any], version: str) -> list[list[str]]:
    """Each process's CPU time per operation, from the same runs."""
    cpu = data.get("cpu", {})
    rows = []
    for name in SCENARIOS:
        if not any(name in by_name for by_name in cpu.values()):
            continue
        row = [CPU_UNITS[name]]
        for key in (f"ours/{version}", f"twisted/{version}", "tcp/-"):
            figures = cpu.get(key, {}).get(name)
            for side in ("server", "client"):
                row.append(f"{figures[side]:,.0f}" if figures else "n/a")
        rows.append(row)
    return rows


#: Issue 12's table: (label, version, scenario, CPU detail).  The CPU
#: detail names the sides whose CPU time the issue quotes: both processes
#: for handshakes, the receiver for bulk (the client downloads, the server
#: receives an upload).
SUMMARY = (
    ("sequential full handshakes/s", "1.3", "handshakes", ("server", "client")),
    ("8 concurrent handshakes/s", "1.3", "handshakes8", ("server", "client")),
    ("TLS 1.2 handshakes/s", "1.2", "handshakes", ("server", "client")),
    ("download MB/s (64 KiB writes, producer)", "1.3", "download", ("client",)),
    ("upload MB/s", "1.3", "upload", ("server",)),
    ("1 KiB echo round trips/s", "1.3", "echo", ("server", "client")),
    ("memory per idle connection", "1.3", "memory", ()),
)
SUMMARY_HEADER = [
    "issue 12 figure",
    "ours/Twisted",
    "ours/TCP",
    "CPU µs, ours vs Twisted",
    "floor",
    "moonshot",
    "met",
]
_SIDE_NAMES = {"server": "server", "client": "client"}


def summary_rows(data: dict[str, Any]) -> list[list[str]]:
    """Issue 12's table from one run: ratios, targets and the CPU behind them.

    Bulk CPU is per 10^6 bytes on the receiving process (the side whose cost
    the receive path sets); handshake and echo CPU is per operation on each
    process.
    """
    figures = data["figures"]
    cpu = data.get("cpu", {})
    tcp = figures.get("tcp/-", {})
    rows = []
    for label, version, name, sides in SUMMARY:
        ours = figures.get(f"ours/{version}", {}).get(name)
        theirs = figures.get(f"twisted/{version}", {}).get(name)
        if ours is None or not theirs:
            continue
        ratio = ours / theirs
        tcp_value = tcp.get(name)
        tcp_ratio = f"{ours / tcp_value:.2f}" if name in TCP_RATIO and tcp_value else ""
        details = []
        for side in sides:
            mine = cpu.get(f"ours/{version}", {}).get(name)
            ref = cpu.get(f"twisted/{version}", {}).get(name)
            if mine and ref:
                who = "receiver" if len(sides) == 1 else _SIDE_NAMES[side]
                details.append(f"{who} {mine[side]:,.0f} vs {ref[side]:,.0f}")
        floor, moonshot = TARGETS[name]
        if name == "memory":
            met = "yes" if ratio <= floor else "NO"
            floor_text, moon_text = f"<= {floor}x", ""
        else:
            met = (
                "moonshot"
                if moonshot is not None and ratio >= moonshot
                else ("yes" if ratio >= floor else "NO")
            )
            floor_text, moon_text = f"{floor}x", f"{moonshot}x"
        rows.append(
            [
                label,
                f"{ratio:.2f}x",
                tcp_ratio,
                "; ".join(details),
                floor_text,
                moon_text,
                met,
            ]
        )
    return rows


def _text_table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for i, row in enumerate(rows):
        lines.append(
            "  ".join(
                cell.ljust(widths[j]) if j == 0 else cell.rjust(widths[j])
                for j, cell in enumerate(row)
            ).rstrip()
        )
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines) + "\n"


def render_text(data: dict[str, Any]) -> str:
    out = io.StringIO()
    summary = summary_rows(data)
    if summary:
        out.write("\nIssue 12 (ours / Twisted's TLS over pyOpenSSL)\n")
        out.write(_text_table([SUMMARY_HEADER, *summary]))
    for version in data["versions"]:
        out.write(f"\nTLS {version}\n")
        out.write(_text_table([HEADER, *table_rows(data, version)]))
        if data.get("cpu"):
            out.write("\n")
            out.write(_text_table([CPU_HEADER, *cpu_rows(data, version)]))
    out.write("\nnegotiated (client side):\n")
    for key, info in data["negotiated"].items():
        if info:
            out.write(f"  {key:12} {info}\n")
    env = data["environment"]
    settings = data["settings"]
    pinned = (
        "server and client pinned to separate CPUs"
        if settings["pinned"]
        else "not pinned"
    )
    out.write(
        f"\n{env['date']}, {env['cpus']} CPUs ({env['machine']}, Linux"
        f" {env['kernel']}), Python {env['python']}, Twisted {env['twisted']},"
        f" cryptography {env['cryptography']}, pyOpenSSL {env['pyopenssl']},"
        f" {env['openssl']}; bulk {settings['bulk_bytes'] // 2**20} MiB,"
        f" {settings['seconds']} s per timed figure, median of"
        f" {settings['rounds']} round(s) ({settings.get('repeats', 1)} bulk"
        f" transfers each), {pinned}; our server"
        f" {'sends' if settings.get('our_tickets', True) else 'sends no'} session"
        f" tickets; {data['wall_seconds']} s.\n"
    )
    return out.getvalue()


def render_markdown(data: dict[str, Any]) -> str:
    out = io.StringIO()
    summary = summary_rows(data)
    if summary:
        out.write("\nIssue 12:\n\n")
        out.write("| " + " | ".join(SUMMARY_HEADER) + " |\n")
        out.write("|" + "|".join(" --- " for _ in SUMMARY_HEADER) + "|\n")
        for row in summary:
            out.write("| " + " | ".join(row) + " |\n")
    for version in data["versions"]:
        for rows in ([HEADER, *table_rows(data, version)],):
            out.write(f"\nTLS {version}:\n\n")
            out.write("| " + " | ".join(rows[0]) + " |\n")
            out.write("|" + "|".join(" --- " for _ in rows[0]) + "|\n")
            for row in rows[1:]:
                out.write("| " + " | ".join(row) + " |\n")
    return out.getvalue()


def render_rst(data: dict[str, Any]) -> str:
    out = io.StringIO()
    summary = summary_rows(data)
    for version in data["versions"]:
        tables = [(f"TLS {version}", [HEADER, *table_rows(data, version)])]
        if summary and version == data["versions"][0]:
            tables.insert(0, ("Issue 12", [SUMMARY_HEADER, *summary]))
        if data.get("cpu"):
            tables.append(
                (f"TLS {version}, CPU time", [CPU_HEADER, *cpu_rows(data, version)])
            )
        for title, rows in tables:
            out.write(f"\n.. list-table:: {title}\n   :header-rows: 1\n\n")
            for row in rows:
                out.write(f"   * - {row[0]}\n")
                for cell in row[1:]:
                    out.write(f"     - {cell}\n" if cell else "     -\n")
    return out.getvalue()


# ---------------------------------------------------------------------------
# Profiling
# ---------------------------------------------------------------------------


def run_profile(args: argparse.Namespace, directory: str) -> None:
    from twisted_sslfile.x509 import generate_self_signed, write_pem

    stack, _, scenario = args.profile.partition(":")
    if stack not in STACKS or scenario not in SCENARIOS:
        raise SystemExit(
            f"--profile STACK:SCENARIO, stack in {STACKS}, scenario in {SCENARIOS}"
        )
    cert, key = generate_self_signed(HOST, "ecdsa-p256")
    run = Run(args, directory)
    write_pem(run.cert, cert)
    write_pem(run.key, key)
    version = args.versions.split(",")[0]
    server_out = os.path.join(directory, "server.prof")
    client_out = os.path.join(directory, "client.prof")
    server, port = run.start_server(stack, version, server_out)
    try:
        result = run.client(stack, version, port, [scenario], client_out)
    finally:
        run.stop_server(server)
    for sample in result[scenario]:
        print(
            f"{stack} TLS {version} {scenario} under cProfile: {sample['value']:.1f};"
            f" CPU s: server {sample['server_cpu']:.3f}, client"
            f" {sample['client_cpu']:.3f} in {sample['elapsed']:.3f} s"
        )
    if args.profile_dir:
        os.makedirs(args.profile_dir, exist_ok=True)
        for path in (server_out, client_out):
            shutil.copy(path, args.profile_dir)
    if args.sample:
        from stack_sampler import areas, report

        # per_op: the operations (handshakes, round trips, 10^6 bytes) timed.
        operations = sum(sample["per_op"] for sample in result[scenario])
        for side, path in (("server", server_out), ("client", client_out)):
            print(f"\n=== {side}: own CPU µs per operation by area (sampled) ===")
            for area, micros in areas(path, operations, _sampled_area):
                print(f"  {area:60} {micros:9.1f}")
        for side, path in (("server", server_out), ("client", client_out)):
            print()
            print(report(path, operations, f"=== {side}", args.top))
        return
    for side, path in (("server", server_out), ("client", client_out)):
        stats = pstats.Stats(path, stream=sys.stdout)
        print(f"\n=== {side}: own time by area (cProfile) ===")
        areas: dict[str, float] = {}
        for (filename, _, function), (_, _, own, _, _) in stats.stats.items():  # type: ignore[attr-defined]
            area = _area(filename, function)
            areas[area] = areas.get(area, 0.0) + own
        busy = sum(t for a, t in areas.items() if a != "idle (epoll wait)")
        for area, seconds in sorted(areas.items(), key=lambda item: -item[1]):
            share = f"{seconds / busy:6.1%}" if area != "idle (epoll wait)" else ""
            print(f"  {area:48} {seconds * 1000:9.1f} ms {share}")
        print(f"\n=== {side}: top functions by own time ===")
        stats.strip_dirs().sort_stats("tottime").print_stats(args.top)


_KEY_EXCHANGE_AND_SIGNATURES = "crypto: key exchange, signatures (C, thin wrappers)"
_HASHES = "crypto: HMAC, HKDF, transcript hash (C, thin wrappers)"
_AEAD = "crypto: AEAD key set-up, seal, open (C, thin wrappers)"
_VERIFICATION = "certificate verification (ours + cryptography.x509)"


def _sampled_area(key: str) -> str:
    """Which layer a sampled function (``dir/file.py:line(qualname)``) is in.

    A sampled function's own time includes the C functions it calls, so the
    thin wrappers around one ``cryptography`` call (engine/suites.py, the
    record protections, the HMAC and the transcript) count as crypto.
    """
    path, _, rest = key.partition(":")
    qualname = rest.partition("(")[2].rstrip(")")
    if path == "engine/suites.py" or path.startswith(("asymmetric/", "openssl/")):
        return _KEY_EXCHANGE_AND_SIGNATURES
    if path == "engine/keyschedule.py" and qualname.startswith(
        ("_hmac", "_empty_hash", "_new_hash", "Transcript.")
    ):
        return _HASHES
    if path.endswith("hashlib.py"):
        return _HASHES
    if path == "engine/record.py" and "Protection." in qualname:
        return _AEAD
    if path in ("engine/certificates.py", "engine/certnames.py") or path.startswith(
        ("x509/", "verification/")
    ):
        return _VERIFICATION
    if path.startswith("engine/"):
        return "engine Python: messages, state machines, records, key schedule"
    if path.startswith("twisted_sslfile/"):
        return "our adapter and Context (twisted_sslfile/*.py)"
    if path.startswith("OpenSSL/"):
        return "pyOpenSSL (Python) and OpenSSL"
    if path == "protocols/tls.py":
        return "Twisted's TLSMemoryBIOProtocol"
    if path == "python/util.py" or path.endswith("/socket.py"):
        return "system calls (send, accept, close)"
    if path.startswith(("internet/", "python/", "logger/", "interface/")):
        return "Twisted reactor, TCP, Deferreds, logging"
    if path.startswith("bench/"):
        return "bench application"
    return "other (stdlib, dataclass __init__, ...)"


def _area(filename: str, function: str) -> str:
    """Which layer a profiled function belongs to."""
    if function == "<method 'poll' of 'select.epoll' objects>":
        return "idle (epoll wait)"
    if filename == "~":  # a C function
        if "socket" in function or "epoll" in function:
            return "system calls (socket, epoll)"
        if "cryptography" in function or "_openssl" in function:
            return "crypto in C (cryptography / OpenSSL)"
        return "other C built-ins"
    path = filename.replace(os.sep, "/")
    if "/twisted_sslfile/protocol.py" in path:
        return "our adapter (protocol.py)"
    if "/twisted_sslfile/" in path:
        return "our engine, context, x509 (Python)"
    if "/cryptography/" in path:
        return "cryptography's Python layer"
    if "/OpenSSL/" in path:
        return "pyOpenSSL (Python)"
    if "/twisted/protocols/tls.py" in path:
        return "Twisted's TLSMemoryBIOProtocol"
    if "/service_identity/" in path:
        return "service_identity (host name check)"
    if "/twisted/" in path or "/zope/" in path:
        return "Twisted reactor, TCP, Deferreds"
    if path.endswith("bench_twisted.py"):
        return "bench application"
    return "other Python (stdlib)"


# ---------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="32 MiB bulk, 1 round")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--seconds", type=float, default=None, help="per timed figure")
    parser.add_argument("--size", type=int, default=None, help="bulk bytes")
    parser.add_argument(
        "--repeats", type=int, default=5, help="bulk transfers per round"
    )
    parser.add_argument("--stacks", default=",".join(STACKS))
    parser.add_argument("--versions", default=",".join(VERSIONS))
    parser.add_argument("--no-memory", action="store_true")
    parser.add_argument(
        "--no-tickets",
        action="store_true",
        help="our server sends no session tickets (Twisted's CertificateOptions"
        " default cannot resume either)",
    )
    parser.add_argument("--no-pin", dest="pin", action="store_false")
    parser.add_argument("--json", help="save the results here")
    parser.add_argument(
        "--render",
        nargs="+",
        help="print the tables of saved runs (several: their samples pooled)",
    )
    parser.add_argument("--rst", action="store_true", help="also print RST tables")
    parser.add_argument("--markdown", action="store_true", help="also print Markdown")
    parser.add_argument("--profile", help="STACK:SCENARIO under cProfile")
    parser.add_argument(
        "--sample",
        action="store_true",
        help="with --profile: a CPU-time stack sampler instead of cProfile"
        " (no per-call cost; prints inclusive and own µs per operation)",
    )
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument(
        "--profile-dir",
        help="with --profile: keep server.prof and client.prof here (pstats)",
    )
    # internal: the server and client processes
    parser.add_argument("--role", choices=("server", "client"), help=argparse.SUPPRESS)
    parser.add_argument("--stack", help=argparse.SUPPRESS)
    parser.add_argument("--tls", help=argparse.SUPPRESS)
    parser.add_argument("--cert", help=argparse.SUPPRESS)
    parser.add_argument("--key", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument(
        "--scenarios", help=f"comma-separated subset of {','.join(SCENARIOS)}"
    )
    parser.add_argument("--timeout", type=float, default=300, help=argparse.SUPPRESS)
    parser.add_argument("--profile-out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.size is None:
        args.size = (32 if args.quick else 256) * 2**20
    if args.seconds is None:
        args.seconds = 1.5 if args.quick else 2.5
    if args.rounds is None:
        args.rounds = 1 if args.quick else 3
    args.version = args.tls
    global OUR_TICKETS
    OUR_TICKETS = not args.no_tickets

    if args.role == "server":
        run_server(args)
        return
    if args.role == "client":
        run_client(args)
        return

    if args.render:
        runs = []
        for path in args.render:
            with open(path, encoding="utf-8") as f:
                runs.append(json.load(f))
        data = merge_runs(runs)
    else:
        directory = tempfile.mkdtemp(prefix="bench-twisted-")
        try:
            if args.profile:
                run_profile(args, directory)
                return
            data = run_all(args, directory)
        finally:
            shutil.rmtree(directory, ignore_errors=True)
        if args.json:
            with open(args.json, "w", encoding="utf-8") as f:
                json.dump(data, f, indent=1)
    print(render_text(data))
    if args.markdown:
        print(render_markdown(data))
    if args.rst:
        print(render_rst(data))


if __name__ == "__main__":
    main()
