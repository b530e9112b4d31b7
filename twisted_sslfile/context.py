"""Context: the policy and credentials that many connections share.

A :class:`Context` is built once (from code, an endpoint string or the twistd
plugin) and then read by every connection made with it, possibly thousands at
a time.  Two consequences shape this module:

* Everything is checked in the constructor, with a :class:`ValueError` whose
  message says what to change.  A bad cipher name or an unreadable key must
  fail when the server starts, not on the first handshake.  The constructor
  runs a table of fields, each with its converter (most of them in
  :mod:`twisted_sslfile.context_fields`, which the ``sslfile:`` endpoint
  parser uses too).
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
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.verification import Store

from twisted_sslfile import x509 as _x509
from twisted_sslfile.constants import (
    SUPPORTED_VERSIONS,
    CipherSuite,
    ClientCertificatePolicy,
    NamedGroup,
    ProtocolVersion,
    SignatureScheme,
)
from twisted_sslfile.context_fields import (
    ALL_CIPHER_SUITES,
    DEFAULT_CIPHER_SUITES,
    DEFAULT_GROUPS,
    DEFAULT_KEY_SHARE_GROUPS,
    DEFAULT_MAX_CERTIFICATE_CHAIN_LENGTH,
    DEFAULT_MAX_HANDSHAKE_MESSAGE_SIZE,
    DEFAULT_MAX_VERSION,
    DEFAULT_MIN_VERSION,
    DEFAULT_SIGNATURE_SCHEMES,
    DEFAULT_TICKETS_PER_HANDSHAKE,
    convert_cipher_suites,
    convert_client_certificate,
    convert_clock,
    convert_flag,
    convert_groups,
    convert_key_share_groups,
    convert_keylog,
    convert_max_certificate_chain_length,
    convert_max_handshake_message_size,
    convert_path,
    convert_protocol_names,
    convert_random,
    convert_record_size_limit,
    convert_session_lifetime,
    convert_signature_schemes,
    convert_tickets_per_handshake,
    convert_versions,
    version_name,
)
from twisted_sslfile.engine.certificates import VerificationPolicy
from twisted_sslfile.engine.sessions import DEFAULT_SESSION_LIFETIME, SessionCache
from twisted_sslfile.engine.ticketkeys import DEFAULT_ROTATION_INTERVAL, TicketKeys
from twisted_sslfile.errors import ConfigurationError
from twisted_sslfile.ticketkeyfile import FileTicketKeys
from twisted_sslfile.x509 import (
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
        "_schemes",
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
        # Asked on every handshake; the key and its certificate never change.
        self._schemes: dict[int, tuple[SignatureScheme, ...]] = {
            version: _x509.signature_schemes_for_certificate(leaf, version)
            for version in (ProtocolVersion.TLS_1_2, ProtocolVersion.TLS_1_3)
        }

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
        schemes = self._schemes.get(version)
        if schemes is None:
            schemes = _x509.signature_schemes_for_certificate(self.chain[0], version)
        return schemes

    def __repr__(self) -> str:
        # Never the key itself (DESIGN.md: no secret in a repr).
        leaf = self.chain[0]
        return (
            f"<Credential {_x509.describe_certificate(leaf)} "
            f"({_x509.describe_key(leaf.public_key())}), "
            f"{len(self.chain)} certificate(s)>"
        )


# ---------------------------------------------------------------------------
# Converters of the fields holding shared objects
# ---------------------------------------------------------------------------
# The policy fields' converters are in context_fields; these four build or
# load the objects a Context shares with its connections.


def convert_session_tickets(
    session_tickets: object,
    ticket_key_file: str | None = None,
    random: Callable[[int], bytes] = os.urandom,
    clock: Callable[[], float] = time.time,
    session_lifetime: int = DEFAULT_SESSION_LIFETIME,
) -> tuple[TicketKeys | None, bool]:
    """The ticket keys, and whether they are this Context's own defaults.

    ``ticket_key_file`` (converted), ``random``, ``clock`` and
    ``session_lifetime`` (checked) shape the keys made here.
    """
    if session_tickets is None or session_tickets is True:
        if ticket_key_file is not None:
            # Raises TicketKeyFileError (a ConfigurationError) naming it.
            return FileTicketKeys(ticket_key_file, clock=clock, random=random), False
        # No key is made until the first ticket is sealed.
        keys = TicketKeys(
            random=random,
            clock=clock,
            rotation_interval=min(DEFAULT_ROTATION_INTERVAL, session_lifetime),
            decrypt_window=session_lifetime,
            # Connections in several threads may share this Context.
            lock=threading.Lock(),
        )
        return keys, True
    if session_tickets is False:
        if ticket_key_file is not None:
            raise ValueError(
                "ticket_key_file is set but session_tickets=False turns "
                "tickets off; drop one of them"
            )
        return None, False
    if isinstance(session_tickets, TicketKeys):
        if ticket_key_file is not None and session_tickets.path != ticket_key_file:
            raise ValueError("give session_tickets or ticket_key_file, not both")
        return session_tickets, False
    raise ValueError(
        f"session_tickets must be a TicketKeys, None (keys of this "
        f"Context's own) or False (no tickets), not {session_tickets!r}"
    )


def convert_session_cache(
    session_cache: object,
    clock: Callable[[], float] = time.time,
    session_lifetime: int = DEFAULT_SESSION_LIFETIME,
) -> tuple[SessionCache | None, bool]:
    """The TLS 1.2 session-ID cache, and whether it is this Context's own."""
    if session_cache is None or session_cache is True:
        # Connections in several threads may share this Context.
        return (
            SessionCache(clock=clock, lifetime=session_lifetime, lock=threading.Lock()),
            True,
        )
    if session_cache is False:
        return None, False
    if isinstance(session_cache, SessionCache):
        return session_cache, False
    raise ValueError(
        f"session_cache must be a SessionCache, None (a cache of this "
        f"Context's own) or False (no session IDs), not {session_cache!r}"
    )


