"""Endpoints: TLS around any other Twisted endpoint, and ``sslfile:`` strings.

An endpoint string is how most deployments configure a listener or a
connection (twistd options, config files)::

    sslfile:tcp:8443:certKey=cert.pem:privateKey=key.pem
    sslfile:unix:/run/app.sock:certKey=a.pem,b.pem:privateKey=a.key,b.key
    sslfile:systemd:domain=INET:index=0:certKey=combined.pem
    sslfile:tcp:host=example.com:port=443:alpn=h2,http/1.1

The word after ``sslfile:`` names the *inner* endpoint type; every endpoint
type Twisted or a plugin knows (tcp, tcp6, unix, systemd, stdio, haproxy,
...) works without this module knowing it.  What the TLS options of a
description mean, and every message about them, is
:mod:`twisted_sslfile.endpoint_options`; this module holds the endpoint
classes and puts the two halves of a description together.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import (
    IReactorTime,
    IStreamClientEndpoint,
    IStreamServerEndpoint,
)
from twisted.logger import Logger
from zope.interface import implementer

from twisted_sslfile import x509 as _x509
from twisted_sslfile.certstore import CertificateStore
from twisted_sslfile.context import Context
from twisted_sslfile.endpoint_options import (
    PREFIX,
    TLS_OPTIONS,
    TWISTED_OPTIONS,
    EndpointDescriptionError,
    TLSSettings,
    build_settings,
    inner_error,
    inner_host,
    parse_description,
    quote,
    split_arguments,
    unparse_description,
    with_defaults,
)
from twisted_sslfile.protocol import (
    DEFAULT_CLOSE_TIMEOUT,
    DEFAULT_HANDSHAKE_TIMEOUT,
    TLSFactory,
)

__all__ = [
    "PREFIX",
    "TLS_OPTIONS",
    "TWISTED_OPTIONS",
    "EndpointDescriptionError",
    "TLSClientEndpoint",
    "TLSServerEndpoint",
    "TLSSettings",
    "build_settings",
    "client_from_string",
    "parse_description",
    "quote",
    "server_from_string",
    "unparse_description",
]


# ---------------------------------------------------------------------------
# Endpoint classes
# ---------------------------------------------------------------------------


class _WatchingTLSFactory(TLSFactory):
    """A server TLSFactory that keeps its certificates current while it
    listens: Twisted calls ``startFactory`` when the first port using it
    starts listening and ``stopFactory`` when the last one stops."""

    def __init__(
        self,
        *args: Any,
        certificates: CertificateStore,
        watch_clock: Any,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.certificates = certificates
        self.watch_clock = watch_clock

    def startFactory(self) -> None:
        super().startFactory()
        self.certificates.start(self.watch_clock)

    def stopFactory(self) -> None:
        self.certificates.stop()
        super().stopFactory()


@implementer(IStreamServerEndpoint)
class TLSServerEndpoint:
    """Listen with ``inner`` and run TLS on every accepted connection.

    :param inner: any ``IStreamServerEndpoint`` (TCP, UNIX, adopted
        systemd sockets, ...).
    :param context: the server's policy and certificates.
    :param handshake_timeout: seconds before an unfinished handshake is
        dropped; None for no limit.
    :param certificates: files to keep ``context``'s certificates in step
        with: checked every ``certificates.interval`` seconds on ``clock``
        while listening, and read again by :meth:`reload`.
    :param clock: the reactor (or a ``task.Clock``) for those checks;
        default the global reactor.
    :param connection_log: ``TLSFactory``'s: True (or a ``Logger``) logs
        one event per connection.
    :param close_timeout: seconds a close may take before the connection
        is aborted (see :class:`~twisted_sslfile.protocol.TLSProtocol`);
        None for no limit.
    """

    def __init__(
        self,
        inner: Any,
        context: Context,
        *,
        handshake_timeout: float | None = DEFAULT_HANDSHAKE_TIMEOUT,
        certificates: CertificateStore | None = None,
        clock: IReactorTime | None = None,
        connection_log: bool | Logger = False,
        close_timeout: float | None = DEFAULT_CLOSE_TIMEOUT,
    ) -> None:
        self.inner = inner
        self.context = context
        self.handshake_timeout = handshake_timeout
        self.certificates = certificates
        self.clock = clock
        self.connection_log = connection_log
        self.close_timeout = close_timeout
        if certificates is not None:
            certificates.bind(context)

    def reload(self) -> bool:
        """Read the certificate files again now (wire ``SIGHUP`` to this).

        New connections get the new certificates, open ones keep theirs.  A
        file that does not load (half-written, key not matching) is logged
        and its previous certificate stays in service.  Returns whether
        anything changed; False when there are no files to watch.
        """
        if self.certificates is None:
            return False
        return self.certificates.reload()

    def wrap_factory(self, factory: Any) -> TLSFactory:
        """The factory ``listen`` gives the inner endpoint."""
        if self.certificates is not None:
            tls: TLSFactory = _WatchingTLSFactory(
                factory,
                self.context,
                False,
                handshake_timeout=self.handshake_timeout,
                close_timeout=self.close_timeout,
                certificates=self.certificates,
                watch_clock=self.clock,
                connection_log=self.connection_log,
            )
        else:
            tls = TLSFactory(
                factory,
                self.context,
                False,
                handshake_timeout=self.handshake_timeout,
                close_timeout=self.close_timeout,
                connection_log=self.connection_log,
            )
        tls.noisy = getattr(factory, "noisy", True)
        return tls

    def listen(self, protocolFactory: Any) -> Deferred[Any]:
        """Listen on the inner endpoint; fires with its ``IListeningPort``."""
        return self.inner.listen(self.wrap_factory(protocolFactory))

    def __repr__(self) -> str:
        return f"<TLSServerEndpoint {self.context!r} over {self.inner!r}>"


@implementer(IStreamClientEndpoint)
class TLSClientEndpoint:
    """Connect with ``inner`` and run TLS as a client over the connection.

    ``connect`` fires with the application protocol once the inner
    connection exists, as Twisted's ``wrapClientTLS`` does; the handshake
    is still running then.  Its transport (a
    :class:`~twisted_sslfile.protocol.TLSProtocol`) has
    ``whenHandshakeDone()`` for code that wants to wait for it.

    :param server_name: SNI and the name the server's certificate must
        match; required unless the context skips verification.  Kept in
        A-label form (see :func:`~twisted_sslfile.x509.canonical_server_name`);
        an invalid name is a ValueError here.
    :param session: a session from an earlier connection to offer for
        resumption (when the installed engine supports it).
    :param connection_log: ``TLSFactory``'s: True (or a ``Logger``) logs
        one event per connection.
    """

    def __init__(
        self,
        inner: Any,
        context: Context,
        server_name: str | None,
        *,
        handshake_timeout: float | None = DEFAULT_HANDSHAKE_TIMEOUT,
        close_timeout: float | None = DEFAULT_CLOSE_TIMEOUT,
        session: object | None = None,
        connection_log: bool | Logger = False,
    ) -> None:
        if server_name is None and context.verify:
            raise ValueError(
                "a verifying TLS client needs server_name (or a Context with "
                "insecure_skip_verify=True)"
            )
        if server_name is not None:
            server_name = _x509.canonical_server_name(server_name)
        self.inner = inner
        self.context = context
        self.server_name = server_name
        self.handshake_timeout = handshake_timeout
        self.close_timeout = close_timeout
        self.session = session
        self.connection_log = connection_log

    def wrap_factory(self, factory: Any) -> TLSFactory:
        """The factory ``connect`` gives the inner endpoint."""
        kwargs: dict[str, Any] = {
            "handshake_timeout": self.handshake_timeout,
            "connection_log": self.connection_log,
            "close_timeout": self.close_timeout,
        }
        if self.session is not None:
            kwargs["session"] = self.session
        tls = TLSFactory(factory, self.context, True, self.server_name, **kwargs)
        tls.noisy = getattr(factory, "noisy", True)
        return tls

    def connect(self, protocolFactory: Any) -> Deferred[Any]:
        """Connect; fires with the application protocol ``protocolFactory``
        built (its transport is the TLS connection)."""
        try:
            factory = self.wrap_factory(protocolFactory)
        except ValueError as e:
            from twisted.internet.defer import fail

            return fail(e)
        d = self.inner.connect(factory)
        d.addCallback(lambda tls: tls.wrappedProtocol)
        return d

    def __repr__(self) -> str:
        return (
            f"<TLSClientEndpoint {self.server_name!r} {self.context!r} "
            f"over {self.inner!r}>"
        )


# ---------------------------------------------------------------------------
# From a description to an endpoint
# ---------------------------------------------------------------------------


def _inner_server(reactor: Any, inner_type: str, args: list[str], kwargs: dict) -> Any:
    from twisted.internet.endpoints import serverFromString

    description = unparse_description([inner_type, *args], kwargs)
    try:
        return serverFromString(reactor, description)
    except (TypeError, ValueError, KeyError, IndexError) as e:
        raise inner_error(e, inner_type, description) from e


def _inner_client(reactor: Any, inner_type: str, args: list[str], kwargs: dict) -> Any:
    from twisted.internet.endpoints import clientFromString

    description = unparse_description([inner_type, *args], kwargs)
    try:
        return clientFromString(reactor, description)
    except (TypeError, ValueError, KeyError, IndexError) as e:
        raise inner_error(e, inner_type, description) from e


def _hostname_endpoint(
    reactor: Any, args: Sequence[str], kwargs: Mapping[str, str]
) -> Any | None:
    """A ``HostnameEndpoint`` for ``tcp:`` client arguments naming a host by
    name, or None for an IP address (which ``tcp:`` connects to directly).

    The arguments are read the way Twisted's ``tcp:`` parser reads them
    (``HOST:PORT``, ``host=``, ``port=``, ``timeout=``, ``bindAddress=``),
    after that parser has accepted them, so they are well-formed here.
    """
    from twisted.internet.endpoints import HostnameEndpoint

    values = dict(kwargs)
    if len(args) == 2:
        values["host"], values["port"] = args[0], args[1]
    elif len(args) == 1:
        values["port" if "host" in values else "host"] = args[0]
    host = values.get("host")
    if host is None or "port" not in values:
        return None
    try:
        ipaddress.ip_address(host.partition("%")[0])
    except ValueError:
        pass
    else:
        return None
    bind = values.get("bindAddress")
    return HostnameEndpoint(
        reactor,
        host,
        int(values["port"]),
        timeout=int(values.get("timeout", 30)),
        bindAddress=None if bind is None else (bind, 0),
    )


# The plugin objects in twisted/plugins/sslfile_endpoints.py call these two
# with what Twisted's parser made of the description after "sslfile:".


def server_from_parsed(
    reactor: Any,
    args: Sequence[str],
    kwargs: Mapping[str, str],
    *,
    defaults: Mapping[str, str] | None = None,
) -> TLSServerEndpoint:
    """A server endpoint from arguments already split (after ``sslfile:``).

    ``defaults`` are TLS options used where the description has none (the
    echo plugin's ``--cert`` and friends); the description wins.
    """
    inner_type, inner_args, inner_kwargs, tls = split_arguments(
        args, kwargs, is_client=False
    )
    settings = build_settings(
        with_defaults(defaults, tls), is_client=False, inner_type=inner_type
    )
    inner = _inner_server(reactor, inner_type, inner_args, inner_kwargs)
    return TLSServerEndpoint(
        inner,
        settings.context,
        handshake_timeout=settings.handshake_timeout,
        certificates=settings.certificates,
        clock=reactor,
        connection_log=settings.connection_log,
        close_timeout=settings.close_timeout,
    )


def client_from_parsed(
    reactor: Any,
    args: Sequence[str],
    kwargs: Mapping[str, str],
    *,
    defaults: Mapping[str, str] | None = None,
) -> TLSClientEndpoint:
    """A client endpoint from arguments already split (after ``sslfile:``)."""
    inner_type, inner_args, inner_kwargs, tls = split_arguments(
        args, kwargs, is_client=True
    )
    settings = build_settings(
        with_defaults(defaults, tls),
        is_client=True,
        default_server_name=inner_host(inner_type, inner_args, inner_kwargs),
        inner_type=inner_type,
    )
    inner = _inner_client(reactor, inner_type, inner_args, inner_kwargs)
    if inner_type.lower() == "tcp" and reactor is not None:
        # Checked by Twisted's tcp parser above; a name is connected to the
        # way tls: connects: every address, IPv6 and IPv4, happy eyeballs.
        # (Without a reactor the description is only being checked.)
        inner = _hostname_endpoint(reactor, inner_args, inner_kwargs) or inner
    return TLSClientEndpoint(
        inner,
        settings.context,
        settings.server_name,
        handshake_timeout=settings.handshake_timeout,
        connection_log=settings.connection_log,
        close_timeout=settings.close_timeout,
    )


def _strip_prefix(description: str) -> tuple[list[str], dict[str, str]]:
    args, kwargs = parse_description(description)
    if args and args[0].lower() == PREFIX:
        args = args[1:]
    return args, kwargs


def server_from_string(
    reactor: Any, description: str, *, defaults: Mapping[str, str] | None = None
) -> TLSServerEndpoint:
    """``serverFromString`` for ``sslfile:`` descriptions, with defaults.

    The leading ``sslfile:`` is optional.  Unlike ``serverFromString`` it
    works without the plugin being installed and returns the
    :class:`TLSServerEndpoint` itself.
    """
    args, kwargs = _strip_prefix(description)
    return server_from_parsed(reactor, args, kwargs, defaults=defaults)


def client_from_string(
    reactor: Any, description: str, *, defaults: Mapping[str, str] | None = None
) -> TLSClientEndpoint:
    """``clientFromString`` for ``sslfile:`` descriptions, with defaults."""
    args, kwargs = _strip_prefix(description)
    return client_from_parsed(reactor, args, kwargs, defaults=defaults)
