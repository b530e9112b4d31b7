"""The Pike callback scheduler of :class:`~twisted_sslfile.sslfile.SSLFile`.

User callbacks never run from inside the socket handlers: those only move
bytes (:mod:`twisted_sslfile._sslfile_pump`) and then ask for one coalesced
``backend.callLater(0, poll)``.  The poll calls the callbacks in the order
docs/sslfile.rst gives (section "Callbacks", "Where and in which order"):
close with an error, accept, read - at most one of these - then close and
write.  So a callback sees a consistent object, and many events in one
reactor turn cost one poll.

This module holds that scheduler as :class:`_CallbackScheduler`, a base of
SSLFile: the callbacks the user set (and those ``set_nonblocking`` holds
back until the handshake succeeds), the one-shot state of the accept and
write callbacks, and the poll itself.  It reads the stream's state (phase,
buffers, recorded error) but never touches the socket.
"""

from __future__ import annotations

import errno as _errno
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from twisted.internet.interfaces import IReactorThreads
from twisted.logger import Logger

from twisted_sslfile._sslfile_io import _may_touch, _run_poll
from twisted_sslfile._sslfile_state import DROPPED, LIVE, Phase

if TYPE_CHECKING:
    import threading

    from twisted_sslfile.engine.connection import Connection

_log = Logger(namespace="twisted_sslfile.sslfile")

#: Stands for "argument not given" where None means "no callback".
_UNSET: Any = object()

Callback = Callable[..., object]


class _Callbacks:
    """The user's callbacks, in ``set_nonblocking``'s argument order."""

    __slots__ = ("accept", "close", "read", "read_oob", "write", "write_oob")

    def __init__(
        self,
        read: Callback | None = None,
        write: Callback | None = None,
        close: Callback | None = None,
        read_oob: Callback | None = None,
        write_oob: Callback | None = None,
        accept: Callback | None = None,
    ) -> None:
        self.read = read
        self.write = write
        self.close = close
        self.read_oob = read_oob
        self.write_oob = write_oob
        self.accept = accept

    def as_tuple(self) -> tuple[Callback | None, ...]:
        return (
            self.read,
            self.write,
            self.close,
            self.read_oob,
            self.write_oob,
            self.accept,
        )


