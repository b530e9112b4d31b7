"""The record layer: framing, fragmentation and AEAD protection of records.

This is the hot path of the library: every byte of application data passes
through :meth:`RecordProtection.seal` on the way out and
:meth:`RecordLayer.next_record` / :meth:`RecordProtection.open` on the way in.
The rules that keep it fast:

* The AEAD object is built once per key; the IV is kept as an ``int`` so the
  per-record nonce is one XOR and one ``to_bytes`` (RFC 8446 §5.3).
* Inbound ciphertext is never copied out of the receive buffer: the AEAD
  reads it through a ``memoryview`` slice, and the header slice is the TLS 1.3
  additional data as is.  The plaintext handed up is ``bytes`` the caller
  owns: what ``decrypt`` returned (TLS 1.2), or that cut before the inner
  content type (TLS 1.3, one copy).  ``decrypt_into`` a reused buffer was
  measured and is no faster, since the result must still become ``bytes``.
* Outbound, each record costs one copy of the plaintext at most (TLS 1.3
  appends the inner content type, so the plaintext has to be joined with it
  once) plus the ciphertext the AEAD allocates; the record handed out is
  ``bytes`` because Twisted's ``write``/``writeSequence`` accept nothing
  else.  ``encrypt_into`` a pre-sized ``bytearray`` was measured and is
  slower here: the ``bytearray`` then has to be turned into ``bytes`` for the
  transport, which is the same copy plus a zero-filled allocation
  (bench/bench_record.py prints both).

Errors on peer input are :class:`~twisted_sslfile.errors.TLSError`
subclasses with the alert of the RFC section that applies; once the layer has
raised one it stays failed (a fatal alert ends the connection, RFC 8446 §6.2)
and :attr:`RecordLayer.rejected_bytes` holds the raw bytes that were refused,
for adapters that want to recognise, say, plain HTTP on a TLS port.
"""

from __future__ import annotations

import abc
from typing import NamedTuple

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ..constants import (
    MAX_CIPHERTEXT_TLS12,
    MAX_CIPHERTEXT_TLS13,
    MAX_PLAINTEXT,
    RECORD_HEADER_SIZE,
    CipherSuite,
    ContentType,
    ProtocolVersion,
)
from ..errors import (
    BadRecordMacError,
    DecodeError,
    IllegalParameterError,
    InternalError,
    RecordOverflowError,
    TLSError,
    UnexpectedMessageError,
)
from .suites import CIPHER_SUITES

__all__ = [
    "Record",
    "RecordLayer",
    "RecordProtection",
    "TLS12Protection",
    "TLS13Protection",
    "plaintext_limit",
]

_CCS = ContentType.change_cipher_spec.value
_ALERT = ContentType.alert.value
_HANDSHAKE = ContentType.handshake.value
_APPLICATION_DATA = ContentType.application_data.value

#: RFC 8446 §5 / RFC 5246 §6.2.1: the only record types either version knows.
_CONTENT_TYPES = frozenset((_CCS, _ALERT, _HANDSHAKE, _APPLICATION_DATA))
#: RFC 8446 §5.2: inner types of a protected TLS 1.3 record.  A protected
#: change_cipher_spec is an unexpected_message (RFC 8446 §5).
_TLS13_INNER_TYPES = frozenset((_ALERT, _HANDSHAKE, _APPLICATION_DATA))
#: RFC 8446 §5.1 / RFC 5246 §6.2.1: types whose fragments may not be empty.
_NONEMPTY_TYPES = frozenset((_ALERT, _HANDSHAKE))

#: RFC 8446 §5.3: sequence numbers are 64 bits and must not wrap.
_SEQUENCE_LIMIT = 1 << 64
#: Poly1305 and GCM tags are both 16 bytes.
_TAG_SIZE = 16
#: RFC 5288 §3: the explicit part of the TLS 1.2 GCM nonce.
_EXPLICIT_NONCE_SIZE = 8
#: RFC 8446 §5.5: rekey long before 2^24.5 full records under AES-GCM.  The
#: same bound is used for TLS 1.2 GCM (one key per connection there, so the
#: Connection renegotiates or closes) and, harmlessly early, for ChaCha20.
_REKEY_AFTER_GCM = 1 << 24
_REKEY_AFTER_CHACHA = 1 << 60

