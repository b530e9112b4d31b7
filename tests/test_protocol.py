"""TLSProtocol, TLSFactory and start_tls over in-memory transports and real TCP.

Two in-memory harnesses:

* Twisted's own ``iosim`` (``connectedServerAndClient``, ``IOPump``) for
  the ordinary paths, exactly as Twisted tests its protocols;
* :class:`SimNetwork`, a small model of a TCP connection for what ``iosim``
  cannot show: half-close (FIN), paused reads that leave data in the
  "kernel", bounded windows that make back-pressure real, and the reset a
  socket sends when it is closed with unread input, which destroys whatever
  the peer had not read yet.

Every timer runs on a ``task.Clock``.  The Twisted bugs that issue 4 names
each have a test below, named after the bug.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from typing import Any

from cryptography import x509
from twisted.internet import defer, error, reactor
from twisted.internet.address import IPv4Address
from twisted.internet.interfaces import (
    IConsumer,
    IHalfCloseableDescriptor,
    IHalfCloseableProtocol,
    IHandshakeListener,
    INegotiated,
    IProtocolNegotiationFactory,
    IPushProducer,
    ISSLTransport,
    ITCPTransport,
    ITransport,
)
from twisted.internet.protocol import ClientFactory, Factory, Protocol
from twisted.internet.task import Clock, deferLater
from twisted.protocols.basic import FileSender, LineReceiver
from twisted.python.failure import Failure
from twisted.test import iosim
from twisted.trial.unittest import SynchronousTestCase, TestCase
from zope.interface import implementer, implementer_only
from zope.interface.verify import verifyObject

from tests.certs import CertificateFactory
from twisted_sslfile.constants import AlertDescription, ProtocolVersion
from twisted_sslfile.context import Context
from twisted_sslfile.engine.events import HandshakeCompleted
from twisted_sslfile.errors import CertificateError, RemoteAlertError, TLSError
from twisted_sslfile.protocol import (
    DEFAULT_CLOSE_TIMEOUT,
    DEFAULT_DRAIN_TIMEOUT,
    DEFAULT_HANDSHAKE_TIMEOUT,
    CloseTimeoutError,
    HandshakeTimeoutError,
    TLSFactory,
    TLSProtocol,
    TLSTruncationError,
    start_tls,
)

# -- a shared test PKI -------------------------------------------------------

_PKI: dict[str, Any] = {}


def pki() -> dict[str, Any]:
    """One PKI for the module: contexts are immutable and may be shared."""
    if not _PKI:
        factory = CertificateFactory()
        leaf = factory.server("example.com")
        other = CertificateFactory(name="Other")
        _PKI.update(
            factory=factory,
            leaf=leaf,
            server=Context(credentials=[leaf.credential()]),
            client=Context(trust_roots=factory.trust_roots),
            wrong_client=Context(trust_roots=other.trust_roots),
        )
    return _PKI


def records(data: bytes) -> list[tuple[int, int]]:
    """(content type, length) of each TLS record in ``data`` (tests may parse)."""
    out = []
    i = 0
    while i + 5 <= len(data):
        length = int.from_bytes(data[i + 3 : i + 5], "big")
        out.append((data[i], length))
        i += 5 + length
    return out


# -- application protocols that record what happens to them -----------------


@implementer(IHandshakeListener)
class Recorder(Protocol):
    """Keeps everything the TLS transport tells the application."""

    def __init__(self) -> None:
        self.made = 0
        self.data = bytearray()
        self.chunks: list[bytes] = []
        self.handshakes = 0
        self.lost: Failure | None = None
        self.lost_count = 0
        self.on_made: Callable[[Recorder], None] | None = None
        self.on_data: Callable[[Recorder, bytes], None] | None = None
        self.on_handshake: Callable[[Recorder], None] | None = None

    def connectionMade(self) -> None:
        self.made += 1
        if self.on_made is not None:
            self.on_made(self)

    def dataReceived(self, data: bytes) -> None:
        self.data += data
        self.chunks.append(data)
        if self.on_data is not None:
            self.on_data(self, data)

    def handshakeCompleted(self) -> None:
        self.handshakes += 1
        if self.on_handshake is not None:
            self.on_handshake(self)

    def connectionLost(self, reason: Failure = error.ConnectionDone) -> None:  # type: ignore[assignment]
        self.lost_count += 1
        self.lost = reason


class Echo(Recorder):
    def dataReceived(self, data: bytes) -> None:
        super().dataReceived(data)
        self.transport.write(data)


@implementer(IHalfCloseableProtocol)
class HalfCloser(Recorder):
    def __init__(self) -> None:
        super().__init__()
        self.read_lost = 0
        self.write_lost = 0
        self.on_read_lost: Callable[[HalfCloser], None] | None = None

    def readConnectionLost(self) -> None:
        self.read_lost += 1
        if self.on_read_lost is not None:
            self.on_read_lost(self)

    def writeConnectionLost(self) -> None:
        self.write_lost += 1


@implementer(IPushProducer)
class PushProducer:
    """Writes ``chunk`` every reactor turn while resumed (like a file reader)."""

    def __init__(self, consumer: Any, clock: Clock, chunk: bytes, total: int) -> None:
        self.consumer = consumer
        self.clock = clock
        self.chunk = chunk
        self.remaining = total
        self.paused = False
        self.stopped = False
        self.pauses = 0
        self.resumes = 0
        self._call: Any = None

    def start(self) -> None:
        self.consumer.registerProducer(self, True)
        self._schedule()

    def _schedule(self) -> None:
        if self._call is None and not self.paused and not self.stopped:
            self._call = self.clock.callLater(0, self._produce)

    def _produce(self) -> None:
        self._call = None
        if self.paused or self.stopped or self.remaining <= 0:
            return
        data = self.chunk[: self.remaining]
        self.remaining -= len(data)
        self.consumer.write(data)
        if self.remaining <= 0:
            self.consumer.unregisterProducer()
            return
        self._schedule()

    def pauseProducing(self) -> None:
        self.pauses += 1
        self.paused = True

    def resumeProducing(self) -> None:
        self.resumes += 1
        self.paused = False
        self._schedule()

    def stopProducing(self) -> None:
        self.stopped = True


# -- a model of a TCP connection --------------------------------------------


@implementer(ITCPTransport, IHalfCloseableDescriptor, IConsumer, IPushProducer)
class SimSocket:
    """One end of a :class:`SimNetwork` connection, behaving like Twisted's TCP.

    ``outbound`` is our send buffer, ``inbound`` the kernel receive buffer
    not yet read by the protocol.  Closing with unread ``inbound`` sends a
    reset, which discards the peer's unread ``inbound`` - as Linux does.
    """

    def __init__(self, network: SimNetwork, name: str) -> None:
        self.network = network
        self.name = name
        self.protocol: Any = None
        self.peer: SimSocket = self
        self.outbound = bytearray()
        self.inbound = bytearray()
        self.sent = bytearray()  # everything ever written, for inspection
        self.write_calls: list[bytes] = []
        self.sequence_calls: list[list[bytes]] = []
        self.eof_pending = False
        self.eof_delivered = False
        self.reading_paused = False
        self.pause_calls = 0
        self.write_shut_requested = False
        self.write_shut = False
        self.closing = False
        self.closed = False
        self.aborted = False
        self.reset_received = False
        self.connected = True
        self.disconnecting = False
        self.producer: Any = None
        self.streaming = False
        self.producer_paused = False
        self.no_delay = False
        self.keep_alive = False

    def __repr__(self) -> str:
        return f"<SimSocket {self.name}>"

    # ITransport
    def write(self, data: bytes) -> None:
        if not isinstance(data, bytes):
            raise TypeError("data must be bytes")
        self.write_calls.append(data)
        self._write(data)

    def writeSequence(self, iovec: list[bytes]) -> None:
        self.sequence_calls.append(list(iovec))
        for data in iovec:
            if not isinstance(data, bytes):
                raise TypeError("data must be bytes")
            self._write(data)

    def _write(self, data: bytes) -> None:
        if self.closed or self.write_shut_requested or self.closing or self.aborted:
            return
        self.outbound += data
        self.sent += data
        if (
            self.producer is not None
            and self.streaming
            and not self.producer_paused
            and len(self.outbound) > self.network.buffer_limit
        ):
            self.producer_paused = True
            self.producer.pauseProducing()

    def loseConnection(self) -> None:
        if self.closed or self.closing:
            return
        self.disconnecting = True
        if self.write_shut:
            # Twisted's TCP closes at once when the write side is shut.
            self.finish(error.ConnectionDone(), reset=bool(self.inbound))
        else:
            self.closing = True

    def abortConnection(self) -> None:
        if self.closed:
            return
        self.aborted = True
        self.disconnecting = True
        self.outbound.clear()

    def loseWriteConnection(self) -> None:
        self.write_shut_requested = True

    def getPeer(self) -> IPv4Address:
        return IPv4Address("TCP", "127.0.0.1", 2 if self.name == "client" else 1)

    def getHost(self) -> IPv4Address:
        return IPv4Address("TCP", "127.0.0.1", 1 if self.name == "client" else 2)

    def getTcpNoDelay(self) -> bool:
        return self.no_delay

    def setTcpNoDelay(self, enabled: bool) -> None:
        self.no_delay = enabled

    def getTcpKeepAlive(self) -> bool:
        return self.keep_alive

    def setTcpKeepAlive(self, enabled: bool) -> None:
        self.keep_alive = enabled

    # IPushProducer (reading)
    def pauseProducing(self) -> None:
        self.pause_calls += 1
        self.reading_paused = True

    def resumeProducing(self) -> None:
        self.reading_paused = False

    def stopProducing(self) -> None:
        self.loseConnection()

    # IConsumer
    def registerProducer(self, producer: Any, streaming: bool) -> None:
        if self.producer is not None:
            raise RuntimeError("producer already registered")
        if self.closed:
            producer.stopProducing()
            return
        self.producer = producer
        self.streaming = streaming
        self.producer_paused = False
        if not streaming:
            producer.resumeProducing()

    def unregisterProducer(self) -> None:
        self.producer = None

    # the network's side
    def finish(self, reason: Exception, reset: bool) -> None:
        """Close this end; with ``reset`` the peer loses what it had not read."""
        if self.closed:
            return
        self.closed = True
        self.connected = False
        self.disconnecting = True
        peer = self.peer
        if reset and not peer.closed:
            peer.reset_received = True
            peer.inbound.clear()
            peer.finish(error.ConnectionLost("connection reset by peer"), reset=False)
        elif not peer.closed:
            peer.eof_pending = True
        if self.producer is not None:
            producer, self.producer = self.producer, None
            producer.stopProducing()
        self.protocol.connectionLost(Failure(reason))


@implementer_only(ITransport, IConsumer, IPushProducer)
class PlainSimSocket(SimSocket):
    """A transport that cannot half-close (like a pipe-only ITransport)."""


class SimNetwork:
    """Moves bytes between two :class:`SimSocket` ends, one step at a time.

    ``window`` bounds what a receiver's kernel buffers, so a peer that does
    not read stalls the sender - and fills its send buffer, which pauses a
    streaming producer beyond ``buffer_limit``.
    """

    def __init__(
        self,
        clock: Clock,
        *,
        half_close: bool = True,
        window: int = 256 * 1024,
        buffer_limit: int = 64 * 1024,
        read_size: int | None = None,
    ) -> None:
        self.clock = clock
        self.window = window
        self.buffer_limit = buffer_limit
        self.read_size = read_size
        kind = SimSocket if half_close else PlainSimSocket
        self.client = kind(self, "client")
        self.server = kind(self, "server")
        self.client.peer = self.server
        self.server.peer = self.client

    def connect(self, client: Any, server: Any) -> None:
        self.client.protocol = client
        self.server.protocol = server
        server.makeConnection(self.server)
        client.makeConnection(self.client)

    def tick(self, advance_clock: bool = True) -> bool:
        if advance_clock:
            self.clock.advance(0)
        moved = False
        ends = (self.client, self.server)
        for end in ends:  # transmission
            peer = end.peer
            if end.outbound and not end.closed:
                if peer.closed:
                    # Data to a closed socket draws a reset.
                    end.outbound.clear()
                    end.reset_received = True
                    end.inbound.clear()
                    end.finish(error.ConnectionLost("connection reset"), reset=False)
                    moved = True
                    continue
                room = self.window - len(peer.inbound)
                if room > 0:
                    peer.inbound += end.outbound[:room]
                    del end.outbound[:room]
                    moved = True
            if end.producer is not None and not end.closed and not end.outbound:
                if not end.streaming:
                    end.producer.resumeProducing()
                elif end.producer_paused:
                    end.producer_paused = False
                    end.producer.resumeProducing()
            if (
                end.write_shut_requested
                and not end.write_shut
                and not end.outbound
                and not end.closed
            ):
                end.write_shut = True
                peer.eof_pending = True
                moved = True
                if IHalfCloseableProtocol.providedBy(end.protocol):
                    end.protocol.writeConnectionLost()
        for end in ends:  # closes
            if end.closed:
                continue
            if end.aborted:
                end.finish(error.ConnectionAborted(), reset=True)
                moved = True
            elif end.closing and not end.outbound:
                end.finish(error.ConnectionDone(), reset=bool(end.inbound))
                moved = True
        for end in ends:  # reads
            if end.closed or end.closing or end.aborted or end.reading_paused:
                continue
            if end.inbound:
                size = self.read_size or len(end.inbound)
                data = bytes(end.inbound[:size])
                del end.inbound[:size]
                end.protocol.dataReceived(data)
                moved = True
            elif end.eof_pending and not end.eof_delivered:
                end.eof_delivered = True
                moved = True
                if IHalfCloseableProtocol.providedBy(end.protocol):
                    end.protocol.readConnectionLost()
                else:
                    end.finish(error.ConnectionDone(), reset=False)
        return moved

    def flush(self, limit: int = 20000) -> None:
        for _ in range(limit):
            if not self.tick():
                return
        raise AssertionError("the network never went quiet")

    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)
        self.flush()


# -- shared set-up ----------------------------------------------------------


class TLSTestMixin:
    """Builds TLS pairs over SimNetwork or iosim, all on one Clock."""

    def setUp(self) -> None:
        self.pki = pki()
        self.clock = Clock()

    def protocols(
        self,
        client_app: Any,
        server_app: Any,
        client_kwargs: dict | None = None,
        server_kwargs: dict | None = None,
    ) -> tuple[TLSProtocol, TLSProtocol]:
        client_kwargs = dict(client_kwargs or {})
        server_kwargs = dict(server_kwargs or {})
        client_context = client_kwargs.pop("context", self.pki["client"])
        server_context = server_kwargs.pop("context", self.pki["server"])
        client = TLSProtocol(
            None,
            client_app,
            context=client_context,
            is_client=True,
            server_name=client_kwargs.pop("server_name", "example.com"),
            clock=self.clock,
            **client_kwargs,
        )
        server = TLSProtocol(
            None,
            server_app,
            context=server_context,
            is_client=False,
            clock=self.clock,
            **server_kwargs,
        )
        return client, server

    def pair(
        self,
        client_app: Any = None,
        server_app: Any = None,
        *,
        flush: bool = True,
        client_kwargs: dict | None = None,
        server_kwargs: dict | None = None,
        **network_kwargs: Any,
    ) -> tuple[TLSProtocol, TLSProtocol, SimNetwork]:
        client, server = self.protocols(
            client_app if client_app is not None else Recorder(),
            server_app if server_app is not None else Recorder(),
            client_kwargs,
            server_kwargs,
        )
        network = SimNetwork(self.clock, **network_kwargs)
        network.connect(client, server)
        if flush:
            network.flush()
        return client, server, network

    def assertDone(self, app: Recorder) -> None:
        assert isinstance(self, SynchronousTestCase)
        self.assertIsNotNone(app.lost, "connectionLost was not called")
        assert app.lost is not None
        self.assertTrue(
            app.lost.check(error.ConnectionDone), f"not a clean close: {app.lost!r}"
        )
        self.assertEqual(app.lost_count, 1)


# -- iosim: Twisted's own harness -------------------------------------------


@implementer(IProtocolNegotiationFactory)
class NegotiatingFactory(Factory):
    def __init__(self, protocol: type, protocols: list[bytes]) -> None:
        self.protocol = protocol
        self.protocols = protocols
        self.asked = 0

    def acceptableProtocols(self) -> list[bytes]:
        self.asked += 1
        return self.protocols


class IOSimTests(TLSTestMixin, SynchronousTestCase):
    """Round trips through ``iosim.connectedServerAndClient`` and ``IOPump``."""

    def connect(
        self,
        client_factory: Any,
        server_factory: Any,
        **kwargs: Any,
    ) -> tuple[TLSProtocol, TLSProtocol, iosim.IOPump]:
        client_context = kwargs.pop("client_context", self.pki["client"])
        server_context = kwargs.pop("server_context", self.pki["server"])
        session = kwargs.pop("session", None)
        server_tls = TLSFactory(
            server_factory, server_context, False, clock=self.clock, **kwargs
        )
        client_tls = TLSFactory(
            client_factory,
            client_context,
            True,
            "example.com",
            clock=self.clock,
            session=session,
            **kwargs,
        )
        client, server, pump = iosim.connectedServerAndClient(
            lambda: server_tls.buildProtocol(None),
            lambda: client_tls.buildProtocol(None),
            clock=self.clock,
        )
        return client, server, pump

    def test_round_trip(self) -> None:
        """
        Application bytes go both ways through TLS 1.3; the handshake is
        reported once to IHandshakeListener and through whenHandshakeDone.
        """
        client, server, pump = self.connect(
            Factory.forProtocol(Recorder), Factory.forProtocol(Echo)
        )
        self.assertEqual(client.wrappedProtocol.handshakes, 1)
        self.assertEqual(server.wrappedProtocol.handshakes, 1)
        results: list[HandshakeCompleted] = []
        client.whenHandshakeDone().addCallback(results.append)
        [result] = results
        self.assertEqual(result.version, ProtocolVersion.TLS_1_3)
        self.assertIs(client.handshakeResult, result)
        client.write(b"hello, ")
        client.writeSequence([b"TLS ", b"world"])
        pump.flush()
        self.assertEqual(bytes(client.wrappedProtocol.data), b"hello, TLS world")
        self.assertEqual(server.wrappedProtocol.handshakes, 1)
        self.assertIsNone(client.negotiatedProtocol)
        self.assertIs(client.wrappedProtocol.transport, client)

    def test_tls12_with_npn(self) -> None:
        """
        TLS 1.2 through the adapter; without ALPN, negotiatedProtocol is the
        NPN result on both sides (the client's choice from the server's list).
        """
        server_context = self.pki["server"].replace(
            npn_protocols=[b"spdy/3", b"http/1.1"]
        )
        client_context = self.pki["client"].replace(
            max_version=ProtocolVersion.TLS_1_2, npn_protocols=[b"http/1.1"]
        )
        client, server, pump = self.connect(
            Factory.forProtocol(Recorder),
            Factory.forProtocol(Echo),
            client_context=client_context,
            server_context=server_context,
        )
        self.assertEqual(client.handshakeResult.version, ProtocolVersion.TLS_1_2)
        self.assertEqual(client.negotiatedProtocol, b"http/1.1")
        self.assertEqual(server.negotiatedProtocol, b"http/1.1")
        client.write(b"over TLS 1.2")
        pump.flush()
        self.assertEqual(bytes(client.wrappedProtocol.data), b"over TLS 1.2")

    def test_session_resumption(self) -> None:
        """
        TLSProtocol.session (a TLS 1.3 ticket, read once data has flowed)
        handed to TLSFactory(session=...) resumes on the next connection.
        """
        client, _server, pump = self.connect(
            Factory.forProtocol(Recorder), Factory.forProtocol(Echo)
        )
        client.write(b"first")
        pump.flush()
        session = client.session
        self.assertIsNotNone(session)
        self.assertFalse(client.handshakeResult.resumed)
        again, _, pump = self.connect(
            Factory.forProtocol(Recorder), Factory.forProtocol(Echo), session=session
        )
        self.assertTrue(again.handshakeResult.resumed)
        again.write(b"second")
        pump.flush()
        self.assertEqual(bytes(again.wrappedProtocol.data), b"second")

    def test_alpn_from_acceptable_protocols(self) -> None:
        """
        IProtocolNegotiationFactory.acceptableProtocols() of each wrapped
        factory is the ALPN list; the server's preference wins.
        """
        server_factory = NegotiatingFactory(Recorder, [b"h2", b"http/1.1"])
        client_factory = NegotiatingFactory(Recorder, [b"http/1.1", b"h2"])
        client, server, _pump = self.connect(client_factory, server_factory)
        self.assertEqual(client.negotiatedProtocol, b"h2")
        self.assertEqual(server.negotiatedProtocol, b"h2")
        self.assertEqual(client.handshakeResult.alpn_protocol, b"h2")

    def test_alpn_context_is_cached(self) -> None:
        """
        The derived Context is made once per protocol list, not per
        connection, and follows a change of the factory's base context.
        """
        negotiating = NegotiatingFactory(Recorder, [b"h2"])
        factory = TLSFactory(negotiating, self.pki["server"], False, clock=self.clock)
        first = factory.context_for_connection()
        self.assertEqual(first.alpn_protocols, (b"h2",))
        self.assertIs(factory.context_for_connection(), first)
        factory.context = self.pki["server"].replace(min_version="TLSv1.3")
        second = factory.context_for_connection()
        self.assertIsNot(second, first)
        self.assertEqual(second.min_version, ProtocolVersion.TLS_1_3)
        plain = TLSFactory(Factory.forProtocol(Recorder), self.pki["server"], False)
        self.assertIs(plain.context_for_connection(), self.pki["server"])

    def test_alpn_no_overlap_fails(self) -> None:
        """
        No common ALPN protocol is a handshake failure reported to both
        applications with the TLSError (no_application_protocol).
        """
        client, server, _pump = self.connect(
            NegotiatingFactory(Recorder, [b"spdy/1"]),
            NegotiatingFactory(Recorder, [b"h2"]),
        )
        lost = server.wrappedProtocol.lost
        self.assertIsNotNone(lost)
        self.assertTrue(lost.check(TLSError))
        self.assertEqual(lost.value.alert, AlertDescription.no_application_protocol)
        self.assertTrue(client.wrappedProtocol.lost.check(RemoteAlertError))
        self.assertEqual(client.wrappedProtocol.handshakes, 0)

    def test_peer_certificate(self) -> None:
        """
        getPeerCertificate() is the server's leaf as a cryptography
        certificate; getPeerCertificateChain() adds the intermediate.
        """
        client, server, _pump = self.connect(
            Factory.forProtocol(Recorder), Factory.forProtocol(Recorder)
        )
        leaf = self.pki["leaf"]
        certificate = client.getPeerCertificate()
        self.assertIsInstance(certificate, x509.Certificate)
        self.assertEqual(certificate, leaf.certificate)
        self.assertEqual(client.getPeerCertificateChain(), leaf.chain)
        self.assertIsNone(server.getPeerCertificate())
        self.assertEqual(server.getPeerCertificateChain(), [])

    def test_clean_close(self) -> None:
        """
        loseConnection: both applications see ConnectionDone exactly once.
        """
        client, server, pump = self.connect(
            Factory.forProtocol(Recorder), Factory.forProtocol(Recorder)
        )
        client.write(b"last words")
        client.loseConnection()
        pump.flush()
        self.assertEqual(bytes(server.wrappedProtocol.data), b"last words")
        self.assertDone(client.wrappedProtocol)
        self.assertDone(server.wrappedProtocol)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_untrusted_server(self) -> None:
        """
        A client that does not trust the server fails the handshake with
        CertificateError; the server learns the alert; no handshakeCompleted.
        """
        client, server, _pump = self.connect(
            Factory.forProtocol(Recorder),
            Factory.forProtocol(Recorder),
            client_context=self.pki["wrong_client"],
        )
        failures: list[Failure] = []
        client.whenHandshakeDone().addErrback(failures.append)
        [failure] = failures
        self.assertTrue(failure.check(CertificateError))
        self.assertIs(client.wrappedProtocol.lost.value, failure.value)
        self.assertTrue(server.wrappedProtocol.lost.check(RemoteAlertError))
        self.assertEqual(client.wrappedProtocol.handshakes, 0)
        self.assertEqual(server.wrappedProtocol.handshakes, 0)


class IOSimRuleTests(TLSTestMixin, SynchronousTestCase):
    """More rules where iosim's FakeTransport is enough to show them."""

    def connect(
        self, client_app: Any, server_app: Any, greet: bool = True, **kwargs: Any
    ) -> tuple[TLSProtocol, TLSProtocol, iosim.IOPump]:
        client, server = self.protocols(client_app, server_app, **kwargs)
        pump = iosim.connect(
            server,
            iosim.makeFakeServer(server),
            client,
            iosim.makeFakeClient(client),
            greet=greet,
            clock=self.clock,
        )
        return client, server, pump

    def test_handshake_timeout(self) -> None:
        """
        A client whose bytes never arrive: the server's handshake timer
        aborts the FakeTransport after 30 s.
        """
        server_app = Recorder()
        server = self.protocols(Recorder(), server_app)[1]
        transport = iosim.makeFakeServer(server)
        server.makeConnection(transport)
        self.clock.advance(DEFAULT_HANDSHAKE_TIMEOUT)
        self.assertTrue(transport.disconnecting)
        transport.reportDisconnect()
        self.assertTrue(server_app.lost.check(HandshakeTimeoutError))

    def test_coalescing(self) -> None:
        """
        Fifty writes in one turn reach the FakeTransport as one write.
        """
        client, server, pump = self.connect(Recorder(), Recorder())
        transport = client.transport
        for i in range(50):
            client.write(b"%02d" % i)
        self.assertEqual(transport.stream, [])
        self.clock.advance(0)
        self.assertEqual(len(transport.stream), 1)
        pump.flush()
        self.assertEqual(
            bytes(server.wrappedProtocol.data), b"".join(b"%02d" % i for i in range(50))
        )

    def test_pull_producer(self) -> None:
        """
        FileSender, a pull producer, driven by IOPump's producer polling.
        """
        client, server, pump = self.connect(Recorder(), Recorder())
        payload = os.urandom(300_000)
        done = FileSender().beginFileTransfer(io.BytesIO(payload), client)
        finished: list[object] = []
        done.addCallback(finished.append)
        pump.flush()
        self.assertEqual(len(finished), 1)
        self.assertEqual(bytes(server.wrappedProtocol.data), payload)

    def test_lose_connection_with_producer(self) -> None:
        """
        twisted#8992 over iosim: a registered push producer does not hold
        up loseConnection.
        """
        client, server, pump = self.connect(Recorder(), Recorder())
        producer = PushProducer(client, self.clock, b"x", 1)
        client.registerProducer(producer, True)
        client.loseConnection()
        pump.flush()
        self.assertTrue(producer.stopped)
        self.assertDone(client.wrappedProtocol)
        self.assertDone(server.wrappedProtocol)

    def test_lose_connection_peer_silent(self) -> None:
        """
        twisted#7926 over iosim: the peer's TLS layer is gone (its transport
        swallows everything); loseConnection still ends after close_timeout
        (aborted: iosim's transport cannot half-close, so nothing shows that
        everything was written).
        """
        client, server, pump = self.connect(Recorder(), Recorder())
        server.transport.protocol = Protocol()  # bytes to the server vanish
        client.loseConnection()
        pump.flush()
        self.assertIsNone(client.wrappedProtocol.lost)
        self.clock.advance(DEFAULT_CLOSE_TIMEOUT)
        pump.flush()
        self.assertTrue(client.wrappedProtocol.lost.check(CloseTimeoutError))


