"""Tests for twisted_sslfile.engine.keyschedule.

The TLS 1.3 schedule is checked value by value against RFC 8448 §3; the
pieces RFC 8448 does not exercise (KeyUpdate, exporters, the TLS 1.2 PRF
family) against published vectors where they exist and otherwise against a
second implementation written here with the standard library's ``hmac`` and
``hashlib`` (so that a bug in how we drive ``cryptography`` cannot hide) and
against tlslite-ng, which is a test dependency.
"""

from __future__ import annotations

import hashlib
import hmac

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import x25519
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand
from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from tests import rfc8448 as R
from twisted_sslfile.constants import CipherSuite, NamedGroup
from twisted_sslfile.engine import keyschedule as K
from twisted_sslfile.engine.suites import (
    CIPHER_SUITES,
    generate_key_share,
    respond_to_key_share,
)
from twisted_sslfile.errors import DecryptError, InternalError

SHA256 = hashes.SHA256


# ---------------------------------------------------------------------------
# An independent reference: RFC 5869 / RFC 8446 §7.1 / RFC 5246 §5 written
# with the standard library only.
# ---------------------------------------------------------------------------


def ref_hmac(name: str, key: bytes, data: bytes) -> bytes:
    return hmac.new(key, data, name).digest()


def ref_expand(name: str, prk: bytes, info: bytes, length: int) -> bytes:
    out, block, counter = b"", b"", 1
    while len(out) < length:
        block = ref_hmac(name, prk, block + info + bytes([counter]))
        out += block
        counter += 1
    return out[:length]


def ref_expand_label(
    name: str, secret: bytes, label: bytes, context: bytes, length: int
) -> bytes:
    full = b"tls13 " + label
    info = (
        length.to_bytes(2, "big")
        + bytes([len(full)])
        + full
        + bytes([len(context)])
        + context
    )
    return ref_expand(name, secret, info, length)


def ref_p_hash(name: str, secret: bytes, seed: bytes, length: int) -> bytes:
    out, a = b"", seed
    while len(out) < length:
        a = ref_hmac(name, secret, a)
        out += ref_hmac(name, secret, a + seed)
    return out[:length]


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def transcript_hash(*messages: bytes) -> bytes:
    return sha256(b"".join(messages))


def protect13(key: bytes, iv: bytes, seq: int, content_type: int, data: bytes) -> bytes:
    """A TLS 1.3 record (RFC 8446 §5.2), written out independently."""
    nonce = bytes(a ^ b for a, b in zip(iv, seq.to_bytes(12, "big"), strict=True))
    inner = data + bytes([content_type])
    header = b"\x17\x03\x03" + (len(inner) + 16).to_bytes(2, "big")
    return header + AESGCM(key).encrypt(nonce, inner, header)


# ---------------------------------------------------------------------------
# HKDF
# ---------------------------------------------------------------------------


