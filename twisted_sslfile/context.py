"""Context: the policy and credentials that many connections share.

A :class:`Context` is built once (from code, an endpoint string or the twistd
plugin) and then read by every connection made with it, possibly thousands at
a time.  Two consequences shape this module:

* Everything is checked in the constructor, with a :class:`ValueError` whose
  message says what to change.  A bad cipher name or an unreadable key must
  fail when the server starts, not on the first handshake.
* A Context holds no per-connection state and is not changed after
  construction (``__slots__`` plus a guarded ``__setattr__``).  The only
  mutators, :meth:`Context.load_cert_chain` and
  :meth:`Context.set_credentials` (certificate reload), replace the
  credential tuple atomically, so a connection that already read it is
  unaffected.
  :meth:`Context.replace` makes a modified copy.  The session-resumption
  state a Context carries (:class:`~twisted_sslfile.engine.ticketkeys.
  TicketKeys`, :class:`~twisted_sslfile.engine.sessions.SessionCache`) is
  shared by its connections and guards itself; the Context only holds it.

Randomness and time reach the engine only through :attr:`Context.random` and
:attr:`Context.clock`, so a test can inject both and replay a handshake byte
for byte.
"""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.verification import Store

from twisted_sslfile import x509 as _x509
from twisted_sslfile.constants import (
    SUPPORTED_VERSIONS,
    TLS13_CIPHER_SUITES,
    CipherSuite,
    ClientCertificatePolicy,
    NamedGroup,
    ProtocolVersion,
    SignatureScheme,
)
from twisted_sslfile.engine.sessions import (
    DEFAULT_SESSION_LIFETIME,
    MAX_SESSION_LIFETIME,
    SessionCache,
)
from twisted_sslfile.engine.ticketkeys import DEFAULT_ROTATION_INTERVAL, TicketKeys
from twisted_sslfile.x509 import (
    ConfigurationError,
    PasswordType,
    PrivateKey,
    TrustRoots,
    TrustRootsSource,
)

__all__ = [
    "ALL_CIPHER_SUITES",
    "DEFAULT_CIPHER_SUITES",
    "DEFAULT_GROUPS",
    "DEFAULT_KEY_SHARE_GROUPS",
    "DEFAULT_SIGNATURE_SCHEMES",
    "DEFAULT_TICKETS_PER_HANDSHAKE",
    "ConfigurationError",
    "Context",
    "Credential",
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


def _version_name(version: int) -> str:
    return _VERSION_NAMES.get(version, f"0x{int(version):04x}")  # type: ignore[call-overload]


#: TLS 1.3 NewSessionTickets after a full handshake.  Two, as OpenSSL sends:
#: clients should use each ticket once (RFC 8446 §C.4, unlinkability), so
#: two let a client open two parallel connections that both resume.
DEFAULT_TICKETS_PER_HANDSHAKE = 2
_MAX_TICKETS_PER_HANDSHAKE = 10

_SUPPORTED_NAMES = " and ".join(_version_name(v) for v in SUPPORTED_VERSIONS)


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


def _version(value: object, option: str) -> ProtocolVersion:
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
            f"{option}: {_version_name(version)} is not supported; this library "
            f"speaks {_SUPPORTED_NAMES} only"
        )
    return version


def _protocol_names(values: object, option: str) -> tuple[bytes, ...]:
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


