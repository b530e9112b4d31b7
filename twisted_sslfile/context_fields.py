"""What each :class:`~twisted_sslfile.context.Context` field may hold.

The defaults of the policy fields, and one converter per field (or group of
fields checked together): a function that takes what a caller wrote - an
enum member, its number or its name in any case; a list of them; a bool, an
int - and returns the canonical value, or raises :class:`ValueError` with a
message that names the constructor argument and says what to change.

Two callers share them, so there is one answer to "what is a valid value of
option X": :class:`~twisted_sslfile.context.Context`, which runs its table
of fields through them, and the ``sslfile:`` endpoint parser
(:mod:`twisted_sslfile.endpoint_options`), which splits its strings into
lists, calls the same converters and rewords the argument names into its
option names.  The converters of the fields that hold shared objects
(ticket keys, session cache, trust roots, credentials) live beside
``Context`` in :mod:`twisted_sslfile.context`.
"""

from __future__ import annotations

import os
import platform
from collections.abc import Callable, Iterable
from typing import Any

from twisted_sslfile.constants import (
    SUPPORTED_VERSIONS,
    TLS13_CIPHER_SUITES,
    CipherSuite,
    ClientCertificatePolicy,
    NamedGroup,
    ProtocolVersion,
    SignatureScheme,
)
from twisted_sslfile.engine.sessions import MAX_SESSION_LIFETIME

__all__ = [
    "ALL_CIPHER_SUITES",
    "DEFAULT_CIPHER_SUITES",
    "DEFAULT_GROUPS",
    "DEFAULT_KEY_SHARE_GROUPS",
    "DEFAULT_MAX_CERTIFICATE_CHAIN_LENGTH",
    "DEFAULT_MAX_HANDSHAKE_MESSAGE_SIZE",
    "DEFAULT_MAX_VERSION",
    "DEFAULT_MIN_VERSION",
    "DEFAULT_SIGNATURE_SCHEMES",
    "DEFAULT_TICKETS_PER_HANDSHAKE",
    "RECORD_SIZE_LIMIT_RANGE",
    "SUPPORTED_GROUPS",
    "convert_cipher_suites",
    "convert_client_certificate",
    "convert_clock",
    "convert_flag",
    "convert_groups",
    "convert_key_share_groups",
    "convert_keylog",
    "convert_max_certificate_chain_length",
    "convert_max_handshake_message_size",
    "convert_path",
    "convert_protocol_names",
    "convert_random",
    "convert_record_size_limit",
    "convert_session_lifetime",
    "convert_signature_schemes",
    "convert_tickets_per_handshake",
    "convert_version",
    "convert_versions",
    "version_name",
]


# ---------------------------------------------------------------------------
# Defaults
# ---------------------------------------------------------------------------


def _cpu_has_aes_instructions() -> bool:
    """Best guess whether AES runs in hardware here (AES-NI, ARMv8 AES).

    Only a positive "the flag is missing" turns the answer to False: every
    x86-64 server CPU since ~2010 and every ARMv8 with crypto extensions has
    it, so "cannot tell" (no /proc, another OS) means yes.
    """
    machine = platform.machine().lower()
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            info = f.read()
    except OSError:
        return True
    field = "flags" if machine in ("x86_64", "amd64", "i386", "i686") else "features"
    saw_field = False
    for line in info.splitlines():
        key, _, value = line.partition(":")
        if key.strip().lower() == field:
            saw_field = True
            if "aes" in value.split():
                return True
    return not saw_field


def _default_cipher_suites(aes_hardware: bool) -> tuple[CipherSuite, ...]:
    """All nine AEAD suites, most preferred first.

    * With AES instructions AES-GCM is faster than ChaCha20-Poly1305 and
      constant-time; without them ChaCha20 is both faster and safer (software
      AES with tables leaks through cache timing), so it moves to the front.
      That is also what OpenSSL, BoringSSL and Go decide.
    * AES-128 before AES-256: 128-bit keys are out of reach of any attack and
      AES-128 runs ~40% fewer rounds.
    * TLS 1.3 suites first (the engine only ever looks at the suites of the
      version being negotiated, so the interleaving is cosmetic); in TLS 1.2
      ECDSA and RSA variants of a cipher sit together - the certificate, not
      this order, decides which one can be used.
    """
    s = CipherSuite
    aes13 = (s.TLS_AES_128_GCM_SHA256, s.TLS_AES_256_GCM_SHA384)
    chacha13 = (s.TLS_CHACHA20_POLY1305_SHA256,)
    aes12 = (
        s.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        s.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        s.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        s.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
    )
    chacha12 = (
        s.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
        s.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
    )
    if aes_hardware:
        return aes13 + chacha13 + aes12 + chacha12
    return chacha13 + aes13 + chacha12 + aes12


