"""The fields of a session: their checks and their wire encoding.

:class:`~.sessions.Session` and :class:`~.sessions.ServerSessionState`
check every field they are given with these helpers (each raises
ValueError naming the field) and encode them with the wire helpers;
:mod:`.ticketkeys` and :mod:`twisted_sslfile.ticketkeyfile` check their
durations with :func:`_positive_seconds`.  The session classes, their
formats and the cache stay in :mod:`.sessions`.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterable

from ..constants import TLS13_CIPHER_SUITES, CipherSuite, ProtocolVersion
from .buffer import Reader, Writer
from .suites import CIPHER_SUITES

_UINT32 = 2**32 - 1

_TLS12 = ProtocolVersion.TLS_1_2
_TLS13 = ProtocolVersion.TLS_1_3

#: :attr:`.sessions.Session.verification_policy`: a SHA-256 digest, or empty.
_POLICY_LENGTH = 32


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
    # A tuple or list passes without the Iterable ABC check (a Python-level
    # __instancecheck__, about 1 µs, on every session built).
    if not isinstance(value, (tuple, list)) and (
        isinstance(value, (bytes, str)) or not isinstance(value, Iterable)
    ):
        raise ValueError("peer_certificates must be a sequence of DER bytes")
    certs = tuple(_bytes(c, "a peer certificate", 1, 2**24 - 1) for c in value)
    if sum(3 + len(c) for c in certs) > 2**24 - 1:
        raise ValueError("peer_certificates are longer than 2^24-1 bytes in total")
    return certs


def _bool(value: object, name: str) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be True or False, not {value!r}")
    return value


def _policy(verified: object, value: object) -> bytes:
    """A ``verification_policy``: 32 bytes when ``verified``, else empty."""
    _bool(verified, "verified")
    policy = _bytes(value, "verification_policy", 0, _POLICY_LENGTH)
    if len(policy) not in (0, _POLICY_LENGTH):
        raise ValueError(
            f"verification_policy must be empty or {_POLICY_LENGTH} bytes long"
        )
    if verified != bool(policy):
        raise ValueError(
            "a verified session needs the verification_policy it was "
            "verified under, and an unverified one has none"
        )
    return policy


def _secret_length(version: ProtocolVersion, suite: CipherSuite) -> int:
    # TLS 1.3: the PSK is Hash.length bytes (RFC 8446 §4.6.1, HKDF-Expand-Label
    # with Hash.length).  TLS 1.2: the master secret is 48 bytes (RFC 5246 §8.1).
    if version == _TLS13:
        return CIPHER_SUITES[suite].hash_length
    return 48


# Wire helpers for the two encodings of engine.sessions.  Both use the TLS vector
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
# Helpers shared with engine.ticketkeys
# ---------------------------------------------------------------------------


def _positive_seconds(value: object, name: str, *, allow_zero: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name} must be a number of seconds, not {value!r}")
    value = float(value)
    if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        raise ValueError(
            f"{name} must be {'>= 0' if allow_zero else '> 0'} seconds, not {value!r}"
        )
    return value
