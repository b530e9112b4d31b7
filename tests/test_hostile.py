"""Hostile input against the TLS 1.3 engine, in every handshake state.

The project rule these tests enforce: whatever a peer sends -- malformed,
truncated, oversized, duplicated or out-of-order messages or records -- the
connection under attack (the *victim*) ends with a :class:`TLSError` that
carries the right alert, that alert is queued in ``data_to_send()`` and reads
as the same alert at the honest peer, and nothing else happens: no other
exception type, no ``internal_error``, no hang, no buffer that grows without
bound.

How the attacks are built.  A real client and a real server run a real
handshake, but each is a :class:`Recorder`: a ``Connection`` that keeps every
handshake message it writes *before* encryption, together with a copy of each
write protection taken before its first use (same key and IV, sequence 0).
The victim hears the peer only through the test: the peer's own wire output
is thrown away, and the test frames the recorded messages itself -- one
message per record, plaintext or sealed with the recorded protection, exactly
as the peer would have sealed them.  So the test can stop the victim in any
state (a :class:`Stage`) and then, with the victim's current read keys in
hand, send it anything at all: a message from another state, a fragment, a
bit-flipped record, a re-encrypted mutated message.  The victim's own output
still goes to the real peer, which is how the tests check that the alert the
victim queued is the one the peer reads.

Where the RFC names the alert, the tests insist on it (``RULES`` lists one
requirement per entry, with its section); where it does not, they accept the
alerts that describe a peer's fault, never ``internal_error``.  Every
property runs ``HOSTILE_EXAMPLES`` examples (150 by default, about 20 s for
the module); set it to a few thousand for a deeper hunt.
"""

from __future__ import annotations

import contextlib
import copy
import itertools
import os
import signal
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any, cast

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from tests.certs import CertificateFactory
from twisted_sslfile.constants import (
    MAX_CIPHERTEXT_TLS13,
    MAX_PLAINTEXT,
    RECORD_HEADER_SIZE,
    AlertDescription,
    AlertLevel,
    CipherSuite,
    ClientCertificatePolicy,
    ContentType,
    ExtensionType,
    HandshakeType,
    NamedGroup,
    ProtocolVersion,
    SignatureScheme,
)
from twisted_sslfile.context import Context
from twisted_sslfile.engine import messages
from twisted_sslfile.engine.connection import (
    MAX_CLIENT_HELLO_SIZE,
    Connection,
    ConnectionState,
)
from twisted_sslfile.engine.events import (
    AlertReceived,
    ApplicationData,
    CloseNotify,
    Event,
    SessionTicket,
)
from twisted_sslfile.engine.negotiation import ClientNegotiator, ServerNegotiator
from twisted_sslfile.engine.record import RecordProtection
from twisted_sslfile.engine.tls13 import State
from twisted_sslfile.engine.tls13_server import _EARLY_DATA_SKIP_LIMIT
from twisted_sslfile.errors import (
    ConnectionClosedError,
    InternalError,
    RemoteAlertError,
    TLSError,
)

A = AlertDescription
CCS = ContentType.change_cipher_spec
ALERT = ContentType.alert
HANDSHAKE = ContentType.handshake
APPLICATION_DATA = ContentType.application_data
H = HandshakeType

#: The most a record layer may hold between two calls: one incomplete record.
MAX_RECORD = RECORD_HEADER_SIZE + MAX_CIPHERTEXT_TLS13
#: What a peer may legitimately be told when its input is at fault: every
#: alert but the non-errors and the one that blames ourselves.
PEER_FAULT = frozenset(AlertDescription) - {
    A.close_notify,
    A.user_canceled,
    A.internal_error,
}
CERTIFICATE_ALERTS = frozenset(
    {
        A.bad_certificate,
        A.unsupported_certificate,
        A.certificate_revoked,
        A.certificate_expired,
        A.certificate_unknown,
        A.unknown_ca,
    }
)
#: Alerts a malformed body of each message type may earn (RFC 8446 §6.2).
CONTENT_ALERTS: dict[int, frozenset[AlertDescription]] = {
    H.client_hello: frozenset(
        {
            A.decode_error,
            A.illegal_parameter,
            A.protocol_version,
            A.handshake_failure,
            A.missing_extension,
            A.no_application_protocol,
            A.decrypt_error,  # a PSK binder that does not verify
        }
    ),
    H.server_hello: frozenset(
        {
            A.decode_error,
            A.illegal_parameter,
            A.protocol_version,
            A.missing_extension,
            A.unsupported_extension,
        }
    ),
    H.encrypted_extensions: frozenset(
        {A.decode_error, A.illegal_parameter, A.unsupported_extension}
    ),
    H.certificate_request: frozenset(
        {
            A.decode_error,
            A.illegal_parameter,
            A.missing_extension,
            A.unsupported_extension,
        }
    ),
    H.certificate: frozenset(
        {
            A.decode_error,
            A.illegal_parameter,
            A.unsupported_extension,
            A.certificate_required,
        }
    )
    | CERTIFICATE_ALERTS,
    H.certificate_verify: frozenset(
        {A.decode_error, A.illegal_parameter, A.decrypt_error}
    ),
    # RFC 8446 §4.4.4: a wrong verify_data is a decrypt_error; §6.2: a
    # Finished of the wrong length cannot be decoded (decode_error).
    H.finished: frozenset({A.decode_error, A.decrypt_error}),
    H.key_update: frozenset({A.decode_error, A.illegal_parameter}),
    H.new_session_ticket: frozenset({A.decode_error, A.illegal_parameter}),
}

#: Handshake messages each state accepts (RFC 8446 appendix A), written out
#: here rather than read from the engine so that the tests check its tables.
ACCEPTED: dict[State, frozenset[int]] = {
    State.CLIENT_WAIT_SH: frozenset({H.server_hello}),
    State.CLIENT_WAIT_EE: frozenset({H.encrypted_extensions}),
    State.CLIENT_WAIT_CERT_CR: frozenset({H.certificate, H.certificate_request}),
    State.CLIENT_WAIT_CERT: frozenset({H.certificate}),
    State.CLIENT_WAIT_CV: frozenset({H.certificate_verify}),
    State.CLIENT_WAIT_FINISHED: frozenset({H.finished}),
    State.SERVER_START: frozenset({H.client_hello}),
    State.SERVER_WAIT_CH2: frozenset({H.client_hello}),
    State.SERVER_WAIT_CERT: frozenset({H.certificate}),
    State.SERVER_WAIT_CV: frozenset({H.certificate_verify}),
    State.SERVER_WAIT_FINISHED: frozenset({H.finished}),
}
ACCEPTED_CONNECTED = {
    True: frozenset({H.new_session_ticket, H.key_update}),
    False: frozenset({H.key_update}),
}

SUITES = (
    CipherSuite.TLS_AES_128_GCM_SHA256,
    CipherSuite.TLS_AES_256_GCM_SHA384,
    CipherSuite.TLS_CHACHA20_POLY1305_SHA256,
)
GROUPS = (
    NamedGroup.x25519,
    NamedGroup.secp256r1,
    NamedGroup.secp384r1,
    NamedGroup.X25519MLKEM768,
)
SERVER_KEYS = ("ecdsa-p256", "ecdsa-p384", "ed25519", "rsa-2048")
CLIENT_KEYS = ("ecdsa-p256", "ed25519", "rsa-2048")

#: Examples per property; the whole module stays well under a minute.  Set
#: HOSTILE_EXAMPLES=5000 for a deeper hunt.
EXAMPLES = int(os.environ.get("HOSTILE_EXAMPLES", "150"))
hostile = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


# -- wire helpers ------------------------------------------------------------------


def plain_record(content_type: int, payload: bytes, version: int = 0x0303) -> bytes:
    """An unprotected record, whatever its length (tests may lie in it)."""
    return (
        bytes((content_type, version >> 8, version & 0xFF))
        + (len(payload) & 0xFFFF).to_bytes(2, "big")
        + payload
    )


def handshake_message(msg_type: int, body: bytes) -> bytes:
    return bytes((msg_type,)) + len(body).to_bytes(3, "big") + body


def split_records(wire: bytes) -> list[bytes]:
    """Cut well-formed wire bytes into records (header included)."""
    records = []
    while wire:
        end = RECORD_HEADER_SIZE + int.from_bytes(wire[3:5], "big")
        records.append(wire[:end])
        wire = wire[end:]
    return records


def cut(data: bytes, points: list[int]) -> list[bytes]:
    """``data`` split at ``points`` (ignoring out-of-range and repeated ones)."""
    edges = [0, *sorted({p for p in points if 0 < p < len(data)}), len(data)]
    return [data[a:b] for a, b in itertools.pairwise(edges)]


def pick(data: st.DataObject, low: int, high: int) -> int:
    """An integer in ``[low, high]`` whose draw does not depend on the bounds.

    Message lengths vary from run to run (ECDSA signatures, fresh keys), and
    Hypothesis replays an example by its sequence of draws: drawing from a
    fixed range and reducing it keeps that sequence valid across runs.
    """
    value = data.draw(st.integers(0, 2**24))
    return low + value % (high - low + 1) if high > low else low


def held_limit(victim: Recorder, msg_type: int) -> int:
    """The largest message of ``msg_type`` the victim may hold (its body).

    A client holds up to the Context's max_handshake_message_size; a server
    holds that much of a client Certificate it asked for, and at most
    MAX_CLIENT_HELLO_SIZE (32 KiB) of anything else (issue 10).
    """
    context = victim.context
    limit = context.max_handshake_message_size
    if victim.is_client or (
        msg_type == H.certificate
        and context.client_certificate is not ClientCertificatePolicy.NONE
    ):
        return limit
    return min(limit, MAX_CLIENT_HELLO_SIZE)


class Hang(BaseException):
    """The engine did not return: a BaseException, so no ``except`` eats it."""


@contextlib.contextmanager
def watchdog(seconds: float = 10.0) -> Iterator[None]:
    """Turn an endless loop in the engine into a test failure."""

    def expired(signum: int, frame: object) -> None:
        raise Hang("the engine did not return in time")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def describe(error: BaseException) -> str:
    """An error with the traceback of what caused it (for InternalError)."""
    cause = error.__cause__
    text = repr(error)
    if cause is not None:
        text += "\ncaused by:\n" + "".join(traceback.format_exception(cause))
    return text


# -- the recording connection -------------------------------------------------------


class Recorder(Connection):
    """A real Connection that keeps what it sends, before encryption.

    ``messages`` holds ``(epoch, raw message)`` for every handshake message
    written, where the epoch counts the write protections installed before
    it (0: plaintext).  ``protections[epoch - 1]`` is a copy of that epoch's
    protection taken before it sealed anything, so sealing with a copy of it
    gives the records this connection would have sent.
    """

    def __init__(self, context: Context, **kwargs: Any) -> None:
        self.messages: list[tuple[int, bytes]] = []
        self.protections: list[RecordProtection] = []
        #: The Context it was made with (its limits are what tests check).
        self.context = context
        super().__init__(context, **kwargs)

    def write_handshake(self, raw: bytes) -> None:
        self.messages.append((len(self.protections), raw))
        super().write_handshake(raw)

    def set_write_protection(self, protection: Any) -> None:
        self.protections.append(copy.copy(protection))
        super().set_write_protection(protection)


# -- configurations and stages ------------------------------------------------------


@dataclass(frozen=True)
class Config:
    """One way to run the handshake."""

    suite: CipherSuite = CipherSuite.TLS_AES_128_GCM_SHA256
    group: NamedGroup = NamedGroup.x25519
    hrr: bool = False  #: the client's first share is refused: HelloRetryRequest
    mtls: bool = False  #: the server requires a client certificate
    server_key: str = "ecdsa-p256"
    client_key: str = "ecdsa-p256"
    #: Context options for the victim only (limits under test).
    victim_options: tuple[tuple[str, Any], ...] = ()
    #: RFC 8449 record_size_limit, advertised by both sides.
    record_size_limit: int | None = None
    #: The client offers a ticket from an earlier full handshake (PSK).
    resume: bool = False


@dataclass(frozen=True)
class StageSpec:
    """Where a victim is stopped: role, state, and what the config must be."""

    victim_is_client: bool
    state: State
    after: int = 0  #: at least this many peer messages delivered first
    hrr: bool | None = None  #: None: either
    mtls: bool | None = None
    resume: bool | None = None


