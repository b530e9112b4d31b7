"""The examples in ``examples/`` run, and talk to each other and to Python's ssl.

They are the shortest demonstration of the sans-I/O contract (a blocking
socket loop around ``Connection``), so they must keep working.
"""

from __future__ import annotations

import os
import re
import socket
import ssl
import subprocess
import sys

from twisted.trial.unittest import SynchronousTestCase

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(__file__)), "examples")
TIMEOUT = 30


class EchoExampleTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.server = subprocess.Popen(
            [sys.executable, os.path.join(EXAMPLES, "echo_server.py"), "--port", "0"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        self.addCleanup(self.stop_server)
        self.port, self.cert_path = self.read_banner()

    def stop_server(self) -> None:
        self.server.kill()
        self.server.wait(TIMEOUT)
        assert self.server.stdout is not None
        self.server.stdout.close()

    def read_banner(self) -> tuple[int, str]:
        """Port and certificate path from the server's first lines."""
        assert self.server.stdout is not None
        seen = []
        for _ in range(20):
            line = self.server.stdout.readline().decode()
            seen.append(line)
            match = re.search(r"-connect [\d.]+:(\d+) -CAfile (\S+)", line)
            if match:
                return int(match.group(1)), match.group(2)
        self.fail(f"echo_server.py did not say where it listens: {seen!r}")

    def test_example_client(self) -> None:
        result = subprocess.run(
            [
                sys.executable,
                os.path.join(EXAMPLES, "echo_client.py"),
                "--port",
                str(self.port),
                "--cafile",
                self.cert_path,
                "hello",
                "example",
            ],
            capture_output=True,
            timeout=TIMEOUT,
            check=False,
        )
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout, b"hello example\n")
        self.assertIn(b"connected: TLS_1_3", result.stderr)

    def test_python_ssl_client(self) -> None:
        """The stdlib, verifying name and chain, talking TLS 1.2 to it."""
        context = ssl.create_default_context(cafile=self.cert_path)
        context.maximum_version = ssl.TLSVersion.TLSv1_2
        with (
            socket.create_connection(("127.0.0.1", self.port), timeout=TIMEOUT) as raw,
            context.wrap_socket(raw, server_hostname="localhost") as sock,
        ):
            self.assertEqual(sock.version(), "TLSv1.2")
            sock.sendall(b"echo me\n")
            received = b""
            while len(received) < len(b"echo me\n"):
                chunk = sock.recv(100)
                if not chunk:
                    break
                received += chunk
        self.assertEqual(received, b"echo me\n")
