"""The server side of a TLS 1.3 handshake (RFC 8446).

The :class:`~.negotiation.ServerNegotiator` reads the first ClientHello and,
when it settles TLS 1.3, creates :class:`TLS13Server` to answer it: a
HelloRetryRequest when no share fits, PSK resumption from our tickets, the
server flight, the client's certificate and Finished, then tickets.
"""

from __future__ import annotations

import dataclasses
import hmac
from typing import TYPE_CHECKING, ClassVar

from ..constants import (
    TLS13_CIPHER_SUITES,
    AlertDescription,
    ClientCertificatePolicy,
    HandshakeType,
    NamedGroup,
    ProtocolVersion,
    PskKeyExchangeMode,
    SignatureScheme,
)
from ..errors import (
    CertificateError,
    DecryptError,
    HandshakeFailureError,
    IllegalParameterError,
    MissingExtensionError,
    ProtocolVersionError,
)
from . import certificates as tls_x509
from . import keyschedule, messages, suites
from .handshake import (
    Handler,
    HandshakeIO,
    Negotiation,
    check_legacy_version,
    first_common,
    resumed_client_authentication,
    select_alpn,
)
from .record import plaintext_limit
from .sessions import ServerSessionState
from .tls13 import (
    CLIENT_CV_CONTEXT,
    SERVER_CV_CONTEXT,
    TLS13,
    TLS13_HANDSHAKE_SCHEMES,
    State,
    TLS13Handshake,
    psk_binder,
    traffic_protection,
)

if TYPE_CHECKING:
    from ..context import Context, Credential


# We never accept 0-RTT (and never advertise it); a client that sends early
# data anyway has this much of it skipped before it is an error (§4.2.10).
_EARLY_DATA_SKIP_LIMIT = 2**16


