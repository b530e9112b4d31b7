"""Files that hold secrets: written atomically and privately, read warily.

One place for the rules every secret-bearing file of the project follows -
ticket key files, the echo server's generated private key, the CLI's
``--sess-out`` sessions, key log files:

* **Writing** (:func:`write_private_file`) goes to a fresh temporary file in
  the target's own directory, under a random name, created with
  ``O_CREAT | O_EXCL | O_NOFOLLOW``: a symlink or file that someone planted
  at a predictable name is never followed or truncated, and two writers
  never share a temporary file.  The data is fsync()ed, the temporary file
  renamed over the target (``os.replace``, atomic on POSIX: a reader sees
  the old or the new content, never half of it) and the directory fsync()ed
  so the rename survives a crash.  The new file gets exactly the mode asked
  for (0600 by default) whatever the umask and whatever mode an older file
  at that name had - replacing a 0644 file leaves a 0600 one.
* **Reading** (:func:`read_private_file`) checks the mode of the file it
  actually opened (fstat, no race with a rename): a file that users other
  than its owner may *write* is refused, because whoever can write a key
  file chooses the keys; a file that every user may *read* is accepted with
  an :class:`InsecureFileWarning`, because refusing it would break common
  deployments whose directory is what keeps others out (container secret
  volumes are mounted 0644 by default).
* **Appending** (:class:`KeyLogFile`, for a key log that other programs
  append to as well) creates the file 0600 and checks the file it actually
  opened: it must be a regular file of the current user that no one else
  may write; one that others may read is used with a warning.

No Twisted here: the sans-I/O engine's ticket keys use it.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
import warnings

from twisted_sslfile.errors import InsecureFileWarning, UnsafeFileError

__all__ = [
    "InsecureFileWarning",
    "KeyLogFile",
    "UnsafeFileError",
    "read_private_file",
    "write_private_file",
]

#: Attempts at a fresh temporary name before giving up; with 64 random bits
#: per name, more than one means someone is planting files.
_TEMPORARY_NAME_ATTEMPTS = 16


def _temporary_name(directory: str, base: str) -> str:
    # Hidden, and unguessable: the name is not known before the file exists.
    return os.path.join(directory, f".{base}.{secrets.token_hex(8)}.tmp")


def _fsync_directory(directory: str) -> None:
    # POSIX: a rename is durable once its directory is synced.  Some file
    # systems refuse fsync on a directory; the data itself is synced anyway.
    try:
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)


def write_private_file(
    path: str | os.PathLike[str], data: bytes, *, mode: int = 0o600
) -> str:
    """Replace ``path`` with ``data`` atomically; the file gets ``mode``.

    See the module docstring for the steps.  ``mode`` defaults to 0600
    (owner only); certificates, which are public, may pass 0644.  Returns
    the path.  Raises OSError when the directory is not writable or the disk
    is full; the target is then left as it was.
    """
    name = os.fspath(path)
    directory, base = os.path.split(os.path.abspath(name))
    flags = (
        os.O_WRONLY
        | os.O_CREAT
        | os.O_EXCL
        | getattr(os, "O_NOFOLLOW", 0)
        | getattr(os, "O_CLOEXEC", 0)
    )
    for _ in range(_TEMPORARY_NAME_ATTEMPTS):
        temporary = _temporary_name(directory, base)
        try:
            fd = os.open(temporary, flags, 0o600)
        except FileExistsError:
            continue
        break
    else:
        raise FileExistsError(
            f"cannot create a temporary file beside {name}: "
            f"{_TEMPORARY_NAME_ATTEMPTS} random names were all taken"
        )
    try:
        try:
            # Exactly ``mode``: the umask only ever removed bits from 0600,
            # and a wider mode (0644 for a certificate) must be set here.
            os.fchmod(fd, mode)
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temporary, name)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    _fsync_directory(directory)
    return name


def _check_mode(st: os.stat_result, path: str, what: str) -> None:
    mode = stat.S_IMODE(st.st_mode)
    if mode & (stat.S_IWGRP | stat.S_IWOTH):
        who = "every user" if mode & stat.S_IWOTH else "its group"
        raise UnsafeFileError(
            f"{what} {path} may be written by {who} (mode {mode:04o}), who could "
            f"then choose its secrets; refused. Fix: chmod 600 {path}",
            path,
        )
    if mode & stat.S_IROTH:
        warnings.warn(
            f"{what} {path} may be read by every user (mode {mode:04o}): anyone "
            f"on this machine can read its secrets. Fix: chmod 600 {path} (or "
            f"640 to share it with a group)",
            InsecureFileWarning,
            stacklevel=3,
        )


def read_private_file(path: str | os.PathLike[str], limit: int, what: str) -> bytes:
    """At most ``limit`` + 1 bytes of a secret file, after checking its mode.

    Raises :class:`UnsafeFileError` for a file others may write, OSError
    when it cannot be read, and warns (:class:`InsecureFileWarning`) when
    every user may read it.  ``what`` ("ticket key file") starts messages.
    Symlinks are followed (secret volumes are made of them); the mode
    checked is the target's.  Reading one byte past ``limit`` lets the
    caller tell a file of exactly ``limit`` bytes from a larger one.
    """
    name = os.fspath(path)
    with open(name, "rb") as f:
        if os.name == "posix":
            _check_mode(os.fstat(f.fileno()), name, what)
        return f.read(limit + 1)


def _is_devnull(st: os.stat_result) -> bool:
    try:
        return os.path.samestat(st, os.stat(os.devnull))
    except OSError:
        return False


class KeyLogFile:
    """A ``Context(keylog=...)`` that appends each line to a file.

    The NSS key log format Wireshark reads (``SSLKEYLOGFILE``): one
    ``LABEL client_random secret`` line per secret.  The file is opened
    once, here, in append mode - curl, browsers and OpenSSL append to the
    same file, and each line goes out in one ``write`` so lines from
    several processes do not interleave - and created with mode 0600.  An
    existing file must be a regular file (or ``/dev/null``) that belongs to
    the current user and is writable by no one else (:class:`UnsafeFileError`
    otherwise: whoever owns it can read the secrets); one that every user
    may read is used with an :class:`InsecureFileWarning`.  OSError when it
    cannot be opened.

    Each line costs one small blocking write in the thread that runs the
    handshake: this is a debugging aid, not something to leave on.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        # O_NONBLOCK: a FIFO without a reader fails (ENXIO) instead of
        # blocking the caller forever; it changes nothing for a regular file.
        flags = (
            os.O_WRONLY
            | os.O_APPEND
            | os.O_CREAT
            | getattr(os, "O_CLOEXEC", 0)
            | getattr(os, "O_NONBLOCK", 0)
        )
        fd = os.open(self.path, flags, 0o600)
        try:
            st = os.fstat(fd)
            if _is_devnull(st):
                pass  # SSLKEYLOGFILE=/dev/null: nothing is kept
            elif not stat.S_ISREG(st.st_mode):
                raise UnsafeFileError(
                    f"key log file {self.path} is not a regular file", self.path
                )
            elif os.name == "posix":
                if st.st_uid != os.geteuid():
                    raise UnsafeFileError(
                        f"key log file {self.path} belongs to another user (uid "
                        f"{st.st_uid}), who could read the secrets; refused",
                        self.path,
                    )
                _check_mode(st, self.path, "key log file")
        except BaseException:
            os.close(fd)
            raise
        self._fd: int | None = fd

    def __call__(self, line: str) -> None:
        """Append ``line`` and a newline (one write: lines stay whole)."""
        if self._fd is None:
            raise ValueError(f"key log file {self.path} is closed")
        data = (line + "\n").encode("ascii")
        while data:
            written = os.write(self._fd, data)
            data = data[written:]

    def close(self) -> None:
        """Close the file; later lines raise ValueError."""
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)

    def __repr__(self) -> str:
        state = "" if self._fd is not None else " closed"
        return f"<KeyLogFile {self.path!r}{state}>"
