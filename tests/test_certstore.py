"""Certificate directories and reloading (twisted_sslfile.certstore).

Unit tests on temporary directories with a ``task.Clock``: which files make
an entry, which certificate a name gets, and what a renewal, an added name,
a half-written pair or a removed file does to the credentials a Context
serves.  Files are replaced the way certbot and careful writers replace
them (a new file renamed into place, or a symbolic link pointed elsewhere)
so that every change shows in the inode the check compares.
"""

from __future__ import annotations

import os
from typing import Any

from twisted.internet import defer
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import Clock
from twisted.logger import globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase

from tests.certs import CertificateFactory, IssuedCertificate
from twisted_sslfile import certstore
from twisted_sslfile.certstore import (
    DEFAULT_RELOAD_INTERVAL,
    CertificateFiles,
    CertificateStore,
    scan_directory,
)
from twisted_sslfile.constants import ProtocolVersion
from twisted_sslfile.context import DEFAULT_SIGNATURE_SCHEMES, Context
from twisted_sslfile.endpoints import TLSServerEndpoint
from twisted_sslfile.x509 import ConfigurationError, write_pem

TLS13 = ProtocolVersion.TLS_1_3


def put(path: str, *objects: Any) -> str:
    """Write PEM to a hidden temporary file and rename it over ``path``."""
    directory, name = os.path.split(path)
    temporary = os.path.join(directory, f".{name}.tmp")
    write_pem(temporary, *objects)
    os.replace(temporary, path)
    return path


def relink(link: str, target: str) -> None:
    """Point a symbolic link elsewhere in one step, as certbot does."""
    temporary = link + ".new"
    os.symlink(target, temporary)
    os.replace(temporary, link)


class _Fixture:
    """A PKI, a certificate directory, and helpers to fill it."""

    mktemp: Any
    addCleanup: Any

    def make(self) -> None:
        self.pki = CertificateFactory(os.path.abspath(self.mktemp()))
        self.directory = os.path.abspath(self.mktemp())
        os.makedirs(self.directory)
        self.events: list[dict[str, Any]] = []
        globalLogPublisher.addObserver(self.events.append)
        self.addCleanup(globalLogPublisher.removeObserver, self.events.append)

    def combined(self, filename: str, *names: str) -> IssuedCertificate:
        """``filename`` holding the chain and key of a leaf for ``names``."""
        leaf = self.pki.server(names[0], dns_names=list(names))
        put(os.path.join(self.directory, filename), leaf.chain, leaf.key)
        return leaf

    def letsencrypt(self, name: str, *names: str) -> IssuedCertificate:
        """``live/NAME/fullchain.pem`` + ``privkey.pem``, as certbot writes."""
        leaf = self.pki.server(names[0] if names else name, dns_names=names or None)
        entry = os.path.join(self.directory, name)
        os.makedirs(entry, exist_ok=True)
        put(os.path.join(entry, "fullchain.pem"), leaf.chain)
        put(os.path.join(entry, "privkey.pem"), leaf.key)
        return leaf

    def errors(self) -> list[str]:
        from twisted.logger import LogLevel, formatEvent

        return [
            formatEvent(e)
            for e in self.events
            if e.get("log_level") == LogLevel.error
            and e.get("log_namespace") == "twisted_sslfile.certificates"
        ]

    def served(self, context: Context, name: str | None) -> Any:
        """The leaf a client asking for ``name`` gets."""
        credential = context.select_credential(
            name, list(DEFAULT_SIGNATURE_SCHEMES), TLS13
        )
        assert credential is not None
        return credential.certificate