def convert_trust_roots(
    trust_roots: TrustRootsSource,
) -> tuple[TrustRootsSource, TrustRoots | None]:
    """The roots as given, and the loaded ones (None: the system bundle,
    loaded on first use, so that a server that never verifies needs none)."""
    if trust_roots is None:
        return None, None
    # Explicit roots: load now, so a bad path fails at startup.
    return trust_roots, _x509.load_trust_roots(trust_roots)


def convert_credentials(
    credentials: Credential | Iterable[object],
) -> tuple[Credential, ...]:
    """``credentials``: a Credential or an iterable of them."""
    if isinstance(credentials, Credential):
        return (credentials,)
    creds: list[Credential] = []
    for cred in credentials:
        if not isinstance(cred, Credential):
            raise ValueError(
                f"credentials must be Credential objects, not "
                f"{type(cred).__name__}; use Credential(chain, key) or "
                f"Context.load_cert_chain()"
            )
        creds.append(cred)
    return tuple(creds)


# ---------------------------------------------------------------------------
# The table of fields
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Field:
    """One row: the attributes ``convert`` sets, from which arguments.

    ``convert`` gets the values of ``reads`` in order - already converted
    when an earlier row set them - and returns the attribute's value, or a
    tuple of values when it sets several attributes.
    """

    attributes: tuple[str, ...]
    convert: Callable[..., Any]
    reads: tuple[str, ...]


def _field(attributes: str, convert: Callable[..., Any], reads: str = "") -> _Field:
    names = tuple(attributes.split())
    return _Field(names, convert, tuple(reads.split()) or names)


def _flag(option: str) -> Callable[[object], bool]:
    return partial(convert_flag, option=option)


def _protocols(option: str) -> Callable[[object], tuple[bytes, ...]]:
    return partial(convert_protocol_names, option=option)


