"""Unit tests for the write coalescer of TLSProtocol (twisted_sslfile._coalesce)."""

from __future__ import annotations

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from twisted_sslfile._coalesce import RECORD_PAYLOAD, WriteCoalescer


class WriteCoalescerTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.flushed: list[bytes] = []
        self.writes = WriteCoalescer(lambda: self.clock, self._flush)

    def _flush(self) -> None:
        self.flushed.append(self.writes.take())

    def test_small_writes_coalesce_within_a_turn(self) -> None:
        """Writes made in one reactor turn are flushed once, together, at its end."""
        for chunk in (b"a", b"bc", b"def"):
            self.writes.append(chunk)
            self.writes.schedule()
        self.assertEqual(self.writes.buffered, 6)
        self.assertEqual(self.flushed, [])
        self.assertEqual(len(self.clock.getDelayedCalls()), 1)
        self.clock.advance(0)
        self.assertEqual(self.flushed, [b"abcdef"])
        self.assertEqual(self.writes.buffered, 0)

    def test_next_turn_schedules_again(self) -> None:
        self.writes.append(b"one")
        self.writes.schedule()
        self.clock.advance(0)
        self.writes.append(b"two")
        self.writes.schedule()
        self.clock.advance(0)
        self.assertEqual(self.flushed, [b"one", b"two"])

    def test_cancel(self) -> None:
        """A cancelled flush does not run; the data stays held."""
        self.writes.append(b"held")
        self.writes.schedule()
        self.writes.cancel()
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.clock.advance(1)
        self.assertEqual(self.flushed, [])
        self.assertEqual(self.writes.take(), b"held")
        self.writes.cancel()  # nothing scheduled: a no-op

    def test_clock_resolved_only_when_scheduling(self) -> None:
        """The clock is asked for only when a flush is scheduled."""
        asked: list[int] = []

        def clock() -> Clock:
            asked.append(1)
            return self.clock

        writes = WriteCoalescer(clock, lambda: None)
        writes.append(b"x")
        writes.take()
        self.assertEqual(asked, [])
        writes.schedule()
        self.assertEqual(asked, [1])

    def test_full_records_cut_tail_kept(self) -> None:
        """Bulk data comes out in whole records; the remainder stays held."""
        self.writes.append(b"x" * (RECORD_PAYLOAD - 1))
        self.assertEqual(self.writes.take_full_records(), b"")
        self.writes.append(b"y" * (RECORD_PAYLOAD + 10))
        full = self.writes.take_full_records()
        self.assertEqual(len(full), 2 * RECORD_PAYLOAD)
        self.assertEqual(
            bytes(full), b"x" * (RECORD_PAYLOAD - 1) + b"y" * (RECORD_PAYLOAD + 1)
        )
        self.assertEqual(self.writes.buffered, 9)
        self.assertEqual(self.writes.take(), b"y" * 9)

    def test_full_records_exact(self) -> None:
        self.writes.append(b"z" * RECORD_PAYLOAD)
        self.assertEqual(len(self.writes.take_full_records()), RECORD_PAYLOAD)
        self.assertEqual(self.writes.buffered, 0)
        self.assertEqual(self.writes.take(), b"")

    def test_clear(self) -> None:
        self.writes.append(b"gone")
        self.writes.clear()
        self.assertEqual(self.writes.buffered, 0)
        self.assertEqual(self.writes.take(), b"")
