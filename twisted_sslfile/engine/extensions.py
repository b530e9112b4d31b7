"""TLS extensions: codecs, per-message tables and extension-block handling.

Split out of :mod:`.messages` (which keeps the handshake message dataclasses
and re-exports everything public defined here) so that the extension
machinery, the largest table-driven part of the handshake codec, lives in one
place.

Extensions are table driven rather than an if/elif chain:

* every extension the engine understands has a parse/serialize pair of
  functions, bound to a dataclass field by an :class:`_Ext` entry;
* every message with extensions has a table ``{type: _Ext}`` whose order is
  also the canonical order used when serializing a message built in code
  (it extends the order of RFC 8448's traces, so those are canonical);
* :data:`_WHERE` transcribes RFC 8446 §4.2's "which message may carry which
  extension" table (plus the TLS 1.2 ServerHello extensions), and
  :data:`_ALLOWED` is its inverse, per message kind.  A recognised extension
  in a message that may not carry it is an ``illegal_parameter``; an
  unrecognised one is kept, raw, in ``other_extensions``.

:func:`_read_extensions`, :func:`_decode_extensions`,
:func:`_present_extensions` and :func:`_write_extensions` are the generic
block reader/writer the message classes in :mod:`.messages` call with their
table.  The small entry types carried by extensions (:class:`KeyShareEntry`,
:class:`PskIdentity`, :class:`OfferedPsks`) live here too, so that this module
depends only on :mod:`.buffer` and :mod:`.messages` imports from it, never the
other way round.

Errors follow :mod:`.messages`: malformed input raises :class:`DecodeError`;
well-formed but forbidden values raise :class:`IllegalParameterError`; values
that do not fit when *serializing* are our own bugs and raise
:class:`InternalError`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..constants import ExtensionType, NameType
from ..constants import ExtensionType as E
from ..errors import DecodeError, IllegalParameterError, InternalError
from .buffer import Reader, Writer

__all__ = [
    "KeyShareEntry",
    "OfferedPsks",
    "PskIdentity",
]


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
#: The longest host name: 253 characters of DNS name, 255 with a trailing
#: dot and room to spare (RFC 1035 §2.3.4; OpenSSL's TLSEXT_MAXLEN_host_name).
_MAX_HOST_NAME = 255


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
    if len(host) > _MAX_HOST_NAME:
        raise IllegalParameterError(
            f"server_name host_name is {len(host)} bytes long; a host name has "
            f"at most {_MAX_HOST_NAME}"
        )
    # RFC 6066 §3 asks clients for an LDH / A-label name without a trailing
    # dot, but says nothing of what a server does with another.  OpenSSL
    # and BoringSSL accept any name without a NUL byte (clients do send
    # "example.com." and underscored internal names), so we accept printable
    # ASCII as it came: it selects a certificate when it normalises to a name
    # one holds, and otherwise the default one (docs/security.rst).
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
    """RFC 8446 §4.2.11: ``opaque identity<1..2^16-1>; uint32 ticket age``.

    The identity (a ticket) is not shown by ``repr()``.
    """

    identity: bytes = field(repr=False)
    obfuscated_ticket_age: int


@dataclass(slots=True)
class OfferedPsks:
    """RFC 8446 §4.2.11: the ClientHello ``pre_shared_key`` extension body.

    The binders (HMACs under the PSK) are not shown by ``repr()``.
    """

    identities: list[PskIdentity]
    binders: list[bytes] = field(repr=False)


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
    """Binds an extension type to a message field and its codec.

    ``kept``: the value comes from the configuration, so the same few values
    are encoded on every handshake; their encodings are kept
    (:func:`_encoded`).
    """

    attr: str
    parse: Callable[[memoryview], Any]
    serialize: Callable[[Any], bytes]
    kept: bool = False


# Encodings of configuration-derived extension values, by (serializer,
# value): a ClientHello's lists of groups, schemes and versions are the same
# for every connection of a Context, and encoding them again cost about a
# third of building the ClientHello.  A pure function's results, bounded:
# emptied when full.  Values from the connection (key shares, PSKs,
# cookies) are never kept.
_ENCODED: dict[tuple[Callable[[Any], bytes], Any], bytes] = {}
_MAX_ENCODED = 256


def _encoded(ext: _Ext, value: Any) -> bytes:
    """``ext.serialize(value)``, kept when ``ext.kept``."""
    if not ext.kept:
        return ext.serialize(value)
    key = (ext.serialize, tuple(value) if isinstance(value, list) else value)
    data = _ENCODED.get(key)
    if data is None:
        data = ext.serialize(value)
        if len(_ENCODED) >= _MAX_ENCODED:
            _ENCODED.clear()
        _ENCODED[key] = data
    return data


# RFC 8446 §4.2 table (plus record_size_limit, RFC 8449; padding, RFC 7685):
# which messages may carry each recognised extension.  "SH12" is the TLS 1.2
# ServerHello (RFC 6066, 7301, 7627, 5746, 5077, 8422, 8449, NPN draft); the
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
        E.record_size_limit: "CH EE SH12",
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
    E.supported_groups: _Ext("supported_groups", *_SUPPORTED_GROUPS, kept=True),
    E.ec_point_formats: _Ext("ec_point_formats", *_EC_POINT_FORMATS, kept=True),
    E.session_ticket: _Ext("session_ticket", _parse_raw, _serialize_raw),
    E.next_protocol_negotiation: _Ext("next_protocol_negotiation", *_FLAG),
    E.application_layer_protocol_negotiation: _Ext(
        "alpn_protocols", _parse_alpn_list, _serialize_alpn_list, kept=True
    ),
    E.key_share: _Ext(
        "key_share", _parse_key_share_client, _serialize_key_share_client
    ),
    E.early_data: _Ext("early_data", *_FLAG),
    E.supported_versions: _Ext(
        "supported_versions", *_SUPPORTED_VERSIONS_CH, kept=True
    ),
    E.signature_algorithms: _Ext(
        "signature_algorithms", *_SIGNATURE_ALGORITHMS, kept=True
    ),
    E.signature_algorithms_cert: _Ext(
        "signature_algorithms_cert", *_SIGNATURE_ALGORITHMS, kept=True
    ),
    E.cookie: _Ext("cookie", *_COOKIE),
    E.psk_key_exchange_modes: _Ext(
        "psk_key_exchange_modes", _parse_psk_modes, _serialize_psk_modes, kept=True
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
    # RFC 8449 §4: a TLS 1.2 server answers here (TLS 1.3: EncryptedExtensions).
    E.record_size_limit: _Ext(
        "record_size_limit", _parse_record_size_limit, _serialize_record_size_limit
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
        encoded[ext_type] = _encoded(ext, value)
    for ext_type, data in msg.other_extensions:
        if ext_type in encoded:
            raise InternalError(f"{_ext_name(ext_type)} would be sent twice")
        encoded[ext_type] = data
    if not encoded:
        # The common case of no extensions at all, without the ordering work.
        if not optional_block:
            w.vector(2, b"", min_length, max_length)
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
