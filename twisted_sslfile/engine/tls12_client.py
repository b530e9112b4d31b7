"""The client side of a TLS 1.2 handshake (RFC 5246).

The :class:`~.negotiation.ClientNegotiator` sends the first ClientHello and
creates :class:`TLS12Client` when the server answers in TLS 1.2 (it has
checked the version and the downgrade sentinel); from then on this machine
runs the full or abbreviated handshake, and renegotiations (RFC 5746).
"""

from __future__ import annotations

import dataclasses
import hmac
from typing import TYPE_CHECKING, ClassVar

from ..constants import (
    MAX_PLAINTEXT,
    TLS13_CIPHER_SUITES,
    AlertDescription,
    HandshakeType,
    NamedGroup,
    SignatureScheme,
)
from ..errors import (
    CertificateError,
    DecodeError,
    HandshakeFailureError,
    IllegalParameterError,
    ProtocolVersionError,
    TLSError,
    UnsupportedExtensionError,
)
from . import certificates as tls_x509
from . import messages, suites
from .handshake import (
    ClientOffer,
    Handler,
    HandshakeIO,
    by_certificate_authorities,
    first_common,
    is_ip_address,
)
from .record import plaintext_limit
from .sessions import Session
from .tls12 import (
    ECDSA_SIGN,
    RSA_SIGN,
    SCSV,
    TLS12,
    TLS12_GROUPS,
    State,
    TLS12Handshake,
    TLS12Negotiation,
)

if TYPE_CHECKING:
    from ..context import Context, Credential


