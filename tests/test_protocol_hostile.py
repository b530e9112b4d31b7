"""Unusual and hostile clients on real loopback TCP against a TLSFactory server.

The engine tests feed crafted bytes to a ``Connection``; these send them the
way an attacker or a conformance probe does: over a socket, to a server built
with :class:`~twisted_sslfile.protocol.TLSFactory` on the global reactor.
The client is a real engine ``Connection`` driven over a blocking socket in a
thread (:class:`tests.driver.Driver`), so that it can read the server's
protected alerts; where the test needs bytes no honest client sends, it
crafts its ClientHello (``client_sending``) or writes raw records to the
socket itself.

Each test checks both ends: what the client reads (the alert, the data, the
order of the server's records) and what the server's application is told
(``handshakeCompleted``, ``connectionLost`` and its reason).  Every wait is
bounded; nothing sleeps to synchronise.
"""

from __future__ import annotations

import shutil
import socket
import ssl
import struct
import subprocess
from collections.abc import Callable
from typing import Any

from twisted.internet import defer, error, reactor
from twisted.internet.interfaces import IHandshakeListener
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.threads import deferToThread
from twisted.python.failure import Failure
from twisted.trial.unittest import TestCase
from zope.interface import implementer

from tests import peers
from tests.certs import CertificateFactory
from tests.driver import Driver
from tests.test_connection import client_sending
from twisted_sslfile.constants import (
    AlertDescription,
    ContentType,
    ExtensionType,
    ProtocolVersion,
)
from twisted_sslfile.context import Context
from twisted_sslfile.engine.connection import MAX_CLIENT_HELLO_SIZE, Connection
from twisted_sslfile.engine.events import (
    ApplicationData,
    Event,
    HandshakeCompleted,
    SessionTicket,
)
from twisted_sslfile.errors import RemoteAlertError, TLSError
from twisted_sslfile.protocol import TLSFactory, TLSProtocol, TLSTruncationError

#: Upper bound of any single wait, in seconds.
WAIT = 20.0

CCS_RECORD = bytes((ContentType.change_cipher_spec, 3, 3, 0, 1, 1))


def plaintext_alert(description: AlertDescription) -> bytes:
    return bytes((ContentType.alert, 3, 3, 0, 2, 2, description))


def bounded(d: defer.Deferred[Any], what: str) -> defer.Deferred[Any]:
    """``d`` with a deadline; the failure names what was awaited."""

    def named(failure: Failure) -> Failure:
        if failure.check(defer.TimeoutError):
            raise AssertionError(f"timed out after {WAIT} s waiting for {what}")
        return failure

    return d.addTimeout(WAIT, reactor).addErrback(named)


@implementer(IHandshakeListener)
class ServerApp(Protocol):
    """The server's application: records what it is told; may greet."""

    def __init__(self, greeting: bytes = b"") -> None:
        self.greeting = greeting
        self.handshakes = 0
        self.data = bytearray()
        self.reason: Failure | None = None
        self.lost: defer.Deferred[None] = defer.Deferred()

    def handshakeCompleted(self) -> None:
        self.handshakes += 1
        if self.greeting:
            # In the same reactor turn as the handshake: after the tickets.
            self.transport.write(self.greeting)

    def dataReceived(self, data: bytes) -> None:
        self.data += data

    def connectionLost(self, reason: Failure = error.ConnectionDone) -> None:  # type: ignore[assignment]
        self.reason = reason
        self.lost.callback(None)


def reset_on_close(sock: socket.socket) -> None:
    """Make ``close()`` send a TCP reset (SO_LINGER with a zero timeout)."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes (bounded by the timeout)."""
    sock.settimeout(WAIT)
    data = bytearray()
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        data += chunk
    return bytes(data)


