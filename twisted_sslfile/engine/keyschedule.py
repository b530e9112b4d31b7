"""Key derivation: the TLS 1.3 HKDF schedule and the TLS 1.2 PRF.

Everything that turns a shared secret and a transcript into keys lives here
and nowhere else, so that the state machines only say *which* secret they
need and *when*.  Functions take a hash as a ``cryptography``
``HashAlgorithm`` class or instance (``CipherSuiteInfo.hash`` is a class).

Secrets are plain ``bytes``; none of the objects here shows one in its
``repr``.  Comparisons of Finished values go through
:func:`hmac.compare_digest` (:func:`check_verify_data`).

HMAC (RFC 2104, written out in :func:`_hmac`) and the transcript hash run
on :mod:`hashlib`, whose hashes are OpenSSL's with the algorithm looked up
once: a handshake makes about twenty-five HMACs and thirty hash updates per
side, and ``cryptography``'s HMAC, HKDFExpand and Hash objects, like
:func:`hmac.digest`, set up an OpenSSL context by name on every call, which
costs more than the hashing itself, and much more once other work has
evicted OpenSSL's caches (docs/performance.rst).  Hashes are still named
by ``cryptography`` classes, whose ``name`` is the :mod:`hashlib` name.
"""

from __future__ import annotations

import functools
import hashlib
import hmac as _stdlib_hmac
from collections.abc import Callable
from typing import NamedTuple

from cryptography.hazmat.primitives import hashes

from ..constants import HandshakeType
from ..errors import DecryptError, InternalError

__all__ = [
    "KeySchedule13",
    "Transcript",
    "check_verify_data",
    "derive_secret",
    "exporter",
    "exporter_12",
    "extended_master_secret",
    "finished_key",
    "finished_verify_data",
    "hkdf_expand",
    "hkdf_expand_label",
    "hkdf_extract",
    "key_block",
    "master_secret",
    "next_application_traffic_secret",
    "prf",
    "resumption_psk",
    "traffic_key_iv",
    "verify_data_12",
]

HashLike = hashes.HashAlgorithm | type[hashes.HashAlgorithm]


def _hash(hash_: HashLike) -> hashes.HashAlgorithm:
    """An instance for ``hash_``, which may be the class or an instance."""
    return hash_() if isinstance(hash_, type) else hash_


class _HashParameters(NamedTuple):
    name: str  # the hashlib name
    digest_size: int
    block_size: int
    new: Callable[..., hashlib._Hash]  # hashlib's constructor, OpenSSL's hash
    ipad: int  # RFC 2104 §2: 0x36 repeated block_size times, as an integer
    opad: int  # 0x5c repeated


# By hash class: the classes are few, and a class's parameters never change.
_CLASS_PARAMETERS: dict[type[hashes.HashAlgorithm], _HashParameters] = {}


def _parameters(hash_: HashLike) -> _HashParameters:
    """What the functions here need of ``hash_`` (a class or an instance)."""
    cls = hash_ if isinstance(hash_, type) else type(hash_)
    parameters = _CLASS_PARAMETERS.get(cls)
    if parameters is None:
        instance = cls()
        name = instance.name
        new = getattr(hashlib, name, None) or functools.partial(hashlib.new, name)
        block_size = new().block_size
        parameters = _HashParameters(
            instance.name,
            instance.digest_size,
            block_size,
            new,
            int.from_bytes(b"\x36" * block_size, "big"),
            int.from_bytes(b"\x5c" * block_size, "big"),
        )
        _CLASS_PARAMETERS[cls] = parameters
    return parameters


