"""Why a TLS connection over Twisted was lost: Twisted's error classes, extended.

The adapters report the end of a connection through ``connectionLost(reason)``
and Deferred errbacks, as Twisted's own transports do.  The reasons that
are TLS's own extend Twisted's classes, so that code treating every lost or
timed-out connection alike needs no change and code that cares can check.

They live apart from :mod:`twisted_sslfile.errors`, where every other error
class is, because the sans-I/O engine imports ``errors`` and must load no
Twisted.  :mod:`twisted_sslfile.protocol` re-exports them.
"""

from __future__ import annotations

from twisted.internet import error

__all__ = ["CloseTimeoutError", "HandshakeTimeoutError", "TLSTruncationError"]


class TLSTruncationError(error.ConnectionLost):
    """The transport closed without the peer's close_notify.

    Whatever the peer was sending may have been cut short (a truncation,
    RFC 8446 §6.1).  A subclass of ``ConnectionLost``, so code that treats any
    unclean loss alike needs no change; code that cares can check for it.
    """

    MESSAGE = "Connection closed without a TLS close_notify (possible truncation)"


class CloseTimeoutError(error.ConnectionAborted):
    """The close did not finish within ``close_timeout``; the transport was aborted.

    The peer neither answered close_notify nor took everything written to it
    in time (typically it stopped reading), so the transport's write buffer
    could not drain.  Waiting for it, as TCP's ``loseConnection`` does, would
    keep the connection and its buffers forever; what was still unsent is
    dropped instead.  A ``ConnectionAborted``, and so a ``ConnectionLost``.
    """

    MESSAGE = "TLS close did not finish within close_timeout; connection aborted"


class HandshakeTimeoutError(error.TimeoutError):
    """The TLS handshake did not complete in time."""

    MESSAGE = "TLS handshake timed out"
