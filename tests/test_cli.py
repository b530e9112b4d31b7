"""``python -m twisted_sslfile``: the command-line client, run as a user would.

The client runs as a subprocess (stdin, stdout, stderr and exit status are
its interface) against a ``twistd sslfile-echo`` process started from the
checkout, so every test crosses two real process boundaries.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import select
import signal
import socket
import subprocess
import sys
import termios
import time
from collections.abc import Sequence
from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from tests.certs import CertificateFactory, IssuedCertificate
from tests.peers import (
    OpenSSLServer,
    _OutputCollector,
    echo,
    python_ssl_server,
    python_ssl_server_context,
)
from tests.test_echo import (
    LOOPBACK_ENDPOINT,
    TIMEOUT,
    EchoServer,
    EchoServerTestCase,
    checkout_environment,
)
from twisted_sslfile.__main__ import build_description, parse_target
from twisted_sslfile.x509 import write_pem


class TargetTests(SynchronousTestCase):
    """How the positional argument is read."""

    def test_host_port(self) -> None:
        self.assertEqual(parse_target("localhost:8443"), ("localhost", 8443))
        self.assertEqual(parse_target("[::1]:443"), ("::1", 443))
        self.assertEqual(parse_target("example.com"), ("example.com", 443))

    def test_descriptions(self) -> None:
        self.assertIsNone(parse_target("unix:path=/tmp/x.sock"))
        self.assertIsNone(parse_target("tcp:host=example.com:port=443"))

    def test_bad_port(self) -> None:
        self.assertRaises(ValueError, parse_target, "host:70000")

    def test_build_description(self) -> None:
        self.assertEqual(
            build_description("[::1]:8443", 5),
            "sslfile:tcp:host=\\:\\:1:port=8443:timeout=5",
        )
        self.assertEqual(
            build_description("unix:path=/x.sock", 5), "sslfile:unix:path=/x.sock"
        )
        self.assertEqual(
            build_description("sslfile:tcp:h:1:alpn=x", 5), "sslfile:tcp:h:1:alpn=x"
        )


class ClientTests(EchoServerTestCase):
    """The client against the echo server."""

    def setUp(self) -> None:
        self.server = self.start_server(
            "--endpoint", LOOPBACK_ENDPOINT, "--alpn", "h2,echo", "--npn", "echo"
        )
        self.target = f"localhost:{self.server.port}"

    def client(
        self, *args: str, stdin: bytes = b"hello\n"
    ) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            [sys.executable, "-m", "twisted_sslfile", *args],
            cwd=self.tempdir(),
            env=checkout_environment(),
            input=stdin,
            capture_output=True,
            timeout=TIMEOUT,
            check=False,
        )

    def assertSucceeded(self, result: subprocess.CompletedProcess[bytes]) -> str:
        report = result.stderr.decode()
        self.assertEqual(result.returncode, 0, report)
        self.assertIn("Closed cleanly (close_notify both ways)", report)
        return report

    def test_round_trip_tls13_alpn(self) -> None:
        """
        stdin reaches the server, the echo reaches stdout (and only it), the
        report is on stderr, and end of input ends the session cleanly.
        """
        result = self.client(
            self.target, "--cafile", self.server.cert_path, "--alpn", "echo"
        )
        report = self.assertSucceeded(result)
        self.assertEqual(result.stdout, b"hello\n")
        for line in (
            "Protocol version: TLSv1.3",
            "ALPN protocol: echo",
            "NPN protocol: (none)",
            "Server name: localhost (sent as SNI)",
            "Session resumed: no",
            "Certificate chain (1 as sent by the server):",
            "  0 subject: CN=localhost",
            "Verification: OK (chain and name localhost verified)",
        ):
            self.assertIn(line, report)
        line = self.server.connection_line()
        self.assertIn(" sni=localhost TLSv1.3 ", line)
        self.assertIn(" alpn=echo ", line)
        self.assertIn("end: peer closed with close_notify", line)

    def test_tls12_npn(self) -> None:
        result = self.client(
            self.target,
            "--cafile",
            self.server.cert_path,
            "--npn",
            "echo",
            "--max-version",
            "TLSv1.2",
        )
        report = self.assertSucceeded(result)
        self.assertEqual(result.stdout, b"hello\n")
        self.assertIn("Protocol version: TLSv1.2", report)
        self.assertIn("NPN protocol: echo", report)
        self.assertIn(" npn=echo ", self.server.connection_line())

    def test_ip_address_target(self) -> None:
        """An IP address is verified against the certificate's IP names."""
        result = self.client(
            f"127.0.0.1:{self.server.port}", "--cafile", self.server.cert_path
        )
        report = self.assertSucceeded(result)
        self.assertIn("Server name: 127.0.0.1 (an IP address", report)
        self.assertIn(" sni=- ", self.server.connection_line())

    def test_verification_failure(self) -> None:
        """Without the certificate in the trust roots: exit 1, nothing relayed."""
        result = self.client(self.target)
        report = result.stderr.decode()
        self.assertEqual(result.returncode, 1, report)
        self.assertEqual(result.stdout, b"")
        self.assertIn("Verification: FAILED: ", report)
        self.assertIn(
            "Handshake failed: certificate rejected (alert unknown_ca", report
        )
        self.assertIn("handshake failed", self.server.connection_line())

    def test_insecure(self) -> None:
        """--insecure connects and still says what verification would decide."""
        result = self.client(self.target, "--insecure")
        report = self.assertSucceeded(result)
        self.assertEqual(result.stdout, b"hello\n")
        self.assertIn(
            "Verification: SKIPPED (--insecure); a verifying client would refuse: ",
            report,
        )

    def test_large_input(self) -> None:
        """Half a megabyte through the relay, byte for byte."""
        data = os.urandom(512 * 1024)
        result = self.client(
            self.target, "--cafile", self.server.cert_path, "-q", stdin=data
        )
        self.assertEqual(result.returncode, 0, result.stderr.decode())
        self.assertEqual(result.stdout, data)
        self.assertEqual(result.stderr, b"")  # --quiet: failures only

    def test_no_stdin(self) -> None:
        result = self.client(
            self.target, "--cafile", self.server.cert_path, "--no-stdin", stdin=b"x"
        )
        self.assertSucceeded(result)
        self.assertEqual(result.stdout, b"")

    def test_session_saved(self) -> None:
        """--sess-out writes a session that Session.from_bytes reads back."""
        from twisted_sslfile.engine.sessions import Session

        path = os.path.join(self.tempdir(), "session")
        result = self.client(
            self.target, "--cafile", self.server.cert_path, "--sess-out", path
        )
        report = self.assertSucceeded(result)
        self.assertIn(f"Session saved in {path}", report)
        self.assertEqual(os.stat(path).st_mode & 0o777, 0o600)
        with open(path, "rb") as f:
            session = Session.from_bytes(f.read())
        self.assertEqual(session.server_name, "localhost")

    def test_session_replaces_an_open_file_privately(self) -> None:
        """
        --sess-out over an existing 0644 file leaves a 0600 one (the old mode
        used to survive), and a symlink at the name is replaced, not
        followed.
        """
        directory = self.tempdir()
        path = os.path.join(directory, "session")
        victim = os.path.join(directory, "victim")
        with open(victim, "wb") as f:
            f.write(b"untouched")
        os.chmod(victim, 0o644)
        os.symlink(victim, path)
        result = self.client(
            self.target, "--cafile", self.server.cert_path, "--sess-out", path
        )
        self.assertSucceeded(result)
        self.assertFalse(os.path.islink(path))
        self.assertEqual(os.stat(path).st_mode & 0o777, 0o600)
        with open(victim, "rb") as f:
            self.assertEqual(f.read(), b"untouched")
        os.chmod(path, 0o644)
        second = self.client(
            self.target, "--cafile", self.server.cert_path, "--sess-out", path
        )
        self.assertSucceeded(second)
        self.assertEqual(os.stat(path).st_mode & 0o777, 0o600)
        self.assertEqual(sorted(os.listdir(directory)), ["session", "victim"])

    def test_session_resumed(self) -> None:
        """--sess-in offers the saved session; the server resumes it."""
        path = os.path.join(self.tempdir(), "session")
        first = self.client(
            self.target, "--cafile", self.server.cert_path, "--sess-out", path
        )
        self.assertSucceeded(first)
        second = self.client(
            self.target, "--cafile", self.server.cert_path, "--sess-in", path
        )
        report = self.assertSucceeded(second)
        self.assertIn("Session resumed: yes", report)
        self.assertIn(
            "Verification: OK (resumed a session whose chain and name localhost "
            "were verified under these trust roots)",
            report,
        )
        self.assertIn(" resumed=yes ", self.server.connection_line(2))

    def test_session_file_others_may_write_is_refused(self) -> None:
        """
        Whoever may write a --sess-in file chooses its PSK, and a verified
        session resumes without the server's certificate: a group- or
        world-writable file is refused before connecting (exit 2, the file,
        its mode and the fix named); a world-readable one is used with a
        warning.
        """
        path = os.path.join(self.tempdir(), "session")
        first = self.client(
            self.target, "--cafile", self.server.cert_path, "--sess-out", path
        )
        self.assertSucceeded(first)
        for mode, who in ((0o666, "every user"), (0o620, "its group")):
            os.chmod(path, mode)
            refused = self.client(
                self.target, "--cafile", self.server.cert_path, "--sess-in", path
            )
            report = refused.stderr.decode()
            self.assertEqual(refused.returncode, 2, report)
            self.assertIn(f"--sess-in {path}: session file {path} may be", report)
            self.assertIn(f"written by {who} (mode {mode:04o})", report)
            self.assertIn(f"chmod 600 {path}", report)
        os.chmod(path, 0o644)
        warned = self.client(
            self.target, "--cafile", self.server.cert_path, "--sess-in", path
        )
        report = self.assertSucceeded(warned)
        self.assertIn("Session resumed: yes", report)
        self.assertIn(f"session file {path} may be read by every user", report)
        # The refused runs never connected: the server's second connection
        # is this one.
        self.assertIn(" resumed=yes ", self.server.connection_line(2))

    def test_insecure_session_not_offered_when_verifying(self) -> None:
        """
        A session saved by --insecure is not offered by a verifying client
        (issue 9 item 1): with an unrelated root the full handshake fails
        verification; with the right root it verifies, and says why the
        saved session was not used.  Never "Verification: OK" for a chain
        nobody verified.
        """
        path = os.path.join(self.tempdir(), "session")
        first = self.client(self.target, "--insecure", "--sess-out", path)
        report = self.assertSucceeded(first)
        self.assertIn(
            f"Session saved in {path} (not verified: only an --insecure client "
            "will offer it)",
            report,
        )
        unrelated = CertificateFactory(self.tempdir(), name="Unrelated").ca_path
        assert unrelated is not None
        second = self.client(self.target, "--cafile", unrelated, "--sess-in", path)
        report = second.stderr.decode()
        self.assertEqual(second.returncode, 1, report)
        self.assertEqual(second.stdout, b"")
        self.assertIn("Verification: FAILED: ", report)
        self.assertNotIn("Verification: OK", report)
        self.assertNotIn("Session resumed: yes", report)
        self.assertIn("handshake failed", self.server.connection_line(2))
        third = self.client(
            self.target, "--cafile", self.server.cert_path, "--sess-in", path
        )
        report = self.assertSucceeded(third)
        self.assertIn(
            "Session resumed: no (the saved session was not verified for "
            "localhost under these trust roots, so it was not offered)",
            report,
        )
        self.assertIn("Verification: OK (chain and name localhost verified)", report)
        self.assertIn(" resumed=no ", self.server.connection_line(3))

    def test_connect_failure(self) -> None:
        self.server.stop()
        result = self.client(self.target, "--cafile", self.server.cert_path)
        self.assertEqual(result.returncode, 1)
        self.assertIn(b"connect failed: ", result.stderr)

    def test_usage_errors(self) -> None:
        """Options that cannot work: exit 2, the option and file named."""
        result = self.client(self.target, "--min-version", "SSLv3")
        self.assertEqual(result.returncode, 2)
        self.assertIn(b"minVersion: SSL 3.0 is not supported", result.stderr)
        result = self.client(self.target, "--cafile", "/no/such/ca.pem")
        self.assertEqual(result.returncode, 2)
        self.assertIn(b"trustRoots: ", result.stderr)
        self.assertIn(b"/no/such/ca.pem", result.stderr)
        # tcp: takes whole seconds; 2.5 used to fail inside Twisted's parser.
        result = self.client(self.target, "--connect-timeout", "2.5")
        self.assertEqual(result.returncode, 2)
        self.assertIn(b"--connect-timeout: '2.5' is not a whole number", result.stderr)
        result = self.client(
            self.target, "--cafile", self.server.cert_path, "--connect-timeout", "3"
        )
        self.assertEqual(result.returncode, 0, result.stderr.decode())


