"""``twistd -n sslfile-echo`` as a user runs it: a real process, real clients.

Every test starts twistd from the checkout (``PYTHONPATH`` points at it, so
the plugin in ``twisted/plugins/`` is found without installing anything)
and talks to it with ``openssl s_client``, Python's ``ssl`` module or our
own client.  Waits are bounded and the process is always killed on
teardown.  The installed-package check at the end builds a fresh virtualenv
and runs ``pip install .`` for real.

:class:`EchoServer` is imported by test_endpoints and test_cli too.
"""

from __future__ import annotations

import contextlib
import os
import re
import select
import shutil
import signal
import socket
import ssl
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cryptography import x509 as cx509
from twisted.internet import defer, reactor
from twisted.internet.error import ConnectionDone
from twisted.internet.interfaces import IPushProducer
from twisted.internet.protocol import Factory, Protocol, connectionDone
from twisted.internet.task import Clock, deferLater
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase, TestCase
from zope.interface import implementer

from tests.certs import CertificateFactory
from tests.peers import OpenSSLClient
from tests.test_protocol import Recorder, SimNetwork, SimSocket
from tests.test_protocol import pki as protocol_pki
from twisted_sslfile import x509
from twisted_sslfile.echo import EchoFactory, EchoProtocol
from twisted_sslfile.protocol import DEFAULT_CLOSE_TIMEOUT, TLSFactory, TLSProtocol

ROOT = Path(__file__).resolve().parent.parent
#: Upper bound of one wait on the server, in seconds.
TIMEOUT = 20.0

_TWISTD = (
    "import sys; from twisted.scripts.twistd import run; sys.argv[0] = 'twistd'; run()"
)
#: How twistd exits on SIGTERM: it re-raises the signal after a clean
#: shutdown, so the status is -SIGTERM (0 on platforms that cannot).
STOPPED = (0, -signal.SIGTERM)
#: A kernel-chosen port on loopback: tests never collide with each other.
LOOPBACK_ENDPOINT = "sslfile:tcp:0:interface=127.0.0.1"
_LISTENING = re.compile(r"listening on (\S+) \(")


