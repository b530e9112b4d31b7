"""What the TLS 1.3 and TLS 1.2 state machines share.

* :class:`HandshakeIO`: the narrow interface through which a state machine
  talks to its :class:`~twisted_sslfile.engine.connection.Connection`. A
  state machine never touches records or buffers itself.
* :class:`HandshakeMachine`: the dispatch. Each version's roles declare a
  table mapping every state to the handshake messages it accepts and the
  method that handles each; a message the table does not list for the
  current state is an ``unexpected_message`` (RFC 8446 §4, RFC 5246 §7.4).
  Handlers are the only code that changes ``state``.  The negotiators of
  :mod:`~.negotiation` are machines too.
* :class:`Negotiation`: what one handshake settles (suite, group, ALPN,
  NPN, server name, the peer's certificates, resumption), recorded the same
  way by both versions, and :class:`VersionHandshake`, the members every
  version's machine has: the queries the Connection reports from that
  record, sending into the transcript, accepting the peer's chain, the
  Finished check, the completion event.
* The negotiation helpers both versions apply the same way.
"""

from __future__ import annotations

import abc
import dataclasses
import enum
import functools
import ipaddress
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, TypeVar

from cryptography import x509
from cryptography.x509.oid import PublicKeyAlgorithmOID

from ..constants import (
    AlertDescription,
    AlertLevel,
    CipherSuite,
    ClientCertificatePolicy,
    HandshakeType,
    NamedGroup,
    ProtocolVersion,
    SignatureScheme,
)
from ..errors import (
    DecodeError,
    NoApplicationProtocolError,
    ProtocolVersionError,
    TLSError,
    UnexpectedMessageError,
)
from . import certificates as tls_x509
from . import keyschedule, messages, suites
from .events import HandshakeCompleted

if TYPE_CHECKING:
    from cryptography.hazmat.primitives import hashes

    from ..context import Context, Credential
    from .events import Event
    from .record import Record, RecordProtection
    from .sessions import ServerSessionState, Session

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

    def replace_handshake(self, handshake: HandshakeMachine) -> None:
        """The version is settled: ``handshake``, that version's machine,
        takes over from the negotiator (:mod:`~.negotiation`)."""


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


@dataclasses.dataclass(eq=False)
class Negotiation:
    """What one handshake settles, as both versions record it.

    A TLS 1.3 connection has one; a TLS 1.2 connection one per handshake
    (renegotiations build a fresh one, see :mod:`~.tls12`), which adds its
    own fields in a subclass.  Secrets are kept out of ``repr()``.
    """

    #: The running transcript (RFC 8446 §4.4.1, RFC 5246 §7.4.9).
    transcript: keyschedule.Transcript = dataclasses.field(
        default_factory=keyschedule.Transcript
    )
    suite_info: suites.CipherSuiteInfo | None = None
    group: NamedGroup | None = None
    #: The server_name this handshake's ClientHello carried.
    server_name: str | None = None
    alpn_protocol: bytes | None = None
    #: NPN's choice (TLS 1.2 only: NPN does not exist in TLS 1.3).
    next_protocol: bytes | None = None
    #: The peer's chain (DER, leaf first), and whether it was verified.
    peer_certificates: tuple[bytes, ...] = ()
    peer_verified: bool = False
    #: The leaf's key, which signs CertificateVerify (or ServerKeyExchange).
    peer_public_key: object | None = dataclasses.field(default=None, repr=False)
    #: An id-RSASSA-PSS key: only rsa_pss_pss_* may sign with it (§4.2.3).
    peer_rsassa_pss: bool = False
    #: The scheme the peer signed with: its CertificateVerify (TLS 1.3, and a
    #: TLS 1.2 client's), a TLS 1.2 server's ServerKeyExchange; None when it
    #: signed nothing (a resumption).
    peer_signature_scheme: SignatureScheme | None = None
    #: ClientHello.random: names this handshake's secrets in a key log.
    client_random: bytes = b""
    resumed: bool = False
    #: Client: the session this handshake resumed, or (TLS 1.2) made.
    session: Session | None = None

    @property
    def hash(self) -> type[hashes.HashAlgorithm]:
        """The chosen suite's hash (once a suite is chosen)."""
        assert self.suite_info is not None
        return self.suite_info.hash


