"""``python -m twisted_sslfile`` where people rely on ``openssl s_client``.

The report's certificate facts (subject, issuer, validity, key, SANs) are
checked against what ``openssl x509 -noout -text`` says about the very file
the server serves; the signature scheme against what ``openssl s_server``
traced as sent; ``--showcerts`` against the served chain and against
``s_client -showcerts``; the key log against ``s_server -keylogfile`` for
the same connection; ``--starttls smtp`` against ``twisted.mail``'s ESMTP
server, which offers STARTTLS through this library.
"""

from __future__ import annotations

import datetime
import os
import re
import stat
import subprocess
import sys
from typing import Any

from cryptography import x509
from twisted.internet import defer, error, protocol, reactor
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase, TestCase

from tests.certs import CertificateFactory, IssuedCertificate
from tests.peers import OpenSSLServer, openssl_binary
from tests.test_echo import TIMEOUT, checkout_environment
from tests.test_interop_openssl import traced_signature_schemes
from tests.test_protocol_web import PeerProcess, bounded
from tests.test_starttls import (
    BODY,
    LOOPBACK,
    RECIPIENT,
    SENDER,
    Mailbox,
    WatchedFactory,
)
from twisted_sslfile.context import Context
from twisted_sslfile.starttls import SSLFileContextFactory
from twisted_sslfile.x509 import certificate_to_pem, write_pem

PEM = re.compile(
    rb"-----BEGIN CERTIFICATE-----\n.*?\n-----END CERTIFICATE-----\n", re.DOTALL
)


def client_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "twisted_sslfile", *args]