class ScanTests(_Fixture, SynchronousTestCase):
    """Which files make an entry."""

    def setUp(self) -> None:
        self.make()

    def test_letsencrypt_live_directory(self) -> None:
        """
        certbot's live/: one entry per subdirectory with fullchain.pem and
        privkey.pem; its README and subdirectories without them are not
        entries.
        """
        self.letsencrypt("b.example")
        self.letsencrypt("a.example")
        with open(os.path.join(self.directory, "README"), "w") as f:
            f.write("certbot's README\n")
        os.makedirs(os.path.join(self.directory, "unrelated"))
        entries = scan_directory(self.directory)
        self.assertEqual([e.name for e in entries], ["a.example", "b.example"])
        self.assertEqual(
            entries[0],
            CertificateFiles(
                "a.example",
                os.path.join(self.directory, "a.example", "fullchain.pem"),
                os.path.join(self.directory, "a.example", "privkey.pem"),
            ),
        )

    def test_one_letsencrypt_name(self) -> None:
        """live/NAME/ itself is one entry (cert.pem, chain.pem are not)."""
        leaf = self.letsencrypt("a.example")
        entry = os.path.join(self.directory, "a.example")
        put(os.path.join(entry, "cert.pem"), leaf.certificate)
        put(os.path.join(entry, "chain.pem"), leaf.chain[1:])
        self.assertEqual(
            scan_directory(entry),
            [
                CertificateFiles(
                    "a.example",
                    os.path.join(entry, "fullchain.pem"),
                    os.path.join(entry, "privkey.pem"),
                )
            ],
        )

    def test_combined_files_and_default(self) -> None:
        """
        NAME.pem files; DEFAULT (txsni's name) comes first, the rest in
        file-name order; hidden and non-.pem files are skipped.
        """
        self.combined("b.pem", "b.example")
        self.combined("DEFAULT.pem", "default.example")
        self.combined("a.pem", "a.example")
        self.combined(".partial.pem", "partial.example")
        self.combined("a.pem.bak", "old.example")
        self.assertEqual(
            [e.name for e in scan_directory(self.directory)], ["DEFAULT", "a", "b"]
        )

    def test_unreadable_directory(self) -> None:
        missing = os.path.join(self.directory, "missing")
        error = self.assertRaises(ConfigurationError, scan_directory, missing)
        self.assertIn(missing, str(error))


class SelectionTests(_Fixture, SynchronousTestCase):
    """The certificate a name gets comes from the certificates' own names."""

    def setUp(self) -> None:
        self.make()

    def test_san_names_not_file_names(self) -> None:
        a = self.combined("first.pem", "a.example", "www.a.example")
        b = self.letsencrypt("second", "b.example")
        wildcard = self.combined("third.pem", "*.c.example")
        store = CertificateStore.from_directory(self.directory)
        context = Context()
        store.bind(context)
        self.assertEqual(self.served(context, "www.a.example"), a.certificate)
        self.assertEqual(self.served(context, "b.example"), b.certificate)
        self.assertEqual(self.served(context, "x.c.example"), wildcard.certificate)
        # Neither the file names nor a second wildcard level match.
        self.assertEqual(self.served(context, "second"), a.certificate)
        self.assertEqual(self.served(context, "y.x.c.example"), a.certificate)

    def test_default_is_first_by_name(self) -> None:
        """No SNI, or a name no certificate has: the first entry by name."""
        self.combined("m.pem", "m.example")
        first = self.combined("k.pem", "k.example")
        context = Context()
        CertificateStore.from_directory(self.directory).bind(context)
        self.assertEqual(self.served(context, None), first.certificate)
        self.assertEqual(self.served(context, "unknown.example"), first.certificate)

    def test_default_entry(self) -> None:
        self.combined("a.pem", "a.example")
        default = self.combined("DEFAULT.pem", "fallback.example")
        context = Context()
        CertificateStore.from_directory(self.directory).bind(context)
        self.assertEqual(self.served(context, None), default.certificate)
        self.assertEqual(self.served(context, "nope.example"), default.certificate)


