"""``transport.startTLS(contextFactory)`` through :mod:`twisted_sslfile.starttls`.

Two halves:

* Real programs over loopback TCP on the global reactor: ``twisted.mail``'s
  ESMTP server, configured to refuse mail before STARTTLS, receives a
  message from ``twisted.mail``'s ``ESMTPSender`` (which verifies the
  server's certificate through this library), from
  ``openssl s_client -starttls smtp`` and from ``curl --ssl-reqd``; and
  ``twisted.mail``'s IMAP4 client and server upgrade each other.  No
  protocol is subclassed for TLS: each is given an ``SSLFileContextFactory``
  where it takes a context factory, and its factory is wrapped in
  ``StartTLSFactory``.
* The rules of :class:`StartTLSTransport` over ``SimNetwork`` (the TCP model
  of ``tests/test_protocol.py``) on a ``task.Clock``: the interfaces before
  and after the upgrade, writes through a reference kept from before the
  upgrade, plaintext after the upgrade, producers, pausing, half-close.
"""

from __future__ import annotations

import io
import shutil
import warnings
from typing import Any

from twisted.internet import defer, error, protocol, reactor
from twisted.internet.interfaces import (
    IHalfCloseableProtocol,
    IHandshakeListener,
    INegotiated,
    ISSLTransport,
    ITCPTransport,
    ITLSTransport,
)
from twisted.internet.task import Clock
from twisted.mail import smtp
from twisted.protocols.basic import LineReceiver
from twisted.protocols.tls import TLSMemoryBIOFactory
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase, TestCase
from zope.interface import implementer
from zope.interface.verify import verifyObject

from tests.certs import CertificateFactory
from tests.peers import openssl_binary
from tests.test_protocol import PushProducer, SimNetwork, pki
from tests.test_protocol_web import PeerProcess, bounded
from twisted_sslfile.constants import ProtocolVersion
from twisted_sslfile.context import Context
from twisted_sslfile.errors import TLSError
from twisted_sslfile.protocol import TLSProtocol
from twisted_sslfile.starttls import (
    SSLFileContextFactory,
    StartTLSFactory,
    StartTLSTransport,
)

LOOPBACK = "127.0.0.1"
SENDER = "alice@example.org"
RECIPIENT = "bob@example.com"
BODY = b"Subject: over STARTTLS\r\n\r\nHello through twisted_sslfile.\r\n"


# -- an ESMTP server that wants TLS before mail ----------------------------


@implementer(smtp.IMessage)
class _Message:
    def __init__(self, mailbox: Mailbox, tls: TLSProtocol) -> None:
        self.mailbox = mailbox
        self.tls = tls
        self.lines: list[bytes] = []

    def lineReceived(self, line: bytes) -> None:
        self.lines.append(line)

    def eomReceived(self) -> defer.Deferred[None]:
        self.mailbox.deliver(b"\n".join(self.lines), self.tls)
        return defer.succeed(None)

    def connectionLost(self) -> None:
        pass


@implementer(smtp.IMessageDelivery)
class _Delivery:
    """One connection's delivery: MAIL FROM is refused until TLS is on."""

    def __init__(self, mailbox: Mailbox, server: smtp.ESMTP) -> None:
        self.mailbox = mailbox
        self.server = server

    def _tls(self) -> TLSProtocol:
        transport = self.server.transport
        if not ISSLTransport.providedBy(transport):
            raise smtp.SMTPServerError(530, "Must issue a STARTTLS command first")
        assert isinstance(transport, StartTLSTransport)
        assert transport.tls is not None
        return transport.tls

    def receivedHeader(self, helo: Any, origin: Any, recipients: Any) -> bytes:
        return b"Received: from test"

    def validateFrom(self, helo: Any, origin: Any) -> Any:
        self._tls()
        return origin

    def validateTo(self, user: Any) -> Any:
        tls = self._tls()
        if str(user.dest) != RECIPIENT:
            raise smtp.SMTPBadRcpt(user)
        return lambda: _Message(self.mailbox, tls)


