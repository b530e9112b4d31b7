"""The connection log: one structured ``twisted.logger`` event per TLS connection.

Turned on with ``TLSFactory(..., connection_log=True)`` (or a ``Logger`` of
your own), ``start_tls(..., connection_log=True)`` or the endpoint option
``connectionLog=yes``.  When a connection ends, :class:`ConnectionLog`
emits one event saying who the peer was, what was negotiated, how much
application data went each way, how long it lasted and why it ended.  The
fields are documented in ``docs/twisted.rst`` ("Connection log") and their
names are a stable interface: operators filter on them (``jq`` over
``jsonFileLogObserver`` output, say).

Why one event at the end and not several along the way: a line per
connection is what an access log is, it can be counted, and everything is
known by then, including why the connection ended.  A handshake that failed
is the same event at ``warn`` level, carrying the alert and the error.

What the event never carries: keys, secrets, session tickets, application
data.  Values that come from the peer (SNI, certificate subject, ALPN) are
fields, never part of the format string, so a ``{`` in them is inert.

The cost is paid only when the log is on: :mod:`twisted_sslfile.protocol`
does not import this module otherwise, and a connection without a log has
nothing but a ``None`` where the :class:`ConnectionLog` would be.
"""

from __future__ import annotations

from typing import Any

from cryptography import x509
from twisted.internet import error
from twisted.logger import Logger, LogLevel
from twisted.python.failure import Failure

from twisted_sslfile.engine.events import HandshakeCompleted
from twisted_sslfile.errors import RemoteAlertError, TLSError
from twisted_sslfile.reasons import CloseTimeoutError, TLSTruncationError

__all__ = [
    "FIELDS",
    "LOG_NAMESPACE",
    "ConnectionLog",
    "describe_peer",
    "format_version",
    "resolve_logger",
]

#: The namespace of the default logger (``connection_log=True``).
LOG_NAMESPACE = "twisted_sslfile.tlslog"

#: Every field of the event, in the order docs/twisted.rst lists them.  A
#: test checks that each event has exactly these (besides twisted.logger's
#: own ``log_*`` keys) and that the documentation names each one.
FIELDS = (
    "peer",
    "role",
    "handshake",
    "server_name",
    "version",
    "cipher_suite",
    "group",
    "alpn",
    "npn",
    "resumed",
    "peer_subject",
    "peer_verified",
    "bytes_in",
    "bytes_out",
    "duration",
    "end",
    "closed_by",
    "alert",
    "alert_direction",
    "error",
    "summary",
)

_default_logger = Logger(namespace=LOG_NAMESPACE)


def resolve_logger(connection_log: bool | Logger | None) -> Logger | None:
    """The ``Logger`` a ``connection_log`` argument stands for, or None (off).

    ``True`` is this module's logger (namespace :data:`LOG_NAMESPACE`);
    a ``Logger`` is used as given (its namespace, its observer).
    """
    if connection_log is None or connection_log is False:
        return None
    if connection_log is True:
        return _default_logger
    if isinstance(connection_log, Logger):
        return connection_log
    raise TypeError(
        f"connection_log must be True, False or a twisted.logger.Logger, "
        f"not {connection_log!r}"
    )


def format_version(version: int | None) -> str:
    """``TLSv1.3``: the spelling openssl and Python's ``ssl`` print."""
    if version is None:
        return "-"
    major, minor = divmod(int(version), 256)
    if major == 3 and minor >= 1:
        return f"TLSv1.{minor - 1}"
    return f"0x{int(version):04x}"


def describe_peer(address: Any) -> str:
    """``127.0.0.1:51234``, ``[::1]:51234``, or a UNIX socket's description."""
    host = getattr(address, "host", None)
    port = getattr(address, "port", None)
    if host is not None and port is not None:
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    if type(address).__name__ == "UNIXAddress":
        # A connecting UNIX socket is usually unnamed (no path to show).
        name = address.name
        if isinstance(name, bytes):
            name = name.decode("utf-8", "backslashreplace")
        return f"unix:{name}" if name else "unix"
    return str(address)