class StartupErrorTests(_Fixture, SynchronousTestCase):
    """At startup every problem is an error naming the file (no server yet)."""

    def setUp(self) -> None:
        self.make()

    def test_empty_directory(self) -> None:
        error = self.assertRaises(
            ConfigurationError, CertificateStore.from_directory, self.directory
        )
        self.assertIn("no certificate found", str(error))
        self.assertIn("live/", str(error))

    def test_key_missing(self) -> None:
        leaf = self.pki.server("a.example")
        put(os.path.join(self.directory, "a.pem"), leaf.chain)
        error = self.assertRaises(
            ConfigurationError, CertificateStore.from_directory, self.directory
        )
        self.assertIn(os.path.join(self.directory, "a.pem"), str(error))

    def test_letsencrypt_key_missing(self) -> None:
        self.letsencrypt("a.example")
        privkey = os.path.join(self.directory, "a.example", "privkey.pem")
        os.unlink(privkey)
        error = self.assertRaises(
            ConfigurationError, CertificateStore.from_directory, self.directory
        )
        self.assertIn(privkey, str(error))

    def test_truncated(self) -> None:
        """A PEM block that begins and never ends: being written."""
        leaf = self.combined("a.pem", "a.example")
        path = os.path.join(self.directory, "a.pem")
        with open(path, "rb") as f:
            data = f.read()
        # Cut inside the last certificate of the chain, after a complete leaf.
        cut = data.index(b"-----BEGIN CERTIFICATE-----", 10) + 40
        with open(path, "wb") as f:
            f.write(data[:cut])
        error = self.assertRaises(
            ConfigurationError, CertificateStore.from_directory, self.directory
        )
        self.assertIn("truncated", str(error))
        self.assertIn(path, str(error))
        self.assertTrue(leaf)

    def test_arguments(self) -> None:
        self.assertRaises(ValueError, CertificateStore)
        self.assertRaises(ValueError, CertificateStore.from_files, [])
        self.combined("a.pem", "a.example")
        self.assertRaises(
            ValueError, CertificateStore.from_directory, self.directory, interval=0
        )


