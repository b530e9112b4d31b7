"""TLS 1.3 client and server handshakes (RFC 8446).

Each role is a small state machine: a table maps the current state to the
handshake messages it accepts and the method that handles each. A message
that the table does not list for the state is an ``unexpected_message``
(RFC 8446 §4: "Protocol messages MUST be sent in the order defined"). Every
transition happens in a handler; nothing else changes ``state``.

The state machines do no I/O. They talk to the :class:`Connection` through
the narrow :class:`HandshakeIO` interface: write a handshake message, write
the middlebox-compatibility change_cipher_spec, install record protection,
report completion.
"""

from __future__ import annotations

import dataclasses
import enum
import hmac
from collections.abc import Callable
from typing import TYPE_CHECKING, ClassVar, TypeVar

from cryptography.hazmat.primitives import hashes

from .. import x509 as tls_x509
from ..constants import (
    TLS13_CIPHER_SUITES,
    AlertDescription,
    CipherSuite,
    ClientCertificatePolicy,
    ExtensionType,
    HandshakeType,
    KeyUpdateRequest,
    NamedGroup,
    ProtocolVersion,
    PskKeyExchangeMode,
    SignatureScheme,
)
from ..errors import (
    CertificateError,
    DecodeError,
    DecryptError,
    HandshakeFailureError,
    IllegalParameterError,
    MissingExtensionError,
    ProtocolVersionError,
    TLSError,
    UnexpectedMessageError,
    UnsupportedExtensionError,
)
from . import keyschedule, messages, suites
from .events import (
    HandshakeCompleted,
    KeyUpdated,
    SessionTicket,
)
from .handshake import (
    Handler,
    HandshakeIO,
    HandshakeMachine,
    by_certificate_authorities,
    check_legacy_version,
    first_common,
    has_rsassa_pss_key,
    is_ip_address,
    log_secret,
    resumed_client_authentication,
    select_alpn,
)
from .record import Record, TLS13Protection
from .sessions import ServerSessionState, Session

if TYPE_CHECKING:
    from cryptography import x509 as cx509

    from ..context import Context, Credential

_T = TypeVar("_T")
TLS13 = ProtocolVersion.TLS_1_3
# RFC 8446 §4.4.3: the prefix of the content covered by CertificateVerify.
_SIGNATURE_PAD = b"\x20" * 64
_SERVER_CV_CONTEXT = b"TLS 1.3, server CertificateVerify\x00"
_CLIENT_CV_CONTEXT = b"TLS 1.3, client CertificateVerify\x00"
# RFC 8449 §4: a record_size_limit below 64 is an illegal_parameter.
_MIN_RECORD_SIZE_LIMIT = 64
_MAX_RECORD_SIZE_LIMIT_13 = 2**14 + 1
# RFC 8446 §4.6.1: ticket lifetimes are at most seven days.
_MAX_TICKET_LIFETIME = 604800
# We never accept 0-RTT (and never advertise it); a client that sends early
# data anyway has this much of it skipped before it is an error (§4.2.10).
_EARLY_DATA_SKIP_LIMIT = 2**16

# Signature schemes that may sign handshake messages in TLS 1.3; the
# rsa_pkcs1_* ones are only for certificates (RFC 8446 §4.2.3).
_TLS13_HANDSHAKE_SCHEMES = frozenset(
    {
        SignatureScheme.ecdsa_secp256r1_sha256,
        SignatureScheme.ecdsa_secp384r1_sha384,
        SignatureScheme.ecdsa_secp521r1_sha512,
        SignatureScheme.rsa_pss_rsae_sha256,
        SignatureScheme.rsa_pss_rsae_sha384,
        SignatureScheme.rsa_pss_rsae_sha512,
        SignatureScheme.rsa_pss_pss_sha256,
        SignatureScheme.rsa_pss_pss_sha384,
        SignatureScheme.rsa_pss_pss_sha512,
        SignatureScheme.ed25519,
        SignatureScheme.ed448,
    }
)


class State(enum.Enum):
    """Handshake states of RFC 8446 appendix A, one set per role."""

    CLIENT_START = "client start"
    CLIENT_WAIT_SH = "client wait ServerHello"
    CLIENT_WAIT_EE = "client wait EncryptedExtensions"
    CLIENT_WAIT_CERT_CR = "client wait Certificate or CertificateRequest"
    CLIENT_WAIT_CERT = "client wait Certificate"
    CLIENT_WAIT_CV = "client wait CertificateVerify"
    CLIENT_WAIT_FINISHED = "client wait Finished"
    SERVER_START = "server wait ClientHello"
    SERVER_WAIT_CH2 = "server wait second ClientHello"
    SERVER_WAIT_CERT = "server wait client Certificate"
    SERVER_WAIT_CV = "server wait client CertificateVerify"
    SERVER_WAIT_FINISHED = "server wait client Finished"
    CONNECTED = "connected"


