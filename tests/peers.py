"""Real TLS peers on loopback for the interop tests.

The engine is only proven when something that is not the engine agrees with
it, so these helpers start the usual suspects: ``openssl s_server`` and
``openssl s_client``, GnuTLS's ``gnutls-serv`` and ``gnutls-cli`` as
subprocesses, the stdlib ``ssl`` module and pyOpenSSL in threads.  Every wait
is bounded: a peer that does not answer fails the test with what it printed,
it never hangs the run.

There is deliberately no "skip if missing": a machine without ``openssl`` or
``gnutls-cli`` cannot prove interoperability, so the tests fail there
(``.ci/run`` installs both).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import ssl
import struct
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from OpenSSL import SSL

from tests.driver import Driver
from twisted_sslfile.context import Context
from twisted_sslfile.engine.connection import Connection

#: Upper bound of any single wait on a peer, in seconds.
TIMEOUT = 20.0

LOOPBACK = "127.0.0.1"


class PeerError(AssertionError):
    """A peer misbehaved or did not answer in time.

    An AssertionError so that trial reports it as a test failure, with the
    peer's output in the message.
    """


def openssl_binary() -> str:
    """Return the path of the ``openssl`` command or fail loudly."""
    path = shutil.which("openssl")
    if path is None:
        raise PeerError("the openssl command is required for the interop tests")
    return path


class _OutputCollector:
    """Drain one pipe of a subprocess in a thread, so the peer never blocks.

    Waiting for a marker is a condition wait with a deadline; the collected
    bytes are kept whole for assertions and failure messages.
    """

    def __init__(self, pipe: Any) -> None:
        self._pipe = pipe
        self._data = bytearray()
        self._cond = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            chunk = self._pipe.read1(65536)
            with self._cond:
                if not chunk:
                    self._closed = True
                    self._cond.notify_all()
                    return
                self._data += chunk
                self._cond.notify_all()

    @property
    def data(self) -> bytes:
        with self._cond:
            return bytes(self._data)

    @property
    def text(self) -> str:
        return self.data.decode("utf-8", "replace")

    def wait_for(
        self, pattern: bytes | re.Pattern[bytes], timeout: float, count: int = 1
    ) -> bool:
        """Wait until ``pattern`` appears (``count`` times); False on timeout
        or end of output."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                if isinstance(pattern, bytes):
                    if self._data.count(pattern) >= count:
                        return True
                elif len(pattern.findall(self._data)) >= count:
                    return True
                remaining = deadline - time.monotonic()
                if self._closed or remaining <= 0:
                    return False
                self._cond.wait(remaining)

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)


