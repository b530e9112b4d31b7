"""Standard input and output of ``python -m twisted_sslfile``.

The descriptors (closed ones replaced by /dev/null, the blocking mode handed
back to the shell as it was) and the two protocols of the relay: stdin and
stdout under :class:`twisted.internet.stdio.StandardIO`, the server's side
under TLS, with flow control between them.  They tell the client (the
:class:`RelayOwner` of :mod:`twisted_sslfile.__main__`) what happened; the
decisions are its own.
"""

from __future__ import annotations

import contextlib
import os
import sys
import typing
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from twisted.internet.interfaces import IHalfCloseableProtocol, IPushProducer
from twisted.internet.protocol import Protocol, connectionDone
from twisted.python.failure import Failure
from zope.interface import implementer


class RelayOwner(typing.Protocol):
    """What the relay's protocols tell the client (``__main__._Client``);
    a protocol class here so that this module need not import that one."""

    #: The StandardIO transport, once the relay has started.
    stdio: Any
    #: Set when the server's close_notify arrived.
    server_closed: bool

    def send(self, data: bytes) -> None: ...
    def stdin_closed(self) -> None: ...
    def stdout_closed(self) -> None: ...
    def stdio_lost(self, reason: Failure) -> None: ...
    def connection_ended(self, reason: Failure) -> None: ...


@contextlib.contextmanager
def _blocking(fd: int) -> Iterator[None]:
    """``fd`` in blocking mode for the duration, then as it was."""
    try:
        was_blocking = os.get_blocking(fd)
    except OSError:
        was_blocking = True
    if not was_blocking:
        os.set_blocking(fd, True)
    try:
        yield
    finally:
        if not was_blocking:
            with contextlib.suppress(OSError):
                os.set_blocking(fd, False)


def _null_over(fd: int) -> None:
    """Put /dev/null in the place of descriptor ``fd``."""
    null = os.open(os.devnull, os.O_RDWR)
    if null != fd:
        os.dup2(null, fd)
        os.close(null)


def _standard_descriptors() -> None:
    """Open /dev/null on any of descriptors 0-2 that is closed (``<&-``).

    Otherwise the first descriptor the client opens (the reactor's, the
    socket's) takes the number and becomes "stdin" or "stdout".  A closed
    stdin reads as end of input; a closed stdout discards the data, as
    ``print`` does when ``sys.stdout`` is None.
    """
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            _null_over(fd)
            if fd == 2 and sys.stderr is None:
                sys.stderr = open(2, "w", errors="backslashreplace", closefd=False)  # noqa: SIM115


@contextlib.contextmanager
def _handed_back_blocking(fds: Sequence[int]) -> Iterator[None]:
    """StandardIO makes stdin and stdout non-blocking; their open file
    descriptions are shared with the shell (a terminal, a pipeline), which
    must get them back as they were."""
    saved: dict[int, bool] = {}
    for fd in fds:
        with contextlib.suppress(OSError):
            saved[fd] = os.get_blocking(fd)
    try:
        yield
    finally:
        for fd, blocking in saved.items():
            with contextlib.suppress(OSError):
                os.set_blocking(fd, blocking)


@implementer(IPushProducer)
class _Valve:
    """A push producer that pauses and resumes one side of the relay.

    Registered instead of the transports themselves so that a consumer's
    ``stopProducing`` (its end of the connection) only stops the flow:
    ending the connection stays the client's decision.
    """

    def __init__(self, pause: Callable[[], None], resume: Callable[[], None]) -> None:
        self.pauseProducing = pause
        self.resumeProducing = resume

    def stopProducing(self) -> None:
        self.pauseProducing()


@implementer(IHalfCloseableProtocol)
class _Stdio(Protocol):
    """The local side of the relay: stdin to the server, stdout's fate."""

    def __init__(self, client: RelayOwner) -> None:
        self.client = client

    def dataReceived(self, data: bytes) -> None:
        self.client.send(data)

    def readConnectionLost(self) -> None:
        self.client.stdin_closed()

    def writeConnectionLost(self) -> None:
        self.client.stdout_closed()

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self.client.stdio_lost(reason)


@implementer(IHalfCloseableProtocol)
class _Relay(Protocol):
    """The application side of the connection: server bytes to stdout."""

    def __init__(self, client: RelayOwner) -> None:
        self.client = client

    def dataReceived(self, data: bytes) -> None:
        self.client.stdio.write(data)

    def readConnectionLost(self) -> None:
        # The server's close_notify: it sends no more; close our side too,
        # as s_client does, rather than wait for input nobody will read.
        self.client.server_closed = True
        assert self.transport is not None  # connected: the server's data came
        self.transport.loseConnection()

    def writeConnectionLost(self) -> None:
        """Our close_notify is out; keep reading until the server closes."""

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self.client.connection_ended(reason)
