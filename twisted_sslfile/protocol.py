"""The Twisted adapter: :class:`TLSProtocol`, :class:`TLSFactory`, :func:`start_tls`.

A :class:`TLSProtocol` sits between a stream transport (TCP, UNIX, another
TLS connection, ``iosim``) and an application protocol.  Toward the transport
it is an ``IProtocol``; toward the application it is the transport:
``ITransport``, ``ISSLTransport``, ``INegotiated``, ``IConsumer`` and
``IPushProducer``.  Every TLS decision is the engine's
(:class:`~twisted_sslfile.engine.connection.Connection`); this module only
moves bytes, keeps time and translates the engine's events into Twisted's
calls.  It never parses a TLS byte.

What it does differently from Twisted's ``TLSMemoryBIOProtocol`` (see
``docs/twisted.rst``):

* ``loseConnection`` sends close_notify and waits a bounded time
  (``close_timeout``) for the peer's, never forever (twisted#7926); a
  registered or paused producer never holds the close up (#8992, #8901).
  The bound covers the transport's write buffer too: a peer that stops
  reading cannot keep a closing connection, and its buffer, alive; when the
  time is up the transport is aborted (:class:`CloseTimeoutError`).
* ``loseWriteConnection`` is a TLS half-close: close_notify, then reading
  goes on (#5341).
* After a fatal alert the TCP write side is shut and the connection drained
  for ``drain_timeout`` before it is closed, so unread input cannot turn the
  close into a TCP reset that destroys the alert in flight.
* A handshake timeout is on by default.
* ``connectionLost`` tells a clean close (``ConnectionDone``) from a
  truncation (:class:`~twisted_sslfile.reasons.TLSTruncationError`) and
  from a TLS failure (the :class:`~twisted_sslfile.errors.TLSError`,
  carrying its alert).
* No ``__getattr__`` fall-through: the transport interface is exactly the
  methods of :class:`TLSProtocol`, some written in its private mixins
  (:mod:`twisted_sslfile._closing`: closing and timeouts;
  :mod:`twisted_sslfile._delegation`: what it reports and passes through).
"""

from __future__ import annotations

import collections
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from cryptography import x509
from twisted.internet import error
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import (
    IConsumer,
    IHalfCloseableDescriptor,
    IHalfCloseableProtocol,
    IHandshakeListener,
    ILoggingContext,
    INegotiated,
    IProtocol,
    IProtocolNegotiationFactory,
    IPushProducer,
    IReactorTime,
    ISSLTransport,
    ISystemHandle,
    ITCPTransport,
    ITransport,
)
from twisted.internet.protocol import Protocol
from twisted.protocols.policies import WrappingFactory
from twisted.python.failure import Failure
from zope.interface import alsoProvides, implementer

from twisted_sslfile._closing import EOF, Closer
from twisted_sslfile._coalesce import WriteCoalescer
from twisted_sslfile._delegation import TransportDelegation
from twisted_sslfile._lifecycle import TRANSITIONS, Phase, PhaseError
from twisted_sslfile._membrane import ProducerMembrane
from twisted_sslfile.context import Context
from twisted_sslfile.engine.connection import Connection
from twisted_sslfile.engine.events import (
    ApplicationData,
    CloseNotify,
    Event,
    HandshakeCompleted,
)
from twisted_sslfile.engine.sessions import Session
from twisted_sslfile.errors import TLSError
from twisted_sslfile.reasons import (
    CloseTimeoutError,
    HandshakeTimeoutError,
    TLSTruncationError,
)
from twisted_sslfile.x509 import canonical_server_name

if TYPE_CHECKING:
    from twisted.logger import Logger

    from twisted_sslfile.tlslog import ConnectionLog

__all__ = [
    "DEFAULT_CLOSE_TIMEOUT",
    "DEFAULT_DRAIN_TIMEOUT",
    "DEFAULT_HANDSHAKE_TIMEOUT",
    "CloseTimeoutError",
    "HandshakeTimeoutError",
    "TLSFactory",
    "TLSProtocol",
    "TLSTruncationError",
    "start_tls",
]

