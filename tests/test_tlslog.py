"""The connection log (:mod:`twisted_sslfile.tlslog`) of any wrapped factory.

In memory, both ends are :class:`TLSFactory` protocols over
:class:`tests.test_protocol.SimNetwork` (a model of TCP with FIN, resets
and aborts) on one ``task.Clock``, so durations are exact.  Each end logs
to a ``Logger`` whose observer keeps the events.  Over loopback,
``openssl s_client`` connects to a ``TLSFactory`` with the log on and the
event must report what s_client itself reports.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from twisted.internet import defer, reactor
from twisted.internet.error import ConnectionDone
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import Clock
from twisted.internet.threads import deferToThread
from twisted.logger import (
    Logger,
    LogLevel,
    capturedLogs,
    eventAsJSON,
    eventFromJSON,
    formatEvent,
)
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase, TestCase

from tests.certs import CertificateFactory
from tests.peers import OpenSSLClient
from tests.test_protocol import Echo, Recorder, SimNetwork, pki
from twisted_sslfile.constants import CipherSuite, ProtocolVersion
from twisted_sslfile.context import Context
from twisted_sslfile.endpoints import (
    EndpointDescriptionError,
    client_from_string,
    server_from_string,
)
from twisted_sslfile.engine.events import HandshakeCompleted
from twisted_sslfile.protocol import DEFAULT_CLOSE_TIMEOUT, TLSFactory, start_tls
from twisted_sslfile.tlslog import FIELDS, LOG_NAMESPACE, ConnectionLog, resolve_logger

ROOT = Path(__file__).resolve().parent.parent
#: Seconds the connections of these tests stay open (on the Clock).
LIFETIME = 7.25


def fields(event: dict[str, Any]) -> dict[str, Any]:
    """The event without twisted.logger's own ``log_*`` keys."""
    return {k: v for k, v in event.items() if not k.startswith("log_")}


class _Events:
    """A Logger whose events are kept in a list."""

    def __init__(self, namespace: str = "test-tlslog") -> None:
        self.events: list[dict[str, Any]] = []
        self.logger = Logger(namespace=namespace, observer=self.events.append)

    def one(self, case: SynchronousTestCase) -> dict[str, Any]:
        case.assertEqual(len(self.events), 1, self.events)
        return self.events[0]


class _Pair:
    """A client and a server TLSFactory connected over a SimNetwork."""

    def __init__(
        self,
        clock: Clock,
        *,
        client_app: Protocol | None = None,
        server_app: Protocol | None = None,
        client_context: Context | None = None,
        server_context: Context | None = None,
        session: Any = None,
        flush: bool = True,
    ) -> None:
        keys = pki()
        self.client_log = _Events("test-client")
        self.server_log = _Events("test-server")
        self.client_app = client_app or Recorder()
        self.server_app = server_app or Echo()
        client_factory = TLSFactory(
            Factory.forProtocol(lambda: self.client_app),
            client_context or keys["client"],
            True,
            "example.com",
            clock=clock,
            session=session,
            connection_log=self.client_log.logger,
        )
        server_factory = TLSFactory(
            Factory.forProtocol(lambda: self.server_app),
            server_context or keys["server"],
            False,
            clock=clock,
            connection_log=self.server_log.logger,
        )
        self.client = client_factory.buildProtocol(None)
        self.server = server_factory.buildProtocol(None)
        self.network = SimNetwork(clock)
        self.network.connect(self.client, self.server)
        if flush:
            self.network.flush()