class OpenSSLServerTests(SynchronousTestCase):
    """The client against ``openssl s_server``, for what the echo server
    cannot serve: broken chains, internationalised names."""

    def setUp(self) -> None:
        self.directory = os.path.abspath(self.mktemp())
        self.pki = CertificateFactory(self.directory)

    def serve(self, issued: IssuedCertificate, *extra: str) -> OpenSSLServer:
        assert issued.cert_path and issued.key_path
        chain = None
        if issued.intermediates:
            chain = write_pem(
                os.path.join(self.directory, "intermediates.pem"),
                issued.intermediates,
            )
        server = OpenSSLServer(
            issued.cert_path, issued.key_path, cert_chain=chain, extra=extra
        )
        self.addCleanup(server.stop)
        return server.start()

    def client(
        self, server: OpenSSLServer, *args: str
    ) -> subprocess.CompletedProcess[bytes]:
        assert self.pki.ca_path
        return subprocess.run(
            [
                sys.executable,
                "-m",
                "twisted_sslfile",
                f"127.0.0.1:{server.port}",
                "--cafile",
                self.pki.ca_path,
                "--no-stdin",
                *args,
            ],
            cwd=self.directory,
            env=checkout_environment(),
            capture_output=True,
            timeout=TIMEOUT,
            check=False,
        )

    def test_intermediate_not_a_ca(self) -> None:
        """The report says why the chain was refused, not "untrusted root"."""
        bad = self.pki.make_intermediate("Not A CA", is_ca=False)
        server = self.serve(self.pki.server("localhost", issuer=bad))
        result = self.client(server, "--servername", "localhost")
        report = result.stderr.decode()
        self.assertEqual(result.returncode, 1, report)
        self.assertIn("Verification: FAILED: certificate CN=Not A CA", report)
        self.assertIn("is not a CA (its basicConstraints say cA=FALSE)", report)
        self.assertIn("alert unknown_ca", report)
        self.assertNotIn("untrusted root", report)

    def test_internationalised_server_name(self) -> None:
        """
        --servername bücher.example goes out as xn--bcher-kva.example (which
        s_server requires, fatally) and verifies; the report shows both.
        """
        wanted = self.pki.server("xn--bcher-kva.example", direct=True)
        assert wanted.cert_path and wanted.key_path
        server = self.serve(
            self.pki.server("other.example", direct=True),
            "-cert2",
            wanted.cert_path,
            "-key2",
            wanted.key_path,
            "-servername",
            "xn--bcher-kva.example",
            "-servername_fatal",
        )
        result = self.client(server, "--servername", "bücher.example")
        report = result.stderr.decode()
        self.assertEqual(result.returncode, 0, report)
        self.assertIn(
            "Server name: xn--bcher-kva.example (bücher.example; sent as SNI)",
            report,
        )
        self.assertIn(
            "Verification: OK (chain and name xn--bcher-kva.example verified)",
            report,
        )
        server.expect_output('Hostname in TLS extension: "xn--bcher-kva.example"')

    def test_invalid_server_name_is_a_usage_error(self) -> None:
        server = self.serve(self.pki.server("localhost"))
        result = self.client(server, "--servername", "a_b.example")
        self.assertEqual(result.returncode, 2, result.stderr.decode())
        self.assertIn(b"hostname: server name 'a_b.example'", result.stderr)


