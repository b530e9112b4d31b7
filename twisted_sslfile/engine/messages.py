"""Handshake messages of TLS 1.3 (RFC 8446 §4) and TLS 1.2 (RFC 5246 §7.4).

One dataclass per message, each with a ``parse(body)`` classmethod and a
``serialize()`` method that are exact mirrors: ``serialize()`` of a parsed
message gives back the bytes it came from whenever the input was canonical
(see below).  Bodies exclude the 4-byte handshake header; :func:`encode_handshake`
adds it and :class:`HandshakeReassembler` strips it on the way in.

Extensions are table driven rather than an if/elif chain:

* every extension this module understands has a parse/serialize pair of
  functions, bound to a dataclass field by an :class:`_Ext` entry;
* every message with extensions has a table ``{type: _Ext}`` whose order is
  also the canonical order used when serializing a message built in code
  (it extends the order of RFC 8448's traces, so those are canonical);
* :data:`_WHERE` transcribes RFC 8446 §4.2's "which message may carry which
  extension" table (plus the TLS 1.2 ServerHello extensions).  A recognised
  extension in a message that may not carry it is an ``illegal_parameter``;
  an unrecognised one is kept, raw, in ``other_extensions``.

``extension_order`` records the types as received.  ``serialize()`` replays
that order (extensions added since go after, in canonical order), so a
parsed-and-reserialized message is byte-identical; messages built in code
leave it empty and come out in canonical order.  A message is canonical when
each extension body is in its single canonical encoding (for instance an
empty TLS 1.2 extension block is written as no block at all).

Errors: malformed input raises :class:`DecodeError`; well-formed but
forbidden values raise :class:`IllegalParameterError` (duplicate extensions,
pre_shared_key not last, an extension in the wrong message, ...).  Values
that do not fit when *serializing* are our own bugs and raise
:class:`InternalError`.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeAlias

from ..constants import (
    AlertDescription,
    ExtensionType,
    HandshakeType,
    NameType,
)
from ..constants import ExtensionType as E
from ..errors import (
    DecodeError,
    IllegalParameterError,
    InternalError,
    LimitExceededError,
    MissingExtensionError,
)
from .buffer import Reader, Writer

__all__ = [
    "DOWNGRADE_TLS11",
    "DOWNGRADE_TLS12",
    "HELLO_RETRY_REQUEST_RANDOM",
    "TLS12_MESSAGES",
    "TLS13_MESSAGES",
    "Certificate",
    "Certificate12",
    "CertificateEntry",
    "CertificateRequest",
    "CertificateRequest12",
    "CertificateVerify",
    "ClientHello",
    "ClientKeyExchange12",
    "EncryptedExtensions",
    "EndOfEarlyData",
    "Finished",
    "HandshakeMessage",
    "HandshakeReassembler",
    "HelloRequest",
    "KeyShareEntry",
    "KeyUpdate",
    "NewSessionTicket",
    "NewSessionTicket12",
    "NextProtocol",
    "OfferedPsks",
    "PskIdentity",
    "ServerHello",
    "ServerHelloDone12",
    "ServerKeyExchange12",
    "encode_handshake",
]

#: RFC 8446 §4.1.3: a ServerHello with this random is a HelloRetryRequest
#: (the value is SHA-256("HelloRetryRequest")).
HELLO_RETRY_REQUEST_RANDOM = bytes.fromhex(
    "cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c"
)
#: RFC 8446 §4.1.3: last 8 bytes of ServerHello.random when a TLS 1.3 server
#: negotiates TLS 1.2 ("DOWNGRD" 01) or an older version ("DOWNGRD" 00).
DOWNGRADE_TLS12 = bytes.fromhex("444f574e47524401")
DOWNGRADE_TLS11 = bytes.fromhex("444f574e47524400")

_TLS13 = 0x0304


def _ext_name(ext_type: int) -> str:
    try:
        return ExtensionType(ext_type).name
    except ValueError:
        return f"extension {ext_type:#06x}"


# ---------------------------------------------------------------------------
# Extension codecs: one parse/serialize pair per extension body format.
# A parse function gets the extension_data and returns the field value; the
# serialize function is its inverse.


def _parse_empty(data: memoryview) -> bool:
    # Flag extensions whose extension_data is empty: early_data (RFC 8446
    # §4.2.10, CH/EE), post_handshake_auth (§4.2.6), extended_master_secret
    # (RFC 7627 §5.1), NPN in the ClientHello, server_name and session_ticket
    # in server replies (RFC 6066 §3, RFC 5077 §3.2).
    if len(data):
        raise DecodeError("extension body must be empty")
    return True


def _serialize_empty(value: bool) -> bytes:
    return b""


_FLAG = (_parse_empty, _serialize_empty)


def _parse_raw(data: memoryview) -> bytes:
    # RFC 5077 §3.2: the ClientHello SessionTicket extension is the ticket.
    return bytes(data)


def _serialize_raw(value: bytes) -> bytes:
    return bytes(value)


def _parse_uint16(data: memoryview) -> int:
    r = Reader(data)
    value = r.uint16()
    r.finish()
    return value


def _serialize_uint16(value: int) -> bytes:
    w = Writer()
    w.uint16(value)
    return w.getvalue()


_UINT16 = (_parse_uint16, _serialize_uint16)


def _parse_uint32(data: memoryview) -> int:
    r = Reader(data)
    value = r.uint32()
    r.finish()
    return value


def _serialize_uint32(value: int) -> bytes:
    w = Writer()
    w.uint32(value)
    return w.getvalue()


def _opaque_codec(
    length_size: int, min_length: int = 0, max_length: int | None = None
) -> tuple[Callable[[memoryview], bytes], Callable[[bytes], bytes]]:
    """Codec for an extension body that is a single ``opaque x<min..max>``."""

    def parse(data: memoryview) -> bytes:
        r = Reader(data)
        value = r.vector(length_size, min_length, max_length)
        r.finish()
        return value

    def serialize(value: bytes) -> bytes:
        w = Writer()
        w.vector(length_size, value, min_length, max_length)
        return w.getvalue()

    return parse, serialize


def _uint16_list_codec(
    length_size: int, min_length: int, max_length: int
) -> tuple[Callable[[memoryview], list[int]], Callable[[list[int]], bytes]]:
    """Codec for an extension body that is a single vector of uint16."""

    def parse(data: memoryview) -> list[int]:
        r = Reader(data)
        value = r.uint16_vector(length_size, min_length, max_length)
        r.finish()
        return value

    def serialize(value: list[int]) -> bytes:
        w = Writer()
        w.uint16_vector(length_size, value, min_length, max_length)
        return w.getvalue()

    return parse, serialize


# RFC 8446 §4.2.7 NamedGroup named_group_list<2..2^16-1>
_SUPPORTED_GROUPS = _uint16_list_codec(2, 2, 0xFFFF)
# RFC 8446 §4.2.3 SignatureScheme supported_signature_algorithms<2..2^16-2>
_SIGNATURE_ALGORITHMS = _uint16_list_codec(2, 2, 0xFFFE)
# RFC 8446 §4.2.1 ProtocolVersion versions<2..254> (ClientHello)
_SUPPORTED_VERSIONS_CH = _uint16_list_codec(1, 2, 254)
# RFC 8446 §4.2.2 opaque cookie<1..2^16-1>
_COOKIE = _opaque_codec(2, 1)
# RFC 5746 §3.2 opaque renegotiated_connection<0..255>
_RENEGOTIATION_INFO = _opaque_codec(1, 0, 255)
# RFC 8422 §5.1.2 ECPointFormat ec_point_format_list<1..2^8-1>
_EC_POINT_FORMATS = _opaque_codec(1, 1, 255)

# RFC 6066 §3: HostName is ASCII; we also refuse controls and spaces, which no
# DNS name contains and which would be dangerous in logs and matching.
_HOST_NAME = re.compile(rb"[\x21-\x7e]+")


def _parse_server_name(data: memoryview) -> str:
    # RFC 6066 §3: ServerName server_name_list<1..2^16-1>, each
    # {NameType name_type; opaque HostName<1..2^16-1>}.  host_name is the
    # only type defined (another's encoding is unknown) and a list holds at
    # most one name per type, so we accept exactly one host_name entry.
    r = Reader(data)
    names = r.sub(2, 1)
    r.finish()
    name_type = names.uint8()
    host = names.vector(2, 1)
    if name_type != NameType.host_name or not names.at_end():
        raise DecodeError("server_name must hold exactly one host_name")
    if _HOST_NAME.fullmatch(host) is None:
        raise IllegalParameterError("server_name host_name is not printable ASCII")
    return host.decode("ascii")


def _serialize_server_name(value: str) -> bytes:
    try:
        host = value.encode("ascii")
    except UnicodeEncodeError:
        raise InternalError("server_name must be ASCII (use IDNA A-labels)") from None
    w = Writer()
    with w.prefixed(2, 1):
        w.uint8(NameType.host_name)
        w.vector(2, host, 1)
    return w.getvalue()


def _parse_alpn_list(data: memoryview) -> list[bytes]:
    # RFC 7301 §3.1: ProtocolName protocol_name_list<2..2^16-1>,
    # ProtocolName = opaque<1..2^8-1>.
    r = Reader(data)
    names = r.sub(2, 2)
    r.finish()
    protocols = []
    while not names.at_end():
        protocols.append(names.vector(1, 1))
    return protocols


def _serialize_alpn_list(value: list[bytes]) -> bytes:
    w = Writer()
    with w.prefixed(2, 2):
        for name in value:
            w.vector(1, name, 1)
    return w.getvalue()


def _parse_alpn_single(data: memoryview) -> bytes:
    # RFC 7301 §3.1: the server's list "MUST contain exactly one" name.
    protocols = _parse_alpn_list(data)
    if len(protocols) != 1:
        raise DecodeError("server ALPN reply must name exactly one protocol")
    return protocols[0]


def _serialize_alpn_single(value: bytes) -> bytes:
    return _serialize_alpn_list([value])


def _parse_npn_list(data: memoryview) -> list[bytes]:
    # draft-agl-tls-nextprotoneg-04 §3: the ServerHello extension_data is a
    # concatenation of 8-bit length-prefixed, non-empty protocol names.
    r = Reader(data)
    protocols = []
    while not r.at_end():
        protocols.append(r.vector(1, 1))
    return protocols


def _serialize_npn_list(value: list[bytes]) -> bytes:
    w = Writer()
    for name in value:
        w.vector(1, name, 1)
    return w.getvalue()


def _parse_psk_modes(data: memoryview) -> list[int]:
    # RFC 8446 §4.2.9: PskKeyExchangeMode ke_modes<1..255>
    r = Reader(data)
    modes = list(r.view(1, 1))
    r.finish()
    return modes


def _serialize_psk_modes(value: list[int]) -> bytes:
    try:
        modes = bytes(value)
    except ValueError:
        raise InternalError("psk_key_exchange_modes value out of range") from None
    w = Writer()
    w.vector(1, modes, 1)
    return w.getvalue()


def _parse_record_size_limit(data: memoryview) -> int:
    # RFC 8449 §4: a value below 64 is an illegal_parameter.
    value = _parse_uint16(data)
    if value < 64:
        raise IllegalParameterError(f"record_size_limit {value} is below 64")
    return value


def _serialize_record_size_limit(value: int) -> bytes:
    if value < 64:
        raise InternalError(f"record_size_limit {value} is below 64")
    return _serialize_uint16(value)


def _parse_dn_list(data: memoryview) -> list[bytes]:
    # RFC 8446 §4.2.4: DistinguishedName authorities<3..2^16-1>,
    # DistinguishedName = opaque<1..2^16-1>.
    r = Reader(data)
    names = r.sub(2, 3)
    r.finish()
    authorities = []
    while not names.at_end():
        authorities.append(names.vector(2, 1))
    return authorities


def _serialize_dn_list(value: list[bytes]) -> bytes:
    w = Writer()
    with w.prefixed(2, 3):
        for name in value:
            w.vector(2, name, 1)
    return w.getvalue()


# ---------------------------------------------------------------------------
# Small structures shared by messages.


@dataclass(slots=True)
class KeyShareEntry:
    """RFC 8446 §4.2.8: ``{NamedGroup group; opaque key_exchange<1..2^16-1>}``."""

    group: int
    key_exchange: bytes

    @classmethod
    def read(cls, r: Reader) -> KeyShareEntry:
        return cls(r.uint16(), r.vector(2, 1))

    def write(self, w: Writer) -> None:
        w.uint16(self.group)
        w.vector(2, self.key_exchange, 1)


@dataclass(slots=True)
class PskIdentity:
    """RFC 8446 §4.2.11: ``opaque identity<1..2^16-1>; uint32 ticket age``."""

    identity: bytes
    obfuscated_ticket_age: int


@dataclass(slots=True)
class OfferedPsks:
    """RFC 8446 §4.2.11: the ClientHello ``pre_shared_key`` extension body."""

    identities: list[PskIdentity]
    binders: list[bytes]


def _parse_key_share_client(data: memoryview) -> list[KeyShareEntry]:
    # RFC 8446 §4.2.8: KeyShareEntry client_shares<0..2^16-1>; "Clients MUST
    # NOT offer multiple KeyShareEntry values for the same group".
    r = Reader(data)
    shares = r.sub(2)
    r.finish()
    entries = []
    groups = set()
    while not shares.at_end():
        entry = KeyShareEntry.read(shares)
        if entry.group in groups:
            raise IllegalParameterError(f"two key shares for group {entry.group:#06x}")
        groups.add(entry.group)
        entries.append(entry)
    return entries


def _serialize_key_share_client(value: list[KeyShareEntry]) -> bytes:
    w = Writer()
    with w.prefixed(2):
        for entry in value:
            entry.write(w)
    return w.getvalue()


def _parse_key_share_server(data: memoryview) -> KeyShareEntry:
    # RFC 8446 §4.2.8: ServerHello carries one KeyShareEntry server_share.
    r = Reader(data)
    entry = KeyShareEntry.read(r)
    r.finish()
    return entry


def _serialize_key_share_server(value: KeyShareEntry) -> bytes:
    w = Writer()
    value.write(w)
    return w.getvalue()


def _parse_offered_psks(data: memoryview) -> OfferedPsks:
    # RFC 8446 §4.2.11: PskIdentity identities<7..2^16-1>;
    # PskBinderEntry binders<33..2^16-1>, PskBinderEntry = opaque<32..255>.
    r = Reader(data)
    ids = r.sub(2, 7)
    binder_list = r.sub(2, 33)
    r.finish()
    identities = []
    while not ids.at_end():
        identities.append(PskIdentity(ids.vector(2, 1), ids.uint32()))
    binders = []
    while not binder_list.at_end():
        binders.append(binder_list.vector(1, 32))
    if len(binders) != len(identities):
        raise IllegalParameterError(
            "pre_shared_key binder count differs from identities"
        )
    return OfferedPsks(identities, binders)


def _serialize_offered_psks(value: OfferedPsks) -> bytes:
    w = Writer()
    with w.prefixed(2, 7):
        for identity in value.identities:
            w.vector(2, identity.identity, 1)
            w.uint32(identity.obfuscated_ticket_age)
    with w.prefixed(2, 33):
        for binder in value.binders:
            w.vector(1, binder, 32)
    return w.getvalue()


# ---------------------------------------------------------------------------
# Extension tables.


@dataclass(frozen=True, slots=True)
class _Ext:
    """Binds an extension type to a message field and its codec."""

    attr: str
    parse: Callable[[memoryview], Any]
    serialize: Callable[[Any], bytes]


# RFC 8446 §4.2 table (plus record_size_limit, RFC 8449; padding, RFC 7685):
# which messages may carry each recognised extension.  "SH12" is the TLS 1.2
# ServerHello (RFC 6066, 7301, 7627, 5746, 5077, 8422, NPN draft); the
# ClientHello serves both versions.  Types missing here are unrecognised.
_WHERE: dict[int, frozenset[str]] = {
    ext: frozenset(kinds.split())
    for ext, kinds in {
        E.server_name: "CH EE SH12",
        E.max_fragment_length: "CH EE",
        E.status_request: "CH CR CT",
        E.supported_groups: "CH EE",
        E.ec_point_formats: "CH SH12",
        E.signature_algorithms: "CH CR",
        E.use_srtp: "CH EE",
        E.heartbeat: "CH EE",
        E.application_layer_protocol_negotiation: "CH EE SH12",
        E.signed_certificate_timestamp: "CH CR CT",
        E.client_certificate_type: "CH EE",
        E.server_certificate_type: "CH EE",
        E.padding: "CH",
        E.encrypt_then_mac: "CH",
        E.extended_master_secret: "CH SH12",
        E.record_size_limit: "CH EE",
        E.session_ticket: "CH SH12",
        E.pre_shared_key: "CH SH",
        E.early_data: "CH EE NST",
        E.supported_versions: "CH SH HRR SH12",
        E.cookie: "CH HRR",
        E.psk_key_exchange_modes: "CH",
        E.certificate_authorities: "CH CR",
        E.oid_filters: "CR",
        E.post_handshake_auth: "CH",
        E.signature_algorithms_cert: "CH CR",
        E.key_share: "CH SH HRR",
        E.next_protocol_negotiation: "CH SH12",
        E.renegotiation_info: "CH SH12",
    }.items()
}
_ALLOWED: dict[str, frozenset[int]] = {
    kind: frozenset(ext for ext, kinds in _WHERE.items() if kind in kinds)
    for kind in ("CH", "SH", "HRR", "SH12", "EE", "CR", "CT", "NST")
}
# A ServerHello is parsed before its version is known: admit the union, then
# check against the set for what it turned out to be.
_ALLOWED_ANY_SH = _ALLOWED["SH"] | _ALLOWED["HRR"] | _ALLOWED["SH12"]

# Per-message tables.  Their order is the canonical serialization order.
_CLIENT_HELLO_EXTENSIONS: dict[int, _Ext] = {
    E.server_name: _Ext("server_name", _parse_server_name, _serialize_server_name),
    E.extended_master_secret: _Ext("extended_master_secret", *_FLAG),
    E.renegotiation_info: _Ext("renegotiation_info", *_RENEGOTIATION_INFO),
    E.supported_groups: _Ext("supported_groups", *_SUPPORTED_GROUPS),
    E.ec_point_formats: _Ext("ec_point_formats", *_EC_POINT_FORMATS),
    E.session_ticket: _Ext("session_ticket", _parse_raw, _serialize_raw),
    E.next_protocol_negotiation: _Ext("next_protocol_negotiation", *_FLAG),
    E.application_layer_protocol_negotiation: _Ext(
        "alpn_protocols", _parse_alpn_list, _serialize_alpn_list
    ),
    E.key_share: _Ext(
        "key_share", _parse_key_share_client, _serialize_key_share_client
    ),
    E.early_data: _Ext("early_data", *_FLAG),
    E.supported_versions: _Ext("supported_versions", *_SUPPORTED_VERSIONS_CH),
    E.signature_algorithms: _Ext("signature_algorithms", *_SIGNATURE_ALGORITHMS),
    E.signature_algorithms_cert: _Ext(
        "signature_algorithms_cert", *_SIGNATURE_ALGORITHMS
    ),
    E.cookie: _Ext("cookie", *_COOKIE),
    E.psk_key_exchange_modes: _Ext(
        "psk_key_exchange_modes", _parse_psk_modes, _serialize_psk_modes
    ),
    E.post_handshake_auth: _Ext("post_handshake_auth", *_FLAG),
    E.record_size_limit: _Ext(
        "record_size_limit", _parse_record_size_limit, _serialize_record_size_limit
    ),
    E.pre_shared_key: _Ext(
        "pre_shared_key", _parse_offered_psks, _serialize_offered_psks
    ),
}

_SERVER_HELLO_EXTENSIONS: dict[int, _Ext] = {
    E.server_name: _Ext("server_name_ack", *_FLAG),
    E.extended_master_secret: _Ext("extended_master_secret", *_FLAG),
    E.renegotiation_info: _Ext("renegotiation_info", *_RENEGOTIATION_INFO),
    E.ec_point_formats: _Ext("ec_point_formats", *_EC_POINT_FORMATS),
    E.session_ticket: _Ext("session_ticket", *_FLAG),
    E.next_protocol_negotiation: _Ext(
        "next_protocol_negotiation", _parse_npn_list, _serialize_npn_list
    ),
    E.application_layer_protocol_negotiation: _Ext(
        "alpn_protocol", _parse_alpn_single, _serialize_alpn_single
    ),
    # RFC 8446 §4.2.11: uint16 selected_identity
    E.pre_shared_key: _Ext("pre_shared_key", *_UINT16),
    E.key_share: _Ext(
        "key_share", _parse_key_share_server, _serialize_key_share_server
    ),
    E.cookie: _Ext("cookie", *_COOKIE),
    # RFC 8446 §4.2.1: ProtocolVersion selected_version
    E.supported_versions: _Ext("supported_versions", *_UINT16),
}
# RFC 8446 §4.2.8: in a HelloRetryRequest key_share is a NamedGroup selected_group.
_HELLO_RETRY_REQUEST_EXTENSIONS: dict[int, _Ext] = {
    **_SERVER_HELLO_EXTENSIONS,
    E.key_share: _Ext("selected_group", *_UINT16),
}

_ENCRYPTED_EXTENSIONS: dict[int, _Ext] = {
    E.supported_groups: _Ext("supported_groups", *_SUPPORTED_GROUPS),
    E.record_size_limit: _Ext(
        "record_size_limit", _parse_record_size_limit, _serialize_record_size_limit
    ),
    E.server_name: _Ext("server_name_ack", *_FLAG),
    E.application_layer_protocol_negotiation: _Ext(
        "alpn_protocol", _parse_alpn_single, _serialize_alpn_single
    ),
    E.early_data: _Ext("early_data", *_FLAG),
}

_CERTIFICATE_REQUEST_EXTENSIONS: dict[int, _Ext] = {
    E.signature_algorithms: _Ext("signature_algorithms", *_SIGNATURE_ALGORITHMS),
    E.signature_algorithms_cert: _Ext(
        "signature_algorithms_cert", *_SIGNATURE_ALGORITHMS
    ),
    E.certificate_authorities: _Ext(
        "certificate_authorities", _parse_dn_list, _serialize_dn_list
    ),
}

_NEW_SESSION_TICKET_EXTENSIONS: dict[int, _Ext] = {
    # RFC 8446 §4.2.10: in NewSessionTicket, uint32 max_early_data_size
    E.early_data: _Ext("max_early_data_size", _parse_uint32, _serialize_uint32),
}


# ---------------------------------------------------------------------------
# Generic extension block handling.


def _read_extensions(
    r: Reader, min_length: int = 0, max_length: int = 0xFFFF
) -> list[tuple[int, memoryview]]:
    """Read ``Extension extensions<min..max>``: (type, extension_data) pairs.

    RFC 8446 §4.2: "There MUST NOT be more than one extension of the same
    type in a given extension block."
    """
    block = r.sub(2, min_length, max_length)
    items: list[tuple[int, memoryview]] = []
    seen: set[int] = set()
    while not block.at_end():
        ext_type = block.uint16()
        data = block.view(2)
        if ext_type in seen:
            raise IllegalParameterError(f"duplicate {_ext_name(ext_type)} extension")
        seen.add(ext_type)
        items.append((ext_type, data))
    return items


def _check_allowed(order: list[int], allowed: frozenset[int], message: str) -> None:
    """RFC 8446 §4.2: a recognised extension in the wrong message is illegal."""
    for ext_type in order:
        if ext_type in _WHERE and ext_type not in allowed:
            raise IllegalParameterError(
                f"{_ext_name(ext_type)} is not allowed in {message}"
            )


def _decode_extensions(
    items: list[tuple[int, memoryview]],
    table: dict[int, _Ext],
    allowed: frozenset[int],
    message: str,
) -> tuple[dict[str, Any], list[tuple[int, bytes]], list[int]]:
    """Field values, unrecognised extensions and received order of a block."""
    order = [ext_type for ext_type, _ in items]
    _check_allowed(order, allowed, message)
    values: dict[str, Any] = {}
    other: list[tuple[int, bytes]] = []
    for ext_type, data in items:
        ext = table.get(ext_type)
        if ext is None:
            other.append((ext_type, bytes(data)))
        else:
            values[ext.attr] = ext.parse(data)
    return values, other, order


def _present_extensions(msg: Any, table: dict[int, _Ext]) -> set[int]:
    """The extension types ``msg`` carries (what serialize() would write)."""
    present = {
        ext_type
        for ext_type, ext in table.items()
        if getattr(msg, ext.attr) not in (None, False)
    }
    present.update(ext_type for ext_type, _ in msg.other_extensions)
    return present


def _write_extensions(
    w: Writer,
    msg: Any,
    table: dict[int, _Ext],
    *,
    last: int | None = None,
    min_length: int = 0,
    max_length: int = 0xFFFF,
    optional_block: bool = False,
) -> None:
    """Write the extension block of ``msg``.

    Order: ``msg.extension_order`` first (so parsed messages round-trip),
    then the rest in table order followed by ``other_extensions``; ``last``
    (pre_shared_key in a ClientHello, RFC 8446 §4.2.11) always goes last.
    With ``optional_block`` (TLS 1.2 hellos, RFC 5246 §7.4.1.2) a message
    without extensions has no block at all.
    """
    encoded: dict[int, bytes] = {}
    for ext_type, ext in table.items():
        value = getattr(msg, ext.attr)
        if value is None or value is False:
            continue
        encoded[ext_type] = ext.serialize(value)
    for ext_type, data in msg.other_extensions:
        if ext_type in encoded:
            raise InternalError(f"{_ext_name(ext_type)} would be sent twice")
        encoded[ext_type] = data
    if not encoded and optional_block:
        return
    sequence = list(dict.fromkeys(t for t in msg.extension_order if t in encoded))
    if len(sequence) < len(encoded):
        sequence.extend(t for t in encoded if t not in sequence)
    if last is not None and last in encoded and sequence[-1] != last:
        sequence.remove(last)
        sequence.append(last)
    with w.prefixed(2, min_length, max_length):
        for ext_type in sequence:
            w.uint16(ext_type)
            w.vector(2, encoded[ext_type])


def _write_random(w: Writer, random: bytes) -> None:
    # RFC 8446 §4.1.2: Random is exactly 32 bytes.
    if len(random) != 32:
        raise InternalError(f"random must be 32 bytes, not {len(random)}")
    w.raw(random)


def _empty_body(body: bytes | memoryview, name: str) -> None:
    if len(body):
        raise DecodeError(f"{name} must have an empty body")


# ---------------------------------------------------------------------------
# TLS 1.3 messages (and the hellos shared with TLS 1.2).


@dataclass(kw_only=True, slots=True)
class ClientHello:
    """RFC 8446 §4.1.2 (and RFC 5246 §7.4.1.2)."""

    msg_type: ClassVar[HandshakeType] = HandshakeType.client_hello

    legacy_version: int = 0x0303
    random: bytes
    legacy_session_id: bytes = b""
    cipher_suites: list[int]
    legacy_compression_methods: bytes = b"\x00"
    server_name: str | None = None
    supported_versions: list[int] | None = None
    supported_groups: list[int] | None = None
    signature_algorithms: list[int] | None = None
    signature_algorithms_cert: list[int] | None = None
    key_share: list[KeyShareEntry] | None = None
    cookie: bytes | None = None
    alpn_protocols: list[bytes] | None = None
    record_size_limit: int | None = None
    psk_key_exchange_modes: list[int] | None = None
    pre_shared_key: OfferedPsks | None = None
    early_data: bool = False
    post_handshake_auth: bool = False
    extended_master_secret: bool = False
    renegotiation_info: bytes | None = None
    session_ticket: bytes | None = None
    next_protocol_negotiation: bool = False
    ec_point_formats: bytes | None = None
    other_extensions: list[tuple[int, bytes]] = field(default_factory=list)
    extension_order: list[int] = field(default_factory=list)

    @classmethod
    def parse(cls, body: bytes | memoryview) -> ClientHello:
        r = Reader(body)
        legacy_version = r.uint16()
        random = r.bytes(32)
        session_id = r.vector(1, 0, 32)  # legacy_session_id<0..32>
        cipher_suites = r.uint16_vector(2, 2, 0xFFFE)  # cipher_suites<2..2^16-2>
        compression = r.vector(1, 1, 0xFF)  # legacy_compression_methods<1..2^8-1>
        # RFC 5246 §7.4.1.2: a TLS 1.2 ClientHello may end here.
        items = [] if r.at_end() else _read_extensions(r)
        r.finish()
        values, other, order = _decode_extensions(
            items, _CLIENT_HELLO_EXTENSIONS, _ALLOWED["CH"], "ClientHello"
        )
        # RFC 8446 §4.2.11: pre_shared_key MUST be the last extension.
        if "pre_shared_key" in values and order[-1] != E.pre_shared_key:
            raise IllegalParameterError("pre_shared_key is not the last extension")
        return cls(
            legacy_version=legacy_version,
            random=random,
            legacy_session_id=session_id,
            cipher_suites=cipher_suites,
            legacy_compression_methods=compression,
            other_extensions=other,
            extension_order=order,
            **values,
        )

    def extension_types(self) -> set[int]:
        """The extensions this hello carries: a server may answer only these
        (RFC 8446 §4.2, RFC 5246 §7.4.1.4)."""
        return _present_extensions(self, _CLIENT_HELLO_EXTENSIONS)

    def serialize(self) -> bytes:
        w = Writer()
        w.uint16(self.legacy_version)
        _write_random(w, self.random)
        w.vector(1, self.legacy_session_id, 0, 32)
        w.uint16_vector(2, self.cipher_suites, 2, 0xFFFE)
        w.vector(1, self.legacy_compression_methods, 1, 0xFF)
        _write_extensions(
            w,
            self,
            _CLIENT_HELLO_EXTENSIONS,
            last=E.pre_shared_key,
            optional_block=True,
        )
        return w.getvalue()

    def binders_length(self) -> int:
        """Bytes at the end of the encoded message taken by the PSK binders.

        RFC 8446 §4.2.11.2: binders are computed over the ClientHello
        truncated before the binder list (``binders<33..2^16-1>``: 2 length
        bytes plus one length byte and the value per binder).  The binder
        list is always the tail because pre_shared_key is always serialized
        last.  0 when no PSK is offered (beware ``raw[:-0]``).
        """
        if self.pre_shared_key is None:
            return 0
        return 2 + sum(1 + len(b) for b in self.pre_shared_key.binders)


@dataclass(kw_only=True, slots=True)
class ServerHello:
    """RFC 8446 §4.1.3 / RFC 5246 §7.4.1.3; also the HelloRetryRequest.

    ``server_name_ack`` (an empty server_name extension, RFC 6066 §3) is an
    addition to the fields listed in INTERFACES.md: a TLS 1.2 server sends it.
    """

    msg_type: ClassVar[HandshakeType] = HandshakeType.server_hello

    legacy_version: int = 0x0303
    random: bytes
    legacy_session_id_echo: bytes = b""
    cipher_suite: int
    legacy_compression_method: int = 0
    supported_versions: int | None = None
    key_share: KeyShareEntry | None = None
    selected_group: int | None = None
    cookie: bytes | None = None
    pre_shared_key: int | None = None
    extended_master_secret: bool = False
    renegotiation_info: bytes | None = None
    alpn_protocol: bytes | None = None
    next_protocol_negotiation: list[bytes] | None = None
    session_ticket: bool = False
    ec_point_formats: bytes | None = None
    server_name_ack: bool = False
    other_extensions: list[tuple[int, bytes]] = field(default_factory=list)
    extension_order: list[int] = field(default_factory=list)

    @property
    def is_hello_retry_request(self) -> bool:
        """RFC 8446 §4.1.3: a HelloRetryRequest is a ServerHello with a fixed random."""
        return self.random == HELLO_RETRY_REQUEST_RANDOM

    @classmethod
    def parse(cls, body: bytes | memoryview) -> ServerHello:
        r = Reader(body)
        legacy_version = r.uint16()
        random = r.bytes(32)
        session_id = r.vector(1, 0, 32)  # legacy_session_id_echo<0..32>
        cipher_suite = r.uint16()
        compression = r.uint8()
        items = [] if r.at_end() else _read_extensions(r)
        r.finish()
        is_hrr = random == HELLO_RETRY_REQUEST_RANDOM
        table = _HELLO_RETRY_REQUEST_EXTENSIONS if is_hrr else _SERVER_HELLO_EXTENSIONS
        values, other, order = _decode_extensions(
            items, table, _ALLOWED_ANY_SH, "ServerHello"
        )
        # Now that the kind is known, apply its row of the RFC 8446 §4.2 table.
        if is_hrr:
            _check_allowed(order, _ALLOWED["HRR"], "HelloRetryRequest")
        elif values.get("supported_versions") == _TLS13:
            _check_allowed(order, _ALLOWED["SH"], "a TLS 1.3 ServerHello")
        else:
            _check_allowed(order, _ALLOWED["SH12"], "a TLS 1.2 ServerHello")
        return cls(
            legacy_version=legacy_version,
            random=random,
            legacy_session_id_echo=session_id,
            cipher_suite=cipher_suite,
            legacy_compression_method=compression,
            other_extensions=other,
            extension_order=order,
            **values,
        )

    def serialize(self) -> bytes:
        if self.is_hello_retry_request:
            if self.key_share is not None:
                raise InternalError("a HelloRetryRequest carries selected_group")
            table = _HELLO_RETRY_REQUEST_EXTENSIONS
        else:
            if self.selected_group is not None:
                raise InternalError("selected_group is for HelloRetryRequest only")
            table = _SERVER_HELLO_EXTENSIONS
        w = Writer()
        w.uint16(self.legacy_version)
        _write_random(w, self.random)
        w.vector(1, self.legacy_session_id_echo, 0, 32)
        w.uint16(self.cipher_suite)
        w.uint8(self.legacy_compression_method)
        _write_extensions(w, self, table, optional_block=True)
        return w.getvalue()


@dataclass(slots=True)
class EncryptedExtensions:
    """RFC 8446 §4.3.1: ``Extension extensions<0..2^16-1>``."""

    msg_type: ClassVar[HandshakeType] = HandshakeType.encrypted_extensions

    server_name_ack: bool = False
    supported_groups: list[int] | None = None
    alpn_protocol: bytes | None = None
    record_size_limit: int | None = None
    early_data: bool = False
    other_extensions: list[tuple[int, bytes]] = field(default_factory=list)
    extension_order: list[int] = field(default_factory=list)

    @classmethod
    def parse(cls, body: bytes | memoryview) -> EncryptedExtensions:
        r = Reader(body)
        items = _read_extensions(r)
        r.finish()
        values, other, order = _decode_extensions(
            items, _ENCRYPTED_EXTENSIONS, _ALLOWED["EE"], "EncryptedExtensions"
        )
        return cls(other_extensions=other, extension_order=order, **values)

    def serialize(self) -> bytes:
        w = Writer()
        _write_extensions(w, self, _ENCRYPTED_EXTENSIONS)
        return w.getvalue()


@dataclass(slots=True)
class CertificateRequest:
    """RFC 8446 §4.3.2 (the TLS 1.3 format).

    ``opaque certificate_request_context<0..2^8-1>; Extension
    extensions<2..2^16-1>``; signature_algorithms is mandatory.
    """

    msg_type: ClassVar[HandshakeType] = HandshakeType.certificate_request

    certificate_request_context: bytes
    signature_algorithms: list[int]
    signature_algorithms_cert: list[int] | None = None
    certificate_authorities: list[bytes] | None = None
    other_extensions: list[tuple[int, bytes]] = field(default_factory=list)
    extension_order: list[int] = field(default_factory=list)

    @classmethod
    def parse(cls, body: bytes | memoryview) -> CertificateRequest:
        r = Reader(body)
        context = r.vector(1, 0, 0xFF)
        items = _read_extensions(r, 2)
        r.finish()
        values, other, order = _decode_extensions(
            items,
            _CERTIFICATE_REQUEST_EXTENSIONS,
            _ALLOWED["CR"],
            "CertificateRequest",
        )
        if "signature_algorithms" not in values:
            raise MissingExtensionError(
                "CertificateRequest without signature_algorithms"
            )
        return cls(
            certificate_request_context=context,
            other_extensions=other,
            extension_order=order,
            **values,
        )

    def serialize(self) -> bytes:
        w = Writer()
        w.vector(1, self.certificate_request_context, 0, 0xFF)
        _write_extensions(w, self, _CERTIFICATE_REQUEST_EXTENSIONS, min_length=2)
        return w.getvalue()


@dataclass(slots=True)
class CertificateEntry:
    """RFC 8446 §4.4.2: one certificate and its (raw) extensions."""

    cert_data: bytes
    extensions: list[tuple[int, bytes]] = field(default_factory=list)


@dataclass(slots=True)
class Certificate:
    """RFC 8446 §4.4.2 (the TLS 1.3 format; TLS 1.2 is :class:`Certificate12`).

    ``opaque certificate_request_context<0..2^8-1>;
    CertificateEntry certificate_list<0..2^24-1>``, each entry
    ``opaque cert_data<1..2^24-1>; Extension extensions<0..2^16-1>``.
    Entry extensions are kept raw, in order; recognised ones other than
    status_request and signed_certificate_timestamp are illegal here.
    """

    msg_type: ClassVar[HandshakeType] = HandshakeType.certificate

    certificate_request_context: bytes = b""
    entries: list[CertificateEntry] = field(default_factory=list)

    @classmethod
    def parse(cls, body: bytes | memoryview) -> Certificate:
        r = Reader(body)
        context = r.vector(1, 0, 0xFF)
        certificates = r.sub(3)
        r.finish()
        entries = []
        while not certificates.at_end():
            cert_data = certificates.vector(3, 1)
            items = _read_extensions(certificates)
            _check_allowed([t for t, _ in items], _ALLOWED["CT"], "a CertificateEntry")
            entries.append(
                CertificateEntry(cert_data, [(t, bytes(d)) for t, d in items])
            )
        return cls(context, entries)

    def serialize(self) -> bytes:
        w = Writer()
        w.vector(1, self.certificate_request_context, 0, 0xFF)
        with w.prefixed(3):
            for entry in self.entries:
                w.vector(3, entry.cert_data, 1)
                with w.prefixed(2):
                    for ext_type, data in entry.extensions:
                        w.uint16(ext_type)
                        w.vector(2, data)
        return w.getvalue()


@dataclass(slots=True)
class CertificateVerify:
    """RFC 8446 §4.4.3 (same layout as TLS 1.2's DigitallySigned, RFC 5246 §4.7).

    ``SignatureScheme algorithm; opaque signature<0..2^16-1>``.
    """

    msg_type: ClassVar[HandshakeType] = HandshakeType.certificate_verify

    algorithm: int
    signature: bytes

    @classmethod
    def parse(cls, body: bytes | memoryview) -> CertificateVerify:
        r = Reader(body)
        algorithm = r.uint16()
        signature = r.vector(2)
        r.finish()
        return cls(algorithm, signature)

    def serialize(self) -> bytes:
        w = Writer()
        w.uint16(self.algorithm)
        w.vector(2, self.signature)
        return w.getvalue()


@dataclass(slots=True)
class Finished:
    """RFC 8446 §4.4.4 / RFC 5246 §7.4.9: ``opaque verify_data[Hash.length]``.

    The length depends on the negotiated hash (TLS 1.2: 12), so it is not
    checked here; the state machine compares in constant time.
    """

    msg_type: ClassVar[HandshakeType] = HandshakeType.finished

    verify_data: bytes

    @classmethod
    def parse(cls, body: bytes | memoryview) -> Finished:
        return cls(bytes(body))

    def serialize(self) -> bytes:
        return bytes(self.verify_data)


@dataclass(slots=True)
class NewSessionTicket:
    """RFC 8446 §4.6.1 (the TLS 1.3 format; TLS 1.2 is :class:`NewSessionTicket12`).

    ``extension_order`` is an addition to INTERFACES.md, for exact round trips.
    """

    msg_type: ClassVar[HandshakeType] = HandshakeType.new_session_ticket

    ticket_lifetime: int
    ticket_age_add: int
    ticket_nonce: bytes
    ticket: bytes
    max_early_data_size: int | None = None
    other_extensions: list[tuple[int, bytes]] = field(default_factory=list)
    extension_order: list[int] = field(default_factory=list)

    @classmethod
    def parse(cls, body: bytes | memoryview) -> NewSessionTicket:
        r = Reader(body)
        lifetime = r.uint32()
        age_add = r.uint32()
        nonce = r.vector(1, 0, 255)  # ticket_nonce<0..255>
        ticket = r.vector(2, 1)  # ticket<1..2^16-1>
        items = _read_extensions(r, 0, 0xFFFE)  # extensions<0..2^16-2>
        r.finish()
        values, other, order = _decode_extensions(
            items, _NEW_SESSION_TICKET_EXTENSIONS, _ALLOWED["NST"], "NewSessionTicket"
        )
        return cls(
            ticket_lifetime=lifetime,
            ticket_age_add=age_add,
            ticket_nonce=nonce,
            ticket=ticket,
            other_extensions=other,
            extension_order=order,
            **values,
        )

    def serialize(self) -> bytes:
        w = Writer()
        w.uint32(self.ticket_lifetime)
        w.uint32(self.ticket_age_add)
        w.vector(1, self.ticket_nonce, 0, 255)
        w.vector(2, self.ticket, 1)
        _write_extensions(w, self, _NEW_SESSION_TICKET_EXTENSIONS, max_length=0xFFFE)
        return w.getvalue()


@dataclass(slots=True)
class KeyUpdate:
    """RFC 8446 §4.6.3: ``KeyUpdateRequest request_update`` (0 or 1)."""

    msg_type: ClassVar[HandshakeType] = HandshakeType.key_update

    request_update: int

    @classmethod
    def parse(cls, body: bytes | memoryview) -> KeyUpdate:
        r = Reader(body)
        request = r.uint8()
        r.finish()
        # RFC 8446 §4.6.3: any other value is an illegal_parameter.
        if request not in (0, 1):
            raise IllegalParameterError(f"KeyUpdate request_update {request}")
        return cls(request)

    def serialize(self) -> bytes:
        if self.request_update not in (0, 1):
            raise InternalError(f"KeyUpdate request_update {self.request_update}")
        return bytes((self.request_update,))


@dataclass(slots=True)
class EndOfEarlyData:
    """RFC 8446 §4.5: ``struct {} EndOfEarlyData``."""

    msg_type: ClassVar[HandshakeType] = HandshakeType.end_of_early_data

    @classmethod
    def parse(cls, body: bytes | memoryview) -> EndOfEarlyData:
        _empty_body(body, "EndOfEarlyData")
        return cls()

    def serialize(self) -> bytes:
        return b""


# ---------------------------------------------------------------------------
# TLS 1.2 messages.


@dataclass(slots=True)
class Certificate12:
    """RFC 5246 §7.4.2: ``ASN.1Cert certificate_list<0..2^24-1>``, each <1..2^24-1>."""

    msg_type: ClassVar[HandshakeType] = HandshakeType.certificate

    certificates: list[bytes] = field(default_factory=list)

    @classmethod
    def parse(cls, body: bytes | memoryview) -> Certificate12:
        r = Reader(body)
        certificates = r.sub(3)
        r.finish()
        der = []
        while not certificates.at_end():
            der.append(certificates.vector(3, 1))
        return cls(der)

    def serialize(self) -> bytes:
        w = Writer()
        with w.prefixed(3):
            for cert in self.certificates:
                w.vector(3, cert, 1)
        return w.getvalue()


# RFC 8422 §5.4: ECCurveType named_curve; explicit curves are deprecated.
_NAMED_CURVE = 3


@dataclass(slots=True)
class ServerKeyExchange12:
    """RFC 8422 §5.4: ServerECDHParams followed by a TLS 1.2 DigitallySigned.

    ``ECCurveType curve_type (3 = named_curve); NamedCurve namedcurve;
    opaque point<1..2^8-1>; SignatureAndHashAlgorithm algorithm;
    opaque signature<0..2^16-1>``.
    """

    msg_type: ClassVar[HandshakeType] = HandshakeType.server_key_exchange

    named_curve: int
    public: bytes
    algorithm: int
    signature: bytes

    @classmethod
    def parse(cls, body: bytes | memoryview) -> ServerKeyExchange12:
        r = Reader(body)
        curve_type = r.uint8()
        if curve_type != _NAMED_CURVE:
            raise IllegalParameterError(f"ECCurveType {curve_type} is not named_curve")
        named_curve = r.uint16()
        public = r.vector(1, 1)
        algorithm = r.uint16()
        signature = r.vector(2)
        r.finish()
        return cls(named_curve, public, algorithm, signature)

    def signed_params(self) -> bytes:
        """The encoded ServerECDHParams.

        RFC 8422 §5.4: the signature covers ``client_random + server_random
        + params``; the caller prepends the two randoms.
        """
        w = Writer()
        w.uint8(_NAMED_CURVE)
        w.uint16(self.named_curve)
        w.vector(1, self.public, 1)
        return w.getvalue()

    def serialize(self) -> bytes:
        w = Writer()
        w.raw(self.signed_params())
        w.uint16(self.algorithm)
        w.vector(2, self.signature)
        return w.getvalue()


@dataclass(slots=True)
class ServerHelloDone12:
    """RFC 5246 §7.4.5: ``struct {} ServerHelloDone``."""

    msg_type: ClassVar[HandshakeType] = HandshakeType.server_hello_done

    @classmethod
    def parse(cls, body: bytes | memoryview) -> ServerHelloDone12:
        _empty_body(body, "ServerHelloDone")
        return cls()

    def serialize(self) -> bytes:
        return b""


@dataclass(slots=True)
class ClientKeyExchange12:
    """RFC 8422 §5.7: ClientECDiffieHellmanPublic, ``opaque point<1..2^8-1>``."""

    msg_type: ClassVar[HandshakeType] = HandshakeType.client_key_exchange

    public: bytes

    @classmethod
    def parse(cls, body: bytes | memoryview) -> ClientKeyExchange12:
        r = Reader(body)
        public = r.vector(1, 1)
        r.finish()
        return cls(public)

    def serialize(self) -> bytes:
        w = Writer()
        w.vector(1, self.public, 1)
        return w.getvalue()


@dataclass(slots=True)
class CertificateRequest12:
    """RFC 5246 §7.4.4.

    ``ClientCertificateType certificate_types<1..2^8-1>;
    SignatureAndHashAlgorithm supported_signature_algorithms<2..2^16-2>;
    DistinguishedName certificate_authorities<0..2^16-1>`` (each <1..2^16-1>).
    """

    msg_type: ClassVar[HandshakeType] = HandshakeType.certificate_request

    certificate_types: bytes
    signature_algorithms: list[int]
    certificate_authorities: list[bytes] = field(default_factory=list)

    @classmethod
    def parse(cls, body: bytes | memoryview) -> CertificateRequest12:
        r = Reader(body)
        types = r.vector(1, 1)
        algorithms = r.uint16_vector(2, 2, 0xFFFE)
        names = r.sub(2)
        r.finish()
        authorities = []
        while not names.at_end():
            authorities.append(names.vector(2, 1))
        return cls(types, algorithms, authorities)

    def serialize(self) -> bytes:
        w = Writer()
        w.vector(1, self.certificate_types, 1)
        w.uint16_vector(2, self.signature_algorithms, 2, 0xFFFE)
        with w.prefixed(2):
            for name in self.certificate_authorities:
                w.vector(2, name, 1)
        return w.getvalue()


@dataclass(slots=True)
class NewSessionTicket12:
    """RFC 5077 §3.3: ``uint32 ticket_lifetime_hint; opaque ticket<0..2^16-1>``."""

    msg_type: ClassVar[HandshakeType] = HandshakeType.new_session_ticket

    lifetime_hint: int
    ticket: bytes

    @classmethod
    def parse(cls, body: bytes | memoryview) -> NewSessionTicket12:
        r = Reader(body)
        lifetime_hint = r.uint32()
        ticket = r.vector(2)
        r.finish()
        return cls(lifetime_hint, ticket)

    def serialize(self) -> bytes:
        w = Writer()
        w.uint32(self.lifetime_hint)
        w.vector(2, self.ticket)
        return w.getvalue()


@dataclass(slots=True)
class NextProtocol:
    """draft-agl-tls-nextprotoneg-04 §3.

    ``opaque selected_protocol<0..255>; opaque padding<0..255>``; the padding
    is ``32 - ((len(selected_protocol) + 2) % 32)`` zero bytes, hiding the
    length of the choice.  parse() insists on zeros but accepts any padding
    length; serialize() always writes the prescribed length.
    """

    msg_type: ClassVar[HandshakeType] = HandshakeType.next_protocol

    selected_protocol: bytes

    @classmethod
    def parse(cls, body: bytes | memoryview) -> NextProtocol:
        r = Reader(body)
        selected = r.vector(1, 0, 255)
        padding = r.view(1, 0, 255)
        r.finish()
        if padding != bytes(len(padding)):
            raise DecodeError("NextProtocol padding is not all zeros")
        return cls(selected)

    def serialize(self) -> bytes:
        w = Writer()
        w.vector(1, self.selected_protocol, 0, 255)
        w.vector(1, bytes(32 - ((len(self.selected_protocol) + 2) % 32)))
        return w.getvalue()


@dataclass(slots=True)
class HelloRequest:
    """RFC 5246 §7.4.1.1: ``struct {} HelloRequest``."""

    msg_type: ClassVar[HandshakeType] = HandshakeType.hello_request

    @classmethod
    def parse(cls, body: bytes | memoryview) -> HelloRequest:
        _empty_body(body, "HelloRequest")
        return cls()

    def serialize(self) -> bytes:
        return b""


#: Message classes by handshake type, per protocol version.  The state
#: machines may use these to parse; unknown types are theirs to refuse.
TLS13_MESSAGES: dict[int, type] = {
    cls.msg_type: cls
    for cls in (
        ClientHello,
        ServerHello,
        NewSessionTicket,
        EndOfEarlyData,
        EncryptedExtensions,
        Certificate,
        CertificateRequest,
        CertificateVerify,
        Finished,
        KeyUpdate,
    )
}
TLS12_MESSAGES: dict[int, type] = {
    cls.msg_type: cls
    for cls in (
        HelloRequest,
        ClientHello,
        ServerHello,
        Certificate12,
        ServerKeyExchange12,
        CertificateRequest12,
        ServerHelloDone12,
        CertificateVerify,
        ClientKeyExchange12,
        Finished,
        NewSessionTicket12,
        NextProtocol,
    )
}


#: Any handshake message class of this module (for annotations).
HandshakeMessage: TypeAlias = (
    ClientHello
    | ServerHello
    | EncryptedExtensions
    | CertificateRequest
    | Certificate
    | CertificateVerify
    | Finished
    | NewSessionTicket
    | KeyUpdate
    | EndOfEarlyData
    | Certificate12
    | ServerKeyExchange12
    | ServerHelloDone12
    | ClientKeyExchange12
    | CertificateRequest12
    | NewSessionTicket12
    | NextProtocol
    | HelloRequest
)


def encode_handshake(msg: HandshakeMessage) -> bytes:
    """The message with its RFC 8446 §4 header: ``msg_type`` and uint24 length."""
    body = msg.serialize()
    if len(body) > 0xFFFFFF:
        raise InternalError("handshake message longer than 2^24-1 bytes")
    return bytes((msg.msg_type,)) + len(body).to_bytes(3, "big") + body


# ---------------------------------------------------------------------------
# Reassembly.


class HandshakeReassembler:
    """Cut a stream of handshake record payloads into messages.

    RFC 8446 §5.1: handshake messages may be coalesced into one record or
    fragmented across several.  ``feed()`` takes record payloads in order;
    ``pop()`` returns ``(msg_type, raw, body)`` where ``raw`` includes the
    4-byte header (what the transcript hashes) and ``body`` is what
    ``parse()`` takes.

    A declared length above ``max_message_size`` raises
    :class:`LimitExceededError` as soon as the 4-byte header is complete and
    before any of the body is buffered, so a peer cannot make us hold more
    than ``max_message_size + 4`` bytes of a message.  The alert is
    ``illegal_parameter``: the length is well-formed (any uint24 is valid
    syntax, which is what ``decode_error`` is about, RFC 8446 §6.2) but its
    value is one we do not accept, which is what ``illegal_parameter``
    ("conform[s] to the formal protocol syntax but [is] otherwise
    incorrect") describes.
    """

    __slots__ = ("_buffer", "_expected", "_max", "_ready")

    def __init__(self, max_message_size: int) -> None:
        self._max = max_message_size
        self._buffer = bytearray()
        self._expected = 0  # total size of the message in _buffer, once known
        # Made on first use (see feed): an empty deque is 760 bytes, and an
        # idle connection's reassembler is usually empty.
        self._ready: deque[tuple[int, bytes, bytes]] | None = None

    @property
    def has_partial(self) -> bool:
        """Bytes are buffered that do not yet make a whole message.

        RFC 8446 §5.1: a key change must fall on a record boundary that is
        also a message boundary; the state machine treats a key change with
        a partial message buffered as an unexpected_message.
        """
        return bool(self._buffer)

    @property
    def has_pending(self) -> bool:
        """Whole messages are waiting for :meth:`pop`.

        After a message that changes the read keys, a pending message arrived
        in the same record under the old keys (RFC 8446 §5.1).
        """
        return bool(self._ready)

    def _header_length(self, header: bytes | bytearray | memoryview) -> int:
        length = int.from_bytes(header[1:4], "big")
        if length > self._max:
            raise LimitExceededError(
                f"handshake message of {length} bytes exceeds the limit of {self._max}",
                AlertDescription.illegal_parameter,
            )
        return 4 + length

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        """Add one handshake record payload (or any piece of the stream)."""
        view = memoryview(data)
        buf = self._buffer
        ready = self._ready
        if ready is None:
            ready = self._ready = deque()
        while view:
            if not buf:
                # Fast path: whole messages straight out of the record.
                if len(view) < 4:
                    buf += view
                    return
                total = self._header_length(view[:4])
                if len(view) >= total:
                    raw = bytes(view[:total])
                    ready.append((raw[0], raw, raw[4:]))
                    view = view[total:]
                    continue
                buf += view[:4]
                view = view[4:]
                self._expected = total
            elif len(buf) < 4:
                need = 4 - len(buf)
                buf += view[:need]
                view = view[need:]
                if len(buf) < 4:
                    return
                self._expected = self._header_length(buf)
            need = self._expected - len(buf)
            buf += view[:need]
            view = view[need:]
            if len(buf) == self._expected:
                raw = bytes(buf)
                ready.append((raw[0], raw, raw[4:]))
                buf.clear()
                self._expected = 0

    def pop(self) -> tuple[int, bytes, bytes] | None:
        """The next complete message, or None if there is none yet."""
        if self._ready:
            return self._ready.popleft()
        return None
