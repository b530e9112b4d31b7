"""Version negotiation: the one place that decides TLS 1.3 or TLS 1.2.

Both roles start with a negotiator standing in for the handshake, and the
first hello from the peer settles the version:

* :class:`ClientNegotiator` builds the one ClientHello that offers every
  version the Context allows (RFC 8446 §4.1.2 and §D.2: a TLS 1.3 server
  reads supported_versions and key_share, a TLS 1.2 server reads
  legacy_version and the TLS 1.2 extensions and ignores the rest), sends it,
  and reads the server's answer: a ServerHello or HelloRetryRequest with
  supported_versions is TLS 1.3, one without is TLS 1.2 (RFC 8446 §4.2.1).
  It hands the chosen machine a :class:`ClientOffer`: what was sent and
  what answering it needs.
* :class:`ServerNegotiator` reads the first ClientHello and picks TLS 1.3
  when the client lists it in supported_versions and the Context allows it,
  else TLS 1.2 when both allow it, else protocol_version (RFC 8446 §4.2.1,
  RFC 5246 §E.1); the chosen machine answers that same ClientHello.

The checks that decide the version live here: a ClientHello's
legacy_version (RFC 8446 §D.5, :func:`~.handshake.check_legacy_version`),
the version a ServerHello selects (§4.2.1), and the downgrade sentinel a
TLS 1.3-capable client must look for in a TLS 1.2 ServerHello (§4.1.3; a
TLS 1.3-capable server writes it, told so by :class:`ServerNegotiator`).
What follows the choice -- the rest of each ServerHello, the
HelloRetryRequest and the retried ClientHello -- is the chosen machine's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from ..constants import (
    MAX_PLAINTEXT,
    TLS13_CIPHER_SUITES,
    HandshakeType,
    NamedGroup,
    ProtocolVersion,
    StateEnum,
)
from ..errors import (
    HandshakeFailureError,
    IllegalParameterError,
    ProtocolVersionError,
    TLSError,
    UnexpectedMessageError,
)
from . import certificates as tls_x509
from . import keyschedule, messages, suites
from .handshake import (
    ClientOffer,
    Handler,
    HandshakeIO,
    HandshakeMachine,
    check_legacy_version,
    is_ip_address,
)
from .tls13 import TLS13_HANDSHAKE_SCHEMES, offer_psk, psk_modes

if TYPE_CHECKING:
    from ..context import Context
    from .record import Record
    from .sessions import Session
    from .tls12_client import TLS12Client
    from .tls12_server import TLS12Server
    from .tls13_client import TLS13Client
    from .tls13_server import TLS13Server

TLS12 = ProtocolVersion.TLS_1_2
TLS13 = ProtocolVersion.TLS_1_3


class State(StateEnum):
    """Where a negotiator is: before or waiting for the peer's first hello."""

    CLIENT_START = "client start"
    CLIENT_WAIT_SH = "client wait ServerHello"
    SERVER_WAIT_CH = "server wait ClientHello"


class _Unsettled(HandshakeMachine):
    """What a connection reports before the version is settled: nothing."""

    version: ProtocolVersion | None = None
    complete = False
    renegotiating = False
    can_renegotiate = False
    cipher_suite = None
    group = None
    alpn_protocol = None
    next_protocol = None
    server_name: str | None = None
    peer_certificates: tuple[bytes, ...] = ()
    peer_verified = False
    resumed = False
    session: Session | None = None

    def __init__(self, io: HandshakeIO, context: Context) -> None:
        self._io = io
        self._context = context

    def handle_warning_alert(self, description: int) -> None:
        """A warning before the version is settled changes nothing."""

    def export_keying_material(
        self, label: bytes, context: bytes, length: int
    ) -> bytes:
        raise TLSError("keying material is available after the handshake")

    def send_key_update(self, request_peer: bool) -> None:
        raise TLSError("KeyUpdate is only possible after the handshake")

    def renegotiate(self) -> None:
        raise TLSError("renegotiation is only possible after the handshake")