class Mailbox(protocol.ServerFactory):
    """The server's factory: ESMTP protocols that deliver here."""

    def __init__(self, context_factory: Any) -> None:
        self.context_factory = context_factory
        self.messages: list[tuple[bytes, TLSProtocol]] = []
        self._waiting: list[defer.Deferred[None]] = []

    def buildProtocol(self, addr: Any) -> smtp.ESMTP:
        server = smtp.ESMTP(contextFactory=self.context_factory)
        server.host = b"example.com"
        server.delivery = _Delivery(self, server)
        server.factory = self
        return server

    def deliver(self, message: bytes, tls: TLSProtocol) -> None:
        self.messages.append((message, tls))
        waiting, self._waiting = self._waiting, []
        for d in waiting:
            d.callback(None)

    def received(self) -> Any:
        """Fires once a message has been delivered."""
        d: defer.Deferred[None] = defer.Deferred()
        if self.messages:
            d.callback(None)
        else:
            self._waiting.append(d)
        return bounded(d, "a delivered message")


class WatchMixin:
    """For a WrappingFactory: tells when its connections are gone, so that a
    test can wait for both ends to close before the reactor is checked."""

    protocols: dict[Any, int]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.built = 0
        self._gone: list[defer.Deferred[None]] = []

    def buildProtocol(self, addr: Any) -> Any:
        self.built += 1
        return super().buildProtocol(addr)  # type: ignore[misc]

    def unregisterProtocol(self, p: Any) -> None:
        super().unregisterProtocol(p)  # type: ignore[misc]
        self._check()

    def _check(self) -> None:
        if not self.protocols:
            waiting, self._gone = self._gone, []
            for d in waiting:
                d.callback(None)

    def all_closed(self) -> Any:
        """Fires once every connection built so far has closed (at once if
        there is none)."""
        d: defer.Deferred[None] = defer.Deferred()
        self._gone.append(d)
        self._check()
        return bounded(d, "the connections to close")


class WatchedFactory(WatchMixin, StartTLSFactory):
    pass


