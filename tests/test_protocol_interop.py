"""TLSProtocol against Twisted's own TLS (pyOpenSSL), both ways, over TCP.

The reference for "drop-in" is ``twisted.protocols.tls.TLSMemoryBIOFactory``
configured the usual way: ``optionsForClientTLS`` for a client,
``CertificateOptions`` for a server.  Each test runs one real loopback
connection with our ``TLSFactory`` on one end and Twisted's on the other,
TLS 1.3 only, and checks data, ALPN, certificates and both ends' close.
"""

from __future__ import annotations

import os
from typing import Any

from cryptography.hazmat.primitives import serialization
from twisted.internet import defer, error, reactor, ssl
from twisted.internet.interfaces import IProtocolNegotiationFactory
from twisted.internet.protocol import ClientFactory, Factory, Protocol
from twisted.protocols.tls import TLSMemoryBIOFactory
from twisted.python.failure import Failure
from twisted.trial.unittest import TestCase
from zope.interface import implementer

from tests.certs import CertificateFactory
from twisted_sslfile.constants import ProtocolVersion
from twisted_sslfile.context import Context
from twisted_sslfile.errors import CertificateError
from twisted_sslfile.protocol import TLSFactory

PAYLOAD = os.urandom(200_000)


def pem(*objects: Any) -> bytes:
    out = b""
    for obj in objects:
        if hasattr(obj, "private_bytes"):
            out += obj.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        else:
            out += obj.public_bytes(serialization.Encoding.PEM)
    return out


class EndPoint(Protocol):
    """Collects data; echoes when asked; reports its end on ``lost``."""

    def __init__(self, echo: bool = False, close_after: int | None = None) -> None:
        self.echo = echo
        self.close_after = close_after
        self.data = bytearray()
        self.negotiated: bytes | None = None
        self.lost: defer.Deferred[list[Failure]] = defer.Deferred()

    def dataReceived(self, data: bytes) -> None:
        if not self.data:
            # Twisted's transport forgets it once the connection is gone.
            self.negotiated = self.transport.negotiatedProtocol
        self.data += data
        if self.echo:
            self.transport.write(data)
        if self.close_after is not None and len(self.data) >= self.close_after:
            self.transport.loseConnection()

    def connectionLost(self, reason: Failure = error.ConnectionDone) -> None:  # type: ignore[assignment]
        self.lost.callback([reason])


class Sender(EndPoint):
    def connectionMade(self) -> None:
        self.transport.write(PAYLOAD)


@implementer(IProtocolNegotiationFactory)
class NegotiatingFactory(ClientFactory):
    def __init__(self, build: Any, protocols: list[bytes]) -> None:
        self.build = build
        self.protocols = protocols

    def buildProtocol(self, addr: Any) -> Protocol:
        return self.build()

    def acceptableProtocols(self) -> list[bytes]:
        return self.protocols