# -- the handshake ----------------------------------------------------------


class HandshakeTests(TLSTestMixin, SynchronousTestCase):
    def test_writes_before_handshake_are_queued(self) -> None:
        """
        Writes made in connectionMade wait for the handshake and then go out
        in one record, not one per write.
        """
        client_app = Recorder()
        client_app.on_made = lambda app: [
            app.transport.write(b"x" * 10) for _ in range(5)
        ]
        _client, server, network = self.pair(client_app, flush=False)
        handshake_bytes = bytes(network.client.sent)
        self.assertEqual({kind for kind, _ in records(handshake_bytes)}, {22})
        network.flush()
        self.assertEqual(bytes(server.wrappedProtocol.data), b"x" * 50)

    def test_handshake_deferred(self) -> None:
        """
        whenHandshakeDone() before and after completion fires with the same
        HandshakeCompleted event.
        """
        client, _server, network = self.pair(flush=False)
        early = client.whenHandshakeDone()
        network.flush()
        results: list[HandshakeCompleted] = []
        early.addCallback(results.append)
        client.whenHandshakeDone().addCallback(results.append)
        self.assertEqual(len(results), 2)
        self.assertIs(results[0], results[1])
        self.assertIsInstance(results[0], HandshakeCompleted)

    def test_handshake_listener_exactly_once(self) -> None:
        """
        handshakeCompleted() fires once, even after KeyUpdates both ways.
        """
        client, server, network = self.pair(Recorder(), Echo())
        client.keyUpdate()
        client.write(b"ping")
        network.flush()
        server.keyUpdate(requestPeer=False)
        server.write(b"pong")
        network.flush()
        self.assertEqual(client.wrappedProtocol.handshakes, 1)
        self.assertEqual(server.wrappedProtocol.handshakes, 1)
        self.assertEqual(bytes(client.wrappedProtocol.data), b"pingpong")
        self.assertEqual(bytes(server.wrappedProtocol.data), b"ping")

    def test_handshake_timeout_default(self) -> None:
        """
        A peer that never speaks is dropped after the default 30 s with
        HandshakeTimeoutError, and the handshake Deferred fails with it.
        """
        self.assertEqual(DEFAULT_HANDSHAKE_TIMEOUT, 30.0)
        server_app = Recorder()
        _, server = self.protocols(Recorder(), server_app)
        network = SimNetwork(self.clock)
        network.connect(Protocol(), server)  # a silent client
        failures: list[Failure] = []
        server.whenHandshakeDone().addErrback(failures.append)
        network.advance(29.9)
        self.assertIsNone(server_app.lost)
        network.advance(0.2)
        self.assertTrue(network.server.aborted)
        self.assertTrue(server_app.lost.check(HandshakeTimeoutError))
        self.assertIn("30", str(server_app.lost.value))
        self.assertEqual(len(failures), 1)
        self.assertTrue(failures[0].check(HandshakeTimeoutError))

    def test_handshake_timeout_configurable(self) -> None:
        """
        handshake_timeout=5 aborts after 5 s; None disables the timer.
        """
        server_app = Recorder()
        _, server = self.protocols(
            Recorder(), server_app, server_kwargs={"handshake_timeout": 5}
        )
        network = SimNetwork(self.clock)
        network.connect(Protocol(), server)
        network.advance(5)
        self.assertTrue(server_app.lost.check(HandshakeTimeoutError))

        self.clock = Clock()
        _, server = self.protocols(
            Recorder(), Recorder(), server_kwargs={"handshake_timeout": None}
        )
        network = SimNetwork(self.clock)
        network.connect(Protocol(), server)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_handshake_timer_cancelled(self) -> None:
        """
        Once the handshake is done no timer is left behind.
        """
        self.pair()
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_timeout_validation(self) -> None:
        for bad in (0, -1, "5", True):
            self.assertRaises(
                ValueError,
                TLSFactory,
                Factory.forProtocol(Recorder),
                self.pki["server"],
                False,
                handshake_timeout=bad,
            )
        self.assertRaises(
            ValueError,
            TLSFactory,
            Factory.forProtocol(Recorder),
            self.pki["server"],
            False,
            drain_timeout=None,
        )

    def test_factory_validation(self) -> None:
        """
        A verifying client without server_name, or a server with one, is a
        configuration error raised by the factory, not a failed connection.
        """
        factory = Factory.forProtocol(Recorder)
        self.assertRaises(ValueError, TLSFactory, factory, self.pki["client"], True)
        self.assertRaises(
            ValueError, TLSFactory, factory, self.pki["server"], False, "example.com"
        )

    def test_factory_refuses(self) -> None:
        """
        A wrapped factory returning None refuses the connection.
        """

        class Refusing(Factory):
            def buildProtocol(self, addr: object) -> None:
                return None

        factory = TLSFactory(Refusing(), self.pki["server"], False)
        self.assertIsNone(factory.buildProtocol(None))

    def test_factory_tracks_protocols(self) -> None:
        """
        Like WrappingFactory, the factory knows its live protocols.
        """
        server_factory = TLSFactory(
            Factory.forProtocol(Recorder), self.pki["server"], False, clock=self.clock
        )
        client_factory = TLSFactory(
            Factory.forProtocol(Recorder),
            self.pki["client"],
            True,
            "example.com",
            clock=self.clock,
        )
        client = client_factory.buildProtocol(None)
        server = server_factory.buildProtocol(None)
        network = SimNetwork(self.clock)
        network.connect(client, server)
        network.flush()
        self.assertEqual(list(server_factory.protocols), [server])
        client.loseConnection()
        network.flush()
        self.assertEqual(server_factory.protocols, {})
        self.assertEqual(client_factory.protocols, {})

    def test_failed_handshake_reason_carries_alert(self) -> None:
        """
        The TLSError reaches connectionLost with its alert; the failing side
        sends the alert before closing.
        """
        client_app = Recorder()
        _client, server, _network = self.pair(
            client_app, client_kwargs={"context": self.pki["wrong_client"]}
        )
        self.assertTrue(client_app.lost.check(CertificateError))
        self.assertEqual(client_app.lost.value.alert, AlertDescription.unknown_ca)
        self.assertEqual(
            server.wrappedProtocol.lost.value.alert, AlertDescription.unknown_ca
        )


