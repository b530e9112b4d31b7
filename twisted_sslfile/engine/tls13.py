"""TLS 1.3 handshakes (RFC 8446): what client and server share.

Each role is a small state machine (:mod:`~.tls13_client`,
:mod:`~.tls13_server`): a table maps the current state to the handshake
messages it accepts and the method that handles each. A message that the
table does not list for the state is an ``unexpected_message`` (RFC 8446 §4:
"Protocol messages MUST be sent in the order defined"). Every transition
happens in a handler; nothing else changes ``state``.

The state machines do no I/O. They talk to the :class:`Connection` through
the narrow :class:`HandshakeIO` interface: write a handshake message, write
the middlebox-compatibility change_cipher_spec, install record protection,
report completion.

This module holds the states of both roles, the key schedule and signature
steps they share, post-handshake messages (KeyUpdate) and the PSK helpers
the negotiator uses to offer a ticket in the first ClientHello.  It knows
only TLS 1.3: the version is settled before a machine is made
(:mod:`~.negotiation`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, ClassVar

from cryptography.hazmat.primitives import hashes

from ..constants import (
    KeyUpdateRequest,
    ProtocolVersion,
    PskKeyExchangeMode,
    SignatureScheme,
    StateEnum,
)
from ..errors import (
    IllegalParameterError,
    TLSError,
    UnexpectedMessageError,
    UnsupportedExtensionError,
)
from . import keyschedule, messages, suites
from .events import KeyUpdated
from .handshake import (
    Handler,
    HandshakeIO,
    Negotiation,
    VersionHandshake,
    log_secret,
)
from .record import Record, TLS13Protection
from .sessions import Session

if TYPE_CHECKING:
    from cryptography import x509 as cx509

    from ..context import Context, Credential

TLS13 = ProtocolVersion.TLS_1_3
# RFC 8446 §4.4.3: the prefix of the content covered by CertificateVerify.
_SIGNATURE_PAD = b"\x20" * 64
SERVER_CV_CONTEXT = b"TLS 1.3, server CertificateVerify\x00"
CLIENT_CV_CONTEXT = b"TLS 1.3, client CertificateVerify\x00"

#: Signature schemes that may sign handshake messages in TLS 1.3; the
#: rsa_pkcs1_* ones are only for certificates (RFC 8446 §4.2.3).
TLS13_HANDSHAKE_SCHEMES = frozenset(
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


class State(StateEnum):
    """Handshake states of RFC 8446 appendix A, one set per role."""

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


def traffic_protection(info: suites.CipherSuiteInfo, secret: bytes) -> TLS13Protection:
    """Record protection keyed from a traffic secret (RFC 8446 §7.3)."""
    key, iv = keyschedule.traffic_key_iv(
        info.hash, secret, info.key_length, info.iv_length
    )
    return TLS13Protection(info.suite, key, iv)


def _signature_content(context_string: bytes, transcript_hash: bytes) -> bytes:
    return _SIGNATURE_PAD + context_string + transcript_hash


class TLS13Handshake(VersionHandshake):
    """What client and server share: keys, certificates, post-handshake messages.

    The negotiated parameters live in the shared record ``_n``
    (:class:`~.handshake.Negotiation`); the secrets stay here.
    """

    version = TLS13
    state: State
    _handlers: ClassVar[dict[State, dict[int, Handler]]]

    def __init__(self, io: HandshakeIO, context: Context, n: Negotiation) -> None:
        super().__init__(io, context, n)
        self.state: State
        self._schedule: keyschedule.KeySchedule13 | None = None
        self._client_hs_secret = b""
        self._server_hs_secret = b""
        self._read_secret = b""
        self._write_secret = b""
        self._exporter_secret = b""
        self.resumption_master_secret = b""

    # -- queries ---------------------------------------------------------

    @property
    def _reported(self) -> Negotiation:
        """TLS 1.3 has one handshake: what it settled so far is reported."""
        return self._n

    @property
    def complete(self) -> bool:
        return self.state is State.CONNECTED

    def _export(self, label: bytes, context: bytes | None, length: int) -> bytes:
        """RFC 8446 §7.5 exporter."""
        return keyschedule.exporter(
            self._n.hash, self._exporter_secret, label, context, length
        )

    @property
    def _info(self) -> suites.CipherSuiteInfo:
        """The cipher suite, once chosen."""
        assert self._n.suite_info is not None
        return self._n.suite_info

    # -- dispatch (HandshakeMachine.handle does the table lookup) ---------

    def handle_change_cipher_spec(self, record: Record) -> None:
        """RFC 8446 §5: drop the unprotected compatibility CCS, if it is in
        its window (after the first ClientHello, before the peer's Finished);
        any other CCS is an unexpected_message."""
        if record.protected or self.state in (State.SERVER_START, State.CONNECTED):
            raise UnexpectedMessageError("change_cipher_spec not allowed here")

    # -- helpers shared by both roles ---------------------------------------

    def _finished_data(self, base_secret: bytes) -> bytes:
        return keyschedule.finished_verify_data(
            self._n.hash, base_secret, self._n.transcript.digest()
        )

    def _derive_handshake_secrets(
        self, psk: bytes | None, shared_secret: bytes | None
    ) -> None:
        """Early and handshake secrets, then both handshake traffic secrets
        over ClientHello..ServerHello (RFC 8446 §7.1)."""
        schedule = self._schedule = keyschedule.KeySchedule13(self._n.hash, psk=psk)
        schedule.derive_handshake_secret(shared_secret)
        transcript_hash = self._n.transcript.digest()
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
            log_secret(self._context, label, self._n.client_random, secret)

    def _derive_application_secrets(self) -> tuple[bytes, bytes]:
        """Master secret and the first application secrets (RFC 8446 §7.1).

        Called with the transcript through the server Finished.
        """
        assert self._schedule is not None
        self._schedule.derive_master_secret()
        transcript_hash = self._n.transcript.digest()
        client = self._schedule.client_application_traffic_secret_0(transcript_hash)
        server = self._schedule.server_application_traffic_secret_0(transcript_hash)
        self._exporter_secret = self._schedule.exporter_master_secret(transcript_hash)
        for label, secret in (
            ("CLIENT_TRAFFIC_SECRET_0", client),
            ("SERVER_TRAFFIC_SECRET_0", server),
            ("EXPORTER_SECRET", self._exporter_secret),
        ):
            log_secret(self._context, label, self._n.client_random, secret)
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
        self._accept_peer_chain(
            tuple(entry.cert_data for entry in certificate.entries), verify
        )
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
        content = _signature_content(context_string, self._n.transcript.digest())
        suites.verify(
            SignatureScheme(verify.algorithm),
            self._n.peer_public_key,
            content,
            verify.signature,
            rsassa_pss=self._n.peer_rsassa_pss,
        )
        self._n.peer_signature_scheme = SignatureScheme(verify.algorithm)
        self._n.transcript.update(raw)

    def _send_certificate_verify(
        self, credential: Credential, scheme: SignatureScheme, context_string: bytes
    ) -> None:
        content = _signature_content(context_string, self._n.transcript.digest())
        signature = suites.sign(scheme, credential.private_key, content)
        self._send(messages.CertificateVerify(algorithm=scheme, signature=signature))

    # -- post-handshake messages (RFC 8446 §4.6) ----------------------------

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
        self._write_secret = keyschedule.next_application_traffic_secret(
            self._n.hash, self._write_secret
        )
        self._io.set_write_protection(
            traffic_protection(self._info, self._write_secret)
        )

    def _handle_key_update(self, raw: bytes, body: bytes) -> None:
        update = messages.KeyUpdate.parse(body)
        self._read_secret = keyschedule.next_application_traffic_secret(
            self._n.hash, self._read_secret
        )
        self._io.set_read_protection(traffic_protection(self._info, self._read_secret))
        self._io.emit(KeyUpdated("receive"))
        if update.request_update == KeyUpdateRequest.update_requested:
            # §4.6.3: answer before sending more application data; never with
            # update_requested, so two peers cannot ping-pong forever.
            self.send_key_update(request_peer=False)
            self._io.emit(KeyUpdated("send"))


# -- PSK helpers (RFC 8446 §4.2.11) --------------------------------------------


def psk_modes(context: Context) -> list[int]:
    """The PSK modes we accept: psk_dhe_ke, and psk_ke only if enabled."""
    modes = [PskKeyExchangeMode.psk_dhe_ke]
    if context.allow_psk_ke:
        modes.append(PskKeyExchangeMode.psk_ke)
    return [int(mode) for mode in modes]


def offer_psk(
    hello: messages.ClientHello,
    session: Session,
    transcript: keyschedule.Transcript,
    now: float,
) -> messages.ClientHello:
    """``hello`` offering ``session``'s ticket, binder included (§4.2.11).

    The binder is a Finished-style HMAC over the ClientHello up to the
    binder list, so the hello is encoded once with a placeholder binder of
    the right length, then truncated and hashed.  ``transcript`` holds what
    came before this ClientHello (nothing, or the first one's message_hash
    and the HelloRetryRequest).
    """
    info = suites.CIPHER_SUITES[session.cipher_suite]
    identity = messages.PskIdentity(
        identity=session.ticket,
        obfuscated_ticket_age=session.obfuscated_ticket_age(now),
    )
    placeholder = dataclasses.replace(
        hello,
        pre_shared_key=messages.OfferedPsks(
            identities=[identity], binders=[bytes(info.hash_length)]
        ),
    )
    raw = messages.encode_handshake(placeholder)
    truncated = raw[: len(raw) - placeholder.binders_length()]
    binder = psk_binder(info, session.resumption_psk, transcript, truncated)
    return dataclasses.replace(
        hello,
        pre_shared_key=messages.OfferedPsks(identities=[identity], binders=[binder]),
    )


def psk_binder(
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