class HostileClientTests(TestCase):
    """A TLSFactory server; one crafted or hostile client per test."""

    timeout = 60

    def setUp(self) -> None:
        pki = CertificateFactory(self.mktemp())
        leaf = pki.server("example.com")
        self.server_context = Context(credentials=[leaf.credential()])
        self.client_context = Context(trust_roots=pki.trust_roots)
        self.tls12_client_context = Context(
            trust_roots=pki.trust_roots, max_version=ProtocolVersion.TLS_1_2
        )
        self.apps: list[ServerApp] = []
        self.greeting = b""

    def listen(self) -> int:
        def build() -> ServerApp:
            app = ServerApp(self.greeting)
            self.apps.append(app)
            return app

        factory = TLSFactory(Factory.forProtocol(build), self.server_context, False)
        port = reactor.listenTCP(0, factory, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        return port.getHost().port

    def client(self, context: Context | None = None, **hello: object) -> Connection:
        kind = client_sending(**hello) if hello else Connection
        return kind(
            context or self.client_context, is_client=True, server_name="example.com"
        )

    def in_thread(self, talk: Callable[[int], Any]) -> defer.Deferred[Any]:
        """Start the server, run ``talk(port)`` in a thread; its result."""
        port = self.listen()
        return bounded(deferToThread(talk, port), "the client")

    @defer.inlineCallbacks
    def server_lost(self) -> Any:
        """Wait for the one server application's connectionLost; its reason
        is then in ``self.reason``."""
        self.assertEqual(len(self.apps), 1)
        yield bounded(self.apps[0].lost, "the server's connectionLost")

    @property
    def reason(self) -> Failure:
        reason = self.apps[0].reason
        assert reason is not None
        return reason

    # -- ClientHello (issue 9, items 9 to 12; issue 10, item 4) -------------------

    @defer.inlineCallbacks
    def test_legacy_version_below_ssl3(self) -> Any:
        """legacy_version 0x0200 with TLS 1.3 in supported_versions: the
        server answers protocol_version (RFC 8446 §D.5), in plaintext."""

        def talk(port: int) -> bytes:
            conn = self.client(legacy_version=0x0200)
            conn.start()
            with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as sock:
                sock.sendall(conn.data_to_send())
                return read_until_closed(sock)

        received = yield self.in_thread(talk)
        self.assertEqual(received, plaintext_alert(AlertDescription.protocol_version))
        yield self.server_lost()
        reason = self.reason
        self.assertTrue(reason.check(TLSError), reason)
        self.assertEqual(reason.value.alert, AlertDescription.protocol_version)
        self.assertEqual(self.apps[0].handshakes, 0)

    @defer.inlineCallbacks
    def test_client_hello_over_the_bound(self) -> Any:
        """A ClientHello declared one byte over 32 KiB is refused as soon as
        its first record is in, with illegal_parameter: the server never
        waits for (nor holds) the rest."""

        def talk(port: int) -> bytes:
            header = b"\x01" + (MAX_CLIENT_HELLO_SIZE + 1).to_bytes(3, "big")
            fragment = header + bytes(2**14 - 4)
            record = bytes((ContentType.handshake, 3, 1)) + struct.pack(
                ">H", len(fragment)
            )
            with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as sock:
                sock.sendall(record + fragment)
                return read_until_closed(sock)

        received = yield self.in_thread(talk)
        self.assertEqual(received, plaintext_alert(AlertDescription.illegal_parameter))
        yield self.server_lost()
        reason = self.reason
        self.assertEqual(reason.value.alert, AlertDescription.illegal_parameter)

    @defer.inlineCallbacks
    def test_client_hello_at_the_bound(self) -> Any:
        """A ClientHello padded (RFC 7685) to exactly 32 KiB completes."""
        probe = self.client(other_extensions=[(ExtensionType.padding, b"")])
        probe.start()
        unpadded = len(probe.data_to_send()) - 5 - 4
        padding = bytes(MAX_CLIENT_HELLO_SIZE - unpadded)
        self.greeting = b"hello, big hello"

        def talk(port: int) -> list[Event]:
            conn = self.client(other_extensions=[(ExtensionType.padding, padding)])
            with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as sock:
                driver = Driver(conn, sock)
                driver.handshake()
                driver.receive_exactly(len(self.greeting))
                driver.close(wait_for_peer=True)
                return driver.events

        events = yield self.in_thread(talk)
        self.assertEqual(
            [e for e in events if isinstance(e, ApplicationData)],
            [ApplicationData(self.greeting)],
        )
        yield self.server_lost()
        reason = self.reason
        self.assertTrue(reason.check(error.ConnectionDone), reason)

    @defer.inlineCallbacks
    def test_thousands_of_unknown_extensions(self) -> Any:
        """7,000 empty unknown extensions (28 KB): ignored (RFC 8446 §4.2)."""
        unknown = [(0x4000 + i, b"") for i in range(7000)]
        self.greeting = b"welcome"

        def talk(port: int) -> bytes:
            conn = self.client(other_extensions=unknown)
            with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as sock:
                driver = Driver(conn, sock)
                driver.handshake()
                data = driver.receive_exactly(len(self.greeting))
                driver.close(wait_for_peer=True)
                return data

        data = yield self.in_thread(talk)
        self.assertEqual(data, self.greeting)
        yield self.server_lost()
        reason = self.reason
        self.assertTrue(reason.check(error.ConnectionDone), reason)
        self.assertEqual(self.apps[0].handshakes, 1)

    @defer.inlineCallbacks
    def test_only_unknown_groups(self) -> Any:
        """A long list of unknown groups and nothing else: handshake_failure
        at once, not a HelloRetryRequest."""

        def talk(port: int) -> bytes:
            conn = self.client(
                supported_groups=list(range(0x6000, 0x6000 + 4000)), key_share=[]
            )
            conn.start()
            with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as sock:
                sock.sendall(conn.data_to_send())
                return read_until_closed(sock)

        received = yield self.in_thread(talk)
        self.assertEqual(received, plaintext_alert(AlertDescription.handshake_failure))
        yield self.server_lost()
        reason = self.reason
        self.assertEqual(reason.value.alert, AlertDescription.handshake_failure)

    @defer.inlineCallbacks
    def test_early_data_with_tls12_only(self) -> Any:
        """early_data offered in a TLS 1.2-only hello: TLS 1.2, data flows."""
        self.greeting = b"twelve"

        def talk(port: int) -> tuple[HandshakeCompleted, bytes]:
            conn = self.client(self.tls12_client_context, early_data=True)
            with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as sock:
                driver = Driver(conn, sock)
                done = driver.handshake()
                data = driver.receive_exactly(len(self.greeting))
                driver.close(wait_for_peer=True)
                return done, data

        done, data = yield self.in_thread(talk)
        self.assertEqual(done.version, ProtocolVersion.TLS_1_2)
        self.assertEqual(data, self.greeting)
        yield self.server_lost()
        reason = self.reason
        self.assertTrue(reason.check(error.ConnectionDone), reason)

    # -- floods (issue 9, items 2 and 3) ------------------------------------------

    @defer.inlineCallbacks
    def test_change_cipher_spec_flood(self) -> Any:
        """33 compatibility CCS records after the ClientHello: the server's
        unexpected_message alert, read under its keys by the client."""

        def talk(port: int) -> TLSError:
            conn = self.client()
            conn.start()
            with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as sock:
                sock.sendall(conn.data_to_send() + CCS_RECORD * 33)
                driver = Driver(conn, sock)
                try:
                    driver.wait_for(lambda: False, "the server's answer")
                except TLSError as exc:
                    return exc
            raise AssertionError("the flood was accepted")

        exc = yield self.in_thread(talk)
        self.assertIsInstance(exc, RemoteAlertError)
        self.assertEqual(exc.alert, AlertDescription.unexpected_message)
        yield self.server_lost()
        reason = self.reason
        self.assertEqual(reason.value.alert, AlertDescription.unexpected_message)
        self.assertEqual(self.apps[0].handshakes, 0)

    @defer.inlineCallbacks
    def test_change_cipher_spec_within_the_bound(self) -> Any:
        """32 in a row are dropped and the handshake goes on: 31 sent here,
        and the client's own before its encrypted flight (RFC 8446 §D.4)."""

        def talk(port: int) -> None:
            conn = self.client()
            conn.start()
            with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as sock:
                sock.sendall(conn.data_to_send() + CCS_RECORD * 31)
                driver = Driver(conn, sock)
                driver.handshake()
                driver.send_all(b"fine")
                driver.close(wait_for_peer=True)

        yield self.in_thread(talk)
        yield self.server_lost()
        reason = self.reason
        self.assertTrue(reason.check(error.ConnectionDone), reason)
        self.assertEqual(bytes(self.apps[0].data), b"fine")

    @defer.inlineCallbacks
    def test_key_update_flood(self) -> Any:
        """32 KeyUpdates in a row are answered; data starts a new run; the
        33rd in a row is an unexpected_message."""

        def talk(port: int) -> tuple[list[Event], TLSError]:
            conn = self.client()
            with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as sock:
                driver = Driver(conn, sock)
                driver.handshake()
                for _ in range(32):
                    conn.key_update(request_peer=False)
                driver.send_all(b"data")
                for _ in range(33):
                    conn.key_update(request_peer=False)
                try:
                    driver.wait_for(lambda: False, "the server's answer")
                except TLSError as exc:
                    return driver.events, exc
            raise AssertionError("the flood was accepted")

        _, exc = yield self.in_thread(talk)
        self.assertIsInstance(exc, RemoteAlertError)
        self.assertEqual(exc.alert, AlertDescription.unexpected_message)
        yield self.server_lost()
        reason = self.reason
        self.assertEqual(reason.value.alert, AlertDescription.unexpected_message)
        self.assertEqual(bytes(self.apps[0].data), b"data")

    # -- after the server's NewSessionTickets (issue 9, item 13) ------------------

    @defer.inlineCallbacks
    def test_tickets_before_data_written_at_handshake(self) -> Any:
        """The application writes in handshakeCompleted, the reactor turn in
        which the handshake completes: on the wire both tickets come first,
        then the data (RFC 8446 §4.6.1 puts no data before them; clients
        that read a reply and close must still get their tickets)."""
        self.greeting = b"first application record"

        def talk(port: int) -> list[Event]:
            conn = self.client()
            with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as sock:
                driver = Driver(conn, sock)
                driver.handshake()
                driver.receive_exactly(len(self.greeting))
                driver.close(wait_for_peer=True)
                return driver.events

        events = yield self.in_thread(talk)
        kinds = [
            type(e).__name__
            for e in events
            if isinstance(e, (HandshakeCompleted, SessionTicket, ApplicationData))
        ]
        self.assertEqual(
            kinds,
            [
                "HandshakeCompleted",
                "SessionTicket",
                "SessionTicket",
                "ApplicationData",
            ],
        )
        yield self.server_lost()
        reason = self.reason
        self.assertTrue(reason.check(error.ConnectionDone), reason)

    def finish_then(
        self, after_finished: Callable[[socket.socket, Driver], None]
    ) -> Callable[[int], list[Event]]:
        """A client that completes its handshake, sends its Finished and
        nothing else, then does ``after_finished``."""

        def talk(port: int) -> list[Event]:
            conn = self.client()
            sock = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
            try:
                driver = Driver(conn, sock)
                driver.handshake()  # returns once our Finished is sent
                after_finished(sock, driver)
                return driver.events
            finally:
                sock.close()

        return talk

    @defer.inlineCallbacks
    def test_close_notify_with_finished(self) -> Any:
        """Finished and close_notify in one go, before the tickets: the
        server completes, sends its tickets (and data), answers the close;
        the client reads the tickets after its close_notify and ends clean."""
        self.greeting = b"too late to read"

        def close(sock: socket.socket, driver: Driver) -> None:
            driver.conn.close()
            driver.run_until(
                lambda: driver.close_notify_received, "the server's close_notify"
            )

        events = yield self.in_thread(self.finish_then(close))
        self.assertEqual(sum(isinstance(e, SessionTicket) for e in events), 2)
        yield self.server_lost()
        reason = self.reason
        self.assertTrue(reason.check(error.ConnectionDone), reason)
        self.assertEqual(self.apps[0].handshakes, 1)

    @defer.inlineCallbacks
    def test_end_of_stream_after_finished(self) -> Any:
        """Finished, then a TCP FIN without close_notify: the handshake
        completed, the end is a truncation."""

        def shut(sock: socket.socket, driver: Driver) -> None:
            sock.shutdown(socket.SHUT_WR)
            read_until_closed(sock)

        yield self.in_thread(self.finish_then(shut))
        yield self.server_lost()
        reason = self.reason
        self.assertTrue(reason.check(TLSTruncationError), reason)
        self.assertEqual(self.apps[0].handshakes, 1)

    @defer.inlineCallbacks
    def test_reset_after_tickets(self) -> Any:
        """The client reads the tickets, then resets the connection (closes
        with SO_LINGER 0): the server reports a lost connection, not a
        clean close, and nothing escapes."""

        def reset(sock: socket.socket, driver: Driver) -> None:
            driver.wait_for(
                lambda: sum(isinstance(e, SessionTicket) for e in driver.events) == 2,
                "the tickets",
            )
            sock.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
            )

        events = yield self.in_thread(self.finish_then(reset))
        self.assertEqual(sum(isinstance(e, SessionTicket) for e in events), 2)
        yield self.server_lost()
        reason = self.reason
        self.assertTrue(reason.check(error.ConnectionLost), reason)
        self.assertFalse(reason.check(error.ConnectionDone), reason)
        self.assertEqual(self.apps[0].handshakes, 1)

    @defer.inlineCallbacks
    def test_reset_before_tickets(self) -> Any:
        """The client resets right after its Finished, before the tickets
        can reach it: the server still completes its handshake (its
        application hears handshakeCompleted), then the lost connection."""

        def reset(sock: socket.socket, driver: Driver) -> None:
            sock.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
            )

        yield self.in_thread(self.finish_then(reset))
        yield self.server_lost()
        reason = self.reason
        self.assertFalse(reason.check(error.ConnectionDone), reason)
        self.assertEqual(self.apps[0].handshakes, 1)

    @defer.inlineCallbacks
    def test_openssl_client_closes_at_once(self) -> Any:
        """``openssl s_client`` with nothing to say: it handshakes, sends
        close_notify and exits while our tickets are on their way; the
        server sees a completed handshake and a clean close."""

        def talk(port: int) -> int:
            client = peers.OpenSSLClient(
                port, servername="example.com", verify_return_error=False
            )
            try:
                client.start()
                client.close_stdin()
                return client.wait()
            finally:
                client.stop()

        code = yield self.in_thread(talk)
        self.assertEqual(code, 0)
        yield self.server_lost()
        reason = self.reason
        self.assertTrue(reason.check(error.ConnectionDone), reason)
        self.assertEqual(self.apps[0].handshakes, 1)


