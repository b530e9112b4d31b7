"""SSLFile: Pike's ``SSL.File`` as a Python object over any Twisted reactor.

An :class:`SSLFile` is a TLS stream with the interface of a plain file: it
reads, writes and closes, in blocking (B) or nonblocking (NB) mode, and may
switch between the two on a live connection.  ``docs/sslfile.rst`` is the
user's guide and the specification, method by method (return values,
errno, blocking and nonblocking behaviour, callback order, closing);
``docs/pike.rst`` lists every difference from Pike.

This module is the public face: the constructor and Pike's methods, each
short.  The work is done by the bases of :class:`SSLFile`, one private
module each, layered in this order:

* :mod:`twisted_sslfile._sslfile_state`: the lifecycle as one
  :class:`~twisted_sslfile._sslfile_state.Phase` and the table of the
  moves between phases;
* :mod:`twisted_sslfile._sslfile_callbacks`: the Pike callback scheduler,
  one coalesced ``backend.callLater(0, poll)`` that calls the user's
  callbacks in the documented order (never from inside a socket handler);
* :mod:`twisted_sslfile._sslfile_pump`: the socket pump, which moves bytes
  between the socket and the sans-I/O engine
  (:class:`~twisted_sslfile.engine.connection.Connection`; an SSLFile never
  parses TLS), keeps the buffers, does the blocking waits (``poll`` in the
  calling thread, never the reactor) and implements ``read``/``write``;
* :mod:`twisted_sslfile._sslfile_close`: ``close``, ``shutdown``,
  ``is_open`` and the best-effort close of a dropped SSLFile;
* :mod:`twisted_sslfile._sslfile_io`: what the backend holds (the
  descriptor, the delayed-call trampolines, the closer of a dropped
  SSLFile's socket - each reaching its SSLFile only through a weak
  reference), which thread runs a backend, and the argument checks.

The backend holds an SSLFile only weakly and an SSLFile holds no reference
to itself, so dropping the last reference frees it at once, even with the
cyclic garbage collector disabled, and ``__del__`` then makes a best-effort
nonblocking close.
"""

from __future__ import annotations

import contextlib
import errno as _errno
import socket
import struct
from collections.abc import Callable, Iterable
from typing import Any

from twisted_sslfile._sslfile_callbacks import _UNSET, Callback, _Callbacks
from twisted_sslfile._sslfile_close import _Closer
from twisted_sslfile._sslfile_io import (
    _DRAIN_TIMEOUT,
    _READ_BUFFER_LIMIT,
    _WRITE_LIMIT,
    _cancel,
    _check_backend,
    _check_stream,
    _may_touch,
)
from twisted_sslfile._sslfile_state import SOCKET_CLOSED, SOCKET_GONE
from twisted_sslfile.constants import (
    SUPPORTED_VERSIONS,
    CipherSuite,
    ProtocolVersion,
)
from twisted_sslfile.context import Context
from twisted_sslfile.engine.connection import Connection
from twisted_sslfile.engine.sessions import Session
from twisted_sslfile.errors import ReactorThreadError, SSLHandshakeError

__all__ = [
    "CLOSE_TIMEOUT",
    "READ_BUFFER_LIMIT",
    "WRITE_LIMIT",
    "ProtocolVersion",
    "ReactorThreadError",
    "SSLFile",
    "SSLHandshakeError",
]

#: Decrypted bytes an SSLFile buffers before it stops reading the socket
#: (back-pressure): a peer cannot make a slow reader hold more than this,
#: plus at most one socket read.
READ_BUFFER_LIMIT = _READ_BUFFER_LIMIT

#: Plaintext an NB ``write`` accepts per call, and the ciphertext backlog
#: (bytes encrypted but not yet taken by the socket) above which it accepts
#: nothing: a writer faster than the network is told EAGAIN instead of
#: growing an unbounded queue.
WRITE_LIMIT = _WRITE_LIMIT

#: Seconds a ``close()`` may take by default (``close_timeout=``): writing
#: what is queued and close_notify, and for a clean close the peer's answer.
#: A peer that stops reading cannot hold a closing SSLFile, its socket and
#: its queue for longer.  The same bound as a dropped SSLFile's last write.
CLOSE_TIMEOUT = _DRAIN_TIMEOUT


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


# ---------------------------------------------------------------------------
# SSLFile
# ---------------------------------------------------------------------------


class SSLFile(_Closer):
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

    # The attributes of the bases are declared in their own __slots__.
    __slots__ = ("__weakref__",)

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

        self._init_callbacks()
        self._take_over(
            stream, backend, context, conn, bool(is_blocking), close_timeout
        )
        self._start(bool(is_client), bytes(pending_data))

    def read(self, length: int | None = None, not_all: bool = False) -> bytes | None:
        """Read decrypted data; see docs/sslfile.rst, "Reading and writing".

        B: ``read(n)`` waits for n bytes (fewer at end of stream), ``read()``
        for the peer's close_notify, ``read(n, not_all=True)`` for any data.
        NB: what is buffered, ``b""`` with EAGAIN when nothing is.  At end:
        ``b""`` (errno 0) after close_notify; ``None`` (errno EPIPE) after an
        abrupt close or a fatal alert.
        """
        return self._read(length, not_all)

    def write(self, data: bytes | Iterable[bytes], *args: object) -> int:
        """Encrypt and send; see docs/sslfile.rst, "Reading and writing".

        ``data`` may be a list of bytes (packed into full records); with
        ``args``, ``data % args`` is written.  B: returns when everything is
        on the socket.  NB: accepts at most 64 KiB per call, 0 with EAGAIN
        during the handshake or while 64 KiB wait for the socket.
        ``write(b"")`` flushes.  After the connection failed: -1 with EPIPE
        (ECONNRESET if the peer reset it or sent a fatal alert).
        """
        return self._write(data, *args)

    def close(
        self,
        how: str | None = None,
        clean_close: bool = False,
        dont_throw: bool = False,
    ) -> int:
        """Close the TLS stream; see docs/sslfile.rst, section "Closing".

        Returns 1, or 0 with ``errno()`` when the connection had already
        failed.  ``clean_close`` also waits for the peer's close_notify and
        then leaves the socket open (hand it back with :meth:`shutdown`).
        """
        return self._close(how, clean_close, dont_throw)

    def shutdown(self) -> socket.socket | None:
        """Drop the TLS layer without sending more; maybe hand back the socket.

        The open socket comes back when no close was asked for, or after a
        finished clean close; otherwise it is closed and None returned
        (errno EPIPE for an unfinished clean close, or the error the close
        ended in).  Bytes that came after the peer's close_notify are then
        returned by :meth:`read`.
        """
        return self._shutdown()

    def is_open(self) -> int:
        """1 while neither side has closed, 0 once one has, 2 during a clean close.

        Unread data keeps it 1 after the peer closed.  Reads what the socket
        already has (without waiting) to notice a close_notify.
        """
        return self._is_open()

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
        return self._renegotiate()

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