STAGES: dict[str, StageSpec] = {
    "client wait ServerHello": StageSpec(True, State.CLIENT_WAIT_SH),
    "client wait ServerHello after HRR": StageSpec(
        True, State.CLIENT_WAIT_SH, after=1, hrr=True
    ),
    "client wait EncryptedExtensions": StageSpec(True, State.CLIENT_WAIT_EE),
    # A resumed handshake has no certificates (RFC 8446 §2.2).
    "client wait Certificate or CertificateRequest": StageSpec(
        True, State.CLIENT_WAIT_CERT_CR, resume=False
    ),
    "client wait Certificate after CertificateRequest": StageSpec(
        True, State.CLIENT_WAIT_CERT, mtls=True, resume=False
    ),
    "client wait CertificateVerify": StageSpec(
        True, State.CLIENT_WAIT_CV, resume=False
    ),
    "client wait Finished": StageSpec(True, State.CLIENT_WAIT_FINISHED),
    "client connected": StageSpec(True, State.CONNECTED),
    "server wait ClientHello": StageSpec(False, State.SERVER_START),
    "server wait second ClientHello": StageSpec(False, State.SERVER_WAIT_CH2, hrr=True),
    "server wait client Certificate": StageSpec(
        False, State.SERVER_WAIT_CERT, mtls=True, resume=False
    ),
    "server wait client CertificateVerify": StageSpec(
        False, State.SERVER_WAIT_CV, mtls=True, resume=False
    ),
    "server wait client Finished": StageSpec(False, State.SERVER_WAIT_FINISHED),
    "server connected": StageSpec(False, State.CONNECTED),
}
ALL_STAGES = tuple(STAGES)
HANDSHAKE_STAGES = tuple(n for n in STAGES if STAGES[n].state is not State.CONNECTED)
#: Stages whose victim reads protected records.
PROTECTED_STAGES = tuple(
    n
    for n in STAGES
    if n
    not in (
        "client wait ServerHello",
        "client wait ServerHello after HRR",
        "server wait ClientHello",
        "server wait second ClientHello",
    )
)
PLAINTEXT_STAGES = tuple(n for n in STAGES if n not in PROTECTED_STAGES)
#: Stages where the victim has already received at least one message.
LATER_STAGES = tuple(
    n for n in STAGES if n not in ("client wait ServerHello", "server wait ClientHello")
)


class Stage:
    """A victim stopped in one state, its live peer, and the peer's keys."""

    def __init__(
        self,
        name: str,
        spec: StageSpec,
        config: Config,
        client: Recorder,
        server: Recorder,
    ) -> None:
        self.name = name
        self.spec = spec
        self.config = config
        self.client = client
        self.server = server
        self.victim, self.peer = (
            (client, server) if spec.victim_is_client else (server, client)
        )
        self.cursor = 0  #: peer messages delivered to the victim so far
        self._sealers: dict[int, RecordProtection] = {}

    def __repr__(self) -> str:
        return f"<Stage {self.name!r} {self.config}>"

    # -- the peer's messages and keys ------------------------------------------

    @property
    def upcoming(self) -> list[tuple[int, bytes]]:
        """The honest continuation: peer messages not yet delivered."""
        return self.peer.messages[self.cursor :]

    @property
    def read_epoch(self) -> int:
        """The peer's write epoch the victim reads now."""
        if self.cursor < len(self.peer.messages):
            return self.peer.messages[self.cursor][0]
        return len(self.peer.protections)

    @property
    def protected(self) -> bool:
        return self.read_epoch > 0

    def sealer(self, epoch: int | None = None) -> RecordProtection | None:
        epoch = self.read_epoch if epoch is None else epoch
        if epoch == 0:
            return None
        if epoch not in self._sealers:
            self._sealers[epoch] = copy.copy(self.peer.protections[epoch - 1])
        return self._sealers[epoch]

    def record(
        self,
        content_type: int,
        payload: bytes,
        *,
        epoch: int | None = None,
        plaintext: bool = False,
    ) -> bytes:
        """One record as the peer would send it now (or in ``epoch``)."""
        sealer = self.sealer(epoch)
        if sealer is None or plaintext:
            return plain_record(content_type, payload)
        return sealer.seal(content_type, payload)

    def handshake(self, data: bytes, *, epoch: int | None = None) -> bytes:
        """Handshake bytes as records as large as the victim accepts."""
        size = MAX_PLAINTEXT
        limit = self.config.record_size_limit
        if limit is not None and (self.read_epoch if epoch is None else epoch):
            size = min(size, limit - 1)  # RFC 8449 §4: the type byte counts
        return b"".join(
            self.record(HANDSHAKE, data[i : i + size], epoch=epoch)
            for i in range(0, len(data), size)
        )

    # -- driving -------------------------------------------------------------------

    def flush(self) -> None:
        """Victim output to the peer; the peer's own output is discarded."""
        out = self.victim.data_to_send()
        if out:
            self.peer.receive_data(out)
        self.peer.data_to_send()

    def deliver(self, wire: bytes) -> list[Event]:
        with watchdog():
            events = self.victim.receive_data(wire)
        self.flush()
        return events

    def deliver_next(self) -> list[Event]:
        if self.cursor >= len(self.peer.messages):
            raise AssertionError(f"{self}: the peer has nothing more to say")
        epoch, raw = self.peer.messages[self.cursor]
        wire = self.handshake(raw, epoch=epoch)
        self.cursor += 1
        return self.deliver(wire)

    def complete(self) -> None:
        """Deliver the honest rest; both sides must finish the handshake."""
        while self.cursor < len(self.peer.messages):
            self.deliver_next()
        if not (self.victim.handshake_complete and self.peer.handshake_complete):
            raise AssertionError(f"{self}: the honest handshake did not complete")

    def attack(self, wire: bytes) -> tuple[TLSError | None, list[Event]]:
        """Feed hostile bytes; return the error raised (if any) and events.

        Whatever happens, the victim's buffers stay bounded.
        """
        events: list[Event] = []
        try:
            with watchdog():
                events = self.victim.receive_data(wire)
        except TLSError as error:
            return error, events
        self.check_bounded()
        return None, events

    def check_bounded(self) -> None:
        view = self.victim.handshake_state
        if view.buffered_record_bytes > MAX_RECORD:
            raise AssertionError(f"{self}: {view.buffered_record_bytes} bytes buffered")
        limit = max(held_limit(self.victim, t) for t in HandshakeType) + 4
        if view.buffered_handshake_bytes > limit:
            raise AssertionError(f"{self}: reassembler holds more than a message")

    @property
    def victim_state(self) -> State:
        view = self.victim.handshake_state
        if issubclass(view.machine, (ClientNegotiator, ServerNegotiator)):
            # A negotiator stands in until the peer's first hello settles
            # the version: the TLS 1.3 machine's first state.
            return State.CLIENT_WAIT_SH if self.victim.is_client else State.SERVER_START
        return cast(State, view.state)

    @property
    def victim_writes_protected(self) -> bool:
        return bool(self.victim.protections)


class World:
    """A PKI and the contexts built on it, shared by a test's examples."""

    def __init__(self, directory: str) -> None:
        self.pki = CertificateFactory(directory)
        self._leaves: dict[tuple[str, str], Any] = {}
        self._contexts: dict[tuple[Config, bool], tuple[Context, Context]] = {}
        self._sessions: dict[tuple[Config, bool], object] = {}

    def leaf(self, kind: str, key_type: str) -> Any:
        if (kind, key_type) not in self._leaves:
            make = self.pki.server if kind == "server" else self.pki.client
            name = "example.com" if kind == "server" else "alice"
            self._leaves[kind, key_type] = make(name, key_type=key_type)
        return self._leaves[kind, key_type]

    def contexts(
        self, config: Config, victim_is_client: bool
    ) -> tuple[Context, Context]:
        key = (config, victim_is_client)
        if key not in self._contexts:
            other = (
                NamedGroup.secp256r1
                if config.group == NamedGroup.x25519
                else NamedGroup.x25519
            )
            client: dict[str, Any] = {
                "trust_roots": self.pki.trust_roots,
                "cipher_suites": [config.suite],
                "min_version": ProtocolVersion.TLS_1_3,
                "groups": [config.group, other],
                "key_share_groups": [other if config.hrr else config.group],
            }
            server: dict[str, Any] = {
                "credentials": [self.leaf("server", config.server_key).credential()],
                "groups": [config.group],
                # TLS 1.3 only: these tests are about the TLS 1.3 machines.
                "min_version": ProtocolVersion.TLS_1_3,
            }
            if config.mtls:
                client["credentials"] = [
                    self.leaf("client", config.client_key).credential()
                ]
                server["client_certificate"] = ClientCertificatePolicy.REQUIRE
                server["trust_roots"] = self.pki.trust_roots
            if config.record_size_limit is not None:
                client["record_size_limit"] = config.record_size_limit
                server["record_size_limit"] = config.record_size_limit
            (client if victim_is_client else server).update(config.victim_options)
            self._contexts[key] = (Context(**client), Context(**server))
        return self._contexts[key]

    def session(self, config: Config, victim_is_client: bool) -> object:
        """A ticket from a full handshake between the same two contexts."""
        key = (config, victim_is_client)
        if key not in self._sessions:
            client_context, server_context = self.contexts(config, victim_is_client)
            client = Connection(
                client_context, is_client=True, server_name="example.com"
            )
            server = Connection(server_context, is_client=False)
            client.start()
            tickets = []
            for _ in range(10):
                to_server = client.data_to_send()
                if to_server:
                    server.receive_data(to_server)
                to_client = server.data_to_send()
                if to_client:
                    tickets += [
                        e.session
                        for e in client.receive_data(to_client)
                        if isinstance(e, SessionTicket)
                    ]
                if not to_server and not to_client:
                    break
            self._sessions[key] = tickets[-1]
        return self._sessions[key]


@st.composite
def configs(
    draw: st.DrawFn,
    *,
    hrr: bool | None = None,
    mtls: bool | None = None,
    resume: bool | None = None,
    victim_options: tuple[tuple[str, Any], ...] = (),
) -> Config:
    return Config(
        suite=draw(st.sampled_from(SUITES)),
        group=draw(st.sampled_from(GROUPS)),
        hrr=draw(st.booleans()) if hrr is None else hrr,
        mtls=draw(st.booleans()) if mtls is None else mtls,
        server_key=draw(st.sampled_from(SERVER_KEYS)),
        client_key=draw(st.sampled_from(CLIENT_KEYS)),
        victim_options=victim_options,
        resume=draw(st.booleans()) if resume is None else resume,
    )


@st.composite
def stage_specs(
    draw: st.DrawFn,
    names: tuple[str, ...] = ALL_STAGES,
    hrr: bool | None = None,
    victim_options: tuple[tuple[str, Any], ...] = (),
) -> tuple[str, Config]:
    """A stage name and a config that can reach it."""
    name = draw(st.sampled_from(names))
    spec = STAGES[name]
    config = draw(
        configs(
            hrr=spec.hrr if spec.hrr is not None else hrr,
            mtls=spec.mtls,
            resume=spec.resume,
            victim_options=victim_options,
        )
    )
    return name, config


# -- the tests -----------------------------------------------------------------------


