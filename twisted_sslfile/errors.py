"""Errors of the TLS engine.

Every error the engine raises is a :class:`TLSError`, and every
:class:`TLSError` knows the alert that goes (or went) on the wire with it.
That is the whole contract with the adapters: catch ``TLSError``, flush
``data_to_send()`` (the alert is already queued there), close.
"""

from __future__ import annotations

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
        self.events: list[object] = []
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
