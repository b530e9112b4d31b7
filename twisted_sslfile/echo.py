"""``twistd -n sslfile-echo``: a TLS echo server to poke at.

It exists so that "does TLS work here?" has a two-command answer: start
this, point ``openssl s_client``, a browser-less ``curl``, Python's ``ssl``
or ``python -m twisted_sslfile`` at it, and read one log line per connection
saying what was negotiated and how the connection ended (the connection log
of :mod:`twisted_sslfile.tlslog`, which any ``TLSFactory`` can have; it is
on here by default, and ``connectionLog=no`` in an ``--endpoint`` turns it
off there).  The choices below follow from that:

* **No certificate needed.**  Without ``--cert`` a self-signed certificate
  for ``localhost``, ``127.0.0.1`` and ``::1`` is generated, saved under
  ``--cert-dir`` (default: the current directory) and reused on the next
  start, so a client told to trust it keeps working across restarts.  Its
  path and SHA-256 fingerprint are logged, in the format
  ``openssl x509 -fingerprint -sha256`` prints, to compare by eye.
* **Any endpoint.**  ``--endpoint`` takes ``sslfile:`` descriptions, so the
  server can listen on TCP, a UNIX socket or a systemd-activated socket,
  several at once; options given on the command line (``--cert``,
  ``--alpn``...) are defaults that a description's own options override.
* **Everything is checked before the reactor starts**, so a typo stops
  twistd with a usage error rather than leaving a server that fails every
  handshake.
* **Flow control**: the connection is the producer of its own echo (as
  ``twisted.protocols.portforward`` pairs two connections), so reading
  pauses while the write buffer is full.  A client that sends and never
  reads makes the server hold a few records per connection, not everything
  it sent.
* **Shutdown is clean, and bounded**: listening stops, then every open
  connection gets a close_notify; the wait for the peers' answers, and for
  a stuck client's buffer, is bounded by the TLS layer's close timeout
  (``--close-timeout``), after which the connection is aborted.
* **Certificates renew without a restart**: ``--cert`` may name a directory
  of certificates chosen by SNI (certbot's ``live/``), the files are
  checked for changes while the server runs, and ``SIGHUP`` reads them
  again at once (see :mod:`twisted_sslfile.certstore`).
"""

from __future__ import annotations

import datetime
import os
import signal
import threading
from collections.abc import Sequence
from typing import Any, ClassVar

from twisted.application import service
from twisted.internet import defer
from twisted.internet.protocol import Factory, Protocol, connectionDone
from twisted.logger import Logger
from twisted.python import usage
from twisted.python.failure import Failure

# Re-exported: the command-line client and older callers import them here.
from twisted_sslfile.tlslog import describe_peer, format_version

__all__ = [
    "DEFAULT_ENDPOINT",
    "EchoFactory",
    "EchoProtocol",
    "EchoService",
    "Options",
    "describe_peer",
    "format_version",
    "makeService",
]

#: What ``--endpoint`` defaults to: loopback only, so that starting the
#: example never exposes a server on the network by surprise.
DEFAULT_ENDPOINT = "sslfile:tcp:8443:interface=127.0.0.1"

#: Names in the generated certificate: what a client on this machine uses.
GENERATED_NAMES = ("localhost", "127.0.0.1", "::1")
GENERATED_CERT_FILE = "sslfile-echo-cert.pem"
GENERATED_KEY_FILE = "sslfile-echo-key.pem"
#: A saved certificate closer than this to expiry is replaced.
_RENEW_BEFORE = datetime.timedelta(days=7)

log = Logger(namespace="sslfile-echo")


class EchoProtocol(Protocol):
    """Send back every byte.

    The connection's log line comes from the TLS layer below (the
    endpoints' ``connectionLog``, on by default in :class:`Options`).
    """

    factory: EchoFactory

    def __init__(self) -> None:
        self.done: defer.Deferred[None] = defer.Deferred()

    def connectionMade(self) -> None:
        transport: Any = self.transport
        self.factory.connections.add(self)
        # What we write is what we read: when the transport's write buffer
        # fills (the client is not reading), it pauses itself as our
        # producer, which stops reading the socket until the buffer drains.
        transport.registerProducer(transport, True)

    def dataReceived(self, data: bytes) -> None:
        assert self.transport is not None  # connected: data arrives through it
        self.transport.write(data)

    def close(self) -> None:
        """Server shutdown: close_notify, then the transport closes."""
        # close_all only closes the live connections, which have a transport.
        assert self.transport is not None
        self.transport.loseConnection()

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self.factory.connections.discard(self)
        self.done.callback(None)