class HostileTestCase(SynchronousTestCase):
    """Builds stages and checks how a victim fails."""

    def setUp(self) -> None:
        self.world = World(self.mktemp())

    def build(self, name: str, config: Config) -> Stage:
        spec = STAGES[name]
        client_context, server_context = self.world.contexts(
            config, spec.victim_is_client
        )
        session = (
            self.world.session(config, spec.victim_is_client) if config.resume else None
        )
        client = Recorder(
            client_context,
            is_client=True,
            server_name="example.com",
            session=session,
        )
        server = Recorder(server_context, is_client=False)
        stage = Stage(name, spec, config, client, server)
        client.start()
        hello = client.data_to_send()
        if spec.victim_is_client:
            server.receive_data(hello)
            server.data_to_send()
        while not (stage.victim_state is spec.state and stage.cursor >= spec.after):
            stage.deliver_next()
        return stage

    def connections(self, config: Config) -> tuple[Connection, Connection]:
        """A started client and a server for ``config``, without recording."""
        client_context, server_context = self.world.contexts(config, True)
        session = self.world.session(config, True) if config.resume else None
        client = Connection(
            client_context, is_client=True, server_name="example.com", session=session
        )
        server = Connection(server_context, is_client=False)
        client.start()
        return client, server

    def assertFails(
        self,
        stage: Stage,
        wire: bytes,
        allowed: frozenset[AlertDescription] | set[AlertDescription],
        *,
        peer_reads_alert: bool = True,
    ) -> TLSError:
        """``wire`` must make the victim fail with one of ``allowed``."""
        error, _ = stage.attack(wire)
        if error is None:
            self.fail(f"{stage}: accepted hostile input {wire[:64].hex()}...")
        self.checkFailure(stage, error, allowed, peer_reads_alert=peer_reads_alert)
        return error

    def assertNotInternal(self, error: BaseException) -> None:
        if isinstance(error, InternalError):
            self.fail(f"internal error on peer input: {describe(error)}")

    def checkFailure(
        self,
        stage: Stage,
        error: TLSError,
        allowed: frozenset[AlertDescription] | set[AlertDescription],
        *,
        peer_reads_alert: bool = True,
    ) -> None:
        """The error contract, as DESIGN.md states it, for one failure."""
        victim = stage.victim
        if isinstance(error, InternalError):
            self.fail(f"{stage}: internal error on peer input: {describe(error)}")
        self.assertNotIsInstance(error, RemoteAlertError)
        self.assertIn(
            error.alert,
            allowed,
            f"{stage}: {error} not among {sorted(a.name for a in allowed)}",
        )
        self.assertIs(victim.error, error)
        self.assertIs(victim.state, ConnectionState.FAILED)
        wire = victim.data_to_send()
        self.assertTrue(wire, f"{stage}: no alert queued for {error}")
        last = split_records(wire)[-1]
        if stage.victim_writes_protected:
            # A TLS 1.3 protected alert: 2 bytes + inner type + 16-byte tag.
            self.assertEqual(last[:5], b"\x17\x03\x03\x00\x13")
        else:
            self.assertEqual(last, plain_record(ALERT, bytes((2, error.alert))))
        # The peer reads it as the same alert.
        with self.assertRaises(TLSError) as caught, watchdog():
            stage.peer.receive_data(wire)
        if peer_reads_alert:
            self.assertIsInstance(
                caught.exception, RemoteAlertError, f"{stage}: {caught.exception}"
            )
            self.assertEqual(caught.exception.alert, error.alert)
        else:
            self.assertNotInternal(caught.exception)
        # The victim is dead: input is refused and nothing more goes out.
        self.assertRaises(
            ConnectionClosedError, victim.receive_data, plain_record(HANDSHAKE, b"x")
        )
        self.assertEqual(victim.data_to_send(), b"")

    def checkOutcome(
        self,
        stage: Stage,
        wire: bytes,
        allowed: frozenset[AlertDescription] | set[AlertDescription],
    ) -> TLSError | None:
        """``wire`` may be accepted, but any failure must follow the contract."""
        error, _ = stage.attack(wire)
        if error is None:
            return None
        if isinstance(error, RemoteAlertError):
            # The bytes happened to be an alert from the peer: nothing is sent.
            self.assertEqual(stage.victim.data_to_send(), b"")
            return error
        self.checkFailure(stage, error, allowed)
        return error


class StageTests(HostileTestCase):
    """The harness itself: every stage is reachable and completes honestly."""

    def test_every_stage_completes_honestly(self) -> None:
        for name, spec in STAGES.items():
            for hrr, mtls, resume in itertools.product(
                (False, True) if spec.hrr is None else (spec.hrr,),
                (False, True) if spec.mtls is None else (spec.mtls,),
                (False, True) if spec.resume is None else (spec.resume,),
            ):
                config = Config(hrr=hrr, mtls=mtls, resume=resume)
                stage = self.build(name, config)
                self.assertIs(stage.victim_state, spec.state, name)
                stage.complete()
                self.assertEqual(stage.victim.handshake_result.resumed, resume, stage)


class FragmentationTests(HostileTestCase):
    """Legal framing variations must always succeed."""

    @hostile
    @given(victim_is_client=st.booleans(), config=configs(), data=st.data())
    def test_handshake_messages_fragmented_and_coalesced(
        self, victim_is_client: bool, config: Config, data: st.DataObject
    ) -> None:
        """RFC 8446 §5.1: messages may be split over and joined in records.

        Only a key change forces a record boundary; a valid compatibility
        change_cipher_spec may sit between records (not inside a message)
        until the peer's Finished (RFC 8446 §5).
        """
        name = (
            "client wait ServerHello" if victim_is_client else "server wait ClientHello"
        )
        stage = self.build(name, config)
        peer = stage.peer
        finished_seen = False
        while stage.cursor < len(peer.messages):
            epoch = stage.read_epoch
            batch = []
            while (
                stage.cursor < len(peer.messages)
                and peer.messages[stage.cursor][0] == epoch
            ):
                batch.append(peer.messages[stage.cursor][1])
                stage.cursor += 1
            stream = b"".join(batch)
            ends = set()
            offset = 0
            for raw in batch:
                offset += len(raw)
                ends.add(offset)
            points = data.draw(st.lists(st.integers(0, 2**24), max_size=8))
            points = [1 + p % max(1, len(stream) - 1) for p in points]
            # Drawn whole, up front: how many pieces end a message depends on
            # the stream's length, which varies with the (randomised) ECDSA
            # signatures; a draw per such piece would make the data
            # generation differ between runs of one example.
            add_ccs = data.draw(st.lists(st.booleans(), min_size=9, max_size=9))
            offset = 0
            for index, piece in enumerate(cut(stream, points)):
                wire = stage.record(HANDSHAKE, piece, epoch=epoch)
                start = offset
                offset += len(piece)
                finished_seen = finished_seen or any(
                    raw[0] == H.finished
                    for raw, end in _messages_ending(batch)
                    if start < end <= offset
                )
                # After a whole message (so after the first ClientHello on the
                # server) and before the peer's Finished.
                ccs_allowed = offset in ends and not finished_seen
                if ccs_allowed and add_ccs[index]:
                    wire += plain_record(CCS, b"\x01")
                stage.deliver(wire)
        self.assertTrue(stage.victim.handshake_complete)
        self.assertTrue(peer.handshake_complete)
        # And data flows both ways afterwards.
        stage.victim.send(b"from victim")
        events = peer.receive_data(stage.victim.data_to_send())
        self.assertEqual(events, [ApplicationData(b"from victim")])
        # (Sealed like the peer's earlier records: its own sequence numbers
        # went to records the victim never saw.)
        events = stage.victim.receive_data(stage.record(APPLICATION_DATA, b"from peer"))
        self.assertEqual(events, [ApplicationData(b"from peer")])

    @hostile
    @given(
        config=configs(),
        limit=st.one_of(st.none(), st.integers(64, 2**14 + 1)),
        data=st.data(),
    )
    def test_wire_split_anywhere(
        self, config: Config, limit: int | None, data: st.DataObject
    ) -> None:
        """TCP may cut the byte stream anywhere: records wait, buffers stay small."""
        client, server = self.connections(replace(config, record_size_limit=limit))
        for _ in range(10):
            moved = False
            for sender, receiver in ((client, server), (server, client)):
                wire = sender.data_to_send()
                moved = moved or bool(wire)
                points = data.draw(st.lists(st.integers(0, 2**24), max_size=12))
                points = [1 + p % max(1, len(wire) - 1) for p in points]
                for chunk in cut(wire, points):
                    with watchdog():
                        receiver.receive_data(chunk)
                    self.assertLessEqual(
                        receiver.handshake_state.buffered_record_bytes, MAX_RECORD
                    )
            if not moved:
                break
        self.assertTrue(client.handshake_complete and server.handshake_complete)


def _messages_ending(batch: list[bytes]) -> Iterator[tuple[bytes, int]]:
    offset = 0
    for raw in batch:
        offset += len(raw)
        yield raw, offset


