"""``twistd sslfile-echo`` with a directory of certificates, renewed live.

In-process: the options that choose a directory, and the SIGHUP handler
the service installs.  As a user runs it: a real twistd process serving a
Let's Encrypt-style directory, checked with ``openssl s_client`` (the
certificate each ``-servername`` gets, and the serial after a renewal on
disk picked up by SIGHUP or by the periodic check).
"""

from __future__ import annotations

import os
import signal
import subprocess
from typing import Any

from cryptography import x509 as cx509
from twisted.internet import defer
from twisted.python import usage
from twisted.trial.unittest import SynchronousTestCase

from tests.certs import CertificateFactory, IssuedCertificate
from tests.peers import OpenSSLClient, openssl_binary
from tests.test_certstore import put
from tests.test_echo import TIMEOUT, EchoServerTestCase
from twisted_sslfile.echo import EchoService, Options


class _Endpoint:
    def __init__(self) -> None:
        self.reloads = 0
        self.handler_when_listening: Any = None

    def listen(self, factory: Any) -> defer.Deferred[Any]:
        self.handler_when_listening = signal.getsignal(signal.SIGHUP)
        return defer.Deferred()  # never listening: nothing to stop

    def reload(self) -> bool:
        self.reloads += 1
        return True


class _Reactor:
    def __init__(self) -> None:
        self.calls: list[Any] = []

    def callFromThread(self, f: Any, *args: Any) -> None:
        self.calls.append((f, args))


class SighupTests(SynchronousTestCase):
    """The service's SIGHUP handler: installed, deferred, removed."""

    def test_sighup_reloads_every_endpoint(self) -> None:
        """
        SIGHUP while running asks the reactor to reload; the reload reaches
        every endpoint that can reload (and skips one that cannot).  After
        stopService the previous handler is back.
        """
        previous = signal.getsignal(signal.SIGHUP)
        endpoints = [_Endpoint(), _Endpoint()]
        reactor = _Reactor()
        service = EchoService(
            [("a", endpoints[0]), ("plain", _NoReload()), ("b", endpoints[1])],
            reactor=reactor,
        )
        service.startService()
        self.addCleanup(signal.signal, signal.SIGHUP, previous)
        # Installed before listening: a SIGHUP as soon as the port is
        # announced must not hit the default action (terminate).
        self.assertEqual(endpoints[0].handler_when_listening, service._sighup)
        os.kill(os.getpid(), signal.SIGHUP)
        # The handler ran (in this thread) but only scheduled the work.
        self.assertEqual([e.reloads for e in endpoints], [0, 0])
        self.assertEqual(len(reactor.calls), 1)
        function, args = reactor.calls[0]
        function(*args)
        self.assertEqual([e.reloads for e in endpoints], [1, 1])
        self.successResultOf(service.stopService())
        self.assertEqual(signal.getsignal(signal.SIGHUP), previous)


class _NoReload:
    def listen(self, factory: Any) -> defer.Deferred[Any]:
        return defer.Deferred()


class OptionsTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.pki = CertificateFactory(os.path.abspath(self.mktemp()))
        self.directory = os.path.abspath(self.mktemp())
        os.makedirs(self.directory)
        leaf = self.pki.server("a.example")
        put(os.path.join(self.directory, "a.pem"), leaf.chain, leaf.key)

    def test_cert_directory(self) -> None:
        """--cert DIR serves the directory; no certificate is generated."""
        options = Options()
        options.parseOptions(
            ["--cert", self.directory, "--reload-interval", "5", "--cert-dir", "x"]
        )
        self.assertEqual(options.defaults["certDir"], self.directory)
        self.assertEqual(options.defaults["reloadInterval"], "5")
        self.assertNotIn("certKey", options.defaults)
        self.assertIsNone(options.generated)
        self.assertFalse(os.path.exists("x"))

    def test_cert_directory_in_endpoint(self) -> None:
        """certDir= in the description also means nothing is generated."""
        options = Options()
        options.parseOptions(["--endpoint", f"sslfile:tcp:0:certDir={self.directory}"])
        self.assertIsNone(options.generated)

    def test_cert_directory_with_key(self) -> None:
        leaf = self.pki.server("b.example")
        error = self.assertRaises(
            usage.UsageError,
            Options().parseOptions,
            ["--cert", self.directory, "--key", leaf.key_path],
        )
        self.assertIn("is a directory of certificates", str(error))
        self.assertRaises(
            usage.UsageError,
            Options().parseOptions,
            ["--cert", self.directory, "--cert", leaf.combined_path],
        )

    def test_bad_reload_interval(self) -> None:
        error = self.assertRaises(
            usage.UsageError,
            Options().parseOptions,
            ["--cert", self.directory, "--reload-interval", "soon"],
        )
        self.assertIn("reloadInterval", str(error))


def s_client_leaf(port: int, servername: str, ca_path: str) -> cx509.Certificate:
    """The leaf ``openssl s_client -servername NAME -showcerts`` receives,
    verified against ``ca_path`` for that name."""
    result = subprocess.run(
        [
            openssl_binary(),
            "s_client",
            "-connect",
            f"127.0.0.1:{port}",
            "-servername",
            servername,
            "-verify_hostname",
            servername,
            "-CAfile",
            ca_path,
            "-verify_return_error",
            "-showcerts",
        ],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=TIMEOUT,
        check=False,
    )
    output = result.stdout.decode("utf-8", "replace")
    if result.returncode != 0 or "Verify return code: 0 (ok)" not in output:
        raise AssertionError(
            f"s_client -servername {servername} failed ({result.returncode}):\n"
            f"{output}\n{result.stderr.decode('utf-8', 'replace')}"
        )
    return cx509.load_pem_x509_certificates(result.stdout)[0]


