"""The socket pump of :class:`~twisted_sslfile.sslfile.SSLFile`.

It moves bytes between the socket and the sans-I/O engine
(:class:`~twisted_sslfile.engine.connection.Connection`) and keeps the
buffers: decrypted data waiting for ``read`` and ciphertext waiting for the
socket.  It never parses TLS itself.

* The socket is always OS-nonblocking.  Blocking mode waits for it with
  ``poll``/``select`` in the calling thread and never runs the reactor
  inside a call (running a reactor re-entrantly breaks every other
  connection it serves).  Nonblocking mode registers a small descriptor
  with the backend.
* One lock guards the engine, the buffers and the state, so that a
  blocking read in one thread and a blocking write in another work at once;
  nobody waits while holding it.  One thread at a time waits for input and
  reads on behalf of the others.
* The lifecycle is one :class:`~twisted_sslfile._sslfile_state.Phase`,
  changed only by :meth:`_SocketPump._transition`.  Beside it the pump
  keeps what the peer and the socket did (close_notify received, end of
  stream, a failed send) and the first error, as an ``errno`` value.

:class:`_SocketPump` is a base of SSLFile, built on the callback scheduler
(:mod:`twisted_sslfile._sslfile_callbacks`), which it tells about finished
handshakes and failed writes and asks for a poll after every I/O step.
"""

from __future__ import annotations

import contextlib
import errno as _errno
import select
import socket
import sys
import threading
import time
import weakref
from collections.abc import Callable, Iterable
from typing import Any

from twisted.internet.interfaces import IReactorThreads
from twisted.logger import Logger

from twisted_sslfile._sslfile_callbacks import _CallbackScheduler
from twisted_sslfile._sslfile_io import (
    _READ_BUFFER_LIMIT,
    _RECV_SIZE,
    _RECVS_PER_WAKEUP,
    _SEND_FLAGS,
    _WRITE_LIMIT,
    _call_in_backend,
    _cancel,
    _CloseTimeout,
    _Descriptor,
    _in_backend,
    _may_touch,
    _run_sync,
    _unregister_and_close,
    _WaitTimeout,
)
from twisted_sslfile._sslfile_state import (
    DROPPED,
    LIVE,
    SOCKET_GONE,
    Phase,
    check_transition,
)
from twisted_sslfile.constants import AlertDescription
from twisted_sslfile.context import Context
from twisted_sslfile.engine.connection import Connection
from twisted_sslfile.engine.events import (
    AlertReceived,
    ApplicationData,
    CloseNotify,
    Event,
    HandshakeCompleted,
    KeyUpdated,
    SessionTicket,
)
from twisted_sslfile.engine.sessions import Session
from twisted_sslfile.errors import (
    ReactorThreadError,
    RemoteAlertError,
    SSLHandshakeError,
    TLSError,
)

_log = Logger(namespace="twisted_sslfile.sslfile")