class _CallbackScheduler:
    """Holds the user's callbacks and runs them from one coalesced poll.

    A base class of SSLFile (whose ``__slots__`` hold the attributes below);
    everything here runs with ``_lock`` held, except the user's callbacks
    themselves, which run without it.
    """

    __slots__ = (
        "_accept_due",
        "_alert_cb",
        "_cb",
        "_errno",
        "_held",
        "_id",
        "_poll_call",
        "_poll_scheduled",
        "_write_armed",
        "_write_error_pending",
    )

    _cb: _Callbacks
    _held: _Callbacks | None
    _alert_cb: Callback | None
    _id: object
    #: A handshake (or renegotiation) finished since the last poll.
    _accept_due: bool
    #: The write callback may fire (one-shot until the next write or event).
    _write_armed: bool
    #: A write failed (or we sent a fatal alert): tell the write callback.
    _write_error_pending: bool
    _poll_scheduled: bool
    _poll_call: Any
    #: The result of the last operation, as ``errno()`` reports it (set
    #: here for callbacks, and by every operation).
    _errno: int

    if TYPE_CHECKING:
        # The stream's state, owned by the socket pump.
        _lock: threading.Lock
        _backend: Any
        _conn: Connection
        _phase: Phase
        _inbuf: bytearray
        _outbuf: bytearray
        _error: int
        _peer_closed: bool
        _eof: bool

        def _output_out(self) -> bool: ...

        def _after_io(self) -> None: ...

    def _init_callbacks(self) -> None:
        """No callbacks yet (the constructor calls this first)."""
        self._cb = _Callbacks()
        self._held: _Callbacks | None = None
        self._alert_cb: Callback | None = None
        self._id: object = _UNSET
        self._errno = 0
        self._write_error_pending = False
        self._write_armed = True
        self._accept_due = False
        self._poll_call: Any = None
        self._poll_scheduled = False

    def _install(self, callbacks: _Callbacks) -> None:
        accept = self._cb.accept if callbacks.accept is None else callbacks.accept
        self._cb = callbacks
        self._cb.accept = accept
        self._held = None
        if callbacks.write is not None:
            self._write_armed = True

    def _set_callback(self, name: str, value: Callback | None) -> None:
        setattr(self._cb, name, value)
        if self._held is not None:
            # A later explicit setting wins over the held set_nonblocking one.
            setattr(self._held, name, value)
        if name == "write" and value is not None:
            self._write_armed = True

    def _callback_id(self) -> object:
        return self if self._id is _UNSET else self._id

    def _closed_by_peer_or_error(self) -> bool:
        return self._peer_closed or (
            (bool(self._error) or self._eof) and self._output_out()
        )

    def _callbacks_due(self) -> bool:
        """Whether a poll would call anything (lock held)."""
        if self._phase in DROPPED:
            return False
        cb = self._cb
        if cb.close is not None and not self._inbuf and self._closed_by_peer_or_error():
            return True
        if self._phase not in LIVE:
            return False
        if self._accept_due and cb.accept is not None:
            return True
        if self._inbuf and cb.read is not None:
            return True
        return self._write_due()

    def _write_due(self) -> bool:
        if self._phase not in LIVE or self._cb.write is None or not self._write_armed:
            return False
        if self._write_error_pending:
            return True
        return (
            self._conn.handshake_complete
            and not self._outbuf
            and self._phase is Phase.OPEN
        )

    def _maybe_schedule_poll(self) -> None:
        if self._poll_scheduled or not self._callbacks_due():
            return
        self._poll_scheduled = True
        backend = self._backend
        ref = weakref.ref(self)
        if _may_touch(backend) or not IReactorThreads.providedBy(backend):
            self._poll_call = backend.callLater(0, _run_poll, ref)
        else:
            backend.callFromThread(_run_poll, ref)

    def _poll(self) -> None:
        """Call at most one of close-with-error, accept, read; then close, write."""
        with self._lock:
            self._poll_scheduled = False
            self._poll_call = None
            if self._phase in DROPPED:
                return
            cb = self._cb
            accept_due, self._accept_due = self._accept_due, False
            call: tuple[Callback, tuple[object, ...]] | None = None
            more = True
            ident = self._callback_id()
            if (
                self._phase is Phase.FAILED
                and cb.close is not None
                and not self._inbuf
                and self._output_out()
            ):
                # 1. close with an error.
                call = (cb.close, (ident,))
                cb.close = None
                self._errno = self._error
                more = False
            elif accept_due and cb.accept is not None and self._phase in LIVE:
                # 2. the handshake (or a renegotiation) finished.
                call = (cb.accept, (self, ident))
                self._errno = 0
                more = False
            elif self._inbuf and cb.read is not None and self._phase in LIVE:
                # 3. all buffered data.
                data = bytes(self._inbuf)
                self._inbuf.clear()
                call = (cb.read, (ident, data))
                self._errno = 0
        if call is not None:
            self._call_user(*call)
        if more:
            with self._lock:
                call = None
                cb = self._cb
                if (
                    self._phase not in DROPPED
                    and cb.close is not None
                    and not self._inbuf
                    and self._closed_by_peer_or_error()
                ):
                    # 4. the peer closed (or the connection failed): one-shot.
                    call = (cb.close, (self._callback_id(),))
                    cb.close = None
                    self._errno = 0 if self._peer_closed else self._error
            if call is not None:
                self._call_user(*call)
            with self._lock:
                call = None
                if self._phase not in DROPPED and self._write_due():
                    # 5. ready for more data (one-shot until the next write).
                    self._write_armed = False
                    if self._write_error_pending:
                        self._write_error_pending = False
                        self._errno = _errno.EPIPE
                    else:
                        self._errno = 0
                    call = (self._cb.write, (self._callback_id(),))  # type: ignore[assignment]
            if call is not None:
                self._call_user(*call)
        with self._lock:
            self._after_io()

    @staticmethod
    def _call_user(function: Callback, args: tuple[object, ...]) -> None:
        try:
            function(*args)
        except Exception:
            _log.failure("SSLFile callback {function!r} failed", function=function)
