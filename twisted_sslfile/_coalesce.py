"""The write coalescer of :class:`~twisted_sslfile.protocol.TLSProtocol`.

Every ``write`` the engine sees costs a record: a 5-byte header, a 16-byte
tag, an AEAD call and a transport write.  An application that writes a line
at a time would pay that per line.  :class:`WriteCoalescer` holds small
writes until the end of the reactor turn (one ``callLater(0)``) and hands
them over as one; bulk data is cut into full records at once, so that it
neither waits nor is framed into odd sizes.  Like Twisted's
``_AggregateSmallWrites``, but record-aware and owned by the protocol,
which decides when a flush is allowed (after the handshake, before
close_notify).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet.interfaces import IDelayedCall, IReactorTime

__all__ = ["RECORD_PAYLOAD", "WriteCoalescer"]

# The most plaintext one record carries (RFC 8446 §5.1).  Bulk writes are
# handed to the engine in multiples of it, so they go out in full records.
RECORD_PAYLOAD = 16384


class WriteCoalescer:
    """Application bytes not yet given to the engine.

    :param clock: returns the ``IReactorTime`` to schedule the end-of-turn
        flush on; called only when a flush is scheduled, so a connection
        that never writes small data never resolves the global reactor.
    :param flush: called at the end of the reactor turn in which data was
        buffered (at most once per :meth:`schedule`); it is expected to
        :meth:`take` the data.
    """

    __slots__ = ("_buffer", "_call", "_clock", "_flush", "buffered")

    def __init__(
        self, clock: Callable[[], IReactorTime], flush: Callable[[], Any]
    ) -> None:
        self._clock = clock
        self._flush = flush
        self._buffer: list[bytes] = []
        self._call: IDelayedCall | None = None
        #: Bytes held (the producer membrane pauses the application above a
        #: high-water mark of them).
        self.buffered = 0

    def append(self, data: bytes) -> None:
        """Hold ``data`` behind what is held already."""
        self._buffer.append(data)
        self.buffered += len(data)

    def take(self) -> bytes:
        """Everything held, as one string; the coalescer is empty afterwards."""
        buffer = self._buffer
        data = buffer[0] if len(buffer) == 1 else b"".join(buffer)
        self._buffer = []
        self.buffered = 0
        return data

    def take_full_records(self) -> bytes | memoryview:
        """The held data that fills whole records; the tail stays held.

        Returns an empty string when less than one record is held.
        """
        if self.buffered < RECORD_PAYLOAD:
            return b""
        data = self.take()
        tail = len(data) % RECORD_PAYLOAD
        if not tail:
            return data
        view = memoryview(data)
        self._buffer = [bytes(view[-tail:])]
        self.buffered = tail
        return view[:-tail]

    def clear(self) -> None:
        """Drop what is held (the connection failed or was aborted)."""
        self._buffer = []
        self.buffered = 0

    def schedule(self) -> None:
        """Flush at the end of this reactor turn (once, however often called)."""
        if self._call is None:
            self._call = self._clock().callLater(0, self._scheduled)

    def cancel(self) -> None:
        """Forget a scheduled flush (one is being done now, or never will be)."""
        call, self._call = self._call, None
        if call is not None and call.active():
            call.cancel()

    def _scheduled(self) -> None:
        self._call = None
        self._flush()