def _hmac(hash_: HashLike, key: bytes, data: bytes) -> bytes:
    """HMAC (RFC 2104) over :mod:`hashlib`'s OpenSSL hash.

    The construction is two hashes; the hashing is OpenSSL's.  Built here
    rather than with :func:`hmac.digest` because that sets up an OpenSSL
    HMAC context by algorithm name on every call, which costs more than
    the two hashes (docs/performance.rst); a handshake makes about
    twenty-five HMACs per side.

    The padded key is XORed with ipad and opad as one integer each, not
    with ``bytes.translate`` (which the standard library's own fallback
    uses): a translation table is a memory lookup indexed by each secret
    byte, the access pattern cache-timing attacks read.  Integer XOR runs
    the same loop over the digits whatever their values.
    """
    return _hmac_with(_parameters(hash_), key, data)


def _hmac_with(parameters: _HashParameters, key: bytes, data: bytes) -> bytes:
    """:func:`_hmac` with the hash's parameters already looked up."""
    new = parameters.new
    block_size = parameters.block_size
    if type(key) is not bytes:
        key = bytes(key)  # a bytearray or memoryview secret
    if len(key) > block_size:
        key = new(key).digest()
    padded = int.from_bytes(key.ljust(block_size, b"\0"), "big")
    inner = new((padded ^ parameters.ipad).to_bytes(block_size, "big") + data)
    outer = (padded ^ parameters.opad).to_bytes(block_size, "big")
    return new(outer + inner.digest()).digest()


def _new_hash(hash_: HashLike) -> hashlib._Hash:
    return _parameters(hash_).new()


def _empty_hash(hash_: HashLike) -> bytes:
    return _new_hash(hash_).digest()


def check_verify_data(expected: bytes, received: bytes) -> None:
    """Compare Finished (or binder) values in constant time.

    RFC 8446 §4.4.4 / RFC 5246 §7.4.9: a wrong value is a decrypt_error.
    """
    if not _stdlib_hmac.compare_digest(bytes(expected), bytes(received)):
        raise DecryptError("Finished verify_data does not match")


# ---------------------------------------------------------------------------
# HKDF (RFC 5869) and the TLS 1.3 wrappers (RFC 8446 §7.1)
# ---------------------------------------------------------------------------


def hkdf_extract(hash_: HashLike, salt: bytes | None, ikm: bytes) -> bytes:
    """HKDF-Extract; a missing salt is HashLen zero bytes (RFC 5869 §2.2)."""
    h = _hash(hash_)
    return _hmac(h, salt if salt else bytes(h.digest_size), ikm)


def hkdf_expand(hash_: HashLike, prk: bytes, info: bytes, length: int) -> bytes:
    """HKDF-Expand (RFC 5869 §2.3): T(i) = HMAC(PRK, T(i-1) | info | i).

    Every TLS 1.3 expansion but an exporter's is one block (L <= HashLen),
    so the first HMAC is the whole answer.
    """
    parameters = _parameters(hash_)
    size = parameters.digest_size
    if not 0 <= length <= 255 * size:
        raise ValueError("HKDF-Expand length out of range")
    block = _hmac_with(parameters, prk, info + b"\x01")
    if length <= size:
        return block[:length]
    output = bytearray(block)
    counter = 1
    while len(output) < length:
        counter += 1
        block = _hmac_with(parameters, prk, block + info + bytes((counter,)))
        output += block
    return bytes(output[:length])


def hkdf_expand_label(
    hash_: HashLike, secret: bytes, label: bytes, context: bytes, length: int
) -> bytes:
    """HKDF-Expand-Label (RFC 8446 §7.1): ``label`` without the "tls13 " prefix.

    Raises ValueError for arguments no HkdfLabel can hold (a caller bug:
    label longer than 249 bytes, context longer than 255, length >= 2**16).
    """
    key = (bytes(label), length)
    head = _LABEL_HEADS.get(key)
    if head is None:
        full_label = b"tls13 " + key[0]
        if len(full_label) > 255 or not 0 <= length < 2**16:
            raise ValueError("HkdfLabel field out of range")
        head = length.to_bytes(2, "big") + bytes([len(full_label)]) + full_label
        if len(_LABEL_HEADS) < _MAX_LABEL_HEADS:
            _LABEL_HEADS[key] = head
    if len(context) > 255:
        raise ValueError("HkdfLabel field out of range")
    return hkdf_expand(hash_, secret, head + bytes((len(context),)) + context, length)


