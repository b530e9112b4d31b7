"""``transport.startTLS(contextFactory)`` for existing Twisted protocols.

Protocols across Twisted and its ecosystem switch to TLS mid-stream by
calling ``self.transport.startTLS(contextFactory)``
(``twisted.internet.interfaces.ITLSTransport``): ``twisted.mail``'s ESMTP
server and ``ESMTPSender``, IMAP4, ``twisted.words`` XMPP, ldaptor.  A TCP
transport implements that with pyOpenSSL.  This module gives those protocols
this library's TLS instead, without subclassing them:

* :class:`SSLFileContextFactory` is what the protocol is given where it takes
  a context factory: a :class:`~twisted_sslfile.context.Context` and the role
  (client with the server's name, or server).
* :class:`StartTLSFactory` wraps the protocol's factory.  Each connection's
  protocol then sees a :class:`StartTLSTransport` as its transport: a thin
  layer that passes plaintext straight through and provides
  ``ITLSTransport``.  Its ``startTLS`` runs
  :func:`~twisted_sslfile.protocol.start_tls` underneath itself, so that
  from then on everything the protocol writes (through this transport, even
  by an object that kept a reference to it) is encrypted, and everything
  read is decrypted first.

Bytes the protocol had already received when it called ``startTLS`` stay
with the protocol, as with Twisted's own ``startTLS``; every byte read after
the call goes to TLS.  See ``docs/twisted.rst`` for why that is the right
split.
"""

from __future__ import annotations

from typing import Any, NoReturn

from twisted.internet.interfaces import (
    IConsumer,
    IHalfCloseableProtocol,
    IHandshakeListener,
    ILoggingContext,
    INegotiated,
    IPushProducer,
    IReactorTime,
    ISSLTransport,
    ISystemHandle,
    ITLSTransport,
)
from twisted.internet.protocol import Protocol, connectionDone
from twisted.protocols.policies import WrappingFactory
from twisted.python.failure import Failure
from zope.interface import alsoProvides, implementer

from twisted_sslfile._delegation import PassThrough
from twisted_sslfile.context import Context
from twisted_sslfile.protocol import (
    DEFAULT_CLOSE_TIMEOUT,
    DEFAULT_DRAIN_TIMEOUT,
    DEFAULT_HANDSHAKE_TIMEOUT,
    TLSFactory,
    TLSProtocol,
    _check_timeouts,
    start_tls,
)

__all__ = ["SSLFileContextFactory", "StartTLSFactory", "StartTLSTransport"]


class SSLFileContextFactory:
    """TLS settings for one side of a STARTTLS upgrade.

    Give it to a protocol wherever the protocol takes a context factory
    (``ESMTP(contextFactory=...)``, ``ESMTPSenderFactory(...,
    contextFactory=...)``, ``IMAP4Server(contextFactory=...)``...), and
    serve or connect that protocol's factory through :class:`StartTLSFactory`.

    :param context: policy and credentials: a server's certificates, a
        client's trust roots.
    :param is_client: the role in the TLS handshake.
    :param server_name: client only: the name sent in SNI and checked
        against the server's certificate; required when ``context``
        verifies (the default).
    """

    def __init__(
        self, context: Context, is_client: bool, server_name: str | None = None
    ) -> None:
        if not isinstance(context, Context):
            raise TypeError(
                f"context must be a twisted_sslfile Context, "
                f"not {type(context).__name__}"
            )
        if server_name is not None and not is_client:
            raise ValueError("server_name is a client option")
        if is_client and server_name is None and context.verify:
            raise ValueError(
                "a verifying client needs server_name: the host name or IP address "
                "the server's certificate must match"
            )
        self.context = context
        self.is_client = bool(is_client)
        self.server_name = server_name

    def getContext(self) -> NoReturn:
        """Refuse, loudly, to be used by Twisted's own (pyOpenSSL) TLS.

        A plain TCP transport's ``startTLS`` asks any object it does not
        recognise for ``getContext()``; without this method the mistake
        (forgetting :class:`StartTLSFactory`) would surface as an
        ``AttributeError`` from deep inside Twisted.
        """
        raise TypeError(
            "SSLFileContextFactory works only with a transport made by "
            "twisted_sslfile.StartTLSFactory (wrap the protocol's factory in "
            "it); Twisted's own startTLS needs a pyOpenSSL context factory"
        )

    def __repr__(self) -> str:
        role = "client" if self.is_client else "server"
        name = f" {self.server_name!r}" if self.server_name is not None else ""
        return f"<SSLFileContextFactory {role}{name} {self.context!r}>"