#: Every cipher suite the engine implements (the SCSV is not a suite).
ALL_CIPHER_SUITES: frozenset[CipherSuite] = frozenset(
    s for s in CipherSuite if s != CipherSuite.TLS_EMPTY_RENEGOTIATION_INFO_SCSV
)

#: The whole supported range.
DEFAULT_MIN_VERSION = ProtocolVersion.TLS_1_2
DEFAULT_MAX_VERSION = ProtocolVersion.TLS_1_3

DEFAULT_CIPHER_SUITES: tuple[CipherSuite, ...] = _default_cipher_suites(
    _cpu_has_aes_instructions()
)


def _mlkem_available() -> bool:
    try:
        from cryptography.hazmat.primitives.asymmetric import mlkem

        mlkem.MLKEM768PrivateKey.generate()
    except Exception:  # ImportError, UnsupportedAlgorithm: an older backend
        return False
    return True


_MLKEM_AVAILABLE = _mlkem_available()

#: Every group the engine implements here (the hybrid one needs ML-KEM in
#: the installed cryptography).
SUPPORTED_GROUPS: tuple[NamedGroup, ...] = tuple(
    g for g in NamedGroup if g != NamedGroup.X25519MLKEM768 or _MLKEM_AVAILABLE
)

#: Hybrid post-quantum first (harvest-now-decrypt-later protection costs
#: ~1.1 KB per ClientHello), then the classical curves by speed.
DEFAULT_GROUPS: tuple[NamedGroup, ...] = tuple(
    g
    for g in (
        NamedGroup.X25519MLKEM768,
        NamedGroup.x25519,
        NamedGroup.secp256r1,
        NamedGroup.secp384r1,
    )
    if g != NamedGroup.X25519MLKEM768 or _MLKEM_AVAILABLE
)

#: Shares a client sends up front.  Two, so that servers that do not know
#: the hybrid group still finish in one round trip with x25519 instead of
#: paying a HelloRetryRequest.
DEFAULT_KEY_SHARE_GROUPS: tuple[NamedGroup, ...] = tuple(
    g for g in (NamedGroup.X25519MLKEM768, NamedGroup.x25519) if g in DEFAULT_GROUPS
)

#: All schemes the engine can verify, most preferred first: short, fast
#: EdDSA/ECDSA before RSA, PSS before PKCS#1 v1.5 (which TLS 1.3 only
#: allows in certificates, RFC 8446 §4.2.3).
DEFAULT_SIGNATURE_SCHEMES: tuple[SignatureScheme, ...] = (
    SignatureScheme.ecdsa_secp256r1_sha256,
    SignatureScheme.ecdsa_secp384r1_sha384,
    SignatureScheme.ecdsa_secp521r1_sha512,
    SignatureScheme.ed25519,
    SignatureScheme.ed448,
    SignatureScheme.rsa_pss_rsae_sha256,
    SignatureScheme.rsa_pss_rsae_sha384,
    SignatureScheme.rsa_pss_rsae_sha512,
    SignatureScheme.rsa_pss_pss_sha256,
    SignatureScheme.rsa_pss_pss_sha384,
    SignatureScheme.rsa_pss_pss_sha512,
    SignatureScheme.rsa_pkcs1_sha256,
    SignatureScheme.rsa_pkcs1_sha384,
    SignatureScheme.rsa_pkcs1_sha512,
)

#: The largest handshake message we buffer.  The protocol allows 2^24-1
#: bytes (a uint24 length), which would let any peer make us hold 16 MiB per
#: connection before we can check anything.  The biggest honest message is
#: the Certificate message: ten certificates of ~12 KiB (RSA-4096 chains,
#: SCT lists, an OCSP staple, or post-quantum signatures) still fit in
#: 128 KiB.  OpenSSL's comparable default (max_cert_list) is 100 KiB.  A
#: server holds its client's messages to a smaller bound (32 KiB, see
#: engine.connection.MAX_CLIENT_HELLO_SIZE), except a Certificate it asked for.
DEFAULT_MAX_HANDSHAKE_MESSAGE_SIZE = 131072
#: One full record: anything smaller could not hold an ordinary chain.
_MIN_HANDSHAKE_MESSAGE_SIZE = 2**14
_MAX_HANDSHAKE_MESSAGE_SIZE = 2**24 - 1

