"""Tests for twisted_sslfile.engine.sessions and the Context's session options."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import stat
import threading
import warnings
from dataclasses import fields
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from tests.certs import CertificateFactory
from twisted_sslfile import ticketkeyfile
from twisted_sslfile._files import InsecureFileWarning
from twisted_sslfile.constants import (
    CipherSuite,
    ClientCertificatePolicy,
    ProtocolVersion,
)
from twisted_sslfile.context import DEFAULT_TICKETS_PER_HANDSHAKE, Context
from twisted_sslfile.engine.sessions import (
    CLOCK_SKEW_TOLERANCE,
    MAX_SESSION_LIFETIME,
    ServerSessionState,
    Session,
    SessionCache,
)
from twisted_sslfile.engine.ticketkeys import (
    MAX_ISSUED_TICKET_LENGTH,
    TICKET_OVERHEAD,
    TicketKey,
    TicketKeys,
)
from twisted_sslfile.errors import InternalError, TicketKeyFileError
from twisted_sslfile.ticketkeyfile import (
    FileTicketKeys,
    generate_key_file,
    read_key_file,
    rotate_key_file,
    write_key_file,
)
from twisted_sslfile.x509 import (
    ConfigurationError,
    TrustRoots,
    client_verification_policy,
    load_trust_roots,
    verification_policy,
)

TLS12 = ProtocolVersion.TLS_1_2
TLS13 = ProtocolVersion.TLS_1_3
CS = CipherSuite
T0 = 1_900_000_000.0  # an arbitrary "now" for the fake clocks

PSK32 = bytes(range(32))
PSK48 = bytes(range(100, 148))
MASTER = bytes(range(48))
POLICY = bytes(range(200, 232))  # a Session/ServerSessionState.verification_policy
CERTS = (b"\x30\x03leaf-der", b"\x30\x03intermediate-der")


class FakeClock:
    """An injectable clock the test moves by hand."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class FakeRandom:
    """Deterministic random(n) that counts how often it was asked."""

    def __init__(self, seed: bytes = b"seed") -> None:
        self.seed = seed
        self.calls = 0

    def __call__(self, n: int) -> bytes:
        self.calls += 1
        out = b""
        block = 0
        while len(out) < n:
            out += hashlib.sha256(
                self.seed + self.calls.to_bytes(8, "big") + block.to_bytes(4, "big")
            ).digest()
            block += 1
        return out[:n]


def session13(**changes: object) -> Session:
    fields: dict[str, object] = {
        "version": TLS13,
        "cipher_suite": CS.TLS_AES_128_GCM_SHA256,
        "server_name": "example.com",
        "alpn_protocol": b"h2",
        "peer_certificates": CERTS,
        "verified": True,
        "verification_policy": POLICY,
        "created_at": T0,
        "lifetime": 7200,
        "ticket": b"opaque-ticket-bytes",
        "resumption_psk": PSK32,
        "ticket_age_add": 0x12345678,
        "max_early_data": 0,
    }
    fields.update(changes)
    return Session(**fields)  # type: ignore[arg-type]


def session12(**changes: object) -> Session:
    fields: dict[str, object] = {
        "version": TLS12,
        "cipher_suite": CS.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        "server_name": "example.org",
        "next_protocol": b"spdy/3",
        "peer_certificates": CERTS[:1],
        "created_at": T0,
        "lifetime": 3600,
        "session_id": b"\x01" * 32,
        "master_secret": MASTER,
        "extended_master_secret": True,
        "ticket": b"rfc5077-ticket",
    }
    fields.update(changes)
    return Session(**fields)  # type: ignore[arg-type]


def state13(**changes: object) -> ServerSessionState:
    fields: dict[str, object] = {
        "version": TLS13,
        "cipher_suite": CS.TLS_AES_256_GCM_SHA384,
        "secret": PSK48,
        "created_at": T0,
        "lifetime": 7200,
        "server_name": "example.com",
        "alpn_protocol": b"http/1.1",
        "peer_certificates": CERTS,
        "verified": True,
        "verification_policy": POLICY,
        "ticket_age_add": 0xDEADBEEF,
    }
    fields.update(changes)
    return ServerSessionState(**fields)  # type: ignore[arg-type]


def state12(**changes: object) -> ServerSessionState:
    fields: dict[str, object] = {
        "version": TLS12,
        "cipher_suite": CS.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
        "secret": MASTER,
        "created_at": T0,
        "lifetime": 7200,
        "extended_master_secret": True,
    }
    fields.update(changes)
    return ServerSessionState(**fields)  # type: ignore[arg-type]


def assert_no_secret(test: SynchronousTestCase, text: str, *secrets: bytes) -> None:
    for secret in filter(None, secrets):
        for form in (repr(secret), secret.hex(), base64.b64encode(secret).decode()):
            test.assertNotIn(form, text)


# ---------------------------------------------------------------------------
# Session
# ---------------------------------------------------------------------------


class SessionTests(SynchronousTestCase):
    def test_round_trip_tls13(self) -> None:
        session = session13()
        loaded = Session.from_bytes(session.to_bytes())
        self.assertEqual(loaded, session)
        for name in Session.__dataclass_fields__:
            self.assertEqual(getattr(loaded, name), getattr(session, name), name)
        self.assertIs(loaded.version, TLS13)
        self.assertIs(loaded.cipher_suite, CS.TLS_AES_128_GCM_SHA256)

    def test_round_trip_tls12(self) -> None:
        session = session12()
        loaded = Session.from_bytes(session.to_bytes())
        self.assertEqual(loaded, session)
        self.assertEqual(loaded.master_secret, MASTER)
        self.assertEqual(loaded.next_protocol, b"spdy/3")
        self.assertIsNone(loaded.alpn_protocol)
        self.assertTrue(loaded.extended_master_secret)

    def test_round_trip_minimal(self) -> None:
        session = session13(
            server_name=None,
            alpn_protocol=None,
            peer_certificates=(),
            verified=False,
            verification_policy=b"",
        )
        loaded = Session.from_bytes(bytearray(session.to_bytes()))
        self.assertEqual(loaded, session)
        self.assertIsNone(loaded.server_name)
        self.assertEqual(loaded.peer_certificates, ())

    def test_round_trip_unicode_name_and_float_time(self) -> None:
        session = session13(server_name="bücher.example", created_at=T0 + 0.123456789)
        loaded = Session.from_bytes(session.to_bytes())
        self.assertEqual(loaded.server_name, "bücher.example")
        self.assertEqual(loaded.created_at, T0 + 0.123456789)

    def test_equality(self) -> None:
        self.assertEqual(session13(), session13())
        self.assertNotEqual(session13(), session13(resumption_psk=b"\x01" * 32))
        self.assertNotEqual(session13(), session12())
        self.assertNotEqual(session13(), "a session")
        self.assertEqual(hash(session13()), hash(session13()))

    def test_frozen(self) -> None:
        session = session13()
        with self.assertRaises(AttributeError):
            session.ticket = b"x"  # type: ignore[misc]

    def test_coerces_integers(self) -> None:
        session = session13(version=0x0304, cipher_suite=0x1302, resumption_psk=PSK48)
        self.assertIs(session.version, TLS13)
        self.assertIs(session.cipher_suite, CS.TLS_AES_256_GCM_SHA384)

    def test_psk_length_follows_suite_hash(self) -> None:
        session13(cipher_suite=CS.TLS_AES_256_GCM_SHA384, resumption_psk=PSK48)
        self.assertRaises(
            ValueError,
            session13,
            cipher_suite=CS.TLS_AES_256_GCM_SHA384,
            resumption_psk=PSK32,
        )

    def test_invalid_fields(self) -> None:
        bad13 = [
            {"version": ProtocolVersion.TLS_1_1},
            {"version": True},
            {"cipher_suite": CS.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256},
            {"cipher_suite": CS.TLS_EMPTY_RENEGOTIATION_INFO_SCSV},
            {"cipher_suite": 0x9999},
            {"ticket": b""},
            {"ticket": b"x" * 65536},
            {"resumption_psk": b""},
            {"session_id": b"\x01"},
            {"master_secret": MASTER},
            {"extended_master_secret": True},
            {"ticket_age_add": -1},
            {"ticket_age_add": 2**32},
            {"lifetime": -1},
            {"lifetime": 7200.0},
            {"created_at": float("nan")},
            {"created_at": -1.0},
            {"created_at": "now"},
            {"server_name": ""},
            {"server_name": b"example.com"},
            {"server_name": "a" * 256},
            {"server_name": "\udcff.example"},
            {"alpn_protocol": b""},
            {"alpn_protocol": "h2"},
            {"peer_certificates": b"der"},
            {"peer_certificates": (b"",)},
            {"verified": 1},
        ]
        for change in bad13:
            self.assertRaises(ValueError, session13, **change)
        bad12 = [
            {"master_secret": b"\x00" * 47},
            {"session_id": b"\x01" * 33},
            {"resumption_psk": PSK32},
            {"ticket_age_add": 1},
            {"max_early_data": 1},
            {"cipher_suite": CS.TLS_AES_128_GCM_SHA256},
        ]
        for change in bad12:
            self.assertRaises(ValueError, session12, **change)

    def test_repr_hides_secrets(self) -> None:
        for session in (session13(), session12()):
            text = repr(session)
            self.assertIn("Session", text)
            assert_no_secret(
                self,
                text,
                PSK32,
                MASTER,
                session.ticket,
                session.session_id,
            )
        self.assertIn("example.com", repr(session13()))
        self.assertIn("TLS_AES_128_GCM_SHA256", repr(session13()))

    def test_is_resumable_lifetime(self) -> None:
        session = session13(lifetime=100)
        self.assertTrue(session.is_resumable(T0))
        self.assertTrue(session.is_resumable(T0 + 99.9))
        self.assertFalse(session.is_resumable(T0 + 100))
        # A clock that went backwards does not spoil the session.
        self.assertTrue(session.is_resumable(T0 - 50))
        self.assertFalse(session13(lifetime=0).is_resumable(T0))
        self.assertEqual(session.expires_at, T0 + 100)

    def test_is_resumable_capped_at_seven_days(self) -> None:
        session = session13(lifetime=2**32 - 1)
        self.assertTrue(session.is_resumable(T0 + MAX_SESSION_LIFETIME - 1))
        self.assertFalse(session.is_resumable(T0 + MAX_SESSION_LIFETIME))
        self.assertEqual(session.expires_at, T0 + MAX_SESSION_LIFETIME)

    def test_is_resumable_tls12(self) -> None:
        self.assertTrue(session12().is_resumable(T0))
        self.assertTrue(session12(ticket=b"").is_resumable(T0))
        self.assertTrue(session12(session_id=b"").is_resumable(T0))
        # RFC 7627 §5.3: never resume without extended master secret.
        self.assertFalse(session12(extended_master_secret=False).is_resumable(T0))
        # Nothing to offer.
        self.assertFalse(session12(ticket=b"", session_id=b"").is_resumable(T0))

    def test_matches_server_name(self) -> None:
        session = session13(server_name="Example.COM")
        self.assertTrue(session.matches_server_name("example.com"))
        self.assertTrue(session.matches_server_name("example.com."))
        self.assertFalse(session.matches_server_name("other.example.com"))
        self.assertFalse(session.matches_server_name(None))
        anonymous = session13(server_name=None)
        self.assertTrue(anonymous.matches_server_name(None))
        self.assertFalse(anonymous.matches_server_name("example.com"))

    def test_verification_policy_goes_with_verified(self) -> None:
        """verified=True needs the 32-byte policy it was verified under, and
        an unverified session carries none (issue 9 item 1)."""
        self.assertEqual(session13().verification_policy, POLICY)
        unverified = session12()
        self.assertFalse(unverified.verified)
        self.assertEqual(unverified.verification_policy, b"")
        for change in (
            {"verified": True, "verification_policy": b""},
            {"verified": False, "verification_policy": POLICY},
            {"verified": True, "verification_policy": POLICY[:31]},
            {"verified": True, "verification_policy": POLICY + b"x"},
            {"verified": True, "verification_policy": "ab" * 16},
        ):
            self.assertRaises(ValueError, session13, **change)
        self.assertEqual(
            session12(
                verified=True, verification_policy=bytearray(POLICY)
            ).verification_policy,
            POLICY,
        )

    def test_verified_under(self) -> None:
        session = session13()
        self.assertTrue(session.verified_under(POLICY))
        self.assertFalse(session.verified_under(bytes(32)))
        self.assertFalse(session.verified_under(b""))
        self.assertFalse(session.verified_under(POLICY[:16]))
        self.assertFalse(session12().verified_under(b""))
        self.assertFalse(session12().verified_under(POLICY))

    def test_repr_says_whether_verified(self) -> None:
        self.assertIn(" verified ", repr(session13()))
        self.assertIn(" not verified ", repr(session12()))


