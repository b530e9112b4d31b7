"""What :class:`~twisted_sslfile.protocol.TLSProtocol` reports and delegates.

The read-only half of the transport interface an application sees: the
addresses, socket options and system handle of the transport below
(``ITransport``, ``ITCPTransport``, ``ISystemHandle``, passed through), and
what the handshake established (``ISSLTransport``, ``INegotiated``: the
peer's certificates, the negotiated protocol, the session, exported keying
material).  None of it changes the connection's state, which is why it can
live apart from the lifecycle in :mod:`twisted_sslfile.protocol`.
"""

from __future__ import annotations

from typing import Any

from cryptography import x509
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.interfaces import (
    ILoggingContext,
    ISystemHandle,
    ITCPTransport,
    ITransport,
)
from twisted.python.failure import Failure

from twisted_sslfile.engine.connection import Connection
from twisted_sslfile.engine.events import HandshakeCompleted
from twisted_sslfile.engine.sessions import Session

__all__ = ["PassThrough", "TransportDelegation"]


class PassThrough:
    """Addresses, TCP options and system handle of the transport below.

    A mixin for the transports this package puts in front of another one
    (:class:`~twisted_sslfile.protocol.TLSProtocol`, the STARTTLS
    transport): they report what the transport below reports, explicitly,
    method by method (no ``__getattr__`` fall-through).
    """

    def _passed_through(self) -> Any:
        """The transport these methods consult."""
        raise NotImplementedError

    def getPeer(self) -> Any:
        return self._passed_through().getPeer()

    def getHost(self) -> Any:
        return self._passed_through().getHost()

    # -- ITCPTransport: options of the transport below -----------------------

    def _tcp(self) -> Any:
        below = self._passed_through()
        if ITCPTransport.providedBy(below):
            return below
        raise NotImplementedError(
            f"the transport below ({below!r}) is not a TCP transport"
        )

    def getTcpNoDelay(self) -> bool:
        return self._tcp().getTcpNoDelay()

    def setTcpNoDelay(self, enabled: bool) -> None:
        self._tcp().setTcpNoDelay(enabled)

    def getTcpKeepAlive(self) -> bool:
        return self._tcp().getTcpKeepAlive()

    def setTcpKeepAlive(self, enabled: bool) -> None:
        self._tcp().setTcpKeepAlive(enabled)

    def getHandle(self) -> Any:
        """The socket of the transport below (``ISystemHandle``), if it has one."""
        below = self._passed_through()
        handle: Any = ISystemHandle(below, None)
        if handle is None:
            raise NotImplementedError(f"{below!r} has no system handle")
        return handle.getHandle()


class TransportDelegation(PassThrough):
    """The reporting and pass-through methods of TLSProtocol (a mixin).

    It only reads the state below, which TLSProtocol sets up and keeps.
    """

    # The state read here, owned by TLSProtocol.
    wrappedProtocol: Any
    _below: ITransport  # the transport below, set by makeConnection
    _conn: Connection
    _handshake_result: HandshakeCompleted | None
    _handshake_failure: Failure | None
    _waiters: list[Deferred[HandshakeCompleted]]
    _peer_chain: list[x509.Certificate] | None

    def logPrefix(self) -> str:
        """The wrapped protocol's log prefix, marked as running over TLS."""
        inner = ILoggingContext(self.wrappedProtocol, None)
        name = (
            inner.logPrefix()
            if inner is not None
            else type(self.wrappedProtocol).__name__
        )
        return f"{name} (TLS)"

    def _passed_through(self) -> Any:
        return self._below

    # -- ISSLTransport / INegotiated -----------------------------------------

    @property
    def negotiatedProtocol(self) -> bytes | None:
        """The ALPN protocol, else the NPN one; None before the handshake."""
        result = self._handshake_result
        if result is None:
            return None
        return result.alpn_protocol or result.next_protocol

    @property
    def handshakeResult(self) -> HandshakeCompleted | None:
        """The engine's HandshakeCompleted event (version, suite, group...)."""
        return self._handshake_result

    @property
    def session(self) -> Session | None:
        """Client: the newest resumable session, to hand to a later
        connection (``TLSFactory(..., session=...)``); None until the server
        issued one. TLS 1.3 tickets arrive after the handshake, so read this
        once some data has been received."""
        return self._conn.session

    def getPeerCertificateChain(self) -> list[x509.Certificate]:
        """The peer's certificates as it sent them, leaf first (empty if none)."""
        if self._handshake_result is None:
            return []
        if self._peer_chain is None:
            self._peer_chain = [
                x509.load_der_x509_certificate(der)
                for der in self._handshake_result.peer_certificates
            ]
        return list(self._peer_chain)

    def getPeerCertificate(self) -> x509.Certificate | None:
        """The peer's leaf certificate (a ``cryptography`` object), or None."""
        chain = self.getPeerCertificateChain()
        return chain[0] if chain else None

    def whenHandshakeDone(self) -> Deferred[HandshakeCompleted]:
        """A Deferred firing with the HandshakeCompleted event, or failing with
        the reason the connection ended before it (TLSError, timeout, ...)."""
        if self._handshake_result is not None:
            return succeed(self._handshake_result)
        if self._handshake_failure is not None:
            return fail(self._handshake_failure)
        waiter: Deferred[HandshakeCompleted] = Deferred()
        self._waiters.append(waiter)
        return waiter

    def exportKeyingMaterial(self, label: bytes, context: bytes, length: int) -> bytes:
        """Keying material exporter (RFC 8446 §7.5)."""
        if not self._conn.handshake_complete:
            raise RuntimeError("keying material needs a completed handshake")
        return self._conn.export_keying_material(label, context, length)