def _protection(info: suites.CipherSuiteInfo, secret: bytes) -> TLS13Protection:
    key, iv = keyschedule.traffic_key_iv(
        info.hash, secret, info.key_length, info.iv_length
    )
    return TLS13Protection(info.suite, key, iv)


def _signature_content(context_string: bytes, transcript_hash: bytes) -> bytes:
    return _SIGNATURE_PAD + context_string + transcript_hash


class _TLS13Handshake(HandshakeMachine):
    """What client and server share: transcript, keys, post-handshake messages."""

    state: State
    _handlers: ClassVar[dict[State, dict[int, Handler]]]

    def __init__(self, io: HandshakeIO, context: Context) -> None:
        self._io = io
        self._context = context
        self.state: State
        self._transcript = keyschedule.Transcript()
        self._suite_info: suites.CipherSuiteInfo | None = None
        self._schedule: keyschedule.KeySchedule13 | None = None
        self._client_hs_secret = b""
        self._server_hs_secret = b""
        self._read_secret = b""
        self._write_secret = b""
        self._exporter_secret = b""
        self.resumption_master_secret = b""
        #: ClientHello.random: names this connection's secrets in a key log.
        self._client_random = b""
        self.group: NamedGroup | None = None
        self.alpn_protocol: bytes | None = None
        self.server_name: str | None = None
        self.peer_certificates: tuple[bytes, ...] = ()
        self.peer_verified = False
        self._peer_public_key: object | None = None
        self._peer_rsassa_pss = False
        #: The scheme of the peer's CertificateVerify (None when it sent none).
        self.peer_signature_scheme: SignatureScheme | None = None
        self.resumed = False
        self._session: Session | None = None

    # -- queries ---------------------------------------------------------

    #: NPN does not exist in TLS 1.3 (it was a TLS 1.2 extension).
    next_protocol: bytes | None = None

    @property
    def version(self) -> ProtocolVersion | None:
        """TLS 1.3 once a ServerHello (or HelloRetryRequest) settled it."""
        return TLS13 if self._suite_info is not None else None

    @property
    def session(self) -> Session | None:
        """The newest ticket's session (client side), to resume later."""
        return self._session

    @property
    def cipher_suite(self) -> CipherSuite | None:
        return self._suite_info.suite if self._suite_info else None

    @property
    def complete(self) -> bool:
        return self.state is State.CONNECTED

    def export_keying_material(
        self, label: bytes, context: bytes, length: int
    ) -> bytes:
        """RFC 8446 §7.5 exporter; only after the handshake."""
        if not self.complete or self._suite_info is None:
            raise TLSError("keying material is available after the handshake")
        return keyschedule.exporter(
            self._suite_info.hash, self._exporter_secret, label, context, length
        )

    # -- dispatch (HandshakeMachine.handle does the table lookup) ---------

    def handle_change_cipher_spec(self, record: Record) -> None:
        """RFC 8446 §5: drop the unprotected compatibility CCS, if it is in
        its window (after the first ClientHello, before the peer's Finished);
        any other CCS is an unexpected_message."""
        if record.protected or self.state in (
            State.CLIENT_START,
            State.SERVER_START,
            State.CONNECTED,
        ):
            raise UnexpectedMessageError("change_cipher_spec not allowed here")

    # -- helpers shared by both roles ---------------------------------------

    def _send(self, message: messages.HandshakeMessage) -> bytes:
        raw = messages.encode_handshake(message)
        self._transcript.update(raw)
        self._io.write_handshake(raw)
        return raw

    def _choose_suite(self, suite: int) -> suites.CipherSuiteInfo:
        info = suites.CIPHER_SUITES[CipherSuite(suite)]
        self._suite_info = info
        self._transcript.set_hash(info.hash)
        return info

    def _hash(self) -> type[hashes.HashAlgorithm]:
        assert self._suite_info is not None
        return self._suite_info.hash

    def _finished_data(self, base_secret: bytes) -> bytes:
        return keyschedule.finished_verify_data(
            self._hash(), base_secret, self._transcript.digest()
        )

    def _check_finished(self, raw: bytes, body: bytes, base_secret: bytes) -> None:
        finished = messages.Finished.parse(body)
        expected = self._finished_data(base_secret)
        if len(finished.verify_data) != len(expected):
            # §4.4.4: verify_data is Hash.length bytes; a message of another
            # length does not decode (§6.2), whatever it holds.
            raise DecodeError(
                f"Finished carries {len(finished.verify_data)} bytes, "
                f"expected {len(expected)}"
            )
        if not hmac.compare_digest(finished.verify_data, expected):
            raise DecryptError("Finished verify_data does not match the handshake")
        self._transcript.update(raw)

    def _derive_handshake_secrets(
        self, psk: bytes | None, shared_secret: bytes | None
    ) -> None:
        """Early and handshake secrets, then both handshake traffic secrets
        over ClientHello..ServerHello (RFC 8446 §7.1)."""
        schedule = self._schedule = keyschedule.KeySchedule13(self._hash(), psk=psk)
        schedule.derive_handshake_secret(shared_secret)
        transcript_hash = self._transcript.digest()
        self._client_hs_secret = schedule.client_handshake_traffic_secret(
            transcript_hash
        )
        self._server_hs_secret = schedule.server_handshake_traffic_secret(
            transcript_hash
        )
        for label, secret in (
            ("CLIENT_HANDSHAKE_TRAFFIC_SECRET", self._client_hs_secret),
            ("SERVER_HANDSHAKE_TRAFFIC_SECRET", self._server_hs_secret),
        ):
            log_secret(self._context, label, self._client_random, secret)

    def _derive_application_secrets(self) -> tuple[bytes, bytes]:
        """Master secret and the first application secrets (RFC 8446 §7.1).

        Called with the transcript through the server Finished.
        """
        assert self._schedule is not None
        self._schedule.derive_master_secret()
        transcript_hash = self._transcript.digest()
        client = self._schedule.client_application_traffic_secret_0(transcript_hash)
        server = self._schedule.server_application_traffic_secret_0(transcript_hash)
        self._exporter_secret = self._schedule.exporter_master_secret(transcript_hash)
        for label, secret in (
            ("CLIENT_TRAFFIC_SECRET_0", client),
            ("SERVER_TRAFFIC_SECRET_0", server),
            ("EXPORTER_SECRET", self._exporter_secret),
        ):
            log_secret(self._context, label, self._client_random, secret)
        return client, server

    def _receive_certificate(
        self,
        body: bytes,
        *,
        expected_context: bytes,
        verify: Callable[[tuple[bytes, ...]], list[cx509.Certificate]],
    ) -> bool:
        """Parse and verify the peer's Certificate. Returns False when empty."""
        certificate = messages.Certificate.parse(body)
        if certificate.certificate_request_context != expected_context:
            raise IllegalParameterError(
                "Certificate has the wrong certificate_request_context"
            )
        for entry in certificate.entries:
            if entry.extensions:
                # We offer neither status_request nor signed_certificate_timestamp
                # (RFC 8446 §4.4.2: extensions must answer the ClientHello).
                raise UnsupportedExtensionError(
                    "certificate entry carries an extension we did not offer"
                )
        if not certificate.entries:
            return False
        chain = tuple(entry.cert_data for entry in certificate.entries)
        # x509 counts the chain against max_certificate_chain_length, parses
        # it (every malformation is a bad_certificate) and, unless the
        # context skips verification, verifies it: leaf first either way.
        try:
            leaf = verify(chain)[0]
        except TLSError as exc:
            exc.peer_certificates = chain  # for a report of what was refused
            raise
        self.peer_verified = self._context.verify
        self._peer_public_key = leaf.public_key()
        self._peer_rsassa_pss = has_rsassa_pss_key(leaf)
        self.peer_certificates = chain
        return True

    def _check_certificate_verify(
        self, raw: bytes, body: bytes, *, context_string: bytes, offered: list[int]
    ) -> None:
        verify = messages.CertificateVerify.parse(body)
        if verify.algorithm not in offered:
            raise IllegalParameterError(
                f"CertificateVerify uses signature scheme {verify.algorithm:#06x}, "
                "which we did not offer"
            )
        content = _signature_content(context_string, self._transcript.digest())
        suites.verify(
            SignatureScheme(verify.algorithm),
            self._peer_public_key,
            content,
            verify.signature,
            rsassa_pss=self._peer_rsassa_pss,
        )
        self.peer_signature_scheme = SignatureScheme(verify.algorithm)
        self._transcript.update(raw)

    def _send_certificate_verify(
        self, credential: Credential, scheme: SignatureScheme, context_string: bytes
    ) -> None:
        content = _signature_content(context_string, self._transcript.digest())
        signature = suites.sign(scheme, credential.private_key, content)
        self._send(messages.CertificateVerify(algorithm=scheme, signature=signature))

    def _completed_event(self) -> HandshakeCompleted:
        assert self._suite_info is not None
        return HandshakeCompleted(
            version=TLS13,
            cipher_suite=self._suite_info.suite,
            group=self.group,
            alpn_protocol=self.alpn_protocol,
            next_protocol=None,  # NPN does not exist in TLS 1.3
            server_name=self.server_name,
            peer_certificates=self.peer_certificates,
            verified=self.peer_verified,
            resumed=self.resumed,
            peer_signature_scheme=self.peer_signature_scheme,
        )

    # -- post-handshake messages (RFC 8446 §4.6) ----------------------------

    #: TLS 1.3 has no renegotiation that could hold data back.
    renegotiating = False

    def handle_warning_alert(self, description: int) -> None:
        """Before the version is settled a warning changes nothing (§6)."""

    @property
    def can_renegotiate(self) -> bool:
        """Whether :meth:`renegotiate` (a KeyUpdate here) may be called."""
        return self.complete

    def renegotiate(self) -> None:
        """TLS 1.3 has no renegotiation: refresh both directions' keys."""
        self.send_key_update(request_peer=True)

    def send_key_update(self, request_peer: bool) -> None:
        """Send KeyUpdate, then switch to the next sending keys (§4.6.3)."""
        if not self.complete:
            raise TLSError("KeyUpdate is only possible after the handshake")
        request = (
            KeyUpdateRequest.update_requested
            if request_peer
            else KeyUpdateRequest.update_not_requested
        )
        self._io.write_handshake(
            messages.encode_handshake(messages.KeyUpdate(request_update=request))
        )
        assert self._suite_info is not None
        self._write_secret = keyschedule.next_application_traffic_secret(
            self._hash(), self._write_secret
        )
        self._io.set_write_protection(_protection(self._suite_info, self._write_secret))

    def _handle_key_update(self, raw: bytes, body: bytes) -> None:
        update = messages.KeyUpdate.parse(body)
        assert self._suite_info is not None
        self._read_secret = keyschedule.next_application_traffic_secret(
            self._hash(), self._read_secret
        )
        self._io.set_read_protection(_protection(self._suite_info, self._read_secret))
        self._io.emit(KeyUpdated("receive"))
        if update.request_update == KeyUpdateRequest.update_requested:
            # §4.6.3: answer before sending more application data; never with
            # update_requested, so two peers cannot ping-pong forever.
            self.send_key_update(request_peer=False)
            self._io.emit(KeyUpdated("send"))