class TicketAgeTests(SynchronousTestCase):
    def test_ticket_age(self) -> None:
        session = session13(ticket_age_add=0)
        self.assertEqual(session.ticket_age_ms(T0), 0)
        self.assertEqual(session.ticket_age_ms(T0 + 2.5), 2500)
        self.assertEqual(session.ticket_age_ms(T0 + 0.0019), 1)
        self.assertEqual(session.ticket_age_ms(T0 - 10), 0)
        self.assertEqual(session.ticket_age_ms(T0 + 10**8), 2**32 - 1)

    def test_obfuscated_age_wraps(self) -> None:
        # RFC 8446 §4.2.11.1: (age + ticket_age_add) mod 2^32.
        session = session13(ticket_age_add=0xFFFFFFFF)
        self.assertEqual(session.obfuscated_ticket_age(T0 + 2.5), 2499)
        session = session13(ticket_age_add=0x12345678)
        self.assertEqual(session.obfuscated_ticket_age(T0 + 1), 0x12345678 + 1000)
        self.assertEqual(session13(ticket_age_add=0).obfuscated_ticket_age(T0), 0)

    @settings(max_examples=200, deadline=None)
    @given(
        add=st.integers(0, 2**32 - 1),
        age_ms=st.integers(0, 7 * 24 * 3600 * 1000),
    )
    def test_server_recovers_age(self, add: int, age_ms: int) -> None:
        session = session13(ticket_age_add=add, created_at=1000.0)
        now = 1000.0 + age_ms / 1000
        obfuscated = session.obfuscated_ticket_age(now)
        self.assertTrue(0 <= obfuscated < 2**32)
        self.assertEqual(obfuscated, (session.ticket_age_ms(now) + add) % 2**32)
        state = state13(ticket_age_add=add)
        self.assertEqual(
            state.client_ticket_age_ms(obfuscated), session.ticket_age_ms(now)
        )
        self.assertLessEqual(abs(session.ticket_age_ms(now) - age_ms), 1)


class SessionDecodingTests(SynchronousTestCase):
    def test_every_truncation_is_value_error(self) -> None:
        data = session13().to_bytes()
        for end in range(len(data)):
            with self.assertRaises(ValueError):
                Session.from_bytes(data[:end])

    def test_trailing_bytes(self) -> None:
        exc = self.assertRaises(
            ValueError, Session.from_bytes, session12().to_bytes() + b"\x00"
        )
        self.assertIn("trailing", str(exc))

    def test_bad_magic(self) -> None:
        exc = self.assertRaises(ValueError, Session.from_bytes, b"-----BEGIN SSL")
        self.assertIn("not a twisted_sslfile session", str(exc))

    def test_unsupported_format(self) -> None:
        data = bytearray(session13().to_bytes())
        data[8] = 3
        exc = self.assertRaises(ValueError, Session.from_bytes, bytes(data))
        self.assertIn("format 3 is not supported", str(exc))

    def test_unknown_flags(self) -> None:
        data = bytearray(session13().to_bytes())
        data[13] |= 0x80  # magic(8) format(1) version(2) suite(2) flags
        exc = self.assertRaises(ValueError, Session.from_bytes, bytes(data))
        self.assertIn("flags", str(exc))

    def test_invalid_values_are_value_errors(self) -> None:
        data = bytearray(session13().to_bytes())
        data[9:11] = (0x0302).to_bytes(2, "big")  # TLS 1.1
        exc = self.assertRaises(ValueError, Session.from_bytes, bytes(data))
        self.assertIn("TLS 1.2 or TLS 1.3", str(exc))
        data = bytearray(session13().to_bytes())
        data[14:22] = b"\x7f\xf8" + bytes(6)  # NaN created_at
        self.assertRaises(ValueError, Session.from_bytes, bytes(data))

    #: Written by the release before sessions kept their verification policy
    #: (format 1): session13(peer_certificates=(b"\x30\x03der",)), verified
    #: flag set, and session12(verified=True).
    FORMAT_1 = (
        "5453534c5345535301030413010e41dc4fecc000000000001c200b6578616d706c652e"
        "636f6d02683200000008000005300364657200136f70617175652d7469636b65742d62"
        "7974657320000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d"
        "1e1f12345678000000000000",
        "5453534c53455353010303c02c1741dc4fecc000000000000e100b6578616d706c652e"
        "6f72670006737064792f3300000d00000a30036c6561662d646572000e726663353037"
        "372d7469636b6574000000000000000000200101010101010101010101010101010101"
        "01010101010101010101010101010130000102030405060708090a0b0c0d0e0f101112"
        "131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f",
    )

    def test_format_1_loads_unverified(self) -> None:
        """Files from before the verification policy load, but as unverified
        sessions whatever their flag says: nothing in them names the roots."""
        tls13, tls12 = (Session.from_bytes(bytes.fromhex(h)) for h in self.FORMAT_1)
        for loaded in (tls13, tls12):
            self.assertFalse(loaded.verified)
            self.assertEqual(loaded.verification_policy, b"")
        self.assertEqual(tls13.resumption_psk, PSK32)
        self.assertEqual(tls13.peer_certificates, (b"\x30\x03der",))
        self.assertEqual(tls12.master_secret, MASTER)
        self.assertEqual(tls12.server_name, "example.org")
        # Saved again, they are format 2 and stay unverified.
        again = Session.from_bytes(tls13.to_bytes())
        self.assertEqual(again.to_bytes()[8], 2)
        self.assertFalse(again.verified)

    def test_verified_flag_without_policy(self) -> None:
        """Format 2 with the verified flag and no policy, or a policy of the
        wrong length, is not a session this library writes."""
        data = session13().to_bytes()
        no_policy = data[: -len(POLICY) - 1] + b"\x00"
        exc = self.assertRaises(ValueError, Session.from_bytes, no_policy)
        self.assertIn("verification_policy", str(exc))
        short = data[: -len(POLICY) - 1] + b"\x10" + POLICY[:16]
        self.assertRaises(ValueError, Session.from_bytes, short)

    def test_not_bytes(self) -> None:
        self.assertRaises(TypeError, Session.from_bytes, "TSSLSESS")
        self.assertRaises(TypeError, Session.from_bytes, None)

    @settings(max_examples=300, deadline=None)
    @given(st.binary(max_size=300))
    def test_arbitrary_bytes(self, data: bytes) -> None:
        for candidate in (data, b"TSSLSESS\x01" + data):
            with contextlib.suppress(ValueError):
                Session.from_bytes(candidate)

    @settings(max_examples=200, deadline=None)
    @given(st.data())
    def test_mutated_encoding(self, data: st.DataObject) -> None:
        encoded = bytearray(
            data.draw(st.sampled_from([session13(), session12()])).to_bytes()
        )
        index = data.draw(st.integers(0, len(encoded) - 1))
        encoded[index] = data.draw(st.integers(0, 255))
        try:
            loaded = Session.from_bytes(bytes(encoded))
        except ValueError:
            return
        self.assertEqual(Session.from_bytes(loaded.to_bytes()), loaded)

    @settings(max_examples=100, deadline=None)
    @given(
        add=st.integers(0, 2**32 - 1),
        lifetime=st.integers(0, 2**32 - 1),
        created=st.floats(0, 2**40, allow_nan=False),
        ticket=st.binary(min_size=1, max_size=600),
        name=st.one_of(st.none(), st.text(min_size=1, max_size=60)),
        certs=st.lists(st.binary(min_size=1, max_size=50), max_size=4),
    )
    def test_round_trip_property(
        self,
        add: int,
        lifetime: int,
        created: float,
        ticket: bytes,
        name: str | None,
        certs: list[bytes],
    ) -> None:
        try:
            session = session13(
                ticket_age_add=add,
                lifetime=lifetime,
                created_at=created,
                ticket=ticket,
                server_name=name,
                peer_certificates=certs,
            )
        except ValueError:
            return  # e.g. a name of lone surrogates
        self.assertEqual(Session.from_bytes(session.to_bytes()), session)


