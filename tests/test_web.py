"""HTTPS clients through :mod:`twisted_sslfile.web`: Agent, its pool, treq.

Real loopback TCP on the global reactor.  Every HTTPS test wraps the
endpoint factory in :class:`Recording`, which keeps the transport of each
connection Agent made: a test passes only if that transport is this
library's ``TLSProtocol``, so it would fail if Twisted's pyOpenSSL TLS had
carried the request.  The servers are ``twisted.web``'s ``Site`` behind
:class:`~twisted_sslfile.protocol.TLSFactory` and ``openssl s_server -www``.
"""

from __future__ import annotations

from typing import Any

import treq
from twisted.internet import defer, protocol, reactor
from twisted.internet.defer import CancelledError
from twisted.internet.endpoints import HostnameEndpoint
from twisted.internet.interfaces import IStreamClientEndpoint
from twisted.trial.unittest import TestCase
from twisted.web import resource, server
from twisted.web.client import URI, Agent, HTTPConnectionPool
from twisted.web.error import SchemeNotSupported
from twisted.web.iweb import IAgentEndpointFactory
from zope.interface import implementer
from zope.interface.verify import verifyObject

from tests.certs import CertificateFactory
from tests.peers import OpenSSLServer
from tests.test_protocol_web import bounded
from tests.test_starttls import WatchMixin
from twisted_sslfile.constants import ProtocolVersion
from twisted_sslfile.context import Context
from twisted_sslfile.errors import CertificateError
from twisted_sslfile.protocol import TLSFactory, TLSProtocol
from twisted_sslfile.web import AgentEndpointFactory, make_agent

LOOPBACK = "127.0.0.1"


@implementer(IAgentEndpointFactory)
class Recording:
    """An endpoint factory around ours that keeps each connection's transport,
    and can tell when all the connections it made are closed."""

    def __init__(self, inner: AgentEndpointFactory) -> None:
        self.inner = inner
        self.transports: list[Any] = []
        self._lost: list[defer.Deferred[None]] = []

    def endpointForURI(self, uri: URI) -> Any:
        endpoint = self.inner.endpointForURI(uri)
        recording = self

        @implementer(IStreamClientEndpoint)
        class Recorded:
            def connect(self, factory: Any) -> Any:
                recording._watch(factory)

                def record(protocol: Any) -> Any:
                    recording.transports.append(protocol.transport)
                    return protocol

                return endpoint.connect(factory).addCallback(record)

        return Recorded()

    def _watch(self, factory: Any) -> None:
        """Hear of the connectionLost of what ``factory`` builds (even when
        the handshake fails and Agent never sees the protocol)."""
        build = factory.buildProtocol
        lost = self._lost

        def building(addr: Any) -> Any:
            built = build(addr)
            d: defer.Deferred[None] = defer.Deferred()
            lost.append(d)
            connection_lost = built.connectionLost

            def tell(reason: Any) -> None:
                connection_lost(reason)
                d.callback(None)

            built.connectionLost = tell
            return built

        factory.buildProtocol = building

    def all_closed(self) -> Any:
        return bounded(
            defer.gatherResults(list(self._lost)), "the client connections to close"
        )


class Page(resource.Resource):
    """Answers every GET and keeps the server-side TLS transport of each."""

    isLeaf = True

    def __init__(self) -> None:
        super().__init__()
        self.transports: list[TLSProtocol] = []

    def render_GET(self, request: Any) -> bytes:
        self.transports.append(request.channel.transport)
        return b"hello over " + request.path


class WatchedTLSFactory(WatchMixin, TLSFactory):
    pass