#: One bytes object per content type value, so sealing does not build it.
_TYPE_BYTE = tuple(bytes((i,)) for i in range(256))

# suite -> (AEAD class, key length).  The crypto helper's suites.py will own
# the full table; the record layer only needs these two facts and must not
# wait for it.


def plaintext_limit(record_size_limit: int, *, tls13: bool) -> int:
    """Content bytes per record allowed by a ``record_size_limit`` value.

    RFC 8449 §4: values below 64 are an illegal_parameter; in TLS 1.3 the
    limit counts the inner content type byte (and any padding), so the
    content may use one byte less; nothing may exceed the protocol's 2^14.
    The result is what :attr:`RecordLayer.write_limit` (peer's value) and
    :attr:`RecordLayer.max_plaintext` (our advertised value) take.
    """
    if record_size_limit < 64:
        raise IllegalParameterError(
            f"record_size_limit {record_size_limit} is below 64 (RFC 8449 §4)"
        )
    return min(MAX_PLAINTEXT, record_size_limit - 1 if tls13 else record_size_limit)


class Record(NamedTuple):
    """One record as the layer above sees it: the true content type and data.

    ``payload`` is ``bytes`` that belong to this record alone (never a view
    of the receive buffer or of a reused scratch buffer), so it stays valid
    however the layer's buffers change, and ``bytes(record.payload)`` costs
    nothing.  In TLS 1.3 it is the decrypted inner plaintext cut before the
    content type: one copy, which the application's immutable ``bytes``
    needs anyway (bench/bench_record.py measures the alternatives).

    ``protected`` says whether the record came through the read protection;
    the Connection needs it to tell the unprotected TLS 1.3 compatibility
    change_cipher_spec (allowed) from a protected one (RFC 8446 §5).

    A named tuple rather than a frozen dataclass: it is as immutable, and
    building one per received record costs half as much.
    """

    content_type: int
    payload: bytes
    protected: bool = False


class RecordProtection(abc.ABC):
    """The AEAD state of one direction under one key.

    A new key always comes with a new protection object, so the sequence
    number starts at zero exactly when RFC 8446 §5.3 / RFC 5246 §6.1 say it
    does.  ``sequence`` is the number of the next record; tests may set it.
    """

    __slots__ = ("max_fragment", "padding_block", "rekey_after", "sequence", "tls13")

    #: RFC 8446 §5.2 / RFC 5246 §6.2.3: the largest TLSCiphertext.length.
    max_fragment: int
    #: TLS 1.3 only: pad the inner plaintext to a multiple of this (0: none).
    padding_block: int
    #: Sequence number from which :attr:`RecordLayer.should_rekey` is true.
    rekey_after: int
    sequence: int
    tls13: bool

    @abc.abstractmethod
    def seal(
        self,
        content_type: int,
        plaintext: bytes | bytearray | memoryview,
        limit: int = MAX_PLAINTEXT,
    ) -> bytes:
        """Protect one record's worth of ``plaintext``; return the wire record.

        ``limit`` is the largest content the peer accepts per record; TLS 1.3
        padding never takes the inner plaintext past ``limit + 1`` (RFC 8449
        §4 counts the type byte and padding).  The caller has already cut
        ``plaintext`` to at most ``limit`` bytes.
        """

    @abc.abstractmethod
    def open(
        self,
        content_type: int,
        header: memoryview,
        fragment: memoryview,
        max_plaintext: int,
    ) -> Record:
        """Authenticate and decrypt one record.

        ``header`` is the 5-byte record header as received, ``fragment`` the
        ``header[3:5]`` bytes that follow it.  ``max_plaintext`` is the
        content limit we advertised; more is a record_overflow.
        """

    def _exhausted(self) -> TLSError:
        # RFC 8446 §5.3: "If a TLS implementation would need to wrap a
        # sequence number, it MUST either rekey or terminate the connection."
        # Reaching this means the Connection did not rekey: a local failure.
        return InternalError("record sequence number exhausted (2^64 records)")