class EchoFactory(Factory):
    """Makes :class:`EchoProtocol` and keeps the live ones for shutdown."""

    # Factory is generic (Factory[EchoProtocol]) only in Twisted's newer type
    # hints; setup.cfg allows 23.8, whose Factory cannot be subscripted.
    protocol = EchoProtocol  # type: ignore[assignment]
    #: The per-connection log says everything; "Starting factory" does not.
    noisy = False

    def __init__(self) -> None:
        self.connections: set[EchoProtocol] = set()

    def close_all(self) -> defer.Deferred[Any]:
        """close_notify to every open connection; fires when all are gone."""
        waiting = []
        for connection in list(self.connections):
            waiting.append(connection.done)
            connection.close()
        return defer.DeferredList(waiting)


class EchoService(service.Service):
    """Listen on every endpoint with one :class:`EchoFactory`.

    ``SIGHUP`` reloads every endpoint's certificates (:meth:`reload`), as
    daemons conventionally re-read their configuration on it; ``reactor``
    (default: the global one) is where the signal handler defers the work.
    """

    def __init__(
        self, endpoints: Sequence[tuple[str, Any]], *, reactor: Any = None
    ) -> None:
        self.endpoints = list(endpoints)
        self.factory = EchoFactory()
        self.ports: list[Any] = []
        self._starting = False
        self._reactor = reactor
        self._previous_sighup: Any = None

    def reload(self) -> None:
        """Read every endpoint's certificate files again (what SIGHUP does).

        Each endpoint logs what changed, or why a file was not taken.
        """
        log.info("reloading certificates")
        for _description, endpoint in self.endpoints:
            reload = getattr(endpoint, "reload", None)
            if reload is not None:
                reload()

    def _sighup(self, signum: int, frame: Any) -> None:
        # A signal handler may interrupt the reactor mid-handshake: do the
        # work in the reactor's own turn instead.
        reactor = self._reactor
        if reactor is None:
            from twisted.internet import reactor
        reactor.callFromThread(self.reload)

    def _install_sighup(self) -> None:
        # Only the main thread may set signal handlers (and Windows has no
        # SIGHUP); elsewhere reloading stays periodic.
        if hasattr(signal, "SIGHUP") and threading.current_thread() is (
            threading.main_thread()
        ):
            self._previous_sighup = signal.signal(signal.SIGHUP, self._sighup)

    def _restore_sighup(self) -> None:
        if self._previous_sighup is not None:
            signal.signal(signal.SIGHUP, self._previous_sighup)
            self._previous_sighup = None

    def startService(self) -> None:
        super().startService()
        # Before listening: once "listening" is logged, SIGHUP must reload
        # (its default action would end the process).
        self._install_sighup()
        self._starting = True
        try:
            for description, endpoint in self.endpoints:
                failures: list[Failure] = []
                d = endpoint.listen(self.factory)
                d.addCallback(self._listening, description)
                d.addErrback(self._not_listening, description, failures)
                if failures:
                    # Raised while twistd starts, so it exits with the reason
                    # (port in use, bad socket) instead of serving nothing.
                    failures[0].raiseException()
        finally:
            self._starting = False

    def _not_listening(
        self, failure: Failure, description: str, failures: list[Failure]
    ) -> None:
        if self._starting:
            failures.append(failure)
            return
        # An endpoint that listens asynchronously failed after startup.
        log.failure("cannot listen on {description}", failure, description=description)
        from twisted.internet import reactor

        reactor.stop()

    def _listening(self, port: Any, description: str) -> None:
        self.ports.append(port)
        log.info(
            "listening on {address} ({description})",
            address=describe_peer(port.getHost()),
            description=description,
        )

    def stopService(self) -> defer.Deferred[Any]:
        super().stopService()
        self._restore_sighup()
        stopping = [defer.maybeDeferred(port.stopListening) for port in self.ports]
        self.ports = []
        if self.factory.connections:
            # Their log lines will say "closed locally": this says why.
            log.info(
                "shutting down: sending close_notify to {count} open connection(s)",
                count=len(self.factory.connections),
            )
        stopping.append(self.factory.close_all())
        return defer.DeferredList(stopping)


