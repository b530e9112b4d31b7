"""The SMTP STARTTLS negotiator of ``python -m twisted_sslfile --starttls smtp``.

The plaintext phase before TLS, bounded and refusing injected bytes; the
client (the :class:`NegotiatorOwner` of :mod:`twisted_sslfile.__main__`)
starts TLS over the same connection when it succeeds.
"""

from __future__ import annotations

import typing
from typing import Any

from twisted.internet.protocol import Protocol, connectionDone
from twisted.python.failure import Failure

from twisted_sslfile._cli_report import _Report


class NegotiatorOwner(typing.Protocol):
    """What the negotiator tells the client (``__main__._Client``); a
    protocol class here so that this module need not import that one."""

    @property
    def report(self) -> _Report: ...
    def upgrade(self, negotiator: _SMTPStartTLS) -> None: ...
    def plain_failed(self, why: str) -> None: ...


class _SMTPStartTLS(Protocol):
    """Plain SMTP up to STARTTLS, as ``s_client -starttls smtp`` speaks it.

    Read the 220 greeting, send EHLO, check that STARTTLS is among the
    extensions (RFC 3207 §4), send STARTTLS, read its 220, then hand the
    connection to TLS.  Replies are read line by line, with bounds on a
    line and on a reply: a server that never stops talking is an error, not
    a memory leak.  Bytes that arrive after the 220 to STARTTLS are refused
    rather than taken into the TLS stream or shown as the server's: a
    server (or a man in the middle) must not inject plaintext that would
    look as if it came over TLS (RFC 3207 §4.2 implies the client discards
    all knowledge from before; CVE-2011-0411 was this bug in servers).
    """

    #: RFC 5321 §4.5.3.1.5 allows 512 octets per reply line; be lenient.
    MAX_LINE = 4096
    #: Lines in one reply (an EHLO reply lists a dozen extensions).
    MAX_REPLY_LINES = 100

    transport: Any  # a connected TCP (or UNIX) transport

    def __init__(self, client: NegotiatorOwner) -> None:
        self.client = client
        self.buffer = b""
        self.reply: list[bytes] = []
        self.waiting_for = "greeting"
        self.timer: Any = None
        self.ended = False

    def dataReceived(self, data: bytes) -> None:
        if self.ended:
            return
        self.buffer += data
        while not self.ended:
            end = self.buffer.find(b"\n")
            if end < 0:
                if len(self.buffer) > self.MAX_LINE:
                    self.fail("the server sent an SMTP reply line that never ends")
                return
            text, self.buffer = self.buffer[:end].rstrip(b"\r"), self.buffer[end + 1 :]
            if len(text) > self.MAX_LINE:
                self.fail("the server sent an over-long SMTP reply line")
                return
            self.reply.append(text)
            if len(self.reply) > self.MAX_REPLY_LINES:
                self.fail("the server's SMTP reply has too many lines")
                return
            if text[3:4] == b"-":
                continue  # RFC 5321 §4.2.1: more lines of this reply follow
            reply, self.reply = self.reply, []
            self.answer(reply)

    def answer(self, reply: list[bytes]) -> None:
        """One complete reply arrived: act on it."""
        code = reply[-1][:3]
        shown = reply[0].decode("ascii", "backslashreplace")
        report = self.client.report
        if self.waiting_for == "greeting":
            if code != b"220":
                self.fail(f"the server does not accept mail: {shown}")
                return
            report(f"SMTP greeting: {shown}")
            self.waiting_for = "ehlo"
            self.transport.write(b"EHLO " + self.ehlo_name() + b"\r\n")
        elif self.waiting_for == "ehlo":
            if code != b"250":
                self.fail(f"the server refused EHLO: {shown}")
                return
            # The first line greets; the others name one extension each.
            keywords = [line[4:].split(b" ")[0].upper() for line in reply[1:]]
            if b"STARTTLS" not in keywords:
                offered = b", ".join(keywords).decode("ascii", "backslashreplace")
                self.fail(
                    "the server does not offer STARTTLS (its EHLO reply lists: "
                    f"{offered or 'no extensions'}); nothing was sent in plaintext"
                )
                return
            self.waiting_for = "starttls"
            self.transport.write(b"STARTTLS\r\n")
        elif self.waiting_for == "starttls":
            if code != b"220":
                self.fail(f"the server refused STARTTLS: {shown}")
                return
            if self.buffer:
                self.fail(
                    f"the server sent {len(self.buffer)} more bytes after its "
                    "220 to STARTTLS; refused (plaintext injected before TLS)",
                    quit=False,
                )
                return
            report(f"SMTP STARTTLS: {shown}")
            self.ended = True
            self._cancel_timer()
            self.client.upgrade(self)

    def ehlo_name(self) -> bytes:
        """An address literal for our end (RFC 5321 §4.1.3): no DNS lookup,
        and never a made-up name."""
        import ipaddress

        try:
            host = self.transport.getHost().host
            address = ipaddress.ip_address(host)
        except Exception:  # a UNIX socket, or no getHost
            return b"localhost"
        if address.version == 6:
            return f"[IPv6:{address}]".encode("ascii")
        return f"[{address}]".encode("ascii")

    def fail(self, why: str, *, quit: bool = True) -> None:
        """Give up before TLS: QUIT (RFC 5321 §3.8: also after a refusing
        greeting), close, report, exit 1."""
        if self.ended:
            return
        self.ended = True
        self._cancel_timer()
        if quit:
            self.transport.write(b"QUIT\r\n")
        self.transport.loseConnection()
        self.client.plain_failed(why)

    def timed_out(self) -> None:
        self.timer = None
        self.fail(f"timed out {self.awaited()}")

    def abort(self) -> None:
        self.ended = True
        self._cancel_timer()
        if self.transport is not None:
            self.transport.abortConnection()

    def _cancel_timer(self) -> None:
        timer, self.timer = self.timer, None
        if timer is not None and timer.active():
            timer.cancel()

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        if not self.ended:
            self.ended = True
            self._cancel_timer()
            self.client.plain_failed(
                f"the server closed the connection {self.awaited()} "
                f"({reason.getErrorMessage()})"
            )

    def awaited(self) -> str:
        if self.waiting_for == "greeting":
            return "before its greeting"
        return f"before answering {self.waiting_for.upper()}"