# ---------------------------------------------------------------------------
# The verification policy a Session records (issue 9 item 1)
# ---------------------------------------------------------------------------


class VerificationPolicyTests(SynchronousTestCase):
    """:func:`twisted_sslfile.x509.verification_policy`: equal exactly when a
    chain verified under one context would be verified under the other."""

    def setUp(self) -> None:
        self.pki = CertificateFactory(self.mktemp())
        self.other = CertificateFactory(self.mktemp(), name="Other")

    def policy(
        self, server_name: str | None = "example.com", **options: object
    ) -> bytes:
        options.setdefault("trust_roots", self.pki.trust_roots)
        return verification_policy(Context(**options), server_name)  # type: ignore[arg-type]

    def test_same_roots_however_given(self) -> None:
        """A list, a file, the roots twice or in another order: one policy,
        and a digest of 32 bytes that does not depend on the process."""
        both = self.pki.trust_roots + self.other.trust_roots
        reference = self.policy(trust_roots=both)
        self.assertEqual(len(reference), 32)
        for roots in (
            list(reversed(both)),
            both + both,
            TrustRoots.from_certificates(both),
        ):
            self.assertEqual(self.policy(trust_roots=roots), reference)
        self.assertEqual(self.policy(trust_roots=self.pki.ca_path), self.policy())
        self.assertEqual(
            load_trust_roots(self.pki.ca_path).digest,
            load_trust_roots(self.pki.trust_roots).digest,
        )

    def test_what_changes_the_policy(self) -> None:
        reference = self.policy()
        others = [
            self.policy(trust_roots=self.other.trust_roots),
            self.policy(trust_roots=self.pki.trust_roots + self.other.trust_roots),
            self.policy(max_certificate_chain_length=9),
            self.policy("other.example"),
            self.policy("127.0.0.1"),
        ]
        self.assertNotIn(reference, others)
        self.assertEqual(len(set(others)), len(others))

    def test_name_as_verification_sees_it(self) -> None:
        reference = self.policy()
        for name in ("EXAMPLE.com", "example.com.", " example.com "):
            self.assertEqual(self.policy(name), reference, name)
        self.assertEqual(self.policy("::1"), self.policy("[0:0::1]"))
        self.assertEqual(
            self.policy("bücher.example"), self.policy("xn--bcher-kva.example")
        )

    def test_no_policy_without_verification(self) -> None:
        self.assertEqual(self.policy(insecure_skip_verify=True), b"")
        self.assertEqual(self.policy(None), b"")
        self.assertEqual(self.policy("a..b"), b"")

    def test_opaque_store(self) -> None:
        """Roots handed over as a ready Store cannot be looked into: their
        policy is one of that TrustRoots object alone (and of the Contexts
        that share it), never of another made from the same Store."""
        store = load_trust_roots(self.pki.trust_roots).store
        first, second = load_trust_roots(store), load_trust_roots(store)
        self.assertEqual(len(first.digest), 32)
        self.assertNotEqual(first.digest, second.digest)
        context = Context(trust_roots=first)
        self.assertEqual(
            verification_policy(context, "example.com"),
            verification_policy(context.replace(alpn_protocols=[b"h2"]), "example.com"),
        )
        self.assertNotEqual(
            verification_policy(context, "example.com"),
            verification_policy(Context(trust_roots=second), "example.com"),
        )


class ClientVerificationPolicyTests(SynchronousTestCase):
    """:func:`twisted_sslfile.x509.client_verification_policy`, the server's
    counterpart: equal exactly when a client chain verified by one server
    would be verified by the other."""

    def setUp(self) -> None:
        self.pki = CertificateFactory(self.mktemp())
        self.other = CertificateFactory(self.mktemp(), name="Other")

    def policy(self, **options: object) -> bytes:
        options.setdefault("trust_roots", self.pki.trust_roots)
        options.setdefault("client_certificate", ClientCertificatePolicy.REQUIRE)
        return client_verification_policy(Context(**options))  # type: ignore[arg-type]

    def test_same_roots_however_given(self) -> None:
        reference = self.policy()
        self.assertEqual(len(reference), 32)
        self.assertEqual(self.policy(trust_roots=self.pki.ca_path), reference)
        self.assertEqual(self.policy(trust_roots=self.pki.trust_roots * 2), reference)

    def test_what_changes_the_policy(self) -> None:
        reference = self.policy()
        others = [
            self.policy(trust_roots=self.other.trust_roots),
            self.policy(trust_roots=self.pki.trust_roots + self.other.trust_roots),
            self.policy(max_certificate_chain_length=9),
        ]
        self.assertNotIn(reference, others)
        self.assertEqual(len(set(others)), len(others))

    def test_what_does_not_change_it(self) -> None:
        """Whether a certificate is required is checked on each resumption,
        not part of what "verified" means; settings that do not decide a
        chain's verdict do not matter either."""
        reference = self.policy()
        for options in (
            {"client_certificate": ClientCertificatePolicy.REQUEST},
            {"client_certificate": "require"},
            {"alpn_protocols": [b"h2"]},
            {"max_version": ProtocolVersion.TLS_1_2},
        ):
            self.assertEqual(self.policy(**options), reference, options)

    def test_not_the_server_chain_policy(self) -> None:
        """The same roots verify server chains under another policy: one
        digest cannot stand for the other."""
        context = Context(
            trust_roots=self.pki.trust_roots,
            client_certificate=ClientCertificatePolicy.REQUIRE,
        )
        self.assertNotEqual(
            client_verification_policy(context),
            verification_policy(context, "example.com"),
        )

    def test_no_policy_without_verification(self) -> None:
        self.assertEqual(self.policy(insecure_skip_verify=True), b"")
        self.assertEqual(
            self.policy(client_certificate=ClientCertificatePolicy.NONE), b""
        )


# ---------------------------------------------------------------------------
# ServerSessionState
# ---------------------------------------------------------------------------


class ServerSessionStateTests(SynchronousTestCase):
    def test_round_trip(self) -> None:
        for state in (
            state13(),
            state12(),
            state12(server_name=None, peer_certificates=(), authenticated_at=T0 - 5),
        ):
            decoded = ServerSessionState.decode(state.encode())
            self.assertEqual(decoded, state)
            assert decoded is not None
            for name in ServerSessionState.__dataclass_fields__:
                self.assertEqual(getattr(decoded, name), getattr(state, name), name)

    def test_authenticated_at_defaults_to_created_at(self) -> None:
        self.assertEqual(state13().authenticated_at, T0)
        self.assertEqual(state13(authenticated_at=T0 - 10).authenticated_at, T0 - 10)

    def test_validation(self) -> None:
        self.assertRaises(ValueError, state13, secret=PSK32)  # SHA-384 suite
        self.assertRaises(ValueError, state12, secret=PSK32)
        self.assertRaises(ValueError, state13, extended_master_secret=True)
        self.assertRaises(ValueError, state12, ticket_age_add=5)
        self.assertRaises(ValueError, state12, version=ProtocolVersion.SSL_3_0)

    def test_is_valid(self) -> None:
        state = state13(lifetime=100)
        self.assertTrue(state.is_valid(T0))
        self.assertTrue(state.is_valid(T0 + 99))
        self.assertFalse(state.is_valid(T0 + 100))
        self.assertTrue(state.is_valid(T0 - CLOCK_SKEW_TOLERANCE))
        self.assertFalse(state.is_valid(T0 - CLOCK_SKEW_TOLERANCE - 1))
        self.assertFalse(state12(extended_master_secret=False).is_valid(T0))

    def test_authentication_limits_chained_tickets(self) -> None:
        # RFC 8446 §4.6.1: keying material must not live on forever through
        # tickets issued on resumed connections.
        old = T0 - MAX_SESSION_LIFETIME + 50
        state = state13(authenticated_at=old, lifetime=7200)
        self.assertTrue(state.is_valid(T0))
        self.assertFalse(state.is_valid(T0 + 50))
        self.assertEqual(state.remaining_lifetime(T0), 50)
        self.assertEqual(state.remaining_lifetime(T0 + 100), 0)
        self.assertEqual(state13().remaining_lifetime(T0), MAX_SESSION_LIFETIME)

    def test_verification_policy_goes_with_verified(self) -> None:
        """As in Session: verified=True needs the 32-byte client verification
        policy it was verified under, and a chain to have verified; an
        unverified state carries no policy (issue 9 item 1)."""
        self.assertEqual(state12().verification_policy, b"")
        for changes in (
            {"verification_policy": b""},
            {"verified": False},
            {"verification_policy": POLICY[:31]},
            {"verification_policy": POLICY + b"x"},
            {"verification_policy": "ab" * 16},
            {"peer_certificates": ()},
        ):
            self.assertRaises(ValueError, state13, **changes)
        state = state13(verification_policy=bytearray(POLICY))
        self.assertEqual(type(state.verification_policy), bytes)
        self.assertNotEqual(state13(), state13(verification_policy=bytes(32)))

    def test_verified_under(self) -> None:
        state = state13()
        self.assertTrue(state.verified_under(POLICY))
        self.assertFalse(state.verified_under(bytes(32)))
        self.assertFalse(state.verified_under(b""))
        self.assertFalse(state.verified_under(POLICY[:16]))
        self.assertFalse(state12().verified_under(b""))
        self.assertFalse(state12().verified_under(POLICY))

    def test_format_1_is_ignored(self) -> None:
        """A state sealed before states kept the client verification policy
        (format 1: format 2 without the last field) opens to None, so its
        ticket is ignored and a full handshake follows."""
        for state in (
            state13(),
            state12(),
            state13(verified=False, verification_policy=b""),
        ):
            data = state.encode()
            self.assertEqual(data[0], 2)
            old = b"\x01" + data[1 : len(data) - 1 - len(state.verification_policy)]
            self.assertIsNone(ServerSessionState.decode(old))
            # Format 1 bytes with the format byte of today do not parse either.
            self.assertIsNone(ServerSessionState.decode(b"\x02" + old[1:]))

    def test_repr_hides_secret(self) -> None:
        for state in (state13(), state12()):
            assert_no_secret(self, repr(state), state.secret)
        self.assertIn("TLS_AES_256_GCM_SHA384", repr(state13()))

    def test_decode_rejects(self) -> None:
        good = state13().encode()
        self.assertIsNone(ServerSessionState.decode(b""))
        self.assertIsNone(ServerSessionState.decode(b"\x03" + good[1:]))
        self.assertIsNone(ServerSessionState.decode(good + b"\x00"))
        for end in range(len(good)):
            self.assertIsNone(ServerSessionState.decode(good[:end]))

    @settings(max_examples=300, deadline=None)
    @given(st.binary(max_size=300))
    def test_decode_arbitrary_bytes(self, data: bytes) -> None:
        for candidate in (data, b"\x02" + data, b"\x02\x03\x04\x13\x01\x00" + data):
            result = ServerSessionState.decode(candidate)
            self.assertTrue(result is None or isinstance(result, ServerSessionState))

    @settings(max_examples=200, deadline=None)
    @given(st.data())
    def test_decode_mutated(self, data: st.DataObject) -> None:
        encoded = bytearray(data.draw(st.sampled_from([state13(), state12()])).encode())
        index = data.draw(st.integers(0, len(encoded) - 1))
        encoded[index] = data.draw(st.integers(0, 255))
        result = ServerSessionState.decode(bytes(encoded))
        if result is not None:
            self.assertEqual(ServerSessionState.decode(result.encode()), result)

    #: ``state13().encode()`` and ``state12(server_name=None,
    #: peer_certificates=(), authenticated_at=T0 - 5).encode()`` as the
    #: release before the one-struct head wrote them: tickets sealed then
    #: must open the same way, and tickets sealed now must be the same bytes.
    FORMAT_2 = (
        "02030413020e41dc4fecc000000041dc4fecc000000000001c20deadbeef3064656667"
        "68696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f808182838485868788898a"
        "8b8c8d8e8f909192930b6578616d706c652e636f6d08687474702f312e310000220000"
        "0a30036c6561662d6465720000123003696e7465726d6564696174652d64657220c8c9"
        "cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedfe0e1e2e3e4e5e6e7",
        "020303cca80141dc4fecc000000041dc4fecbec0000000001c20000000003000010203"
        "0405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20212223242526"
        "2728292a2b2c2d2e2f000000000000",
    )

    def test_format_2_bytes(self) -> None:
        states = (
            state13(),
            state12(server_name=None, peer_certificates=(), authenticated_at=T0 - 5),
        )
        for state, pinned in zip(states, self.FORMAT_2, strict=True):
            self.assertEqual(state.encode().hex(), pinned)
            decoded = ServerSessionState.decode(bytes.fromhex(pinned))
            assert decoded is not None
            self.assertEqual(field_values(decoded), field_values(state))


