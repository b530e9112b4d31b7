"""How an :class:`~twisted_sslfile.sslfile.SSLFile` ends.

``close()`` (normal or clean, bounded by ``close_timeout``), ``shutdown()``
(hand the socket back, or close it), ``is_open()``, and the best-effort
close of an SSLFile dropped while open.  Each moves the lifecycle
:class:`~twisted_sslfile._sslfile_state.Phase` along the table in
:mod:`twisted_sslfile._sslfile_state`; docs/sslfile.rst (section "Closing")
says what the user sees.
"""

from __future__ import annotations

import contextlib
import errno as _errno
import socket
import time
import weakref
from typing import Any

from twisted.internet.interfaces import IReactorThreads

from twisted_sslfile._sslfile_callbacks import _Callbacks
from twisted_sslfile._sslfile_io import (
    _arm_close_timer,
    _call_in_backend,
    _cancel,
    _CloseTimeout,
    _Descriptor,
    _Drain,
    _may_touch,
    _run_close_timer,
    _unregister_and_close,
    _WaitTimeout,
)
from twisted_sslfile._sslfile_pump import _SocketPump
from twisted_sslfile._sslfile_state import DROPPED, LIVE, IsOpen, Phase
from twisted_sslfile.errors import ReactorThreadError, TLSError