class ReloadTests(_Fixture, SynchronousTestCase):
    """Renewals, additions and half-written files while serving."""

    def setUp(self) -> None:
        self.make()
        self.a = self.letsencrypt("a.example")
        self.b = self.combined("b.pem", "b.example")
        self.clock = Clock()
        self.store = CertificateStore.from_directory(self.directory, interval=30)
        self.context = Context()
        self.store.bind(self.context)
        self.store.start(self.clock)
        self.addCleanup(self.store.stop)

    def renew_a(self) -> IssuedCertificate:
        leaf = self.pki.server("a.example")
        entry = os.path.join(self.directory, "a.example")
        put(os.path.join(entry, "fullchain.pem"), leaf.chain)
        put(os.path.join(entry, "privkey.pem"), leaf.key)
        return leaf

    def test_renewal_is_picked_up_on_the_clock(self) -> None:
        """
        The check runs every interval on the injected clock; a renewed pair
        is served from the next check on, and the other entry's credential
        is the same object as before.
        """
        b_credential = self.context.credentials[1]
        renewed = self.renew_a()
        self.clock.advance(29)
        self.assertEqual(self.served(self.context, "a.example"), self.a.certificate)
        self.clock.advance(1)
        self.assertEqual(self.served(self.context, "a.example"), renewed.certificate)
        self.assertIs(self.context.credentials[1], b_credential)
        self.assertEqual(self.errors(), [])

    def test_unchanged_files_are_not_read(self) -> None:
        reads: list[CertificateFiles] = []
        original = certstore.load_credential

        def counting(files: CertificateFiles) -> Any:
            reads.append(files)
            return original(files)

        self.patch(certstore, "load_credential", counting)
        self.assertFalse(self.store.check())
        self.assertEqual(reads, [])
        self.renew_a()
        self.assertTrue(self.store.check())
        self.assertEqual([files.name for files in reads], ["a.example"])

    def test_reload_reads_everything(self) -> None:
        """
        reload() (SIGHUP) reads every entry even when the files look
        unchanged to check(), and swaps nothing when the contents are the
        same.
        """
        before = self.context.credentials
        self.assertFalse(self.store.reload())
        self.assertIs(self.context.credentials, before)
        # A renewal check() cannot see (say, a copy that kept inode, size
        # and mtime): only reload() picks it up.
        self.patch(certstore, "_signature", lambda files: ())
        self.store._entries = {
            key: entry.__class__(entry.files, (), entry.credential)
            for key, entry in self.store._entries.items()
        }
        renewed = self.combined("b.pem", "b.example")
        self.assertFalse(self.store.check())
        self.assertEqual(self.served(self.context, "b.example"), self.b.certificate)
        self.assertTrue(self.store.reload())
        self.assertEqual(self.served(self.context, "b.example"), renewed.certificate)

    def test_added_name_after_reload(self) -> None:
        c = self.combined("c.pem", "c.example")
        self.assertEqual(self.served(self.context, "c.example"), self.a.certificate)
        self.assertTrue(self.store.reload())
        self.assertEqual(self.served(self.context, "c.example"), c.certificate)
        self.assertEqual(self.served(self.context, "b.example"), self.b.certificate)

    def test_key_not_matching_keeps_old(self) -> None:
        """
        certbot's race: fullchain.pem already new, privkey.pem still old.
        The old pair stays in service, one error is logged (not one per
        check), and once the key arrives the new pair is served.
        """
        renewed = self.pki.server("a.example")
        entry = os.path.join(self.directory, "a.example")
        put(os.path.join(entry, "fullchain.pem"), renewed.chain)
        self.clock.advance(30)
        self.assertEqual(self.served(self.context, "a.example"), self.a.certificate)
        errors = self.errors()
        self.assertEqual(len(errors), 1, errors)
        self.assertIn("does not match", errors[0])
        self.assertIn("still serving the previous certificate", errors[0])
        self.clock.advance(30)
        self.assertEqual(len(self.errors()), 1)
        put(os.path.join(entry, "privkey.pem"), renewed.key)
        self.clock.advance(30)
        self.assertEqual(self.served(self.context, "a.example"), renewed.certificate)

    def test_truncated_keeps_old(self) -> None:
        path = os.path.join(self.directory, "b.pem")
        renewed = self.pki.server("b.example")
        write_pem(path + ".full", renewed.chain, renewed.key)
        with open(path + ".full", "rb") as f:
            data = f.read()
        os.unlink(path + ".full")
        with open(path + ".tmp", "wb") as f:
            f.write(data[: len(data) - 100])
        os.replace(path + ".tmp", path)
        self.assertFalse(self.store.reload())
        self.assertEqual(self.served(self.context, "b.example"), self.b.certificate)
        self.assertIn("truncated", self.errors()[0])
        with open(path + ".tmp", "wb") as f:
            f.write(data)
        os.replace(path + ".tmp", path)
        self.clock.advance(30)
        self.assertEqual(self.served(self.context, "b.example"), renewed.certificate)

    def test_new_broken_entry_is_not_served(self) -> None:
        leaf = self.pki.server("c.example")
        put(os.path.join(self.directory, "c.pem"), leaf.chain)  # no key
        self.assertFalse(self.store.reload())
        self.assertIn("not served", self.errors()[0])
        self.assertEqual(len(self.context.credentials), 2)

    def test_changed_while_read(self) -> None:
        """
        Files that change between the stat before and after reading are a
        write in progress: not taken, and read again at the next check.
        """
        renewed = self.renew_a()
        original = certstore.load_credential
        again = self.pki.server("a.example")

        def racing(files: CertificateFiles) -> Any:
            result = original(files)
            self.patch(certstore, "load_credential", original)
            entry = os.path.join(self.directory, "a.example")
            put(os.path.join(entry, "fullchain.pem"), again.chain)
            put(os.path.join(entry, "privkey.pem"), again.key)
            return result

        self.patch(certstore, "load_credential", racing)
        self.assertFalse(self.store.check())
        self.assertEqual(self.served(self.context, "a.example"), self.a.certificate)
        self.assertIn("changed while being read", self.errors()[0])
        self.assertTrue(self.store.check())
        self.assertEqual(self.served(self.context, "a.example"), again.certificate)
        self.assertNotEqual(renewed.certificate, again.certificate)

    def test_removed_entry(self) -> None:
        os.unlink(os.path.join(self.directory, "b.pem"))
        self.assertTrue(self.store.check())
        self.assertEqual(len(self.context.credentials), 1)
        self.assertEqual(self.served(self.context, "b.example"), self.a.certificate)

    def test_nothing_left_keeps_everything(self) -> None:
        before = self.context.credentials
        os.unlink(os.path.join(self.directory, "b.pem"))
        for name in ("fullchain.pem", "privkey.pem"):
            os.unlink(os.path.join(self.directory, "a.example", name))
        self.assertFalse(self.store.check())
        self.assertIs(self.context.credentials, before)
        self.assertIn("no usable certificate", self.errors()[0])

    def test_directory_gone_keeps_everything(self) -> None:
        before = self.context.credentials
        moved = self.directory + ".moved"
        os.rename(self.directory, moved)
        self.addCleanup(os.rename, moved, self.directory)
        self.assertFalse(self.store.reload())
        self.assertIs(self.context.credentials, before)
        self.assertIn("cannot list", self.errors()[0])

    def test_symlinked_letsencrypt_renewal(self) -> None:
        """
        certbot's real layout: live/NAME/*.pem are links into archive/; a
        renewal writes fullchain2/privkey2 and re-points the links.
        """
        archive = os.path.abspath(self.mktemp())
        os.makedirs(archive)
        entry = os.path.join(self.directory, "a.example")
        renewed = self.pki.server("a.example")
        for number, leaf in ((1, self.a), (2, renewed)):
            write_pem(os.path.join(archive, f"fullchain{number}.pem"), leaf.chain)
            write_pem(os.path.join(archive, f"privkey{number}.pem"), leaf.key)
        for name in ("fullchain", "privkey"):
            relink(os.path.join(entry, f"{name}.pem"), f"{archive}/{name}1.pem")
        # Same contents behind new links: read again, nothing to swap.
        before = self.context.credentials
        self.clock.advance(30)
        self.assertIs(self.context.credentials, before)
        relink(os.path.join(entry, "fullchain.pem"), f"{archive}/fullchain2.pem")
        relink(os.path.join(entry, "privkey.pem"), f"{archive}/privkey2.pem")
        self.clock.advance(30)
        self.assertEqual(self.served(self.context, "a.example"), renewed.certificate)
        self.assertEqual(self.errors(), [])

    def test_stop_ends_the_checks(self) -> None:
        self.assertTrue(self.store.running)
        self.store.stop()
        self.assertFalse(self.store.running)
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.store.start(self.clock)  # what the cleanup's stop() undoes

    def test_a_failing_check_does_not_stop_the_next(self) -> None:
        def broken() -> bool:
            raise RuntimeError("bug")

        self.patch(self.store, "check", broken)
        self.clock.advance(30)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        self.assertTrue(self.store.running)