# ---------------------------------------------------------------------------
# Further tickets of one connection (for_next_ticket)
# ---------------------------------------------------------------------------


def field_values(obj: Any) -> dict[str, tuple[type, object]]:
    """Every field of a session or state, with its type (5 == 5.0 is not
    enough: a field must hold what ``__post_init__`` makes of it)."""
    return {f.name: (type(v), v) for f in fields(obj) for v in [getattr(obj, f.name)]}


def rebuilt(obj: Any) -> Any:
    """The same values through the full ``__post_init__`` checks."""
    return type(obj)(**{f.name: getattr(obj, f.name) for f in fields(obj)})


#: Shared fields a TLS 1.3 Session or ServerSessionState may have.
shared13 = st.fixed_dictionaries(
    {
        "cipher_suite": st.sampled_from(
            [CS.TLS_AES_128_GCM_SHA256, CS.TLS_AES_256_GCM_SHA384]
        ),
        "server_name": st.one_of(st.none(), st.sampled_from(["example.com", "é.fr"])),
        "alpn_protocol": st.one_of(st.none(), st.binary(min_size=1, max_size=255)),
        "peer_certificates": st.lists(
            st.binary(min_size=1, max_size=40), max_size=3
        ).map(tuple),
        "verified": st.booleans(),
    }
)

uint32 = st.integers(0, 2**32 - 1)


def _secret(cipher_suite: CipherSuite) -> bytes:
    return PSK48 if cipher_suite == CS.TLS_AES_256_GCM_SHA384 else PSK32


def _verified(shared: dict[str, Any]) -> dict[str, Any]:
    """A verified chain needs certificates and a policy."""
    shared = dict(shared)
    if shared["verified"] and not shared["peer_certificates"]:
        shared["peer_certificates"] = CERTS
    shared["verification_policy"] = POLICY if shared["verified"] else b""
    return shared


class NextTicketTests(SynchronousTestCase):
    """``for_next_ticket`` checks only what differs from one ticket of a
    connection to the next; what it builds must be exactly what the full
    constructor builds from the same values, and what it refuses, the
    constructor refuses with the same message."""

    @settings(max_examples=150, deadline=None)
    @given(
        shared=shared13,
        created_at=st.one_of(st.floats(0, 2e9), st.integers(0, 2**31)),
        lifetime=uint32,
        ticket=st.binary(min_size=1, max_size=300),
        ticket_age_add=uint32,
        max_early_data=uint32,
    )
    def test_session_equals_full_construction(
        self,
        shared: dict[str, Any],
        created_at: float,
        lifetime: int,
        ticket: bytes,
        ticket_age_add: int,
        max_early_data: int,
    ) -> None:
        values = _verified(shared)
        first = session13(**values, resumption_psk=_secret(values["cipher_suite"]))
        psk = bytes(reversed(first.resumption_psk))
        per_ticket: dict[str, Any] = {
            "created_at": created_at,
            "lifetime": lifetime,
            "ticket": ticket,
            "resumption_psk": psk,
            "ticket_age_add": ticket_age_add,
            "max_early_data": max_early_data,
        }
        nxt = first.for_next_ticket(**per_ticket)
        full = session13(**values, **per_ticket)
        self.assertEqual(field_values(nxt), field_values(full))
        self.assertEqual(field_values(rebuilt(nxt)), field_values(nxt))
        self.assertEqual(nxt.to_bytes(), full.to_bytes())
        self.assertEqual(
            field_values(Session.from_bytes(nxt.to_bytes())), field_values(nxt)
        )

    @settings(max_examples=150, deadline=None)
    @given(shared=shared13, ticket_age_add=uint32, authenticated=st.booleans())
    def test_state_equals_full_construction(
        self, shared: dict[str, Any], ticket_age_add: int, authenticated: bool
    ) -> None:
        values = _verified(shared)
        values["secret"] = _secret(values["cipher_suite"])
        if authenticated:
            values["authenticated_at"] = T0 - 100
        first = state13(**values)
        secret = bytes(reversed(values["secret"]))
        nxt = first.for_next_ticket(secret=secret, ticket_age_add=ticket_age_add)
        full = state13(**{**values, "secret": secret, "ticket_age_add": ticket_age_add})
        self.assertEqual(field_values(nxt), field_values(full))
        self.assertEqual(field_values(rebuilt(nxt)), field_values(nxt))
        self.assertEqual(nxt.encode(), full.encode())
        decoded = ServerSessionState.decode(nxt.encode())
        assert decoded is not None
        self.assertEqual(field_values(decoded), field_values(nxt))
        # The template is left as it was.
        self.assertEqual(field_values(first), field_values(state13(**values)))

    def assertSameRefusal(self, full: Any, fast: Any) -> None:
        with self.assertRaises(ValueError) as expected:
            full()
        with self.assertRaises(ValueError) as got:
            fast()
        self.assertEqual(str(got.exception), str(expected.exception))

    def test_session_refuses_what_the_constructor_refuses(self) -> None:
        first = session13()
        good: dict[str, Any] = {
            "created_at": T0 + 1,
            "lifetime": 7200,
            "ticket": b"t",
            "resumption_psk": PSK32,
            "ticket_age_add": 1,
            "max_early_data": 0,
        }
        bad_values: dict[str, list[object]] = {
            "created_at": [-1.0, float("nan"), float("inf"), True, "now", None],
            "lifetime": [-1, 2**32, True, 1.5, None],
            "ticket": [b"", bytes(2**16), "ticket", None],
            "resumption_psk": [PSK32[:31], PSK48, b"", "psk"],
            "ticket_age_add": [-1, 2**32, False, 0.0],
            "max_early_data": [-1, 2**32, True, None],
        }
        for name, values in bad_values.items():
            for value in values:
                changed = {**good, name: value}
                self.assertSameRefusal(
                    lambda changed=changed: session13(**changed),
                    lambda changed=changed: first.for_next_ticket(**changed),
                )

    def test_state_refuses_what_the_constructor_refuses(self) -> None:
        first = state13()  # TLS_AES_256_GCM_SHA384: a 48-byte PSK
        cases: list[tuple[Any, Any]] = [
            (PSK32, 0),
            (PSK48 + b"x", 0),
            ("secret", 0),
            (None, 0),
            (PSK48, -1),
            (PSK48, 2**32),
            (PSK48, True),
            (PSK48, 1.0),
        ]
        for secret, age_add in cases:
            self.assertSameRefusal(
                lambda: state13(secret=secret, ticket_age_add=age_add),  # noqa: B023
                lambda: first.for_next_ticket(secret=secret, ticket_age_add=age_add),  # noqa: B023
            )
        # TLS 1.2 states carry no ticket_age_add.
        tls12 = state12()
        self.assertSameRefusal(
            lambda: state12(ticket_age_add=5),
            lambda: tls12.for_next_ticket(secret=MASTER, ticket_age_add=5),
        )
        self.assertEqual(
            field_values(tls12.for_next_ticket(secret=MASTER, ticket_age_add=0)),
            field_values(state12()),
        )

    def test_tls12_session_has_no_next_ticket(self) -> None:
        self.assertRaises(
            ValueError,
            session12().for_next_ticket,
            created_at=T0,
            lifetime=1,
            ticket=b"t",
            resumption_psk=PSK32,
            ticket_age_add=0,
            max_early_data=0,
        )


# ---------------------------------------------------------------------------
# TicketKeys
# ---------------------------------------------------------------------------


def memory_keys(
    clock: FakeClock | None = None, **kwargs: object
) -> tuple[TicketKeys, FakeClock, FakeRandom]:
    clock = clock or FakeClock()
    random = FakeRandom()
    return TicketKeys(random=random, clock=clock, **kwargs), clock, random  # type: ignore[arg-type]