def _name(value: Any) -> str | None:
    if value is None:
        return None
    name = getattr(value, "name", None)
    return name if isinstance(name, str) else str(value)


def _protocol_name(value: bytes | None) -> str | None:
    if value is None:
        return None
    return value.decode("ascii", "backslashreplace")


def _subject(result: HandshakeCompleted) -> str | None:
    """RFC 4514 subject of the peer's leaf certificate, if it sent one."""
    if not result.peer_certificates:
        return None
    try:
        leaf = x509.load_der_x509_certificate(result.peer_certificates[0])
        return leaf.subject.rfc4514_string()
    except ValueError:
        # Accepted unverified (verify=no) yet not parseable here: say so
        # rather than fail the log line.
        return "(unparseable certificate)"


def _dash(value: object) -> object:
    return "-" if value is None else value


def _classify(
    reason: Failure, *, completed: bool, peer_closed_first: bool
) -> dict[str, Any]:
    """``end``, ``closed_by``, ``alert``, ``alert_direction``, ``error`` and
    the words of the summary, from the reason ``connectionLost`` got."""
    value = reason.value
    out: dict[str, Any] = {
        "closed_by": None,
        "alert": None,
        "alert_direction": None,
        "error": None,
    }
    if isinstance(value, RemoteAlertError):
        alert = value.alert.name
        if value.raw_description != int(value.alert):
            alert = str(value.raw_description)  # an alert number we do not know
        out.update(
            end="alert",
            closed_by="peer",
            alert=alert,
            alert_direction="received",
            error=value.message,
        )
        out["words"] = f"peer sent fatal alert {alert}"
    elif isinstance(value, TLSError):
        out.update(
            end="alert",
            closed_by="local",
            alert=value.alert.name,
            alert_direction="sent",
            error=value.message,
        )
        out["words"] = f"sent fatal alert {value.alert.name}: {value.message}"
    elif isinstance(value, error.TimeoutError):
        # The handshake timeout, or a timeout of the transport below.
        out.update(end="timeout", closed_by="local", error=reason.getErrorMessage())
        out["words"] = f"timed out: {reason.getErrorMessage()}"
    elif isinstance(value, TLSTruncationError):
        out.update(end="truncated", closed_by="peer", error=reason.getErrorMessage())
        out["words"] = (
            "truncated: the peer closed without close_notify"
            if completed
            else "truncated: the peer closed during the handshake"
        )
    elif isinstance(value, CloseTimeoutError):
        # Our close outlived close_timeout (the peer stopped reading or never
        # answered close_notify): a timeout, not an abort the app asked for.
        out.update(end="timeout", closed_by="local", error=reason.getErrorMessage())
        out["words"] = "close timed out (peer not reading), connection aborted"
    elif isinstance(value, error.ConnectionAborted):
        out.update(end="aborted", closed_by="local")
        out["words"] = "aborted locally"
    elif isinstance(value, error.ConnectionDone):
        if peer_closed_first:
            out.update(end="clean", closed_by="peer")
            out["words"] = "peer closed with close_notify"
        elif completed:
            out.update(end="clean", closed_by="local")
            out["words"] = "closed locally with close_notify"
        else:
            out.update(end="clean", closed_by="local")
            out["words"] = "closed locally before the handshake completed"
    else:
        message = f"{type(reason.value).__name__}: {reason.getErrorMessage()}"
        out.update(end="error", error=message)
        out["words"] = message
    return out