class TLS13Protection(RecordProtection):
    """TLS 1.3 record protection (RFC 8446 §5.2-5.4).

    Nonce: the 12-byte IV XOR the sequence number, left-padded.  The wire
    record is always ``application_data``/0x0303 outside; the true type rides
    at the end of the encrypted inner plaintext, followed by optional zero
    padding.  The additional data is the record header itself.
    """

    __slots__ = ("_aead", "_iv")

    def __init__(
        self,
        suite: CipherSuite | int,
        key: bytes,
        iv: bytes,
        padding_block: int = 0,
    ) -> None:
        try:
            info = CIPHER_SUITES[suite]  # type: ignore[index]
            if not info.tls13:
                raise KeyError(suite)
            aead_class, key_length = info.aead, info.key_length
        except KeyError:
            raise ValueError(f"{suite!r} is not a TLS 1.3 cipher suite") from None
        if len(key) != key_length or len(iv) != 12:
            raise ValueError(
                f"TLS 1.3 {aead_class.__name__} needs a {key_length}-byte key and "
                f"a 12-byte IV, got {len(key)} and {len(iv)}"
            )
        if padding_block < 0:
            raise ValueError("padding_block must be >= 0")
        self._aead = aead_class(key)
        self._iv = int.from_bytes(iv, "big")
        self.sequence = 0
        self.max_fragment = MAX_CIPHERTEXT_TLS13
        self.padding_block = padding_block
        self.rekey_after = (
            _REKEY_AFTER_GCM if aead_class is AESGCM else _REKEY_AFTER_CHACHA
        )
        self.tls13 = True

    def __repr__(self) -> str:
        # Never show key material (DESIGN.md, security stance).
        return f"<TLS13Protection {type(self._aead).__name__} seq={self.sequence}>"

    def seal(
        self,
        content_type: int,
        plaintext: bytes | bytearray | memoryview,
        limit: int = MAX_PLAINTEXT,
    ) -> bytes:
        seq = self.sequence
        if seq >= _SEQUENCE_LIMIT:
            raise self._exhausted()
        n = len(plaintext)
        block = self.padding_block
        if block:
            # RFC 8446 §5.4: zero padding after the type byte.  Round the inner
            # plaintext up to the block, but never past what the peer accepts.
            inner_length = min(-(-(n + 1) // block) * block, limit + 1)
            tail = _TYPE_BYTE[content_type] + bytes(max(inner_length - n - 1, 0))
        else:
            tail = _TYPE_BYTE[content_type]
        length = n + len(tail) + _TAG_SIZE
        # RFC 8446 §5.2: opaque_type application_data, legacy version 0x0303.
        header = bytes((_APPLICATION_DATA, 3, 3, length >> 8, length & 0xFF))
        ciphertext = self._aead.encrypt(
            (self._iv ^ seq).to_bytes(12, "big"),
            b"".join((plaintext, tail)),
            header,
        )
        self.sequence = seq + 1
        return header + ciphertext

    def open(
        self,
        content_type: int,
        header: memoryview,
        fragment: memoryview,
        max_plaintext: int,
    ) -> Record:
        if content_type != _APPLICATION_DATA:
            # RFC 8446 §5: once protected, everything but the compatibility
            # change_cipher_spec (handled by the layer) is application_data.
            raise UnexpectedMessageError(
                f"unprotected record of type {content_type} after keys were set"
            )
        seq = self.sequence
        if seq >= _SEQUENCE_LIMIT:
            raise self._exhausted()
        try:
            inner = self._aead.decrypt(
                (self._iv ^ seq).to_bytes(12, "big"), fragment, header
            )
        except InvalidTag:
            raise BadRecordMacError("record failed authentication") from None
        self.sequence = seq + 1
        n = len(inner)
        # RFC 8446 §5.4: TLSInnerPlaintext at most 2^14 + 1; RFC 8449 §4: at
        # most our record_size_limit, which counts type and padding.
        if n > max_plaintext + 1:
            raise RecordOverflowError(
                f"decrypted record of {n} bytes exceeds {max_plaintext + 1}"
            )
        # RFC 8446 §5.4: the type is the last non-zero byte.
        end = n - 1
        if end < 0 or inner[end] == 0:
            end = len(inner.rstrip(b"\0")) - 1
            if end < 0:
                raise UnexpectedMessageError(
                    "protected record has no non-zero content type"
                )
        inner_type = inner[end]
        if inner_type not in _TLS13_INNER_TYPES:
            raise UnexpectedMessageError(
                f"protected record with inner content type {inner_type}"
            )
        return Record(inner_type, inner[:end], True)


class TLS12Protection(RecordProtection):
    """TLS 1.2 AEAD record protection.

    AES-GCM (RFC 5288 §3): nonce = 4-byte fixed IV || 8-byte explicit nonce
    sent in front of the ciphertext; we send the sequence number as the
    explicit part, which is unique per key as RFC 5288 §6 requires.
    ChaCha20-Poly1305 (RFC 7905 §2): nonce = 12-byte fixed IV XOR the padded
    sequence number, nothing explicit on the wire.  Both: additional data =
    seq_num(8) || type || version || plaintext length (RFC 5246 §6.2.3.3).
    """

    __slots__ = ("_aead", "_fixed_iv", "_gcm", "_iv")

    def __init__(self, suite: CipherSuite | int, key: bytes, fixed_iv: bytes) -> None:
        try:
            info = CIPHER_SUITES[suite]  # type: ignore[index]
            if info.tls13:
                raise KeyError(suite)
            aead_class, key_length = info.aead, info.key_length
        except KeyError:
            raise ValueError(f"{suite!r} is not a TLS 1.2 AEAD cipher suite") from None
        gcm = aead_class is AESGCM
        iv_length = 4 if gcm else 12
        if len(key) != key_length or len(fixed_iv) != iv_length:
            raise ValueError(
                f"TLS 1.2 {aead_class.__name__} needs a {key_length}-byte key and "
                f"a {iv_length}-byte fixed IV, got {len(key)} and {len(fixed_iv)}"
            )
        self._aead = aead_class(key)
        self._gcm = gcm
        self._fixed_iv = bytes(fixed_iv)
        self._iv = int.from_bytes(fixed_iv, "big")
        self.sequence = 0
        self.max_fragment = MAX_CIPHERTEXT_TLS12
        self.padding_block = 0
        self.rekey_after = _REKEY_AFTER_GCM if gcm else _REKEY_AFTER_CHACHA
        self.tls13 = False

    def __repr__(self) -> str:
        return f"<TLS12Protection {type(self._aead).__name__} seq={self.sequence}>"

    def seal(
        self,
        content_type: int,
        plaintext: bytes | bytearray | memoryview,
        limit: int = MAX_PLAINTEXT,
    ) -> bytes:
        seq = self.sequence
        if seq >= _SEQUENCE_LIMIT:
            raise self._exhausted()
        n = len(plaintext)
        seq_bytes = seq.to_bytes(8, "big")
        # RFC 5246 §6.2.3.3 additional data; the record version is 0x0303.
        aad = seq_bytes + bytes((content_type, 3, 3, n >> 8, n & 0xFF))
        if self._gcm:
            length = _EXPLICIT_NONCE_SIZE + n + _TAG_SIZE
            ciphertext = self._aead.encrypt(self._fixed_iv + seq_bytes, plaintext, aad)
            self.sequence = seq + 1
            return (
                bytes((content_type, 3, 3, length >> 8, length & 0xFF))
                + seq_bytes
                + ciphertext
            )
        length = n + _TAG_SIZE
        ciphertext = self._aead.encrypt(
            (self._iv ^ seq).to_bytes(12, "big"), plaintext, aad
        )
        self.sequence = seq + 1
        return bytes((content_type, 3, 3, length >> 8, length & 0xFF)) + ciphertext

    def open(
        self,
        content_type: int,
        header: memoryview,
        fragment: memoryview,
        max_plaintext: int,
    ) -> Record:
        seq = self.sequence
        if seq >= _SEQUENCE_LIMIT:
            raise self._exhausted()
        if self._gcm:
            n = len(fragment) - _EXPLICIT_NONCE_SIZE - _TAG_SIZE
            if n < 0:
                # Too short to hold nonce and tag: it cannot authenticate.
                raise BadRecordMacError("record too short for its AEAD")
            # RFC 5288 §3: the explicit nonce is whatever the peer sent.
            nonce = self._fixed_iv + bytes(fragment[:_EXPLICIT_NONCE_SIZE])
            fragment = fragment[_EXPLICIT_NONCE_SIZE:]
        else:
            n = len(fragment) - _TAG_SIZE
            if n < 0:
                raise BadRecordMacError("record too short for its AEAD")
            nonce = (self._iv ^ seq).to_bytes(12, "big")
        aad = seq.to_bytes(8, "big") + bytes(
            (content_type, header[1], header[2], n >> 8, n & 0xFF)
        )
        try:
            plaintext = self._aead.decrypt(nonce, fragment, aad)
        except InvalidTag:
            raise BadRecordMacError("record failed authentication") from None
        self.sequence = seq + 1
        if n > max_plaintext:
            raise RecordOverflowError(
                f"decrypted record of {n} bytes exceeds {max_plaintext}"
            )
        return Record(content_type, plaintext, True)


class RecordLayer:
    """Records in, records out; no I/O.

    Inbound: :meth:`feed` bytes as they arrive, then call :meth:`next_record`
    until it returns ``None``.  Key changes happen between two calls (the
    Connection installs new keys right after the record that announces them),
    which is why records are pulled one at a time rather than all decrypted
    at feed time.

    Outbound: :meth:`send` cuts data into records of at most
    :attr:`write_limit` bytes, seals them with the write protection and
    queues them for :meth:`pending_output` / :meth:`data_to_send`.
    """

    def __init__(self, max_plaintext: int = MAX_PLAINTEXT) -> None:
        # Receive buffer: a bytearray and a read offset.  The Connection
        # drains it (next_record until None) after every feed, so after the
        # drain it holds at most one incomplete record: a record header plus
        # less than max_fragment bytes.  During a feed it holds that tail plus
        # the bytes just fed, never more; nothing else ever accumulates.
        self._buf = bytearray()
        self._off = 0
        self._read: RecordProtection | None = None
        self._write: RecordProtection | None = None
        self._out: list[bytes] = []
        self._error: TLSError | None = None
        self._write_limit = MAX_PLAINTEXT
        self._max_plaintext = MAX_PLAINTEXT
        self.max_plaintext = max_plaintext
        self._padding_block = 0
        # RFC 8446 §4.2.10: bytes of rejected early data we may still skip;
        # None when not skipping.
        self._skip_budget: int | None = None
        #: Pass an unprotected TLS 1.3 alert up although read keys are set;
        #: only between our first flight and the peer's first protected record.
        self.accept_plaintext_alert = False
        #: RFC 8446 §5.1 / RFC 5246 Appendix E.1: 0x0301 in the record
        #: carrying the first ClientHello, 0x0303 afterwards.  TLS 1.3
        #: protected records always say 0x0303 whatever this is.
        self.legacy_record_version: int = ProtocolVersion.TLS_1_0
        #: The unconsumed raw bytes when a record was refused (``None``
        #: until then): the refused record and whatever followed it.
        self.rejected_bytes: bytes | None = None

    # -- configuration -------------------------------------------------------

    @property
    def write_limit(self) -> int:
        """Largest plaintext (content bytes) per outgoing record.

        The peer's RFC 8449 record_size_limit turned into content bytes by
        :func:`plaintext_limit` (one less in TLS 1.3 for the type byte).
        """
        return self._write_limit

    @write_limit.setter
    def write_limit(self, value: int) -> None:
        if not 1 <= value <= MAX_PLAINTEXT:
            raise ValueError(f"write_limit must be in 1..{MAX_PLAINTEXT}")
        self._write_limit = value

    @property
    def max_plaintext(self) -> int:
        """Largest plaintext (content bytes) accepted per protected record.

        Our advertised record_size_limit in content bytes; TLS 1.3 accepts one
        more inner byte for the type.  Unprotected records are held to 2^14
        only (RFC 8449 §4: the limit applies to protected records).
        """
        return self._max_plaintext

    @max_plaintext.setter
    def max_plaintext(self, value: int) -> None:
        if not 1 <= value <= MAX_PLAINTEXT:
            raise ValueError(f"max_plaintext must be in 1..{MAX_PLAINTEXT}")
        self._max_plaintext = value

    def set_read_protection(self, protection: RecordProtection | None) -> None:
        """Use ``protection`` for records read from now on (None: plaintext)."""
        self._read = protection

    def set_write_protection(self, protection: RecordProtection | None) -> None:
        """Use ``protection`` for records sent from now on (None: plaintext).

        The padding policy set with :meth:`set_padding` carries over to it.
        """
        if protection is not None and protection.tls13 and self._padding_block:
            protection.padding_block = self._padding_block
        self._write = protection

    def set_padding(self, block: int) -> None:
        """Pad TLS 1.3 records to a multiple of ``block`` bytes (0: no padding).

        RFC 8446 §5.4 leaves the policy to the sender; this one hides the
        exact length of small messages at the cost of bandwidth.
        """
        if block < 0:
            raise ValueError("padding block must be >= 0")
        self._padding_block = block
        if self._write is not None and self._write.tls13:
            self._write.padding_block = block

    def skip_early_data(self, max_bytes: int | None) -> None:
        """Discard up to ``max_bytes`` of 0-RTT data the server rejected.

        RFC 8446 §4.2.10: a server that rejects early data skips it.  With
        read protection set (handshake keys installed), records that fail to
        decrypt are dropped until one decrypts; without it (after a
        HelloRetryRequest), application_data records are dropped until the
        next handshake record.  Going over ``max_bytes`` (the
        max_early_data_size) is an unexpected_message.  ``None`` stops
        skipping.
        """
        self._skip_budget = max_bytes

    # -- inspection ----------------------------------------------------------

    @property
    def read_sequence(self) -> int:
        """Sequence number of the next record read (0 while unprotected)."""
        return self._read.sequence if self._read is not None else 0

    @property
    def write_sequence(self) -> int:
        """Sequence number of the next record written (0 while unprotected)."""
        return self._write.sequence if self._write is not None else 0

    @property
    def should_rekey(self) -> bool:
        """True when the write key is near its usage limit (RFC 8446 §5.5).

        The Connection answers with a KeyUpdate (TLS 1.3) or a close.
        """
        write = self._write
        return write is not None and write.sequence >= write.rekey_after

    @property
    def buffered(self) -> int:
        """Bytes received and not yet returned as records."""
        return len(self._buf) - self._off

    # -- inbound -------------------------------------------------------------

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        """Add received bytes.  Call :meth:`next_record` until None after it.

        The buffer then holds the incomplete tail of the last drain plus
        ``data``: it never holds more than was fed, and after the drain it is
        back to less than one record (see ``__init__``).
        """
        if self._error is not None:
            raise self._error
        self._buf += data

    def next_record(self) -> Record | None:
        """Return the next complete record, or None until more bytes arrive."""
        if self._error is not None:
            raise self._error
        try:
            return self._next_record()
        except TLSError as error:
            self._error = error
            self.rejected_bytes = bytes(self._buf[self._off :])
            raise

    def _next_record(self) -> Record | None:
        while True:
            buf = self._buf
            off = self._off
            buf_end = len(buf)
            if buf_end - off < RECORD_HEADER_SIZE:
                if off != buf_end:
                    # Refuse a non-TLS stream on its first bytes rather than
                    # wait for a header it may never complete.
                    self._check_header(buf, off, buf_end - off)
                self._compact()
                return None
            content_type = buf[off]
            if content_type not in _CONTENT_TYPES or buf[off + 1] != 3:
                self._check_header(buf, off, RECORD_HEADER_SIZE)
            length = (buf[off + 3] << 8) | buf[off + 4]
            protection = self._read
            if protection is not None:
                max_fragment = protection.max_fragment
            elif content_type == _APPLICATION_DATA and self._skip_budget is not None:
                # 0-RTT records skipped after a HelloRetryRequest are still
                # TLSCiphertext (RFC 8446 §4.2.10, §5.2).
                max_fragment = MAX_CIPHERTEXT_TLS13
            else:
                max_fragment = MAX_PLAINTEXT
            if length > max_fragment:
                # RFC 8446 §5.1/§5.2, RFC 5246 §6.2: refuse before buffering.
                raise RecordOverflowError(
                    f"record length {length} exceeds {max_fragment}"
                )
            start = off + RECORD_HEADER_SIZE
            end = start + length
            if end > buf_end:
                self._compact()
                return None
            # The read offset moves only once the record is accepted, so that
            # rejected_bytes starts at the record that was refused.
            if protection is None:
                if content_type == _APPLICATION_DATA and self._skip_budget is not None:
                    self._skip(length, "unprotected early data")
                    self._consumed(end, buf_end)
                    continue
                if content_type == _HANDSHAKE:
                    self._skip_budget = None
                record = Record(content_type, bytes(buf[start:end]))
            elif content_type == _CCS and protection.tls13:
                # RFC 8446 §5: the compatibility change_cipher_spec is never
                # protected; the Connection decides whether it is allowed.
                record = Record(content_type, bytes(buf[start:end]))
            elif (
                content_type == _ALERT
                and self.accept_plaintext_alert
                and protection.tls13
                and length == 2
            ):
                # A peer that fails on our first flight alerts before it has
                # keys; reading that alert beats reporting our own
                # unexpected_message (the Connection clears the flag once
                # the peer's first protected record arrives).
                record = Record(content_type, bytes(buf[start:end]))
            else:
                view = memoryview(buf)
                try:
                    record = protection.open(
                        content_type,
                        view[off:start],
                        view[start:end],
                        self._max_plaintext,
                    )
                except BadRecordMacError:
                    if self._skip_budget is None:
                        raise
                    # RFC 8446 §4.2.10: count the least plaintext it can hold.
                    self._skip(length - _TAG_SIZE - 1, "undecryptable early data")
                    self._consumed(end, buf_end)
                    continue
                finally:
                    view.release()
                self._skip_budget = None
                self.accept_plaintext_alert = False
            if not record.payload and record.content_type in _NONEMPTY_TYPES:
                # RFC 8446 §5.1, RFC 5246 §6.2.1: zero-length handshake and
                # alert fragments are not allowed (application data may be
                # empty).
                raise UnexpectedMessageError(
                    f"zero-length record of type {record.content_type}"
                )
            self._consumed(end, buf_end)
            return record

    def _consumed(self, end: int, buf_end: int) -> None:
        """Move the read offset past an accepted (or skipped) record."""
        if end == buf_end:
            # All consumed: start afresh.  Rebinding rather than clearing is
            # safe even if some view of the old buffer were still alive.
            self._buf = bytearray()
            self._off = 0
        else:
            self._off = end

    def _compact(self) -> None:
        """Drop consumed bytes, keeping only the incomplete tail.

        Called when next_record returns None, so after a drain the buffer is
        at most one incomplete record.
        """
        off = self._off
        if off:
            try:
                # O(1) in CPython: the bytearray just moves its start.
                del self._buf[:off]
            except BufferError:  # pragma: no cover - a view outlived a call
                self._buf = self._buf[off:]
            self._off = 0

    def _skip(self, length: int, what: str) -> None:
        # Every skipped record costs at least one byte: records too short to
        # hold any early data would otherwise be skipped forever for free.
        budget = (self._skip_budget or 0) - max(length, 1)
        if budget < 0:
            self._skip_budget = None
            # RFC 8446 §4.2.10: more than max_early_data_size.
            raise UnexpectedMessageError(f"too much {what}")
        self._skip_budget = budget

    @staticmethod
    def _check_header(buf: bytearray, off: int, available: int) -> None:
        """Refuse a record header that cannot start a TLS record.

        An unknown content type is an unexpected_message (RFC 8446 §5, RFC
        5246 §6: "If a TLS implementation receives an unexpected record type,
        it MUST terminate the connection with an unexpected_message alert").
        A version whose first byte is not 3 means the stream is not TLS at all
        (an SSLv2 hello, HTTP, noise): there is no version to negotiate, the
        header simply does not decode, so decode_error (RFC 8446 §6.2:
        "a field was out of the specified range").  The minor byte is ignored
        as RFC 8446 §5.1 asks of legacy_record_version.
        """
        content_type = buf[off]
        if content_type not in _CONTENT_TYPES:
            raise UnexpectedMessageError(f"unknown record content type {content_type}")
        if available >= 2 and buf[off + 1] != 3:
            raise DecodeError(
                f"record version major byte {buf[off + 1]:#04x} is not 0x03: "
                "not a TLS stream"
            )

    def take_unprocessed(self) -> bytes:
        """Remove and return the bytes received but not yet read as records.

        After the peer's close_notify the rest of the stream is not TLS's
        (RFC 8446 §6.1); the Connection hands it back to the application.
        """
        data = bytes(self._buf[self._off :])
        self._buf = bytearray()
        self._off = 0
        return data

    # -- outbound ------------------------------------------------------------

    def send(self, content_type: int, data: bytes | bytearray | memoryview) -> None:
        """Queue ``data`` as records of ``content_type``.

        Cut at :attr:`write_limit` (RFC 8449), sealed with the write
        protection if one is set (except a TLS 1.3 change_cipher_spec, which
        is never protected).  Empty ``data`` queues nothing: a
        zero-length handshake or alert record is illegal (RFC 8446 §5.1) and
        an empty application_data record carries nothing.
        """
        if content_type not in _CONTENT_TYPES:
            raise ValueError(f"unknown content type {content_type}")
        n = len(data)
        if not n:
            return
        limit = self._write_limit
        protection = self._write
        out = self._out
        if protection is None or (content_type == _CCS and protection.tls13):
            # RFC 8446 §5: the TLS 1.3 compatibility change_cipher_spec goes
            # out unprotected even once write keys are set.
            version = self.legacy_record_version
            prefix = bytes((content_type, version >> 8, version & 0xFF))
            if n <= limit:
                out.append(b"".join((prefix, n.to_bytes(2, "big"), data)))
                return
            view = memoryview(data)
            for i in range(0, n, limit):
                chunk = view[i : i + limit]
                out.append(b"".join((prefix, len(chunk).to_bytes(2, "big"), chunk)))
            return
        seal = protection.seal
        if n <= limit:
            out.append(seal(content_type, data, limit))
            return
        view = memoryview(data)
        for i in range(0, n, limit):
            out.append(seal(content_type, view[i : i + limit], limit))

    def pending_output(self) -> list[bytes]:
        """Records queued so far, in order (for ``writeSequence``); clears."""
        out = self._out
        self._out = []
        return out

    def data_to_send(self) -> bytes:
        """Records queued so far as one ``bytes``; clears."""
        return b"".join(self.pending_output())