class HKDFTests(SynchronousTestCase):
    """HKDF-Extract/Expand and the TLS 1.3 label wrapper."""

    def test_rfc5869_case_1(self) -> None:
        """RFC 5869 A.1 (SHA-256)."""
        ikm = bytes.fromhex("0b" * 22)
        salt = bytes.fromhex("000102030405060708090a0b0c")
        info = bytes.fromhex("f0f1f2f3f4f5f6f7f8f9")
        prk = K.hkdf_extract(SHA256, salt, ikm)
        self.assertEqual(
            prk.hex(),
            "077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5",
        )
        self.assertEqual(
            K.hkdf_expand(SHA256, prk, info, 42).hex(),
            "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf"
            "34007208d5b887185865",
        )

    @settings(max_examples=200, deadline=None)
    @given(
        hash_=st.sampled_from([hashes.SHA256, hashes.SHA384]),
        prk=st.binary(min_size=1, max_size=80),
        info=st.binary(max_size=300),
        length=st.integers(min_value=1, max_value=255 * 32),
    )
    def test_expand_agrees_with_cryptography(
        self,
        hash_: type[hashes.HashAlgorithm],
        prk: bytes,
        info: bytes,
        length: int,
    ) -> None:
        """HKDF-Expand on the standard library's HMAC gives exactly what
        ``cryptography``'s HKDFExpand gives, one block or many."""
        expected = HKDFExpand(hash_(), length, info).derive(prk)
        self.assertEqual(K.hkdf_expand(hash_, prk, info, length), expected)

    @settings(max_examples=200, deadline=None)
    @given(
        name=st.sampled_from(["sha256", "sha384"]),
        key=st.binary(max_size=300),
        data=st.binary(max_size=300),
    )
    def test_hmac_agrees_with_the_standard_library(
        self, name: str, key: bytes, data: bytes
    ) -> None:
        """The RFC 2104 construction over hashlib is the standard library's
        HMAC, keys longer than a block (hashed first) and empty ones too."""
        hash_ = {"sha256": hashes.SHA256, "sha384": hashes.SHA384}[name]
        self.assertEqual(K._hmac(hash_, key, data), hmac.digest(key, data, name))
        self.assertEqual(K._hmac(hash_(), key, data), hmac.digest(key, data, name))
        self.assertEqual(
            K._hmac(hash_, memoryview(bytearray(key)), data),
            hmac.digest(key, data, name),
        )

    def test_hmac_with_hashes_hashlib_names_differently(self) -> None:
        """A hash whose cryptography name is not a hashlib attribute
        (``sha3-256``, ``sha512-256``) goes through ``hashlib.new``."""
        for hash_, name in (
            (hashes.SHA3_256, "sha3_256"),
            (hashes.SHA512_256, "sha512_256"),
        ):
            self.assertEqual(
                K._hmac(hash_, b"key" * 50, b"data"),
                hmac.digest(b"key" * 50, b"data", name),
            )

    def test_expand_length_limits(self) -> None:
        """RFC 5869 §2.3: L <= 255 * HashLen; an empty output is empty."""
        self.assertEqual(K.hkdf_expand(SHA256, b"k" * 32, b"", 0), b"")
        self.assertEqual(len(K.hkdf_expand(SHA256, b"k" * 32, b"", 255 * 32)), 8160)
        with self.assertRaises(ValueError):
            K.hkdf_expand(SHA256, b"k" * 32, b"", 255 * 32 + 1)

    def test_extract_without_salt_is_zero_salt(self) -> None:
        """RFC 5869 §2.2: no salt means HashLen zero bytes."""
        ikm = b"input keying material"
        self.assertEqual(
            K.hkdf_extract(SHA256, None, ikm), K.hkdf_extract(SHA256, bytes(32), ikm)
        )
        self.assertEqual(
            K.hkdf_extract(SHA256, b"", ikm), ref_hmac("sha256", bytes(32), ikm)
        )

    def test_hash_class_or_instance(self) -> None:
        """Every function accepts the hash class and an instance alike."""
        self.assertEqual(
            K.hkdf_expand_label(SHA256, b"s" * 32, b"key", b"", 16),
            K.hkdf_expand_label(SHA256(), b"s" * 32, b"key", b"", 16),
        )

    @settings(max_examples=50, deadline=None)
    @given(
        secret=st.binary(min_size=32, max_size=48),
        label=st.binary(max_size=40),
        context=st.binary(max_size=64),
        length=st.integers(min_value=0, max_value=200),
        sha384=st.booleans(),
    )
    def test_expand_label_matches_reference(
        self, secret: bytes, label: bytes, context: bytes, length: int, sha384: bool
    ) -> None:
        name, hash_ = ("sha384", hashes.SHA384) if sha384 else ("sha256", SHA256)
        self.assertEqual(
            K.hkdf_expand_label(hash_, secret, label, context, length),
            ref_expand_label(name, secret, label, context, length),
        )

    def test_expand_label_limits(self) -> None:
        """An HkdfLabel that cannot be encoded is a caller bug: ValueError."""
        self.assertRaises(
            ValueError, K.hkdf_expand_label, SHA256, b"s" * 32, b"x" * 250, b"", 32
        )
        self.assertRaises(
            ValueError, K.hkdf_expand_label, SHA256, b"s" * 32, b"x", b"c" * 256, 32
        )
        self.assertRaises(
            ValueError, K.hkdf_expand_label, SHA256, b"s" * 32, b"x", b"", 2**16
        )
        # 249 bytes of label (255 with the prefix) is still fine.
        self.assertEqual(
            len(K.hkdf_expand_label(SHA256, b"s" * 32, b"x" * 249, b"", 32)), 32
        )


# ---------------------------------------------------------------------------
# RFC 8448 §3
# ---------------------------------------------------------------------------