class TLS13Server(TLS13Handshake):
    """The server side of a TLS 1.3 handshake."""

    def __init__(self, io: HandshakeIO, context: Context) -> None:
        super().__init__(io, context, Negotiation())
        self.state = State.SERVER_START
        self._first_hello: messages.ClientHello | None = None
        self._retry_group: int | None = None
        self._sent_change_cipher_spec = False
        self._requested_schemes: list[int] = []
        self._client_psk_modes: set[int] = set()
        self._psk: _AcceptedPsk | None = None

    # -- ClientHello ---------------------------------------------------------

    def _handle_client_hello(self, raw: bytes, body: bytes) -> None:
        """The second ClientHello, after our HelloRetryRequest."""
        hello = messages.ClientHello.parse(body)
        # The negotiator checked the first hello; the retry must still be a
        # ClientHello (§D.5) that offers TLS 1.3 (§4.1.2).
        check_legacy_version(hello.legacy_version)
        if TLS13 not in (hello.supported_versions or ()):
            raise ProtocolVersionError("second ClientHello no longer offers TLS 1.3")
        self.receive_client_hello(raw, hello)

    def receive_client_hello(self, raw: bytes, hello: messages.ClientHello) -> None:
        """Answer a ClientHello (the first comes from the negotiator)."""
        context = self._context
        if hello.legacy_compression_methods != b"\x00":
            # §4.1.2: exactly one byte, null compression.
            raise IllegalParameterError(
                "TLS 1.3 ClientHello must offer only null compression"
            )
        suite = first_common(
            (s for s in context.cipher_suites if s in TLS13_CIPHER_SUITES),
            hello.cipher_suites,
        )
        if suite is None:
            raise HandshakeFailureError("no TLS 1.3 cipher suite in common")
        if self._n.suite_info is not None:
            suite = self._n.suite_info.suite  # the HelloRetryRequest's choice
        if hello.signature_algorithms is None and hello.pre_shared_key is None:
            raise MissingExtensionError(
                "ClientHello has no signature_algorithms (§9.2)"
            )
        if (hello.supported_groups is None) != (hello.key_share is None):
            raise MissingExtensionError(
                "ClientHello must carry both supported_groups and key_share (§9.2)"
            )
        if hello.early_data and self._first_hello is None:
            # §4.2.10: we never accept 0-RTT; skip what the client sends.
            self._io.skip_early_data(_EARLY_DATA_SKIP_LIMIT)
        shares = _check_key_shares(hello) if hello.key_share is not None else {}
        if self._first_hello is not None:
            self._check_second_hello(hello, shares)
        self._n.client_random = hello.random  # a second hello repeats it
        self._choose_suite(suite)
        self._client_psk_modes = set(hello.psk_key_exchange_modes or ())
        psk = self._select_psk(raw, hello)

        group: int | None = None
        if psk is None or psk.with_dhe:
            if hello.supported_groups is None:
                raise MissingExtensionError(
                    "ClientHello has no key_share and no usable PSK"
                )
            group = next((g for g in context.groups if g in shares), None)
            if group is None:
                if self._first_hello is not None:
                    raise IllegalParameterError(
                        "second ClientHello still has no usable share"
                    )
                retry_group = first_common(context.groups, hello.supported_groups)
                if retry_group is None:
                    raise HandshakeFailureError("no key-exchange group in common")
                self._send_hello_retry_request(raw, hello, suite, retry_group)
                return
        credential: Credential | None = None
        scheme: SignatureScheme | None = None
        if psk is None:
            credential = context.select_credential(
                hello.server_name, hello.signature_algorithms, TLS13
            )
            if credential is None:
                raise HandshakeFailureError("no certificate configured for this server")
            scheme = context.choose_signature_scheme(
                credential, hello.signature_algorithms, TLS13
            )
            if scheme is None:
                raise HandshakeFailureError(
                    "the client accepts no signature scheme our certificate's key "
                    "can make"
                )
        self._n.alpn_protocol = select_alpn(
            context.alpn_protocols, hello.alpn_protocols
        )
        if hello.record_size_limit is not None:
            self._io.set_write_limit(
                plaintext_limit(hello.record_size_limit, tls13=True)
            )
        self.server_name = self._n.server_name = hello.server_name
        self._n.transcript.update(raw)
        self._send_server_flight(
            hello,
            group,
            shares[group] if group is not None else None,
            credential,
            scheme,
            psk,
        )

    def _select_psk(
        self, raw: bytes, hello: messages.ClientHello
    ) -> _AcceptedPsk | None:
        """The ticket to resume, checked down to its binder (RFC 8446 §4.2.11).

        Tickets we cannot open, that expired, that belong to another server
        name or to a suite of another hash, or whose client certificate this
        server would not accept now (:func:`resumed_client_authentication`)
        are passed over: a full handshake follows. A binder that does not
        verify is fatal (decrypt_error).
        """
        offered = hello.pre_shared_key
        tickets = self._context.session_tickets
        if offered is None:
            return None
        if hello.psk_key_exchange_modes is None:
            raise MissingExtensionError(
                "pre_shared_key without psk_key_exchange_modes (§4.2.9)"
            )
        modes = self._client_psk_modes
        with_dhe = (
            PskKeyExchangeMode.psk_dhe_ke in modes and hello.key_share is not None
        )
        without_dhe = PskKeyExchangeMode.psk_ke in modes and self._context.allow_psk_ke
        if tickets is None or not (with_dhe or without_dhe):
            return None
        info = self._info
        for index, identity in enumerate(offered.identities):
            state = tickets.open_state(identity.identity, version=TLS13)
            if (
                state is None
                or suites.CIPHER_SUITES[state.cipher_suite].hash is not info.hash
                or not _same_server_name(state.server_name, hello.server_name)
            ):
                continue
            # §4.2.11: declining a PSK is always allowed; decide before the
            # binder, which is checked only for the PSK we select.
            client_auth = resumed_client_authentication(self._context, state)
            if client_auth is None:
                continue
            truncated = raw[: len(raw) - hello.binders_length()]
            expected = psk_binder(info, state.secret, self._n.transcript, truncated)
            if not hmac.compare_digest(offered.binders[index], expected):
                raise DecryptError("PSK binder does not verify (§4.2.11.2)")
            self._n.resumed = True
            self._n.peer_certificates, self._n.peer_verified = client_auth
            return _AcceptedPsk(state, index, with_dhe)
        return None

    def _send_hello_retry_request(
        self, raw: bytes, hello: messages.ClientHello, suite: int, group: NamedGroup
    ) -> None:
        self._choose_suite(suite)
        self._n.transcript.update(raw)
        self._n.transcript.restart_with_message_hash()
        self._send(
            messages.ServerHello(
                legacy_version=ProtocolVersion.TLS_1_2,
                random=messages.HELLO_RETRY_REQUEST_RANDOM,
                legacy_session_id_echo=hello.legacy_session_id,
                cipher_suite=suite,
                supported_versions=TLS13,
                selected_group=group,
            )
        )
        self._send_compatibility_ccs(hello)
        self._first_hello = hello
        self._retry_group = group
        self.state = State.SERVER_WAIT_CH2

    def _check_second_hello(
        self, hello: messages.ClientHello, shares: dict[int, bytes]
    ) -> None:
        """RFC 8446 §4.1.2: the retry may change only what the HRR asked for."""
        first = self._first_hello
        assert first is not None
        if list(shares) != [self._retry_group]:
            raise IllegalParameterError(
                "second ClientHello must carry exactly the share that "
                "HelloRetryRequest asked for"
            )
        if (
            hello.random != first.random
            or hello.legacy_session_id != first.legacy_session_id
            or hello.cipher_suites != first.cipher_suites
            or hello.supported_groups != first.supported_groups
            or hello.supported_versions != first.supported_versions
            or hello.server_name != first.server_name
        ):
            raise IllegalParameterError("second ClientHello differs from the first")
        if self._info.suite not in hello.cipher_suites:
            raise IllegalParameterError("second ClientHello dropped the chosen suite")

    def _send_compatibility_ccs(self, hello: messages.ClientHello) -> None:
        # §D.4: in compatibility mode the server sends a dummy CCS right after
        # its first handshake message (ServerHello or HelloRetryRequest).
        if hello.legacy_session_id and not self._sent_change_cipher_spec:
            self._io.write_change_cipher_spec()
            self._sent_change_cipher_spec = True

    def _send_server_flight(
        self,
        hello: messages.ClientHello,
        group: int | None,
        client_share: bytes | None,
        credential: Credential | None,
        scheme: SignatureScheme | None,
        psk: _AcceptedPsk | None,
    ) -> None:
        """ServerHello, then EncryptedExtensions to Finished under keys.

        With a PSK (§2.2) there is no CertificateRequest, Certificate or
        CertificateVerify: the PSK authenticates both sides.
        """
        context = self._context
        info = self._info
        shared_secret: bytes | None = None
        key_share: messages.KeyShareEntry | None = None
        if group is not None and client_share is not None:
            server_share, shared_secret = suites.respond_to_key_share(
                NamedGroup(group), client_share, context.random
            )
            self._n.group = NamedGroup(group)
            key_share = messages.KeyShareEntry(group=group, key_exchange=server_share)
        self._send(
            messages.ServerHello(
                legacy_version=ProtocolVersion.TLS_1_2,
                random=context.random(32),
                legacy_session_id_echo=hello.legacy_session_id,
                cipher_suite=info.suite,
                supported_versions=TLS13,
                key_share=key_share,
                pre_shared_key=psk.index if psk is not None else None,
            )
        )
        self._send_compatibility_ccs(hello)
        self._psk = psk
        self._derive_handshake_secrets(
            psk.state.secret if psk is not None else None, shared_secret
        )
        self._io.set_write_protection(traffic_protection(info, self._server_hs_secret))

        send_record_limit = (
            context.record_size_limit is not None
            and hello.record_size_limit is not None
        )
        # RFC 6066 §3: an empty server_name says the name was used (to pick
        # the certificate, or to accept a ticket issued for that name).
        name_used = hello.server_name is not None and (
            psk is not None
            or (credential is not None and credential.matches(hello.server_name))
        )
        self._send(
            messages.EncryptedExtensions(
                server_name_ack=name_used,
                alpn_protocol=self._n.alpn_protocol,
                record_size_limit=context.record_size_limit
                if send_record_limit
                else None,
            )
        )
        if send_record_limit:
            # RFC 8449 §4: every record the client protects comes after our
            # EncryptedExtensions, so all must fit the limit we advertised.
            assert context.record_size_limit is not None
            self._io.set_read_limit(
                plaintext_limit(context.record_size_limit, tls13=True)
            )
        request_certificate = (
            psk is None
            and context.client_certificate is not ClientCertificatePolicy.NONE
        )
        if request_certificate:
            self._requested_schemes = [
                int(s)
                for s in context.signature_schemes
                if s in TLS13_HANDSHAKE_SCHEMES
            ]
            self._send(
                messages.CertificateRequest(
                    certificate_request_context=b"",
                    signature_algorithms=self._requested_schemes,
                    signature_algorithms_cert=[
                        int(s) for s in context.signature_schemes
                    ],
                    # §4.2.4: the CAs whose clients we accept (none: any).
                    certificate_authorities=tls_x509.client_ca_names(context) or None,
                )
            )
        if credential is not None and scheme is not None:
            self._send(
                messages.Certificate(
                    certificate_request_context=b"",
                    entries=[
                        messages.CertificateEntry(cert_data=der, extensions=[])
                        for der in credential.chain_der
                    ],
                )
            )
            self._send_certificate_verify(credential, scheme, SERVER_CV_CONTEXT)
        self._send(
            messages.Finished(verify_data=self._finished_data(self._server_hs_secret))
        )
        client_secret, server_secret = self._derive_application_secrets()
        self._read_secret = client_secret
        self._write_secret = server_secret
        self._io.set_write_protection(traffic_protection(info, server_secret))
        self._io.set_read_protection(traffic_protection(info, self._client_hs_secret))
        self.state = (
            State.SERVER_WAIT_CERT
            if request_certificate
            else State.SERVER_WAIT_FINISHED
        )

    def _send_tickets(self) -> None:
        """NewSessionTickets after the handshake (RFC 8446 §4.6.1).

        Only to a client that said how it would use them (psk_key_exchange_
        modes) in a way we accept. Each ticket seals the PSK and what the
        resumed connection must report (names, ALPN, the client's
        certificates) under the Context's rotating ticket keys.
        """
        context = self._context
        tickets = context.session_tickets
        modes = self._client_psk_modes
        usable = PskKeyExchangeMode.psk_dhe_ke in modes or (
            PskKeyExchangeMode.psk_ke in modes and context.allow_psk_ke
        )
        if tickets is None or not usable:
            return
        info = self._info
        now = context.clock()
        lifetime = context.session_lifetime
        authenticated_at = None
        if self._psk is not None:
            # A chain of resumptions may not outlive the first authentication.
            lifetime = min(lifetime, self._psk.state.remaining_lifetime(now))
            authenticated_at = self._psk.state.authenticated_at
        if lifetime <= 0:
            return
        # Verified under this server's policy (a resumed chain only if it
        # was verified under the same one: resumed_client_authentication).
        policy = (
            tls_x509.client_verification_policy(context)
            if self._n.peer_verified
            else b""
        )
        state: ServerSessionState | None = None
        for counter in range(context.tickets_per_handshake):
            nonce = counter.to_bytes(2, "big")  # unique within the connection
            age_add = int.from_bytes(context.random(4), "big")
            secret = keyschedule.resumption_psk(
                info.hash, self.resumption_master_secret, nonce
            )
            if state is None:
                state = ServerSessionState(
                    version=TLS13,
                    cipher_suite=info.suite,
                    secret=secret,
                    created_at=now,
                    lifetime=lifetime,
                    server_name=self.server_name,
                    alpn_protocol=self._n.alpn_protocol,
                    peer_certificates=self._n.peer_certificates,
                    verified=bool(policy),
                    verification_policy=policy,
                    ticket_age_add=age_add,
                    authenticated_at=authenticated_at,
                )
            else:
                # The other tickets differ only in these two fields.
                state = state.for_next_ticket(secret=secret, ticket_age_add=age_add)
            ticket = tickets.seal_state(state)
            if ticket is None:
                return
            self._io.write_handshake(
                messages.encode_handshake(
                    messages.NewSessionTicket(
                        ticket_lifetime=lifetime,
                        ticket_age_add=age_add,
                        ticket_nonce=nonce,
                        ticket=ticket,
                    )
                )
            )

    # -- the client's second flight -------------------------------------------

    def _handle_client_certificate(self, raw: bytes, body: bytes) -> None:
        present = self._receive_certificate(
            body, expected_context=b"", verify=self._verify_client_chain
        )
        self._n.transcript.update(raw)
        if present:
            self.state = State.SERVER_WAIT_CV
            return
        if self._context.client_certificate is ClientCertificatePolicy.REQUIRE:
            raise CertificateError(
                "client sent no certificate, and this server requires one",
                alert=AlertDescription.certificate_required,
            )
        self.state = State.SERVER_WAIT_FINISHED

    def _handle_client_certificate_verify(self, raw: bytes, body: bytes) -> None:
        self._check_certificate_verify(
            raw,
            body,
            context_string=CLIENT_CV_CONTEXT,
            offered=self._requested_schemes,
        )
        self.state = State.SERVER_WAIT_FINISHED

    def _handle_client_finished(self, raw: bytes, body: bytes) -> None:
        assert self._schedule is not None
        self._check_finished(raw, body, self._finished_data(self._client_hs_secret))
        self._io.set_read_protection(traffic_protection(self._info, self._read_secret))
        self.resumption_master_secret = self._schedule.resumption_master_secret(
            self._n.transcript.digest()
        )
        self.state = State.CONNECTED
        self._send_tickets()
        self._io.handshake_completed(self._completed_event())

    _handlers: ClassVar[dict[State, dict[int, Handler]]] = {
        State.SERVER_START: {},
        State.SERVER_WAIT_CH2: {HandshakeType.client_hello: _handle_client_hello},
        State.SERVER_WAIT_CERT: {HandshakeType.certificate: _handle_client_certificate},
        State.SERVER_WAIT_CV: {
            HandshakeType.certificate_verify: _handle_client_certificate_verify
        },
        State.SERVER_WAIT_FINISHED: {HandshakeType.finished: _handle_client_finished},
        State.CONNECTED: {HandshakeType.key_update: TLS13Handshake._handle_key_update},
    }


# -- negotiation helpers ---------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class _AcceptedPsk:
    """A ticket the server accepted: its state, its index, its mode."""

    state: ServerSessionState
    index: int
    with_dhe: bool


def _same_server_name(issued_for: str | None, asked_for: str | None) -> bool:
    """RFC 8446 §4.2.11 / RFC 6066 §3: resume only for the same name."""
    if issued_for is None or asked_for is None:
        return issued_for is None and asked_for is None
    return issued_for.rstrip(".").lower() == asked_for.rstrip(".").lower()


def _check_key_shares(hello: messages.ClientHello) -> dict[int, bytes]:
    """Key shares by group, checked against RFC 8446 §4.2.8."""
    assert hello.key_share is not None and hello.supported_groups is not None
    shares: dict[int, bytes] = {}
    supported = set(hello.supported_groups)
    for entry in hello.key_share:
        if entry.group in shares:
            raise IllegalParameterError("two key shares for one group")
        if entry.group not in supported:
            raise IllegalParameterError("key share for a group not in supported_groups")
        shares[entry.group] = entry.key_exchange
    return shares
