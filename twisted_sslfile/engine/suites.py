"""Cipher suites, key-exchange groups and signature schemes.

This module is the one place where TLS code points meet ``cryptography``
objects.  Everything the handshake state machines need to know about a
negotiated suite, group or signature scheme is looked up here, so that
``tls13.py`` and ``tls12.py`` never construct a primitive themselves.

Three rules shape it:

* **Determinism.**  Every private value is derived from bytes drawn from an
  injected ``random(n) -> bytes`` callable (the Context's), so a test can
  replay a handshake byte for byte.  The one exception is ML-KEM
  encapsulation on the server side, whose randomness ``cryptography`` draws
  internally (see :func:`respond_to_key_share`).
* **Peer input never crashes.**  A malformed or hostile key share raises
  :class:`~twisted_sslfile.errors.IllegalParameterError`; a signature that
  does not verify raises :class:`~twisted_sslfile.errors.DecryptError`.
  ``ValueError`` and friends from ``cryptography`` never escape.
* **Keys are duck-typed for signing.**  A private key is only ever used
  through its ``sign`` method, so a test (or an HSM wrapper) may pass any
  object that behaves like the ``cryptography`` key it stands for.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import (
    ec,
    ed448,
    ed25519,
    mlkem,
    padding,
    rsa,
    x25519,
)
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305

from ..constants import (
    CipherSuite,
    NamedGroup,
    ProtocolVersion,
    SignatureScheme,
)
from ..errors import DecryptError, IllegalParameterError, InternalError

__all__ = [
    "CIPHER_SUITES",
    "SIGNATURE_SCHEMES",
    "SUPPORTED_GROUPS",
    "CipherSuiteInfo",
    "KeyShare",
    "RandomSource",
    "SignatureSchemeInfo",
    "certificate_verify_input",
    "generate_key_share",
    "key_exchange_for_key",
    "respond_to_key_share",
    "schemes_for_key",
    "sign",
    "verify",
]

#: ``random(n)`` returns ``n`` bytes; in the engine it is ``context.random``.
RandomSource = Callable[[int], bytes]


# ---------------------------------------------------------------------------
# Cipher suites
# ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CipherSuiteInfo:
    """What the record layer and key schedule need to know about a suite.

    ``iv_length`` is the length of the per-direction IV the key schedule
    derives: the full 12-byte nonce base in TLS 1.3 (RFC 8446 §5.3), and in
    TLS 1.2 the 4-byte implicit salt for GCM (RFC 5288 §3) or the 12-byte
    fixed IV for ChaCha20-Poly1305 (RFC 7905 §2).  ``explicit_nonce_length``
    is the per-record nonce carried on the wire in TLS 1.2 (8 for GCM, 0 for
    ChaCha20-Poly1305 and for every TLS 1.3 suite).
    """

    suite: CipherSuite
    aead: type[AESGCM] | type[ChaCha20Poly1305]
    key_length: int
    iv_length: int
    hash: type[hashes.HashAlgorithm]
    tls13: bool
    #: ``"ECDHE_ECDSA"`` / ``"ECDHE_RSA"`` for TLS 1.2; ``None`` for TLS 1.3,
    #: where the suite does not fix the key exchange or the signature.
    key_exchange: str | None
    explicit_nonce_length: int = 0
    #: Every AEAD here has a 16-byte tag (RFC 5116 §5.1, RFC 8439 §2.8).
    tag_length: int = 16

    @property
    def name(self) -> str:
        return self.suite.name

    @property
    def hash_length(self) -> int:
        # ``digest_size`` is declared as an instance property of
        # HashAlgorithm; ask an instance rather than the class.
        return self.hash().digest_size


def _tls13(
    suite: CipherSuite, aead: type, key_length: int, hash_: type
) -> CipherSuiteInfo:
    return CipherSuiteInfo(suite, aead, key_length, 12, hash_, True, None)


def _tls12(
    suite: CipherSuite, aead: type, key_length: int, hash_: type, kx: str
) -> CipherSuiteInfo:
    if aead is AESGCM:
        # RFC 5288 §3: 4-byte salt from the key block, 8-byte explicit nonce.
        return CipherSuiteInfo(suite, aead, key_length, 4, hash_, False, kx, 8)
    # RFC 7905 §2: 12-byte fixed IV XORed with the sequence number.
    return CipherSuiteInfo(suite, aead, key_length, 12, hash_, False, kx, 0)


_CS = CipherSuite
#: Every suite this library can run, keyed by code point.  Preference order
#: is the Context's business, not this table's.
CIPHER_SUITES: dict[CipherSuite, CipherSuiteInfo] = {
    info.suite: info
    for info in (
        # RFC 8446 §B.4
        _tls13(_CS.TLS_AES_128_GCM_SHA256, AESGCM, 16, hashes.SHA256),
        _tls13(_CS.TLS_AES_256_GCM_SHA384, AESGCM, 32, hashes.SHA384),
        _tls13(_CS.TLS_CHACHA20_POLY1305_SHA256, ChaCha20Poly1305, 32, hashes.SHA256),
        # RFC 5289 §3.2 (the PRF hash is the suite's hash)
        _tls12(
            _CS.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
            AESGCM,
            16,
            hashes.SHA256,
            "ECDHE_ECDSA",
        ),
        _tls12(
            _CS.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
            AESGCM,
            32,
            hashes.SHA384,
            "ECDHE_ECDSA",
        ),
        _tls12(
            _CS.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
            AESGCM,
            16,
            hashes.SHA256,
            "ECDHE_RSA",
        ),
        _tls12(
            _CS.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
            AESGCM,
            32,
            hashes.SHA384,
            "ECDHE_RSA",
        ),
        # RFC 7905 §2
        _tls12(
            _CS.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
            ChaCha20Poly1305,
            32,
            hashes.SHA256,
            "ECDHE_RSA",
        ),
        _tls12(
            _CS.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
            ChaCha20Poly1305,
            32,
            hashes.SHA256,
            "ECDHE_ECDSA",
        ),
    )
}


def key_exchange_for_key(key: object) -> str | None:
    """The TLS 1.2 key exchange a certificate key can authenticate.

    ECDSA and EdDSA keys sign ``ECDHE_ECDSA`` suites (RFC 8422 §5.1.1 covers
    Ed25519/Ed448 too); RSA keys sign ``ECDHE_RSA``.  ``key`` may be a
    private or public key; ``None`` means no TLS 1.2 suite fits it.
    """
    public = _public_key_of(key)
    if isinstance(
        public,
        ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey | ed448.Ed448PublicKey,
    ):
        return "ECDHE_ECDSA"
    if isinstance(public, rsa.RSAPublicKey):
        return "ECDHE_RSA"
    return None


# ---------------------------------------------------------------------------
# Key shares
# ---------------------------------------------------------------------------

_X25519_LENGTH = 32
_MLKEM768_EK_LENGTH = 1184
_MLKEM768_CT_LENGTH = 1088
_MLKEM768_SEED_LENGTH = 64
_EC_CURVES: dict[NamedGroup, ec.EllipticCurve] = {
    NamedGroup.secp256r1: ec.SECP256R1(),
    NamedGroup.secp384r1: ec.SECP384R1(),
}
# Group orders (SEC 2 §2.4.2, §2.5.1): cryptography does not expose them.
_EC_ORDERS: dict[NamedGroup, int] = {
    NamedGroup.secp256r1: int(
        "FFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551", 16
    ),
    NamedGroup.secp384r1: int(
        "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC7634D81F4372DDF"
        "581A0DB248B0A77AECEC196ACCC52973",
        16,
    ),
}


@cache
def mlkem_available() -> bool:
    """Whether the ``cryptography`` backend can do ML-KEM-768."""
    try:
        mlkem.MLKEM768PrivateKey.from_seed_bytes(bytes(_MLKEM768_SEED_LENGTH))
    except UnsupportedAlgorithm:
        return False
    return True


def _supported_groups() -> tuple[NamedGroup, ...]:
    groups = [NamedGroup.x25519, NamedGroup.secp256r1, NamedGroup.secp384r1]
    if mlkem_available():
        groups.insert(0, NamedGroup.X25519MLKEM768)
    return tuple(groups)


#: Groups this build can use, in our default preference order (the hybrid
#: first when the backend has ML-KEM).
SUPPORTED_GROUPS: tuple[NamedGroup, ...] = _supported_groups()


def _draw(random: RandomSource, n: int) -> bytes:
    """``random(n)``, checked: a short read is a local bug, not a peer's."""
    data = bytes(random(n))
    if len(data) != n:
        raise InternalError(f"random source returned {len(data)} bytes, wanted {n}")
    return data