class RFC8448DataTests(SynchronousTestCase):
    """The transcribed RFC 8448 values are self-consistent."""

    def test_handshake_message_lengths(self) -> None:
        """Each message's 3-byte length equals its body length."""
        for message in (*R.HANDSHAKE_MESSAGES, R.NEW_SESSION_TICKET):
            self.assertEqual(int.from_bytes(message[1:4], "big"), len(message) - 4)
        self.assertEqual(
            [len(m) for m in R.HANDSHAKE_MESSAGES], [196, 90, 40, 445, 136, 36, 36]
        )
        self.assertEqual(len(R.NEW_SESSION_TICKET), 205)
        self.assertEqual(
            [m[0] for m in R.HANDSHAKE_MESSAGES], [1, 2, 8, 11, 15, 20, 20]
        )

    def test_record_lengths(self) -> None:
        """Each record's header length equals its fragment length."""
        records = {
            "CLIENT_HELLO_RECORD": 201,
            "SERVER_HELLO_RECORD": 95,
            "SERVER_FLIGHT_RECORD": 679,
            "CLIENT_FINISHED_RECORD": 58,
            "NEW_SESSION_TICKET_RECORD": 227,
            "CLIENT_APPLICATION_DATA_RECORD": 72,
            "SERVER_APPLICATION_DATA_RECORD": 72,
            "CLIENT_ALERT_RECORD": 24,
            "SERVER_ALERT_RECORD": 24,
        }
        for name, size in records.items():
            record = getattr(R, name)
            self.assertEqual(len(record), size, name)
            self.assertEqual(int.from_bytes(record[3:5], "big"), size - 5, name)

    def test_randoms(self) -> None:
        self.assertEqual(R.CLIENT_HELLO[6:38], R.CLIENT_RANDOM)
        self.assertEqual(R.SERVER_HELLO[6:38], R.SERVER_RANDOM)

    def test_key_shares_in_hellos(self) -> None:
        """The x25519 publics appear in the ClientHello and ServerHello."""
        self.assertIn(b"\x00\x1d\x00\x20" + R.CLIENT_X25519_PUBLIC, R.CLIENT_HELLO)
        self.assertIn(b"\x00\x1d\x00\x20" + R.SERVER_X25519_PUBLIC, R.SERVER_HELLO)

    def test_x25519_key_pairs(self) -> None:
        for private, public in (
            (R.CLIENT_X25519_PRIVATE, R.CLIENT_X25519_PUBLIC),
            (R.SERVER_X25519_PRIVATE, R.SERVER_X25519_PUBLIC),
        ):
            key = x25519.X25519PrivateKey.from_private_bytes(private)
            self.assertEqual(key.public_key().public_bytes_raw(), public)

    def test_finished_messages_carry_verify_data(self) -> None:
        self.assertEqual(R.SERVER_FINISHED[4:], R.SERVER_FINISHED_VERIFY_DATA)
        self.assertEqual(R.CLIENT_FINISHED[4:], R.CLIENT_FINISHED_VERIFY_DATA)

    def test_rsa_key(self) -> None:
        """n = p*q, and the computed CRT values are the RFC's."""
        numbers = R.server_rsa_private_numbers()
        n = int.from_bytes(R.RSA_MODULUS, "big")
        self.assertEqual(numbers.p * numbers.q, n)
        self.assertEqual(numbers.dmp1, int.from_bytes(R.RSA_EXPONENT1, "big"))
        self.assertEqual(numbers.dmq1, int.from_bytes(R.RSA_EXPONENT2, "big"))
        self.assertEqual(numbers.iqmp, int.from_bytes(R.RSA_COEFFICIENT, "big"))
        self.assertEqual(R.server_rsa_private_key().key_size, 1024)


