"""Server certificates read from files, and read again when they change.

A certificate from Let's Encrypt lives 90 days and is renewed on disk by a
program that knows nothing about this server, so a server that reads its
certificate once must be restarted after every renewal.  A
:class:`CertificateStore` keeps a :class:`~twisted_sslfile.context.Context`'s
credentials in step with the files instead:

* **Where the certificates come from.**  Either a fixed list of files (what
  ``certKey=``/``privateKey=`` name) or a directory scanned for pairs
  (``certDir=``), in the two layouts servers meet in practice:

  - Let's Encrypt (certbot): one subdirectory per name holding
    ``fullchain.pem`` and ``privkey.pem`` - give its ``live/`` directory,
    or one ``live/NAME/`` directory itself;
  - combined files, as txsni, txacme and Twisted's ``tls:`` server endpoint
    use them: ``NAME.pem`` holding the key and the chain.

  Which certificate a client gets is decided by the names *in* the
  certificates (subjectAltName DNS names, wildcards included; see
  :meth:`~twisted_sslfile.context.Context.select_credential`), never by
  file names.  The default for a client that sends no SNI, or a name no
  certificate has, is the entry named ``DEFAULT`` (``DEFAULT.pem`` or
  ``DEFAULT/``, txsni's convention) if there is one, else the first entry
  in file-name order.

* **When they are read again.**  Every ``interval`` seconds (the reactor's
  clock, injectable) the files are ``stat()``-ed - device, inode, size and
  modification time, following symbolic links as certbot's ``live/`` links
  into ``archive/`` - and only entries whose files changed are read.
  :meth:`CertificateStore.reload` (what ``SIGHUP`` triggers in
  ``twistd sslfile-echo``) reads every entry regardless.

* **Never a half-written pair.**  An entry is taken only when its files
  read completely (every PEM block that begins also ends), parse, and the
  key matches the leaf certificate - the check
  :class:`~twisted_sslfile.context.Credential` makes - and when its files
  did not change while being read.  Otherwise the error is logged and the
  entry's previous certificate stays in service; a directory left with no
  usable certificate keeps the whole previous set.  The new set replaces
  the old in one step (:meth:`Context.set_credentials`): handshakes that
  start afterwards see it, connections already made are untouched.

Writers should still replace files by renaming (certbot does): a file cut
exactly between two certificates looks like a shorter chain, which is then
served until the write completes and the next check reads it again.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import serialization
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from twisted_sslfile import x509 as _x509
from twisted_sslfile.context import Context, Credential
from twisted_sslfile.errors import ConfigurationError

__all__ = [
    "DEFAULT_ENTRY",
    "DEFAULT_RELOAD_INTERVAL",
    "CertificateFiles",
    "CertificateStore",
    "scan_directory",
]

#: Seconds between two looks at the files: renewals happen days ahead of
#: expiry, so a minute's delay costs nothing, and a stat() per file per
#: minute costs nothing either.
DEFAULT_RELOAD_INTERVAL = 60.0

#: The entry served to clients without SNI or with an unknown name (txsni).
DEFAULT_ENTRY = "DEFAULT"

#: certbot's names inside ``live/NAME/``.
LETSENCRYPT_CHAIN = "fullchain.pem"
LETSENCRYPT_KEY = "privkey.pem"

log = Logger(namespace="twisted_sslfile.certificates")

_BEGIN = re.compile(rb"^-----BEGIN ([A-Z0-9 ]+)-----", re.MULTILINE)
_END = re.compile(rb"^-----END ([A-Z0-9 ]+)-----", re.MULTILINE)


@dataclass(frozen=True)
class CertificateFiles:
    """The files of one credential: a chain (leaf first) and its key.

    ``key`` None: the key is in ``cert`` too.  ``extra_chain``: a file of
    intermediates appended to the chain (``extraChain=``).  ``name`` is
    what log lines call the entry (a file or directory name).
    """

    name: str
    cert: str
    key: str | None = None
    extra_chain: str | None = None

    @property
    def paths(self) -> tuple[str, ...]:
        return tuple(p for p in (self.cert, self.key, self.extra_chain) if p)

    def describe(self) -> str:
        return " and ".join(self.paths)


# ---------------------------------------------------------------------------
# Finding and reading the files
# ---------------------------------------------------------------------------


def _is_letsencrypt_directory(names: Sequence[str]) -> bool:
    # Either file alone still counts: a live/NAME/ directory that lost one
    # of them is a broken entry to report, not something to skip silently.
    return LETSENCRYPT_CHAIN in names or LETSENCRYPT_KEY in names


def _letsencrypt_entry(name: str, directory: str) -> CertificateFiles:
    return CertificateFiles(
        name,
        os.path.join(directory, LETSENCRYPT_CHAIN),
        os.path.join(directory, LETSENCRYPT_KEY),
    )


def scan_directory(directory: str) -> list[CertificateFiles]:
    """The certificate entries of ``directory``, the default one first.

    ``directory`` is either one certbot ``live/NAME/`` directory, or holds
    certbot-style subdirectories and/or combined ``NAME.pem`` files.  Hidden
    entries (editors' and atomic writers' temporary files), files not ending
    in ``.pem`` (certbot's README) and subdirectories without
    ``fullchain.pem``/``privkey.pem`` are ignored.
    """
    try:
        names = sorted(os.listdir(directory))
    except OSError as e:
        raise ConfigurationError(
            f"cannot list certificate directory {directory!r}: {e.strerror or e}",
            directory,
        ) from e
    if _is_letsencrypt_directory(names):
        name = os.path.basename(os.path.normpath(directory))
        return [_letsencrypt_entry(name, directory)]
    entries: list[CertificateFiles] = []
    for name in names:
        if name.startswith("."):
            continue
        path = os.path.join(directory, name)
        if os.path.isdir(path):
            try:
                inside = os.listdir(path)
            except OSError:
                continue
            if _is_letsencrypt_directory(inside):
                entries.append(_letsencrypt_entry(name, path))
        elif name.endswith(".pem") and os.path.isfile(path):
            entries.append(CertificateFiles(name[: -len(".pem")], path))
    entries.sort(key=lambda entry: entry.name != DEFAULT_ENTRY)  # stable
    return entries


def _signature(files: CertificateFiles) -> tuple[object, ...]:
    """What says "changed": (device, inode, size, mtime) of every file."""
    result: list[object] = []
    for path in files.paths:
        try:
            st = os.stat(path)
        except OSError:
            result.append(None)
        else:
            result.append((st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns))
    return tuple(result)


def _read_whole(path: str, what: str) -> bytes:
    """The file's bytes, refused if a PEM block in it begins and never ends."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise ConfigurationError(
            f"cannot read {what} file {path!r}: {e.strerror or e}", path
        ) from e
    if b"-----BEGIN" in data:
        begun = [m.group(1) for m in _BEGIN.finditer(data)]
        ended = [m.group(1) for m in _END.finditer(data)]
        if begun != ended:
            raise ConfigurationError(
                f"{what} file {path!r} is truncated: a PEM block begins but "
                f"does not end (still being written?)",
                path,
            )
    elif not data.strip():
        raise ConfigurationError(f"{what} file {path!r} is empty", path)
    return data


