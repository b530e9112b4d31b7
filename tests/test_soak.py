"""A soak in CI's budget: hundreds of TLS connections at once, every way of ending.

Both ends are :class:`~twisted_sslfile.protocol.TLSFactory` on real loopback
TCP in the global reactor.  Each connection follows a plan drawn from one
seeded ``random.Random`` (sizes, data, scenario), so a failure names a plan
that can be replayed; only the reactor's interleaving varies between runs.

The scenarios, and what each must end with:

* ``halfclose``: both sides write random chunks over several reactor turns
  and then half-close (``loseWriteConnection``), in either order; each
  receives exactly what the other wrote, both see ``ConnectionDone``.
* ``echo``: the server echoes with flow control (its transport produces for
  itself, as ``sslfile-echo`` does); the client closes once all came back.
* ``client_abort`` / ``server_abort``: one side aborts after a random number
  of chunks: ``ConnectionAborted`` there, a ``ConnectionLost`` (the reset) at
  the peer, which received a prefix of what was sent.  ``echo_abort``: the
  client aborts an echo (whose transport is its own producer) half-way.
* ``stalled_server`` / ``stalled_client``: one side stops reading for good;
  the other writes far more than the socket buffers hold and closes.  The
  close ends at ``close_timeout`` in :class:`CloseTimeoutError`; the staller
  then reads again and finds the reset.
* ``truncate``: the server writes, then closes its TCP without close_notify:
  the client gets everything and ``TLSTruncationError``.

Afterwards no connection, no TLS timer and no port is left behind.
"""

from __future__ import annotations

import random
import socket
from dataclasses import dataclass, field
from typing import Any

from twisted.internet import defer, reactor, tcp
from twisted.internet.error import ConnectionAborted, ConnectionDone, ConnectionLost
from twisted.internet.interfaces import IHalfCloseableProtocol, IHandshakeListener
from twisted.internet.protocol import ClientFactory, Factory, Protocol, connectionDone
from twisted.python.failure import Failure
from twisted.trial.unittest import TestCase
from zope.interface import implementer

from tests.certs import CertificateFactory
from twisted_sslfile.context import Context
from twisted_sslfile.protocol import (
    CloseTimeoutError,
    TLSFactory,
    TLSProtocol,
    TLSTruncationError,
)

#: The seed of every plan; change it to explore, keep it to replay.
SEED = 20240610
CONNECTIONS = 500
#: Connections open at once.
CONCURRENCY = 40
#: Seconds a stalled close waits before it is aborted.
CLOSE_TIMEOUT = 0.5
#: A connection not finished after this long is reported with its plan, and
#: aborted so that the rest of the soak still runs (and the report comes
#: within the module's 60 s): healthy ones take well under a second.
CONNECTION_DEADLINE = 15.0

SCENARIOS = (
    ("halfclose", 40),
    ("echo", 15),
    ("echo_abort", 5),
    ("client_abort", 10),
    ("server_abort", 10),
    ("stalled_server", 7),
    ("stalled_client", 7),
    ("truncate", 6),
)


@dataclass
class Plan:
    """What one connection does; both ends read it."""

    number: int
    scenario: str
    seed: int
    tls12: bool
    client_chunks: list[int]
    server_chunks: list[int]
    #: Chunks the aborting side writes before it aborts.
    abort_after: int = 0
    client: End | None = None
    server: End | None = None
    done: defer.Deferred[None] = field(default_factory=defer.Deferred)

    def stream(self, side: str) -> bytes:
        """Everything ``side`` writes, regenerated from the seed."""
        rng = random.Random(self.seed * 2 + (side == "server"))
        sizes = self.client_chunks if side == "client" else self.server_chunks
        return b"".join(rng.randbytes(size) for size in sizes)

    def __repr__(self) -> str:
        return (
            f"<Plan #{self.number} {self.scenario} tls12={self.tls12} "
            f"client={self.client_chunks} server={self.server_chunks} "
            f"abort_after={self.abort_after}>"
        )