class RFC8448ScheduleTests(SynchronousTestCase):
    """Every secret of RFC 8448 §3, computed from the RFC's inputs."""

    def setUp(self) -> None:
        info = CIPHER_SUITES[CipherSuite.TLS_AES_128_GCM_SHA256]
        self.hash = info.hash
        # ECDHE from the private keys, through the key-share API: the client's
        # share drawn from a random source that yields the RFC's private key.
        client = generate_key_share(
            NamedGroup.x25519, lambda n: R.CLIENT_X25519_PRIVATE
        )
        self.client_share = client
        self.shared_secret = client.shared_secret(R.SERVER_X25519_PUBLIC)
        self.transcript = K.Transcript()
        for message in R.HANDSHAKE_MESSAGES[:2]:
            self.transcript.update(message)
        self.transcript.set_hash(self.hash)
        self.schedule = K.KeySchedule13(self.hash)

    def _climb(self) -> None:
        self.schedule.derive_handshake_secret(self.shared_secret)
        for message in R.HANDSHAKE_MESSAGES[2:6]:
            self.transcript.update(message)
        self.schedule.derive_master_secret()

    def test_ecdhe(self) -> None:
        self.assertEqual(self.client_share.public_bytes, R.CLIENT_X25519_PUBLIC)
        self.assertEqual(self.shared_secret, R.ECDHE_SHARED_SECRET)
        server_share, secret = respond_to_key_share(
            NamedGroup.x25519, R.CLIENT_X25519_PUBLIC, lambda n: R.SERVER_X25519_PRIVATE
        )
        self.assertEqual(server_share, R.SERVER_X25519_PUBLIC)
        self.assertEqual(secret, R.ECDHE_SHARED_SECRET)

    def test_early_secret(self) -> None:
        self.assertEqual(self.schedule.early_secret, R.EARLY_SECRET)
        self.assertEqual(
            K.derive_secret(self.hash, R.EARLY_SECRET, b"derived", R.HASH_EMPTY),
            R.DERIVED_FOR_HANDSHAKE,
        )

    def test_handshake_secret(self) -> None:
        self.assertEqual(
            self.schedule.derive_handshake_secret(self.shared_secret),
            R.HANDSHAKE_SECRET,
        )
        self.assertEqual(self.schedule.handshake_secret, R.HANDSHAKE_SECRET)
        self.assertEqual(
            K.hkdf_extract(self.hash, R.DERIVED_FOR_HANDSHAKE, R.ECDHE_SHARED_SECRET),
            R.HANDSHAKE_SECRET,
        )

    def test_transcript_hashes(self) -> None:
        self.assertEqual(self.transcript.digest(), R.HASH_CH_SH)
        for message in R.HANDSHAKE_MESSAGES[2:6]:
            self.transcript.update(message)
        self.assertEqual(self.transcript.digest(), R.HASH_CH_SF)
        self.transcript.update(R.CLIENT_FINISHED)
        self.assertEqual(self.transcript.digest(), R.HASH_CH_CF)

    def test_handshake_traffic_secrets(self) -> None:
        self.schedule.derive_handshake_secret(self.shared_secret)
        th = self.transcript.digest()
        self.assertEqual(
            self.schedule.client_handshake_traffic_secret(th),
            R.CLIENT_HANDSHAKE_TRAFFIC_SECRET,
        )
        self.assertEqual(
            self.schedule.server_handshake_traffic_secret(th),
            R.SERVER_HANDSHAKE_TRAFFIC_SECRET,
        )

    def test_master_secret(self) -> None:
        self.schedule.derive_handshake_secret(self.shared_secret)
        self.assertEqual(
            K.derive_secret(self.hash, R.HANDSHAKE_SECRET, b"derived", R.HASH_EMPTY),
            R.DERIVED_FOR_MASTER,
        )
        self.assertEqual(self.schedule.derive_master_secret(), R.MASTER_SECRET)
        self.assertEqual(self.schedule.master_secret, R.MASTER_SECRET)

    def test_application_traffic_secrets(self) -> None:
        self._climb()
        th = self.transcript.digest()
        self.assertEqual(
            self.schedule.client_application_traffic_secret_0(th),
            R.CLIENT_APPLICATION_TRAFFIC_SECRET_0,
        )
        self.assertEqual(
            self.schedule.server_application_traffic_secret_0(th),
            R.SERVER_APPLICATION_TRAFFIC_SECRET_0,
        )

    def test_exporter_master_secret(self) -> None:
        self._climb()
        self.assertEqual(
            self.schedule.exporter_master_secret(self.transcript.digest()),
            R.EXPORTER_MASTER_SECRET,
        )

    def test_resumption_master_secret(self) -> None:
        self._climb()
        self.transcript.update(R.CLIENT_FINISHED)
        self.assertEqual(
            self.schedule.resumption_master_secret(self.transcript.digest()),
            R.RESUMPTION_MASTER_SECRET,
        )

    def test_resumption_psk(self) -> None:
        """§4.6.1 with the NewSessionTicket's nonce (00 00)."""
        # NewSessionTicket: lifetime(4) age_add(4) nonce<0..255> ...
        nonce_length = R.NEW_SESSION_TICKET[12]
        nonce = R.NEW_SESSION_TICKET[13 : 13 + nonce_length]
        self.assertEqual(nonce, R.TICKET_NONCE)
        self.assertEqual(
            K.resumption_psk(self.hash, R.RESUMPTION_MASTER_SECRET, nonce),
            R.RESUMPTION_PSK,
        )

    def test_resumed_early_secret(self) -> None:
        """RFC 8448 §4: the early secret of the resumed handshake."""
        schedule = K.KeySchedule13(self.hash, psk=R.RESUMPTION_PSK)
        self.assertEqual(schedule.early_secret, R.RESUMED_EARLY_SECRET)

    def test_traffic_keys(self) -> None:
        cases = [
            (
                R.SERVER_HANDSHAKE_TRAFFIC_SECRET,
                R.SERVER_HANDSHAKE_KEY,
                R.SERVER_HANDSHAKE_IV,
            ),
            (
                R.CLIENT_HANDSHAKE_TRAFFIC_SECRET,
                R.CLIENT_HANDSHAKE_KEY,
                R.CLIENT_HANDSHAKE_IV,
            ),
            (
                R.SERVER_APPLICATION_TRAFFIC_SECRET_0,
                R.SERVER_APPLICATION_KEY,
                R.SERVER_APPLICATION_IV,
            ),
            (
                R.CLIENT_APPLICATION_TRAFFIC_SECRET_0,
                R.CLIENT_APPLICATION_KEY,
                R.CLIENT_APPLICATION_IV,
            ),
        ]
        info = CIPHER_SUITES[CipherSuite.TLS_AES_128_GCM_SHA256]
        for secret, key, iv in cases:
            self.assertEqual(
                K.traffic_key_iv(info.hash, secret, info.key_length, info.iv_length),
                (key, iv),
            )

    def test_finished_keys(self) -> None:
        self.assertEqual(
            K.finished_key(self.hash, R.SERVER_HANDSHAKE_TRAFFIC_SECRET),
            R.SERVER_FINISHED_KEY,
        )
        self.assertEqual(
            K.finished_key(self.hash, R.CLIENT_HANDSHAKE_TRAFFIC_SECRET),
            R.CLIENT_FINISHED_KEY,
        )

    def test_server_finished(self) -> None:
        for message in R.HANDSHAKE_MESSAGES[2:5]:
            self.transcript.update(message)
        verify_data = K.finished_verify_data(
            self.hash, R.SERVER_HANDSHAKE_TRAFFIC_SECRET, self.transcript.digest()
        )
        self.assertEqual(verify_data, R.SERVER_FINISHED_VERIFY_DATA)
        K.check_verify_data(verify_data, R.SERVER_FINISHED[4:])

    def test_client_finished(self) -> None:
        for message in R.HANDSHAKE_MESSAGES[2:6]:
            self.transcript.update(message)
        verify_data = K.finished_verify_data(
            self.hash, R.CLIENT_HANDSHAKE_TRAFFIC_SECRET, self.transcript.digest()
        )
        self.assertEqual(verify_data, R.CLIENT_FINISHED_VERIFY_DATA)
        K.check_verify_data(verify_data, R.CLIENT_FINISHED[4:])

    def test_wrong_finished_is_decrypt_error(self) -> None:
        tampered = (
            bytes([R.CLIENT_FINISHED_VERIFY_DATA[0] ^ 1])
            + (R.CLIENT_FINISHED_VERIFY_DATA[1:])
        )
        exc = self.assertRaises(
            DecryptError, K.check_verify_data, R.CLIENT_FINISHED_VERIFY_DATA, tampered
        )
        self.assertEqual(exc.alert.name, "decrypt_error")
        self.assertRaises(
            DecryptError, K.check_verify_data, R.CLIENT_FINISHED_VERIFY_DATA, b""
        )


