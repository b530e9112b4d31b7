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
* :class:`~twisted_sslfile.engine.ticketkeys.TicketKeys` (in
  :mod:`~twisted_sslfile.engine.ticketkeys`) - seals that state into opaque
  tickets with an AEAD under rotating keys; keys that several processes or
  machines share come from a key file through
  :class:`~twisted_sslfile.ticketkeyfile.FileTicketKeys`, outside the engine.
* :class:`SessionCache` - a bounded LRU of TLS 1.2 session IDs.

Sans-I/O like the rest of the engine: time comes from an injected
``clock()`` and randomness from an injected ``random(n)`` (the Context's);
no file is read here.  The checks and wire helpers of the single fields
are in :mod:`.sessionfields`.

Nothing here ever raises on a peer's ticket or session ID: an unknown,
expired, tampered or truncated ticket opens to ``None`` and the handshake
falls back to a full one (RFC 5077 §3.3, RFC 8446 §4.2.11).
"""

from __future__ import annotations

import contextlib
import hmac
import math
import struct
from collections import OrderedDict
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, fields
from typing import Any, TypeVar

from ..constants import CipherSuite, ProtocolVersion
from ..errors import TLSError
from .buffer import Reader, Writer
from .sessionfields import (
    _F64,
    _POLICY_LENGTH,
    _TLS12,
    _TLS13,
    _UINT32,
    _bool,
    _bytes,
    _certificates,
    _get_certificates,
    _get_optional,
    _optional_protocol,
    _optional_server_name,
    _policy,
    _positive_seconds,
    _put_certificates,
    _put_optional,
    _secret_length,
    _suite,
    _time,
    _uint,
    _version,
    _version_label,
)

__all__ = [
    "CLOCK_SKEW_TOLERANCE",
    "DEFAULT_CACHE_SIZE",
    "DEFAULT_SESSION_LIFETIME",
    "MAX_SESSION_LIFETIME",
    "ServerSessionState",
    "Session",
    "SessionCache",
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

#: See :class:`SessionCache`.
DEFAULT_CACHE_SIZE = 20000

#: A ticket sealed on another machine of the fleet may carry a creation time
#: slightly in our future; this much skew is tolerated.
CLOCK_SKEW_TOLERANCE = 300.0

#: RFC 8446 §4.6.1 ``opaque ticket<1..2^16-1>``; RFC 5077 §3.3 the same.
_MAX_TICKET_LENGTH = 2**16 - 1


def _lifetime_cap(lifetime: int) -> int:
    return min(lifetime, MAX_SESSION_LIFETIME)


_State = TypeVar("_State", "Session", "ServerSessionState")


def _copy_with(template: _State, names: tuple[str, ...], **checked: object) -> _State:
    """``template`` with the ``checked`` fields replaced, without ``__post_init__``.

    Only for the ``for_next_ticket`` methods below: they pass values checked
    with the helpers ``__post_init__`` uses, and every other field is the
    template's, checked when it was made.  ``dataclasses.replace`` would
    check all of them again, which is what made a second ticket cost as
    much as the first.
    """
    new = object.__new__(type(template))
    set_field = object.__setattr__
    for name in names:
        set_field(new, name, getattr(template, name))
    for name, value in checked.items():
        set_field(new, name, value)
    return new


# ---------------------------------------------------------------------------
# Session (client side)
# ---------------------------------------------------------------------------

_SESSION_MAGIC = b"TSSLSESS"
#: Format 2 adds the verification policy (a last field) to format 1.  A
#: format 1 file is still read, as an unverified session: nothing in it says
#: under which trust roots its chain was verified.
_SESSION_FORMAT = 2
_SESSION_FORMATS = (1, 2)
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
    ``peer_certificates`` (DER, leaf first), ``verified`` (whether they were
    verified for ``server_name``), ``verification_policy`` (see below),
    ``created_at`` (the client's clock when the ticket or session arrived;
    the TLS 1.3 ticket age counts from it, RFC 8446 §4.2.11.1) and
    ``lifetime`` (seconds, the server's ticket_lifetime or our own policy).

    ``verification_policy`` is what
    :func:`twisted_sslfile.engine.certificates.server_policy_digest` gave the connection
    that verified the chain: 32 bytes naming its trust roots, its rules and
    the server name; empty exactly when ``verified`` is false.  A verifying
    client offers only a session verified under its own policy
    (:meth:`verified_under`), so a resumed connection's ``verified`` means
    what a full handshake's would.

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
    verification_policy: bytes = b""
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
        s(self, "verification_policy", _policy(self.verified, self.verification_policy))
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

    def for_next_ticket(
        self,
        *,
        created_at: float,
        lifetime: int,
        ticket: bytes,
        resumption_psk: bytes,
        ticket_age_add: int,
        max_early_data: int,
    ) -> Session:
        """The session for another NewSessionTicket of the same connection.

        Every field that comes with the ticket, and the PSK derived from it,
        is checked as ``__post_init__`` checks it.  The others - version,
        suite, server name, ALPN, the server's chain and the policy it was
        verified under - are the same for every ticket of one TLS 1.3
        connection, and are taken from this session, which was checked when
        it was made.  The result equals ``Session(...)`` of the same values
        (``test_sessions.NextTicketTests``).
        """
        if self.version != _TLS13:
            raise ValueError("only a TLS 1.3 session has further tickets")
        length = _secret_length(self.version, self.cipher_suite)
        return _copy_with(
            self,
            _SESSION_FIELDS,
            created_at=_time(created_at, "created_at"),
            lifetime=_uint(lifetime, "lifetime"),
            ticket_age_add=_uint(ticket_age_add, "ticket_age_add"),
            max_early_data=_uint(max_early_data, "max_early_data"),
            ticket=_bytes(ticket, "ticket", 1, _MAX_TICKET_LENGTH),
            resumption_psk=_bytes(resumption_psk, "resumption_psk", length, length),
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

    def verified_under(self, policy: bytes) -> bool:
        """Whether the chain was verified under ``policy``.

        ``policy`` is the connection's own
        :func:`~twisted_sslfile.engine.certificates.server_policy_digest`
        (``b""`` when it does not verify: then nothing matches).  A
        verifying client offers a session only when this is true: resuming
        skips the certificate check, so the session must stand for the
        check this client would have made - same trust roots and rules,
        same server name.
        """
        return (
            self.verified
            and len(policy) == _POLICY_LENGTH
            and hmac.compare_digest(self.verification_policy, policy)
        )

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
        w.vector(1, self.verification_policy)
        return w.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes | bytearray | memoryview) -> Session:
        """Load what :meth:`to_bytes` wrote.

        Raises ValueError, with a message saying what is wrong, for anything
        else: another file, a truncated one, an unsupported format version,
        values no session can have.

        Files of format 1 (written before sessions recorded their
        verification policy) load as unverified sessions, whatever their
        ``verified`` flag says: no verifying client offers them.
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
            if fmt not in _SESSION_FORMATS:
                raise ValueError(
                    f"session format {fmt} is not supported (this version reads "
                    f"formats {', '.join(map(str, _SESSION_FORMATS))})"
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
            policy = r.vector(1) if fmt >= 2 else b""
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
                # Format 1 cannot say what the chain was verified under.
                verified=bool(flags & _S_VERIFIED) and fmt >= 2,
                verification_policy=policy,
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
        parts.append("verified" if self.verified else "not verified")
        parts.append(f"lifetime {self.lifetime} s")
        return f"<Session {' '.join(parts)}>"


# ---------------------------------------------------------------------------
# ServerSessionState (server side)
# ---------------------------------------------------------------------------

#: Format 2 adds the client verification policy (a last field).  A format 1
#: state (a ticket sealed by an earlier release) opens to None: it cannot
#: say under which client CAs its chain was verified, so it is ignored and
#: a full handshake follows (RFC 5077 §3.3, RFC 8446 §4.2.11).
_STATE_FORMAT = 2
_T_EMS, _T_VERIFIED, _T_SNI, _T_ALPN = 1, 2, 4, 8
_T_ALL = _T_EMS | _T_VERIFIED | _T_SNI | _T_ALPN
#: The fixed head of the encoding: format, version, suite, flags,
#: created_at, authenticated_at, lifetime, ticket_age_add and the length
#: byte of the secret (``opaque secret<0..255>``).
_STATE_HEAD = struct.Struct(">BHHBddIIB")


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
    sent one) and whether it was verified; ``verification_policy`` is what
    :func:`twisted_sslfile.engine.certificates.client_policy_digest` gave the server
    that verified it (32 bytes, empty exactly when ``verified`` is false).
    A resumed connection reports the chain as verified only under an equal
    policy (:meth:`verified_under`).  ``ticket_age_add`` is the TLS 1.3
    value sent in the NewSessionTicket, kept to undo the client's
    obfuscation.
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
    verification_policy: bytes = b""
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
        s(self, "server_name", _optional_server_name(self.server_name))
        s(self, "alpn_protocol", _optional_protocol(self.alpn_protocol, "alpn"))
        s(self, "peer_certificates", _certificates(self.peer_certificates))
        s(self, "verification_policy", _policy(self.verified, self.verification_policy))
        if self.verified and not self.peer_certificates:
            raise ValueError("a verified session needs the client's certificates")
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

    def for_next_ticket(
        self, *, secret: bytes, ticket_age_add: int
    ) -> ServerSessionState:
        """The state for another ticket of the same handshake.

        A server sends several tickets per handshake (RFC 8446 §4.6.1); they
        differ only in the PSK and ``ticket_age_add``, which are checked as
        ``__post_init__`` checks them.  Every other field is this state's,
        checked when it was made.  The result equals
        ``ServerSessionState(...)`` of the same values
        (``test_sessions.NextTicketTests``).
        """
        length = _secret_length(self.version, self.cipher_suite)
        ticket_age_add = _uint(ticket_age_add, "ticket_age_add")
        if self.version == _TLS12 and ticket_age_add:
            raise ValueError("ticket_age_add is a TLS 1.3 notion")
        return _copy_with(
            self,
            _STATE_FIELDS,
            secret=_bytes(secret, "secret", length, length),
            ticket_age_add=ticket_age_add,
        )

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

    def verified_under(self, policy: bytes) -> bool:
        """Whether the client's chain was verified under ``policy``.

        ``policy`` is the server's own
        :func:`~twisted_sslfile.engine.certificates.client_policy_digest` (``b""``
        when it verifies no client chain: then nothing matches).
        """
        return (
            self.verified
            and len(policy) == _POLICY_LENGTH
            and hmac.compare_digest(self.verification_policy, policy)
        )

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
        # Every length and value was range-checked when the state was made,
        # so plain byte strings do here what a Writer would check again.
        name = b"" if self.server_name is None else self.server_name.encode("utf-8")
        alpn = self.alpn_protocol or b""
        certs = b"".join(
            [len(cert).to_bytes(3, "big") + cert for cert in self.peer_certificates]
        )
        policy = self.verification_policy
        return b"".join(
            (
                _STATE_HEAD.pack(
                    _STATE_FORMAT,
                    self.version,
                    self.cipher_suite,
                    flags,
                    self.created_at,
                    self.authenticated_at,
                    self.lifetime,
                    self.ticket_age_add,
                    len(self.secret),
                ),
                self.secret,
                bytes((len(name),)),
                name,
                bytes((len(alpn),)),
                alpn,
                len(certs).to_bytes(3, "big"),
                certs,
                bytes((len(policy),)),
                policy,
            )
        )

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
            policy = r.vector(1)
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
                verification_policy=policy,
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


_SESSION_FIELDS = tuple(f.name for f in fields(Session))
_STATE_FIELDS = tuple(f.name for f in fields(ServerSessionState))


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
    state's own lifetime ends first.

    Threads are not the engine's business, so a cache is safe to share
    between threads only with a ``lock`` (any context manager, such as a
    ``threading.Lock()``) that guards its entries.  A Context gives one to
    the cache it makes itself; a cache built by hand for connections in
    several threads needs ``lock=`` too.
    """

    def __init__(
        self,
        *,
        clock: Callable[[], float],
        max_entries: int = DEFAULT_CACHE_SIZE,
        lifetime: float = DEFAULT_SESSION_LIFETIME,
        lock: AbstractContextManager[Any] | None = None,
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
        self._lock: AbstractContextManager[Any] = (
            lock if lock is not None else contextlib.nullcontext()
        )

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