class _Closer(_SocketPump):
    """``close``, ``shutdown``, ``is_open``, and closing a dropped SSLFile."""

    __slots__ = ()

    def _close(
        self,
        how: str | None = None,
        clean_close: bool = False,
        dont_throw: bool = False,
    ) -> int:
        """The body of :meth:`SSLFile.close`."""
        if how not in (None, "rw"):
            raise ValueError(
                f"SSLFile.close() cannot close one direction ({how!r}): TLS has "
                f"one close_notify per direction; use how=None or 'rw'"
            )
        with self._lock:
            if self._phase not in LIVE:
                self._errno = 0
                return 1
            # What already arrived counts as "already recorded" (and a lazy
            # blocking server's handshake advances without waiting).
            self._pump_in()
            if self._error:
                self._transition(Phase.CLOSING)
                self._cb = _Callbacks()
                self._held = None
                self._errno = self._error
                self._flush()  # our fatal alert, if still queued
                self._close_socket()
                self._after_io()
                return 0
            self._transition(Phase.CLEAN_CLOSING if clean_close else Phase.CLOSING)
            self._held = None
            if not clean_close:
                # A normal close ends the callbacks too; a clean close keeps
                # the close callback, which reports the end of the exchange.
                self._cb = _Callbacks()
            try:
                self._conn.close()
            except TLSError as exc:
                self._tls_failure(exc)
            self._flush()
            code = 0
            deadlock: ReactorThreadError | None = None
            if self._blocking:
                done = self._clean_close_settled if clean_close else self._output_out
                deadline = None
                if self._close_timeout is not None:
                    deadline = time.monotonic() + self._close_timeout
                try:
                    self._block_until(done, deadline)
                except _CloseTimeout:
                    # The peer took neither our data nor (clean close) gave
                    # its answer in time: the close ends here, reported.
                    code = _errno.ETIMEDOUT
                    self._record_error(code)
                    self._close_socket()
                except _WaitTimeout:
                    code = _errno.EIO
                except ReactorThreadError as exc:
                    code = _errno.EDEADLK
                    deadlock = exc
            if code and self._phase is Phase.CLOSING:
                # The close_notify could not be written in time: the close
                # still happens (what is queued is dropped), and is reported.
                self._close_socket()
            self._after_io()
            if not self._blocking:
                # Finished in the backend, but not forever: a peer that
                # reads nothing would keep the socket and the queue.
                self._start_close_timer()
            if (
                not code
                and clean_close
                and self._blocking
                and self._phase is not Phase.CLEAN_CLOSED
            ):
                code = self._error or _errno.EPIPE
            if not code and self._error and self._write_dead and not self._peer_closed:
                # Our close_notify could not go out.  After the peer's own
                # close_notify that is expected (it may close its socket at
                # once), so only then is it no error.
                code = self._error
            self._errno = code
            if code in (0, _errno.EPIPE, _errno.ECONNRESET):
                return 0 if code else 1
            if dont_throw:
                return 0
            if deadlock is not None:
                raise deadlock
            raise OSError(code, f"SSLFile.close() failed: {_errno.errorcode.get(code)}")

    def _clean_close_settled(self) -> bool:
        return self._output_out() and self._input_ended()

    def _close_pending(self) -> bool:
        """A close was asked for and the backend is still finishing it."""
        return self._phase in (Phase.CLOSING, Phase.CLEAN_CLOSING)

    def _start_close_timer(self) -> None:
        """Bound an NB close by ``close_timeout`` (lock held)."""
        seconds = self._close_timeout
        if seconds is None or self._close_call is not None:
            return
        if not self._close_pending():
            return
        backend = self._backend
        if _may_touch(backend) or not IReactorThreads.providedBy(backend):
            self._close_call = backend.callLater(
                seconds, _run_close_timer, weakref.ref(self)
            )
        else:
            backend.callFromThread(_arm_close_timer, weakref.ref(self))

    def _close_timed_out(self) -> None:
        """The NB close outlasted ``close_timeout``: drop the queue, close the
        socket, and report ETIMEDOUT (to the close callback of a clean close,
        and in ``errno()`` after ``shutdown()``)."""
        with self._lock:
            self._close_call = None
            if not self._close_pending():
                return
            self._record_error(_errno.ETIMEDOUT)
            self._close_socket()
            self._after_io()

    def _shutdown(self) -> socket.socket | None:
        """The body of :meth:`SSLFile.shutdown`."""
        with self._lock:
            phase = self._phase
            if phase in DROPPED:
                self._errno = _errno.EBADF
                return None
            self._outbuf.clear()
            if _may_touch(self._backend):
                _cancel(self._poll_call)
            self._poll_call = None
            self._stop_close_timer()
            sock = self._sock
            assert sock is not None
            keep = phase in LIVE or phase is Phase.CLEAN_CLOSED
            if phase not in LIVE and self._error:
                # A close that ended in an error (a reset during a clean
                # close, say) already reported it, and in Pike it has shut
                # down already: a later shutdown() leaves that errno alone.
                self._errno = self._error
            elif phase is Phase.CLEAN_CLOSING:
                self._errno = _errno.EPIPE
            else:
                self._errno = 0
            if keep:
                self._transition(Phase.DETACHED)
                self._unregister(close_socket=False)
                sock.settimeout(self._original_timeout)
                self._cond.notify_all()
                return sock
            self._close_socket()
            self._transition(Phase.SHUT)
            self._cond.notify_all()
            return None

    def _is_open(self) -> int:
        """The body of :meth:`SSLFile.is_open`."""
        with self._lock:
            phase = self._phase
            if phase not in LIVE:
                if phase is Phase.CLEAN_CLOSING and not self._error:
                    return IsOpen.CLEAN_CLOSE_PENDING.value
                return IsOpen.CLOSED.value
            self._pump_in()
            self._flush()
            self._after_io()
            if (self._peer_closed or self._error or self._eof) and not self._inbuf:
                return IsOpen.CLOSED.value
            return IsOpen.OPEN.value

    def _finalize(self) -> None:
        """Best-effort nonblocking close of a dropped SSLFile (never blocks).

        No other thread can hold the lock now: it would hold a reference.
        """
        phase = getattr(self, "_phase", Phase.DETACHED)
        if phase in DROPPED or getattr(self, "_sock", None) is None:
            return
        backend = self._backend
        if _may_touch(backend):
            _cancel(self._poll_call)
            _cancel(self._close_call)
        if phase is Phase.CLOSED:
            return
        if phase is Phase.CLEAN_CLOSED:
            # The socket was handed back to plaintext use: leave it open.
            self._unregister(close_socket=False)
            return
        if phase in LIVE and not self._error:
            with contextlib.suppress(TLSError):
                self._conn.close()
        self._flush()
        sock = self._sock
        assert sock is not None  # checked on entry; nothing here drops it
        descriptor = self._descriptor
        registered = self._reading or self._writing
        if phase in LIVE:
            self._transition(Phase.CLOSING)
        self._transition(Phase.CLOSED)
        self._reading = self._writing = False
        data = bytes(self._outbuf) if not self._write_dead else b""
        self._outbuf.clear()
        if data:
            _call_in_backend(
                backend, self._start_drain, backend, descriptor, sock, data
            )
        elif registered:
            _call_in_backend(backend, _unregister_and_close, backend, descriptor, sock)
        else:
            sock.close()

    @staticmethod
    def _start_drain(
        backend: Any, descriptor: _Descriptor | None, sock: socket.socket, data: bytes
    ) -> None:
        if descriptor is not None:
            backend.removeReader(descriptor)
            backend.removeWriter(descriptor)
        _Drain(backend, sock, data)