class RecordLayerTests(HostileTestCase):
    """Truncated, bit-flipped, oversized and arbitrary records."""

    @hostile
    @given(spec=stage_specs(HANDSHAKE_STAGES), data=st.data())
    def test_truncated_record(
        self, spec: tuple[str, Config], data: st.DataObject
    ) -> None:
        """A record cut short waits for its end; one whose length was cut fails."""
        stage = self.build(*spec)
        epoch, raw = stage.upcoming[0]
        state = stage.victim_state
        if data.draw(st.booleans(), label="shorten the length field"):
            # The header agrees with the cut: the content is truncated.
            payload = raw[: pick(data, 1, len(raw) - 1)]
            if stage.protected:
                wire = stage.record(HANDSHAKE, raw)
                body = wire[RECORD_HEADER_SIZE:]
                body = body[: pick(data, 0, len(body) - 1)]
                wire = wire[:3] + len(body).to_bytes(2, "big") + body
                self.assertFails(stage, wire, {A.bad_record_mac})
                return
            # A plaintext handshake fragment is legal; anything interleaved
            # before the rest is not (RFC 8446 §5.1).
            error, events = stage.attack(plain_record(HANDSHAKE, payload))
            self.assertIsNone(error)
            self.assertEqual(events, [])
            self.assertIs(stage.victim_state, state)
            other = data.draw(
                st.sampled_from(
                    [
                        plain_record(CCS, b"\x01"),
                        plain_record(ALERT, b"\x01\x00"),
                        plain_record(APPLICATION_DATA, b"data"),
                    ]
                )
            )
            self.assertFails(stage, other, {A.unexpected_message})
            return
        wire = stage.record(HANDSHAKE, raw, epoch=epoch)
        point = pick(data, 1, len(wire) - 1)
        error, events = stage.attack(wire[:point])
        self.assertIsNone(error)
        self.assertEqual(events, [])
        self.assertEqual(stage.victim.data_to_send(), b"")
        self.assertIs(stage.victim_state, state)
        self.assertEqual(stage.victim.handshake_state.buffered_record_bytes, point)
        stage.cursor += 1
        stage.deliver(wire[point:])
        stage.complete()

    @hostile
    @given(spec=stage_specs(PROTECTED_STAGES), data=st.data())
    def test_bit_flip_in_protected_record(
        self, spec: tuple[str, Config], data: st.DataObject
    ) -> None:
        """RFC 8446 §5.2: any change to a protected record is bad_record_mac.

        Except where the header no longer says "protected TLS record": a
        changed type is unexpected_message (§5), a major version other than
        3 means the stream is not TLS (decode_error), and a length beyond
        2^14 + 256 is a record_overflow (§5.2).
        """
        stage = self.build(*spec)
        if stage.upcoming:
            wire = stage.record(HANDSHAKE, stage.upcoming[0][1])
        else:
            wire = stage.record(APPLICATION_DATA, data.draw(st.binary(max_size=64)))
        position = pick(data, 0, len(wire) - 1)
        flipped = bytearray(wire)
        flipped[position] ^= 1 << data.draw(st.integers(0, 7))
        if position == 0:
            expected = {A.unexpected_message}
        elif position == 1:
            expected = {A.decode_error}
        elif position in (3, 4):
            length = int.from_bytes(flipped[3:5], "big")
            if length > MAX_CIPHERTEXT_TLS13:
                expected = {A.record_overflow}
            else:
                expected = {A.bad_record_mac}
                # Complete a lengthened record so that it is opened.
                flipped += bytes(max(0, RECORD_HEADER_SIZE + length - len(flipped)))
        else:
            expected = {A.bad_record_mac}
        self.assertFails(stage, bytes(flipped), expected)

    @hostile
    @given(
        spec=stage_specs(PLAINTEXT_STAGES),
        data=st.data(),
    )
    def test_bit_flip_in_plaintext_record_header(
        self, spec: tuple[str, Config], data: st.DataObject
    ) -> None:
        """RFC 8446 §5.1 on an unprotected record's header: another type is
        an unexpected_message (none is one bit away from handshake that could
        pass), a major version other than 3 is not TLS (decode_error), the
        minor version is ignored, a length beyond 2^14 is a record_overflow."""
        stage = self.build(*spec)
        wire = bytearray(stage.record(HANDSHAKE, stage.upcoming[0][1]))
        position = data.draw(st.integers(0, 4))
        wire[position] ^= 1 << data.draw(st.integers(0, 7))
        if position == 0:
            self.assertFails(stage, bytes(wire), {A.unexpected_message})
        elif position == 1:
            self.assertFails(stage, bytes(wire), {A.decode_error})
        elif position == 2:
            stage.cursor += 1
            stage.deliver(bytes(wire))
            stage.complete()
        elif int.from_bytes(wire[3:5], "big") > MAX_PLAINTEXT:
            self.assertFails(stage, bytes(wire), {A.record_overflow})
        else:
            # A record boundary in the wrong place: whatever follows is
            # misframed; it must fail like any other garbage, or wait.
            self.checkOutcome(stage, bytes(wire), PEER_FAULT)

    @hostile
    @given(spec=stage_specs(), data=st.data())
    def test_oversized_record(
        self, spec: tuple[str, Config], data: st.DataObject
    ) -> None:
        """RFC 8446 §5.1/§5.2: a length over the limit fails on the header."""
        stage = self.build(*spec)
        limit = MAX_CIPHERTEXT_TLS13 if stage.protected else MAX_PLAINTEXT
        length = data.draw(st.integers(limit + 1, 0xFFFF))
        content_type = data.draw(st.sampled_from(list(ContentType)))
        wire = bytes((content_type, 3, 3)) + length.to_bytes(2, "big")
        wire += data.draw(st.binary(max_size=64))
        self.assertFails(stage, wire, {A.record_overflow})

    @hostile
    @given(spec=stage_specs(PROTECTED_STAGES), data=st.data())
    def test_oversized_inner_plaintext(
        self, spec: tuple[str, Config], data: st.DataObject
    ) -> None:
        """RFC 8446 §5.4: more than 2^14 + 1 bytes of inner plaintext."""
        stage = self.build(*spec)
        content_type = data.draw(st.sampled_from([HANDSHAKE, APPLICATION_DATA, ALERT]))
        size = MAX_PLAINTEXT + data.draw(st.integers(1, 200))
        wire = stage.record(content_type, bytes(size))
        self.assertFails(stage, wire, {A.record_overflow})

    @hostile
    @given(
        name=st.sampled_from(
            [
                "client wait Certificate or CertificateRequest",
                "client wait CertificateVerify",
                "client wait Finished",
                "client connected",
                "server wait client Certificate",
                "server wait client Finished",
                "server connected",
            ]
        ),
        limit=st.integers(64, 2**14),
        data=st.data(),
    )
    def test_record_over_advertised_limit(
        self, name: str, limit: int, data: st.DataObject
    ) -> None:
        """RFC 8449 §4: once the limit is negotiated, a protected record whose
        inner plaintext (content and type byte) exceeds it is a
        record_overflow; one at the limit is fine."""
        spec = STAGES[name]
        config = replace(
            data.draw(configs(hrr=spec.hrr, mtls=spec.mtls, resume=spec.resume)),
            record_size_limit=limit,
        )
        stage = self.build(name, config)
        if data.draw(st.booleans(), label="at the limit"):
            assume(stage.victim_state is State.CONNECTED)
            events = stage.deliver(stage.record(APPLICATION_DATA, bytes(limit - 1)))
            self.assertEqual(events, [ApplicationData(bytes(limit - 1))])
            return
        content_type = data.draw(st.sampled_from([HANDSHAKE, APPLICATION_DATA, ALERT]))
        size = limit + pick(data, 0, MAX_PLAINTEXT - limit)
        wire = stage.record(content_type, bytes(size))
        self.assertFails(stage, wire, {A.record_overflow})

    @hostile
    @given(spec=stage_specs(), data=st.data())
    def test_arbitrary_bytes(
        self, spec: tuple[str, Config], data: st.DataObject
    ) -> None:
        """Noise on the wire, in a record, or as the expected message's body."""
        stage = self.build(*spec)
        level = data.draw(st.sampled_from(["wire", "record", "message"]))
        if level == "wire":
            wire = data.draw(st.binary(min_size=1, max_size=300))
            allowed = PEER_FAULT
        elif level == "record":
            content_type = data.draw(st.sampled_from(list(ContentType)))
            wire = stage.record(content_type, data.draw(st.binary(max_size=300)))
            allowed = PEER_FAULT
        else:
            if stage.upcoming:
                msg_type = stage.upcoming[0][1][0]
            else:
                msg_type = data.draw(
                    st.sampled_from(sorted(ACCEPTED_CONNECTED[stage.victim.is_client]))
                )
            body = data.draw(st.binary(max_size=300))
            wire = stage.handshake(handshake_message(msg_type, body))
            allowed = CONTENT_ALERTS[msg_type]
        self.checkOutcome(stage, wire, allowed)


class MessageOrderTests(HostileTestCase):
    """Duplicated, misplaced and straddling handshake messages."""

    @hostile
    @given(spec=stage_specs(LATER_STAGES), data=st.data())
    def test_duplicated_message(
        self, spec: tuple[str, Config], data: st.DataObject
    ) -> None:
        """A message the victim already processed, sent again: out of order."""
        stage = self.build(*spec)
        if stage.upcoming and data.draw(st.booleans(), label="deliver one more"):
            stage.deliver_next()
        index = data.draw(st.integers(0, stage.cursor - 1))
        raw = stage.peer.messages[index][1]
        # NewSessionTicket may legitimately come any number of times.
        assume(raw[0] != H.new_session_ticket)
        plaintext = stage.protected and data.draw(st.booleans(), label="plaintext")
        wire = stage.record(HANDSHAKE, raw, plaintext=plaintext)
        if stage.victim_state is State.SERVER_WAIT_CH2 and not plaintext:
            # The first ClientHello again, where a ClientHello is expected:
            # it lacks the share the HelloRetryRequest asked for (§4.1.2).
            expected = {A.illegal_parameter}
        else:
            expected = {A.unexpected_message}
        self.assertFails(stage, wire, expected)

    @hostile
    @given(spec=stage_specs(), data=st.data())
    def test_message_for_another_state(
        self, spec: tuple[str, Config], data: st.DataObject
    ) -> None:
        """RFC 8446 §4: a message type this state does not accept."""
        stage = self.build(*spec)
        state = stage.victim_state
        accepted = (
            ACCEPTED[state]
            if state is not State.CONNECTED
            else ACCEPTED_CONNECTED[stage.victim.is_client]
        )
        msg_type = data.draw(st.integers(0, 255).filter(lambda t: t not in accepted))
        body = data.draw(st.binary(max_size=100))
        plaintext = stage.protected and data.draw(st.booleans(), label="plaintext")
        wire = stage.record(
            HANDSHAKE, handshake_message(msg_type, body), plaintext=plaintext
        )
        self.assertFails(stage, wire, {A.unexpected_message})

    @hostile
    @given(
        spec=st.one_of(
            stage_specs(
                ("client wait ServerHello", "server wait ClientHello"), hrr=False
            ),
            stage_specs(
                (
                    "client wait ServerHello after HRR",
                    "server wait second ClientHello",
                    "client wait Finished",
                    "server wait client Finished",
                    "client connected",
                    "server connected",
                )
            ),
        ),
        data=st.data(),
    )
    def test_message_straddles_key_change(
        self, spec: tuple[str, Config], data: st.DataObject
    ) -> None:
        """RFC 8446 §5.1: a message before a key change must end its record.

        The key-changing messages: ServerHello and the ClientHello that gets
        one, each side's Finished, and KeyUpdate.
        """
        stage = self.build(*spec)
        epoch = stage.read_epoch
        if stage.victim_state is not State.CONNECTED:
            key_change = stage.upcoming[0][1]
            stage.cursor += 1
        else:
            request = data.draw(st.integers(0, 1))
            key_change = handshake_message(H.key_update, bytes((request,)))
        if data.draw(st.booleans(), label="a real next message"):
            extra = handshake_message(H.key_update, b"\x00")
            extra = extra[: pick(data, 1, len(extra))]
        else:
            extra = data.draw(st.binary(min_size=1, max_size=40))
        split = pick(data, 0, len(key_change) - 1)
        first, second = key_change[:split], key_change[split:] + extra
        wire = (
            stage.record(HANDSHAKE, first, epoch=epoch) if first else b""
        ) + stage.record(HANDSHAKE, second, epoch=epoch)
        limit = stage.victim.context.max_handshake_message_size
        if len(extra) >= 4 and int.from_bytes(extra[1:4], "big") > limit:
            # The reassembler refuses the declared length before anything.
            expected = {A.illegal_parameter}
        else:
            expected = {A.unexpected_message}
        self.assertFails(stage, wire, expected)

    @hostile
    @given(spec=stage_specs(), data=st.data())
    def test_zero_length_records(
        self, spec: tuple[str, Config], data: st.DataObject
    ) -> None:
        """RFC 8446 §5.1: no empty handshake or alert fragments."""
        stage = self.build(*spec)
        content_type = data.draw(st.sampled_from(list(ContentType)))
        plaintext = stage.protected and data.draw(st.booleans(), label="plaintext")
        wire = stage.record(content_type, b"", plaintext=plaintext)
        connected = stage.victim_state is State.CONNECTED
        if content_type == APPLICATION_DATA and connected and not plaintext:
            error, _ = stage.attack(wire)
            self.assertIsNone(error)
            return
        if plaintext and content_type == APPLICATION_DATA:
            expected = {A.bad_record_mac}  # it is opened as ciphertext
        else:
            expected = {A.unexpected_message}
        self.assertFails(stage, wire, expected)

    @hostile
    @given(spec=stage_specs(), data=st.data())
    def test_change_cipher_spec(
        self, spec: tuple[str, Config], data: st.DataObject
    ) -> None:
        """RFC 8446 §5: only an unprotected 0x01 between the first ClientHello
        and the peer's Finished is dropped; anything else is unexpected."""
        stage = self.build(*spec)
        state = stage.victim_state
        variant = data.draw(
            st.sampled_from(["valid", "payload", "protected", "inside a message"])
        )
        if variant == "valid":
            wire = plain_record(CCS, b"\x01")
            allowed = state not in (State.SERVER_START, State.CONNECTED)
            if allowed:
                error, events = stage.attack(wire)
                self.assertIsNone(error)
                self.assertEqual(events, [])
                stage.complete()
                return
        elif variant == "payload":
            payload = data.draw(st.binary(max_size=8).filter(lambda p: p != b"\x01"))
            wire = plain_record(CCS, payload)
        elif variant == "protected":
            assume(stage.protected)
            wire = stage.record(CCS, b"\x01")
        else:
            assume(stage.upcoming)
            raw = stage.upcoming[0][1]
            part = raw[: pick(data, 1, len(raw) - 1)]
            wire = stage.record(HANDSHAKE, part) + plain_record(CCS, b"\x01")
        self.assertFails(stage, wire, {A.unexpected_message})

    @hostile
    @given(
        spec=stage_specs(
            tuple(n for n in HANDSHAKE_STAGES if n != "server wait ClientHello")
        ),
        data=st.data(),
    )
    def test_change_cipher_spec_flood(
        self, spec: tuple[str, Config], data: st.DataObject
    ) -> None:
        """The compatibility CCS carries nothing: like an empty record, 32 in
        a row are dropped, the 33rd is an unexpected_message (BoringSSL and
        OpenSSL draw the line at the same place).  A record that carries
        something starts the count again."""
        stage = self.build(*spec)
        ccs = plain_record(CCS, b"\x01")
        if data.draw(st.booleans(), label="within the bound"):
            error, events = stage.attack(ccs * data.draw(st.integers(1, 32)))
            self.assertIsNone(error)
            self.assertEqual(events, [])
            while stage.upcoming:
                # Each honest message (a record that carries something)
                # starts a new run.
                stage.deliver_next()
                if stage.victim.handshake_complete:
                    break
                error, _ = stage.attack(ccs * 32)
                self.assertIsNone(error)
            stage.complete()
            return
        count = data.draw(st.integers(33, 1000))
        self.assertFails(stage, ccs * count, {A.unexpected_message})

    @hostile
    @given(spec=stage_specs(HANDSHAKE_STAGES), data=st.data())
    def test_application_data_before_handshake(
        self, spec: tuple[str, Config], data: st.DataObject
    ) -> None:
        stage = self.build(*spec)
        payload = data.draw(st.binary(max_size=100))
        if stage.protected and data.draw(st.booleans(), label="plaintext"):
            # Unprotected application data where keys are set is ciphertext
            # that does not authenticate.
            wire = plain_record(APPLICATION_DATA, payload)
            self.assertFails(stage, wire, {A.bad_record_mac})
            return
        wire = stage.record(APPLICATION_DATA, payload)
        self.assertFails(stage, wire, {A.unexpected_message})


