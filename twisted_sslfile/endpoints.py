"""Endpoints: TLS around any other Twisted endpoint, and ``sslfile:`` strings.

An endpoint string is how most deployments configure a listener or a
connection (twistd options, config files), so this module is mostly about
turning one into a working :class:`~twisted_sslfile.context.Context`, or
into a message that says exactly what is wrong with it::

    sslfile:tcp:8443:certKey=cert.pem:privateKey=key.pem
    sslfile:unix:/run/app.sock:certKey=a.pem,b.pem:privateKey=a.key,b.key
    sslfile:systemd:domain=INET:index=0:certKey=combined.pem
    sslfile:tcp:host=example.com:port=443:alpn=h2,http/1.1

The word after ``sslfile:`` names the *inner* endpoint type.  The TLS options
listed in :data:`TLS_OPTIONS` are taken out; everything else is serialised
back into a description and handed to Twisted's ``serverFromString`` /
``clientFromString``, so every endpoint type Twisted or a plugin knows (tcp,
tcp6, unix, systemd, stdio, haproxy, ...) works without this module knowing
it.  The reference table of the options is ``docs/endpoints.rst``.

Design decisions, and why:

* **Lists are comma-separated** (``alpn=h2,http/1.1``).  Twisted's parser
  keeps only the last of repeated options, silently, so "repeat the option"
  cannot work; commas never appear in protocol names, cipher or group names,
  and rarely in file names.  Several certificates for SNI are
  ``certKey=a.pem,b.pem`` with ``privateKey`` paired by position.
* **Everything is checked at parse time.**  Files are read, keys matched
  against certificates and names resolved while the string is parsed, so
  a bad configuration stops ``twistd`` at startup with
  :class:`EndpointDescriptionError` naming the option and the file, never
  on the first connection.
* **Clients verify by default**: the name checked is ``hostname=``, else the
  inner endpoint's ``host``.  The off switch is ``verify=no`` and maps to the
  loudly named ``insecure_skip_verify``.
"""

from __future__ import annotations

import difflib
import inspect
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IStreamClientEndpoint, IStreamServerEndpoint
from zope.interface import implementer

from twisted_sslfile import x509 as _x509
from twisted_sslfile.constants import ClientCertificatePolicy
from twisted_sslfile.context import Context, Credential
from twisted_sslfile.protocol import (
    DEFAULT_CLOSE_TIMEOUT,
    DEFAULT_HANDSHAKE_TIMEOUT,
    TLSFactory,
)

