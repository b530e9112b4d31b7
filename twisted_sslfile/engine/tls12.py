"""TLS 1.2 client and server handshakes (RFC 5246), with NPN and renegotiation.

Only what the security stance allows: ECDHE key exchange (RFC 8422) signed
with ECDSA, EdDSA or RSA, AEAD record protection (RFC 5289, RFC 7905), the
extended master secret (RFC 7627) and secure renegotiation (RFC 5746).

The shape follows :mod:`tls13`: a ``State`` enum, a table per role mapping
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
  Everything negotiated per handshake lives in a :class:`_Negotiation`;
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
import enum
import hmac
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

from cryptography import x509 as cx509

from .. import x509 as tls_x509
from ..constants import (
    TLS13_CIPHER_SUITES,
    AlertDescription,
    AlertLevel,
    CipherSuite,
    ClientCertificatePolicy,
    HandshakeType,
    NamedGroup,
    ProtocolVersion,
    SignatureScheme,
)
from ..errors import (
    CertificateError,
    DecodeError,
    HandshakeFailureError,
    IllegalParameterError,
    ProtocolVersionError,
    TLSError,
    UnexpectedMessageError,
    UnsupportedExtensionError,
)
from . import keyschedule, messages, suites
from .events import HandshakeCompleted, SessionTicket
from .handshake import (
    Handler,
    HandshakeIO,
    HandshakeMachine,
    by_certificate_authorities,
    first_common,
    has_rsassa_pss_key,
    is_ip_address,
    log_secret,
    resumed_client_authentication,
    select_alpn,
)
from .record import Record, TLS12Protection
from .sessions import ServerSessionState, Session

if TYPE_CHECKING:
    from ..context import Context, Credential

TLS12 = ProtocolVersion.TLS_1_2
_SCSV = CipherSuite.TLS_EMPTY_RENEGOTIATION_INFO_SCSV
_VERIFY_DATA_LENGTH = 12  # RFC 5246 §7.4.9 for every suite we implement
# RFC 5246 §7.4.4 ClientCertificateType values (RFC 8422 §5.5: ecdsa_sign
# covers EdDSA keys too).
_RSA_SIGN = 1
_ECDSA_SIGN = 64
#: Groups usable in TLS 1.2 ECDHE (the hybrid KEM is TLS 1.3 only).
_TLS12_GROUPS = frozenset(
    {NamedGroup.x25519, NamedGroup.secp256r1, NamedGroup.secp384r1}
)


class State(enum.Enum):
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
class _Negotiation:
    """Everything one handshake (initial or renegotiation) settles.

    Kept apart from the handshake object so that a renegotiation builds a
    fresh one while the connection still reports -- and exports keys from --
    the last completed one.  The secrets (master secret, Finished values,
    ticket) stay out of ``repr()``.
    """

    transcript: keyschedule.Transcript
    client_hello: messages.ClientHello | None = None
    client_random: bytes = b""
    server_random: bytes = b""
    suite_info: suites.CipherSuiteInfo | None = None
    group: NamedGroup | None = None
    key_share: suites.KeyShare | None = None
    master_secret: bytes = dataclasses.field(default=b"", repr=False)
    extended_master_secret: bool = False
    session_id: bytes = b""
    resumed: bool = False
    session: Session | None = None  # client: resumed, or to resume later
    server_name: str | None = None
    alpn_protocol: bytes | None = None
    #: Server: NPN advertised (expect NextProtocol). Client: the server's list.
    npn_protocols: list[bytes] | None = None
    next_protocol: bytes | None = None
    peer_certificates: tuple[bytes, ...] = ()
    peer_verified: bool = False
    peer_public_key: object | None = None
    peer_rsassa_pss: bool = False
    #: The scheme the peer signed with: ServerKeyExchange (a client's view),
    #: CertificateVerify (a server's); None when it signed nothing.
    peer_signature_scheme: SignatureScheme | None = None
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

    @property
    def hash(self) -> Any:
        assert self.suite_info is not None
        return self.suite_info.hash


class _TLS12Handshake(HandshakeMachine, abc.ABC):
    """What client and server share: keys, Finished, CCS, queries."""

    state: State
    _handlers: ClassVar[dict[State, dict[int, Handler]]]
    _is_client: ClassVar[bool]

    def __init__(self, io: HandshakeIO, context: Context) -> None:
        self._io = io
        self._context = context
        self.state: State
        #: The handshake in progress (the last one once it completed).
        self._n = _Negotiation(transcript=keyschedule.Transcript())
        #: The last completed handshake: what the connection reports.
        self._current: _Negotiation | None = None
        self.server_name: str | None = None
        #: A session this handshake made resumable (reported once, client).
        self._new_session: Session | None = None
        self._session: Session | None = None

    # -- queries ---------------------------------------------------------

    @property
    def version(self) -> ProtocolVersion:
        return TLS12

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
    def cipher_suite(self) -> CipherSuite | None:
        n = self._current
        return n.suite_info.suite if n and n.suite_info else None

    @property
    def group(self) -> NamedGroup | None:
        return self._current.group if self._current else None

    @property
    def alpn_protocol(self) -> bytes | None:
        return self._current.alpn_protocol if self._current else None

    @property
    def next_protocol(self) -> bytes | None:
        return self._current.next_protocol if self._current else None

    @property
    def peer_certificates(self) -> tuple[bytes, ...]:
        return self._current.peer_certificates if self._current else ()

    @property
    def peer_verified(self) -> bool:
        return self._current.peer_verified if self._current else False

    @property
    def extended_master_secret(self) -> bool:
        return self._current.extended_master_secret if self._current else False

    @property
    def resumed(self) -> bool:
        return self._current.resumed if self._current else False

    @property
    def session(self) -> Session | None:
        """Client: the session to resume this connection later (None: none)."""
        return self._session

    def export_keying_material(
        self, label: bytes, context: bytes | None, length: int
    ) -> bytes:
        """RFC 5705 exporter over the last completed handshake.

        ``context=None`` means "no context", which differs from ``b""`` in
        TLS 1.2 (RFC 5705 §4).
        """
        n = self._current
        if n is None:
            raise TLSError("keying material is available after the handshake")
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

    def _send(self, message: messages.HandshakeMessage) -> bytes:
        raw = messages.encode_handshake(message)
        self._n.transcript.update(raw)
        self._io.write_handshake(raw)
        return raw

    def _choose_suite(self, suite: int) -> suites.CipherSuiteInfo:
        info = suites.CIPHER_SUITES[CipherSuite(suite)]
        self._n.suite_info = info
        self._n.transcript.set_hash(info.hash)
        return info

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

    def _check_finished(self, raw: bytes, body: bytes) -> None:
        """The peer's Finished (RFC 5246 §7.4.9); decrypt_error if wrong."""
        finished = messages.Finished.parse(body)
        if len(finished.verify_data) != _VERIFY_DATA_LENGTH:
            raise DecodeError(
                f"Finished carries {len(finished.verify_data)} bytes, "
                f"expected {_VERIFY_DATA_LENGTH}"
            )
        expected = self._verify_data(client=not self._is_client)
        keyschedule.check_verify_data(expected, finished.verify_data)
        if self._is_client:
            self._n.server_verify_data = expected
        else:
            self._n.client_verify_data = expected
        self._n.transcript.update(raw)

    def _receive_certificate(
        self,
        body: bytes,
        verify: Callable[[tuple[bytes, ...]], list[cx509.Certificate]],
    ) -> bool:
        """Parse and check the peer's Certificate12. False when it is empty."""
        certificate = messages.Certificate12.parse(body)
        if not certificate.certificates:
            return False
        chain = tuple(certificate.certificates)
        # x509 counts the chain against max_certificate_chain_length, parses
        # it (every malformation is a bad_certificate) and, unless the
        # context skips verification, verifies it: leaf first either way.
        try:
            leaf = verify(chain)[0]
        except TLSError as exc:
            exc.peer_certificates = chain  # for a report of what was refused
            raise
        n = self._n
        n.peer_verified = self._context.verify
        n.peer_public_key = leaf.public_key()
        n.peer_rsassa_pss = has_rsassa_pss_key(leaf)
        n.peer_certificates = chain
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

    def _completed_event(self) -> HandshakeCompleted:
        n = self._n
        assert n.suite_info is not None
        return HandshakeCompleted(
            version=TLS12,
            cipher_suite=n.suite_info.suite,
            group=n.group,
            alpn_protocol=n.alpn_protocol,
            next_protocol=n.next_protocol,
            server_name=self.server_name,
            peer_certificates=n.peer_certificates,
            verified=n.peer_verified,
            resumed=n.resumed,
            peer_signature_scheme=n.peer_signature_scheme,
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

    def _new_negotiation(self) -> _Negotiation:
        """A fresh per-handshake state for a renegotiation."""
        n = _Negotiation(transcript=keyschedule.Transcript())
        self._n = n
        return n

    def _refuse_renegotiation(self, why: str) -> None:
        """RFC 5746 §4.2 / RFC 5246 §7.2.2: a warning, and the connection goes on."""
        del why  # kept in the call sites for the reader
        self._io.write_alert(AlertLevel.warning, AlertDescription.no_renegotiation)


class TLS12Client(_TLS12Handshake):
    """The client side of a TLS 1.2 handshake.

    Created by the TLS 1.3 client when the server picks TLS 1.2: it takes
    over our ClientHello, the transcript holding it (hash not yet chosen)
    and the set of extensions we offered, then processes the ServerHello.
    """

    _is_client = True

    def __init__(
        self,
        io: HandshakeIO,
        context: Context,
        *,
        server_name: str | None,
        client_hello: messages.ClientHello,
        transcript: keyschedule.Transcript,
        offered_extensions: set[int],
        session: Session | None = None,
    ) -> None:
        super().__init__(io, context)
        self.state = State.CLIENT_WAIT_SH
        self.server_name = server_name
        # RFC 5246 §7.4.8: a client certificate signs the raw messages, so
        # keep them when we might be asked for one.
        if context.credentials:
            transcript.keep_raw = True
        self._n = _Negotiation(
            transcript=transcript,
            client_hello=client_hello,
            client_random=client_hello.random,
        )
        self._offered = set(offered_extensions)
        #: Our first ClientHello asked for RFC 5077 tickets, so renegotiations
        #: ask again (see _build_renegotiation_hello).
        self._offer_tickets = client_hello.session_ticket is not None
        # A TLS 1.3 session cannot resume a TLS 1.2 connection.
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
                if s not in TLS13_CIPHER_SUITES and s != _SCSV
            ],
            server_name=self.server_name if send_sni else None,
            supported_groups=[int(g) for g in context.groups if g in _TLS12_GROUPS],
            signature_algorithms=[int(s) for s in context.signature_schemes],
            extended_master_secret=True,
            renegotiation_info=client_verify_data,
            ec_point_formats=b"\x00",
            session_ticket=b"" if self._offer_tickets else None,
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
        """A renegotiation's ServerHello (the first one comes through tls13)."""
        hello = messages.ServerHello.parse(body)
        if hello.supported_versions is not None or hello.legacy_version != TLS12:
            raise ProtocolVersionError("a renegotiation must stay at TLS 1.2")
        self.receive_server_hello(raw, hello)

    def receive_server_hello(self, raw: bytes, hello: messages.ServerHello) -> None:
        """Process the TLS 1.2 ServerHello handed over by the TLS 1.3 client."""
        if self.state is not State.CLIENT_WAIT_SH:
            raise UnexpectedMessageError("ServerHello not expected now")
        n = self._n
        sent = n.client_hello
        assert sent is not None
        if hello.legacy_version != TLS12:
            raise ProtocolVersionError(
                f"server chose version {hello.legacy_version:#06x}, not TLS 1.2"
            )
        if hello.is_hello_retry_request:
            raise IllegalParameterError("HelloRetryRequest in TLS 1.2")
        if hello.supported_versions is not None:
            # RFC 8446 §4.2.1: selected_version prior to TLS 1.3.
            raise IllegalParameterError("TLS 1.2 ServerHello with supported_versions")
        if (
            sent.supported_versions
            and ProtocolVersion.TLS_1_3 in sent.supported_versions
            and hello.random[-8:]
            in (messages.DOWNGRADE_TLS12, messages.DOWNGRADE_TLS11)
        ):
            # RFC 8446 §4.1.3 (also checked by the TLS 1.3 client).
            raise IllegalParameterError("downgrade sentinel in ServerHello.random")
        suite = hello.cipher_suite
        if (
            suite not in sent.cipher_suites
            or suite in TLS13_CIPHER_SUITES
            or suite == _SCSV
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
        # verifying client offers (TLS13Client._may_offer), never for one
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

    def _verify_server_chain(self, chain: tuple[bytes, ...]) -> list[cx509.Certificate]:
        return tls_x509.verify_server_chain(self._context, chain, self.server_name)

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
            wanted = _ECDSA_SIGN if kind == "ECDHE_ECDSA" else _RSA_SIGN
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
        self._check_finished(raw, body)
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
            assert n.session is not None  # resumed: the session offered
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
        # The first ServerHello comes through the TLS 1.3 client, whose
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


class TLS12Server(_TLS12Handshake):
    """The server side of a TLS 1.2 handshake.

    The Connection's version selector parses the first ClientHello and hands
    it to :meth:`receive_client_hello`; renegotiation ClientHellos arrive
    through :meth:`handle` in the CONNECTED state.
    """

    _is_client = False

    def __init__(
        self, io: HandshakeIO, context: Context, *, downgrade_sentinel: bool = False
    ) -> None:
        super().__init__(io, context)
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
        n.transcript.update(raw)
        if not renegotiation and self._try_resume(hello):
            return
        self._full_handshake(hello)

    def _check_renegotiation_info(self, hello: messages.ClientHello) -> None:
        """RFC 5746 §3.6 (initial) and §3.7 (renegotiation)."""
        n = self._n
        current = self._current
        scsv = _SCSV in hello.cipher_suites
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
                    certificate_types=bytes((_ECDSA_SIGN, _RSA_SIGN)),
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
        ours = [g for g in self._context.groups if g in _TLS12_GROUPS]
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

    def _verify_client_chain(self, chain: tuple[bytes, ...]) -> list[cx509.Certificate]:
        return tls_x509.verify_client_chain(self._context, chain)

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
        self._check_finished(raw, body)
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