# ---------------------------------------------------------------------------
# Options
# ---------------------------------------------------------------------------


class Options(usage.Options):
    """Command line of ``twistd sslfile-echo``."""

    synopsis = "[options]"
    longdesc = (
        "A TLS echo server on twisted_sslfile. Without --cert it generates a "
        "self-signed certificate for localhost (saved under --cert-dir and "
        "reused) and logs its path and SHA-256 fingerprint. Options given "
        "here are defaults for every --endpoint; an endpoint's own TLS "
        "options (certKey=, alpn=, ...) override them."
    )

    optParameters: ClassVar[list[list[Any]]] = [
        [
            "cert-dir",
            None,
            ".",
            "Where the generated self-signed certificate is saved (and found "
            "again on the next start).",
        ],
        [
            "client-ca",
            None,
            None,
            "CA certificate file (or directory) that client certificates must "
            "chain to.",
        ],
        [
            "client-cert",
            None,
            None,
            "Client certificate policy: none, request or require (default: "
            "require with --client-ca, else none).",
        ],
        ["npn", None, None, "NPN protocols to offer, comma-separated (TLS 1.2)."],
        ["alpn", None, None, "ALPN protocols to accept, comma-separated."],
        ["min-version", None, None, "Lowest TLS version: TLSv1.2 or TLSv1.3."],
        ["max-version", None, None, "Highest TLS version: TLSv1.2 or TLSv1.3."],
        [
            "ticket-keys",
            None,
            None,
            "Session ticket key file, shared by the processes that must resume "
            "each other's sessions.",
        ],
        [
            "handshake-timeout",
            None,
            None,
            "Seconds a handshake may take, or 'none'.",
        ],
        [
            "reload-interval",
            None,
            None,
            "Seconds between checks of the certificate files for renewals "
            "(default 60), or 'none' (SIGHUP only).",
        ],
        [
            "close-timeout",
            None,
            None,
            "Seconds a close may take (default 3): the wait for the client's "
            "close_notify and for a client that stopped reading, after which "
            "the connection is aborted. It bounds the shutdown too.",
        ],
    ]

    def __init__(self) -> None:
        super().__init__()
        self["endpoint"] = []
        self["cert"] = []
        self["key"] = []

    def opt_endpoint(self, description: str) -> None:
        """Where to listen, an sslfile: description (repeatable; default
        sslfile:tcp:8443:interface=127.0.0.1)."""
        self["endpoint"].append(description)

    def opt_cert(self, path: str) -> None:
        """Certificate chain PEM file, may hold the key (repeatable: SNI);
        or a directory of certificates chosen by SNI (certbot's live/, or
        NAME.pem files holding key and chain)."""
        self["cert"].append(path)

    def opt_key(self, path: str) -> None:
        """Private key file of the --cert at the same position (repeatable)."""
        self["key"].append(path)

    def tls_defaults(self) -> dict[str, str]:
        """The command line as ``sslfile:`` TLS options."""
        # The line per connection is what this server is for.
        defaults: dict[str, str] = {"connectionLog": "yes"}
        if len(self["cert"]) == 1 and os.path.isdir(self["cert"][0]):
            defaults["certDir"] = self["cert"][0]
        elif self["cert"]:
            defaults["certKey"] = ",".join(self["cert"])
        if self["key"]:
            defaults["privateKey"] = ",".join(self["key"])
        if self["client-ca"]:
            defaults["trustRoots"] = self["client-ca"]
        policy = self["client-cert"]
        if policy is None and self["client-ca"]:
            policy = "require"
        if policy is not None:
            defaults["clientCertificate"] = policy
        for option, name in (
            ("npn", "npn"),
            ("alpn", "alpn"),
            ("min-version", "minVersion"),
            ("max-version", "maxVersion"),
            ("ticket-keys", "ticketKeys"),
            ("handshake-timeout", "handshakeTimeout"),
            ("reload-interval", "reloadInterval"),
            ("close-timeout", "closeTimeout"),
        ):
            if self[option] is not None:
                defaults[name] = self[option]
        return defaults

    def postOptions(self) -> None:
        from twisted_sslfile.endpoints import (
            PREFIX,
            EndpointDescriptionError,
            parse_description,
            server_from_string,
        )

        if not self["endpoint"]:
            self["endpoint"] = [DEFAULT_ENDPOINT]
        if self["key"] and len(self["key"]) != len(self["cert"]):
            raise usage.UsageError(
                f"{len(self['key'])} --key for {len(self['cert'])} --cert: give "
                f"one --key per --cert, in the same order (or none when each "
                f"--cert file holds its key)"
            )
        directories = [path for path in self["cert"] if os.path.isdir(path)]
        if directories and (len(self["cert"]) > 1 or self["key"]):
            raise usage.UsageError(
                f"--cert {directories[0]} is a directory of certificates: give "
                f"it alone, without other --cert or --key (each entry in it "
                f"holds its own key)"
            )
        for description in self["endpoint"]:
            args, _ = parse_description(description)
            if not args or args[0].lower() != PREFIX:
                raise usage.UsageError(
                    f"--endpoint {description!r} is not TLS; wrap it: "
                    f"{PREFIX}:{description}"
                )
        self.generated: dict[str, str] | None = None
        defaults = self.tls_defaults()
        certificate = ("certKey", "certDir")
        if not any(name in defaults for name in certificate) and any(
            not any(name in parse_description(d)[1] for name in certificate)
            for d in self["endpoint"]
        ):
            try:
                self.generated = ensure_self_signed(self["cert-dir"])
            except (OSError, ValueError) as e:
                raise usage.UsageError(
                    f"cannot make a certificate in --cert-dir {self['cert-dir']!r}: {e}"
                ) from e
            defaults["certKey"] = self.generated["cert"]
            defaults["privateKey"] = self.generated["key"]
        self.defaults = defaults
        # Parse every description now (with no reactor: nothing listens yet)
        # so that a mistake is a usage error before twistd starts anything.
        for description in self["endpoint"]:
            try:
                server_from_string(None, description, defaults=defaults)
            except EndpointDescriptionError as e:
                raise usage.UsageError(f"--endpoint {description}: {e}") from e