def make_plans(rng: random.Random) -> list[Plan]:
    names = [name for name, _ in SCENARIOS]
    weights = [weight for _, weight in SCENARIOS]
    plans = []
    for number in range(CONNECTIONS):
        scenario = rng.choices(names, weights)[0]

        def chunks(count: int, largest: int) -> list[int]:
            return [rng.randint(1, largest) for _ in range(count)]

        if scenario.startswith("stalled"):
            # Far more than the (shrunk) socket buffers hold.
            big = chunks(40, 32768) + [65536] * 16
            client, server = (big, []) if scenario == "stalled_server" else ([], big)
        elif scenario == "truncate":
            client, server = [], chunks(rng.randint(1, 6), 40000)
        else:
            client = chunks(rng.randint(0, 6), 40000)
            server = chunks(rng.randint(0, 6), 40000)
            if scenario.startswith("echo"):
                server = []
        abort_after = 0
        if scenario.endswith("_abort"):
            # The aborting side aborts after some of its chunks, maybe none.
            own = server if scenario == "server_abort" else client
            abort_after = rng.randint(0, len(own))
        plans.append(
            Plan(
                number=number,
                scenario=scenario,
                seed=rng.getrandbits(32),
                tls12=rng.random() < 0.3,
                client_chunks=client,
                server_chunks=server,
                abort_after=abort_after,
            )
        )
    return plans


@implementer(IHalfCloseableProtocol, IHandshakeListener)
class End(Protocol):
    """One side of a planned connection: writes its chunks, one per reactor
    turn, and records what it received and how it ended."""

    side = "?"
    #: The stalled scenario in which this side writes, then closes.
    closes_when_peer = "?"

    def __init__(self, test: SoakTests, plan: Plan | None = None) -> None:
        self.test = test
        self.plan = plan
        self.received = bytearray()
        self.reason: Failure | None = None
        self.aborted = False
        self._to_send: list[bytes] = []
        self._sent = 0

    # -- common ------------------------------------------------------------

    def start_writing(self) -> None:
        assert self.plan is not None
        data = self.plan.stream(self.side)
        if self.side == "client":
            sizes = self.plan.client_chunks
        else:
            sizes = self.plan.server_chunks
        offset = 0
        for size in sizes:
            self._to_send.append(data[offset : offset + size])
            offset += size
        reactor.callLater(0, self._write_next)

    def _write_next(self) -> None:
        plan = self.plan
        assert plan is not None
        if self.reason is not None or self.aborted:
            return
        if self.aborts(plan) and self._sent == plan.abort_after:
            self.aborted = True
            self.transport.abortConnection()
            return
        if self._to_send:
            self.transport.write(self._to_send.pop(0))
            self._sent += 1
            reactor.callLater(0, self._write_next)
            return
        self.finished_writing()

    def aborts(self, plan: Plan) -> bool:
        return plan.scenario == f"{self.side}_abort" or (
            plan.scenario == "echo_abort" and self.side == "client"
        )

    def finished_writing(self) -> None:
        """All chunks written: what the scenario does next."""
        assert self.plan is not None
        scenario = self.plan.scenario
        if scenario == "halfclose":
            self.transport.loseWriteConnection()
        elif scenario == self.closes_when_peer:
            # The writer closes; the staller never reads its close_notify.
            self.transport.loseConnection()

    def dataReceived(self, data: bytes) -> None:
        self.received += data

    def readConnectionLost(self) -> None:
        pass

    def writeConnectionLost(self) -> None:
        pass

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self.reason = reason
        plan = self.plan
        if plan is None:
            plan = self.plan = self.test.find_plan(self)
        if plan is None:
            self.test.orphans.append((self.side, reason))
            return
        # The staller reads again once its peer is gone, to find the reset.
        other = plan.server if self.side == "client" else plan.client
        if (
            other is not None
            and other.reason is None
            and plan.scenario.startswith("stalled")
        ):
            other.transport.resumeProducing()
        ends = (plan.client, plan.server)
        finished = all(end is not None and end.reason is not None for end in ends)
        if finished and not plan.done.called:
            plan.done.callback(None)


class ClientEnd(End):
    side = "client"
    closes_when_peer = "stalled_server"

    def connectionMade(self) -> None:
        assert self.plan is not None
        self.test.by_port[self.transport.getHost().port] = self.plan
        self.plan.client = self
        if self.plan.scenario.startswith("stalled"):
            self.test.shrink_buffers(self.transport)

    def handshakeCompleted(self) -> None:
        assert self.plan is not None
        if self.plan.scenario == "stalled_client":
            self.transport.pauseProducing()
        self.start_writing()

    def dataReceived(self, data: bytes) -> None:
        super().dataReceived(data)
        plan = self.plan
        assert plan is not None
        if plan.scenario == "echo" and len(self.received) == sum(plan.client_chunks):
            self.transport.loseConnection()

    def finished_writing(self) -> None:
        assert self.plan is not None
        if self.plan.scenario == "echo" and not self.plan.client_chunks:
            self.transport.loseConnection()
            return
        super().finished_writing()