# The fixed head of each HkdfLabel (length, "tls13 " + label) by (label,
# length): the schedule uses about fifteen; exporters bring the caller's
# labels, so the table stops growing at a bound.
_LABEL_HEADS: dict[tuple[bytes, int], bytes] = {}
_MAX_LABEL_HEADS = 64


def derive_secret(
    hash_: HashLike, secret: bytes, label: bytes, transcript_hash: bytes
) -> bytes:
    """Derive-Secret (RFC 8446 §7.1), given the transcript *hash*."""
    size = _parameters(hash_).digest_size
    return hkdf_expand_label(hash_, secret, label, transcript_hash, size)


def traffic_key_iv(
    hash_: HashLike, secret: bytes, key_length: int, iv_length: int
) -> tuple[bytes, bytes]:
    """The record key and IV for a traffic secret (RFC 8446 §7.3)."""
    return (
        hkdf_expand_label(hash_, secret, b"key", b"", key_length),
        hkdf_expand_label(hash_, secret, b"iv", b"", iv_length),
    )


def next_application_traffic_secret(hash_: HashLike, secret: bytes) -> bytes:
    """application_traffic_secret_N+1 after a KeyUpdate (RFC 8446 §7.2)."""
    size = _parameters(hash_).digest_size
    return hkdf_expand_label(hash_, secret, b"traffic upd", b"", size)


def finished_key(hash_: HashLike, base_key: bytes) -> bytes:
    """finished_key = HKDF-Expand-Label(BaseKey, "finished", "", Hash.length)."""
    size = _parameters(hash_).digest_size
    return hkdf_expand_label(hash_, base_key, b"finished", b"", size)


def finished_verify_data(
    hash_: HashLike, base_key: bytes, transcript_hash: bytes
) -> bytes:
    """Finished.verify_data (RFC 8446 §4.4.4).

    ``base_key`` is the sender's handshake traffic secret (or the
    application one for post-handshake authentication).  The PSK binder
    (§4.2.11.2) is the same computation with the binder key as base key and
    the hash of the truncated ClientHello.
    """
    return _hmac(hash_, finished_key(hash_, base_key), transcript_hash)


def exporter(
    hash_: HashLike,
    exporter_master_secret: bytes,
    label: bytes,
    context: bytes | None,
    length: int,
) -> bytes:
    """TLS-Exporter (RFC 8446 §7.5).

    In TLS 1.3 an absent context and an empty one give the same output.
    """
    h = _hash(hash_)
    secret = derive_secret(h, exporter_master_secret, label, _empty_hash(h))
    context_hash = _new_hash(h)
    context_hash.update(context or b"")
    return hkdf_expand_label(h, secret, b"exporter", context_hash.digest(), length)


def resumption_psk(
    hash_: HashLike, resumption_master_secret: bytes, ticket_nonce: bytes
) -> bytes:
    """The PSK a NewSessionTicket stands for (RFC 8446 §4.6.1)."""
    h = _hash(hash_)
    return hkdf_expand_label(
        h, resumption_master_secret, b"resumption", ticket_nonce, h.digest_size
    )


