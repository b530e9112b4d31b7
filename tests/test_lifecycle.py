"""The lifecycle of TLSProtocol: one phase, one checked transition point.

Each scenario records the phases both ends go through (the exact path, so a
change in how closing works shows up here) and every change must be in
``_lifecycle.TRANSITIONS``; the table itself is checked for shape, and an
illegal transition raises.
"""

from __future__ import annotations

from typing import Any

from twisted.internet import error
from twisted.trial.unittest import SynchronousTestCase

from tests.test_protocol import HalfCloser, Recorder, TLSTestMixin
from twisted_sslfile._lifecycle import TRANSITIONS, Phase, PhaseError
from twisted_sslfile.errors import TLSError
from twisted_sslfile.protocol import (
    DEFAULT_CLOSE_TIMEOUT,
    DEFAULT_DRAIN_TIMEOUT,
    DEFAULT_HANDSHAKE_TIMEOUT,
    CloseTimeoutError,
    HandshakeTimeoutError,
    TLSProtocol,
    TLSTruncationError,
)

H, OP, WC, RC, FI, CL, DO, DR, AB, CD = (
    Phase.HANDSHAKING,
    Phase.OPEN,
    Phase.WRITE_CLOSED,
    Phase.READ_CLOSED,
    Phase.FINISHING,
    Phase.CLOSING,
    Phase.DONE,
    Phase.DRAINING,
    Phase.ABORTED,
    Phase.CLOSED,
)


class TransitionTableTests(SynchronousTestCase):
    def test_every_phase_has_an_entry(self) -> None:
        self.assertEqual(set(TRANSITIONS), set(Phase))

    def test_closed_is_final(self) -> None:
        self.assertEqual(TRANSITIONS[Phase.CLOSED], frozenset())

    def test_every_phase_can_end(self) -> None:
        """connectionLost can come in any phase: each reaches CLOSED at once."""
        for phase in set(Phase) - {Phase.CLOSED}:
            self.assertIn(Phase.CLOSED, TRANSITIONS[phase], phase)

    def test_no_way_back(self) -> None:
        """Nothing returns to HANDSHAKING or OPEN, and no phase is its own successor."""
        for phase, targets in TRANSITIONS.items():
            self.assertNotIn(phase, targets)
            self.assertNotIn(Phase.HANDSHAKING, targets)
            if phase is not Phase.HANDSHAKING:
                self.assertNotIn(Phase.OPEN, targets)

    def test_illegal_transition_raises(self) -> None:
        """A change outside the table is refused, and the phase stays."""
        tls = TLSProtocol(
            None,
            Recorder(),
            context=_context(),
            is_client=False,
        )
        self.assertIs(tls._phase, Phase.HANDSHAKING)
        with self.assertRaises(PhaseError) as caught:
            tls._transition(Phase.FINISHING)
        self.assertIn("HANDSHAKING -> FINISHING", str(caught.exception))
        self.assertIs(tls._phase, Phase.HANDSHAKING)
        tls._transition(Phase.CLOSED)
        for phase in Phase:
            self.assertRaises(PhaseError, tls._transition, phase)
        self.assertIsInstance(PhaseError("x"), AssertionError)


def _context() -> Any:
    from tests.test_protocol import pki

    return pki()["server"]