#: What the interpreter prints when a daemon thread holds a stdio lock at
#: exit (and then aborts): the bug these tests exist for.
FATAL = b"Fatal Python error"
#: The report's last line before the relay starts: the handshake is done.
REPORTED = b"\n---\n"
#: Seconds without progress after which a flow is taken to be paused.
STALL = 2.0


class _PtyMaster:
    """The master side of a pseudo-terminal as a pipe for _OutputCollector:
    ``read1`` returns b"" at the end instead of raising EIO (what Linux
    does once the slave side is closed everywhere)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def read1(self, size: int) -> bytes:
        try:
            return os.read(self.fd, size)
        except OSError as e:
            if e.errno == errno.EIO:
                return b""
            raise


def _default_signals() -> None:
    """In the child: SIGINT and SIGTERM as an interactive shell leaves them.

    A test runner started in the background by a non-interactive shell
    (``trial tests &``, as CI scripts do) has SIGINT ignored, and children
    inherit that; the client keeps an ignored signal ignored (``nohup``), so
    the Ctrl-C tests would wait for an exit that cannot come.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


class RunningClient:
    """``python -m twisted_sslfile ARGS`` as a running process.

    stdin and stdout are whatever the test hands over (a pipe, a file, a
    pseudo-terminal, /dev/null); ``shell`` adds sh redirections such as
    ``<&-`` (a closed descriptor, which Popen cannot give).  stderr (the
    report) and a piped stdout are collected in threads; every wait is
    bounded and the process is killed on teardown.
    """

    def __init__(
        self,
        test: SynchronousTestCase,
        args: Sequence[str],
        *,
        cwd: str,
        stdin: Any = subprocess.PIPE,
        stdout: Any = subprocess.PIPE,
        shell: str = "",
        launcher: Sequence[str] = (),
        start_new_session: bool = False,
        collect_stdout: bool = True,
    ) -> None:
        command = [*launcher, sys.executable, "-m", "twisted_sslfile", *args]
        if shell:
            command = ["sh", "-c", f'exec "$@" {shell}', "sh", *command]
        self.process = subprocess.Popen(
            command,
            cwd=cwd,
            env=checkout_environment(),
            stdin=stdin,
            stdout=stdout,
            stderr=subprocess.PIPE,
            start_new_session=start_new_session,
            preexec_fn=_default_signals,
        )
        test.addCleanup(self.kill)
        self.stderr = _OutputCollector(self.process.stderr)
        self.stdout: _OutputCollector | None = None
        if stdout == subprocess.PIPE and collect_stdout:
            self.stdout = _OutputCollector(self.process.stdout)

    def describe(self) -> str:
        out = b"(not collected)" if self.stdout is None else self.stdout.data
        return (
            f"exit: {self.process.poll()}\n--- stdout ---\n{out[-2000:]!r}\n"
            f"--- stderr ---\n{self.stderr.text[-4000:]}"
        )

    def expect_report(self, pattern: bytes) -> None:
        if not self.stderr.wait_for(pattern, TIMEOUT):
            raise AssertionError(f"{pattern!r} not reported\n{self.describe()}")

    def expect_output(self, pattern: bytes, output: Any = None) -> None:
        collector = output or self.stdout
        assert collector is not None
        if not collector.wait_for(pattern, TIMEOUT):
            raise AssertionError(f"{pattern!r} not on stdout\n{self.describe()}")

    def send(self, data: bytes) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(data)
        self.process.stdin.flush()

    def wait(self) -> int:
        """The exit status (negative: the signal), the report checked for
        the interpreter's abort."""
        try:
            status = self.process.wait(TIMEOUT)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(
                f"the client did not exit\n{self.describe()}"
            ) from None
        self.stderr.join(TIMEOUT)
        if self.stdout is not None:
            self.stdout.join(TIMEOUT)
        if FATAL in self.stderr.data or status == -signal.SIGABRT:
            raise AssertionError(f"the client aborted\n{self.describe()}")
        return status

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)
        for pipe in (self.process.stdin, self.process.stdout, self.process.stderr):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()


