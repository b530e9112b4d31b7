"""Session ticket keys: sealing server state under keys it is given.

:class:`TicketKeys` seals a :class:`~twisted_sslfile.engine.sessions.
ServerSessionState` into an opaque ticket with an AEAD, under keys that it
is given or makes from the injected ``random`` and rotates by the injected
``clock``.  It reads no file: keys that several processes or machines
share come from a key file through
:class:`~twisted_sslfile.ticketkeyfile.FileTicketKeys`, a subclass on the
configuration side that re-reads the file.

The dependency runs one way: this module uses sessions' ServerSessionState
and shared limits; sessions knows nothing of ticket keys.
"""

from __future__ import annotations

import base64
import contextlib
import hmac
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand

from ..constants import ProtocolVersion
from ..errors import InternalError
from .sessionfields import _bytes, _positive_seconds
from .sessions import (
    _MAX_TICKET_LENGTH,
    DEFAULT_SESSION_LIFETIME,
    ServerSessionState,
)

__all__ = [
    "DEFAULT_ROTATION_INTERVAL",
    "MAX_ISSUED_TICKET_LENGTH",
    "TICKET_CIPHERS",
    "TICKET_OVERHEAD",
    "TicketKey",
    "TicketKeys",
]

# ---------------------------------------------------------------------------
# Limits and defaults
# ---------------------------------------------------------------------------

#: New in-memory ticket key every hour.  Forward secrecy of resumed sessions
#: is bounded by how long a key exists (rotation + decrypt window).
DEFAULT_ROTATION_INTERVAL = 3600


_KEY_NAME_LENGTH = 16
_KEY_SECRET_LENGTH = 32
_NONCE_LENGTH = 12
_TAG_LENGTH = 16
#: Bytes a ticket adds around the sealed state: key name, nonce, AEAD tag.
TICKET_OVERHEAD = _KEY_NAME_LENGTH + _NONCE_LENGTH + _TAG_LENGTH
#: The largest ticket we issue.  The client sends it back in its ClientHello,
#: which a server holds to a bound of its own (connection.MAX_CLIENT_HELLO_SIZE:
#: 16 KiB for the hello, this much for its ticket); only a client certificate
#: chain sealed into the state comes near it.  Without a ticket such a client
#: still connects, with a full handshake each time.
MAX_ISSUED_TICKET_LENGTH = 2**14
#: The AEADs a ticket can be sealed with; both take 256-bit keys.
TICKET_CIPHERS: dict[str, type[AESGCM] | type[ChaCha20Poly1305]] = {
    "AES-256-GCM": AESGCM,
    "ChaCha20-Poly1305": ChaCha20Poly1305,
}


# ---------------------------------------------------------------------------
# Ticket keys
# ---------------------------------------------------------------------------


class TicketKey:
    """One ticket key: a public 16-byte name and a 32-byte secret.

    The name goes in clear at the front of every ticket so that the right
    key is found without trial decryption (RFC 5077 §4's ``key_name``).
    """

    __slots__ = ("name", "secret")

    name: bytes
    secret: bytes

    def __init__(self, name: bytes, secret: bytes) -> None:
        self.name = _bytes(name, "ticket key name", _KEY_NAME_LENGTH, _KEY_NAME_LENGTH)
        self.secret = _bytes(
            secret, "ticket key secret", _KEY_SECRET_LENGTH, _KEY_SECRET_LENGTH
        )

    @classmethod
    def generate(cls, random: Callable[[int], bytes]) -> TicketKey:
        """A fresh key from ``random(n)``."""
        material = random(_KEY_NAME_LENGTH + _KEY_SECRET_LENGTH)
        if len(material) != _KEY_NAME_LENGTH + _KEY_SECRET_LENGTH:
            raise InternalError("random() returned the wrong number of bytes")
        return cls(material[:_KEY_NAME_LENGTH], material[_KEY_NAME_LENGTH:])

    def to_line(self) -> str:
        """The key file line: base64 of name || secret (64 characters)."""
        return base64.b64encode(self.name + self.secret).decode("ascii")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TicketKey):
            return NotImplemented
        return hmac.compare_digest(self.name + self.secret, other.name + other.secret)

    def __hash__(self) -> int:
        return hash(self.name)

    def __repr__(self) -> str:
        # The name is public (it is in every ticket); the secret never shown.
        return f"<TicketKey {self.name.hex()}>"


def _cipher_name(value: object) -> str:
    if isinstance(value, str):
        wanted = value.strip().replace("_", "-").lower()
        for name in TICKET_CIPHERS:
            if name.lower() == wanted:
                return name
    raise ValueError(
        f"unknown ticket cipher {value!r}; use one of {', '.join(TICKET_CIPHERS)}"
    )


