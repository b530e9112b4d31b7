"""TLS 1.2 handshakes (RFC 5246), with NPN and renegotiation: what client
and server share (the roles are :mod:`~.tls12_client` and
:mod:`~.tls12_server`).

Only what the security stance allows: ECDHE key exchange (RFC 8422) signed
with ECDSA, EdDSA or RSA, AEAD record protection (RFC 5289, RFC 7905), the
extended master secret (RFC 7627) and secure renegotiation (RFC 5746).

The shape follows :mod:`~.tls13`: a ``State`` enum, a table per role mapping
each state to the handshake messages it accepts and their handler, and all
I/O through the narrow :class:`~twisted_sslfile.engine.handshake.HandshakeIO`.
What TLS 1.2 adds:

* **ChangeCipherSpec is a real message.**  The Connection hands every CCS
  record to :meth:`handle_change_cipher_spec`; it is valid only in the
  ``*_WAIT_CCS`` states, switches to the pending read keys, and the next
  handshake message must be Finished (or NextProtocol, NPN's one exception).
* **NPN** (draft-agl-tls-nextprotoneg-04): the server lists its protocols in
  ServerHello; the client answers with an encrypted NextProtocol message
  between its ChangeCipherSpec and Finished.  Not used when ALPN settled the
  protocol, and never in a renegotiation (the draft forbids it there).
* **Renegotiation** (RFC 5746 only): a new handshake under the current keys.
  Everything negotiated per handshake lives in a :class:`TLS12Negotiation`;
  what the connection reports (suite, peer certificates, exporter) comes from
  the last *completed* one, so application data and queries keep working
  while a renegotiation runs.
* **Resumption** by session ID or RFC 5077 ticket, only for sessions with an
  extended master secret (RFC 7627 §5.3): without it an attacker who
  synchronised two sessions could resume one as the other.
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, ClassVar

from cryptography import x509 as cx509

from ..constants import (
    MAX_PLAINTEXT,
    AlertDescription,
    AlertLevel,
    CipherSuite,
    NamedGroup,
    ProtocolVersion,
    StateEnum,
)
from ..errors import (
    CertificateError,
    TLSError,
    UnexpectedMessageError,
)
from . import keyschedule, messages, suites
from .events import SessionTicket
from .handshake import (
    Handler,
    HandshakeIO,
    Negotiation,
    VersionHandshake,
    log_secret,
)
from .record import Record, TLS12Protection
from .sessions import Session

if TYPE_CHECKING:
    from ..context import Context

TLS12 = ProtocolVersion.TLS_1_2
SCSV = CipherSuite.TLS_EMPTY_RENEGOTIATION_INFO_SCSV
# RFC 5246 §7.4.4 ClientCertificateType values (RFC 8422 §5.5: ecdsa_sign
# covers EdDSA keys too).
RSA_SIGN = 1
ECDSA_SIGN = 64
#: Groups usable in TLS 1.2 ECDHE (the hybrid KEM is TLS 1.3 only).
TLS12_GROUPS = frozenset(
    {NamedGroup.x25519, NamedGroup.secp256r1, NamedGroup.secp384r1}
)


class State(StateEnum):
    """Handshake states of RFC 5246 §7.3 (full and abbreviated), per role."""

    CLIENT_WAIT_SH = "client wait ServerHello"
    CLIENT_WAIT_CERT = "client wait Certificate"
    CLIENT_WAIT_SKE = "client wait ServerKeyExchange"
    CLIENT_WAIT_CR_OR_DONE = "client wait CertificateRequest or ServerHelloDone"
    CLIENT_WAIT_DONE = "client wait ServerHelloDone"
    CLIENT_WAIT_TICKET = "client wait NewSessionTicket"
    CLIENT_WAIT_CCS = "client wait ChangeCipherSpec"
    CLIENT_WAIT_FINISHED = "client wait Finished"
    SERVER_WAIT_CH = "server wait ClientHello"
    SERVER_WAIT_CERT = "server wait client Certificate"
    SERVER_WAIT_CKE = "server wait ClientKeyExchange"
    SERVER_WAIT_CV = "server wait client CertificateVerify"
    SERVER_WAIT_CCS = "server wait ChangeCipherSpec"
    SERVER_WAIT_NEXT_PROTOCOL = "server wait NextProtocol"
    SERVER_WAIT_FINISHED = "server wait client Finished"
    CONNECTED = "connected"


@dataclasses.dataclass(eq=False)
class TLS12Negotiation(Negotiation):
    """Everything one handshake (initial or renegotiation) settles.

    The shared record (:class:`~.handshake.Negotiation`) plus what TLS 1.2
    adds.  Kept apart from the handshake object so that a renegotiation
    builds a fresh one while the connection still reports -- and exports
    keys from -- the last completed one.  The secrets (master secret,
    Finished values, ticket) stay out of ``repr()``.
    """

    client_hello: messages.ClientHello | None = None
    server_random: bytes = b""
    key_share: suites.KeyShare | None = None
    master_secret: bytes = dataclasses.field(default=b"", repr=False)
    extended_master_secret: bool = False
    session_id: bytes = b""
    #: Server: NPN advertised (expect NextProtocol). Client: the server's list.
    npn_protocols: list[bytes] | None = None
    #: The server announced (client) / will send (server) a NewSessionTicket.
    ticket_expected: bool = False
    ticket: bytes | None = dataclasses.field(default=None, repr=False)
    ticket_lifetime_hint: int = 0
    certificate_request: messages.CertificateRequest12 | None = None
    requested_schemes: list[int] = dataclasses.field(default_factory=list)
    pending_read: TLS12Protection | None = None
    pending_write: TLS12Protection | None = None
    client_verify_data: bytes = dataclasses.field(default=b"", repr=False)
    server_verify_data: bytes = dataclasses.field(default=b"", repr=False)
    #: The peer signalled RFC 5746 support in this handshake.
    secure_renegotiation: bool = False
    #: RFC 8449: plaintext bytes a record may carry under this handshake's
    #: keys, ours toward the peer (its limit) and the peer's toward us (our
    #: limit, once both sides sent the extension).  2^14 when not negotiated.
    write_limit: int = MAX_PLAINTEXT
    read_limit: int = MAX_PLAINTEXT
    #: Server: the record_size_limit our ServerHello answers with, if any.
    record_size_limit: int | None = None


class TLS12Handshake(VersionHandshake):
    """What client and server share: keys, Finished, CCS, queries."""

    version = TLS12
    state: State
    _handlers: ClassVar[dict[State, dict[int, Handler]]]
    #: The handshake in progress (the last one once it completed).
    _n: TLS12Negotiation

    def __init__(self, io: HandshakeIO, context: Context, n: TLS12Negotiation) -> None:
        super().__init__(io, context, n)
        self.state: State
        #: The last completed handshake: what the connection reports.
        self._current: TLS12Negotiation | None = None
        #: A session this handshake made resumable (reported once, client).
        self._new_session: Session | None = None

    # -- queries ---------------------------------------------------------

    @property
    def _reported(self) -> TLS12Negotiation | None:
        """The last completed handshake: a renegotiation under way changes
        nothing the connection reports until it completes."""
        return self._current

    @property
    def complete(self) -> bool:
        """A handshake has completed (renegotiations may follow)."""
        return self._current is not None

    @property
    def renegotiating(self) -> bool:
        return self._current is not None and self.state is not State.CONNECTED

    @property
    def can_renegotiate(self) -> bool:
        """RFC 5746: only with a peer that proved it supports it."""
        return (
            self._current is not None
            and self._current.secure_renegotiation
            and self.state is State.CONNECTED
        )

    @property
    def extended_master_secret(self) -> bool:
        return self._current.extended_master_secret if self._current else False

    def _export(self, label: bytes, context: bytes | None, length: int) -> bytes:
        """RFC 5705 exporter over the last completed handshake.

        ``context=None`` means "no context", which differs from ``b""`` in
        TLS 1.2 (RFC 5705 §4).
        """
        n = self._current
        assert n is not None
        try:
            return keyschedule.exporter_12(
                n.hash,
                n.master_secret,
                n.client_random,
                n.server_random,
                label,
                context,
                length,
            )
        except ValueError as exc:
            raise TLSError(f"exporter: {exc}") from None

    def send_key_update(self, request_peer: bool) -> None:
        raise TLSError("there is no KeyUpdate in TLS 1.2; use renegotiate()")

    # -- dispatch --------------------------------------------------------

    def handle_change_cipher_spec(self, record: Record) -> None:
        """RFC 5246 §7.1: switch to the pending read keys, where expected.

        The Connection has checked the payload is the single byte 0x01.
        """
        after = self._state_after_ccs()
        if after is None or self._n.pending_read is None:
            raise UnexpectedMessageError(
                f"change_cipher_spec not expected in state {self.state.value!r}"
            )
        if bytes(record.payload) != b"\x01":
            raise UnexpectedMessageError("change_cipher_spec payload must be 0x01")
        self._io.set_read_protection(self._n.pending_read)
        # RFC 8449 §4: records are held to the limits of the handshake that
        # made their keys, so a renegotiated limit starts with its keys.
        self._io.set_read_limit(self._n.read_limit)
        self._n.pending_read = None
        self.state = after

    @abc.abstractmethod
    def _state_after_ccs(self) -> State | None:
        """The state a ChangeCipherSpec leads to; None where it is unexpected."""

    def handle_warning_alert(self, description: int) -> None:
        """A TLS 1.2 warning from the peer (the Connection reports it too).

        Only no_renegotiation matters here: the peer declined the
        renegotiation we asked for, and the connection goes on as it was
        (RFC 5746 §4.2, RFC 5246 §7.2.2).
        """
        if description != AlertDescription.no_renegotiation:
            return
        self._renegotiation_refused()

    @abc.abstractmethod
    def _renegotiation_refused(self) -> None:
        """The peer declined our renegotiation: go back to CONNECTED."""

    # -- helpers -----------------------------------------------------------

    def _derive_keys(self) -> None:
        """Key block (RFC 5246 §6.3) into the pending read and write states."""
        n = self._n
        info = n.suite_info
        assert info is not None
        # The one TLS 1.2 key log line, for full and resumed handshakes alike.
        log_secret(self._context, "CLIENT_RANDOM", n.client_random, n.master_secret)
        client_key, server_key, client_iv, server_iv = keyschedule.key_block(
            info.hash,
            n.master_secret,
            n.client_random,
            n.server_random,
            info.key_length,
            info.iv_length,
        )
        client = TLS12Protection(info.suite, client_key, client_iv)
        server = TLS12Protection(info.suite, server_key, server_iv)
        if self._is_client:
            n.pending_write, n.pending_read = client, server
        else:
            n.pending_write, n.pending_read = server, client

    def _compute_master_secret(self, pre_master_secret: bytes) -> None:
        """RFC 7627 §4 when both sides agreed on it, else RFC 5246 §8.1.

        Called with the transcript through ClientKeyExchange: that is the
        session_hash of RFC 7627 §3.
        """
        n = self._n
        if n.extended_master_secret:
            n.master_secret = keyschedule.extended_master_secret(
                n.hash, pre_master_secret, n.transcript.digest()
            )
        else:
            n.master_secret = keyschedule.master_secret(
                n.hash, pre_master_secret, n.client_random, n.server_random
            )

    def _send_change_cipher_spec(self) -> None:
        n = self._n
        assert n.pending_write is not None
        # Sealed under the current keys in a renegotiation (the record layer
        # protects TLS 1.2 CCS records like any other), plaintext at first.
        self._io.write_change_cipher_spec()
        self._io.set_write_protection(n.pending_write)
        # RFC 8449 §4: the limit of the handshake that made these keys.
        self._io.set_write_limit(n.write_limit)
        n.pending_write = None

    def _verify_data(self, *, client: bool) -> bytes:
        n = self._n
        return keyschedule.verify_data_12(
            n.hash, n.master_secret, n.transcript.digest(), client=client
        )

    def _send_finished(self) -> None:
        data = self._verify_data(client=self._is_client)
        if self._is_client:
            self._n.client_verify_data = data
        else:
            self._n.server_verify_data = data
        self._send(messages.Finished(verify_data=data))

    def _receive_finished(self, raw: bytes, body: bytes) -> None:
        """The peer's Finished (RFC 5246 §7.4.9), kept for RFC 5746."""
        expected = self._verify_data(client=not self._is_client)
        self._check_finished(raw, body, expected)
        if self._is_client:
            self._n.server_verify_data = expected
        else:
            self._n.client_verify_data = expected

    def _receive_certificate(
        self,
        body: bytes,
        verify: Callable[[tuple[bytes, ...]], list[cx509.Certificate]],
    ) -> bool:
        """Parse and check the peer's Certificate12. False when it is empty."""
        certificate = messages.Certificate12.parse(body)
        if not certificate.certificates:
            return False
        self._accept_peer_chain(tuple(certificate.certificates), verify)
        return True

    def _check_peer_unchanged(self) -> None:
        """A renegotiation may not swap the peer's identity.

        RFC 7627 §1 and the triple-handshake attack: refusing a changed leaf
        certificate keeps the identity established by the first handshake.
        """
        current = self._current
        n = self._n
        if (
            current is not None
            and current.peer_certificates
            and n.peer_certificates[:1] != current.peer_certificates[:1]
        ):
            raise CertificateError(
                "peer presented a different certificate in renegotiation"
            )

    def _finish(self) -> None:
        """The handshake is over: publish it and report completion."""
        n = self._n
        previous = self._current
        if previous is not None:
            # NPN and (as OpenSSL does) ALPN are settled by the first
            # handshake of a connection; renegotiations do not repeat them.
            n.alpn_protocol = previous.alpn_protocol
            n.next_protocol = previous.next_protocol
        n.key_share = None
        n.client_hello = None
        n.transcript = keyschedule.Transcript()  # drop raw messages we kept
        self._current = n
        self.state = State.CONNECTED
        self._io.handshake_completed(self._completed_event())
        new_session, self._new_session = self._new_session, None
        if new_session is not None:
            self._io.emit(SessionTicket(new_session))

    def _new_negotiation(self) -> TLS12Negotiation:
        """A fresh per-handshake state for a renegotiation."""
        n = TLS12Negotiation()
        self._n = n
        return n

    def _refuse_renegotiation(self, why: str) -> None:
        """RFC 5746 §4.2 / RFC 5246 §7.2.2: a warning, and the connection goes on."""
        del why  # kept in the call sites for the reader
        self._io.write_alert(AlertLevel.warning, AlertDescription.no_renegotiation)
