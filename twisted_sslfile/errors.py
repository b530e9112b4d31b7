"""Every error and warning class of the package, in one place.

Two families, which must not be confused:

* :class:`TLSError` and its subclasses concern the connection.  Every error
  the engine raises is one, and every one knows the alert that goes (or
  went) on the wire with it.  That is the whole contract with the adapters:
  catch ``TLSError``, flush ``data_to_send()`` (the alert is already queued
  there), close.
* The rest concern the local set-up and are never sent to a peer:
  :class:`ConfigurationError` (a certificate, key, trust root or ticket key
  file that cannot be used), :class:`UnsafeFileError` and
  :class:`InsecureFileWarning` (secret files with loose permissions),
  :class:`EndpointDescriptionError` (a bad ``sslfile:`` string), and the
  ``OSError`` subclasses that SSLFile raises the way Pike does
  (:class:`SSLHandshakeError`, :class:`ReactorThreadError`).

The engine imports this module, so it imports nothing but the constants:
no Twisted.  The two errors that extend Twisted's own classes
(``TLSTruncationError``, ``HandshakeTimeoutError``) live in
:mod:`twisted_sslfile.reasons` for that reason.
"""

from __future__ import annotations

import errno as _errno
import os
from typing import Any

from twisted_sslfile.constants import AlertDescription


class TLSError(Exception):
    """A fatal TLS failure.

    ``alert`` is the alert description sent to the peer (for a locally
    detected problem) or received from it (:class:`RemoteAlertError`).
    Subclasses fix a default alert; any can be raised with another one where
    the RFC asks for a more exact alert.
    """

    default_alert: AlertDescription = AlertDescription.internal_error

    def __init__(self, message: str, alert: AlertDescription | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.alert: AlertDescription = (
            alert if alert is not None else self.default_alert
        )
        #: Events the failing ``receive_data`` call produced before the
        #: failure (application data that arrived intact, say): nothing the
        #: peer sent correctly is lost because a later record was bad.
        #: (Engine ``Event`` objects; typed Any because this module sits below
        #: the engine and may not import it, even for types.)
        self.events: list[Any] = []
        #: The certificates the peer sent (DER, leaf first, as received) when
        #: this error rejected them: a report can still show the chain it
        #: refused.  Empty for every other failure.  Never trusted: the
        #: connection fails all the same.
        self.peer_certificates: tuple[bytes, ...] = ()

    def __str__(self) -> str:
        return f"{self.message} ({self.alert.name})"


class DecodeError(TLSError):
    """A message could not be parsed: wrong lengths, truncated, trailing bytes."""

    default_alert = AlertDescription.decode_error


class IllegalParameterError(TLSError):
    """A field was well formed but its value is not allowed here."""

    default_alert = AlertDescription.illegal_parameter


class UnexpectedMessageError(TLSError):
    """A message or record arrived that the current state does not allow."""

    default_alert = AlertDescription.unexpected_message


class HandshakeFailureError(TLSError):
    """The peers share no acceptable set of parameters."""

    default_alert = AlertDescription.handshake_failure


class ProtocolVersionError(TLSError):
    """No protocol version acceptable to both sides."""

    default_alert = AlertDescription.protocol_version


class BadRecordMacError(TLSError):
    """A record failed AEAD authentication."""

    default_alert = AlertDescription.bad_record_mac


class RecordOverflowError(TLSError):
    """A record exceeded the negotiated or protocol size limits."""

    default_alert = AlertDescription.record_overflow


class DecryptError(TLSError):
    """A signature or Finished value did not verify."""

    default_alert = AlertDescription.decrypt_error


class MissingExtensionError(TLSError):
    """A mandatory extension was absent."""

    default_alert = AlertDescription.missing_extension


class UnsupportedExtensionError(TLSError):
    """An extension appeared in a message that may not carry it."""

    default_alert = AlertDescription.unsupported_extension


class NoApplicationProtocolError(TLSError):
    """ALPN lists had nothing in common (RFC 7301 §3.2)."""

    default_alert = AlertDescription.no_application_protocol


class LimitExceededError(TLSError):
    """A configured bound (message size, chain length, queue) was exceeded.

    The alert depends on what overflowed; handshake size limits use
    ``decode_error`` or ``record_overflow`` as the RFC section applies.
    """

    default_alert = AlertDescription.decode_error


class CertificateError(TLSError):
    """The peer's certificate chain was rejected.

    ``certificate`` is the certificate at fault when one can be named (a
    ``cryptography.x509.Certificate``), so the message can say which one.
    """

    default_alert = AlertDescription.bad_certificate

    def __init__(
        self,
        message: str,
        alert: AlertDescription | None = None,
        certificate: object | None = None,
    ) -> None:
        super().__init__(message, alert)
        self.certificate = certificate


class EmptyCertificateChainError(CertificateError):
    """The peer sent a Certificate message with no certificate in it.

    Kept distinct because what it means depends on who sent it: an empty
    server chain is always fatal (RFC 8446 §4.4.2.4 asks for decode_error),
    an empty client chain is an answer the server may accept
    (``ClientCertificatePolicy.REQUEST``) or refuse with certificate_required
    (``REQUIRE``; RFC 8446 §4.4.2.4).  The engine makes that call; the alert
    set here is the default for the side given to
    :func:`~twisted_sslfile.engine.certificates.parse_chain`.
    """


class InternalError(TLSError):
    """A local failure unrelated to the peer's behaviour."""

    default_alert = AlertDescription.internal_error


class RemoteAlertError(TLSError):
    """The peer sent a fatal alert; nothing is sent in reply (RFC 8446 §6.2)."""

    def __init__(self, alert: AlertDescription | int) -> None:
        try:
            description = AlertDescription(alert)
            name = description.name
        except ValueError:
            # An alert number we do not know is still fatal; report it raw.
            description = AlertDescription.internal_error
            name = f"unknown alert {int(alert)}"
        super().__init__(f"peer sent fatal alert: {name}", description)
        self.raw_description = int(alert)


class ConnectionClosedError(TLSError):
    """An operation needs a connection that is already closed or failed."""

    default_alert = AlertDescription.internal_error


# ---------------------------------------------------------------------------
# Local set-up: never sent to a peer
# ---------------------------------------------------------------------------


class ConfigurationError(ValueError):
    """A certificate, key, trust-root or ticket key source could not be used.

    Raised while a Context is configured, never on the wire.  ``path`` is the
    file at fault when there is one, and the message always names it.
    """

    def __init__(self, message: str, path: str | os.PathLike[str] | None = None):
        super().__init__(message)
        self.path = os.fspath(path) if path is not None else None


class TicketKeyFileError(ConfigurationError):
    """A ticket key file is missing, unreadable or malformed.

    A :class:`ConfigurationError` (so a ValueError); ``path`` names the file
    and the message says what is wrong and where.
    """


class UnsafeFileError(ValueError):
    """A secret file that others may write: refused.

    ``path`` names the file; the message says what is wrong and how to fix
    it (``chmod 600 PATH``).
    """

    def __init__(self, message: str, path: str) -> None:
        super().__init__(message)
        self.path = path


class InsecureFileWarning(UserWarning):
    """A secret file that every user on the machine may read."""


class EndpointDescriptionError(ValueError):
    """An ``sslfile:`` description cannot be used.

    A ``ValueError`` (what Twisted's own parsers raise for bad descriptions)
    whose message starts with the option at fault and, when a file is
    involved, names it.  ``option`` and ``path`` carry the same for code.
    """

    def __init__(
        self, message: str, option: str | None = None, path: str | None = None
    ) -> None:
        super().__init__(message)
        self.option = option
        self.path = path


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