DEFAULT_MAX_CERTIFICATE_CHAIN_LENGTH = 10

#: RFC 8449 §4: at least 64; at most 2^14 + 1 (TLS 1.3 counts the inner
#: content type byte; the engine caps TLS 1.2 at 2^14).
RECORD_SIZE_LIMIT_RANGE = (64, 2**14 + 1)

_VERSION_NAMES = {
    ProtocolVersion.SSL_3_0: "SSL 3.0",
    ProtocolVersion.TLS_1_0: "TLS 1.0",
    ProtocolVersion.TLS_1_1: "TLS 1.1",
    ProtocolVersion.TLS_1_2: "TLS 1.2",
    ProtocolVersion.TLS_1_3: "TLS 1.3",
}


def version_name(version: int) -> str:
    """``TLS 1.3`` for 0x0304 (as messages and reprs spell versions)."""
    return _VERSION_NAMES.get(version, f"0x{int(version):04x}")  # type: ignore[call-overload]


#: TLS 1.3 NewSessionTickets after a full handshake.  Two, as OpenSSL sends:
#: clients should use each ticket once (RFC 8446 §C.4, unlinkability), so
#: two let a client open two parallel connections that both resume.
DEFAULT_TICKETS_PER_HANDSHAKE = 2
_MAX_TICKETS_PER_HANDSHAKE = 10

_SUPPORTED_NAMES = " and ".join(version_name(v) for v in SUPPORTED_VERSIONS)


# ---------------------------------------------------------------------------
# Validation helpers
# ---------------------------------------------------------------------------


def _enum_member(
    enum_type: Any, value: object, what: str, allowed: Iterable[Any]
) -> Any:
    """Coerce an enum member, its integer value or its name (any case)."""
    allowed_set = set(allowed)
    member = None
    if isinstance(value, enum_type):
        member = value
    elif isinstance(value, bool):
        member = None
    elif isinstance(value, int):
        try:
            member = enum_type(value)
        except ValueError:
            member = None
    elif isinstance(value, str):
        wanted = value.strip().replace("-", "_").lower()
        for name, candidate in enum_type.__members__.items():
            if name.lower() == wanted:
                member = candidate
                break
    if member is None or member not in allowed_set:
        names = ", ".join(m.name for m in enum_type if m in allowed_set)
        raise ValueError(f"unknown {what} {value!r}; supported: {names}")
    return member


def _enum_tuple(
    enum_type: Any,
    values: object,
    what: str,
    option: str,
    allowed: Iterable[Any],
    *,
    allow_empty: bool = False,
) -> tuple[Any, ...]:
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        raise ValueError(
            f"{option} must be a sequence of {what}s, not {type(values).__name__}"
        )
    allowed = tuple(allowed)
    result: list[Any] = []
    for value in values:
        member = _enum_member(enum_type, value, what, allowed)
        if member in result:
            raise ValueError(f"{option} lists {member.name} twice")
        result.append(member)
    if not result and not allow_empty:
        raise ValueError(f"{option} must not be empty")
    return tuple(result)


def _version_key(text: str) -> str:
    key = text.strip().lower()
    for prefix in ("protocol_", "protocol"):
        key = key.removeprefix(prefix)
    return "".join(ch for ch in key if ch.isalnum()).replace("tlsv", "tls")


#: "TLSv1.2", "TLS1_2", "tls_1_2", "PROTOCOL_TLS_1_2", "SSLv3"... -> version
_VERSION_SPELLINGS = {
    **{_version_key(name): v for name, v in ProtocolVersion.__members__.items()},
    **{_version_key(name): v for v, name in _VERSION_NAMES.items()},
    "sslv3": ProtocolVersion.SSL_3_0,
    "ssl3": ProtocolVersion.SSL_3_0,
    "tls1": ProtocolVersion.TLS_1_0,
}


def convert_version(value: object, option: str) -> ProtocolVersion:
    """One protocol version: a member, its number or a spelling such as
    ``TLSv1.3``, ``tls1_3`` or ``PROTOCOL_TLS_1_3``; only supported ones."""
    version: ProtocolVersion | None = None
    if isinstance(value, bool):
        version = None
    elif isinstance(value, int):
        try:
            version = ProtocolVersion(value)
        except ValueError:
            version = None
    elif isinstance(value, str):
        version = _VERSION_SPELLINGS.get(_version_key(value))
    if version is None:
        raise ValueError(
            f"{option}: unknown protocol version {value!r}; supported: "
            f"{_SUPPORTED_NAMES}"
        )
    version = ProtocolVersion(int(version))  # canonical member, not an alias
    if version not in SUPPORTED_VERSIONS:
        raise ValueError(
            f"{option}: {version_name(version)} is not supported; this library "
            f"speaks {_SUPPORTED_NAMES} only"
        )
    return version


