"""Session resumption: client sessions, server state, sealed tickets, a cache.

Four pieces, used by both TLS versions:

* :class:`Session` - what a *client* keeps from one connection and hands to
  the next (``Connection(..., session=...)``).  It can be saved to a file
  with :meth:`Session.to_bytes` and loaded back with
  :meth:`Session.from_bytes`.
* :class:`ServerSessionState` - what a *server* needs to resume: the secret
  and the facts of the original handshake.  It travels sealed inside a
  ticket (TLS 1.3 NewSessionTicket, RFC 5077 tickets in TLS 1.2) or stays in
  a :class:`SessionCache` under a TLS 1.2 session ID.
* :class:`TicketKeys` - seals that state into opaque tickets with an AEAD
  under rotating keys, optionally loaded from a key file that several
  processes or machines share.
* :class:`SessionCache` - a bounded LRU of TLS 1.2 session IDs.

Sans-I/O like the rest of the engine: time comes from an injected
``clock()`` and randomness from an injected ``random(n)`` (the Context's).
The one exception is :meth:`TicketKeys.from_file`, which reads its key file
at start-up and then stats it at most once per ``reload_interval``; that is
configuration, not connection I/O.

Nothing here ever raises on a peer's ticket or session ID: an unknown,
expired, tampered or truncated ticket opens to ``None`` and the handshake
falls back to a full one (RFC 5077 §3.3, RFC 8446 §4.2.11).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hmac
import math
import os
import struct
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand

from ..constants import TLS13_CIPHER_SUITES, CipherSuite, ProtocolVersion
from ..errors import InternalError, TLSError
from ..x509 import ConfigurationError
from .buffer import Reader, Writer
from .suites import CIPHER_SUITES

__all__ = [
    "CLOCK_SKEW_TOLERANCE",
    "DEFAULT_CACHE_SIZE",
    "DEFAULT_RELOAD_INTERVAL",
    "DEFAULT_ROTATION_INTERVAL",
    "DEFAULT_SESSION_LIFETIME",
    "MAX_SESSION_LIFETIME",
    "TICKET_CIPHERS",
    "TICKET_OVERHEAD",
    "ServerSessionState",
    "Session",
    "SessionCache",
    "TicketKey",
    "TicketKeyFileError",
    "TicketKeys",
    "generate_key_file",
    "read_key_file",
    "rotate_key_file",
    "write_key_file",
]

# ---------------------------------------------------------------------------
# Limits and defaults
# ---------------------------------------------------------------------------

#: RFC 8446 §4.6.1: a ticket lifetime MUST NOT exceed 7 days, and clients
#: MUST NOT cache a ticket longer than that whatever the server says.  We
#: apply the same ceiling to TLS 1.2 sessions and to the total lifetime of
#: keying material carried from ticket to ticket.
MAX_SESSION_LIFETIME = 7 * 24 * 3600

#: Two hours: long enough that a browser or API client coming back within a
#: working session resumes, short enough that a stolen ticket key exposes
#: little.  The same default as OpenSSL's session timeout for TLS 1.3.
DEFAULT_SESSION_LIFETIME = 7200

#: New in-memory ticket key every hour.  Forward secrecy of resumed sessions
#: is bounded by how long a key exists (rotation + decrypt window).
DEFAULT_ROTATION_INTERVAL = 3600

#: A key file is stat()ed at most once a minute.
DEFAULT_RELOAD_INTERVAL = 60

#: See :class:`SessionCache`.
DEFAULT_CACHE_SIZE = 20000

#: A ticket sealed on another machine of the fleet may carry a creation time
#: slightly in our future; this much skew is tolerated.
CLOCK_SKEW_TOLERANCE = 300.0

_KEY_NAME_LENGTH = 16
_KEY_SECRET_LENGTH = 32
_NONCE_LENGTH = 12
_TAG_LENGTH = 16
#: Bytes a ticket adds around the sealed state: key name, nonce, AEAD tag.
TICKET_OVERHEAD = _KEY_NAME_LENGTH + _NONCE_LENGTH + _TAG_LENGTH
#: RFC 8446 §4.6.1 ``opaque ticket<1..2^16-1>``; RFC 5077 §3.3 the same.
_MAX_TICKET_LENGTH = 2**16 - 1

_UINT32 = 2**32 - 1

#: The AEADs a ticket can be sealed with; both take 256-bit keys.
TICKET_CIPHERS: dict[str, type[AESGCM] | type[ChaCha20Poly1305]] = {
    "AES-256-GCM": AESGCM,
    "ChaCha20-Poly1305": ChaCha20Poly1305,
}

_TLS12 = ProtocolVersion.TLS_1_2
_TLS13 = ProtocolVersion.TLS_1_3


# ---------------------------------------------------------------------------
# Field validation shared by Session and ServerSessionState
# ---------------------------------------------------------------------------


def _version(value: object) -> ProtocolVersion:
    if (
        isinstance(value, int)
        and not isinstance(value, bool)
        and value in (_TLS12, _TLS13)
    ):
        return ProtocolVersion(value)
    raise ValueError(f"version must be TLS 1.2 or TLS 1.3, not {value!r}")


def _suite(value: object, version: ProtocolVersion) -> CipherSuite:
    try:
        suite = CipherSuite(value)  # type: ignore[arg-type]
    except (ValueError, TypeError):
        suite = None
    if (
        suite is None
        or isinstance(value, bool)
        or suite not in CIPHER_SUITES
        or (suite in TLS13_CIPHER_SUITES) != (version == _TLS13)
    ):
        raise ValueError(
            f"cipher_suite {value!r} is not a {_version_label(version)} cipher suite"
        )
    return suite


def _version_label(version: int) -> str:
    return "TLS 1.3" if version == _TLS13 else "TLS 1.2"


def _bytes(value: object, name: str, low: int, high: int) -> bytes:
    if not isinstance(value, (bytes, bytearray, memoryview)):
        raise ValueError(f"{name} must be bytes, not {type(value).__name__}")
    value = bytes(value)
    if not low <= len(value) <= high:
        raise ValueError(f"{name} must be {low} to {high} bytes long, not {len(value)}")
    return value


def _optional_protocol(value: object, name: str) -> bytes | None:
    # RFC 7301 §3.1 / NPN: a protocol name is 1..255 bytes.
    return None if value is None else _bytes(value, name, 1, 255)


def _optional_server_name(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"server_name must be a str or None, not {value!r}")
    try:
        encoded = value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"server_name {value!r} cannot be encoded") from None
    # RFC 6066 §3: HostName is opaque<1..2^16-1>; 255 bytes bounds any DNS
    # name and keeps the encodings below one-byte-length vectors.
    if not 1 <= len(encoded) <= 255:
        raise ValueError("server_name must be 1 to 255 bytes long")
    return value


def _uint(value: object, name: str, high: int = _UINT32) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= high:
        raise ValueError(f"{name} must be an integer from 0 to {high}, not {value!r}")
    return value


def _time(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name} must be seconds since the epoch, not {value!r}")
    value = float(value)
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite time >= 0, not {value!r}")
    return value


def _certificates(value: object) -> tuple[bytes, ...]:
    if isinstance(value, (bytes, str)) or not isinstance(value, Iterable):
        raise ValueError("peer_certificates must be a sequence of DER bytes")
    certs = tuple(_bytes(c, "a peer certificate", 1, 2**24 - 1) for c in value)
    if sum(3 + len(c) for c in certs) > 2**24 - 1:
        raise ValueError("peer_certificates are longer than 2^24-1 bytes in total")
    return certs


def _bool(value: object, name: str) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be True or False, not {value!r}")
    return value


def _secret_length(version: ProtocolVersion, suite: CipherSuite) -> int:
    # TLS 1.3: the PSK is Hash.length bytes (RFC 8446 §4.6.1, HKDF-Expand-Label
    # with Hash.length).  TLS 1.2: the master secret is 48 bytes (RFC 5246 §8.1).
    if version == _TLS13:
        return CIPHER_SUITES[suite].hash.digest_size
    return 48


def _lifetime_cap(lifetime: int) -> int:
    return min(lifetime, MAX_SESSION_LIFETIME)


# Wire helpers for the two encodings below.  Both use the TLS vector
# conventions of engine.buffer, so a truncated or overlong field is a
# DecodeError we turn into ValueError / None at the boundary.

_F64 = struct.Struct(">d")


def _put_optional(writer: Writer, value: bytes | None) -> None:
    writer.vector(1, b"" if value is None else value)


def _get_optional(reader: Reader, present: bool) -> bytes | None:
    data = reader.vector(1)
    if present:
        return data
    if data:
        raise ValueError("an absent field has contents")
    return None


def _put_certificates(writer: Writer, certs: tuple[bytes, ...]) -> None:
    with writer.prefixed(3):
        for cert in certs:
            writer.vector(3, cert, 1)


def _get_certificates(reader: Reader) -> tuple[bytes, ...]:
    sub = reader.sub(3)
    certs = []
    while not sub.at_end():
        certs.append(sub.vector(3, 1))
    return tuple(certs)


# ---------------------------------------------------------------------------
# Session (client side)
# ---------------------------------------------------------------------------

_SESSION_MAGIC = b"TSSLSESS"
_SESSION_FORMAT = 1
_S_EMS, _S_VERIFIED, _S_SNI, _S_ALPN, _S_NPN = 1, 2, 4, 8, 16
_S_ALL = _S_EMS | _S_VERIFIED | _S_SNI | _S_ALPN | _S_NPN


@dataclass(frozen=True, slots=True, eq=False, kw_only=True)
class Session:
    """What a client keeps from one connection to resume it in the next.

    The engine makes one per TLS 1.3 NewSessionTicket and one per resumable
    TLS 1.2 handshake; an application hands it to the next connection to the
    same server.  All arguments are keyword-only and checked here, so a
    session loaded from a file is as trustworthy as one just received.

    Common fields: ``version``, ``cipher_suite``, ``server_name`` (the name
    the client asked for), ``alpn_protocol``, ``next_protocol``,
    ``peer_certificates`` (DER, leaf first) and ``verified`` (whether they
    were verified - a resumed connection reports the same), ``created_at``
    (the client's clock when the ticket or session arrived; the TLS 1.3
    ticket age counts from it, RFC 8446 §4.2.11.1) and ``lifetime`` (seconds,
    the server's ticket_lifetime or our own policy).

    TLS 1.3 (RFC 8446 §4.6.1): ``ticket``, ``resumption_psk`` (the PSK the
    engine derived from resumption_master_secret and the ticket_nonce),
    ``ticket_age_add``, ``max_early_data``.

    TLS 1.2: ``session_id``, ``master_secret``, ``extended_master_secret``
    and ``ticket`` (an RFC 5077 ticket, or ``b""``).

    The secrets make a saved session as sensitive as a private key for the
    connections it resumes: store it like one.  ``repr()`` never shows them.
    """

    version: ProtocolVersion
    cipher_suite: CipherSuite
    created_at: float
    lifetime: int
    server_name: str | None = None
    alpn_protocol: bytes | None = None
    next_protocol: bytes | None = None
    peer_certificates: tuple[bytes, ...] = ()
    verified: bool = False
    ticket: bytes = b""
    # TLS 1.3
    resumption_psk: bytes = field(default=b"", repr=False)
    ticket_age_add: int = 0
    max_early_data: int = 0
    # TLS 1.2
    session_id: bytes = b""
    master_secret: bytes = field(default=b"", repr=False)
    extended_master_secret: bool = False

    def __post_init__(self) -> None:
        s = object.__setattr__
        version = _version(self.version)
        suite = _suite(self.cipher_suite, version)
        s(self, "version", version)
        s(self, "cipher_suite", suite)
        s(self, "created_at", _time(self.created_at, "created_at"))
        s(self, "lifetime", _uint(self.lifetime, "lifetime"))
        s(self, "server_name", _optional_server_name(self.server_name))
        s(self, "alpn_protocol", _optional_protocol(self.alpn_protocol, "alpn"))
        s(self, "next_protocol", _optional_protocol(self.next_protocol, "npn"))
        s(self, "peer_certificates", _certificates(self.peer_certificates))
        _bool(self.verified, "verified")
        _bool(self.extended_master_secret, "extended_master_secret")
        s(self, "ticket_age_add", _uint(self.ticket_age_add, "ticket_age_add"))
        s(self, "max_early_data", _uint(self.max_early_data, "max_early_data"))
        secret_length = _secret_length(version, suite)
        if version == _TLS13:
            s(self, "ticket", _bytes(self.ticket, "ticket", 1, _MAX_TICKET_LENGTH))
            s(
                self,
                "resumption_psk",
                _bytes(self.resumption_psk, "resumption_psk", *(secret_length,) * 2),
            )
            if self.session_id or self.master_secret or self.extended_master_secret:
                raise ValueError(
                    "a TLS 1.3 session has no session_id, master_secret or "
                    "extended_master_secret"
                )
        else:
            s(self, "ticket", _bytes(self.ticket, "ticket", 0, _MAX_TICKET_LENGTH))
            # RFC 5246 §7.4.1.2: SessionID session_id<0..32>.
            s(self, "session_id", _bytes(self.session_id, "session_id", 0, 32))
            s(
                self,
                "master_secret",
                _bytes(self.master_secret, "master_secret", *(secret_length,) * 2),
            )
            if self.resumption_psk or self.ticket_age_add or self.max_early_data:
                raise ValueError(
                    "a TLS 1.2 session has no resumption_psk, ticket_age_add or "
                    "max_early_data"
                )

    # -- use ------------------------------------------------------------------

    @property
    def expires_at(self) -> float:
        """When the session stops being offered (lifetime capped at 7 days)."""
        return self.created_at + _lifetime_cap(self.lifetime)

    def is_resumable(self, now: float) -> bool:
        """Whether offering this session at time ``now`` makes sense.

        False once the lifetime (capped at 7 days, RFC 8446 §4.6.1) has run
        out, and for TLS 1.2 sessions without extended master secret
        (RFC 7627 §5.3: resuming those is unsafe, and we never do it) or
        with neither a session ID nor a ticket.  A clock that went backwards
        does not make a session unusable.
        """
        if now - self.created_at >= _lifetime_cap(self.lifetime):
            return False
        if self.version == _TLS13:
            return True
        return self.extended_master_secret and bool(self.session_id or self.ticket)

    def matches_server_name(self, server_name: str | None) -> bool:
        """Whether a connection to ``server_name`` may offer this session.

        RFC 8446 §4.6.1 / RFC 6066 §3: resume only with the name used in the
        original handshake (DNS names compare case-insensitively).
        """
        mine = self.server_name
        if mine is None or server_name is None:
            return mine is None and server_name is None
        return mine.rstrip(".").lower() == server_name.rstrip(".").lower()

    def ticket_age_ms(self, now: float) -> int:
        """Milliseconds since the ticket arrived, clamped to 0..2^32-1."""
        age = math.floor((now - self.created_at) * 1000)
        return min(max(age, 0), _UINT32)

    def obfuscated_ticket_age(self, now: float) -> int:
        """``(age_ms + ticket_age_add) mod 2^32`` (RFC 8446 §4.2.11.1)."""
        return (self.ticket_age_ms(now) + self.ticket_age_add) & _UINT32

    # -- persistence ------------------------------------------------------------

    def to_bytes(self) -> bytes:
        """A versioned binary encoding for :meth:`from_bytes`.

        Contains the secrets: whoever holds the bytes can resume the session.
        """
        flags = (
            (_S_EMS if self.extended_master_secret else 0)
            | (_S_VERIFIED if self.verified else 0)
            | (_S_SNI if self.server_name is not None else 0)
            | (_S_ALPN if self.alpn_protocol is not None else 0)
            | (_S_NPN if self.next_protocol is not None else 0)
        )
        w = Writer()
        w.raw(_SESSION_MAGIC)
        w.uint8(_SESSION_FORMAT)
        w.uint16(self.version)
        w.uint16(self.cipher_suite)
        w.uint8(flags)
        w.raw(_F64.pack(self.created_at))
        w.uint32(self.lifetime)
        name = self.server_name
        _put_optional(w, None if name is None else name.encode("utf-8"))
        _put_optional(w, self.alpn_protocol)
        _put_optional(w, self.next_protocol)
        _put_certificates(w, self.peer_certificates)
        w.vector(2, self.ticket)
        w.vector(1, self.resumption_psk)
        w.uint32(self.ticket_age_add)
        w.uint32(self.max_early_data)
        w.vector(1, self.session_id)
        w.vector(1, self.master_secret)
        return w.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes | bytearray | memoryview) -> Session:
        """Load what :meth:`to_bytes` wrote.

        Raises ValueError, with a message saying what is wrong, for anything
        else: another file, a truncated one, an unsupported format version,
        values no session can have.
        """
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(
                f"session data must be bytes, not {type(data).__name__} "
                f"(open session files in binary mode)"
            )
        data = bytes(data)
        if not data.startswith(_SESSION_MAGIC):
            raise ValueError("not a twisted_sslfile session (bad magic bytes)")
        try:
            r = Reader(data)
            r.bytes(len(_SESSION_MAGIC))
            fmt = r.uint8()
            if fmt != _SESSION_FORMAT:
                raise ValueError(
                    f"session format {fmt} is not supported (this version reads "
                    f"format {_SESSION_FORMAT})"
                )
            version = r.uint16()
            suite = r.uint16()
            flags = r.uint8()
            if flags & ~_S_ALL:
                raise ValueError(f"unknown flags 0x{flags:02x}")
            (created_at,) = _F64.unpack(r.bytes(8))
            lifetime = r.uint32()
            name = _get_optional(r, bool(flags & _S_SNI))
            alpn = _get_optional(r, bool(flags & _S_ALPN))
            npn = _get_optional(r, bool(flags & _S_NPN))
            certs = _get_certificates(r)
            ticket = r.vector(2)
            psk = r.vector(1)
            age_add = r.uint32()
            early = r.uint32()
            session_id = r.vector(1)
            master = r.vector(1)
            r.finish()
            return cls(
                version=version,  # type: ignore[arg-type]
                cipher_suite=suite,  # type: ignore[arg-type]
                created_at=created_at,
                lifetime=lifetime,
                server_name=None if name is None else name.decode("utf-8"),
                alpn_protocol=alpn,
                next_protocol=npn,
                peer_certificates=certs,
                verified=bool(flags & _S_VERIFIED),
                ticket=ticket,
                resumption_psk=psk,
                ticket_age_add=age_add,
                max_early_data=early,
                session_id=session_id,
                master_secret=master,
                extended_master_secret=bool(flags & _S_EMS),
            )
        except TLSError as e:  # DecodeError from the Reader
            raise ValueError(f"malformed session data: {e.message}") from None
        except ValueError as e:
            raise ValueError(f"invalid session data: {e}") from None

    # -- identity -------------------------------------------------------------

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Session):
            return NotImplemented
        # The encodings hold the secrets: compare in constant time.
        return hmac.compare_digest(self.to_bytes(), other.to_bytes())

    def __hash__(self) -> int:
        return hash((self.version, self.session_id, self.ticket, self.created_at))

    def __repr__(self) -> str:
        parts = [_version_label(self.version), self.cipher_suite.name]
        if self.server_name is not None:
            parts.append(f"for {self.server_name!r}")
        if self.ticket:
            parts.append(f"ticket of {len(self.ticket)} bytes")
        if self.session_id:
            parts.append(f"session id of {len(self.session_id)} bytes")
        parts.append(f"lifetime {self.lifetime} s")
        return f"<Session {' '.join(parts)}>"


# ---------------------------------------------------------------------------
# ServerSessionState (server side)
# ---------------------------------------------------------------------------

_STATE_FORMAT = 1
_T_EMS, _T_VERIFIED, _T_SNI, _T_ALPN = 1, 2, 4, 8
_T_ALL = _T_EMS | _T_VERIFIED | _T_SNI | _T_ALPN


@dataclass(frozen=True, slots=True, eq=False, kw_only=True)
class ServerSessionState:
    """What a server needs to resume a session, sealed in a ticket or cached.

    ``secret`` is the TLS 1.3 resumption PSK (Hash.length bytes) or the
    TLS 1.2 master secret (48 bytes).  ``created_at`` is when this state
    was issued and ``lifetime`` how long it may be used;
    ``authenticated_at`` is when the full handshake that authenticated the
    peer happened (defaults to ``created_at``).  A state issued on a resumed
    connection keeps the original ``authenticated_at``, so chaining tickets
    cannot stretch one authentication beyond 7 days (RFC 8446 §4.6.1 asks
    for such a limit) - see :meth:`remaining_lifetime`.

    ``peer_certificates`` / ``verified`` are the client's chain (when it
    sent one) and whether it was verified: a resumed connection reports
    them.  ``ticket_age_add`` is the TLS 1.3 value sent in the
    NewSessionTicket, kept to undo the client's obfuscation.
    """

    version: ProtocolVersion
    cipher_suite: CipherSuite
    secret: bytes = field(repr=False)
    created_at: float
    lifetime: int
    extended_master_secret: bool = False
    server_name: str | None = None
    alpn_protocol: bytes | None = None
    peer_certificates: tuple[bytes, ...] = ()
    verified: bool = False
    ticket_age_add: int = 0
    authenticated_at: float | None = None

    def __post_init__(self) -> None:
        s = object.__setattr__
        version = _version(self.version)
        suite = _suite(self.cipher_suite, version)
        s(self, "version", version)
        s(self, "cipher_suite", suite)
        length = _secret_length(version, suite)
        s(self, "secret", _bytes(self.secret, "secret", length, length))
        created = _time(self.created_at, "created_at")
        s(self, "created_at", created)
        s(self, "lifetime", _uint(self.lifetime, "lifetime"))
        _bool(self.extended_master_secret, "extended_master_secret")
        _bool(self.verified, "verified")
        s(self, "server_name", _optional_server_name(self.server_name))
        s(self, "alpn_protocol", _optional_protocol(self.alpn_protocol, "alpn"))
        s(self, "peer_certificates", _certificates(self.peer_certificates))
        s(self, "ticket_age_add", _uint(self.ticket_age_add, "ticket_age_add"))
        auth = self.authenticated_at
        s(
            self,
            "authenticated_at",
            created if auth is None else _time(auth, "authenticated_at"),
        )
        if version == _TLS13 and self.extended_master_secret:
            raise ValueError("extended_master_secret is a TLS 1.2 notion")
        if version == _TLS12 and self.ticket_age_add:
            raise ValueError("ticket_age_add is a TLS 1.3 notion")

    def is_valid(self, now: float) -> bool:
        """Whether the state may still be resumed at ``now``.

        Its own lifetime (capped at 7 days) must not have run out, the
        authentication it descends from must be under 7 days old, and its
        creation time may be at most :data:`CLOCK_SKEW_TOLERANCE` seconds in
        our future (another machine's clock).  TLS 1.2 states without
        extended master secret are never valid (RFC 7627 §5.3).
        """
        age = now - self.created_at
        assert self.authenticated_at is not None  # set in __post_init__
        return (
            -CLOCK_SKEW_TOLERANCE <= age < _lifetime_cap(self.lifetime)
            and now - self.authenticated_at < MAX_SESSION_LIFETIME
            and (self.version == _TLS13 or self.extended_master_secret)
        )

    def remaining_lifetime(self, now: float) -> int:
        """Seconds a ticket issued at ``now`` from this state may live.

        Use ``min(context.session_lifetime, state.remaining_lifetime(now))``
        as the lifetime of a ticket issued on a resumed connection.
        """
        assert self.authenticated_at is not None
        left = self.authenticated_at + MAX_SESSION_LIFETIME - now
        return max(0, min(MAX_SESSION_LIFETIME, math.floor(left)))

    def client_ticket_age_ms(self, obfuscated_ticket_age: int) -> int:
        """The ticket age the client claimed (RFC 8446 §4.2.11.1), in ms."""
        return (obfuscated_ticket_age - self.ticket_age_add) & _UINT32

    def encode(self) -> bytes:
        """Serialize for sealing in a ticket; :meth:`decode` reverses it."""
        flags = (
            (_T_EMS if self.extended_master_secret else 0)
            | (_T_VERIFIED if self.verified else 0)
            | (_T_SNI if self.server_name is not None else 0)
            | (_T_ALPN if self.alpn_protocol is not None else 0)
        )
        assert self.authenticated_at is not None
        w = Writer()
        w.uint8(_STATE_FORMAT)
        w.uint16(self.version)
        w.uint16(self.cipher_suite)
        w.uint8(flags)
        w.raw(_F64.pack(self.created_at))
        w.raw(_F64.pack(self.authenticated_at))
        w.uint32(self.lifetime)
        w.uint32(self.ticket_age_add)
        w.vector(1, self.secret)
        name = self.server_name
        _put_optional(w, None if name is None else name.encode("utf-8"))
        _put_optional(w, self.alpn_protocol)
        _put_certificates(w, self.peer_certificates)
        return w.getvalue()

    @classmethod
    def decode(cls, data: bytes | bytearray | memoryview) -> ServerSessionState | None:
        """Parse :meth:`encode` output; anything else gives None, never raises."""
        try:
            r = Reader(data)
            if r.uint8() != _STATE_FORMAT:
                return None
            version = r.uint16()
            suite = r.uint16()
            flags = r.uint8()
            if flags & ~_T_ALL:
                return None
            (created_at,) = _F64.unpack(r.bytes(8))
            (authenticated_at,) = _F64.unpack(r.bytes(8))
            lifetime = r.uint32()
            age_add = r.uint32()
            secret = r.vector(1)
            name = _get_optional(r, bool(flags & _T_SNI))
            alpn = _get_optional(r, bool(flags & _T_ALPN))
            certs = _get_certificates(r)
            r.finish()
            return cls(
                version=version,  # type: ignore[arg-type]
                cipher_suite=suite,  # type: ignore[arg-type]
                secret=secret,
                created_at=created_at,
                authenticated_at=authenticated_at,
                lifetime=lifetime,
                extended_master_secret=bool(flags & _T_EMS),
                verified=bool(flags & _T_VERIFIED),
                server_name=None if name is None else name.decode("utf-8"),
                alpn_protocol=alpn,
                peer_certificates=certs,
                ticket_age_add=age_add,
            )
        except (TLSError, ValueError, TypeError):
            return None

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ServerSessionState):
            return NotImplemented
        return hmac.compare_digest(self.encode(), other.encode())

    def __hash__(self) -> int:
        return hash((self.version, self.cipher_suite, self.created_at))

    def __repr__(self) -> str:
        name = "" if self.server_name is None else f" for {self.server_name!r}"
        return (
            f"<ServerSessionState {_version_label(self.version)} "
            f"{self.cipher_suite.name}{name} lifetime {self.lifetime} s>"
        )


# ---------------------------------------------------------------------------
# Ticket keys and the key file
# ---------------------------------------------------------------------------


class TicketKeyFileError(ConfigurationError):
    """A ticket key file is missing, unreadable or malformed.

    A :class:`~twisted_sslfile.x509.ConfigurationError` (so a ValueError);
    ``path`` names the file and the message says what is wrong and where.
    """


class TicketKey:
    """One ticket key: a public 16-byte name and a 32-byte secret.

    The name goes in clear at the front of every ticket so that the right
    key is found without trial decryption (RFC 5077 §4's ``key_name``).
    """

    __slots__ = ("name", "secret")

    name: bytes
    secret: bytes

    def __init__(self, name: bytes, secret: bytes) -> None:
        self.name = _bytes(name, "ticket key name", _KEY_NAME_LENGTH, _KEY_NAME_LENGTH)
        self.secret = _bytes(
            secret, "ticket key secret", _KEY_SECRET_LENGTH, _KEY_SECRET_LENGTH
        )

    @classmethod
    def generate(cls, random: Callable[[int], bytes]) -> TicketKey:
        """A fresh key from ``random(n)``."""
        material = random(_KEY_NAME_LENGTH + _KEY_SECRET_LENGTH)
        if len(material) != _KEY_NAME_LENGTH + _KEY_SECRET_LENGTH:
            raise InternalError("random() returned the wrong number of bytes")
        return cls(material[:_KEY_NAME_LENGTH], material[_KEY_NAME_LENGTH:])

    def to_line(self) -> str:
        """The key file line: base64 of name || secret (64 characters)."""
        return base64.b64encode(self.name + self.secret).decode("ascii")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TicketKey):
            return NotImplemented
        return hmac.compare_digest(self.name + self.secret, other.name + other.secret)

    def __hash__(self) -> int:
        return hash(self.name)

    def __repr__(self) -> str:
        # The name is public (it is in every ticket); the secret never shown.
        return f"<TicketKey {self.name.hex()}>"


#: A key file holds a handful of lines; anything this big is not one.
_MAX_KEY_FILE_SIZE = 64 * 1024
_MAX_KEY_FILE_KEYS = 256

_KEY_FILE_HEADER = (
    "# twisted_sslfile session ticket keys (format 1).\n"
    "# One key per line, newest first: base64 of a 16-byte name followed by a\n"
    "# 32-byte secret. The first key seals new tickets; the others only open\n"
    "# tickets sealed earlier. Keep this file secret.\n"
)


def _parse_key_file(data: bytes, path: str) -> list[TicketKey]:
    def fail(message: str) -> TicketKeyFileError:
        return TicketKeyFileError(f"ticket key file {path}: {message}", path)

    if len(data) > _MAX_KEY_FILE_SIZE:
        raise fail(f"larger than {_MAX_KEY_FILE_SIZE} bytes; not a key file")
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        raise fail("not ASCII text; not a key file") from None
    keys: list[TicketKey] = []
    seen: dict[bytes, int] = {}
    for number, raw_line in enumerate(text.splitlines(), 1):
        line = raw_line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            material = base64.b64decode(line, validate=True)
        except (binascii.Error, ValueError):
            raise fail(f"line {number} is not base64") from None
        if len(material) != _KEY_NAME_LENGTH + _KEY_SECRET_LENGTH:
            raise fail(
                f"line {number} holds {len(material)} bytes; a key is 48 "
                f"(16-byte name + 32-byte secret)"
            )
        key = TicketKey(material[:_KEY_NAME_LENGTH], material[_KEY_NAME_LENGTH:])
        if key.name in seen:
            raise fail(f"line {number} repeats the key name of line {seen[key.name]}")
        seen[key.name] = number
        keys.append(key)
        if len(keys) > _MAX_KEY_FILE_KEYS:
            raise fail(f"more than {_MAX_KEY_FILE_KEYS} keys")
    if not keys:
        raise fail("holds no keys")
    return keys


def _read_limited(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read(_MAX_KEY_FILE_SIZE + 1)


def read_key_file(path: str | os.PathLike[str]) -> list[TicketKey]:
    """The keys of a ticket key file, newest first.

    Format (text, ASCII): one key per line, each the base64 encoding of a
    16-byte key name followed by a 32-byte secret; blank lines and lines
    starting with ``#`` are ignored.  The first key seals new tickets, all of
    them open tickets.  Raises :class:`TicketKeyFileError` naming the file.
    """
    name = os.fspath(path)
    try:
        data = _read_limited(name)
    except OSError as e:
        raise TicketKeyFileError(
            f"ticket key file {name}: cannot read: {e.strerror or e}", name
        ) from e
    return _parse_key_file(data, name)


def write_key_file(path: str | os.PathLike[str], keys: Iterable[TicketKey]) -> None:
    """Write ``keys`` (newest first) to ``path`` atomically, mode 0600.

    The file is written beside ``path`` and renamed over it, so a server
    reloading it concurrently sees either the old or the new keys, never
    half a file.
    """
    name = os.fspath(path)
    keys = list(keys)
    if not keys:
        raise ValueError("a ticket key file needs at least one key")
    for key in keys:
        if not isinstance(key, TicketKey):
            raise ValueError(f"keys must be TicketKey objects, not {key!r}")
    if len({k.name for k in keys}) != len(keys):
        raise ValueError("two ticket keys share a name")
    if len(keys) > _MAX_KEY_FILE_KEYS:
        raise ValueError(f"at most {_MAX_KEY_FILE_KEYS} ticket keys per file")
    text = _KEY_FILE_HEADER + "".join(k.to_line() + "\n" for k in keys)
    temporary = f"{name}.tmp{os.getpid()}"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, name)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def generate_key_file(
    path: str | os.PathLike[str], count: int, random: Callable[[int], bytes]
) -> list[TicketKey]:
    """Write a new key file of ``count`` fresh keys; returns them."""
    if isinstance(count, bool) or not isinstance(count, int):
        raise ValueError(f"count must be an integer, not {count!r}")
    if not 1 <= count <= _MAX_KEY_FILE_KEYS:
        raise ValueError(f"count must be between 1 and {_MAX_KEY_FILE_KEYS}")
    keys = [TicketKey.generate(random) for _ in range(count)]
    write_key_file(path, keys)
    return keys


def rotate_key_file(
    path: str | os.PathLike[str], random: Callable[[int], bytes], *, keep: int = 3
) -> list[TicketKey]:
    """Put a new key first in ``path`` and keep the ``keep`` newest.

    Meant for the operator's scheduled job (cron, a systemd timer) on the
    machine that owns the file; servers pick the change up within their
    ``reload_interval``.  Run it every R seconds with ``keep=K`` and a
    ticket opens for (K-1)*R to K*R seconds after it was sealed: choose
    K*R above the session lifetime.  A missing file is created.
    """
    if isinstance(keep, bool) or not isinstance(keep, int):
        raise ValueError(f"keep must be an integer, not {keep!r}")
    if not 1 <= keep <= _MAX_KEY_FILE_KEYS:
        raise ValueError(f"keep must be between 1 and {_MAX_KEY_FILE_KEYS}")
    name = os.fspath(path)
    old = read_key_file(name) if os.path.exists(name) else []
    new = TicketKey.generate(random)
    keys = [new, *(k for k in old if k.name != new.name)][:keep]
    write_key_file(name, keys)
    return keys


def _cipher_name(value: object) -> str:
    if isinstance(value, str):
        wanted = value.strip().replace("_", "-").lower()
        for name in TICKET_CIPHERS:
            if name.lower() == wanted:
                return name
    raise ValueError(
        f"unknown ticket cipher {value!r}; use one of {', '.join(TICKET_CIPHERS)}"
    )


def _make_aead(secret: bytes, cipher: str) -> AESGCM | ChaCha20Poly1305:
    # The file's secret is not used as the AEAD key directly: the key is
    # derived for the chosen cipher, so one secret is never used with two
    # algorithms (a fleet with mixed settings simply fails to open each
    # other's tickets, which costs a full handshake, not security).
    key = HKDFExpand(
        algorithm=hashes.SHA256(),
        length=32,
        info=b"twisted_sslfile session ticket key " + cipher.encode("ascii"),
    ).derive(secret)
    return TICKET_CIPHERS[cipher](key)


def _positive_seconds(value: object, name: str, *, allow_zero: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name} must be a number of seconds, not {value!r}")
    value = float(value)
    if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        raise ValueError(
            f"{name} must be {'>= 0' if allow_zero else '> 0'} seconds, not {value!r}"
        )
    return value


class _Key:
    """A ticket key in use: its name, AEAD and lifecycle times."""

    __slots__ = ("activated_at", "aead", "name", "retired_at")

    def __init__(
        self, name: bytes, aead: AESGCM | ChaCha20Poly1305, activated_at: float
    ) -> None:
        self.name = name
        self.aead = aead
        self.activated_at = activated_at
        self.retired_at: float | None = None

    def __repr__(self) -> str:
        return f"<_Key {self.name.hex()}>"


class TicketKeys:
    """Seals server session state into opaque tickets, under rotating keys.

    A ticket is ``key_name (16) || nonce (12) || AEAD(key, nonce, state,
    aad=key_name)`` - the layout RFC 5077 §4 recommends, with an AEAD in
    place of its AES-CBC + HMAC.  The nonce is random: at most a few
    billion tickets per key are safe with 96-bit random nonces (NIST
    SP 800-38D §8.3), far more than a key seals before it rotates.

    Three ways to get keys:

    * ``TicketKeys(random=..., clock=...)``: in-memory keys made from
      ``random``.  The first is made on first use; a new one every
      ``rotation_interval`` seconds (checked lazily on each call, by
      ``clock``); a retired key still opens tickets for ``decrypt_window``
      seconds, then is forgotten.  Tickets survive neither a restart nor a
      trip to another process.
    * ``TicketKeys(keys=[...], random=..., clock=...)``: fixed keys, first
      one seals; no rotation.
    * :meth:`from_file`: keys from a key file (see :func:`read_key_file`)
      shared by every process and machine that must resume each other's
      sessions.  The file's writer rotates (:func:`rotate_key_file`); the
      file is stat()ed at most every ``reload_interval`` seconds and re-read
      when it changed.  Keys missing from the new file stop opening tickets
      at once: removing a key is how a leaked one is revoked.

    :meth:`open` returns None for every ticket it cannot open, never raises:
    the handshake then goes on as a full one.  Safe to share between
    threads.
    """

    def __init__(
        self,
        *,
        random: Callable[[int], bytes],
        clock: Callable[[], float],
        rotation_interval: float = DEFAULT_ROTATION_INTERVAL,
        decrypt_window: float = DEFAULT_SESSION_LIFETIME,
        cipher: str = "AES-256-GCM",
        keys: Iterable[TicketKey] | None = None,
    ) -> None:
        if not callable(random):
            raise ValueError(f"random must be a callable(n) -> bytes, not {random!r}")
        if not callable(clock):
            raise ValueError(f"clock must be a callable() -> float, not {clock!r}")
        self._random = random
        self._clock = clock
        self.cipher = _cipher_name(cipher)
        self.rotation_interval = _positive_seconds(
            rotation_interval, "rotation_interval", allow_zero=False
        )
        self.decrypt_window = _positive_seconds(
            decrypt_window, "decrypt_window", allow_zero=True
        )
        self._lock = threading.Lock()
        self._keys: list[_Key] = []  # newest (sealing) first
        self._by_name: dict[bytes, _Key] = {}
        self._rotating = keys is None
        #: The key file, for instances made by :meth:`from_file`.
        self.path: str | None = None
        self.reload_interval = float(DEFAULT_RELOAD_INTERVAL)
        #: Why the last automatic reload of the key file failed (the old keys
        #: stay in use), or None.  For monitoring; never holds key material.
        self.last_reload_error: str | None = None
        self._file_signature: tuple[int, int, int] | None = None
        self._next_check = 0.0
        if keys is not None:
            self._install(list(keys), 0.0)

    @classmethod
    def from_file(
        cls,
        path: str | os.PathLike[str],
        *,
        clock: Callable[[], float],
        random: Callable[[int], bytes],
        reload_interval: float = DEFAULT_RELOAD_INTERVAL,
        cipher: str = "AES-256-GCM",
    ) -> TicketKeys:
        """Keys from a key file; raises :class:`TicketKeyFileError` if bad.

        ``random`` makes the per-ticket nonces; ``clock`` paces the checks
        for a changed file (``reload_interval`` seconds apart; 0 checks on
        every use).
        """
        name = os.fspath(path)
        interval = _positive_seconds(
            reload_interval, "reload_interval", allow_zero=True
        )
        keys = read_key_file(name)
        instance = cls(random=random, clock=clock, cipher=cipher, keys=keys)
        instance.path = name
        instance.reload_interval = interval
        try:
            instance._file_signature = _signature(name)
        except OSError:
            instance._file_signature = None
        instance._next_check = clock() + interval
        return instance

    # -- key management -----------------------------------------------------

    def _install(self, keys: list[TicketKey], now: float) -> None:
        if not keys:
            raise ValueError("TicketKeys needs at least one key")
        installed = []
        for key in keys:
            if not isinstance(key, TicketKey):
                raise ValueError(f"keys must be TicketKey objects, not {key!r}")
            installed.append(_Key(key.name, _make_aead(key.secret, self.cipher), now))
        by_name: dict[bytes, _Key] = {}
        for key in reversed(installed):  # on a name clash the newest wins
            by_name[key.name] = key
        self._keys = installed
        self._by_name = by_name

    def _new_key(self, now: float) -> None:
        key = TicketKey.generate(self._random)
        entry = _Key(key.name, _make_aead(key.secret, self.cipher), now)
        self._keys.insert(0, entry)
        self._by_name[entry.name] = entry

    def _refresh(self, now: float) -> None:
        """Rotate / prune (in-memory keys) or reload the file; lock held."""
        if self.path is not None:
            # Also check when the clock went backwards, rather than wait for
            # it to catch up with the time the next check was planned for.
            if now >= self._next_check or now < self._next_check - self.reload_interval:
                self._next_check = now + self.reload_interval
                self._maybe_reload()
            return
        if not self._rotating:
            return
        current = self._keys[0] if self._keys else None
        if (
            current is None
            or now >= current.activated_at + self.rotation_interval
            # The clock went backwards: do not let that stretch a key's life.
            or now < current.activated_at
        ):
            if current is not None:
                # It sealed nothing after its scheduled end, even if nobody
                # asked for a ticket for hours: the window counts from there.
                current.retired_at = min(
                    now, current.activated_at + self.rotation_interval
                )
            self._new_key(now)
        self._prune(now)

    def _prune(self, now: float) -> None:
        keep = [
            k
            for k in self._keys
            if k.retired_at is None or now < k.retired_at + self.decrypt_window
        ]
        if len(keep) != len(self._keys):
            self._keys = keep
            self._by_name = {}
            for key in reversed(keep):
                self._by_name[key.name] = key

    def _maybe_reload(self) -> None:
        assert self.path is not None
        try:
            signature = _signature(self.path)
        except OSError as e:
            self.last_reload_error = (
                f"ticket key file {self.path}: cannot stat: {e.strerror or e}; "
                f"keeping the keys loaded before"
            )
            return
        if signature == self._file_signature:
            return
        try:
            keys = read_key_file(self.path)
        except TicketKeyFileError as e:
            # A broken rotation must not take resumption down with it: keep
            # the old keys and try again at the next check.
            self.last_reload_error = f"{e}; keeping the keys loaded before"
            return
        self._install(keys, 0.0)
        self._file_signature = signature
        self.last_reload_error = None

    def rotate(self) -> None:
        """Start a new in-memory key now; the old one keeps opening tickets.

        For a file-backed instance rotate the file instead
        (:func:`rotate_key_file`) and call :meth:`reload`.
        """
        if not self._rotating:
            raise ValueError(
                "these ticket keys are fixed or come from a key file; rotate "
                "the file (rotate_key_file) instead"
            )
        with self._lock:
            now = self._clock()
            if self._keys:
                self._keys[0].retired_at = now
            self._new_key(now)
            self._prune(now)

    def reload(self) -> None:
        """Re-read the key file now (e.g. on SIGHUP); raises if it is bad."""
        if self.path is None:
            raise ValueError("these ticket keys were not loaded from a file")
        with self._lock:
            keys = read_key_file(self.path)
            self._install(keys, 0.0)
            try:
                self._file_signature = _signature(self.path)
            except OSError:
                self._file_signature = None
            self._next_check = self._clock() + self.reload_interval
            self.last_reload_error = None

    @property
    def key_names(self) -> tuple[bytes, ...]:
        """Names of the keys that open tickets now, sealing key first."""
        with self._lock:
            self._refresh(self._clock())
            return tuple(k.name for k in self._keys)

    # -- sealing --------------------------------------------------------------

    def seal(self, plaintext: bytes) -> bytes:
        """An opaque ticket holding ``plaintext``, under the current key."""
        with self._lock:
            self._refresh(self._clock())
            key = self._keys[0]
        nonce = self._random(_NONCE_LENGTH)
        if len(nonce) != _NONCE_LENGTH:
            raise InternalError("random() returned the wrong number of bytes")
        return key.name + nonce + key.aead.encrypt(nonce, plaintext, key.name)

    def open(self, ticket: bytes | bytearray | memoryview) -> bytes | None:
        """The plaintext of a ticket we sealed, or None.

        None for a ticket that is truncated, too long, under an unknown or
        expired key name, or fails authentication.
        """
        if not isinstance(ticket, (bytes, bytearray, memoryview)):
            return None
        ticket = bytes(ticket)
        if not TICKET_OVERHEAD <= len(ticket) <= _MAX_TICKET_LENGTH:
            return None
        name = ticket[:_KEY_NAME_LENGTH]
        with self._lock:
            self._refresh(self._clock())
            key = self._by_name.get(name)
        if key is None:
            return None
        nonce = ticket[_KEY_NAME_LENGTH : _KEY_NAME_LENGTH + _NONCE_LENGTH]
        try:
            return key.aead.decrypt(
                nonce, ticket[_KEY_NAME_LENGTH + _NONCE_LENGTH :], name
            )
        except InvalidTag:
            return None

    def seal_state(self, state: ServerSessionState) -> bytes | None:
        """A ticket for ``state``; None if it cannot fit in one.

        Tickets are at most 65535 bytes (RFC 8446 §4.6.1); only a huge client
        certificate chain could push a state past that.  Send no ticket then.
        """
        if not isinstance(state, ServerSessionState):
            raise InternalError(f"cannot seal {type(state).__name__} in a ticket")
        plaintext = state.encode()
        if len(plaintext) + TICKET_OVERHEAD > _MAX_TICKET_LENGTH:
            return None
        return self.seal(plaintext)

    def open_state(
        self,
        ticket: bytes | bytearray | memoryview,
        *,
        version: ProtocolVersion | None = None,
    ) -> ServerSessionState | None:
        """The valid state inside a ticket, or None.

        None also when the state has expired (:meth:`ServerSessionState.
        is_valid` by our clock) or, if ``version`` is given, belongs to the
        other protocol version (a TLS 1.2 ticket offered as a TLS 1.3 PSK).
        """
        plaintext = self.open(ticket)
        if plaintext is None:
            return None
        state = ServerSessionState.decode(plaintext)
        if state is None or (version is not None and state.version != version):
            return None
        if not state.is_valid(self._clock()):
            return None
        return state

    def __repr__(self) -> str:
        count = len(self._keys)
        if self.path is not None:
            how = f"from {self.path!r}"
        elif self._rotating:
            how = (
                f"in memory, rotating every {self.rotation_interval:g} s, "
                f"kept {self.decrypt_window:g} s"
            )
        else:
            how = "fixed"
        return f"<TicketKeys {self.cipher} {how}, {count} key(s)>"


def _signature(path: str) -> tuple[int, int, int]:
    # mtime alone misses two writes within the file system's timestamp
    # granularity; size and inode (an atomic rename makes a new one) catch
    # almost all of those.
    st = os.stat(path)
    return (st.st_mtime_ns, st.st_size, st.st_ino)


# ---------------------------------------------------------------------------
# SessionCache (TLS 1.2 session IDs)
# ---------------------------------------------------------------------------


class SessionCache:
    """A bounded LRU of TLS 1.2 session IDs -> :class:`ServerSessionState`.

    Why a bound, and why 20000 by default: every full handshake with a
    client that does not take tickets adds an entry, and a client can make
    handshakes as fast as we can answer them, so an unbounded cache is a
    memory leak on demand.  An entry costs about 0.5 KiB in CPython (the
    48-byte master secret, the state object, the 32-byte ID, the dict node),
    so 20000 entries stay near 10 MiB - more when clients send certificate
    chains, which are kept for the resumed connection to report.  20000
    covers ~3 new sessions a second over the default two-hour lifetime;
    tickets (the default) carry the rest without server memory.  When the
    cache is full the least recently used session goes: that client pays a
    full handshake, nothing worse.

    Entries expire ``lifetime`` seconds after :meth:`put`, or earlier if the
    state's own lifetime ends first.  Safe to share between threads.
    """

    def __init__(
        self,
        *,
        clock: Callable[[], float],
        max_entries: int = DEFAULT_CACHE_SIZE,
        lifetime: float = DEFAULT_SESSION_LIFETIME,
    ) -> None:
        if not callable(clock):
            raise ValueError(f"clock must be a callable() -> float, not {clock!r}")
        if (
            isinstance(max_entries, bool)
            or not isinstance(max_entries, int)
            or max_entries < 1
        ):
            raise ValueError(
                f"max_entries must be an integer >= 1, not {max_entries!r}"
            )
        self._clock = clock
        self.max_entries = max_entries
        self.lifetime = _positive_seconds(lifetime, "lifetime", allow_zero=False)
        self._entries: OrderedDict[bytes, tuple[float, ServerSessionState]] = (
            OrderedDict()
        )
        self._lock = threading.Lock()

    def put(self, session_id: bytes, state: ServerSessionState) -> None:
        """Remember ``state`` under ``session_id`` (1..32 bytes)."""
        # RFC 5246 §7.4.1.2: SessionID session_id<0..32>; empty means "not
        # resumable", so it is never a key.
        session_id = _bytes(session_id, "session_id", 1, 32)
        if not isinstance(state, ServerSessionState):
            raise ValueError(
                f"state must be a ServerSessionState, not {type(state).__name__}"
            )
        now = self._clock()
        expires = min(
            now + self.lifetime, state.created_at + _lifetime_cap(state.lifetime)
        )
        entries = self._entries
        with self._lock:
            entries[session_id] = (expires, state)
            entries.move_to_end(session_id)
            # Drop expired entries from the cold end (each entry is dropped
            # once, so this is O(1) amortised), then enforce the bound.
            while entries:
                oldest_expires, _ = next(iter(entries.values()))
                if now < oldest_expires:
                    break
                entries.popitem(last=False)
            while len(entries) > self.max_entries:
                entries.popitem(last=False)

    def get(
        self, session_id: bytes | bytearray | memoryview
    ) -> ServerSessionState | None:
        """The state for ``session_id``, or None (unknown or expired)."""
        if not isinstance(session_id, (bytes, bytearray, memoryview)):
            return None
        key = bytes(session_id)
        now = self._clock()
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            expires, state = entry
            if now >= expires or not state.is_valid(now):
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
            return state

    def remove(self, session_id: bytes | bytearray | memoryview) -> None:
        """Forget ``session_id`` (e.g. after a fatal alert on its connection)."""
        if isinstance(session_id, (bytes, bytearray, memoryview)):
            with self._lock:
                self._entries.pop(bytes(session_id), None)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)

    def __bool__(self) -> bool:
        # An empty cache is still a cache: ``if context.session_cache:``
        # must mean "session IDs are enabled", not "something is cached".
        return True

    def __contains__(self, session_id: Any) -> bool:
        return self.get(session_id) is not None

    def __repr__(self) -> str:
        return (
            f"<SessionCache {len(self._entries)}/{self.max_entries} entries, "
            f"lifetime {self.lifetime:g} s>"
        )
