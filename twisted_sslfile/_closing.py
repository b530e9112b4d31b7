"""How a :class:`~twisted_sslfile.protocol.TLSProtocol` connection ends.

Every way out of the lifecycle (:mod:`twisted_sslfile._lifecycle`) is here:
the application's ``loseConnection``, ``loseWriteConnection`` and
``abortConnection``; the peer's close_notify and its FIN; a fatal TLS error
(alert, then drain); and the three timers that bound the end (handshake,
close, drain timeouts), with the close or abort of the transport below.
docs/twisted.rst says what the application sees.  The rest of the adapter
(reading, writing, events, producers) stays in :mod:`twisted_sslfile.protocol`
and is reached through the methods declared under ``TYPE_CHECKING`` below.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from twisted.internet import error
from twisted.internet.interfaces import (
    IHalfCloseableProtocol,
    IReactorTime,
    ITCPTransport,
    ITransport,
)
from twisted.python.failure import Failure

from twisted_sslfile._coalesce import WriteCoalescer
from twisted_sslfile._lifecycle import Phase
from twisted_sslfile.engine.connection import Connection
from twisted_sslfile.engine.events import HandshakeCompleted
from twisted_sslfile.errors import RemoteAlertError, TLSError
from twisted_sslfile.reasons import (
    CloseTimeoutError,
    HandshakeTimeoutError,
    TLSTruncationError,
)

if TYPE_CHECKING:
    from collections import deque

    from twisted.internet.defer import Deferred

    from twisted_sslfile.tlslog import ConnectionLog

__all__ = ["EOF", "Closer"]

#: In the delivery queue of held reads: the peer's close_notify.
EOF = object()

# The peer's close_notify has arrived (RFC 8446 §6.1: each side closes its
# own direction).
_PEER_CLOSED = frozenset({Phase.READ_CLOSED, Phase.FINISHING, Phase.DONE})


class Closer:
    """Closing, failing and timing out, for TLSProtocol (a mixin)."""

    # The state used here, owned and initialised by TLSProtocol.
    wrappedProtocol: Any
    disconnecting: bool
    _below: ITransport  # the transport below, set by makeConnection
    _conn: Connection
    _phase: Phase
    _writes: WriteCoalescer
    _reason: Failure | None
    _transport_closed: bool
    _tcp_write_shut: bool
    _transport_going: bool
    _half_close_possible: bool
    _handshake_result: HandshakeCompleted | None
    _handshake_failure: Failure | None
    _waiters: list[Deferred[HandshakeCompleted]]
    _handshake_timeout: float | None
    _close_timeout: float | None
    _drain_timeout: float
    _handshake_timer: Any
    _close_timer: Any
    _drain_timer: Any
    _delivery_call: Any
    _pending: deque[object] | None
    _app_paused: bool
    _log: ConnectionLog | None

    if TYPE_CHECKING:
        # TLSProtocol's, used here.
        @property
        def _lost(self) -> bool: ...
        @property
        def _shutting_down(self) -> bool: ...
        @property
        def _write_open(self) -> bool: ...
        @property
        def _buffered(self) -> int: ...
        @property
        def _clock(self) -> IReactorTime: ...
        def _transition(self, phase: Phase) -> None: ...
        def _stop_producer(self) -> None: ...
        def _update_reading(self) -> None: ...
        def _write_output(self) -> None: ...
        def _send_close_notify(self) -> None: ...
        def _hold(self, item: object) -> None: ...

    def _tcp_below(self) -> ITCPTransport:
        """The transport below, to shut its write side.

        Called only when ``_half_close_possible``: it provides
        ``ITCPTransport``, or ``IHalfCloseableDescriptor``, which declares
        no ``loseWriteConnection`` although every Twisted transport that
        provides it (``FileDescriptor``'s) has one.
        """
        return cast(ITCPTransport, self._below)

    def readConnectionLost(self) -> None:
        """The transport's peer shut its write side (TCP FIN)."""
        phase = self._phase
        if phase is Phase.CLOSED:
            return
        if phase in (Phase.DRAINING, Phase.CLOSING) or self._transport_closed:
            self._close_transport()
            return
        if phase in _PEER_CLOSED:
            # A FIN after close_notify is the normal end of the peer's side;
            # a half-closed (READ_CLOSED) application may still be writing.
            if phase is not Phase.READ_CLOSED:
                self._close_transport()
            return
        self._set_reason(self._truncation())
        self._transition(Phase.ABORTED)
        self._close_transport()

    def writeConnectionLost(self) -> None:
        """The transport finished shutting its write side; nothing to do."""

    def loseConnection(self) -> None:
        """Flush, send close_notify, and close once the peer answers (or
        ``close_timeout`` passes).  A registered producer is stopped: what it
        would write after this could never be sent."""
        if self._phase in (Phase.CLOSING, Phase.CLOSED) or self._transport_going:
            return
        self.disconnecting = True
        self._stop_producer()
        if self._phase in (Phase.CLOSING, Phase.CLOSED):
            # The producer closed in turn (a transport that is its own
            # producer): that call did it all.
            return
        self._pending = None
        self._cancel("_delivery_call")
        if self._shutting_down:
            return
        if not self._conn.handshake_complete:
            if self._buffered:
                # Data written before the handshake still goes out, then
                # close_notify; the handshake timeout bounds the wait.
                self._transition(Phase.CLOSING)
                if self._handshake_timer is None:
                    self._start_close_timer()
                self._update_reading()
                return
            # Nothing was said yet: there is no session worth closing.
            self._set_reason(Failure(error.ConnectionDone()))
            self._fail_handshake(
                Failure(
                    error.ConnectionDone("closed before the TLS handshake completed")
                )
            )
            self._transition(Phase.CLOSING)
            self._close_transport()
            return
        if self._phase in _PEER_CLOSED:
            self._send_close_notify()
            if not self._shutting_down:
                self._transition(Phase.DONE)
            self._close_transport()
            return
        # Compared through a local: mypy would keep ``self._phase`` narrowed
        # (not CLOSING, from the first test) across _send_close_notify,
        # which can fail the connection and so change the phase.
        closing = Phase.CLOSING
        self._transition(closing)
        self._send_close_notify()
        if self._phase is not closing:
            return  # it failed: draining
        self._await_peer_close()
        self._update_reading()

    def loseWriteConnection(self) -> None:
        """TLS half-close: flush, send close_notify, keep reading.

        A half-closeable application is told ``writeConnectionLost()`` once
        close_notify is out; the peer's close_notify then ends the connection.
        """
        if not self._write_open:
            return
        peer_closed = self._phase is Phase.READ_CLOSED
        if not self._conn.handshake_complete:
            # close_notify is owed until the handshake completes.
            self._transition(Phase.FINISHING if peer_closed else Phase.WRITE_CLOSED)
            return
        if not peer_closed:
            self._transition(Phase.WRITE_CLOSED)
        self._send_close_notify()
        self._notify_write_lost()
        if peer_closed and not self._shutting_down:
            self._transition(Phase.DONE)
            self._close_transport()

    def abortConnection(self) -> None:
        """Drop the connection at once: no flush, no close_notify."""
        if self._lost:
            return
        self._set_reason(Failure(error.ConnectionAborted()))
        self._fail_handshake(self._reason)  # type: ignore[arg-type]
        if self._phase is not Phase.ABORTED:
            self._transition(Phase.ABORTED)
        self.disconnecting = True
        self._writes.clear()
        self._pending = None
        self._stop_producer()
        self._abort_transport()

    def _on_peer_close_notify(self) -> None:
        phase = self._phase
        if self._log is not None:
            self._log.peer_close_notify(self._conn.sent_close_notify)
        self._set_reason(Failure(error.ConnectionDone()))
        if phase is Phase.CLOSING:
            # Our close_notify is out (or we gave up on the session): done.
            self._transition(Phase.DONE)
            self._close_transport()
            return
        if IHalfCloseableProtocol.providedBy(self.wrappedProtocol):
            # RFC 8446 §6.1: each direction closes on its own.
            self._transition(
                Phase.FINISHING if phase is Phase.WRITE_CLOSED else Phase.READ_CLOSED
            )
            if self._app_paused or self._pending:
                self._hold(EOF)
            else:
                self._app_read_closed()
            return
        # Not half-closeable: answer with our close_notify and close.
        self.disconnecting = True
        self._stop_producer()
        if self._conn.handshake_complete:
            self._send_close_notify()
        if not self._shutting_down:
            self._transition(Phase.DONE)
        self._close_transport()

    def _app_read_closed(self) -> None:
        self.wrappedProtocol.readConnectionLost()
        if self._phase is Phase.FINISHING and self._conn.sent_close_notify:
            # Our side was closed already: both are now.
            self._transition(Phase.DONE)
            self._close_transport()

    def _notify_write_lost(self) -> None:
        """Our close_notify is out (called once: at the WRITE_CLOSED close)."""
        if IHalfCloseableProtocol.providedBy(self.wrappedProtocol):
            self.wrappedProtocol.writeConnectionLost()

    # -- closing: the machinery ----------------------------------------------

    def _set_reason(self, reason: Failure) -> None:
        if self._reason is None:
            self._reason = reason

    def _truncation(self) -> Failure:
        if self._conn.handshake_complete:
            return Failure(TLSTruncationError())
        return Failure(TLSTruncationError("closed during the TLS handshake"))

    def _fail_handshake(self, reason: Failure) -> None:
        if self._handshake_result is not None or self._handshake_failure is not None:
            return
        self._handshake_failure = reason
        self._cancel("_handshake_timer")
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            waiter.errback(reason)

    def _fail(self, exc: TLSError) -> None:
        """A fatal TLS error: send its alert (queued by the engine) and close."""
        self._set_reason(Failure(exc))
        self._fail_handshake(self._reason)  # type: ignore[arg-type]
        self._writes.clear()
        remote = isinstance(exc, RemoteAlertError)
        # Before the producer is stopped: what it writes then is dropped.
        self._transition(Phase.ABORTED if remote else Phase.DRAINING)
        self._stop_producer()
        self._write_output()
        if remote:
            # The peer ended it and sends nothing more; nothing to drain.
            self._close_transport()
        else:
            self._drain_and_close()

    def _drain_and_close(self) -> None:
        """Shut the write side and read (discarding) until the peer closes.

        Closing a socket with unread input makes the kernel send a reset,
        and a reset makes the peer drop what it has not read yet: our alert.
        """
        self._pending = None
        self._cancel("_handshake_timer")
        self._cancel("_close_timer")
        if not self._half_close_possible:
            self._close_transport()
            return
        self._update_reading()  # reading resumes: the drain must see the FIN
        self._drain_timer = self._clock.callLater(
            self._drain_timeout, self._drain_timed_out
        )
        if not self._tcp_write_shut:
            self._tcp_write_shut = True
            self._tcp_below().loseWriteConnection()

    def _await_peer_close(self) -> None:
        """Our close_notify is out: wait (bounded) for the peer's."""
        self._start_close_timer()
        if self._half_close_possible and not self._tcp_write_shut:
            # After close_notify nothing more is written (RFC 8446 §6.1); the
            # FIN tells peers that read to end of stream.
            self._tcp_write_shut = True
            self._tcp_below().loseWriteConnection()

    def _start_close_timer(self) -> None:
        if self._close_timer is None and self._close_timeout is not None:
            self._close_timer = self._clock.callLater(
                self._close_timeout, self._close_timed_out
            )

    def _close_transport(self) -> None:
        """Tell the transport to close once its buffer is written, and bound
        that: a peer that reads nothing keeps the buffer full, and the
        transport would wait for it forever.  The close timer (already
        running after loseConnection, started here otherwise) aborts it."""
        if self._transport_closed or self._lost:
            return
        self._transport_closed = True
        self._cancel("_drain_timer")
        self._writes.cancel()
        # Twisted's TCP does not close while a paused producer is registered
        # (it resumes it when the buffer drains, and waits for more): the
        # application's producer, which can write nothing more, goes first.
        self._stop_producer()
        if self._lost:
            return
        self._below.loseConnection()
        if not self._lost:
            self._start_close_timer()

    def _abort_transport(self) -> None:
        self._transport_closed = True
        for name in ("_handshake_timer", "_close_timer", "_drain_timer"):
            self._cancel(name)
        self._writes.cancel()
        abort = getattr(self._below, "abortConnection", None)
        if abort is not None:
            abort()
        else:
            self._below.loseConnection()

    def _handshake_timed_out(self) -> None:
        self._handshake_timer = None
        if self._lost or self._conn.handshake_complete:
            return
        reason = Failure(
            HandshakeTimeoutError(
                string=f"no TLS handshake within {self._handshake_timeout:g} s"
            )
        )
        self._set_reason(reason)
        self._fail_handshake(reason)
        self._transition(Phase.ABORTED)
        self._stop_producer()
        self._abort_transport()

    def _close_timed_out(self) -> None:
        self._close_timer = None
        self._finish_close(self._close_timeout)

    def _drain_timed_out(self) -> None:
        self._drain_timer = None
        self._finish_close(self._drain_timeout)

    def _finish_close(self, waited: float | None) -> None:
        """Time is up: close now, gracefully if the transport can, else abort.

        A transport whose write side we shut closes at once when everything
        we wrote is out (a TCP transport with an empty buffer); one that does
        not still holds data the peer never took, and is aborted, dropping
        it.  The abort is reported as :class:`CloseTimeoutError` unless an
        error (a TLS failure, a truncation) already explains the end.
        """
        if self._lost:
            return
        if not self._transport_closed:
            self._close_transport()
            if self._lost:
                return
        if self._reason is None or self._reason.check(error.ConnectionDone):
            self._reason = Failure(
                CloseTimeoutError(f"the peer did not finish closing in {waited:g} s")
            )
        self._abort_transport()

    def _cancel(self, name: str) -> None:
        call = getattr(self, name)
        if call is not None:
            setattr(self, name, None)
            if call.active():
                call.cancel()