def _x25519_private(random: RandomSource) -> x25519.X25519PrivateKey:
    # RFC 7748 §5: any 32 bytes are a valid scalar (clamping is internal).
    return x25519.X25519PrivateKey.from_private_bytes(_draw(random, _X25519_LENGTH))


def _x25519_public_bytes(key: x25519.X25519PrivateKey) -> bytes:
    return key.public_key().public_bytes_raw()


def _x25519_exchange(key: x25519.X25519PrivateKey, peer: bytes) -> bytes:
    """X25519 with the peer's 32-byte share, refusing the all-zero result."""
    if len(peer) != _X25519_LENGTH:
        raise IllegalParameterError(
            f"x25519 key share is {len(peer)} bytes, expected {_X25519_LENGTH}"
        )
    try:
        secret = key.exchange(x25519.X25519PublicKey.from_public_bytes(peer))
    except ValueError:
        # OpenSSL refuses small-order points itself (all-zero output).
        raise IllegalParameterError("x25519 key share is a small-order point") from None
    # RFC 8446 §7.4.2: an all-zero shared secret MUST abort the handshake.
    if hmac.compare_digest(secret, bytes(_X25519_LENGTH)):
        raise IllegalParameterError("x25519 shared secret is all zeros")
    return secret


def _ec_private(group: NamedGroup, random: RandomSource) -> ec.EllipticCurvePrivateKey:
    """An EC private scalar in [1, order-1] derived from ``random`` bytes.

    We draw 8 bytes more than the order's length and reduce, which keeps the
    modulo bias below 2**-64 (FIPS 186-5 §A.4.1 "extra random bits").
    """
    order = _EC_ORDERS[group]
    length = (order.bit_length() + 7) // 8 + 8
    scalar = int.from_bytes(_draw(random, length), "big") % (order - 1) + 1
    return ec.derive_private_key(scalar, _EC_CURVES[group])


