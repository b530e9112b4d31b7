"""Unit tests for the producer membrane of TLSProtocol (twisted_sslfile._membrane)."""

from __future__ import annotations

from twisted.internet.interfaces import IPushProducer
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from twisted_sslfile._membrane import ProducerMembrane


class RecordingProducer:
    def __init__(self) -> None:
        self.calls: list[str] = []
        self.membrane: ProducerMembrane | None = None
        self.reenter = False

    def pauseProducing(self) -> None:
        self.calls.append("pause")

    def resumeProducing(self) -> None:
        self.calls.append("resume")
        if self.reenter and self.membrane is not None:
            # A pull producer that writes, which makes the consumer ask again.
            self.membrane.resumeProducing()
            self.membrane.update()

    def stopProducing(self) -> None:
        self.calls.append("stop")


class ProducerMembraneTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.producer = RecordingProducer()
        self.full = False
        self.stopped: list[int] = []

    def membrane(self, streaming: bool) -> ProducerMembrane:
        membrane = ProducerMembrane(
            self.producer,
            streaming,
            backlog_full=lambda: self.full,
            transport_stopped=lambda: self.stopped.append(1),
        )
        self.producer.membrane = membrane
        return membrane

    def test_interface(self) -> None:
        self.assertTrue(verifyObject(IPushProducer, self.membrane(True)))

    def test_transport_pause_resume(self) -> None:
        """The transport's pause and resume reach the producer, once each."""
        membrane = self.membrane(True)
        membrane.pauseProducing()
        membrane.pauseProducing()
        membrane.resumeProducing()
        membrane.resumeProducing()
        self.assertEqual(self.producer.calls, ["pause", "resume"])

    def test_backlog_and_transport_combined(self) -> None:
        """Paused while either asks; resumed only when neither does."""
        membrane = self.membrane(True)
        self.full = True
        membrane.update()
        membrane.pauseProducing()
        self.assertEqual(self.producer.calls, ["pause"])
        self.full = False
        membrane.update()
        self.assertEqual(self.producer.calls, ["pause"])  # the transport still full
        self.full = True
        membrane.resumeProducing()
        self.assertEqual(self.producer.calls, ["pause"])  # the backlog still full
        self.full = False
        membrane.update()
        self.assertEqual(self.producer.calls, ["pause", "resume"])

    def test_pull_producer_once_per_demand(self) -> None:
        membrane = self.membrane(False)
        membrane.update()
        self.assertEqual(self.producer.calls, [])  # no demand yet
        membrane.resumeProducing()
        membrane.update()
        self.assertEqual(self.producer.calls, ["resume"])
        membrane.demand()
        self.full = True
        membrane.update()
        self.assertEqual(self.producer.calls, ["resume"])  # held by the backlog
        self.full = False
        membrane.update()
        self.assertEqual(self.producer.calls, ["resume", "resume"])

    def test_pull_not_reentered(self) -> None:
        """A demand raised inside the producer's resumeProducing waits for the
        next update instead of recursing."""
        membrane = self.membrane(False)
        self.producer.reenter = True
        membrane.resumeProducing()
        self.assertEqual(self.producer.calls, ["resume"])
        self.producer.reenter = False
        membrane.update()
        self.assertEqual(self.producer.calls, ["resume", "resume"])

    def test_stop_forwarded(self) -> None:
        membrane = self.membrane(True)
        membrane.stopProducing()
        self.assertEqual(self.stopped, [1])
        self.assertEqual(self.producer.calls, [])

    def test_detached_ignores_transport(self) -> None:
        """After detach, late calls from the transport reach nobody."""
        membrane = self.membrane(True)
        membrane.detach()
        membrane.pauseProducing()
        membrane.resumeProducing()
        membrane.stopProducing()
        membrane.update()
        self.assertEqual(self.producer.calls, [])
        self.assertEqual(self.stopped, [])
