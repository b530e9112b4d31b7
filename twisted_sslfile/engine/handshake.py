"""What the TLS 1.3 and TLS 1.2 state machines share.

* :class:`HandshakeIO`: the narrow interface through which a state machine
  talks to its :class:`~twisted_sslfile.engine.connection.Connection`. A
  state machine never touches records or buffers itself.
* :class:`HandshakeMachine`: the dispatch. Each version's roles declare a
  table mapping every state to the handshake messages it accepts and the
  method that handles each; a message the table does not list for the
  current state is an ``unexpected_message`` (RFC 8446 §4, RFC 5246 §7.4).
  Handlers are the only code that changes ``state``.
* The negotiation helpers both versions apply the same way.
"""

from __future__ import annotations

import enum
import ipaddress
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, TypeVar

from cryptography import x509
from cryptography.x509.oid import PublicKeyAlgorithmOID

from ..constants import (
    AlertDescription,
    AlertLevel,
    ClientCertificatePolicy,
    HandshakeType,
    ProtocolVersion,
)
from ..errors import (
    NoApplicationProtocolError,
    ProtocolVersionError,
    UnexpectedMessageError,
)
from . import certificates as tls_x509

if TYPE_CHECKING:
    from ..context import Context, Credential
    from .events import Event, HandshakeCompleted
    from .messages import ServerHello
    from .record import RecordProtection
    from .sessions import ServerSessionState

_T = TypeVar("_T")

#: A handler: the machine, the raw message (for the transcript), its body.
Handler = Callable[[Any, bytes, bytes], None]


class HandshakeIO(Protocol):
    """What a handshake state machine needs from its connection."""

    def write_handshake(self, raw: bytes) -> None:
        """Queue an encoded handshake message under the current write keys."""

    def write_change_cipher_spec(self) -> None:
        """Queue a ChangeCipherSpec record (TLS 1.2, or TLS 1.3's dummy)."""

    def write_alert(self, level: AlertLevel, description: AlertDescription) -> None:
        """Queue a non-fatal alert behind what is already written.

        TLS 1.2 refuses a renegotiation with a *warning* no_renegotiation
        (RFC 5246 §7.2.2); fatal alerts are the Connection's business.
        """

    def set_read_protection(self, protection: RecordProtection) -> None:
        """Decrypt the peer's next records with these keys."""

    def set_write_protection(self, protection: RecordProtection) -> None:
        """Encrypt our next records with these keys."""

    def set_write_limit(self, limit: int) -> None:
        """Cap the plaintext of each record we send (RFC 8449)."""

    def set_read_limit(self, limit: int) -> None:
        """Refuse protected records with more content than this (RFC 8449)."""

    def set_legacy_record_version(self, version: int) -> None:
        """Set the version field of our record headers (RFC 8446 §5.1)."""

    def handshake_completed(self, event: HandshakeCompleted) -> None:
        """The handshake finished: report it and release queued data."""

    def emit(self, event: Event) -> None:
        """Report an event from the current ``receive_data`` call."""

    def skip_early_data(self, max_bytes: int) -> None:
        """Drop 0-RTT records we refused (RFC 8446 §4.2.10), up to a bound."""

    def start_tls12_client(
        self, raw: bytes, server_hello: ServerHello, **handover: Any
    ) -> None:
        """The server chose TLS 1.2: a TLS 1.2 client takes over."""


class HandshakeMachine:
    """Table-driven dispatch of handshake messages, shared by all roles."""

    state: enum.Enum
    _handlers: ClassVar[dict[Any, dict[int, Handler]]]

    def handle(self, msg_type: int, raw: bytes, body: bytes) -> None:
        """Process one complete handshake message received from the peer."""
        handler = self._handlers[self.state].get(msg_type)
        if handler is None:
            name = (
                HandshakeType(msg_type).name
                if msg_type in HandshakeType._value2member_map_
                else f"type {msg_type}"
            )
            raise UnexpectedMessageError(
                f"handshake message {name} not expected in state {self.state.value!r}"
            )
        handler(self, raw, body)


def first_common(preferred: Iterable[_T], offered: Iterable[object]) -> _T | None:
    """The first of our ``preferred`` values that the peer ``offered``."""
    offered_set = set(offered)
    return next((value for value in preferred if value in offered_set), None)


