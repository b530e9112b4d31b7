"""The lifecycle of an :class:`~twisted_sslfile.sslfile.SSLFile` as one value.

An SSLFile is, at any moment, in exactly one :class:`Phase`, and it changes
phase only through :func:`check_transition` (called by ``SSLFile._transition``),
which refuses any move the table :data:`TRANSITIONS` does not list.  So a
reader finds every way an SSLFile can end in one place, and a bug that would
reopen a closed file or close a handed-back socket fails loudly instead of
doing I/O on a socket that is no longer ours.

What is *not* part of the phase, because it changes independently of it:

* the mode (blocking or not) and the callbacks: the user may switch them in
  any live phase;
* what the peer and the socket did: the peer's close_notify, an end of
  stream without one, a failed send.  They can happen in any phase before
  the socket is gone, and they decide *results* (``b""`` or ``None``, which
  errno) rather than which operations are allowed;
* the error code itself.  The first failure is kept as an ``errno`` value
  whatever the phase; a failure before any close moves the phase to
  :attr:`Phase.FAILED`, one during a close leaves the closing phase as it is
  (the close still has to finish, and reports the error when it does).

The phases and how ``docs/sslfile.rst`` (section "Closing") names them:

``HANDSHAKING`` -> ``OPEN``
    the first handshake completes.
``HANDSHAKING`` / ``OPEN`` -> ``FAILED``
    an error is recorded before any close (abrupt peer close, fatal alert
    sent or received, socket error).
live -> ``CLOSING``
    ``close()``: close_notify queued behind pending data; the socket is
    closed once it is written (also ``close()`` of a failed connection, and
    a dropped SSLFile's best-effort close).
``HANDSHAKING`` / ``OPEN`` -> ``CLEAN_CLOSING``
    ``close(clean_close=True)``: close_notify queued, waiting for the
    peer's (``is_open()`` is 2).
``CLEAN_CLOSING`` -> ``CLEAN_CLOSED``
    both close_notify exchanged: the socket carries plaintext again and
    waits for :meth:`~twisted_sslfile.sslfile.SSLFile.shutdown` to hand it
    back.
``CLOSING`` / ``CLEAN_CLOSING`` -> ``CLOSED``
    the socket is closed (written out, timed out, or failed).
live / ``CLEAN_CLOSED`` -> ``DETACHED``
    ``shutdown()`` (or a failed blocking handshake) handed the open socket
    back to the caller.
``CLOSED`` -> ``SHUT``
    ``shutdown()`` after the socket was closed.
"""

from __future__ import annotations

import enum

from twisted_sslfile.constants import StateEnum

__all__ = [
    "DROPPED",
    "LIVE",
    "SOCKET_CLOSED",
    "SOCKET_GONE",
    "TRANSITIONS",
    "IsOpen",
    "Phase",
    "PhaseError",
    "check_transition",
]


class Phase(StateEnum):
    """Where an SSLFile is in its life; see the module docstring."""

    #: The first handshake has not completed; no close asked.
    HANDSHAKING = "handshaking"
    #: The handshake completed; no close asked, no failure.
    OPEN = "open"
    #: A failure was recorded before any close was asked.
    FAILED = "failed"
    #: A normal close: close_notify queued, the socket closes once it is out.
    CLOSING = "closing"
    #: A clean close: close_notify queued, waiting for the peer's.
    CLEAN_CLOSING = "clean closing"
    #: A finished clean close: the socket is plaintext again, still held.
    CLEAN_CLOSED = "clean closed"
    #: The socket is closed.
    CLOSED = "closed"
    #: TLS dropped and the open socket handed back to the caller.
    DETACHED = "detached"
    #: TLS dropped after the socket was closed.
    SHUT = "shut down"


#: Phases in which no close was asked yet: reads, writes and mode changes
#: are allowed (their results depend on the recorded failure, if any).
LIVE = frozenset({Phase.HANDSHAKING, Phase.OPEN, Phase.FAILED})

#: Phases after ``shutdown()``: the SSLFile has let go of TLS and socket.
DROPPED = frozenset({Phase.DETACHED, Phase.SHUT})

#: Phases in which the socket is closed (``query_fd()`` is -1).
SOCKET_CLOSED = frozenset({Phase.CLOSED, Phase.SHUT})

#: Phases in which the SSLFile has no socket to do I/O on any more.
SOCKET_GONE = DROPPED | SOCKET_CLOSED

#: Every phase change an SSLFile may make.
TRANSITIONS: dict[Phase, frozenset[Phase]] = {
    Phase.HANDSHAKING: frozenset(
        {
            Phase.OPEN,
            Phase.FAILED,
            Phase.CLOSING,
            Phase.CLEAN_CLOSING,
            Phase.DETACHED,
        }
    ),
    Phase.OPEN: frozenset(
        {Phase.FAILED, Phase.CLOSING, Phase.CLEAN_CLOSING, Phase.DETACHED}
    ),
    Phase.FAILED: frozenset({Phase.CLOSING, Phase.DETACHED}),
    Phase.CLOSING: frozenset({Phase.CLOSED}),
    Phase.CLEAN_CLOSING: frozenset({Phase.CLEAN_CLOSED, Phase.CLOSED}),
    Phase.CLEAN_CLOSED: frozenset({Phase.DETACHED}),
    Phase.CLOSED: frozenset({Phase.SHUT}),
    Phase.DETACHED: frozenset(),
    Phase.SHUT: frozenset(),
}


class PhaseError(RuntimeError):
    """An SSLFile tried a phase change :data:`TRANSITIONS` does not allow.

    Always a bug in SSLFile itself, never the user's or the peer's doing.
    """

    def __init__(self, old: Phase, new: Phase) -> None:
        super().__init__(f"SSLFile cannot go from {old.name} to {new.name}")
        self.old = old
        self.new = new


def check_transition(old: Phase, new: Phase) -> Phase:
    """Return ``new`` if an SSLFile in ``old`` may move to it, else raise."""
    if new not in TRANSITIONS[old]:
        raise PhaseError(old, new)
    return new


class IsOpen(enum.IntEnum):
    """The values of ``SSLFile.is_open()`` (Pike's numbers)."""

    #: Either side has closed (and nothing unread is buffered).
    CLOSED = 0
    #: Neither side has closed, or unread data is still buffered.
    OPEN = 1
    #: A clean close waits for the peer's close_notify.
    CLEAN_CLOSE_PENDING = 2