def checkout_environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for a subprocess that must import this checkout."""
    env = dict(os.environ)
    path = env.get("PYTHONPATH")
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + path if path else "")
    env.pop("LISTEN_FDS", None)
    env.pop("LISTEN_PID", None)
    env.pop("SSLKEYLOGFILE", None)  # a key log only where a test asks for one
    env.update(extra or {})
    return env


class EchoServer:
    """``twistd -n sslfile-echo ARGS`` in ``directory``, log collected.

    ``launcher`` replaces the Python interpreter's argv prefix (the
    systemd test uses it to hand over a socket).
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        args: Sequence[str] = ("--endpoint", "sslfile:tcp:0:interface=127.0.0.1"),
        *,
        env: dict[str, str] | None = None,
        launcher: Sequence[str] = (),
        pass_fds: Sequence[int] = (),
    ) -> None:
        self.directory = os.fspath(directory)
        os.makedirs(self.directory, exist_ok=True)
        self.command = [
            *launcher,
            sys.executable,
            "-c",
            _TWISTD,
            "-n",
            "--pidfile=",
            "sslfile-echo",
            *args,
        ]
        self.env = checkout_environment(env)
        self.pass_fds = tuple(pass_fds)
        self.process: subprocess.Popen[bytes] | None = None
        self._lines: list[str] = []
        self._cond = threading.Condition()
        self._closed = False

    # -- process ----------------------------------------------------------------

    def start(self, *, wait_listening: int = 1) -> EchoServer:
        self.process = subprocess.Popen(
            self.command,
            cwd=self.directory,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            pass_fds=self.pass_fds,
        )
        threading.Thread(target=self._read, daemon=True).start()
        if wait_listening:
            self.wait_for(_LISTENING, count=wait_listening)
        return self

    def _read(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        for raw in self.process.stdout:
            with self._cond:
                self._lines.append(raw.decode("utf-8", "replace").rstrip("\n"))
                self._cond.notify_all()
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def stop(self, sig: int = signal.SIGTERM) -> int | None:
        """Signal the server and wait (bounded) for it to exit."""
        process = self.process
        if process is None:
            return None
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(sig)
            try:
                process.wait(TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
        with self._cond:
            self._cond.wait_for(lambda: self._closed, 5)
        return process.returncode

    def kill(self) -> None:
        """Teardown: whatever state it is in, it is gone afterwards."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)
        if self.process is not None and self.process.stdout is not None:
            with self._cond:
                self._cond.wait_for(lambda: self._closed, 5)
            self.process.stdout.close()

    # -- log ----------------------------------------------------------------------

    @property
    def log(self) -> str:
        with self._cond:
            return "\n".join(self._lines)

    def wait_for(
        self,
        pattern: str | re.Pattern[str],
        *,
        count: int = 1,
        timeout: float = TIMEOUT,
    ) -> list[re.Match[str]]:
        """The first ``count`` matches of ``pattern`` in the log, waiting
        for them; fails with the whole log when they do not come."""
        regex = re.compile(pattern) if isinstance(pattern, str) else pattern
        deadline = time.monotonic() + timeout

        def found() -> list[re.Match[str]]:
            return [m for line in self._lines if (m := regex.search(line))]

        with self._cond:
            while True:
                matches = found()
                if len(matches) >= count:
                    return matches[:count]
                remaining = deadline - time.monotonic()
                if self._closed or remaining <= 0:
                    break
                self._cond.wait(remaining)
        raise AssertionError(
            f"{regex.pattern!r} (x{count}) not in the sslfile-echo log\n"
            f"command: {' '.join(self.command)}\nexit: "
            f"{self.process.poll() if self.process else None}\n--- log ---\n"
            f"{self.log}"
        )

    def connection_line(self, count: int = 1) -> str:
        """The ``count``-th per-connection log line (waits for it)."""
        pattern = re.compile(r"\] \S+ (sni=|handshake failed)")
        return self.wait_for(pattern, count=count)[-1].string

    @property
    def addresses(self) -> list[tuple[str, int] | str]:
        """``(host, port)`` per TCP listener, the log's text for others."""
        result: list[tuple[str, int] | str] = []
        for match in self._listening():
            host, colon, port = match.group(1).rpartition(":")
            if colon and port.isdigit() and not host.startswith("unix"):
                result.append((host.strip("[]"), int(port)))
            else:
                result.append(match.group(1))
        return result

    def _listening(self) -> list[re.Match[str]]:
        with self._cond:
            return [m for line in self._lines if (m := _LISTENING.search(line))]

    @property
    def port(self) -> int:
        address = self.addresses[0]
        assert isinstance(address, tuple), address
        return address[1]

    @property
    def cert_path(self) -> str:
        return os.path.join(self.directory, "sslfile-echo-cert.pem")


def python_ssl_echo(
    port: int,
    cafile: str,
    message: bytes = b"hello over python ssl\n",
    *,
    server_hostname: str = "localhost",
    maximum_version: ssl.TLSVersion | None = None,
    alpn: Sequence[str] = (),
    cert: tuple[str, str] | None = None,
) -> tuple[bytes, ssl.SSLSocket]:
    """One echo round trip with the stdlib; returns (reply, closed socket)."""
    context = ssl.create_default_context(cafile=cafile)
    if maximum_version is not None:
        context.maximum_version = maximum_version
    if alpn:
        context.set_alpn_protocols(list(alpn))
    if cert is not None:
        context.load_cert_chain(*cert)
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as raw:
        tls = context.wrap_socket(
            raw, server_hostname=server_hostname, suppress_ragged_eofs=False
        )
        tls.sendall(message)
        reply = b""
        while len(reply) < len(message):
            chunk = tls.recv(65536)
            if not chunk:
                break
            reply += chunk
        tls.unwrap()  # our close_notify, and theirs back
        tls.close()
    return reply, tls


class EchoServerTestCase(SynchronousTestCase):
    """Starts servers, and always kills them."""

    def start_server(
        self, *args: str, directory: str | None = None, **kw
    ) -> EchoServer:
        server = EchoServer(directory or self.tempdir(), args, **kw)
        self.addCleanup(server.kill)
        return server.start()

    def tempdir(self) -> str:
        """A fresh absolute directory: servers run elsewhere than trial."""
        path = os.path.abspath(self.mktemp())
        os.makedirs(path)
        return path

    def pki(self) -> CertificateFactory:
        return CertificateFactory(self.tempdir())


class DefaultRunTests(EchoServerTestCase):
    """``twistd -n sslfile-echo`` with no arguments at all."""

    def test_no_arguments(self) -> None:
        """
        With no argument it listens on 127.0.0.1:8443, generates a
        certificate in the current directory (key mode 0600), logs path and
        fingerprint, and the fingerprint is that of the certificate served.
        """
        probe = socket.socket()
        # As twistd binds: a TIME_WAIT left by an earlier run is no conflict.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", 8443))
        except OSError as e:
            self.fail(f"127.0.0.1:8443 must be free for this test: {e}")
        finally:
            probe.close()
        directory = self.tempdir()
        server = EchoServer(directory, ())
        self.addCleanup(server.kill)
        server.start()
        self.assertEqual(server.addresses, [("127.0.0.1", 8443)])
        match = server.wait_for(
            r"generated a self-signed certificate for localhost, 127\.0\.0\.1, "
            r"::1: (\S+) \(key (\S+)\); SHA-256 fingerprint ([0-9A-F:]{95})"
        )[0]
        cert_path, key_path, logged = match.groups()
        self.assertEqual(cert_path, os.path.abspath(server.cert_path))
        self.assertEqual(stat.S_IMODE(os.stat(key_path).st_mode), 0o600)

        reply, _ = python_ssl_echo(8443, cert_path)
        self.assertEqual(reply, b"hello over python ssl\n")
        served = ssl.DER_cert_to_PEM_cert(_peer_der(8443, cert_path))
        cert = cx509.load_pem_x509_certificate(served.encode())
        self.assertEqual(x509.fingerprint_sha256(cert), logged)
        with open(cert_path, "rb") as f:
            self.assertEqual(cx509.load_pem_x509_certificate(f.read()), cert)
        server.connection_line(2)
        self.assertIn(server.stop(), STOPPED)

    def test_certificate_reused(self) -> None:
        """
        A second start in the same --cert-dir serves the saved certificate,
        so a client that trusts it keeps working across restarts.
        """
        directory = self.tempdir()
        certs = os.path.join(directory, "certs")
        args = ("--endpoint", LOOPBACK_ENDPOINT, "--cert-dir", certs)
        first = self.start_server(*args, directory=directory)
        fingerprint = first.wait_for(r"fingerprint (\S+);")[0].group(1)
        first.stop()
        second = self.start_server(*args, directory=directory)
        match = second.wait_for(r"(\w+) a self-signed .* fingerprint (\S+);")[0]
        self.assertEqual(match.groups(), ("reused", fingerprint))
        reply, _ = python_ssl_echo(
            second.port, os.path.join(certs, "sslfile-echo-cert.pem")
        )
        self.assertEqual(reply, b"hello over python ssl\n")


class GeneratedCertificateTests(SynchronousTestCase):
    """ensure_self_signed's files, without starting a server."""

    def test_stale_open_key_file_is_replaced_0600(self) -> None:
        """
        A key file left 0644 (by hand, or by an older version) is replaced
        by a 0600 one when the certificate is generated again; a symlink at
        the key's name is not followed.
        """
        from twisted_sslfile.echo import (
            GENERATED_KEY_FILE,
            ensure_self_signed,
        )

        directory = os.path.abspath(self.mktemp())
        os.makedirs(directory)
        key_path = os.path.join(directory, GENERATED_KEY_FILE)
        with open(key_path, "wb") as f:
            f.write(b"not a key")
        os.chmod(key_path, 0o644)
        generated = ensure_self_signed(directory)
        self.assertEqual(generated["state"], "generated")
        self.assertEqual(stat.S_IMODE(os.stat(key_path).st_mode), 0o600)
        self.assertEqual(
            sorted(os.listdir(directory)),
            sorted([GENERATED_KEY_FILE, os.path.basename(generated["cert"])]),
        )
        victim = os.path.join(directory, "victim")
        with open(victim, "wb") as f:
            f.write(b"untouched")
        os.unlink(generated["cert"])  # not reusable: generated again
        os.unlink(key_path)
        os.symlink(victim, key_path)
        ensure_self_signed(directory)
        with open(victim, "rb") as f:
            self.assertEqual(f.read(), b"untouched")
        self.assertFalse(os.path.islink(key_path))


def _peer_der(port: int, cafile: str) -> bytes:
    context = ssl.create_default_context(cafile=cafile)
    with (
        socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        der = tls.getpeercert(binary_form=True)
        tls.unwrap()
    assert der is not None
    return der


class OpenSSLClientTests(EchoServerTestCase):
    """``openssl s_client`` against the echo server."""

    def setUp(self) -> None:
        self.server = self.start_server(
            "--endpoint",
            "sslfile:tcp:0:interface=127.0.0.1",
            "--alpn",
            "h2,echo",
            "--npn",
            "echo,h2",
        )

    def _s_client(self, **kwargs) -> OpenSSLClient:
        client = OpenSSLClient(
            self.server.port, ca_file=self.server.cert_path, **kwargs
        )
        self.addCleanup(client.stop)
        client.start()
        client.expect_connected()
        client.write(b"ping through openssl\n")
        client.expect_output(b"ping through openssl\n")
        client.close_stdin()
        client.wait()
        return client

    def test_tls13_alpn(self) -> None:
        """
        TLS 1.3 with ALPN: echoed, and the log line shows what was agreed.
        """
        client = self._s_client(tls_version="1.3", alpn="echo")
        self.assertEqual(client.summary("Protocol version"), "TLSv1.3")
        self.assertEqual(client.summary("Verification"), "OK")
        line = self.server.connection_line()
        self.assertRegex(
            line,
            r"127\.0\.0\.1:\d+ sni=localhost TLSv1\.3 TLS_AES_\w+ group=\w+ "
            r"alpn=echo npn=- resumed=no in=21 out=21 time=\d+\.\d{3}s "
            r"end: peer closed with close_notify$",
        )

    def test_tls12_npn(self) -> None:
        """
        TLS 1.2 with NPN (the engine's TLS 1.2): s_client's choice shows as
        the connection's next protocol.
        """
        client = self._s_client(tls_version="1.2", npn="echo")
        self.assertEqual(client.summary("Protocol version"), "TLSv1.2")
        line = self.server.connection_line()
        self.assertRegex(
            line,
            r"sni=localhost TLSv1\.2 TLS_ECDHE_ECDSA_WITH_\w+ group=\w+ alpn=- "
            r"npn=echo resumed=no in=21 out=21 .* end: peer closed with close_notify$",
        )

    def test_handshake_failure_logged(self) -> None:
        """
        A client that does not trust the certificate aborts; the server
        logs one warning saying the handshake failed, for which name, and why.
        """
        other = self.pki()
        client = OpenSSLClient(self.server.port, ca_file=other.ca_path)
        self.addCleanup(client.stop)
        client.start()
        client.wait()
        line = self.server.connection_line()
        self.assertRegex(
            line,
            r"#warn\] 127\.0\.0\.1:\d+ handshake failed; sni=localhost in=0 "
            r"out=0 time=\S+ end: peer sent fatal alert \w+$",
        )


class PythonSSLTests(EchoServerTestCase):
    """The stdlib ``ssl`` module against the echo server."""

    def test_versions_and_alpn(self) -> None:
        """
        TLS 1.3 and TLS 1.2, with ALPN, both echo; close_notify both ways
        (``unwrap`` raises if the server does not answer it).
        """
        server = self.start_server(
            "--endpoint", "sslfile:tcp:0:interface=127.0.0.1", "--alpn", "echo"
        )
        reply, _ = python_ssl_echo(server.port, server.cert_path, alpn=["echo"])
        self.assertEqual(reply, b"hello over python ssl\n")
        reply, _ = python_ssl_echo(
            server.port,
            server.cert_path,
            b"twelve\n",
            maximum_version=ssl.TLSVersion.TLSv1_2,
        )
        self.assertEqual(reply, b"twelve\n")
        first, second = server.connection_line(1), server.connection_line(2)
        self.assertIn(" TLSv1.3 ", first)
        self.assertIn(" alpn=echo ", first)
        self.assertIn(" TLSv1.2 ", second)
        self.assertIn(" in=7 out=7 ", second)

    def test_sni_several_certificates(self) -> None:
        """
        --cert/--key repeated: the certificate is chosen by SNI.
        """
        pki = self.pki()
        a = pki.server("alpha.test")
        b = pki.server("beta.test")
        server = self.start_server(
            "--endpoint",
            "sslfile:tcp:0:interface=127.0.0.1",
            *("--cert", a.chain_path, "--key", a.key_path),
            *("--cert", b.chain_path, "--key", b.key_path),
        )
        for name in ("alpha.test", "beta.test"):
            reply, _ = python_ssl_echo(
                server.port, pki.ca_path, name.encode(), server_hostname=name
            )
            self.assertEqual(reply, name.encode())
        self.assertIn(" sni=beta.test ", server.connection_line(2))

    def test_client_certificates(self) -> None:
        """
        --client-ca makes a client certificate mandatory: one is accepted,
        no certificate is refused (logged as a failed handshake).
        """
        pki = self.pki()
        leaf = pki.server("localhost")
        client = pki.client("a client")
        server = self.start_server(
            "--endpoint",
            "sslfile:tcp:0:interface=127.0.0.1",
            *("--cert", leaf.chain_path, "--key", leaf.key_path),
            *("--client-ca", pki.ca_path),
        )
        reply, _ = python_ssl_echo(
            server.port,
            pki.ca_path,
            cert=(client.chain_path, client.key_path),  # type: ignore[arg-type]
        )
        self.assertEqual(reply, b"hello over python ssl\n")
        self.assertIn(
            ' resumed=no subject="CN=a client,O=twisted_sslfile tests" in=',
            server.connection_line(1),
        )
        with self.assertRaises((ssl.SSLError, OSError)):
            python_ssl_echo(server.port, pki.ca_path)
        self.assertIn("handshake failed", server.connection_line(2))

    def test_ticket_keys_shared(self) -> None:
        """
        Two processes given the same --ticket-keys file resume each other's
        sessions (what a load-balanced fleet needs).
        """
        from twisted_sslfile.ticketkeyfile import generate_key_file

        directory = self.tempdir()
        keys = os.path.join(directory, "ticket.keys")
        generate_key_file(keys, 2, os.urandom)
        args = (
            "--endpoint",
            "sslfile:tcp:0:interface=127.0.0.1",
            "--ticket-keys",
            keys,
        )
        one = self.start_server(*args, directory=directory)
        two = self.start_server(*args, directory=directory)
        context = ssl.create_default_context(cafile=one.cert_path)
        context.maximum_version = ssl.TLSVersion.TLSv1_2  # session visible at once
        session = None
        for server in (one, two):
            with (
                socket.create_connection(("127.0.0.1", server.port), TIMEOUT) as raw,
                context.wrap_socket(
                    raw, server_hostname="localhost", session=session
                ) as tls,
            ):
                tls.sendall(b"x")
                self.assertEqual(tls.recv(1), b"x")
                session = tls.session
                tls.unwrap()
        self.assertIn(" resumed=no ", one.connection_line())
        self.assertIn(" resumed=yes ", two.connection_line())


class ShutdownTests(EchoServerTestCase):
    """Stopping the server closes open connections with close_notify."""

    def test_sigterm_sends_close_notify(self) -> None:
        server = self.start_server()
        context = ssl.create_default_context(cafile=server.cert_path)
        with socket.create_connection(("127.0.0.1", server.port), TIMEOUT) as raw:
            tls = context.wrap_socket(
                raw, server_hostname="localhost", suppress_ragged_eofs=False
            )
            tls.sendall(b"before")
            self.assertEqual(tls.recv(6), b"before")
            server.stop()
            # A close_notify reads as b""; a bare TCP close would raise
            # SSLEOFError because ragged EOFs are not suppressed.
            self.assertEqual(tls.recv(100), b"")
            tls.close()
        self.assertIn(
            "shutting down: sending close_notify to 1 open connection(s)", server.log
        )
        self.assertIn("end: closed locally with close_notify", server.connection_line())
        self.assertIn(server.process.returncode, STOPPED)  # type: ignore[union-attr]

    def test_sigterm_with_clients_that_never_read(self) -> None:
        """
        Clients that send and never read hold the server's write buffers
        full; SIGTERM still ends the server within close_timeout + 1 s:
        the stuck connections are aborted, and logged as such.
        """
        close_timeout = 1.0
        server = self.start_server(
            "--endpoint", LOOPBACK_ENDPOINT, "--close-timeout", str(close_timeout)
        )
        stuck = [self._stuck_client(server) for _ in range(3)]
        process = server.process
        assert process is not None
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(close_timeout + 1 + TIMEOUT)
        finally:
            elapsed = time.monotonic() - started
            for tls in stuck:
                tls.close()
        self.assertLess(elapsed, close_timeout + 1, server.log)
        self.assertIn(process.returncode, STOPPED)
        line = server.connection_line(3)
        self.assertIn(
            "end: close timed out (peer not reading), connection aborted",
            line,
        )

    def _stuck_client(self, server: EchoServer) -> ssl.SSLSocket:
        """A TLS client that writes until the server stops taking its data
        (its echo buffer is full and nobody reads it), then goes quiet."""
        context = ssl.create_default_context(cafile=server.cert_path)
        raw = socket.create_connection(("127.0.0.1", server.port), TIMEOUT)
        tls = context.wrap_socket(raw, server_hostname="localhost")
        tls.setblocking(False)
        chunk = os.urandom(65536)
        sent = 0
        while sent < 256 * 1024 * 1024:
            try:
                sent += tls.send(chunk)
            except (ssl.SSLWantWriteError, BlockingIOError):
                # Writable again within a while means the server still reads.
                _, writable, _ = select.select([], [tls], [], 1.0)
                if not writable:
                    return tls
        tls.close()
        raise AssertionError(f"the server took {sent} bytes without pausing")


class UsageErrorTests(SynchronousTestCase):
    """Mistakes stop twistd before it starts, with a message that says why."""

    def twistd(self, *args: str) -> subprocess.CompletedProcess[str]:
        directory = self.mktemp()
        os.makedirs(directory)
        return subprocess.run(
            [sys.executable, "-c", _TWISTD, "-n", "--pidfile=", "sslfile-echo", *args],
            cwd=directory,
            env=checkout_environment(),
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            stdin=subprocess.DEVNULL,
            check=False,
        )

    def test_bad_endpoint_option(self) -> None:
        result = self.twistd("--endpoint", "sslfile:tcp:0:minVersion=TLSv1.1")
        self.assertNotEqual(result.returncode, 0)
        self.assertIn(
            "minVersion: TLS 1.1 is not supported", result.stdout + result.stderr
        )

    def test_plaintext_endpoint_refused(self) -> None:
        result = self.twistd("--endpoint", "tcp:0")
        self.assertNotEqual(result.returncode, 0)
        self.assertIn(
            "is not TLS; wrap it: sslfile:tcp:0", result.stdout + result.stderr
        )

    def test_missing_certificate_file(self) -> None:
        result = self.twistd("--cert", "/nonexistent/cert.pem")
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("/nonexistent/cert.pem", result.stdout + result.stderr)

    def test_key_count(self) -> None:
        result = self.twistd("--cert", "a.pem", "--cert", "b.pem", "--key", "a.key")
        self.assertIn("1 --key for 2 --cert", result.stdout + result.stderr)


class InstalledPackageTests(SynchronousTestCase):
    """
    ``pip install .`` into a fresh virtualenv registers both plugins, and
    using them prints no plugin-cache noise.

    Slow (a virtualenv and an install, ~10-40 s depending on pip's cache)
    but never skipped: it is the only test of what users actually get.
    """

    def _copy_source(self, destination: Path) -> None:
        ignore = shutil.ignore_patterns(
            ".git",
            ".venv",
            "venv",
            "build",
            "dist",
            "*.egg-info",
            "_trial_temp*",
            "__pycache__",
            "_build",
            ".hypothesis",
            ".ruff_cache",
        )
        shutil.copytree(ROOT, destination, ignore=ignore)
        # A cache left by running the tests in the checkout must not be
        # shipped: Twisted would trust its stale entries.
        (destination / "twisted" / "plugins" / "dropin.cache").write_bytes(b"stale")

    def test_pip_install(self) -> None:
        work = Path(self.mktemp()).resolve()
        work.mkdir(parents=True)
        source = work / "src"
        self._copy_source(source)
        venv = work / "venv"
        run_dir = work / "run"
        run_dir.mkdir()

        def run(*args: str | os.PathLike[str], timeout: float = 180) -> str:
            result = subprocess.run(
                [str(a) for a in args],
                cwd=run_dir,
                env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
                capture_output=True,
                text=True,
                timeout=timeout,
                stdin=subprocess.DEVNULL,
                check=False,
            )
            if result.returncode != 0:
                self.fail(
                    f"{args} failed ({result.returncode})\n--- stdout ---\n"
                    f"{result.stdout}\n--- stderr ---\n{result.stderr}"
                )
            return result.stdout + result.stderr

        run(sys.executable, "-m", "venv", venv)
        bin_dir = venv / "bin"
        run(bin_dir / "pip", "install", "--quiet", source, timeout=600)
        plugins = next(venv.glob("lib/python3*/site-packages/twisted/plugins"))
        self.assertTrue((plugins / "sslfile_endpoints.py").exists())
        self.assertTrue((plugins / "sslfile_echo.py").exists())
        self.assertFalse((plugins / "dropin.cache").exists())
        # Twisted's own package file, untouched (we must never ship one).
        self.assertIn("pluginPackagePaths", (plugins / "__init__.py").read_text())

        # The first use writes the cache, silently; later uses only read it.
        # Not writing is what keeps a read-only install quiet: Twisted logs
        # "Unable to write to plugin cache" only when a write is attempted.
        cache = plugins / "dropin.cache"
        mtimes = []
        for _ in range(2):
            output = run(bin_dir / "twistd", "--help")
            self.assertIn("sslfile-echo", output)
            self.assertNotIn("plugin cache", output)
            self.assertNotIn("Traceback", output)
            mtimes.append(cache.stat().st_mtime_ns)
        self.assertEqual(mtimes[0], mtimes[1], "the second run rewrote dropin.cache")

        pki = CertificateFactory(work / "pki")
        leaf = pki.server("localhost")
        script = (
            "import sys, twisted_sslfile\n"
            "from twisted.internet import reactor\n"
            "from twisted.internet.endpoints import (\n"
            "    clientFromString, serverFromString)\n"
            "s = serverFromString(reactor, sys.argv[1])\n"
            "c = clientFromString(reactor, sys.argv[2])\n"
            "print(type(s).__name__, type(c).__name__, c.server_name)\n"
            "print(twisted_sslfile.__file__)\n"
        )
        output = run(
            bin_dir / "python",
            "-c",
            script,
            f"sslfile:tcp:0:certKey={leaf.chain_path}:privateKey={leaf.key_path}",
            f"sslfile:tcp:host=localhost:port=1:trustRoots={pki.ca_path}",
        )
        lines = output.splitlines()
        self.assertEqual(lines[0], "TLSServerEndpoint TLSClientEndpoint localhost")
        self.assertTrue(lines[1].startswith(str(venv)), lines[1])
        self.assertEqual(len(lines), 2, output)  # nothing else printed

        output = run(bin_dir / "sslfile-client", "--help")
        self.assertIn("HOST:PORT", output)


# ---------------------------------------------------------------------------
# Flow control and bounded shutdown, in-process (issue 10, items 2 and 3)
# ---------------------------------------------------------------------------


def _server_buffered(tls: TLSProtocol) -> int:
    """Bytes a server connection holds in user space: data decrypted but
    held for the paused application, application writes not yet encrypted,
    and the transport's own write buffer (SimSocket or Twisted's TCP)."""
    pending = sum(len(item) for item in tls._pending or () if isinstance(item, bytes))
    transport = tls.transport
    if isinstance(transport, SimSocket):
        queued = len(transport.outbound)
    else:  # twisted.internet.tcp.Server: FileDescriptor's two buffers
        queued = len(transport.dataBuffer) - transport.offset + transport._tempDataLen
    return pending + tls._buffered + queued


#: What one echo connection may hold, whatever its client does: a few
#: records' worth (one 64 KiB socket read decrypted and held, the
#: transport's 64 KiB high-water mark plus the write that crossed it).
ECHO_CONNECTION_BOUND = 320 * 1024


class CountingEcho(EchoProtocol):
    """The echo protocol, counting what it reads (the tests' own probe)."""

    bytes_in = 0

    def dataReceived(self, data: bytes) -> None:
        self.bytes_in += len(data)
        super().dataReceived(data)


class EchoFlowControlUnitTests(SynchronousTestCase):
    """The echo protocol over the SimNetwork model of TCP, on a Clock."""

    def setUp(self) -> None:
        self.pki = protocol_pki()
        self.clock = Clock()

    def connect(
        self, **network: Any
    ) -> tuple[TLSProtocol, TLSProtocol, EchoProtocol, SimNetwork]:
        factory = EchoFactory()
        factory.protocol = CountingEcho
        app = factory.buildProtocol(None)
        client = TLSProtocol(
            None,
            Recorder(),
            context=self.pki["client"],
            is_client=True,
            server_name="example.com",
            clock=self.clock,
        )
        server = TLSProtocol(
            None, app, context=self.pki["server"], is_client=False, clock=self.clock
        )
        sim = SimNetwork(self.clock, **network)
        sim.connect(client, server)
        sim.flush()
        self.assertIsNotNone(server.handshakeResult)
        self.factory = factory
        return client, server, app, sim

    def test_client_never_reads(self) -> None:
        """
        A client that sends 8 MB and reads nothing: the echo server stops
        reading once its write buffer is full, so what it holds stays under
        a few records' worth; when the client reads again, every byte comes
        back in order.
        """
        client, server, app, sim = self.connect(window=64 * 1024, read_size=65536)
        sim.client.reading_paused = True
        payload = os.urandom(8 * 1024 * 1024)
        client.write(payload)
        most = 0
        for _ in range(2000):
            moved = sim.tick()
            most = max(most, _server_buffered(server))
            if not moved:
                break
        self.assertFalse(sim.tick(), "the network never went quiet")
        self.assertLess(most, ECHO_CONNECTION_BOUND)
        self.assertLess(app.bytes_in, 1024 * 1024)  # it stopped taking more
        self.assertTrue(sim.server.reading_paused)
        sim.client.reading_paused = False
        for _ in range(20000):
            if not sim.tick():
                break
            most = max(most, _server_buffered(server))
        self.assertEqual(bytes(client.wrappedProtocol.data), payload)
        self.assertLess(most, ECHO_CONNECTION_BOUND)
        client.loseConnection()
        sim.flush()
        self.assertTrue(app.done.called)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_shutdown_with_client_that_never_reads(self) -> None:
        """
        Server shutdown (close_all) with a client that reads nothing ends
        within the close timeout: the stuck connection is aborted.
        """
        client, _server, _app, sim = self.connect(window=64 * 1024, read_size=65536)
        sim.client.reading_paused = True
        client.write(os.urandom(2 * 1024 * 1024))
        sim.flush()
        done = self.factory.close_all()
        sim.advance(DEFAULT_CLOSE_TIMEOUT - 0.1)
        self.assertFalse(done.called)
        sim.advance(0.1)
        self.assertTrue(done.called)
        self.assertTrue(sim.server.aborted)
        self.assertEqual(self.clock.getDelayedCalls(), [])


class EchoFlowControlTCPTests(TestCase):
    """The echo protocol on real loopback TCP, with the global reactor."""

    timeout = 60

    @defer.inlineCallbacks
    def test_client_never_reads_over_tcp(self) -> Any:
        """
        A client pushes up to 64 MiB and reads nothing: the server's buffers
        stay bounded (it stops reading the socket), the push stalls long
        before 64 MiB; once the client reads, all it sent comes back.
        """
        pki = protocol_pki()
        total = 64 * 1024 * 1024
        samples: list[int] = []
        servers: list[TLSProtocol] = []

        class Sampled(CountingEcho):
            def connectionMade(self) -> None:
                super().connectionMade()
                servers.append(self.transport)

            def dataReceived(self, data: bytes) -> None:
                super().dataReceived(data)
                samples.append(_server_buffered(self.transport))

        factory = EchoFactory()
        factory.protocol = Sampled
        port = reactor.listenTCP(
            0, TLSFactory(factory, pki["server"], False), interface="127.0.0.1"
        )
        self.addCleanup(port.stopListening)

        chunk = os.urandom(65536)
        state = {"sent": 0}
        clients: list[TLSProtocol] = []
        received = bytearray()
        handshake: defer.Deferred[None] = defer.Deferred()
        lost: defer.Deferred[list[Failure]] = defer.Deferred()

        @implementer(IPushProducer)
        class Pusher(Protocol):
            """Writes ``chunk`` while its transport accepts more; never reads
            until told to."""

            paused = False

            def connectionMade(self) -> None:
                clients.append(self.transport)
                self.transport.pauseProducing()  # reads nothing (after the handshake)
                self.transport.registerProducer(self, True)
                self.transport.whenHandshakeDone().addCallback(
                    lambda _: handshake.callback(None)
                )
                self.produce()

            def produce(self) -> None:
                while not self.paused and state["sent"] < total:
                    self.transport.write(chunk)
                    state["sent"] += len(chunk)

            def pauseProducing(self) -> None:
                self.paused = True

            def resumeProducing(self) -> None:
                self.paused = False
                reactor.callLater(0, self.produce)

            def stopProducing(self) -> None:
                self.paused = True

            def dataReceived(self, data: bytes) -> None:
                received.extend(data)
                if len(received) == state["sent"]:
                    self.transport.loseConnection()

            def connectionLost(self, reason: Failure = connectionDone) -> None:
                lost.callback([reason])

        client_factory = TLSFactory(
            Factory.forProtocol(Pusher), pki["client"], True, "example.com"
        )
        reactor.connectTCP("127.0.0.1", port.getHost().port, client_factory)

        def cleanup() -> defer.Deferred[Any]:
            # Whatever failed, no connection outlives the test.
            for tls in clients + servers:
                tls.abortConnection()
            ends = [lost] + [tls.wrappedProtocol.done for tls in servers]
            return defer.DeferredList(ends, consumeErrors=True)

        self.addCleanup(cleanup)
        yield handshake
        # Wait until nothing moves any more: the client's pushes are paused
        # and the server has stopped reading (checked over many reactor
        # turns, so a slow turn is not mistaken for a stall).
        still, last = 0, None
        while still < 20:
            yield deferLater(reactor, 0.02, lambda: None)
            now = (state["sent"], servers[0].wrappedProtocol.bytes_in)
            still = still + 1 if now == last else 0
            last = now
        sent_at_stall = state["sent"]
        self.assertLess(sent_at_stall, total // 2, "the server never stopped reading")
        self.assertLess(max(samples), ECHO_CONNECTION_BOUND)
        # Now read: the push completes, and everything comes back.
        clients[0].resumeProducing()
        [reason] = yield lost
        self.assertTrue(reason.check(ConnectionDone), reason)
        self.assertEqual(state["sent"], total)
        self.assertEqual(len(received), total)
        self.assertTrue(received == chunk * (total // len(chunk)))
        self.assertLess(max(samples), ECHO_CONNECTION_BOUND)