class TicketKeysTests(SynchronousTestCase):
    def test_seal_open_round_trip(self) -> None:
        keys, _, _ = memory_keys()
        ticket = keys.seal(b"state bytes")
        self.assertEqual(len(ticket), TICKET_OVERHEAD + len(b"state bytes"))
        self.assertEqual(ticket[:16], keys.key_names[0])
        self.assertNotIn(b"state bytes", ticket)
        self.assertEqual(keys.open(ticket), b"state bytes")
        self.assertEqual(keys.open(bytearray(ticket)), b"state bytes")
        self.assertEqual(keys.open(memoryview(ticket)), b"state bytes")
        self.assertEqual(keys.open(keys.seal(b"")), b"")

    def test_nonces_differ(self) -> None:
        keys, _, _ = memory_keys()
        self.assertNotEqual(keys.seal(b"x"), keys.seal(b"x"))

    def test_chacha(self) -> None:
        keys, _, _ = memory_keys(cipher="chacha20-poly1305")
        self.assertEqual(keys.cipher, "ChaCha20-Poly1305")
        self.assertEqual(keys.open(keys.seal(b"abc")), b"abc")

    def test_cipher_domain_separation(self) -> None:
        # The same secret under another cipher must not open the ticket.
        key = TicketKey(b"N" * 16, b"S" * 32)
        clock, random = FakeClock(), FakeRandom()
        aes = TicketKeys(random=random, clock=clock, keys=[key])
        chacha = TicketKeys(
            random=random, clock=clock, keys=[key], cipher="ChaCha20-Poly1305"
        )
        self.assertIsNone(chacha.open(aes.seal(b"abc")))
        self.assertIsNone(aes.open(chacha.seal(b"abc")))

    def test_lazy_first_key(self) -> None:
        keys, _, random = memory_keys()
        self.assertEqual(random.calls, 0)
        self.assertIsNone(keys.open(b"\x00" * 60))
        keys.seal(b"x")
        self.assertEqual(random.calls, 2)  # one key, one nonce

    def test_tampered_tickets(self) -> None:
        keys, _, _ = memory_keys()
        ticket = keys.seal(b"some server state")
        for index in range(len(ticket)):
            for bit in (0x01, 0x80):
                tampered = bytearray(ticket)
                tampered[index] ^= bit
                self.assertIsNone(keys.open(bytes(tampered)), index)
        for end in range(len(ticket)):
            self.assertIsNone(keys.open(ticket[:end]))
        self.assertIsNone(keys.open(ticket + b"\x00"))

    def test_key_name_is_authenticated(self) -> None:
        # Same secret, other name: the AAD differs, so the tag fails.
        secret = b"K" * 32
        clock, random = FakeClock(), FakeRandom()
        first = TicketKeys(
            random=random, clock=clock, keys=[TicketKey(b"A" * 16, secret)]
        )
        second = TicketKeys(
            random=random, clock=clock, keys=[TicketKey(b"B" * 16, secret)]
        )
        ticket = first.seal(b"x")
        self.assertIsNone(second.open(b"B" * 16 + ticket[16:]))

    def test_unknown_key_and_junk(self) -> None:
        keys, _, _ = memory_keys()
        other = TicketKeys(random=FakeRandom(b"other seed"), clock=FakeClock())
        self.assertIsNone(keys.open(other.seal(b"x")))
        self.assertIsNone(keys.open(b""))
        self.assertIsNone(keys.open(b"x" * 65536))
        self.assertIsNone(keys.open("a str"))  # type: ignore[arg-type]
        self.assertIsNone(keys.open(None))  # type: ignore[arg-type]

    @settings(max_examples=200, deadline=None)
    @given(st.binary(max_size=200))
    def test_open_arbitrary_bytes(self, data: bytes) -> None:
        keys = TicketKeys(
            random=FakeRandom(),
            clock=FakeClock(),
            keys=[TicketKey(b"N" * 16, b"S" * 32)],
        )
        self.assertIsNone(keys.open(data))
        self.assertIsNone(keys.open(b"N" * 16 + data))
        self.assertIsNone(keys.open_state(b"N" * 16 + data))

    def test_rotation_and_decrypt_window(self) -> None:
        keys, clock, _ = memory_keys(rotation_interval=3600, decrypt_window=7200)
        first = keys.seal(b"first")
        first_name = keys.key_names[0]
        clock.advance(3599)
        self.assertEqual(keys.key_names, (first_name,))
        clock.advance(1)  # T0 + 3600: rotation is due
        second = keys.seal(b"second")
        self.assertNotEqual(second[:16], first_name)
        self.assertEqual(keys.key_names[1:], (first_name,))
        self.assertEqual(keys.open(first), b"first")
        # The first key retired at T0 + 3600 and opens for 7200 s more.
        clock.now = T0 + 3600 + 7199
        self.assertEqual(keys.open(first), b"first")
        clock.now = T0 + 3600 + 7200
        self.assertIsNone(keys.open(first))
        self.assertNotIn(first_name, keys.key_names)

    def test_key_count_is_bounded(self) -> None:
        keys, clock, _ = memory_keys(rotation_interval=60, decrypt_window=300)
        for _ in range(100):
            keys.seal(b"x")
            clock.advance(60)
            self.assertLessEqual(len(keys.key_names), 7)

    def test_idle_rotation_counts_from_schedule(self) -> None:
        keys, clock, _ = memory_keys(rotation_interval=3600, decrypt_window=7200)
        ticket = keys.seal(b"x")
        # Nobody asked for hours: the key's window still began at T0 + 3600.
        clock.now = T0 + 3600 + 7200 - 1
        self.assertEqual(keys.open(ticket), b"x")
        clock.now = T0 + 3600 + 7200
        self.assertIsNone(keys.open(ticket))

    def test_clock_going_backwards_rotates(self) -> None:
        keys, clock, _ = memory_keys(rotation_interval=3600, decrypt_window=7200)
        ticket = keys.seal(b"x")
        clock.advance(-86400)
        self.assertNotEqual(keys.seal(b"y")[:16], ticket[:16])
        self.assertEqual(keys.open(ticket), b"x")

    def test_zero_window(self) -> None:
        keys, clock, _ = memory_keys(rotation_interval=10, decrypt_window=0)
        ticket = keys.seal(b"x")
        clock.advance(10)
        self.assertIsNone(keys.open(ticket))

    def test_forced_rotate(self) -> None:
        keys, clock, _ = memory_keys()
        ticket = keys.seal(b"x")
        keys.rotate()
        self.assertNotEqual(keys.seal(b"y")[:16], ticket[:16])
        self.assertEqual(keys.open(ticket), b"x")
        clock.advance(7200)
        self.assertIsNone(keys.open(ticket))

    def test_fixed_keys(self) -> None:
        k1, k2 = TicketKey(b"1" * 16, b"a" * 32), TicketKey(b"2" * 16, b"b" * 32)
        clock = FakeClock()
        keys = TicketKeys(random=FakeRandom(), clock=clock, keys=[k1, k2])
        old = TicketKeys(random=FakeRandom(), clock=clock, keys=[k2])
        ticket = keys.seal(b"x")
        self.assertEqual(ticket[:16], k1.name)
        self.assertEqual(keys.open(old.seal(b"old")), b"old")
        clock.advance(10**7)  # fixed keys never rotate or expire
        self.assertEqual(keys.open(ticket), b"x")
        self.assertRaises(ValueError, keys.rotate)
        self.assertRaises(ValueError, keys.reload)
        self.assertRaises(
            ValueError, TicketKeys, random=FakeRandom(), clock=clock, keys=[]
        )

    def test_lock_guards_every_use(self) -> None:
        """
        The engine starts no thread and imports no threading: whoever shares
        the keys between threads hands in the lock, and every use takes it.
        """
        log: list[str] = []

        class RecordingLock:
            def __enter__(self) -> None:
                log.append("enter")

            def __exit__(self, *exc_info: object) -> None:
                log.append("exit")

        keys, _, _ = memory_keys(lock=RecordingLock())
        ticket = keys.seal(b"x")
        self.assertEqual(keys.open(ticket), b"x")
        keys.rotate()
        self.assertEqual(len(keys.key_names), 2)
        self.assertEqual(log, ["enter", "exit"] * 4)

    def test_shared_keys_are_locked(self) -> None:
        """
        The keys a Context makes itself and keys from a file come with a
        lock, since connections in several threads may share them.
        """
        directory = self.mktemp()
        os.makedirs(directory)
        path = os.path.join(directory, "keys")
        generate_key_file(path, 1, FakeRandom())
        lock_type = type(threading.Lock())
        for keys in (
            Context().session_tickets,
            Context(ticket_key_file=path).session_tickets,
            FileTicketKeys(path, clock=FakeClock(), random=FakeRandom()),
        ):
            self.assertIsInstance(keys._lock, lock_type)  # type: ignore[union-attr]
        unshared, _, _ = memory_keys()
        self.assertNotIsInstance(unshared._lock, lock_type)

    def test_bad_arguments(self) -> None:
        clock, random = FakeClock(), FakeRandom()
        for kwargs in (
            {"rotation_interval": 0},
            {"rotation_interval": -5},
            {"rotation_interval": float("inf")},
            {"rotation_interval": True},
            {"decrypt_window": -1},
            {"cipher": "AES-128-CBC"},
            {"cipher": None},
            {"keys": [b"x" * 48]},
        ):
            self.assertRaises(
                ValueError, TicketKeys, random=random, clock=clock, **kwargs
            )
        self.assertRaises(ValueError, TicketKeys, random=b"", clock=clock)
        self.assertRaises(ValueError, TicketKeys, random=random, clock=0)

    def test_short_random_is_internal_error(self) -> None:
        keys = TicketKeys(
            random=lambda n: b"\x00" * (n - 1),
            clock=FakeClock(),
            keys=[TicketKey(b"N" * 16, b"S" * 32)],
        )
        self.assertRaises(InternalError, keys.seal, b"x")
        self.assertRaises(InternalError, TicketKey.generate, lambda n: b"")

    def test_repr_hides_secrets(self) -> None:
        key = TicketKey(b"N" * 16, b"S" * 32)
        keys = TicketKeys(random=FakeRandom(), clock=FakeClock(), keys=[key])
        for text in (repr(key), repr(keys), repr(memory_keys()[0])):
            assert_no_secret(self, text, key.secret)
        self.assertIn("AES-256-GCM", repr(keys))
        self.assertIn("4e4e", repr(key))  # the public name, hex

    def test_ticket_key(self) -> None:
        key = TicketKey.generate(FakeRandom())
        self.assertEqual(len(key.name), 16)
        self.assertEqual(len(key.secret), 32)
        self.assertEqual(len(key.to_line()), 64)
        self.assertEqual(key, TicketKey(key.name, key.secret))
        self.assertNotEqual(key, TicketKey(key.name, b"\x00" * 32))
        self.assertRaises(ValueError, TicketKey, b"short", b"S" * 32)
        self.assertRaises(ValueError, TicketKey, b"N" * 16, b"S" * 31)