class AlertTests(HostileTestCase):
    """Alerts received: malformed ones fail, well-formed ones end the peer."""

    @hostile
    @given(spec=stage_specs(), data=st.data())
    def test_alert_of_wrong_length(
        self, spec: tuple[str, Config], data: st.DataObject
    ) -> None:
        """RFC 8446 §6: an alert is two bytes; §5.1: alerts are never coalesced."""
        stage = self.build(*spec)
        payload = data.draw(
            st.binary(min_size=1, max_size=40).filter(lambda p: len(p) != 2)
        )
        self.assertFails(stage, stage.record(ALERT, payload), {A.decode_error})

    @hostile
    @given(
        spec=stage_specs(),
        level=st.integers(0, 255),
        description=st.integers(0, 255),
    )
    def test_alert_from_peer(
        self, spec: tuple[str, Config], level: int, description: int
    ) -> None:
        """RFC 8446 §6: every alert but close_notify and user_canceled is fatal,
        unknown ones included; nothing is sent back."""
        stage = self.build(*spec)
        wire = stage.record(ALERT, bytes((level, description)))
        error, events = stage.attack(wire)
        if description == A.close_notify:
            self.assertIsNone(error)
            self.assertEqual(events, [CloseNotify()])
            return
        if description == A.user_canceled:
            self.assertIsNone(error)
            self.assertEqual(
                events, [AlertReceived(AlertLevel.warning, A.user_canceled)]
            )
            return
        unsettled = stage.victim_state is State.SERVER_START or (
            stage.victim_state is State.CLIENT_WAIT_SH and stage.cursor == 0
        )
        if level == AlertLevel.warning and unsettled:
            # Before the version is known a warning may be a TLS 1.2 one
            # (RFC 5246 §7.2: unrecognized_name before a ServerHello): reported,
            # not fatal.
            self.assertIsNone(error)
            self.assertEqual(events, [AlertReceived(AlertLevel.warning, description)])
            return
        self.assertIsInstance(error, RemoteAlertError)
        assert isinstance(error, RemoteAlertError)
        self.assertEqual(error.raw_description, description)
        if description in AlertDescription._value2member_map_:
            self.assertEqual(error.alert, description)
        self.assertEqual(stage.victim.data_to_send(), b"")
        self.assertIs(stage.victim.state, ConnectionState.FAILED)
        self.assertRaises(
            ConnectionClosedError, stage.victim.receive_data, plain_record(ALERT, b"")
        )