class ESMTPTests(TestCase):
    """Real mail programs against twisted.mail's ESMTP over StartTLSFactory."""

    timeout = 60

    def setUp(self) -> None:
        self.pki = CertificateFactory(self.mktemp())
        self.leaf = self.pki.server("example.com", ip_addresses=[LOOPBACK])
        self.server_context = Context(credentials=[self.leaf.credential()])
        self.mailbox = Mailbox(SSLFileContextFactory(self.server_context, False))
        self.server_factory = WatchedFactory(self.mailbox)
        port = reactor.listenTCP(0, self.server_factory, interface=LOOPBACK)
        self.addCleanup(port.stopListening)
        self.port = port.getHost().port

    def assertDeliveredOverTLS(self) -> TLSProtocol:
        self.assertEqual(len(self.mailbox.messages), 1)
        message, tls = self.mailbox.messages[0]
        self.assertIn(b"Subject: over STARTTLS", message)
        self.assertIn(b"Hello through twisted_sslfile.", message)
        result = tls.handshakeResult
        self.assertIsNotNone(result)
        assert result is not None
        self.assertEqual(result.version, ProtocolVersion.TLS_1_3)
        return tls

    def send_with_esmtp_sender(
        self, trust: CertificateFactory
    ) -> tuple[smtp.ESMTPSenderFactory, WatchedFactory, Any]:
        client_options = SSLFileContextFactory(
            Context(trust_roots=trust.trust_roots), True, "example.com"
        )
        sent: defer.Deferred[Any] = defer.Deferred()
        sender = smtp.ESMTPSenderFactory(
            None,
            None,
            SENDER,
            [RECIPIENT],
            io.BytesIO(BODY),
            sent,
            contextFactory=client_options,
            requireAuthentication=False,
            requireTransportSecurity=True,
            retries=0,
        )
        wrapper = WatchedFactory(sender)
        reactor.connectTCP(LOOPBACK, self.port, wrapper)
        return sender, wrapper, bounded(sent, "ESMTPSender to finish")

    @defer.inlineCallbacks
    def test_esmtp_sender(self) -> Any:
        """
        twisted.mail's ESMTPSender, required to use TLS, sends a message: it
        calls transport.startTLS with an SSLFileContextFactory, checks the
        server's certificate against its trust roots, and the server (which
        refuses MAIL before STARTTLS) takes the message over TLS 1.3.
        """
        sender, wrapper, sent = self.send_with_esmtp_sender(self.pki)
        accepted, recipients = yield sent
        self.assertEqual(accepted, 1)
        self.assertEqual([r[0] for r in recipients], [RECIPIENT.encode()])
        self.assertDeliveredOverTLS()
        client_transport = sender.currentProtocol.transport
        self.assertIsInstance(client_transport, StartTLSTransport)
        self.assertTrue(ISSLTransport.providedBy(client_transport))
        self.assertEqual(client_transport.getPeerCertificate(), self.leaf.certificate)
        assert client_transport.tls is not None
        self.assertIsInstance(client_transport.tls, TLSProtocol)
        self.assertEqual(
            client_transport.tls.handshakeResult.version, ProtocolVersion.TLS_1_3
        )
        yield wrapper.all_closed()
        yield self.server_factory.all_closed()

    @defer.inlineCallbacks
    def test_esmtp_sender_untrusted_server(self) -> Any:
        """
        An ESMTPSender that does not trust the server's CA gives up with an
        error that carries our CertificateError's message, and the server
        never sees MAIL FROM.
        """
        _, wrapper, sent = self.send_with_esmtp_sender(CertificateFactory(name="Other"))
        failure = yield self.assertFailure(sent, smtp.SMTPConnectError)
        self.assertIn(b"unknown_ca", failure.resp)
        self.assertIn(b"neither a trust root", failure.resp)
        self.assertEqual(self.mailbox.messages, [])
        yield wrapper.all_closed()
        yield self.server_factory.all_closed()

    def mail_script(self) -> bytes:
        return (
            b"EHLO client.example.org\n"
            b"MAIL FROM:<" + SENDER.encode() + b">\n"
            b"RCPT TO:<" + RECIPIENT.encode() + b">\n"
            b"DATA\n" + BODY.replace(b"\r\n", b"\n") + b".\nQUIT\n"
        )

    @defer.inlineCallbacks
    def test_openssl_s_client_starttls_smtp(self) -> Any:
        """
        openssl s_client -starttls smtp does EHLO and STARTTLS itself,
        verifies the certificate and name, then sends the mail over TLS.
        """
        client = PeerProcess(
            [
                openssl_binary(),
                "s_client",
                "-connect",
                f"{LOOPBACK}:{self.port}",
                "-starttls",
                "smtp",
                "-servername",
                "example.com",
                "-verify_hostname",
                "example.com",
                "-CAfile",
                self.pki.ca_path,
                "-verify_return_error",
                "-crlf",
                "-quiet",  # no command letters: "QUIT" is sent, not obeyed
            ]
        ).start(self)
        client.transport.write(self.mail_script())
        yield self.mailbox.received()
        [reason] = yield bounded(client.ended, f"s_client to exit\n{client.describe()}")
        self.assertTrue(reason.check(error.ProcessDone), client.describe())
        self.assertIn(b"221 ", bytes(client.stdout), client.describe())
        self.assertDeliveredOverTLS()
        yield self.server_factory.all_closed()

    def curl(self, *args: str) -> Any:
        from twisted.internet.utils import getProcessOutputAndValue

        curl = shutil.which("curl")
        self.assertIsNotNone(curl, "curl is needed for this test")
        message = self.mktemp()
        with open(message, "wb") as f:
            f.write(BODY)
        return getProcessOutputAndValue(
            curl,
            [
                "--silent",
                "--show-error",
                f"smtp://{LOOPBACK}:{self.port}",
                "--mail-from",
                SENDER,
                "--mail-rcpt",
                RECIPIENT,
                "-T",
                message,
                *args,
            ],
        )

    @defer.inlineCallbacks
    def test_curl_ssl_reqd(self) -> Any:
        """
        curl --ssl-reqd sends STARTTLS, verifies the certificate (for
        127.0.0.1) against --cacert, and sends the mail over TLS.
        """
        _out, err, code = yield self.curl("--ssl-reqd", "--cacert", self.pki.ca_path)
        self.assertEqual(code, 0, err)
        self.assertDeliveredOverTLS()
        yield self.server_factory.all_closed()

    @defer.inlineCallbacks
    def test_curl_without_tls_refused(self) -> Any:
        """
        The control for the tests above: without STARTTLS this server
        refuses the mail, so a delivery there proves TLS was used.
        """
        _out, err, code = yield self.curl()
        self.assertNotEqual(code, 0)
        self.assertIn(b"530", err)
        self.assertEqual(self.mailbox.messages, [])
        yield self.server_factory.all_closed()