class TicketStateTests(SynchronousTestCase):
    def test_seal_open_state(self) -> None:
        keys, _, _ = memory_keys()
        for state in (state13(), state12()):
            ticket = keys.seal_state(state)
            assert ticket is not None
            self.assertEqual(keys.open_state(ticket), state)
            self.assertEqual(keys.open_state(ticket, version=state.version), state)
        ticket13 = keys.seal_state(state13())
        assert ticket13 is not None
        self.assertIsNone(keys.open_state(ticket13, version=TLS12))

    def test_expired_state(self) -> None:
        keys, clock, _ = memory_keys(rotation_interval=3600, decrypt_window=7200)
        ticket = keys.seal_state(state13(lifetime=60))
        assert ticket is not None
        clock.advance(59)
        self.assertIsNotNone(keys.open_state(ticket))
        clock.advance(1)
        self.assertIsNone(keys.open_state(ticket))

    def test_sealed_garbage_is_none(self) -> None:
        keys, _, _ = memory_keys()
        self.assertIsNone(keys.open_state(keys.seal(b"not a state")))

    def test_too_large_for_a_ticket(self) -> None:
        """No ticket above MAX_ISSUED_TICKET_LENGTH (16 KiB): the ClientHello
        that carries it back must fit the server's ClientHello bound."""
        keys, _, _ = memory_keys()
        huge = state13(peer_certificates=(b"c" * 40000, b"d" * 30000))
        self.assertIsNone(keys.seal_state(huge))
        empty = keys.seal_state(state13(peer_certificates=(b"c",)))
        assert empty is not None
        room = MAX_ISSUED_TICKET_LENGTH - len(empty) + 1
        fits = state13(peer_certificates=(b"c" * room,))
        ticket = keys.seal_state(fits)
        assert ticket is not None
        self.assertEqual(len(ticket), MAX_ISSUED_TICKET_LENGTH)
        self.assertEqual(keys.open_state(ticket), fits)
        too_big = state13(peer_certificates=(b"c" * (room + 1),))
        self.assertIsNone(keys.seal_state(too_big))

    def test_seal_state_type(self) -> None:
        keys, _, _ = memory_keys()
        self.assertRaises(InternalError, keys.seal_state, b"bytes")  # type: ignore[arg-type]


# ---------------------------------------------------------------------------
# Key files
# ---------------------------------------------------------------------------


class KeyFileTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.directory = self.mktemp()
        os.makedirs(self.directory)
        self.path = os.path.join(self.directory, "ticket.keys")
        self.random = FakeRandom()

    def write(self, text: str | bytes, mode: int = 0o600) -> str:
        data = text.encode("ascii") if isinstance(text, str) else text
        with open(self.path, "wb") as f:
            f.write(data)
        os.chmod(self.path, mode)
        return self.path

    def bump_mtime(self) -> None:
        st_ = os.stat(self.path)
        os.utime(self.path, ns=(st_.st_atime_ns, st_.st_mtime_ns + 10**9))

    def test_generate_and_read(self) -> None:
        keys = generate_key_file(self.path, 3, self.random)
        self.assertEqual(len(keys), 3)
        self.assertEqual(read_key_file(self.path), keys)
        self.assertEqual(stat.S_IMODE(os.stat(self.path).st_mode), 0o600)
        with open(self.path, encoding="ascii") as f:
            lines = [line for line in f.read().splitlines() if line]
        self.assertTrue(lines[0].startswith("#"))
        self.assertEqual([k.to_line() for k in keys], lines[-3:])
        self.assertEqual(os.listdir(self.directory), ["ticket.keys"])

    def test_two_instances_share_the_file(self) -> None:
        generate_key_file(self.path, 2, self.random)
        clock = FakeClock()
        one = FileTicketKeys(self.path, clock=clock, random=FakeRandom(b"1"))
        two = FileTicketKeys(self.path, clock=clock, random=FakeRandom(b"2"))
        ticket = one.seal_state(state13())
        assert ticket is not None
        self.assertEqual(two.open_state(ticket), state13())
        self.assertEqual(one.open(two.seal(b"back")), b"back")
        self.assertEqual(one.path, self.path)
        self.assertIn(self.path, repr(one))

    def test_older_keys_open_only(self) -> None:
        keys = generate_key_file(self.path, 2, self.random)
        clock = FakeClock()
        loaded = FileTicketKeys(self.path, clock=clock, random=self.random)
        self.assertEqual(loaded.seal(b"x")[:16], keys[0].name)
        older = TicketKeys(random=self.random, clock=clock, keys=[keys[1]])
        self.assertEqual(loaded.open(older.seal(b"y")), b"y")

    def test_reload_on_change(self) -> None:
        generate_key_file(self.path, 1, self.random)
        clock = FakeClock()
        keys = FileTicketKeys(
            self.path, clock=clock, random=self.random, reload_interval=30
        )
        before = keys.seal(b"before")
        rotated = rotate_key_file(self.path, self.random, keep=2)
        # Not looked at again until reload_interval has passed.
        clock.advance(29)
        self.assertNotEqual(keys.seal(b"x")[:16], rotated[0].name)
        clock.advance(1)
        self.assertEqual(keys.seal(b"x")[:16], rotated[0].name)
        self.assertEqual(keys.open(before), b"before")  # still in the file
        # Drop the old key from the file: its tickets stop opening.
        write_key_file(self.path, rotated[:1])
        clock.advance(30)
        self.assertIsNone(keys.open(before))
        self.assertIsNone(keys.last_reload_error)

    def test_reload_detects_same_mtime(self) -> None:
        # Two rotations within the file system's timestamp granularity: the
        # atomic rename still gives a new inode.
        generate_key_file(self.path, 1, self.random)
        mtime = os.stat(self.path).st_mtime_ns
        clock = FakeClock()
        keys = FileTicketKeys(
            self.path, clock=clock, random=self.random, reload_interval=0
        )
        rotated = rotate_key_file(self.path, self.random)
        os.utime(self.path, ns=(mtime, mtime))
        self.assertEqual(keys.seal(b"x")[:16], rotated[0].name)

    def test_unchanged_file_is_not_reread(self) -> None:
        generate_key_file(self.path, 1, self.random)
        clock = FakeClock()
        keys = FileTicketKeys(
            self.path, clock=clock, random=self.random, reload_interval=0
        )
        reads = []
        original = ticketkeyfile._read_limited
        self.patch(
            ticketkeyfile,
            "_read_limited",
            lambda path: reads.append(path) or original(path),
        )
        keys.seal(b"x")
        keys.seal(b"y")
        self.assertEqual(reads, [])
        rotate_key_file(self.path, self.random)
        del reads[:]  # rotate_key_file read it too
        keys.seal(b"z")
        keys.seal(b"z")
        self.assertEqual(reads, [self.path])

    def test_broken_rotation_keeps_old_keys(self) -> None:
        generate_key_file(self.path, 1, self.random)
        clock = FakeClock()
        keys = FileTicketKeys(
            self.path, clock=clock, random=self.random, reload_interval=10
        )
        ticket = keys.seal(b"x")
        self.write("this is not a key file\n")
        clock.advance(10)
        self.assertEqual(keys.open(ticket), b"x")
        assert keys.last_reload_error is not None
        self.assertIn(self.path, keys.last_reload_error)
        self.assertIn("line 1", keys.last_reload_error)
        os.unlink(self.path)
        clock.advance(10)
        self.assertEqual(keys.open(ticket), b"x")
        self.assertIn("cannot stat", keys.last_reload_error)
        fresh = generate_key_file(self.path, 1, self.random)
        clock.advance(10)
        self.assertEqual(keys.seal(b"y")[:16], fresh[0].name)
        self.assertIsNone(keys.last_reload_error)

    def test_reload_check_after_clock_goes_backwards(self) -> None:
        generate_key_file(self.path, 1, self.random)
        clock = FakeClock()
        keys = FileTicketKeys(
            self.path, clock=clock, random=self.random, reload_interval=60
        )
        rotated = rotate_key_file(self.path, self.random)
        clock.advance(-3600)
        self.assertEqual(keys.seal(b"x")[:16], rotated[0].name)

    def test_explicit_reload(self) -> None:
        generate_key_file(self.path, 1, self.random)
        clock = FakeClock()
        keys = FileTicketKeys(self.path, clock=clock, random=self.random)
        fresh = generate_key_file(self.path, 1, self.random)
        keys.reload()
        self.assertEqual(keys.key_names, (fresh[0].name,))
        self.write("#only a comment\n")
        self.assertRaises(TicketKeyFileError, keys.reload)
        self.assertEqual(keys.key_names, (fresh[0].name,))
        self.assertRaises(ValueError, keys.rotate)

    def test_comments_and_blank_lines(self) -> None:
        key = TicketKey(b"N" * 16, b"S" * 32)
        self.write(f"\n# comment\n   \n  {key.to_line()}  \r\n# end\n")
        self.assertEqual(read_key_file(self.path), [key])

    def assert_bad(self, content: str | bytes | None, *fragments: str) -> None:
        if content is not None:
            self.write(content)
        for call in (
            lambda: read_key_file(self.path),
            lambda: FileTicketKeys(self.path, clock=FakeClock(), random=self.random),
            lambda: Context(ticket_key_file=self.path),
        ):
            exc = self.assertRaises(TicketKeyFileError, call)
            self.assertIsInstance(exc, ConfigurationError)
            self.assertIsInstance(exc, ValueError)
            self.assertEqual(exc.path, self.path)
            self.assertIn(self.path, str(exc))
            for fragment in fragments:
                self.assertIn(fragment, str(exc))

    def test_bad_files(self) -> None:
        line = TicketKey(b"N" * 16, b"S" * 32).to_line()
        self.assert_bad(None, "cannot read")  # missing
        self.assert_bad("", "no keys")
        self.assert_bad("# nothing but comments\n\n", "no keys")
        self.assert_bad(f"{line}\n!!!notbase64\n", "line 2", "not base64")
        short = base64.b64encode(b"x" * 40).decode()
        self.assert_bad(f"# c\n{short}\n", "line 2", "40 bytes")
        self.assert_bad(f"{line}\n{line}\n", "line 2", "line 1")
        self.assert_bad(b"\xff\xfe binary", "not ASCII")
        self.assert_bad("#" * 70000, "larger than")
        many = "".join(
            TicketKey.generate(self.random).to_line() + "\n" for _ in range(257)
        )
        self.assert_bad(many, "more than 256 keys")

    def test_secrets_not_in_errors(self) -> None:
        key = TicketKey(b"N" * 16, b"S" * 32)
        self.write(f"{key.to_line()}\n{key.to_line()[:-4]}\n")
        exc = self.assertRaises(TicketKeyFileError, read_key_file, self.path)
        assert_no_secret(self, str(exc), key.secret)
        self.assertNotIn(key.to_line()[:20], str(exc))

    def test_write_key_file_checks(self) -> None:
        key = TicketKey(b"N" * 16, b"S" * 32)
        self.assertRaises(ValueError, write_key_file, self.path, [])
        self.assertRaises(ValueError, write_key_file, self.path, [key, key])
        self.assertRaises(ValueError, write_key_file, self.path, [b"x" * 48])
        self.assertRaises(ValueError, generate_key_file, self.path, 0, self.random)
        self.assertRaises(ValueError, generate_key_file, self.path, True, self.random)
        self.assertFalse(os.path.exists(self.path))

    # -- permissions (docs/security.rst, "Key files") -------------------------

    def test_writable_by_others_is_refused(self) -> None:
        """
        Whoever may write the key file chooses the keys: a file its group or
        every user may write is refused, by every way of loading it, with a
        message naming the file and the fix.
        """
        line = TicketKey(b"N" * 16, b"S" * 32).to_line()
        for mode, who in ((0o620, "its group"), (0o602, "every user")):
            self.write(line + "\n", mode=mode)
            self.assert_bad(None, who, f"{mode:04o}", f"chmod 600 {self.path}")

    def test_world_readable_warns(self) -> None:
        """Readable by every user: loaded, with a warning naming the fix."""
        key = TicketKey(b"N" * 16, b"S" * 32)
        self.write(key.to_line() + "\n", mode=0o644)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            self.assertEqual(read_key_file(self.path), [key])
        [warning] = caught
        self.assertIs(warning.category, InsecureFileWarning)
        self.assertIn(self.path, str(warning.message))
        self.assertIn("every user", str(warning.message))
        self.assertIn(f"chmod 600 {self.path}", str(warning.message))
        assert_no_secret(self, str(warning.message), key.secret)

    def test_owner_and_group_readable_are_quiet(self) -> None:
        key = TicketKey(b"N" * 16, b"S" * 32)
        for mode in (0o600, 0o640, 0o400):
            self.write(key.to_line() + "\n", mode=mode)
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                self.assertEqual(read_key_file(self.path), [key])

    def test_reload_refuses_a_file_made_writable(self) -> None:
        """A rotation that leaves the file group-writable keeps the old keys."""
        generate_key_file(self.path, 1, self.random)
        clock = FakeClock()
        keys = FileTicketKeys(
            self.path, clock=clock, random=self.random, reload_interval=10
        )
        ticket = keys.seal(b"x")
        generate_key_file(self.path, 1, self.random)
        os.chmod(self.path, 0o660)
        clock.advance(10)
        self.assertEqual(keys.open(ticket), b"x")
        assert keys.last_reload_error is not None
        self.assertIn("chmod 600", keys.last_reload_error)
        self.assertRaises(TicketKeyFileError, keys.reload)

    def test_replacing_a_0644_file_leaves_0600(self) -> None:
        self.write("# an old, too open file\n", mode=0o644)
        write_key_file(self.path, [TicketKey(b"N" * 16, b"S" * 32)])
        self.assertEqual(stat.S_IMODE(os.stat(self.path).st_mode), 0o600)
        rotate_key_file(self.path, self.random)
        self.assertEqual(stat.S_IMODE(os.stat(self.path).st_mode), 0o600)

    def test_symlink_at_the_old_temporary_name_is_not_followed(self) -> None:
        """
        The temporary file used to be PATH.tmpPID: another local user could
        plant a symlink there and have the keys written wherever it points.
        """
        victim = os.path.join(self.directory, "victim")
        with open(victim, "wb") as f:
            f.write(b"untouched")
        planted = f"{self.path}.tmp{os.getpid()}"
        os.symlink(victim, planted)
        keys = generate_key_file(self.path, 1, self.random)
        with open(victim, "rb") as f:
            self.assertEqual(f.read(), b"untouched")
        self.assertTrue(os.path.islink(planted))
        self.assertFalse(os.path.islink(self.path))
        self.assertEqual(read_key_file(self.path), keys)

    def test_concurrent_writers(self) -> None:
        """
        Writers in parallel (threads of one process, so the same PID) each
        leave a whole file: a reader only ever sees one writer's keys.
        """
        randoms = [FakeRandom(b"%d" % n) for n in range(4)]
        sets = [[TicketKey.generate(r) for _ in range(3)] for r in randoms]
        errors: list[BaseException] = []
        seen: list[list[TicketKey]] = []
        stop = threading.Event()

        def writer(keys: list[TicketKey]) -> None:
            try:
                for _ in range(40):
                    write_key_file(self.path, keys)
            except BaseException as e:
                errors.append(e)

        def reader() -> None:
            while not stop.is_set():
                try:
                    seen.append(read_key_file(self.path))
                except BaseException as e:
                    errors.append(e)
                    return

        write_key_file(self.path, sets[0])
        threads = [threading.Thread(target=writer, args=(k,)) for k in sets]
        watcher = threading.Thread(target=reader)
        watcher.start()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        stop.set()
        watcher.join()
        self.assertEqual(errors, [])
        self.assertTrue(seen)
        for keys in seen:
            self.assertIn(keys, sets)
        self.assertIn(read_key_file(self.path), sets)
        self.assertEqual(os.listdir(self.directory), ["ticket.keys"])

    def test_rotate_key_file(self) -> None:
        first = rotate_key_file(self.path, self.random, keep=3)  # creates it
        self.assertEqual(len(first), 1)
        for _ in range(4):
            keys = rotate_key_file(self.path, self.random, keep=3)
        self.assertEqual(len(keys), 3)
        self.assertEqual(read_key_file(self.path), keys)
        self.assertNotIn(first[0], keys)
        self.write("garbage\n")
        self.assertRaises(TicketKeyFileError, rotate_key_file, self.path, self.random)
        self.assertRaises(ValueError, rotate_key_file, self.path, self.random, keep=0)