class InteropTestCase(TestCase):
    timeout = 30

    def setUp(self) -> None:
        self.pki = CertificateFactory()
        self.leaf = self.pki.server("example.com")
        self.root_pem = pem(self.pki.root.certificate)

    # -- Twisted's side ------------------------------------------------------

    def twisted_server_options(self, **kwargs: Any) -> ssl.CertificateOptions:
        private = ssl.PrivateCertificate.loadPEM(
            pem(self.leaf.certificate, self.leaf.key)
        )
        chain = [ssl.Certificate.loadPEM(pem(c)).original for c in self.leaf.chain[1:]]
        return ssl.CertificateOptions(
            privateKey=private.privateKey.original,
            certificate=private.original,
            extraCertChain=chain,
            raiseMinimumTo=ssl.TLSVersion.TLSv1_3,
            **kwargs,
        )

    def twisted_client_options(self, **kwargs: Any) -> Any:
        return ssl.optionsForClientTLS(
            "example.com",
            trustRoot=ssl.Certificate.loadPEM(self.root_pem),
            extraCertificateOptions={"raiseMinimumTo": ssl.TLSVersion.TLSv1_3},
            **kwargs,
        )

    def listen(self, factory: Any) -> int:
        port = reactor.listenTCP(0, factory, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        return port.getHost().port

    # -- our side ------------------------------------------------------------

    def our_server_factory(self, wrapped: Any) -> TLSFactory:
        return TLSFactory(wrapped, Context(credentials=[self.leaf.credential()]), False)

    def our_client_factory(
        self, wrapped: Any, trust: CertificateFactory | None = None
    ) -> TLSFactory:
        roots = (trust or self.pki).trust_roots
        return TLSFactory(wrapped, Context(trust_roots=roots), True, "example.com")


class OurClientTests(InteropTestCase):
    """Our TLSFactory connects to Twisted's TLSMemoryBIOFactory."""

    @defer.inlineCallbacks
    def test_round_trip_alpn_and_close(self) -> Any:
        """
        Echo through a Twisted TLS 1.3 server with ALPN; our loseConnection
        gets Twisted's close_notify back: ConnectionDone on both ends.
        """
        server = EndPoint(echo=True)
        options = self.twisted_server_options(acceptableProtocols=[b"h2", b"http/1.1"])
        port = self.listen(
            TLSMemoryBIOFactory(options, False, Factory.forProtocol(lambda: server))
        )
        client = Sender(close_after=len(PAYLOAD))
        factory = self.our_client_factory(
            NegotiatingFactory(lambda: client, [b"http/1.1", b"h2"])
        )
        reactor.connectTCP("127.0.0.1", port, factory)
        [reason] = yield client.lost
        self.assertTrue(reason.check(error.ConnectionDone), reason)
        self.assertEqual(bytes(client.data), PAYLOAD)
        tls = client.transport
        self.assertEqual(tls.negotiatedProtocol, b"h2")
        self.assertEqual(tls.handshakeResult.version, ProtocolVersion.TLS_1_3)
        self.assertEqual(tls.getPeerCertificate(), self.leaf.certificate)
        self.assertEqual(tls.getPeerCertificateChain(), self.leaf.chain)
        [server_reason] = yield server.lost
        self.assertTrue(server_reason.check(error.ConnectionDone), server_reason)
        self.assertEqual(server.negotiated, b"h2")

    @defer.inlineCallbacks
    def test_twisted_server_closes(self) -> Any:
        """
        Twisted's loseConnection sends close_notify: we report ConnectionDone,
        not truncation.
        """
        server = EndPoint(close_after=len(PAYLOAD))
        port = self.listen(
            TLSMemoryBIOFactory(
                self.twisted_server_options(),
                False,
                Factory.forProtocol(lambda: server),
            )
        )
        client = Sender()
        reactor.connectTCP(
            "127.0.0.1",
            port,
            self.our_client_factory(Factory.forProtocol(lambda: client)),
        )
        [reason] = yield client.lost
        self.assertTrue(reason.check(error.ConnectionDone), reason)
        [server_reason] = yield server.lost
        self.assertEqual(bytes(server.data), PAYLOAD)
        self.assertTrue(server_reason.check(error.ConnectionDone), server_reason)

    @defer.inlineCallbacks
    def test_untrusted_twisted_server(self) -> Any:
        """
        A server certificate from a CA we do not trust: CertificateError for
        us, an SSL error for Twisted's server.
        """
        server = EndPoint()
        port = self.listen(
            TLSMemoryBIOFactory(
                self.twisted_server_options(),
                False,
                Factory.forProtocol(lambda: server),
            )
        )
        client = EndPoint()
        factory = self.our_client_factory(
            Factory.forProtocol(lambda: client), trust=CertificateFactory(name="Other")
        )
        reactor.connectTCP("127.0.0.1", port, factory)
        [reason] = yield client.lost
        self.assertTrue(reason.check(CertificateError), reason)
        [server_reason] = yield server.lost
        self.assertFalse(server_reason.check(error.ConnectionDone), server_reason)


class TwistedClientTests(InteropTestCase):
    """Twisted's TLSMemoryBIOFactory connects to our TLSFactory."""

    @defer.inlineCallbacks
    def test_round_trip_alpn_and_close(self) -> Any:
        """
        Twisted's client sends, we echo; ALPN picks our preference; Twisted's
        loseConnection reaches us as ConnectionDone.
        """
        server = EndPoint(echo=True)
        port = self.listen(
            self.our_server_factory(
                NegotiatingFactory(lambda: server, [b"h2", b"http/1.1"])
            )
        )
        client = Sender(close_after=len(PAYLOAD))
        options = self.twisted_client_options(acceptableProtocols=[b"http/1.1", b"h2"])
        reactor.connectTCP(
            "127.0.0.1",
            port,
            TLSMemoryBIOFactory(
                options, True, ClientFactory.forProtocol(lambda: client)
            ),
        )
        [reason] = yield client.lost
        self.assertTrue(reason.check(error.ConnectionDone), reason)
        self.assertEqual(bytes(client.data), PAYLOAD)
        self.assertEqual(client.negotiated, b"h2")
        [server_reason] = yield server.lost
        self.assertTrue(server_reason.check(error.ConnectionDone), server_reason)
        self.assertEqual(server.transport.negotiatedProtocol, b"h2")
        self.assertEqual(
            server.transport.handshakeResult.version, ProtocolVersion.TLS_1_3
        )

    @defer.inlineCallbacks
    def test_we_close(self) -> Any:
        """
        Our server's loseConnection: Twisted's client sees a clean close and
        our server does not wait past Twisted's answer.
        """
        server = EndPoint(close_after=len(PAYLOAD))
        port = self.listen(self.our_server_factory(Factory.forProtocol(lambda: server)))
        client = Sender()
        reactor.connectTCP(
            "127.0.0.1",
            port,
            TLSMemoryBIOFactory(
                self.twisted_client_options(),
                True,
                ClientFactory.forProtocol(lambda: client),
            ),
        )
        started = reactor.seconds()
        [server_reason] = yield server.lost
        self.assertTrue(server_reason.check(error.ConnectionDone), server_reason)
        self.assertEqual(bytes(server.data), PAYLOAD)
        self.assertLess(reactor.seconds() - started, 2.5)  # well under close_timeout
        [reason] = yield client.lost
        self.assertTrue(reason.check(error.ConnectionDone), reason)

    @defer.inlineCallbacks
    def test_twisted_client_rejects_hostname(self) -> Any:
        """
        Twisted's client checking another host name fails the handshake; our
        server reports the failure instead of a clean close.
        """
        server = EndPoint()
        port = self.listen(self.our_server_factory(Factory.forProtocol(lambda: server)))
        client = EndPoint()
        options = ssl.optionsForClientTLS(
            "other.example",
            trustRoot=ssl.Certificate.loadPEM(self.root_pem),
            extraCertificateOptions={"raiseMinimumTo": ssl.TLSVersion.TLSv1_3},
        )
        reactor.connectTCP(
            "127.0.0.1",
            port,
            TLSMemoryBIOFactory(
                options, True, ClientFactory.forProtocol(lambda: client)
            ),
        )
        [reason] = yield client.lost
        self.assertFalse(reason.check(error.ConnectionDone), reason)
        [server_reason] = yield server.lost
        self.assertFalse(server_reason.check(error.ConnectionDone), server_reason)
        self.assertIsNone(server.transport.handshakeResult)


class WebTests(InteropTestCase):
    """A twisted.web site served through TLSFactory, fetched by real clients."""

    def setUp(self) -> None:
        super().setUp()
        self.leaf = self.pki.server("example.com", ip_addresses=["127.0.0.1"])

    def serve_site(self) -> tuple[int, bytes]:
        from twisted.web import resource, server, static

        body = os.urandom(300_000)
        root = resource.Resource()
        root.putChild(b"blob", static.Data(body, "application/octet-stream"))
        factory = self.our_server_factory(server.Site(root))
        return self.listen(factory), body

    @defer.inlineCallbacks
    def test_urllib(self) -> Any:
        """
        Python's urllib with an ssl context that trusts our test CA, checking
        the certificate against the IP address it connects to.
        """
        import ssl as stdlib_ssl
        import urllib.request

        from twisted.internet.threads import deferToThread

        port, body = self.serve_site()
        context = stdlib_ssl.create_default_context(cadata=self.root_pem.decode())
        context.minimum_version = stdlib_ssl.TLSVersion.TLSv1_3

        def fetch() -> bytes:
            url = f"https://127.0.0.1:{port}/blob"
            with urllib.request.urlopen(url, context=context, timeout=20) as response:
                return response.read()

        data = yield deferToThread(fetch)
        self.assertEqual(data, body)

    @defer.inlineCallbacks
    def test_curl(self) -> Any:
        """
        curl --cacert against the site, when curl is installed.
        """
        import shutil

        from twisted.internet.utils import getProcessOutputAndValue

        curl = shutil.which("curl")
        self.assertIsNotNone(curl, "curl is needed (.ci/run installs it)")
        port, body = self.serve_site()
        ca = self.mktemp()
        with open(ca, "wb") as f:
            f.write(self.root_pem)
        out, err, code = yield getProcessOutputAndValue(
            curl,
            [
                "--silent",
                "--show-error",
                "--cacert",
                ca,
                "--tlsv1.3",
                f"https://127.0.0.1:{port}/blob",
            ],
        )
        self.assertEqual(code, 0, err)
        self.assertEqual(out, body)