class ClientNegotiator(_Unsettled):
    """A client's handshake until the server's first hello settles the version.

    :meth:`start` sends the ClientHello; the ServerHello (or
    HelloRetryRequest) picks ``tls13_class`` or ``tls12_class``, which takes
    over through :meth:`HandshakeIO.replace_handshake` and processes it.
    """

    state: State

    def __init__(
        self,
        io: HandshakeIO,
        context: Context,
        server_name: str | None,
        session: Session | None = None,
        *,
        tls13_class: type[TLS13Client],
        tls12_class: type[TLS12Client],
    ) -> None:
        super().__init__(io, context)
        self.state = State.CLIENT_START
        self.server_name = server_name
        self._tls13_class = tls13_class
        self._tls12_class = tls12_class
        # The session to offer, once start() has checked it may be offered.
        self._resume: Session | None = session
        self._key_shares: dict[int, suites.KeyShare] = {}
        self._transcript = keyschedule.Transcript()
        self._client_hello: messages.ClientHello | None = None

    # -- ClientHello ---------------------------------------------------------

    def start(self) -> None:
        """Send the first ClientHello."""
        context = self._context
        offer_tls13 = context.max_version >= TLS13
        for group in context.key_share_groups if offer_tls13 else ():
            if group in context.groups:
                self._key_shares[group] = suites.generate_key_share(
                    NamedGroup(group), context.random
                )
        session = self._resume
        if session is not None and not self._may_offer(session):
            session = self._resume = None
        hello = self._build_client_hello()
        if not hello.cipher_suites:
            raise HandshakeFailureError("the context enables no usable cipher suite")
        if session is not None and session.version == TLS13:
            hello = offer_psk(hello, session, self._transcript, context.clock())
        self._client_hello = hello
        # RFC 8446 §5.1: the first ClientHello may carry 0x0301 for old servers.
        self._io.set_legacy_record_version(ProtocolVersion.TLS_1_0)
        raw = messages.encode_handshake(hello)
        self._transcript.update(raw)
        self._io.write_handshake(raw)
        self._io.set_legacy_record_version(ProtocolVersion.TLS_1_2)
        self.state = State.CLIENT_WAIT_SH

    def _build_client_hello(self) -> messages.ClientHello:
        """Our first ClientHello: every version the context allows.

        One hello serves both versions (RFC 8446 §4.1.2, §D.2): TLS 1.3 reads
        supported_versions and key_share; a TLS 1.2 server reads
        legacy_version and the TLS 1.2 extensions, and ignores the rest.
        The TLS 1.3 PSK, if any, is added by :meth:`start` (its binder
        covers the rest of the hello).
        """
        context = self._context
        versions = sorted(context.versions, reverse=True)
        offer_tls12 = TLS12 in versions
        offer_tls13 = TLS13 in versions
        session = self._resume
        tls12_session = (
            session if session is not None and session.version != TLS13 else None
        )
        send_sni = self.server_name is not None and not is_ip_address(self.server_name)
        handshake_schemes = [
            int(s)
            for s in context.signature_schemes
            # RFC 8446 §4.2.3: rsa_pkcs1_* signs TLS 1.2 handshakes only.
            if offer_tls12 or s in TLS13_HANDSHAKE_SCHEMES
        ]
        return messages.ClientHello(
            legacy_version=ProtocolVersion.TLS_1_2,
            random=context.random(32),
            # RFC 8446 §D.4: a non-empty session id asks for middlebox
            # compatibility mode (dummy CCS records) from both sides.
            # A TLS 1.2 session is resumed by its ID (RFC 5246 §7.4.1.2) or,
            # with a ticket, recognised by the ID echoed (RFC 5077 §3.4).
            legacy_session_id=(tls12_session.session_id if tls12_session else b"")
            or (context.random(32) if offer_tls13 or tls12_session else b""),
            cipher_suites=[
                int(suite)
                for suite in context.cipher_suites
                if (suite in TLS13_CIPHER_SUITES and offer_tls13)
                or (suite not in TLS13_CIPHER_SUITES and offer_tls12)
            ],
            server_name=self.server_name if send_sni else None,
            supported_versions=[int(v) for v in versions] if offer_tls13 else None,
            supported_groups=[
                int(group)
                for group in context.groups
                if offer_tls13 or group != NamedGroup.X25519MLKEM768
            ],
            signature_algorithms=handshake_schemes,
            signature_algorithms_cert=[int(s) for s in context.signature_schemes],
            key_share=[
                messages.KeyShareEntry(group=group, key_exchange=share.public_bytes)
                for group, share in self._key_shares.items()
            ]
            if offer_tls13
            else None,
            alpn_protocols=list(context.alpn_protocols) or None,
            # RFC 8449 §4: no more than the highest version's largest record
            # (2^14+1 counts TLS 1.3's type byte; TLS 1.2 alone, 2^14).
            record_size_limit=context.record_size_limit
            if offer_tls13 or context.record_size_limit is None
            else min(context.record_size_limit, MAX_PLAINTEXT),
            # TLS 1.2 only: RFC 7627, RFC 5746 §3.4, RFC 8422 §5.1.2, NPN.
            extended_master_secret=offer_tls12,
            renegotiation_info=b"" if offer_tls12 else None,
            ec_point_formats=b"\x00" if offer_tls12 else None,
            next_protocol_negotiation=offer_tls12 and bool(context.npn_protocols),
            # RFC 5077 §3.2: an empty ticket asks for one.
            session_ticket=(tls12_session.ticket if tls12_session else b"")
            if offer_tls12
            else None,
            # RFC 8446 §4.2.9: without this a server may not send tickets.
            psk_key_exchange_modes=psk_modes(context) if offer_tls13 else None,
        )

    def _may_offer(self, session: Session) -> bool:
        """Whether ``session`` may be offered on this connection.

        A resumed handshake skips the certificate check, so a verifying
        client offers only a session whose chain was verified for this
        server name under this very policy (trust roots and rules); any
        other session is left out as if there were none.
        """
        context = self._context
        return (
            session.version in context.versions
            and session.is_resumable(context.clock())
            and session.matches_server_name(self.server_name)
            and session.cipher_suite in context.cipher_suites
            and (
                not context.verify
                or session.verified_under(
                    tls_x509.verification_policy(context, self.server_name)
                )
            )
        )

    # -- the server's answer settles the version ---------------------------------

    def _handle_server_hello(self, raw: bytes, body: bytes) -> None:
        """Hand the handshake to the machine of the version the server chose."""
        hello = messages.ServerHello.parse(body)
        assert self._client_hello is not None
        offer = ClientOffer(
            server_name=self.server_name,
            client_hello=self._client_hello,
            transcript=self._transcript,
            key_shares=self._key_shares,
            session=self._resume,
        )
        if hello.supported_versions is None and not hello.is_hello_retry_request:
            self._check_tls12_server_hello(hello)
            client12 = self._tls12_class(self._io, self._context, offer)
            self._io.replace_handshake(client12)
            client12.receive_server_hello(raw, hello)
            return
        self._check_tls13_server_hello(hello)
        client13 = self._tls13_class(self._io, self._context, offer)
        self._io.replace_handshake(client13)
        client13.receive_server_hello(raw, hello)

    def _check_tls13_server_hello(self, hello: messages.ServerHello) -> None:
        """RFC 8446 §4.2.1: supported_versions selects TLS 1.3, and only if
        we offered it."""
        assert self._client_hello is not None
        what = "HelloRetryRequest" if hello.is_hello_retry_request else "ServerHello"
        selected = hello.supported_versions
        if selected is None:
            # A HelloRetryRequest is TLS 1.3's alone (§4.1.4).
            raise ProtocolVersionError(
                f"server answered with {what} for a version below TLS 1.3, "
                "which this client does not offer"
            )
        if selected != TLS13 or TLS13 not in (
            self._client_hello.supported_versions or ()
        ):
            raise IllegalParameterError(
                f"{what} selected version {selected:#06x}, not offered"
            )

    def _check_tls12_server_hello(self, hello: messages.ServerHello) -> None:
        """A ServerHello without supported_versions chose TLS 1.2 or lower.

        RFC 5246 §7.4.1.3 / RFC 8446 §4.2.1: the version is its
        legacy_version, which must be TLS 1.2 and allowed here.  RFC 8446
        §4.1.3: a client that offered TLS 1.3 refuses a random ending in a
        downgrade sentinel -- a TLS 1.3 server was talked down to 1.2.
        """
        context = self._context
        if hello.legacy_version != TLS12 or TLS12 not in context.versions:
            raise ProtocolVersionError(
                f"server chose version {hello.legacy_version:#06x}; this client "
                f"allows {[v.name for v in context.versions]}"
            )
        if TLS13 in context.versions and hello.random[-8:] in (
            messages.DOWNGRADE_TLS12,
            messages.DOWNGRADE_TLS11,
        ):
            raise IllegalParameterError("downgrade sentinel in ServerHello.random")

    def handle_change_cipher_spec(self, record: Record) -> None:
        """An unprotected change_cipher_spec before the ServerHello is
        dropped, as TLS 1.3's compatibility CCS is (RFC 8446 §5); the
        Connection bounds a run of them."""
        if record.protected or self.state is State.CLIENT_START:
            raise UnexpectedMessageError("change_cipher_spec not allowed here")

    _handlers: ClassVar[dict[State, dict[int, Handler]]] = {
        State.CLIENT_START: {},
        State.CLIENT_WAIT_SH: {HandshakeType.server_hello: _handle_server_hello},
    }