class _OpenSSLProcess:
    """What ``s_server`` and ``s_client`` share: a process with three pipes.

    The GnuTLS tools use it too, with ``trace=False`` (they have no trace
    file; ``trace`` is then empty).
    """

    def __init__(self, args: list[str], *, trace: bool = True) -> None:
        self._trace_dir = tempfile.mkdtemp(prefix="sslfile-interop-")
        self.trace_path = os.path.join(self._trace_dir, "trace.txt")
        # -trace decodes every message into a file of its own, so a failure
        # can show what OpenSSL saw without mixing it into the data on stdout.
        self.args = [*args, "-trace", "-msgfile", self.trace_path] if trace else args
        self.process: subprocess.Popen[bytes] | None = None
        self._writer: threading.Thread | None = None
        self.stdout: _OutputCollector
        self.stderr: _OutputCollector

    def _spawn(self) -> None:
        self.process = subprocess.Popen(
            self.args,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self.stdout = _OutputCollector(self.process.stdout)
        self.stderr = _OutputCollector(self.process.stderr)

    @property
    def trace(self) -> str:
        """The ``-trace`` output: every record and message the peer saw."""
        try:
            with open(self.trace_path, encoding="utf-8", errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def count_in_trace(self, message: str) -> int:
        """How many times a handshake message (e.g. "ClientHello") was traced."""
        return len(re.findall(rf"^\s+{message}, Length=", self.trace, re.MULTILINE))

    def describe(self) -> str:
        """Everything the peer printed, for a failure message."""
        rc = None if self.process is None else self.process.poll()
        return (
            f"command: {' '.join(self.args)}\nexit status: {rc}\n"
            f"--- stdout ---\n{self.stdout.text[-4000:]}\n"
            f"--- stderr ---\n{self.stderr.text[-4000:]}\n"
        )

    def write(self, data: bytes, *, background: bool = False) -> None:
        """Write to the peer's stdin (sent to the TLS peer, or a command).

        ``background=True`` writes from a thread: a large write would
        otherwise block on the pipe while the peer itself waits for us to
        read the socket.  Later writes wait for it, keeping the order.
        """
        assert self.process is not None and self.process.stdin is not None
        stdin = self.process.stdin
        self.join_writer()

        def write() -> None:
            try:
                stdin.write(data)
                stdin.flush()
            except (BrokenPipeError, ValueError):
                pass  # the peer exited; its output tells why

        if background:
            self._writer = threading.Thread(target=write, daemon=True)
            self._writer.start()
        else:
            write()

    def join_writer(self, timeout: float = TIMEOUT) -> None:
        """Wait for a background write to be taken by the peer."""
        if self._writer is not None:
            self._writer.join(timeout)
            if self._writer.is_alive():
                raise PeerError(f"peer did not read its input\n{self.describe()}")
            self._writer = None

    def close_stdin(self) -> None:
        """End of input: s_client then sends close_notify and exits."""
        assert self.process is not None and self.process.stdin is not None
        self.join_writer()
        if not self.process.stdin.closed:
            self.process.stdin.close()

    #: (stream, text) the tool prints when it acted on a KeyUpdate command,
    #: or None when it prints nothing usable (see key_update).
    _key_update_marker: tuple[str, bytes] | None = None

    def key_update(self, request_peer: bool = True) -> None:
        """Send a TLS 1.3 KeyUpdate: the interactive ``K``/``k`` command.

        Both s_server and s_client (without ``-ign_eof``/``-nocommands``) read
        a line holding only ``K`` as "KeyUpdate, update_requested" and ``k`` as
        "update_not_requested" (RFC 8446 §4.6.3).  A command is only seen as
        one when a single read() returns it alone, so nothing may be written
        before the tool acted: s_client says "KEYUPDATE" on stderr and this
        waits for it; s_server reports with a stdio-buffered printf that never
        reaches a pipe in time, so the caller must wait for the KeyUpdate to
        arrive on its side of the connection before writing again.
        """
        if self._key_update_marker is None:
            self.write(b"K\n" if request_peer else b"k\n")
            return
        stream, marker = self._key_update_marker
        collector = self.stdout if stream == "stdout" else self.stderr
        count = collector.data.count(marker) + 1
        self.write(b"K\n" if request_peer else b"k\n")
        if not collector.wait_for(marker, TIMEOUT, count=count):
            raise PeerError(f"the peer sent no KeyUpdate\n{self.describe()}")

    def expect_output(self, pattern: bytes | str, timeout: float = TIMEOUT) -> None:
        """Fail unless ``pattern`` shows up on stdout within ``timeout``."""
        if isinstance(pattern, str):
            pattern = pattern.encode()
        if not self.stdout.wait_for(pattern, timeout):
            raise PeerError(f"{pattern!r} not seen on stdout\n{self.describe()}")

    def expect_error_output(
        self, pattern: bytes | str, timeout: float = TIMEOUT
    ) -> None:
        """Fail unless ``pattern`` shows up on stderr within ``timeout``."""
        if isinstance(pattern, str):
            pattern = pattern.encode()
        if not self.stderr.wait_for(pattern, timeout):
            raise PeerError(f"{pattern!r} not seen on stderr\n{self.describe()}")

    def wait(self, timeout: float = TIMEOUT) -> int:
        """Wait for the process to exit by itself; fail if it does not."""
        assert self.process is not None
        try:
            rc = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            raise PeerError(
                f"peer did not exit in {timeout}s\n{self.describe()}"
            ) from None
        self.stdout.join(timeout)
        self.stderr.join(timeout)
        return rc

    def stop(self) -> None:
        """Terminate the process (if still running) and remove its files."""
        if self.process is not None:
            if self.process.poll() is None:
                self.process.terminate()
                try:
                    self.process.wait(5)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait(5)
            for pipe in (self.process.stdin, self.process.stdout, self.process.stderr):
                if pipe is not None:
                    with contextlib.suppress(OSError):
                        pipe.close()
        shutil.rmtree(self._trace_dir, ignore_errors=True)


def _version_args(tls_version: str | None) -> list[str]:
    return {None: [], "1.3": ["-tls1_3"], "1.2": ["-tls1_2"]}[tls_version]


class OpenSSLServer(_OpenSSLProcess):
    """``openssl s_server`` on 127.0.0.1 with a port chosen by the kernel.

    OpenSSL 3 prints ``ACCEPT 127.0.0.1:PORT`` once it listens; waiting for
    that line is both the readiness check and the way to learn the port.
    Without ``-www``/``-rev`` the server writes what it receives to stdout and
    sends what it reads from stdin, so :meth:`write` and :meth:`expect_output`
    carry application data both ways.  ``-naccept 1`` makes it exit after one
    connection.
    """

    def __init__(
        self,
        cert: str,
        key: str,
        *,
        cert_chain: str | None = None,
        tls_version: str | None = "1.3",
        ciphersuites: str | None = None,
        ciphers: str | None = None,
        groups: str | None = None,
        alpn: str | None = None,
        npn: str | None = None,
        verify: int | None = None,
        require_client_certificate: bool = False,
        ca_file: str | None = None,
        www: bool = False,
        rev: bool = False,
        naccept: int = 1,
        extra: Sequence[str] = (),
    ) -> None:
        args = [openssl_binary(), "s_server", "-accept", f"{LOOPBACK}:0"]
        args += ["-cert", cert, "-key", key, "-naccept", str(naccept)]
        args += _version_args(tls_version)
        if cert_chain:
            args += ["-cert_chain", cert_chain]
        if ciphersuites:
            args += ["-ciphersuites", ciphersuites]
        if ciphers:
            args += ["-cipher", ciphers]
        if groups:
            args += ["-groups", groups]
        if alpn:
            args += ["-alpn", alpn]
        if npn:
            args += ["-nextprotoneg", npn]
        if verify is not None:
            # -Verify: a certificate is mandatory; -verify: requested only.
            option = "-Verify" if require_client_certificate else "-verify"
            args += [option, str(verify), "-verify_return_error"]
        if ca_file:
            args += ["-CAfile", ca_file]
        if www:
            args.append("-www")
        if rev:
            args.append("-rev")
        args += list(extra)
        super().__init__(args)
        self.port = 0

    def start(self, timeout: float = TIMEOUT) -> OpenSSLServer:
        self._spawn()
        if not self.stdout.wait_for(re.compile(rb"ACCEPT .*:(\d+)"), timeout):
            self.stop()
            raise PeerError(f"s_server did not start\n{self.describe()}")
        match = re.search(rb"ACCEPT .*:(\d+)", self.stdout.data)
        assert match is not None
        self.port = int(match.group(1))
        return self

    def connect(self, timeout: float = TIMEOUT) -> socket.socket:
        """A TCP connection to the server, ready for the engine."""
        return socket.create_connection((LOOPBACK, self.port), timeout=timeout)

    def __enter__(self) -> OpenSSLServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def openssl_name(name: x509.Name) -> str:
    """A name as OpenSSL's tools print it: "O = Org, CN = Name" (DER order)."""
    return ", ".join(
        f"{attribute.rfc4514_attribute_name} = {attribute.value}" for attribute in name
    )


class OpenSSLClient(_OpenSSLProcess):
    """``openssl s_client`` connecting to a port on 127.0.0.1.

    ``-brief`` puts a summary of the connection on stderr ("Protocol version:",
    "Ciphersuite:", "Server Temp Key:", ...) and leaves stdout to the data the
    server sends, while end of stdin still ends the connection (close_notify).
    """

    def __init__(
        self,
        port: int,
        *,
        tls_version: str | None = "1.3",
        ciphersuites: str | None = None,
        ciphers: str | None = None,
        groups: str | None = None,
        alpn: str | None = None,
        npn: str | None = None,
        cert: str | None = None,
        key: str | None = None,
        cert_chain: str | None = None,
        ca_file: str | None = None,
        servername: str | None = "localhost",
        verify_return_error: bool = True,
        commands: bool = True,
        brief: bool = True,
        extra: Sequence[str] = (),
    ) -> None:
        args = [openssl_binary(), "s_client", "-connect", f"{LOOPBACK}:{port}"]
        # -brief keeps the summary short; without it s_client prints the
        # full session (CA names, "New"/"Reused") on stdout, with the data.
        args += ["-brief"] if brief else []
        args += _version_args(tls_version)
        if ciphersuites:
            args += ["-ciphersuites", ciphersuites]
        if ciphers:
            args += ["-cipher", ciphers]
        if groups:
            args += ["-groups", groups]
        if alpn:
            args += ["-alpn", alpn]
        if npn:
            args += ["-nextprotoneg", npn]
        if cert:
            args += ["-cert", cert, "-key", key or cert]
        if cert_chain:
            args += ["-cert_chain", cert_chain]
        if ca_file:
            args += ["-CAfile", ca_file]
        if servername:
            args += ["-servername", servername]
            if verify_return_error:
                args += ["-verify_hostname", servername]
        else:
            args.append("-noservername")
        if verify_return_error:
            args.append("-verify_return_error")
        if not commands:
            args.append("-nocommands")
        args += list(extra)
        super().__init__(args)
        self._key_update_marker = ("stderr", b"KEYUPDATE")

    def start(self) -> OpenSSLClient:
        self._spawn()
        return self

    def expect_connected(self, timeout: float = TIMEOUT) -> None:
        """Wait for s_client's "CONNECTION ESTABLISHED" (handshake done)."""
        self.expect_error_output("CONNECTION ESTABLISHED", timeout)

    def summary(self, name: str) -> str | None:
        """One value of the ``-brief`` summary, e.g. ``summary("Ciphersuite")``."""
        match = re.search(rf"^{re.escape(name)}: (.*)$", self.stderr.text, re.MULTILINE)
        return None if match is None else match.group(1).strip()

    def acceptable_ca_names(self) -> list[str] | None:
        """The names of the server's CertificateRequest, as printed without
        ``-brief`` ("O = ..., CN = ..."); None when s_client printed no such
        list (no CertificateRequest), [] for "No client certificate CA names
        sent"."""
        text = self.stdout.text
        if "No client certificate CA names sent" in text:
            return []
        match = re.search(
            r"^Acceptable client certificate CA names\n((?:.+\n)*?)"
            r"(?=Client Certificate Types|Requested Signature Algorithms)",
            text,
            re.MULTILINE,
        )
        return None if match is None else match.group(1).splitlines()

    def __enter__(self) -> OpenSSLClient:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


# --- GnuTLS: gnutls-serv and gnutls-cli (Debian's gnutls-bin) ---------------


def gnutls_binary(name: str) -> str:
    """Return the path of ``gnutls-serv``/``gnutls-cli`` or fail loudly."""
    path = shutil.which(name)
    if path is None:
        raise PeerError(
            f"the {name} command (Debian's gnutls-bin) is required for the "
            "GnuTLS interop tests"
        )
    return path


def gnutls_priority(tls_version: str | None) -> str:
    """A priority string: GnuTLS's defaults, limited to one version."""
    return {
        None: "NORMAL",
        "1.2": "NORMAL:-VERS-ALL:+VERS-TLS1.2",
        "1.3": "NORMAL:-VERS-ALL:+VERS-TLS1.3",
    }[tls_version]


def _listening_ipv4_ports(pid: int) -> list[int]:
    """The IPv4 TCP ports process ``pid`` listens on (Linux ``/proc``)."""
    inodes = set()
    fd_dir = f"/proc/{pid}/fd"
    for fd in os.listdir(fd_dir):
        with contextlib.suppress(OSError):
            match = re.fullmatch(r"socket:\[(\d+)\]", os.readlink(f"{fd_dir}/{fd}"))
            if match:
                inodes.add(match.group(1))
    ports = []
    with open("/proc/net/tcp", encoding="ascii") as table:
        next(table)
        for row in table:
            fields = row.split()
            # local_address is HEXIP:HEXPORT; state 0A is LISTEN.
            if fields[3] == "0A" and fields[9] in inodes:
                ports.append(int(fields[1].split(":")[1], 16))
    return ports


class GnuTLSServer(_OpenSSLProcess):
    """``gnutls-serv --echo``: sends back every record it receives.

    gnutls-serv cannot be told an address: it listens on every interface,
    IPv4 and IPv6, at the port given.  Port 0 lets the kernel choose (one
    per socket); :meth:`start` reads the IPv4 one from ``/proc`` once the
    server says it listens, and the tests only ever connect to 127.0.0.1.
    It serves connections until :meth:`stop`, keeping a session cache and
    (unless ``tickets=False``) issuing tickets.  A client that sends the
    line ``**REHANDSHAKE**`` makes it start a renegotiation (TLS 1.2).
    """

    def __init__(
        self,
        cert_chain: str,
        key: str,
        *,
        tls_version: str | None = "1.3",
        alpn: Sequence[str] = (),
        client_ca: str | None = None,
        require_client_certificate: bool = False,
        tickets: bool = True,
        extra: Sequence[str] = (),
    ) -> None:
        args = [gnutls_binary("gnutls-serv"), "--port", "0", "--echo"]
        args += ["--x509certfile", cert_chain, "--x509keyfile", key]
        args += ["--priority", gnutls_priority(tls_version)]
        for protocol in alpn:
            args += ["--alpn", protocol]
        if client_ca is not None:
            # Its CertificateRequest then names the CAs of this file.
            args += ["--x509cafile", client_ca, "--verify-client-cert"]
            if require_client_certificate:
                args.append("--require-client-cert")
        else:
            args.append("--disable-client-cert")
        if not tickets:
            args.append("--noticket")
        args += list(extra)
        super().__init__(args, trace=False)
        self.port = 0

    def start(self, timeout: float = TIMEOUT) -> GnuTLSServer:
        self._spawn()
        assert self.process is not None
        if not self.stderr.wait_for(re.compile(rb"listening on IPv4 .*done"), timeout):
            self.stop()
            raise PeerError(f"gnutls-serv did not start\n{self.describe()}")
        ports = _listening_ipv4_ports(self.process.pid)
        if len(ports) != 1:
            self.stop()
            raise PeerError(f"gnutls-serv listens on {ports}\n{self.describe()}")
        self.port = ports[0]
        return self

    def connect(self, timeout: float = TIMEOUT) -> socket.socket:
        """A TCP connection to the server, ready for the engine."""
        return socket.create_connection((LOOPBACK, self.port), timeout=timeout)

    def __enter__(self) -> GnuTLSServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


class GnuTLSClient(_OpenSSLProcess):
    """``gnutls-cli`` connecting to 127.0.0.1, naming and verifying
    ``servername``.

    It writes what it reads from stdin to the connection and what it
    receives to stdout, among its own "- ..." report lines; end of stdin
    sends close_notify and ends it.  ``resume``: one handshake, a new
    connection resuming it, then the data (``--resume``); ``rehandshake``:
    a renegotiation (TLS 1.2) right after the handshake (``--rehandshake``).
    ``verbose`` (``-V``) adds, among others, the CA names of a
    CertificateRequest.
    """

    def __init__(
        self,
        port: int,
        *,
        ca_file: str | None,
        tls_version: str | None = "1.3",
        servername: str = "localhost",
        alpn: Sequence[str] = (),
        cert_chain: str | None = None,
        key: str | None = None,
        resume: bool = False,
        rehandshake: bool = False,
        tickets: bool = True,
        verbose: bool = False,
        extra: Sequence[str] = (),
    ) -> None:
        args = [gnutls_binary("gnutls-cli"), "--port", str(port)]
        args += ["--priority", gnutls_priority(tls_version)]
        args += ["--sni-hostname", servername, "--verify-hostname", servername]
        if ca_file is not None:
            args += ["--x509cafile", ca_file]
        for protocol in alpn:
            args += ["--alpn", protocol]
        if cert_chain is not None:
            args += ["--x509certfile", cert_chain, "--x509keyfile", key or cert_chain]
        if resume:
            args.append("--resume")
        if rehandshake:
            args.append("--rehandshake")
        if not tickets:
            args.append("--noticket")
        if verbose:
            args.append("--verbose")
        args += [*extra, LOOPBACK]
        super().__init__(args, trace=False)

    def start(self) -> GnuTLSClient:
        self._spawn()
        return self

    def expect_connected(self, timeout: float = TIMEOUT) -> None:
        """Wait for "- Simple Client Mode:" (every handshake done)."""
        self.expect_output("- Simple Client Mode:", timeout)

    def description(self) -> str | None:
        """The session's "- Description:" line, e.g.
        ``(TLS1.2-X.509)-(ECDHE-X25519)-(ECDSA-SHA256)-(AES-128-GCM)``
        (the last one printed)."""
        found = re.findall(r"^- Description: (.*)$", self.stdout.text, re.MULTILINE)
        return found[-1].strip() if found else None

    def trusted_authorities(self) -> list[str]:
        """The CA names of the server's CertificateRequest ("O=...,CN=...",
        printed with ``verbose``), or [] when it named none."""
        match = re.search(
            r"^- Server's trusted authorities:\n((?:   \[\d+\]: .*\n)*)",
            self.stdout.text,
            re.MULTILINE,
        )
        if match is None:
            return []
        return re.findall(r"^   \[\d+\]: (.*)$", match.group(1), re.MULTILINE)

    def __enter__(self) -> GnuTLSClient:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


# --- Peers in threads -------------------------------------------------------


@dataclass
class PeerResult:
    """What a threaded peer saw: its view of the session and what it received."""

    version: str | None = None
    cipher: str | None = None
    group: str | None = None
    alpn_protocol: str | None = None
    peer_certificate: bytes | None = None
    received: bytes = b""
    extra: dict[str, Any] = field(default_factory=dict)


class PeerThread:
    """Run a peer function in a thread; collect its result or exception.

    ``result()`` re-raises what the peer raised, so an ssl.SSLError in the
    peer (e.g. an alert it received) becomes the test's failure or the thing
    the test asserts on.
    """

    def __init__(self, target: Callable[[], PeerResult]) -> None:
        self._target = target
        self._result: PeerResult | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            self._result = self._target()
        except BaseException as e:
            self._error = e

    def start(self) -> PeerThread:
        self._thread.start()
        return self

    def result(self, timeout: float = TIMEOUT) -> PeerResult:
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise PeerError(f"threaded peer did not finish in {timeout}s")
        if self._error is not None:
            raise self._error
        assert self._result is not None
        return self._result


class ListeningPeer:
    """A loopback listening socket whose single connection a thread serves."""

    def __init__(self, serve: Callable[[socket.socket], PeerResult]) -> None:
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.bind((LOOPBACK, 0))
        self._listener.listen(1)
        self._listener.settimeout(TIMEOUT)
        self.port: int = self._listener.getsockname()[1]
        self._serve = serve
        self.thread = PeerThread(self._accept_one)

    def _accept_one(self) -> PeerResult:
        try:
            sock, _ = self._listener.accept()
        finally:
            self._listener.close()
        sock.settimeout(TIMEOUT)
        with sock:
            return self._serve(sock)

    def start(self) -> ListeningPeer:
        self.thread.start()
        return self

    def connect(self) -> socket.socket:
        return socket.create_connection((LOOPBACK, self.port), timeout=TIMEOUT)

    def result(self, timeout: float = TIMEOUT) -> PeerResult:
        return self.thread.result(timeout)


def connect_to(port: int) -> Callable[[], socket.socket]:
    """A factory of client sockets to ``port`` on loopback."""
    return lambda: socket.create_connection((LOOPBACK, port), timeout=TIMEOUT)


# The application exchange the threaded peers run.  A "talker" gets a
# callable for sending and one for receiving a chunk (b"" at the end) and
# returns what it received.
Talk = Callable[[Callable[[bytes], None], Callable[[], bytes]], bytes]


def echo(send: Callable[[bytes], None], recv: Callable[[], bytes]) -> bytes:
    """Send back everything received until the peer closes; returns it all."""
    received = bytearray()
    while chunk := recv():
        received += chunk
        send(chunk)
    return bytes(received)


def say_then_read(message: bytes) -> Talk:
    """Send ``message``, then read until the peer closes."""

    def talk(send: Callable[[bytes], None], recv: Callable[[], bytes]) -> bytes:
        send(message)
        received = bytearray()
        while chunk := recv():
            received += chunk
        return bytes(received)

    return talk


def read_then_say(length: int, message: bytes, *, until_close: bool = True) -> Talk:
    """Read ``length`` bytes, send ``message``, then read until close.

    With ``until_close=False`` the peer returns right after sending, and so
    is the one that closes (s_server only sends close_notify in reply).
    """

    def talk(send: Callable[[bytes], None], recv: Callable[[], bytes]) -> bytes:
        received = bytearray()
        while len(received) < length and (chunk := recv()):
            received += chunk
        send(message)
        while until_close and (chunk := recv()):
            received += chunk
        return bytes(received)

    return talk


# --- Python's ssl module ----------------------------------------------------


def python_ssl_server_context(
    cert_chain: str,
    key: str,
    *,
    alpn: Sequence[str] = (),
    client_ca: str | None = None,
    tls13_only: bool = True,
) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    if tls13_only:
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.load_cert_chain(cert_chain, key)
    if alpn:
        ctx.set_alpn_protocols(list(alpn))
    if client_ca is not None:
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(client_ca)
    return ctx


def python_ssl_client_context(
    ca_file: str,
    *,
    alpn: Sequence[str] = (),
    cert_chain: str | None = None,
    key: str | None = None,
    tls13_only: bool = True,
) -> ssl.SSLContext:
    # create_default_context: CERT_REQUIRED and check_hostname, as a user has.
    ctx = ssl.create_default_context(cafile=ca_file)
    if tls13_only:
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    if alpn:
        ctx.set_alpn_protocols(list(alpn))
    if cert_chain is not None:
        ctx.load_cert_chain(cert_chain, key)
    return ctx


def _python_ssl_exchange(tls: ssl.SSLSocket, talk: Talk) -> PeerResult:
    def recv() -> bytes:
        try:
            return tls.recv(65536)
        except ssl.SSLZeroReturnError:
            return b""

    received = talk(tls.sendall, recv)
    result = PeerResult(
        version=tls.version(),
        cipher=(tls.cipher() or (None,))[0],
        alpn_protocol=tls.selected_alpn_protocol(),
        peer_certificate=tls.getpeercert(binary_form=True),
        received=received,
    )
    # The peer may close the socket right after its close_notify.
    with contextlib.suppress(OSError, ssl.SSLError):
        tls.unwrap()
    return result


def python_ssl_server(ctx: ssl.SSLContext, talk: Talk = echo) -> ListeningPeer:
    """A stdlib ``ssl`` server thread serving one connection with ``talk``."""

    def serve(sock: socket.socket) -> PeerResult:
        # suppress_ragged_eofs=False: an end of stream without close_notify
        # (truncation) is an error the test must see.
        with ctx.wrap_socket(sock, server_side=True, suppress_ragged_eofs=False) as tls:
            return _python_ssl_exchange(tls, talk)

    return ListeningPeer(serve).start()


def python_ssl_client(
    ctx: ssl.SSLContext, port: int, talk: Talk, server_hostname: str = "localhost"
) -> PeerThread:
    """A stdlib ``ssl`` client thread connecting to ``port``."""

    def run() -> PeerResult:
        sock = connect_to(port)()
        with ctx.wrap_socket(
            sock, server_hostname=server_hostname, suppress_ragged_eofs=False
        ) as tls:
            return _python_ssl_exchange(tls, talk)

    return PeerThread(run).start()


# --- pyOpenSSL (bundles a recent OpenSSL: X25519MLKEM768 by default) ---------


def pyopenssl_context(
    *,
    cert_chain: str | None = None,
    key: str | None = None,
    ca_file: str | None = None,
    client_ca: str | None = None,
    alpn: Sequence[bytes] = (),
    tls13_only: bool = True,
) -> SSL.Context:
    """A pyOpenSSL context; its groups stay the library's defaults.

    ``ca_file``: verify the peer (client side); ``client_ca``: require a
    client certificate issued under it (server side).  ``alpn`` is the list
    a client offers or, on a server, the protocols it accepts in its
    preference order.
    """
    ctx = SSL.Context(SSL.TLS_METHOD)
    if tls13_only:
        ctx.set_min_proto_version(SSL.TLS1_3_VERSION)
    if cert_chain is not None:
        ctx.use_certificate_chain_file(cert_chain)
        ctx.use_privatekey_file(key or cert_chain)
    if ca_file is not None:
        ctx.load_verify_locations(ca_file)
        ctx.set_verify(SSL.VERIFY_PEER, lambda conn, cert, errno, depth, ok: bool(ok))
    if client_ca is not None:
        ctx.load_verify_locations(client_ca)
        ctx.set_verify(
            SSL.VERIFY_PEER | SSL.VERIFY_FAIL_IF_NO_PEER_CERT,
            lambda conn, cert, errno, depth, ok: bool(ok),
        )
    if alpn:
        if cert_chain is not None and ca_file is None:
            protocols = list(alpn)

            def select(conn: SSL.Connection, offered: list[bytes]) -> bytes:
                for protocol in protocols:
                    if protocol in offered:
                        return protocol
                return SSL.NO_OVERLAPPING_PROTOCOLS

            ctx.set_alpn_select_callback(select)
        else:
            ctx.set_alpn_protos(list(alpn))
    return ctx


def _os_level_timeout(sock: socket.socket) -> None:
    """Bound blocking I/O for pyOpenSSL.

    pyOpenSSL treats a socket with a Python-level timeout as nonblocking and
    raises WantReadError; kernel send/receive timeouts keep the socket
    blocking and still turn a silent peer into an error instead of a hang.
    """
    sock.settimeout(None)
    seconds = int(TIMEOUT)
    value = struct.pack("ll", seconds, 0)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, value)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, value)


