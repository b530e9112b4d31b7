"""Session ticket key files: read, written, rotated and re-read on disk.

A key file lets every process and machine that must resume each other's
sessions seal tickets under the same keys.  This module is the file side
of :class:`~twisted_sslfile.engine.ticketkeys.TicketKeys`, which only seals
and opens with the keys it is given:

* :func:`read_key_file`, :func:`write_key_file`, :func:`generate_key_file`
  and :func:`rotate_key_file` handle the file itself (format: see
  :func:`read_key_file`; permissions: :mod:`twisted_sslfile._files`).
* :class:`FileTicketKeys` is a ``TicketKeys`` whose keys are the file's,
  re-read when the file changes.

Configuration side: the engine never imports it.
"""

from __future__ import annotations

import base64
import binascii
import os
import threading
from collections.abc import Callable, Iterable

from twisted_sslfile._files import read_private_file, write_private_file
from twisted_sslfile.engine.sessionfields import _positive_seconds
from twisted_sslfile.engine.ticketkeys import (
    _KEY_NAME_LENGTH,
    _KEY_SECRET_LENGTH,
    TicketKey,
    TicketKeys,
)
from twisted_sslfile.errors import TicketKeyFileError, UnsafeFileError

__all__ = [
    "DEFAULT_RELOAD_INTERVAL",
    "FileTicketKeys",
    "generate_key_file",
    "read_key_file",
    "rotate_key_file",
    "write_key_file",
]

#: A key file is stat()ed at most once a minute.
DEFAULT_RELOAD_INTERVAL = 60


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
    :class:`~twisted_sslfile.errors.InsecureFileWarning` (see
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


def _signature(path: str) -> tuple[int, int, int]:
    # mtime alone misses two writes within the file system's timestamp
    # granularity; size and inode (an atomic rename makes a new one) catch
    # almost all of those.
    st = os.stat(path)
    return (st.st_mtime_ns, st.st_size, st.st_ino)


class FileTicketKeys(TicketKeys):
    """Ticket keys from a key file (see :func:`read_key_file`).

    Every process and machine that must resume each other's sessions loads
    the same file.  The file's writer rotates it (:func:`rotate_key_file`);
    the file is stat()ed at most every ``reload_interval`` seconds (by
    ``clock``; 0 checks on every use) and re-read when it changed.  Keys
    missing from the new file stop opening tickets at once: removing a key
    is how a leaked one is revoked.  A file that cannot be read or parsed
    at a later check leaves the old keys in use and says why in
    :attr:`last_reload_error`.

    ``random`` makes the per-ticket nonces.  Raises
    :class:`~twisted_sslfile.errors.TicketKeyFileError` if the file is
    missing, unsafe or malformed.  Safe to share between threads: the keys
    are guarded by a lock of their own.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        clock: Callable[[], float],
        random: Callable[[int], bytes],
        reload_interval: float = DEFAULT_RELOAD_INTERVAL,
        cipher: str = "AES-256-GCM",
    ) -> None:
        name = os.fspath(path)
        interval = _positive_seconds(
            reload_interval, "reload_interval", allow_zero=True
        )
        keys = read_key_file(name)
        super().__init__(
            random=random, clock=clock, cipher=cipher, keys=keys, lock=threading.Lock()
        )
        #: The key file.
        self.path: str = name
        self.reload_interval = interval
        #: Why the last automatic reload of the key file failed (the old keys
        #: stay in use), or None.  For monitoring; never holds key material.
        self.last_reload_error: str | None = None
        self._file_signature: tuple[int, int, int] | None
        try:
            self._file_signature = _signature(name)
        except OSError:
            self._file_signature = None
        self._next_check = clock() + interval

    def _refresh(self, now: float) -> None:
        """Re-read the file if it is time to look and it changed; lock held."""
        # Also check when the clock went backwards, rather than wait for
        # it to catch up with the time the next check was planned for.
        if now >= self._next_check or now < self._next_check - self.reload_interval:
            self._next_check = now + self.reload_interval
            self._maybe_reload()

    def _maybe_reload(self) -> None:
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

    def reload(self) -> None:
        """Re-read the key file now (e.g. on SIGHUP); raises if it is bad."""
        with self._lock:
            keys = read_key_file(self.path)
            self._install(keys, 0.0)
            try:
                self._file_signature = _signature(self.path)
            except OSError:
                self._file_signature = None
            self._next_check = self._clock() + self.reload_interval
            self.last_reload_error = None

    def __repr__(self) -> str:
        return (
            f"<TicketKeys {self.cipher} from {self.path!r}, {len(self._keys)} key(s)>"
        )