def _ec_point_length(group: NamedGroup) -> int:
    return 1 + 2 * _EC_CURVES[group].key_size // 8 if group in _EC_CURVES else 0


def _ec_public_bytes(key: ec.EllipticCurvePrivateKey) -> bytes:
    # RFC 8446 §4.2.8.2: UncompressedPointRepresentation only.
    return key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )


def _ec_exchange(
    group: NamedGroup, key: ec.EllipticCurvePrivateKey, peer: bytes
) -> bytes:
    expected = _ec_point_length(group)
    if len(peer) != expected:
        raise IllegalParameterError(
            f"{group.name} key share is {len(peer)} bytes, expected {expected}"
        )
    # RFC 8446 §4.2.8.2: legacy_form must be 4 (uncompressed).
    if peer[0] != 0x04:
        raise IllegalParameterError(
            f"{group.name} key share is not an uncompressed point"
        )
    try:
        # from_encoded_point checks that the point lies on the curve.
        public = ec.EllipticCurvePublicKey.from_encoded_point(_EC_CURVES[group], peer)
        return key.exchange(ec.ECDH(), public)
    except ValueError:
        raise IllegalParameterError(
            f"{group.name} key share is not on the curve"
        ) from None


# A KeyShare's private half: X25519, an ECDHE curve, or for X25519MLKEM768
# the ML-KEM-768 decapsulation key with the X25519 key.
_PrivateHalf = (
    x25519.X25519PrivateKey
    | ec.EllipticCurvePrivateKey
    | tuple[mlkem.MLKEM768PrivateKey, x25519.X25519PrivateKey]
)