def _pyopenssl_exchange(tls: SSL.Connection, talk: Talk) -> PeerResult:
    tls.do_handshake()

    def recv() -> bytes:
        try:
            return tls.recv(65536)
        except SSL.ZeroReturnError:
            return b""

    received = talk(tls.sendall, recv)
    cert = tls.get_peer_certificate(as_cryptography=True)
    alpn = tls.get_alpn_proto_negotiated()
    result = PeerResult(
        version=tls.get_protocol_version_name(),
        cipher=tls.get_cipher_name(),
        group=tls.get_group_name(),
        alpn_protocol=alpn.decode() if alpn else None,
        peer_certificate=None if cert is None else cert.public_bytes(Encoding.DER),
        received=received,
    )
    with contextlib.suppress(SSL.Error):
        tls.shutdown()
    return result


def pyopenssl_server(ctx: SSL.Context, talk: Talk = echo) -> ListeningPeer:
    """A pyOpenSSL server thread serving one connection with ``talk``."""

    def serve(sock: socket.socket) -> PeerResult:
        _os_level_timeout(sock)
        tls = SSL.Connection(ctx, sock)
        tls.set_accept_state()
        return _pyopenssl_exchange(tls, talk)

    return ListeningPeer(serve).start()


def pyopenssl_client(
    ctx: SSL.Context, port: int, talk: Talk, server_name: bytes = b"localhost"
) -> PeerThread:
    """A pyOpenSSL client thread connecting to ``port``."""

    def run() -> PeerResult:
        with connect_to(port)() as sock:
            _os_level_timeout(sock)
            tls = SSL.Connection(ctx, sock)
            tls.set_connect_state()
            tls.set_tlsext_host_name(server_name)
            return _pyopenssl_exchange(tls, talk)

    return PeerThread(run).start()