class TLS13Client(_TLS13Handshake):
    """The client side of a TLS 1.3 handshake."""

    def __init__(
        self,
        io: HandshakeIO,
        context: Context,
        server_name: str | None,
        session: Session | None = None,
    ) -> None:
        super().__init__(io, context)
        self.state = State.CLIENT_START
        self.server_name = server_name
        # The session to offer, once start() has checked it may be offered.
        self._resume: Session | None = session
        self._psk_offered: Session | None = None
        # This connection's verification policy (computed on first use) and
        # the one the server's chain was verified under (b"": not verified).
        self._policy: bytes | None = None
        self._peer_policy = b""
        self._key_shares: dict[int, suites.KeyShare] = {}
        self._client_hello: messages.ClientHello | None = None
        self._offered_extensions: set[int] = set()
        self._hello_retry_suite: int | None = None
        self._hello_retry_group: int | None = None
        self._sent_change_cipher_spec = False
        self._certificate_request: messages.CertificateRequest | None = None

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
            self._psk_offered = session
            hello = self._with_psk(hello, session)
        self._client_hello = hello
        self._client_random = hello.random
        self._offered_extensions = hello.extension_types()
        # RFC 8446 §5.1: the first ClientHello may carry 0x0301 for old servers.
        self._io.set_legacy_record_version(ProtocolVersion.TLS_1_0)
        self._send(hello)
        self._io.set_legacy_record_version(ProtocolVersion.TLS_1_2)
        self.state = State.CLIENT_WAIT_SH

    def _build_client_hello(self) -> messages.ClientHello:
        """Our first ClientHello: every version the context allows.

        One hello serves both versions (RFC 8446 §4.1.2, §D.2): TLS 1.3 reads
        supported_versions and key_share; a TLS 1.2 server reads
        legacy_version and the TLS 1.2 extensions, and ignores the rest.
        """
        context = self._context
        versions = sorted(context.versions, reverse=True)
        offer_tls12 = ProtocolVersion.TLS_1_2 in versions
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
            if offer_tls12 or s in _TLS13_HANDSHAKE_SCHEMES
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
            record_size_limit=context.record_size_limit,
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
            psk_key_exchange_modes=_psk_modes(context) if offer_tls13 else None,
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
            and (not context.verify or session.verified_under(self._own_policy()))
        )

    def _own_policy(self) -> bytes:
        """:func:`~twisted_sslfile.x509.verification_policy` for this client."""
        if self._policy is None:
            self._policy = tls_x509.verification_policy(self._context, self.server_name)
        return self._policy

    def _with_psk(
        self, hello: messages.ClientHello, session: Session
    ) -> messages.ClientHello:
        """``hello`` offering ``session``'s ticket, binder included (§4.2.11).

        The binder is a Finished-style HMAC over the ClientHello up to the
        binder list, so the hello is encoded once with a placeholder binder of
        the right length, then truncated and hashed.
        """
        info = suites.CIPHER_SUITES[session.cipher_suite]
        identity = messages.PskIdentity(
            identity=session.ticket,
            obfuscated_ticket_age=session.obfuscated_ticket_age(self._context.clock()),
        )
        placeholder = dataclasses.replace(
            hello,
            pre_shared_key=messages.OfferedPsks(
                identities=[identity], binders=[bytes(info.hash_length)]
            ),
        )
        raw = messages.encode_handshake(placeholder)
        truncated = raw[: len(raw) - placeholder.binders_length()]
        binder = _psk_binder(info, session.resumption_psk, self._transcript, truncated)
        return dataclasses.replace(
            hello,
            pre_shared_key=messages.OfferedPsks(
                identities=[identity], binders=[binder]
            ),
        )

    def _check_hello_common(self, hello: messages.ServerHello, what: str) -> None:
        assert self._client_hello is not None
        if hello.supported_versions is None:
            # A server without supported_versions negotiated TLS 1.2 or lower
            # from legacy_version; we only offered TLS 1.3 (§4.2.1).
            raise ProtocolVersionError(
                f"server answered with {what} for a version below TLS 1.3, "
                "which this client does not offer"
            )
        if hello.supported_versions != TLS13:
            raise IllegalParameterError(
                f"{what} selected version {hello.supported_versions:#06x}, not offered"
            )
        if hello.legacy_version != ProtocolVersion.TLS_1_2:
            raise IllegalParameterError(f"{what} legacy_version must be 0x0303")
        if hello.legacy_session_id_echo != self._client_hello.legacy_session_id:
            raise IllegalParameterError(f"{what} does not echo our session id")
        if hello.cipher_suite not in self._client_hello.cipher_suites:
            raise IllegalParameterError(f"{what} selected a cipher suite not offered")
        if hello.legacy_compression_method != 0:
            raise IllegalParameterError(f"{what} selected compression")

    def _handle_server_hello(self, raw: bytes, body: bytes) -> None:
        hello = messages.ServerHello.parse(body)
        if hello.is_hello_retry_request:
            self._handle_hello_retry_request(raw, hello)
            return
        if hello.supported_versions is None:
            self._hand_over_to_tls12(raw, hello)
            return
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
            if psk is None or PskKeyExchangeMode.psk_ke not in _psk_modes(
                self._context
            ):
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
            self.group = NamedGroup(hello.key_share.group)
        info = self._choose_suite(hello.cipher_suite)
        self._transcript.update(raw)
        self._derive_handshake_secrets(
            psk.resumption_psk if psk else None, shared_secret
        )
        self._io.set_read_protection(_protection(info, self._server_hs_secret))
        self._send_compatibility_ccs()
        # Encrypt from now on, so an alert about the server's flight reaches
        # a server that already reads with our handshake keys.
        self._io.set_write_protection(_protection(info, self._client_hs_secret))
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
        self.resumed = True
        self.peer_certificates = session.peer_certificates
        # Verified means verified under this client's policy: true for every
        # session a verifying client offers, never for one that does not verify.
        self.peer_verified = self._context.verify and session.verified_under(
            self._own_policy()
        )
        self._peer_policy = session.verification_policy
        return session

    def _hand_over_to_tls12(self, raw: bytes, hello: messages.ServerHello) -> None:
        """A ServerHello without supported_versions chose TLS 1.2 or lower."""
        assert self._client_hello is not None
        context = self._context
        if hello.legacy_version != ProtocolVersion.TLS_1_2 or (
            ProtocolVersion.TLS_1_2 not in context.versions
        ):
            raise ProtocolVersionError(
                f"server chose version {hello.legacy_version:#06x}; this client "
                f"allows {[v.name for v in context.versions]}"
            )
        if self._hello_retry_suite is not None:
            raise IllegalParameterError("TLS 1.2 ServerHello after HelloRetryRequest")
        if TLS13 in context.versions and hello.random[-8:] in (
            messages.DOWNGRADE_TLS12,
            messages.DOWNGRADE_TLS11,
        ):
            # RFC 8446 §4.1.3: a TLS 1.3 server was talked down to 1.2.
            raise IllegalParameterError("downgrade sentinel in ServerHello.random")
        self._key_shares.clear()
        self._io.start_tls12_client(
            raw,
            hello,
            server_name=self.server_name,
            client_hello=self._client_hello,
            transcript=self._transcript,
            offered_extensions=self._offered_extensions,
            session=self._resume,
        )

    def _handle_hello_retry_request(
        self, raw: bytes, hello: messages.ServerHello
    ) -> None:
        assert self._client_hello is not None
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
        self._transcript.restart_with_message_hash()
        self._transcript.update(raw)
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
                retry = self._with_psk(retry, session)
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
        assert self._client_hello is not None
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
        self.alpn_protocol = protocol
        limit = extensions.record_size_limit
        if limit is not None:
            if limit < _MIN_RECORD_SIZE_LIMIT:
                raise IllegalParameterError(f"record_size_limit {limit} is below 64")
            # RFC 8449 §4: in TLS 1.3 the limit includes the content type byte.
            self._io.set_write_limit(min(limit, _MAX_RECORD_SIZE_LIMIT_13) - 1)
            own = self._context.record_size_limit
            if own is not None:
                # Negotiated: the server's records must now fit our limit.
                self._io.set_read_limit(min(own, _MAX_RECORD_SIZE_LIMIT_13) - 1)
        self._transcript.update(raw)
        # §2.2: a PSK handshake authenticates by the PSK: no certificates.
        self.state = (
            State.CLIENT_WAIT_FINISHED if self.resumed else State.CLIENT_WAIT_CERT_CR
        )

    def _handle_certificate_request(self, raw: bytes, body: bytes) -> None:
        request = messages.CertificateRequest.parse(body)
        if request.certificate_request_context:
            # §4.3.2: empty during the main handshake.
            raise IllegalParameterError(
                "CertificateRequest context must be empty in the handshake"
            )
        self._certificate_request = request
        self._transcript.update(raw)
        self.state = State.CLIENT_WAIT_CERT

    def _handle_certificate(self, raw: bytes, body: bytes) -> None:
        if not self._receive_certificate(
            body, expected_context=b"", verify=self._verify_server_chain
        ):
            raise DecodeError("server sent an empty Certificate (RFC 8446 §4.4.2.4)")
        self._transcript.update(raw)
        self.state = State.CLIENT_WAIT_CV

    def _verify_server_chain(self, chain: tuple[bytes, ...]) -> list[cx509.Certificate]:
        path = tls_x509.verify_server_chain(self._context, chain, self.server_name)
        if self._context.verify:
            self._peer_policy = self._own_policy()
        return path

    def _handle_certificate_verify(self, raw: bytes, body: bytes) -> None:
        assert self._client_hello is not None
        self._check_certificate_verify(
            raw,
            body,
            context_string=_SERVER_CV_CONTEXT,
            offered=self._client_hello.signature_algorithms or [],
        )
        self.state = State.CLIENT_WAIT_FINISHED

    def _handle_finished(self, raw: bytes, body: bytes) -> None:
        assert self._suite_info is not None
        self._check_finished(raw, body, self._server_hs_secret)
        client_secret, server_secret = self._derive_application_secrets()
        self._read_secret = server_secret
        self._write_secret = client_secret
        self._io.set_read_protection(_protection(self._suite_info, server_secret))
        if self._certificate_request is not None:
            self._send_client_certificate(self._certificate_request)
        self._send(
            messages.Finished(verify_data=self._finished_data(self._client_hs_secret))
        )
        self._io.set_write_protection(_protection(self._suite_info, client_secret))
        assert self._schedule is not None
        self.resumption_master_secret = self._schedule.resumption_master_secret(
            self._transcript.digest()
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
        self._send_certificate_verify(credential, scheme, _CLIENT_CV_CONTEXT)

    def _handle_new_session_ticket(self, raw: bytes, body: bytes) -> None:
        """Keep the ticket as a :class:`Session` (RFC 8446 §4.6.1)."""
        ticket = messages.NewSessionTicket.parse(body)
        if ticket.ticket_lifetime == 0:
            return  # "the ticket should be discarded immediately"
        if ticket.ticket_lifetime > _MAX_TICKET_LIFETIME:
            raise IllegalParameterError(
                f"ticket_lifetime {ticket.ticket_lifetime} is above 7 days"
            )
        assert self._suite_info is not None
        session = Session(
            version=TLS13,
            cipher_suite=self._suite_info.suite,
            created_at=self._context.clock(),
            lifetime=ticket.ticket_lifetime,
            server_name=self.server_name,
            alpn_protocol=self.alpn_protocol,
            peer_certificates=self.peer_certificates,
            # Under the policy of the handshake that verified the chain: ours,
            # or the resumed session's.
            verified=bool(self._peer_policy),
            verification_policy=self._peer_policy,
            ticket=ticket.ticket,
            resumption_psk=keyschedule.resumption_psk(
                self._hash(), self.resumption_master_secret, ticket.ticket_nonce
            ),
            ticket_age_add=ticket.ticket_age_add,
            max_early_data=ticket.max_early_data_size or 0,
        )
        self._session = session
        self._io.emit(SessionTicket(session))

    _handlers: ClassVar[dict[State, dict[int, Handler]]] = {
        State.CLIENT_START: {},
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
            HandshakeType.key_update: _TLS13Handshake._handle_key_update,
        },
    }