def convert_protocol_names(values: object, option: str) -> tuple[bytes, ...]:
    """ALPN / NPN protocol names: 1..255 bytes each (RFC 7301 §3.1)."""
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        raise ValueError(
            f"{option} must be a sequence of protocol names such as "
            f"[b'h2', b'http/1.1'], not {values!r}"
        )
    result: list[bytes] = []
    for value in values:
        if isinstance(value, str):
            try:
                name = value.encode("ascii")
            except UnicodeEncodeError:
                raise ValueError(
                    f"{option}: protocol name {value!r} is not ASCII; pass bytes"
                ) from None
        elif isinstance(value, (bytes, bytearray)):
            name = bytes(value)
        else:
            raise ValueError(
                f"{option}: protocol names are bytes or str, not {value!r}"
            )
        if not 1 <= len(name) <= 255:
            raise ValueError(
                f"{option}: protocol name {name!r} must be 1 to 255 bytes long"
            )
        if name in result:
            raise ValueError(f"{option} lists {name!r} twice")
        result.append(name)
    # ProtocolNameList is a vector <2..2^16-1> (RFC 7301 §3.1).
    if sum(1 + len(n) for n in result) > 2**16 - 1:
        raise ValueError(f"{option} is longer than 65535 bytes when encoded")
    return tuple(result)