def load_credential(files: CertificateFiles) -> Credential:
    """Read, parse and match one entry, or raise ConfigurationError."""
    cert_data = _read_whole(files.cert, "certificate")
    key_data = cert_data if files.key is None else _read_whole(files.key, "key")
    chain = _x509.load_pem_certificates(cert_data, files.cert)
    if not chain:
        raise ConfigurationError(f"no certificate found in {files.cert!r}", files.cert)
    key = _x509.load_private_key_data(key_data, files.key or files.cert)
    if files.extra_chain is not None:
        extra = _x509.load_pem_certificates(
            _read_whole(files.extra_chain, "certificate"), files.extra_chain
        )
        chain = chain + extra
    try:
        return Credential(chain, key)
    except ValueError as e:
        raise ConfigurationError(f"{files.describe()}: {e}", files.cert) from e


def _same(a: Credential, b: Credential) -> bool:
    """Same chain and same key: keep the old object (and derived caches)."""
    if a.chain_der != b.chain_der:
        return False

    def spki(key: Any) -> bytes:
        return key.public_key().public_bytes(
            serialization.Encoding.DER,
            serialization.PublicFormat.SubjectPublicKeyInfo,
        )

    return spki(a.private_key) == spki(b.private_key)


def describe_credential(credential: Credential) -> str:
    """Names, serial and expiry of a credential, for log lines."""
    leaf = credential.certificate
    names = ", ".join(credential.dns_names) or _x509.describe_certificate(leaf)
    expires = leaf.not_valid_after_utc.strftime("%Y-%m-%d")
    return f"{names} (serial {leaf.serial_number:#x}, expires {expires})"


