"""No secret in a ``repr()`` (issue 9 item 4; DESIGN.md, security stance).

Real handshakes of every kind - TLS 1.3 full and resumed (the ClientHello
then carries a ticket and a binder), TLS 1.2 full, resumed by ticket and by
session ID, and a TLS 1.2 renegotiation (renegotiation_info carries the
Finished values).  After every flight, a walk over every object of this
library reachable from the two Connections, the Sessions and the events:
handshake states, key schedules, record protections, messages, the Context
and its ticket keys.  Every secret found on the way (master and traffic
secrets, PSKs, binders, tickets, Finished verify_data) is looked for in the
``repr()`` of every object met, as hex, as a bytes literal and as base64.
"""

from __future__ import annotations

import base64
import contextlib
import enum
import re
from collections.abc import Iterable, Iterator
from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from tests.certs import CertificateFactory
from twisted_sslfile.constants import ProtocolVersion
from twisted_sslfile.context import Context
from twisted_sslfile.engine import messages
from twisted_sslfile.engine.connection import Connection

TLS12 = ProtocolVersion.TLS_1_2
TLS13 = ProtocolVersion.TLS_1_3

#: Attribute names that hold secrets (or, for tickets and renegotiation_info,
#: values that must not reach a log either).
_SECRET_NAME = re.compile(
    r"secret|psk|ticket|verify_data|binder|identity|renegotiation_info"
)

#: The secrets a walk must find, so that the test cannot pass by seeing none.
_EXPECTED = {
    TLS13: {
        "KeySchedule13.early_secret",
        "KeySchedule13._handshake_secret",
        "KeySchedule13._master_secret",
        "TLS13Client._client_hs_secret",
        "TLS13Client._read_secret",
        "TLS13Client._write_secret",
        "TLS13Client.resumption_master_secret",
        "TLS13Server.resumption_master_secret",
        "Session.resumption_psk",
        "Session.ticket",
        "PskIdentity.identity",
        "OfferedPsks.binders",
    },
    TLS12: {
        "TLS12Negotiation.master_secret",
        "TLS12Negotiation.client_verify_data",
        "TLS12Negotiation.server_verify_data",
        "TLS12Negotiation.ticket",
        "Session.master_secret",
        "Session.ticket",
        "ServerSessionState.secret",
        "ClientHello.session_ticket",
        "ClientHello.renegotiation_info",
    },
}


def _attributes(obj: object) -> Iterator[tuple[str, Any]]:
    seen: set[str] = set()
    for name, value in getattr(obj, "__dict__", {}).items():
        seen.add(name)
        yield name, value
    for cls in type(obj).__mro__:
        for name in getattr(cls, "__slots__", ()):
            if name in seen or name in ("__dict__", "__weakref__"):
                continue
            seen.add(name)
            with contextlib.suppress(AttributeError):  # an unset slot
                yield name, getattr(obj, name)


def reachable(roots: Iterable[object]) -> list[object]:
    """Every object of this library reachable from ``roots`` by attributes
    and containers (other libraries' objects, e.g. cryptography's keys, are
    opaque and not entered)."""
    seen: set[int] = set()
    stack = list(roots)
    found = []
    while stack:
        obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if isinstance(
            obj, (str, bytes, bytearray, memoryview, int, float, enum.Enum, type(None))
        ):
            continue
        if isinstance(obj, (list, tuple, set, frozenset)):
            stack.extend(obj)
            continue
        if isinstance(obj, dict):
            stack.extend(obj.keys())
            stack.extend(obj.values())
            continue
        if not type(obj).__module__.startswith("twisted_sslfile"):
            continue
        found.append(obj)
        stack.extend(value for _, value in _attributes(obj))
    return found


def secrets_in(objects: Iterable[object]) -> dict[bytes, set[str]]:
    """Secret value -> the "Class.attribute"s where it was found."""
    found: dict[bytes, set[str]] = {}
    for obj in objects:
        for name, value in _attributes(obj):
            if not _SECRET_NAME.search(name):
                continue
            values = value if isinstance(value, (list, tuple)) else [value]
            for item in values:
                # 12 bytes: the shortest secret (TLS 1.2 verify_data).
                if isinstance(item, (bytes, bytearray)) and len(item) >= 12:
                    where = found.setdefault(bytes(item), set())
                    where.add(f"{type(obj).__name__}.{name}")
    return found


