"""The SSLFile lifecycle: its phase table, and the phases real SSLFiles take.

The table in :mod:`twisted_sslfile._sslfile_state` is the one statement of
how an SSLFile may end; these tests check the table's own shape (every
phase reachable, every phase able to end, no way back to "open" once a
close was asked) and that SSLFiles driven through the documented closes
walk exactly the paths docs/sslfile.rst (section "Closing") describes.
"""

from __future__ import annotations

import errno
import socket
import threading
from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from tests.certs import CertificateFactory
from twisted_sslfile._sslfile_state import (
    DROPPED,
    LIVE,
    SOCKET_CLOSED,
    SOCKET_GONE,
    TRANSITIONS,
    IsOpen,
    Phase,
    PhaseError,
    check_transition,
)
from twisted_sslfile.context import Context
from twisted_sslfile.sslfile import SSLFile

TIMEOUT = 20.0

TERMINAL = {Phase.DETACHED, Phase.SHUT}


def _reachable(start: Phase) -> set[Phase]:
    seen = {start}
    todo = [start]
    while todo:
        for target in TRANSITIONS[todo.pop()]:
            if target not in seen:
                seen.add(target)
                todo.append(target)
    return seen


class TransitionTableTests(SynchronousTestCase):
    """The shape of the transition table."""

    def test_every_phase_has_an_entry(self) -> None:
        self.assertEqual(set(TRANSITIONS), set(Phase))
        for targets in TRANSITIONS.values():
            self.assertTrue(targets <= set(Phase))

    def test_no_phase_moves_to_itself(self) -> None:
        for phase, targets in TRANSITIONS.items():
            self.assertNotIn(phase, targets)

    def test_only_dropped_phases_are_terminal(self) -> None:
        """shutdown() ends every SSLFile; nothing else is an end."""
        terminal = {phase for phase, targets in TRANSITIONS.items() if not targets}
        self.assertEqual(terminal, TERMINAL)
        self.assertEqual(DROPPED, TERMINAL)

    def test_every_phase_reachable_from_the_start(self) -> None:
        self.assertEqual(_reachable(Phase.HANDSHAKING), set(Phase))

    def test_every_phase_can_end(self) -> None:
        for phase in Phase:
            self.assertTrue(_reachable(phase) & TERMINAL, phase)

    def test_no_way_back_once_closing(self) -> None:
        """Once a close was asked (or the socket handed back), no path leads
        to a live phase: a closed SSLFile never reads or writes again."""
        for phase in set(Phase) - LIVE:
            self.assertFalse(_reachable(phase) & LIVE, phase)

    def test_failure_only_before_a_close(self) -> None:
        """FAILED is entered from the live phases only; a failure during a
        close leaves the closing phase to finish (and report it)."""
        sources = {p for p, targets in TRANSITIONS.items() if Phase.FAILED in targets}
        self.assertEqual(sources, {Phase.HANDSHAKING, Phase.OPEN})

    def test_socket_sets(self) -> None:
        """A closed socket is never handed back, and a handed-back one is
        never closed by the SSLFile afterwards."""
        self.assertEqual(SOCKET_GONE, DROPPED | SOCKET_CLOSED)
        self.assertFalse(SOCKET_GONE & LIVE)
        for phase in SOCKET_CLOSED:
            self.assertNotIn(Phase.DETACHED, _reachable(phase))
        self.assertFalse(_reachable(Phase.CLEAN_CLOSED) & SOCKET_CLOSED)
        self.assertFalse(_reachable(Phase.DETACHED) - {Phase.DETACHED})

    def test_check_transition_allows_listed_moves(self) -> None:
        for old, targets in TRANSITIONS.items():
            for new in targets:
                self.assertIs(check_transition(old, new), new)

    def test_check_transition_refuses_the_rest(self) -> None:
        for old, targets in TRANSITIONS.items():
            for new in set(Phase) - targets:
                with self.assertRaises(PhaseError) as caught:
                    check_transition(old, new)
                self.assertIs(caught.exception.old, old)
                self.assertIs(caught.exception.new, new)
                self.assertIn(old.name, str(caught.exception))
                self.assertIn(new.name, str(caught.exception))

    def test_is_open_values(self) -> None:
        """Pike's numbers."""
        self.assertEqual(
            [IsOpen.CLOSED, IsOpen.OPEN, IsOpen.CLEAN_CLOSE_PENDING], [0, 1, 2]
        )


