"""Reactor and socket plumbing behind :class:`~twisted_sslfile.sslfile.SSLFile`.

This private module holds what an SSLFile needs to live with a backend and a
socket but which is not part of its Pike-style API:

* socket constants (receive size, receives per wake-up, send flags, how long
  a dropped SSLFile's close_notify may wait);
* finding out which thread runs a backend, and handing calls to it;
* the objects the backend holds: :class:`_Descriptor`, which reaches its
  SSLFile only through a weak reference, :class:`_Drain`, the best-effort
  closer of a dropped SSLFile's socket, and the delayed-call trampolines,
  which also hold only a ``weakref`` - so the reactor never keeps an SSLFile
  alive and no reference cycle forms;
* the checks of the constructor's ``stream`` and ``backend`` arguments.

It is separate so that ``sslfile.py`` reads as the SSLFile class and its
documented behaviour; nothing here is public, and ``sslfile.py`` imports
what it uses from here.
"""

from __future__ import annotations

import errno as _errno
import socket
import sys
import threading
import weakref
from collections.abc import Callable
from types import FrameType
from typing import TYPE_CHECKING, Any, Protocol

from twisted.internet import error as _twisted_error
from twisted.internet.interfaces import (
    IReactorFDSet,
    IReactorThreads,
    IReactorTime,
    IReadDescriptor,
    IWriteDescriptor,
)
from zope.interface import implementer


class _Owner(Protocol):
    """What this module uses of an :class:`~twisted_sslfile.sslfile.SSLFile`.

    Spelled out rather than imported: ``sslfile`` imports this module, and
    the import graph stays acyclic even for the type checker.
    """

    _backend: Any
    _lock: Any
    _sync_pending: bool

    def _on_readable(self) -> None: ...

    def _on_writable(self) -> None: ...

    def _poll(self) -> None: ...

    def _sync_registration(self) -> None: ...


class _ClosingOwner(_Owner, Protocol):
    """An owner whose close is bounded (the close timer's trampolines)."""

    def _close_timed_out(self) -> None: ...

    def _start_close_timer(self) -> None: ...


if TYPE_CHECKING:
    pass


#: Largest single ``recv``; also the plaintext a B-mode write encrypts at a
#: time before it waits for the socket to take it.
_RECV_SIZE = 65536
#: Receives per reactor wake-up, so one busy connection cannot starve the
#: others a reactor serves.
_RECVS_PER_WAKEUP = 8
#: How long a dropped SSLFile's unsent close_notify may wait for the socket
#: (seconds) before the socket is closed anyway; also the default bound of
#: an explicit ``close()`` (``SSLFile(..., close_timeout=)``).
_DRAIN_TIMEOUT = 10.0

_SEND_FLAGS = getattr(socket, "MSG_NOSIGNAL", 0)

#: Decrypted bytes buffered before reading stops (``READ_BUFFER_LIMIT``).
_READ_BUFFER_LIMIT = 65536
#: The NB write bound per call and for the backlog (``WRITE_LIMIT``).
_WRITE_LIMIT = 65536


class _WaitTimeout(Exception):
    """A wait of a blocking call outlasted ``set_timeout``."""


class _CloseTimeout(_WaitTimeout):
    """A blocking close outlasted the SSLFile's ``close_timeout``."""


# ---------------------------------------------------------------------------
# Which thread runs a backend
# ---------------------------------------------------------------------------

_local = threading.local()


def _push_backend(backend: object) -> None:
    """Note that this thread is running ``backend``'s callbacks right now."""
    stack = _local.__dict__.setdefault("backends", [])
    stack.append(backend)


def _pop_backend() -> None:
    _local.backends.pop()


def _in_backend(backend: object) -> bool:
    """True when the calling thread is inside ``backend``'s event loop.

    Fast path: our own entry points (descriptor, poll, thread hand-offs)
    mark the thread.  Otherwise, while the backend runs, look for one of its
    methods on the call stack: a thread running a reactor always has the
    reactor's loop (``run``, ``runUntilCurrent``, ``_doReadOrWrite``...)
    below whatever user code it calls, and no other thread has.  Twisted
    keeps no record of the thread a reactor runs in, and
    ``threadable.isInIOThread`` only knows one (the last one started).
    """
    for running in getattr(_local, "backends", ()):
        if running is backend:
            return True
    if not getattr(backend, "running", False):
        return False
    frame: FrameType | None = sys._getframe(1)
    while frame is not None:
        code = frame.f_code
        if (
            code.co_argcount
            and code.co_varnames[0] == "self"
            and frame.f_locals.get("self") is backend
        ):
            return True
        frame = frame.f_back
    return False


def _may_touch(backend: object) -> bool:
    """Whether this thread may call the backend's non-thread-safe methods.

    Yes on its own thread, and when it is not running at all (then nothing
    else touches it: a test or a script sets up before ``reactor.run()``).
    Otherwise the call must go through ``callFromThread``.
    """
    if not getattr(backend, "running", False):
        return True
    return _in_backend(backend)


def _call_in_backend(
    backend: Any, function: Callable[..., object], *args: object
) -> None:
    """Run ``function(*args)`` on the backend's thread, now if we are on it."""
    if _may_touch(backend) or not IReactorThreads.providedBy(backend):
        function(*args)
    else:
        backend.callFromThread(_as_backend_call, backend, function, args)


def _as_backend_call(
    backend: object, function: Callable[..., object], args: tuple[object, ...]
) -> None:
    _push_backend(backend)
    try:
        function(*args)
    finally:
        _pop_backend()


# ---------------------------------------------------------------------------
# What the backend holds
# ---------------------------------------------------------------------------