def accept_one(timeout: float = TIMEOUT) -> tuple[socket.socket, int]:
    """A listening socket on loopback for our own server, and its port.

    The caller accepts (with :func:`accept`) after starting the peer client.
    """
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind((LOOPBACK, 0))
    listener.listen(1)
    listener.settimeout(timeout)
    return listener, listener.getsockname()[1]


def accept(listener: socket.socket) -> socket.socket:
    """Accept one connection (bounded by the listener's timeout) and close it."""
    try:
        sock, _ = listener.accept()
    except TimeoutError:
        raise PeerError("no client connected in time") from None
    finally:
        listener.close()
    sock.settimeout(TIMEOUT)
    return sock


class EngineServerMixin:
    """Our engine as a server accepting several connections in a row
    (:func:`accept_one` serves one); for trial test cases."""

    def listen(self, backlog: int = 8) -> tuple[socket.socket, int]:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.addCleanup(listener.close)  # type: ignore[attr-defined]
        listener.bind((LOOPBACK, 0))
        listener.listen(backlog)
        listener.settimeout(TIMEOUT)
        return listener, listener.getsockname()[1]

    def accept(
        self,
        listener: socket.socket,
        context: Context,
        describe_peer: Callable[[], str] | None = None,
    ) -> Driver:
        try:
            sock, _ = listener.accept()
        except TimeoutError:
            raise PeerError("no client connected in time") from None
        self.addCleanup(sock.close)  # type: ignore[attr-defined]
        sock.settimeout(TIMEOUT)
        return Driver(
            Connection(context, is_client=False), sock, describe_peer=describe_peer
        )