#: Seconds a handshake may take before the connection is aborted.
DEFAULT_HANDSHAKE_TIMEOUT = 30.0
#: Seconds ``loseConnection`` waits for the peer's close_notify.
DEFAULT_CLOSE_TIMEOUT = 3.0
#: Seconds the connection is drained after a fatal alert before it closes.
DEFAULT_DRAIN_TIMEOUT = 2.0

# Application bytes buffered here (before the handshake) above which a
# registered producer is paused: TLS's own back-pressure.
_HIGH_WATER = 65536
# Derived ALPN contexts kept per factory; a factory normally has one.
_MAX_CACHED_CONTEXTS = 16

# Phases in which received bytes are given to the engine: the peer has not
# closed, no alert was sent (bytes after close_notify are ignored, RFC 8446
# §6.1).
_READING = frozenset({Phase.HANDSHAKING, Phase.OPEN, Phase.WRITE_CLOSED, Phase.CLOSING})
_WRITABLE = frozenset({Phase.HANDSHAKING, Phase.OPEN, Phase.READ_CLOSED})
_ENDED = frozenset({Phase.DONE, Phase.DRAINING, Phase.ABORTED, Phase.CLOSED})
_CONNECTION_DONE = Failure(error.ConnectionDone())


def _check_timeout(value: float | None, name: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ValueError(f"{name} must be a positive number of seconds or None")
    return float(value)


def _check_timeouts(
    handshake_timeout: float | None, close_timeout: float | None, drain_timeout: float
) -> tuple[float | None, float | None, float]:
    """The three timeouts, checked in order (only the drain may not be None)."""
    handshake = _check_timeout(handshake_timeout, "handshake_timeout")
    close = _check_timeout(close_timeout, "close_timeout")
    drain = _check_timeout(drain_timeout, "drain_timeout")
    if drain is None:
        raise ValueError("drain_timeout must be a positive number of seconds")
    return handshake, close, drain


@implementer(
    INegotiated,
    ISSLTransport,
    ITCPTransport,
    ITransport,
    IConsumer,
    IPushProducer,
    IHalfCloseableProtocol,
    ILoggingContext,
)
class TLSProtocol(TransportDelegation, Closer, Protocol):
    """Run TLS over ``transport`` for ``wrappedProtocol``.

    :param factory: the :class:`TLSFactory` that built this protocol, or
        None (:func:`start_tls`).
    :param wrappedProtocol: the application protocol; it sees this object as
        its transport.
    :param context: TLS policy and credentials.
    :param is_client: the role in the handshake.
    :param server_name: client only: the name sent in SNI and checked
        against the server's certificate.
    :param handshake_timeout: seconds before an unfinished handshake is
        aborted with :class:`~twisted_sslfile.reasons.HandshakeTimeoutError`;
        None disables it.
    :param close_timeout: seconds a close may take: ``loseConnection``
        waits this long for the peer's close_notify, and any close (ours,
        the peer's, after a truncation) this long for the transport to
        write what it holds; then the transport is closed, or aborted if
        it still holds data (:class:`~twisted_sslfile.reasons.CloseTimeoutError`).
        None waits forever, as TCP's ``loseConnection`` does.
    :param drain_timeout: seconds to keep reading (and discarding) after a
        fatal alert was sent, before the transport is closed.
    :param clock: the ``IReactorTime`` for timeouts and write coalescing;
        the global reactor when None.
    :param session: client only: a :class:`~twisted_sslfile.engine.sessions.
        Session` from an earlier connection to offer for resumption.
    :param connection_log: a ``twisted.logger.Logger`` that gets one event
        when the connection ends (:mod:`twisted_sslfile.tlslog`), or None.
    """

    def __init__(
        self,
        factory: TLSFactory | None,
        wrappedProtocol: Any,
        *,
        context: Context,
        is_client: bool,
        server_name: str | None = None,
        session: Session | None = None,
        handshake_timeout: float | None = DEFAULT_HANDSHAKE_TIMEOUT,
        close_timeout: float | None = DEFAULT_CLOSE_TIMEOUT,
        drain_timeout: float = DEFAULT_DRAIN_TIMEOUT,
        clock: IReactorTime | None = None,
        connection_log: Logger | None = None,
    ) -> None:
        self.factory = factory
        self.wrappedProtocol = wrappedProtocol
        self._handshake_timeout, self._close_timeout, self._drain_timeout = (
            _check_timeouts(handshake_timeout, close_timeout, drain_timeout)
        )
        self._clock_ = clock
        # Made now, so that a bad configuration fails in buildProtocol and
        # not half-way into a connection.
        self._conn = Connection(
            context, is_client=is_client, server_name=server_name, session=session
        )
        self.is_client = is_client

        #: ITransport-style state, as FileDescriptor keeps it.
        self.disconnecting = False
        self.disconnected = False

        # Handshake.
        self._handshake_result: HandshakeCompleted | None = None
        self._handshake_failure: Failure | None = None
        self._waiters: list[Deferred[HandshakeCompleted]] = []
        self._peer_chain: list[x509.Certificate] | None = None
        self._wrapped_connected = False

        # Application writes not yet given to the engine (coalescing).
        self._writes = WriteCoalescer(lambda: self._clock, self._scheduled_flush)
        # True while dataReceived hands data to the application: its own
        # flush at the end sends what the application writes meanwhile, so
        # an answer needs no end-of-turn timer (a callLater and its cancel
        # per request of a request/response protocol).
        self._receiving = False

        # Application reads held back while the application pauses us.
        # Made on first use: most connections never hold data back, and an
        # empty deque costs 760 bytes on each of thousands of idle ones.
        self._pending: collections.deque[object] | None = None
        self._delivery_call: Any = None
        self._app_paused = False
        self._transport_read_paused = False

        # Producer of the application (we are its consumer), behind the
        # membrane registered with the transport below.
        self._membrane: ProducerMembrane | None = None

        # The lifecycle: one phase, changed only by _transition (_lifecycle).
        self._phase = Phase.HANDSHAKING
        # What was asked of the transport below, whatever the phase.
        self._transport_closed = False  # loseConnection or abortConnection
        self._tcp_write_shut = False  # loseWriteConnection
        self._transport_going = False  # it stopped our producer: being lost
        self._reason: Failure | None = None

        self._handshake_timer: Any = None
        self._close_timer: Any = None
        self._drain_timer: Any = None
        self._half_close_possible = False

        # The connection log (tlslog): None, and never imported, when off.
        self._log: ConnectionLog | None = None
        if connection_log is not None:
            from twisted_sslfile.tlslog import ConnectionLog

            self._log = ConnectionLog(connection_log)

    # -- helpers -------------------------------------------------------------

    def _transition(self, phase: Phase) -> None:
        """Move to ``phase``: the one place the lifecycle changes."""
        if phase not in TRANSITIONS[self._phase]:
            raise PhaseError(f"{self._phase.name} -> {phase.name}")
        self._phase = phase

    @property
    def _lost(self) -> bool:
        """connectionLost ran."""
        return self._phase is Phase.CLOSED

    @property
    def _shutting_down(self) -> bool:
        """Past the point where anything new is sent or delivered: the
        transport is being closed, or TLS has ended (alert, abort, done)."""
        return self._transport_closed or self._phase in _ENDED

    @property
    def _write_open(self) -> bool:
        """The application may still write."""
        return self._phase in _WRITABLE and not self._transport_closed

    @property
    def _buffered(self) -> int:
        """Application bytes written and not yet given to the engine."""
        return self._writes.buffered

    @property
    def _clock(self) -> Any:
        if self._clock_ is None:
            from twisted.internet import reactor

            self._clock_ = reactor
        return self._clock_

    def __repr__(self) -> str:
        role = "client" if self.is_client else "server"
        state = self._conn.state.value
        return f"<TLSProtocol {role} {state} for {self.wrappedProtocol!r}>"

    # -- IProtocol, toward the lower transport -------------------------------

    def makeConnection(self, transport: Any) -> None:
        """Attach to ``transport`` and start the handshake."""
        # self.transport, typed: ITransport | None; this one is set for good.
        self._below: ITransport = transport
        Protocol.makeConnection(self, transport)

    def connectionMade(self) -> None:
        transport = self.transport
        if self.factory is not None:
            self.factory.registerProtocol(self)
        if ISystemHandle.providedBy(transport):
            alsoProvides(self, ISystemHandle)
        self._half_close_possible = ITCPTransport.providedBy(
            transport
        ) or IHalfCloseableDescriptor.providedBy(transport)
        if self._log is not None:
            self._log.connection_made(transport, self._clock.seconds())
        if self._handshake_timeout is not None:
            self._handshake_timer = self._clock.callLater(
                self._handshake_timeout, self._handshake_timed_out
            )
        if self._wrapped_connected:
            # start_tls: the application is connected already; only its
            # transport changes.
            self.wrappedProtocol.transport = self
        else:
            self._wrapped_connected = True
            self.wrappedProtocol.makeConnection(self)
        if self._shutting_down or self._lost:
            return
        try:
            self._conn.start()
        except TLSError as exc:
            self._fail(exc)
            return
        self._write_output()

    def dataReceived(self, data: bytes) -> None:
        """Bytes from the transport: decrypt, and act on what they carry."""
        if self._phase not in _READING:
            # Draining after an alert, or bytes after close_notify, which
            # RFC 8446 §6.1 says to ignore, or after TLS ended.
            return
        try:
            events = self._conn.receive_data(data)
        except TLSError as exc:
            # What arrived intact before the failure still reaches the
            # application, ahead of connectionLost.
            self._handle_events(exc.events)
            self._fail(exc)
            return
        receiving, self._receiving = self._receiving, True
        try:
            self._handle_events(events)
        finally:
            self._receiving = receiving
        if not self._lost and not self._shutting_down:
            # Replies the application wrote while handling the data, and
            # anything the engine queued (handshake flights, KeyUpdate
            # answers), go out now instead of a reactor turn later.
            self._flush()

    def connectionLost(self, reason: Failure = _CONNECTION_DONE) -> None:
        """The transport is gone: tell the application why, exactly once."""
        if self._lost:
            return
        # We closed and our close_notify is out (RFC 8446 §6.1: the peer's
        # answer is optional).
        closed_by_us = self._phase is Phase.CLOSING and self._conn.sent_close_notify
        self._transition(Phase.CLOSED)
        self.connected = False
        self.disconnecting = True
        self.disconnected = True
        for name in ("_handshake_timer", "_close_timer", "_drain_timer"):
            self._cancel(name)
        self._writes.cancel()
        self._cancel("_delivery_call")
        if self._reason is None:
            if closed_by_us:
                # (The peer's clean close set the reason when it came.)
                self._reason = Failure(error.ConnectionDone())
            elif reason.check(error.ConnectionDone):
                self._reason = self._truncation()
            else:
                self._reason = reason
        final = self._reason
        self._fail_handshake(final)
        self._stop_producer()
        self._writes.clear()
        # Data already received, decrypted and authenticated is not thrown
        # away because the application happened to be paused (closing
        # itself drops it: loseConnection and abortConnection clear it).
        pending, self._pending = self._pending or (), None
        for item in pending:
            if item is not EOF:
                self.wrappedProtocol.dataReceived(item)
        if self.factory is not None and self in getattr(self.factory, "protocols", {}):
            self.factory.unregisterProtocol(self)
        if self._log is not None:
            self._log.connection_lost(
                reason=final,
                result=self._handshake_result,
                is_client=self.is_client,
                server_name=self._conn.server_name,
                now=self._clock.seconds(),
            )
        if self._wrapped_connected:
            self.wrappedProtocol.connectionLost(final)

    # -- ITransport, toward the application ----------------------------------

    def write(self, data: bytes) -> None:
        """Send ``data``; queued before the handshake, coalesced per reactor turn."""
        if not isinstance(data, bytes):
            raise TypeError(f"data must be bytes, not {type(data).__name__}")
        if not self._write_open or not data:
            return
        writes = self._writes
        writes.append(data)
        if self._conn.handshake_complete:
            full = writes.take_full_records()
            if full and self._engine_send(full):
                self._write_output()
            if writes.buffered and not self._receiving:
                writes.schedule()
        else:
            self._update_producer()

    def writeSequence(self, data: Iterable[bytes]) -> None:
        """Send each of ``data`` in order, as :meth:`write` does."""
        for chunk in data:
            self.write(chunk)

    def keyUpdate(self, requestPeer: bool = True) -> None:
        """Switch to fresh sending keys (TLS 1.3 KeyUpdate, RFC 8446 §4.6.3)."""
        if not self._conn.handshake_complete:
            raise RuntimeError("KeyUpdate needs a completed handshake")
        if not self._write_open:
            raise RuntimeError("KeyUpdate after the write side was closed")
        self._flush()
        try:
            self._conn.key_update(request_peer=requestPeer)
        except TLSError as exc:
            self._fail(exc)
            raise
        self._write_output()

    # -- IConsumer -----------------------------------------------------------

    def registerProducer(self, producer: Any, streaming: bool) -> None:
        """Register the application's producer; push or pull."""
        if self._membrane is not None:
            raise RuntimeError(
                f"Cannot register producer {producer!r}, because producer "
                f"{self._membrane.producer!r} was never unregistered."
            )
        if not self._write_open:
            # Nothing it writes can be sent any more.
            producer.stopProducing()
            return
        membrane = self._membrane = ProducerMembrane(
            producer,
            bool(streaming),
            backlog_full=lambda: self._writes.buffered >= _HIGH_WATER,
            transport_stopped=self._transport_stopped_producer,
        )
        register = getattr(self.transport, "registerProducer", None)
        if register is not None:
            register(membrane, membrane.streaming)
        elif not membrane.streaming:
            membrane.demand()
        membrane.update()

    def unregisterProducer(self) -> None:
        """Forget the application's producer (a no-op when none is registered)."""
        membrane, self._membrane = self._membrane, None
        if membrane is None:
            return
        membrane.detach()
        unregister = getattr(self.transport, "unregisterProducer", None)
        if unregister is not None and not self._lost:
            unregister()

    # -- IPushProducer: the application pausing our reads --------------------

    def pauseProducing(self) -> None:
        """Stop delivering data; the transport below is paused once the
        handshake is done (never before: that would stall it)."""
        self._app_paused = True
        self._update_reading()

    def resumeProducing(self) -> None:
        """Deliver held data (from the next reactor turn) and read again."""
        self._app_paused = False
        if self._pending:
            self._schedule_delivery()
        self._update_reading()

    def stopProducing(self) -> None:
        """As a TCP transport does: close the connection."""
        self.loseConnection()

    # -- events --------------------------------------------------------------

    def _handle_events(self, events: list[Event]) -> None:
        count = len(events)
        i = 0
        while i < count:
            if self._lost or self._shutting_down:
                # An application callback aborted the connection, or the
                # peer's close_notify (always the last event) closed it.
                return
            event = events[i]
            i += 1
            if isinstance(event, ApplicationData):
                # The engine already joins the records of one receive_data
                # into one event: one dataReceived per transport read.
                self._deliver(event.data)
            elif isinstance(event, HandshakeCompleted):
                self._on_handshake(event)
            elif isinstance(event, CloseNotify):
                self._on_peer_close_notify()
            # KeyUpdated, SessionTicket and user_canceled concern the engine
            # only; the KeyUpdate answer is flushed by dataReceived.

    def _on_handshake(self, event: HandshakeCompleted) -> None:
        self._cancel("_handshake_timer")
        self._handshake_result = event
        if IHandshakeListener.providedBy(self.wrappedProtocol):
            self.wrappedProtocol.handshakeCompleted()
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            waiter.callback(event)
        if self._shutting_down:
            return
        if self._phase is Phase.HANDSHAKING:
            self._transition(Phase.OPEN)
        self._flush()
        phase = self._phase
        if (
            phase in (Phase.CLOSING, Phase.WRITE_CLOSED)
            and not self._conn.sent_close_notify
        ):
            # The close requested during the handshake: close_notify now.
            self._send_close_notify()
            if self._phase is not phase:
                return  # it failed: draining
            if phase is Phase.CLOSING:
                if self._close_timer is not None:
                    self._cancel("_close_timer")
                self._await_peer_close()
            else:
                self._notify_write_lost()
        self._update_reading()

    def _deliver(self, data: bytes) -> None:
        if self._log is not None:
            self._log.bytes_in += len(data)
        if self._phase in (Phase.CLOSING, Phase.DRAINING):
            return  # the application closed; like TCP, it reads no more
        if self._app_paused or self._pending:
            self._hold(data)
            return
        self.wrappedProtocol.dataReceived(data)

    # -- delivery of held data -----------------------------------------------

    def _schedule_delivery(self) -> None:
        if self._delivery_call is None:
            self._delivery_call = self._clock.callLater(0, self._deliver_pending)

    def _hold(self, item: object) -> None:
        """Keep received data (or the peer's EOF) for a paused application."""
        if self._pending is None:
            self._pending = collections.deque()
        self._pending.append(item)

    def _deliver_pending(self) -> None:
        self._delivery_call = None
        # (Closing clears _pending: nothing is delivered after loseConnection.)
        while self._pending and not self._app_paused and not self._lost:
            item = self._pending.popleft()
            if item is EOF:
                self._app_read_closed()
            else:
                self.wrappedProtocol.dataReceived(item)
        self._update_reading()

    def _update_reading(self) -> None:
        """Pause the transport's reads iff the application asked and nothing
        TLS needs to read (handshake, close_notify, drain) is outstanding."""
        if self._lost or self.transport is None:
            return
        want = (
            self._app_paused
            and self._conn.handshake_complete
            and self._phase not in (Phase.CLOSING, Phase.DRAINING)
            and not self._shutting_down
        )
        if want == self._transport_read_paused:
            return
        self._transport_read_paused = want
        method = getattr(
            self.transport, "pauseProducing" if want else "resumeProducing", None
        )
        if method is not None:
            method()

    # -- writing -------------------------------------------------------------

    def _scheduled_flush(self) -> None:
        if not self._lost and not self._shutting_down:
            self._flush()

    def _engine_send(self, data: bytes | memoryview) -> bool:
        """Give the engine application data; a failure fails the connection."""
        try:
            self._conn.send(data)
        except TLSError as exc:
            self._fail(exc)
            return False
        if self._log is not None:
            self._log.bytes_out += len(data)
        return True

    def _flush(self) -> None:
        """Move coalesced writes into the engine and its output to the transport."""
        self._writes.cancel()
        if (
            self._writes.buffered
            and self._conn.handshake_complete
            and not self._conn.sent_close_notify
            and self._conn.error is None
            and not self._engine_send(self._writes.take())
        ):
            return
        self._write_output()
        self._update_producer()

    def _write_output(self) -> None:
        if self._lost:
            return
        records = self._conn.pending_output()
        if not records:
            return
        if len(records) == 1:
            self._below.write(records[0])
        else:
            self._below.writeSequence(records)

    def _send_close_notify(self) -> None:
        """Flush what the application wrote, then close_notify (RFC 8446 §6.1)."""
        conn = self._conn
        if conn.error is not None or conn.sent_close_notify:
            return
        if self._writes.buffered and not self._engine_send(self._writes.take()):
            return
        conn.close()
        self._write_output()

    # -- producers -----------------------------------------------------------

    def _update_producer(self) -> None:
        if self._membrane is not None:
            self._membrane.update()

    def _transport_stopped_producer(self) -> None:
        """The transport below stopped the producer we registered with it.

        Twisted's TCP does that as it is lost, just before connectionLost.
        The application's producer is stopped in turn; if it closes the
        connection (a TLS transport registered as its own producer does),
        that is no clean close of ours: the transport's loss, about to be
        reported, is what ended the connection.
        """
        self._transport_going = True
        self._stop_producer()

    def _stop_producer(self) -> None:
        membrane = self._membrane
        if membrane is None:
            return
        self.unregisterProducer()
        membrane.producer.stopProducing()


class TLSFactory(WrappingFactory):
    """Wrap every protocol of ``wrapped_factory`` in a :class:`TLSProtocol`.

    A drop-in for Twisted's ``TLSMemoryBIOFactory``: listen or connect with
    it where the plain factory went.  When ``wrapped_factory`` provides
    ``IProtocolNegotiationFactory``, its ``acceptableProtocols()`` become the
    ALPN (and NPN) list of each connection, in a Context derived from
    ``context`` with :meth:`Context.replace` and cached per list.

    ``connection_log=True`` logs one structured event per connection when it
    ends (peer, SNI, what was negotiated, bytes, duration, why it ended;
    failed handshakes at ``warn`` level) to the logger of
    :mod:`twisted_sslfile.tlslog`; a ``twisted.logger.Logger`` logs to that
    logger instead.  Off by default; off, that module is not even imported.
    """

    protocol = TLSProtocol  # type: ignore[assignment]

    def __init__(
        self,
        wrapped_factory: Any,
        context: Context,
        is_client: bool,
        server_name: str | None = None,
        *,
        handshake_timeout: float | None = DEFAULT_HANDSHAKE_TIMEOUT,
        close_timeout: float | None = DEFAULT_CLOSE_TIMEOUT,
        drain_timeout: float = DEFAULT_DRAIN_TIMEOUT,
        clock: IReactorTime | None = None,
        session: Session | None = None,
        connection_log: bool | Logger = False,
    ) -> None:
        super().__init__(wrapped_factory)
        if server_name is not None and not is_client:
            raise ValueError("server_name is a client option")
        if is_client and server_name is None and context.verify:
            raise ValueError(
                "a verifying client needs server_name: the host name or IP address "
                "the server's certificate must match"
            )
        if server_name is not None:
            # Checked and mapped to A-labels now, not at the first connection.
            server_name = canonical_server_name(server_name)
        _check_timeouts(handshake_timeout, close_timeout, drain_timeout)
        self.context = context
        self.is_client = is_client
        self.server_name = server_name
        self.handshake_timeout = handshake_timeout
        self.close_timeout = close_timeout
        self.drain_timeout = drain_timeout
        self.clock = clock
        if session is not None and not is_client:
            raise ValueError("session is a client option")
        #: Offered by every connection this factory makes (client only).
        self.session = session
        #: Where each connection's log event goes; None when the log is off.
        self.connection_log: Logger | None = None
        if connection_log is not False:
            from twisted_sslfile.tlslog import resolve_logger

            self.connection_log = resolve_logger(connection_log)
        self._contexts: dict[tuple[bytes, ...], tuple[Context, object, Context]] = {}

    def context_for_connection(self) -> Context:
        """The Context for the next connection (ALPN from the wrapped factory)."""
        base = self.context
        negotiation = IProtocolNegotiationFactory(self.wrappedFactory, None)
        if negotiation is None:
            return base
        protocols = tuple(negotiation.acceptableProtocols())
        if not protocols:
            return base
        cached = self._contexts.get(protocols)
        # Valid only for the same base context and credentials (which
        # load_cert_chain may swap at run time).
        if cached is not None and cached[0] is base and cached[1] is base.credentials:
            return cached[2]
        derived = base.replace(alpn_protocols=protocols, npn_protocols=protocols)
        if len(self._contexts) >= _MAX_CACHED_CONTEXTS:
            self._contexts.clear()
        self._contexts[protocols] = (base, base.credentials, derived)
        return derived

    # WrappingFactory assumes a ClientFactory underneath; a plain Factory
    # (what Factory.forProtocol makes) has none of these three.

    def startedConnecting(self, connector: Any) -> None:
        method = getattr(self.wrappedFactory, "startedConnecting", None)
        if method is not None:
            method(connector)

    def clientConnectionFailed(self, connector: Any, reason: Failure) -> None:
        method = getattr(self.wrappedFactory, "clientConnectionFailed", None)
        if method is not None:
            method(connector, reason)

    def clientConnectionLost(self, connector: Any, reason: Failure) -> None:
        method = getattr(self.wrappedFactory, "clientConnectionLost", None)
        if method is not None:
            method(connector, reason)

    def buildProtocol(self, addr: Any) -> TLSProtocol | None:  # type: ignore[override]
        wrapped = self.wrappedFactory.buildProtocol(addr)
        if wrapped is None:
            return None
        return self.protocol(
            self,
            wrapped,
            context=self.context_for_connection(),
            is_client=self.is_client,
            server_name=self.server_name,
            handshake_timeout=self.handshake_timeout,
            close_timeout=self.close_timeout,
            drain_timeout=self.drain_timeout,
            clock=self.clock,
            session=self.session,
            connection_log=self.connection_log,
        )


def start_tls(
    target: Any,
    context: Context,
    is_client: bool,
    server_name: str | None = None,
    *,
    initial_data: bytes = b"",
    session: Session | None = None,
    handshake_timeout: float | None = DEFAULT_HANDSHAKE_TIMEOUT,
    close_timeout: float | None = DEFAULT_CLOSE_TIMEOUT,
    drain_timeout: float = DEFAULT_DRAIN_TIMEOUT,
    clock: IReactorTime | None = None,
    connection_log: bool | Logger = False,
) -> TLSProtocol:
    """Upgrade a live plaintext connection to TLS (STARTTLS).

    ``target`` is the connected application protocol or its transport.
    Bytes already written stay ahead of the handshake: they are in the
    transport's buffer before the ClientHello or ServerHello.  Bytes already
    *received* past the upgrade point (a pipelined ClientHello that arrived
    with the STARTTLS command, typically what ``LineReceiver.clearLineBuffer()``
    returns) must be passed as ``initial_data``; they are fed to TLS first.

    Returns the :class:`TLSProtocol`, which is now the protocol's transport.
    The transport must not have a producer registered by the application:
    unregister it first and register it again on the returned transport.
    ``connection_log`` is :class:`TLSFactory`'s; ``session`` (client) is
    an earlier connection's session to offer for resumption.
    """
    # A flag, not the test itself as the condition: providedBy would narrow
    # ``target`` to IProtocol, which declares no ``transport`` (Protocol has).
    is_protocol = IProtocol.providedBy(target)
    protocol: Any
    transport: Any
    if is_protocol and getattr(target, "transport", None) is not None:
        protocol, transport = target, target.transport
    else:
        transport = target
        protocol = (
            transport.wrappedProtocol
            if isinstance(transport, TLSProtocol)
            else getattr(transport, "protocol", None)
        )
    if protocol is None or transport is None:
        raise ValueError(f"{target!r} is neither a connected protocol nor a transport")
    if getattr(transport, "producer", None) is not None:
        raise ValueError("unregister the transport's producer before start_tls")
    logger = None
    if connection_log is not False:
        from twisted_sslfile.tlslog import resolve_logger

        logger = resolve_logger(connection_log)
    tls = TLSProtocol(
        None,
        protocol,
        context=context,
        is_client=is_client,
        server_name=server_name,
        session=session,
        handshake_timeout=handshake_timeout,
        close_timeout=close_timeout,
        drain_timeout=drain_timeout,
        clock=clock,
        connection_log=logger,
    )
    tls._wrapped_connected = True
    # From now on the transport delivers to TLS.
    if isinstance(transport, TLSProtocol):
        transport.wrappedProtocol = tls
    else:
        transport.protocol = tls
    tls.makeConnection(transport)
    if initial_data:
        tls.dataReceived(initial_data)
    return tls