class TLS13Server(_TLS13Handshake):
    """The server side of a TLS 1.3 handshake."""

    def __init__(self, io: HandshakeIO, context: Context) -> None:
        super().__init__(io, context)
        self.state = State.SERVER_START
        self._first_hello: messages.ClientHello | None = None
        self._retry_group: int | None = None
        self._sent_change_cipher_spec = False
        self._requested_schemes: list[int] = []
        self._client_psk_modes: set[int] = set()
        self._psk: _AcceptedPsk | None = None

    def _verify_client_chain(self, chain: tuple[bytes, ...]) -> list[cx509.Certificate]:
        return tls_x509.verify_client_chain(self._context, chain)

    # -- ClientHello ---------------------------------------------------------

    def _handle_client_hello(self, raw: bytes, body: bytes) -> None:
        self.receive_client_hello(raw, messages.ClientHello.parse(body))

    def receive_client_hello(self, raw: bytes, hello: messages.ClientHello) -> None:
        """Answer a ClientHello (the first comes from the version selector)."""
        check_legacy_version(hello.legacy_version)
        context = self._context
        versions = hello.supported_versions or []
        if TLS13 not in versions or context.max_version < TLS13:
            raise ProtocolVersionError(
                "no common protocol version: this server speaks TLS 1.3 only so far"
                if context.max_version >= TLS13
                else "no common protocol version"
            )
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
        if self._suite_info is not None:
            suite = self._suite_info.suite  # the HelloRetryRequest's choice
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
        self._client_random = hello.random  # a second hello repeats it
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
        self.alpn_protocol = select_alpn(context.alpn_protocols, hello.alpn_protocols)
        if hello.record_size_limit is not None:
            if hello.record_size_limit < _MIN_RECORD_SIZE_LIMIT:
                raise IllegalParameterError("record_size_limit below 64 (RFC 8449 §4)")
            self._io.set_write_limit(
                min(hello.record_size_limit, _MAX_RECORD_SIZE_LIMIT_13) - 1
            )
        self.server_name = hello.server_name
        self._transcript.update(raw)
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
        info = self._suite_info
        assert info is not None
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
            expected = _psk_binder(info, state.secret, self._transcript, truncated)
            if not hmac.compare_digest(offered.binders[index], expected):
                raise DecryptError("PSK binder does not verify (§4.2.11.2)")
            self.resumed = True
            self.peer_certificates, self.peer_verified = client_auth
            return _AcceptedPsk(state, index, with_dhe)
        return None

    def _send_hello_retry_request(
        self, raw: bytes, hello: messages.ClientHello, suite: int, group: NamedGroup
    ) -> None:
        self._choose_suite(suite)
        self._transcript.update(raw)
        self._transcript.restart_with_message_hash()
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
        assert first is not None and self._suite_info is not None
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
        if self._suite_info.suite not in hello.cipher_suites:
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
        info = self._suite_info
        assert info is not None
        shared_secret: bytes | None = None
        key_share: messages.KeyShareEntry | None = None
        if group is not None and client_share is not None:
            server_share, shared_secret = suites.respond_to_key_share(
                NamedGroup(group), client_share, context.random
            )
            self.group = NamedGroup(group)
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
        self._io.set_write_protection(_protection(info, self._server_hs_secret))

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
                alpn_protocol=self.alpn_protocol,
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
                min(context.record_size_limit, _MAX_RECORD_SIZE_LIMIT_13) - 1
            )
        request_certificate = (
            psk is None
            and context.client_certificate is not ClientCertificatePolicy.NONE
        )
        if request_certificate:
            self._requested_schemes = [
                int(s)
                for s in context.signature_schemes
                if s in _TLS13_HANDSHAKE_SCHEMES
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
            self._send_certificate_verify(credential, scheme, _SERVER_CV_CONTEXT)
        self._send(
            messages.Finished(verify_data=self._finished_data(self._server_hs_secret))
        )
        client_secret, server_secret = self._derive_application_secrets()
        self._read_secret = client_secret
        self._write_secret = server_secret
        self._io.set_write_protection(_protection(info, server_secret))
        self._io.set_read_protection(_protection(info, self._client_hs_secret))
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
        info = self._suite_info
        assert info is not None
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
            tls_x509.client_verification_policy(context) if self.peer_verified else b""
        )
        for counter in range(context.tickets_per_handshake):
            nonce = counter.to_bytes(2, "big")  # unique within the connection
            age_add = int.from_bytes(context.random(4), "big")
            state = ServerSessionState(
                version=TLS13,
                cipher_suite=info.suite,
                secret=keyschedule.resumption_psk(
                    info.hash, self.resumption_master_secret, nonce
                ),
                created_at=now,
                lifetime=lifetime,
                server_name=self.server_name,
                alpn_protocol=self.alpn_protocol,
                peer_certificates=self.peer_certificates,
                verified=bool(policy),
                verification_policy=policy,
                ticket_age_add=age_add,
                authenticated_at=authenticated_at,
            )
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
        self._transcript.update(raw)
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
            context_string=_CLIENT_CV_CONTEXT,
            offered=self._requested_schemes,
        )
        self.state = State.SERVER_WAIT_FINISHED

    def _handle_client_finished(self, raw: bytes, body: bytes) -> None:
        assert self._suite_info is not None and self._schedule is not None
        self._check_finished(raw, body, self._client_hs_secret)
        self._io.set_read_protection(_protection(self._suite_info, self._read_secret))
        self.resumption_master_secret = self._schedule.resumption_master_secret(
            self._transcript.digest()
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
        State.CONNECTED: {HandshakeType.key_update: _TLS13Handshake._handle_key_update},
    }


