"""Session ticket keys: sealing server state, rotation, the shared key file.

:class:`TicketKeys` seals a :class:`~twisted_sslfile.engine.sessions.
ServerSessionState` into an opaque ticket with an AEAD under rotating keys,
optionally loaded from a key file that several processes or machines share
(:func:`read_key_file`, :func:`write_key_file`, :func:`generate_key_file`,
:func:`rotate_key_file`).

The dependency runs one way: this module uses sessions' ServerSessionState
and shared limits; sessions knows nothing of ticket keys.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import os
import threading
from collections.abc import Callable, Iterable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand

from .._files import UnsafeFileError, read_private_file, write_private_file
from ..constants import ProtocolVersion
from ..errors import InternalError
from ..x509 import ConfigurationError
from .sessions import (
    _MAX_TICKET_LENGTH,
    DEFAULT_SESSION_LIFETIME,
    ServerSessionState,
    _bytes,
    _positive_seconds,
)

__all__ = [
    "DEFAULT_RELOAD_INTERVAL",
    "DEFAULT_ROTATION_INTERVAL",
    "MAX_ISSUED_TICKET_LENGTH",
    "TICKET_CIPHERS",
    "TICKET_OVERHEAD",
    "TicketKey",
    "TicketKeyFileError",
    "TicketKeys",
    "generate_key_file",
    "read_key_file",
    "rotate_key_file",
    "write_key_file",
]

# ---------------------------------------------------------------------------
# Limits and defaults
# ---------------------------------------------------------------------------

#: New in-memory ticket key every hour.  Forward secrecy of resumed sessions
#: is bounded by how long a key exists (rotation + decrypt window).
DEFAULT_ROTATION_INTERVAL = 3600

#: A key file is stat()ed at most once a minute.
DEFAULT_RELOAD_INTERVAL = 60

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
# Ticket keys and the key file
# ---------------------------------------------------------------------------


class TicketKeyFileError(ConfigurationError):
    """A ticket key file is missing, unreadable or malformed.

    A :class:`~twisted_sslfile.x509.ConfigurationError` (so a ValueError);
    ``path`` names the file and the message says what is wrong and where.
    """


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


# A key file holds a handful of lines; anything this big is not one.
_MAX_KEY_FILE_KEYS = 256

_KEY_FILE_HEADER = (
    "# twisted_sslfile session ticket keys (format 1).\n"
    "# One key per line, newest first: base64 of a 16-byte name followed by a\n"
    "# 32-byte secret. The first key seals new tickets; the others only open\n"
    "# tickets sealed earlier. Keep this file secret.\n"
)


def _parse_key_file(data: bytes, path: str) -> list[TicketKey]:
    def fail(message: str) -> TicketKeyFileError:
        return TicketKeyFileError(f"ticket key file {path}: {message}", path)

    if len(data) > _MAX_KEY_FILE_SIZE:
        raise fail(f"larger than {_MAX_KEY_FILE_SIZE} bytes; not a key file")
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        raise fail("not ASCII text; not a key file") from None
    keys: list[TicketKey] = []
    seen: dict[bytes, int] = {}
    for number, raw_line in enumerate(text.splitlines(), 1):
        line = raw_line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            material = base64.b64decode(line, validate=True)
        except (binascii.Error, ValueError):
            raise fail(f"line {number} is not base64") from None
        if len(material) != _KEY_NAME_LENGTH + _KEY_SECRET_LENGTH:
            raise fail(
                f"line {number} holds {len(material)} bytes; a key is 48 "
                f"(16-byte name + 32-byte secret)"
            )
        key = TicketKey(material[:_KEY_NAME_LENGTH], material[_KEY_NAME_LENGTH:])
        if key.name in seen:
            raise fail(f"line {number} repeats the key name of line {seen[key.name]}")
        seen[key.name] = number
        keys.append(key)
        if len(keys) > _MAX_KEY_FILE_KEYS:
            raise fail(f"more than {_MAX_KEY_FILE_KEYS} keys")
    if not keys:
        raise fail("holds no keys")
    return keys


#: A key file holds a handful of lines; anything this big is not one.
_MAX_KEY_FILE_SIZE = 64 * 1024


def _read_limited(path: str) -> bytes:
    return read_private_file(path, _MAX_KEY_FILE_SIZE, "ticket key file")


def read_key_file(path: str | os.PathLike[str]) -> list[TicketKey]:
    """The keys of a ticket key file, newest first.

    Format (text, ASCII): one key per line, each the base64 encoding of a
    16-byte key name followed by a 32-byte secret; blank lines and lines
    starting with ``#`` are ignored.  The first key seals new tickets, all of
    them open tickets.  Raises :class:`TicketKeyFileError` naming the file.

    Whoever can write the file chooses the keys, and with them can forge
    tickets that resume as any client: a file its group or other users may
    write is refused.  One every user may read is loaded with an
    :class:`~twisted_sslfile._files.InsecureFileWarning` (see
    docs/security.rst for why it is not refused).
    """
    name = os.fspath(path)
    try:
        data = _read_limited(name)
    except UnsafeFileError as e:
        raise TicketKeyFileError(str(e), name) from None
    except OSError as e:
        raise TicketKeyFileError(
            f"ticket key file {name}: cannot read: {e.strerror or e}", name
        ) from e
    return _parse_key_file(data, name)


def write_key_file(path: str | os.PathLike[str], keys: Iterable[TicketKey]) -> None:
    """Write ``keys`` (newest first) to ``path`` atomically, mode 0600.

    The file is written beside ``path`` under a random name and renamed
    over it (:func:`~twisted_sslfile._files.write_private_file`), so a
    server reloading it concurrently sees either the old or the new keys,
    never half a file, and it is 0600 even if an older file was not.
    """
    name = os.fspath(path)
    keys = list(keys)
    if not keys:
        raise ValueError("a ticket key file needs at least one key")
    for key in keys:
        if not isinstance(key, TicketKey):
            raise ValueError(f"keys must be TicketKey objects, not {key!r}")
    if len({k.name for k in keys}) != len(keys):
        raise ValueError("two ticket keys share a name")
    if len(keys) > _MAX_KEY_FILE_KEYS:
        raise ValueError(f"at most {_MAX_KEY_FILE_KEYS} ticket keys per file")
    text = _KEY_FILE_HEADER + "".join(k.to_line() + "\n" for k in keys)
    write_private_file(name, text.encode("ascii"))


def generate_key_file(
    path: str | os.PathLike[str], count: int, random: Callable[[int], bytes]
) -> list[TicketKey]:
    """Write a new key file of ``count`` fresh keys; returns them."""
    if isinstance(count, bool) or not isinstance(count, int):
        raise ValueError(f"count must be an integer, not {count!r}")
    if not 1 <= count <= _MAX_KEY_FILE_KEYS:
        raise ValueError(f"count must be between 1 and {_MAX_KEY_FILE_KEYS}")
    keys = [TicketKey.generate(random) for _ in range(count)]
    write_key_file(path, keys)
    return keys


def rotate_key_file(
    path: str | os.PathLike[str], random: Callable[[int], bytes], *, keep: int = 3
) -> list[TicketKey]:
    """Put a new key first in ``path`` and keep the ``keep`` newest.

    Meant for the operator's scheduled job (cron, a systemd timer) on the
    machine that owns the file; servers pick the change up within their
    ``reload_interval``.  Run it every R seconds with ``keep=K`` and a
    ticket opens for (K-1)*R to K*R seconds after it was sealed: choose
    K*R above the session lifetime.  A missing file is created.
    """
    if isinstance(keep, bool) or not isinstance(keep, int):
        raise ValueError(f"keep must be an integer, not {keep!r}")
    if not 1 <= keep <= _MAX_KEY_FILE_KEYS:
        raise ValueError(f"keep must be between 1 and {_MAX_KEY_FILE_KEYS}")
    name = os.fspath(path)
    old = read_key_file(name) if os.path.exists(name) else []
    new = TicketKey.generate(random)
    keys = [new, *(k for k in old if k.name != new.name)][:keep]
    write_key_file(name, keys)
    return keys


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
    * :meth:`from_file`: keys from a key file (see :func:`read_key_file`)
      shared by every process and machine that must resume each other's
      sessions.  The file's writer rotates (:func:`rotate_key_file`); the
      file is stat()ed at most every ``reload_interval`` seconds and re-read
      when it changed.  Keys missing from the new file stop opening tickets
      at once: removing a key is how a leaked one is revoked.

    :meth:`open` returns None for every ticket it cannot open, never raises:
    the handshake then goes on as a full one.  Safe to share between
    threads.
    """

    def __init__(
        self,
        *,
        random: Callable[[int], bytes],
        clock: Callable[[], float],
        rotation_interval: float = DEFAULT_ROTATION_INTERVAL,
        decrypt_window: float = DEFAULT_SESSION_LIFETIME,
        cipher: str = "AES-256-GCM",
        keys: Iterable[TicketKey] | None = None,
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
        self._lock = threading.Lock()
        self._keys: list[_Key] = []  # newest (sealing) first
        self._by_name: dict[bytes, _Key] = {}
        self._rotating = keys is None
        #: The key file, for instances made by :meth:`from_file`.
        self.path: str | None = None
        self.reload_interval = float(DEFAULT_RELOAD_INTERVAL)
        #: Why the last automatic reload of the key file failed (the old keys
        #: stay in use), or None.  For monitoring; never holds key material.
        self.last_reload_error: str | None = None
        self._file_signature: tuple[int, int, int] | None = None
        self._next_check = 0.0
        if keys is not None:
            self._install(list(keys), 0.0)

    @classmethod
    def from_file(
        cls,
        path: str | os.PathLike[str],
        *,
        clock: Callable[[], float],
        random: Callable[[int], bytes],
        reload_interval: float = DEFAULT_RELOAD_INTERVAL,
        cipher: str = "AES-256-GCM",
    ) -> TicketKeys:
        """Keys from a key file; raises :class:`TicketKeyFileError` if bad.

        ``random`` makes the per-ticket nonces; ``clock`` paces the checks
        for a changed file (``reload_interval`` seconds apart; 0 checks on
        every use).
        """
        name = os.fspath(path)
        interval = _positive_seconds(
            reload_interval, "reload_interval", allow_zero=True
        )
        keys = read_key_file(name)
        instance = cls(random=random, clock=clock, cipher=cipher, keys=keys)
        instance.path = name
        instance.reload_interval = interval
        try:
            instance._file_signature = _signature(name)
        except OSError:
            instance._file_signature = None
        instance._next_check = clock() + interval
        return instance

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
        """Rotate / prune (in-memory keys) or reload the file; lock held."""
        if self.path is not None:
            # Also check when the clock went backwards, rather than wait for
            # it to catch up with the time the next check was planned for.
            if now >= self._next_check or now < self._next_check - self.reload_interval:
                self._next_check = now + self.reload_interval
                self._maybe_reload()
            return
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

    def _maybe_reload(self) -> None:
        assert self.path is not None
        try:
            signature = _signature(self.path)
        except OSError as e:
            self.last_reload_error = (
                f"ticket key file {self.path}: cannot stat: {e.strerror or e}; "
                f"keeping the keys loaded before"
            )
            return
        if signature == self._file_signature:
            return
        try:
            keys = read_key_file(self.path)
        except TicketKeyFileError as e:
            # A broken rotation must not take resumption down with it: keep
            # the old keys and try again at the next check.
            self.last_reload_error = f"{e}; keeping the keys loaded before"
            return
        self._install(keys, 0.0)
        self._file_signature = signature
        self.last_reload_error = None

    def rotate(self) -> None:
        """Start a new in-memory key now; the old one keeps opening tickets.

        For a file-backed instance rotate the file instead
        (:func:`rotate_key_file`) and call :meth:`reload`.
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
        """Re-read the key file now (e.g. on SIGHUP); raises if it is bad."""
        if self.path is None:
            raise ValueError("these ticket keys were not loaded from a file")
        with self._lock:
            keys = read_key_file(self.path)
            self._install(keys, 0.0)
            try:
                self._file_signature = _signature(self.path)
            except OSError:
                self._file_signature = None
            self._next_check = self._clock() + self.reload_interval
            self.last_reload_error = None

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
        if self.path is not None:
            how = f"from {self.path!r}"
        elif self._rotating:
            how = (
                f"in memory, rotating every {self.rotation_interval:g} s, "
                f"kept {self.decrypt_window:g} s"
            )
        else:
            how = "fixed"
        return f"<TicketKeys {self.cipher} {how}, {count} key(s)>"


def _signature(path: str) -> tuple[int, int, int]:
    # mtime alone misses two writes within the file system's timestamp
    # granularity; size and inode (an atomic rename makes a new one) catch
    # almost all of those.
    st = os.stat(path)
    return (st.st_mtime_ns, st.st_size, st.st_ino)
