"""Handshake messages of TLS 1.3 (RFC 8446 §4) and TLS 1.2 (RFC 5246 §7.4).

The messages only TLS 1.2 has live in :mod:`.messages12` and are
re-exported here; this module has the rest (the hellos, CertificateVerify
and Finished are shared by both versions), the per-version dispatch tables,
:func:`encode_handshake` and :class:`HandshakeReassembler`.

One dataclass per message, each with a ``parse(body)`` classmethod and a
``serialize()`` method that are exact mirrors: ``serialize()`` of a parsed
message gives back the bytes it came from whenever the input was canonical
(see below).  Bodies exclude the 4-byte handshake header; :func:`encode_handshake`
adds it and :class:`HandshakeReassembler` strips it on the way in.

Extensions are table driven; the codecs, the per-message tables and the
RFC 8446 §4.2 "which message may carry which extension" table live in
:mod:`.extensions`, which also defines the entry types re-exported here
(:class:`KeyShareEntry`, :class:`PskIdentity`, :class:`OfferedPsks`).

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

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import ClassVar, TypeAlias

from ..constants import (
    AlertDescription,
    HandshakeType,
)
from ..constants import ExtensionType as E
from ..errors import (
    IllegalParameterError,
    InternalError,
    LimitExceededError,
    MissingExtensionError,
)
from .buffer import Reader, Writer
from .extensions import (  # re-exports KeyShareEntry, PskIdentity, OfferedPsks
    _ALLOWED,
    _ALLOWED_ANY_SH,
    _CERTIFICATE_REQUEST_EXTENSIONS,
    _CLIENT_HELLO_EXTENSIONS,
    _ENCRYPTED_EXTENSIONS,
    _HELLO_RETRY_REQUEST_EXTENSIONS,
    _NEW_SESSION_TICKET_EXTENSIONS,
    _SERVER_HELLO_EXTENSIONS,
    KeyShareEntry,
    OfferedPsks,
    PskIdentity,
    _check_allowed,
    _decode_extensions,
    _present_extensions,
    _read_extensions,
    _write_extensions,
)
from .extensions import (
    _WHERE as _WHERE,  # re-exported: tests read messages._WHERE
)
from .messages12 import (  # re-exported: the TLS 1.2-only messages
    Certificate12,
    CertificateRequest12,
    ClientKeyExchange12,
    HelloRequest,
    NewSessionTicket12,
    NextProtocol,
    ServerHelloDone12,
    ServerKeyExchange12,
    _empty_body,
)

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


def _write_random(w: Writer, random: bytes) -> None:
    # RFC 8446 §4.1.2: Random is exactly 32 bytes.
    if len(random) != 32:
        raise InternalError(f"random must be 32 bytes, not {len(random)}")
    w.raw(random)


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
    # Not in repr(): a Finished value (RFC 5746 §3.4) and a ticket.
    renegotiation_info: bytes | None = field(default=None, repr=False)
    session_ticket: bytes | None = field(default=None, repr=False)
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
    # Not in repr(): both Finished values (RFC 5746 §3.4).
    renegotiation_info: bytes | None = field(default=None, repr=False)
    alpn_protocol: bytes | None = None
    next_protocol_negotiation: list[bytes] | None = None
    session_ticket: bool = False
    ec_point_formats: bytes | None = None
    server_name_ack: bool = False
    #: RFC 8449 §4: the TLS 1.2 server's limit (TLS 1.3 sends it encrypted).
    record_size_limit: int | None = None
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

    verify_data: bytes = field(repr=False)

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
    # Not in repr(): the ticket, and the nonce its PSK is derived with.
    ticket_nonce: bytes = field(repr=False)
    ticket: bytes = field(repr=False)
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
    than ``max_message_size + 4`` bytes of a message.  ``limits`` gives some
    message types a bound of their own instead (a server holds a ClientHello
    to a much smaller bound than a client Certificate).  The alert is
    ``illegal_parameter``: the length is well-formed (any uint24 is valid
    syntax, which is what ``decode_error`` is about, RFC 8446 §6.2) but its
    value is one we do not accept, which is what ``illegal_parameter``
    ("conform[s] to the formal protocol syntax but [is] otherwise
    incorrect") describes, and what OpenSSL and BoringSSL send.
    """

    __slots__ = ("_buffer", "_expected", "_limits", "_max", "_ready")

    def __init__(
        self, max_message_size: int, limits: Mapping[int, int] | None = None
    ) -> None:
        self._max = max_message_size
        self._limits = dict(limits) if limits else None
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
        limits = self._limits
        limit = self._max if limits is None else limits.get(header[0], self._max)
        if length > limit:
            msg_type = header[0]
            name = (
                HandshakeType(msg_type).name
                if msg_type in HandshakeType._value2member_map_
                else f"type {msg_type}"
            )
            raise LimitExceededError(
                f"handshake message {name} of {length} bytes exceeds the limit "
                f"of {limit}",
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