class KeyShare:
    """One side's ephemeral key for a group: the public share and the secret.

    Used by a TLS 1.3 client (``shared_secret`` takes the server's share) and
    by both sides of TLS 1.2 ECDHE.  The private key lives in the object and
    is never shown by ``repr``.
    """

    __slots__ = ("_private", "group", "public_bytes")

    group: NamedGroup
    public_bytes: bytes

    def __init__(
        self, group: NamedGroup, private: _PrivateHalf, public_bytes: bytes
    ) -> None:
        self.group = group
        self._private = private
        self.public_bytes = public_bytes

    def __repr__(self) -> str:
        return f"<KeyShare {self.group.name} public={len(self.public_bytes)} bytes>"

    def shared_secret(self, peer_share: bytes) -> bytes:
        """The shared secret with the peer's share; IllegalParameterError if bad."""
        peer = bytes(peer_share)
        # generate_key_share pairs each group with its kind of private key.
        private = self._private
        if isinstance(private, x25519.X25519PrivateKey):
            return _x25519_exchange(private, peer)
        if isinstance(private, ec.EllipticCurvePrivateKey):
            return _ec_exchange(self.group, private, peer)
        return self._hybrid_secret(private, peer)

    def _hybrid_secret(
        self,
        private: tuple[mlkem.MLKEM768PrivateKey, x25519.X25519PrivateKey],
        peer: bytes,
    ) -> bytes:
        # draft-ietf-tls-ecdhe-mlkem: server share = ML-KEM ciphertext (1088)
        # || X25519 share (32); secret = ML-KEM secret || X25519 secret.
        expected = _MLKEM768_CT_LENGTH + _X25519_LENGTH
        if len(peer) != expected:
            raise IllegalParameterError(
                f"X25519MLKEM768 server share is {len(peer)} bytes, expected {expected}"
            )
        decapsulation_key, x25519_key = private
        try:
            kem_secret = decapsulation_key.decapsulate(peer[:_MLKEM768_CT_LENGTH])
        except ValueError:
            raise IllegalParameterError("invalid ML-KEM-768 ciphertext") from None
        return kem_secret + _x25519_exchange(x25519_key, peer[_MLKEM768_CT_LENGTH:])


def _check_group(group: int) -> NamedGroup:
    try:
        named = NamedGroup(group)
    except ValueError:
        raise IllegalParameterError(f"unsupported group 0x{group:04x}") from None
    if named not in SUPPORTED_GROUPS:
        raise IllegalParameterError(f"unsupported group {named.name}")
    return named


def generate_key_share(group: int, random: RandomSource) -> KeyShare:
    """A fresh key share for ``group``, its private key drawn from ``random``.

    Draws: x25519 takes ``random(32)``; secp256r1/secp384r1 take
    ``random(order length + 8)``; X25519MLKEM768 takes ``random(64)`` (the
    ML-KEM-768 seed d||z, FIPS 203 §7.1) and then ``random(32)`` (X25519).
    An unsupported group raises IllegalParameterError: the state machine
    only asks for groups the peer chose (e.g. in a HelloRetryRequest).
    """
    named = _check_group(group)
    if named == NamedGroup.x25519:
        key = _x25519_private(random)
        return KeyShare(named, key, _x25519_public_bytes(key))
    if named in _EC_CURVES:
        ec_key = _ec_private(named, random)
        return KeyShare(named, ec_key, _ec_public_bytes(ec_key))
    # X25519MLKEM768: client share = ML-KEM-768 encapsulation key || X25519.
    decapsulation_key = mlkem.MLKEM768PrivateKey.from_seed_bytes(
        _draw(random, _MLKEM768_SEED_LENGTH)
    )
    x_key = _x25519_private(random)
    public = decapsulation_key.public_key().public_bytes_raw() + _x25519_public_bytes(
        x_key
    )
    return KeyShare(named, (decapsulation_key, x_key), public)


