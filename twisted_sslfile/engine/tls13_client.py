"""The client side of a TLS 1.3 handshake (RFC 8446).

The :class:`~.negotiation.ClientNegotiator` sends the first ClientHello and
creates :class:`TLS13Client` when the server answers in TLS 1.3; from then
on this machine follows RFC 8446 appendix A's client states: an optional
HelloRetryRequest, the ServerHello, the server's encrypted flight, our
Finished, then tickets and KeyUpdates.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, ClassVar

from ..constants import (
    CipherSuite,
    ExtensionType,
    HandshakeType,
    NamedGroup,
    ProtocolVersion,
    PskKeyExchangeMode,
)
from ..errors import (
    DecodeError,
    IllegalParameterError,
    MissingExtensionError,
    UnexpectedMessageError,
    UnsupportedExtensionError,
)
from . import certificates as tls_x509
from . import keyschedule, messages, suites
from .events import SessionTicket
from .handshake import (
    ClientOffer,
    Handler,
    HandshakeIO,
    Negotiation,
    by_certificate_authorities,
)
from .record import plaintext_limit
from .sessions import Session
from .tls13 import (
    CLIENT_CV_CONTEXT,
    SERVER_CV_CONTEXT,
    TLS13,
    State,
    TLS13Handshake,
    offer_psk,
    psk_modes,
    traffic_protection,
)

if TYPE_CHECKING:
    from cryptography import x509 as cx509

    from ..context import Context


# RFC 8446 §4.6.1: ticket lifetimes are at most seven days.
_MAX_TICKET_LIFETIME = 604800


class TLS13Client(TLS13Handshake):
    """The client side of a TLS 1.3 handshake.

    Created by the :class:`~.negotiation.ClientNegotiator` once the server
    answered in TLS 1.3: it takes over the :class:`~.handshake.ClientOffer`
    and processes that ServerHello or HelloRetryRequest
    (:meth:`receive_server_hello`).
    """

    def __init__(self, io: HandshakeIO, context: Context, offer: ClientOffer) -> None:
        super().__init__(
            io,
            context,
            Negotiation(
                transcript=offer.transcript,
                server_name=offer.server_name,
                client_random=offer.client_hello.random,
            ),
        )
        self.state = State.CLIENT_WAIT_SH
        self.server_name = offer.server_name
        self._client_hello: messages.ClientHello = offer.client_hello
        self._offered_extensions = offer.client_hello.extension_types()
        self._key_shares: dict[int, suites.KeyShare] = dict(offer.key_shares)
        # A TLS 1.2 session cannot resume a TLS 1.3 connection.
        session = offer.session
        self._psk_offered: Session | None = (
            session if session is not None and session.version == TLS13 else None
        )
        # This connection's verification policy (computed on first use) and
        # the one the server's chain was verified under (b"": not verified).
        self._policy: bytes | None = None
        self._peer_policy = b""
        self._hello_retry_suite: int | None = None
        self._hello_retry_group: int | None = None
        self._sent_change_cipher_spec = False
        self._certificate_request: messages.CertificateRequest | None = None

    def _own_policy(self) -> bytes:
        """:func:`~twisted_sslfile.x509.verification_policy` for this client."""
        if self._policy is None:
            self._policy = tls_x509.verification_policy(self._context, self.server_name)
        return self._policy

    def _check_hello_common(self, hello: messages.ServerHello, what: str) -> None:
        """What a TLS 1.3 ServerHello and HelloRetryRequest must hold (§4.1.3,
        §4.1.4); the negotiator checked that the first selected TLS 1.3."""
        if hello.legacy_version != ProtocolVersion.TLS_1_2:
            raise IllegalParameterError(f"{what} legacy_version must be 0x0303")
        if hello.legacy_session_id_echo != self._client_hello.legacy_session_id:
            raise IllegalParameterError(f"{what} does not echo our session id")
        if hello.cipher_suite not in self._client_hello.cipher_suites:
            raise IllegalParameterError(f"{what} selected a cipher suite not offered")
        if hello.legacy_compression_method != 0:
            raise IllegalParameterError(f"{what} selected compression")

    def receive_server_hello(self, raw: bytes, hello: messages.ServerHello) -> None:
        """The server's first hello, which settled TLS 1.3 (from the negotiator)."""
        if hello.is_hello_retry_request:
            self._handle_hello_retry_request(raw, hello)
        else:
            self._accept_server_hello(raw, hello)

    def _handle_server_hello(self, raw: bytes, body: bytes) -> None:
        """The ServerHello after our retried ClientHello."""
        hello = messages.ServerHello.parse(body)
        if hello.is_hello_retry_request:
            self._handle_hello_retry_request(raw, hello)
            return
        if hello.supported_versions != TLS13:
            # §4.1.4: the version the HelloRetryRequest selected stays.
            raise IllegalParameterError(
                "ServerHello after HelloRetryRequest changed the version"
            )
        self._accept_server_hello(raw, hello)

    def _accept_server_hello(self, raw: bytes, hello: messages.ServerHello) -> None:
        self._check_hello_common(hello, "ServerHello")
        for extension in hello.extension_order:
            if extension not in self._offered_extensions:
                raise UnsupportedExtensionError(
                    f"ServerHello carries extension {extension}, which we did not offer"
                )
            if extension not in (
                ExtensionType.supported_versions,
                ExtensionType.key_share,
                ExtensionType.pre_shared_key,
            ):
                raise IllegalParameterError(
                    f"extension {extension} does not belong in a TLS 1.3 ServerHello"
                )
        if (
            self._hello_retry_suite is not None
            and hello.cipher_suite != self._hello_retry_suite
        ):
            raise IllegalParameterError(
                "ServerHello changed the cipher suite chosen in HelloRetryRequest"
            )
        psk = self._accepted_psk(hello)
        if hello.key_share is None:
            # §4.2.8: only psk_ke resumption goes without a key exchange.
            if psk is None or PskKeyExchangeMode.psk_ke not in psk_modes(self._context):
                raise MissingExtensionError("ServerHello has no key_share")
            shared_secret = None
        else:
            share = self._key_shares.get(hello.key_share.group)
            if share is None:
                raise IllegalParameterError(
                    f"ServerHello key share is for group "
                    f"{hello.key_share.group:#06x}, for which we sent no share"
                )
            shared_secret = share.shared_secret(hello.key_share.key_exchange)
            self._n.group = NamedGroup(hello.key_share.group)
        info = self._choose_suite(hello.cipher_suite)
        self._n.transcript.update(raw)
        self._derive_handshake_secrets(
            psk.resumption_psk if psk else None, shared_secret
        )
        self._io.set_read_protection(traffic_protection(info, self._server_hs_secret))
        self._send_compatibility_ccs()
        # Encrypt from now on, so an alert about the server's flight reaches
        # a server that already reads with our handshake keys.
        self._io.set_write_protection(traffic_protection(info, self._client_hs_secret))
        self._key_shares.clear()
        self.state = State.CLIENT_WAIT_EE

    def _accepted_psk(self, hello: messages.ServerHello) -> Session | None:
        """The session the server resumed, or None for a full handshake."""
        if hello.pre_shared_key is None:
            return None
        session = self._psk_offered
        if session is None or hello.pre_shared_key != 0:
            # §4.2.11: the index must name an identity we offered (we offer one).
            raise IllegalParameterError(
                f"server selected PSK identity {hello.pre_shared_key}, not offered"
            )
        if (
            suites.CIPHER_SUITES[CipherSuite(hello.cipher_suite)].hash
            is not suites.CIPHER_SUITES[session.cipher_suite].hash
        ):
            raise IllegalParameterError(
                "server resumed a session with a suite of another hash (§4.2.11)"
            )
        self._n.resumed = True
        self._n.session = session
        self._n.peer_certificates = session.peer_certificates
        # Verified means verified under this client's policy: true for every
        # session a verifying client offers, never for one that does not verify.
        self._n.peer_verified = self._context.verify and session.verified_under(
            self._own_policy()
        )
        self._peer_policy = session.verification_policy
        return session

    def _handle_hello_retry_request(
        self, raw: bytes, hello: messages.ServerHello
    ) -> None:
        if self._hello_retry_suite is not None:
            raise UnexpectedMessageError("second HelloRetryRequest (RFC 8446 §4.1.4)")
        self._check_hello_common(hello, "HelloRetryRequest")
        allowed = (
            ExtensionType.supported_versions,
            ExtensionType.key_share,
            ExtensionType.cookie,
        )
        for extension in hello.extension_order:
            if extension not in allowed:
                if extension in self._offered_extensions:
                    raise IllegalParameterError(
                        f"extension {extension} does not belong in HelloRetryRequest"
                    )
                raise UnsupportedExtensionError(
                    f"HelloRetryRequest carries extension {extension}, not offered"
                )
        group = hello.selected_group
        if group is not None:
            if group not in (self._client_hello.supported_groups or ()):
                raise IllegalParameterError(
                    f"HelloRetryRequest asks for group {group:#06x}, not offered"
                )
            if group in self._key_shares:
                raise IllegalParameterError(
                    "HelloRetryRequest asks for a group we already sent a share for"
                )
        elif hello.cookie is None:
            # §4.1.4: an HRR that would not change the ClientHello is illegal.
            raise IllegalParameterError("HelloRetryRequest asks for no change")
        self._hello_retry_suite = hello.cipher_suite
        self._choose_suite(hello.cipher_suite)
        self._n.transcript.restart_with_message_hash()
        self._n.transcript.update(raw)
        if group is not None:
            self._key_shares = {
                group: suites.generate_key_share(
                    NamedGroup(group), self._context.random
                )
            }
            self._hello_retry_group = group
        # §4.1.2: the retry changes only the key share, the cookie and the
        # PSK (whose age and binder move on; dropped if its hash no longer
        # fits the suite, §4.1.4).
        retry = dataclasses.replace(
            self._client_hello,
            key_share=[
                messages.KeyShareEntry(group=g, key_exchange=share.public_bytes)
                for g, share in self._key_shares.items()
            ],
            cookie=hello.cookie,
        )
        session = self._psk_offered
        if session is not None:
            if (
                suites.CIPHER_SUITES[session.cipher_suite].hash
                is suites.CIPHER_SUITES[CipherSuite(hello.cipher_suite)].hash
            ):
                retry = offer_psk(
                    retry, session, self._n.transcript, self._context.clock()
                )
            else:
                self._psk_offered = None
                retry = dataclasses.replace(retry, pre_shared_key=None)
        self._client_hello = retry
        self._offered_extensions = retry.extension_types()
        self._send_compatibility_ccs()
        self._send(retry)

    def _send_compatibility_ccs(self) -> None:
        # §D.4: in compatibility mode (we sent a session id) the client sends
        # one dummy CCS before its second flight, whichever comes first: the
        # retried ClientHello or the encrypted flight.
        if self._client_hello.legacy_session_id and not self._sent_change_cipher_spec:
            self._io.write_change_cipher_spec()
            self._sent_change_cipher_spec = True

    # -- the server's encrypted flight ------------------------------------------

    def _handle_encrypted_extensions(self, raw: bytes, body: bytes) -> None:
        extensions = messages.EncryptedExtensions.parse(body)
        for extension in extensions.extension_order:
            if extension not in self._offered_extensions:
                raise UnsupportedExtensionError(
                    f"EncryptedExtensions carries extension {extension}, not offered"
                )
        if extensions.early_data:
            raise UnsupportedExtensionError("server accepted early data we never sent")
        protocol = extensions.alpn_protocol
        if protocol is not None and protocol not in self._context.alpn_protocols:
            # RFC 7301 §3.2: the server must pick one of the client's names.
            raise IllegalParameterError(
                f"server selected ALPN protocol {protocol!r}, which we did not offer"
            )
        self._n.alpn_protocol = protocol
        limit = extensions.record_size_limit
        if limit is not None:
            # RFC 8449 §4: in TLS 1.3 the limit includes the content type byte.
            self._io.set_write_limit(plaintext_limit(limit, tls13=True))
            own = self._context.record_size_limit
            if own is not None:
                # Negotiated: the server's records must now fit our limit.
                self._io.set_read_limit(plaintext_limit(own, tls13=True))
        self._n.transcript.update(raw)
        # §2.2: a PSK handshake authenticates by the PSK: no certificates.
        self.state = (
            State.CLIENT_WAIT_FINISHED if self._n.resumed else State.CLIENT_WAIT_CERT_CR
        )

    def _handle_certificate_request(self, raw: bytes, body: bytes) -> None:
        request = messages.CertificateRequest.parse(body)
        if request.certificate_request_context:
            # §4.3.2: empty during the main handshake.
            raise IllegalParameterError(
                "CertificateRequest context must be empty in the handshake"
            )
        self._certificate_request = request
        self._n.transcript.update(raw)
        self.state = State.CLIENT_WAIT_CERT

    def _handle_certificate(self, raw: bytes, body: bytes) -> None:
        if not self._receive_certificate(
            body, expected_context=b"", verify=self._verify_server_chain
        ):
            raise DecodeError("server sent an empty Certificate (RFC 8446 §4.4.2.4)")
        self._n.transcript.update(raw)
        self.state = State.CLIENT_WAIT_CV

    def _verify_server_chain(self, chain: tuple[bytes, ...]) -> list[cx509.Certificate]:
        """Verify, and remember the policy the chain was verified under."""
        path = super()._verify_server_chain(chain)
        if self._context.verify:
            self._peer_policy = self._own_policy()
        return path

    def _handle_certificate_verify(self, raw: bytes, body: bytes) -> None:
        self._check_certificate_verify(
            raw,
            body,
            context_string=SERVER_CV_CONTEXT,
            offered=self._client_hello.signature_algorithms or [],
        )
        self.state = State.CLIENT_WAIT_FINISHED

    def _handle_finished(self, raw: bytes, body: bytes) -> None:
        self._check_finished(raw, body, self._finished_data(self._server_hs_secret))
        client_secret, server_secret = self._derive_application_secrets()
        self._read_secret = server_secret
        self._write_secret = client_secret
        self._io.set_read_protection(traffic_protection(self._info, server_secret))
        if self._certificate_request is not None:
            self._send_client_certificate(self._certificate_request)
        self._send(
            messages.Finished(verify_data=self._finished_data(self._client_hs_secret))
        )
        self._io.set_write_protection(traffic_protection(self._info, client_secret))
        assert self._schedule is not None
        self.resumption_master_secret = self._schedule.resumption_master_secret(
            self._n.transcript.digest()
        )
        self.state = State.CONNECTED
        self._io.handshake_completed(self._completed_event())

    def _send_client_certificate(self, request: messages.CertificateRequest) -> None:
        offered = request.signature_algorithms
        context = self._context
        credential, scheme = None, None
        # The first credential (those under the server's listed CAs first,
        # §4.2.4) whose key can sign a scheme the server asked for.
        for candidate in by_certificate_authorities(
            context.credentials, request.certificate_authorities
        ):
            scheme = context.choose_signature_scheme(candidate, offered, TLS13)
            if scheme is not None:
                credential = candidate
                break
        if credential is None or scheme is None:
            # §4.4.2: no suitable certificate -> an empty Certificate message.
            self._send(
                messages.Certificate(
                    certificate_request_context=request.certificate_request_context,
                    entries=[],
                )
            )
            return
        self._send(
            messages.Certificate(
                certificate_request_context=request.certificate_request_context,
                entries=[
                    messages.CertificateEntry(cert_data=der, extensions=[])
                    for der in credential.chain_der
                ],
            )
        )
        self._send_certificate_verify(credential, scheme, CLIENT_CV_CONTEXT)

    def _handle_new_session_ticket(self, raw: bytes, body: bytes) -> None:
        """Keep the ticket as a :class:`Session` (RFC 8446 §4.6.1)."""
        ticket = messages.NewSessionTicket.parse(body)
        if ticket.ticket_lifetime == 0:
            return  # "the ticket should be discarded immediately"
        if ticket.ticket_lifetime > _MAX_TICKET_LIFETIME:
            raise IllegalParameterError(
                f"ticket_lifetime {ticket.ticket_lifetime} is above 7 days"
            )
        created_at = self._context.clock()
        psk = keyschedule.resumption_psk(
            self._n.hash, self.resumption_master_secret, ticket.ticket_nonce
        )
        max_early_data = ticket.max_early_data_size or 0
        previous = self._session
        if previous is None:
            session = Session(
                version=TLS13,
                cipher_suite=self._info.suite,
                created_at=created_at,
                lifetime=ticket.ticket_lifetime,
                server_name=self.server_name,
                alpn_protocol=self._n.alpn_protocol,
                peer_certificates=self._n.peer_certificates,
                # Under the policy of the handshake that verified the chain:
                # ours, or the resumed session's.
                verified=bool(self._peer_policy),
                verification_policy=self._peer_policy,
                ticket=ticket.ticket,
                resumption_psk=psk,
                ticket_age_add=ticket.ticket_age_add,
                max_early_data=max_early_data,
            )
        else:
            # An earlier ticket of this connection: the fields that do not
            # come with the ticket are the same, and were checked then.
            session = previous.for_next_ticket(
                created_at=created_at,
                lifetime=ticket.ticket_lifetime,
                ticket=ticket.ticket,
                resumption_psk=psk,
                ticket_age_add=ticket.ticket_age_add,
                max_early_data=max_early_data,
            )
        self._session = session
        self._io.emit(SessionTicket(session))

    _handlers: ClassVar[dict[State, dict[int, Handler]]] = {
        # The first ServerHello (or HelloRetryRequest) comes through the
        # negotiator (receive_server_hello); the one after a retry comes here.
        State.CLIENT_WAIT_SH: {HandshakeType.server_hello: _handle_server_hello},
        State.CLIENT_WAIT_EE: {
            HandshakeType.encrypted_extensions: _handle_encrypted_extensions
        },
        State.CLIENT_WAIT_CERT_CR: {
            HandshakeType.certificate_request: _handle_certificate_request,
            HandshakeType.certificate: _handle_certificate,
        },
        State.CLIENT_WAIT_CERT: {HandshakeType.certificate: _handle_certificate},
        State.CLIENT_WAIT_CV: {
            HandshakeType.certificate_verify: _handle_certificate_verify
        },
        State.CLIENT_WAIT_FINISHED: {HandshakeType.finished: _handle_finished},
        State.CONNECTED: {
            HandshakeType.new_session_ticket: _handle_new_session_ticket,
            HandshakeType.key_update: TLS13Handshake._handle_key_update,
        },
    }