class IMAP4Tests(TestCase):
    """twisted.mail's IMAP4 client and server, both over StartTLSFactory."""

    timeout = 60

    @defer.inlineCallbacks
    def test_imap4_starttls(self) -> Any:
        """
        IMAP4Client.startTLS() against IMAP4Server: both sides call
        transport.startTLS with an SSLFileContextFactory; afterwards the
        server no longer offers STARTTLS and both transports are TLS 1.3.
        """
        from twisted.mail import imap4

        certificates = CertificateFactory()
        leaf = certificates.server("example.com")
        server_options = SSLFileContextFactory(
            Context(credentials=[leaf.credential()]), False
        )
        servers: list[imap4.IMAP4Server] = []

        class ServerFactory(protocol.ServerFactory):
            def buildProtocol(self, addr: Any) -> imap4.IMAP4Server:
                server = imap4.IMAP4Server(contextFactory=server_options)
                servers.append(server)
                return server

        server_factory = WatchedFactory(ServerFactory())
        port = reactor.listenTCP(0, server_factory, interface=LOOPBACK)
        self.addCleanup(port.stopListening)

        greeted: defer.Deferred[Any] = defer.Deferred()
        client = imap4.IMAP4Client(
            contextFactory=SSLFileContextFactory(
                Context(trust_roots=certificates.trust_roots), True, "example.com"
            )
        )
        # IMAP4Client's documented hook for the greeting.
        client.serverGreeting = greeted.callback  # type: ignore[method-assign]
        client_factory = WatchedFactory(protocol.Factory.forProtocol(lambda: client))
        reactor.connectTCP(LOOPBACK, port.getHost().port, client_factory)
        yield bounded(greeted, "the IMAP4 greeting")
        before = yield bounded(client.getCapabilities(), "CAPABILITY")
        self.assertIn(b"STARTTLS", before)
        self.assertFalse(ISSLTransport.providedBy(client.transport))
        after = yield bounded(client.startTLS(), "STARTTLS and CAPABILITY")
        self.assertNotIn(b"STARTTLS", after)
        self.assertTrue(ISSLTransport.providedBy(client.transport))
        self.assertEqual(client.transport.getPeerCertificate(), leaf.certificate)
        [server] = servers
        self.assertTrue(server.startedTLS)
        for transport in (client.transport, server.transport):
            self.assertIsInstance(transport, StartTLSTransport)
            self.assertEqual(
                transport.tls.handshakeResult.version, ProtocolVersion.TLS_1_3
            )
        yield bounded(client.logout(), "LOGOUT")
        yield client_factory.all_closed()
        yield server_factory.all_closed()


# -- the rules of StartTLSTransport, over SimNetwork ------------------------


class Lines(LineReceiver):
    """A line protocol that upgrades on ``STARTTLS``, as SMTP does.

    Server: answers ``STARTTLS`` with ``OK`` and calls startTLS.  Client:
    sends ``STARTTLS`` on connect, and on ``OK`` calls startTLS and sends a
    line that must only ever travel encrypted.
    """

    delimiter = b"\n"

    def __init__(self, is_client: bool, options: Any) -> None:
        self.is_client = is_client
        self.options = options
        self.lines: list[bytes] = []
        self.lost: Failure | None = None
        self.kept: Any = None

    def connectionMade(self) -> None:
        # As an object that outlives the upgrade would (a FileSender, a
        # helper that was handed the transport), keep the first transport.
        self.kept = self.transport
        if self.is_client:
            self.sendLine(b"STARTTLS")

    def lineReceived(self, line: bytes) -> None:
        self.lines.append(line)
        if line == b"STARTTLS" and not self.is_client:
            self.sendLine(b"OK")
            self.transport.startTLS(self.options)
        elif line == b"OK" and self.is_client:
            self.transport.startTLS(self.options)
            self.sendLine(b"secret from client")
        elif line == b"secret from client":
            self.kept.write(b"secret from server\n")

    def connectionLost(self, reason: Failure = error.ConnectionDone) -> None:  # type: ignore[assignment]
        self.lost = reason