def _make_aead(secret: bytes, cipher: str) -> AESGCM | ChaCha20Poly1305:
    # The file's secret is not used as the AEAD key directly: the key is
    # derived for the chosen cipher, so one secret is never used with two
    # algorithms (a fleet with mixed settings simply fails to open each
    # other's tickets, which costs a full handshake, not security).
    key = HKDFExpand(
        algorithm=hashes.SHA256(),
        length=32,
        info=b"twisted_sslfile session ticket key " + cipher.encode("ascii"),
    ).derive(secret)
    return TICKET_CIPHERS[cipher](key)


class _Key:
    """A ticket key in use: its name, AEAD and lifecycle times."""

    __slots__ = ("activated_at", "aead", "name", "retired_at")

    def __init__(
        self, name: bytes, aead: AESGCM | ChaCha20Poly1305, activated_at: float
    ) -> None:
        self.name = name
        self.aead = aead
        self.activated_at = activated_at
        self.retired_at: float | None = None

    def __repr__(self) -> str:
        return f"<_Key {self.name.hex()}>"


class TicketKeys:
    """Seals server session state into opaque tickets, under rotating keys.

    A ticket is ``key_name (16) || nonce (12) || AEAD(key, nonce, state,
    aad=key_name)`` - the layout RFC 5077 §4 recommends, with an AEAD in
    place of its AES-CBC + HMAC.  The nonce is random: at most a few
    billion tickets per key are safe with 96-bit random nonces (NIST
    SP 800-38D §8.3), far more than a key seals before it rotates.

    Three ways to get keys:

    * ``TicketKeys(random=..., clock=...)``: in-memory keys made from
      ``random``.  The first is made on first use; a new one every
      ``rotation_interval`` seconds (checked lazily on each call, by
      ``clock``); a retired key still opens tickets for ``decrypt_window``
      seconds, then is forgotten.  Tickets survive neither a restart nor a
      trip to another process.
    * ``TicketKeys(keys=[...], random=..., clock=...)``: fixed keys, first
      one seals; no rotation.
    * :class:`~twisted_sslfile.ticketkeyfile.FileTicketKeys`: keys from a
      key file shared by every process and machine that must resume each
      other's sessions, re-read when it changes.

    :meth:`open` returns None for every ticket it cannot open, never raises:
    the handshake then goes on as a full one.

    Threads are not the engine's business, so an instance is safe to share
    between threads only with a ``lock`` (any context manager, such as a
    ``threading.Lock()``) that guards its keys.  A Context gives one to the
    keys it makes itself, and ``FileTicketKeys`` takes its own; keys built
    by hand for connections in several threads need ``lock=`` too.
    """

    #: The key file the keys come from (``FileTicketKeys``); None here.
    path: str | None = None
    #: Why the last automatic reload of a key file failed, or None; always
    #: None here (see ``FileTicketKeys``).
    last_reload_error: str | None = None

    def __init__(
        self,
        *,
        random: Callable[[int], bytes],
        clock: Callable[[], float],
        rotation_interval: float = DEFAULT_ROTATION_INTERVAL,
        decrypt_window: float = DEFAULT_SESSION_LIFETIME,
        cipher: str = "AES-256-GCM",
        keys: Iterable[TicketKey] | None = None,
        lock: AbstractContextManager[Any] | None = None,
    ) -> None:
        if not callable(random):
            raise ValueError(f"random must be a callable(n) -> bytes, not {random!r}")
        if not callable(clock):
            raise ValueError(f"clock must be a callable() -> float, not {clock!r}")
        self._random = random
        self._clock = clock
        self.cipher = _cipher_name(cipher)
        self.rotation_interval = _positive_seconds(
            rotation_interval, "rotation_interval", allow_zero=False
        )
        self.decrypt_window = _positive_seconds(
            decrypt_window, "decrypt_window", allow_zero=True
        )
        self._lock: AbstractContextManager[Any] = (
            lock if lock is not None else contextlib.nullcontext()
        )
        self._keys: list[_Key] = []  # newest (sealing) first
        self._by_name: dict[bytes, _Key] = {}
        self._rotating = keys is None
        if keys is not None:
            self._install(list(keys), 0.0)

    # -- key management -----------------------------------------------------

    def _install(self, keys: list[TicketKey], now: float) -> None:
        if not keys:
            raise ValueError("TicketKeys needs at least one key")
        installed = []
        for key in keys:
            if not isinstance(key, TicketKey):
                raise ValueError(f"keys must be TicketKey objects, not {key!r}")
            installed.append(_Key(key.name, _make_aead(key.secret, self.cipher), now))
        by_name: dict[bytes, _Key] = {}
        for entry in reversed(installed):  # on a name clash the newest wins
            by_name[entry.name] = entry
        self._keys = installed
        self._by_name = by_name

    def _new_key(self, now: float) -> None:
        key = TicketKey.generate(self._random)
        entry = _Key(key.name, _make_aead(key.secret, self.cipher), now)
        self._keys.insert(0, entry)
        self._by_name[entry.name] = entry

    def _refresh(self, now: float) -> None:
        """Rotate and prune in-memory keys; lock held.

        ``FileTicketKeys`` re-reads its key file here instead.
        """
        if not self._rotating:
            return
        current = self._keys[0] if self._keys else None
        if (
            current is None
            or now >= current.activated_at + self.rotation_interval
            # The clock went backwards: do not let that stretch a key's life.
            or now < current.activated_at
        ):
            if current is not None:
                # It sealed nothing after its scheduled end, even if nobody
                # asked for a ticket for hours: the window counts from there.
                current.retired_at = min(
                    now, current.activated_at + self.rotation_interval
                )
            self._new_key(now)
        self._prune(now)

    def _prune(self, now: float) -> None:
        keep = [
            k
            for k in self._keys
            if k.retired_at is None or now < k.retired_at + self.decrypt_window
        ]
        if len(keep) != len(self._keys):
            self._keys = keep
            self._by_name = {}
            for key in reversed(keep):
                self._by_name[key.name] = key

    def rotate(self) -> None:
        """Start a new in-memory key now; the old one keeps opening tickets.

        For a file-backed instance rotate the file instead
        (:func:`~twisted_sslfile.ticketkeyfile.rotate_key_file`) and call
        its ``reload``.
        """
        if not self._rotating:
            raise ValueError(
                "these ticket keys are fixed or come from a key file; rotate "
                "the file (rotate_key_file) instead"
            )
        with self._lock:
            now = self._clock()
            if self._keys:
                self._keys[0].retired_at = now
            self._new_key(now)
            self._prune(now)

    def reload(self) -> None:
        """Re-read the key file; only ``FileTicketKeys`` have one."""
        raise ValueError("these ticket keys were not loaded from a file")

    @property
    def key_names(self) -> tuple[bytes, ...]:
        """Names of the keys that open tickets now, sealing key first."""
        with self._lock:
            self._refresh(self._clock())
            return tuple(k.name for k in self._keys)

    # -- sealing --------------------------------------------------------------

    def seal(self, plaintext: bytes) -> bytes:
        """An opaque ticket holding ``plaintext``, under the current key."""
        with self._lock:
            self._refresh(self._clock())
            key = self._keys[0]
        nonce = self._random(_NONCE_LENGTH)
        if len(nonce) != _NONCE_LENGTH:
            raise InternalError("random() returned the wrong number of bytes")
        return key.name + nonce + key.aead.encrypt(nonce, plaintext, key.name)

    def open(self, ticket: bytes | bytearray | memoryview) -> bytes | None:
        """The plaintext of a ticket we sealed, or None.

        None for a ticket that is truncated, too long, under an unknown or
        expired key name, or fails authentication.
        """
        if not isinstance(ticket, (bytes, bytearray, memoryview)):
            return None
        ticket = bytes(ticket)
        if not TICKET_OVERHEAD <= len(ticket) <= _MAX_TICKET_LENGTH:
            return None
        name = ticket[:_KEY_NAME_LENGTH]
        with self._lock:
            self._refresh(self._clock())
            key = self._by_name.get(name)
        if key is None:
            return None
        nonce = ticket[_KEY_NAME_LENGTH : _KEY_NAME_LENGTH + _NONCE_LENGTH]
        try:
            return key.aead.decrypt(
                nonce, ticket[_KEY_NAME_LENGTH + _NONCE_LENGTH :], name
            )
        except InvalidTag:
            return None

    def seal_state(self, state: ServerSessionState) -> bytes | None:
        """A ticket for ``state``; None if it cannot fit in one.

        Tickets may be 65535 bytes (RFC 8446 §4.6.1), but we issue none above
        :data:`MAX_ISSUED_TICKET_LENGTH`, so that the ClientHello carrying it
        back stays within the server's bound; only a large client certificate
        chain could push a state past that.  Send no ticket then.
        """
        if not isinstance(state, ServerSessionState):
            raise InternalError(f"cannot seal {type(state).__name__} in a ticket")
        plaintext = state.encode()
        if len(plaintext) + TICKET_OVERHEAD > MAX_ISSUED_TICKET_LENGTH:
            return None
        return self.seal(plaintext)

    def open_state(
        self,
        ticket: bytes | bytearray | memoryview,
        *,
        version: ProtocolVersion | None = None,
    ) -> ServerSessionState | None:
        """The valid state inside a ticket, or None.

        None also when the state has expired (:meth:`ServerSessionState.
        is_valid` by our clock) or, if ``version`` is given, belongs to the
        other protocol version (a TLS 1.2 ticket offered as a TLS 1.3 PSK).
        """
        plaintext = self.open(ticket)
        if plaintext is None:
            return None
        state = ServerSessionState.decode(plaintext)
        if state is None or (version is not None and state.version != version):
            return None
        if not state.is_valid(self._clock()):
            return None
        return state

    def __repr__(self) -> str:
        count = len(self._keys)
        if self._rotating:
            how = (
                f"in memory, rotating every {self.rotation_interval:g} s, "
                f"kept {self.decrypt_window:g} s"
            )
        else:
            how = "fixed"
        return f"<TicketKeys {self.cipher} {how}, {count} key(s)>"
