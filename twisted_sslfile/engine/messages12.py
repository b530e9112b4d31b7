"""Handshake messages that only TLS 1.2 has (RFC 5246 §7.4, RFC 8422, RFC 5077).

Certificate12, ServerKeyExchange12, ServerHelloDone12, ClientKeyExchange12,
CertificateRequest12, NewSessionTicket12 (RFC 5077 §3.3), NextProtocol (NPN)
and HelloRequest, in the style of :mod:`.messages`: a dataclass per message
with mirrored ``parse(body)`` and ``serialize()``.  The hellos, CertificateVerify
and Finished, which TLS 1.2 shares with TLS 1.3, stay in :mod:`.messages`,
which also re-exports every name here and holds the per-version dispatch
tables (:data:`~.messages.TLS12_MESSAGES`) and :func:`~.messages.encode_handshake`.

None of these messages has extensions, so this module needs nothing from
:mod:`.extensions`, and nothing from :mod:`.messages` (which imports it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from ..constants import HandshakeType
from ..errors import DecodeError, IllegalParameterError
from .buffer import Reader, Writer

__all__ = [
    "Certificate12",
    "CertificateRequest12",
    "ClientKeyExchange12",
    "HelloRequest",
    "NewSessionTicket12",
    "NextProtocol",
    "ServerHelloDone12",
    "ServerKeyExchange12",
]


def _empty_body(body: bytes | memoryview, name: str) -> None:
    if len(body):
        raise DecodeError(f"{name} must have an empty body")


@dataclass(slots=True)
class Certificate12:
    """RFC 5246 §7.4.2: ``ASN.1Cert certificate_list<0..2^24-1>``, each <1..2^24-1>."""

    msg_type: ClassVar[HandshakeType] = HandshakeType.certificate

    certificates: list[bytes] = field(default_factory=list)

    @classmethod
    def parse(cls, body: bytes | memoryview) -> Certificate12:
        r = Reader(body)
        certificates = r.sub(3)
        r.finish()
        der = []
        while not certificates.at_end():
            der.append(certificates.vector(3, 1))
        return cls(der)

    def serialize(self) -> bytes:
        w = Writer()
        with w.prefixed(3):
            for cert in self.certificates:
                w.vector(3, cert, 1)
        return w.getvalue()


# RFC 8422 §5.4: ECCurveType named_curve; explicit curves are deprecated.
_NAMED_CURVE = 3


@dataclass(slots=True)
class ServerKeyExchange12:
    """RFC 8422 §5.4: ServerECDHParams followed by a TLS 1.2 DigitallySigned.

    ``ECCurveType curve_type (3 = named_curve); NamedCurve namedcurve;
    opaque point<1..2^8-1>; SignatureAndHashAlgorithm algorithm;
    opaque signature<0..2^16-1>``.
    """

    msg_type: ClassVar[HandshakeType] = HandshakeType.server_key_exchange

    named_curve: int
    public: bytes
    algorithm: int
    signature: bytes

    @classmethod
    def parse(cls, body: bytes | memoryview) -> ServerKeyExchange12:
        r = Reader(body)
        curve_type = r.uint8()
        if curve_type != _NAMED_CURVE:
            raise IllegalParameterError(f"ECCurveType {curve_type} is not named_curve")
        named_curve = r.uint16()
        public = r.vector(1, 1)
        algorithm = r.uint16()
        signature = r.vector(2)
        r.finish()
        return cls(named_curve, public, algorithm, signature)

    def signed_params(self) -> bytes:
        """The encoded ServerECDHParams.

        RFC 8422 §5.4: the signature covers ``client_random + server_random
        + params``; the caller prepends the two randoms.
        """
        w = Writer()
        w.uint8(_NAMED_CURVE)
        w.uint16(self.named_curve)
        w.vector(1, self.public, 1)
        return w.getvalue()

    def serialize(self) -> bytes:
        w = Writer()
        w.raw(self.signed_params())
        w.uint16(self.algorithm)
        w.vector(2, self.signature)
        return w.getvalue()


@dataclass(slots=True)
class ServerHelloDone12:
    """RFC 5246 §7.4.5: ``struct {} ServerHelloDone``."""

    msg_type: ClassVar[HandshakeType] = HandshakeType.server_hello_done

    @classmethod
    def parse(cls, body: bytes | memoryview) -> ServerHelloDone12:
        _empty_body(body, "ServerHelloDone")
        return cls()

    def serialize(self) -> bytes:
        return b""


@dataclass(slots=True)
class ClientKeyExchange12:
    """RFC 8422 §5.7: ClientECDiffieHellmanPublic, ``opaque point<1..2^8-1>``."""

    msg_type: ClassVar[HandshakeType] = HandshakeType.client_key_exchange

    public: bytes

    @classmethod
    def parse(cls, body: bytes | memoryview) -> ClientKeyExchange12:
        r = Reader(body)
        public = r.vector(1, 1)
        r.finish()
        return cls(public)

    def serialize(self) -> bytes:
        w = Writer()
        w.vector(1, self.public, 1)
        return w.getvalue()


@dataclass(slots=True)
class CertificateRequest12:
    """RFC 5246 §7.4.4.

    ``ClientCertificateType certificate_types<1..2^8-1>;
    SignatureAndHashAlgorithm supported_signature_algorithms<2..2^16-2>;
    DistinguishedName certificate_authorities<0..2^16-1>`` (each <1..2^16-1>).
    """

    msg_type: ClassVar[HandshakeType] = HandshakeType.certificate_request

    certificate_types: bytes
    signature_algorithms: list[int]
    certificate_authorities: list[bytes] = field(default_factory=list)

    @classmethod
    def parse(cls, body: bytes | memoryview) -> CertificateRequest12:
        r = Reader(body)
        types = r.vector(1, 1)
        algorithms = r.uint16_vector(2, 2, 0xFFFE)
        names = r.sub(2)
        r.finish()
        authorities = []
        while not names.at_end():
            authorities.append(names.vector(2, 1))
        return cls(types, algorithms, authorities)

    def serialize(self) -> bytes:
        w = Writer()
        w.vector(1, self.certificate_types, 1)
        w.uint16_vector(2, self.signature_algorithms, 2, 0xFFFE)
        with w.prefixed(2):
            for name in self.certificate_authorities:
                w.vector(2, name, 1)
        return w.getvalue()


@dataclass(slots=True)
class NewSessionTicket12:
    """RFC 5077 §3.3: ``uint32 ticket_lifetime_hint; opaque ticket<0..2^16-1>``."""

    msg_type: ClassVar[HandshakeType] = HandshakeType.new_session_ticket

    lifetime_hint: int
    ticket: bytes = field(repr=False)

    @classmethod
    def parse(cls, body: bytes | memoryview) -> NewSessionTicket12:
        r = Reader(body)
        lifetime_hint = r.uint32()
        ticket = r.vector(2)
        r.finish()
        return cls(lifetime_hint, ticket)

    def serialize(self) -> bytes:
        w = Writer()
        w.uint32(self.lifetime_hint)
        w.vector(2, self.ticket)
        return w.getvalue()


@dataclass(slots=True)
class NextProtocol:
    """draft-agl-tls-nextprotoneg-04 §3.

    ``opaque selected_protocol<0..255>; opaque padding<0..255>``; the padding
    is ``32 - ((len(selected_protocol) + 2) % 32)`` zero bytes, hiding the
    length of the choice.  parse() insists on zeros but accepts any padding
    length; serialize() always writes the prescribed length.
    """

    msg_type: ClassVar[HandshakeType] = HandshakeType.next_protocol

    selected_protocol: bytes

    @classmethod
    def parse(cls, body: bytes | memoryview) -> NextProtocol:
        r = Reader(body)
        selected = r.vector(1, 0, 255)
        padding = r.view(1, 0, 255)
        r.finish()
        if padding != bytes(len(padding)):
            raise DecodeError("NextProtocol padding is not all zeros")
        return cls(selected)

    def serialize(self) -> bytes:
        w = Writer()
        w.vector(1, self.selected_protocol, 0, 255)
        w.vector(1, bytes(32 - ((len(self.selected_protocol) + 2) % 32)))
        return w.getvalue()


@dataclass(slots=True)
class HelloRequest:
    """RFC 5246 §7.4.1.1: ``struct {} HelloRequest``."""

    msg_type: ClassVar[HandshakeType] = HandshakeType.hello_request

    @classmethod
    def parse(cls, body: bytes | memoryview) -> HelloRequest:
        _empty_body(body, "HelloRequest")
        return cls()

    def serialize(self) -> bytes:
        return b""