class TLS12Client(TLS12Handshake):
    """The client side of a TLS 1.2 handshake.

    Created by the :class:`~.negotiation.ClientNegotiator` when the server
    picks TLS 1.2: it takes over the :class:`~.handshake.ClientOffer` (our
    ClientHello, the transcript holding it, hash not yet chosen, and the
    session offered), then processes the ServerHello
    (:meth:`receive_server_hello`).
    """

    _is_client = True

    def __init__(self, io: HandshakeIO, context: Context, offer: ClientOffer) -> None:
        client_hello = offer.client_hello
        transcript = offer.transcript
        # RFC 5246 §7.4.8: a client certificate signs the raw messages, so
        # keep them when we might be asked for one.
        if context.credentials:
            transcript.keep_raw = True
        super().__init__(
            io,
            context,
            TLS12Negotiation(
                transcript=transcript,
                server_name=offer.server_name,
                client_hello=client_hello,
                client_random=client_hello.random,
            ),
        )
        self.state = State.CLIENT_WAIT_SH
        self.server_name = offer.server_name
        self._offered = client_hello.extension_types()
        #: Our first ClientHello asked for RFC 5077 tickets, so renegotiations
        #: ask again (see _build_renegotiation_hello).
        self._offer_tickets = client_hello.session_ticket is not None
        # A TLS 1.3 session cannot resume a TLS 1.2 connection.
        session = offer.session
        self._offered_session: Session | None = (
            session if session is not None and session.version == TLS12 else None
        )

    # -- renegotiation -------------------------------------------------------

    def renegotiate(self) -> None:
        """RFC 5746 §3.5: a new ClientHello under the current keys."""
        if self.state is not State.CONNECTED:
            return  # a handshake is already running: that one will do
        current = self._current
        assert current is not None
        if not current.secure_renegotiation:
            raise TLSError(
                "the server does not support secure renegotiation (RFC 5746)"
            )
        n = self._new_negotiation()
        n.server_name = self.server_name
        if self._context.credentials:
            n.transcript.keep_raw = True
        hello = self._build_renegotiation_hello(current.client_verify_data)
        n.client_hello = hello
        n.client_random = hello.random
        self._offered = hello.extension_types()
        self._offered_session = None
        self._send(hello)
        self.state = State.CLIENT_WAIT_SH

    def _build_renegotiation_hello(
        self, client_verify_data: bytes
    ) -> messages.ClientHello:
        """A TLS 1.2-only ClientHello for a renegotiation.

        RFC 5746 §3.5: renegotiation_info carries our last verify_data and
        the SCSV is not sent.  NPN (draft §3) and, like OpenSSL, ALPN are
        not offered again: the application protocol is the connection's.

        An empty session_ticket extension is sent again when the first
        ClientHello had one, as OpenSSL does: GnuTLS 3.7 remembers the first
        handshake's ticket agreement and sends a NewSessionTicket in the
        renegotiation whether or not it was asked for (RFC 5077 §3.2 lets it
        only when asked), which a client that did not ask must refuse.  The
        ticket is read and dropped: the connection's session stays the one
        of its first handshake (see _remember_session), and the renegotiation
        offers no session to resume (its session ID is empty).
        """
        context = self._context
        send_sni = self.server_name is not None and not is_ip_address(self.server_name)
        return messages.ClientHello(
            legacy_version=TLS12,
            random=context.random(32),
            legacy_session_id=b"",
            cipher_suites=[
                int(s)
                for s in context.cipher_suites
                if s not in TLS13_CIPHER_SUITES and s != SCSV
            ],
            server_name=self.server_name if send_sni else None,
            supported_groups=[int(g) for g in context.groups if g in TLS12_GROUPS],
            signature_algorithms=[int(s) for s in context.signature_schemes],
            extended_master_secret=True,
            renegotiation_info=client_verify_data,
            ec_point_formats=b"\x00",
            session_ticket=b"" if self._offer_tickets else None,
            # RFC 8449 §4: offered again (the limit is renegotiated), at
            # most TLS 1.2's 2^14.
            record_size_limit=None
            if context.record_size_limit is None
            else min(context.record_size_limit, MAX_PLAINTEXT),
        )

    def _handle_hello_request(self, raw: bytes, body: bytes) -> None:
        """RFC 5246 §7.4.1.1: not in the transcript; ignored mid-handshake."""
        messages.HelloRequest.parse(body)
        if self.state is not State.CONNECTED:
            return
        if not getattr(self._context, "allow_peer_renegotiation", False):
            self._refuse_renegotiation("peer renegotiation is disabled")
            return
        if not self.can_renegotiate:
            self._refuse_renegotiation("server lacks RFC 5746")
            return
        self.renegotiate()

    def handle(self, msg_type: int, raw: bytes, body: bytes) -> None:
        if msg_type == HandshakeType.hello_request:
            self._handle_hello_request(raw, body)
            return
        super().handle(msg_type, raw, body)

    # -- ServerHello -----------------------------------------------------------

    def _handle_server_hello(self, raw: bytes, body: bytes) -> None:
        """A renegotiation's ServerHello (the first comes from the negotiator)."""
        hello = messages.ServerHello.parse(body)
        if hello.supported_versions is not None or hello.legacy_version != TLS12:
            raise ProtocolVersionError("a renegotiation must stay at TLS 1.2")
        self.receive_server_hello(raw, hello)

    def receive_server_hello(self, raw: bytes, hello: messages.ServerHello) -> None:
        """Process a ServerHello that chose TLS 1.2.

        The negotiator checked the first one's version and downgrade
        sentinel (RFC 8446 §4.1.3); a renegotiation offers TLS 1.2 alone.
        """
        n = self._n
        sent = n.client_hello
        assert sent is not None
        if hello.is_hello_retry_request:
            raise IllegalParameterError("HelloRetryRequest in TLS 1.2")
        suite = hello.cipher_suite
        if (
            suite not in sent.cipher_suites
            or suite in TLS13_CIPHER_SUITES
            or suite == SCSV
            or suite not in suites.CIPHER_SUITES
        ):
            raise IllegalParameterError(
                f"ServerHello selected cipher suite {suite:#06x}, which we did not "
                "offer for TLS 1.2"
            )
        if hello.legacy_compression_method != 0:
            raise IllegalParameterError("ServerHello selected compression")
        for extension in hello.extension_order:
            if extension not in self._offered:
                raise UnsupportedExtensionError(
                    f"ServerHello carries extension {extension}, which we did not offer"
                )
        if hello.ec_point_formats is not None and 0 not in hello.ec_point_formats:
            # RFC 8422 §5.2: uncompressed points are mandatory.
            raise IllegalParameterError("server does not accept uncompressed points")
        self._check_renegotiation_info(hello)
        n.server_random = hello.random
        n.extended_master_secret = hello.extended_master_secret
        n.alpn_protocol = hello.alpn_protocol
        if (
            n.alpn_protocol is not None
            and n.alpn_protocol not in self._context.alpn_protocols
        ):
            raise IllegalParameterError(
                f"server selected ALPN protocol {n.alpn_protocol!r}, not offered"
            )
        # NPN only when ALPN did not settle the protocol (RFC 7301 §3.1 era).
        if hello.next_protocol_negotiation is not None and n.alpn_protocol is None:
            n.npn_protocols = list(hello.next_protocol_negotiation)
        n.ticket_expected = hello.session_ticket
        if hello.record_size_limit is not None:
            # RFC 8449 §4: offered (checked above) and answered, so both
            # limits hold, from this handshake's keys on (tls12.py); in TLS
            # 1.2 they count plaintext only.  Below 64 failed in parsing.
            assert sent.record_size_limit is not None
            n.write_limit = plaintext_limit(hello.record_size_limit, tls13=False)
            n.read_limit = plaintext_limit(sent.record_size_limit, tls13=False)
        self._choose_suite(suite)
        n.transcript.update(raw)
        n.session_id = hello.legacy_session_id_echo
        if self._try_resume(hello):
            return
        self.state = State.CLIENT_WAIT_CERT

    def _check_renegotiation_info(self, hello: messages.ServerHello) -> None:
        """RFC 5746 §3.4 (initial) and §3.5 (renegotiation)."""
        n = self._n
        current = self._current
        if current is None:
            if hello.renegotiation_info is None:
                n.secure_renegotiation = False  # allowed, but never renegotiate
                return
            if hello.renegotiation_info != b"":
                raise HandshakeFailureError(
                    "renegotiation_info must be empty in the initial handshake"
                )
            n.secure_renegotiation = True
            return
        expected = current.client_verify_data + current.server_verify_data
        if hello.renegotiation_info is None or not hmac.compare_digest(
            hello.renegotiation_info, expected
        ):
            raise HandshakeFailureError(
                "renegotiation_info does not match the previous handshake"
            )
        n.secure_renegotiation = True

    def _try_resume(self, hello: messages.ServerHello) -> bool:
        """RFC 5246 §7.3 / RFC 5077 §3.4: the server echoed our session ID."""
        session = self._offered_session
        n = self._n
        sent = n.client_hello
        assert sent is not None
        if (
            not sent.legacy_session_id
            or hello.legacy_session_id_echo != sent.legacy_session_id
        ):
            return False
        if session is None:
            # The ID was random (TLS 1.3 compatibility mode): nothing to resume.
            raise IllegalParameterError(
                "ServerHello echoes a session ID we offered no session for"
            )
        if hello.cipher_suite != session.cipher_suite:
            raise IllegalParameterError("resumed session with another cipher suite")
        if not hello.extended_master_secret:
            # RFC 7627 §5.3: the session had EMS, so the resumption must too.
            raise HandshakeFailureError("resumption without extended master secret")
        if session.alpn_protocol is not None and n.alpn_protocol not in (
            None,
            session.alpn_protocol,
        ):
            raise IllegalParameterError("resumption changed the ALPN protocol")
        n.resumed = True
        n.session = session
        n.master_secret = session.master_secret
        n.peer_certificates = tuple(session.peer_certificates)
        # Verified under this client's policy: true for every session a
        # verifying client offers (ClientNegotiator._may_offer), never for one
        # that does not verify.  A renewed ticket keeps the session's policy.
        context = self._context
        n.peer_verified = context.verify and session.verified_under(
            tls_x509.verification_policy(context, self.server_name)
        )
        self._derive_keys()
        self.state = (
            State.CLIENT_WAIT_TICKET if n.ticket_expected else State.CLIENT_WAIT_CCS
        )
        return True

    # -- the server's first flight ----------------------------------------------

    def _handle_certificate(self, raw: bytes, body: bytes) -> None:
        if not self._receive_certificate(body, self._verify_server_chain):
            raise DecodeError("server sent an empty Certificate (RFC 5246 §7.4.2)")
        n = self._n
        assert n.suite_info is not None
        kind = suites.key_exchange_for_key(n.peer_public_key)
        if kind != n.suite_info.key_exchange:
            raise CertificateError(
                f"the server's certificate key does not fit {n.suite_info.name}",
                alert=AlertDescription.unsupported_certificate,
            )
        self._check_peer_unchanged()
        n.transcript.update(raw)
        self.state = State.CLIENT_WAIT_SKE

    def _handle_server_key_exchange(self, raw: bytes, body: bytes) -> None:
        n = self._n
        sent = n.client_hello
        assert sent is not None
        exchange = messages.ServerKeyExchange12.parse(body)
        if exchange.named_curve not in (sent.supported_groups or ()):
            raise IllegalParameterError(
                f"ServerKeyExchange uses group {exchange.named_curve:#06x}, "
                "which we did not offer"
            )
        if exchange.algorithm not in (sent.signature_algorithms or ()):
            raise IllegalParameterError(
                f"ServerKeyExchange signed with {exchange.algorithm:#06x}, "
                "which we did not offer"
            )
        # RFC 8422 §5.4: the signature covers both randoms and the params.
        suites.verify(
            exchange.algorithm,
            n.peer_public_key,
            n.client_random + n.server_random + exchange.signed_params(),
            exchange.signature,
            version=TLS12,
            rsassa_pss=n.peer_rsassa_pss,
        )
        n.peer_signature_scheme = SignatureScheme(exchange.algorithm)
        n.group = NamedGroup(exchange.named_curve)
        n.key_share = suites.generate_key_share(n.group, self._context.random)
        pre_master_secret = n.key_share.shared_secret(exchange.public)
        n.transcript.update(raw)
        self._pre_master_secret = pre_master_secret
        self.state = State.CLIENT_WAIT_CR_OR_DONE

    def _handle_certificate_request(self, raw: bytes, body: bytes) -> None:
        request = messages.CertificateRequest12.parse(body)
        self._n.certificate_request = request
        self._n.transcript.update(raw)
        self.state = State.CLIENT_WAIT_DONE

    def _handle_server_hello_done(self, raw: bytes, body: bytes) -> None:
        messages.ServerHelloDone12.parse(body)
        n = self._n
        n.transcript.update(raw)
        credential, scheme = None, None
        if n.certificate_request is not None:
            credential, scheme = self._choose_client_credential(n.certificate_request)
            self._send(
                messages.Certificate12(
                    list(credential.chain_der) if credential is not None else []
                )
            )
        assert n.key_share is not None
        self._send(messages.ClientKeyExchange12(n.key_share.public_bytes))
        self._compute_master_secret(self._pre_master_secret)
        self._pre_master_secret = b""
        if credential is not None and scheme is not None:
            # RFC 5246 §7.4.8: the signature covers the raw handshake messages.
            signature = suites.sign(
                scheme, credential.private_key, n.transcript.raw(), version=TLS12
            )
            self._send(
                messages.CertificateVerify(algorithm=scheme, signature=signature)
            )
        self._derive_keys()
        self._send_change_cipher_spec()
        self._send_next_protocol()
        self._send_finished()
        self.state = (
            State.CLIENT_WAIT_TICKET if n.ticket_expected else State.CLIENT_WAIT_CCS
        )

    def _choose_client_credential(
        self, request: messages.CertificateRequest12
    ) -> tuple[Credential | None, SignatureScheme | None]:
        context = self._context
        for credential in by_certificate_authorities(
            context.credentials, request.certificate_authorities
        ):
            kind = suites.key_exchange_for_key(credential.private_key)
            wanted = ECDSA_SIGN if kind == "ECDHE_ECDSA" else RSA_SIGN
            if kind is None or wanted not in request.certificate_types:
                continue
            scheme = context.choose_signature_scheme(
                credential, request.signature_algorithms, TLS12
            )
            if scheme is not None:
                return credential, scheme
        # RFC 5246 §7.4.6: no suitable certificate -> an empty Certificate.
        return None, None

    def _send_next_protocol(self) -> None:
        """NPN draft §3: our first protocol the server lists, else our first."""
        n = self._n
        if n.npn_protocols is None:
            return
        ours = list(self._context.npn_protocols)
        if not ours:
            return
        n.next_protocol = first_common(ours, n.npn_protocols) or ours[0]
        self._send(messages.NextProtocol(n.next_protocol))

    # -- the server's last flight ------------------------------------------------

    def _handle_new_session_ticket(self, raw: bytes, body: bytes) -> None:
        ticket = messages.NewSessionTicket12.parse(body)
        n = self._n
        n.ticket = ticket.ticket
        n.ticket_lifetime_hint = ticket.lifetime_hint
        n.transcript.update(raw)
        self.state = State.CLIENT_WAIT_CCS

    def _handle_finished(self, raw: bytes, body: bytes) -> None:
        n = self._n
        self._receive_finished(raw, body)
        if n.resumed:
            # Abbreviated handshake (RFC 5246 §7.3): our CCS and Finished
            # answer the server's.
            self._send_change_cipher_spec()
            self._send_next_protocol()
            self._send_finished()
        self._remember_session()
        self._finish()

    def _remember_session(self) -> None:
        """A Session to resume later, when this handshake yields one.

        Only full handshakes with the extended master secret (RFC 7627 §5.3)
        and a session ID or ticket, and resumptions that got a fresh ticket;
        never from a renegotiation.
        """
        n = self._n
        context = self._context
        if self._current is not None:
            return
        if n.resumed:
            self._session = n.session
            if n.ticket is None:
                return
            # A resumption always starts from the session it resumed.
            assert n.session is not None
            n.session = dataclasses.replace(
                n.session,
                ticket=n.ticket,
                created_at=context.clock(),
                lifetime=n.ticket_lifetime_hint or n.session.lifetime,
            )
        else:
            if not n.extended_master_secret or not (n.session_id or n.ticket):
                return
            assert n.suite_info is not None
            policy = (
                tls_x509.verification_policy(context, self.server_name)
                if n.peer_verified
                else b""
            )
            n.session = Session(
                version=TLS12,
                cipher_suite=n.suite_info.suite,
                created_at=context.clock(),
                # RFC 5077 §3.3: 0 means "no hint"; then our own policy.
                lifetime=n.ticket_lifetime_hint or context.session_lifetime,
                server_name=self.server_name,
                alpn_protocol=n.alpn_protocol,
                next_protocol=n.next_protocol,
                peer_certificates=n.peer_certificates,
                verified=bool(policy),
                verification_policy=policy,
                ticket=n.ticket or b"",
                session_id=n.session_id,
                master_secret=n.master_secret,
                extended_master_secret=True,
            )
        self._new_session = self._session = n.session

    _handlers: ClassVar[dict[State, dict[int, Handler]]] = {
        # The first ServerHello comes through the negotiator, whose
        # ClientHello it answers; a renegotiation's comes here.
        State.CLIENT_WAIT_SH: {HandshakeType.server_hello: _handle_server_hello},
        State.CLIENT_WAIT_CERT: {HandshakeType.certificate: _handle_certificate},
        State.CLIENT_WAIT_SKE: {
            HandshakeType.server_key_exchange: _handle_server_key_exchange
        },
        State.CLIENT_WAIT_CR_OR_DONE: {
            HandshakeType.certificate_request: _handle_certificate_request,
            HandshakeType.server_hello_done: _handle_server_hello_done,
        },
        State.CLIENT_WAIT_DONE: {
            HandshakeType.server_hello_done: _handle_server_hello_done
        },
        State.CLIENT_WAIT_TICKET: {
            HandshakeType.new_session_ticket: _handle_new_session_ticket
        },
        State.CLIENT_WAIT_CCS: {},
        State.CLIENT_WAIT_FINISHED: {HandshakeType.finished: _handle_finished},
        State.CONNECTED: {},
    }

    def _state_after_ccs(self) -> State | None:
        return (
            State.CLIENT_WAIT_FINISHED if self.state is State.CLIENT_WAIT_CCS else None
        )

    def _renegotiation_refused(self) -> None:
        # Our renegotiation ClientHello was declined: back to the keys and
        # parameters we had (only before the server answered with a hello).
        if self.state is State.CLIENT_WAIT_SH and self._current is not None:
            self._n = self._current
            self.state = State.CONNECTED