class CountedStartTests(_Fixture, SynchronousTestCase):
    def setUp(self) -> None:
        self.make()
        self.combined("a.pem", "a.example")

    def test_users_are_counted(self) -> None:
        clock = Clock()
        store = CertificateStore.from_directory(self.directory)
        store.start(clock)
        store.start(clock)
        self.assertEqual(len(clock.getDelayedCalls()), 1)
        self.assertEqual(clock.getDelayedCalls()[0].getTime(), DEFAULT_RELOAD_INTERVAL)
        store.stop()
        self.assertTrue(store.running)
        store.stop()
        self.assertFalse(store.running)
        store.stop()  # one too many: harmless

    def test_no_interval(self) -> None:
        clock = Clock()
        store = CertificateStore.from_directory(self.directory, interval=None)
        store.start(clock)
        self.assertEqual(clock.getDelayedCalls(), [])
        store.stop()


class _Port:
    """What a listening port does to its factory: doStart, then doStop."""

    def __init__(self, factory: Any) -> None:
        self.factory = factory
        factory.doStart()

    def stopListening(self) -> None:
        self.factory.doStop()


class _Inner:
    def listen(self, factory: Any) -> defer.Deferred[_Port]:
        return defer.succeed(_Port(factory))


class EndpointTests(_Fixture, SynchronousTestCase):
    """TLSServerEndpoint checks the files while (and only while) listening."""

    def setUp(self) -> None:
        self.make()
        self.a = self.combined("a.pem", "a.example")

    def test_checks_while_listening(self) -> None:
        clock = Clock()
        store = CertificateStore.from_directory(self.directory, interval=5)
        context = Context(credentials=store.credentials)
        endpoint = TLSServerEndpoint(_Inner(), context, certificates=store, clock=clock)
        self.assertFalse(store.running)
        port = self.successResultOf(endpoint.listen(Factory.forProtocol(Protocol)))
        self.assertTrue(store.running)
        renewed = self.combined("a.pem", "a.example")
        clock.advance(5)
        self.assertEqual(self.served(context, "a.example"), renewed.certificate)
        port.stopListening()
        self.assertFalse(store.running)
        self.assertEqual(clock.getDelayedCalls(), [])

    def test_reload(self) -> None:
        store = CertificateStore.from_directory(self.directory, interval=None)
        context = Context(credentials=store.credentials)
        endpoint = TLSServerEndpoint(_Inner(), context, certificates=store)
        b = self.combined("b.pem", "b.example")
        self.assertTrue(endpoint.reload())
        self.assertEqual(self.served(context, "b.example"), b.certificate)

    def test_reload_without_files(self) -> None:
        endpoint = TLSServerEndpoint(_Inner(), Context())
        self.assertFalse(endpoint.reload())