class LifecyclePathTests(TLSTestMixin, SynchronousTestCase):
    """The phases each end goes through, scenario by scenario."""

    def setUp(self) -> None:
        super().setUp()
        self.paths: dict[int, list[Phase]] = {}
        original = TLSProtocol._transition
        paths = self.paths

        def recording(tls: TLSProtocol, phase: Phase) -> None:
            before = tls._phase
            original(tls, phase)  # raises PhaseError on an illegal change
            self.assertIn(phase, TRANSITIONS[before])
            paths.setdefault(id(tls), [before]).append(phase)

        self.patch(TLSProtocol, "_transition", recording)

    def path(self, tls: TLSProtocol) -> list[Phase]:
        return self.paths.get(id(tls), [tls._phase])

    def test_clean_close(self) -> None:
        client, server, network = self.pair()
        client.loseConnection()
        network.flush()
        self.assertEqual(self.path(client), [H, OP, CL, DO, CD])
        # The server is not half-closeable: it answers and closes.
        self.assertEqual(self.path(server), [H, OP, DO, CD])
        self.assertDone(client.wrappedProtocol)

    def test_close_before_handshake(self) -> None:
        """Nothing written: no session to close; written: close_notify owed."""
        client, server, network = self.pair(flush=False)
        client.loseConnection()
        network.flush()
        self.assertEqual(self.path(client), [H, CL, CD])

        def made(app: Recorder) -> None:
            app.transport.write(b"early")
            app.transport.loseConnection()

        app = Recorder()
        app.on_made = made
        client, server, network = self.pair(app)
        self.assertEqual(self.path(client), [H, CL, DO, CD])
        self.assertEqual(bytes(server.wrappedProtocol.data), b"early")
        self.assertDone(app)

    def test_half_close_ours(self) -> None:
        """loseWriteConnection, then the peer's close_notify ends it."""
        client, server, network = self.pair(HalfCloser(), HalfCloser())
        client.loseWriteConnection()
        network.flush()
        self.assertEqual(self.path(client), [H, OP, WC])
        self.assertEqual(self.path(server), [H, OP, RC])
        server.write(b"still writing")
        server.loseWriteConnection()
        network.flush()
        self.assertEqual(bytes(client.wrappedProtocol.data), b"still writing")
        self.assertEqual(self.path(client), [H, OP, WC, FI, DO, CD])
        self.assertEqual(self.path(server), [H, OP, RC, DO, CD])
        self.assertDone(client.wrappedProtocol)
        self.assertDone(server.wrappedProtocol)

    def test_half_close_while_paused(self) -> None:
        """The peer's close_notify, arriving behind data that made the
        application pause, is held: FINISHING until it resumes."""
        client, server, network = self.pair(HalfCloser(), HalfCloser())
        client.loseWriteConnection()
        network.flush()
        client.wrappedProtocol.on_data = lambda app, data: client.pauseProducing()
        server.write(b"last")
        server.loseWriteConnection()  # the data and close_notify in one write
        network.flush()
        self.assertEqual(bytes(client.wrappedProtocol.data), b"last")
        self.assertIs(client._phase, FI)
        self.assertIsNone(client.wrappedProtocol.lost)
        client.resumeProducing()
        network.flush()
        self.assertEqual(self.path(client), [H, OP, WC, FI, DO, CD])
        self.assertEqual(client.wrappedProtocol.read_lost, 1)
        self.assertDone(client.wrappedProtocol)

    def test_close_unanswered(self) -> None:
        """loseConnection toward a peer that never answers: CLOSING until the
        close timeout aborts."""
        client, _server, network = self.pair(half_close=False)
        network.server.reading_paused = True
        client.loseConnection()
        network.flush()
        self.assertIs(client._phase, CL)
        network.advance(DEFAULT_CLOSE_TIMEOUT)
        network.flush()
        self.assertEqual(self.path(client), [H, OP, CL, CD])
        self.assertTrue(client.wrappedProtocol.lost.check(CloseTimeoutError))

    def test_abort(self) -> None:
        client, _server, network = self.pair()
        client.abortConnection()
        client.abortConnection()
        network.flush()
        self.assertEqual(self.path(client), [H, OP, AB, CD])
        self.assertTrue(client.wrappedProtocol.lost.check(error.ConnectionAborted))

    def test_truncation(self) -> None:
        client, _server, network = self.pair()
        network.server.loseConnection()  # underneath TLS
        network.flush()
        self.assertEqual(self.path(client), [H, OP, AB, CD])
        self.assertTrue(client.wrappedProtocol.lost.check(TLSTruncationError))

    def test_fatal_alert_drains(self) -> None:
        client, server, network = self.pair()
        network.client.outbound += b"\x17\x03\x03\x00\x20" + b"\x00" * 32
        network.flush()
        network.advance(DEFAULT_DRAIN_TIMEOUT)
        network.flush()
        self.assertEqual(self.path(server), [H, OP, DR, CD])
        self.assertTrue(server.wrappedProtocol.lost.check(TLSError))
        # The client got the alert: the peer's fatal alert ends it at once.
        self.assertEqual(self.path(client), [H, OP, AB, CD])

    def test_handshake_timeout(self) -> None:
        client, _server, network = self.pair(flush=False)
        network.server.reading_paused = True
        network.flush()
        network.advance(DEFAULT_HANDSHAKE_TIMEOUT)
        network.flush()
        self.assertEqual(self.path(client), [H, AB, CD])
        self.assertTrue(client.wrappedProtocol.lost.check(HandshakeTimeoutError))

    def test_producer_closes_in_turn(self) -> None:
        """A producer that closes its transport when stopped (as a TLS
        transport registered as its own producer does) re-enters
        loseConnection: one close, one CLOSING, no second transition."""

        class Closer:
            def pauseProducing(self) -> None:
                pass

            def resumeProducing(self) -> None:
                pass

            def stopProducing(self) -> None:
                client.loseConnection()

        client, _server, network = self.pair()
        client.registerProducer(Closer(), True)
        client.loseConnection()
        network.flush()
        self.assertEqual(self.path(client), [H, OP, CL, DO, CD])
        self.assertDone(client.wrappedProtocol)


class StateEnumTests(SynchronousTestCase):
    """The state and phase enums hash by identity and behave as enums."""

    def test_state_enums(self) -> None:
        import pickle

        from twisted_sslfile import _sslfile_state
        from twisted_sslfile.constants import StateEnum
        from twisted_sslfile.engine import connection, negotiation, tls12, tls13

        enums = (
            Phase,
            _sslfile_state.Phase,
            tls13.State,
            tls12.State,
            negotiation.State,
            connection.ConnectionState,
        )
        for cls in enums:
            self.assertTrue(issubclass(cls, StateEnum), cls)
            members = list(cls)
            self.assertEqual(len({*members}), len(members))
            table = {member: index for index, member in enumerate(members)}
            for index, member in enumerate(members):
                self.assertEqual(hash(member), object.__hash__(member))
                self.assertEqual(table[member], index)
                self.assertIs(cls(member.value), member)
                self.assertIs(pickle.loads(pickle.dumps(member)), member)