@implementer(IHalfCloseableProtocol, IHandshakeListener)
class HalfClosingLines(Lines):
    def __init__(self, is_client: bool, options: Any) -> None:
        super().__init__(is_client, options)
        self.read_lost = 0
        self.handshakes = 0

    def readConnectionLost(self) -> None:
        self.read_lost += 1

    def writeConnectionLost(self) -> None:
        pass

    def handshakeCompleted(self) -> None:
        self.handshakes += 1


class StartTLSTransportTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.pki = pki()
        self.clock = Clock()
        self.server_options = SSLFileContextFactory(self.pki["server"], False)
        self.client_options = SSLFileContextFactory(
            self.pki["client"], True, "example.com"
        )

    def transport(self, app: Any, **kwargs: Any) -> StartTLSTransport:
        return StartTLSTransport(None, app, clock=self.clock, **kwargs)

    def connect(
        self, client_app: Any, server_app: Any, *, flush: bool = True, **kwargs: Any
    ) -> tuple[StartTLSTransport, StartTLSTransport, SimNetwork]:
        client = self.transport(client_app)
        server = self.transport(server_app, **kwargs)
        network = SimNetwork(self.clock)
        network.connect(client, server)
        if flush:
            network.flush()
        return client, server, network

    def close(self, client: Lines, server: Lines, network: SimNetwork) -> None:
        client.transport.loseConnection()
        network.flush()
        self.assertTrue(client.lost and client.lost.check(error.ConnectionDone))
        self.assertTrue(server.lost and server.lost.check(error.ConnectionDone))
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_upgrade(self) -> None:
        """
        Plaintext, then STARTTLS on both sides: the protocol's transport stays
        the StartTLSTransport, which provides ITLSTransport before and
        ISSLTransport/INegotiated after; what follows travels encrypted, even
        when written through a reference kept from before the upgrade.
        """
        client_app = Lines(True, self.client_options)
        server_app = Lines(False, self.server_options)
        client, server, network = self.connect(client_app, server_app, flush=False)
        for transport in (client, server):
            verifyObject(ITLSTransport, transport)
            self.assertFalse(ISSLTransport.providedBy(transport))
            self.assertIsNone(transport.tls)
            self.assertIsNone(transport.getPeerCertificate())
            self.assertIsNone(transport.negotiatedProtocol)
        network.flush()
        self.assertEqual(server_app.lines, [b"STARTTLS", b"secret from client"])
        self.assertEqual(client_app.lines, [b"OK", b"secret from server"])
        for app, transport, socket in (
            (client_app, client, network.client),
            (server_app, server, network.server),
        ):
            self.assertIs(app.transport, transport)
            self.assertIs(app.kept, transport)
            verifyObject(INegotiated, transport)
            self.assertIsInstance(transport.tls, TLSProtocol)
            # The socket now delivers to TLS, which delivers here.
            self.assertIs(socket.protocol, transport.tls)
        self.assertEqual(client.getPeerCertificate(), self.pki["leaf"].certificate)
        wire = bytes(network.client.sent) + bytes(network.server.sent)
        self.assertIn(b"STARTTLS\n", wire)
        self.assertNotIn(b"secret", wire)
        self.assertRaises(RuntimeError, client.startTLS, self.client_options)
        self.close(client_app, server_app, network)

    def test_plaintext_after_upgrade(self) -> None:
        """
        A peer that answers the upgrade with plaintext (a command injected
        after STARTTLS) gets an alert; the protocol never sees the line and
        its connection ends with the TLSError.
        """

        class Injector(protocol.Protocol):
            received = b""

            def connectionMade(self) -> None:
                self.transport.write(b"STARTTLS\n")

            def dataReceived(self, data: bytes) -> None:
                self.received += data
                if data == b"OK\n":
                    self.transport.write(b"MAIL FROM:<mallory@example.org>\n")

        injector = Injector()
        server_app = Lines(False, self.server_options)
        server = self.transport(server_app)
        network = SimNetwork(self.clock)
        network.connect(injector, server)
        network.flush()
        self.clock.advance(60)
        network.flush()
        self.assertEqual(server_app.lines, [b"STARTTLS"])
        self.assertIsNotNone(server_app.lost)
        assert server_app.lost is not None
        self.assertTrue(server_app.lost.check(TLSError), server_app.lost)
        # After "OK\n", the only thing the peer got is a TLS alert record.
        self.assertTrue(injector.received.startswith(b"OK\n\x15\x03"))

    def test_pipelined_line_stays_with_protocol(self) -> None:
        """
        Bytes the protocol had already received when it called startTLS stay
        the protocol's, exactly as under Twisted's own startTLS; only bytes
        read afterwards go to TLS.  (A conforming client sends nothing
        between STARTTLS and the answer; see docs/twisted.rst.)
        """

        class Pipeliner(protocol.Protocol):
            def connectionMade(self) -> None:
                self.transport.write(b"STARTTLS\nNOOP\n")

        server_app = Lines(False, self.server_options)
        server = self.transport(server_app)
        network = SimNetwork(self.clock)
        network.connect(Pipeliner(), server)
        network.flush()
        self.assertEqual(server_app.lines, [b"STARTTLS", b"NOOP"])
        self.assertIsNotNone(server.tls)
        server.abortConnection()
        network.flush()

    def test_foreign_context_factory(self) -> None:
        """
        startTLS with something that is not an SSLFileContextFactory (here
        a stand-in for a pyOpenSSL options object) raises TypeError and
        leaves the connection in plaintext...
        """
        app = Lines(False, object())
        transport = self.transport(app)
        network = SimNetwork(self.clock)
        network.connect(protocol.Protocol(), transport)
        error_ = self.assertRaises(TypeError, transport.startTLS, object())
        self.assertIn("SSLFileContextFactory", str(error_))
        self.assertIsNone(transport.tls)
        self.assertFalse(ISSLTransport.providedBy(transport))
        self.assertIs(network.server.protocol, transport)
        transport.loseConnection()
        network.flush()

    def test_foreign_context_factory_replaced(self) -> None:
        """
        ...unless the transport was given a context_factory, which then
        stands in for it (ESMTPSender, given none, builds pyOpenSSL options
        for itself).
        """
        client_app = Lines(True, object())
        server_app = Lines(False, object())
        client = self.transport(client_app, context_factory=self.client_options)
        server = self.transport(server_app, context_factory=self.server_options)
        network = SimNetwork(self.clock)
        network.connect(client, server)
        network.flush()
        self.assertEqual(server_app.lines, [b"STARTTLS", b"secret from client"])
        self.assertEqual(client.getPeerCertificate(), self.pki["leaf"].certificate)
        self.close(client_app, server_app, network)

    def test_twisted_start_tls_refuses_our_factory(self) -> None:
        """
        Handed to Twisted's own startTLS (a plain TCP transport: the
        StartTLSFactory was forgotten), an SSLFileContextFactory fails at
        once with a TypeError that says what to do.
        """
        with warnings.catch_warnings():
            # Twisted warns first that it is not a "connection creator".
            warnings.simplefilter("ignore")
            error_ = self.assertRaises(
                TypeError,
                TLSMemoryBIOFactory,
                self.server_options,
                False,
                protocol.Factory(),
            )
        self.assertIn("StartTLSFactory", str(error_))

    def test_start_tls_after_close(self) -> None:
        app = Lines(False, self.server_options)
        transport = self.transport(app)
        network = SimNetwork(self.clock)
        network.connect(protocol.Protocol(), transport)
        transport.loseConnection()
        network.flush()
        self.assertIsNotNone(app.lost)
        self.assertRaises(RuntimeError, transport.startTLS, self.server_options)

    def test_producer_moves_to_tls(self) -> None:
        """
        A producer registered before the upgrade is moved to the TLS layer
        (as Twisted's startTLS does): the socket then holds TLS's proxy, and
        the protocol can unregister and register again afterwards.
        """
        client_app = Lines(True, self.client_options)
        server_app = Lines(False, self.server_options)
        _client, server, network = self.connect(client_app, server_app, flush=False)
        producer = PushProducer(server, self.clock, b"x" * 1000, 10_000)
        server.registerProducer(producer, True)
        self.assertIs(network.server.producer, producer)
        network.flush()
        assert server.tls is not None
        self.assertIsNot(network.server.producer, producer)
        self.assertIsNotNone(network.server.producer)
        server.unregisterProducer()
        self.assertIsNone(network.server.producer)
        producer.start()  # registers again, and writes 10 kB through TLS
        network.flush()
        self.assertEqual(client_app.lines[-1:], [b"secret from server"])
        self.assertNotIn(b"xxxx", bytes(network.server.sent))
        self.close(client_app, server_app, network)

    def test_paused_reader_upgrades(self) -> None:
        """
        A protocol that paused its transport before startTLS still gets its
        handshake done (TLS must read for that); reading stays paused for
        the protocol afterwards, and resumes when it asks.
        """
        client_app = Lines(True, self.client_options)
        server_app = Lines(False, self.server_options)

        def pause_then_upgrade(line: bytes) -> None:
            server_app.lines.append(line)
            server_app.transport.pauseProducing()
            server_app.sendLine(b"OK")
            server_app.transport.startTLS(self.server_options)

        server_app.lineReceived = pause_then_upgrade  # type: ignore[method-assign]
        _client, server, network = self.connect(client_app, server_app)
        assert server.tls is not None
        self.assertIsNotNone(server.tls.handshakeResult)
        self.assertTrue(network.server.reading_paused)
        self.assertEqual(server_app.lines, [b"STARTTLS"])
        server_app.lineReceived = Lines.lineReceived.__get__(server_app)  # type: ignore[method-assign]
        server.resumeProducing()
        network.flush()
        self.assertEqual(server_app.lines, [b"STARTTLS", b"secret from client"])
        self.close(client_app, server_app, network)

    def test_half_close_and_handshake_listener(self) -> None:
        """
        IHalfCloseableProtocol and IHandshakeListener reach the protocol when
        (and only when) it provides them: the peer's close_notify after a TLS
        half-close arrives as readConnectionLost.
        """
        plain = self.transport(Lines(False, self.server_options))
        self.assertFalse(IHalfCloseableProtocol.providedBy(plain))
        self.assertFalse(IHandshakeListener.providedBy(plain))
        client_app = HalfClosingLines(True, self.client_options)
        server_app = HalfClosingLines(False, self.server_options)
        client, server, network = self.connect(client_app, server_app)
        self.assertTrue(IHalfCloseableProtocol.providedBy(server))
        self.assertEqual((client_app.handshakes, server_app.handshakes), (1, 1))
        client.loseWriteConnection()
        network.flush()
        self.assertEqual(server_app.read_lost, 1)
        self.assertIsNone(server_app.lost)
        server.write(b"after half-close\n")
        network.flush()
        self.assertEqual(client_app.lines[-1], b"after half-close")
        server.loseConnection()
        network.flush()
        self.assertTrue(client_app.lost and client_app.lost.check(error.ConnectionDone))
        self.assertTrue(server_app.lost and server_app.lost.check(error.ConnectionDone))

    def test_tcp_options_reach_the_socket(self) -> None:
        client_app = Lines(True, self.client_options)
        server_app = Lines(False, self.server_options)
        _client, server, network = self.connect(client_app, server_app, flush=False)
        self.assertTrue(ITCPTransport.providedBy(server))
        server.setTcpNoDelay(True)
        self.assertTrue(network.server.no_delay)
        network.flush()
        server.setTcpKeepAlive(True)
        self.assertTrue(server.getTcpKeepAlive())
        self.assertEqual(server.getPeer(), network.server.getPeer())
        self.close(client_app, server_app, network)


class ValidationTests(SynchronousTestCase):
    def test_context_factory(self) -> None:
        context = pki()["client"]
        self.assertRaises(ValueError, SSLFileContextFactory, context, True)
        self.assertRaises(
            ValueError, SSLFileContextFactory, pki()["server"], False, "example.com"
        )
        self.assertRaises(TypeError, SSLFileContextFactory, object(), False)
        options = SSLFileContextFactory(context, True, "example.com")
        self.assertIn("client 'example.com'", repr(options))
        self.assertTrue(options)  # protocols test "if self.ctx"

    def test_factory(self) -> None:
        wrapped = protocol.Factory.forProtocol(protocol.Protocol)
        self.assertRaises(
            TypeError, StartTLSFactory, wrapped, context_factory=pki()["server"]
        )
        self.assertRaises(ValueError, StartTLSFactory, wrapped, handshake_timeout=0)
        self.assertRaises(ValueError, StartTLSFactory, wrapped, drain_timeout=None)
        factory = StartTLSFactory(wrapped, handshake_timeout=5)
        built = factory.buildProtocol(None)
        self.assertIsInstance(built, StartTLSTransport)