@dataclasses.dataclass(frozen=True, eq=False)
class ClientOffer:
    """What a client sent in its first ClientHello, for the chosen machine.

    The secrets (private key shares, the session offered) stay out of
    ``repr()``.
    """

    #: The name the server's certificate must match (and the SNI, unless it
    #: is an IP address).
    server_name: str | None
    #: The ClientHello as sent: its extensions are all a server may answer.
    client_hello: messages.ClientHello
    #: The transcript holding that ClientHello; its hash is not chosen yet.
    transcript: keyschedule.Transcript = dataclasses.field(repr=False)
    #: TLS 1.3 key shares sent, by group, with their private halves.
    key_shares: Mapping[int, suites.KeyShare] = dataclasses.field(repr=False)
    #: The session offered for resumption, if any: a TLS 1.3 PSK, or a TLS
    #: 1.2 session ID or ticket (its ``version`` tells which).
    session: Session | None = dataclasses.field(repr=False)


class VersionHandshake(HandshakeMachine, abc.ABC):
    """What every version's client and server machine has, one way.

    ``_n`` is the handshake in progress; the queries the Connection makes
    report :attr:`_reported` (TLS 1.3: that same handshake; TLS 1.2: the
    last completed one, so that a renegotiation does not change what the
    connection reports until it completes).
    """

    #: The version this machine speaks.
    version: ClassVar[ProtocolVersion]
    _is_client: ClassVar[bool]

    def __init__(self, io: HandshakeIO, context: Context, n: Negotiation) -> None:
        self._io = io
        self._context = context
        self._n = n
        #: The name the connection is for: the client's server_name, or the
        #: one in a server's first ClientHello.
        self.server_name: str | None = None
        #: Client: the newest session to resume this connection later.
        self._session: Session | None = None

    # -- what the Connection reports ---------------------------------------

    @property
    @abc.abstractmethod
    def _reported(self) -> Negotiation | None:
        """The handshake the queries below report."""

    @property
    @abc.abstractmethod
    def complete(self) -> bool:
        """A handshake has completed (renegotiations may follow)."""

    @property
    def cipher_suite(self) -> CipherSuite | None:
        n = self._reported
        return n.suite_info.suite if n and n.suite_info else None

    @property
    def group(self) -> NamedGroup | None:
        n = self._reported
        return n.group if n else None

    @property
    def alpn_protocol(self) -> bytes | None:
        n = self._reported
        return n.alpn_protocol if n else None

    @property
    def next_protocol(self) -> bytes | None:
        n = self._reported
        return n.next_protocol if n else None

    @property
    def peer_certificates(self) -> tuple[bytes, ...]:
        n = self._reported
        return n.peer_certificates if n else ()

    @property
    def peer_verified(self) -> bool:
        n = self._reported
        return n.peer_verified if n else False

    @property
    def resumed(self) -> bool:
        n = self._reported
        return n.resumed if n else False

    @property
    def session(self) -> Session | None:
        """Client: the session to resume this connection later (None: none)."""
        return self._session

    @property
    def renegotiating(self) -> bool:
        """A renegotiation is under way (application data is held meanwhile)."""
        return False

    @property
    @abc.abstractmethod
    def can_renegotiate(self) -> bool:
        """Whether :meth:`renegotiate` may be called now."""

    @abc.abstractmethod
    def renegotiate(self) -> None:
        """Refresh keys: TLS 1.3 KeyUpdate, TLS 1.2 renegotiation (RFC 5746)."""

    @abc.abstractmethod
    def send_key_update(self, request_peer: bool) -> None:
        """TLS 1.3 KeyUpdate (§4.6.3)."""

    def export_keying_material(
        self, label: bytes, context: bytes | None, length: int
    ) -> bytes:
        """RFC 8446 §7.5 / RFC 5705 exporter; only after the handshake."""
        if not self.complete:
            raise TLSError("keying material is available after the handshake")
        return self._export(label, context, length)

    @abc.abstractmethod
    def _export(self, label: bytes, context: bytes | None, length: int) -> bytes:
        """This version's exporter over the completed handshake."""

    @abc.abstractmethod
    def handle_change_cipher_spec(self, record: Record) -> None:
        """A change_cipher_spec record from the peer (payload checked)."""

    def handle_warning_alert(self, description: int) -> None:
        """A warning alert the Connection let through (TLS 1.2 only)."""

    # -- helpers for both roles ----------------------------------------------

    def _send(self, message: messages.HandshakeMessage) -> bytes:
        """Queue ``message``, adding it to the transcript."""
        raw = messages.encode_handshake(message)
        self._n.transcript.update(raw)
        self._io.write_handshake(raw)
        return raw

    def _choose_suite(self, suite: int) -> suites.CipherSuiteInfo:
        """Settle the cipher suite, and with it the transcript's hash."""
        info = suites.CIPHER_SUITES[CipherSuite(suite)]
        self._n.suite_info = info
        self._n.transcript.set_hash(info.hash)
        return info

    def _accept_peer_chain(
        self,
        chain: tuple[bytes, ...],
        verify: Callable[[tuple[bytes, ...]], list[x509.Certificate]],
    ) -> None:
        """Check the peer's chain and record it, with its leaf's key.

        ``verify`` counts the chain against max_certificate_chain_length,
        parses it (every malformation is a bad_certificate) and, unless the
        context skips verification, verifies it: leaf first either way.
        """
        try:
            leaf = verify(chain)[0]
        except TLSError as exc:
            exc.peer_certificates = chain  # for a report of what was refused
            raise
        n = self._n
        n.peer_verified = self._context.verify
        n.peer_public_key = leaf.public_key()
        n.peer_rsassa_pss = has_rsassa_pss_key(leaf)
        n.peer_certificates = chain

    def _verify_server_chain(self, chain: tuple[bytes, ...]) -> list[x509.Certificate]:
        """Client: the server's chain, for :attr:`server_name` (leaf first)."""
        return tls_x509.verify_server_chain(self._context, chain, self.server_name)

    def _verify_client_chain(self, chain: tuple[bytes, ...]) -> list[x509.Certificate]:
        """Server: the client's chain, under the client CAs (leaf first)."""
        return tls_x509.verify_client_chain(self._context, chain)

    def _check_finished(self, raw: bytes, body: bytes, expected: bytes) -> None:
        """The peer's Finished against ``expected`` (:func:`check_finished`);
        then it joins the transcript."""
        finished = messages.Finished.parse(body)
        check_finished(finished.verify_data, expected)
        self._n.transcript.update(raw)

    def _completed_event(self) -> HandshakeCompleted:
        """What the handshake in progress settled, as the event reports it."""
        n = self._n
        assert n.suite_info is not None
        return HandshakeCompleted(
            version=self.version,
            cipher_suite=n.suite_info.suite,
            group=n.group,
            alpn_protocol=n.alpn_protocol,
            next_protocol=n.next_protocol,
            server_name=self.server_name,
            peer_certificates=n.peer_certificates,
            verified=n.peer_verified,
            resumed=n.resumed,
            peer_signature_scheme=n.peer_signature_scheme,
        )


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