def _int_option(value: object, option: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{option} must be an integer, not {value!r}")
    if not low <= value <= high:
        raise ValueError(f"{option} must be between {low} and {high}, not {value}")
    return value


# ---------------------------------------------------------------------------
# Credential
# ---------------------------------------------------------------------------


def _public_key_der(key: object) -> bytes:
    return key.public_bytes(  # type: ignore[attr-defined]
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


class Credential:
    """A certificate chain (leaf first) and the private key of its leaf.

    ``private_key`` is used only through ``.sign(...)`` and ``.public_key()``,
    so an object behaving like a ``cryptography`` private key (a hardware
    token wrapper, a test double) works too.
    """

    __slots__ = (
        "_exact_names",
        "_wildcard_suffixes",
        "chain",
        "chain_der",
        "dns_names",
        "ip_addresses",
        "private_key",
    )

    chain: tuple[x509.Certificate, ...]
    chain_der: tuple[bytes, ...]
    dns_names: tuple[str, ...]
    private_key: PrivateKey

    def __init__(self, chain: Sequence[x509.Certificate], private_key: PrivateKey):
        if isinstance(chain, x509.Certificate):
            chain = [chain]
        chain = tuple(chain)
        if not chain:
            raise ValueError("a credential needs at least one certificate (the leaf)")
        for index, cert in enumerate(chain):
            if not isinstance(cert, x509.Certificate):
                raise ValueError(
                    f"credential chain entry #{index} is {type(cert).__name__}, "
                    f"not a cryptography.x509.Certificate"
                )
        leaf = chain[0]
        if not callable(getattr(private_key, "sign", None)) or not callable(
            getattr(private_key, "public_key", None)
        ):
            raise ValueError(
                f"the private key must have sign() and public_key() methods, "
                f"got {type(private_key).__name__}"
            )
        try:
            leaf_key = leaf.public_key()
        except Exception as e:  # UnsupportedAlgorithm, ValueError
            raise ValueError(
                f"cannot use the key of certificate "
                f"{_x509.describe_certificate(leaf)}: {e}"
            ) from e
        if not _x509.signature_schemes_for_certificate(leaf, ProtocolVersion.TLS_1_2):
            raise ValueError(
                f"certificate {_x509.describe_certificate(leaf)} has a "
                f"{_x509.describe_key(leaf_key)} key; TLS credentials need RSA, "
                f"ECDSA (P-256, P-384, P-521), Ed25519 or Ed448"
            )
        try:
            matches = _public_key_der(private_key.public_key()) == _public_key_der(
                leaf_key
            )
        except Exception as e:
            raise ValueError(
                f"cannot compare the private key with certificate "
                f"{_x509.describe_certificate(leaf)}: {e}"
            ) from e
        if not matches:
            raise ValueError(
                f"the private key ({_x509.describe_key(private_key)}) does not "
                f"match certificate {_x509.describe_certificate(leaf)} "
                f"({_x509.describe_key(leaf_key)} key)"
            )
        self.chain = chain
        self.private_key = private_key
        self.chain_der = tuple(
            c.public_bytes(serialization.Encoding.DER) for c in chain
        )
        names = _x509.certificate_dns_names(leaf)
        ips = _x509.certificate_ip_addresses(leaf)
        if not names and not ips:
            # Selection only, never verification: a certificate without SAN
            # is still served to whoever asks for its CN.
            names = _x509.certificate_common_names(leaf)
        self.dns_names = tuple(dict.fromkeys(n.rstrip(".") for n in names))
        self.ip_addresses = tuple(ips)
        self._exact_names = frozenset(n for n in self.dns_names if "*" not in n)
        self._wildcard_suffixes = frozenset(
            n[2:]
            for n in self.dns_names
            if n.startswith("*.") and "*" not in n[2:] and "." in n[2:]
        )

    @classmethod
    def from_files(
        cls,
        certfile: str | os.PathLike[str],
        keyfile: str | os.PathLike[str] | None = None,
        password: PasswordType = None,
    ) -> Credential:
        """Load a chain and key from PEM files (the key may be in certfile)."""
        chain, key = _x509.load_cert_and_key(certfile, keyfile, password)
        try:
            return cls(chain, key)
        except ValueError as e:
            where = os.fspath(certfile)
            if keyfile is not None:
                where += f" and {os.fspath(keyfile)}"
            raise ConfigurationError(f"{where}: {e}", certfile) from e

    @property
    def certificate(self) -> x509.Certificate:
        """The leaf certificate."""
        return self.chain[0]

    def matches_exactly(self, server_name: str) -> bool:
        """The leaf names ``server_name`` itself (not through a wildcard)."""
        try:
            kind, value = _x509.normalize_server_name(server_name)
        except ValueError:
            return False
        if kind == "ip":
            return value in self.ip_addresses
        return value in self._exact_names

    def matches_wildcard(self, server_name: str) -> bool:
        """A ``*.`` name of the leaf covers ``server_name`` (one label)."""
        try:
            kind, value = _x509.normalize_server_name(server_name)
        except ValueError:
            return False
        if kind == "ip":
            return False
        head, _, tail = value.partition(".")  # type: ignore[union-attr]
        return bool(head) and tail in self._wildcard_suffixes

    def matches(self, server_name: str) -> bool:
        """The leaf is for ``server_name``, exactly or by a wildcard."""
        return self.matches_exactly(server_name) or self.matches_wildcard(server_name)

    def signature_schemes(self, version: int) -> tuple[SignatureScheme, ...]:
        """Schemes this credential's key can sign with in ``version``."""
        return _x509.signature_schemes_for_certificate(self.chain[0], version)

    def __repr__(self) -> str:
        # Never the key itself (DESIGN.md: no secret in a repr).
        leaf = self.chain[0]
        return (
            f"<Credential {_x509.describe_certificate(leaf)} "
            f"({_x509.describe_key(leaf.public_key())}), "
            f"{len(self.chain)} certificate(s)>"
        )


# ---------------------------------------------------------------------------
# Context
# ---------------------------------------------------------------------------

_UNSET: Any = object()


class Context:
    """Policy and credentials for TLS connections, shared and immutable.

    Every argument is keyword-only; see the attribute list for the meaning
    and default of each.  ``trust_roots=None`` means the system CA bundle,
    loaded on first use (a server that never verifies a client needs none);
    an explicit path is loaded now so that a bad file fails at startup.
    Verification of the peer is on unless ``insecure_skip_verify=True``.

    Session resumption (servers; a client passes a ``Session`` to its
    connection instead):

    * ``session_tickets``: the :class:`~twisted_sslfile.engine.ticketkeys.
      TicketKeys` that seal TLS 1.3 tickets and RFC 5077 TLS 1.2 tickets.
      ``None``/``True`` (default): keys of this Context's own, made from
      ``random`` on first use and rotated hourly in memory - tickets then
      resume only in this process.  ``False``: no tickets.
    * ``ticket_key_file``: a key file (see :func:`~twisted_sslfile.engine.
      ticketkeys.read_key_file`) shared by the processes or machines that must
      resume each other's sessions; read now, re-read when it changes.
    * ``session_cache``: the TLS 1.2 session-ID cache; ``None``/``True``
      (default): one of this Context's own; ``False``: no session IDs.
    * ``session_lifetime``: seconds a session may be resumed, 1 to 604800
      (RFC 8446 §4.6.1's 7 days); default 7200.
    * ``tickets_per_handshake``: TLS 1.3 NewSessionTickets sent after a full
      handshake, 0 to 10; default 2.
    * ``allow_psk_ke``: also accept TLS 1.3 resumption without a fresh
      (EC)DHE exchange (psk_ke, RFC 8446 §4.2.9).  Off by default: psk_ke
      gives up forward secrecy for everything sent under the ticket.
    * ``allow_peer_renegotiation``: let the TLS 1.2 peer start a
      renegotiation.  Off by default: the peer is refused with a
      no_renegotiation warning (our own ``renegotiate()`` always works).

    Debugging:

    * ``keylog``: None (default), or a callable that receives each
      connection's secrets as lines of the NSS key log format (``label
      client_random_hex secret_hex``, no newline), so that Wireshark can
      decrypt a capture: ``CLIENT_RANDOM`` for TLS 1.2; the handshake and
      first application traffic secrets and ``EXPORTER_SECRET`` for TLS 1.3.
      Whoever reads those lines can decrypt the connections (see "Key
      logging" in docs/security.rst).  The engine does no file I/O: pass a
      :class:`~twisted_sslfile.KeyLogFile` to append to a file.  The
      library never reads ``SSLKEYLOGFILE``; only the command-line client
      does.  An exception from the callable fails the handshake
      (internal_error).

    :meth:`replace` hands the copy the same ticket keys and session cache,
    so sessions resume across copies - unless the change is to ``random``,
    ``clock`` or ``session_lifetime`` and they were this Context's defaults.
    """

    __slots__ = (
        "_default_session_cache",
        "_default_session_tickets",
        "_frozen",
        "_trust_anchors",
        "allow_peer_renegotiation",
        "allow_psk_ke",
        "alpn_protocols",
        "cipher_suites",
        "client_certificate",
        "clock",
        "credentials",
        "groups",
        "insecure_skip_verify",
        "key_share_groups",
        "keylog",
        "max_certificate_chain_length",
        "max_handshake_message_size",
        "max_version",
        "min_version",
        "npn_protocols",
        "random",
        "record_size_limit",
        "session_cache",
        "session_lifetime",
        "session_tickets",
        "signature_schemes",
        "ticket_key_file",
        "tickets_per_handshake",
        "trust_roots",
    )

    credentials: tuple[Credential, ...]
    trust_roots: TrustRootsSource
    insecure_skip_verify: bool
    client_certificate: ClientCertificatePolicy
    min_version: ProtocolVersion
    max_version: ProtocolVersion
    cipher_suites: tuple[CipherSuite, ...]
    groups: tuple[NamedGroup, ...]
    key_share_groups: tuple[NamedGroup, ...]
    signature_schemes: tuple[SignatureScheme, ...]
    alpn_protocols: tuple[bytes, ...]
    npn_protocols: tuple[bytes, ...]
    random: Callable[[int], bytes]
    clock: Callable[[], float]
    max_handshake_message_size: int
    max_certificate_chain_length: int
    record_size_limit: int | None
    session_tickets: TicketKeys | None
    ticket_key_file: str | None
    session_cache: SessionCache | None
    session_lifetime: int
    tickets_per_handshake: int
    allow_psk_ke: bool
    allow_peer_renegotiation: bool
    keylog: Callable[[str], None] | None

    def __init__(
        self,
        *,
        credentials: Iterable[Credential] = (),
        trust_roots: TrustRootsSource = None,
        insecure_skip_verify: bool = False,
        client_certificate: ClientCertificatePolicy | str = (
            ClientCertificatePolicy.NONE
        ),
        min_version: ProtocolVersion | int | str = ProtocolVersion.TLS_1_2,
        max_version: ProtocolVersion | int | str = ProtocolVersion.TLS_1_3,
        cipher_suites: Iterable[CipherSuite | int | str] | None = None,
        groups: Iterable[NamedGroup | int | str] | None = None,
        key_share_groups: Iterable[NamedGroup | int | str] | None = None,
        signature_schemes: Iterable[SignatureScheme | int | str] | None = None,
        alpn_protocols: Iterable[bytes | str] = (),
        npn_protocols: Iterable[bytes | str] = (),
        random: Callable[[int], bytes] = os.urandom,
        clock: Callable[[], float] = time.time,
        max_handshake_message_size: int = DEFAULT_MAX_HANDSHAKE_MESSAGE_SIZE,
        max_certificate_chain_length: int = DEFAULT_MAX_CERTIFICATE_CHAIN_LENGTH,
        record_size_limit: int | None = None,
        session_tickets: TicketKeys | bool | None = None,
        ticket_key_file: str | os.PathLike[str] | None = None,
        session_cache: SessionCache | bool | None = None,
        session_lifetime: int = DEFAULT_SESSION_LIFETIME,
        tickets_per_handshake: int = DEFAULT_TICKETS_PER_HANDSHAKE,
        allow_psk_ke: bool = False,
        allow_peer_renegotiation: bool = False,
        keylog: Callable[[str], None] | None = None,
    ) -> None:
        s = object.__setattr__
        s(self, "_frozen", False)

        # --- versions -----------------------------------------------------
        low = _version(min_version, "min_version")
        high = _version(max_version, "max_version")
        if low > high:
            # SSLFile applies Pike's rule (raise max to min); a Context made
            # directly is told plainly.
            raise ValueError(
                f"min_version {_version_name(low)} is above max_version "
                f"{_version_name(high)}"
            )
        s(self, "min_version", low)
        s(self, "max_version", high)

        # --- cipher suites ------------------------------------------------
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
        usable = [
            v
            for v in self.versions
            if any(
                (suite in TLS13_CIPHER_SUITES) == (v == ProtocolVersion.TLS_1_3)
                for suite in suites
            )
        ]
        if not usable:
            enabled = " or ".join(_version_name(v) for v in self.versions)
            raise ValueError(
                f"cipher_suites has no suite for {enabled}; add one or change "
                f"min_version/max_version"
            )
        s(self, "cipher_suites", suites)

        # --- groups -------------------------------------------------------
        supported_groups = [
            g for g in NamedGroup if g != NamedGroup.X25519MLKEM768 or _MLKEM_AVAILABLE
        ]
        group_tuple = _enum_tuple(
            NamedGroup,
            DEFAULT_GROUPS if groups is None else groups,
            "group",
            "groups",
            supported_groups,
        )
        s(self, "groups", group_tuple)
        if key_share_groups is None:
            shares = tuple(g for g in DEFAULT_KEY_SHARE_GROUPS if g in group_tuple)
            if not shares:
                shares = group_tuple[:1]
        else:
            # Empty is legal: the client then waits for a HelloRetryRequest
            # (RFC 8446 §4.2.8), trading a round trip for a smaller hello.
            shares = _enum_tuple(
                NamedGroup,
                key_share_groups,
                "group",
                "key_share_groups",
                supported_groups,
                allow_empty=True,
            )
            stray = [g.name for g in shares if g not in group_tuple]
            if stray:
                raise ValueError(
                    f"key_share_groups {', '.join(stray)} not in groups "
                    f"(RFC 8446 §4.2.8: every share must be an offered group)"
                )
        s(self, "key_share_groups", shares)

        # --- signature schemes --------------------------------------------
        s(
            self,
            "signature_schemes",
            _enum_tuple(
                SignatureScheme,
                (
                    DEFAULT_SIGNATURE_SCHEMES
                    if signature_schemes is None
                    else signature_schemes
                ),
                "signature scheme",
                "signature_schemes",
                DEFAULT_SIGNATURE_SCHEMES,
            ),
        )

        # --- application protocols ----------------------------------------
        s(self, "alpn_protocols", _protocol_names(alpn_protocols, "alpn_protocols"))
        s(self, "npn_protocols", _protocol_names(npn_protocols, "npn_protocols"))

        # --- injected randomness and time ---------------------------------
        if not callable(random):
            raise ValueError(f"random must be a callable(n) -> bytes, not {random!r}")
        if not callable(clock):
            raise ValueError(f"clock must be a callable() -> float, not {clock!r}")
        s(self, "random", random)
        s(self, "clock", clock)
        if keylog is not None and not callable(keylog):
            raise ValueError(
                f"keylog must be None or a callable(line: str), not {keylog!r}"
            )
        s(self, "keylog", keylog)

        # --- limits -------------------------------------------------------
        s(
            self,
            "max_handshake_message_size",
            _int_option(
                max_handshake_message_size,
                "max_handshake_message_size",
                _MIN_HANDSHAKE_MESSAGE_SIZE,
                _MAX_HANDSHAKE_MESSAGE_SIZE,
            ),
        )
        s(
            self,
            "max_certificate_chain_length",
            _int_option(
                max_certificate_chain_length, "max_certificate_chain_length", 1, 255
            ),
        )
        if record_size_limit is not None:
            record_size_limit = _int_option(
                record_size_limit, "record_size_limit", *RECORD_SIZE_LIMIT_RANGE
            )
        s(self, "record_size_limit", record_size_limit)

        # --- session resumption -------------------------------------------
        for option, flag in (
            ("allow_psk_ke", allow_psk_ke),
            ("allow_peer_renegotiation", allow_peer_renegotiation),
        ):
            if not isinstance(flag, bool):
                raise ValueError(f"{option} must be True or False, not {flag!r}")
        s(self, "allow_psk_ke", allow_psk_ke)
        s(self, "allow_peer_renegotiation", allow_peer_renegotiation)
        lifetime = _int_option(
            session_lifetime, "session_lifetime", 1, MAX_SESSION_LIFETIME
        )
        s(self, "session_lifetime", lifetime)
        s(
            self,
            "tickets_per_handshake",
            _int_option(
                tickets_per_handshake,
                "tickets_per_handshake",
                0,
                _MAX_TICKETS_PER_HANDSHAKE,
            ),
        )
        s(self, "ticket_key_file", None)
        if ticket_key_file is not None:
            if not isinstance(ticket_key_file, (str, os.PathLike)):
                raise ValueError(
                    f"ticket_key_file must be a path, not {ticket_key_file!r}"
                )
            s(self, "ticket_key_file", os.fspath(ticket_key_file))
        s(self, "_default_session_tickets", False)
        if session_tickets is None or session_tickets is True:
            if self.ticket_key_file is not None:
                # Raises TicketKeyFileError (a ConfigurationError) naming it.
                tickets: TicketKeys | None = TicketKeys.from_file(
                    self.ticket_key_file, clock=clock, random=random
                )
            else:
                # No key is made until the first ticket is sealed.
                tickets = TicketKeys(
                    random=random,
                    clock=clock,
                    rotation_interval=min(DEFAULT_ROTATION_INTERVAL, lifetime),
                    decrypt_window=lifetime,
                )
                s(self, "_default_session_tickets", True)
        elif session_tickets is False:
            if self.ticket_key_file is not None:
                raise ValueError(
                    "ticket_key_file is set but session_tickets=False turns "
                    "tickets off; drop one of them"
                )
            tickets = None
        elif isinstance(session_tickets, TicketKeys):
            if (
                self.ticket_key_file is not None
                and session_tickets.path != self.ticket_key_file
            ):
                raise ValueError("give session_tickets or ticket_key_file, not both")
            tickets = session_tickets
        else:
            raise ValueError(
                f"session_tickets must be a TicketKeys, None (keys of this "
                f"Context's own) or False (no tickets), not {session_tickets!r}"
            )
        s(self, "session_tickets", tickets)
        s(self, "_default_session_cache", False)
        if session_cache is None or session_cache is True:
            cache: SessionCache | None = SessionCache(clock=clock, lifetime=lifetime)
            s(self, "_default_session_cache", True)
        elif session_cache is False:
            cache = None
        elif isinstance(session_cache, SessionCache):
            cache = session_cache
        else:
            raise ValueError(
                f"session_cache must be a SessionCache, None (a cache of this "
                f"Context's own) or False (no session IDs), not {session_cache!r}"
            )
        s(self, "session_cache", cache)

        # --- verification -------------------------------------------------
        if not isinstance(insecure_skip_verify, bool):
            raise ValueError(
                f"insecure_skip_verify must be True or False, not "
                f"{insecure_skip_verify!r}"
            )
        s(self, "insecure_skip_verify", insecure_skip_verify)
        policy = client_certificate
        if isinstance(policy, str):
            try:
                policy = ClientCertificatePolicy(policy.strip().lower())
            except ValueError:
                policy = None  # type: ignore[assignment]
        if not isinstance(policy, ClientCertificatePolicy):
            raise ValueError(
                f"unknown client_certificate policy {client_certificate!r}; "
                f"use one of " + ", ".join(p.value for p in ClientCertificatePolicy)
            )
        s(self, "client_certificate", policy)
        s(self, "trust_roots", trust_roots)
        s(self, "_trust_anchors", None)
        if trust_roots is not None:
            # Explicit roots: load now, so a bad path fails at startup.
            s(self, "_trust_anchors", _x509.load_trust_roots(trust_roots))

        # --- credentials --------------------------------------------------
        if isinstance(credentials, Credential):
            credentials = (credentials,)
        creds = tuple(credentials)
        for cred in creds:
            if not isinstance(cred, Credential):
                raise ValueError(
                    f"credentials must be Credential objects, not "
                    f"{type(cred).__name__}; use Credential(chain, key) or "
                    f"Context.load_cert_chain()"
                )
        s(self, "credentials", creds)
        s(self, "_frozen", True)

    # -- immutability -------------------------------------------------------

    def __setattr__(self, name: str, value: object) -> None:
        if getattr(self, "_frozen", False):
            raise AttributeError(
                f"Context is shared by connections and cannot be changed; use "
                f"context.replace({name}=...) to make a new one"
            )
        object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        raise AttributeError("Context attributes cannot be deleted")

    def replace(self, **changes: Any) -> Context:
        """A new Context with some constructor arguments changed."""
        arguments: dict[str, Any] = {
            "credentials": self.credentials,
            # Explicit roots were loaded in __init__: hand them over rather
            # than read the files again.  None stays None (lazy system roots).
            "trust_roots": (None if self.trust_roots is None else self._trust_anchors),
            "insecure_skip_verify": self.insecure_skip_verify,
            "client_certificate": self.client_certificate,
            "min_version": self.min_version,
            "max_version": self.max_version,
            "cipher_suites": self.cipher_suites,
            "groups": self.groups,
            "key_share_groups": self.key_share_groups,
            "signature_schemes": self.signature_schemes,
            "alpn_protocols": self.alpn_protocols,
            "npn_protocols": self.npn_protocols,
            "random": self.random,
            "clock": self.clock,
            "max_handshake_message_size": self.max_handshake_message_size,
            "max_certificate_chain_length": self.max_certificate_chain_length,
            "record_size_limit": self.record_size_limit,
            "session_tickets": (
                False if self.session_tickets is None else self.session_tickets
            ),
            "ticket_key_file": self.ticket_key_file,
            "session_cache": (
                False if self.session_cache is None else self.session_cache
            ),
            "session_lifetime": self.session_lifetime,
            "tickets_per_handshake": self.tickets_per_handshake,
            "allow_psk_ke": self.allow_psk_ke,
            "allow_peer_renegotiation": self.allow_peer_renegotiation,
            "keylog": self.keylog,
        }
        unknown = set(changes) - set(arguments)
        if unknown:
            raise TypeError(
                f"unknown Context argument(s): {', '.join(sorted(unknown))}"
            )
        if "groups" in changes and "key_share_groups" not in changes:
            arguments["key_share_groups"] = None
        # Ticket keys and session cache are shared with the copy, except
        # defaults that the change would have shaped differently.
        shaping = {"random", "clock", "session_lifetime"} & set(changes)
        if "session_tickets" in changes:
            arguments["ticket_key_file"] = None
        elif (
            "ticket_key_file" in changes
            or (shaping and self._default_session_tickets)
            or (self.ticket_key_file is not None and shaping & {"random", "clock"})
        ):
            arguments["session_tickets"] = None
        if (
            "session_cache" not in changes
            and self._default_session_cache
            and shaping & {"clock", "session_lifetime"}
        ):
            arguments["session_cache"] = None
        arguments.update(changes)
        copy = Context(**arguments)
        for flag, value in (
            ("_default_session_tickets", "session_tickets"),
            ("_default_session_cache", "session_cache"),
        ):
            if getattr(self, flag) and getattr(copy, value) is getattr(self, value):
                object.__setattr__(copy, flag, True)
        return copy

    # -- derived views ------------------------------------------------------

    @property
    def verify(self) -> bool:
        """Verify the peer's chain (and, as a client, its name)."""
        return not self.insecure_skip_verify

    @property
    def versions(self) -> tuple[ProtocolVersion, ...]:
        """Enabled versions, lowest first."""
        return tuple(
            v for v in SUPPORTED_VERSIONS if self.min_version <= v <= self.max_version
        )

    @property
    def server_names(self) -> tuple[str, ...]:
        """Every DNS name (wildcards included) the credentials are for."""
        names: dict[str, None] = {}
        for cred in self.credentials:
            for name in cred.dns_names:
                names.setdefault(name, None)
        return tuple(names)

    @property
    def trust_anchors(self) -> TrustRoots:
        """The trust roots, loaded on first use (system bundle by default).

        Raises :class:`ConfigurationError` when no system bundle is found.
        Loading twice from two threads is harmless; the last one is kept.
        """
        anchors = self._trust_anchors
        if anchors is None:
            anchors = _x509.load_trust_roots(self.trust_roots)
            object.__setattr__(self, "_trust_anchors", anchors)
        return anchors

    @property
    def trust_store(self) -> Store:
        """The ``cryptography.x509.verification.Store`` of the trust roots."""
        return self.trust_anchors.store

    # -- credentials ----------------------------------------------------------

    def load_cert_chain(
        self,
        certfile: str | os.PathLike[str],
        keyfile: str | os.PathLike[str] | None = None,
        password: PasswordType = None,
    ) -> Credential:
        """Add a credential from PEM files, like ``ssl.SSLContext``'s method.

        The key may be in ``certfile`` (then leave ``keyfile`` out).  Returns
        the new credential.  The credential tuple is swapped in one step, so
        connections running meanwhile see either the old or the new tuple.
        """
        credential = Credential.from_files(certfile, keyfile, password)
        object.__setattr__(self, "credentials", (*self.credentials, credential))
        return credential

    def set_credentials(self, credentials: Iterable[Credential]) -> None:
        """Replace every credential at once (a certificate reload).

        The new tuple is swapped in one step: a handshake that already
        picked its credential keeps it, the next one sees only the new set.
        Each credential's key has already been matched with its certificate
        by :class:`Credential`, so a half-written pair can never get here.
        The first credential is the default (no or unknown SNI).
        """
        creds = tuple(credentials)
        for cred in creds:
            if not isinstance(cred, Credential):
                raise ValueError(
                    f"credentials must be Credential objects, not {type(cred).__name__}"
                )
        object.__setattr__(self, "credentials", creds)

    def select_credential(
        self,
        server_name: str | None,
        peer_signature_schemes: Iterable[int] | None,
        version: int,
    ) -> Credential | None:
        """Pick the credential to present.

        Preference: a credential naming ``server_name`` exactly, then one
        covering it by a one-label wildcard, then any (the first configured
        is the default, as with OpenSSL's default certificate).  Within each
        tier the first whose key can sign with a scheme the peer offered -
        and we allow - wins.  ``peer_signature_schemes=None`` means the peer
        did not restrict them.  Returns None when no credential's key can
        sign acceptably (the engine then sends handshake_failure) or there
        are none.
        """
        # Read once: set_credentials may swap the tuple between handshakes.
        credentials = self.credentials
        if not credentials:
            return None
        tiers: list[Iterable[Credential]] = []
        if server_name:
            tiers.append(c for c in credentials if c.matches_exactly(server_name))
            tiers.append(c for c in credentials if c.matches_wildcard(server_name))
        tiers.append(credentials)
        for tier in tiers:
            for credential in tier:
                if (
                    self.choose_signature_scheme(
                        credential, peer_signature_schemes, version
                    )
                    is not None
                ):
                    return credential
        return None

    def choose_signature_scheme(
        self,
        credential: Credential,
        peer_signature_schemes: Iterable[int] | None,
        version: int,
    ) -> SignatureScheme | None:
        """Our most preferred scheme that the key, we and the peer all allow."""
        own = set(credential.signature_schemes(version))
        peer = None if peer_signature_schemes is None else set(peer_signature_schemes)
        for scheme in self.signature_schemes:
            if scheme in own and (peer is None or int(scheme) in peer):
                return scheme
        return None

    def __repr__(self) -> str:
        verify = "insecure_skip_verify" if self.insecure_skip_verify else "verify"
        return (
            f"<Context {_version_name(self.min_version)}.."
            f"{_version_name(self.max_version)} {verify} "
            f"{len(self.credentials)} credential(s)>"
        )