class AgentTests(TestCase):
    timeout = 60

    def setUp(self) -> None:
        self.pki = CertificateFactory(self.mktemp())
        self.leaf = self.pki.server("localhost", ip_addresses=[LOOPBACK], direct=True)
        self.page = Page()

    def serve(self) -> str:
        """Our TLSFactory around a twisted.web Site; returns the base URL."""
        context = Context(credentials=[self.leaf.credential()])
        self.server_factory = WatchedTLSFactory(server.Site(self.page), context, False)
        # Cleanups run last first: the pool and the client's connections
        # close, then the port, then the server's connections must be gone.
        self.addCleanup(self.server_factory.all_closed)
        port = reactor.listenTCP(0, self.server_factory, interface=LOOPBACK)
        self.addCleanup(port.stopListening)
        return f"https://{LOOPBACK}:{port.getHost().port}"

    def agent(
        self, trust: CertificateFactory | None = None, pooled: bool = False
    ) -> tuple[Agent, Recording]:
        """An Agent with our endpoint factory (recorded), and optionally a
        persistent pool; closing both is left to the cleanups."""
        context = Context(trust_roots=(trust or self.pki).trust_roots)
        recording = Recording(AgentEndpointFactory(reactor, context))
        self.addCleanup(recording.all_closed)
        pool = None
        if pooled:
            pool = HTTPConnectionPool(reactor, persistent=True)
            pool.retryAutomatically = False
            # Runs before recording.all_closed (cleanups run last first).
            self.addCleanup(pool.closeCachedConnections)
        return Agent.usingEndpointFactory(reactor, recording, pool=pool), recording

    def assertOurTLS(self, transport: Any) -> TLSProtocol:
        """The client's connection ran over this library, negotiating
        http/1.1 in ALPN."""
        self.assertIsInstance(transport, TLSProtocol)
        assert isinstance(transport, TLSProtocol)
        self.assertEqual(transport.negotiatedProtocol, b"http/1.1")
        self.assertEqual(transport.getPeerCertificate(), self.leaf.certificate)
        return transport

    @defer.inlineCallbacks
    def get(self, agent: Any, url: str) -> Any:
        response = yield bounded(agent.request(b"GET", url.encode()), f"GET {url}")
        # treq.content, not readBody: an HTTP/1.0 body that ends with the
        # connection (s_server -www) is complete, not a PartialDownloadError.
        body = yield bounded(treq.content(response), f"the body of {url}")
        return response.code, body

    @defer.inlineCallbacks
    def test_pooled_connection_reused(self) -> Any:
        """
        Two GETs through one HTTPConnectionPool: both go over the same TLS
        connection (one handshake), which is ours on the client side.
        """
        base = self.serve()
        agent, recording = self.agent(pooled=True)
        first = yield self.get(agent, base + "/one")
        second = yield self.get(agent, base + "/two")
        self.assertEqual(first, (200, b"hello over /one"))
        self.assertEqual(second, (200, b"hello over /two"))
        self.assertEqual(len(recording.transports), 1)
        self.assertOurTLS(recording.transports[0])
        self.assertEqual(len(self.page.transports), 2)
        self.assertIs(self.page.transports[0], self.page.transports[1])
        self.assertEqual(self.server_factory.built, 1)
        self.assertEqual(
            self.page.transports[0].handshakeResult.version, ProtocolVersion.TLS_1_3
        )

    @defer.inlineCallbacks
    def test_treq(self) -> Any:
        """
        treq with the agent: GET and POST, one connection from the pool.
        """
        base = self.serve()
        agent, recording = self.agent(pooled=True)
        response = yield bounded(treq.get(base + "/treq", agent=agent), "treq.get")
        body = yield bounded(treq.content(response), "treq.content")
        self.assertEqual(body, b"hello over /treq")
        client = treq.client.HTTPClient(agent)
        response = yield bounded(client.get(base + "/again"), "HTTPClient.get")
        body = yield bounded(treq.content(response), "treq.content")
        self.assertEqual(body, b"hello over /again")
        self.assertEqual(len(recording.transports), 1)
        self.assertOurTLS(recording.transports[0])

    @defer.inlineCallbacks
    def test_make_agent(self) -> Any:
        """
        make_agent: Agent.usingEndpointFactory with our factory and the
        given pool.
        """
        base = self.serve()
        pool = HTTPConnectionPool(reactor, persistent=True)
        self.addCleanup(pool.closeCachedConnections)  # fires once closed
        agent = make_agent(
            reactor, Context(trust_roots=self.pki.trust_roots), pool=pool
        )
        code, body = yield self.get(agent, base + "/made")
        self.assertEqual((code, body), (200, b"hello over /made"))
        [transport] = self.page.transports
        self.assertEqual(transport.negotiatedProtocol, b"http/1.1")
        self.assertEqual(len(pool._connections), 1)

    @defer.inlineCallbacks
    def test_openssl_s_server_www(self) -> Any:
        """
        openssl s_server -www, offering h2 before http/1.1 in ALPN: the
        request goes through our TLS, HTTP/1.1 is what is negotiated (Agent
        speaks nothing else), and the status page s_server sends back says
        TLS 1.3.
        """
        assert self.leaf.cert_path and self.leaf.key_path
        s_server = OpenSSLServer(
            self.leaf.cert_path,
            self.leaf.key_path,
            www=True,
            alpn="h2,http/1.1",
            tls_version=None,
        )
        self.addCleanup(s_server.stop)
        s_server.start()
        agent, recording = self.agent()
        code, body = yield self.get(agent, f"https://{LOOPBACK}:{s_server.port}/")
        self.assertEqual(code, 200, s_server.describe())
        self.assertIn(b"TLSv1.3", body)
        self.assertEqual(len(recording.transports), 1)
        self.assertOurTLS(recording.transports[0])

    @defer.inlineCallbacks
    def test_untrusted_server(self) -> Any:
        """
        A server whose CA the client does not trust: the request fails with
        the CertificateError itself (not an HTTP error wrapping it).
        """
        base = self.serve()
        agent, _ = self.agent(trust=CertificateFactory(name="Other"))
        failure = yield self.assertFailure(
            agent.request(b"GET", (base + "/").encode()), CertificateError
        )
        self.assertIn("unknown_ca", str(failure))
        self.assertEqual(self.page.transports, [])

    @defer.inlineCallbacks
    def test_wrong_host(self) -> Any:
        """
        The certificate is checked against the URL's host: one for
        127.0.0.1 and localhost does not do for 127.0.0.2.
        """
        base = self.serve()
        agent, _ = self.agent()
        url = base.replace(LOOPBACK, "127.0.0.2")
        port = reactor.listenTCP(0, self.server_factory, interface="127.0.0.2")
        self.addCleanup(port.stopListening)
        url = f"https://127.0.0.2:{port.getHost().port}/"
        failure = yield self.assertFailure(
            agent.request(b"GET", url.encode()), CertificateError
        )
        self.assertIn("127.0.0.2", str(failure))

    @defer.inlineCallbacks
    def test_cancel_during_handshake(self) -> Any:
        """
        Cancelling a request whose server never answers the ClientHello
        aborts the connection at once.
        """
        lost: defer.Deferred[None] = defer.Deferred()

        class Silent(protocol.Protocol):
            def connectionLost(self, reason: Any = None) -> None:
                lost.callback(None)

        port = reactor.listenTCP(
            0, protocol.Factory.forProtocol(Silent), interface=LOOPBACK
        )
        self.addCleanup(port.stopListening)
        agent, _ = self.agent()
        request = agent.request(
            b"GET", f"https://{LOOPBACK}:{port.getHost().port}/".encode()
        )
        reactor.callLater(0.05, request.cancel)
        yield self.assertFailure(request, CancelledError)
        yield bounded(lost, "the server to see the connection go")


class EndpointFactoryTests(TestCase):
    def test_endpoints(self) -> None:
        factory = AgentEndpointFactory(reactor)
        verifyObject(IAgentEndpointFactory, factory)
        self.assertEqual(factory.context.alpn_protocols, (b"http/1.1",))
        plain = factory.endpointForURI(URI.fromBytes(b"http://example.com/"))
        self.assertIsInstance(plain, HostnameEndpoint)
        tls = factory.endpointForURI(URI.fromBytes(b"https://example.com/"))
        verifyObject(IStreamClientEndpoint, tls)
        self.assertIn("example.com", repr(tls))
        self.assertRaises(
            SchemeNotSupported,
            factory.endpointForURI,
            URI.fromBytes(b"ftp://example.com/"),
        )
        self.assertRaises(TypeError, AgentEndpointFactory, reactor, object())