class RecordingTLSProtocol(TLSProtocol):
    """Keeps the bytes received before the handshake completed."""

    def dataReceived(self, data: bytes) -> None:
        if not self._conn.handshake_complete:
            self.factory.hello_bytes += data  # type: ignore[union-attr]
        super().dataReceived(data)


def first_message_length(wire: bytes) -> int:
    """The declared length of the first handshake message in ``wire``."""
    payload = bytearray()
    while len(wire) >= 5 and len(payload) < 4:
        length = int.from_bytes(wire[3:5], "big")
        payload += wire[5 : 5 + length]
        wire = wire[5 + length :]
    return int.from_bytes(payload[1:4], "big")


#: 60 protocol names, 1.9 KB of ALPN: far more than any real client offers.
BIG_ALPN = ["h2", "http/1.1", "acme-tls/1", "imap", "pop3", "xmpp-client"] + [
    f"protocol-{i:02d}-{'x' * 20}" for i in range(54)
]


class RealClientHelloTests(TestCase):
    """Real clients' ClientHellos, inflated as far as their options allow
    (every group, a huge ALPN list), are far below the server's 32 KiB
    bound: under the 16 KiB it budgets for a hello without a ticket."""

    timeout = 60

    def setUp(self) -> None:
        pki = CertificateFactory(self.mktemp())
        leaf = pki.server("example.com", ip_addresses=["127.0.0.1"])
        self.apps: list[ServerApp] = []

        def build() -> ServerApp:
            app = ServerApp()
            self.apps.append(app)
            return app

        factory = TLSFactory(
            Factory.forProtocol(build),
            Context(credentials=[leaf.credential()], alpn_protocols=[b"http/1.1"]),
            False,
        )
        factory.protocol = RecordingTLSProtocol  # type: ignore[assignment]
        factory.hello_bytes = bytearray()  # type: ignore[attr-defined]
        self.factory = factory
        port = reactor.listenTCP(0, factory, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        self.port = port.getHost().port

    @defer.inlineCallbacks
    def check(self, talk: Callable[[], Any]) -> Any:
        yield bounded(deferToThread(talk), "the client")
        self.assertEqual(len(self.apps), 1)
        yield bounded(self.apps[0].lost, "the server's connectionLost")
        self.assertEqual(self.apps[0].handshakes, 1)
        length = first_message_length(bytes(self.factory.hello_bytes))  # type: ignore[attr-defined]
        self.assertGreater(length, 200)
        self.assertLess(length, 2**14)
        return length

    def run_tool(self, command: list[str]) -> None:
        """Run a command-line client with its stdin closed: it handshakes,
        then ends the connection."""
        tool = shutil.which(command[0])
        self.assertIsNotNone(tool, f"{command[0]} is needed (.ci/run installs it)")
        subprocess.run(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=WAIT,
            check=False,
        )

    def test_openssl(self) -> Any:
        groups = "X25519:P-256:P-384:P-521:X448:ffdhe2048:ffdhe3072:ffdhe4096:ffdhe8192"
        return self.check(
            lambda: self.run_tool(
                [
                    "openssl",
                    "s_client",
                    "-connect",
                    f"127.0.0.1:{self.port}",
                    "-servername",
                    "example.com",
                    "-groups",
                    groups,
                    "-alpn",
                    ",".join(BIG_ALPN),
                    "-cipher",
                    "ALL",
                ]
            )
        )

    def test_gnutls(self) -> Any:
        return self.check(
            lambda: self.run_tool(
                [
                    "gnutls-cli",
                    "--insecure",
                    "--priority",
                    "NORMAL:+GROUP-ALL:+SIGN-ALL:+CIPHER-ALL",
                    # GnuTLS 3.7 sends no ALPN at all past 8 names.
                    *[f"--alpn={name}" for name in BIG_ALPN[:8]],
                    "-p",
                    str(self.port),
                    "127.0.0.1",
                ]
            )
        )

    def test_curl(self) -> Any:
        return self.check(
            lambda: self.run_tool(
                [
                    "curl",
                    "-k",
                    "--http2",
                    "--max-time",
                    "10",
                    f"https://127.0.0.1:{self.port}/",
                ]
            )
        )

    def test_python_ssl(self) -> Any:
        def talk() -> None:
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            context.set_alpn_protocols(BIG_ALPN)
            with (
                socket.create_connection(("127.0.0.1", self.port), timeout=WAIT) as raw,
                context.wrap_socket(raw, server_hostname="example.com") as tls,
            ):
                tls.unwrap()

        return self.check(talk)
