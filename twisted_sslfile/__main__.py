"""``python -m twisted_sslfile HOST:PORT``: a TLS client for poking servers.

Modelled on ``openssl s_client``: it connects, prints what the handshake
negotiated and what the certificate chain looks like, then relays standard
input to the server and the server's data to standard output.  End of input
sends close_notify (a TLS half-close) and the client exits once the server
has closed too, so ``echo hello | python -m twisted_sslfile localhost:8443``
is a complete round trip.

Choices, and why:

* **It connects through the endpoint machinery** (:mod:`twisted_sslfile.
  endpoints`): ``HOST:PORT`` becomes ``sslfile:tcp:host=HOST:port=PORT``
  and any client endpoint description (``unix:path=/run/app.sock``,
  ``sslfile:tcp:...:alpn=h2``) is accepted as well, so this tool exercises
  exactly what an application's configuration would.
* **The report goes to standard error**, standard output carries only the
  server's bytes: ``python -m twisted_sslfile host:443 < request > reply``
  gives a clean reply file.
* **Verification is on by default.**  ``--insecure`` turns it off for the
  connection but the chain is still checked afterwards against the trust
  roots, and the report says what a verifying client would have decided.
* **Standard input and output go through** :class:`twisted.internet.stdio.
  StandardIO`, not a thread: nothing is left blocked in a read when the
  connection ends first (a daemon thread inside ``sys.stdin`` makes the
  interpreter abort at exit), pipes, terminals, regular files and
  ``/dev/null`` all work, and a closed stdout (``| head -c1``) is an event
  rather than an exception.  Flow control runs both ways: a full stdout
  pauses reading from the server, a full send buffer pauses reading stdin.
  The descriptors are non-blocking while the reactor runs and handed back
  as they were: their open file descriptions are shared with the shell.
* **Parity with s_client where people rely on it**: the chain with each
  certificate's validity, key and fingerprint and the leaf's SANs, the
  server's signature scheme, ``--showcerts``, the chain of a refused
  handshake too (the engine hands it over on the error), ``--starttls
  smtp`` and an opt-in key log (``--keylogfile``, or ``SSLKEYLOGFILE`` as
  curl reads it - the library itself never does).
* **Exit status**: 0 after a clean close, 1 when the connection, handshake
  or verification failed, the server cut the stream without close_notify or
  standard output went away, 2 for a usage error.  Ctrl-C (SIGINT) or
  SIGTERM drops the connection without close_notify (the server must not
  take a cut-off upload for a complete one) and ends the process by that
  signal, as Python itself does on Ctrl-C: a shell sees 130 (143), and a
  script running the client stops too.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import signal
import sys
from collections.abc import Sequence
from types import FrameType
from typing import Any

from twisted.internet.error import ConnectionDone
from twisted.internet.protocol import Factory
from twisted.internet.stdio import StandardIO
from twisted.python.failure import Failure

from twisted_sslfile._cli_report import (
    _address,
    _name,
    _pem,
    _proto,
    _Report,
    _why,
    describe_chain_certificate,
    describe_server_name,
    describe_signature_scheme,
)
from twisted_sslfile._cli_starttls import _SMTPStartTLS
from twisted_sslfile._cli_stdio import (
    _handed_back_blocking,
    _Relay,
    _standard_descriptors,
    _Stdio,
    _Valve,
)

__all__ = ["build_description", "main", "parse_target"]

_HOST_PORT = re.compile(
    r"^(?:\[(?P<v6>[^\]]+)\]|(?P<host>[^:\[\]]+))(?::(?P<port>\d+))?$"
)
DEFAULT_PORT = 443
#: Seconds for the TCP connection (the handshake has its own timeout).
DEFAULT_CONNECT_TIMEOUT = 30

#: The largest --sess-in file read: a session's chain may be 2^24-1 bytes,
#: plus its ticket and fields.
_MAX_SESSION_FILE = 2**24 + 2**17


def parse_target(target: str) -> tuple[str, int] | None:
    """``(host, port)`` for ``HOST:PORT``, ``[V6]:PORT`` or ``HOST``; None
    when ``target`` is an endpoint description instead."""
    match = _HOST_PORT.match(target)
    if match is None:
        return None
    host = match.group("v6") or match.group("host")
    port = int(match.group("port") or DEFAULT_PORT)
    if not 0 < port < 65536:
        raise ValueError(f"port {port} is out of range")
    return host, port


def _tls_options(args: argparse.Namespace) -> dict[str, str]:
    options: dict[str, str] = {}
    if args.cafile:
        options["trustRoots"] = args.cafile
    if args.insecure:
        options["verify"] = "no"
    if args.servername:
        options["hostname"] = args.servername
    for name, value in (
        ("alpn", args.alpn),
        ("npn", args.npn),
        ("minVersion", args.min_version),
        ("maxVersion", args.max_version),
        ("ciphers", args.ciphers),
        ("groups", args.groups),
        ("certKey", args.cert),
        ("privateKey", args.key),
        ("handshakeTimeout", args.handshake_timeout),
    ):
        if value is not None:
            options[name] = value
    return options


def _whole_seconds(text: str) -> int:
    """argparse type of --connect-timeout: a positive whole number."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a whole number of seconds"
        ) from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number")
    return value