def spellings(secret: bytes) -> list[str]:
    return [
        secret.hex(),
        secret.hex().upper(),
        repr(secret),
        base64.b64encode(secret).decode(),
    ]


class ReprSecretTests(SynchronousTestCase):
    maxDiff = None

    def setUp(self) -> None:
        self.pki = CertificateFactory(self.mktemp())
        self.credential = self.pki.server("example.com").credential()
        #: Every secret seen, and every repr taken, at any moment.
        self.secrets: dict[bytes, set[str]] = {}
        self.reprs: list[tuple[str, str]] = []

    def observe(self, *roots: object) -> None:
        """Take the secrets and the reprs of everything reachable now: the
        handshake states change (and drop messages) from flight to flight."""
        objects = reachable(roots)
        for secret, where in secrets_in(objects).items():
            self.secrets.setdefault(secret, set()).update(where)
        self.reprs += [(type(obj).__name__, repr(obj)) for obj in objects]

    def pump(self, client: Connection, server: Connection) -> None:
        """:func:`tests.test_connection.pump`, observing after each flight."""
        events: list[object] = []
        for _ in range(20):
            to_server = client.data_to_send()
            if to_server:
                events += server.receive_data(to_server)
                self.observe(client, server, events)
            to_client = server.data_to_send()
            if to_client:
                events += client.receive_data(to_client)
                self.observe(client, server, events)
            if not to_server and not to_client:
                return
        raise AssertionError("connections kept talking")

    def run_pair(
        self, client_context: Context, server_context: Context, session: Any = None
    ) -> Connection:
        """A handshake and some data; returns the client."""
        client = Connection(
            client_context, is_client=True, server_name="example.com", session=session
        )
        server = Connection(server_context, is_client=False)
        client.start()
        self.observe(client, server, client_context, server_context)
        self.pump(client, server)
        client.send(b"data")
        self.pump(client, server)
        return client

    def assertNoSecretInRepr(self, version: ProtocolVersion) -> None:
        missing = _EXPECTED[version].difference(*self.secrets.values())
        self.assertEqual(missing, set(), "the walk did not reach these secrets")
        leaks = set()
        for name, text in self.reprs:
            for secret, where in self.secrets.items():
                if any(form in text for form in spellings(secret)):
                    leaks.add(f"repr of {name} shows {' = '.join(sorted(where))}")
        self.assertEqual(sorted(leaks), [])

    def test_tls13(self) -> None:
        server_context = Context(credentials=[self.credential])
        client_context = Context(trust_roots=self.pki.trust_roots)
        client = self.run_pair(client_context, server_context)
        # Resumed: the ClientHello held by the client carries the ticket
        # (a PskIdentity) and the binder.
        self.run_pair(client_context, server_context, client.session)
        self.assertNoSecretInRepr(TLS13)

    def test_tls12(self) -> None:
        server_context = Context(
            credentials=[self.credential],
            max_version=TLS12,
            allow_peer_renegotiation=True,
        )
        ids_context = server_context.replace(session_tickets=False)
        client_context = Context(trust_roots=self.pki.trust_roots, max_version=TLS12)
        for context in (server_context, ids_context):
            client = self.run_pair(client_context, context)
            self.run_pair(client_context, context, client.session)
        # A renegotiation: its hellos carry the last Finished values in
        # renegotiation_info (RFC 5746 §3.4).
        client = Connection(client_context, is_client=True, server_name="example.com")
        server = Connection(server_context, is_client=False)
        client.start()
        self.pump(client, server)
        client.renegotiate()
        self.pump(client, server)
        self.assertNoSecretInRepr(TLS12)

    def test_messages(self) -> None:
        """Messages no state object keeps (the state machines use them and
        drop them) hide their secrets too, should one reach a log."""
        secret = bytes(range(100, 148))
        nonce = bytes(range(8, 40))
        for message in (
            messages.Finished(secret),
            messages.NewSessionTicket(
                ticket_lifetime=7200,
                ticket_age_add=5,
                ticket_nonce=nonce,
                ticket=secret,
            ),
            messages.NewSessionTicket12(7200, secret),
            messages.ServerHello(
                random=bytes(32), cipher_suite=0x1301, renegotiation_info=secret
            ),
        ):
            text = repr(message)
            self.assertIn(type(message).__name__, text)
            for value in (secret, nonce):
                for form in spellings(value):
                    self.assertNotIn(form, text)