@implementer(IReadDescriptor, IWriteDescriptor)
class _Descriptor:
    """The object an SSLFile registers with its backend.

    It holds the SSLFile through a weak reference only, so the reactor never
    keeps an SSLFile alive; the file descriptor number is kept so that the
    reactor can still remove it after the SSLFile is gone.
    """

    __slots__ = ("_fd", "_ref")

    def __init__(self, owner: _Owner, fd: int) -> None:
        self._ref = weakref.ref(owner)
        self._fd = fd

    def fileno(self) -> int:
        return self._fd

    def doRead(self) -> object:  # type: ignore[override]  # an exception instance, not a Failure: the reactor takes both
        owner = self._ref()
        if owner is None:
            # Its SSLFile is gone: ask the reactor to forget us.
            return _twisted_error.ConnectionDone()
        backend = owner._backend
        _push_backend(backend)
        try:
            owner._on_readable()
        finally:
            _pop_backend()
        return None

    def doWrite(self) -> object:  # type: ignore[override]  # an exception instance, not a Failure: the reactor takes both
        owner = self._ref()
        if owner is None:
            return _twisted_error.ConnectionDone()
        backend = owner._backend
        _push_backend(backend)
        try:
            owner._on_writable()
        finally:
            _pop_backend()
        return None

    def connectionLost(self, reason: object) -> None:
        """The reactor dropped us (shutdown, bad descriptor): nothing to do."""

    def logPrefix(self) -> str:
        return "SSLFile"


@implementer(IWriteDescriptor)
class _Drain:
    """Finishes writing a dropped SSLFile's last bytes, then closes its socket.

    Dropping an SSLFile right after a nonblocking ``close()`` is ordinary
    use; if the socket could not take the close_notify at once, this small
    object (which holds the socket and the bytes, never the SSLFile) gets
    them out from the backend, bounded by ``_DRAIN_TIMEOUT``.
    """

    def __init__(self, backend: Any, sock: socket.socket, data: bytes) -> None:
        self._backend = backend
        self._sock = sock
        self._fd = sock.fileno()
        self._data = data
        self._timer = backend.callLater(_DRAIN_TIMEOUT, self._finish)
        backend.addWriter(self)

    def fileno(self) -> int:
        return self._fd

    def doWrite(self) -> object:  # type: ignore[override]  # an exception instance, not a Failure: the reactor takes both
        try:
            sent = self._sock.send(self._data, _SEND_FLAGS)
        except BlockingIOError:
            return None
        except OSError:
            self._finish()
            return None
        self._data = self._data[sent:]
        if not self._data:
            self._finish()
        return None

    def _finish(self) -> None:
        timer, self._timer = self._timer, None
        if timer is not None and timer.active():
            timer.cancel()
        self._backend.removeWriter(self)
        self._sock.close()

    def connectionLost(self, reason: object) -> None:
        self._sock.close()

    def logPrefix(self) -> str:
        return "SSLFile"


def _run_poll(ref: weakref.ref[_Owner]) -> None:
    owner = ref()
    if owner is None:
        return
    backend = owner._backend
    _push_backend(backend)
    try:
        owner._poll()
    finally:
        _pop_backend()


def _run_close_timer(ref: weakref.ref[_ClosingOwner]) -> None:
    owner = ref()
    if owner is None:
        return
    _push_backend(owner._backend)
    try:
        owner._close_timed_out()
    finally:
        _pop_backend()


def _arm_close_timer(ref: weakref.ref[_ClosingOwner]) -> None:
    """Start a close timer from the backend's thread (asked from another)."""
    owner = ref()
    if owner is None:
        return
    with owner._lock:
        owner._start_close_timer()


def _run_sync(ref: weakref.ref[_Owner]) -> None:
    owner = ref()
    if owner is None:
        return
    _push_backend(owner._backend)
    try:
        with owner._lock:
            owner._sync_pending = False
            owner._sync_registration()
    finally:
        _pop_backend()


def _unregister_and_close(
    backend: Any, descriptor: _Descriptor | None, sock: socket.socket | None
) -> None:
    if descriptor is not None:
        backend.removeReader(descriptor)
        backend.removeWriter(descriptor)
    if sock is not None:
        sock.close()


def _cancel(call: Any) -> None:
    if call is not None and call.active():
        call.cancel()


# ---------------------------------------------------------------------------
# The constructor's stream and backend arguments
# ---------------------------------------------------------------------------


def _check_stream(stream: object) -> None:
    """A connected stream socket, or a clear error saying what is wrong."""
    if not isinstance(stream, socket.socket):
        raise TypeError(
            f"SSLFile needs a connected stream socket (TCP, UNIX or a "
            f"socketpair() end), not {type(stream).__name__}"
        )
    if stream.fileno() < 0:
        raise OSError(_errno.EBADF, "SSLFile needs an open socket; this one is closed")
    if stream.type != socket.SOCK_STREAM:
        raise ValueError(f"SSLFile needs a stream socket, not {stream.type!r}")
    try:
        stream.getpeername()
    except OSError as exc:
        raise OSError(
            exc.errno or _errno.ENOTCONN,
            "SSLFile needs a connected socket: connect() or accept() it first",
        ) from None


def _check_backend(backend: object) -> None:
    missing = [
        interface.__name__
        for interface in (IReactorFDSet, IReactorTime)
        if not interface.providedBy(backend)
    ]
    if missing:
        raise TypeError(
            f"the backend must be a reactor providing IReactorFDSet and "
            f"IReactorTime; {backend!r} lacks {', '.join(missing)}"
        )