__all__ = [
    "PREFIX",
    "TLS_OPTIONS",
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

#: The endpoint type this module registers.
PREFIX = "sslfile"


class EndpointDescriptionError(ValueError):
    """An ``sslfile:`` description cannot be used.

    A ``ValueError`` (what Twisted's own parsers raise for bad descriptions)
    whose message starts with the option at fault and, when a file is
    involved, names it.  ``option`` and ``path`` carry the same for code.
    """

    def __init__(
        self, message: str, option: str | None = None, path: str | None = None
    ) -> None:
        super().__init__(message)
        self.option = option
        self.path = path


# ---------------------------------------------------------------------------
# The option table
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Option:
    """One TLS option: which roles may use it and what it means (for errors)."""

    server: bool
    client: bool
    summary: str


#: Every TLS option an ``sslfile:`` description may carry.  Anything else is
#: passed to the inner endpoint.  docs/endpoints.rst documents each one and a
#: test checks that the two agree.
TLS_OPTIONS: dict[str, _Option] = {
    "certKey": _Option(True, True, "certificate chain PEM file(s), comma-separated"),
    "privateKey": _Option(True, True, "private key file(s), paired with certKey"),
    "extraChain": _Option(True, True, "intermediate certificates for the chain(s)"),
    "trustRoots": _Option(True, True, "CA file(s) or directory, or 'system'"),
    "clientCertificate": _Option(True, False, "none, request or require"),
    "verify": _Option(True, True, "yes or no (no = insecure_skip_verify)"),
    "hostname": _Option(False, True, "name for SNI and certificate verification"),
    "npn": _Option(True, True, "NPN protocol names, comma-separated"),
    "alpn": _Option(True, True, "ALPN protocol names, comma-separated"),
    "minVersion": _Option(True, True, "TLSv1.2 or TLSv1.3"),
    "maxVersion": _Option(True, True, "TLSv1.2 or TLSv1.3"),
    "ciphers": _Option(True, True, "cipher suite names, comma-separated"),
    "groups": _Option(True, True, "key exchange group names, comma-separated"),
    "handshakeTimeout": _Option(True, True, "seconds, or 'none'"),
    "closeTimeout": _Option(True, True, "seconds, or 'none'"),
    "ticketKeys": _Option(True, False, "session ticket key file"),
}

_BOOLEANS = {
    "yes": True,
    "true": True,
    "on": True,
    "1": True,
    "no": False,
    "false": False,
    "off": False,
    "0": False,
}


# ---------------------------------------------------------------------------
# Description syntax
# ---------------------------------------------------------------------------


def parse_description(description: str) -> tuple[list[str], dict[str, str]]:
    """Split a description into positional and keyword arguments.

    The same rules as Twisted's ``serverFromString``: ``:`` separates
    arguments, the first ``=`` of an argument makes it a keyword, a
    backslash takes the next character literally, and a repeated keyword
    keeps its last value.  Re-implemented rather than imported because
    Twisted's version is private.
    """
    if not isinstance(description, str):
        raise TypeError(f"an endpoint description is a str, not {description!r}")
    args: list[str] = []
    kwargs: dict[str, str] = {}
    parts: list[str] = []  # the current argument: [value] or [key, value]
    current: list[str] = []
    chars = iter(description)
    for char in chars:
        if char == ":":
            parts.append("".join(current))
            _add_argument(parts, args, kwargs)
            parts, current = [], []
        elif char == "=" and not parts:
            parts.append("".join(current))
            current = []
        elif char == "\\":
            current.append(next(chars, ""))
        else:
            current.append(char)
    parts.append("".join(current))
    _add_argument(parts, args, kwargs)
    return args, kwargs


def _add_argument(parts: list[str], args: list[str], kwargs: dict[str, str]) -> None:
    if len(parts) == 1:
        args.append(parts[0])
    else:
        kwargs[parts[0]] = parts[1]


def quote(value: str) -> str:
    """Escape a value so that :func:`parse_description` gives it back whole.

    ``:`` would end the argument and ``=`` could turn a positional argument
    into a keyword; both, and the backslash itself, get a backslash.
    """
    return re.sub(r"([\\:=])", r"\\\1", value)


def unparse_description(args: Sequence[str], kwargs: Mapping[str, str]) -> str:
    """The description that parses back into ``args`` and ``kwargs``.

    Positional arguments first, in order, then keywords: positional order
    is all any parser sees (keywords arrive as a dict), so nothing is lost.
    """
    items = [quote(str(arg)) for arg in args]
    items += [f"{quote(str(k))}={quote(str(v))}" for k, v in kwargs.items()]
    return ":".join(items)


# ---------------------------------------------------------------------------
# TLS options -> Context
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class TLSSettings:
    """What the TLS options of a description amount to.

    ``server_name`` is the client's SNI and verification name (None for a
    server, or a client with ``verify=no`` and no name to send).
    """

    context: Context
    is_client: bool
    server_name: str | None = None
    handshake_timeout: float | None = DEFAULT_HANDSHAKE_TIMEOUT
    close_timeout: float | None = DEFAULT_CLOSE_TIMEOUT
    #: Paths of the certificate files, in certKey order (for log lines).
    certificate_files: tuple[str, ...] = field(default=())


def _error(
    option: str, message: str, path: str | None = None
) -> EndpointDescriptionError:
    return EndpointDescriptionError(f"{PREFIX}: {option}: {message}", option, path)


def _split_list(option: str, value: str) -> list[str]:
    items = [item.strip() for item in value.split(",")]
    if not value.strip() or any(not item for item in items):
        raise _error(option, f"empty entry in the list {value!r}")
    return items


def _boolean(option: str, value: str) -> bool:
    try:
        return _BOOLEANS[value.strip().lower()]
    except KeyError:
        raise _error(option, f"{value!r} is not yes or no") from None


def _timeout(option: str, value: str) -> float | None:
    text = value.strip().lower()
    if text in ("none", "off", "no", "0"):
        return None
    try:
        seconds = float(text)
    except ValueError:
        seconds = float("nan")
    if not seconds > 0 or seconds == float("inf"):
        raise _error(option, f"{value!r} is not a positive number of seconds or none")
    return seconds


def _config_error(option: str, error: Exception) -> EndpointDescriptionError:
    path = getattr(error, "path", None)
    return _error(option, str(error), path)


#: Context's argument names, as its messages use them -> our option names.
_ARGUMENT_OPTIONS = {
    "min_version": "minVersion",
    "max_version": "maxVersion",
    "cipher_suites": "ciphers",
    "alpn_protocols": "alpn",
    "npn_protocols": "npn",
    "client_certificate": "clientCertificate",
    "insecure_skip_verify": "verify",
    "trust_roots": "trustRoots",
    "ticket_key_file": "ticketKeys",
}


def _context_error(option: str, error: Exception) -> EndpointDescriptionError:
    """A Context refusal, reworded in the description's own option names."""
    message = str(error)
    for argument, name in _ARGUMENT_OPTIONS.items():
        message = re.sub(rf"\b{argument}\b", name, message)
    message = message.removeprefix(f"{option}: ")
    return _error(option, message, getattr(error, "path", None))


def _load_credentials(
    cert_files: list[str], key_files: list[str] | None, chain_files: list[str] | None
) -> list[Credential]:
    if key_files is not None and len(key_files) != len(cert_files):
        raise _error(
            "privateKey",
            f"{len(key_files)} key file(s) for {len(cert_files)} certKey file(s); "
            f"give one key per certificate, in the same order (or leave "
            f"privateKey out when each certKey file holds its key)",
        )
    if chain_files is not None and len(chain_files) not in (1, len(cert_files)):
        raise _error(
            "extraChain",
            f"{len(chain_files)} file(s) for {len(cert_files)} certKey file(s); "
            f"give one for all certificates or one per certificate",
        )
    extras: list[list[x509.Certificate]] = []
    for path in chain_files or ():
        try:
            extras.append(_x509.load_certificates(path))
        except ValueError as e:
            raise _config_error("extraChain", e) from e
    credentials: list[Credential] = []
    for index, cert_file in enumerate(cert_files):
        key_file = key_files[index] if key_files is not None else None
        option = "certKey" if key_file is None else "certKey/privateKey"
        try:
            chain, key = _x509.load_cert_and_key(cert_file, key_file)
        except _x509.ConfigurationError as e:
            blame = (
                "privateKey"
                if key_file is not None and e.path == key_file
                else "certKey"
            )
            raise _config_error(blame, e) from e
        except ValueError as e:
            raise _error(option, str(e), cert_file) from e
        if extras:
            chain = chain + (extras[0] if len(extras) == 1 else extras[index])
        try:
            credentials.append(Credential(chain, key))
        except ValueError as e:
            where = cert_file if key_file is None else f"{cert_file} and {key_file}"
            raise _error(option, f"{where}: {e}", cert_file) from e
    return credentials


def _load_trust_roots(value: str) -> _x509.TrustRoots | None:
    if value.strip().lower() == "system":
        try:
            return _x509.system_trust_roots()
        except ValueError as e:
            raise _config_error("trustRoots", e) from e
    roots: list[x509.Certificate] = []
    paths = _split_list("trustRoots", value)
    for path in paths:
        try:
            loaded = _x509.load_trust_roots(path)
        except ValueError as e:
            raise _config_error("trustRoots", e) from e
        if len(paths) == 1:
            return loaded
        roots.extend(loaded.certificates)
    return _x509.TrustRoots.from_certificates(roots, value)


def _context_accepts(name: str) -> bool:
    return name in inspect.signature(Context).parameters


def build_settings(
    options: Mapping[str, str],
    *,
    is_client: bool,
    default_server_name: str | None = None,
    inner_type: str = "",
    context_factory: Callable[..., Context] = Context,
) -> TLSSettings:
    """Turn TLS options (names of :data:`TLS_OPTIONS`, string values) into a
    :class:`TLSSettings`, or raise :class:`EndpointDescriptionError`.

    ``default_server_name`` is the host the inner client endpoint connects
    to; ``hostname=`` overrides it.  The Context is built one option at a
    time, so when it refuses a value the option that made it refuse is the
    one named (its own messages speak of constructor arguments).
    """
    role = "client" if is_client else "server"
    for name in options:
        spec = TLS_OPTIONS.get(name)
        if spec is None:
            raise _error(name, "not a TLS option")
        if not (spec.client if is_client else spec.server):
            raise _error(name, f"not an option of a TLS {role}")

    def get(name: str) -> str | None:
        return options.get(name)

    arguments: dict[str, Any] = {}

    def add(option: str, **values: Any) -> None:
        trial = {**arguments, **values}
        try:
            context_factory(**trial)
        except ValueError as e:
            raise _context_error(option, e) from e
        arguments.update(values)

    for option, argument in (
        ("minVersion", "min_version"),
        ("maxVersion", "max_version"),
    ):
        value = get(option)
        if value is not None:
            add(option, **{argument: value.strip()})
    for option, argument in (
        ("ciphers", "cipher_suites"),
        ("groups", "groups"),
        ("alpn", "alpn_protocols"),
        ("npn", "npn_protocols"),
    ):
        value = get(option)
        if value is not None:
            add(option, **{argument: _split_list(option, value)})

    verify = True
    if get("verify") is not None:
        verify = _boolean("verify", get("verify"))  # type: ignore[arg-type]
        add("verify", insecure_skip_verify=not verify)

    trust = get("trustRoots")
    if trust is not None:
        add("trustRoots", trust_roots=_load_trust_roots(trust))

    if not is_client:
        policy = get("clientCertificate")
        if policy is not None:
            add("clientCertificate", client_certificate=policy.strip().lower())
            asks = policy.strip().lower() != ClientCertificatePolicy.NONE.value
            if asks and verify and trust is None:
                raise _error(
                    "clientCertificate",
                    f"{policy} needs trustRoots= naming the CA that issues client "
                    f"certificates (or verify=no to accept any certificate)",
                )

    cert_value = get("certKey")
    key_value = get("privateKey")
    chain_value = get("extraChain")
    cert_files: list[str] = []
    if cert_value is None:
        if key_value is not None:
            raise _error("privateKey", "given without certKey")
        if chain_value is not None:
            raise _error("extraChain", "given without certKey")
        if not is_client:
            raise _error(
                "certKey",
                "a TLS server needs a certificate: certKey=cert.pem"
                ":privateKey=key.pem (or one PEM file holding both)",
            )
    else:
        cert_files = _split_list("certKey", cert_value)
        credentials = _load_credentials(
            cert_files,
            None if key_value is None else _split_list("privateKey", key_value),
            None if chain_value is None else _split_list("extraChain", chain_value),
        )
        if is_client and len(credentials) > 1:
            raise _error("certKey", "a client presents one certificate, not a list")
        add("certKey", credentials=credentials)

    ticket_keys = get("ticketKeys")
    if ticket_keys is not None:
        if not _context_accepts("ticket_key_file"):
            raise _error(
                "ticketKeys",
                "session tickets are not available in this version of twisted_sslfile",
                ticket_keys,
            )
        add("ticketKeys", ticket_key_file=ticket_keys)

    timeout = DEFAULT_HANDSHAKE_TIMEOUT
    if get("handshakeTimeout") is not None:
        timeout = _timeout("handshakeTimeout", get("handshakeTimeout"))  # type: ignore[arg-type]
    close_timeout: float | None = DEFAULT_CLOSE_TIMEOUT
    close_value = get("closeTimeout")
    if close_value is not None:
        close_timeout = _timeout("closeTimeout", close_value)

    server_name = None
    if is_client:
        server_name = get("hostname")
        if server_name is not None:
            server_name = server_name.strip()
            try:
                _x509.normalize_server_name(server_name)
            except ValueError as e:
                raise _error("hostname", str(e)) from e
        else:
            server_name = default_server_name
        if server_name is None and verify:
            where = f" over {inner_type}" if inner_type else ""
            raise _error(
                "hostname",
                f"a verifying TLS client{where} needs the name the server's "
                f"certificate must match: add hostname=NAME (or verify=no)",
            )

    context = context_factory(**arguments)
    return TLSSettings(
        context=context,
        is_client=is_client,
        server_name=server_name,
        handshake_timeout=timeout,
        close_timeout=close_timeout,
        certificate_files=tuple(cert_files),
    )


# ---------------------------------------------------------------------------
# Endpoint classes
# ---------------------------------------------------------------------------


@implementer(IStreamServerEndpoint)
class TLSServerEndpoint:
    """Listen with ``inner`` and run TLS on every accepted connection.

    :param inner: any ``IStreamServerEndpoint`` (TCP, UNIX, adopted
        systemd sockets, ...).
    :param context: the server's policy and certificates.
    :param handshake_timeout: seconds before an unfinished handshake is
        dropped; None for no limit.
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
        close_timeout: float | None = DEFAULT_CLOSE_TIMEOUT,
    ) -> None:
        self.inner = inner
        self.context = context
        self.handshake_timeout = handshake_timeout
        self.close_timeout = close_timeout

    def wrap_factory(self, factory: Any) -> TLSFactory:
        """The factory ``listen`` gives the inner endpoint."""
        tls = TLSFactory(
            factory,
            self.context,
            False,
            handshake_timeout=self.handshake_timeout,
            close_timeout=self.close_timeout,
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
        match; required unless the context skips verification.
    :param session: a session from an earlier connection to offer for
        resumption (when the installed engine supports it).
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
    ) -> None:
        if server_name is None and context.verify:
            raise ValueError(
                "a verifying TLS client needs server_name (or a Context with "
                "insecure_skip_verify=True)"
            )
        self.inner = inner
        self.context = context
        self.server_name = server_name
        self.handshake_timeout = handshake_timeout
        self.close_timeout = close_timeout
        self.session = session

    def wrap_factory(self, factory: Any) -> TLSFactory:
        """The factory ``connect`` gives the inner endpoint."""
        kwargs: dict[str, Any] = {
            "handshake_timeout": self.handshake_timeout,
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


def _split_arguments(
    args: Sequence[str], kwargs: Mapping[str, str], *, is_client: bool
) -> tuple[str, list[str], dict[str, str], dict[str, str]]:
    """(inner type, inner args, inner kwargs, TLS options)."""
    if not args or not args[0]:
        example = (
            "sslfile:tcp:host=example.com:port=443"
            if is_client
            else ("sslfile:tcp:8443:certKey=cert.pem")
        )
        raise EndpointDescriptionError(
            f"{PREFIX}: the inner endpoint type is missing; write it after "
            f"'{PREFIX}:', as in {example}"
        )
    inner_type, inner_args = args[0], list(args[1:])
    tls: dict[str, str] = {}
    inner: dict[str, str] = {}
    lowered = {name.lower(): name for name in TLS_OPTIONS}
    for key, value in kwargs.items():
        if key in TLS_OPTIONS:
            tls[key] = value
        elif key.lower() in lowered:
            # Not passed on: the inner endpoint would only say "unexpected
            # keyword", and a misspelt certKey must not end in plaintext.
            raise EndpointDescriptionError(
                f"{PREFIX}: {key}: unknown option; did you mean "
                f"{lowered[key.lower()]}? (option names are case-sensitive)",
                key,
            )
        else:
            inner[key] = value
    return inner_type, inner_args, inner, tls


_UNEXPECTED_KEYWORD = re.compile(r"unexpected keyword argument '([^']+)'")


def _inner_error(
    error: Exception, inner_type: str, description: str
) -> EndpointDescriptionError:
    """Explain why the inner endpoint refused its part of the description."""
    match = _UNEXPECTED_KEYWORD.search(str(error))
    if match:
        option = match.group(1)
        close = difflib.get_close_matches(option, list(TLS_OPTIONS), n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]}?" if close else ""
        return EndpointDescriptionError(
            f"{PREFIX}: {option}: unknown option (neither a TLS option nor one "
            f"of the {inner_type} endpoint){hint}; TLS options are "
            f"{', '.join(TLS_OPTIONS)}",
            option,
        )
    if "Unknown endpoint type" in str(error):
        return EndpointDescriptionError(
            f"{PREFIX}: unknown inner endpoint type {inner_type!r} (is the plugin "
            f"that provides it installed?)"
        )
    return EndpointDescriptionError(
        f"{PREFIX}: the inner endpoint {description!r} was refused: "
        f"{type(error).__name__}: {error}"
    )


def _inner_server(reactor: Any, inner_type: str, args: list[str], kwargs: dict) -> Any:
    from twisted.internet.endpoints import serverFromString

    description = unparse_description([inner_type, *args], kwargs)
    try:
        return serverFromString(reactor, description)
    except (TypeError, ValueError, KeyError, IndexError) as e:
        raise _inner_error(e, inner_type, description) from e


def _inner_client(reactor: Any, inner_type: str, args: list[str], kwargs: dict) -> Any:
    from twisted.internet.endpoints import clientFromString

    description = unparse_description([inner_type, *args], kwargs)
    try:
        return clientFromString(reactor, description)
    except (TypeError, ValueError, KeyError, IndexError) as e:
        raise _inner_error(e, inner_type, description) from e


def _inner_host(
    inner_type: str, args: Sequence[str], kwargs: Mapping[str, str]
) -> str | None:
    """The host a client endpoint connects to, as Twisted's tcp parser reads it.

    ``tcp:HOST:PORT``, ``tcp:host=HOST:PORT``, ``tcp:HOST:port=PORT`` all
    work there; a type without a host (unix) gives None.
    """
    if "host" in kwargs:
        return kwargs["host"]
    if (
        inner_type.lower() in ("tcp", "tcp6", "ssl", "tls")
        and args
        and (len(args) >= 2 or "port" in kwargs)
    ):
        return args[0]
    return None


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
    inner_type, inner_args, inner_kwargs, tls = _split_arguments(
        args, kwargs, is_client=False
    )
    settings = build_settings(
        {**(defaults or {}), **tls}, is_client=False, inner_type=inner_type
    )
    inner = _inner_server(reactor, inner_type, inner_args, inner_kwargs)
    return TLSServerEndpoint(
        inner,
        settings.context,
        handshake_timeout=settings.handshake_timeout,
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
    inner_type, inner_args, inner_kwargs, tls = _split_arguments(
        args, kwargs, is_client=True
    )
    settings = build_settings(
        {**(defaults or {}), **tls},
        is_client=True,
        default_server_name=_inner_host(inner_type, inner_args, inner_kwargs),
        inner_type=inner_type,
    )
    inner = _inner_client(reactor, inner_type, inner_args, inner_kwargs)
    return TLSClientEndpoint(
        inner,
        settings.context,
        settings.server_name,
        handshake_timeout=settings.handshake_timeout,
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