class RFC8448RecordTests(SynchronousTestCase):
    """Each protected record of the trace, rebuilt from the derived keys."""

    def test_server_flight(self) -> None:
        key, iv = K.traffic_key_iv(SHA256, R.SERVER_HANDSHAKE_TRAFFIC_SECRET, 16, 12)
        flight = b"".join(R.HANDSHAKE_MESSAGES[2:6])
        self.assertEqual(protect13(key, iv, 0, 22, flight), R.SERVER_FLIGHT_RECORD)

    def test_client_finished(self) -> None:
        key, iv = K.traffic_key_iv(SHA256, R.CLIENT_HANDSHAKE_TRAFFIC_SECRET, 16, 12)
        self.assertEqual(
            protect13(key, iv, 0, 22, R.CLIENT_FINISHED), R.CLIENT_FINISHED_RECORD
        )

    def test_server_application_flight(self) -> None:
        key, iv = K.traffic_key_iv(
            SHA256, R.SERVER_APPLICATION_TRAFFIC_SECRET_0, 16, 12
        )
        self.assertEqual(
            protect13(key, iv, 0, 22, R.NEW_SESSION_TICKET), R.NEW_SESSION_TICKET_RECORD
        )
        self.assertEqual(
            protect13(key, iv, 1, 23, R.APPLICATION_DATA),
            R.SERVER_APPLICATION_DATA_RECORD,
        )
        self.assertEqual(
            protect13(key, iv, 2, 21, R.CLOSE_NOTIFY), R.SERVER_ALERT_RECORD
        )

    def test_client_application_flight(self) -> None:
        key, iv = K.traffic_key_iv(
            SHA256, R.CLIENT_APPLICATION_TRAFFIC_SECRET_0, 16, 12
        )
        self.assertEqual(
            protect13(key, iv, 0, 23, R.APPLICATION_DATA),
            R.CLIENT_APPLICATION_DATA_RECORD,
        )
        self.assertEqual(
            protect13(key, iv, 1, 21, R.CLOSE_NOTIFY), R.CLIENT_ALERT_RECORD
        )


# ---------------------------------------------------------------------------
# KeySchedule13 beyond RFC 8448
# ---------------------------------------------------------------------------


