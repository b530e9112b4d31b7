"""The lifecycle of a :class:`~twisted_sslfile.protocol.TLSProtocol`: one phase.

A TLS connection closes each direction on its own (RFC 8446 §6.1), can
fail with an alert, and runs over a transport that closes on its own
schedule.  The adapter keeps where it is in that life as one :class:`Phase`
and changes it in one place, ``TLSProtocol._transition``, which refuses any
change not in :data:`TRANSITIONS`: an impossible transition is a bug, and
the tests catch it.  (The model is h11's: every state change in one place.)

What is *not* a phase is orthogonal to it and kept beside it: what was asked
of the transport below (closed, write side shut, lost under us), the
application's read pause, and the engine's own facts
(``handshake_complete``, ``sent_close_notify``), which are asked for, not
copied.
"""

from __future__ import annotations

from twisted_sslfile.constants import StateEnum

__all__ = ["TRANSITIONS", "Phase", "PhaseError"]


class Phase(StateEnum):
    """Where a TLSProtocol is in its life.  ``docs/twisted.rst`` has the table."""

    #: The handshake runs; nothing is closing.
    HANDSHAKING = "handshaking"
    #: The handshake is done; both directions are open.
    OPEN = "open"
    #: ``loseWriteConnection``: our close_notify is out (or owed until the
    #: handshake completes); the peer's data is still read.
    WRITE_CLOSED = "write-closed"
    #: The peer's close_notify arrived and a half-closeable application is
    #: (or will be, once it resumes reading) told ``readConnectionLost``; it
    #: may still write.
    READ_CLOSED = "read-closed"
    #: Both close_notifys are out or in, but the application, paused, has
    #: not yet been told of the peer's; the transport closes after it is.
    FINISHING = "finishing"
    #: ``loseConnection``: our close_notify is out (or owed until the
    #: handshake completes); the peer's is awaited for ``close_timeout``.
    #: Data received is no longer delivered.
    CLOSING = "closing"
    #: TLS ended cleanly (the peer's close_notify, answered or not); the
    #: transport is being closed.
    DONE = "done"
    #: A fatal alert was sent: the write side is shut and input discarded
    #: until the peer's FIN or ``drain_timeout`` (so no reset destroys the
    #: alert in flight).
    DRAINING = "draining"
    #: Ended without a TLS close: ``abortConnection``, the handshake timeout,
    #: a truncation (FIN without close_notify), the peer's fatal alert.
    ABORTED = "aborted"
    #: ``connectionLost`` ran.
    CLOSED = "closed"


_ANY_END = frozenset({Phase.DRAINING, Phase.ABORTED, Phase.CLOSED})

#: For each phase, the phases it may move to.  Every change the adapter makes
#: goes through this table.
TRANSITIONS: dict[Phase, frozenset[Phase]] = {
    Phase.HANDSHAKING: _ANY_END
    | {
        Phase.OPEN,
        Phase.WRITE_CLOSED,
        Phase.CLOSING,
        # The peer's close_notify during the handshake.
        Phase.READ_CLOSED,
        Phase.DONE,
    },
    Phase.OPEN: _ANY_END
    | {Phase.WRITE_CLOSED, Phase.READ_CLOSED, Phase.CLOSING, Phase.DONE},
    Phase.WRITE_CLOSED: _ANY_END | {Phase.FINISHING, Phase.CLOSING, Phase.DONE},
    # READ_CLOSED -> FINISHING / CLOSING: only before the handshake completed
    # (our close_notify then stays owed, and is never sent).
    Phase.READ_CLOSED: _ANY_END | {Phase.DONE, Phase.FINISHING, Phase.CLOSING},
    Phase.FINISHING: _ANY_END | {Phase.DONE, Phase.CLOSING},
    Phase.CLOSING: _ANY_END | {Phase.DONE},
    Phase.DONE: frozenset({Phase.ABORTED, Phase.CLOSED}),
    Phase.DRAINING: frozenset({Phase.ABORTED, Phase.CLOSED}),
    Phase.ABORTED: frozenset({Phase.CLOSED}),
    Phase.CLOSED: frozenset(),
}


class PhaseError(AssertionError):
    """A transition outside :data:`TRANSITIONS`: a bug in the adapter."""