def ensure_self_signed(directory: str) -> dict[str, str]:
    """The saved self-signed certificate, made (again) when missing or stale.

    Returns its paths, fingerprint and whether it was just generated.  The
    key file is written with mode 0600 (by :func:`~twisted_sslfile.x509.
    write_pem`), before the certificate, so a crash never leaves a
    certificate whose key is lost.
    """
    from twisted_sslfile import x509

    directory = os.path.abspath(directory)
    cert_path = os.path.join(directory, GENERATED_CERT_FILE)
    key_path = os.path.join(directory, GENERATED_KEY_FILE)
    now = datetime.datetime.now(datetime.UTC)
    try:
        chain, _key = x509.load_cert_and_key(cert_path, key_path)
        leaf = chain[0]
        reusable = (
            leaf.not_valid_after_utc - _RENEW_BEFORE > now
            and leaf.not_valid_before_utc <= now
            and "localhost" in x509.certificate_dns_names(leaf)
        )
    except ValueError:
        reusable = False
    if reusable:
        state = "reused"
    else:
        os.makedirs(directory, exist_ok=True)
        leaf, key = x509.generate_self_signed(list(GENERATED_NAMES))
        x509.write_pem(key_path, key)
        x509.write_pem(cert_path, leaf)
        state = "generated"
    return {
        "cert": cert_path,
        "key": key_path,
        "fingerprint": x509.fingerprint_sha256(leaf),
        "state": state,
        "names": ", ".join(GENERATED_NAMES),
    }


def makeService(options: Options) -> service.IService:
    """Build the service twistd runs (the reactor is installed by now)."""
    from twisted.internet import reactor

    from twisted_sslfile.endpoints import server_from_string

    generated = options.generated
    if generated is not None:
        log.info(
            "{state} a self-signed certificate for {names}: {cert} (key {key}); "
            "SHA-256 fingerprint {fingerprint}; trust it with e.g. "
            "openssl s_client -CAfile {cert}",
            **generated,
        )
    endpoints = [
        (d, server_from_string(reactor, d, defaults=options.defaults))
        for d in options["endpoint"]
    ]
    return EchoService(endpoints, reactor=reactor)
