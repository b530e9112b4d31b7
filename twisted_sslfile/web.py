"""HTTPS for ``twisted.web.client.Agent`` (and treq) through this library.

Why an ``IAgentEndpointFactory`` and not an ``IPolicyForHTTPS``: ``Agent``
hands whatever ``policy.creatorForNetloc()`` returns to Twisted's
``wrapClientTLS``, which is Twisted's pyOpenSSL TLS; the creator must return
an ``OpenSSL.SSL.Connection``.  No policy object can make Agent use another
TLS stack.  ``Agent.usingEndpointFactory`` is the documented hook for choosing
the transport per URI, and connection pooling, timeouts and redirects keep
working on top of it.

Agent speaks HTTP/1.1 only (Twisted has an HTTP/2 *server*, not a client), so
every connection offers exactly ``http/1.1`` in ALPN: a server that prefers h2
still picks HTTP/1.1, and one that speaks nothing else fails the handshake
with ``no_application_protocol`` instead of sending frames Agent cannot read.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.endpoints import HostnameEndpoint
from twisted.internet.interfaces import IStreamClientEndpoint
from twisted.python.failure import Failure
from twisted.web.client import URI, Agent
from twisted.web.error import SchemeNotSupported
from twisted.web.iweb import IAgentEndpointFactory
from zope.interface import implementer

from twisted_sslfile.context import Context
from twisted_sslfile.endpoints import TLSClientEndpoint
from twisted_sslfile.protocol import DEFAULT_HANDSHAKE_TIMEOUT

__all__ = ["AgentEndpointFactory", "make_agent"]

#: What Agent speaks; offered in ALPN on every HTTPS connection.
HTTP_1_1 = b"http/1.1"


@implementer(IStreamClientEndpoint)
class _HandshakedEndpoint:
    """Fire ``connect`` once the TLS handshake is done, not at TCP connect.

    Agent writes its request as soon as ``connect`` fires; a handshake that
    fails after that surfaces as ``ResponseNeverReceived`` wrapping the real
    reason.  Waiting (which costs nothing: the request could not leave
    before the handshake anyway) makes the request fail with the TLS error
    itself, e.g. the :class:`~twisted_sslfile.errors.CertificateError` of a
    server that cannot be verified.
    """

    def __init__(self, inner: TLSClientEndpoint) -> None:
        self.inner = inner

    def __repr__(self) -> str:
        return f"<HTTPS endpoint {self.inner!r}>"

    def connect(self, protocolFactory: Any) -> Deferred[Any]:
        transport: list[Any] = []
        cancelled: list[bool] = []

        def cancel(_: Deferred[Any]) -> None:
            # Deferred.cancel fails ``result`` with CancelledError once this
            # returns; what the abort reports meanwhile is ignored.
            cancelled.append(True)
            if transport:
                # Connected, still shaking hands.
                transport[0].abortConnection()
            else:
                connecting.cancel()

        result: Deferred[Any] = Deferred(cancel)

        def connected(protocol: Any) -> None:
            tls = protocol.transport
            transport.append(tls)
            tls.whenHandshakeDone().addCallbacks(
                lambda _: done(protocol), lambda reason: done(reason)
            )

        def done(outcome: Any) -> None:
            if cancelled or result.called:
                return
            if isinstance(outcome, Failure):
                result.errback(outcome)
            else:
                result.callback(outcome)

        connecting = self.inner.connect(protocolFactory)
        connecting.addCallbacks(connected, done)
        return result


@implementer(IAgentEndpointFactory)
class AgentEndpointFactory:
    """Endpoints for Agent: plain TCP for ``http:``, this library's TLS for
    ``https:``.

    Use it with ``Agent.usingEndpointFactory(reactor, factory, pool)``, or
    let :func:`make_agent` do that.

    :param reactor: the reactor for ``HostnameEndpoint`` (name resolution,
        connection attempts).
    :param context: the client's TLS policy: trust roots, client
        certificate, versions...; a default :class:`Context` (the system's
        trust roots, verification on) when None.  Its ALPN list is replaced
        by ``http/1.1``.  Every server is verified against the URL's host.
    :param connect_timeout: seconds for the TCP connection (None: Twisted's
        default).
    :param bind_address: local address to bind, as for ``HostnameEndpoint``.
    :param handshake_timeout: seconds the TLS handshake may take.
    """

    def __init__(
        self,
        reactor: Any,
        context: Context | None = None,
        *,
        connect_timeout: float | None = None,
        bind_address: Any = None,
        handshake_timeout: float | None = DEFAULT_HANDSHAKE_TIMEOUT,
    ) -> None:
        if context is None:
            context = Context()
        elif not isinstance(context, Context):
            raise TypeError(
                f"context must be a twisted_sslfile Context, "
                f"not {type(context).__name__}"
            )
        self.reactor = reactor
        self.context = context.replace(alpn_protocols=(HTTP_1_1,), npn_protocols=())
        self.connect_timeout = connect_timeout
        self.bind_address = bind_address
        self.handshake_timeout = handshake_timeout

    def endpointForURI(self, uri: URI) -> Any:
        """An endpoint for ``uri``: TCP for http/ws, TLS for https/wss."""
        try:
            host = uri.host.decode("ascii")
        except UnicodeDecodeError:
            raise ValueError(
                f"the host of {uri.toBytes()!r} is not ASCII; give it as IDNA"
            ) from None
        if host.startswith("[") and host.endswith("]"):
            host = host[1:-1]  # an IPv6 literal
        kwargs: dict[str, Any] = {"bindAddress": self.bind_address}
        if self.connect_timeout is not None:
            kwargs["timeout"] = self.connect_timeout
        tcp = HostnameEndpoint(self.reactor, host, uri.port, **kwargs)
        if uri.scheme in (b"http", b"ws"):
            return tcp
        if uri.scheme in (b"https", b"wss"):
            return _HandshakedEndpoint(
                TLSClientEndpoint(
                    tcp,
                    self.context,
                    host,
                    handshake_timeout=self.handshake_timeout,
                )
            )
        raise SchemeNotSupported(f"Unsupported scheme: {uri.scheme!r}")


def make_agent(
    reactor: Any,
    context: Context | None = None,
    *,
    pool: Any = None,
    connect_timeout: float | None = None,
    bind_address: Any = None,
    handshake_timeout: float | None = DEFAULT_HANDSHAKE_TIMEOUT,
) -> Agent:
    """A ``twisted.web.client.Agent`` whose HTTPS is this library's.

    ``pool`` is an ``HTTPConnectionPool`` (persistent connections); the other
    arguments are :class:`AgentEndpointFactory`'s.  For treq, pass the agent
    on: ``treq.get(url, agent=agent)`` or ``treq.client.HTTPClient(agent)``.
    """
    factory = AgentEndpointFactory(
        reactor,
        context,
        connect_timeout=connect_timeout,
        bind_address=bind_address,
        handshake_timeout=handshake_timeout,
    )
    return Agent.usingEndpointFactory(reactor, factory, pool=pool)