class ServerEnd(End):
    side = "server"
    closes_when_peer = "stalled_client"

    def handshakeCompleted(self) -> None:
        plan = self.plan = self.test.find_plan(self)
        assert plan is not None
        if plan.scenario.startswith("stalled"):
            self.test.shrink_buffers(self.transport)
        if plan.scenario == "stalled_server":
            self.transport.pauseProducing()
        elif plan.scenario.startswith("echo"):
            self.transport.registerProducer(self.transport, True)
            return
        self.start_writing()

    def dataReceived(self, data: bytes) -> None:
        super().dataReceived(data)
        if self.plan is not None and self.plan.scenario.startswith("echo"):
            self.transport.write(data)

    def readConnectionLost(self) -> None:
        super().readConnectionLost()
        if self.plan is not None and self.plan.scenario == "echo":
            # The client is done: so is the echo (close_notify in answer).
            self.transport.loseConnection()

    def finished_writing(self) -> None:
        assert self.plan is not None
        if self.plan.scenario == "truncate":
            # After this turn's TLS flush: the bytes under TLS, then a FIN.
            reactor.callLater(0, self.transport.transport.loseConnection)
            return
        super().finished_writing()


class SoakTests(TestCase):
    #: CI's budget for this module.  It takes about 5 s alone on a 2-core
    #: machine, and under 7 s with two more copies running beside it.
    timeout = 60

    def setUp(self) -> None:
        factory = CertificateFactory()
        leaf = factory.server("localhost")
        self.server_context = Context(credentials=[leaf.credential()])
        self.client13 = Context(trust_roots=factory.trust_roots)
        self.client12 = Context(trust_roots=factory.trust_roots, max_version="TLSv1.2")
        self.by_port: dict[int, Plan] = {}
        self.orphans: list[tuple[str, Failure]] = []
        self.stuck: list[str] = []

    def find_plan(self, server: End) -> Plan | None:
        """The plan of a server end: its client's, found by the client's
        port (the client registered it before its ClientHello went out)."""
        plan = self.by_port.get(server.transport.getPeer().port)
        if plan is not None:
            plan.server = server
        return plan

    def shrink_buffers(self, transport: TLSProtocol) -> None:
        """Small kernel buffers where a reader stalls, so that "stuck" comes
        after kilobytes instead of the megabytes loopback TCP can hold."""
        handle = transport.getHandle()
        handle.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16384)
        handle.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)

    @defer.inlineCallbacks
    def test_soak(self) -> Any:
        """
        CONNECTIONS connections, CONCURRENCY at a time, each a planned
        scenario; every one ends as its scenario says, with no data lost,
        and nothing is left behind.
        """
        plans = make_plans(random.Random(SEED))
        server_factory = TLSFactory(
            Factory.forProtocol(lambda: ServerEnd(self)),
            self.server_context,
            False,
            close_timeout=CLOSE_TIMEOUT,
        )
        port = reactor.listenTCP(0, server_factory, interface="127.0.0.1")
        address = port.getHost().port
        client_factories = []

        def connect(plan: Plan) -> defer.Deferred[None]:
            client = ClientFactory.forProtocol(lambda: ClientEnd(self, plan))
            factory = TLSFactory(
                client,
                self.client12 if plan.tls12 else self.client13,
                True,
                "localhost",
                close_timeout=CLOSE_TIMEOUT,
            )
            client_factories.append(factory)
            reactor.connectTCP("127.0.0.1", address, factory)
            watchdog = reactor.callLater(CONNECTION_DEADLINE, self._stuck, plan)

            def finished(result: None) -> None:
                if watchdog.active():
                    watchdog.cancel()

            plan.done.addCallback(finished)
            return plan.done

        try:
            queue = list(plans)
            running: list[defer.Deferred[None]] = []
            while queue or running:
                while queue and len(running) < CONCURRENCY:
                    running.append(connect(queue.pop(0)))
                yield defer.DeferredList(running, fireOnOneCallback=True)
                running = [d for d in running if not d.called]
        finally:
            yield port.stopListening()
        self.assertEqual(self.orphans, [])
        self.assertEqual(self.stuck, [])
        problems = [problem for plan in plans for problem in self.check(plan)]
        self.assertEqual(problems, [], f"{len(problems)} of {len(plans)} failed")
        # Nothing left behind: no connection, no TLS timer, no socket.
        self.assertEqual(server_factory.protocols, {})
        for factory in client_factories:
            self.assertEqual(factory.protocols, {})
        ours = [
            call
            for call in reactor.getDelayedCalls()
            if isinstance(getattr(call.func, "__self__", None), TLSProtocol)
        ]
        self.assertEqual(ours, [])
        sockets = [
            s
            for s in reactor.getReaders() + reactor.getWriters()
            if isinstance(s, tcp.Connection | tcp.Port)
        ]
        self.assertEqual(sockets, [])
        counts: dict[str, int] = {}
        for plan in plans:
            counts[plan.scenario] = counts.get(plan.scenario, 0) + 1
        # Every scenario ran (the seed could, in principle, skip one).
        self.assertEqual(set(counts), {name for name, _ in SCENARIOS})

    def _stuck(self, plan: Plan) -> None:
        if plan.done.called:
            return
        states = {
            side: None if end is None else (end.reason, len(end.received))
            for side, end in (("client", plan.client), ("server", plan.server))
        }
        self.stuck.append(f"{plan} did not finish: {states}")
        for end in (plan.client, plan.server):
            if end is not None and end.reason is None:
                end.transport.abortConnection()
        if not plan.done.called:
            plan.done.callback(None)

    def check(self, plan: Plan) -> list[str]:
        """What is wrong with how ``plan``'s connection ended (nothing, we hope)."""
        client, server = plan.client, plan.server
        if client is None or server is None or None in (client.reason, server.reason):
            return [f"{plan} unfinished"]
        creason, sreason = client.reason, server.reason
        assert creason is not None and sreason is not None
        client_stream = plan.stream("client")
        server_stream = plan.stream("server")
        scenario = plan.scenario
        problems: list[tuple[str, bool]] = []
        if scenario in ("halfclose", "echo"):
            expected = client_stream if scenario == "echo" else server_stream
            problems += [
                ("client reason", bool(creason.check(ConnectionDone))),
                ("server reason", bool(sreason.check(ConnectionDone))),
                ("server data", bytes(server.received) == client_stream),
                ("client data", bytes(client.received) == expected),
            ]
        elif scenario in ("client_abort", "server_abort", "echo_abort"):
            if scenario == "server_abort":
                aborter, other, sent = server, client, server_stream
            else:
                aborter, other, sent = client, server, client_stream
            assert aborter.reason is not None and other.reason is not None
            problems += [
                ("aborter reason", bool(aborter.reason.check(ConnectionAborted))),
                ("peer reason", bool(other.reason.check(ConnectionLost))),
                ("peer not clean", not other.reason.check(ConnectionDone)),
                ("peer data prefix", sent.startswith(bytes(other.received))),
            ]
        elif scenario in ("stalled_server", "stalled_client"):
            if scenario == "stalled_server":
                closer, staller, sent = client, server, client_stream
            else:
                closer, staller, sent = server, client, server_stream
            assert closer.reason is not None and staller.reason is not None
            problems += [
                ("closer reason", bool(closer.reason.check(CloseTimeoutError))),
                ("staller reason", bool(staller.reason.check(ConnectionLost))),
                ("staller data prefix", sent.startswith(bytes(staller.received))),
                ("staller data short", len(staller.received) < len(sent)),
            ]
        elif scenario == "truncate":
            problems += [
                ("client reason", bool(creason.check(TLSTruncationError))),
                ("server reason", bool(sreason.check(TLSTruncationError))),
                ("client data", bytes(client.received) == server_stream),
            ]
        else:  # pragma: no cover - a new scenario without its check
            problems.append(("a check for this scenario", False))
        return [
            f"{plan}: {name} (client {creason.value!r} got {len(client.received)}, "
            f"server {sreason.value!r} got {len(server.received)})"
            for name, ok in problems
            if not ok
        ]
