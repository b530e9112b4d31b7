"""SSLFile: Pike's ``SSL.File`` as a Python object over any Twisted reactor.

An :class:`SSLFile` is a TLS stream with the interface of a plain file: it
reads, writes and closes, in blocking (B) or nonblocking (NB) mode, and may
switch between the two on a live connection.  ``docs/sslfile.rst`` is the
user's guide and ``docs/pike.rst`` lists every difference from Pike; the
behaviour is specified method by method in ``SSLFILE.md``.

How it is built, and why:

* The TLS work is done by the sans-I/O engine
  (:class:`~twisted_sslfile.engine.connection.Connection`); this module only
  moves bytes between it and a socket, so an SSLFile never parses TLS.
* The socket is always OS-nonblocking.  B mode waits for it with
  ``poll``/``select`` in the calling thread and never runs the reactor
  inside a call (running a reactor re-entrantly breaks every other
  connection it serves).  NB mode registers a small descriptor with the
  backend (any reactor providing ``IReactorFDSet`` and ``IReactorTime``).
* User callbacks never run from inside the socket handlers: those only move
  bytes and then ask for one coalesced ``backend.callLater(0, poll)``, which
  calls the callbacks in the order of ``SSLFILE.md`` §5.  So a callback sees
  a consistent object, and many events in one reactor turn cost one poll.
* The backend holds the SSLFile only through a weak reference (the
  descriptor and the delayed poll both keep a ``weakref``), and the SSLFile
  holds no reference to itself: dropping the last reference frees it at
  once, even with the cyclic garbage collector disabled, and ``__del__``
  then makes a best-effort nonblocking close.
* One lock guards the engine, the buffers and the flags, so that a blocking
  read in one thread and a blocking write in another work at once; nobody
  waits while holding it.

The reactor and socket plumbing that is not SSLFile's API (the descriptor
and the best-effort closer the backend holds, which thread runs a backend,
the checks of the ``stream`` and ``backend`` arguments) lives in the private
module ``twisted_sslfile._sslfile_io``.
"""

from __future__ import annotations

import contextlib
import errno as _errno
import select
import socket
import struct
import sys
import threading
import time
import weakref
from collections.abc import Callable, Iterable
from typing import Any

from twisted.internet.interfaces import IReactorThreads
from twisted.logger import Logger

from twisted_sslfile._sslfile_io import (
    _DRAIN_TIMEOUT,
    _RECV_SIZE,
    _RECVS_PER_WAKEUP,
    _SEND_FLAGS,
    _arm_close_timer,
    _call_in_backend,
    _cancel,
    _check_backend,
    _check_stream,
    _CloseTimeout,
    _Descriptor,
    _Drain,
    _in_backend,
    _may_touch,
    _run_close_timer,
    _run_poll,
    _run_sync,
    _unregister_and_close,
    _WaitTimeout,
)
from twisted_sslfile._sslfile_state import (
    DROPPED,
    LIVE,
    SOCKET_CLOSED,
    SOCKET_GONE,
    IsOpen,
    Phase,
    check_transition,
)
from twisted_sslfile.constants import (
    SUPPORTED_VERSIONS,
    AlertDescription,
    CipherSuite,
    ProtocolVersion,
)
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
from twisted_sslfile.errors import RemoteAlertError, TLSError

__all__ = [
    "CLOSE_TIMEOUT",
    "READ_BUFFER_LIMIT",
    "WRITE_LIMIT",
    "ProtocolVersion",
    "ReactorThreadError",
    "SSLFile",
    "SSLHandshakeError",
]

_log = Logger()

#: Decrypted bytes an SSLFile buffers before it stops reading the socket
#: (back-pressure): a peer cannot make a slow reader hold more than this,
#: plus at most one socket read.
READ_BUFFER_LIMIT = 65536

#: Plaintext an NB ``write`` accepts per call, and the ciphertext backlog
#: (bytes encrypted but not yet taken by the socket) above which it accepts
#: nothing: a writer faster than the network is told EAGAIN instead of
#: growing an unbounded queue.
WRITE_LIMIT = 65536

#: Seconds a ``close()`` may take by default (``close_timeout=``): writing
#: what is queued and close_notify, and for a clean close the peer's answer.
#: A peer that stops reading cannot hold a closing SSLFile, its socket and
#: its queue for longer.  The same bound as a dropped SSLFile's last write.
CLOSE_TIMEOUT = _DRAIN_TIMEOUT

#: Stands for "argument not given" where None means "no callback".
_UNSET: Any = object()