class KeySchedule13:
    """The TLS 1.3 secret ladder (RFC 8446 §7.1), one rung at a time.

    ``KeySchedule13(hash, psk)`` computes the Early Secret at once;
    :meth:`derive_handshake_secret` and :meth:`derive_master_secret` climb
    the ladder.  Each ``*_secret(th)`` method takes the transcript hash the
    RFC prescribes for it (e.g. ClientHello..ServerHello for the handshake
    traffic secrets).  Calling a method before its rung exists is a state
    machine bug and raises InternalError.
    """

    __slots__ = ("_handshake_secret", "_master_secret", "early_secret", "hash")

    def __init__(self, hash_: HashLike, psk: bytes | None = None) -> None:
        self.hash = _hash(hash_)
        size = self.hash.digest_size
        # No PSK: a string of Hash.length zero bytes (RFC 8446 §7.1).
        self.early_secret = hkdf_extract(self.hash, None, psk or bytes(size))
        self._handshake_secret: bytes | None = None
        self._master_secret: bytes | None = None

    def __repr__(self) -> str:
        stage = (
            "master"
            if self._master_secret is not None
            else "handshake"
            if self._handshake_secret is not None
            else "early"
        )
        return f"<KeySchedule13 {self.hash.name} stage={stage}>"

    @property
    def hash_length(self) -> int:
        return self.hash.digest_size

    @property
    def handshake_secret(self) -> bytes:
        if self._handshake_secret is None:
            raise InternalError("handshake secret requested before it was derived")
        return self._handshake_secret

    @property
    def master_secret(self) -> bytes:
        if self._master_secret is None:
            raise InternalError("master secret requested before it was derived")
        return self._master_secret

    def _derived(self, secret: bytes) -> bytes:
        return derive_secret(self.hash, secret, b"derived", _empty_hash(self.hash))

    # Early Secret rung
    def binder_key(self, external: bool) -> bytes:
        """binder_key: "ext binder" for external PSKs, "res binder" otherwise."""
        label = b"ext binder" if external else b"res binder"
        return derive_secret(
            self.hash, self.early_secret, label, _empty_hash(self.hash)
        )

    def client_early_traffic_secret(self, transcript_hash: bytes) -> bytes:
        """client_early_traffic_secret over ClientHello."""
        return derive_secret(
            self.hash, self.early_secret, b"c e traffic", transcript_hash
        )

    def early_exporter_master_secret(self, transcript_hash: bytes) -> bytes:
        """early_exporter_master_secret over ClientHello."""
        return derive_secret(
            self.hash, self.early_secret, b"e exp master", transcript_hash
        )

    # Handshake Secret rung
    def derive_handshake_secret(self, shared_secret: bytes | None) -> bytes:
        """Handshake Secret from the (EC)DHE/KEM secret; None for psk_ke mode."""
        ikm = shared_secret if shared_secret is not None else bytes(self.hash_length)
        self._handshake_secret = hkdf_extract(
            self.hash, self._derived(self.early_secret), ikm
        )
        return self._handshake_secret

    def client_handshake_traffic_secret(self, transcript_hash: bytes) -> bytes:
        """client_handshake_traffic_secret over ClientHello..ServerHello."""
        return derive_secret(
            self.hash, self.handshake_secret, b"c hs traffic", transcript_hash
        )

    def server_handshake_traffic_secret(self, transcript_hash: bytes) -> bytes:
        """server_handshake_traffic_secret over ClientHello..ServerHello."""
        return derive_secret(
            self.hash, self.handshake_secret, b"s hs traffic", transcript_hash
        )

    # Master Secret rung
    def derive_master_secret(self) -> bytes:
        """Master Secret: Extract(Derive-Secret(HS, "derived", ""), 0)."""
        self._master_secret = hkdf_extract(
            self.hash, self._derived(self.handshake_secret), bytes(self.hash_length)
        )
        return self._master_secret

    def client_application_traffic_secret_0(self, transcript_hash: bytes) -> bytes:
        """client_application_traffic_secret_0 over ClientHello..server Finished."""
        return derive_secret(
            self.hash, self.master_secret, b"c ap traffic", transcript_hash
        )

    def server_application_traffic_secret_0(self, transcript_hash: bytes) -> bytes:
        """server_application_traffic_secret_0 over ClientHello..server Finished."""
        return derive_secret(
            self.hash, self.master_secret, b"s ap traffic", transcript_hash
        )

    def exporter_master_secret(self, transcript_hash: bytes) -> bytes:
        """exporter_master_secret over ClientHello..server Finished."""
        return derive_secret(
            self.hash, self.master_secret, b"exp master", transcript_hash
        )

    def resumption_master_secret(self, transcript_hash: bytes) -> bytes:
        """resumption_master_secret over ClientHello..client Finished."""
        return derive_secret(
            self.hash, self.master_secret, b"res master", transcript_hash
        )