def select_version(context: Context, hello: messages.ClientHello) -> ProtocolVersion:
    """The version a server answers ``hello`` with (RFC 8446 §4.2.1).

    TLS 1.3 when the client lists it in supported_versions and we allow it;
    else TLS 1.2 when both allow it (a client without supported_versions
    offers its legacy_version, RFC 8446 §4.2.1 and RFC 5246 §E.1); else
    protocol_version.  A legacy_version of SSL 3.0 or below is refused
    whatever supported_versions says (RFC 8446 §D.5).
    """
    check_legacy_version(hello.legacy_version)
    offered = set(hello.supported_versions or ())
    if not offered and hello.legacy_version >= TLS12:
        offered = {TLS12}  # RFC 8446 §4.2.1: a pre-1.3 client
    usable = [v for v in context.versions if v in offered]
    if not usable:
        raise ProtocolVersionError(
            "no protocol version in common: the client offers "
            f"{sorted(hex(v) for v in offered) or hex(hello.legacy_version)}, "
            f"this server allows {[v.name for v in context.versions]}"
        )
    return max(usable)


class ServerNegotiator(_Unsettled):
    """A server's handshake until the first ClientHello settles the version.

    The chosen machine answers that ClientHello.  A TLS 1.3-capable server
    that settles for TLS 1.2 marks its random with the downgrade sentinel
    (RFC 8446 §4.1.3), so its TLS 1.2 machine is told.
    """

    state: State

    def __init__(
        self,
        io: HandshakeIO,
        context: Context,
        *,
        tls13_class: type[TLS13Server],
        tls12_class: type[TLS12Server],
    ) -> None:
        super().__init__(io, context)
        self.state = State.SERVER_WAIT_CH
        self._tls13_class = tls13_class
        self._tls12_class = tls12_class

    def _handle_client_hello(self, raw: bytes, body: bytes) -> None:
        hello = messages.ClientHello.parse(body)
        context = self._context
        server: TLS13Server | TLS12Server
        if select_version(context, hello) == TLS13:
            server = self._tls13_class(self._io, context)
        else:
            server = self._tls12_class(
                self._io, context, downgrade_sentinel=TLS13 in context.versions
            )
        self._io.replace_handshake(server)
        server.receive_client_hello(raw, hello)

    def handle_change_cipher_spec(self, record: Record) -> None:
        raise UnexpectedMessageError("change_cipher_spec before ClientHello")

    _handlers: ClassVar[dict[State, dict[int, Handler]]] = {
        State.SERVER_WAIT_CH: {HandshakeType.client_hello: _handle_client_hello},
    }