Callback = Callable[..., object]


class SSLHandshakeError(OSError):
    """A blocking client's handshake failed inside the constructor.

    An :class:`OSError` like Pike's, whose ``strerror`` starts with
    ``"SSL handshake failure: "``.  ``tls_error`` is the engine's error
    (the alert sent or received), or None for a socket failure.  The socket
    was detached, not closed: it still belongs to the caller.
    """

    def __init__(self, code: int, detail: str, tls_error: TLSError | None = None):
        super().__init__(code, f"SSL handshake failure: {detail}")
        self.tls_error = tls_error


class ReactorThreadError(OSError):
    """A blocking call would have to wait on the thread that runs its backend.

    Waiting there stops the reactor: no callback of this or any other
    connection runs, and if the peer is served by the same reactor it never
    answers, so the wait never ends.  ``errno`` is ``EDEADLK``.
    """

    def __init__(self, backend: object) -> None:
        super().__init__(
            _errno.EDEADLK,
            f"a blocking SSLFile call would wait on the thread running its "
            f"backend {backend!r}, stopping that reactor (and deadlocking if "
            f"the peer is served by it); call it from another thread, or use "
            f"nonblocking mode (set_nonblocking)",
        )


def _version(value: object, option: str) -> int:
    try:
        return int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        raise ValueError(f"{option} must be a ProtocolVersion, not {value!r}") from None


def _version_name(value: int) -> str:
    try:
        return ProtocolVersion(value).name
    except ValueError:
        return f"0x{value:04x}"


def _effective_context(
    context: Context, min_version: object, max_version: object
) -> Context:
    """The context with Pike's version rules applied.

    ``None`` keeps the context's own bound (whose default is the whole
    supported range).  Below TLS 1.2 a minimum is raised to TLS 1.2 (Pike's
    default minimum is SSL 3.0); a maximum below TLS 1.2 leaves nothing to
    speak and is an error; a minimum above the maximum is lowered to it.
    """
    low_supported = min(SUPPORTED_VERSIONS)
    high_supported = max(SUPPORTED_VERSIONS)
    low = (
        context.min_version
        if min_version is None
        else _version(min_version, "min_version")
    )
    high = (
        context.max_version
        if max_version is None
        else _version(max_version, "max_version")
    )
    if high < low_supported:
        names = " and ".join(v.name for v in SUPPORTED_VERSIONS)
        raise ValueError(
            f"max_version {_version_name(high)} is below every supported "
            f"version: SSLFile speaks {names}"
        )
    low = max(low, low_supported)
    high = min(high, high_supported)
    low = min(low, high)
    if (low, high) == (context.min_version, context.max_version):
        return context
    return context.replace(
        min_version=ProtocolVersion(low), max_version=ProtocolVersion(high)
    )


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


# ---------------------------------------------------------------------------
# SSLFile
# ---------------------------------------------------------------------------