class ConnectionLog:
    """What one connection's log event needs, gathered as it runs.

    :class:`~twisted_sslfile.protocol.TLSProtocol` makes one per connection
    when its factory's log is on, counts application bytes into it and
    calls :meth:`connection_made`, :meth:`peer_close_notify` and
    :meth:`connection_lost`; the event is emitted by the last.
    """

    __slots__ = (
        "bytes_in",
        "bytes_out",
        "logger",
        "peer",
        "peer_closed_first",
        "started",
    )

    def __init__(self, logger: Logger) -> None:
        self.logger = logger
        #: Decrypted application bytes received from the peer.
        self.bytes_in = 0
        #: Application bytes handed to TLS to be sent.
        self.bytes_out = 0
        self.started: float | None = None
        self.peer = "-"
        self.peer_closed_first = False

    def connection_made(self, transport: Any, now: float) -> None:
        """The transport below connected at ``now`` (its reactor's time)."""
        self.started = now
        get_peer = getattr(transport, "getPeer", None)
        if get_peer is not None:
            try:
                self.peer = describe_peer(get_peer())
            except Exception:
                # The log must never cost the connection; "-" says unknown.
                self.logger.failure("connection log: no peer address")

    def peer_close_notify(self, we_sent_ours: bool) -> None:
        """The peer's close_notify arrived; ``we_sent_ours`` says whether
        ours was already out (then we closed first)."""
        if not we_sent_ours:
            self.peer_closed_first = True

    def connection_lost(
        self,
        *,
        reason: Failure,
        result: HandshakeCompleted | None,
        is_client: bool,
        server_name: str | None,
        now: float,
    ) -> None:
        """Emit the connection's event: ``info``, or ``warn`` when the
        handshake failed (unless the local side closed or aborted it) or a
        fatal alert ended the connection.

        Never raises: it runs inside ``connectionLost``, ahead of the
        application's own, which a logging problem must not prevent.
        """
        try:
            level, fields = self._event(
                reason=reason,
                result=result,
                is_client=is_client,
                server_name=server_name,
                now=now,
            )
        except Exception:
            self.logger.failure(
                "connection log: cannot describe {peer}", peer=self.peer
            )
            return
        self.logger.emit(level, "{summary}", **fields)

    def _event(
        self,
        *,
        reason: Failure,
        result: HandshakeCompleted | None,
        is_client: bool,
        server_name: str | None,
        now: float,
    ) -> tuple[LogLevel, dict[str, Any]]:
        completed = result is not None
        end = _classify(
            reason, completed=completed, peer_closed_first=self.peer_closed_first
        )
        words = end.pop("words")
        duration = 0.0 if self.started is None else max(0.0, now - self.started)
        fields: dict[str, Any] = {
            "peer": self.peer,
            "role": "client" if is_client else "server",
            "handshake": "completed" if completed else "failed",
            "server_name": server_name,
            "version": None,
            "cipher_suite": None,
            "group": None,
            "alpn": None,
            "npn": None,
            "resumed": False,
            "peer_subject": None,
            "peer_verified": False,
            "bytes_in": self.bytes_in,
            "bytes_out": self.bytes_out,
            "duration": duration,
            **end,
        }
        # The peer as the text shows it: a client names where it connected.
        who = f"to {self.peer}" if is_client else self.peer
        if result is not None:
            fields.update(
                server_name=result.server_name or server_name,
                version=format_version(result.version),
                cipher_suite=_name(result.cipher_suite),
                group=_name(result.group),
                alpn=_protocol_name(result.alpn_protocol),
                npn=_protocol_name(result.next_protocol),
                resumed=result.resumed,
                peer_subject=_subject(result),
                peer_verified=result.verified,
            )
            subject = fields["peer_subject"]
            summary = (
                f"{who} sni={_dash(fields['server_name'])} {fields['version']} "
                f"{_dash(fields['cipher_suite'])} group={_dash(fields['group'])} "
                f"alpn={_dash(fields['alpn'])} npn={_dash(fields['npn'])} "
                f"resumed={'yes' if result.resumed else 'no'}"
                + ("" if subject is None else f' subject="{subject}"')
                + f" in={self.bytes_in} out={self.bytes_out} "
                f"time={duration:.3f}s end: {words}"
            )
        else:
            summary = (
                f"{who} handshake failed; sni={_dash(server_name)} "
                f"in={self.bytes_in} out={self.bytes_out} time={duration:.3f}s "
                f"end: {words}"
            )
        fields["summary"] = summary
        # A failed handshake is worth a warning, unless our own side chose
        # to close or abort before it finished; so is any fatal alert.
        warn = end["end"] == "alert" or (
            not completed and end["end"] not in ("clean", "aborted")
        )
        return LogLevel.warn if warn else LogLevel.info, fields
