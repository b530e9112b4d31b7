"""The ``sslfile:`` description: its syntax, its TLS options, and what they
amount to (a :class:`TLSSettings` holding a
:class:`~twisted_sslfile.context.Context`), or a message that says exactly
what is wrong with it.  :mod:`twisted_sslfile.endpoints` builds the
endpoints from the result.

The word after ``sslfile:`` names the *inner* endpoint type.  The TLS
options listed in :data:`TLS_OPTIONS` are taken out
(:func:`split_arguments`); everything else is serialised back into a
description for Twisted's ``serverFromString`` / ``clientFromString``.  The
reference table of the options is ``docs/endpoints.rst``.

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
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar

from cryptography import x509

from twisted_sslfile import x509 as _x509
from twisted_sslfile.certstore import (
    DEFAULT_RELOAD_INTERVAL,
    CertificateFiles,
    CertificateStore,
)
from twisted_sslfile.constants import ClientCertificatePolicy
from twisted_sslfile.context import Context, Credential, convert_session_tickets
from twisted_sslfile.context_fields import (
    DEFAULT_MAX_VERSION,
    DEFAULT_MIN_VERSION,
    convert_cipher_suites,
    convert_client_certificate,
    convert_groups,
    convert_path,
    convert_protocol_names,
    convert_versions,
)
from twisted_sslfile.errors import EndpointDescriptionError
from twisted_sslfile.protocol import DEFAULT_CLOSE_TIMEOUT, DEFAULT_HANDSHAKE_TIMEOUT

__all__ = [
    "PREFIX",
    "TLS_OPTIONS",
    "TWISTED_OPTIONS",
    "EndpointDescriptionError",
    "TLSSettings",
    "build_settings",
    "inner_error",
    "inner_host",
    "parse_description",
    "quote",
    "split_arguments",
    "unparse_description",
    "with_defaults",
]

_T = TypeVar("_T")

#: The endpoint type this module registers.
PREFIX = "sslfile"


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
    "certDir": _Option(True, False, "directory of certificates chosen by SNI"),
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
    "reloadInterval": _Option(True, False, "seconds between certificate checks"),
    "connectionLog": _Option(True, True, "yes or no: log each connection"),
}

#: Options of Twisted's ``ssl:`` and ``tls:`` endpoints that ``sslfile:``
#: spells differently or does without: (what to write instead, or None,
#: and why).  Options with the same name and meaning (certKey, privateKey,
#: trustRoots, hostname) and the inner endpoint's own (host, port,
#: interface, backlog, timeout, bindAddress) are not listed.  The "did you
#: mean" of an unknown option comes from here first; docs/endpoints.rst
#: has the same table and a test checks that they agree.
TWISTED_OPTIONS: dict[str, tuple[str | None, str]] = {
    "certificate": (
        "certKey",
        "tls: calls the client certificate file 'certificate'",
    ),
    "caCertsDir": (
        "trustRoots",
        "trustRoots takes a directory of CA files, a file, or 'system'",
    ),
    "sslmethod": (
        "minVersion/maxVersion",
        "versions are a range: sslmethod=TLSv1_2_METHOD is minVersion=TLSv1.2"
        ":maxVersion=TLSv1.2, and TLS_METHOD/SSLv23_METHOD is the default "
        "(TLS 1.2 and 1.3)",
    ),
    "extraCertChain": (
        "extraChain",
        "intermediate certificates appended to the chain",
    ),
    "path": (
        "certDir",
        "the tls: server's directory of certificates chosen by SNI",
    ),
    "dhParameters": (
        None,
        "there is no finite-field DHE to configure: key exchange is ECDHE "
        "only (choose curves with groups=)",
    ),
    "endpoint": (
        None,
        "the endpoint to wrap is the word after 'sslfile:', as in "
        "sslfile:unix:path=/run/app.sock:hostname=NAME",
    ),
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
    #: A server's certificates as files to watch (certKey or certDir).
    certificates: CertificateStore | None = None
    #: One log event per connection (:mod:`twisted_sslfile.tlslog`).
    connection_log: bool = False


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


def _file_store(
    cert_files: list[str],
    key_value: str | None,
    chain_value: str | None,
    interval: float | None,
) -> CertificateStore:
    """The certKey files (already checked by _load_credentials) to watch."""
    keys = None if key_value is None else _split_list("privateKey", key_value)
    chains = None if chain_value is None else _split_list("extraChain", chain_value)
    entries = []
    for index, cert_file in enumerate(cert_files):
        extra = None
        if chains is not None:
            extra = chains[0] if len(chains) == 1 else chains[index]
        entries.append(
            CertificateFiles(
                os.path.basename(cert_file),
                cert_file,
                None if keys is None else keys[index],
                extra,
            )
        )
    try:
        return CertificateStore.from_files(entries, interval=interval)
    except ValueError as e:
        # What _load_credentials let through and a stricter read refuses:
        # a PEM block cut short after the last complete certificate.
        raise _config_error("certKey", e) from e


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


def _converted(option: str, convert: Callable[..., _T], *values: Any) -> _T:
    """``convert(*values)``: a Context field's converter, its refusal
    reworded in the description's option names and blamed on ``option``."""
    try:
        return convert(*values)
    except ValueError as e:
        raise _context_error(option, e) from e