class Transcript:
    """The running handshake transcript (RFC 8446 §4.4.1, RFC 5246 §7.4.9).

    Until the cipher suite (and so the hash) is known the raw messages are
    buffered; :meth:`set_hash` replays them into the hash.  After that the
    raw bytes are dropped unless ``keep_raw`` is set: TLS 1.2 client
    authentication signs the raw ``handshake_messages`` (RFC 5246 §7.4.8),
    so the TLS 1.2 client sets it when it holds a client certificate.
    """

    __slots__ = ("_buffer", "_ctx", "_hash", "keep_raw")

    def __init__(
        self, hash_: HashLike | None = None, *, keep_raw: bool = False
    ) -> None:
        self._hash: hashes.HashAlgorithm | None = None
        self._ctx: hashlib._Hash | None = None
        self._buffer = bytearray()
        self.keep_raw = keep_raw
        if hash_ is not None:
            self.set_hash(hash_)

    def __repr__(self) -> str:
        name = self._hash.name if self._hash is not None else "unset"
        return f"<Transcript {name}>"

    @property
    def hash(self) -> hashes.HashAlgorithm | None:
        return self._hash

    def update(self, raw_message: bytes) -> None:
        """Add one handshake message, 4-byte header included."""
        if self._ctx is not None:
            self._ctx.update(raw_message)
            if self.keep_raw:
                self._buffer += raw_message
        else:
            self._buffer += raw_message

    def set_hash(self, hash_: HashLike) -> None:
        """Fix the hash (once the suite is known) and hash what was buffered.

        Setting the same hash again is a no-op; another hash is a bug.
        """
        h = _hash(hash_)
        if self._hash is not None:
            if h.name != self._hash.name:
                raise InternalError("transcript hash changed after it was set")
            return
        self._hash = h
        self._ctx = _new_hash(h)
        self._ctx.update(self._buffer)
        if not self.keep_raw:
            self._buffer = bytearray()

    def _context(self) -> hashlib._Hash:
        if self._ctx is None:
            raise InternalError("transcript hash used before the hash was chosen")
        return self._ctx

    def digest(self) -> bytes:
        """Transcript-Hash of everything so far; the transcript goes on."""
        return self._context().copy().digest()

    def digest_with(self, extra: bytes) -> bytes:
        """Transcript-Hash as if ``extra`` were appended, without appending it.

        For the PSK binder over a truncated ClientHello (RFC 8446 §4.2.11.2)
        and for checking a Finished before it joins the transcript.
        """
        ctx = self._context().copy()
        ctx.update(extra)
        return ctx.digest()

    def raw(self) -> bytes:
        """The raw messages so far (only while buffering or with keep_raw)."""
        if self._ctx is not None and not self.keep_raw:
            raise InternalError("raw transcript was not kept")
        return bytes(self._buffer)

    def restart_with_message_hash(self) -> None:
        """Replace ClientHello1 by its message_hash stand-in (RFC 8446 §4.4.1).

        Call it after the HelloRetryRequest has fixed the hash and *before*
        adding the HelloRetryRequest itself: the transcript becomes
        ``message_hash || HRR || ClientHello2 || ...``.
        """
        digest = self.digest()
        assert self._hash is not None  # self.digest() raised otherwise
        synthetic = (
            bytes([HandshakeType.message_hash])
            + len(digest).to_bytes(3, "big")
            + digest
        )
        self._ctx = _new_hash(self._hash)
        self._ctx.update(synthetic)
        self._buffer = bytearray(synthetic) if self.keep_raw else bytearray()