# ---------------------------------------------------------------------------
# SessionCache
# ---------------------------------------------------------------------------


class SessionCacheTests(SynchronousTestCase):
    def test_lock_guards_every_use(self) -> None:
        """
        As with TicketKeys: the lock is handed in, and every use takes it;
        the cache a Context makes itself has one.
        """
        log: list[str] = []

        class RecordingLock:
            def __enter__(self) -> None:
                log.append("enter")

            def __exit__(self, *exc_info: object) -> None:
                log.append("exit")

        cache = SessionCache(clock=FakeClock(), lock=RecordingLock())
        cache.put(b"\x01" * 32, state12())
        self.assertEqual(cache.get(b"\x01" * 32), state12())
        cache.remove(b"\x01" * 32)
        cache.clear()
        self.assertEqual(log, ["enter", "exit"] * 4)
        lock_type = type(threading.Lock())
        self.assertIsInstance(Context().session_cache._lock, lock_type)  # type: ignore[union-attr]
        self.assertNotIsInstance(SessionCache(clock=FakeClock())._lock, lock_type)

    def test_put_get_remove(self) -> None:
        cache = SessionCache(clock=FakeClock())
        cache.put(b"\x01" * 32, state12())
        self.assertEqual(cache.get(b"\x01" * 32), state12())
        self.assertEqual(cache.get(bytearray(b"\x01" * 32)), state12())
        self.assertIsNone(cache.get(b"\x02" * 32))
        self.assertIn(b"\x01" * 32, cache)
        self.assertEqual(len(cache), 1)
        cache.remove(b"\x01" * 32)
        cache.remove(b"\x01" * 32)  # twice is fine
        self.assertIsNone(cache.get(b"\x01" * 32))
        self.assertEqual(len(cache), 0)

    def test_expiry(self) -> None:
        clock = FakeClock()
        cache = SessionCache(clock=clock, lifetime=100)
        cache.put(b"a", state12(lifetime=7200))
        clock.advance(99)
        self.assertIsNotNone(cache.get(b"a"))
        clock.advance(1)
        self.assertIsNone(cache.get(b"a"))
        self.assertEqual(len(cache), 0)  # removed, not just hidden

    def test_state_lifetime_shorter_than_cache(self) -> None:
        clock = FakeClock()
        cache = SessionCache(clock=clock, lifetime=7200)
        cache.put(b"a", state12(lifetime=10))
        clock.advance(10)
        self.assertIsNone(cache.get(b"a"))

    def test_no_ems_never_returned(self) -> None:
        cache = SessionCache(clock=FakeClock())
        cache.put(b"a", state12(extended_master_secret=False))
        self.assertIsNone(cache.get(b"a"))

    def test_bound_and_lru(self) -> None:
        cache = SessionCache(clock=FakeClock(), max_entries=3)
        for name in (b"a", b"b", b"c"):
            cache.put(name, state12())
        cache.get(b"a")  # now most recently used
        cache.put(b"d", state12())
        self.assertEqual(len(cache), 3)
        self.assertIsNone(cache.get(b"b"))
        for name in (b"a", b"c", b"d"):
            self.assertIsNotNone(cache.get(name))
        for i in range(1000):
            cache.put(i.to_bytes(4, "big"), state12())
        self.assertEqual(len(cache), 3)

    def test_expired_entries_swept_on_put(self) -> None:
        clock = FakeClock()
        cache = SessionCache(clock=clock, lifetime=10)
        for i in range(50):
            cache.put(bytes([i + 1]), state12())
        clock.advance(10)
        cache.put(b"new", state12())
        self.assertEqual(len(cache), 1)

    def test_replace_entry(self) -> None:
        cache = SessionCache(clock=FakeClock())
        cache.put(b"a", state12())
        newer = state12(secret=b"\x07" * 48)
        cache.put(b"a", newer)
        self.assertEqual(cache.get(b"a"), newer)
        self.assertEqual(len(cache), 1)

    def test_bad_arguments(self) -> None:
        cache = SessionCache(clock=FakeClock())
        self.assertRaises(ValueError, cache.put, b"", state12())
        self.assertRaises(ValueError, cache.put, b"x" * 33, state12())
        self.assertRaises(ValueError, cache.put, "id", state12())
        self.assertRaises(ValueError, cache.put, b"a", b"state")
        self.assertIsNone(cache.get(None))  # type: ignore[arg-type]
        self.assertIsNone(cache.get(b""))
        self.assertRaises(ValueError, SessionCache, clock=FakeClock(), max_entries=0)
        self.assertRaises(ValueError, SessionCache, clock=FakeClock(), max_entries=True)
        self.assertRaises(ValueError, SessionCache, clock=FakeClock(), lifetime=0)
        self.assertRaises(ValueError, SessionCache, clock=None)

    def test_empty_cache_is_true(self) -> None:
        # ``if context.session_cache:`` means "enabled", even when empty.
        self.assertTrue(SessionCache(clock=FakeClock()))

    def test_defaults_and_repr(self) -> None:
        cache = SessionCache(clock=FakeClock())
        self.assertEqual(cache.max_entries, 20000)
        self.assertEqual(cache.lifetime, 7200)
        cache.put(b"a", state12())
        assert_no_secret(self, repr(cache), MASTER)