def nonblocking(fd: int) -> bool:
    return bool(fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_NONBLOCK)


def wait_in_reactor(pid: int) -> None:
    """Wait (bounded) until process ``pid`` sleeps in epoll_wait: its
    reactor runs, so the client's signal handlers are in place (Linux)."""
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        with open(f"/proc/{pid}/wchan") as f:
            if "epoll" in f.read():
                return
        time.sleep(0.01)  # polling a condition, with a deadline
    raise AssertionError(f"process {pid} never waited in its reactor")


class StdioTests(EchoServerTestCase):
    """Every way the relay can end, with stdin and stdout as users wire
    them: the client never aborts, and its exit status says how it ended.

    0: a clean close (close_notify both ways); 1: a failure, including the
    loss of standard output; SIGINT: the process ends by SIGINT (130 in a
    shell), the connection dropped without close_notify.
    """

    def setUp(self) -> None:
        self.server = self.start_server("--endpoint", LOOPBACK_ENDPOINT)
        self.target = f"localhost:{self.server.port}"
        self.verified = (self.target, "--cafile", self.server.cert_path)

    def client(self, *args: str, **kw: Any) -> RunningClient:
        return RunningClient(self, args or self.verified, cwd=self.tempdir(), **kw)

    def assertNotClosedCleanly(self, line: str) -> None:
        """The server's log line: the end was not a close_notify (an abort
        reads as a reset or a truncation)."""
        self.assertIn(" end: ", line)
        self.assertNotIn("close_notify", line)

    def assertClean(self, client: RunningClient, status: int) -> None:
        self.assertEqual(status, 0, client.describe())
        self.assertIn("Closed cleanly (close_notify both ways)", client.stderr.text)

    # -- the connection ends while stdin is still open ----------------------------

    def test_server_closes_first(self) -> None:
        """
        The server closes (close_notify) while stdin, a pipe, stays open:
        the client answers with its close_notify and exits 0 at once,
        without waiting for input that may never come.
        """
        client = self.client()
        client.send(b"hello\n")
        client.expect_output(b"hello\n")
        self.server.stop()
        self.assertClean(client, client.wait())
        self.assertEqual(client.stdout.data, b"hello\n")  # type: ignore[union-attr]

    def test_server_answers_and_closes(self) -> None:
        """
        The issue's ``(printf 'GET / HTTP/1.0\\r\\n\\r\\n'; sleep 3) |
        sslfile-client``: openssl s_server -www answers and closes first,
        the request's pipe still open; the whole reply, then exit 0.
        """
        key = os.path.join(self.server.directory, "sslfile-echo-key.pem")
        www = OpenSSLServer(self.server.cert_path, key, tls_version=None, www=True)
        self.addCleanup(www.stop)
        www.start()
        client = self.client(f"localhost:{www.port}", "--cafile", self.server.cert_path)
        client.send(b"GET / HTTP/1.0\r\n\r\n")
        self.assertClean(client, client.wait())
        reply = client.stdout.data  # type: ignore[union-attr]
        self.assertTrue(reply.startswith(b"HTTP/1.0 200 ok\r\n"), reply[:100])
        self.assertTrue(reply.rstrip().endswith(b"</HTML>"), reply[-100:])

    def test_verification_failure_input_pending(self) -> None:
        """Refused certificate while input waits in the open pipe: exit 1."""
        client = self.client(self.target)
        client.send(b"never sent\n")
        self.assertEqual(client.wait(), 1, client.describe())
        self.assertIn("Verification: FAILED: ", client.stderr.text)
        self.assertEqual(client.stdout.data, b"")  # type: ignore[union-attr]

    def test_sigint(self) -> None:
        """
        Ctrl-C while connected: the connection is dropped without
        close_notify (the server must not take a cut-off upload for a
        complete one), and the client ends by SIGINT, as Python does.
        """
        client = self.client()
        client.send(b"hello\n")
        client.expect_output(b"hello\n")
        client.process.send_signal(signal.SIGINT)
        self.assertEqual(client.wait(), -signal.SIGINT, client.describe())
        self.assertIn("interrupted (SIGINT)", client.stderr.text)
        self.assertNotClosedCleanly(self.server.connection_line())

    def test_sigterm(self) -> None:
        """SIGTERM is handled as Ctrl-C is: no close_notify, ended by SIGTERM."""
        client = self.client()
        client.send(b"hello\n")
        client.expect_output(b"hello\n")
        client.process.send_signal(signal.SIGTERM)
        self.assertEqual(client.wait(), -signal.SIGTERM, client.describe())
        self.assertIn("interrupted (SIGTERM)", client.stderr.text)
        self.assertNotClosedCleanly(self.server.connection_line())

    def test_sigint_while_connecting(self) -> None:
        """
        Ctrl-C before TCP connected (a listener whose queue is full drops
        the SYN): the attempt is cancelled and the client ends by SIGINT.
        """
        listener = socket.socket()
        self.addCleanup(listener.close)
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        filler = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        self.addCleanup(filler.close)
        client = self.client(f"127.0.0.1:{port}", "--insecure")
        wait_in_reactor(client.process.pid)
        client.process.send_signal(signal.SIGINT)
        self.assertEqual(client.wait(), -signal.SIGINT, client.describe())
        self.assertIn("Interrupted (SIGINT) before the connection", client.stderr.text)

    # -- stdin ---------------------------------------------------------------------

    def test_stdin_dev_null(self) -> None:
        """stdin at end of input from the start: close_notify, then exit 0."""
        client = self.client(stdin=subprocess.DEVNULL)
        self.assertClean(client, client.wait())
        self.assertEqual(client.stdout.data, b"")  # type: ignore[union-attr]

    def test_stdin_closed(self) -> None:
        """
        A closed descriptor 0 (``<&-``) reads as end of input; the socket
        the client opens must not become "stdin" in its place.
        """
        client = self.client(shell="<&-")
        self.assertClean(client, client.wait())
        self.assertIn(
            "end: peer closed with close_notify", self.server.connection_line()
        )

    def test_stdout_closed(self) -> None:
        """A closed descriptor 1 (``>&-``): the server's data is discarded."""
        client = self.client(stdin=subprocess.PIPE, stdout=None, shell=">&-")
        client.send(b"hello\n")
        client.process.stdin.close()  # type: ignore[union-attr]
        self.assertClean(client, client.wait())

    def test_regular_files(self) -> None:
        """
        ``< request > reply`` with regular files, which epoll refuses:
        half a megabyte through, byte for byte.
        """
        directory = self.tempdir()
        data = os.urandom(512 * 1024)
        request = os.path.join(directory, "request")
        with open(request, "wb") as f:
            f.write(data)
        reply = os.path.join(directory, "reply")
        with open(request, "rb") as stdin, open(reply, "wb") as stdout:
            client = self.client(*self.verified, "-q", stdin=stdin, stdout=stdout)
            status = client.wait()
        self.assertEqual(status, 0, client.describe())
        with open(reply, "rb") as f:
            self.assertEqual(f.read(), data)

    def test_pipe_left_blocking(self) -> None:
        """
        The relay reads stdin without blocking, but the pipe's open file
        description is shared with the shell that started the client: it is
        handed back in blocking mode.
        """
        read_end, write_end = os.pipe()
        self.addCleanup(os.close, read_end)
        with os.fdopen(write_end, "wb") as feed:
            client = self.client(stdin=read_end)
            feed.write(b"hello\n")
            feed.flush()
            client.expect_output(b"hello\n")
            self.server.stop()
            self.assertClean(client, client.wait())
        self.assertFalse(nonblocking(read_end))

    # -- stdout --------------------------------------------------------------------

    def test_stdout_reader_gone(self) -> None:
        """
        ``| head -c1``: the reader of stdout goes away (EPIPE). The client
        drops the connection (there is nobody to give the data to) and
        exits 1, saying why; no traceback, no abort.
        """
        client = self.client(collect_stdout=False)
        client.send(b"hello\n")
        stdout = client.process.stdout
        assert stdout is not None
        readable, _, _ = select.select([stdout], [], [], TIMEOUT)
        self.assertTrue(readable, client.describe())
        self.assertEqual(os.read(stdout.fileno(), 1), b"h")
        stdout.close()
        with contextlib.suppress(BrokenPipeError):
            client.send(b"more\n" * 1000)
        self.assertEqual(client.wait(), 1, client.describe())
        self.assertIn("standard output closed", client.stderr.text)
        self.assertNotIn("Traceback", client.stderr.text)

    def test_flow_control(self) -> None:
        """
        stdout not read: the client stops reading the server, the server
        (Python's ssl, blocking sends) stops reading the client, and the
        client stops reading stdin. Nothing buffers without bound; once
        stdout is read again, every byte comes through.
        """
        key = os.path.join(self.server.directory, "sslfile-echo-key.pem")
        context = python_ssl_server_context(self.server.cert_path, key)
        peer = python_ssl_server(context, echo)
        client = self.client(
            f"localhost:{peer.port}",
            "--cafile",
            self.server.cert_path,
            "-q",
            collect_stdout=False,
        )
        stdin = client.process.stdin
        assert stdin is not None
        os.set_blocking(stdin.fileno(), False)
        data = memoryview(os.urandom(48 * 1024 * 1024))
        sent = 0
        # Feed stdin until it stays full for a while: the client stopped
        # reading it (without flow control it would take all 48 MiB).
        while sent < len(data):
            _, writable, _ = select.select([], [stdin], [], STALL)
            if not writable:
                break
            with contextlib.suppress(BlockingIOError):
                sent += os.write(stdin.fileno(), data[sent : sent + 65536])
        self.assertLess(sent, len(data) // 2, "stdin was read without pause")
        stdout = _OutputCollector(client.process.stdout)
        os.set_blocking(stdin.fileno(), True)
        stdin.close()
        self.assertEqual(client.wait(), 0, client.describe())
        expected = bytes(data[:sent])
        for name, got in (
            ("client's stdout", stdout.data),
            ("server", peer.result().received),
        ):
            # Not assertEqual: its message would hold megabytes.
            self.assertTrue(got == expected, f"{name}: {len(got)} of {sent} bytes")

    def test_stderr_reader_gone(self) -> None:
        """
        stderr a pipe nobody reads any more: the report is lost, the relay
        still works and the exit status is still that of the connection.
        """
        read_end, write_end = os.pipe()
        os.close(read_end)
        try:
            result = subprocess.run(
                [sys.executable, "-m", "twisted_sslfile", *self.verified],
                cwd=self.tempdir(),
                env=checkout_environment(),
                input=b"hello\n",
                stdout=subprocess.PIPE,
                stderr=write_end,
                timeout=TIMEOUT,
                check=False,
            )
        finally:
            os.close(write_end)
        self.assertEqual((result.returncode, result.stdout), (0, b"hello\n"))

    # -- a terminal ----------------------------------------------------------------

    def pty(self) -> tuple[int, int, _OutputCollector]:
        """A pseudo-terminal without local echo: (master, slave, output)."""
        master, slave = os.openpty()
        self.addCleanup(os.close, master)
        self.addCleanup(os.close, slave)
        attrs = termios.tcgetattr(slave)
        attrs[3] &= ~termios.ECHO  # lflag: only the server's echo comes back
        termios.tcsetattr(slave, termios.TCSANOW, attrs)
        return master, slave, _OutputCollector(_PtyMaster(master))

    def test_tty(self) -> None:
        """
        stdin and stdout a terminal: a typed line goes out and comes back,
        Ctrl-D ends the input (close_notify), exit 0, and the terminal is
        left in blocking mode for the shell.
        """
        master, slave, output = self.pty()
        client = self.client(stdin=slave, stdout=slave)
        client.expect_report(REPORTED)
        os.write(master, b"hello\n")
        client.expect_output(b"hello\r\n", output)
        os.write(master, b"\x04")  # VEOF at the start of a line
        self.assertClean(client, client.wait())
        self.assertFalse(nonblocking(slave))

    def test_tty_ctrl_c(self) -> None:
        """
        Ctrl-C typed on the controlling terminal: SIGINT from the line
        discipline, as in a shell; the client ends by SIGINT and leaves the
        terminal in blocking mode.
        """
        master, slave, output = self.pty()
        # Make the terminal the client's controlling terminal (it leads a
        # new session), so that ^C reaches it as SIGINT.
        take_tty = (
            sys.executable,
            "-c",
            "import fcntl, os, sys, termios; fcntl.ioctl(0, termios.TIOCSCTTY, 0);"
            " os.execv(sys.argv[1], sys.argv[1:])",
        )
        client = self.client(
            *self.verified,
            stdin=slave,
            stdout=slave,
            launcher=take_tty,
            start_new_session=True,
        )
        client.expect_report(REPORTED)
        os.write(master, b"hello\n")
        client.expect_output(b"hello\r\n", output)
        os.write(master, b"\x03")  # VINTR
        self.assertEqual(client.wait(), -signal.SIGINT, client.describe())
        self.assertNotClosedCleanly(self.server.connection_line())
        self.assertFalse(nonblocking(slave))


class EndpointTargetTests(EchoServerTestCase):
    """A client endpoint description as the target: a UNIX socket."""

    def test_unix_socket(self) -> None:
        directory = self.tempdir()
        path = os.path.join(directory, "echo.sock")
        server = EchoServer(directory, ("--endpoint", f"sslfile:unix:{path}"))
        self.addCleanup(server.kill)
        server.start()
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "twisted_sslfile",
                f"unix:path={path}",
                "--servername",
                "localhost",
                "--cafile",
                server.cert_path,
            ],
            cwd=directory,
            env=checkout_environment(),
            input=b"over a unix socket\n",
            capture_output=True,
            timeout=TIMEOUT,
            check=False,
        )
        self.assertEqual(result.returncode, 0, result.stderr.decode())
        self.assertEqual(result.stdout, b"over a unix socket\n")
        self.assertIn(b"Verification: OK", result.stderr)
        self.assertIn(" sni=localhost ", server.connection_line())