def respond_to_key_share(
    group: int, peer_share: bytes, random: RandomSource
) -> tuple[bytes, bytes]:
    """TLS 1.3 server side: answer the client's share.

    Returns ``(server_share, shared_secret)``.  For the ECDHE groups the
    server's private key is drawn from ``random`` exactly as in
    :func:`generate_key_share`.  For X25519MLKEM768 the server *encapsulates*
    to the client's ML-KEM key; ``cryptography`` draws the encapsulation
    randomness (FIPS 203 §7.2, the 32-byte ``m``) from the operating system
    itself and offers no way to inject it, so that part of a server's
    handshake is not reproducible from ``random`` -- only the X25519 half is.
    """
    named = _check_group(group)
    peer = bytes(peer_share)
    if named != NamedGroup.X25519MLKEM768:
        share = generate_key_share(named, random)
        return share.public_bytes, share.shared_secret(peer)
    expected = _MLKEM768_EK_LENGTH + _X25519_LENGTH
    if len(peer) != expected:
        raise IllegalParameterError(
            f"X25519MLKEM768 client share is {len(peer)} bytes, expected {expected}"
        )
    try:
        # from_public_bytes runs the FIPS 203 §7.2 modulus check.
        encapsulation_key = mlkem.MLKEM768PublicKey.from_public_bytes(
            peer[:_MLKEM768_EK_LENGTH]
        )
        kem_secret, ciphertext = encapsulation_key.encapsulate()
    except ValueError:
        raise IllegalParameterError("invalid ML-KEM-768 encapsulation key") from None
    x_key = _x25519_private(random)
    x_secret = _x25519_exchange(x_key, peer[_MLKEM768_EK_LENGTH:])
    # Server share = ciphertext || X25519; secret = ML-KEM || X25519.
    return ciphertext + _x25519_public_bytes(x_key), kem_secret + x_secret


# ---------------------------------------------------------------------------
# Signature schemes
# ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SignatureSchemeInfo:
    """How to sign and verify for one SignatureScheme (RFC 8446 §4.2.3).

    ``kind`` is one of ``"ecdsa"``, ``"rsa_pss_rsae"``, ``"rsa_pss_pss"``,
    ``"rsa_pkcs1"``, ``"ed25519"``, ``"ed448"``.  ``curve`` is set for ECDSA,
    whose TLS 1.3 code points bind the curve (in TLS 1.2 they name only the
    hash).  ``tls13`` is False for the PKCS#1 v1.5 schemes, which TLS 1.3
    allows in certificates but never in CertificateVerify (§4.4.3).
    """

    scheme: SignatureScheme
    kind: str
    hash: type[hashes.HashAlgorithm] | None
    curve: type[ec.EllipticCurve] | None
    tls13: bool

    @property
    def name(self) -> str:
        return self.scheme.name