def convert_int(value: object, option: str, low: int, high: int) -> int:
    """An int (not a bool) from ``low`` to ``high``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{option} must be an integer, not {value!r}")
    if not low <= value <= high:
        raise ValueError(f"{option} must be between {low} and {high}, not {value}")
    return value


# ---------------------------------------------------------------------------
# Converters, one per field or group of fields
# ---------------------------------------------------------------------------


def convert_versions(
    min_version: object = DEFAULT_MIN_VERSION, max_version: object = DEFAULT_MAX_VERSION
) -> tuple[ProtocolVersion, ProtocolVersion]:
    """``min_version`` and ``max_version``: two supported versions, in order."""
    low = convert_version(min_version, "min_version")
    high = convert_version(max_version, "max_version")
    if low > high:
        # SSLFile applies Pike's rule (raise max to min); a Context made
        # directly is told plainly.
        raise ValueError(
            f"min_version {version_name(low)} is above max_version {version_name(high)}"
        )
    return low, high


def convert_cipher_suites(
    cipher_suites: object,
    min_version: ProtocolVersion = DEFAULT_MIN_VERSION,
    max_version: ProtocolVersion = DEFAULT_MAX_VERSION,
) -> tuple[CipherSuite, ...]:
    """``cipher_suites`` (None: the defaults), given the converted versions."""
    suites = _enum_tuple(
        CipherSuite,
        DEFAULT_CIPHER_SUITES if cipher_suites is None else cipher_suites,
        "cipher suite",
        "cipher_suites",
        [c for c in CipherSuite if c in ALL_CIPHER_SUITES],
    )
    # A version without suites is simply never negotiated (as with
    # OpenSSL's separate 1.2/1.3 lists); only "no version at all" is an
    # error, because then no handshake can ever succeed.
    versions = [v for v in SUPPORTED_VERSIONS if min_version <= v <= max_version]
    usable = [
        v
        for v in versions
        if any(
            (suite in TLS13_CIPHER_SUITES) == (v == ProtocolVersion.TLS_1_3)
            for suite in suites
        )
    ]
    if not usable:
        enabled = " or ".join(version_name(v) for v in versions)
        raise ValueError(
            f"cipher_suites has no suite for {enabled}; add one or change "
            f"min_version/max_version"
        )
    return suites


def convert_groups(groups: object) -> tuple[NamedGroup, ...]:
    """``groups`` (None: the defaults)."""
    return _enum_tuple(
        NamedGroup,
        DEFAULT_GROUPS if groups is None else groups,
        "group",
        "groups",
        SUPPORTED_GROUPS,
    )


def convert_key_share_groups(
    key_share_groups: object, groups: tuple[NamedGroup, ...]
) -> tuple[NamedGroup, ...]:
    """``key_share_groups``, given the converted ``groups``.

    None: the default shares that are among ``groups``, else the first group.
    """
    if key_share_groups is None:
        shares = tuple(g for g in DEFAULT_KEY_SHARE_GROUPS if g in groups)
        return shares or groups[:1]
    # Empty is legal: the client then waits for a HelloRetryRequest
    # (RFC 8446 §4.2.8), trading a round trip for a smaller hello.
    shares = _enum_tuple(
        NamedGroup,
        key_share_groups,
        "group",
        "key_share_groups",
        SUPPORTED_GROUPS,
        allow_empty=True,
    )
    stray = [g.name for g in shares if g not in groups]
    if stray:
        raise ValueError(
            f"key_share_groups {', '.join(stray)} not in groups "
            f"(RFC 8446 §4.2.8: every share must be an offered group)"
        )
    return shares


def convert_signature_schemes(signature_schemes: object) -> tuple[SignatureScheme, ...]:
    """``signature_schemes`` (None: the defaults, which are all we verify)."""
    return _enum_tuple(
        SignatureScheme,
        DEFAULT_SIGNATURE_SCHEMES if signature_schemes is None else signature_schemes,
        "signature scheme",
        "signature_schemes",
        DEFAULT_SIGNATURE_SCHEMES,
    )


def convert_random(random: object) -> Callable[[int], bytes]:
    """``random``: the source of every random byte the engine uses."""
    if not callable(random):
        raise ValueError(f"random must be a callable(n) -> bytes, not {random!r}")
    return random


def convert_clock(clock: object) -> Callable[[], float]:
    """``clock``: seconds since the epoch, for ticket ages and validity."""
    if not callable(clock):
        raise ValueError(f"clock must be a callable() -> float, not {clock!r}")
    return clock


def convert_keylog(keylog: object) -> Callable[[str], None] | None:
    """``keylog``: None, or where NSS key log lines go (off by default)."""
    if keylog is not None and not callable(keylog):
        raise ValueError(
            f"keylog must be None or a callable(line: str), not {keylog!r}"
        )
    return keylog


def convert_max_handshake_message_size(value: object) -> int:
    """``max_handshake_message_size``: 2^14 to 2^24-1 bytes."""
    return convert_int(
        value,
        "max_handshake_message_size",
        _MIN_HANDSHAKE_MESSAGE_SIZE,
        _MAX_HANDSHAKE_MESSAGE_SIZE,
    )


def convert_max_certificate_chain_length(value: object) -> int:
    """``max_certificate_chain_length``: 1 to 255 certificates."""
    return convert_int(value, "max_certificate_chain_length", 1, 255)


def convert_record_size_limit(value: object) -> int | None:
    """``record_size_limit`` (RFC 8449): None (not sent) or 64 to 2^14+1."""
    if value is None:
        return None
    return convert_int(value, "record_size_limit", *RECORD_SIZE_LIMIT_RANGE)


def convert_session_lifetime(value: object) -> int:
    """``session_lifetime``: 1 second to RFC 8446 §4.6.1's 7 days."""
    return convert_int(value, "session_lifetime", 1, MAX_SESSION_LIFETIME)


def convert_tickets_per_handshake(value: object) -> int:
    """``tickets_per_handshake``: 0 to 10."""
    return convert_int(value, "tickets_per_handshake", 0, _MAX_TICKETS_PER_HANDSHAKE)


def convert_flag(value: object, option: str) -> bool:
    """A yes/no field: True or False only, so that a string such as
    ``"no"`` (which is true) can never turn a switch on."""
    if not isinstance(value, bool):
        raise ValueError(f"{option} must be True or False, not {value!r}")
    return value


def convert_path(value: object, option: str) -> str | None:
    """An optional file name: None, a str or an ``os.PathLike``."""
    if value is None:
        return None
    if not isinstance(value, (str, os.PathLike)):
        raise ValueError(f"{option} must be a path, not {value!r}")
    return os.fspath(value)


def convert_client_certificate(value: object) -> ClientCertificatePolicy:
    """``client_certificate``: a policy or its value (any case)."""
    policy = value
    if isinstance(policy, str):
        try:
            policy = ClientCertificatePolicy(policy.strip().lower())
        except ValueError:
            policy = None
    if not isinstance(policy, ClientCertificatePolicy):
        raise ValueError(
            f"unknown client_certificate policy {value!r}; "
            f"use one of " + ", ".join(p.value for p in ClientCertificatePolicy)
        )
    return policy