#: List options that convert on their own: (option, Context argument,
#: converter of the comma-separated names).
_LIST_OPTIONS: tuple[tuple[str, str, Callable[[list[str]], Any]], ...] = (
    ("groups", "groups", convert_groups),
    (
        "alpn",
        "alpn_protocols",
        partial(convert_protocol_names, option="alpn_protocols"),
    ),
    ("npn", "npn_protocols", partial(convert_protocol_names, option="npn_protocols")),
)


def _policy_arguments(options: Mapping[str, str]) -> dict[str, Any]:
    """Context arguments of the protocol options, each converted and
    checked against those before it (so ``maxVersion`` is blamed for a
    range below ``minVersion``, ``ciphers`` for no suite in the range)."""
    arguments: dict[str, Any] = {}
    low, high = DEFAULT_MIN_VERSION, DEFAULT_MAX_VERSION
    if "minVersion" in options:
        low, _ = _converted(
            "minVersion", convert_versions, options["minVersion"].strip(), high
        )
        arguments["min_version"] = low
    if "maxVersion" in options:
        _, high = _converted(
            "maxVersion", convert_versions, low, options["maxVersion"].strip()
        )
        arguments["max_version"] = high
    if "ciphers" in options:
        names = _split_list("ciphers", options["ciphers"])
        arguments["cipher_suites"] = _converted(
            "ciphers", convert_cipher_suites, names, low, high
        )
    for option, argument, convert in _LIST_OPTIONS:
        if option in options:
            names = _split_list(option, options[option])
            arguments[argument] = _converted(option, convert, names)
    return arguments


def _certificates(
    options: Mapping[str, str], is_client: bool
) -> tuple[list[Credential] | None, list[str], CertificateStore | None]:
    """(credentials or None, certKey files, files to watch) from certKey,
    privateKey, extraChain, certDir and reloadInterval."""
    cert_value = options.get("certKey")
    key_value = options.get("privateKey")
    chain_value = options.get("extraChain")
    dir_value = options.get("certDir")
    interval: float | None = DEFAULT_RELOAD_INTERVAL
    if "reloadInterval" in options:
        interval = _timeout("reloadInterval", options["reloadInterval"])
    if dir_value is not None:
        for other in ("certKey", "privateKey", "extraChain"):
            if other in options:
                raise _error(
                    other,
                    "give certDir or certKey (with privateKey, extraChain), "
                    "not both: in certDir each entry holds its own key and chain",
                )
        try:
            store = CertificateStore.from_directory(
                dir_value.strip(), interval=interval
            )
        except ValueError as e:
            raise _config_error("certDir", e) from e
        return list(store.credentials), [], store
    if cert_value is None:
        if key_value is not None:
            raise _error("privateKey", "given without certKey")
        if chain_value is not None:
            raise _error("extraChain", "given without certKey")
        if not is_client:
            raise _error(
                "certKey",
                "a TLS server needs a certificate: certKey=cert.pem"
                ":privateKey=key.pem (or one PEM file holding both), or "
                "certDir=DIRECTORY",
            )
        return None, [], None
    cert_files = _split_list("certKey", cert_value)
    credentials = _load_credentials(
        cert_files,
        None if key_value is None else _split_list("privateKey", key_value),
        None if chain_value is None else _split_list("extraChain", chain_value),
    )
    if is_client:
        if len(credentials) > 1:
            raise _error("certKey", "a client presents one certificate, not a list")
        return credentials, cert_files, None
    store = _file_store(cert_files, key_value, chain_value, interval)
    return list(store.credentials), cert_files, store