_SS = SignatureScheme
SIGNATURE_SCHEMES: dict[SignatureScheme, SignatureSchemeInfo] = {
    info.scheme: info
    for info in (
        SignatureSchemeInfo(
            _SS.ecdsa_secp256r1_sha256, "ecdsa", hashes.SHA256, ec.SECP256R1, True
        ),
        SignatureSchemeInfo(
            _SS.ecdsa_secp384r1_sha384, "ecdsa", hashes.SHA384, ec.SECP384R1, True
        ),
        SignatureSchemeInfo(
            _SS.ecdsa_secp521r1_sha512, "ecdsa", hashes.SHA512, ec.SECP521R1, True
        ),
        SignatureSchemeInfo(
            _SS.rsa_pss_rsae_sha256, "rsa_pss_rsae", hashes.SHA256, None, True
        ),
        SignatureSchemeInfo(
            _SS.rsa_pss_rsae_sha384, "rsa_pss_rsae", hashes.SHA384, None, True
        ),
        SignatureSchemeInfo(
            _SS.rsa_pss_rsae_sha512, "rsa_pss_rsae", hashes.SHA512, None, True
        ),
        SignatureSchemeInfo(
            _SS.rsa_pss_pss_sha256, "rsa_pss_pss", hashes.SHA256, None, True
        ),
        SignatureSchemeInfo(
            _SS.rsa_pss_pss_sha384, "rsa_pss_pss", hashes.SHA384, None, True
        ),
        SignatureSchemeInfo(
            _SS.rsa_pss_pss_sha512, "rsa_pss_pss", hashes.SHA512, None, True
        ),
        SignatureSchemeInfo(_SS.ed25519, "ed25519", None, None, True),
        SignatureSchemeInfo(_SS.ed448, "ed448", None, None, True),
        SignatureSchemeInfo(
            _SS.rsa_pkcs1_sha256, "rsa_pkcs1", hashes.SHA256, None, False
        ),
        SignatureSchemeInfo(
            _SS.rsa_pkcs1_sha384, "rsa_pkcs1", hashes.SHA384, None, False
        ),
        SignatureSchemeInfo(
            _SS.rsa_pkcs1_sha512, "rsa_pkcs1", hashes.SHA512, None, False
        ),
    )
}

_RSA_KINDS = ("rsa_pss_rsae", "rsa_pss_pss", "rsa_pkcs1")


def certificate_verify_input(transcript_hash: bytes, *, server: bool) -> bytes:
    """The content a TLS 1.3 CertificateVerify signs (RFC 8446 §4.4.3).

    64 spaces, the context string, a zero byte, then the transcript hash.
    """
    context = (
        b"TLS 1.3, server CertificateVerify"
        if server
        else b"TLS 1.3, client CertificateVerify"
    )
    return b" " * 64 + context + b"\x00" + transcript_hash


def _pss(hash_: type[hashes.HashAlgorithm]) -> padding.PSS:
    # RFC 8446 §4.2.3: MGF1 with the same hash, salt length = digest length.
    hash_algorithm = hash_()
    return padding.PSS(
        mgf=padding.MGF1(hash_algorithm), salt_length=hash_algorithm.digest_size
    )


def _lookup(scheme: int) -> SignatureSchemeInfo | None:
    # SignatureScheme is an IntEnum: a plain int finds its member's entry.
    return SIGNATURE_SCHEMES.get(scheme)  # type: ignore[call-overload]


def _public_key_of(key: object) -> object:
    """The public half of ``key`` (itself if it already is a public key)."""
    if isinstance(
        key,
        ec.EllipticCurvePublicKey
        | rsa.RSAPublicKey
        | ed25519.Ed25519PublicKey
        | ed448.Ed448PublicKey,
    ):
        return key
    public_key = getattr(key, "public_key", None)
    if callable(public_key):
        try:
            return public_key()
        except Exception:  # a duck-typed key without a usable public half
            return None
    return None


def _rsa_scheme_fits(info: SignatureSchemeInfo, key_size: int) -> bool:
    """RFC 8017 §9.1.1: PSS needs emLen >= hLen + sLen + 2 with sLen = hLen."""
    if info.kind == "rsa_pkcs1" or info.hash is None:
        return True
    return (key_size - 1 + 7) // 8 >= 2 * info.hash().digest_size + 2