class LimitTests(HostileTestCase):
    """Configured bounds: handshake message size and certificate chain length."""

    @hostile
    @given(
        size=st.sampled_from([2**14, 2**15, 2**17]),
        data=st.data(),
    )
    def test_oversized_handshake_message(self, size: int, data: st.DataObject) -> None:
        """A declared length over the victim's bound fails on the header,
        before the body is buffered (illegal_parameter: the syntax is fine,
        the value is refused).  The bound is max_handshake_message_size, but
        32 KiB at most for what a server holds of anything except a client
        Certificate it asked for (held_limit)."""
        name, config = data.draw(
            stage_specs(victim_options=(("max_handshake_message_size", size),))
        )
        stage = self.build(name, config)
        state = stage.victim_state
        if state is State.CONNECTED:
            accepted = ACCEPTED_CONNECTED[stage.victim.is_client]
        else:
            accepted = ACCEPTED[state]
        msg_type = data.draw(st.sampled_from(sorted(accepted)))
        size = held_limit(stage.victim, msg_type)
        if data.draw(st.booleans(), label="within the limit"):
            length = data.draw(st.integers(size // 2, size))
            header = bytes((msg_type,)) + length.to_bytes(3, "big")
            error, _ = stage.attack(stage.record(HANDSHAKE, header + bytes(100)))
            self.assertIsNone(error)
            self.assertTrue(stage.victim.handshake_state.buffered_handshake_bytes)
            return
        length = data.draw(st.integers(size + 1, 2**24 - 1))
        header = bytes((msg_type,)) + length.to_bytes(3, "big")
        body = data.draw(st.binary(max_size=100))
        split = data.draw(st.integers(0, 3))
        if split:
            wire = stage.record(HANDSHAKE, header[:split]) + stage.record(
                HANDSHAKE, header[split:] + body
            )
        else:
            wire = stage.record(HANDSHAKE, header + body)
        self.assertFails(stage, wire, {A.illegal_parameter})
        self.assertLessEqual(stage.victim.handshake_state.buffered_handshake_bytes, 4)

    @hostile
    @given(
        name=st.sampled_from(
            [
                "client wait Certificate or CertificateRequest",
                "client wait Certificate after CertificateRequest",
                "server wait client Certificate",
            ]
        ),
        limit=st.integers(1, 4),
        data=st.data(),
    )
    def test_certificate_chain_too_long(
        self, name: str, limit: int, data: st.DataObject
    ) -> None:
        """More certificates than max_certificate_chain_length: bad_certificate,
        before any of them is parsed."""
        spec = STAGES[name]
        config = data.draw(
            configs(
                mtls=bool(spec.mtls or not spec.victim_is_client),
                resume=False,
                victim_options=(("max_certificate_chain_length", limit),),
            )
        )
        stage = self.build(name, config)
        raw = stage.upcoming[0][1]
        self.assertEqual(raw[0], H.certificate)
        honest = messages.Certificate.parse(raw[4:])
        count = limit + data.draw(st.integers(1, 12))
        entries = list(honest.entries)
        while len(entries) < count:
            entries.append(
                data.draw(
                    st.sampled_from(
                        [
                            honest.entries[-1],
                            messages.CertificateEntry(b"\x30\x00", []),
                            messages.CertificateEntry(b"junk", []),
                        ]
                    )
                )
            )
        certificate = replace(honest, entries=entries[:count])
        wire = stage.handshake(messages.encode_handshake(certificate))
        self.assertFails(stage, wire, {A.bad_certificate})


def _hello_without_extensions_alert(stage_name: str) -> AlertDescription:
    """The alert for a hello without extensions at ``stage_name``."""
    if stage_name == "client wait ServerHello after HRR":
        return A.illegal_parameter
    return A.protocol_version


class MessageContentTests(HostileTestCase):
    """Mutated messages of the expected type, re-encrypted where needed."""

    @hostile
    @given(spec=stage_specs(HANDSHAKE_STAGES), data=st.data())
    def test_truncated_or_extended_message(
        self, spec: tuple[str, Config], data: st.DataObject
    ) -> None:
        """A body cut short or with trailing bytes is a decode_error (§6.2)."""
        stage = self.build(*spec)
        raw = stage.upcoming[0][1]
        msg_type, body = raw[0], raw[4:]
        if data.draw(st.booleans(), label="truncate"):
            new = body[: pick(data, 0, len(body) - 1)]
        else:
            new = body + data.draw(st.binary(min_size=1, max_size=20))
        expected = {A.decode_error}
        if msg_type in (H.client_hello, H.server_hello) and len(new) == (
            _extensions_offset(msg_type, body)
        ):
            expected = {_hello_without_extensions_alert(spec[0])}
        wire = stage.handshake(handshake_message(msg_type, new))
        self.assertFails(stage, wire, expected)

    def test_hello_without_extensions(self) -> None:
        """
        A hello cut right before its extension block is a pre-TLS 1.3 hello:
        protocol_version, except a ServerHello after a HelloRetryRequest,
        which changes the version the HelloRetryRequest selected
        (illegal_parameter, RFC 8446 §4.1.4).
        """
        for name in (
            "client wait ServerHello",
            "client wait ServerHello after HRR",
            "server wait ClientHello",
            "server wait second ClientHello",
        ):
            stage = self.build(name, Config(hrr=STAGES[name].hrr is True))
            raw = stage.upcoming[0][1]
            msg_type, body = raw[0], raw[4:]
            new = body[: _extensions_offset(msg_type, body)]
            wire = stage.handshake(handshake_message(msg_type, new))
            self.assertFails(stage, wire, {_hello_without_extensions_alert(name)})

    @hostile
    @given(
        spec=stage_specs(("client connected", "server connected")),
        data=st.data(),
    )
    def test_post_handshake_rules(
        self, spec: tuple[str, Config], data: st.DataObject
    ) -> None:
        """RFC 8446 §4.6: KeyUpdate takes 0 or 1 (else illegal_parameter);
        a ticket may live seven days at most; a CertificateRequest without
        post_handshake_auth is an unexpected_message (§4.6.2)."""
        stage = self.build(*spec)
        variants = ["key update value", "key update length", "certificate request"]
        if stage.victim.is_client:
            variants.append("ticket lifetime")
        variant = data.draw(st.sampled_from(variants))
        if variant == "key update value":
            message = handshake_message(
                H.key_update, bytes((data.draw(st.integers(2, 255)),))
            )
            expected = {A.illegal_parameter}
        elif variant == "key update length":
            body = data.draw(st.sampled_from([b"", b"\x00\x00", b"\x01\x00\x00"]))
            message = handshake_message(H.key_update, body)
            expected = {A.decode_error}
        elif variant == "certificate request":
            message = messages.encode_handshake(
                messages.CertificateRequest(
                    certificate_request_context=b"\x01",
                    signature_algorithms=[SignatureScheme.ed25519],
                )
            )
            expected = {A.unexpected_message}
        else:
            message = messages.encode_handshake(
                messages.NewSessionTicket(
                    ticket_lifetime=data.draw(st.integers(604801, 2**32 - 1)),
                    ticket_age_add=0,
                    ticket_nonce=b"",
                    ticket=b"ticket",
                )
            )
            expected = {A.illegal_parameter}
        self.assertFails(stage, stage.handshake(message), expected)

    def test_certificate_with_mistyped_name(self) -> None:
        """A commonName encoded as a BIT STRING: cryptography refuses to build
        the Name with TypeError; it is still just a bad certificate."""
        common_name = bytes.fromhex("0603550403")  # OID 2.5.4.3
        for name in (
            "client wait Certificate or CertificateRequest",
            "server wait client Certificate",
        ):
            for which in (0, 1):  # the issuer's name, then the subject's
                stage = self.build(name, Config(mtls=name.startswith("server")))
                raw = stage.upcoming[0][1]
                certificate = parsed(raw)
                der = bytearray(certificate.entries[0].cert_data)
                at = -1
                for _ in range(which + 1):
                    at = der.index(common_name, at + 1)
                value = at + len(common_name)
                der[value] = 0x03  # BIT STRING
                der[value + 2] = 0x00  # no unused bits
                entries = [
                    replace(certificate.entries[0], cert_data=bytes(der)),
                    *certificate.entries[1:],
                ]
                wire = stage.handshake(
                    messages.encode_handshake(replace(certificate, entries=entries))
                )
                self.assertFails(stage, wire, CERTIFICATE_ALERTS)

    @hostile
    @given(
        name=st.sampled_from(["client wait Finished", "server wait client Finished"]),
        config=configs(),
        data=st.data(),
    )
    def test_finished_tampered(
        self, name: str, config: Config, data: st.DataObject
    ) -> None:
        """RFC 8446 §4.4.4: a wrong verify_data is a decrypt_error."""
        stage = self.build(name, config)
        raw = bytearray(stage.upcoming[0][1])
        position = pick(data, 4, len(raw) - 1)
        raw[position] ^= 1 << data.draw(st.integers(0, 7))
        self.assertFails(stage, stage.handshake(bytes(raw)), {A.decrypt_error})

    def test_finished_of_wrong_length(self) -> None:
        """RFC 8446 §4.4.4: verify_data is exactly Hash.length bytes; §6.2: a
        message of the wrong length is a decode_error, never the
        decrypt_error of a verify_data that merely does not match."""
        for name in ("client wait Finished", "server wait client Finished"):
            for suite in SUITES:
                honest = self.build(name, Config(suite=suite)).upcoming[0][1][4:]
                for variant in (
                    b"",
                    honest[:-1],
                    honest + b"\x00",
                    honest[:32] if len(honest) == 48 else honest + bytes(16),
                ):
                    stage = self.build(name, Config(suite=suite))
                    wire = stage.handshake(handshake_message(H.finished, variant))
                    self.assertFails(stage, wire, {A.decode_error})

    @hostile
    @given(
        name=st.sampled_from(
            ["client wait CertificateVerify", "server wait client CertificateVerify"]
        ),
        data=st.data(),
    )
    def test_certificate_verify_tampered(self, name: str, data: st.DataObject) -> None:
        """RFC 8446 §4.4.3: a signature that does not verify is a
        decrypt_error; a scheme the verifier never offered is refused."""
        spec = STAGES[name]
        config = data.draw(
            configs(mtls=True if not spec.victim_is_client else None, resume=False)
        )
        stage = self.build(name, config)
        raw = stage.upcoming[0][1]
        verify = messages.CertificateVerify.parse(raw[4:])
        if stage.victim.is_client:
            hello = messages.ClientHello.parse(stage.victim.messages[0][1][4:])
            offered = set(hello.signature_algorithms or ())
        else:
            request = next(
                messages.CertificateRequest.parse(m[4:])
                for _, m in stage.victim.messages
                if m[0] == H.certificate_request
            )
            offered = set(request.signature_algorithms)
        if data.draw(st.booleans(), label="flip a signature bit"):
            signature = bytearray(verify.signature)
            signature[pick(data, 0, len(signature) - 1)] ^= 1 << data.draw(
                st.integers(0, 7)
            )
            tampered = replace(verify, signature=bytes(signature))
            expected = {A.decrypt_error}
        else:
            algorithm = data.draw(
                st.one_of(
                    st.sampled_from(list(SignatureScheme)), st.integers(0, 0xFFFF)
                )
            )
            assume(algorithm != verify.algorithm)
            tampered = replace(verify, algorithm=algorithm)
            # Offered but unfit for the key: the signature cannot verify.
            expected = (
                {A.decrypt_error} if algorithm in offered else {A.illegal_parameter}
            )
        wire = stage.handshake(messages.encode_handshake(tampered))
        self.assertFails(stage, wire, expected)

    @hostile
    @given(spec=stage_specs(HANDSHAKE_STAGES), data=st.data())
    def test_bit_flip_in_expected_message(
        self, spec: tuple[str, Config], data: st.DataObject
    ) -> None:
        """Flip one bit of the next message, re-encrypt, send the rest of the
        flight: the handshake must fail -- at once, or when the transcripts
        disagree -- and never with internal_error."""
        stage = self.build(*spec)
        epoch = stage.read_epoch
        batch = [raw for e, raw in stage.upcoming if e == epoch]
        mutated = bytearray(batch[0])
        position = pick(data, 0, len(mutated) - 1)
        mutated[position] ^= 1 << data.draw(st.integers(0, 7))
        wire = stage.handshake(bytes(mutated)) + b"".join(
            stage.handshake(raw) for raw in batch[1:]
        )
        stage.cursor += len(batch)
        error, _ = stage.attack(wire)
        if error is not None:
            self.checkFailure(stage, error, PEER_FAULT, peer_reads_alert=False)
            if position == 0:
                self.assertEqual(error.alert, A.unexpected_message)
            return
        # Accepted: the victim waits for more of a lengthened message, or the
        # change shows later, on one side or the other.
        if stage.victim.handshake_state.buffered_handshake_bytes:
            return
        self._expect_failure_later(stage)

    def _expect_failure_later(self, stage: Stage) -> None:
        for _ in range(10):
            try:
                stage.flush()
            except TLSError as error:
                self.assertNotInternal(error)
                return
            if stage.cursor >= len(stage.peer.messages):
                break
            error, _ = stage.attack(
                stage.handshake(stage.peer.messages[stage.cursor][1])
            )
            stage.cursor += 1
            if error is not None:
                self.checkFailure(stage, error, PEER_FAULT, peer_reads_alert=False)
                return
        self.assertFalse(
            stage.victim.handshake_complete and stage.peer.handshake_complete,
            f"{stage}: a tampered handshake completed",
        )


def _extensions_offset(msg_type: int, body: bytes) -> int:
    """Where the extensions block of a ClientHello or ServerHello starts."""
    offset = 2 + 32
    offset += 1 + body[offset]  # legacy_session_id
    if msg_type == H.server_hello:
        return offset + 2 + 1  # cipher_suite, legacy_compression_method
    offset += 2 + int.from_bytes(body[offset : offset + 2], "big")  # cipher_suites
    return offset + 1 + body[offset]  # legacy_compression_methods


# -- RFC rules: one specific violation, one specific alert ------------------------

Mutation = Callable[[Stage, bytes, st.DataObject], bytes]
E = ExtensionType


def extensions_offset(msg_type: int, body: bytes) -> int:
    """Where the extension block of a message body starts."""
    if msg_type in (H.client_hello, H.server_hello):
        return _extensions_offset(msg_type, body)
    if msg_type == H.certificate_request:
        return 1 + body[0]  # certificate_request_context
    return 0  # EncryptedExtensions


def split_extensions(raw: bytes) -> tuple[bytes, list[tuple[int, bytes]]]:
    """A message's body up to its extensions, and the extensions as sent."""
    body = raw[4:]
    offset = extensions_offset(raw[0], body)
    block = body[offset + 2 :]
    extensions = []
    while block:
        length = int.from_bytes(block[2:4], "big")
        extensions.append((int.from_bytes(block[:2], "big"), block[4 : 4 + length]))
        block = block[4 + length :]
    return body[:offset], extensions


def join_extensions(
    msg_type: int, head: bytes, extensions: list[tuple[int, bytes]]
) -> bytes:
    block = b"".join(
        t.to_bytes(2, "big") + len(d).to_bytes(2, "big") + d for t, d in extensions
    )
    return handshake_message(msg_type, head + len(block).to_bytes(2, "big") + block)


def edit_extensions(
    raw: bytes, edit: Callable[[list[tuple[int, bytes]]], list[tuple[int, bytes]]]
) -> bytes:
    head, extensions = split_extensions(raw)
    return join_extensions(raw[0], head, edit(extensions))


def parsed(raw: bytes) -> Any:
    return messages.TLS13_MESSAGES[raw[0]].parse(raw[4:])


def reencoded(raw: bytes, **changes: Any) -> bytes:
    """The message with some fields changed, re-encoded."""
    return messages.encode_handshake(replace(parsed(raw), **changes))


def _other_suite(stage: Stage, raw: bytes, data: st.DataObject) -> bytes:
    suite = data.draw(
        st.sampled_from([s for s in SUITES if s != stage.config.suite] + [0x00FF])
    )
    return reencoded(raw, cipher_suite=suite)


def _flip_session_id(stage: Stage, raw: bytes, data: st.DataObject) -> bytes:
    echo = bytearray(parsed(raw).legacy_session_id_echo)
    echo[pick(data, 0, len(echo) - 1)] ^= 1 << data.draw(st.integers(0, 7))
    return reencoded(raw, legacy_session_id_echo=bytes(echo))


def _unshared_group(stage: Stage, raw: bytes, data: st.DataObject) -> bytes:
    share = parsed(raw).key_share
    group = data.draw(st.sampled_from([g for g in GROUPS if g != share.group]))
    return reencoded(raw, key_share=replace(share, group=group))


def _short_share(stage: Stage, raw: bytes, data: st.DataObject) -> bytes:
    share = parsed(raw).key_share
    size = pick(data, 1, len(share.key_exchange) - 1)
    return reencoded(
        raw, key_share=replace(share, key_exchange=share.key_exchange[:size])
    )


def _unknown_extension(stage: Stage, raw: bytes, data: st.DataObject) -> bytes:
    # A type nobody registered; unsolicited in any response (RFC 8446 §4.2).
    return edit_extensions(raw, lambda exts: [*exts, (0xFAFB, b"")])


def _hrr_group(choose: Callable[[Stage], list[int]]) -> Mutation:
    def mutate(stage: Stage, raw: bytes, data: st.DataObject) -> bytes:
        return reencoded(raw, selected_group=data.draw(st.sampled_from(choose(stage))))

    return mutate


def _shared_group(stage: Stage) -> list[int]:
    hello = messages.ClientHello.parse(stage.client.messages[0][1][4:])
    return [entry.group for entry in hello.key_share or ()]


def _unoffered_group(stage: Stage) -> list[int]:
    hello = messages.ClientHello.parse(stage.client.messages[0][1][4:])
    return [g for g in (*GROUPS, 0x0019, 0x1234) if g not in hello.supported_groups]


def _client_hello(**changes: Any) -> Mutation:
    def mutate(stage: Stage, raw: bytes, data: st.DataObject) -> bytes:
        return reencoded(raw, **changes)

    return mutate


def _drop_extension(*types: int) -> Mutation:
    def mutate(stage: Stage, raw: bytes, data: st.DataObject) -> bytes:
        return edit_extensions(raw, lambda exts: [e for e in exts if e[0] not in types])

    return mutate


def _stray_key_share(stage: Stage, raw: bytes, data: st.DataObject) -> bytes:
    hello = parsed(raw)
    group = data.draw(
        st.sampled_from(
            [g for g in (*GROUPS, 0x0019) if g not in hello.supported_groups]
        )
    )
    entry = messages.KeyShareEntry(group=group, key_exchange=b"\x01" * 32)
    return reencoded(raw, key_share=[*hello.key_share, entry])


def _twice_the_share(stage: Stage, raw: bytes, data: st.DataObject) -> bytes:
    hello = parsed(raw)
    return reencoded(raw, key_share=[*hello.key_share, hello.key_share[0]])


def _client_short_share(stage: Stage, raw: bytes, data: st.DataObject) -> bytes:
    hello = parsed(raw)
    share = hello.key_share[0]
    size = pick(data, 1, len(share.key_exchange) - 1)
    entry = replace(share, key_exchange=share.key_exchange[:size])
    return reencoded(raw, key_share=[entry, *hello.key_share[1:]])


def _psk_first(stage: Stage, raw: bytes, data: st.DataObject) -> bytes:
    def edit(exts: list[tuple[int, bytes]]) -> list[tuple[int, bytes]]:
        psk = [e for e in exts if e[0] == E.pre_shared_key]
        return psk + [e for e in exts if e[0] != E.pre_shared_key]

    return edit_extensions(raw, edit)


def _flip_binder(stage: Stage, raw: bytes, data: st.DataObject) -> bytes:
    # The binder is the last 32 bytes or more of the message (§4.2.11).
    flipped = bytearray(raw)
    flipped[len(raw) - 1 - pick(data, 0, 31)] ^= 1 << data.draw(st.integers(0, 7))
    return bytes(flipped)


def _duplicate_extension(stage: Stage, raw: bytes, data: st.DataObject) -> bytes:
    def edit(exts: list[tuple[int, bytes]]) -> list[tuple[int, bytes]]:
        candidates = [e for e in exts if e[0] != E.pre_shared_key]
        twice = data.draw(st.sampled_from(candidates))
        return [twice, *exts]

    return edit_extensions(raw, edit)


def _duplicate_after_unknown_extensions(
    stage: Stage, raw: bytes, data: st.DataObject
) -> bytes:
    def edit(exts: list[tuple[int, bytes]]) -> list[tuple[int, bytes]]:
        count = data.draw(st.integers(1000, 5000))
        unknown = [(0x4000 + i, b"") for i in range(count)]
        psk = [e for e in exts if e[0] == E.pre_shared_key]
        rest = [e for e in exts if e[0] != E.pre_shared_key]
        twice = data.draw(st.sampled_from([*rest, unknown[pick(data, 0, count - 1)]]))
        return [*rest, *unknown, twice, *psk]

    return edit_extensions(raw, edit)


def _retry_share(stage: Stage, raw: bytes, data: st.DataObject) -> bytes:
    hello = parsed(raw)
    asked = hello.key_share[0].group
    group = data.draw(
        st.sampled_from([g for g in hello.supported_groups if g != asked])
    )
    entry = messages.KeyShareEntry(group=group, key_exchange=b"\x01" * 32)
    return reencoded(raw, key_share=[entry])


def _retry_random(stage: Stage, raw: bytes, data: st.DataObject) -> bytes:
    random = bytearray(parsed(raw).random)
    random[pick(data, 0, 31)] ^= 1 << data.draw(st.integers(0, 7))
    return reencoded(raw, random=bytes(random))


def _psk_index(stage: Stage, raw: bytes, data: st.DataObject) -> bytes:
    return reencoded(raw, pre_shared_key=data.draw(st.integers(1, 0xFFFF)))


def _certificate(**changes: Any) -> Mutation:
    def mutate(stage: Stage, raw: bytes, data: st.DataObject) -> bytes:
        return reencoded(raw, **changes)

    return mutate


def _entry_extension(stage: Stage, raw: bytes, data: st.DataObject) -> bytes:
    certificate = parsed(raw)
    entries = list(certificate.entries)
    index = pick(data, 0, len(entries) - 1)
    extension = data.draw(
        st.sampled_from(
            [(E.status_request, b"\x01\x00\x00\x00\x00"), (18, b"\x00\x00")]
        )
    )
    entries[index] = replace(entries[index], extensions=[extension])
    return messages.encode_handshake(replace(certificate, entries=entries))


def _garbage_leaf(stage: Stage, raw: bytes, data: st.DataObject) -> bytes:
    certificate = parsed(raw)
    junk = data.draw(st.binary(min_size=1, max_size=64))
    entries = [
        replace(certificate.entries[0], cert_data=junk),
        *certificate.entries[1:],
    ]
    return messages.encode_handshake(replace(certificate, entries=entries))


def _flip_in_certificate(stage: Stage, raw: bytes, data: st.DataObject) -> bytes:
    certificate = parsed(raw)
    entries = list(certificate.entries)
    index = pick(data, 0, len(entries) - 1)
    der = bytearray(entries[index].cert_data)
    der[pick(data, 0, len(der) - 1)] ^= 1 << data.draw(st.integers(0, 7))
    entries[index] = replace(entries[index], cert_data=bytes(der))
    return messages.encode_handshake(replace(certificate, entries=entries))


def _request_without_signature_algorithms(
    stage: Stage, raw: bytes, data: st.DataObject
) -> bytes:
    return _drop_extension(E.signature_algorithms)(stage, raw, data)


def _encrypted_extension(extension: tuple[int, bytes]) -> Mutation:
    def mutate(stage: Stage, raw: bytes, data: st.DataObject) -> bytes:
        return edit_extensions(raw, lambda exts: [*exts, extension])

    return mutate


@dataclass(frozen=True)
class Rule:
    """One RFC requirement on peer input and the alert its violation earns."""

    stages: tuple[str, ...]
    mutate: Mutation
    alerts: frozenset[AlertDescription]
    config: tuple[tuple[str, Any], ...] = ()  #: forced Config fields


def rule(
    stages: str | tuple[str, ...],
    mutate: Mutation,
    *alerts: AlertDescription,
    **config: Any,
) -> Rule:
    if isinstance(stages, str):
        stages = (stages,)
    return Rule(stages, mutate, frozenset(alerts), tuple(config.items()))


WAIT_SH = "client wait ServerHello"
WAIT_SH2 = "client wait ServerHello after HRR"
WAIT_CH = "server wait ClientHello"
WAIT_CH2 = "server wait second ClientHello"
RULES: dict[str, Rule] = {
    # RFC 8446 §4.1.3: "A client which receives a cipher suite that was not
    # offered MUST abort the handshake with an illegal_parameter alert."
    "ServerHello suite not offered": rule(
        (WAIT_SH, WAIT_SH2), _other_suite, A.illegal_parameter
    ),
    # §4.1.3: a legacy_session_id_echo that does not match: illegal_parameter.
    "ServerHello session id echo": rule(
        (WAIT_SH, WAIT_SH2), _flip_session_id, A.illegal_parameter
    ),
    # §4.2.1: a version not offered or below TLS 1.3: illegal_parameter.
    "ServerHello supported_versions": rule(
        (WAIT_SH, WAIT_SH2),
        lambda s, raw, d: reencoded(
            raw, supported_versions=d.draw(st.sampled_from([0x0303, 0x0302, 0x7F1C]))
        ),
        A.illegal_parameter,
    ),
    # §4.1.3: legacy_compression_method MUST be 0.
    "ServerHello compression": rule(
        (WAIT_SH, WAIT_SH2),
        lambda s, raw, d: reencoded(
            raw, legacy_compression_method=d.draw(st.integers(1, 255))
        ),
        A.illegal_parameter,
        A.decode_error,
    ),
    # §4.2.1: no supported_versions means TLS 1.2, which this client refuses.
    # (key_share and pre_shared_key go too: no place in a TLS 1.2 ServerHello.)
    "ServerHello without supported_versions": rule(
        WAIT_SH,
        _drop_extension(E.supported_versions, E.key_share, E.pre_shared_key),
        A.protocol_version,
        hrr=False,
    ),
    # §4.1.4: the ServerHello after a retry keeps the version the
    # HelloRetryRequest selected; without supported_versions it would be
    # TLS 1.2: illegal_parameter, whether or not the client allows 1.2.
    "ServerHello after HRR without supported_versions": rule(
        WAIT_SH2,
        _drop_extension(E.supported_versions, E.key_share, E.pre_shared_key),
        A.illegal_parameter,
    ),
    # §4.2.8: the share must be for a group the client sent a share for.
    "ServerHello share for another group": rule(
        WAIT_SH, _unshared_group, A.illegal_parameter, hrr=False
    ),
    "ServerHello malformed share": rule(
        WAIT_SH, _short_share, A.illegal_parameter, A.decode_error, hrr=False
    ),
    "ServerHello after HRR malformed share": rule(
        WAIT_SH2, _short_share, A.illegal_parameter, A.decode_error
    ),
    # §9.2: (EC)DHE without PSK needs key_share.
    "ServerHello without key_share": rule(
        WAIT_SH,
        _drop_extension(E.key_share),
        A.missing_extension,
        hrr=False,
        resume=False,
    ),
    # §4.2: an extension response nobody asked for: unsupported_extension.
    "ServerHello unsolicited extension": rule(
        (WAIT_SH, WAIT_SH2), _unknown_extension, A.unsupported_extension
    ),
    # §4.2: a known extension where it does not belong: illegal_parameter.
    "ServerHello misplaced extension": rule(
        (WAIT_SH, WAIT_SH2),
        _encrypted_extension((E.supported_groups, b"\x00\x02\x00\x1d")),
        A.illegal_parameter,
    ),
    # §4.2.11: the selected identity must be one the client offered.
    "ServerHello PSK identity out of range": rule(
        (WAIT_SH, WAIT_SH2), _psk_index, A.illegal_parameter, resume=True
    ),
    "ServerHello PSK never offered": rule(
        WAIT_SH,
        _encrypted_extension((E.pre_shared_key, b"\x00\x00")),
        A.unsupported_extension,
        resume=False,
        hrr=False,
    ),
    "ServerHello after HRR PSK never offered": rule(
        WAIT_SH2,
        _encrypted_extension((E.pre_shared_key, b"\x00\x00")),
        A.unsupported_extension,
        resume=False,
    ),
    # §4.1.4: a HelloRetryRequest asking for a share the client already sent,
    # for a group it did not offer, or for no change: illegal_parameter.
    "HelloRetryRequest for a group already shared": rule(
        WAIT_SH, _hrr_group(_shared_group), A.illegal_parameter, hrr=True
    ),
    "HelloRetryRequest for a group not offered": rule(
        WAIT_SH, _hrr_group(_unoffered_group), A.illegal_parameter, hrr=True
    ),
    "HelloRetryRequest without change": rule(
        WAIT_SH,
        lambda s, raw, d: reencoded(raw, selected_group=None, cookie=None),
        A.illegal_parameter,
        hrr=True,
    ),
    # §4.1.4 / §4.2.8: the ServerHello after a retry keeps its suite and
    # answers with the group the retry named.
    "ServerHello after HRR with another group": rule(
        WAIT_SH2, _unshared_group, A.illegal_parameter
    ),
    # §4.2: EncryptedExtensions may only answer what was asked.
    "EncryptedExtensions unsolicited": rule(
        "client wait EncryptedExtensions",
        lambda s, raw, d: edit_extensions(
            raw,
            lambda exts: [
                *exts,
                d.draw(
                    st.sampled_from(
                        [
                            (0xFAFB, b""),
                            (E.early_data, b""),
                            (
                                E.application_layer_protocol_negotiation,
                                b"\x00\x03\x02h2",
                            ),
                        ]
                    )
                ),
            ],
        ),
        A.unsupported_extension,
    ),
    "EncryptedExtensions misplaced extension": rule(
        "client wait EncryptedExtensions",
        _encrypted_extension((E.key_share, b"\x00\x1d\x00\x01\x01")),
        A.illegal_parameter,
    ),
    # §4.3.2: an empty context in the handshake; signature_algorithms required.
    "CertificateRequest context": rule(
        "client wait Certificate or CertificateRequest",
        lambda s, raw, d: reencoded(
            raw, certificate_request_context=d.draw(st.binary(min_size=1, max_size=8))
        ),
        A.illegal_parameter,
        mtls=True,
    ),
    "CertificateRequest without signature_algorithms": rule(
        "client wait Certificate or CertificateRequest",
        _request_without_signature_algorithms,
        A.missing_extension,
        mtls=True,
    ),
    # §4.4.2.4: "If the server supplies an empty Certificate message, the
    # client MUST abort the handshake with a decode_error alert."
    "server Certificate empty": rule(
        (
            "client wait Certificate or CertificateRequest",
            "client wait Certificate after CertificateRequest",
        ),
        _certificate(entries=[]),
        A.decode_error,
    ),
    # §4.4.2.4: a server that requires one may abort with certificate_required.
    "client Certificate empty": rule(
        "server wait client Certificate",
        _certificate(entries=[]),
        A.certificate_required,
    ),
    # §4.4.2: the context echoes the (empty) CertificateRequest context.
    "Certificate context": rule(
        (
            "client wait Certificate or CertificateRequest",
            "client wait Certificate after CertificateRequest",
            "server wait client Certificate",
        ),
        lambda s, raw, d: reencoded(
            raw, certificate_request_context=d.draw(st.binary(min_size=1, max_size=8))
        ),
        A.illegal_parameter,
    ),
    # §4.4.2: entry extensions must answer the ClientHello (we offer none).
    "Certificate entry extension": rule(
        (
            "client wait Certificate or CertificateRequest",
            "client wait Certificate after CertificateRequest",
            "server wait client Certificate",
        ),
        _entry_extension,
        A.unsupported_extension,
    ),
    "Certificate unparsable leaf": rule(
        (
            "client wait Certificate or CertificateRequest",
            "client wait Certificate after CertificateRequest",
            "server wait client Certificate",
        ),
        _garbage_leaf,
        A.bad_certificate,
        A.decode_error,
    ),
    # A changed certificate no longer verifies (or, where the signature does
    # not cover the change, the transcript no longer matches).
    "Certificate bit flip": rule(
        (
            "client wait Certificate or CertificateRequest",
            "client wait Certificate after CertificateRequest",
            "server wait client Certificate",
        ),
        _flip_in_certificate,
        *CERTIFICATE_ALERTS,
        A.decode_error,
        A.decrypt_error,
    ),
    # §4.1.2: "If a TLS 1.3 ClientHello is received with any other value in
    # this field [compression], the server MUST abort the handshake with an
    # illegal_parameter alert."
    "ClientHello compression": rule(
        WAIT_CH,
        lambda s, raw, d: reencoded(
            raw,
            legacy_compression_methods=d.draw(
                st.sampled_from([b"\x01", b"\x00\x01", b"\x01\x00", b"\x40"])
            ),
        ),
        A.illegal_parameter,
    ),
    # §4.2.1: no version in common: protocol_version.
    "ClientHello without TLS 1.3": rule(
        WAIT_CH,
        lambda s, raw, d: reencoded(
            raw,
            supported_versions=d.draw(
                st.sampled_from([None, [0x0303], [0x0302, 0x0301], [0x7F1C]])
            ),
        ),
        A.protocol_version,
    ),
    # §D.5: "Implementations MUST NOT send a ClientHello.legacy_version ...
    # set to 0x0300 or less", and one set to 0x0300 is a protocol_version:
    # so are the malformed ones below it (major version 0, 1 or 2), even
    # though supported_versions offers TLS 1.3.
    "ClientHello legacy_version 0x0300 or below": rule(
        (WAIT_CH, WAIT_CH2),
        lambda s, raw, d: reencoded(
            raw,
            legacy_version=d.draw(
                st.one_of(
                    st.sampled_from([0x0000, 0x0001, 0x0100, 0x0103, 0x0200, 0x0300]),
                    st.integers(0, 0x0300),
                )
            ),
        ),
        A.protocol_version,
    ),
    # §9.2: mandatory extensions.
    "ClientHello without signature_algorithms": rule(
        WAIT_CH,
        _drop_extension(E.signature_algorithms),
        A.missing_extension,
        resume=False,
    ),
    "ClientHello key_share without supported_groups": rule(
        WAIT_CH,
        lambda s, raw, d: _drop_extension(
            d.draw(st.sampled_from([E.supported_groups, E.key_share]))
        )(s, raw, d),
        A.missing_extension,
        resume=False,
    ),
    # §4.2.8: shares only for offered groups, at most one per group.
    "ClientHello share for a group not offered": rule(
        WAIT_CH, _stray_key_share, A.illegal_parameter, resume=False
    ),
    "ClientHello two shares for one group": rule(
        WAIT_CH, _twice_the_share, A.illegal_parameter, resume=False, hrr=False
    ),
    "ClientHello malformed share": rule(
        WAIT_CH,
        _client_short_share,
        A.illegal_parameter,
        A.decode_error,
        resume=False,
        hrr=False,
    ),
    # §4.1.1: no cipher suite in common.
    "ClientHello no common suite": rule(
        WAIT_CH,
        lambda s, raw, d: reencoded(
            raw, cipher_suites=d.draw(st.sampled_from([[0x00FF], [0xC02B, 0x1305]]))
        ),
        A.handshake_failure,
        resume=False,
    ),
    # RFC 8449 §4: a limit below 64 is an illegal_parameter.
    "ClientHello record_size_limit below 64": rule(
        WAIT_CH,
        lambda s, raw, d: edit_extensions(
            raw,
            lambda exts: [
                *exts,
                (E.record_size_limit, d.draw(st.integers(0, 63)).to_bytes(2, "big")),
            ],
        ),
        A.illegal_parameter,
        resume=False,
    ),
    # §4.2: one extension of a type per block.
    "ClientHello duplicate extension": rule(
        (WAIT_CH, WAIT_CH2), _duplicate_extension, A.illegal_parameter, A.decode_error
    ),
    # §4.2: unknown extensions are ignored, but not a second copy of one:
    # the duplicate check holds after thousands of them (and stays linear).
    "ClientHello duplicate after thousands of unknown extensions": rule(
        (WAIT_CH, WAIT_CH2),
        _duplicate_after_unknown_extensions,
        A.illegal_parameter,
    ),
    # §4.2.11: "Servers MUST check that it [pre_shared_key] is the last
    # extension and otherwise fail the handshake with an illegal_parameter
    # alert."
    "ClientHello pre_shared_key not last": rule(
        (WAIT_CH, WAIT_CH2), _psk_first, A.illegal_parameter, resume=True
    ),
    # §4.2.9: a PSK offered without psk_key_exchange_modes must be refused.
    "ClientHello PSK without modes": rule(
        (WAIT_CH, WAIT_CH2),
        _drop_extension(E.psk_key_exchange_modes),
        A.missing_extension,
        A.illegal_parameter,
        resume=True,
    ),
    # §4.2.11.2 / §6.2: a binder that does not verify is a decrypt_error.
    "ClientHello PSK binder": rule(
        (WAIT_CH, WAIT_CH2), _flip_binder, A.decrypt_error, resume=True
    ),
    # §4.1.2 / §4.2.8: the retried ClientHello changes only the share (for
    # the group the HelloRetryRequest named) and the cookie.
    "second ClientHello share for another group": rule(
        WAIT_CH2, _retry_share, A.illegal_parameter, resume=False
    ),
    "second ClientHello other random": rule(
        WAIT_CH2, _retry_random, A.illegal_parameter, resume=False
    ),
}


def _rule_message_type(name: str) -> int:
    """The message a rule changes, from the first word of its name."""
    first = name.split()[0]
    if first in ("HelloRetryRequest", "ServerHello"):
        return H.server_hello
    if first in ("ClientHello", "second"):
        return H.client_hello
    if first in ("server", "client", "Certificate"):
        return H.certificate
    return {
        "EncryptedExtensions": H.encrypted_extensions,
        "CertificateRequest": H.certificate_request,
    }[first]


class RuleTests(HostileTestCase):
    """RFC requirements with a specific alert, one violation at a time."""

    @settings(hostile, max_examples=3 * EXAMPLES)
    @given(name=st.sampled_from(sorted(RULES)), data=st.data())
    def test_rule(self, name: str, data: st.DataObject) -> None:
        rule = RULES[name]
        stage_name = data.draw(st.sampled_from(rule.stages))
        spec = STAGES[stage_name]
        forced = dict(rule.config)
        config = data.draw(
            configs(
                hrr=spec.hrr if spec.hrr is not None else forced.get("hrr"),
                mtls=spec.mtls if spec.mtls is not None else forced.get("mtls"),
                resume=spec.resume if spec.resume is not None else forced.get("resume"),
            )
        )
        assume(all(getattr(config, k) == v for k, v in rule.config))
        stage = self.build(stage_name, config)
        target = _rule_message_type(name)
        while stage.upcoming[0][1][0] != target:
            stage.deliver_next()  # a CertificateRequest before the Certificate
        raw = stage.upcoming[0][1]
        mutated = rule.mutate(stage, raw, data)
        self.assertNotEqual(mutated, raw)
        self.assertFails(stage, stage.handshake(mutated), rule.alerts)

    def test_every_rule_applies(self) -> None:
        """Each rule's stages can be reached with its config."""
        for name, rule in RULES.items():
            forced = dict(rule.config)
            for stage_name in rule.stages:
                spec = STAGES[stage_name]
                for key, value in forced.items():
                    wanted = getattr(spec, key)
                    self.assertIn(wanted, (None, value), f"{name}: {stage_name}")


class EarlyDataTests(HostileTestCase):
    """0-RTT data the server never agreed to."""

    @hostile
    @given(config=configs(resume=False), data=st.data())
    def test_refused_early_data_is_skipped_within_bounds(
        self, config: Config, data: st.DataObject
    ) -> None:
        """RFC 8446 §4.2.10: a server that refuses 0-RTT skips the client's
        early records, but only up to a bound; past it, unexpected_message.
        Nothing is buffered meanwhile.

        Skipped records are the ones that do not decrypt under the handshake
        keys (counted as the least plaintext they could hold), or, after a
        HelloRetryRequest, unprotected application_data records.
        """
        stage = self.early_data_stage(config)
        skipped = 0
        while True:
            size = pick(data, 2000, MAX_CIPHERTEXT_TLS13)
            cost = size if config.hrr else size - 17  # minus the tag and type
            error, _ = stage.attack(plain_record(APPLICATION_DATA, bytes(size)))
            if skipped + cost > _EARLY_DATA_SKIP_LIMIT:
                self.assertIsNotNone(error)
                assert error is not None
                self.checkFailure(
                    stage, error, {A.unexpected_message}, peer_reads_alert=False
                )
                return
            self.assertIsNone(error)
            self.assertEqual(stage.victim.handshake_state.buffered_record_bytes, 0)
            skipped += cost

    def early_data_stage(self, config: Config) -> Stage:
        """A server that got a ClientHello announcing early data."""
        stage = self.build("server wait ClientHello", config)
        raw = stage.upcoming[0][1]
        hello = edit_extensions(raw, lambda exts: [*exts, (E.early_data, b"")])
        error, _ = stage.attack(stage.handshake(hello))
        self.assertIsNone(error)
        return stage

    def test_full_size_early_record_after_retry(self) -> None:
        """After a HelloRetryRequest the server reads unprotected records,
        but skipped 0-RTT records are ciphertext: up to 2^14 + 256 bytes
        (RFC 8446 §5.2), not a record_overflow."""
        stage = self.early_data_stage(Config(hrr=True))
        record = plain_record(APPLICATION_DATA, bytes(MAX_CIPHERTEXT_TLS13))
        error, _ = stage.attack(record * 3)
        self.assertIsNone(error)
        self.assertFails(
            stage,
            plain_record(APPLICATION_DATA, bytes(MAX_CIPHERTEXT_TLS13 + 1)),
            {A.record_overflow},
        )

    def test_flood_of_empty_early_records_is_bounded(self) -> None:
        """Records too short to hold early data still count: skipping them
        cannot go on forever (each costs at least one byte of the budget)."""
        for hrr in (False, True):
            stage = self.early_data_stage(Config(hrr=hrr))
            # Protected: 17 bytes is a tag and an inner type, no data at all.
            record = plain_record(APPLICATION_DATA, b"" if hrr else bytes(17))
            error, _ = stage.attack(record * (_EARLY_DATA_SKIP_LIMIT // 2))
            self.assertIsNone(error)
            self.assertFails(
                stage,
                record * (_EARLY_DATA_SKIP_LIMIT // 2 + 1),
                {A.unexpected_message},
                peer_reads_alert=False,
            )


class EndToEndTests(HostileTestCase):
    """Bit flips anywhere in a real handshake's wire bytes."""

    @hostile
    @given(config=configs(), data=st.data())
    def test_bit_flip_anywhere(self, config: Config, data: st.DataObject) -> None:
        """One flipped bit in any flight: some side fails with a peer-fault
        alert and the other reads a TLSError; only the ignored minor version
        of a plaintext record header may change without consequence."""
        client, server = self.connections(config)
        flights = 5 if config.hrr else 3
        target = data.draw(st.integers(0, flights - 1), label="flight")
        harmless = False
        failed: tuple[Connection, Connection, TLSError] | None = None
        flight = 0
        for _ in range(10):
            moved = False
            for sender, receiver in ((client, server), (server, client)):
                wire = sender.data_to_send()
                if not wire:
                    continue
                moved = True
                if flight == target:
                    position = pick(data, 0, len(wire) - 1)
                    flipped = bytearray(wire)
                    flipped[position] ^= 1 << data.draw(st.integers(0, 7))
                    harmless = _is_plaintext_minor_version(wire, position)
                    wire = bytes(flipped)
                flight += 1
                try:
                    with watchdog():
                        receiver.receive_data(wire)
                except TLSError as error:
                    failed = (receiver, sender, error)
                    break
                self.assertLessEqual(
                    receiver.handshake_state.buffered_record_bytes, MAX_RECORD
                )
            if failed or not moved:
                break
        if failed is None:
            complete = client.handshake_complete and server.handshake_complete
            if harmless:
                self.assertTrue(complete)
            else:
                # Not complete: someone waits for the rest of a lengthened
                # record or message.
                self.assertFalse(complete, "a tampered handshake completed")
            return
        receiver, sender, error = failed
        self.assertNotInternal(error)
        self.assertIn(error.alert, PEER_FAULT, str(error))
        self.assertFalse(harmless, f"harmless change failed: {error}")
        alert = receiver.data_to_send()
        self.assertTrue(alert)
        if sender.error is None:
            with self.assertRaises(TLSError) as caught:
                sender.receive_data(alert)
            self.assertNotInternal(caught.exception)


def _is_plaintext_minor_version(wire: bytes, position: int) -> bool:
    """Is ``position`` the legacy version minor byte of a plaintext record?

    RFC 8446 §5.1: legacy_record_version is ignored; protected records carry
    their header in the additional data, so only plaintext ones qualify.
    """
    offset = 0
    while offset < len(wire):
        content_type = wire[offset]
        end = (
            offset
            + RECORD_HEADER_SIZE
            + int.from_bytes(wire[offset + 3 : offset + 5], "big")
        )
        if position == offset + 2:
            return content_type != APPLICATION_DATA
        offset = end
    return False