# -- writes -----------------------------------------------------------------


class WriteTests(TLSTestMixin, SynchronousTestCase):
    def test_small_writes_coalesced(self) -> None:
        """
        A hundred small writes in one reactor turn leave as one record in
        one transport write.
        """
        client, server, network = self.pair()
        network.client.write_calls.clear()
        network.client.sequence_calls.clear()
        for _ in range(100):
            client.write(b"0123456789")
        self.assertEqual(network.client.write_calls, [])  # not yet: same turn
        self.clock.advance(0)
        self.assertEqual(len(network.client.write_calls), 1)
        self.assertEqual(len(records(network.client.write_calls[0])), 1)
        network.flush()
        self.assertEqual(bytes(server.wrappedProtocol.data), b"0123456789" * 100)

    def test_large_write_full_records(self) -> None:
        """
        A large write goes out at once as full records through writeSequence;
        only the tail smaller than a record waits for the end of the turn.
        """
        client, server, network = self.pair()
        network.client.sequence_calls.clear()
        network.client.write_calls.clear()
        payload = os.urandom(100_000)
        client.write(payload)
        [sequence] = network.client.sequence_calls
        sizes = [length for _, data in enumerate(sequence) for length in [len(data)]]
        self.assertEqual(len(sequence), 100_000 // 16384)
        self.assertEqual(len(set(sizes)), 1)  # all full records
        self.assertEqual(records(b"".join(sequence))[0][1], 16384 + 17)
        self.clock.advance(0)
        [tail] = network.client.write_calls
        self.assertEqual(records(tail), [(23, 100_000 % 16384 + 17)])
        network.flush()
        self.assertEqual(bytes(server.wrappedProtocol.data), payload)

    def test_reply_flushed_at_end_of_data_received(self) -> None:
        """
        What the application writes while handling received data goes out
        at the end of dataReceived, without waiting for the next turn.
        """
        client, server, network = self.pair(Recorder(), Echo())
        client.write(b"ping")
        self.clock.advance(0)
        network.tick(advance_clock=False)  # delivers to the server only
        self.assertEqual(bytes(server.wrappedProtocol.data), b"ping")
        self.assertTrue(network.server.outbound, "the echo is not written yet")

    def test_reply_needs_no_timer(self) -> None:
        """
        A reply written inside dataReceived schedules no end-of-turn flush:
        the flush at the end of dataReceived sends it, so a request/response
        protocol pays no callLater and cancel per request.  A write from
        outside dataReceived still waits for the end of the turn.
        """
        client, server, network = self.pair(Recorder(), Echo())
        client.write(b"ping")
        self.clock.advance(0)
        scheduled: list[float] = []
        call_later = self.clock.callLater

        def counting_call_later(delay: float, *args: Any, **kwargs: Any) -> Any:
            scheduled.append(delay)
            return call_later(delay, *args, **kwargs)

        self.clock.callLater = counting_call_later  # type: ignore[method-assign]
        network.tick(advance_clock=False)  # delivers to the server only
        self.assertEqual(scheduled, [])
        self.assertTrue(network.server.outbound, "the echo was written")
        server.write(b"later")
        self.assertEqual(scheduled, [0])
        network.flush()
        self.assertEqual(bytes(client.wrappedProtocol.data), b"pinglater")

    def test_records_delivered_together(self) -> None:
        """
        Records that arrive together reach the application in one
        dataReceived call, not one call per 16 KiB record.
        """
        client_app = Recorder()
        _client, server, network = self.pair(client_app)
        payload = os.urandom(60_000)
        server.write(payload)
        network.flush()
        self.assertEqual(client_app.chunks, [payload])

    def test_write_requires_bytes(self) -> None:
        client, _server, _network = self.pair()
        self.assertRaises(TypeError, client.write, "text")
        self.assertRaises(TypeError, client.writeSequence, ["text"])

    def test_writes_after_close_are_dropped(self) -> None:
        client, server, network = self.pair()
        client.loseConnection()
        client.write(b"too late")
        network.flush()
        self.assertEqual(bytes(server.wrappedProtocol.data), b"")
        self.assertDone(server.wrappedProtocol)

    def test_fragmented_delivery(self) -> None:
        """
        A transport that hands over one byte at a time still works.
        """
        client, _server, network = self.pair(Recorder(), Echo(), read_size=1)
        client.write(b"byte by byte")
        network.flush()
        self.assertEqual(bytes(client.wrappedProtocol.data), b"byte by byte")

    def test_key_update(self) -> None:
        """
        keyUpdate() changes keys mid-stream without losing a byte; it is
        refused before the handshake and after close.
        """
        client, _server, network = self.pair(Recorder(), Echo(), flush=False)
        self.assertRaises(RuntimeError, client.keyUpdate)
        network.flush()
        for i in range(3):
            client.write(b"a%d" % i)
            client.keyUpdate()
        network.flush()
        self.assertEqual(bytes(client.wrappedProtocol.data), b"a0a1a2")
        client.loseWriteConnection()
        self.assertRaises(RuntimeError, client.keyUpdate)

    def test_export_keying_material(self) -> None:
        client, server, network = self.pair(flush=False)
        self.assertRaises(
            RuntimeError, client.exportKeyingMaterial, b"EXPORTER-test", b"", 32
        )
        network.flush()
        self.assertEqual(
            client.exportKeyingMaterial(b"EXPORTER-test", b"", 32),
            server.exportKeyingMaterial(b"EXPORTER-test", b"", 32),
        )


# -- closing ----------------------------------------------------------------


class CloseTests(TLSTestMixin, SynchronousTestCase):
    def test_lose_connection_close_notify_exchange(self) -> None:
        """
        loseConnection sends close_notify (and a FIN); the peer answers with
        its own and both close at once, with no timer left running.
        """
        client, server, network = self.pair()
        client.loseConnection()
        alert = records(bytes(network.client.outbound))
        self.assertEqual(alert, [(23, 19)])  # close_notify, protected
        self.assertTrue(network.client.write_shut_requested)
        network.flush()
        self.assertDone(client.wrappedProtocol)
        self.assertDone(server.wrappedProtocol)
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.assertFalse(network.client.reset_received or network.server.reset_received)

    def test_twisted_7926_lose_connection_peer_never_answers(self) -> None:
        """
        twisted#7926: with a peer that never answers close_notify,
        loseConnection still closes - after close_timeout, not never.
        """
        self.assertEqual(DEFAULT_CLOSE_TIMEOUT, 3.0)
        client, _server, network = self.pair()
        network.server.reading_paused = True  # a peer that stopped reading
        client.write(b"bye")
        client.loseConnection()
        network.advance(2.9)
        self.assertIsNone(client.wrappedProtocol.lost)
        network.advance(0.2)
        self.assertDone(client.wrappedProtocol)
        self.assertTrue(network.client.closed)
        # Everything was out: an orderly close, not an abort (which would
        # reset and destroy the close_notify the peer has not read yet).
        self.assertFalse(network.client.aborted)

    def test_close_timeout_configurable(self) -> None:
        client, _server, network = self.pair(client_kwargs={"close_timeout": 0.5})
        network.server.reading_paused = True
        client.loseConnection()
        network.flush()
        network.advance(0.5)
        self.assertDone(client.wrappedProtocol)
        self.assertFalse(network.client.aborted)

    def test_lose_connection_without_half_close_transport(self) -> None:
        """
        Over a transport that cannot half-close the wait is still bounded;
        without a shut write side nothing tells that all was written, so
        the transport is aborted when close_timeout passes.
        """
        client, _server, network = self.pair(half_close=False)
        network.server.reading_paused = True
        client.loseConnection()
        self.assertFalse(network.client.write_shut_requested)
        network.flush()
        network.advance(DEFAULT_CLOSE_TIMEOUT)
        self.assertTrue(client.wrappedProtocol.lost.check(CloseTimeoutError))
        self.assertTrue(network.client.aborted)

    def test_lose_connection_flushes(self) -> None:
        """
        Data written just before loseConnection arrives, then the close.
        """
        client, server, network = self.pair()
        client.write(b"a" * 50_000)
        client.write(b"b")
        client.loseConnection()
        network.flush()
        self.assertEqual(bytes(server.wrappedProtocol.data), b"a" * 50_000 + b"b")
        self.assertDone(server.wrappedProtocol)

    def test_lose_connection_before_handshake_with_data(self) -> None:
        """
        Written and closed in connectionMade: the handshake still runs, the
        data arrives, then close_notify.
        """
        client_app = Recorder()

        def made(app: Recorder) -> None:
            app.transport.write(b"fire and forget")
            app.transport.loseConnection()

        client_app.on_made = made
        _client, server, _network = self.pair(client_app)
        self.assertEqual(bytes(server.wrappedProtocol.data), b"fire and forget")
        self.assertDone(server.wrappedProtocol)
        self.assertDone(client_app)

    def test_lose_connection_before_handshake_without_data(self) -> None:
        """
        Nothing written: the handshake is abandoned; connectionLost says
        ConnectionDone and the handshake Deferred fails.
        """
        client_app = Recorder()
        failures: list[Failure] = []

        def made(app: Recorder) -> None:
            app.transport.whenHandshakeDone().addErrback(failures.append)
            app.transport.loseConnection()

        client_app.on_made = made
        _client, _server, network = self.pair(client_app)
        self.assertDone(client_app)
        self.assertEqual(network.client.sent, b"")
        self.assertTrue(failures[0].check(error.ConnectionDone))

    def test_twisted_5341_lose_write_connection_sends_close_notify(self) -> None:
        """
        twisted#5341: loseWriteConnection is a TLS half-close: close_notify
        goes out, the TCP stays open, and the peer can still answer; a
        half-closeable peer sees readConnectionLost.
        """
        client_app, server_app = HalfCloser(), HalfCloser()
        client, server, network = self.pair(client_app, server_app)
        client.write(b"request")
        client.loseWriteConnection()
        self.assertEqual(client_app.write_lost, 1)
        network.flush()
        self.assertFalse(network.client.write_shut_requested)  # no TCP FIN
        self.assertEqual(server_app.read_lost, 1)
        self.assertEqual(bytes(server_app.data), b"request")
        server.write(b"response")
        network.flush()
        self.assertEqual(bytes(client_app.data), b"response")
        client.write(b"ignored: write side closed")
        server.loseConnection()
        network.flush()
        self.assertDone(server_app)
        self.assertDone(client_app)
        self.assertEqual(client_app.read_lost, 1)
        self.assertEqual(bytes(server_app.data), b"request")

    def test_twisted_5341_lose_connection_after_lose_write_connection(self) -> None:
        """
        twisted#5341 (title): loseConnection after loseWriteConnection is not
        a no-op; it closes, bounded even if the peer never answers.
        """
        client_app = HalfCloser()
        client, _server, network = self.pair(client_app)
        network.server.reading_paused = True
        client.loseWriteConnection()
        client.loseConnection()
        network.flush()
        network.advance(DEFAULT_CLOSE_TIMEOUT)
        self.assertDone(client_app)

    def test_peer_close_notify_without_half_close(self) -> None:
        """
        A protocol that is not half-closeable treats the peer's close_notify
        as the end: our close_notify answers and both see ConnectionDone.
        """
        client_app = HalfCloser()
        server_app = Recorder()
        client, server, network = self.pair(client_app, server_app)
        server.write(b"queued before the peer's close")
        client.loseWriteConnection()
        network.flush()
        self.assertDone(server_app)
        self.assertDone(client_app)
        self.assertEqual(bytes(client_app.data), b"queued before the peer's close")

    def test_lose_write_connection_before_handshake(self) -> None:
        client_app, server_app = HalfCloser(), HalfCloser()

        def made(app: Recorder) -> None:
            app.transport.write(b"early")
            app.transport.loseWriteConnection()

        client_app.on_made = made
        _client, server, network = self.pair(client_app, server_app)
        self.assertEqual(bytes(server_app.data), b"early")
        self.assertEqual(server_app.read_lost, 1)
        self.assertEqual(client_app.write_lost, 1)
        server.loseConnection()
        network.flush()
        self.assertDone(client_app)

    def test_abort_connection(self) -> None:
        """
        abortConnection drops at once: nothing more is written, not even
        buffered data or close_notify; the application sees ConnectionAborted.
        """
        client, server, network = self.pair()
        sent = len(network.client.sent)
        client.write(b"never sent")
        client.abortConnection()
        client.loseConnection()  # no effect after abort
        network.flush()
        self.assertEqual(len(network.client.sent), sent)
        self.assertTrue(client.wrappedProtocol.lost.check(error.ConnectionAborted))
        self.assertTrue(network.server.reset_received)
        lost = server.wrappedProtocol.lost
        self.assertTrue(lost.check(error.ConnectionLost))
        self.assertFalse(lost.check(TLSTruncationError))
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_truncation(self) -> None:
        """
        The peer's TCP closing without close_notify is reported as
        TLSTruncationError, a ConnectionLost.
        """
        client, server, network = self.pair()
        server.write(b"partial")
        self.clock.advance(0)
        network.server.loseConnection()  # underneath TLS
        network.flush()
        lost = client.wrappedProtocol.lost
        self.assertTrue(lost.check(TLSTruncationError))
        self.assertTrue(lost.check(error.ConnectionLost))
        self.assertIn("close_notify", str(lost.value))
        self.assertEqual(bytes(client.wrappedProtocol.data), b"partial")

    def test_truncation_iosim(self) -> None:
        """
        Over iosim (no half-close) truncation is detected too.
        """
        client, server = self.protocols(Recorder(), Recorder())
        pump = iosim.connect(
            server,
            iosim.makeFakeServer(server),
            client,
            iosim.makeFakeClient(client),
            clock=self.clock,
        )
        server.transport.loseConnection()
        pump.flush()
        self.assertTrue(client.wrappedProtocol.lost.check(TLSTruncationError))

    def test_truncation_during_handshake(self) -> None:
        """
        A server that reads the ClientHello and hangs up: truncation, and
        the handshake Deferred fails with it.
        """

        class HangUp(Protocol):
            def dataReceived(self, data: bytes) -> None:
                self.transport.loseConnection()

        client_app = Recorder()
        client, _ = self.protocols(client_app, Recorder())
        failures: list[Failure] = []
        client.whenHandshakeDone().addErrback(failures.append)
        network = SimNetwork(self.clock)
        network.connect(client, HangUp())
        network.flush()
        self.assertTrue(client_app.lost.check(TLSTruncationError))
        self.assertIn("handshake", str(client_app.lost.value))
        self.assertTrue(failures[0].check(TLSTruncationError))

    def corrupt(self, network: SimNetwork) -> None:
        """Put a record no key opens on the client's wire, under TLS."""
        network.client.outbound += b"\x17\x03\x03\x00\x20" + b"\x00" * 32

    def test_fatal_alert_survives_unread_data(self) -> None:
        """
        After sending a fatal alert the server shuts its write side and
        drains: the client, still streaming, reads the alert instead of
        getting a reset that would have destroyed it.
        """
        client, server, network = self.pair(window=16 * 1024 * 1024, read_size=65536)
        self.corrupt(network)
        client.write(os.urandom(2_000_000))  # in flight behind the bad record
        network.tick()
        network.flush()
        lost = client.wrappedProtocol.lost
        self.assertTrue(lost.check(RemoteAlertError), lost)
        self.assertEqual(lost.value.alert, AlertDescription.bad_record_mac)
        self.assertFalse(network.client.reset_received)
        self.assertTrue(server.wrappedProtocol.lost.check(TLSError))

    def test_fatal_alert_reset_without_drain(self) -> None:
        """
        The model is not vacuous: over a transport that cannot half-close
        (so no drain is possible) the same failure ends in a reset and the
        client never sees the alert.
        """
        client, _server, network = self.pair(
            half_close=False, window=16 * 1024 * 1024, read_size=65536
        )
        self.corrupt(network)
        client.write(os.urandom(2_000_000))
        network.tick()
        network.flush()
        self.assertTrue(network.client.reset_received)
        self.assertFalse(client.wrappedProtocol.lost.check(RemoteAlertError))

    def test_drain_is_bounded(self) -> None:
        """
        A peer that never closes does not keep a failed connection open
        longer than drain_timeout.
        """
        _client, server, network = self.pair()
        network.client.reading_paused = True
        self.corrupt(network)
        network.flush()
        self.assertIsNone(server.wrappedProtocol.lost)
        self.assertTrue(network.server.write_shut)
        network.advance(DEFAULT_DRAIN_TIMEOUT)
        self.assertTrue(server.wrappedProtocol.lost.check(TLSError))
        self.assertTrue(network.server.closed)

    def test_no_double_connection_lost(self) -> None:
        """
        Closing twice, or every way at once, still calls connectionLost once.
        """
        client, server, network = self.pair()
        client.loseConnection()
        client.loseConnection()
        client.loseWriteConnection()
        client.stopProducing()
        network.flush()
        client.abortConnection()
        client.connectionLost(Failure(error.ConnectionDone()))
        self.assertEqual(client.wrappedProtocol.lost_count, 1)
        self.assertEqual(server.wrappedProtocol.lost_count, 1)


class BoundedCloseTests(TLSTestMixin, SynchronousTestCase):
    """Every way of closing ends within close_timeout, even when the peer
    never reads: the transport is aborted instead of waiting for a write
    buffer that never drains (issue 10, item 3)."""

    def stuck_pair(self, **kwargs: Any) -> tuple[TLSProtocol, TLSProtocol, SimNetwork]:
        """A pair whose server stops reading, with 1 MB queued at the client."""
        client, server, network = self.pair(window=64 * 1024, **kwargs)
        network.server.reading_paused = True
        client.write(os.urandom(1_000_000))
        network.flush()
        self.assertTrue(network.client.outbound)
        return client, server, network

    def assertAbortedAfterCloseTimeout(self, app: Recorder) -> None:
        self.assertIsNotNone(app.lost, "connectionLost was not called")
        assert app.lost is not None
        self.assertTrue(app.lost.check(CloseTimeoutError), app.lost)
        self.assertTrue(app.lost.check(error.ConnectionAborted))
        self.assertEqual(app.lost_count, 1)

    def test_lose_connection_peer_never_reads(self) -> None:
        """
        The peer reads nothing: close_notify never leaves the write buffer.
        After close_timeout the transport is aborted (unsent data dropped)
        and connectionLost says why.
        """
        client, _server, network = self.stuck_pair()
        client.loseConnection()
        network.advance(DEFAULT_CLOSE_TIMEOUT - 0.1)
        self.assertIsNone(client.wrappedProtocol.lost)
        self.assertFalse(network.client.aborted)
        network.advance(0.2)
        self.assertTrue(network.client.aborted)
        self.assertAbortedAfterCloseTimeout(client.wrappedProtocol)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_close_timeout_none_waits(self) -> None:
        """close_timeout=None keeps TCP's rule: wait for the buffer forever."""
        client, _server, network = self.stuck_pair(
            client_kwargs={"close_timeout": None}
        )
        client.loseConnection()
        network.advance(3600)
        self.assertIsNone(client.wrappedProtocol.lost)
        self.assertFalse(network.client.aborted)
        network.server.reading_paused = False
        network.flush()
        self.assertDone(client.wrappedProtocol)

    def test_peer_fin_while_buffer_full(self) -> None:
        """
        The peer shuts its side (FIN) but reads nothing: the transport is
        told to close, and aborted when its buffer has not drained by the
        close timeout that loseConnection started.
        """
        client, _server, network = self.stuck_pair()
        client.loseConnection()
        network.server.loseWriteConnection()  # a raw FIN under TLS
        network.advance(1.0)
        self.assertTrue(network.client.closing)
        self.assertIsNone(client.wrappedProtocol.lost)
        network.advance(DEFAULT_CLOSE_TIMEOUT - 1.0)
        self.assertTrue(network.client.aborted)
        self.assertIsNotNone(client.wrappedProtocol.lost)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_peer_close_notify_while_buffer_full(self) -> None:
        """
        The peer sends close_notify and never reads: our answer and the data
        before it cannot leave; the connection is aborted after close_timeout.
        """
        client_app = HalfCloser()
        client, server, network = self.pair(client_app, Echo(), window=64 * 1024)
        network.client.reading_paused = True
        client.write(os.urandom(1_000_000))
        client.loseWriteConnection()
        network.flush()
        self.assertTrue(network.server.closing)
        self.assertIsNone(server.wrappedProtocol.lost)
        network.advance(DEFAULT_CLOSE_TIMEOUT)
        self.assertTrue(network.server.aborted)
        self.assertAbortedAfterCloseTimeout(server.wrappedProtocol)
        self.assertEqual(len(server.wrappedProtocol.data), 1_000_000)

    def test_drain_when_alert_cannot_leave(self) -> None:
        """
        After a fatal alert the drain is bounded too when the alert itself
        is stuck behind data the peer never reads.
        """
        client, server, network = self.pair(server_app=Echo(), window=64 * 1024)
        network.client.reading_paused = True
        client.write(os.urandom(500_000))
        network.flush()
        self.assertTrue(network.server.outbound)
        network.client.outbound += b"\x17\x03\x03\x00\x20" + b"\x00" * 32
        network.flush()
        self.assertTrue(network.server.write_shut_requested)
        self.assertIsNone(server.wrappedProtocol.lost)
        network.advance(DEFAULT_DRAIN_TIMEOUT)
        self.assertTrue(network.server.aborted)
        self.assertTrue(server.wrappedProtocol.lost.check(TLSError))
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_lose_connection_during_handshake(self) -> None:
        """
        loseConnection while the ClientHello is still stuck in the buffer
        (the peer accepted and reads nothing) is bounded as well.
        """
        client, _server, network = self.pair(window=100, flush=False)
        network.server.reading_paused = True
        network.flush()
        self.assertTrue(network.client.outbound)
        client.loseConnection()
        network.advance(DEFAULT_CLOSE_TIMEOUT)
        self.assertTrue(network.client.aborted)
        self.assertIsNotNone(client.wrappedProtocol.lost)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_start_tls_close_bounded(self) -> None:
        """
        A connection upgraded with start_tls closes within close_timeout
        too, over the plaintext connection's own transport.
        """
        client_app, server_app = Recorder(), Recorder()
        network = SimNetwork(self.clock, window=64 * 1024)
        network.connect(client_app, server_app)
        client = start_tls(
            client_app, self.pki["client"], True, "example.com", clock=self.clock
        )
        start_tls(server_app, self.pki["server"], False, clock=self.clock)
        network.flush()
        self.assertIsNotNone(client.handshakeResult)
        network.server.reading_paused = True
        client.write(os.urandom(1_000_000))
        client.loseConnection()
        network.advance(DEFAULT_CLOSE_TIMEOUT)
        self.assertTrue(network.client.aborted)
        self.assertAbortedAfterCloseTimeout(client_app)
        self.assertEqual(self.clock.getDelayedCalls(), [])


# -- producers --------------------------------------------------------------


class AfterTicketsTests(TLSTestMixin, SynchronousTestCase):
    """The client closes or aborts around the server's NewSessionTickets,
    which follow the handshake (RFC 8446 §4.6.1); the server's application
    writes as soon as its handshake completes (issue 9).  Each end must be
    told what happened, exactly once, and never a clean close for a reset."""

    GREETING = b"written on handshakeCompleted"

    def run_case(
        self, client_app: Recorder, act: str, when: str
    ) -> tuple[Recorder, Recorder, SimNetwork]:
        server_app = Recorder()
        server_app.on_handshake = lambda app: app.transport.write(self.GREETING)

        def action(app: Recorder, *_: object) -> None:
            getattr(app.transport, act)()

        if when == "handshake":
            client_app.on_handshake = action
        else:
            client_app.on_data = action
        self.pair(client_app, server_app)
        return client_app, server_app, self.network_of(client_app)

    def network_of(self, app: Recorder) -> SimNetwork:
        return app.transport.transport.network  # type: ignore[no-any-return]

    def test_close_on_handshake(self) -> None:
        """close_notify goes out behind the client's Finished: the server
        completes (tickets, greeting), then both close cleanly."""
        client, server, _ = self.run_case(Recorder(), "loseConnection", "handshake")
        self.assertEqual(server.handshakes, 1)
        self.assertDone(client)
        self.assertDone(server)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_close_after_greeting(self) -> None:
        client, server, _ = self.run_case(Recorder(), "loseConnection", "data")
        self.assertEqual(bytes(client.data), self.GREETING)
        self.assertDone(client)
        self.assertDone(server)

    def test_half_close_on_handshake(self) -> None:
        """The client shuts its side at once and keeps reading: it still gets
        the greeting sent behind the tickets, then the server's close."""
        client, server, _ = self.run_case(
            HalfCloser(), "loseWriteConnection", "handshake"
        )
        self.assertEqual(bytes(client.data), self.GREETING)
        assert isinstance(client, HalfCloser)
        self.assertEqual(client.read_lost, 1)
        self.assertDone(client)
        self.assertDone(server)

    def test_abort_after_greeting(self) -> None:
        """The tickets and the greeting arrived, then a reset: the server's
        application hears the lost connection, not a clean close."""
        client, server, network = self.run_case(Recorder(), "abortConnection", "data")
        self.assertEqual(server.handshakes, 1)
        self.assertTrue(client.lost and client.lost.check(error.ConnectionAborted))
        self.assertTrue(network.server.reset_received)
        self.assertTrue(server.lost and server.lost.check(error.ConnectionLost))
        self.assertFalse(server.lost.check(error.ConnectionDone))
        self.assertEqual(server.lost_count, 1)

    def test_abort_on_handshake(self) -> None:
        """An abort drops even the client's Finished, still unsent when its
        application hears of the handshake: for the server the client left
        mid-handshake, which it reports as a failed handshake."""
        client, server, _ = self.run_case(Recorder(), "abortConnection", "handshake")
        self.assertTrue(client.lost and client.lost.check(error.ConnectionAborted))
        self.assertEqual(server.handshakes, 0)
        self.assertTrue(server.lost and server.lost.check(error.ConnectionLost))
        self.assertEqual(server.lost_count, 1)


class ProducerTests(TLSTestMixin, SynchronousTestCase):
    def test_push_producer_transport_back_pressure(self) -> None:
        """
        A peer that stops reading fills the window and the send buffer; the
        transport pauses us and we pause the application's producer; when the
        peer reads again it resumes, and every byte arrives.
        """
        client, server, network = self.pair(window=128 * 1024)
        network.server.reading_paused = True
        producer = PushProducer(client, self.clock, b"z" * 8192, 4_000_000)
        producer.start()
        network.flush()
        self.assertTrue(producer.paused)
        self.assertGreater(producer.remaining, 0)
        paused_at = producer.remaining
        network.flush()
        self.assertEqual(producer.remaining, paused_at)  # stays paused
        network.server.reading_paused = False
        network.flush()
        self.assertEqual(producer.remaining, 0)
        self.assertGreaterEqual(producer.resumes, 1)
        self.assertEqual(len(server.wrappedProtocol.data), 4_000_000)

    def test_push_producer_tls_back_pressure_before_handshake(self) -> None:
        """
        Before the handshake nothing can be sent: our own buffer pauses the
        producer at 64 KiB, and the handshake's completion resumes it.
        """
        client, server, network = self.pair(flush=False)
        producer = PushProducer(client, self.clock, b"p" * 16384, 200_000)
        producer.start()
        for _ in range(10):
            self.clock.advance(0)
        self.assertTrue(producer.paused)
        self.assertLessEqual(client._buffered, 65536 + 16384)
        network.flush()
        self.assertEqual(producer.remaining, 0)
        self.assertEqual(len(server.wrappedProtocol.data), 200_000)

    def test_pull_producer(self) -> None:
        """
        A pull producer (FileSender) sends a file byte-exact.
        """
        client, server, network = self.pair(flush=False)
        payload = os.urandom(1_000_000)
        done = FileSender().beginFileTransfer(io.BytesIO(payload), client)
        results: list[object] = []
        done.addCallback(results.append)
        self.assertLessEqual(client._buffered, 65536 + 16384)
        network.flush()
        self.assertEqual(len(results), 1)
        self.assertEqual(bytes(server.wrappedProtocol.data), payload)

    def test_twisted_8992_lose_connection_with_registered_producer(self) -> None:
        """
        twisted#8992: loseConnection with a producer still registered closes
        the connection (the producer is stopped) instead of waiting for it
        to unregister.
        """
        client, server, network = self.pair()
        producer = PushProducer(client, self.clock, b"q", 1)
        client.registerProducer(producer, True)
        client.loseConnection()
        self.assertTrue(producer.stopped)
        network.flush()
        self.assertDone(client.wrappedProtocol)
        self.assertDone(server.wrappedProtocol)

    def test_twisted_8992_pull_producer(self) -> None:
        client, _server, network = self.pair()
        done = FileSender().beginFileTransfer(io.BytesIO(b"f" * 10_000_000), client)
        failures: list[Failure] = []
        done.addErrback(failures.append)
        network.tick()
        client.loseConnection()
        network.flush()
        self.assertEqual(len(failures), 1)  # FileSender told to stop
        self.assertDone(client.wrappedProtocol)

    def test_twisted_8901_lose_connection_while_paused(self) -> None:
        """
        twisted#8901: loseConnection on a paused TLS transport still reaches
        connectionLost: reads resume to see the peer's close_notify.
        """
        client, server, network = self.pair()
        client.pauseProducing()
        self.assertTrue(network.client.reading_paused)
        client.loseConnection()
        self.assertFalse(network.client.reading_paused)
        network.flush()
        self.assertDone(client.wrappedProtocol)
        self.assertDone(server.wrappedProtocol)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_twisted_8901_peer_closes_while_paused(self) -> None:
        """
        The peer's close while we are paused is delivered once we resume,
        after the data that came before it.
        """
        client_app = Recorder()
        client, server, network = self.pair(client_app)
        client.pauseProducing()
        server.write(b"before close")
        server.loseConnection()
        network.flush()
        self.assertEqual(bytes(client_app.data), b"")
        self.assertIsNone(client_app.lost)
        client.resumeProducing()
        network.flush()
        self.assertEqual(bytes(client_app.data), b"before close")
        self.assertDone(client_app)

    def test_twisted_6385_paused_producer_does_not_block_loss(self) -> None:
        """
        #6385/#8473 (a paused producer blocking shutdown or loss): a
        producer paused by back-pressure when the connection is lost is
        stopped, and connectionLost is delivered.
        """
        client, _server, network = self.pair(window=64 * 1024)
        network.server.reading_paused = True
        producer = PushProducer(client, self.clock, b"y" * 8192, 10_000_000)
        producer.start()
        network.flush()
        self.assertTrue(producer.paused)
        network.server.abortConnection()
        network.flush()
        self.assertTrue(producer.stopped)
        self.assertTrue(client.wrappedProtocol.lost.check(error.ConnectionLost))

    def test_twisted_8473_abort_with_paused_producer(self) -> None:
        client, _server, network = self.pair(window=64 * 1024)
        network.server.reading_paused = True
        producer = PushProducer(client, self.clock, b"y" * 8192, 10_000_000)
        producer.start()
        network.flush()
        self.assertTrue(producer.paused)
        client.abortConnection()
        self.assertTrue(producer.stopped)
        network.flush()
        self.assertTrue(client.wrappedProtocol.lost.check(error.ConnectionAborted))

    def test_twisted_6385_lose_connection_with_paused_producer(self) -> None:
        """
        loseConnection while the producer is paused by back-pressure: the
        producer is stopped and close_notify queued behind the data.  A peer
        that reads again within close_timeout gets everything and a clean
        close; one that does not is aborted then (issue 10), instead of
        holding the buffer forever as plain TCP would.
        """
        for reads_again in (True, False):
            self.clock = Clock()
            client, server, network = self.pair(window=64 * 1024)
            network.server.reading_paused = True
            producer = PushProducer(client, self.clock, b"y" * 8192, 10_000_000)
            producer.start()
            network.flush()
            self.assertTrue(producer.paused)
            client.loseConnection()
            self.assertTrue(producer.stopped)
            network.advance(DEFAULT_CLOSE_TIMEOUT - 0.1)
            self.assertTrue(
                network.client.closing or network.client.write_shut_requested
            )
            if reads_again:
                network.server.reading_paused = False
                network.flush()
                self.assertDone(client.wrappedProtocol)
                self.assertDone(server.wrappedProtocol)
                self.assertEqual(
                    len(server.wrappedProtocol.data), 10_000_000 - producer.remaining
                )
            else:
                network.advance(0.1)
                self.assertTrue(network.client.aborted)
                lost = client.wrappedProtocol.lost
                self.assertTrue(lost.check(CloseTimeoutError), lost)
                self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_register_after_close_stops_producer(self) -> None:
        client, _server, _network = self.pair()
        client.loseConnection()
        producer = PushProducer(client, self.clock, b"", 0)
        client.registerProducer(producer, True)
        self.assertTrue(producer.stopped)

    def test_register_twice(self) -> None:
        client, _server, network = self.pair()
        producer = PushProducer(client, self.clock, b"", 0)
        client.registerProducer(producer, True)
        self.assertRaises(RuntimeError, client.registerProducer, producer, True)
        client.unregisterProducer()
        client.unregisterProducer()  # harmless
        client.registerProducer(producer, False)
        self.assertIsNotNone(network.client.producer)

    def test_pause_reading_before_handshake_does_not_stall(self) -> None:
        """
        An application that pauses reads in connectionMade still gets its
        handshake; the transport is only paused afterwards, and data waits.
        """
        client_app = Recorder()
        client_app.on_made = lambda app: app.transport.pauseProducing()
        client, server, network = self.pair(client_app)
        self.assertEqual(client_app.handshakes, 1)
        self.assertTrue(network.client.reading_paused)
        server.write(b"held")
        network.flush()
        self.assertEqual(bytes(client_app.data), b"")
        client.resumeProducing()
        self.assertEqual(bytes(client_app.data), b"")  # next turn, not re-entrant
        network.flush()
        self.assertEqual(bytes(client_app.data), b"held")

    def test_pause_does_not_stall_key_update(self) -> None:
        """
        The application pausing inside dataReceived does not hold back the
        answer to a KeyUpdate that arrived with the data.
        """
        client_app = Recorder()
        client_app.on_data = lambda app, data: app.transport.pauseProducing()
        client, server, network = self.pair(client_app)
        server.write(b"one")
        server.keyUpdate(requestPeer=True)
        server.write(b"two")
        self.clock.advance(0)
        network.tick(advance_clock=False)  # all of it reaches the client
        self.assertEqual(bytes(client_app.data), b"one")
        answer = records(bytes(network.client.outbound))
        self.assertEqual(len(answer), 1, "the KeyUpdate answer is not out")
        network.flush()
        client.write(b"after update")
        client.resumeProducing()
        network.flush()
        self.assertEqual(bytes(client_app.data), b"onetwo")
        self.assertEqual(bytes(server.wrappedProtocol.data), b"after update")

    def test_pause_holds_order(self) -> None:
        client_app = Recorder()
        client, server, network = self.pair(client_app, read_size=100)
        client.pauseProducing()
        self.assertEqual(network.client.pause_calls, 1)
        for i in range(20):
            server.write(b"%03d" % i)
            self.clock.advance(0)
        network.flush()
        client.resumeProducing()
        network.flush()
        self.assertEqual(
            bytes(client_app.data), b"".join(b"%03d" % i for i in range(20))
        )

    def test_half_closeable_eof_after_pending_data(self) -> None:
        client_app = HalfCloser()
        client, server, network = self.pair(client_app, HalfCloser())
        client.pauseProducing()
        server.write(b"data")
        server.loseWriteConnection()
        network.flush()
        self.assertEqual(client_app.read_lost, 0)
        client.resumeProducing()
        network.flush()
        self.assertEqual(bytes(client_app.data), b"data")
        self.assertEqual(client_app.read_lost, 1)

    def test_transport_as_own_producer(self) -> None:
        """
        The echo idiom, registerProducer(transport, True): a peer that stops
        reading pauses our reads (after the handshake), reading again resumes
        them, and every byte comes back.
        """
        server_app = Echo()
        server_app.on_handshake = lambda app: app.transport.registerProducer(
            app.transport, True
        )
        client, _server, network = self.pair(
            Recorder(), server_app, window=64 * 1024, read_size=65536
        )
        network.client.reading_paused = True
        payload = os.urandom(2_000_000)
        client.write(payload)
        network.flush()
        self.assertTrue(network.server.reading_paused)
        self.assertLess(len(server_app.data), 1_000_000)
        network.client.reading_paused = False
        network.flush()
        self.assertEqual(bytes(client.wrappedProtocol.data), payload)

    def test_transport_as_own_producer_reset(self) -> None:
        """
        When the transport below is lost (a reset), it stops its producer
        first, as Twisted's TCP does; with the TLS transport as its own
        producer that must not count as our clean close: connectionLost
        reports the reset, not ConnectionDone.
        """
        server_app = Echo()
        server_app.on_handshake = lambda app: app.transport.registerProducer(
            app.transport, True
        )
        client, _server, network = self.pair(Recorder(), server_app)
        client.write(b"ping")
        network.flush()
        client.abortConnection()
        network.flush()
        lost = server_app.lost
        self.assertIsNotNone(lost)
        self.assertTrue(lost.check(error.ConnectionLost), lost)
        self.assertFalse(lost.check(error.ConnectionDone), lost)
        self.assertFalse(network.server.write_shut_requested)

    def test_connection_lost_delivers_held_data(self) -> None:
        """
        Decrypted data held for a paused application is delivered before
        connectionLost rather than dropped.
        """
        client_app = Recorder()
        _client, server, network = self.pair(client_app, half_close=False)
        client_app.on_data = lambda app, data: app.transport.pauseProducing()
        server.write(b"first")
        self.clock.advance(0)
        server.write(b"second")
        server.loseConnection()
        network.flush()
        self.assertEqual(bytes(client_app.data), b"firstsecond")
        self.assertDone(client_app)


# -- the transport interface ------------------------------------------------


class InterfaceTests(TLSTestMixin, SynchronousTestCase):
    def test_interfaces(self) -> None:
        client, _server, _network = self.pair()
        for interface in (
            ITransport,
            ITCPTransport,
            ISSLTransport,
            INegotiated,
            IConsumer,
            IPushProducer,
            IHalfCloseableProtocol,
        ):
            self.assertTrue(verifyObject(interface, client), interface)

    def test_no_getattr_fall_through(self) -> None:
        """
        Unknown attributes do not leak through from the transport below.
        """
        client, _server, _network = self.pair()
        self.assertFalse(hasattr(TLSProtocol, "__getattr__"))
        self.assertFalse(hasattr(client, "outbound"))
        self.assertFalse(hasattr(client, "sequence_calls"))

    def test_tcp_options(self) -> None:
        """
        TCP options reach the TCP transport below; without one they raise.
        """
        client, _server, network = self.pair()
        client.setTcpNoDelay(True)
        self.assertTrue(network.client.no_delay)
        self.assertTrue(client.getTcpNoDelay())
        client.setTcpKeepAlive(True)
        self.assertTrue(client.getTcpKeepAlive())
        self.assertEqual(client.getPeer(), network.client.getPeer())
        self.assertEqual(client.getHost(), network.client.getHost())
        self.assertRaises(NotImplementedError, client.getHandle)

        client, _server, _network = self.pair(half_close=False)
        self.assertRaises(NotImplementedError, client.setTcpNoDelay, True)
        self.assertRaises(NotImplementedError, client.getTcpKeepAlive)

    def test_disconnecting_attribute(self) -> None:
        """
        ``disconnecting`` is set by loseConnection (LineReceiver relies on it).
        """
        client, _server, _network = self.pair()
        self.assertFalse(client.disconnecting)
        client.loseConnection()
        self.assertTrue(client.disconnecting)

    def test_log_prefix_and_repr(self) -> None:
        client, _server, _network = self.pair()
        self.assertEqual(client.logPrefix(), "Recorder (TLS)")
        self.assertIn("client", repr(client))


class LayeringTests(TLSTestMixin, SynchronousTestCase):
    def test_tls_over_tls(self) -> None:
        """
        A TLSProtocol is itself a stream transport: TLS inside TLS works,
        and an inner close ends the outer connection cleanly too.
        """
        inner_client_app, inner_server_app = Recorder(), Echo()
        inner_client, inner_server = self.protocols(inner_client_app, inner_server_app)
        outer_client, outer_server = self.protocols(inner_client, inner_server)
        network = SimNetwork(self.clock)
        network.connect(outer_client, outer_server)
        network.flush()
        self.assertEqual(inner_client_app.handshakes, 1)
        self.assertIs(inner_client.transport, outer_client)
        inner_client.write(b"nested")
        network.flush()
        self.assertEqual(bytes(inner_client_app.data), b"nested")
        inner_client.loseConnection()
        network.flush()
        self.assertDone(inner_client_app)
        self.assertDone(inner_server_app)
        self.assertTrue(network.client.closed and network.server.closed)
        self.assertEqual(self.clock.getDelayedCalls(), [])


# -- STARTTLS ---------------------------------------------------------------


class StartTLSLines(LineReceiver):
    """A line protocol that upgrades on ``STARTTLS``."""

    delimiter = b"\n"

    def __init__(self, test: TLSTestMixin, is_client: bool, pipeline: bool) -> None:
        self.test = test
        self.is_client = is_client
        self.pipeline = pipeline
        self.lines: list[bytes] = []
        self.tls: TLSProtocol | None = None
        self.lost: Failure | None = None
        self.done: defer.Deferred[None] = defer.Deferred()

    def connectionMade(self) -> None:
        if self.is_client:
            self.sendLine(b"plain before")
            self.sendLine(b"STARTTLS")
            if self.pipeline:
                self.upgrade()

    def upgrade(self, initial: bytes = b"") -> None:
        pki = self.test.pki
        if self.is_client:
            self.tls = start_tls(
                self, pki["client"], True, "example.com", clock=self.test.clock
            )
            if not self.pipeline:
                assert self.tls is self.transport
            self.sendLine(b"secret from client")
        else:
            self.tls = start_tls(
                self, pki["server"], False, initial_data=initial, clock=self.test.clock
            )

    def lineReceived(self, line: bytes) -> None:
        self.lines.append(line)
        if line == b"STARTTLS" and not self.is_client:
            if not self.pipeline:
                self.sendLine(b"OK")
            self.upgrade(self.clearLineBuffer())
        elif line == b"OK" and self.is_client and not self.pipeline:
            self.upgrade()
        elif line == b"secret from client":
            self.sendLine(b"secret from server")

    def connectionLost(self, reason: Failure = error.ConnectionDone) -> None:  # type: ignore[assignment]
        self.lost = reason
        self.done.callback(None)


class StartTLSTests(TLSTestMixin, SynchronousTestCase):
    def run_starttls(self, pipeline: bool) -> tuple[StartTLSLines, StartTLSLines]:
        client = StartTLSLines(self, True, pipeline)
        server = StartTLSLines(self, False, pipeline)
        network = SimNetwork(self.clock)
        network.connect(client, server)
        network.flush()
        self.assertIsNotNone(client.tls)
        self.assertIsNotNone(server.tls)
        self.assertIs(client.transport, client.tls)
        self.assertEqual(
            server.lines, [b"plain before", b"STARTTLS", b"secret from client"]
        )
        expected = (
            [b"secret from server"] if pipeline else [b"OK", b"secret from server"]
        )
        self.assertEqual(client.lines, expected)
        self.assertNotIn(b"secret", bytes(network.client.sent))
        self.assertNotIn(b"secret", bytes(network.server.sent))
        client.transport.loseConnection()
        network.flush()
        self.assertTrue(client.lost.check(error.ConnectionDone))
        self.assertTrue(server.lost.check(error.ConnectionDone))
        return client, server

    def test_start_tls(self) -> None:
        """
        Plaintext, then STARTTLS, then TLS on the same connection; bytes
        written before the upgrade keep their place.
        """
        self.run_starttls(pipeline=False)

    def test_start_tls_pipelined(self) -> None:
        """
        A plaintext preamble with the ClientHello right behind it (as with a
        PROXY protocol header): the server hands the bytes it had already
        received past the upgrade point to start_tls.
        """
        self.run_starttls(pipeline=True)

    def test_start_tls_needs_connection(self) -> None:
        self.assertRaises(
            ValueError, start_tls, Protocol(), self.pki["client"], True, "example.com"
        )


# -- real TCP ---------------------------------------------------------------


class LoopbackTests(TestCase):
    """Real sockets on the global reactor."""

    timeout = 30

    def setUp(self) -> None:
        self.pki = pki()

    def listen(self, app_factory: Any, **kwargs: Any) -> int:
        factory = TLSFactory(app_factory, self.pki["server"], False, **kwargs)
        port = reactor.listenTCP(0, factory, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        return port.getHost().port

    def connect(self, port: int, app: Any, **kwargs: Any) -> None:
        factory = TLSFactory(
            Factory.forProtocol(lambda: app),
            self.pki["client"],
            True,
            "example.com",
            **kwargs,
        )
        reactor.connectTCP("127.0.0.1", port, factory)

    @defer.inlineCallbacks
    def test_round_trip(self) -> Any:
        """
        1 MB echoed over loopback TCP, then a clean close on both sides.
        """
        server_lost: defer.Deferred[Failure] = defer.Deferred()

        class ServerEcho(Echo):
            def connectionLost(self, reason: Failure = error.ConnectionDone) -> None:  # type: ignore[assignment]
                server_lost.callback([reason])

        port = self.listen(Factory.forProtocol(ServerEcho))
        client_lost: defer.Deferred[Failure] = defer.Deferred()
        payload = os.urandom(1_000_000)

        class Client(Recorder):
            def connectionMade(self) -> None:
                self.transport.write(payload)

            def dataReceived(self, data: bytes) -> None:
                super().dataReceived(data)
                if len(self.data) == len(payload):
                    self.transport.loseConnection()

            def connectionLost(self, reason: Failure = error.ConnectionDone) -> None:  # type: ignore[assignment]
                client_lost.callback((self, reason))

        self.connect(port, Client())
        client, reason = yield client_lost
        self.assertTrue(reason.check(error.ConnectionDone), reason)
        self.assertEqual(bytes(client.data), payload)
        self.assertEqual(client.handshakes, 1)
        [server_reason] = yield server_lost
        self.assertTrue(server_reason.check(error.ConnectionDone), server_reason)

    @defer.inlineCallbacks
    def test_twisted_7926_over_tcp(self) -> Any:
        """
        twisted#7926 on real sockets: the server stops reading, the client's
        loseConnection still ends within close_timeout.
        """
        server_lost: defer.Deferred[Failure] = defer.Deferred()
        servers: list[Recorder] = []

        class Stuck(Recorder):
            def handshakeCompleted(self) -> None:
                servers.append(self)
                self.transport.pauseProducing()
                self.transport.write(b"ready")

            def connectionLost(self, reason: Failure = error.ConnectionDone) -> None:  # type: ignore[assignment]
                server_lost.callback([reason])

        port = self.listen(Factory.forProtocol(Stuck))
        client_lost: defer.Deferred[Failure] = defer.Deferred()

        class Client(Recorder):
            def dataReceived(self, data: bytes) -> None:
                self.started = reactor.seconds()
                self.transport.loseConnection()

            def connectionLost(self, reason: Failure = error.ConnectionDone) -> None:  # type: ignore[assignment]
                client_lost.callback((self, reason))

        self.connect(port, Client(), close_timeout=0.5)
        client, reason = yield client_lost
        self.assertTrue(reason.check(error.ConnectionDone), reason)
        elapsed = reactor.seconds() - client.started
        self.assertGreaterEqual(elapsed, 0.45)
        self.assertLess(elapsed, 5)
        # The stuck server only notices once it reads again.
        self.assertFalse(server_lost.called)
        servers[0].transport.resumeProducing()
        [server_reason] = yield server_lost
        self.assertTrue(server_reason.check(error.ConnectionDone), server_reason)

    @defer.inlineCallbacks
    def test_truncation_over_tcp(self) -> Any:
        """
        The server's socket closing under TLS reaches the client as
        TLSTruncationError.
        """

        class Cutter(Recorder):
            def handshakeCompleted(self) -> None:
                self.transport.write(b"cut")
                # Under TLS, after the record is out: no close_notify.
                reactor.callLater(0.2, self.transport.transport.loseConnection)

        port = self.listen(Factory.forProtocol(Cutter))
        client_lost: defer.Deferred[Failure] = defer.Deferred()

        class Client(Recorder):
            def connectionLost(self, reason: Failure = error.ConnectionDone) -> None:  # type: ignore[assignment]
                client_lost.callback((self, reason))

        self.connect(port, Client())
        client, reason = yield client_lost
        self.assertTrue(reason.check(TLSTruncationError), reason)
        self.assertEqual(bytes(client.data), b"cut")

    @defer.inlineCallbacks
    def test_alert_not_destroyed_by_reset(self) -> Any:
        """
        The client streams megabytes with a corrupt record in the middle;
        the server's alert reaches the client although the server still had
        unread data when it failed (it drains instead of resetting).
        """
        server_lost: defer.Deferred[Failure] = defer.Deferred()

        class Sink(Recorder):
            def connectionLost(self, reason: Failure = error.ConnectionDone) -> None:  # type: ignore[assignment]
                server_lost.callback([reason])

        port = self.listen(Factory.forProtocol(Sink))
        client_lost: defer.Deferred[Failure] = defer.Deferred()

        class Client(Recorder):
            def handshakeCompleted(self) -> None:
                tls = self.transport
                # Whole records go out at once: no tail waits for the flush.
                tls.write(os.urandom(16384 * 64))
                tls.transport.write(b"\x17\x03\x03\x00\x20" + b"\x00" * 32)
                tls.write(os.urandom(16384 * 512))
                # Do not read for a moment: the alert waits unread in our
                # socket, where a reset from the server would destroy it.
                tcp = tls.transport
                tcp.pauseProducing()
                reactor.callLater(0.5, tcp.resumeProducing)

            def connectionLost(self, reason: Failure = error.ConnectionDone) -> None:  # type: ignore[assignment]
                client_lost.callback([reason])

        self.connect(port, Client())
        [reason] = yield client_lost
        self.assertTrue(reason.check(RemoteAlertError), reason)
        self.assertEqual(reason.value.alert, AlertDescription.bad_record_mac)
        [server_reason] = yield server_lost
        self.assertTrue(server_reason.check(TLSError), server_reason)

    @defer.inlineCallbacks
    def test_unix_socket(self) -> Any:
        """
        The same factories over a UNIX socket.
        """
        path = self.mktemp()
        server_factory = TLSFactory(
            Factory.forProtocol(Echo), self.pki["server"], False
        )
        port = reactor.listenUNIX(path, server_factory)
        self.addCleanup(port.stopListening)
        lost: defer.Deferred[Any] = defer.Deferred()

        class Client(Recorder):
            def connectionMade(self) -> None:
                self.transport.write(b"over unix")

            def dataReceived(self, data: bytes) -> None:
                super().dataReceived(data)
                if bytes(self.data) == b"over unix":
                    self.transport.loseConnection()

            def connectionLost(self, reason: Failure = error.ConnectionDone) -> None:  # type: ignore[assignment]
                lost.callback((self, reason))

        client_factory = TLSFactory(
            Factory.forProtocol(Client), self.pki["client"], True, "example.com"
        )
        reactor.connectUNIX(path, client_factory)
        client, reason = yield lost
        self.assertTrue(reason.check(error.ConnectionDone), reason)
        self.assertEqual(bytes(client.data), b"over unix")
        # Let the server side finish its close before the reactor is checked.
        while server_factory.protocols:
            yield deferLater(reactor, 0.01)

    @defer.inlineCallbacks
    def test_start_tls_over_tcp(self) -> Any:
        """
        STARTTLS on a real socket: plaintext lines, the upgrade, TLS lines.
        """
        holder = type("Holder", (), {"pki": self.pki, "clock": reactor})()
        server = StartTLSLines(holder, False, pipeline=False)  # type: ignore[arg-type]
        client = StartTLSLines(holder, True, pipeline=False)  # type: ignore[arg-type]
        port = reactor.listenTCP(
            0, Factory.forProtocol(lambda: server), interface="127.0.0.1"
        )
        self.addCleanup(port.stopListening)
        reactor.connectTCP(
            "127.0.0.1", port.getHost().port, ClientFactory.forProtocol(lambda: client)
        )
        while b"secret from server" not in client.lines:
            yield deferLater(reactor, 0.01)
        self.assertEqual(
            server.lines, [b"plain before", b"STARTTLS", b"secret from client"]
        )
        client.transport.loseConnection()
        yield client.done
        yield server.done
        self.assertTrue(client.lost.check(error.ConnectionDone), client.lost)
        self.assertTrue(server.lost.check(error.ConnectionDone), server.lost)

    @defer.inlineCallbacks
    def test_file_sender_download_with_paused_reader(self) -> Any:
        """
        32 MiB sent by a FileSender (pull producer) to a client that keeps
        pausing and resuming its reads arrives byte-exact, and the server's
        producer finishes.
        """
        import hashlib

        size = 32 * 1024 * 1024
        payload = os.urandom(1024 * 1024) * 32
        sent: defer.Deferred[Any] = defer.Deferred()

        class Download(Recorder):
            def handshakeCompleted(self) -> None:
                done = FileSender().beginFileTransfer(
                    io.BytesIO(payload), self.transport
                )
                done.addCallback(lambda _: self.transport.loseConnection())
                done.chainDeferred(sent)

        port = self.listen(Factory.forProtocol(Download))
        lost: defer.Deferred[Any] = defer.Deferred()

        class Reader(Protocol):
            def __init__(self) -> None:
                self.digest = hashlib.sha256()
                self.received = 0
                self.pauses = 0
                self.next_pause = 1 << 20

            def dataReceived(self, data: bytes) -> None:
                self.digest.update(data)
                self.received += len(data)
                if self.received >= self.next_pause:
                    self.next_pause += 3 << 20
                    self.pauses += 1
                    self.transport.pauseProducing()
                    reactor.callLater(0.02, self.transport.resumeProducing)

            def connectionLost(self, reason: Failure = error.ConnectionDone) -> None:  # type: ignore[assignment]
                lost.callback((self, reason))

        self.connect(port, Reader())
        yield sent
        reader, reason = yield lost
        self.assertTrue(reason.check(error.ConnectionDone), reason)
        self.assertEqual(reader.received, size)
        self.assertEqual(reader.digest.digest(), hashlib.sha256(payload).digest())
        self.assertGreater(reader.pauses, 5)

    @defer.inlineCallbacks
    def test_paused_producer_does_not_hold_truncation_close(self) -> Any:
        """
        The peer's TCP FIN (no close_notify) arrives while the application's
        producer is paused by a full write buffer.  Twisted's TCP does not
        close while a paused producer is registered (it resumes it instead),
        so the producer is detached first: once the peer reads, the close is
        orderly and prompt, not an abort at close_timeout.
        """
        server_lost: defer.Deferred[list[Failure]] = defer.Deferred()
        servers: list[TLSProtocol] = []

        @implementer(IPushProducer)
        class Streamer(Recorder):
            paused = False

            def handshakeCompleted(self) -> None:
                servers.append(self.transport)
                self.transport.registerProducer(self, True)
                self.produce()

            def produce(self) -> None:
                for _ in range(64):  # bounded: writes after a close vanish
                    if self.paused:
                        break
                    self.transport.write(b"s" * 65536)

            def pauseProducing(self) -> None:
                self.paused = True

            def resumeProducing(self) -> None:
                self.paused = False
                reactor.callLater(0, self.produce)

            def stopProducing(self) -> None:
                self.paused = True

            def connectionLost(self, reason: Failure = error.ConnectionDone) -> None:  # type: ignore[assignment]
                server_lost.callback([reason])

        port = self.listen(Factory.forProtocol(Streamer), close_timeout=20)
        client_lost: defer.Deferred[list[Failure]] = defer.Deferred()
        clients: list[TLSProtocol] = []

        class Stalled(Recorder):
            def handshakeCompleted(self) -> None:
                clients.append(self.transport)
                self.transport.pauseProducing()

            def connectionLost(self, reason: Failure = error.ConnectionDone) -> None:  # type: ignore[assignment]
                client_lost.callback([reason])

        self.connect(port, Stalled())
        while not (servers and clients and servers[0].wrappedProtocol.paused):
            yield deferLater(reactor, 0.01)
        # A FIN under TLS: the client's TCP write side shuts.
        clients[0].transport.loseWriteConnection()
        while not servers[0]._transport_closed:
            yield deferLater(reactor, 0.01)
        clients[0].resumeProducing()  # the client reads what is queued
        started = reactor.seconds()
        [reason] = yield server_lost
        self.assertLess(reactor.seconds() - started, 10)
        self.assertTrue(reason.check(TLSTruncationError), reason)
        [client_reason] = yield client_lost
        # An orderly FIN after the data (the server sent no close_notify
        # either), not a reset, which would show as a bare ConnectionLost.
        self.assertTrue(client_reason.check(TLSTruncationError), client_reason)