@implementer(ITLSTransport, IConsumer, IPushProducer, ILoggingContext)
class StartTLSTransport(PassThrough, Protocol):
    """The transport a protocol sees under :class:`StartTLSFactory`.

    Before ``startTLS`` it passes bytes and calls straight to the transport
    below (TCP, UNIX...).  ``startTLS(contextFactory)`` puts a
    :class:`~twisted_sslfile.protocol.TLSProtocol` between the two: the
    transport below then delivers to TLS, TLS delivers the plaintext here
    and on to the protocol, and every method here goes to TLS.  The
    protocol's ``transport`` stays this object (as a TCP transport stays
    itself under Twisted's ``startTLS``); it provides ``ISSLTransport`` and
    ``INegotiated`` from the upgrade on, and :attr:`tls` is the
    ``TLSProtocol`` for the rest of its API (``whenHandshakeDone()``,
    ``handshakeResult``, ``getPeerCertificateChain()``...).

    There is no ``__getattr__`` fall-through: the methods below are the
    whole interface.
    """

    #: The transport below: TCP (or UNIX...), then the TLSProtocol.
    transport: Any

    def __init__(
        self,
        factory: StartTLSFactory | None,
        wrappedProtocol: Any,
        *,
        context_factory: SSLFileContextFactory | None = None,
        handshake_timeout: float | None = DEFAULT_HANDSHAKE_TIMEOUT,
        close_timeout: float | None = DEFAULT_CLOSE_TIMEOUT,
        drain_timeout: float = DEFAULT_DRAIN_TIMEOUT,
        clock: IReactorTime | None = None,
    ) -> None:
        self.factory = factory
        self.wrappedProtocol = wrappedProtocol
        self._default = context_factory
        self._handshake_timeout = handshake_timeout
        self._close_timeout = close_timeout
        self._drain_timeout = drain_timeout
        self._clock = clock
        #: The TLSProtocol once ``startTLS`` ran, else None.
        self.tls: TLSProtocol | None = None
        self._producer: Any = None
        self._streaming = False
        self._reading_paused = False
        # Toward whatever is below, this object answers for the protocol:
        # half-close and handshake notifications reach it only if the
        # protocol wants them.
        if IHalfCloseableProtocol.providedBy(wrappedProtocol):
            alsoProvides(self, IHalfCloseableProtocol)
        if IHandshakeListener.providedBy(wrappedProtocol):
            alsoProvides(self, IHandshakeListener)

    def __repr__(self) -> str:
        state = "TLS" if self.tls is not None else "plaintext"
        return f"<StartTLSTransport {state} for {self.wrappedProtocol!r}>"

    def logPrefix(self) -> str:
        inner: Any = ILoggingContext(self.wrappedProtocol, None)
        if inner is not None:
            return inner.logPrefix()
        return type(self.wrappedProtocol).__name__

    # -- IProtocol, toward the transport below (later: TLS) -------------------

    def connectionMade(self) -> None:
        if self.factory is not None:
            self.factory.registerProtocol(self)
        if ISystemHandle.providedBy(self.transport):
            alsoProvides(self, ISystemHandle)
        self.wrappedProtocol.makeConnection(self)

    def dataReceived(self, data: bytes) -> None:
        self.wrappedProtocol.dataReceived(data)

    def readConnectionLost(self) -> None:
        self.wrappedProtocol.readConnectionLost()

    def writeConnectionLost(self) -> None:
        self.wrappedProtocol.writeConnectionLost()

    def handshakeCompleted(self) -> None:
        self.wrappedProtocol.handshakeCompleted()

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self.connected = False
        if self.factory is not None:
            self.factory.unregisterProtocol(self)
        self.wrappedProtocol.connectionLost(reason)

    # -- ITLSTransport ---------------------------------------------------------

    def startTLS(self, contextFactory: Any) -> None:
        """Run TLS from here on, with the settings ``contextFactory`` carries.

        ``contextFactory`` is an :class:`SSLFileContextFactory`.  Anything
        else (say, the pyOpenSSL options ``ESMTPSender`` builds for itself)
        is replaced by the factory's ``context_factory`` when one was
        configured, and refused with a ``TypeError`` when not.  A second call
        raises ``RuntimeError``: TLS cannot be started twice.
        """
        if self.tls is not None:
            raise RuntimeError("TLS has already been started on this connection")
        if not self.connected:
            raise RuntimeError("startTLS on a connection that is closed")
        options = self._options(contextFactory)
        below = self.transport
        # As Twisted's startTLS does: a producer registered on the plaintext
        # transport moves to the TLS one (whose back-pressure it must obey).
        producer, streaming = self._producer, self._streaming
        if producer is not None:
            below.unregisterProducer()
        paused = self._reading_paused
        if paused:
            # TLS must read to complete its handshake; it pauses the
            # transport below itself once the handshake is done.
            below.resumeProducing()
        tls = start_tls(
            self,
            options.context,
            options.is_client,
            options.server_name,
            handshake_timeout=self._handshake_timeout,
            close_timeout=self._close_timeout,
            drain_timeout=self._drain_timeout,
            clock=self._clock,
        )
        self.tls = tls
        alsoProvides(self, ISSLTransport, INegotiated)
        if paused:
            tls.pauseProducing()
        if producer is not None:
            tls.registerProducer(producer, streaming)

    def _options(self, contextFactory: Any) -> SSLFileContextFactory:
        if isinstance(contextFactory, SSLFileContextFactory):
            return contextFactory
        if self._default is not None:
            return self._default
        raise TypeError(
            f"startTLS was given {type(contextFactory).__name__}, which is not a "
            f"twisted_sslfile.SSLFileContextFactory; give the protocol one, or "
            f"StartTLSFactory(..., context_factory=...) to use instead"
        )

    # -- ISSLTransport / INegotiated -----------------------------------------

    def getPeerCertificate(self) -> Any:
        """The peer's leaf certificate (``cryptography``), or None."""
        return self.tls.getPeerCertificate() if self.tls is not None else None

    @property
    def negotiatedProtocol(self) -> bytes | None:
        """The ALPN (else NPN) protocol; None before or without TLS."""
        return self.tls.negotiatedProtocol if self.tls is not None else None

    # -- ITransport / ITCPTransport, toward the protocol ---------------------

    @property
    def disconnecting(self) -> bool:
        return bool(getattr(self.transport, "disconnecting", False))

    @property
    def disconnected(self) -> bool:
        return bool(getattr(self.transport, "disconnected", False))

    def write(self, data: bytes) -> None:
        self.transport.write(data)

    def writeSequence(self, data: Any) -> None:
        self.transport.writeSequence(data)

    def loseConnection(self) -> None:
        self.transport.loseConnection()

    def loseWriteConnection(self) -> None:
        self.transport.loseWriteConnection()

    def abortConnection(self) -> None:
        self.transport.abortConnection()

    def _passed_through(self) -> Any:
        return self.transport

    # -- IConsumer -------------------------------------------------------------

    def registerProducer(self, producer: Any, streaming: bool) -> None:
        self.transport.registerProducer(producer, streaming)
        self._producer, self._streaming = producer, bool(streaming)

    def unregisterProducer(self) -> None:
        self._producer = None
        self.transport.unregisterProducer()

    # -- IPushProducer: the protocol pausing its reads -----------------------

    def pauseProducing(self) -> None:
        self._reading_paused = True
        self.transport.pauseProducing()

    def resumeProducing(self) -> None:
        self._reading_paused = False
        self.transport.resumeProducing()

    def stopProducing(self) -> None:
        self.transport.stopProducing()