def log_secret(
    context: Context, label: str, client_random: bytes, secret: bytes
) -> None:
    """Hand one secret to the Context's ``keylog`` callable, if it has one.

    The line is the NSS key log format that Wireshark, curl and OpenSSL's
    ``-keylogfile`` share: ``LABEL <ClientHello.random hex> <secret hex>``.
    Off unless the application set ``keylog``; the engine writes no file.
    """
    keylog = context.keylog
    if keylog is not None:
        keylog(f"{label} {client_random.hex()} {secret.hex()}")


def check_finished(received: bytes, expected: bytes) -> None:
    """Compare the peer's Finished verify_data with the value we computed.

    One rule for both versions: a verify_data of another length than ours
    does not decode (RFC 8446 §4.4.4 and §6.2: it is Hash.length bytes; RFC
    5246 §7.4.9: 12 bytes for every suite we implement), a decode_error
    whatever it holds; one of the right length that differs is a
    decrypt_error, found in constant time (:func:`hmac.compare_digest`,
    through :func:`keyschedule.check_verify_data`).
    """
    if len(received) != len(expected):
        raise DecodeError(
            f"Finished carries {len(received)} bytes, expected {len(expected)}"
        )
    keyschedule.check_verify_data(expected, received)


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


@functools.lru_cache(maxsize=256)
def is_ip_address(name: str) -> bool:
    """RFC 6066 §3: an IP address is verified but never sent as SNI.

    Cached: a client asks about the same few names on every connection, and
    parsing one costs as much as a key-schedule step.
    """
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