class KeySchedule13Tests(SynchronousTestCase):
    """Order checks, PSK modes, secrets the trace does not show."""

    def test_rungs_in_order(self) -> None:
        """Using a rung before deriving it is a state-machine bug."""
        schedule = K.KeySchedule13(SHA256)
        th = bytes(32)
        self.assertRaises(InternalError, schedule.client_handshake_traffic_secret, th)
        self.assertRaises(InternalError, schedule.derive_master_secret)
        self.assertRaises(
            InternalError, schedule.client_application_traffic_secret_0, th
        )
        self.assertRaises(InternalError, schedule.resumption_master_secret, th)
        schedule.derive_handshake_secret(bytes(32))
        self.assertRaises(InternalError, schedule.exporter_master_secret, th)

    def test_psk_ke_mode(self) -> None:
        """No (EC)DHE: the handshake secret extracts zeros (RFC 8446 §7.1)."""
        schedule = K.KeySchedule13(SHA256, psk=b"p" * 32)
        self.assertEqual(
            schedule.derive_handshake_secret(None),
            K.hkdf_extract(
                SHA256,
                K.derive_secret(SHA256, schedule.early_secret, b"derived", sha256(b"")),
                bytes(32),
            ),
        )

    def test_early_labels(self) -> None:
        psk = b"k" * 32
        schedule = K.KeySchedule13(SHA256, psk=psk)
        early = ref_hmac("sha256", bytes(32), psk)
        self.assertEqual(schedule.early_secret, early)
        empty = sha256(b"")
        th = sha256(b"client hello")
        expected = {
            "ext": ref_expand_label("sha256", early, b"ext binder", empty, 32),
            "res": ref_expand_label("sha256", early, b"res binder", empty, 32),
            "cet": ref_expand_label("sha256", early, b"c e traffic", th, 32),
            "eem": ref_expand_label("sha256", early, b"e exp master", th, 32),
        }
        self.assertEqual(schedule.binder_key(external=True), expected["ext"])
        self.assertEqual(schedule.binder_key(external=False), expected["res"])
        self.assertEqual(schedule.client_early_traffic_secret(th), expected["cet"])
        self.assertEqual(schedule.early_exporter_master_secret(th), expected["eem"])

    def test_sha384_schedule(self) -> None:
        """A SHA-384 suite gives 48-byte secrets, matching the reference."""
        schedule = K.KeySchedule13(hashes.SHA384)
        zeros = bytes(48)
        early = ref_hmac("sha384", zeros, zeros)
        self.assertEqual(schedule.early_secret, early)
        derived = ref_expand_label(
            "sha384", early, b"derived", hashlib.sha384(b"").digest(), 48
        )
        handshake = ref_hmac("sha384", derived, b"s" * 32)
        self.assertEqual(schedule.derive_handshake_secret(b"s" * 32), handshake)
        self.assertEqual(schedule.hash_length, 48)

    def test_repr_shows_no_secret(self) -> None:
        schedule = K.KeySchedule13(SHA256)
        schedule.derive_handshake_secret(R.ECDHE_SHARED_SECRET)
        text = repr(schedule)
        self.assertIn("handshake", text)
        self.assertNotIn(schedule.early_secret.hex()[:8], text)
        self.assertNotIn(repr(schedule.early_secret)[:10], text)

    def test_key_update(self) -> None:
        """RFC 8446 §7.2: "traffic upd" with an empty context."""
        secret = R.CLIENT_APPLICATION_TRAFFIC_SECRET_0
        self.assertEqual(
            K.next_application_traffic_secret(SHA256, secret),
            ref_expand_label("sha256", secret, b"traffic upd", b"", 32),
        )
        self.assertNotEqual(K.next_application_traffic_secret(SHA256, secret), secret)

    def test_exporter(self) -> None:
        """RFC 8446 §7.5 against the reference, on the RFC 8448 secret."""
        label, context = b"EXPORTER-test", b"some context"
        inner = ref_expand_label(
            "sha256", R.EXPORTER_MASTER_SECRET, label, sha256(b""), 32
        )
        expected = ref_expand_label("sha256", inner, b"exporter", sha256(context), 40)
        self.assertEqual(
            K.exporter(SHA256, R.EXPORTER_MASTER_SECRET, label, context, 40), expected
        )

    def test_exporter_no_context_is_empty_context(self) -> None:
        """In TLS 1.3 "no context" and an empty one are the same (§7.5)."""
        self.assertEqual(
            K.exporter(SHA256, R.EXPORTER_MASTER_SECRET, b"EXPORTER-x", None, 32),
            K.exporter(SHA256, R.EXPORTER_MASTER_SECRET, b"EXPORTER-x", b"", 32),
        )

    def test_binder_is_finished_computation(self) -> None:
        """The PSK binder is HMAC(finished_key(binder_key), hash)."""
        schedule = K.KeySchedule13(SHA256, psk=R.RESUMPTION_PSK)
        binder_key = schedule.binder_key(external=False)
        th = sha256(b"truncated client hello")
        finished = ref_expand_label("sha256", binder_key, b"finished", b"", 32)
        self.assertEqual(
            K.finished_verify_data(SHA256, binder_key, th),
            ref_hmac("sha256", finished, th),
        )


# ---------------------------------------------------------------------------
# Transcript
# ---------------------------------------------------------------------------


