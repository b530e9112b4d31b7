"""TLS 1.3 and TLS 1.2 for Twisted, with the protocol engine written in Python.

Records, handshakes and the key schedule are this package's own code; the
cryptography itself (AEAD ciphers, ECDHE, ML-KEM, signatures, HKDF, X.509
path validation) comes from ``cryptography``. The engine in
:mod:`twisted_sslfile.engine` is sans-I/O and imports nothing from Twisted;
the Twisted adapters are built on top of it.

The public names are re-exported lazily: ``import twisted_sslfile`` loads
nothing until one of them is used. Later exports (contexts, the protocol
wrapper) pull in ``cryptography`` and Twisted, and a ``twistd`` plugin scan
or a ``--help`` should not pay for that.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0.dev0"

# Public name -> the module that defines it. Extended as modules land.
_EXPORTS: dict[str, str] = {
    "ProtocolVersion": "twisted_sslfile.constants",
    "TLSError": "twisted_sslfile.errors",
    "DecodeError": "twisted_sslfile.errors",
    "IllegalParameterError": "twisted_sslfile.errors",
    "UnexpectedMessageError": "twisted_sslfile.errors",
    "HandshakeFailureError": "twisted_sslfile.errors",
    "ProtocolVersionError": "twisted_sslfile.errors",
    "BadRecordMacError": "twisted_sslfile.errors",
    "RecordOverflowError": "twisted_sslfile.errors",
    "DecryptError": "twisted_sslfile.errors",
    "MissingExtensionError": "twisted_sslfile.errors",
    "UnsupportedExtensionError": "twisted_sslfile.errors",
    "NoApplicationProtocolError": "twisted_sslfile.errors",
    "LimitExceededError": "twisted_sslfile.errors",
    "CertificateError": "twisted_sslfile.errors",
    "InternalError": "twisted_sslfile.errors",
    "RemoteAlertError": "twisted_sslfile.errors",
    "ConnectionClosedError": "twisted_sslfile.errors",
    "EmptyCertificateChainError": "twisted_sslfile.errors",
    "ConfigurationError": "twisted_sslfile.errors",
    "TicketKeyFileError": "twisted_sslfile.errors",
    "UnsafeFileError": "twisted_sslfile.errors",
    "InsecureFileWarning": "twisted_sslfile.errors",
    "EndpointDescriptionError": "twisted_sslfile.errors",
    "ClientCertificatePolicy": "twisted_sslfile.constants",
    "Context": "twisted_sslfile.context",
    "Credential": "twisted_sslfile.context",
    "KeyLogFile": "twisted_sslfile._files",
    "Connection": "twisted_sslfile.engine.connection",
    "Session": "twisted_sslfile.engine.sessions",
    "TicketKeys": "twisted_sslfile.engine.ticketkeys",
    "TLSProtocol": "twisted_sslfile.protocol",
    "TLSFactory": "twisted_sslfile.protocol",
    "start_tls": "twisted_sslfile.protocol",
    "SSLFileContextFactory": "twisted_sslfile.starttls",
    "StartTLSFactory": "twisted_sslfile.starttls",
    "StartTLSTransport": "twisted_sslfile.starttls",
    "AgentEndpointFactory": "twisted_sslfile.web",
    "make_agent": "twisted_sslfile.web",
    "TLSTruncationError": "twisted_sslfile.reasons",
    "HandshakeTimeoutError": "twisted_sslfile.reasons",
    "SSLFile": "twisted_sslfile.sslfile",
    "SSLHandshakeError": "twisted_sslfile.errors",
    "ReactorThreadError": "twisted_sslfile.errors",
}

# Spelled out (not derived from _EXPORTS) so that linters and type checkers
# can read it; tests/test_project.py checks that the two agree.
__all__ = [
    "AgentEndpointFactory",
    "BadRecordMacError",
    "CertificateError",
    "ClientCertificatePolicy",
    "ConfigurationError",
    "Connection",
    "ConnectionClosedError",
    "Context",
    "Credential",
    "DecodeError",
    "DecryptError",
    "EmptyCertificateChainError",
    "EndpointDescriptionError",
    "HandshakeFailureError",
    "HandshakeTimeoutError",
    "IllegalParameterError",
    "InsecureFileWarning",
    "InternalError",
    "KeyLogFile",
    "LimitExceededError",
    "MissingExtensionError",
    "NoApplicationProtocolError",
    "ProtocolVersion",
    "ProtocolVersionError",
    "ReactorThreadError",
    "RecordOverflowError",
    "RemoteAlertError",
    "SSLFile",
    "SSLFileContextFactory",
    "SSLHandshakeError",
    "Session",
    "StartTLSFactory",
    "StartTLSTransport",
    "TLSError",
    "TLSFactory",
    "TLSProtocol",
    "TLSTruncationError",
    "TicketKeyFileError",
    "TicketKeys",
    "UnexpectedMessageError",
    "UnsafeFileError",
    "UnsupportedExtensionError",
    "__version__",
    "make_agent",
    "start_tls",
]

if TYPE_CHECKING:  # let type checkers and IDEs see the real objects
    from twisted_sslfile._files import KeyLogFile
    from twisted_sslfile.constants import ClientCertificatePolicy, ProtocolVersion
    from twisted_sslfile.context import Context, Credential
    from twisted_sslfile.engine.connection import Connection
    from twisted_sslfile.engine.sessions import Session
    from twisted_sslfile.engine.ticketkeys import TicketKeys
    from twisted_sslfile.errors import (
        BadRecordMacError,
        CertificateError,
        ConfigurationError,
        ConnectionClosedError,
        DecodeError,
        DecryptError,
        EmptyCertificateChainError,
        EndpointDescriptionError,
        HandshakeFailureError,
        IllegalParameterError,
        InsecureFileWarning,
        InternalError,
        LimitExceededError,
        MissingExtensionError,
        NoApplicationProtocolError,
        ProtocolVersionError,
        ReactorThreadError,
        RecordOverflowError,
        RemoteAlertError,
        SSLHandshakeError,
        TicketKeyFileError,
        TLSError,
        UnexpectedMessageError,
        UnsafeFileError,
        UnsupportedExtensionError,
    )
    from twisted_sslfile.protocol import TLSFactory, TLSProtocol, start_tls
    from twisted_sslfile.reasons import HandshakeTimeoutError, TLSTruncationError
    from twisted_sslfile.sslfile import SSLFile
    from twisted_sslfile.starttls import (
        SSLFileContextFactory,
        StartTLSFactory,
        StartTLSTransport,
    )
    from twisted_sslfile.web import AgentEndpointFactory, make_agent


def __getattr__(name: str) -> Any:
    """Import the defining module on first use (PEP 562) and cache the name."""
    module_name = _EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