def run_client(
    *args: str, cwd: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        client_command(*args),
        cwd=cwd,
        env=env or checkout_environment(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=TIMEOUT,
        check=False,
    )


def read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def openssl_time(text: str) -> datetime.datetime:
    """``Dec  7 14:39:34 2026 GMT`` as a datetime."""
    return datetime.datetime.strptime(" ".join(text.split()), "%b %d %H:%M:%S %Y GMT")


def openssl_facts(path: str) -> dict[str, str]:
    """What ``openssl x509 -noout -text`` says about a certificate, in the
    words of our report: the independent account to compare against."""
    text = subprocess.run(
        [openssl_binary(), "x509", "-noout", "-text", "-nameopt", "RFC2253"],
        input=read(path),
        capture_output=True,
        check=True,
    ).stdout.decode()

    def field(pattern: str) -> str:
        match = re.search(pattern, text, re.MULTILINE)
        assert match is not None, f"{pattern!r} not in\n{text}"
        return match.group(1).strip()

    facts = {
        "subject": field(r"^\s+Subject: (.*)$"),
        "issuer": field(r"^\s+Issuer: (.*)$"),
    }
    before = openssl_time(field(r"Not Before: (.*)$"))
    after = openssl_time(field(r"Not After : (.*)$"))
    facts["validity"] = (
        f"notBefore {before:%Y-%m-%d %H:%M:%S} UTC, "
        f"notAfter {after:%Y-%m-%d %H:%M:%S} UTC"
    )
    algorithm = field(r"Public Key Algorithm: (\S+)")
    if algorithm == "rsaEncryption":
        bits = field(r"Public-Key: \((\d+) bit\)")
        facts["public key"] = f"RSA {bits} bits"
    elif algorithm == "id-ecPublicKey":
        bits = field(r"Public-Key: \((\d+) bit\)")
        curve = field(r"NIST CURVE: (\S+)")
        facts["public key"] = f"EC {curve} ({bits} bits)"
    else:
        facts["public key"] = {"ED25519": "Ed25519", "ED448": "Ed448"}[algorithm]
    san = re.search(r"Subject Alternative Name:.*\n\s+(.*)$", text, re.MULTILINE)
    if san is not None:
        facts["subjectAltName"] = san.group(1).strip().replace("IP Address:", "IP:")
    return facts


def reported_certificates(report: str) -> list[dict[str, str]]:
    """The report's chain section, one dict per certificate."""
    found: list[dict[str, str]] = []
    for text in report.splitlines():
        match = re.match(r"^  \d+ subject: (.*)$", text)
        if match:
            found.append({"subject": match.group(1)})
            continue
        match = re.match(r"^    ([a-zA-Z -]+?): (.*)$", text)
        if match and found:
            found[-1][match.group(1)] = match.group(2)
    return found


class ReportTests(SynchronousTestCase):
    """The client against ``openssl s_server``."""

    def setUp(self) -> None:
        self.directory = os.path.abspath(self.mktemp())
        self.pki = CertificateFactory(self.directory, intermediate_key_type="rsa-2048")

    def serve(
        self, issued: IssuedCertificate, *, naccept: int = 1, **options: Any
    ) -> OpenSSLServer:
        assert issued.cert_path and issued.key_path
        options.setdefault("extra", [])
        if issued.intermediates:
            options["cert_chain"] = self.intermediates_file(issued)
        server = OpenSSLServer(
            issued.cert_path, issued.key_path, naccept=naccept, **options
        )
        self.addCleanup(server.stop)
        return server.start()

    def intermediates_file(self, issued: IssuedCertificate) -> str:
        return write_pem(
            os.path.join(self.directory, f"{issued.name}-intermediates.pem"),
            issued.intermediates,
        )

    def client(
        self, server: OpenSSLServer, *args: str, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[bytes]:
        return run_client(
            f"127.0.0.1:{server.port}",
            "--servername",
            "localhost",
            "--no-stdin",
            *args,
            cwd=self.directory,
            env=env,
        )

    def check_report(self, key_type: str, tls_version: str) -> None:
        issued = self.pki.server(
            "localhost", key_type=key_type, ip_addresses=["127.0.0.1"]
        )
        server = self.serve(issued, tls_version=tls_version)
        result = self.client(server, "--cafile", self.pki.ca_path)
        report = result.stderr.decode()
        self.assertEqual(result.returncode, 0, report)
        self.assertEqual(server.wait(), 0, server.describe())
        certificates = reported_certificates(report)
        self.assertEqual(len(certificates), 2, report)
        intermediate = write_pem(
            os.path.join(self.directory, "intermediate.pem"), issued.intermediates[0]
        )
        assert issued.cert_path is not None
        for reported, path in zip(
            certificates, (issued.cert_path, intermediate), strict=True
        ):
            facts = openssl_facts(path)
            for name, value in facts.items():
                expected = value
                if name == "validity":
                    expected += " (valid now)"
                self.assertEqual(reported.get(name), expected, f"{name}\n{report}")
        self.assertEqual(
            certificates[0]["subjectAltName"], "DNS:localhost, IP:127.0.0.1"
        )
        self.assertNotIn("subjectAltName", certificates[1])  # the leaf's only
        # The scheme s_server says it signed the handshake with.
        [scheme] = traced_signature_schemes(server)
        self.assertIn(f"\nPeer signature scheme: {scheme}\n", report)

    def test_report_rsa_tls13(self) -> None:
        self.check_report("rsa-2048", "1.3")

    def test_report_ecdsa_tls12(self) -> None:
        """TLS 1.2: the scheme is ServerKeyExchange's."""
        self.check_report("ecdsa-p384", "1.2")

    def test_report_ed25519(self) -> None:
        self.check_report("ed25519", "1.3")

    def test_showcerts(self) -> None:
        """
        --showcerts prints the chain as served, in PEM: the same blocks as
        the server's files and as ``s_client -showcerts`` prints; with -q
        nothing else, so ``2>chain.pem`` saves it.
        """
        issued = self.pki.server("localhost")
        server = self.serve(issued, naccept=2)
        result = self.client(server, "--cafile", self.pki.ca_path, "-q", "--showcerts")
        self.assertEqual(result.returncode, 0, result.stderr.decode())
        served = b"".join(certificate_to_pem(cert) for cert in issued.chain)
        self.assertEqual(result.stderr, served)
        s_client = subprocess.run(
            [
                openssl_binary(),
                "s_client",
                "-connect",
                f"127.0.0.1:{server.port}",
                "-showcerts",
            ],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=TIMEOUT,
            check=False,
        )
        self.assertEqual(PEM.findall(s_client.stdout), PEM.findall(result.stderr))

    def test_failed_verification_lists_the_chain(self) -> None:
        """
        A chain from an unknown CA: the handshake fails (exit 1), and the
        report still shows every certificate the server sent.
        """
        other = CertificateFactory(os.path.join(self.directory, "other"), name="Other")
        issued = other.server("localhost")
        server = self.serve(issued)
        result = self.client(server, "--cafile", self.pki.ca_path, "--showcerts")
        report = result.stderr.decode()
        self.assertEqual(result.returncode, 1, report)
        self.assertIn("Certificate chain (2 as sent by the server, refused):", report)
        certificates = reported_certificates(report)
        self.assertEqual(
            [c["subject"] for c in certificates],
            [cert.subject.rfc4514_string() for cert in issued.chain],
        )
        self.assertEqual(
            PEM.findall(result.stderr),
            [certificate_to_pem(cert) for cert in issued.chain],
        )
        self.assertIn("Verification: FAILED: ", report)
        self.assertIn(
            "Handshake failed: certificate rejected (alert unknown_ca", report
        )
        self.assertLess(
            report.index("Certificate chain"), report.index("Verification: FAILED")
        )

    def test_expired_leaf(self) -> None:
        """Expired: refused, and the chain says why; --insecure shows it too."""
        issued = self.pki.server("localhost", not_after=datetime.timedelta(days=-1))
        server = self.serve(issued)
        result = self.client(server, "--cafile", self.pki.ca_path)
        report = result.stderr.decode()
        self.assertEqual(result.returncode, 1, report)
        [leaf, _] = reported_certificates(report)
        self.assertTrue(leaf["validity"].endswith(" (EXPIRED)"), report)
        self.assertIn("alert certificate_expired", report)

        server = self.serve(issued)
        result = self.client(server, "--insecure")
        report = result.stderr.decode()
        self.assertEqual(result.returncode, 0, report)
        [leaf, intermediate] = reported_certificates(report)
        self.assertTrue(leaf["validity"].endswith(" (EXPIRED)"), report)
        self.assertTrue(intermediate["validity"].endswith(" (valid now)"), report)

    def test_not_yet_valid_leaf(self) -> None:
        issued = self.pki.server("localhost", not_before=datetime.timedelta(days=2))
        server = self.serve(issued)
        result = self.client(server, "--insecure")
        self.assertEqual(result.returncode, 0, result.stderr.decode())
        [leaf, _] = reported_certificates(result.stderr.decode())
        self.assertTrue(leaf["validity"].endswith(" (NOT YET VALID)"), leaf)

    # -- key logging ------------------------------------------------------------

    def key_log(self, path: str) -> set[str]:
        with open(path) as f:
            return {t for t in f.read().splitlines() if t and not t.startswith("#")}

    def test_keylogfile(self) -> None:
        """
        --keylogfile writes what s_server -keylogfile writes for the same
        connection (both ends hold the same secrets), in a 0600 file.
        """
        for version, count in (("1.3", 5), ("1.2", 1)):
            ours = os.path.join(self.directory, f"ours-{version}.log")
            theirs = os.path.join(self.directory, f"theirs-{version}.log")
            server = self.serve(
                self.pki.server("localhost"),
                tls_version=version,
                extra=["-keylogfile", theirs],
            )
            result = self.client(
                server, "--cafile", self.pki.ca_path, "--keylogfile", ours
            )
            report = result.stderr.decode()
            self.assertEqual(result.returncode, 0, report)
            self.assertEqual(server.wait(), 0, server.describe())
            self.assertEqual(len(self.key_log(ours)), count)
            self.assertEqual(self.key_log(ours), self.key_log(theirs))
            self.assertEqual(stat.S_IMODE(os.stat(ours).st_mode), 0o600)
            self.assertIn(
                f"Key log: appending this connection's secrets to {ours}", report
            )

    def test_sslkeylogfile_environment(self) -> None:
        """SSLKEYLOGFILE is honoured (as curl does), and appended to."""
        path = os.path.join(self.directory, "env.log")
        for _ in range(2):
            theirs = os.path.join(self.directory, "theirs.log")
            server = self.serve(
                self.pki.server("localhost"), extra=["-keylogfile", theirs]
            )
            env = checkout_environment({"SSLKEYLOGFILE": path})
            result = self.client(server, "--cafile", self.pki.ca_path, env=env)
            self.assertEqual(result.returncode, 0, result.stderr.decode())
            self.assertIn(b"(from SSLKEYLOGFILE)", result.stderr)
            self.assertEqual(server.wait(), 0, server.describe())
            self.assertLessEqual(self.key_log(theirs), self.key_log(path))
        self.assertEqual(len(self.key_log(path)), 10)  # two connections

    def test_no_key_log_by_default(self) -> None:
        """Without either, nothing is logged (an empty variable is unset)."""
        server = self.serve(self.pki.server("localhost"))
        before = set(os.listdir(self.directory))
        env = checkout_environment({"SSLKEYLOGFILE": ""})
        result = self.client(server, "--cafile", self.pki.ca_path, env=env)
        self.assertEqual(result.returncode, 0, result.stderr.decode())
        self.assertNotIn(b"Key log", result.stderr)
        self.assertEqual(set(os.listdir(self.directory)) - before, set())

    def test_unsafe_key_log_file_is_a_usage_error(self) -> None:
        path = os.path.join(self.directory, "shared.log")
        with open(path, "w"):
            pass
        os.chmod(path, 0o666)
        result = run_client("localhost:1", "--keylogfile", path, cwd=self.directory)
        self.assertEqual(result.returncode, 2, result.stderr.decode())
        self.assertIn(b"--keylogfile: ", result.stderr)
        self.assertIn(b"chmod 600", result.stderr)


# -- STARTTLS ------------------------------------------------------------------


class Injector(protocol.Protocol):
    """An SMTP server that answers STARTTLS and then injects a line."""

    def connectionMade(self) -> None:
        self.transport.write(b"220 evil.example ESMTP\r\n")

    def dataReceived(self, data: bytes) -> None:
        if data.startswith(b"EHLO"):
            self.transport.write(b"250-evil.example\r\n250 STARTTLS\r\n")
        elif data.startswith(b"STARTTLS"):
            self.transport.write(b"220 go ahead\r\n250 injected\r\n")


class StartTLSTests(TestCase):
    """``--starttls smtp`` against twisted.mail's ESMTP server."""

    timeout = 60

    def setUp(self) -> None:
        self.directory = os.path.abspath(self.mktemp())
        self.pki = CertificateFactory(self.directory)
        leaf = self.pki.server("localhost", ip_addresses=[LOOPBACK])
        context = Context(credentials=[leaf.credential()])
        self.mailbox = Mailbox(SSLFileContextFactory(context, False))
        self.listen(WatchedFactory(self.mailbox))

    def listen(self, factory: Any) -> None:
        self.factory = factory
        port = reactor.listenTCP(0, factory, interface=LOOPBACK)
        self.addCleanup(port.stopListening)
        self.port = port.getHost().port

    def start_client(self, *args: str) -> PeerProcess:
        client = CheckoutProcess(
            client_command(f"{LOOPBACK}:{self.port}", "--starttls", "smtp", *args)
        )
        return client.start(self)

    @defer.inlineCallbacks
    def test_mail_over_starttls(self) -> Any:
        """
        EHLO and STARTTLS in plaintext, verified TLS, then the mail from
        stdin; the server (which refuses mail before TLS) delivers it.
        """
        client = self.start_client("--cafile", self.pki.ca_path)
        client.transport.write(
            b"EHLO client.example\r\nMAIL FROM:<" + SENDER.encode() + b">\r\n"
            b"RCPT TO:<"
            + RECIPIENT.encode()
            + b">\r\nDATA\r\n"
            + BODY
            + b".\r\nQUIT\r\n"
        )
        yield self.mailbox.received()
        [reason] = yield bounded(
            client.ended, f"the client to exit\n{client.describe()}"
        )
        self.assertTrue(reason.check(error.ProcessDone), client.describe())
        report = bytes(client.stderr).decode()
        self.assertIn("SMTP greeting: 220 example.com", report)
        self.assertIn("SMTP STARTTLS: 220 ", report)
        self.assertIn("Verification: OK (chain and name 127.0.0.1 verified)", report)
        self.assertIn(b"221 ", bytes(client.stdout))
        # The server refuses mail before TLS: delivered means over TLS.
        [(message, tls)] = self.mailbox.messages
        self.assertIn(b"Hello through twisted_sslfile.", message)
        self.assertIsNotNone(tls.handshakeResult)
        yield self.factory.all_closed()

    @defer.inlineCallbacks
    def test_server_without_starttls(self) -> Any:
        """No STARTTLS in the EHLO reply: a clear error, exit 1, QUIT sent."""
        self.listen(WatchedFactory(Mailbox(None)))
        client = self.start_client("--cafile", self.pki.ca_path)
        client.transport.closeStdin()
        [reason] = yield bounded(
            client.ended, f"the client to exit\n{client.describe()}"
        )
        self.assertEqual(reason.value.exitCode, 1, client.describe())
        report = bytes(client.stderr).decode()
        self.assertIn("STARTTLS failed: the server does not offer STARTTLS", report)
        self.assertEqual(bytes(client.stdout), b"")
        yield self.factory.all_closed()

    @defer.inlineCallbacks
    def test_injected_plaintext_refused(self) -> Any:
        """Bytes after the 220 to STARTTLS: refused, never taken as TLS."""
        factory = protocol.ServerFactory.forProtocol(Injector)
        self.listen(factory)
        client = self.start_client("--insecure")
        client.transport.closeStdin()
        [reason] = yield bounded(
            client.ended, f"the client to exit\n{client.describe()}"
        )
        self.assertEqual(reason.value.exitCode, 1, client.describe())
        self.assertIn(
            b"plaintext injected before TLS", bytes(client.stderr), client.describe()
        )
        self.assertNotIn(b"Protocol version", bytes(client.stderr))


class CheckoutProcess(PeerProcess):
    """A PeerProcess running this checkout's code."""

    def start(self, test: TestCase) -> PeerProcess:
        reactor.spawnProcess(self, self.args[0], self.args, env=checkout_environment())
        self.running = True
        test.addCleanup(self.stop)
        return self


class ParseTests(SynchronousTestCase):
    """The helpers above, on a fixed certificate (they must be able to fail)."""

    def test_openssl_facts(self) -> None:
        pki = CertificateFactory(self.mktemp())
        issued = pki.server("localhost", key_type="ecdsa-p256")
        assert issued.cert_path is not None
        facts = openssl_facts(issued.cert_path)
        self.assertEqual(facts["public key"], "EC P-256 (256 bits)")
        self.assertEqual(facts["subjectAltName"], "DNS:localhost")
        cert = x509.load_pem_x509_certificate(read(issued.cert_path))
        self.assertEqual(facts["subject"], cert.subject.rfc4514_string())


class _FakeClient:
    """What _SMTPStartTLS reports to: the report, and how it ended."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.failure: str | None = None
        self.upgraded = False

    def report(self, text: str = "", *, always: bool = False) -> None:
        self.lines.append(text)

    def plain_failed(self, why: str) -> None:
        self.failure = why

    def upgrade(self, negotiator: Any) -> None:
        self.upgraded = True


class SMTPNegotiationTests(SynchronousTestCase):
    """The plaintext phase of --starttls smtp against hostile or broken
    servers: every way out is an error that says why, within bounds."""

    def negotiator(self) -> tuple[Any, _FakeClient, StringTransport]:
        from twisted_sslfile.__main__ import _SMTPStartTLS

        client = _FakeClient()
        negotiator = _SMTPStartTLS(client)  # type: ignore[arg-type]
        transport = StringTransport(hostAddress=IPv4Address("TCP", "127.0.0.1", 5))
        negotiator.makeConnection(transport)
        return negotiator, client, transport

    def test_happy_path(self) -> None:
        negotiator, client, transport = self.negotiator()
        negotiator.dataReceived(b"220-mail.example ESMTP\r\n220 more\r\n")
        self.assertEqual(transport.value(), b"EHLO [127.0.0.1]\r\n")
        transport.clear()
        negotiator.dataReceived(b"250-mail.example\r\n250-PIPELINING\r\n")
        negotiator.dataReceived(b"250 starttls\r\n")  # keywords are case-blind
        self.assertEqual(transport.value(), b"STARTTLS\r\n")
        negotiator.dataReceived(b"220 go ahead\r\n")
        self.assertTrue(client.upgraded)
        self.assertIsNone(client.failure)

    def check_failure(self, data: bytes, *fragments: str, quit: bool = True) -> None:
        negotiator, client, transport = self.negotiator()
        negotiator.dataReceived(data)
        self.assertFalse(client.upgraded)
        assert client.failure is not None
        for fragment in fragments:
            self.assertIn(fragment, client.failure)
        self.assertTrue(transport.disconnecting)
        self.assertEqual(transport.value().endswith(b"QUIT\r\n"), quit)

    def test_refusing_greeting(self) -> None:
        self.check_failure(b"554 go away\r\n", "does not accept mail: 554 go away")

    def test_no_starttls(self) -> None:
        self.check_failure(
            b"220 hi\r\n250-mail.example\r\n250-PIPELINING\r\n250 8BITMIME\r\n",
            "does not offer STARTTLS (its EHLO reply lists: PIPELINING, 8BITMIME)",
        )

    def test_starttls_refused(self) -> None:
        self.check_failure(
            b"220 hi\r\n250-x\r\n250 STARTTLS\r\n454 TLS not available\r\n",
            "refused STARTTLS: 454 TLS not available",
        )

    def test_injection(self) -> None:
        self.check_failure(
            b"220 hi\r\n250-x\r\n250 STARTTLS\r\n220 go\r\n250 injected\r\n",
            "plaintext injected before TLS",
            quit=False,
        )

    def test_endless_line(self) -> None:
        self.check_failure(b"220 " + b"x" * 5000, "never ends")

    def test_endless_reply(self) -> None:
        self.check_failure(b"220-x\r\n" * 101, "too many lines")

    def test_closed(self) -> None:
        negotiator, client, _ = self.negotiator()
        negotiator.dataReceived(b"220 hi\r\n")
        negotiator.connectionLost(Failure(error.ConnectionDone()))
        self.assertEqual(
            client.failure,
            "the server closed the connection before answering EHLO "
            "(Connection was closed cleanly.)",
        )

    def test_ehlo_names_ipv6(self) -> None:
        from twisted_sslfile.__main__ import _SMTPStartTLS

        negotiator = _SMTPStartTLS(_FakeClient())  # type: ignore[arg-type]
        negotiator.makeConnection(
            StringTransport(hostAddress=IPv6Address("TCP", "::1", 5))
        )
        self.assertEqual(negotiator.ehlo_name(), b"[IPv6:::1]")

    def test_timed_out(self) -> None:
        """The timer _Client arms (the handshake timeout) ends the wait."""
        negotiator, client, transport = self.negotiator()
        negotiator.timer = Clock().callLater(30, negotiator.timed_out)
        negotiator.timed_out()
        self.assertEqual(client.failure, "timed out before its greeting")
        self.assertTrue(transport.disconnecting)