class ConnectionLogTests(SynchronousTestCase):
    """One event per connection, in both roles, for every way one ends."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.keys = pki()

    def round_trip(self, pair: _Pair, message: bytes = b"hello, log") -> None:
        pair.client.write(message)
        pair.network.flush()
        self.assertEqual(bytes(pair.client_app.data), message)

    def test_clean_close_every_field(self) -> None:
        """
        Handshake, data both ways, the client closes after LIFETIME seconds:
        each side logs one info event with every field, the server's saying
        the peer closed first and the client's that it did.
        """
        pair = _Pair(self.clock)
        self.round_trip(pair)
        self.clock.advance(LIFETIME)
        pair.client.loseConnection()
        pair.network.flush()
        result = pair.client.handshakeResult
        assert result is not None
        suite, group = result.cipher_suite.name, result.group.name  # type: ignore[union-attr]
        self.assertEqual(pair.server.handshakeResult.cipher_suite, result.cipher_suite)  # type: ignore[union-attr]

        server = pair.server_log.one(self)
        self.assertEqual(server["log_level"], LogLevel.info)
        self.assertEqual(server["log_namespace"], "test-server")
        self.assertEqual(
            fields(server),
            {
                "peer": "127.0.0.1:1",
                "role": "server",
                "handshake": "completed",
                "server_name": "example.com",
                "version": "TLSv1.3",
                "cipher_suite": suite,
                "group": group,
                "alpn": None,
                "npn": None,
                "resumed": False,
                "peer_subject": None,
                "peer_verified": False,
                "bytes_in": 10,
                "bytes_out": 10,
                "duration": LIFETIME,
                "end": "clean",
                "closed_by": "peer",
                "alert": None,
                "alert_direction": None,
                "error": None,
                "summary": (
                    f"127.0.0.1:1 sni=example.com TLSv1.3 {suite} group={group} "
                    f"alpn=- npn=- resumed=no in=10 out=10 time=7.250s "
                    f"end: peer closed with close_notify"
                ),
            },
        )
        self.assertEqual(formatEvent(server), server["summary"])
        self.assertEqual(set(fields(server)), set(FIELDS))

        client = pair.client_log.one(self)
        self.assertEqual(client["log_level"], LogLevel.info)
        leaf = self.keys["leaf"].certificate.subject.rfc4514_string()
        self.assertEqual(
            fields(client),
            {
                **fields(server),
                "peer": "127.0.0.1:2",
                "role": "client",
                "peer_subject": leaf,
                "peer_verified": True,
                "closed_by": "local",
                "summary": (
                    f"to 127.0.0.1:2 sni=example.com TLSv1.3 {suite} group={group} "
                    f'alpn=- npn=- resumed=no subject="{leaf}" in=10 out=10 '
                    f"time=7.250s end: closed locally with close_notify"
                ),
            },
        )

    def test_json_round_trip(self) -> None:
        """
        What jsonFileLogObserver writes keeps every field, with JSON types
        (null, booleans, numbers), and formats back to the same text.
        """
        pair = _Pair(self.clock)
        self.round_trip(pair)
        pair.client.loseConnection()
        pair.network.flush()
        event = pair.server_log.one(self)
        again = eventFromJSON(eventAsJSON(event))
        self.assertEqual({k: again[k] for k in FIELDS}, {k: event[k] for k in FIELDS})
        self.assertEqual(formatEvent(again), event["summary"])

    def test_bytes_are_application_bytes(self) -> None:
        """
        bytes_in and bytes_out count application data, not records: a
        write of 40000 bytes (three records) and its echo count 40000 each
        way; data written before the handshake counts once it is sent.
        """
        pair = _Pair(self.clock, flush=False)
        pair.client.write(b"x" * 40000)
        pair.network.flush()
        pair.client.loseConnection()
        pair.network.flush()
        server = pair.server_log.one(self)
        self.assertEqual((server["bytes_in"], server["bytes_out"]), (40000, 40000))
        client = pair.client_log.one(self)
        self.assertEqual((client["bytes_in"], client["bytes_out"]), (40000, 40000))

    def test_alpn(self) -> None:
        """The ALPN protocol agreed is the alpn field, on both sides."""
        pair = _Pair(
            self.clock,
            client_context=self.keys["client"].replace(alpn_protocols=[b"echo"]),
            server_context=self.keys["server"].replace(alpn_protocols=[b"h2", b"echo"]),
        )
        pair.client.loseConnection()
        pair.network.flush()
        for log in (pair.client_log, pair.server_log):
            event = log.one(self)
            self.assertEqual((event["alpn"], event["npn"]), ("echo", None))
            self.assertIn(" alpn=echo npn=- ", event["summary"])

    def test_tls12_npn(self) -> None:
        """TLS 1.2 with NPN: version and npn fields."""
        pair = _Pair(
            self.clock,
            client_context=self.keys["client"].replace(
                max_version=ProtocolVersion.TLS_1_2, npn_protocols=[b"echo"]
            ),
            server_context=self.keys["server"].replace(npn_protocols=[b"h2", b"echo"]),
        )
        pair.client.loseConnection()
        pair.network.flush()
        event = pair.server_log.one(self)
        self.assertEqual(
            (event["version"], event["alpn"], event["npn"]), ("TLSv1.2", None, "echo")
        )
        self.assertRegex(event["cipher_suite"], r"^TLS_ECDHE_ECDSA_WITH_")
        self.assertIn(" TLSv1.2 ", event["summary"])

    def test_resumed(self) -> None:
        """
        A second connection offering the first one's ticket is logged
        resumed=True on both sides; the first was not.
        """
        first = _Pair(self.clock)
        self.round_trip(first)
        session = first.client.session
        self.assertIsNotNone(session)
        first.client.loseConnection()
        first.network.flush()
        second = _Pair(self.clock, session=session)
        second.client.loseConnection()
        second.network.flush()
        self.assertFalse(first.server_log.one(self)["resumed"])
        for log in (second.client_log, second.server_log):
            event = log.one(self)
            self.assertIs(event["resumed"], True)
            self.assertIn(" resumed=yes ", event["summary"])

    def test_client_certificate_subject(self) -> None:
        """
        The server's event names the subject of the client certificate,
        verified; without one (clientCertificate=request) it is None.
        """
        factory = CertificateFactory()
        me = factory.client("a client")
        server_context = self.keys["server"].replace(
            client_certificate="request", trust_roots=factory.trust_roots
        )
        pair = _Pair(
            self.clock,
            server_context=server_context,
            client_context=self.keys["client"].replace(credentials=[me.credential()]),
        )
        pair.client.loseConnection()
        pair.network.flush()
        event = pair.server_log.one(self)
        subject = me.certificate.subject.rfc4514_string()
        self.assertEqual(subject, "CN=a client,O=twisted_sslfile tests")
        self.assertEqual(
            (event["peer_subject"], event["peer_verified"]), (subject, True)
        )
        self.assertIn(f' subject="{subject}" ', event["summary"])

        anonymous = _Pair(self.clock, server_context=server_context)
        anonymous.client.loseConnection()
        anonymous.network.flush()
        event = anonymous.server_log.one(self)
        self.assertIsNone(event["peer_subject"])
        self.assertNotIn("subject=", event["summary"])

    def test_truncated(self) -> None:
        """
        The client's TCP connection closes without close_notify: the
        server logs a truncation by the peer, at info level.
        """
        pair = _Pair(self.clock)
        self.round_trip(pair)
        pair.network.client.loseConnection()  # the socket, not TLS
        pair.network.flush()
        event = pair.server_log.one(self)
        self.assertEqual(event["log_level"], LogLevel.info)
        self.assertEqual(
            (event["end"], event["closed_by"], event["handshake"]),
            ("truncated", "peer", "completed"),
        )
        self.assertIn("close_notify", event["error"])
        self.assertTrue(
            event["summary"].endswith(
                "end: truncated: the peer closed without close_notify"
            ),
            event["summary"],
        )

    def test_aborted(self) -> None:
        """
        The server application aborts: its event says aborted locally; the
        client, reset, logs an error.
        """
        pair = _Pair(self.clock)
        self.round_trip(pair)
        self.clock.advance(1.5)
        pair.server.abortConnection()
        pair.network.flush()
        server = pair.server_log.one(self)
        self.assertEqual(server["log_level"], LogLevel.info)
        self.assertEqual(
            (server["end"], server["closed_by"], server["duration"]),
            ("aborted", "local", 1.5),
        )
        self.assertTrue(server["summary"].endswith("end: aborted locally"))
        client = pair.client_log.one(self)
        self.assertEqual((client["end"], client["closed_by"]), ("error", None))
        self.assertIn("ConnectionLost", client["error"])

    def test_close_timed_out(self) -> None:
        """
        A close that outlives close_timeout (the peer never answers, its
        bytes never arrive) is aborted: a timeout in the log, not a clean
        close and not an abort the application asked for.
        """
        pair = _Pair(self.clock)
        self.round_trip(pair)
        pair.server.loseConnection()
        # Nothing is delivered any more: the client neither reads the
        # close_notify nor answers it.
        self.clock.advance(DEFAULT_CLOSE_TIMEOUT + 0.5)
        pair.network.flush()  # the abort reaches both ends
        server = pair.server_log.one(self)
        self.assertEqual(server["log_level"], LogLevel.info)
        self.assertEqual((server["end"], server["closed_by"]), ("timeout", "local"))
        self.assertTrue(
            server["summary"].endswith(
                "end: close timed out (peer not reading), connection aborted"
            ),
            server["summary"],
        )

    def test_handshake_failure_client_sends_alert(self) -> None:
        """
        A client that does not trust the server: the client logs, at warn,
        the alert it sent and why; the server the alert it received.
        """
        pair = _Pair(self.clock, client_context=self.keys["wrong_client"])
        self.clock.advance(3)  # past the drain after the alert
        pair.network.flush()
        reason = pair.client_app.lost
        assert reason is not None
        alert = reason.value.alert.name
        client = pair.client_log.one(self)
        self.assertEqual(client["log_level"], LogLevel.warn)
        self.assertEqual(
            {k: client[k] for k in ("handshake", "end", "closed_by", "alert")},
            {
                "handshake": "failed",
                "end": "alert",
                "closed_by": "local",
                "alert": alert,
            },
        )
        self.assertEqual(client["alert_direction"], "sent")
        self.assertEqual(client["error"], reason.value.message)
        for name in ("version", "cipher_suite", "group", "peer_subject"):
            self.assertIsNone(client[name], name)
        self.assertEqual(
            client["summary"],
            f"to 127.0.0.1:2 handshake failed; sni=example.com in=0 out=0 "
            f"time={client['duration']:.3f}s end: sent fatal alert {alert}: "
            f"{reason.value.message}",
        )

        server = pair.server_log.one(self)
        self.assertEqual(server["log_level"], LogLevel.warn)
        self.assertEqual(
            (server["end"], server["alert"], server["alert_direction"]),
            ("alert", alert, "received"),
        )
        self.assertEqual(server["closed_by"], "peer")
        self.assertEqual(server["server_name"], "example.com")
        self.assertTrue(
            server["summary"].startswith(
                "127.0.0.1:1 handshake failed; sni=example.com in=0 out=0 "
            )
        )
        self.assertTrue(
            server["summary"].endswith(f"end: peer sent fatal alert {alert}")
        )

    def test_handshake_failure_server_sends_alert(self) -> None:
        """
        A server requiring a client certificate that does not come: the
        server logs the alert it sent, the client the one it received.
        """
        server_context = self.keys["server"].replace(
            client_certificate="require", trust_roots=CertificateFactory().trust_roots
        )
        pair = _Pair(self.clock, server_context=server_context)
        self.clock.advance(3)
        pair.network.flush()
        reason = pair.server_app.lost
        assert reason is not None
        alert = reason.value.alert.name
        server = pair.server_log.one(self)
        self.assertEqual(server["log_level"], LogLevel.warn)
        self.assertEqual(
            (
                server["end"],
                server["alert"],
                server["alert_direction"],
                server["error"],
            ),
            ("alert", alert, "sent", reason.value.message),
        )
        client = pair.client_log.one(self)
        self.assertEqual(client["log_level"], LogLevel.warn)
        self.assertEqual(
            (client["end"], client["alert"], client["alert_direction"]),
            ("alert", alert, "received"),
        )

    def test_alert_after_handshake_is_a_warning(self) -> None:
        """
        A fatal alert after the handshake (a record that fails to
        authenticate) is logged at warn, with the handshake completed.
        """
        pair = _Pair(self.clock)
        self.round_trip(pair)
        # A TLS 1.3 application_data record full of junk.
        pair.server.dataReceived(b"\x17\x03\x03\x00\x20" + b"\x00" * 32)
        self.clock.advance(3)
        pair.network.flush()
        event = pair.server_log.one(self)
        self.assertEqual(event["log_level"], LogLevel.warn)
        self.assertEqual(
            (event["handshake"], event["alert"], event["alert_direction"]),
            ("completed", "bad_record_mac", "sent"),
        )

    def test_handshake_timeout(self) -> None:
        """
        A peer that never speaks: after handshake_timeout the server logs a
        timeout at warn, with the duration from the clock.
        """
        log = _Events()
        factory = TLSFactory(
            Factory.forProtocol(Recorder),
            self.keys["server"],
            False,
            clock=self.clock,
            handshake_timeout=5,
            connection_log=log.logger,
        )
        server = factory.buildProtocol(None)
        network = SimNetwork(self.clock)
        network.connect(Protocol(), server)
        network.advance(5)
        event = log.one(self)
        self.assertEqual(event["log_level"], LogLevel.warn)
        self.assertEqual(
            (event["handshake"], event["end"], event["closed_by"], event["duration"]),
            ("failed", "timeout", "local", 5.0),
        )
        self.assertIn("no TLS handshake within 5 s", event["error"])

    def test_probe_is_a_failed_handshake(self) -> None:
        """
        A peer that connects and closes without a word (a port scanner, a
        TCP health check) is a handshake failure, truncated by the peer.
        """
        log = _Events()
        factory = TLSFactory(
            Factory.forProtocol(Recorder),
            self.keys["server"],
            False,
            clock=self.clock,
            connection_log=log.logger,
        )
        network = SimNetwork(self.clock)
        network.connect(Protocol(), factory.buildProtocol(None))
        network.client.loseConnection()
        network.flush()
        event = log.one(self)
        self.assertEqual(event["log_level"], LogLevel.warn)
        self.assertEqual((event["end"], event["closed_by"]), ("truncated", "peer"))
        self.assertTrue(
            event["summary"].endswith("truncated: the peer closed during the handshake")
        )

    def test_local_close_before_handshake_is_info(self) -> None:
        """
        Our own application closing before the handshake is not a failure
        worth a warning: info, clean, closed locally.
        """
        app = Recorder()
        app.on_made = lambda protocol: protocol.transport.loseConnection()
        pair = _Pair(self.clock, client_app=app)
        event = pair.client_log.one(self)
        self.assertEqual(event["log_level"], LogLevel.info)
        self.assertEqual(
            (event["handshake"], event["end"], event["closed_by"]),
            ("failed", "clean", "local"),
        )
        self.assertTrue(
            event["summary"].endswith("closed locally before the handshake completed")
        )

    def test_peer_values_stay_out_of_the_format(self) -> None:
        """
        SNI and certificate subjects come from the peer; braces in them are
        fields' text, never format syntax.
        """
        factory = CertificateFactory()
        me = factory.client("{log_namespace} {0}")
        server_context = self.keys["server"].replace(
            client_certificate="require", trust_roots=factory.trust_roots
        )
        pair = _Pair(
            self.clock,
            server_context=server_context,
            client_context=self.keys["client"].replace(credentials=[me.credential()]),
        )
        pair.client.loseConnection()
        pair.network.flush()
        event = pair.server_log.one(self)
        self.assertEqual(event["log_format"], "{summary}")
        self.assertIn("CN={log_namespace} {0}", formatEvent(event))

    def test_no_secrets(self) -> None:
        """
        Nothing of the connection's key material reaches the event: no
        exported secret and no session ticket bytes appear in any value.
        """
        pair = _Pair(self.clock)
        self.round_trip(pair)
        exported = pair.server.exportKeyingMaterial(b"EXPERIMENTAL test", b"", 32)
        pair.client.loseConnection()
        pair.network.flush()
        text = repr(pair.server_log.one(self)) + repr(pair.client_log.one(self))
        for secret in (exported, exported.hex(), exported[:8].hex()):
            self.assertNotIn(str(secret), text)
        self.assertNotIn("ticket", text.lower())

    def test_log_trouble_never_costs_the_connection(self) -> None:
        """
        A failure while describing the connection is logged as a failure,
        and the application still gets its connectionLost.
        """
        from twisted_sslfile import tlslog

        def broken(*args: object, **kwargs: object) -> dict[str, Any]:
            raise RuntimeError("broken classifier")

        self.patch(tlslog, "_classify", broken)
        pair = _Pair(self.clock)
        pair.client.loseConnection()
        pair.network.flush()
        self.assertEqual(pair.server_app.lost_count, 1)
        event = pair.server_log.one(self)
        self.assertEqual(event["log_level"], LogLevel.critical)
        self.assertIn("cannot describe 127.0.0.1:1", formatEvent(event))
        self.assertTrue(event["log_failure"].check(RuntimeError))

    def test_unparseable_peer_certificate(self) -> None:
        """
        A peer certificate that cannot be parsed (accepted unverified)
        names itself as such rather than failing the event.
        """
        log = _Events()
        record = ConnectionLog(log.logger)
        result = HandshakeCompleted(
            version=ProtocolVersion.TLS_1_3,
            cipher_suite=CipherSuite.TLS_AES_128_GCM_SHA256,
            group=None,
            alpn_protocol=None,
            next_protocol=None,
            server_name=None,
            peer_certificates=(b"not DER",),
        )
        record.connection_lost(
            reason=Failure(ConnectionDone()),
            result=result,
            is_client=False,
            server_name=None,
            now=0.0,
        )
        event = log.one(self)
        self.assertEqual(event["peer_subject"], "(unparseable certificate)")
        self.assertEqual(event["group"], None)
        self.assertIn(" group=- ", event["summary"])

    def test_start_tls(self) -> None:
        """start_tls(connection_log=...) logs the upgraded connection."""
        log = _Events()
        network = SimNetwork(self.clock)
        client_app, server_app = Recorder(), Echo()
        network.connect(client_app, server_app)
        client = start_tls(
            client_app,
            self.keys["client"],
            True,
            "example.com",
            clock=self.clock,
            connection_log=log.logger,
        )
        start_tls(server_app, self.keys["server"], False, clock=self.clock)
        network.flush()
        client.loseConnection()
        network.flush()
        event = log.one(self)
        self.assertEqual((event["role"], event["end"]), ("client", "clean"))


class SwitchTests(SynchronousTestCase):
    """The log is off unless asked for, and then costs nothing."""

    def test_off_by_default(self) -> None:
        """
        Without connection_log no event is emitted, to any observer, and
        protocols carry no log.
        """
        clock = Clock()
        keys = pki()
        with capturedLogs() as events:
            factory = TLSFactory(Factory.forProtocol(Echo), keys["server"], False)
            self.assertIsNone(factory.connection_log)
            client = TLSFactory(
                Factory.forProtocol(Recorder),
                keys["client"],
                True,
                "example.com",
                clock=clock,
            ).buildProtocol(None)
            server = TLSFactory(
                Factory.forProtocol(Echo), keys["server"], False, clock=clock
            ).buildProtocol(None)
            network = SimNetwork(clock)
            network.connect(client, server)
            network.flush()
            client.loseConnection()
            network.flush()
        self.assertIsNone(server._log)
        self.assertEqual([e for e in events if "summary" in e or "handshake" in e], [])

    def test_not_imported_when_off(self) -> None:
        """
        Using TLSFactory without the log does not even import tlslog.
        """
        script = (
            "import sys\n"
            "from twisted.internet.protocol import Factory, Protocol\n"
            "from twisted_sslfile.context import Context\n"
            "from twisted_sslfile.protocol import TLSFactory\n"
            "f = TLSFactory(Factory.forProtocol(Protocol), Context(), False)\n"
            "f.buildProtocol(None)\n"
            "print('twisted_sslfile.tlslog' in sys.modules)\n"
        )
        out = subprocess.run(
            [sys.executable, "-c", script],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        self.assertEqual(out.stdout.strip(), "False", out.stderr)

    def test_true_logs_to_the_module_logger(self) -> None:
        """connection_log=True emits in the documented namespace."""
        clock = Clock()
        keys = pki()
        with capturedLogs() as events:
            client = TLSFactory(
                Factory.forProtocol(Recorder),
                keys["client"],
                True,
                "example.com",
                clock=clock,
            ).buildProtocol(None)
            server = TLSFactory(
                Factory.forProtocol(Echo),
                keys["server"],
                False,
                clock=clock,
                connection_log=True,
            ).buildProtocol(None)
            network = SimNetwork(clock)
            network.connect(client, server)
            network.flush()
            client.loseConnection()
            network.flush()
        logged = [e for e in events if e.get("log_namespace") == LOG_NAMESPACE]
        self.assertEqual(len(logged), 1, events)
        self.assertEqual(logged[0]["role"], "server")

    def test_fields_documented(self) -> None:
        """docs/twisted.rst has a row for every field of the event."""
        text = (ROOT / "docs" / "twisted.rst").read_text(encoding="utf-8")
        section = text[text.index("Connection log\n---") :]
        for name in FIELDS:
            self.assertIn(f"``{name}``", section, name)

    def test_bad_value(self) -> None:
        with self.assertRaises(TypeError) as caught:
            TLSFactory(
                Factory.forProtocol(Echo), pki()["server"], False, connection_log="yes"
            )  # type: ignore[arg-type]
        self.assertIn("connection_log", str(caught.exception))
        self.assertIsNone(resolve_logger(False))
        self.assertIsNone(resolve_logger(None))


class EndpointOptionTests(SynchronousTestCase):
    """``connectionLog=`` in ``sslfile:`` descriptions."""

    def setUp(self) -> None:
        self.pki = CertificateFactory(self.mktemp())
        leaf = self.pki.server("localhost")
        self.cert = f"certKey={leaf.chain_path}:privateKey={leaf.key_path}"

    def test_server(self) -> None:
        """
        connectionLog=yes reaches the factories the endpoint makes; without
        it (or with no) they log nothing.
        """
        on = server_from_string(None, f"sslfile:tcp:0:{self.cert}:connectionLog=yes")
        self.assertIs(on.connection_log, True)
        factory = on.wrap_factory(Factory.forProtocol(Echo))
        self.assertIsInstance(factory.connection_log, Logger)
        self.assertEqual(factory.connection_log.namespace, LOG_NAMESPACE)
        for description in (
            f"sslfile:tcp:0:{self.cert}",
            f"sslfile:tcp:0:{self.cert}:connectionLog=no",
        ):
            off = server_from_string(None, description)
            self.assertIs(off.connection_log, False)
            self.assertIsNone(
                off.wrap_factory(Factory.forProtocol(Echo)).connection_log
            )

    def test_client(self) -> None:
        endpoint = client_from_string(
            None,
            f"sslfile:tcp:host=localhost:port=1:trustRoots={self.pki.ca_path}"
            ":connectionLog=on",
        )
        self.assertIs(endpoint.connection_log, True)
        factory = endpoint.wrap_factory(Factory.forProtocol(Recorder))
        self.assertIsInstance(factory.connection_log, Logger)

    def test_defaults(self) -> None:
        """A default (the echo server's) is overridden by the description."""
        endpoint = server_from_string(
            None,
            f"sslfile:tcp:0:{self.cert}:connectionLog=no",
            defaults={"connectionLog": "yes"},
        )
        self.assertIs(endpoint.connection_log, False)

    def test_bad_value(self) -> None:
        with self.assertRaises(EndpointDescriptionError) as caught:
            server_from_string(None, f"sslfile:tcp:0:{self.cert}:connectionLog=json")
        self.assertIn("connectionLog", str(caught.exception))
        self.assertEqual(caught.exception.option, "connectionLog")


class OpenSSLClientTests(TestCase):
    """``openssl s_client`` against a TLSFactory with the log on."""

    timeout = 60

    @defer.inlineCallbacks
    def test_logged_as_s_client_reports(self) -> Any:
        """
        The event's version, cipher suite, group, SNI and ALPN are what
        s_client says it negotiated and sent.
        """
        pki = CertificateFactory(self.mktemp())
        leaf = pki.server("localhost")
        log = _Events()
        done: defer.Deferred[None] = defer.Deferred()

        class Echoing(Protocol):
            def dataReceived(self, data: bytes) -> None:
                self.transport.write(data)

            def connectionLost(self, reason: Failure) -> None:
                done.callback(None)

        factory = TLSFactory(
            Factory.forProtocol(Echoing),
            Context(credentials=[leaf.credential()], alpn_protocols=[b"h2", b"echo"]),
            False,
            connection_log=log.logger,
        )
        port = reactor.listenTCP(0, factory, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        client = OpenSSLClient(
            port.getHost().port,
            ca_file=pki.ca_path,
            servername="localhost",
            alpn="echo",
            ciphersuites="TLS_CHACHA20_POLY1305_SHA256",
            groups="X25519",
        )
        self.addCleanup(client.stop)
        client.start()
        yield deferToThread(client.expect_connected)
        client.write(b"logged\n")
        yield deferToThread(client.expect_output, b"logged\n")
        client.close_stdin()
        yield deferToThread(client.wait)
        yield done

        event = log.one(self)
        self.assertEqual(event["log_level"], LogLevel.info, event)
        self.assertEqual(event["version"], client.summary("Protocol version"))
        self.assertEqual(event["cipher_suite"], client.summary("Ciphersuite"))
        self.assertEqual(event["cipher_suite"], "TLS_CHACHA20_POLY1305_SHA256")
        temp_key = client.summary("Server Temp Key") or ""
        self.assertEqual(temp_key.split(",")[0].lower(), event["group"].lower())
        # s_client's -trace: the SNI it sent, the ALPN protocol it received
        # in EncryptedExtensions.
        trace = client.trace
        hello = trace[trace.index("ClientHello") :]
        sni = re.search(
            r"extension_type=server_name\(0\).*\n.*?\s{2,}(\S+)$", hello, re.M
        )
        assert sni is not None, trace
        self.assertTrue(sni.group(1).endswith(event["server_name"]), sni.group(1))
        self.assertEqual(event["server_name"], "localhost")
        extensions = trace[trace.index("EncryptedExtensions") :]
        alpn = re.search(
            r"application_layer_protocol_negotiation\(16\), length=\d+\n\s+(\S+)",
            extensions,
        )
        assert alpn is not None, trace
        self.assertEqual(event["alpn"], alpn.group(1))
        self.assertEqual(event["alpn"], "echo")
        self.assertEqual((event["bytes_in"], event["bytes_out"]), (7, 7))
        self.assertEqual((event["end"], event["closed_by"]), ("clean", "peer"))
        self.assertEqual(event["peer"], f"127.0.0.1:{event['peer'].rpartition(':')[2]}")