def build_description(target: str, connect_timeout: int) -> str:
    """The client endpoint description for ``target`` (no TLS options)."""
    from twisted_sslfile.endpoints import PREFIX, parse_description, quote

    host_port = parse_target(target)
    if host_port is not None:
        host, port = host_port
        return f"{PREFIX}:tcp:host={quote(host)}:port={port}:timeout={connect_timeout}"
    args, _ = parse_description(target)
    if args and args[0].lower() == PREFIX:
        return target
    return f"{PREFIX}:{target}"


class OutputClosedError(Exception):
    """Standard output went away (EPIPE: ``| head -c1`` exited)."""


class Interrupted(Exception):
    """Ctrl-C (SIGINT) or SIGTERM ended the connection."""


class _Client:
    """One run of the command: connect, report, relay, exit."""

    def __init__(self, args: argparse.Namespace, reactor: Any) -> None:
        self.args = args
        self.reactor = reactor
        self.report = _Report(sys.stderr, args.quiet)
        self.status = 1
        self.tls: Any = None
        self.handshake_ok = False
        self.server_closed = False
        self.endpoint: Any = None
        self.connecting: Any = None
        #: --starttls: the plaintext protocol until TLS takes over.
        self.plain: _SMTPStartTLS | None = None
        self.stdio: Any = None
        self.stdout_open = True
        self.ended: Failure | None = None
        #: The signal (SIGINT, SIGTERM) that ended the run, if one did.
        self.interrupted: int | None = None
        self.done = False

    # -- start ------------------------------------------------------------------

    def start(self, endpoint: Any) -> None:
        self.endpoint = endpoint
        factory = Factory.forProtocol(lambda: _Relay(self))
        factory.noisy = False
        for signum in (signal.SIGINT, signal.SIGTERM):
            # An ignored signal stays ignored (`nohup`, `cmd &` in a script).
            if signal.getsignal(signum) != signal.SIG_IGN:
                signal.signal(signum, self._signalled)
        if self.args.starttls:
            # Plaintext first (the inner endpoint), TLS once the server said
            # yes to STARTTLS; the relay then runs over it as usual.
            plain = Factory.forProtocol(lambda: _SMTPStartTLS(self))
            plain.noisy = False
            d = self.connecting = endpoint.inner.connect(plain)
            d.addCallbacks(self.plain_connected, self.connect_failed)
            return
        d = self.connecting = endpoint.connect(factory)
        d.addCallbacks(self.connected, self.connect_failed)

    def connect_failed(self, failure: Failure) -> None:
        self.connecting = None
        if self.done:
            return
        self.report(f"connect failed: {failure.getErrorMessage()}", always=True)
        self.finish(1)

    def connected(self, relay: _Relay) -> None:
        self.connecting = None
        self._report_connected(relay.transport)
        self.tls_started(relay)

    def _report_connected(self, transport: Any) -> None:
        try:
            self.report(f"Connected to {_address(transport.getPeer())}")
        except Exception:  # an exotic transport without getPeer
            self.report("Connected")

    def tls_started(self, relay: _Relay) -> None:
        """TLS runs under ``relay``: report the handshake, start the relay."""
        self.plain = None
        self.tls = relay.transport
        self.tls.whenHandshakeDone().addCallbacks(self.handshake_done, self.failed)
        self._start_stdin()

    # -- STARTTLS -----------------------------------------------------------------

    def plain_connected(self, negotiator: _SMTPStartTLS) -> None:
        self.connecting = None
        self.plain = negotiator
        self._report_connected(negotiator.transport)
        timeout = self.endpoint.handshake_timeout
        if timeout is not None:
            negotiator.timer = self.reactor.callLater(timeout, negotiator.timed_out)

    def upgrade(self, negotiator: _SMTPStartTLS) -> None:
        """The server accepted STARTTLS: TLS over the same connection."""
        from twisted_sslfile.protocol import start_tls

        endpoint = self.endpoint
        relay = _Relay(self)
        relay.makeConnection(negotiator.transport)
        start_tls(
            relay,
            endpoint.context,
            True,
            endpoint.server_name,
            session=endpoint.session,
            handshake_timeout=endpoint.handshake_timeout,
            clock=self.reactor,
            connection_log=endpoint.connection_log,
        )
        self.tls_started(relay)

    def plain_failed(self, why: str) -> None:
        """The plaintext phase failed: nothing was encrypted, exit 1."""
        self.plain = None
        if self.done:
            return
        self.report(f"STARTTLS failed: {why}", always=True)
        self.finish(1)

    # -- handshake --------------------------------------------------------------

    def handshake_done(self, result: Any) -> None:
        from twisted_sslfile.echo import format_version

        self.handshake_ok = True
        report = self.report
        report(f"Protocol version: {format_version(result.version)}")
        report(f"Cipher suite: {_name(result.cipher_suite)}")
        report(f"Key exchange group: {_name(result.group)}")
        report(f"Peer signature scheme: {describe_signature_scheme(result)}")
        report(f"ALPN protocol: {_proto(result.alpn_protocol)}")
        report(f"NPN protocol: {_proto(result.next_protocol)}")
        report(f"Server name: {describe_server_name(self.endpoint.server_name)}")
        report(f"Session resumed: {self.resumption(result)}")
        self.report_chain(result.peer_certificates)
        chain = self.tls.getPeerCertificateChain()
        report(f"Verification: {self.verification(result, chain)}")
        report("---")

    def report_chain(self, chain: Sequence[bytes], refused: bool = False) -> None:
        """The chain as the server sent it (s_client's "Certificate chain"),
        and with --showcerts each certificate in PEM, as s_client -showcerts
        prints them.  The PEM blocks are written even with --quiet, so that
        ``-q --showcerts --no-stdin HOST 2>chain.pem`` saves the chain."""
        how = "as sent by the server, refused" if refused else "as sent by the server"
        self.report(f"Certificate chain ({len(chain)} {how}):")
        now = self.endpoint.context.clock()
        for index, der in enumerate(chain):
            for text in describe_chain_certificate(index, der, now):
                self.report(text)
            if self.args.showcerts:
                for text in _pem(der):
                    self.report(text, always=True)

    def resumption(self, result: Any) -> str:
        """Whether the --sess-in session resumed, and if not, why when known."""
        if result.resumed:
            return "yes"
        session = self.endpoint.session
        context = self.endpoint.context
        if session is None or not context.verify:
            return "no"
        from twisted_sslfile import x509

        name = self.endpoint.server_name
        if not session.verified_under(x509.verification_policy(context, name)):
            # The engine offers no session verified under another policy.
            return (
                f"no (the saved session was not verified for {name} under "
                f"these trust roots, so it was not offered)"
            )
        return "no"

    def verification(self, result: Any, chain: Sequence[Any]) -> str:
        context = self.endpoint.context
        if context.verify:
            name = self.endpoint.server_name
            if not result.verified:
                # The engine never completes such a handshake; never say OK.
                return "FAILED: the server's chain was not verified"
            if result.resumed:
                return (
                    f"OK (resumed a session whose chain and name {name} were "
                    f"verified under these trust roots)"
                )
            return f"OK (chain and name {name} verified)"
        # --insecure: say what a verifying client would have decided.
        from twisted_sslfile import x509
        from twisted_sslfile.errors import TLSError

        name = self.endpoint.server_name
        if not chain:
            return "SKIPPED (--insecure); the server sent no certificate"
        try:
            roots = x509.load_trust_roots(self.args.cafile)
            if name is None:
                return "SKIPPED (--insecure, and no server name to check)"
            x509.verify_server_certificates(
                chain, trust_roots=roots, server_name=name, time=context.clock()
            )
        except (TLSError, ValueError) as e:
            return f"SKIPPED (--insecure); a verifying client would refuse: {e}"
        return "SKIPPED (--insecure); the chain would have verified"

    def failed(self, failure: Failure) -> None:
        """The handshake did not complete; connectionLost reports and exits.

        A chain refused by verification is still shown: the engine hands
        the certificates it received over on the error (the connection has
        failed all the same), and they are what one needs to see why.
        """
        from twisted_sslfile.errors import CertificateError

        chain = getattr(failure.value, "peer_certificates", ())
        if chain:
            self.report_chain(chain, refused=True)
        if failure.check(CertificateError):
            self.report(f"Verification: FAILED: {failure.value}", always=True)

    # -- relay ------------------------------------------------------------------

    def _start_stdin(self) -> None:
        # --no-stdin reads /dev/null: end of input at once, the same path.
        stdin = 0
        if self.args.no_stdin:
            stdin = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
        # Twisted's epoll reactor polls regular files (which epoll refuses)
        # continuously, so `< request.txt > reply` works too.
        # mypy resolves twisted.internet.stdio to the Windows StandardIO,
        # which has no stdin/stdout arguments; this runs the POSIX one.
        stdio = self.stdio = StandardIO(  # type: ignore[call-arg]
            _Stdio(self), stdin=stdin, stdout=1, reactor=self.reactor
        )
        # Flow control both ways: bounded buffers whatever either side does.
        self.tls.registerProducer(
            _Valve(stdio.pauseProducing, stdio.resumeProducing), True
        )
        stdio.registerProducer(
            _Valve(self.tls.pauseProducing, self.tls.resumeProducing), True
        )

    def send(self, data: bytes) -> None:
        if self.tls is not None and not self.tls.disconnected:
            self.tls.write(data)

    def stdin_closed(self) -> None:
        if self.tls is not None and not self.tls.disconnected:
            self.tls.loseWriteConnection()

    def stdout_closed(self) -> None:
        """Nobody reads stdout any more: drop the connection, no close_notify
        (as s_client killed by SIGPIPE does); the exit status is 1."""
        self.stdout_open = False
        if self.done or self.ended is not None:
            return
        self.tls.abortConnection()

    def stdio_lost(self, reason: Failure) -> None:
        """stdout flushed after the connection ended (or it failed doing so)."""
        self.stdout_open = False
        ended = self.ended
        if self.done or ended is None:
            return
        if not reason.check(ConnectionDone):
            ended = Failure(OutputClosedError("standard output closed"))
        self.lost(ended)

    def connection_ended(self, reason: Failure) -> None:
        """The TLS connection is gone: flush stdout, then report and exit."""
        self.ended = reason
        if self.done:  # a second signal already ended the run
            return
        if self.interrupted is not None:
            reason = self._interrupted()
        elif not self.stdout_open:
            reason = Failure(
                OutputClosedError("standard output closed: dropped the connection")
            )
        elif self.stdio is not None:
            self.stdio.loseConnection()  # then stdio_lost
            return
        self.lost(reason)

    def _signalled(self, signum: int, frame: FrameType | None) -> None:
        self.reactor.callFromThread(self.interrupt, signum)

    def _interrupted(self) -> Failure:
        name = signal.Signals(self.interrupted or signal.SIGINT).name
        return Failure(Interrupted(f"interrupted ({name}): no close_notify sent"))

    def interrupt(self, signum: int = signal.SIGINT) -> None:
        """Ctrl-C: drop the connection without close_notify (a cut-off upload
        must not look complete to the server).  While stdout is still being
        flushed, or at a second signal, stop at once."""
        if self.done:
            return
        again = self.interrupted is not None
        self.interrupted = signum
        if self.tls is None:
            name = signal.Signals(signum).name
            self.report(f"Interrupted ({name}) before the connection was made")
            if self.connecting is not None:
                self.connecting.cancel()
            if self.plain is not None:
                self.plain.abort()
            self.finish(1)
        elif again or self.ended is not None:
            self.lost(self._interrupted())
        else:
            self.tls.abortConnection()  # then connection_ended

    # -- end --------------------------------------------------------------------

    def lost(self, reason: Failure) -> None:
        self.save_session()
        if reason.check(ConnectionDone) and self.handshake_ok:
            self.report("Closed cleanly (close_notify both ways)")
            self.finish(0)
            return
        from twisted_sslfile.errors import CertificateError

        if self.handshake_ok:
            self.report(f"Connection ended: {_why(reason)}", always=True)
        elif isinstance(reason.value, CertificateError):
            alert = reason.value.alert.name
            self.report(
                f"Handshake failed: certificate rejected (alert {alert} sent)",
                always=True,
            )
        else:
            self.report(f"Handshake failed: {_why(reason)}", always=True)
        self.finish(1)

    def save_session(self) -> None:
        path = self.args.sess_out
        if path is None or self.tls is None:
            return
        # TLS 1.3 tickets arrive after the handshake: ask at the end.
        session = self.tls.session
        if session is None:
            self.report(f"No session to save in {path}: the server sent none")
            return
        from twisted_sslfile._files import write_private_file

        # It holds the resumption secret: 0600, atomic, no symlink followed.
        write_private_file(path, session.to_bytes())
        unverified = (
            ""
            if session.verified
            else " (not verified: only an --insecure client will offer it)"
        )
        self.report(f"Session saved in {path}{unverified}")

    def finish(self, status: int) -> None:
        self.done = True
        self.status = status
        if self.reactor.running:
            self.reactor.stop()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m twisted_sslfile",
        description=(
            "Connect to a TLS server, print the handshake and the certificate "
            "chain on stderr, then relay stdin to the server and its data to "
            "stdout. End of input sends close_notify."
        ),
    )
    parser.add_argument(
        "target",
        help=(
            "HOST:PORT, [IPv6]:PORT, HOST (port 443), or a client endpoint "
            "description such as unix:path=/run/app.sock or sslfile:tcp:..."
        ),
    )
    add = parser.add_argument
    add("--cafile", metavar="FILE", help="trust roots: PEM file or directory")
    add(
        "--insecure",
        action="store_true",
        help="do not verify the server (the result is still reported)",
    )
    add("--servername", metavar="NAME", help="SNI and verification name")
    add("--alpn", metavar="LIST", help="ALPN protocols, comma-separated")
    add("--npn", metavar="LIST", help="NPN protocols, comma-separated (TLS 1.2)")
    add("--min-version", metavar="V", help="TLSv1.2 or TLSv1.3")
    add("--max-version", metavar="V", help="TLSv1.2 or TLSv1.3")
    add("--ciphers", metavar="LIST", help="cipher suites, comma-separated")
    add("--groups", metavar="LIST", help="key exchange groups, comma-separated")
    add("--cert", metavar="FILE", help="client certificate chain (PEM)")
    add("--key", metavar="FILE", help="client private key (default: in --cert)")
    add(
        "--showcerts",
        action="store_true",
        help="print each certificate of the chain in PEM too (even with -q)",
    )
    add(
        "--keylogfile",
        metavar="FILE",
        help=(
            "append the TLS secrets to FILE (NSS key log format, for Wireshark); "
            "default: $SSLKEYLOGFILE when set. Whoever reads FILE can decrypt"
        ),
    )
    add("--sess-out", metavar="FILE", help="save the session for resumption")
    add("--sess-in", metavar="FILE", help="offer a saved session (resumption)")
    add(
        "--connect-timeout",
        metavar="S",
        # Whole seconds: Twisted's tcp: endpoint, which carries it, takes
        # an integer (2.5 would fail in its parser, not here).
        type=_whole_seconds,
        default=DEFAULT_CONNECT_TIMEOUT,
        help=f"whole seconds for the TCP connection (default "
        f"{DEFAULT_CONNECT_TIMEOUT})",
    )
    add("--handshake-timeout", metavar="S", help="seconds for the handshake")
    add(
        "--starttls",
        choices=["smtp"],
        help="speak SMTP up to STARTTLS first (like s_client -starttls smtp)",
    )
    add(
        "--no-stdin",
        action="store_true",
        help="send nothing: handshake, report, close (like s_client </dev/null)",
    )
    add("-q", "--quiet", action="store_true", help="report failures only")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m twisted_sslfile`` and ``sslfile-client``."""
    _standard_descriptors()
    parser = _parser()
    args = parser.parse_args(argv)
    from twisted.internet import reactor

    from twisted_sslfile.endpoints import EndpointDescriptionError, client_from_string

    try:
        description = build_description(args.target, args.connect_timeout)
        endpoint = client_from_string(reactor, description, defaults=_tls_options(args))
    except (EndpointDescriptionError, ValueError) as e:
        parser.error(str(e))
    keylog_note = _open_key_log(parser, args, endpoint)
    if args.sess_in is not None:
        from twisted_sslfile._files import read_private_file
        from twisted_sslfile.engine.sessions import Session
        from twisted_sslfile.errors import TLSError

        try:
            # Whoever can write a session file chooses its PSK, and a
            # verified session resumes without the server's certificate:
            # refused like a ticket key file others may write
            # (UnsafeFileError is a ValueError).
            data = read_private_file(args.sess_in, _MAX_SESSION_FILE, "session file")
            if len(data) > _MAX_SESSION_FILE:
                raise ValueError(f"larger than any session ({_MAX_SESSION_FILE} bytes)")
            endpoint.session = Session.from_bytes(data)
        except (OSError, TLSError, ValueError) as e:
            parser.error(f"--sess-in {args.sess_in}: {e}")
    client = _Client(args, reactor)
    if keylog_note is not None:
        client.report(keylog_note)
    reactor.callWhenRunning(client.start, endpoint)
    with _handed_back_blocking((0, 1, 2)):
        reactor.run()
    if client.interrupted is not None:
        return _end_by_signal(client.interrupted)
    return client.status


def _open_key_log(
    parser: argparse.ArgumentParser, args: argparse.Namespace, endpoint: Any
) -> str | None:
    """--keylogfile, else a non-empty SSLKEYLOGFILE (as curl and browsers
    read it): append the connection's secrets to that file, in the NSS key
    log format Wireshark reads.  Returns the report's note, None when off.

    Only this command reads the variable; the library never does.
    """
    path, source = args.keylogfile, "--keylogfile"
    if path is None:
        path, source = os.environ.get("SSLKEYLOGFILE") or None, "SSLKEYLOGFILE"
    if path is None:
        return None
    import warnings

    from twisted_sslfile._files import KeyLogFile

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            keylog = KeyLogFile(path)
        except (OSError, ValueError) as e:
            parser.error(f"{source}: {path}: {e}")
    for warning in caught:
        print(f"warning: {source}: {warning.message}", file=sys.stderr)
    endpoint.context = endpoint.context.replace(keylog=keylog)
    return (
        f"Key log: appending this connection's secrets to {path} (from {source}): "
        f"whoever can read that file can decrypt the connection"
    )


def _end_by_signal(signum: int) -> int:
    """Die of ``signum``, as Python does of SIGINT after an uncaught
    KeyboardInterrupt: a shell shows 128 + signum, and a shell script
    running the client stops as well (bash stops a script at Ctrl-C only
    when its command was killed by the signal)."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            if stream is not None:
                stream.flush()
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)
    return 128 + signum  # not reached where the signal kills


if __name__ == "__main__":
    sys.exit(main())