# ---------------------------------------------------------------------------
# The store
# ---------------------------------------------------------------------------


class _ChangedWhileReading(ConfigurationError):
    """The files' signature moved between before and after reading them."""


@dataclass(frozen=True)
class _Entry:
    files: CertificateFiles
    signature: tuple[object, ...]
    credential: Credential


class CertificateStore:
    """Credentials loaded from files and kept current; see the module doc.

    Build one with :meth:`from_directory` or :meth:`from_files` (both load
    everything now and raise :class:`ConfigurationError` naming the file at
    fault), :meth:`bind` the Contexts it should keep current, then either
    call :meth:`check` (cheap: stat only) and :meth:`reload` (read all)
    yourself or :meth:`start` the periodic check on a reactor.

    :param interval: seconds between checks once started; None: never
        (reload only when :meth:`reload` is called).
    """

    def __init__(
        self,
        *,
        directory: str | None = None,
        files: Sequence[CertificateFiles] = (),
        interval: float | None = DEFAULT_RELOAD_INTERVAL,
    ) -> None:
        if (directory is None) == (not files):
            raise ValueError("give a directory or a list of files, not both")
        if interval is not None and not interval > 0:
            raise ValueError(f"interval must be positive seconds or None: {interval}")
        self.directory = None if directory is None else os.fspath(directory)
        self._files = tuple(files)
        self.interval = interval
        self._contexts: list[Context] = []
        self._entries: dict[str, _Entry] = {}
        #: Signatures of files that failed to load: not read again (nor
        #: logged again) until they change.
        self._failed: dict[str, tuple[object, ...]] = {}
        self._loop: LoopingCall | None = None
        self._users = 0
        entries = self._scan()
        for files_ in entries:
            signature = _signature(files_)
            credential = load_credential(files_)
            self._entries[files_.cert] = _Entry(files_, signature, credential)
        if not self._entries:
            where = self.directory
            raise ConfigurationError(
                f"no certificate found in directory {where!r}: expected "
                f"NAME.pem files holding a key and its chain, or Let's Encrypt "
                f"NAME/{LETSENCRYPT_CHAIN} + NAME/{LETSENCRYPT_KEY} "
                f"subdirectories (give certbot's live/ directory)",
                where,
            )
        self.credentials: tuple[Credential, ...] = tuple(
            entry.credential for entry in self._entries.values()
        )

    @classmethod
    def from_directory(
        cls,
        directory: str | os.PathLike[str],
        *,
        interval: float | None = DEFAULT_RELOAD_INTERVAL,
    ) -> CertificateStore:
        """Every entry of a certificate directory (see :func:`scan_directory`)."""
        return cls(directory=os.fspath(directory), interval=interval)

    @classmethod
    def from_files(
        cls,
        files: Sequence[CertificateFiles],
        *,
        interval: float | None = DEFAULT_RELOAD_INTERVAL,
    ) -> CertificateStore:
        """A fixed list of entries; the first is the default."""
        if not files:
            raise ValueError("from_files needs at least one CertificateFiles")
        return cls(files=files, interval=interval)

    def __repr__(self) -> str:
        where = self.directory if self.directory is not None else "files"
        return f"<CertificateStore {where} {len(self.credentials)} credential(s)>"

    # -- contexts -----------------------------------------------------------

    def bind(self, context: Context) -> None:
        """Keep ``context``'s credentials equal to this store's from now on."""
        context.set_credentials(self.credentials)
        if all(existing is not context for existing in self._contexts):
            self._contexts.append(context)

    # -- reading --------------------------------------------------------------

    def _scan(self) -> list[CertificateFiles]:
        if self.directory is None:
            return list(self._files)
        return scan_directory(self.directory)

    def check(self) -> bool:
        """Read the entries whose files changed; True if credentials changed.

        Never raises: a problem is logged and the previous certificates stay.
        """
        return self._update(force=False)

    def reload(self) -> bool:
        """Read every entry now; True if the credentials changed.

        Never raises: a problem is logged and the previous certificates stay.
        """
        return self._update(force=True)

    def _update(self, *, force: bool) -> bool:
        try:
            found = self._scan()
        except ConfigurationError as e:
            log.error("{error}; still serving the previous certificates", error=str(e))
            return False
        entries: dict[str, _Entry] = {}
        failed: dict[str, tuple[object, ...]] = {}
        for files in found:
            key = files.cert
            signature = _signature(files)
            old = self._entries.get(key)
            if not force:
                if old is not None and old.signature == signature:
                    entries[key] = old
                    continue
                if self._failed.get(key) == signature:
                    # Reported already; wait until the files change again.
                    failed[key] = signature
                    if old is not None:
                        entries[key] = old
                    continue
            try:
                credential = load_credential(files)
                if _signature(files) != signature:
                    raise _ChangedWhileReading(
                        f"{files.describe()} changed while being read"
                    )
            except ConfigurationError as e:
                still = (
                    "still serving the previous certificate"
                    if old is not None
                    else "not served"
                )
                log.error(
                    "certificate {entry}: {error}; {still}",
                    entry=files.name,
                    error=str(e),
                    still=still,
                )
                if not isinstance(e, _ChangedWhileReading):
                    # A write in progress is read again at the next check.
                    failed[key] = signature
                if old is not None:
                    entries[key] = old
                continue
            if old is not None and _same(old.credential, credential):
                entries[key] = _Entry(files, signature, old.credential)
                continue
            entries[key] = _Entry(files, signature, credential)
            log.info(
                "certificate {entry} {how}: {what}",
                entry=files.name,
                how="renewed" if old is not None else "added",
                what=describe_credential(credential),
            )
        self._failed = failed
        if not entries:
            log.error(
                "no usable certificate in {where}; still serving the previous "
                "certificates",
                where=self.directory,
            )
            return False
        for key, old in self._entries.items():
            if key not in entries and key not in failed:
                log.info("certificate {entry} removed", entry=old.files.name)
        self._entries = entries
        credentials = tuple(entry.credential for entry in entries.values())
        if len(credentials) == len(self.credentials) and all(
            a is b for a, b in zip(credentials, self.credentials, strict=True)
        ):
            return False
        self.credentials = credentials
        for context in self._contexts:
            context.set_credentials(credentials)
        return True

    # -- the periodic check ---------------------------------------------------

    def start(self, clock: IReactorTime | None = None) -> None:
        """Check every ``interval`` seconds on ``clock`` (default: the reactor).

        Counted: each call needs a :meth:`stop`; the check runs while at
        least one user (a listening port) is left.
        """
        self._users += 1
        if self._users > 1 or self.interval is None:
            return
        if clock is None:
            from twisted.internet import reactor

            clock = reactor
        loop = LoopingCall(self._check_logged)
        loop.clock = clock
        self._loop = loop
        loop.start(self.interval, now=False)

    def stop(self) -> None:
        """Undo one :meth:`start`."""
        if self._users == 0:
            return
        self._users -= 1
        if self._users == 0 and self._loop is not None:
            loop, self._loop = self._loop, None
            if loop.running:
                loop.stop()

    @property
    def running(self) -> bool:
        """Whether the periodic check is scheduled."""
        return self._loop is not None and self._loop.running

    def _check_logged(self) -> None:
        # A LoopingCall whose function raises stops for good; a bug here must
        # cost one check, not every later renewal.
        try:
            self.check()
        except Exception:
            log.failure("checking the certificate files failed")