def _is_tls13(version: int) -> bool:
    return version >= ProtocolVersion.TLS_1_3


def schemes_for_key(
    key: object, version: int, *, rsassa_pss: bool = False
) -> list[SignatureScheme]:
    """Our preference order of schemes that ``key`` can sign with.

    ``key`` is a private key (anything with ``public_key()``) or a public
    key.  TLS 1.3: an ECDSA key gets only its own curve's scheme; RSA keys
    get RSASSA-PSS only.  TLS 1.2: ECDSA keys may use any hash (the curve
    matching one first), RSA keys add PKCS#1 v1.5 after PSS.

    ``rsassa_pss`` says the key's certificate carries the id-RSASSA-PSS
    SubjectPublicKeyInfo (``cert.public_key_algorithm_oid ==
    PublicKeyAlgorithmOID.RSASSA_PSS``); such a key may only use the
    ``rsa_pss_pss_*`` schemes (RFC 8446 §4.2.3).  The flag is needed because
    ``cryptography`` loads an RSASSA-PSS key as a plain ``RSAPublicKey`` /
    ``RSAPrivateKey`` and drops the algorithm identifier, so the key object
    alone cannot tell.  PSS schemes whose hash does not fit the modulus
    (SHA-512 needs at least 1040 bits) are left out.
    """
    public = _public_key_of(key)
    tls13 = _is_tls13(version)
    result: list[SignatureScheme] = []
    if isinstance(public, ec.EllipticCurvePublicKey):
        own = [
            info.scheme
            for info in SIGNATURE_SCHEMES.values()
            if info.kind == "ecdsa"
            and info.curve is not None
            and isinstance(public.curve, info.curve)
        ]
        if tls13:
            return own
        others = [
            s
            for s in (
                _SS.ecdsa_secp256r1_sha256,
                _SS.ecdsa_secp384r1_sha384,
                _SS.ecdsa_secp521r1_sha512,
            )
            if s not in own
        ]
        return own + others
    if isinstance(public, ed25519.Ed25519PublicKey):
        return [_SS.ed25519]
    if isinstance(public, ed448.Ed448PublicKey):
        return [_SS.ed448]
    if isinstance(public, rsa.RSAPublicKey):
        kinds: tuple[str, ...] = ("rsa_pss_pss",) if rsassa_pss else ("rsa_pss_rsae",)
        if not tls13 and not rsassa_pss:
            kinds = ("rsa_pss_rsae", "rsa_pkcs1")
        for kind in kinds:
            for info in SIGNATURE_SCHEMES.values():
                if info.kind == kind and _rsa_scheme_fits(info, public.key_size):
                    result.append(info.scheme)
    return result


def _check_private_key(info: SignatureSchemeInfo, key: object, tls13: bool) -> None:
    """Refuse a *real* key of the wrong type; duck-typed keys pass through."""
    if isinstance(key, ec.EllipticCurvePrivateKey):
        ok = info.kind == "ecdsa" and (
            not tls13 or (info.curve is not None and isinstance(key.curve, info.curve))
        )
    elif isinstance(key, rsa.RSAPrivateKey):
        ok = info.kind in _RSA_KINDS and (not tls13 or info.tls13)
    elif isinstance(key, ed25519.Ed25519PrivateKey):
        ok = info.kind == "ed25519"
    elif isinstance(key, ed448.Ed448PrivateKey):
        ok = info.kind == "ed448"
    else:
        return
    if not ok:
        raise InternalError(
            f"signature scheme {info.name} does not fit a {type(key).__name__}"
        )