class RecordingSSLFile(SSLFile):
    """An SSLFile that remembers every phase it moved to."""

    __slots__ = ("phases",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.phases: list[Phase] = []
        super().__init__(*args, **kwargs)

    def _transition(self, new: Phase) -> None:
        super()._transition(new)
        self.phases.append(new)


class LifecycleTests(SynchronousTestCase):
    """Real SSLFiles walk the documented paths through the table."""

    def setUp(self) -> None:
        from twisted.internet import reactor

        self.reactor = reactor
        pki = CertificateFactory(self.mktemp())
        self.server_context = Context(
            credentials=[pki.server("example.com").credential()]
        )
        self.client_context = Context(trust_roots=pki.trust_roots)

    def pair(self) -> tuple[socket.socket, socket.socket]:
        a, b = socket.socketpair()
        self.addCleanup(a.close)
        self.addCleanup(b.close)
        return a, b

    def client(self, sock: socket.socket, blocking: bool = False) -> RecordingSSLFile:
        return RecordingSSLFile(
            sock,
            self.client_context,
            True,
            blocking,
            server_name="example.com",
            backend=self.reactor,
        )

    def server(self, sock: socket.socket, blocking: bool = False) -> RecordingSSLFile:
        return RecordingSSLFile(
            sock, self.server_context, False, blocking, backend=self.reactor
        )

    def connected(self) -> tuple[RecordingSSLFile, RecordingSSLFile]:
        """A blocking client and server whose handshake completed."""
        a, b = self.pair()
        holder: list[RecordingSSLFile] = []

        def serve() -> None:
            server = self.server(b, blocking=True)
            holder.append(server)
            server.write(b"")  # a blocking server handshakes in write

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        client = self.client(a, blocking=True)
        thread.join(TIMEOUT)
        self.assertEqual(len(holder), 1)
        return client, holder[0]

    def test_shutdown_during_handshake_detaches(self) -> None:
        a, _b = self.pair()
        f = self.client(a)
        self.assertIs(f._phase, Phase.HANDSHAKING)
        self.assertIs(f.shutdown(), a)
        self.assertEqual(f.phases, [Phase.DETACHED])
        with self.assertRaises(PhaseError):
            f._transition(Phase.OPEN)
        self.assertIs(f._phase, Phase.DETACHED)

    def test_close_during_handshake(self) -> None:
        """close() then shutdown(): CLOSING, CLOSED once the queue is out,
        SHUT."""
        a, _b = self.pair()
        f = self.client(a)
        self.assertEqual(f.close(), 1)
        self.assertEqual(f.phases, [Phase.CLOSING, Phase.CLOSED])
        self.assertEqual(f.query_fd(), -1)
        self.assertIsNone(f.shutdown())
        self.assertEqual(f.phases, [Phase.CLOSING, Phase.CLOSED, Phase.SHUT])

    def test_abrupt_peer_close_fails_then_closes(self) -> None:
        a, b = self.pair()
        f = self.client(a)
        b.recv(65536)  # the ClientHello: closing with it unread would reset
        b.close()
        self.assertEqual(f.is_open(), 0)
        self.assertEqual(f.phases, [Phase.FAILED])
        self.assertEqual(f.close(), 0)
        self.assertEqual(f.errno(), errno.EPIPE)
        self.assertEqual(f.phases, [Phase.FAILED, Phase.CLOSING, Phase.CLOSED])

    def test_handshake_opens_and_normal_close(self) -> None:
        client, server = self.connected()
        self.assertEqual(client.phases, [Phase.OPEN])
        self.assertEqual(server.phases, [Phase.OPEN])
        self.assertEqual(client.close(), 1)
        self.assertEqual(client.phases, [Phase.OPEN, Phase.CLOSING, Phase.CLOSED])
        self.assertIsNone(client.shutdown())
        self.assertEqual(client.phases[-1], Phase.SHUT)
        server.shutdown()

    def test_clean_close_hands_back_the_socket(self) -> None:
        client, server = self.connected()
        results: list[int] = []
        thread = threading.Thread(
            target=lambda: results.append(server.close(None, True)), daemon=True
        )
        thread.start()
        self.assertEqual(client.close(None, True), 1)
        thread.join(TIMEOUT)
        self.assertEqual(results, [1])
        for f in (client, server):
            self.assertEqual(
                f.phases, [Phase.OPEN, Phase.CLEAN_CLOSING, Phase.CLEAN_CLOSED]
            )
            sock = f.shutdown()
            self.assertIsNotNone(sock)
            self.assertEqual(f.phases[-1], Phase.DETACHED)
            # A handed-back socket is the caller's: the SSLFile cannot close it.
            with self.assertRaises(PhaseError):
                f._transition(Phase.CLOSED)