def _client_server_name(
    options: Mapping[str, str],
    verify: bool,
    default_server_name: str | None,
    inner_type: str,
) -> str | None:
    """The client's SNI and verification name: ``hostname=``, else the host
    the inner endpoint connects to."""
    server_name = options.get("hostname")
    if server_name is not None:
        try:
            server_name = _x509.canonical_server_name(server_name.strip())
        except ValueError as e:
            raise _error("hostname", str(e)) from e
    elif default_server_name is not None:
        # The host connected to is the name to verify: in A-label form
        # too, and checked now rather than at the first handshake.  A
        # host no certificate can name (say my_host, from /etc/hosts)
        # is fine without verification: then no SNI is sent.
        try:
            server_name = _x509.canonical_server_name(default_server_name)
        except ValueError as e:
            if verify:
                raise _error(
                    "hostname",
                    f"the host {default_server_name!r} is not a name a "
                    f"certificate can be checked against ({e}); add "
                    f"hostname=NAME (or verify=no)",
                ) from e
    if server_name is None and verify:
        where = f" over {inner_type}" if inner_type else ""
        raise _error(
            "hostname",
            f"a verifying TLS client{where} needs the name the server's "
            f"certificate must match: add hostname=NAME (or verify=no)",
        )
    return server_name


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
    to; ``hostname=`` overrides it.  Each option's value goes through the
    converter of the Context field it sets
    (:mod:`twisted_sslfile.context_fields`), one option at a time, so the
    option named in an error is the one at fault; ``context_factory`` is
    then called once, with values already converted.
    """
    role = "client" if is_client else "server"
    for name in options:
        spec = TLS_OPTIONS.get(name)
        if spec is None:
            raise _error(name, "not a TLS option")
        if not (spec.client if is_client else spec.server):
            raise _error(name, f"not an option of a TLS {role}")

    arguments = _policy_arguments(options)

    verify = True
    if "verify" in options:
        verify = _boolean("verify", options["verify"])
        arguments["insecure_skip_verify"] = not verify

    trust = options.get("trustRoots")
    if trust is not None:
        arguments["trust_roots"] = _load_trust_roots(trust)

    policy = options.get("clientCertificate")
    if policy is not None:
        arguments["client_certificate"] = _converted(
            "clientCertificate", convert_client_certificate, policy.strip().lower()
        )
        asks = arguments["client_certificate"] is not ClientCertificatePolicy.NONE
        if asks and verify and trust is None:
            raise _error(
                "clientCertificate",
                f"{policy} needs trustRoots= naming the CA that issues client "
                f"certificates (or verify=no to accept any certificate)",
            )

    credentials, cert_files, store = _certificates(options, is_client)
    if credentials is not None:
        arguments["credentials"] = credentials

    ticket_keys = options.get("ticketKeys")
    if ticket_keys is not None:
        path = _converted("ticketKeys", convert_path, ticket_keys, "ticket_key_file")
        # Read once, here: the Context takes the loaded keys with their file.
        arguments["session_tickets"], _ = _converted(
            "ticketKeys", convert_session_tickets, None, path
        )
        arguments["ticket_key_file"] = path

    connection_log = False
    if "connectionLog" in options:
        connection_log = _boolean("connectionLog", options["connectionLog"])

    timeout: float | None = DEFAULT_HANDSHAKE_TIMEOUT
    if "handshakeTimeout" in options:
        timeout = _timeout("handshakeTimeout", options["handshakeTimeout"])
    close_timeout: float | None = DEFAULT_CLOSE_TIMEOUT
    if "closeTimeout" in options:
        close_timeout = _timeout("closeTimeout", options["closeTimeout"])

    server_name = None
    if is_client:
        server_name = _client_server_name(
            options, verify, default_server_name, inner_type
        )

    return TLSSettings(
        context=context_factory(**arguments),
        is_client=is_client,
        server_name=server_name,
        handshake_timeout=timeout,
        close_timeout=close_timeout,
        certificate_files=tuple(cert_files),
        certificates=store,
        connection_log=connection_log,
    )


# ---------------------------------------------------------------------------
# Splitting a description between TLS and the inner endpoint
# ---------------------------------------------------------------------------


def split_arguments(
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
    if inner_type.lower() in _TLS_TYPES:
        # TLS inside OpenSSL's TLS: never what was meant.
        raise EndpointDescriptionError(
            f"{PREFIX}: {inner_type}: is already a TLS endpoint (Twisted's, on "
            f"OpenSSL); {PREFIX}: takes the plain endpoint to run its own TLS "
            f"over: write {PREFIX}:tcp:... with the same host, port and "
            f"options (see the {inner_type}: to {PREFIX}: table in the docs)"
        )
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

#: Twisted's own TLS endpoint types (OpenSSL); not inner types for us.
_TLS_TYPES = ("ssl", "tls")


def _hint(option: str) -> str:
    """What to write instead of ``option``: Twisted's names first, then
    the closest TLS option name."""
    if option in TWISTED_OPTIONS:
        instead, why = TWISTED_OPTIONS[option]
        if instead is None:
            return f"; it has no {PREFIX}: equivalent: {why}"
        return f"; did you mean {instead}? ({why})"
    close = difflib.get_close_matches(option, list(TLS_OPTIONS), n=1, cutoff=0.6)
    return f"; did you mean {close[0]}?" if close else ""


def inner_error(
    error: Exception, inner_type: str, description: str
) -> EndpointDescriptionError:
    """Explain why the inner endpoint refused its part of the description."""
    match = _UNEXPECTED_KEYWORD.search(str(error))
    if match:
        option = match.group(1)
        hint = _hint(option)
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


def inner_host(
    inner_type: str, args: Sequence[str], kwargs: Mapping[str, str]
) -> str | None:
    """The host a client endpoint connects to, as Twisted's tcp parser reads it.

    ``tcp:HOST:PORT``, ``tcp:host=HOST:PORT``, ``tcp:HOST:port=PORT`` all
    work there; a type without a host (unix) gives None.
    """
    if "host" in kwargs:
        return kwargs["host"]
    if (
        inner_type.lower() in ("tcp", "tcp6")
        and args
        and (len(args) >= 2 or "port" in kwargs)
    ):
        return args[0]
    return None


#: Options that together say where the certificate comes from: a
#: description giving one of the first two replaces all of the defaults'.
_CERTIFICATE_GROUP = ("certKey", "certDir", "privateKey", "extraChain")


def with_defaults(
    defaults: Mapping[str, str] | None, tls: Mapping[str, str]
) -> dict[str, str]:
    """``defaults`` overridden by the description's TLS options.

    The certificate options override as a group: a description's own
    ``certKey=combined.pem`` must not inherit a default ``privateKey``, nor
    its ``certDir`` a default ``certKey``.
    """
    merged = dict(defaults or {})
    if "certKey" in tls or "certDir" in tls:
        for name in _CERTIFICATE_GROUP:
            merged.pop(name, None)
    merged.update(tls)
    return merged