# -- negotiation helpers ---------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class _AcceptedPsk:
    """A ticket the server accepted: its state, its index, its mode."""

    state: ServerSessionState
    index: int
    with_dhe: bool


def _psk_modes(context: Context) -> list[int]:
    """The PSK modes we accept: psk_dhe_ke, and psk_ke only if enabled."""
    modes = [PskKeyExchangeMode.psk_dhe_ke]
    if context.allow_psk_ke:
        modes.append(PskKeyExchangeMode.psk_ke)
    return [int(mode) for mode in modes]


def _psk_binder(
    info: suites.CipherSuiteInfo,
    psk: bytes,
    transcript: keyschedule.Transcript,
    truncated_hello: bytes,
) -> bytes:
    """RFC 8446 §4.2.11.2: Finished over the transcript up to the binders.

    ``transcript`` holds what came before this ClientHello (nothing, or the
    first ClientHello's message_hash and the HelloRetryRequest).
    """
    if transcript.hash is None:
        # A first ClientHello: nothing before it, and the suite (hence the
        # transcript's hash) is not chosen yet.
        digest = hashes.Hash(info.hash())
        digest.update(truncated_hello)
        transcript_hash = digest.finalize()
    else:
        transcript_hash = transcript.digest_with(truncated_hello)
    binder_key = keyschedule.KeySchedule13(info.hash, psk=psk).binder_key(
        external=False
    )
    return keyschedule.finished_verify_data(info.hash, binder_key, transcript_hash)


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