class _SocketPump(_CallbackScheduler):
    """Socket I/O, buffers, blocking waits and the lifecycle phase.

    A base class of SSLFile (whose ``__slots__`` hold the attributes below);
    its methods run with ``_lock`` held unless they say otherwise.
    """

    __slots__ = (
        "_backend",
        "_blocking",
        "_close_call",
        "_close_timeout",
        "_cond",
        "_conn",
        "_context",
        "_descriptor",
        "_eof",
        "_error",
        "_error_detail",
        "_inbuf",
        "_lock",
        "_original_timeout",
        "_outbuf",
        "_peer_closed",
        "_phase",
        "_read_limit",
        "_reader_thread",
        "_reading",
        "_renegotiating",
        "_session",
        "_sock",
        "_sync_pending",
        "_timeout",
        "_waiters",
        "_write_dead",
        "_writing",
    )

    _lock: threading.Lock
    _cond: threading.Condition
    _backend: Any
    _context: Context
    _conn: Connection
    _sock: socket.socket | None
    _original_timeout: float | None
    _phase: Phase
    _blocking: bool
    _inbuf: bytearray
    _outbuf: bytearray
    #: The first failure (an errno value), and what caused it.
    _error: int
    _error_detail: BaseException | None
    #: The peer's close_notify arrived.
    _peer_closed: bool
    #: The socket reached its end (or failed) without close_notify.
    _eof: bool
    #: Sending failed: nothing more can be written.
    _write_dead: bool
    _renegotiating: bool
    _session: Session | None
    _descriptor: _Descriptor | None
    #: Registered with the backend for reading / writing.
    _reading: bool
    _writing: bool
    _sync_pending: bool
    _read_limit: int
    _reader_thread: int | None
    _waiters: int
    _timeout: float | None
    _close_timeout: float | None
    _close_call: Any

    def _take_over(
        self,
        stream: socket.socket,
        backend: Any,
        context: Context,
        conn: Connection,
        blocking: bool,
        close_timeout: float | None,
    ) -> None:
        """Set up the stream state and take the socket over (no lock yet)."""
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._backend = backend
        self._context = context
        self._conn = conn
        self._inbuf = bytearray()
        self._outbuf = bytearray()
        self._error = 0
        self._error_detail: BaseException | None = None
        self._peer_closed = False
        self._eof = False
        self._write_dead = False
        self._renegotiating = False
        self._session: Session | None = None
        self._blocking = blocking
        self._reading = False
        self._writing = False
        self._descriptor: _Descriptor | None = None
        self._sync_pending = False
        self._read_limit = _READ_BUFFER_LIMIT
        self._reader_thread: int | None = None
        self._waiters = 0
        self._timeout: float | None = None
        self._close_timeout: float | None = close_timeout
        self._close_call: Any = None

        self._original_timeout = stream.gettimeout()
        stream.setblocking(False)
        self._sock: socket.socket | None = stream
        self._phase = Phase.HANDSHAKING

    def _start(self, is_client: bool, pending_data: bytes) -> None:
        """Start the engine; a blocking client runs its whole handshake here.

        On a failed blocking handshake the socket is handed back (detached)
        and :class:`~twisted_sslfile.sslfile.SSLHandshakeError` raised.
        """
        conn = self._conn
        with self._lock:
            conn.start()
            if pending_data:
                self._feed(pending_data)
            self._flush()
            if not (self._blocking and is_client):
                self._after_io()
                return
            try:
                self._block_until(self._handshake_settled)
            except _WaitTimeout:
                self._fail_constructor(_errno.EIO, "timed out", None)
            except BaseException:
                self._detach()
                raise
            if not conn.handshake_complete:
                code, detail, cause = self._handshake_failure()
                self._fail_constructor(code, detail, cause)
            self._after_io()

    def _transition(self, new: Phase) -> None:
        """Move to phase ``new``: the one place the phase changes (lock held).

        Raises :class:`~twisted_sslfile._sslfile_state.PhaseError` for a move
        the transition table does not allow (a bug in SSLFile).
        """
        self._phase = check_transition(self._phase, new)

    def _require_open(self) -> None:
        if self._phase not in LIVE:
            raise OSError(_errno.EBADF, "Not open.")

    def _input_ended(self) -> bool:
        """No more decrypted data can come."""
        return (
            self._peer_closed
            or self._eof
            or bool(self._error)
            or self._phase in SOCKET_GONE
        )

    def _output_out(self) -> bool:
        """Nothing more to send, or nothing can be sent any more."""
        return not self._outbuf or self._write_dead or self._phase in SOCKET_GONE

    def _record_error(self, code: int, detail: BaseException | None = None) -> None:
        if not self._error:
            self._error = code
            self._error_detail = detail
            if self._phase in (Phase.HANDSHAKING, Phase.OPEN):
                self._transition(Phase.FAILED)

    def _tls_failure(self, exc: TLSError) -> None:
        """The engine failed: an alert was received, or ours is queued."""
        if isinstance(exc, RemoteAlertError):
            self._record_error(_errno.ECONNRESET, exc)
        else:
            self._record_error(_errno.ECONNABORTED, exc)
            # The side that sent the alert is told through its write callback.
            self._write_error_pending = True
            self._write_armed = True

    def _can_read_socket(self) -> bool:
        if self._eof or self._error or self._peer_closed:
            return False
        phase = self._phase
        if phase is Phase.CLEAN_CLOSING:
            # Arriving data is discarded now, so no bound.
            return True
        return phase in LIVE and len(self._inbuf) < self._read_limit

    def _handshake_settled(self) -> bool:
        return self._conn.handshake_complete or self._input_ended() or self._write_dead

    def _handshake_failure(self) -> tuple[int, str, TLSError | None]:
        detail = self._error_detail
        if isinstance(detail, TLSError):
            return _errno.EPIPE, str(detail), detail
        if self._error in (0, _errno.EPIPE):
            return _errno.EPIPE, "the peer closed the connection", None
        return self._error, _errno.errorcode.get(self._error, str(self._error)), None

    def _fail_constructor(self, code: int, detail: str, cause: TLSError | None) -> None:
        # The alert (if any) goes out before the socket is handed back.
        self._flush()
        self._detach()
        raise SSLHandshakeError(code, detail, cause)

    def _detach(self) -> None:
        """Give the socket back to the caller, open (lock held)."""
        self._transition(Phase.DETACHED)
        self._reading = self._writing = False
        sock = self._sock
        if sock is not None:
            sock.settimeout(self._original_timeout)

    def _read(self, length: int | None = None, not_all: bool = False) -> bytes | None:
        """The body of :meth:`SSLFile.read` (lock taken here)."""
        if length is not None and length < 0:
            raise ValueError("length must be >= 0")
        with self._lock:
            if self._phase in DROPPED:
                data = self._leftover(length)
                if data:
                    self._errno = 0
                    return data
                raise OSError(_errno.EBADF, "Not open.")
            if self._phase not in LIVE and not self._inbuf:
                raise OSError(_errno.EBADF, "Not open.")
            if length == 0:
                self._errno = 0
                return b""
            if self._blocking and self._phase in LIVE:
                try:
                    self._read_blocking(length, not_all)
                except _WaitTimeout:
                    self._errno = _errno.EIO
                    self._after_io()
                    return None
            else:
                self._pump_in()
                self._flush()
            result = self._take(length)
            self._after_io()
            return result

    def _read_blocking(self, length: int | None, not_all: bool) -> None:
        if not self._conn.handshake_complete:
            self._block_until(self._handshake_settled)
        inbuf = self._inbuf
        if length is None:
            # Everything until close_notify: the buffer bound cannot apply.
            self._read_limit = sys.maxsize
            done = self._input_ended
        elif not_all:

            def done() -> bool:
                return bool(inbuf) or self._input_ended()
        else:
            self._read_limit = max(_READ_BUFFER_LIMIT, length)

            def done() -> bool:
                return len(inbuf) >= length or self._input_ended()

        try:
            self._block_until(done)
        finally:
            self._read_limit = _READ_BUFFER_LIMIT

    def _take(self, length: int | None) -> bytes | None:
        """Hand out buffered data, or the end-of-stream result (lock held)."""
        inbuf = self._inbuf
        if inbuf:
            n = len(inbuf) if length is None else min(length, len(inbuf))
            data = bytes(inbuf[:n])
            del inbuf[:n]
            self._errno = 0
            return data
        if self._peer_closed:
            self._errno = 0
            return b""
        if self._error or self._eof or self._phase in SOCKET_GONE:
            self._errno = _errno.EPIPE
            return None
        self._errno = _errno.EAGAIN
        return b""

    def _leftover(self, length: int | None) -> bytes:
        """After shutdown: decrypted data, then the raw bytes after close_notify."""
        self._inbuf += self._conn.take_unused_data()
        n = len(self._inbuf) if length is None else length
        data = bytes(self._inbuf[:n])
        del self._inbuf[:n]
        return data

    def _write(self, data: bytes | Iterable[bytes], *args: object) -> int:
        """The body of :meth:`SSLFile.write`."""
        payload = _payload(data, args)
        with self._lock:
            if self._phase not in LIVE:
                raise OSError(_errno.EBADF, "Not open.")
            if self._error or self._write_dead:
                self._errno = self._write_errno()
                return -1
            if self._blocking:
                return self._write_blocking(payload)
            return self._write_nonblocking(payload)

    def _write_errno(self) -> int:
        return _errno.ECONNRESET if self._error == _errno.ECONNRESET else _errno.EPIPE

    def _write_nonblocking(self, payload: bytes | memoryview) -> int:
        conn = self._conn
        self._write_armed = True
        if not conn.handshake_complete:
            self._pump_in()
            self._flush()
            self._after_io()
            self._errno = _errno.EAGAIN
            return 0
        if not payload:
            self._flush()
            self._after_io()
            self._errno = 0
            return 0
        room = _WRITE_LIMIT - len(self._outbuf)
        if room <= 0:
            self._flush()
            room = _WRITE_LIMIT - len(self._outbuf)
            if room <= 0:
                self._after_io()
                self._errno = _errno.EAGAIN
                return 0
        accepted = min(len(payload), room)
        try:
            conn.send(payload[:accepted])
        except TLSError as exc:
            self._tls_failure(exc)
            self._flush()
            self._after_io()
            self._errno = self._write_errno()
            return -1
        self._flush()
        self._after_io()
        # Committed even when the socket just failed: Pike's "count with
        # EPIPE" for the first write after the peer went away.
        self._errno = self._write_errno() if self._write_dead else 0
        return accepted

    def _write_blocking(self, payload: bytes | memoryview) -> int:
        conn = self._conn
        try:
            if not conn.handshake_complete:
                self._block_until(self._handshake_settled)
                if not conn.handshake_complete:
                    self._errno = self._write_errno()
                    return -1
            total = 0
            view = memoryview(payload)
            if not view:
                self._block_until(self._output_out)
            while total < len(view) and not (self._error or self._write_dead):
                chunk = view[total : total + _RECV_SIZE]
                conn.send(chunk)
                total += len(chunk)
                self._block_until(self._output_out)
        except _WaitTimeout:
            self._after_io()
            self._errno = _errno.EIO
            return total if total else -1
        except TLSError as exc:
            self._tls_failure(exc)
            self._flush()
            self._after_io()
            self._errno = self._write_errno()
            return -1
        self._write_armed = True
        self._after_io()
        if self._write_dead or self._error:
            self._errno = self._write_errno()
            return total if total else -1
        self._errno = 0
        return total

    def _renegotiate(self) -> int:
        """The body of :meth:`SSLFile.renegotiate`."""
        with self._lock:
            if self._phase not in LIVE:
                raise OSError(_errno.EBADF, "Not open.")
            if self._error or self._write_dead:
                self._errno = self._write_errno()
                return 0
            conn = self._conn
            if not conn.handshake_complete:
                self._errno = _errno.EAGAIN
                return 0
            start = getattr(conn, "renegotiate", None)
            try:
                if start is not None:
                    start()
                else:
                    conn.key_update(request_peer=True)
            except ValueError:
                # Not now (a handshake is under way) or not with this peer (no
                # RFC 5746 support): the connection goes on with its keys.
                self._errno = _errno.EOPNOTSUPP
                return 0
            except TLSError as exc:
                if conn.error is not None:
                    self._tls_failure(exc)
                    self._flush()
                    self._after_io()
                    self._errno = self._write_errno()
                else:
                    self._errno = _errno.EOPNOTSUPP
                return 0
            self._renegotiating = True
            self._flush()
            self._after_io()
            self._errno = 0
            return 1

    def _pump_in(self) -> None:
        """Read what the socket has, without waiting, into the engine (lock held)."""
        sock = self._sock
        assert sock is not None
        for _ in range(_RECVS_PER_WAKEUP):
            if not self._can_read_socket():
                return
            room = self._read_limit - len(self._inbuf)
            size = (
                max(4096, min(_RECV_SIZE, room)) if self._phase in LIVE else _RECV_SIZE
            )
            try:
                data = sock.recv(size)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                self._eof = True
                self._record_error(exc.errno or _errno.EIO, exc)
                return
            if not data:
                self._eof = True
                # An end of stream without close_notify: truncation.
                self._record_error(_errno.EPIPE)
                return
            self._feed(data)
            if len(data) < size:
                return

    def _feed(self, data: bytes) -> None:
        """Give received bytes to the engine and act on its events (lock held)."""
        conn = self._conn
        try:
            events = conn.receive_data(data)
        except RemoteAlertError as exc:
            self._handle(exc.events)
            self._record_error(_errno.ECONNRESET, exc)
            return
        except TLSError as exc:
            self._handle(exc.events)
            rejected = conn.rejected_bytes
            callback = self._alert_cb
            if rejected is not None and callback is not None:
                seq = conn.read_sequence
                self._lock.release()
                try:
                    callback(exc, seq, rejected)
                except Exception:
                    _log.failure("SSLFile alert callback failed")
                finally:
                    self._lock.acquire()
                if self._phase in DROPPED:
                    # shutdown() in the callback: the alert is never sent.
                    conn.data_to_send()
                    return
            self._tls_failure(exc)
            return
        self._handle(events)

    def _handle(self, events: list[Event]) -> None:
        for event in events:
            if isinstance(event, ApplicationData):
                if self._phase in LIVE:
                    # After our close() the reader is gone: discard.
                    self._inbuf += event.data
            elif isinstance(event, HandshakeCompleted):
                if self._phase is Phase.HANDSHAKING:
                    self._transition(Phase.OPEN)
                self._accept_due = True
                self._renegotiating = False
                self._write_armed = True
                if self._held is not None:
                    self._install(self._held)
            elif isinstance(event, CloseNotify):
                self._peer_closed = True
            elif isinstance(event, KeyUpdated):
                if event.direction == "receive" and self._renegotiating:
                    # TLS 1.3 "renegotiation": the peer answered our request.
                    self._renegotiating = False
                    self._accept_due = True
            elif isinstance(event, SessionTicket):
                self._session = event.session
            elif (
                isinstance(event, AlertReceived)
                and event.description == AlertDescription.no_renegotiation
            ):
                self._renegotiating = False

    def _flush(self) -> None:
        """Send queued ciphertext without waiting (lock held)."""
        outbuf = self._outbuf
        if self._phase not in DROPPED and not self._write_dead:
            pending = self._conn.pending_output()
            for record in pending:
                outbuf += record
        else:
            self._conn.pending_output()
        if self._phase in SOCKET_GONE:
            outbuf.clear()
            return
        sock = self._sock
        assert sock is not None
        while outbuf and not self._write_dead:
            try:
                sent = sock.send(outbuf, _SEND_FLAGS)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                self._write_dead = True
                outbuf.clear()
                code = exc.errno if exc.errno == _errno.ECONNRESET else _errno.EPIPE
                self._record_error(code, exc)
                self._write_error_pending = True
                self._write_armed = True
                return
            del outbuf[:sent]

    def _stop_close_timer(self) -> None:
        call, self._close_call = self._close_call, None
        if call is not None and _may_touch(self._backend):
            _cancel(call)
        # Otherwise it fires later, finds the close finished, and does nothing.

    def _close_socket(self) -> None:
        """Close the socket (unregistering it first) (lock held)."""
        if self._phase in SOCKET_GONE:
            return
        self._transition(Phase.CLOSED)
        self._outbuf.clear()
        self._stop_close_timer()
        sock = self._sock
        assert sock is not None
        if self._waiters:
            # Wake threads waiting in poll() on it: closing alone does not.
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            self._cond.notify_all()
        self._unregister(close_socket=True)

    def _unregister(self, *, close_socket: bool) -> None:
        """Leave the backend's reader/writer sets (lock held)."""
        backend = self._backend
        descriptor = self._descriptor
        registered = self._reading or self._writing
        self._reading = self._writing = False
        sock = self._sock if close_socket else None
        if registered:
            _call_in_backend(backend, _unregister_and_close, backend, descriptor, sock)
        elif sock is not None:
            sock.close()

    def _want_read(self) -> bool:
        return not self._blocking and self._can_read_socket()

    def _want_write(self) -> bool:
        return (
            not self._blocking
            and bool(self._outbuf)
            and not self._write_dead
            and self._phase not in SOCKET_GONE
        )

    def _sync_registration(self) -> None:
        """Make the backend watch the socket for what we need (lock held)."""
        if self._phase in SOCKET_GONE:
            return
        want_read = self._want_read()
        want_write = self._want_write()
        if want_read == self._reading and want_write == self._writing:
            return
        backend = self._backend
        if not _may_touch(backend) and IReactorThreads.providedBy(backend):
            if not self._sync_pending:
                self._sync_pending = True
                backend.callFromThread(_run_sync, weakref.ref(self))
            return
        descriptor = self._descriptor
        if descriptor is None:
            assert self._sock is not None
            descriptor = self._descriptor = _Descriptor(self, self._sock.fileno())
        if want_read != self._reading:
            if want_read:
                backend.addReader(descriptor)
            else:
                backend.removeReader(descriptor)
            self._reading = want_read
        if want_write != self._writing:
            if want_write:
                backend.addWriter(descriptor)
            else:
                backend.removeWriter(descriptor)
            self._writing = want_write

    def _after_io(self) -> None:
        """Finish closes, update the backend, schedule callbacks (lock held)."""
        self._cond.notify_all()
        phase = self._phase
        if phase in DROPPED:
            return
        if phase is Phase.CLOSING:
            if self._output_out():
                self._close_socket()
        elif phase is Phase.CLEAN_CLOSING and self._output_out():
            if self._peer_closed and not self._write_dead:
                # Both close_notify sent and received: the socket is plaintext
                # again and goes back to the mode it came in.
                self._transition(Phase.CLEAN_CLOSED)
                self._stop_close_timer()
                self._unregister(close_socket=False)
                assert self._sock is not None
                self._sock.settimeout(self._original_timeout)
            elif self._input_ended():
                self._record_error(_errno.EPIPE)
        if self._phase is Phase.CLEAN_CLOSED:
            self._maybe_schedule_poll()
            return
        self._sync_registration()
        self._maybe_schedule_poll()

    def _on_readable(self) -> None:
        with self._lock:
            if self._phase not in DROPPED and not self._blocking:
                self._pump_in()
                self._flush()
            self._after_io()

    def _on_writable(self) -> None:
        with self._lock:
            if self._phase not in DROPPED:
                self._flush()
            self._after_io()

    def _block_until(
        self, done: Callable[[], bool], deadline: float | None = None
    ) -> bool:
        """Do socket I/O in this thread until ``done()`` (lock held).

        Returns ``done()`` once it holds or nothing can change any more;
        raises :class:`_CloseTimeout` at ``deadline`` (``time.monotonic()``),
        :class:`_WaitTimeout` when one wait outlasts ``set_timeout``.
        One thread at a time waits for input on the socket (the "reader");
        another thread that needs input waits for the reader's notification
        instead, and a writer waits for writability on its own - so a
        blocking read and a blocking write in two threads both progress.
        """
        me = threading.get_ident()
        while True:
            self._flush()
            if done():
                return True
            if self._phase in SOCKET_GONE:
                return done()
            can_read = self._can_read_socket()
            can_write = bool(self._outbuf) and not self._write_dead
            if not can_read and not can_write:
                return done()
            if _in_backend(self._backend):
                raise ReactorThreadError(self._backend)
            if can_read and self._reader_thread is None:
                self._reader_thread = me
                try:
                    self._wait_socket(True, can_write, deadline)
                finally:
                    self._reader_thread = None
                    self._cond.notify_all()
            elif can_write:
                self._wait_socket(False, True, deadline)
            else:
                self._waiters += 1
                try:
                    if not self._cond.wait(self._wait_limit(deadline)):
                        raise self._timeout_error(deadline)
                finally:
                    self._waiters -= 1
                continue
            self._pump_in()
            self._after_io()

    def _wait_limit(self, deadline: float | None) -> float | None:
        """Seconds one wait may take: ``set_timeout``, and the deadline."""
        timeout = self._timeout
        if deadline is None:
            return timeout
        remaining = max(0.0, deadline - time.monotonic())
        return remaining if timeout is None else min(timeout, remaining)

    @staticmethod
    def _timeout_error(deadline: float | None) -> _WaitTimeout:
        if deadline is not None and time.monotonic() >= deadline:
            return _CloseTimeout()
        return _WaitTimeout()

    def _wait_socket(
        self, read: bool, write: bool, deadline: float | None = None
    ) -> None:
        """Wait for the socket without holding the lock; raise on timeout."""
        sock = self._sock
        assert sock is not None
        fd = sock.fileno()
        timeout = self._wait_limit(deadline)
        self._waiters += 1
        self._lock.release()
        try:
            if hasattr(select, "poll"):
                poller = select.poll()
                mask = (select.POLLIN if read else 0) | (select.POLLOUT if write else 0)
                poller.register(fd, mask)
                ready: list[Any] = poller.poll(
                    None if timeout is None else timeout * 1000
                )
            else:  # pragma: no cover - platforms without poll()
                rlist, wlist, xlist = select.select(
                    [fd] if read else [], [fd] if write else [], [fd], timeout
                )
                ready = rlist + wlist + xlist
        finally:
            self._lock.acquire()
            self._waiters -= 1
        if not ready:
            raise self._timeout_error(deadline)


def _payload(
    data: bytes | Iterable[bytes], args: tuple[object, ...]
) -> bytes | memoryview:
    """``write``'s argument as one buffer (lists are packed, not one record each)."""
    if args:
        if not isinstance(data, (bytes, bytearray)):
            raise TypeError("a formatted write needs a bytes format")
        return bytes(data) % args
    if isinstance(data, (bytes, bytearray, memoryview)):
        return data if isinstance(data, (bytes, memoryview)) else bytes(data)
    if isinstance(data, str):
        raise TypeError("SSLFile.write() takes bytes, not str")
    parts = list(data)
    for part in parts:
        if not isinstance(part, (bytes, bytearray, memoryview)):
            raise TypeError(f"SSLFile.write() takes bytes, not {type(part).__name__}")
    return b"".join(parts)