class TranscriptTests(SynchronousTestCase):
    """Buffering, hashing, HelloRetryRequest restart."""

    def test_buffer_until_hash_known(self) -> None:
        late = K.Transcript()
        late.update(b"one")
        late.update(b"two")
        late.set_hash(SHA256)
        late.update(b"three")
        early = K.Transcript(SHA256)
        for part in (b"one", b"two", b"three"):
            early.update(part)
        self.assertEqual(late.digest(), sha256(b"onetwothree"))
        self.assertEqual(early.digest(), late.digest())

    def test_digest_does_not_consume(self) -> None:
        transcript = K.Transcript(SHA256)
        transcript.update(b"a")
        first = transcript.digest()
        self.assertEqual(transcript.digest(), first)
        self.assertEqual(transcript.digest_with(b"b"), sha256(b"ab"))
        self.assertEqual(transcript.digest(), first)

    def test_digest_before_hash_is_bug(self) -> None:
        transcript = K.Transcript()
        transcript.update(b"client hello")
        self.assertRaises(InternalError, transcript.digest)
        self.assertRaises(InternalError, transcript.restart_with_message_hash)
        self.assertEqual(transcript.raw(), b"client hello")

    def test_set_hash_twice(self) -> None:
        transcript = K.Transcript(SHA256)
        transcript.set_hash(hashes.SHA256())  # same hash: fine
        self.assertRaises(InternalError, transcript.set_hash, hashes.SHA384)

    def test_raw_kept_only_on_request(self) -> None:
        dropped = K.Transcript()
        dropped.update(b"x")
        dropped.set_hash(SHA256)
        self.assertRaises(InternalError, dropped.raw)
        kept = K.Transcript(keep_raw=True)
        kept.update(b"x")
        kept.set_hash(SHA256)
        kept.update(b"y")
        self.assertEqual(kept.raw(), b"xy")

    def test_hello_retry_request(self) -> None:
        """RFC 8446 §4.4.1: ClientHello1 becomes message_hash(Hash(CH1))."""
        ch1, hrr, ch2 = (
            b"\x01\x00\x00\x02ab",
            b"\x02\x00\x00\x01c",
            b"\x01\x00\x00\x01d",
        )
        transcript = K.Transcript(keep_raw=True)
        transcript.update(ch1)
        transcript.set_hash(SHA256)
        transcript.restart_with_message_hash()
        transcript.update(hrr)
        transcript.update(ch2)
        synthetic = b"\xfe\x00\x00\x20" + sha256(ch1)
        self.assertEqual(transcript.digest(), sha256(synthetic + hrr + ch2))
        self.assertEqual(transcript.raw(), synthetic + hrr + ch2)

    def test_hello_retry_request_sha384(self) -> None:
        ch1 = b"\x01\x00\x00\x00"
        transcript = K.Transcript(hashes.SHA384)
        transcript.update(ch1)
        transcript.restart_with_message_hash()
        synthetic = b"\xfe\x00\x00\x30" + hashlib.sha384(ch1).digest()
        self.assertEqual(transcript.digest(), hashlib.sha384(synthetic).digest())

    def test_repr(self) -> None:
        self.assertEqual(repr(K.Transcript()), "<Transcript unset>")
        self.assertEqual(repr(K.Transcript(SHA256)), "<Transcript sha256>")


# ---------------------------------------------------------------------------
# TLS 1.2
# ---------------------------------------------------------------------------

# The TLS 1.2 PRF vectors circulated on the IETF TLS list (msg03416) and used
# by many implementations' test suites: (hash, secret, seed, output).
PRF_VECTORS = [
    (
        SHA256,
        "9bbe436ba940f017b17652849a71db35",
        "a0ba9f936cda311827a6f796ffd5198c",
        "e3f229ba727be17b8d122620557cd453c2aab21d07c3d495329b52d4e61edb5a"
        "6b301791e90d35c9c9a46b4e14baf9af0fa022f7077def17abfd3797c0564bab"
        "4fbc91666e9def9b97fce34f796789baa48082d122ee42c5a72e5a5110fff701"
        "87347b66",
    ),
    (
        hashes.SHA384,
        "b80b733d6ceefcdc71566ea48e5567df",
        "cd665cf6a8447dd6ff8b27555edb7465",
        "7b0c18e9ced410ed1804f2cfa34a336a1c14dffb4900bb5fd7942107e81c83cd"
        "e9ca0faa60be9fe34f82b1233c9146a0e534cb400fed2700884f9dc236f80edd"
        "8bfa961144c9e8d792eca722a7b32fc3d416d473ebc2c5fd4abfdad05d918425"
        "9b5bf8cd4d90fa0d31e2dec479e4f1a26066f2eea9a69236a3e52655c9e9aee6"
        "91c8f3a26854308d5eaa3be85e0990703d73e56f",
    ),
]


class PRFTests(SynchronousTestCase):
    """RFC 5246 §5 P_hash."""

    def test_known_answers(self) -> None:
        for hash_, secret, seed, output in PRF_VECTORS:
            expected = bytes.fromhex(output)
            self.assertEqual(
                K.prf(
                    hash_,
                    bytes.fromhex(secret),
                    b"test label",
                    bytes.fromhex(seed),
                    len(expected),
                ),
                expected,
            )

    def test_known_answer_against_reference(self) -> None:
        """The stdlib reference reproduces the published vector too."""
        _, secret, seed, output = PRF_VECTORS[0]
        self.assertEqual(
            ref_p_hash(
                "sha256",
                bytes.fromhex(secret),
                b"test label" + bytes.fromhex(seed),
                100,
            ).hex(),
            output,
        )

    @settings(max_examples=50, deadline=None)
    @given(
        secret=st.binary(max_size=80),
        label=st.binary(max_size=30),
        seed=st.binary(max_size=80),
        length=st.integers(min_value=0, max_value=150),
    )
    def test_matches_reference(
        self, secret: bytes, label: bytes, seed: bytes, length: int
    ) -> None:
        self.assertEqual(
            K.prf(SHA256, secret, label, seed, length),
            ref_p_hash("sha256", secret, label + seed, length),
        )