def sign(
    scheme: int,
    private_key: object,
    data: bytes,
    *,
    version: int = ProtocolVersion.TLS_1_3,
) -> bytes:
    """Sign ``data`` with ``scheme``, calling only ``private_key.sign``.

    A scheme we do not know or a real ``cryptography`` key that cannot use
    ``scheme`` (wrong algorithm; in TLS 1.3 also the wrong ECDSA curve or
    PKCS#1 v1.5) is a local configuration error: InternalError.
    """
    info = _lookup(scheme)
    if info is None:
        raise InternalError(f"unsupported signature scheme 0x{int(scheme):04x}")
    tls13 = _is_tls13(version)
    if tls13 and not info.tls13:
        raise InternalError(f"{info.name} may not sign in TLS 1.3")
    _check_private_key(info, private_key, tls13)
    signer = private_key.sign  # type: ignore[attr-defined]
    try:
        if info.kind == "ecdsa":
            return signer(data, ec.ECDSA(info.hash()))  # type: ignore[misc]
        if info.kind in ("rsa_pss_rsae", "rsa_pss_pss"):
            return signer(data, _pss(info.hash), info.hash())  # type: ignore[arg-type, misc]
        if info.kind == "rsa_pkcs1":
            return signer(data, padding.PKCS1v15(), info.hash())  # type: ignore[misc]
        return signer(data)
    except (ValueError, TypeError, UnsupportedAlgorithm) as e:
        raise InternalError(f"signing with {info.name} failed: {e}") from None


def _key_mismatch(info: SignatureSchemeInfo) -> DecryptError:
    return DecryptError(f"signature scheme {info.name} does not fit the key")


def verify(
    scheme: int,
    public_key: object,
    data: bytes,
    signature: bytes,
    *,
    version: int = ProtocolVersion.TLS_1_3,
    rsassa_pss: bool = False,
) -> None:
    """Check the peer's ``signature`` over ``data``; DecryptError if bad.

    DecryptError (RFC 8446 §4.4.3: decrypt_error) also covers a scheme that
    does not fit the key: wrong algorithm, an ECDSA key on another curve than
    the TLS 1.3 scheme names, ``rsa_pss_pss_*`` with a key whose certificate
    says rsaEncryption or ``rsa_pss_rsae_*``/``rsa_pkcs1_*`` with an
    RSASSA-PSS key (``rsassa_pss``, see :func:`schemes_for_key`).  A scheme
    we do not support at all, or PKCS#1 v1.5 in TLS 1.3, is an
    IllegalParameterError: we never offered it.
    """
    info = _lookup(scheme)
    if info is None:
        raise IllegalParameterError(f"unsupported signature scheme 0x{int(scheme):04x}")
    tls13 = _is_tls13(version)
    if tls13 and not info.tls13:
        raise IllegalParameterError(f"{info.name} is not allowed in TLS 1.3")
    key = _public_key_of(public_key)
    sig = bytes(signature)
    msg = bytes(data)
    try:
        if info.kind == "ecdsa":
            if not isinstance(key, ec.EllipticCurvePublicKey):
                raise _key_mismatch(info)
            if tls13 and not isinstance(key.curve, info.curve):  # type: ignore[arg-type]
                raise _key_mismatch(info)
            key.verify(sig, msg, ec.ECDSA(info.hash()))  # type: ignore[misc]
        elif info.kind in _RSA_KINDS:
            if not isinstance(key, rsa.RSAPublicKey):
                raise _key_mismatch(info)
            if (info.kind == "rsa_pss_pss") != rsassa_pss:
                raise _key_mismatch(info)
            pad = padding.PKCS1v15() if info.kind == "rsa_pkcs1" else _pss(info.hash)  # type: ignore[arg-type]
            key.verify(sig, msg, pad, info.hash())  # type: ignore[misc]
        elif info.kind == "ed25519":
            if not isinstance(key, ed25519.Ed25519PublicKey):
                raise _key_mismatch(info)
            key.verify(sig, msg)
        else:
            if not isinstance(key, ed448.Ed448PublicKey):
                raise _key_mismatch(info)
            key.verify(sig, msg)
    except (InvalidSignature, ValueError, TypeError):
        raise DecryptError(f"{info.name} signature did not verify") from None