class StartTLSFactory(WrappingFactory):
    """Give every protocol of ``wrapped_factory`` an ``ITLSTransport`` whose
    ``startTLS`` runs this library's TLS.

    Listen or connect with it where the protocol's own factory went::

        reactor.listenTCP(25, StartTLSFactory(smtpFactory))

    :param context_factory: an :class:`SSLFileContextFactory` used when a
        protocol passes ``startTLS`` anything else (such as the pyOpenSSL
        options some protocols build when given none); None refuses those.
    :param handshake_timeout: seconds the TLS handshake may take after
        ``startTLS``; None for no limit.
    :param close_timeout: see :class:`~twisted_sslfile.protocol.TLSProtocol`.
    :param drain_timeout: see :class:`~twisted_sslfile.protocol.TLSProtocol`.
    :param clock: ``IReactorTime`` for the timeouts (the reactor when None).
    """

    protocol = StartTLSTransport  # type: ignore[assignment]

    def __init__(
        self,
        wrapped_factory: Any,
        context_factory: SSLFileContextFactory | None = None,
        *,
        handshake_timeout: float | None = DEFAULT_HANDSHAKE_TIMEOUT,
        close_timeout: float | None = DEFAULT_CLOSE_TIMEOUT,
        drain_timeout: float = DEFAULT_DRAIN_TIMEOUT,
        clock: IReactorTime | None = None,
    ) -> None:
        super().__init__(wrapped_factory)
        if context_factory is not None and not isinstance(
            context_factory, SSLFileContextFactory
        ):
            raise TypeError(
                f"context_factory must be an SSLFileContextFactory, "
                f"not {type(context_factory).__name__}"
            )
        # Checked here too, so that a bad value fails when the factory is
        # made rather than at the first startTLS.
        _check_timeouts(handshake_timeout, close_timeout, drain_timeout)
        self.context_factory = context_factory
        self.handshake_timeout = handshake_timeout
        self.close_timeout = close_timeout
        self.drain_timeout = drain_timeout
        self.clock = clock

    # A plain Factory underneath has none of ClientFactory's callbacks;
    # forwarded only when present, exactly as TLSFactory does.
    startedConnecting = TLSFactory.startedConnecting
    clientConnectionFailed = TLSFactory.clientConnectionFailed
    clientConnectionLost = TLSFactory.clientConnectionLost

    def buildProtocol(self, addr: Any) -> StartTLSTransport | None:  # type: ignore[override]
        wrapped = self.wrappedFactory.buildProtocol(addr)
        if wrapped is None:
            return None
        return self.protocol(
            self,
            wrapped,
            context_factory=self.context_factory,
            handshake_timeout=self.handshake_timeout,
            close_timeout=self.close_timeout,
            drain_timeout=self.drain_timeout,
            clock=self.clock,
        )