# ---------------------------------------------------------------------------
# Context options
# ---------------------------------------------------------------------------


class ContextSessionOptionTests(SynchronousTestCase):
    def test_defaults(self) -> None:
        context = Context()
        self.assertIsInstance(context.session_tickets, TicketKeys)
        self.assertIsNone(context.session_tickets.path)
        self.assertIsInstance(context.session_cache, SessionCache)
        self.assertEqual(context.session_lifetime, 7200)
        self.assertEqual(context.tickets_per_handshake, DEFAULT_TICKETS_PER_HANDSHAKE)
        self.assertIn(context.tickets_per_handshake, (1, 2))
        self.assertFalse(context.allow_psk_ke)
        self.assertFalse(context.allow_peer_renegotiation)
        self.assertIsNone(context.ticket_key_file)
        self.assertEqual(context.session_tickets.decrypt_window, 7200)
        self.assertEqual(context.session_cache.lifetime, 7200)

    def test_per_context_defaults(self) -> None:
        one, two = Context(), Context()
        self.assertIsNot(one.session_tickets, two.session_tickets)
        self.assertIsNot(one.session_cache, two.session_cache)

    def test_default_keys_lazy_and_injected(self) -> None:
        random, clock = FakeRandom(), FakeClock()
        context = Context(random=random, clock=clock)
        self.assertEqual(random.calls, 0)
        keys = context.session_tickets
        assert keys is not None
        ticket = keys.seal(b"x")
        self.assertEqual(random.calls, 2)
        # Same injected randomness, same ticket: replayable.
        again = Context(random=FakeRandom(), clock=FakeClock()).session_tickets
        assert again is not None
        self.assertEqual(again.seal(b"x"), ticket)
        # And the Context's clock drives rotation.
        clock.advance(3600)
        self.assertNotEqual(keys.seal(b"x")[:16], ticket[:16])

    def test_lifetime_shapes_defaults(self) -> None:
        context = Context(session_lifetime=600)
        assert context.session_tickets is not None and context.session_cache
        self.assertEqual(context.session_tickets.decrypt_window, 600)
        self.assertEqual(context.session_tickets.rotation_interval, 600)
        self.assertEqual(context.session_cache.lifetime, 600)
        self.assertEqual(Context(session_lifetime=604800).session_lifetime, 604800)

    def test_disable(self) -> None:
        context = Context(session_tickets=False, session_cache=False)
        self.assertIsNone(context.session_tickets)
        self.assertIsNone(context.session_cache)
        self.assertIsInstance(Context(session_tickets=True).session_tickets, TicketKeys)

    def test_explicit_objects(self) -> None:
        keys, _, _ = memory_keys()
        cache = SessionCache(clock=FakeClock(), max_entries=5)
        context = Context(session_tickets=keys, session_cache=cache)
        self.assertIs(context.session_tickets, keys)
        self.assertIs(context.session_cache, cache)

    def test_flags(self) -> None:
        context = Context(
            allow_psk_ke=True, allow_peer_renegotiation=True, tickets_per_handshake=0
        )
        self.assertTrue(context.allow_psk_ke)
        self.assertTrue(context.allow_peer_renegotiation)
        self.assertEqual(context.tickets_per_handshake, 0)

    def test_validation(self) -> None:
        bad = [
            ({"session_lifetime": 0}, "session_lifetime"),
            ({"session_lifetime": 604801}, "session_lifetime"),
            ({"session_lifetime": True}, "session_lifetime"),
            ({"session_lifetime": "7200"}, "session_lifetime"),
            ({"tickets_per_handshake": -1}, "tickets_per_handshake"),
            ({"tickets_per_handshake": 11}, "tickets_per_handshake"),
            ({"allow_psk_ke": "yes"}, "allow_psk_ke"),
            ({"allow_peer_renegotiation": 1}, "allow_peer_renegotiation"),
            ({"session_tickets": "keys"}, "session_tickets"),
            ({"session_cache": {}}, "session_cache"),
            ({"ticket_key_file": 42}, "ticket_key_file"),
        ]
        for kwargs, word in bad:
            exc = self.assertRaises(ValueError, Context, **kwargs)
            self.assertIn(word, str(exc))

    def test_frozen(self) -> None:
        context = Context()
        self.assertRaises(AttributeError, setattr, context, "session_lifetime", 5)
        self.assertRaises(AttributeError, setattr, context, "session_tickets", None)

    def test_ticket_key_file(self) -> None:
        directory = self.mktemp()
        os.makedirs(directory)
        path = os.path.join(directory, "keys")
        keys = generate_key_file(path, 2, FakeRandom())
        context = Context(ticket_key_file=path)
        tickets = context.session_tickets
        assert tickets is not None
        self.assertEqual(context.ticket_key_file, path)
        self.assertEqual(tickets.path, path)
        self.assertEqual(tickets.key_names, tuple(k.name for k in keys))
        self.assertRaises(
            ValueError, Context, ticket_key_file=path, session_tickets=False
        )
        other, _, _ = memory_keys()
        self.assertRaises(
            ValueError, Context, ticket_key_file=path, session_tickets=other
        )
        # The instance loaded from that very file is accepted (replace()).
        same = Context(ticket_key_file=path, session_tickets=tickets)
        self.assertIs(same.session_tickets, tickets)

    def test_replace_shares_state(self) -> None:
        context = Context()
        copy = context.replace(alpn_protocols=[b"h2"])
        self.assertIs(copy.session_tickets, context.session_tickets)
        self.assertIs(copy.session_cache, context.session_cache)
        self.assertEqual(copy.session_lifetime, context.session_lifetime)
        # Still known as defaults: a later clock change makes fresh ones.
        clocked = copy.replace(clock=FakeClock())
        self.assertIsNot(clocked.session_tickets, context.session_tickets)
        self.assertIsNot(clocked.session_cache, context.session_cache)

    def test_replace_reshapes_defaults(self) -> None:
        context = Context()
        longer = context.replace(session_lifetime=86400)
        assert longer.session_tickets is not None and longer.session_cache
        self.assertEqual(longer.session_tickets.decrypt_window, 86400)
        self.assertEqual(longer.session_cache.lifetime, 86400)
        random = FakeRandom()
        reseeded = context.replace(random=random)
        self.assertIsNot(reseeded.session_tickets, context.session_tickets)
        self.assertIs(reseeded.session_cache, context.session_cache)
        assert reseeded.session_tickets is not None
        reseeded.session_tickets.seal(b"x")
        self.assertEqual(random.calls, 2)

    def test_replace_keeps_explicit_objects(self) -> None:
        keys, _, _ = memory_keys()
        cache = SessionCache(clock=FakeClock())
        context = Context(session_tickets=keys, session_cache=cache)
        copy = context.replace(clock=FakeClock(), session_lifetime=60)
        self.assertIs(copy.session_tickets, keys)
        self.assertIs(copy.session_cache, cache)
        off = context.replace(session_tickets=False, session_cache=False)
        self.assertIsNone(off.session_tickets)
        self.assertIsNone(off.session_cache)
        self.assertIsNone(off.replace(npn_protocols=[b"x"]).session_tickets)
        flags = context.replace(allow_psk_ke=True, tickets_per_handshake=1)
        self.assertTrue(flags.allow_psk_ke)
        self.assertEqual(flags.tickets_per_handshake, 1)

    def test_replace_with_key_file(self) -> None:
        directory = self.mktemp()
        os.makedirs(directory)
        path = os.path.join(directory, "keys")
        generate_key_file(path, 1, FakeRandom())
        context = Context(ticket_key_file=path)
        copy = context.replace(alpn_protocols=[b"h2"])
        self.assertIs(copy.session_tickets, context.session_tickets)
        self.assertEqual(copy.ticket_key_file, path)
        memory = context.replace(ticket_key_file=None)
        assert memory.session_tickets is not None
        self.assertIsNone(memory.ticket_key_file)
        self.assertIsNone(memory.session_tickets.path)
        off = context.replace(session_tickets=False)
        self.assertIsNone(off.session_tickets)
        self.assertIsNone(off.ticket_key_file)
        reclocked = context.replace(clock=FakeClock())
        assert reclocked.session_tickets is not None
        self.assertIsNot(reclocked.session_tickets, context.session_tickets)
        self.assertEqual(reclocked.session_tickets.path, path)

    def test_bad_key_file_names_file(self) -> None:
        path = os.path.join(self.mktemp(), "missing.keys")
        exc = self.assertRaises(ConfigurationError, Context, ticket_key_file=path)
        self.assertIn(path, str(exc))