class TLS12Tests(SynchronousTestCase):
    """Master secrets, key block, Finished and exporter for TLS 1.2."""

    pms = bytes(range(32))
    client_random = bytes(range(100, 132))
    server_random = bytes(range(200, 232))

    def test_master_secret(self) -> None:
        """RFC 5246 §8.1: seed is client_random + server_random."""
        self.assertEqual(
            K.master_secret(SHA256, self.pms, self.client_random, self.server_random),
            ref_p_hash(
                "sha256",
                self.pms,
                b"master secret" + self.client_random + self.server_random,
                48,
            ),
        )

    def test_extended_master_secret(self) -> None:
        """RFC 7627 §4: seed is the session hash."""
        session_hash = hashlib.sha384(b"messages up to ClientKeyExchange").digest()
        self.assertEqual(
            K.extended_master_secret(hashes.SHA384, self.pms, session_hash),
            ref_p_hash(
                "sha384", self.pms, b"extended master secret" + session_hash, 48
            ),
        )

    def test_key_block(self) -> None:
        """RFC 5246 §6.3: server_random first; keys, then IVs."""
        master = bytes(range(48))
        block = ref_p_hash(
            "sha256",
            master,
            b"key expansion" + self.server_random + self.client_random,
            2 * 16 + 2 * 4,
        )
        self.assertEqual(
            K.key_block(SHA256, master, self.client_random, self.server_random, 16, 4),
            (block[:16], block[16:32], block[32:36], block[36:40]),
        )
        # ChaCha20-Poly1305: 32-byte keys, 12-byte IVs.
        client_key, server_key, client_iv, server_iv = K.key_block(
            SHA256, master, self.client_random, self.server_random, 32, 12
        )
        self.assertEqual(
            (len(client_key), len(server_key), len(client_iv), len(server_iv)),
            (32, 32, 12, 12),
        )

    def test_verify_data(self) -> None:
        master = bytes(range(48))
        handshake_hash = sha256(b"handshake messages")
        client = K.verify_data_12(SHA256, master, handshake_hash, client=True)
        server = K.verify_data_12(SHA256, master, handshake_hash, client=False)
        self.assertEqual(len(client), 12)
        self.assertEqual(
            client,
            ref_p_hash("sha256", master, b"client finished" + handshake_hash, 12),
        )
        self.assertEqual(
            server,
            ref_p_hash("sha256", master, b"server finished" + handshake_hash, 12),
        )

    def test_exporter(self) -> None:
        """RFC 5705 §4: the context, when present, carries its length."""
        master = bytes(range(48))
        randoms = self.client_random + self.server_random
        self.assertEqual(
            K.exporter_12(
                SHA256,
                master,
                self.client_random,
                self.server_random,
                b"EXPORTER-x",
                None,
                20,
            ),
            ref_p_hash("sha256", master, b"EXPORTER-x" + randoms, 20),
        )
        self.assertEqual(
            K.exporter_12(
                SHA256,
                master,
                self.client_random,
                self.server_random,
                b"EXPORTER-x",
                b"ctx",
                20,
            ),
            ref_p_hash("sha256", master, b"EXPORTER-x" + randoms + b"\x00\x03ctx", 20),
        )
        # No context and an empty context differ in TLS 1.2.
        self.assertNotEqual(
            K.exporter_12(
                SHA256, master, self.client_random, self.server_random, b"E", None, 20
            ),
            K.exporter_12(
                SHA256, master, self.client_random, self.server_random, b"E", b"", 20
            ),
        )

    def test_exporter_refuses_reserved_labels(self) -> None:
        for label in (b"client finished", b"key expansion", b"master secret"):
            self.assertRaises(
                ValueError,
                K.exporter_12,
                SHA256,
                bytes(48),
                self.client_random,
                self.server_random,
                label,
                None,
                16,
            )

    def test_against_tlslite(self) -> None:
        """A second, unrelated TLS 1.2 implementation agrees."""
        # tlslite-ng is in the test extra.
        from tlslite import mathtls
        from tlslite.constants import CipherSuite as TLSLiteSuites
        from tlslite.handshakehashes import HandshakeHashes

        for suite, hash_, name in (
            (
                TLSLiteSuites.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
                SHA256,
                "sha256",
            ),
            (
                TLSLiteSuites.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
                hashes.SHA384,
                "sha384",
            ),
        ):
            hashes_ = HandshakeHashes()
            hashes_.update(b"client hello, server hello, ..., client key exchange")
            master = K.master_secret(
                hash_, self.pms, self.client_random, self.server_random
            )
            theirs = mathtls.calc_key(
                (3, 3),
                self.pms,
                suite,
                b"master secret",
                client_random=self.client_random,
                server_random=self.server_random,
                output_length=48,
            )
            self.assertEqual(master, bytes(theirs))
            ems = K.extended_master_secret(hash_, self.pms, hashes_.digest(name))
            theirs = mathtls.calc_key(
                (3, 3),
                self.pms,
                suite,
                b"extended master secret",
                handshake_hashes=hashes_,
                output_length=48,
            )
            self.assertEqual(ems, bytes(theirs))
            finished = K.verify_data_12(
                hash_, master, hashes_.digest(name), client=True
            )
            theirs = mathtls.calc_key(
                (3, 3),
                master,
                suite,
                b"client finished",
                handshake_hashes=hashes_,
                output_length=12,
            )
            self.assertEqual(finished, bytes(theirs))
