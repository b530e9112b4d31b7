"""The producer membrane of :class:`~twisted_sslfile.protocol.TLSProtocol`.

An application registers its producer with its transport, the TLSProtocol;
the back-pressure it must obey comes from two places: the transport below
(its write buffer is full) and TLS itself (writes held before the handshake
exceed a high-water mark).  :class:`ProducerMembrane` is registered with the
transport below on the application's behalf and combines the two, so the
application's producer is paused once and resumed once, whoever asked.
The idea is Twisted's ``_ProducerMembrane`` (twisted.protocols.tls), which
only forwards; this one also runs pull producers and can be detached, so a
late call from the transport after ``unregisterProducer`` reaches nobody.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet.interfaces import IPushProducer
from zope.interface import implementer

__all__ = ["ProducerMembrane"]


@implementer(IPushProducer)
class ProducerMembrane:
    """Stand-in for the application's ``producer``, as the transport sees it.

    :param producer: the application's producer.
    :param streaming: True for an ``IPushProducer``, False for an
        ``IPullProducer`` (resumed once per demand).
    :param backlog_full: whether TLS itself holds too much unsent data; the
        producer stays paused (or unpulled) while it does.
    :param transport_stopped: called when the transport below stops the
        producer (as Twisted's TCP does when it is lost).
    """

    __slots__ = (
        "_attached",
        "_backlog_full",
        "_in_pull",
        "_paused",
        "_pull_demand",
        "_transport_paused",
        "_transport_stopped",
        "producer",
        "streaming",
    )

    def __init__(
        self,
        producer: Any,
        streaming: bool,
        *,
        backlog_full: Callable[[], bool],
        transport_stopped: Callable[[], Any],
    ) -> None:
        self.producer = producer
        self.streaming = streaming
        self._backlog_full = backlog_full
        self._transport_stopped = transport_stopped
        self._attached = True
        self._paused = False  # we told the producer to pause
        self._transport_paused = False  # the transport told us to pause
        self._pull_demand = False  # a pull producer may produce once more
        self._in_pull = False  # in the pull producer's resumeProducing

    def detach(self) -> None:
        """The application unregistered: later calls from the transport are
        ignored."""
        self._attached = False

    def demand(self) -> None:
        """A pull producer may produce (the transport below takes no
        producer, so nobody else would ask it)."""
        self._pull_demand = True

    # -- IPushProducer: the transport below ----------------------------------

    def pauseProducing(self) -> None:
        if self._attached:
            self._transport_paused = True
            self.update()

    def resumeProducing(self) -> None:
        if not self._attached:
            return
        if self.streaming:
            self._transport_paused = False
        else:
            self._pull_demand = True
        self.update()

    def stopProducing(self) -> None:
        if self._attached:
            self._transport_stopped()

    # -- the combination -----------------------------------------------------

    def update(self) -> None:
        """Pause or resume (or pull) the producer: the transport's
        back-pressure and TLS's combined."""
        if not self._attached:
            return
        backlog_full = self._backlog_full()
        if self.streaming:
            want_pause = self._transport_paused or backlog_full
            if want_pause and not self._paused:
                self._paused = True
                self.producer.pauseProducing()
            elif not want_pause and self._paused:
                self._paused = False
                self.producer.resumeProducing()
        elif self._pull_demand and not backlog_full and not self._in_pull:
            self._pull_demand = False
            self._in_pull = True
            try:
                self.producer.resumeProducing()
            finally:
                self._in_pull = False
