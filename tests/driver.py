"""A small blocking driver for an engine ``Connection`` over a real socket.

The engine is sans-I/O; the interop tests need it to talk to real peers
without Twisted in between, so that a failure points at the engine and not at
an adapter.  The driver owns nothing but a socket loop: it moves
``data_to_send()`` to the socket and received bytes to ``receive_data()``,
keeps the events, and buffers application data.

Reading and writing are interleaved through ``select`` so that a bulk send
against an echoing peer cannot deadlock on full socket buffers, and every
wait has a deadline: a silent peer fails the test with a :class:`DriverError`,
it never hangs it.

Use the functions (``handshake(conn, sock)``, ``send_all``, ...), which keep
one :class:`Driver` per socket, or a :class:`Driver` directly.
"""

from __future__ import annotations

import select
import socket
import time
import weakref
from collections.abc import Callable
from typing import Any

from twisted_sslfile.engine.events import (
    ApplicationData,
    CloseNotify,
    Event,
    HandshakeCompleted,
)
from twisted_sslfile.errors import TLSError

#: Default bound of one driver operation, in seconds.
TIMEOUT = 20.0


class DriverError(AssertionError):
    """The peer went silent or away before the awaited condition held.

    An AssertionError so trial reports it as a failure with the reason.
    """


class Driver:
    """Run one engine connection over one connected socket."""

    def __init__(
        self,
        conn: Any,
        sock: socket.socket,
        timeout: float = TIMEOUT,
        describe_peer: Callable[[], str] | None = None,
    ):
        self.conn = conn
        self.sock = sock
        self.timeout = timeout
        #: Adds what the peer printed to a DriverError: why it went quiet.
        self.describe_peer = describe_peer
        sock.setblocking(False)
        #: Every event the engine reported, in order.
        self.events: list[Event] = []
        #: Application data received and not yet consumed by receive_*().
        self.received = bytearray()
        self.close_notify_received = False
        #: The socket reached end of stream (with or without close_notify).
        self.eof = False
        #: Writing to the socket failed: the peer reset or closed it.
        self.write_failed = False
        self._outgoing = bytearray()

    # -- the loop ------------------------------------------------------------

    def _collect_output(self) -> None:
        self._outgoing += self.conn.data_to_send()

    def _feed(self, data: bytes) -> None:
        try:
            events = self.conn.receive_data(data)
        except TLSError:
            # The engine queued its alert: put it on the wire before failing,
            # so the peer reports what we objected to.
            self._collect_output()
            self._flush_best_effort()
            raise
        for event in events:
            self.events.append(event)
            if isinstance(event, ApplicationData):
                self.received += event.data
            elif isinstance(event, CloseNotify):
                self.close_notify_received = True

    def _flush_best_effort(self) -> None:
        deadline = time.monotonic() + 2.0
        while self._outgoing and time.monotonic() < deadline:
            _, writable, _ = select.select([], [self.sock], [], 0.1)
            if writable:
                self._send_some()
                if self.write_failed:
                    return

    def run_until(
        self,
        done: Callable[[], bool],
        what: str,
        *,
        refill: Callable[[], None] | None = None,
        timeout: float | None = None,
    ) -> None:
        """Move bytes both ways until ``done()`` holds and output is flushed.

        Flushing before returning matters: the client's Finished, a KeyUpdate
        reply or close_notify must reach the peer even if the test's next step
        only waits on the peer.  ``refill`` is called whenever the outgoing
        buffer runs low, so a large send is handed to the engine a piece at a
        time.  Raises :class:`DriverError` naming ``what`` on timeout or end
        of stream.
        """
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            if refill is not None and len(self._outgoing) < 65536:
                refill()
            self._collect_output()
            if self.write_failed:
                self._outgoing.clear()
            finished = done()
            if finished and not self._outgoing:
                return
            if self.eof and not finished and not self._outgoing:
                self._fail(f"peer closed the connection while {what}")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self._fail(f"timed out while {what}")
            readers = [] if self.eof else [self.sock]
            writers = [self.sock] if self._outgoing else []
            readable, writable, _ = select.select(readers, writers, [], remaining)
            if writable:
                self._send_some()
            if readable:
                self._receive_some()

    def _fail(self, message: str) -> None:
        if self.describe_peer is not None:
            message += "\n" + self.describe_peer()
        raise DriverError(message)

    def _send_some(self) -> None:
        try:
            del self._outgoing[: self.sock.send(self._outgoing)]
        except (BlockingIOError, InterruptedError):
            pass
        except OSError:
            # The peer is gone (EPIPE, ECONNRESET): nothing more can be sent.
            self.write_failed = True

    def _receive_some(self) -> None:
        try:
            data = self.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if data:
            self._feed(data)
        else:
            self.eof = True

    # -- operations ----------------------------------------------------------

    def handshake(self) -> HandshakeCompleted:
        """Run the handshake; return its HandshakeCompleted event."""
        self.conn.start()
        self.run_until(lambda: self.conn.handshake_complete, "handshaking")
        for event in self.events:
            if isinstance(event, HandshakeCompleted):
                return event
        raise DriverError("handshake_complete without a HandshakeCompleted event")

    def send_all(self, data: bytes) -> None:
        """Send ``data`` and wait until every record left for the socket."""
        view = memoryview(data)
        offset = 0
        chunk = 65536

        def refill() -> None:
            nonlocal offset
            if offset < len(view):
                self.conn.send(bytes(view[offset : offset + chunk]))
                offset += chunk

        self.run_until(
            lambda: offset >= len(view) and not self._outgoing,
            f"sending {len(data)} bytes",
            refill=refill,
        )

    def receive_exactly(self, n: int) -> bytes:
        """Wait for ``n`` bytes of application data and return them."""
        self.run_until(
            lambda: len(self.received) >= n,
            f"waiting for {n} bytes (have {len(self.received)})",
        )
        data = bytes(self.received[:n])
        del self.received[:n]
        return data

    def receive_until_close(self) -> bytes:
        """Read until the peer's close_notify (or end of stream); return all.

        Whether the peer closed cleanly is in ``close_notify_received``.
        """
        self.run_until(
            lambda: self.close_notify_received or self.eof, "waiting for close"
        )
        data = bytes(self.received)
        self.received.clear()
        return data

    def wait_for(self, predicate: Callable[[], bool], what: str) -> None:
        """Pump until ``predicate()`` holds, e.g. an event has arrived."""
        self.run_until(predicate, what)

    def echo_until_close(self) -> bytes:
        """Send back all application data until the peer's close_notify.

        Returns everything echoed; the peer's close is not answered here
        (call :meth:`close`).
        """
        echoed = bytearray()

        def pending() -> bool:
            return bool(self.received) or self.close_notify_received or self.eof

        while True:
            self.run_until(pending, f"echoing (echoed {len(echoed)} bytes)")
            if self.received:
                data = bytes(self.received)
                self.received.clear()
                echoed += data
                self.send_all(data)
            elif self.close_notify_received or self.eof:
                return bytes(echoed)

    def close(self, wait_for_peer: bool = False) -> None:
        """Send close_notify, optionally await the peer's, close the socket."""
        try:
            self.conn.close()
            self.run_until(lambda: not self._outgoing, "sending close_notify")
            if wait_for_peer:
                self.run_until(
                    lambda: self.close_notify_received or self.eof,
                    "waiting for the peer's close_notify",
                )
        finally:
            self.sock.close()


_drivers: weakref.WeakKeyDictionary[socket.socket, Driver] = weakref.WeakKeyDictionary()


def driver_for(conn: Any, sock: socket.socket, timeout: float = TIMEOUT) -> Driver:
    """The driver of ``sock``, made on first use."""
    driver = _drivers.get(sock)
    if driver is None:
        driver = _drivers[sock] = Driver(conn, sock, timeout)
    elif driver.conn is not conn:
        raise ValueError("this socket is already driven by another connection")
    return driver


def handshake(conn: Any, sock: socket.socket) -> HandshakeCompleted:
    return driver_for(conn, sock).handshake()


def send_all(conn: Any, sock: socket.socket, data: bytes) -> None:
    driver_for(conn, sock).send_all(data)


def receive_exactly(conn: Any, sock: socket.socket, n: int) -> bytes:
    return driver_for(conn, sock).receive_exactly(n)


def receive_until_close(conn: Any, sock: socket.socket) -> bytes:
    return driver_for(conn, sock).receive_until_close()


def close(conn: Any, sock: socket.socket, wait_for_peer: bool = False) -> None:
    driver_for(conn, sock).close(wait_for_peer)


def events(conn: Any, sock: socket.socket) -> list[Event]:
    return driver_for(conn, sock).events
