"""The server side of a TLS 1.2 handshake (RFC 5246).

The :class:`~.negotiation.ServerNegotiator` reads the first ClientHello and,
when it settles TLS 1.2, creates :class:`TLS12Server` to answer it (with the
RFC 8446 §4.1.3 downgrade sentinel when this server could have spoken TLS
1.3): a full handshake, or a resumption by ticket or session ID, and
renegotiations (RFC 5746).
"""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING, ClassVar

from ..constants import (
    MAX_PLAINTEXT,
    TLS13_CIPHER_SUITES,
    AlertDescription,
    CipherSuite,
    ClientCertificatePolicy,
    HandshakeType,
    NamedGroup,
    SignatureScheme,
)
from ..errors import (
    CertificateError,
    HandshakeFailureError,
    IllegalParameterError,
    ProtocolVersionError,
    TLSError,
)
from . import certificates as tls_x509
from . import messages, suites
from .handshake import (
    Handler,
    HandshakeIO,
    first_common,
    resumed_client_authentication,
    select_alpn,
)
from .record import plaintext_limit
from .sessions import ServerSessionState
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


class TLS12Server(TLS12Handshake):
    """The server side of a TLS 1.2 handshake.

    The :class:`~.negotiation.ServerNegotiator` parses the first ClientHello
    and hands it to :meth:`receive_client_hello`; renegotiation ClientHellos arrive
    through :meth:`handle` in the CONNECTED state.
    """

    _is_client = False

    def __init__(
        self, io: HandshakeIO, context: Context, *, downgrade_sentinel: bool = False
    ) -> None:
        super().__init__(io, context, TLS12Negotiation())
        self.state = State.SERVER_WAIT_CH
        #: RFC 8446 §4.1.3: we could do TLS 1.3 but the client cannot.
        self._downgrade_sentinel = downgrade_sentinel
        self._hello_request_sent = False
        self._credential: Credential | None = None
        self._resumed_state: ServerSessionState | None = None

    def _state_after_ccs(self) -> State | None:
        if self.state is not State.SERVER_WAIT_CCS:
            return None
        if self._n.npn_protocols is not None:
            return State.SERVER_WAIT_NEXT_PROTOCOL
        return State.SERVER_WAIT_FINISHED

    def _renegotiation_refused(self) -> None:
        self._hello_request_sent = False

    # -- renegotiation -------------------------------------------------------

    def renegotiate(self) -> None:
        """RFC 5246 §7.4.1.1: ask the client for a new handshake."""
        if self.state is not State.CONNECTED or self._hello_request_sent:
            return  # a handshake is running or already asked for
        current = self._current
        assert current is not None
        if not current.secure_renegotiation:
            raise TLSError(
                "the client does not support secure renegotiation (RFC 5746)"
            )
        # HelloRequest is not part of any handshake's transcript (§7.4.1.1).
        self._io.write_handshake(messages.encode_handshake(messages.HelloRequest()))
        self._hello_request_sent = True

    def _handle_client_hello(self, raw: bytes, body: bytes) -> None:
        hello = messages.ClientHello.parse(body)
        if self.state is State.CONNECTED:
            current = self._current
            assert current is not None
            asked = self._hello_request_sent
            if not asked and not getattr(
                self._context, "allow_peer_renegotiation", False
            ):
                self._refuse_renegotiation("peer renegotiation is disabled")
                return
            if not current.secure_renegotiation:
                self._refuse_renegotiation("client lacks RFC 5746")
                return
            self._hello_request_sent = False
            self._new_negotiation()
        self.receive_client_hello(raw, hello)

    # -- ClientHello ---------------------------------------------------------

    def receive_client_hello(self, raw: bytes, hello: messages.ClientHello) -> None:
        """Answer a ClientHello with a full or abbreviated handshake."""
        context = self._context
        n = self._n
        renegotiation = self._current is not None
        if hello.legacy_version < TLS12 and TLS12 not in (
            hello.supported_versions or ()
        ):
            raise ProtocolVersionError(
                f"client offers version {hello.legacy_version:#06x}; TLS 1.2 is "
                "the lowest this server speaks"
            )
        if 0 not in hello.legacy_compression_methods:
            # RFC 5246 §7.4.1.2: the list MUST contain null compression.
            raise IllegalParameterError("ClientHello does not offer null compression")
        if hello.ec_point_formats is not None and 0 not in hello.ec_point_formats:
            # RFC 8422 §5.1.2: abort if uncompressed points are not offered.
            raise IllegalParameterError("client does not accept uncompressed points")
        self._check_renegotiation_info(hello)
        if context.client_certificate is not ClientCertificatePolicy.NONE:
            # RFC 5246 §7.4.8: CertificateVerify signs the raw messages.
            n.transcript.keep_raw = True
        n.client_hello = hello
        n.client_random = hello.random
        if not renegotiation:
            self.server_name = hello.server_name
        n.server_name = hello.server_name
        n.extended_master_secret = hello.extended_master_secret
        self._negotiate_record_size_limit(hello)
        n.transcript.update(raw)
        if not renegotiation and self._try_resume(hello):
            return
        self._full_handshake(hello)

    def _negotiate_record_size_limit(self, hello: messages.ClientHello) -> None:
        """RFC 8449 §4 in TLS 1.2: the client's limit and our answer.

        The client's limit binds our records whether or not we answer (a
        smaller record is always allowed); ours binds the client's only when
        we answer, which we do when the Context has one.  TLS 1.2 counts
        plaintext only, and neither value may exceed its 2^14: a client that
        also offers TLS 1.3 may send 2^14+1, which a server must not refuse.
        The limits start with this handshake's keys (:mod:`.tls12`).
        """
        n = self._n
        own = self._context.record_size_limit
        if hello.record_size_limit is None:
            return
        n.write_limit = plaintext_limit(hello.record_size_limit, tls13=False)
        if own is not None:
            n.read_limit = min(own, MAX_PLAINTEXT)
            n.record_size_limit = n.read_limit

    def _check_renegotiation_info(self, hello: messages.ClientHello) -> None:
        """RFC 5746 §3.6 (initial) and §3.7 (renegotiation)."""
        n = self._n
        current = self._current
        scsv = SCSV in hello.cipher_suites
        if current is None:
            if hello.renegotiation_info is not None and hello.renegotiation_info != b"":
                raise HandshakeFailureError(
                    "renegotiation_info must be empty in the initial handshake"
                )
            n.secure_renegotiation = scsv or hello.renegotiation_info is not None
            return
        if scsv:
            raise HandshakeFailureError("SCSV in a renegotiation ClientHello")
        if hello.renegotiation_info is None or not hmac.compare_digest(
            hello.renegotiation_info, current.client_verify_data
        ):
            raise HandshakeFailureError(
                "renegotiation_info does not match the previous handshake"
            )
        n.secure_renegotiation = True

    def _try_resume(self, hello: messages.ClientHello) -> bool:
        """Resume by RFC 5077 ticket or session ID, when it is safe.

        Anything doubtful means a full handshake (RFC 5077 §3.4, RFC 5246
        §7.4.1.2): an unknown or expired ticket or ID, a session without
        extended master secret or a ClientHello without it (RFC 7627 §5.3),
        a suite we no longer allow, another server name (RFC 6066 §3), or a
        client certificate we now require that the session lacks or would
        not verify under our own client CAs
        (:func:`resumed_client_authentication`).  The one
        error is a client that offers a session we would resume without
        offering its cipher suite (see :meth:`_may_resume`).

        RFC 5077 §3.4: a client presenting a ticket may send a session ID
        with it, empty, random or the one we gave; accepting the ticket we
        echo that ID, and we never look it up in the session cache, even
        when the ticket does not open.  A session ID is looked up when there
        is no ticket: no extension, an empty one, or tickets are off here
        (then the extension means nothing to us).
        """
        context = self._context
        n = self._n
        state: ServerSessionState | None = None
        tickets = context.session_tickets
        if hello.session_ticket and tickets is not None:
            state = tickets.open_state(hello.session_ticket, version=TLS12)
        elif hello.legacy_session_id and context.session_cache:
            state = context.session_cache.get(hello.legacy_session_id)
        if state is None or not self._may_resume(hello, state):
            return False
        n.resumed = True
        n.master_secret = state.secret
        client_auth = resumed_client_authentication(context, state)
        assert client_auth is not None  # _may_resume checked
        n.peer_certificates, n.peer_verified = client_auth
        n.session_id = hello.legacy_session_id
        self._resumed_state = state
        n.alpn_protocol = select_alpn(context.alpn_protocols, hello.alpn_protocols)
        self._offer_npn(hello)
        # RFC 5077 §3.1: renew the ticket on every ticket resumption; §3.2:
        # a client resuming by session ID with an empty extension asks for
        # one, and gets it.
        n.ticket_expected = hello.session_ticket is not None and tickets is not None
        info = self._choose_suite(state.cipher_suite)
        self._send_server_hello(hello, info, server_name_ack=False)
        self._send_ticket()
        self._derive_keys()
        self._send_change_cipher_spec()
        self._send_finished()
        self.state = State.SERVER_WAIT_CCS
        return True

    def _may_resume(
        self, hello: messages.ClientHello, state: ServerSessionState
    ) -> bool:
        context = self._context
        if not state.extended_master_secret or not hello.extended_master_secret:
            return False
        if not state.is_valid(context.clock()):
            return False
        if state.cipher_suite not in context.cipher_suites:
            return False
        if (state.server_name or "").lower() != (hello.server_name or "").lower():
            return False
        # A client chain this server would not accept now, or none when
        # one is required: a full handshake.
        if resumed_client_authentication(context, state) is None:
            return False
        if state.cipher_suite not in hello.cipher_suites:
            # RFC 5246 §7.4.1.2: a ClientHello resuming a session MUST offer
            # its cipher suite, and the server resumes with that suite; as
            # OpenSSL and LibreSSL do, a resumption we would otherwise accept
            # is refused rather than silently turned into a full handshake
            # (docs/security.rst).  A ticket counts as a session ID here
            # (RFC 5077 §3.4).
            raise IllegalParameterError(
                f"ClientHello resumes a session of cipher suite "
                f"{state.cipher_suite.name} without offering it"
            )
        return True

    def _offer_npn(self, hello: messages.ClientHello) -> None:
        """NPN draft §3: advertise when asked for and ALPN did not decide."""
        n = self._n
        if (
            hello.next_protocol_negotiation
            and n.alpn_protocol is None
            and self._context.npn_protocols
        ):
            n.npn_protocols = list(self._context.npn_protocols)

    def _full_handshake(self, hello: messages.ClientHello) -> None:
        context = self._context
        n = self._n
        renegotiation = self._current is not None
        suite, credential, scheme = self._select_suite(hello)
        group = self._select_group(hello)
        # RFC 5077 §3.2 / RFC 7627 §5.3: only sessions with EMS are kept.
        resumable = n.extended_master_secret
        # A ticket whenever the client asks, renegotiations included (as
        # OpenSSL does): GnuTLS 3.7 clients that had one in the first
        # handshake wait for a NewSessionTicket in every renegotiation.
        n.ticket_expected = (
            resumable
            and hello.session_ticket is not None
            and context.session_tickets is not None
        )
        if not renegotiation:
            n.alpn_protocol = select_alpn(context.alpn_protocols, hello.alpn_protocols)
            self._offer_npn(hello)
            if resumable and context.session_cache is not None:
                n.session_id = context.random(32)
        self._credential = credential
        info = self._choose_suite(suite)
        n.group = group
        self._send_server_hello(
            hello,
            info,
            server_name_ack=hello.server_name is not None
            and credential.matches(hello.server_name),
        )
        self._send(messages.Certificate12(list(credential.chain_der)))
        n.key_share = suites.generate_key_share(group, context.random)
        exchange = messages.ServerKeyExchange12(
            named_curve=int(group),
            public=n.key_share.public_bytes,
            algorithm=int(scheme),
            signature=b"",
        )
        # RFC 8422 §5.4: sign client_random + server_random + ServerECDHParams.
        exchange.signature = suites.sign(
            scheme,
            credential.private_key,
            n.client_random + n.server_random + exchange.signed_params(),
            version=TLS12,
        )
        self._send(exchange)
        if context.client_certificate is not ClientCertificatePolicy.NONE:
            n.requested_schemes = [int(s) for s in context.signature_schemes]
            self._send(
                messages.CertificateRequest12(
                    certificate_types=bytes((ECDSA_SIGN, RSA_SIGN)),
                    signature_algorithms=n.requested_schemes,
                    # RFC 5246 §7.4.4: the CAs whose clients we accept.
                    certificate_authorities=tls_x509.client_ca_names(context),
                )
            )
            self.state = State.SERVER_WAIT_CERT
        else:
            self.state = State.SERVER_WAIT_CKE
        self._send(messages.ServerHelloDone12())

    def _send_server_hello(
        self,
        hello: messages.ClientHello,
        info: suites.CipherSuiteInfo,
        *,
        server_name_ack: bool,
    ) -> None:
        n = self._n
        current = self._current
        random = self._context.random(32)
        if self._downgrade_sentinel and current is None:
            # RFC 8446 §4.1.3: the last 8 bytes tell a TLS 1.3 client that
            # it was talked down to TLS 1.2.
            random = random[:24] + messages.DOWNGRADE_TLS12
        n.server_random = random
        if not n.secure_renegotiation:
            renegotiation_info = None
        elif current is None:
            renegotiation_info = b""
        else:
            renegotiation_info = current.client_verify_data + current.server_verify_data
        self._send(
            messages.ServerHello(
                legacy_version=TLS12,
                random=random,
                legacy_session_id_echo=n.session_id,
                cipher_suite=info.suite,
                extended_master_secret=n.extended_master_secret,
                renegotiation_info=renegotiation_info,
                ec_point_formats=b"\x00"
                if hello.ec_point_formats is not None
                else None,
                alpn_protocol=n.alpn_protocol,
                next_protocol_negotiation=n.npn_protocols,
                session_ticket=n.ticket_expected,
                # RFC 6066 §3: not when resuming.
                server_name_ack=server_name_ack and not n.resumed,
                record_size_limit=n.record_size_limit,
            )
        )

    def _credential_tiers(self, server_name: str | None) -> list[list[Credential]]:
        """Credentials naming the host exactly, by wildcard, then any."""
        credentials = list(self._context.credentials)
        tiers: list[list[Credential]] = []
        if server_name:
            tiers.append([c for c in credentials if c.matches_exactly(server_name)])
            tiers.append([c for c in credentials if c.matches_wildcard(server_name)])
        tiers.append(credentials)
        return tiers

    def _select_suite(
        self, hello: messages.ClientHello
    ) -> tuple[CipherSuite, Credential, SignatureScheme]:
        """Our preferred suite that one of our certificates can serve.

        The certificate matching the requested name wins over suite order:
        the right identity matters more than the cipher.
        """
        context = self._context
        offered = set(hello.cipher_suites)
        ours = [
            s
            for s in context.cipher_suites
            if s in offered
            and s not in TLS13_CIPHER_SUITES
            and s in suites.CIPHER_SUITES
        ]
        if not ours:
            raise HandshakeFailureError("no TLS 1.2 cipher suite in common")
        if not context.credentials:
            raise HandshakeFailureError("no certificate configured for this server")
        if hello.signature_algorithms is None:
            # RFC 5246 §7.4.1.4.1: the default is SHA-1, which we never use.
            raise HandshakeFailureError(
                "ClientHello has no signature_algorithms; SHA-1 is not supported"
            )
        for tier in self._credential_tiers(hello.server_name):
            for suite in ours:
                kind = suites.CIPHER_SUITES[suite].key_exchange
                for credential in tier:
                    if _key_exchange_of(credential) != kind:
                        continue
                    scheme = context.choose_signature_scheme(
                        credential, hello.signature_algorithms, TLS12
                    )
                    if scheme is not None:
                        return suite, credential, scheme
        raise HandshakeFailureError(
            "no certificate can sign a suite and signature scheme the client offers"
        )

    def _select_group(self, hello: messages.ClientHello) -> NamedGroup:
        ours = [g for g in self._context.groups if g in TLS12_GROUPS]
        if hello.supported_groups is None:
            # RFC 8422 §4: without the extension the server may pick any curve;
            # secp256r1 is the one every ECC implementation has.
            group = (
                NamedGroup.secp256r1
                if NamedGroup.secp256r1 in ours
                else (ours[0] if ours else None)
            )
        else:
            group = first_common(ours, hello.supported_groups)
        if group is None:
            raise HandshakeFailureError("no TLS 1.2 key-exchange group in common")
        return NamedGroup(group)

    # -- the client's flight ---------------------------------------------------

    def _handle_client_certificate(self, raw: bytes, body: bytes) -> None:
        n = self._n
        present = self._receive_certificate(body, self._verify_client_chain)
        if present:
            if _key_exchange_of_public(n.peer_public_key) is None:
                raise CertificateError(
                    "client certificate key cannot sign TLS 1.2 handshakes",
                    alert=AlertDescription.unsupported_certificate,
                )
            self._check_peer_unchanged()
        elif self._context.client_certificate is ClientCertificatePolicy.REQUIRE:
            # RFC 5246 §7.4.6: handshake_failure (certificate_required is 1.3).
            raise HandshakeFailureError(
                "client sent no certificate, and this server requires one"
            )
        n.transcript.update(raw)
        self.state = State.SERVER_WAIT_CKE

    def _handle_client_key_exchange(self, raw: bytes, body: bytes) -> None:
        n = self._n
        exchange = messages.ClientKeyExchange12.parse(body)
        assert n.key_share is not None
        pre_master_secret = n.key_share.shared_secret(exchange.public)
        n.key_share = None
        n.transcript.update(raw)
        self._compute_master_secret(pre_master_secret)
        self._derive_keys()
        self.state = (
            State.SERVER_WAIT_CV if n.peer_certificates else State.SERVER_WAIT_CCS
        )

    def _handle_client_certificate_verify(self, raw: bytes, body: bytes) -> None:
        n = self._n
        verify = messages.CertificateVerify.parse(body)
        if verify.algorithm not in n.requested_schemes:
            raise IllegalParameterError(
                f"CertificateVerify uses signature scheme {verify.algorithm:#06x}, "
                "which we did not offer"
            )
        suites.verify(
            verify.algorithm,
            n.peer_public_key,
            n.transcript.raw(),
            verify.signature,
            version=TLS12,
            rsassa_pss=n.peer_rsassa_pss,
        )
        n.peer_signature_scheme = SignatureScheme(verify.algorithm)
        n.transcript.update(raw)
        self.state = State.SERVER_WAIT_CCS

    def _handle_next_protocol(self, raw: bytes, body: bytes) -> None:
        n = self._n
        n.next_protocol = messages.NextProtocol.parse(body).selected_protocol
        n.transcript.update(raw)
        self.state = State.SERVER_WAIT_FINISHED

    def _handle_client_finished(self, raw: bytes, body: bytes) -> None:
        n = self._n
        self._receive_finished(raw, body)
        if not n.resumed:
            self._send_ticket()
            self._send_change_cipher_spec()
            self._send_finished()
        self._remember_session()
        self._finish()

    def _session_state(self) -> ServerSessionState:
        """What resuming this session needs (sealed in a ticket or cached)."""
        n = self._n
        context = self._context
        assert n.suite_info is not None
        now = context.clock()
        previous = self._resumed_state
        lifetime = context.session_lifetime
        if previous is not None:
            # A renewed ticket cannot outlive the original authentication.
            lifetime = min(lifetime, previous.remaining_lifetime(now))
        # Verified under this server's policy (a resumed chain only if it
        # was verified under the same one: resumed_client_authentication).
        policy = (
            tls_x509.client_verification_policy(context) if n.peer_verified else b""
        )
        return ServerSessionState(
            version=TLS12,
            cipher_suite=n.suite_info.suite,
            secret=n.master_secret,
            created_at=now,
            lifetime=lifetime,
            extended_master_secret=True,
            server_name=n.server_name,
            # A renegotiation keeps the first handshake's protocol (_finish).
            alpn_protocol=(self._current or n).alpn_protocol,
            peer_certificates=n.peer_certificates,
            verified=bool(policy),
            verification_policy=policy,
            authenticated_at=previous.authenticated_at if previous else None,
        )

    def _send_ticket(self) -> None:
        """RFC 5077 §3.3: NewSessionTicket before our ChangeCipherSpec."""
        n = self._n
        tickets = self._context.session_tickets
        if not n.ticket_expected or tickets is None:
            return
        state = self._session_state()
        ticket = tickets.seal_state(state)
        # RFC 5077 §3.3: having announced a ticket we must send the message;
        # an empty ticket says "none this time" (a state too big to seal).
        self._send(
            messages.NewSessionTicket12(
                lifetime_hint=state.lifetime if ticket else 0, ticket=ticket or b""
            )
        )

    def _remember_session(self) -> None:
        """Cache a full handshake's session under its ID (RFC 5246 §7.4.1.2)."""
        n = self._n
        cache = self._context.session_cache
        if n.resumed or not n.session_id or cache is None:
            return
        cache.put(n.session_id, self._session_state())

    _handlers: ClassVar[dict[State, dict[int, Handler]]] = {
        State.SERVER_WAIT_CH: {HandshakeType.client_hello: _handle_client_hello},
        State.SERVER_WAIT_CERT: {HandshakeType.certificate: _handle_client_certificate},
        State.SERVER_WAIT_CKE: {
            HandshakeType.client_key_exchange: _handle_client_key_exchange
        },
        State.SERVER_WAIT_CV: {
            HandshakeType.certificate_verify: _handle_client_certificate_verify
        },
        State.SERVER_WAIT_CCS: {},
        State.SERVER_WAIT_NEXT_PROTOCOL: {
            HandshakeType.next_protocol: _handle_next_protocol
        },
        State.SERVER_WAIT_FINISHED: {HandshakeType.finished: _handle_client_finished},
        State.CONNECTED: {HandshakeType.client_hello: _handle_client_hello},
    }


def _key_exchange_of_public(public_key: object) -> str | None:
    return suites.key_exchange_for_key(public_key)


def _key_exchange_of(credential: Credential) -> str | None:
    """The TLS 1.2 key exchange a credential's certificate can sign."""
    return suites.key_exchange_for_key(credential.chain[0].public_key())
