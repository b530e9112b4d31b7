"""The one object the adapters use: a sans-I/O TLS connection.

``Connection`` owns the record layer, reassembles handshake messages, hands
them to the handshake state machine of the negotiated version, and turns
records into :mod:`events <twisted_sslfile.engine.events>`. It never touches
a socket, a reactor, a clock or a random source of its own.

Error contract: a fatal problem queues the right alert into
:meth:`data_to_send` and raises the :class:`~twisted_sslfile.errors.TLSError`
that carries it. After that the connection is dead: the adapter flushes what
is queued and closes the transport.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, ClassVar

from ..constants import (
    AlertDescription,
    AlertLevel,
    CipherSuite,
    ClientCertificatePolicy,
    ContentType,
    HandshakeType,
    NamedGroup,
    ProtocolVersion,
    SignatureScheme,
    StateEnum,
)
from ..errors import (
    ConnectionClosedError,
    DecodeError,
    InternalError,
    RemoteAlertError,
    TLSError,
    UnexpectedMessageError,
)
from .certnames import canonical_server_name
from .events import (
    AlertReceived,
    ApplicationData,
    CloseNotify,
    Event,
    HandshakeCompleted,
)
from .messages import HandshakeReassembler
from .negotiation import ClientNegotiator, ServerNegotiator
from .record import Record, RecordLayer, RecordProtection
from .ticketkeys import MAX_ISSUED_TICKET_LENGTH
from .tls12_client import TLS12Client
from .tls12_server import TLS12Server
from .tls13_client import TLS13Client
from .tls13_server import TLS13Server

if TYPE_CHECKING:
    from ..context import Context
    from .sessions import Session

#: Empty application-data records or warning alerts accepted in a row.
_MAX_IDLE_RECORDS = 32
#: TLS 1.3 KeyUpdates accepted in a row without application data between.
#: Each costs a key derivation (and an answer when update_requested); RFC
#: 8446 §4.6.3 sets no bound, so a peer could keep us busy forever.  32 is
#: BoringSSL's number (kMaxKeyUpdates), refused with unexpected_message.
_MAX_KEY_UPDATES = 32

#: The most a server holds of a ClientHello, or of any other message from
#: its client but a Certificate it asked for (those keep the Context's
#: max_handshake_message_size).  A connection that has not finished its
#: handshake has proven nothing and costs its peer one TCP connection, so it
#: may pin only this much until the handshake timeout: 16 KiB for the hello
#: itself, post-quantum key shares included (BoringSSL's bound for the whole
#: message; real hellos are 0.3 to 2.5 KiB), plus 16 KiB for a session ticket
#: it returns (we issue none larger, ticketkeys.MAX_ISSUED_TICKET_LENGTH).
MAX_CLIENT_HELLO_SIZE = 2**14 + MAX_ISSUED_TICKET_LENGTH

TLS_1_2 = ProtocolVersion.TLS_1_2
TLS_1_3 = ProtocolVersion.TLS_1_3
_APPLICATION_DATA = ContentType.application_data.value


class ConnectionState(StateEnum):
    """Where a connection is in its life."""

    HANDSHAKING = "handshaking"
    CONNECTED = "connected"  #: handshake done; data may flow
    CLOSED = "closed"  #: close_notify sent and received
    FAILED = "failed"  #: a fatal alert was sent or received


def _server_reassembler(context: Context) -> HandshakeReassembler:
    """A server's bounds on what it holds of its client's messages.

    Every message but a requested Certificate is held to
    :data:`MAX_CLIENT_HELLO_SIZE` (or the Context's own bound, if smaller):
    nothing else a client sends comes near it (OpenSSL allows 2 KiB for a
    ClientKeyExchange and 64 bytes for a Finished).
    """
    limit = context.max_handshake_message_size
    hello = min(MAX_CLIENT_HELLO_SIZE, limit)
    if context.client_certificate is ClientCertificatePolicy.NONE:
        return HandshakeReassembler(hello)
    return HandshakeReassembler(hello, {HandshakeType.certificate: limit})


@dataclasses.dataclass(frozen=True)
class HandshakeState:
    """A read-only snapshot of where a connection's handshake and record
    layer stand, for tests and debugging (:attr:`Connection.handshake_state`).

    It holds no secret: no master or traffic secret, no Finished
    verify_data.  Those are observable only as a peer or a key log sees
    them: through :meth:`Connection.export_keying_material` and the
    Context's ``keylog`` callback.
    """

    #: The class of the running state machine: a negotiator until the peer's
    #: first hello settles the version, then that version's client or server
    #: (or the subclass a ``Connection`` subclass installed).
    machine: type
    #: The machine's current state (its own ``State`` enum member).
    state: enum.Enum
    #: The version settled, or None while a negotiator stands in.
    version: ProtocolVersion | None
    #: A handshake has completed (renegotiations may follow).
    complete: bool
    #: A TLS 1.2 renegotiation is under way.
    renegotiating: bool
    #: RFC 7627 extended master secret, in the last completed handshake.
    extended_master_secret: bool
    #: RFC 5746: the peer signalled secure renegotiation (last completed).
    secure_renegotiation: bool
    #: ClientHello.random and ServerHello.random (the latter TLS 1.2 only)
    #: of the last completed handshake, or of the one in progress before
    #: any completed; empty until known.  Public values: both cross
    #: the wire in the clear.
    client_random: bytes
    server_random: bytes
    #: The TLS 1.3 server sent a HelloRetryRequest (RFC 8446 §4.1.4).
    hello_retried: bool
    #: Largest plaintext per outgoing record (the peer's RFC 8449 limit).
    write_limit: int
    #: Largest plaintext accepted per protected record (our RFC 8449 limit).
    read_limit: int
    #: Sequence numbers of the next record read and written under the
    #: current keys.
    read_sequence: int
    write_sequence: int
    #: Received bytes the record layer holds that do not yet make a record.
    buffered_record_bytes: int
    #: Bytes of handshake messages held that do not yet make a whole message.
    buffered_handshake_bytes: int


#: What Connection drives: a negotiator until the peer's first hello settles
#: the version, then that version's state machine.
Handshake = (
    ClientNegotiator
    | ServerNegotiator
    | TLS13Client
    | TLS13Server
    | TLS12Client
    | TLS12Server
)


class Connection:
    """A TLS connection driven by bytes in and bytes out.

    The handshake classes are class attributes so that a test can put a
    scripted one in their place (the RFC 8448 replay sends the RFC's
    ClientHello).  Each role starts with its negotiator
    (:mod:`~twisted_sslfile.engine.negotiation`): the client's builds the
    ClientHello for every version it allows; the peer's first hello settles
    the version, and the negotiator hands over to that version's class.

    :param context: shared policy and credentials.
    :param is_client: the role; a client sends ClientHello from :meth:`start`.
    :param server_name: client only: the SNI name and the name (or IP
        address) the server's certificate must match.  An internationalised
        name is mapped to A-labels (IDNA 2008, UTS #46); one that cannot be
        a host name is a ValueError naming it.
    :param session: client only: a :class:`~twisted_sslfile.engine.sessions.
        Session` from an earlier connection to offer for resumption; it is
        offered only if still valid for this server name and context.
    """

    client_negotiator_class: ClassVar[type[ClientNegotiator]] = ClientNegotiator
    server_negotiator_class: ClassVar[type[ServerNegotiator]] = ServerNegotiator
    tls13_client_class: ClassVar[type[TLS13Client]] = TLS13Client
    tls13_server_class: ClassVar[type[TLS13Server]] = TLS13Server
    tls12_client_class: ClassVar[type[TLS12Client]] = TLS12Client
    tls12_server_class: ClassVar[type[TLS12Server]] = TLS12Server

    def __init__(
        self,
        context: Context,
        *,
        is_client: bool,
        server_name: str | None = None,
        session: Session | None = None,
    ) -> None:
        if server_name is not None and not is_client:
            raise ValueError("server_name is a client option")
        if session is not None and not is_client:
            raise ValueError("session is a client option")
        if server_name is not None:
            # SNI and hostname verification both use the A-label form (RFC
            # 6066 §3, RFC 5890); a name that cannot be one is refused here.
            server_name = canonical_server_name(server_name)
        if is_client and server_name is None and context.verify:
            raise ValueError(
                "a verifying client needs server_name: the host name or IP address "
                "the server's certificate must match (or a Context with "
                "insecure_skip_verify=True)"
            )
        self._context = context
        self.is_client = is_client
        self._records = RecordLayer()
        # RFC 8446 §5.1: 0x0303 on every record but (optionally) the first
        # ClientHello; ClientNegotiator.start sets 0x0301 for that one.
        self._records.legacy_record_version = ProtocolVersion.TLS_1_2
        self._reassembler = (
            HandshakeReassembler(context.max_handshake_message_size)
            if is_client
            else _server_reassembler(context)
        )
        # Until the peer's first hello settles the version a negotiator
        # stands in for the handshake (see engine/negotiation.py).
        # The state machines reach back through a weak proxy, so that a
        # Connection has no reference cycle and is freed (keys and all) as
        # soon as its owner drops it, even with the garbage collector off.
        io = weakref.proxy(self)
        self._handshake: Handshake = (
            self.client_negotiator_class(
                io,
                context,
                server_name,
                session,
                tls13_class=self.tls13_client_class,
                tls12_class=self.tls12_client_class,
            )
            if is_client
            else self.server_negotiator_class(
                io,
                context,
                tls13_class=self.tls13_server_class,
                tls12_class=self.tls12_server_class,
            )
        )
        self._read_protected = False
        self._events: list[Event] = []
        self._handshake_output: list[bytes] = []
        # Application data written before the handshake finished, or during
        # a TLS 1.2 renegotiation (OpenSSL refuses data between its
        # ServerHello and our Finished): the local application's own bytes,
        # released in order when the handshake completes.
        self._held_writes: list[bytes] = []
        self._close_requested = False
        self._started = False
        self._read_keys_changed = False
        self._result: HandshakeCompleted | None = None
        self._error: TLSError | None = None
        self.sent_close_notify = False
        self.received_close_notify = False
        # Bytes that followed the peer's close_notify: they belong to whatever
        # the stream carries next (RFC 8446 §6.1 says TLS ignores them). The
        # adapter decides how much of that stream to accept; it takes them
        # with take_unused_data().
        self._unused = bytearray()
        # Records that carried nothing (empty application data, warning
        # alerts), in a row: allowed, but not without end (see _idle_record).
        self._idle_records = 0
        # KeyUpdates received since the last application data, and the
        # answers still owed to our own update_requested (_count_key_update).
        self._key_updates = 0
        self._key_updates_requested = 0

    # -- the engine contract -------------------------------------------------

    def start(self) -> None:
        """Client: queue the ClientHello. Server: nothing to do."""
        if self._started:
            return
        self._started = True
        handshake = self._handshake
        if isinstance(handshake, ClientNegotiator):
            self._guarded(handshake.start)

    def receive_data(self, data: bytes) -> list[Event]:
        """Process bytes from the peer; return the events they produced.

        On a fatal error the :class:`~twisted_sslfile.errors.TLSError` raised
        carries, in ``events``, what this call produced before the failure.
        """
        if self._error is not None:
            raise ConnectionClosedError("connection already failed") from self._error
        self._started = True
        self._events = []
        try:
            self._guarded(lambda: self._receive(data))
        except TLSError as exc:
            exc.events, self._events = self._events, []
            raise
        events, self._events = self._events, []
        return events

    def send(self, data: bytes | bytearray | memoryview) -> None:
        """Queue application data; held back until the handshake completes."""
        if self._error is not None or self.sent_close_notify or self._close_requested:
            raise ConnectionClosedError("cannot send after close or failure")
        if not data:
            return
        if self._result is None or self._handshake.renegotiating:
            self._held_writes.append(bytes(data))
            return
        self._records.send(ContentType.application_data, data)
        if self._records.should_rekey:
            self._guarded(self._refresh_write_key)

    def close(self) -> None:
        """Queue close_notify behind any data already queued (RFC 8446 §6.1)."""
        if self._error is not None or self.sent_close_notify or self._close_requested:
            return
        if self._held_writes:
            # Do not lose data held for a handshake: close once it is out.
            self._close_requested = True
            return
        self._send_close_notify()

    def renegotiate(self) -> None:
        """Refresh keys: TLS 1.3 KeyUpdate asking the peer to follow; TLS 1.2
        secure renegotiation (RFC 5746). Data keeps flowing meanwhile."""
        if self._error is not None or self.sent_close_notify or self._result is None:
            raise ConnectionClosedError(
                "renegotiation needs an established, open connection"
            )
        if not self._handshake.can_renegotiate:
            # Not fatal: the connection goes on with its current keys.
            raise ValueError(
                "cannot renegotiate now: a handshake is under way, or the peer "
                "does not support secure renegotiation (RFC 5746)"
            )
        self._guarded(self._handshake.renegotiate)
        if self._handshake.version == TLS_1_3:
            self._key_updates_requested += 1

    def key_update(self, request_peer: bool = True) -> None:
        """Send a TLS 1.3 KeyUpdate; with ``request_peer`` ask the peer to follow."""
        if self._error is not None or self.sent_close_notify:
            raise ConnectionClosedError("cannot update keys after close or failure")
        self._guarded(lambda: self._handshake.send_key_update(request_peer))
        if request_peer:
            self._key_updates_requested += 1

    def data_to_send(self) -> bytes:
        """Bytes to write to the transport, in order; empty if none."""
        return self._records.data_to_send()

    def pending_output(self) -> list[bytes]:
        """Like :meth:`data_to_send`, as a list of records for ``writeSequence``."""
        return self._records.pending_output()

    def export_keying_material(
        self, label: bytes, context: bytes, length: int
    ) -> bytes:
        """RFC 8446 §7.5 / RFC 5705 exporter."""
        return self._handshake.export_keying_material(label, context, length)

    # -- queries -------------------------------------------------------------

    @property
    def state(self) -> ConnectionState:
        if self._error is not None:
            return ConnectionState.FAILED
        if self.sent_close_notify and self.received_close_notify:
            return ConnectionState.CLOSED
        if self._result is None:
            return ConnectionState.HANDSHAKING
        return ConnectionState.CONNECTED

    @property
    def handshake_complete(self) -> bool:
        return self._result is not None

    @property
    def handshake_result(self) -> HandshakeCompleted | None:
        return self._result

    @property
    def unused_data(self) -> bytes:
        """Bytes received after the peer's close_notify, not yet taken."""
        return bytes(self._unused)

    def take_unused_data(self) -> bytes:
        """Return and forget the bytes received after the peer's close_notify.

        They are the start of whatever the stream carries next (a plaintext
        phase after a clean TLS close), in order.
        """
        data = bytes(self._unused)
        self._unused.clear()
        return data

    @property
    def rejected_bytes(self) -> bytes | None:
        """The raw bytes the record layer refused (not TLS, or undecryptable),
        from the refused record on; None while nothing was refused. Lets an
        adapter recognise, say, plain HTTP sent to a TLS port."""
        return self._records.rejected_bytes

    @property
    def read_sequence(self) -> int:
        """Sequence number of the next record to read under the current keys."""
        return self._records.read_sequence

    @property
    def error(self) -> TLSError | None:
        """The fatal error that ended this connection, if any."""
        return self._error

    @property
    def version(self) -> ProtocolVersion | None:
        return self._result.version if self._result else None

    @property
    def cipher_suite(self) -> CipherSuite | None:
        return self._result.cipher_suite if self._result else None

    @property
    def group(self) -> NamedGroup | None:
        return self._result.group if self._result else None

    @property
    def alpn_protocol(self) -> bytes | None:
        return self._result.alpn_protocol if self._result else None

    @property
    def next_protocol(self) -> bytes | None:
        return self._result.next_protocol if self._result else None

    @property
    def peer_signature_scheme(self) -> SignatureScheme | None:
        """The scheme the peer signed the completed handshake with (its
        CertificateVerify, or a TLS 1.2 ServerKeyExchange); None before the
        handshake and when the peer signed nothing (a resumption)."""
        return self._result.peer_signature_scheme if self._result else None

    @property
    def server_name(self) -> str | None:
        return self._handshake.server_name

    @property
    def peer_certificates(self) -> tuple[bytes, ...]:
        return self._handshake.peer_certificates

    @property
    def session(self) -> Session | None:
        """What a later connection needs to resume this one, once known."""
        return self._handshake.session

    @property
    def handshake_state(self) -> HandshakeState:
        """A read-only snapshot of the handshake and record layer, taken now:
        what a test or a debugger may observe without reaching into the
        connection (see :class:`HandshakeState`; it holds no secret)."""
        machine = self._handshake
        version = getattr(machine, "version", None)
        # TLS 1.2 reports its last completed handshake (a renegotiation under
        # way changes nothing until it completes); TLS 1.3 its only one.
        n = getattr(machine, "_current", None) or getattr(machine, "_n", None)
        records = self._records
        return HandshakeState(
            machine=type(machine),
            state=machine.state,
            version=version,
            complete=bool(getattr(machine, "complete", False)),
            renegotiating=bool(getattr(machine, "renegotiating", False)),
            extended_master_secret=bool(getattr(n, "extended_master_secret", False)),
            secure_renegotiation=bool(getattr(n, "secure_renegotiation", False)),
            client_random=bytes(getattr(n, "client_random", b"")),
            server_random=bytes(getattr(n, "server_random", b"")),
            hello_retried=getattr(machine, "_first_hello", None) is not None,
            write_limit=records.write_limit,
            read_limit=records.max_plaintext,
            read_sequence=records.read_sequence,
            write_sequence=records.write_sequence,
            buffered_record_bytes=records.buffered,
            # messages.py is being split elsewhere (issue 11): read the
            # reassembler's buffer here rather than add a query there.
            buffered_handshake_bytes=len(self._reassembler._buffer),
        )

    # -- HandshakeIO: what the state machines call -----------------------------

    def write_handshake(self, raw: bytes) -> None:
        # Messages of one flight under the same keys share records: fewer
        # records on the wire, and RFC 8448's traces come out byte for byte.
        self._handshake_output.append(raw)

    def write_change_cipher_spec(self) -> None:
        self._flush_handshake()
        self._records.send(ContentType.change_cipher_spec, b"\x01")

    def set_read_protection(self, protection: RecordProtection) -> None:
        self._records.set_read_protection(protection)
        if not self._read_protected:
            # A peer that cannot process our first flight alerts in plaintext.
            self._records.accept_plaintext_alert = True
            self._read_protected = True
        self._read_keys_changed = True

    def set_write_protection(self, protection: RecordProtection) -> None:
        self._flush_handshake()
        self._records.set_write_protection(protection)

    def set_write_limit(self, limit: int) -> None:
        self._records.write_limit = limit

    def set_read_limit(self, limit: int) -> None:
        self._records.max_plaintext = limit

    def set_legacy_record_version(self, version: int) -> None:
        self._flush_handshake()  # what is queued goes out under the old value
        self._records.legacy_record_version = version

    def handshake_completed(self, event: HandshakeCompleted) -> None:
        self._flush_handshake()
        self._result = event
        self._events.append(event)
        self._release_held_writes()

    def _release_held_writes(self) -> None:
        writes, self._held_writes = self._held_writes, []
        for data in writes:
            self._records.send(ContentType.application_data, data)
        if self._close_requested:
            self._send_close_notify()

    def emit(self, event: Event) -> None:
        self._events.append(event)

    def write_alert(self, level: AlertLevel, description: AlertDescription) -> None:
        """A non-fatal alert from the state machine (TLS 1.2 no_renegotiation)."""
        self._flush_handshake()
        self._records.send(ContentType.alert, bytes((level, description)))

    def skip_early_data(self, max_bytes: int) -> None:
        self._records.skip_early_data(max_bytes)

    def replace_handshake(self, handshake: Handshake) -> None:
        """The version is settled: a version-specific machine takes over."""
        self._handshake = handshake

    # -- internals ---------------------------------------------------------------

    def _guarded(self, action: Callable[[], object]) -> None:
        """Run ``action``; on failure queue the alert and remember the error."""
        try:
            action()
            self._flush_handshake()
        except RemoteAlertError as exc:
            self._error = exc
            raise
        except TLSError as exc:
            self._fail(exc)
            raise
        except Exception as exc:
            # Hostile input must never surface as a random exception: report
            # it as internal_error, keeping the cause for the bug report.
            error = InternalError(f"internal error: {exc!r}")
            self._fail(error)
            raise error from exc

    def _refresh_write_key(self) -> None:
        """Change keys before the AEAD's usage limit (RFC 8446 §5.5).

        TLS 1.3 sends a KeyUpdate. TLS 1.2 renegotiates when the peer
        supports it; otherwise the connection is closed cleanly rather than
        sending past the limit.
        """
        handshake = self._handshake
        if handshake.version == TLS_1_3:
            handshake.send_key_update(request_peer=False)
        elif handshake.can_renegotiate:
            handshake.renegotiate()
        elif not handshake.renegotiating:
            self._send_close_notify()

    def _flush_handshake(self) -> None:
        if self._handshake_output:
            data = b"".join(self._handshake_output)
            self._handshake_output.clear()
            self._records.send(ContentType.handshake, data)

    def _fail(self, error: TLSError) -> None:
        self._error = error
        # Whatever half-built flight there is must not go out before the alert.
        self._handshake_output.clear()
        # If the write side itself is broken (sequence numbers exhausted) the
        # alert cannot go out; the error still stands.
        with contextlib.suppress(TLSError):
            self._records.send(
                ContentType.alert, bytes((AlertLevel.fatal, error.alert))
            )

    def _send_close_notify(self) -> None:
        self._records.send(
            ContentType.alert,
            bytes((AlertLevel.warning, AlertDescription.close_notify)),
        )
        self.sent_close_notify = True

    def _receive(self, data: bytes) -> None:
        if self.received_close_notify:
            self._unused += data
            return
        records = self._records
        records.feed(data)
        # The plaintext of consecutive application-data records becomes one
        # ApplicationData event: one object and one application call per
        # receive_data rather than per 16 KiB record.  Any other record
        # ends the run first, so events keep their order (a CloseNotify,
        # HandshakeCompleted or KeyUpdated still falls between the chunks).
        chunks: list[bytes] = []
        try:
            while not self.received_close_notify:
                record = records.next_record()
                if record is None:
                    break
                if (
                    record.content_type == _APPLICATION_DATA
                    and record.payload
                    and self._result is not None
                    and not self._reassembler.has_partial
                ):
                    chunks.append(record.payload)
                    continue
                if chunks:
                    self._application_data(chunks)
                    chunks = []
                self._handle_record(record)
        finally:
            # Also on failure: data that arrived intact before a bad record
            # is reported ahead of the error (TLSError.events).
            if chunks:
                self._application_data(chunks)
        if self.received_close_notify:
            self._unused += self._records.take_unprocessed()

    def _handle_record(self, record: Record) -> None:
        content_type = record.content_type
        if content_type == ContentType.handshake:
            self._handle_handshake_record(record.payload)
            return
        if self._reassembler.has_partial:
            # RFC 8446 §5.1: handshake messages may not be interleaved with
            # other record types.
            raise UnexpectedMessageError(
                f"{ContentType(content_type).name} record inside a fragmented "
                "handshake message"
            )
        if content_type == ContentType.application_data:
            if self._result is None:
                raise UnexpectedMessageError("application data before the handshake")
            if not record.payload:
                # RFC 8446 §5.1 allows empty application data (traffic
                # analysis padding); there is nothing to report.
                self._idle_record()
                return
            self._application_data([record.payload])
        elif content_type == ContentType.alert:
            self._handle_alert(record.payload)
        else:
            self._handle_change_cipher_spec(record)

    def _application_data(self, chunks: list[bytes]) -> None:
        """Report the plaintext of a run of application-data records."""
        self._idle_records = 0
        self._key_updates = 0
        # join returns a lone bytes as it is: owned and immutable already.
        self._events.append(ApplicationData(b"".join(chunks)))

    def _idle_record(self) -> None:
        """Count a record that carried nothing.

        Each one costs a record's work and yields no progress, so a peer may
        send only so many in a row (OpenSSL and BoringSSL draw the same line,
        TLS 1.3's compatibility change_cipher_spec included).
        """
        self._idle_records += 1
        if self._idle_records > _MAX_IDLE_RECORDS:
            raise UnexpectedMessageError(
                f"more than {_MAX_IDLE_RECORDS} records without content (empty "
                "application data, warning alerts, compatibility "
                "change_cipher_spec) in a row"
            )

    def _count_key_update(self) -> None:
        """Count a KeyUpdate; refuse a run of them without data between.

        Application data resets the count, so a long connection may update
        its keys as often as it likes; only a flood that carries nothing is
        cut short.  The peer's answers to our own update_requested are not
        a flood: one KeyUpdate per request we sent is let through uncounted
        (a peer may answer several requests with one, §4.6.3).
        """
        if self._key_updates_requested:
            self._key_updates_requested -= 1
            return
        self._key_updates += 1
        if self._key_updates > _MAX_KEY_UPDATES:
            raise UnexpectedMessageError(
                f"more than {_MAX_KEY_UPDATES} KeyUpdates without application "
                "data between"
            )

    def _handle_handshake_record(self, payload: bytes | memoryview) -> None:
        self._idle_records = 0
        self._reassembler.feed(payload)
        while (message := self._reassembler.pop()) is not None:
            msg_type, raw, body = message
            if msg_type == HandshakeType.key_update:
                self._count_key_update()
            self._read_keys_changed = False
            self._handshake.handle(msg_type, raw, body)
            if self._read_keys_changed and (
                self._reassembler.has_partial or self._reassembler.has_pending
            ):
                # RFC 8446 §5.1: a message before a key change must end at a
                # record boundary, or bytes would be read under the wrong keys.
                raise UnexpectedMessageError("handshake data straddles a key change")

    def _handle_change_cipher_spec(self, record: Record) -> None:
        # TLS 1.3 drops the compatibility CCS; TLS 1.2 switches keys on it.
        # Either way the payload is one 0x01 byte (RFC 5246 §7.1).
        if bytes(record.payload) != b"\x01":
            raise UnexpectedMessageError("change_cipher_spec payload must be 0x01")
        self._read_keys_changed = False
        self._handshake.handle_change_cipher_spec(record)
        if self._read_keys_changed:
            self._idle_records = 0  # TLS 1.2: the new keys are progress
        else:
            # RFC 8446 §5: TLS 1.3's compatibility CCS is dropped "without
            # further processing", but it is not free: one run of them is
            # bounded like any record that carries nothing.
            self._idle_record()

    def _handle_alert(self, payload: bytes | memoryview) -> None:
        if len(payload) != 2:
            raise DecodeError("an alert is exactly two bytes")
        level, description = payload[0], payload[1]
        if description == AlertDescription.close_notify:
            self.received_close_notify = True
            self._events.append(CloseNotify())
            return
        if description == AlertDescription.user_canceled:
            # RFC 8446 §6.1: user_canceled is followed by close_notify; it is
            # the only alert besides close_notify that is not an error.
            self._idle_record()
            self._events.append(
                AlertReceived(AlertLevel.warning, AlertDescription.user_canceled)
            )
            return
        if level == AlertLevel.warning and self._handshake.version != TLS_1_3:
            # RFC 5246 §7.2: TLS 1.2 warnings (no_renegotiation, ...) are
            # reported and the connection goes on. Before the version is
            # settled a warning is tolerated too: some TLS 1.2 servers warn
            # unrecognized_name before their ServerHello.
            self._idle_record()
            self._events.append(AlertReceived(AlertLevel.warning, description))
            # e.g. no_renegotiation: the peer declined our renegotiation.
            self._handshake.handle_warning_alert(description)
            if self._result is not None and not self._handshake.renegotiating:
                self._release_held_writes()
            return
        # RFC 8446 §6: in TLS 1.3 every other alert is fatal, whatever its level.
        raise RemoteAlertError(description)