#: Every Context field, in the order they are checked (so with several bad
#: arguments the first in this order is reported).  A test checks that the
#: rows read every constructor argument and set every attribute.
_FIELDS: tuple[_Field, ...] = (
    _field("min_version max_version", convert_versions),
    _field(
        "cipher_suites", convert_cipher_suites, "cipher_suites min_version max_version"
    ),
    _field("groups", convert_groups),
    _field("key_share_groups", convert_key_share_groups, "key_share_groups groups"),
    _field("signature_schemes", convert_signature_schemes),
    _field("alpn_protocols", _protocols("alpn_protocols")),
    _field("npn_protocols", _protocols("npn_protocols")),
    _field("random", convert_random),
    _field("clock", convert_clock),
    _field("keylog", convert_keylog),
    _field("max_handshake_message_size", convert_max_handshake_message_size),
    _field("max_certificate_chain_length", convert_max_certificate_chain_length),
    _field("record_size_limit", convert_record_size_limit),
    _field("allow_psk_ke", _flag("allow_psk_ke")),
    _field("allow_peer_renegotiation", _flag("allow_peer_renegotiation")),
    _field("session_lifetime", convert_session_lifetime),
    _field("tickets_per_handshake", convert_tickets_per_handshake),
    _field("ticket_key_file", partial(convert_path, option="ticket_key_file")),
    _field(
        "session_tickets _default_session_tickets",
        convert_session_tickets,
        "session_tickets ticket_key_file random clock session_lifetime",
    ),
    _field(
        "session_cache _default_session_cache",
        convert_session_cache,
        "session_cache clock session_lifetime",
    ),
    _field("insecure_skip_verify", _flag("insecure_skip_verify")),
    _field("client_certificate", convert_client_certificate),
    _field("trust_roots _trust_anchors", convert_trust_roots, "trust_roots"),
    _field("credentials", convert_credentials),
)


def convert_fields(arguments: Mapping[str, Any]) -> dict[str, Any]:
    """The attributes of a Context made with ``arguments`` (every
    constructor argument, by name), or the ValueError it would raise."""
    values = dict(arguments)
    for field in _FIELDS:
        result = field.convert(*map(values.__getitem__, field.reads))
        if len(field.attributes) == 1:
            values[field.attributes[0]] = result
        else:
            values.update(zip(field.attributes, result, strict=True))
    # Every argument is an attribute too (a test checks), so by now each
    # value here is converted.
    return values


# ---------------------------------------------------------------------------
# Context
# ---------------------------------------------------------------------------


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
    * ``ticket_key_file``: a key file (see :func:`~twisted_sslfile.
      ticketkeyfile.read_key_file`) shared by the processes or machines that must
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

    #: Slots filled on first use (caches of what the fields determine), not
    #: by the field table.
    _CACHED = ("_certificate_policy",)

    __slots__ = (
        "_certificate_policy",
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
    _trust_anchors: TrustRoots | None
    _default_session_tickets: bool
    _default_session_cache: bool
    _certificate_policy: VerificationPolicy  # set on first use

    def __init__(
        self,
        *,
        credentials: Iterable[Credential] = (),
        trust_roots: TrustRootsSource = None,
        insecure_skip_verify: bool = False,
        client_certificate: ClientCertificatePolicy | str = (
            ClientCertificatePolicy.NONE
        ),
        min_version: ProtocolVersion | int | str = DEFAULT_MIN_VERSION,
        max_version: ProtocolVersion | int | str = DEFAULT_MAX_VERSION,
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
        # Every argument by name (the parameters are the only locals yet);
        # each row of the table converts one field or a group of fields.
        arguments = {name: value for name, value in locals().items() if name != "self"}
        object.__setattr__(self, "_frozen", False)
        for name, value in convert_fields(arguments).items():
            object.__setattr__(self, name, value)
        object.__setattr__(self, "_frozen", True)

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
    def certificate_policy(self) -> VerificationPolicy:
        """How peers' chains are checked, as the plain values the engine reads.

        Built on first use and kept (a Context does not change).  It holds
        the explicitly configured trust roots, already loaded; the default
        ones (the system bundle) stay unread until a check needs them, and
        are then loaded through :attr:`trust_anchors`.
        """
        try:
            return self._certificate_policy
        except AttributeError:
            pass
        policy = VerificationPolicy(
            verify=self.verify,
            trust_roots=None if self.trust_roots is None else self.trust_anchors,
            load_default_roots=lambda: self.trust_anchors,
            client_certificate=self.client_certificate,
            max_chain_length=self.max_certificate_chain_length,
        )
        object.__setattr__(self, "_certificate_policy", policy)
        return policy

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
            f"<Context {version_name(self.min_version)}.."
            f"{version_name(self.max_version)} {verify} "
            f"{len(self.credentials)} credential(s)>"
        )
