"""Events the engine reports from :meth:`Connection.receive_data`.

Each is a frozen dataclass: an adapter may keep, compare and log them, and
nothing it does to one can reach back into the engine.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..constants import (
    AlertDescription,
    AlertLevel,
    CipherSuite,
    NamedGroup,
    ProtocolVersion,
    SignatureScheme,
)
from .sessions import Session


class Event:
    """Base class of every engine event."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class HandshakeCompleted(Event):
    """The handshake (or a TLS 1.2 renegotiation) finished.

    ``peer_certificates`` holds DER bytes, leaf first, as the peer sent them;
    ``verified`` says whether they were checked against the trust roots.
    ``peer_signature_scheme`` is the scheme the peer signed this handshake
    with: its TLS 1.3 CertificateVerify, a TLS 1.2 server's
    ServerKeyExchange or a TLS 1.2 client's CertificateVerify.  None when
    the peer signed nothing (a resumption, or a client without certificate).
    """

    version: ProtocolVersion
    cipher_suite: CipherSuite
    group: NamedGroup | None
    alpn_protocol: bytes | None
    next_protocol: bytes | None
    server_name: str | None
    peer_certificates: tuple[bytes, ...] = ()
    verified: bool = False
    resumed: bool = False
    peer_signature_scheme: SignatureScheme | None = None


@dataclass(frozen=True, slots=True)
class ApplicationData(Event):
    """Decrypted application bytes, in order.

    The plaintext of all the consecutive application-data records of one
    ``receive_data`` call: record boundaries carry no meaning for the
    application, and one event per 16 KiB record cost a Python object and
    an application call each.
    """

    data: bytes


@dataclass(frozen=True, slots=True)
class CloseNotify(Event):
    """The peer sent close_notify: no more data will come from it."""


@dataclass(frozen=True, slots=True)
class AlertReceived(Event):
    """The peer sent a warning alert other than close_notify.

    Fatal alerts are not events: they raise
    :class:`~twisted_sslfile.errors.RemoteAlertError`.
    """

    level: AlertLevel
    description: AlertDescription | int


@dataclass(frozen=True, slots=True)
class SessionTicket(Event):
    """The server issued a ticket; ``session`` resumes this connection later."""

    session: Session = field(repr=False)


@dataclass(frozen=True, slots=True)
class KeyUpdated(Event):
    """Traffic keys changed (TLS 1.3 KeyUpdate).

    ``direction`` is ``"receive"`` when the peer's sending keys changed and
    ``"send"`` when ours did.
    """

    direction: str