def _names(cert: cx509.Certificate) -> list[str]:
    san = cert.extensions.get_extension_for_class(cx509.SubjectAlternativeName)
    return san.value.get_values_for_type(cx509.DNSName)


class DirectoryServerTests(EchoServerTestCase):
    """A twistd process serving a certbot-style live/ directory."""

    def setUp(self) -> None:
        self.ca = self.pki()
        self.live = self.tempdir()
        self.a = self.issue("a.example", "a.example", "www.a.example")
        self.b = self.issue("b.example", "b.example")

    def issue(self, entry: str, *names: str) -> IssuedCertificate:
        """Write live/ENTRY/fullchain.pem + privkey.pem (rename into place)."""
        leaf = self.ca.server(names[0], dns_names=list(names))
        directory = os.path.join(self.live, entry)
        os.makedirs(directory, exist_ok=True)
        put(os.path.join(directory, "fullchain.pem"), leaf.chain)
        put(os.path.join(directory, "privkey.pem"), leaf.key)
        return leaf

    def check_names(self, port: int) -> None:
        for servername, leaf in (
            ("a.example", self.a),
            ("www.a.example", self.a),
            ("b.example", self.b),
        ):
            served = s_client_leaf(port, servername, self.ca.ca_path)  # type: ignore[arg-type]
            self.assertEqual(served, leaf.certificate, servername)
            self.assertIn(servername, _names(served))
        a_subject = s_client_leaf(port, "a.example", self.ca.ca_path)  # type: ignore[arg-type]
        self.assertIn("CN=a.example", a_subject.subject.rfc4514_string())

    def test_sni_and_sighup_renewal(self) -> None:
        """
        Each -servername gets its own certificate (subject and SAN); after
        a renewal on disk and SIGHUP a new connection gets the new serial,
        while a connection opened before keeps echoing.
        """
        server = self.start_server(
            "--endpoint",
            "sslfile:tcp:0:interface=127.0.0.1",
            "--cert",
            self.live,
            "--reload-interval",
            "none",
        )
        self.check_names(server.port)
        before = OpenSSLClient(
            server.port, ca_file=self.ca.ca_path, servername="a.example"
        )
        self.addCleanup(before.stop)
        before.start()
        before.expect_connected()

        renewed = self.issue("a.example", "a.example", "www.a.example")
        self.assertNotEqual(
            renewed.certificate.serial_number, self.a.certificate.serial_number
        )
        assert server.process is not None
        server.process.send_signal(signal.SIGHUP)
        server.wait_for(r"certificate a\.example renewed: a\.example, www\.a\.example")
        served = s_client_leaf(server.port, "a.example", self.ca.ca_path)  # type: ignore[arg-type]
        self.assertEqual(served.serial_number, renewed.certificate.serial_number)
        self.assertEqual(
            s_client_leaf(server.port, "b.example", self.ca.ca_path),  # type: ignore[arg-type]
            self.b.certificate,
        )

        before.write(b"after the renewal\n")
        before.expect_output(b"after the renewal\n")
        before.close_stdin()
        self.assertEqual(before.wait(), 0)

    def test_renewal_found_by_the_periodic_check(self) -> None:
        """Without a signal: the next check of the files finds the renewal,
        and a name added to the directory is served too."""
        server = self.start_server(
            "--endpoint",
            "sslfile:tcp:0:interface=127.0.0.1",
            "--cert",
            self.live,
            "--reload-interval",
            "0.2",
        )
        renewed = self.issue("a.example", "a.example", "www.a.example")
        c = self.issue("c.example", "c.example")
        server.wait_for(r"certificate a\.example renewed")
        server.wait_for(r"certificate c\.example added")
        served = s_client_leaf(server.port, "a.example", self.ca.ca_path)  # type: ignore[arg-type]
        self.assertEqual(served.serial_number, renewed.certificate.serial_number)
        self.assertEqual(
            s_client_leaf(server.port, "c.example", self.ca.ca_path),  # type: ignore[arg-type]
            c.certificate,
        )

    def test_half_written_pair_keeps_the_old_one(self) -> None:
        """
        A new fullchain.pem whose privkey.pem has not arrived: the error is
        logged and clients keep getting the old certificate.
        """
        server = self.start_server(
            "--endpoint",
            "sslfile:tcp:0:interface=127.0.0.1",
            "--cert",
            self.live,
            "--reload-interval",
            "none",
        )
        renewed = self.ca.server("a.example", dns_names=["a.example", "www.a.example"])
        put(os.path.join(self.live, "a.example", "fullchain.pem"), renewed.chain)
        assert server.process is not None
        server.process.send_signal(signal.SIGHUP)
        server.wait_for(r"certificate a\.example: .*does not match.* still serving")
        served = s_client_leaf(server.port, "a.example", self.ca.ca_path)  # type: ignore[arg-type]
        self.assertEqual(served, self.a.certificate)