class SSLFile:
    """A TLS stream over a connected socket, modelled on Pike's ``SSL.File``.

    :param stream: a connected stream socket (TCP, UNIX, a
        ``socket.socketpair()`` end).  The SSLFile takes it over and puts it
        in OS-nonblocking mode; the caller must stop using it until it is
        handed back by :meth:`shutdown` (or a failed blocking handshake).
    :param ctx: the :class:`~twisted_sslfile.context.Context`.
    :param is_client: start a client handshake at once; else wait for one.
    :param is_blocking: start in blocking mode.  A blocking client runs the
        whole handshake in the constructor; a blocking server runs it in the
        first ``read``/``write`` (``close``/``is_open`` only advance it).
    :param min_version: lowest :class:`ProtocolVersion`; below TLS 1.2 it is
        raised to TLS 1.2.  None: the context's.
    :param max_version: highest; below TLS 1.2 is a ``ValueError``.  None:
        the context's.  ``min_version > max_version`` lowers the minimum.
    :param backend: the reactor that runs NB I/O and every callback
        (default ``twisted.internet.reactor``); it must provide
        ``IReactorFDSet`` and ``IReactorTime``.
    :param server_name: client only: SNI, and the name the server's
        certificate must match.
    :param session: a session of an earlier connection, to resume.
    :param pending_data: bytes already read from the socket that belong to
        the TLS stream (STARTTLS sniffing); processed first.
    :param close_timeout: seconds a ``close()`` may take (default
        :data:`CLOSE_TIMEOUT`); then what is still queued is dropped, the
        socket closed and the close reported as failed with ETIMEDOUT.
        None waits forever, as Pike does.
    """

    __slots__ = (
        "__weakref__",
        "_accept_due",
        "_alert_cb",
        "_backend",
        "_blocking",
        "_cb",
        "_close_call",
        "_close_timeout",
        "_cond",
        "_conn",
        "_context",
        "_descriptor",
        "_eof",
        "_errno",
        "_error",
        "_error_detail",
        "_held",
        "_id",
        "_inbuf",
        "_lock",
        "_original_timeout",
        "_outbuf",
        "_peer_closed",
        "_phase",
        "_poll_call",
        "_poll_scheduled",
        "_read_limit",
        "_reader_thread",
        "_reading",
        "_renegotiating",
        "_session",
        "_sock",
        "_sync_pending",
        "_timeout",
        "_waiters",
        "_write_armed",
        "_write_dead",
        "_write_error_pending",
        "_writing",
    )

    def __init__(
        self,
        stream: socket.socket,
        ctx: Context,
        is_client: bool = False,
        is_blocking: bool = False,
        min_version: ProtocolVersion | int | None = None,
        max_version: ProtocolVersion | int | None = None,
        *,
        backend: Any = None,
        server_name: str | None = None,
        session: Session | None = None,
        pending_data: bytes = b"",
        close_timeout: float | None = CLOSE_TIMEOUT,
    ) -> None:
        # __del__ reads _phase and _sock with getattr(): until both are set
        # the SSLFile owns no socket and has nothing to close.
        if close_timeout is not None and (
            isinstance(close_timeout, bool)
            or not isinstance(close_timeout, int | float)
            or not close_timeout > 0
        ):
            raise ValueError("close_timeout must be positive seconds or None")
        _check_stream(stream)
        if not isinstance(ctx, Context):
            raise TypeError(f"ctx must be a twisted_sslfile Context, not {ctx!r}")
        if backend is None:
            from twisted.internet import reactor as backend
        _check_backend(backend)
        context = _effective_context(ctx, min_version, max_version)
        if server_name is not None and not is_client:
            raise ValueError("server_name is a client option")
        conn = Connection(
            context, is_client=bool(is_client), server_name=server_name, session=session
        )

        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._backend = backend
        self._context = context
        self._conn = conn
        self._inbuf = bytearray()
        self._outbuf = bytearray()
        self._cb = _Callbacks()
        self._held: _Callbacks | None = None
        self._alert_cb: Callback | None = None
        self._id: object = _UNSET
        self._errno = 0
        self._error = 0
        self._error_detail: BaseException | None = None
        self._peer_closed = False
        self._eof = False
        self._write_dead = False
        self._write_error_pending = False
        self._write_armed = True
        self._accept_due = False
        self._renegotiating = False
        self._session: Session | None = None
        self._blocking = bool(is_blocking)
        self._reading = False
        self._writing = False
        self._descriptor: _Descriptor | None = None
        self._sync_pending = False
        self._poll_call: Any = None
        self._poll_scheduled = False
        self._read_limit = READ_BUFFER_LIMIT
        self._reader_thread: int | None = None
        self._waiters = 0
        self._timeout: float | None = None
        self._close_timeout: float | None = close_timeout
        self._close_call: Any = None

        self._original_timeout = stream.gettimeout()
        stream.setblocking(False)
        self._sock: socket.socket | None = stream
        self._phase = Phase.HANDSHAKING

        with self._lock:
            conn.start()
            if pending_data:
                self._feed(bytes(pending_data))
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

    # -- construction helpers --------------------------------------------------

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

    # -- Pike's file interface -------------------------------------------------

    def read(self, length: int | None = None, not_all: bool = False) -> bytes | None:
        """Read decrypted data; see ``SSLFILE.md`` §2.

        B: ``read(n)`` waits for n bytes (fewer at end of stream), ``read()``
        for the peer's close_notify, ``read(n, not_all=True)`` for any data.
        NB: what is buffered, ``b""`` with EAGAIN when nothing is.  At end:
        ``b""`` (errno 0) after close_notify; ``None`` (errno EPIPE) after an
        abrupt close or a fatal alert.
        """
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
            self._read_limit = max(READ_BUFFER_LIMIT, length)

            def done() -> bool:
                return len(inbuf) >= length or self._input_ended()

        try:
            self._block_until(done)
        finally:
            self._read_limit = READ_BUFFER_LIMIT

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

    def write(self, data: bytes | Iterable[bytes], *args: object) -> int:
        """Encrypt and send; see ``SSLFILE.md`` §3.

        ``data`` may be a list of bytes (packed into full records); with
        ``args``, ``data % args`` is written.  B: returns when everything is
        on the socket.  NB: accepts at most 64 KiB per call, 0 with EAGAIN
        during the handshake or while 64 KiB wait for the socket.
        ``write(b"")`` flushes.  After the connection failed: -1 with EPIPE
        (ECONNRESET if the peer reset it or sent a fatal alert).
        """
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
        room = WRITE_LIMIT - len(self._outbuf)
        if room <= 0:
            self._flush()
            room = WRITE_LIMIT - len(self._outbuf)
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

    def close(
        self,
        how: str | None = None,
        clean_close: bool = False,
        dont_throw: bool = False,
    ) -> int:
        """Close the TLS stream; see ``SSLFILE.md`` §4.

        Returns 1, or 0 with ``errno()`` when the connection had already
        failed.  ``clean_close`` also waits for the peer's close_notify and
        then leaves the socket open (hand it back with :meth:`shutdown`).
        """
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

    def _stop_close_timer(self) -> None:
        call, self._close_call = self._close_call, None
        if call is not None and _may_touch(self._backend):
            _cancel(call)
        # Otherwise it fires later, finds the close finished, and does nothing.

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

    def shutdown(self) -> socket.socket | None:
        """Drop the TLS layer without sending more; maybe hand back the socket.

        The open socket comes back when no close was asked for, or after a
        finished clean close; otherwise it is closed and None returned
        (errno EPIPE for an unfinished clean close, or the error the close
        ended in).  Bytes that came after the peer's close_notify are then
        returned by :meth:`read`.
        """
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

    def is_open(self) -> int:
        """1 while neither side has closed, 0 once one has, 2 during a clean close.

        Unread data keeps it 1 after the peer closed.  Reads what the socket
        already has (without waiting) to notice a close_notify.
        """
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

    def errno(self) -> int:
        """The error of the last operation (an ``errno`` module value), or 0."""
        return self._errno

    def renegotiate(self) -> int:
        """Refresh the session's keys; the accept callback fires when done.

        TLS 1.3: a KeyUpdate that asks the peer to update too (done when the
        peer's KeyUpdate arrives).  TLS 1.2: a secure renegotiation (RFC
        5746; a server must allow peer renegotiation in its Context).
        Returns 1, or 0 with errno: EAGAIN during the first handshake,
        EOPNOTSUPP when a handshake is under way or the peer lacks RFC 5746.
        """
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

    # -- modes and callbacks ---------------------------------------------------

    def set_nonblocking(
        self,
        read_cb: Callback | None = None,
        write_cb: Callback | None = None,
        close_cb: Callback | None = None,
        read_oob_cb: Callback | None = None,
        write_oob_cb: Callback | None = None,
        accept_cb: Callback | None = None,
    ) -> None:
        """Switch to NB mode with these callbacks.

        During the handshake they are held back and installed when it
        succeeds, so a failed handshake calls none of them.  ``accept_cb``
        only replaces the accept callback when given (as in Pike).
        """
        callbacks = _Callbacks(
            read_cb, write_cb, close_cb, read_oob_cb, write_oob_cb, accept_cb
        )
        with self._lock:
            self._require_open()
            if self._conn.handshake_complete:
                self._install(callbacks)
            else:
                self._held = callbacks
            self._blocking = False
            self._after_io()

    def set_nonblocking_keep_callbacks(self) -> None:
        """Switch to NB mode; callbacks stay as they are."""
        with self._lock:
            self._require_open()
            self._blocking = False
            self._after_io()

    def set_blocking(self) -> None:
        """Switch to B mode and clear the callbacks (not the alert callback)."""
        with self._lock:
            self._require_open()
            self._cb = _Callbacks()
            self._held = None
            self._blocking = True
            self._after_io()

    def set_blocking_keep_callbacks(self) -> None:
        """Switch to B mode; callbacks keep running in the backend."""
        with self._lock:
            self._require_open()
            self._blocking = True
            self._after_io()

    def set_callbacks(
        self,
        read_cb: Callback | None = _UNSET,
        write_cb: Callback | None = _UNSET,
        close_cb: Callback | None = _UNSET,
        read_oob_cb: Callback | None = _UNSET,
        write_oob_cb: Callback | None = _UNSET,
        accept_cb: Callback | None = _UNSET,
    ) -> None:
        """Change the callbacks given (live at once); the mode stays."""
        with self._lock:
            for name, value in (
                ("read", read_cb),
                ("write", write_cb),
                ("close", close_cb),
                ("read_oob", read_oob_cb),
                ("write_oob", write_oob_cb),
                ("accept", accept_cb),
            ):
                if value is not _UNSET:
                    self._set_callback(name, value)
            self._after_io()

    def _set_callback(self, name: str, value: Callback | None) -> None:
        setattr(self._cb, name, value)
        if self._held is not None:
            # A later explicit setting wins over the held set_nonblocking one.
            setattr(self._held, name, value)
        if name == "write" and value is not None:
            self._write_armed = True

    def _setter(name: str) -> Callable[[SSLFile, Callback | None], None]:  # type: ignore[misc]
        def setter(self: SSLFile, f: Callback | None) -> None:
            with self._lock:
                self._set_callback(name, f)
                self._after_io()

        setter.__name__ = f"set_{name}_callback"
        setter.__doc__ = f"Set the {name.replace('_', ' ')} callback (live at once)."
        return setter

    def _getter(name: str) -> Callable[[SSLFile], Callback | None]:  # type: ignore[misc]
        def getter(self: SSLFile) -> Callback | None:
            return getattr(self._cb, name)

        getter.__name__ = f"query_{name}_callback"
        getter.__doc__ = f"The {name.replace('_', ' ')} callback, or None."
        return getter

    set_read_callback = _setter("read")
    set_write_callback = _setter("write")
    set_close_callback = _setter("close")
    set_accept_callback = _setter("accept")
    set_read_oob_callback = _setter("read_oob")
    set_write_oob_callback = _setter("write_oob")
    query_read_callback = _getter("read")
    query_write_callback = _getter("write")
    query_close_callback = _getter("close")
    query_accept_callback = _getter("accept")
    query_read_oob_callback = _getter("read_oob")
    query_write_oob_callback = _getter("write_oob")
    del _setter, _getter

    def set_alert_callback(self, f: Callback | None) -> None:
        """``f(alert, seq_num, raw_bytes)`` when incoming bytes are refused.

        It runs synchronously, before our fatal alert is sent, with the
        :class:`~twisted_sslfile.errors.TLSError` (its ``alert`` is the
        alert about to go out), the record sequence number and the raw
        bytes that were refused.  Calling :meth:`shutdown` in it cancels the
        alert and hands back the socket, e.g. to answer plain HTTP.
        """
        with self._lock:
            self._alert_cb = f

    def query_alert_callback(self) -> Callback | None:
        return self._alert_cb

    def query_callbacks(self) -> tuple[Callback | None, ...]:
        """(read, write, close, read_oob, write_oob, accept)."""
        return self._cb.as_tuple()

    def set_id(self, id: object) -> None:
        """The first argument of the callbacks (default: the SSLFile)."""
        self._id = id

    def query_id(self) -> object:
        return None if self._id is _UNSET else self._id

    def set_backend(self, backend: Any) -> None:
        """Move NB I/O and callbacks to another reactor."""
        _check_backend(backend)
        with self._lock:
            if backend is self._backend:
                return
            self._unregister(close_socket=False)
            if _may_touch(self._backend):
                _cancel(self._poll_call)
            self._poll_call = None
            self._poll_scheduled = False
            self._backend = backend
            self._after_io()

    def query_backend(self) -> Any:
        return self._backend

    def set_timeout(self, seconds: float | None) -> None:
        """Bound each wait of a blocking call; on expiry the call fails (EIO)."""
        if seconds is not None and seconds < 0:
            raise ValueError("timeout must be >= 0 or None")
        self._timeout = seconds

    def linger(self, seconds: int = -1) -> int:
        """Set SO_LINGER: -1 default, 0 reset on close, n wait n seconds."""
        sock = self._sock
        if sock is None or self._phase in SOCKET_GONE:
            raise OSError(_errno.EBADF, "Not open.")
        value = (
            struct.pack("ii", 0, 0) if seconds < 0 else struct.pack("ii", 1, seconds)
        )
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, value)
        except OSError as exc:
            self._errno = exc.errno or _errno.EINVAL
            return 0
        self._errno = 0
        return 1

    # -- queries ---------------------------------------------------------------

    @property
    def next_protocol(self) -> bytes | None:
        """The protocol chosen through NPN (TLS 1.2), or None."""
        return self._conn.next_protocol

    @property
    def application_protocol(self) -> bytes | None:
        """The protocol chosen through ALPN, or None."""
        return self._conn.alpn_protocol

    @property
    def session(self) -> object:
        """The session to pass to a later SSLFile to resume, or None."""
        return self.query_session()

    def query_session(self) -> Session | None:
        session = getattr(self._conn, "session", None)
        return session if session is not None else self._session

    def query_version(self) -> ProtocolVersion | None:
        return self._conn.version

    def query_suite(self) -> CipherSuite | None:
        return self._conn.cipher_suite

    def get_server_name(self) -> str | None:
        """Client: the name we asked for; server: the SNI the client sent."""
        return self._conn.server_name

    def get_server_names(self) -> list[str]:
        """The SNI names of the connection (Pike returns a list)."""
        name = self._conn.server_name
        return [name] if name else []

    def get_peer_certificates(self) -> list[bytes]:
        """The peer's certificates, DER, leaf first."""
        return list(self._conn.peer_certificates)

    def get_peer_certificate_info(self) -> dict[str, Any] | None:
        """What verification found, or None when the context does not verify."""
        result = self._conn.handshake_result
        if result is None or not self._context.verify or not result.peer_certificates:
            return None
        from cryptography import x509
        from cryptography.x509.oid import NameOID

        leaf = x509.load_der_x509_certificate(result.peer_certificates[0])
        names = leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        try:
            san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName)
            dns_names = san.value.get_values_for_type(x509.DNSName)
        except x509.ExtensionNotFound:
            dns_names = []
        return {
            "verified": result.verified,
            "common_name": names[0].value if names else None,
            "subject": leaf.subject.rfc4514_string(),
            "issuer": leaf.issuer.rfc4514_string(),
            "self_signed": leaf.subject == leaf.issuer,
            "dns_names": dns_names,
            "not_before": leaf.not_valid_before_utc,
            "not_after": leaf.not_valid_after_utc,
            "certificates": list(result.peer_certificates),
        }

    def query_address(self, local: bool = False) -> str | None:
        """``"ip port"`` of the peer (or of this end with ``local=True``)."""
        sock = self._sock
        if sock is None or self._phase in SOCKET_CLOSED:
            self._errno = _errno.EBADF
            return None
        try:
            address = sock.getsockname() if local else sock.getpeername()
        except OSError as exc:
            self._errno = exc.errno or _errno.ENOTCONN
            return None
        if isinstance(address, tuple):
            return f"{address[0]} {address[1]}"
        # AF_UNIX: the path (empty for an unnamed socketpair end).
        return address.decode() if isinstance(address, bytes) else str(address)

    def query_fd(self) -> int:
        sock = self._sock
        if sock is None or self._phase in SOCKET_CLOSED:
            return -1
        return sock.fileno()

    def query_stream(self) -> socket.socket | None:
        """The socket, while the SSLFile owns it and it is open."""
        return None if self._phase in SOCKET_CLOSED else self._sock

    def query_connection(self) -> Connection:
        """The engine connection (for what this class does not wrap)."""
        return self._conn

    def query_context(self) -> Context:
        """The context in use (with the constructor's version bounds)."""
        return self._context

    def __repr__(self) -> str:
        role = "client" if self._conn.is_client else "server"
        mode = "blocking" if self._blocking else "nonblocking"
        version = self._conn.version
        return (
            f"<SSLFile {role} {mode} {self._phase.value} fd={self.query_fd()} "
            f"{version.name if version else 'handshaking'}>"
        )

    def __del__(self) -> None:
        # Interpreter shutdown and such: a finalizer must not raise.
        with contextlib.suppress(Exception):
            self._finalize()

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

    # -- internals: state ------------------------------------------------------

    def _transition(self, new: Phase) -> None:
        """Move to phase ``new``: the one place the phase changes (lock held).

        Raises :class:`~twisted_sslfile._sslfile_state.PhaseError` for a move
        the transition table does not allow (a bug in SSLFile).
        """
        self._phase = check_transition(self._phase, new)

    def _require_open(self) -> None:
        if self._phase not in LIVE:
            raise OSError(_errno.EBADF, "Not open.")

    def _install(self, callbacks: _Callbacks) -> None:
        accept = self._cb.accept if callbacks.accept is None else callbacks.accept
        self._cb = callbacks
        self._cb.accept = accept
        self._held = None
        if callbacks.write is not None:
            self._write_armed = True

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

    # -- internals: socket I/O -------------------------------------------------

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

    # -- internals: blocking waits ---------------------------------------------

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

    # -- internals: the poll (SSLFILE.md §5) -----------------------------------

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