# ---------------------------------------------------------------------------
# TLS 1.2: PRF (RFC 5246 §5), master secrets, key block, Finished, exporter
# ---------------------------------------------------------------------------

_MASTER_SECRET_LENGTH = 48
_VERIFY_DATA_LENGTH_12 = 12
# RFC 5705 §4: labels the PRF itself uses may not be exporter labels.
_RESERVED_EXPORTER_LABELS = frozenset(
    {b"client finished", b"server finished", b"master secret", b"key expansion"}
)


def prf(
    hash_: HashLike, secret: bytes, label: bytes, seed: bytes, length: int
) -> bytes:
    """PRF(secret, label, seed) = P_hash(secret, label + seed) (RFC 5246 §5)."""
    h = _hash(hash_)
    label_seed = label + seed
    out = bytearray()
    a = label_seed  # A(0)
    while len(out) < length:
        a = _hmac(h, secret, a)  # A(i) = HMAC(secret, A(i-1))
        out += _hmac(h, secret, a + label_seed)
    return bytes(out[:length])


def master_secret(
    hash_: HashLike,
    pre_master_secret: bytes,
    client_random: bytes,
    server_random: bytes,
) -> bytes:
    """The classic master secret (RFC 5246 §8.1)."""
    return prf(
        hash_,
        pre_master_secret,
        b"master secret",
        client_random + server_random,
        _MASTER_SECRET_LENGTH,
    )


def extended_master_secret(
    hash_: HashLike, pre_master_secret: bytes, session_hash: bytes
) -> bytes:
    """The extended master secret (RFC 7627 §4).

    ``session_hash`` is the transcript hash up to and including
    ClientKeyExchange (§3).
    """
    return prf(
        hash_,
        pre_master_secret,
        b"extended master secret",
        session_hash,
        _MASTER_SECRET_LENGTH,
    )


def key_block(
    hash_: HashLike,
    master_secret: bytes,
    client_random: bytes,
    server_random: bytes,
    key_length: int,
    iv_length: int,
) -> tuple[bytes, bytes, bytes, bytes]:
    """(client_key, server_key, client_iv, server_iv) for an AEAD suite.

    RFC 5246 §6.3: the seed is server_random + client_random; AEAD suites
    have no MAC keys, so the block is the two keys then the two IVs.
    """
    block = prf(
        hash_,
        master_secret,
        b"key expansion",
        server_random + client_random,
        2 * key_length + 2 * iv_length,
    )
    k, i = key_length, iv_length
    return (
        block[:k],
        block[k : 2 * k],
        block[2 * k : 2 * k + i],
        block[2 * k + i : 2 * k + 2 * i],
    )


def verify_data_12(
    hash_: HashLike, master_secret: bytes, handshake_hash: bytes, *, client: bool
) -> bytes:
    """Finished.verify_data for TLS 1.2 (RFC 5246 §7.4.9), 12 bytes."""
    label = b"client finished" if client else b"server finished"
    return prf(hash_, master_secret, label, handshake_hash, _VERIFY_DATA_LENGTH_12)


def exporter_12(
    hash_: HashLike,
    master_secret: bytes,
    client_random: bytes,
    server_random: bytes,
    label: bytes,
    context: bytes | None,
    length: int,
) -> bytes:
    """RFC 5705 exporter for TLS 1.2.

    Unlike TLS 1.3, ``context=None`` (no context) and ``b""`` differ: with a
    context the seed carries its 2-byte length (RFC 5705 §4).  The PRF's own
    labels are refused with ValueError, as is a context of 2**16 bytes or
    more.
    """
    if label in _RESERVED_EXPORTER_LABELS:
        raise ValueError(f"exporter label {label!r} is reserved")
    seed = client_random + server_random
    if context is not None:
        if len(context) >= 2**16:
            raise ValueError("exporter context too long")
        seed += len(context).to_bytes(2, "big") + context
    return prf(hash_, master_secret, label, seed, length)
