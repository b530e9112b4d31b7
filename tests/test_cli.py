"""``python -m twisted_sslfile``: the command-line client, run as a user would.

The client runs as a subprocess (stdin, stdout, stderr and exit status are
its interface) against a ``twistd sslfile-echo`` process started from the
checkout, so every test crosses two real process boundaries.
"""

from __future__ import annotations

import os
import subprocess
import sys

from twisted.trial.unittest import SynchronousTestCase

from tests.certs import CertificateFactory, IssuedCertificate
from tests.peers import OpenSSLServer
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