def select_alpn(ours: Sequence[bytes], theirs: list[bytes] | None) -> bytes | None:
    """RFC 7301 §3.2: the server's preference wins; no overlap is fatal."""
    if theirs is None or not ours:
        return None
    chosen = first_common(ours, theirs)
    if chosen is None:
        raise NoApplicationProtocolError(
            f"client offers ALPN {theirs!r}, none of which this server speaks"
        )
    return chosen


def check_legacy_version(legacy_version: int) -> None:
    """Refuse a ClientHello.legacy_version of SSL 3.0 or below.

    RFC 8446 §D.5: no implementation may send 0x0300 or less, and 0x0300 is
    a protocol_version; the values below it (major version 0, 1 or 2) are
    not TLS at all.  This holds even when supported_versions offers a
    version we speak.  A value above 0x0303 is a newer client's, tolerated
    (RFC 5246 §E.1; RFC 8446 §4.2.1 negotiates by supported_versions).
    """
    if legacy_version <= ProtocolVersion.SSL_3_0:
        raise ProtocolVersionError(
            f"ClientHello legacy_version {legacy_version:#06x} is SSL 3.0 or "
            "below (RFC 8446 §D.5)"
        )


def is_ip_address(name: str) -> bool:
    """RFC 6066 §3: an IP address is verified but never sent as SNI."""
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def has_rsassa_pss_key(certificate: x509.Certificate) -> bool:
    """Whether the key is an id-RSASSA-PSS key (rsa_pss_pss_*, RFC 8446 §4.2.3).

    cryptography loads such keys as plain RSA keys, so only the certificate
    tells the two kinds apart.
    """
    return certificate.public_key_algorithm_oid == PublicKeyAlgorithmOID.RSASSA_PSS


def by_certificate_authorities(
    credentials: Sequence[Credential], authorities: Sequence[bytes] | None
) -> list[Credential]:
    """Our client credentials, those the server's CA names cover first.

    RFC 5246 §7.4.4 / RFC 8446 §4.2.4: a CertificateRequest may list the
    CAs the server accepts.  With several credentials the first whose chain
    was issued under a listed name (any certificate's issuer in it) is the
    best guess; the order is otherwise kept, and nothing is dropped: the
    list is a hint, and a single credential is offered whatever it says.
    """
    if len(credentials) < 2 or not authorities:
        return list(credentials)
    listed = set(authorities)

    def covered(credential: Credential) -> bool:
        return any(cert.issuer.public_bytes() in listed for cert in credential.chain)

    return sorted(credentials, key=lambda credential: not covered(credential))


def resumed_client_authentication(
    context: Context, state: ServerSessionState
) -> tuple[tuple[bytes, ...], bool] | None:
    """The client chain and ``verified`` a server reports on resuming ``state``.

    None means "do not resume": the server declines the ticket or session
    ID and does a full handshake (RFC 8446 §4.2.11 lets a server decline a
    PSK, RFC 5077 §3.3 and RFC 5246 §7.4.1.2 let it ignore a ticket or
    session ID).  A resumed handshake carries no Certificate, so the session
    must stand for the check this server would make itself - its ticket key
    file may be shared with servers that trust other client CAs, and its own
    configuration may have changed since the ticket was sealed:

    * ``client_certificate="none"``: resume, reporting no client chain,
      as a full handshake of this server would;
    * a session without a client chain: resume, unless a certificate is
      required now;
    * a server that does not verify (``insecure_skip_verify=True``): resume,
      reporting the chain as unverified, as its full handshakes do;
    * otherwise resume only a chain verified under this server's
      :func:`~twisted_sslfile.x509.client_verification_policy` (same client
      CAs and rules), reported as verified.
    """
    requirement = context.client_certificate
    if requirement is ClientCertificatePolicy.NONE:
        return (), False
    if not state.peer_certificates:
        if requirement is ClientCertificatePolicy.REQUIRE:
            return None
        return (), False
    if not context.verify:
        return state.peer_certificates, False
    if state.verified_under(tls_x509.client_verification_policy(context)):
        return state.peer_certificates, True
    return None
