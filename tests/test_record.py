"""Tests for twisted_sslfile.engine.record: framing, protection, limits, errors.

Known answers come from RFC 8448 §3 (TLS 1.3; the values live in
tests/rfc8448.py) and, for TLS 1.2, from an independent construction of the
RFC 5288 / RFC 7905 nonce and additional data with the bare AEAD.
"""

from __future__ import annotations

import os

from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from tests import rfc8448
from twisted_sslfile.constants import (
    MAX_CIPHERTEXT_TLS12,
    MAX_CIPHERTEXT_TLS13,
    MAX_PLAINTEXT,
    AlertDescription,
    CipherSuite,
    ContentType,
)
from twisted_sslfile.engine.record import (
    Record,
    RecordLayer,
    RecordProtection,
    TLS12Protection,
    TLS13Protection,
    plaintext_limit,
)
from twisted_sslfile.errors import (
    BadRecordMacError,
    DecodeError,
    IllegalParameterError,
    InternalError,
    RecordOverflowError,
    TLSError,
    UnexpectedMessageError,
)

CCS = ContentType.change_cipher_spec
ALERT = ContentType.alert
HANDSHAKE = ContentType.handshake
APP = ContentType.application_data

AES128_13 = CipherSuite.TLS_AES_128_GCM_SHA256
AES256_13 = CipherSuite.TLS_AES_256_GCM_SHA384
CHACHA_13 = CipherSuite.TLS_CHACHA20_POLY1305_SHA256
AES128_12 = CipherSuite.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256
AES256_12 = CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384
CHACHA_12 = CipherSuite.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256

KEY_LENGTHS = {
    AES128_13: 16,
    AES256_13: 32,
    CHACHA_13: 32,
    AES128_12: 16,
    AES256_12: 32,
    CHACHA_12: 32,
}
SUITES_13 = (AES128_13, AES256_13, CHACHA_13)
SUITES_12 = (AES128_12, AES256_12, CHACHA_12)


def protection_pair(
    suite: CipherSuite, seed: int = 0
) -> tuple[RecordProtection, RecordProtection]:
    """Two protections with the same key: one to seal, one to open."""
    key = bytes((seed + i) & 0xFF for i in range(KEY_LENGTHS[suite]))
    if suite in SUITES_13:
        iv = bytes(range(100, 112))
        return TLS13Protection(suite, key, iv), TLS13Protection(suite, key, iv)
    iv = bytes(range(50, 54)) if suite != CHACHA_12 else bytes(range(50, 62))
    return TLS12Protection(suite, key, iv), TLS12Protection(suite, key, iv)


def layer_pair(
    suite: CipherSuite | None, seed: int = 0
) -> tuple[RecordLayer, RecordLayer]:
    """A sending and a receiving layer, protected with ``suite`` (or not)."""
    sender, receiver = RecordLayer(), RecordLayer()
    if suite is not None:
        seal, open_ = protection_pair(suite, seed)
        sender.set_write_protection(seal)
        receiver.set_read_protection(open_)
    return sender, receiver


def drain(layer: RecordLayer) -> list[Record]:
    records = []
    while (record := layer.next_record()) is not None:
        records.append(record)
    return records


def drain_fed(layer: RecordLayer, pieces: list[bytes]) -> list[Record]:
    """Feed ``pieces`` one by one, draining after each, as Connection does."""
    records = []
    for piece in pieces:
        layer.feed(piece)
        records.extend(drain(layer))
    return records


def records_of(wire: bytes) -> list[bytes]:
    """Split a byte stream into whole records (headers included)."""
    out = []
    while wire:
        length = int.from_bytes(wire[3:5], "big")
        out.append(wire[: 5 + length])
        wire = wire[5 + length :]
    return out


def header(content_type: int, length: int, version: int = 0x0303) -> bytes:
    return bytes((content_type, version >> 8, version & 0xFF)) + length.to_bytes(
        2, "big"
    )


def tls13_record(
    suite: CipherSuite, inner: bytes, seq: int = 0, outer_type: int = APP
) -> bytes:
    """Build a TLS 1.3 record around an arbitrary inner plaintext by hand."""
    key = bytes(range(KEY_LENGTHS[suite]))
    iv = bytes(range(100, 112))
    aead = (AESGCM if suite != CHACHA_13 else ChaCha20Poly1305)(key)
    head = header(outer_type, len(inner) + 16)
    nonce = (int.from_bytes(iv, "big") ^ seq).to_bytes(12, "big")
    return head + aead.encrypt(nonce, inner, head)


def tls12_gcm_record(content_type: int, plaintext: bytes, seq: int = 0) -> bytes:
    """RFC 5288 §3 / RFC 5246 §6.2.3.3, built with the bare AEAD."""
    key, fixed_iv = bytes(range(16)), bytes(range(50, 54))
    explicit = seq.to_bytes(8, "big")
    aad = explicit + bytes((content_type, 3, 3)) + len(plaintext).to_bytes(2, "big")
    ciphertext = AESGCM(key).encrypt(fixed_iv + explicit, plaintext, aad)
    return header(content_type, 8 + len(ciphertext)) + explicit + ciphertext


class RFC8448Tests(SynchronousTestCase):
    """TLS 1.3 records of RFC 8448 §3, opened and re-sealed byte for byte."""

    def check(
        self,
        key: bytes,
        iv: bytes,
        seq: int,
        wire: bytes,
        content_type: int,
        plaintext: bytes,
    ) -> None:
        opener = TLS13Protection(AES128_13, key, iv)
        opener.sequence = seq
        layer = RecordLayer()
        layer.set_read_protection(opener)
        # Byte by byte: the header and the body both arrive in pieces.
        records = []
        for i in range(len(wire)):
            layer.feed(wire[i : i + 1])
            records.extend(drain(layer))
        self.assertEqual(len(records), 1)
        self.assertEqual(records[0].content_type, content_type)
        self.assertEqual(bytes(records[0].payload), plaintext)
        self.assertTrue(records[0].protected)
        self.assertEqual(layer.read_sequence, seq + 1)
        self.assertEqual(layer.buffered, 0)

        sealer = TLS13Protection(AES128_13, key, iv)
        sealer.sequence = seq
        self.assertEqual(sealer.seal(content_type, plaintext), wire)

    def test_server_handshake_flight(self) -> None:
        """The 674-byte EncryptedExtensions..Finished record (§3)."""
        flight = (
            rfc8448.ENCRYPTED_EXTENSIONS
            + rfc8448.CERTIFICATE
            + rfc8448.CERTIFICATE_VERIFY
            + rfc8448.SERVER_FINISHED
        )
        self.assertEqual(len(flight), 657)
        self.assertEqual(len(rfc8448.SERVER_FLIGHT_RECORD), 679)
        self.check(
            rfc8448.SERVER_HANDSHAKE_KEY,
            rfc8448.SERVER_HANDSHAKE_IV,
            0,
            rfc8448.SERVER_FLIGHT_RECORD,
            HANDSHAKE,
            flight,
        )

    def test_client_finished(self) -> None:
        self.check(
            rfc8448.CLIENT_HANDSHAKE_KEY,
            rfc8448.CLIENT_HANDSHAKE_IV,
            0,
            rfc8448.CLIENT_FINISHED_RECORD,
            HANDSHAKE,
            rfc8448.CLIENT_FINISHED,
        )

    def test_server_application_records(self) -> None:
        """NewSessionTicket (seq 0), data (seq 1), close_notify (seq 2)."""
        for seq, (wire, content_type, plaintext) in enumerate(
            [
                (
                    rfc8448.NEW_SESSION_TICKET_RECORD,
                    HANDSHAKE,
                    rfc8448.NEW_SESSION_TICKET,
                ),
                (rfc8448.SERVER_APPLICATION_DATA_RECORD, APP, rfc8448.APPLICATION_DATA),
                (rfc8448.SERVER_ALERT_RECORD, ALERT, rfc8448.CLOSE_NOTIFY),
            ]
        ):
            self.check(
                rfc8448.SERVER_APPLICATION_KEY,
                rfc8448.SERVER_APPLICATION_IV,
                seq,
                wire,
                content_type,
                plaintext,
            )

    def test_client_application_records(self) -> None:
        """Application data (seq 0) and close_notify (seq 1)."""
        for seq, (wire, content_type, plaintext) in enumerate(
            [
                (rfc8448.CLIENT_APPLICATION_DATA_RECORD, APP, rfc8448.APPLICATION_DATA),
                (rfc8448.CLIENT_ALERT_RECORD, ALERT, rfc8448.CLOSE_NOTIFY),
            ]
        ):
            self.check(
                rfc8448.CLIENT_APPLICATION_KEY,
                rfc8448.CLIENT_APPLICATION_IV,
                seq,
                wire,
                content_type,
                plaintext,
            )

    def test_whole_server_direction_through_one_layer(self) -> None:
        """The sequence number advances record by record on one key."""
        layer = RecordLayer()
        layer.set_read_protection(
            TLS13Protection(
                AES128_13, rfc8448.SERVER_APPLICATION_KEY, rfc8448.SERVER_APPLICATION_IV
            )
        )
        layer.feed(
            rfc8448.NEW_SESSION_TICKET_RECORD
            + rfc8448.SERVER_APPLICATION_DATA_RECORD
            + rfc8448.SERVER_ALERT_RECORD
        )
        records = drain(layer)
        self.assertEqual([r.content_type for r in records], [HANDSHAKE, APP, ALERT])
        self.assertEqual(bytes(records[1].payload), rfc8448.APPLICATION_DATA)
        self.assertEqual(layer.read_sequence, 3)

    def test_send_reproduces_server_records(self) -> None:
        layer = RecordLayer()
        layer.set_write_protection(
            TLS13Protection(
                AES128_13, rfc8448.SERVER_APPLICATION_KEY, rfc8448.SERVER_APPLICATION_IV
            )
        )
        layer.send(HANDSHAKE, rfc8448.NEW_SESSION_TICKET)
        layer.send(APP, rfc8448.APPLICATION_DATA)
        layer.send(ALERT, rfc8448.CLOSE_NOTIFY)
        self.assertEqual(
            layer.pending_output(),
            [
                rfc8448.NEW_SESSION_TICKET_RECORD,
                rfc8448.SERVER_APPLICATION_DATA_RECORD,
                rfc8448.SERVER_ALERT_RECORD,
            ],
        )
        self.assertEqual(layer.write_sequence, 3)

    def test_wrong_sequence_fails(self) -> None:
        layer = RecordLayer()
        protection = TLS13Protection(
            AES128_13, rfc8448.CLIENT_APPLICATION_KEY, rfc8448.CLIENT_APPLICATION_IV
        )
        protection.sequence = 1
        layer.set_read_protection(protection)
        layer.feed(rfc8448.CLIENT_APPLICATION_DATA_RECORD)
        self.assertRaises(BadRecordMacError, layer.next_record)

    def test_unprotected_records(self) -> None:
        """The plaintext ClientHello and ServerHello records of §3."""
        layer = RecordLayer()
        layer.feed(rfc8448.CLIENT_HELLO_RECORD + rfc8448.SERVER_HELLO_RECORD)
        records = drain(layer)
        self.assertEqual(
            [(r.content_type, bytes(r.payload), r.protected) for r in records],
            [
                (HANDSHAKE, rfc8448.CLIENT_HELLO, False),
                (HANDSHAKE, rfc8448.SERVER_HELLO, False),
            ],
        )
        sender = RecordLayer()
        self.assertEqual(sender.legacy_record_version, 0x0301)
        sender.send(HANDSHAKE, rfc8448.CLIENT_HELLO)
        sender.legacy_record_version = 0x0303
        sender.send(HANDSHAKE, rfc8448.SERVER_HELLO)
        self.assertEqual(
            sender.data_to_send(),
            rfc8448.CLIENT_HELLO_RECORD + rfc8448.SERVER_HELLO_RECORD,
        )


class TLS12Tests(SynchronousTestCase):
    """TLS 1.2 AEAD records (RFC 5288, RFC 7905, RFC 5246 §6.2.3.3)."""

    def test_gcm_layout(self) -> None:
        """Explicit nonce = sequence number; AAD as RFC 5246 §6.2.3.3."""
        seal, _ = protection_pair(AES128_12)
        for seq, (content_type, data) in enumerate(
            [(HANDSHAKE, b"\x14\x00\x00\x0cfinished!!!!"), (APP, b"x" * 1000)]
        ):
            self.assertEqual(
                seal.seal(content_type, data), tls12_gcm_record(content_type, data, seq)
            )

    def test_chacha_layout(self) -> None:
        """RFC 7905 §2: nonce = fixed IV XOR sequence, nothing explicit."""
        seal, _ = protection_pair(CHACHA_12)
        key, iv = bytes(range(32)), bytes(range(50, 62))
        for seq in range(3):
            data = bytes([seq]) * (seq * 7 + 1)
            aad = seq.to_bytes(8, "big") + bytes((APP, 3, 3, 0, len(data)))
            nonce = (int.from_bytes(iv, "big") ^ seq).to_bytes(12, "big")
            expected = ChaCha20Poly1305(key).encrypt(nonce, data, aad)
            self.assertEqual(
                seal.seal(APP, data), header(APP, len(expected)) + expected
            )

    def test_round_trips(self) -> None:
        for suite in SUITES_12:
            sender, receiver = layer_pair(suite)
            messages = [
                (HANDSHAKE, b"hs" * 10),
                (APP, os.urandom(40000)),
                (ALERT, b"\1\0"),
            ]
            for content_type, data in messages:
                sender.send(content_type, data)
            wire = sender.data_to_send()
            # TLS 1.2 keeps the true type in the header.
            self.assertEqual(wire[0], HANDSHAKE)
            receiver.feed(wire)
            records = drain(receiver)
            self.assertTrue(all(r.protected for r in records))
            self.assertEqual(
                [r.content_type for r in records], [HANDSHAKE, APP, APP, APP, ALERT]
            )
            self.assertEqual(
                b"".join(bytes(r.payload) for r in records[1:4]), messages[1][1]
            )
            self.assertEqual(receiver.read_sequence, 5)
            self.assertEqual(sender.write_sequence, 5)

    def test_gcm_uses_received_explicit_nonce(self) -> None:
        """RFC 5288 §3: the nonce is what the record carries, not assumed."""
        key, fixed_iv = bytes(range(16)), bytes(range(50, 54))
        explicit = b"\xaa" * 8
        aad = (0).to_bytes(8, "big") + bytes((APP, 3, 3, 0, 5))
        ciphertext = AESGCM(key).encrypt(fixed_iv + explicit, b"hello", aad)
        layer = RecordLayer()
        layer.set_read_protection(protection_pair(AES128_12)[1])
        layer.feed(header(APP, 8 + len(ciphertext)) + explicit + ciphertext)
        self.assertEqual(bytes(layer.next_record().payload), b"hello")

    def test_change_cipher_spec_is_protected(self) -> None:
        """Unlike TLS 1.3, a 1.2 CCS under keys is decrypted like the rest."""
        sender, receiver = layer_pair(AES128_12)
        sender.send(CCS, b"\x01")
        receiver.feed(sender.data_to_send())
        record = receiver.next_record()
        self.assertEqual((record.content_type, bytes(record.payload)), (CCS, b"\x01"))
        self.assertTrue(record.protected)

    def test_short_records(self) -> None:
        for suite, size in ((AES128_12, 23), (CHACHA_12, 15)):
            _, receiver = layer_pair(suite)
            receiver.feed(header(APP, size) + bytes(size))
            self.assertRaises(BadRecordMacError, receiver.next_record)

    def test_tampered_aad(self) -> None:
        """The header's type is authenticated through the AAD."""
        sender, receiver = layer_pair(AES128_12)
        sender.send(APP, b"data")
        wire = bytearray(sender.data_to_send())
        wire[0] = HANDSHAKE
        receiver.feed(wire)
        self.assertRaises(BadRecordMacError, receiver.next_record)


class FragmentationTests(SynchronousTestCase):
    """send() cuts at write_limit (RFC 8449)."""

    def test_default_limit(self) -> None:
        for suite in (None, AES128_13, AES128_12, CHACHA_12):
            sender, receiver = layer_pair(suite)
            data = os.urandom(2 * MAX_PLAINTEXT + 100)
            sender.send(APP, data)
            output = sender.pending_output()
            self.assertEqual(len(output), 3)
            self.assertTrue(all(type(record) is bytes for record in output))
            for record in output:
                receiver.feed(record)
            records = drain(receiver)
            self.assertEqual(
                [len(r.payload) for r in records], [MAX_PLAINTEXT, MAX_PLAINTEXT, 100]
            )
            self.assertEqual(b"".join(bytes(r.payload) for r in records), data)
            self.assertEqual(sender.pending_output(), [])

    def test_small_limit(self) -> None:
        for suite in (None, AES128_13, AES128_12):
            sender, receiver = layer_pair(suite)
            sender.write_limit = 100
            sender.send(HANDSHAKE, bytes(range(250)))
            wire = sender.data_to_send()
            receiver.feed(wire)
            records = drain(receiver)
            self.assertEqual([len(r.payload) for r in records], [100, 100, 50])
            overhead = {None: 0, AES128_13: 17, AES128_12: 24}[suite]
            self.assertEqual(
                [len(r) - 5 for r in records_of(wire)],
                [100 + overhead, 100 + overhead, 50 + overhead],
            )

    def test_tls13_limit_counts_type_byte(self) -> None:
        """RFC 8449 §4: record_size_limit 64 in TLS 1.3 is 63 content bytes."""
        sender, receiver = layer_pair(CHACHA_13)
        sender.write_limit = plaintext_limit(64, tls13=True)
        receiver.max_plaintext = plaintext_limit(64, tls13=True)
        sender.send(APP, bytes(200))
        wire = sender.data_to_send()
        # Inner plaintext (content + type) is at most the limit of 64.
        self.assertEqual([len(r) - 5 - 16 for r in records_of(wire)], [64, 64, 64, 12])
        receiver.feed(wire)
        self.assertEqual([len(r.payload) for r in drain(receiver)], [63, 63, 63, 11])

    def test_plaintext_limit(self) -> None:
        self.assertEqual(plaintext_limit(64, tls13=False), 64)
        self.assertEqual(plaintext_limit(64, tls13=True), 63)
        self.assertEqual(plaintext_limit(2**14 + 1, tls13=True), MAX_PLAINTEXT)
        self.assertEqual(plaintext_limit(2**14 + 1, tls13=False), MAX_PLAINTEXT)
        self.assertEqual(plaintext_limit(65535, tls13=True), MAX_PLAINTEXT)
        error = self.assertRaises(
            IllegalParameterError, plaintext_limit, 63, tls13=True
        )
        self.assertEqual(error.alert, AlertDescription.illegal_parameter)

    def test_limit_validation(self) -> None:
        layer = RecordLayer()
        self.assertRaises(ValueError, setattr, layer, "write_limit", 0)
        self.assertRaises(ValueError, setattr, layer, "write_limit", MAX_PLAINTEXT + 1)
        self.assertRaises(
            ValueError, setattr, layer, "max_plaintext", MAX_PLAINTEXT + 1
        )
        self.assertRaises(ValueError, RecordLayer, 0)

    def test_memoryview_and_bytearray_input(self) -> None:
        for suite in (None, AES128_13, CHACHA_12):
            sender, receiver = layer_pair(suite)
            sender.write_limit = 1000
            data = bytearray(os.urandom(2500))
            sender.send(APP, memoryview(data))
            sender.send(APP, data)
            receiver.feed(memoryview(sender.data_to_send()))
            payload = b"".join(bytes(r.payload) for r in drain(receiver))
            self.assertEqual(payload, bytes(data) * 2)

    def test_empty_send_queues_nothing(self) -> None:
        sender, _ = layer_pair(AES128_13)
        sender.send(HANDSHAKE, b"")
        sender.send(APP, b"")
        self.assertEqual(sender.pending_output(), [])
        self.assertEqual(sender.write_sequence, 0)

    def test_unknown_type_refused_locally(self) -> None:
        self.assertRaises(ValueError, RecordLayer().send, 24, b"x")

    def test_padding(self) -> None:
        sender, receiver = layer_pair(AES128_13)
        sender.set_padding(256)
        sender.send(HANDSHAKE, b"a")
        sender.send(APP, bytes(300))
        wire = sender.data_to_send()
        self.assertEqual([len(r) - 5 - 16 for r in records_of(wire)], [256, 512])
        receiver.feed(wire)
        records = drain(receiver)
        self.assertEqual(
            [(r.content_type, bytes(r.payload)) for r in records],
            [(HANDSHAKE, b"a"), (APP, bytes(300))],
        )

    def test_padding_respects_limit(self) -> None:
        """Padding never pushes the inner plaintext past record_size_limit."""
        sender, receiver = layer_pair(AES128_13)
        sender.set_padding(1000)
        sender.write_limit = plaintext_limit(100, tls13=True)
        receiver.max_plaintext = plaintext_limit(100, tls13=True)
        sender.send(APP, bytes(150))
        wire = sender.data_to_send()
        self.assertEqual([len(r) - 5 - 16 for r in records_of(wire)], [100, 100])
        receiver.feed(wire)
        self.assertEqual([len(r.payload) for r in drain(receiver)], [99, 51])

    def test_padding_carries_to_new_protection(self) -> None:
        layer = RecordLayer()
        layer.set_padding(64)
        seal, _ = protection_pair(CHACHA_13)
        layer.set_write_protection(seal)
        layer.send(APP, b"x")
        self.assertEqual(len(layer.data_to_send()), 5 + 64 + 16)
        # TLS 1.2 has no padding; the policy does not apply to it.
        seal12, _ = protection_pair(AES128_12)
        layer.set_write_protection(seal12)
        layer.send(APP, b"x")
        self.assertEqual(len(layer.data_to_send()), 5 + 8 + 1 + 16)


class ErrorTests(SynchronousTestCase):
    """Every refusal is a TLSError with the RFC's alert."""

    def assertRefused(
        self, layer: RecordLayer, data: bytes, error_class: type[TLSError]
    ) -> TLSError:
        layer.feed(data)
        error = self.assertRaises(error_class, drain, layer)
        self.assertEqual(error.alert, error_class.default_alert)
        # The layer stays failed.
        self.assertRaises(error_class, layer.next_record)
        self.assertRaises(error_class, layer.feed, b"more")
        return error

    # -- sizes --

    def test_oversized_unprotected(self) -> None:
        layer = RecordLayer()
        # Refused from the header alone: the body never has to arrive.
        self.assertRefused(
            layer, header(HANDSHAKE, MAX_PLAINTEXT + 1), RecordOverflowError
        )
        layer = RecordLayer()
        layer.feed(header(HANDSHAKE, MAX_PLAINTEXT) + bytes(MAX_PLAINTEXT))
        self.assertEqual(len(layer.next_record().payload), MAX_PLAINTEXT)

    def test_oversized_ciphertext_tls13(self) -> None:
        _, receiver = layer_pair(AES128_13)
        self.assertRefused(
            receiver, header(APP, MAX_CIPHERTEXT_TLS13 + 1), RecordOverflowError
        )
        # At the limit the length is fine (and the garbage fails the MAC).
        _, receiver = layer_pair(AES128_13)
        receiver.feed(header(APP, MAX_CIPHERTEXT_TLS13) + bytes(MAX_CIPHERTEXT_TLS13))
        self.assertRaises(BadRecordMacError, receiver.next_record)

    def test_oversized_ciphertext_tls12(self) -> None:
        _, receiver = layer_pair(AES128_12)
        self.assertRefused(
            receiver, header(APP, MAX_CIPHERTEXT_TLS12 + 1), RecordOverflowError
        )

    def test_oversized_plaintext_tls13(self) -> None:
        """RFC 8446 §5.4: inner plaintext above 2^14 + 1 after decryption."""
        _, receiver = layer_pair(AES128_13)
        record = tls13_record(AES128_13, bytes(MAX_PLAINTEXT) + b"\x17\x00")
        self.assertLessEqual(len(record) - 5, MAX_CIPHERTEXT_TLS13)
        self.assertRefused(receiver, record, RecordOverflowError)
        # Exactly 2^14 + 1 is fine.
        _, receiver = layer_pair(AES128_13)
        receiver.feed(tls13_record(AES128_13, bytes(MAX_PLAINTEXT) + b"\x17"))
        self.assertEqual(len(receiver.next_record().payload), MAX_PLAINTEXT)

    def test_advertised_limit_tls13(self) -> None:
        """RFC 8449 §4: our record_size_limit counts type and padding."""
        _, receiver = layer_pair(AES128_13)
        receiver.max_plaintext = plaintext_limit(1000, tls13=True)
        receiver.feed(tls13_record(AES128_13, bytes(999) + b"\x17"))
        self.assertEqual(len(receiver.next_record().payload), 999)
        # 999 content bytes padded past 1000 is over the limit too.
        record = tls13_record(AES128_13, bytes(999) + b"\x17\x00", seq=1)
        self.assertRefused(receiver, record, RecordOverflowError)

    def test_advertised_limit_tls12(self) -> None:
        _, receiver = layer_pair(AES128_12)
        receiver.max_plaintext = 1000
        receiver.feed(tls12_gcm_record(APP, bytes(1000)))
        self.assertEqual(len(receiver.next_record().payload), 1000)
        self.assertRefused(
            receiver, tls12_gcm_record(APP, bytes(1001), seq=1), RecordOverflowError
        )

    # -- authentication --

    def test_bad_mac(self) -> None:
        for suite in SUITES_13 + SUITES_12:
            sender, receiver = layer_pair(suite)
            sender.send(APP, b"attack at dawn")
            wire = bytearray(sender.data_to_send())
            wire[-1] ^= 1
            self.assertRefused(receiver, bytes(wire), BadRecordMacError)

    def test_wrong_key(self) -> None:
        sender, _ = layer_pair(CHACHA_13, seed=1)
        _, receiver = layer_pair(CHACHA_13, seed=2)
        sender.send(APP, b"x")
        self.assertRefused(receiver, sender.data_to_send(), BadRecordMacError)

    def test_tls13_too_short_for_tag(self) -> None:
        _, receiver = layer_pair(AES128_13)
        self.assertRefused(receiver, header(APP, 0), BadRecordMacError)
        _, receiver = layer_pair(AES128_13)
        self.assertRefused(receiver, header(APP, 15) + bytes(15), BadRecordMacError)

    # -- content types --

    def test_unknown_outer_type(self) -> None:
        for content_type in (0, 19, 24, 0x80, 0xFF):
            layer = RecordLayer()
            error = self.assertRefused(
                layer, header(content_type, 1) + b"x", UnexpectedMessageError
            )
            self.assertEqual(error.alert, AlertDescription.unexpected_message)

    def test_unknown_inner_type(self) -> None:
        for inner_type in (0x18, 0xFF, CCS):
            _, receiver = layer_pair(AES128_13)
            record = tls13_record(AES128_13, b"data" + bytes((inner_type,)))
            self.assertRefused(receiver, record, UnexpectedMessageError)

    def test_tls13_inner_all_zeros(self) -> None:
        """RFC 8446 §5.4: no non-zero byte means no content type."""
        for inner in (b"", b"\0", bytes(100)):
            _, receiver = layer_pair(AES128_13)
            self.assertRefused(
                receiver, tls13_record(AES128_13, inner), UnexpectedMessageError
            )

    def test_tls13_padding_stripped(self) -> None:
        _, receiver = layer_pair(AES128_13)
        receiver.feed(tls13_record(AES128_13, b"\0\0hi\0\x16" + bytes(500)))
        record = receiver.next_record()
        self.assertEqual(
            (record.content_type, bytes(record.payload)), (HANDSHAKE, b"\0\0hi\0")
        )

    def test_tls13_unprotected_handshake_after_keys(self) -> None:
        _, receiver = layer_pair(AES128_13)
        self.assertRefused(
            receiver, header(HANDSHAKE, 1) + b"\x01", UnexpectedMessageError
        )

    def test_tls13_ccs_sent_unprotected(self) -> None:
        """RFC 8446 §5: a TLS 1.3 CCS is never protected, keys or not."""
        sender, receiver = layer_pair(AES128_13)
        sender.legacy_record_version = 0x0303
        sender.send(CCS, b"\x01")
        sender.send(HANDSHAKE, b"finished")
        wire = sender.data_to_send()
        self.assertEqual(wire[:6], header(CCS, 1) + b"\x01")
        self.assertEqual(sender.write_sequence, 1)
        receiver.feed(wire)
        self.assertEqual(
            [(r.content_type, r.protected) for r in drain(receiver)],
            [(CCS, False), (HANDSHAKE, True)],
        )

    def test_tls13_unprotected_ccs_passes(self) -> None:
        """RFC 8446 §5: the Connection decides about the compatibility CCS."""
        sender, receiver = layer_pair(AES128_13)
        sender.send(APP, b"after")
        receiver.feed(header(CCS, 1) + b"\x01" + sender.data_to_send())
        records = drain(receiver)
        self.assertEqual(
            [(r.content_type, bytes(r.payload), r.protected) for r in records],
            [(CCS, b"\x01", False), (APP, b"after", True)],
        )

    # -- zero-length records --

    def test_zero_length_handshake_and_alert(self) -> None:
        for content_type in (HANDSHAKE, ALERT):
            self.assertRefused(
                RecordLayer(), header(content_type, 0), UnexpectedMessageError
            )
            _, receiver = layer_pair(AES128_13)
            self.assertRefused(
                receiver,
                tls13_record(AES128_13, bytes((content_type,))),
                UnexpectedMessageError,
            )
            _, receiver = layer_pair(AES128_12)
            self.assertRefused(
                receiver, tls12_gcm_record(content_type, b""), UnexpectedMessageError
            )

    def test_zero_length_application_data(self) -> None:
        layer = RecordLayer()
        layer.feed(header(APP, 0))
        self.assertEqual(bytes(layer.next_record().payload), b"")
        _, receiver = layer_pair(AES128_13)
        receiver.feed(tls13_record(AES128_13, b"\x17\0\0"))
        record = receiver.next_record()
        self.assertEqual((record.content_type, bytes(record.payload)), (APP, b""))
        _, receiver = layer_pair(AES128_12)
        receiver.feed(tls12_gcm_record(APP, b""))
        self.assertEqual(bytes(receiver.next_record().payload), b"")

    # -- not TLS at all --

    def test_plain_http(self) -> None:
        request = b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n"
        layer = RecordLayer()
        self.assertRefused(layer, request, UnexpectedMessageError)
        self.assertEqual(layer.rejected_bytes, request)

    def test_refused_on_first_byte(self) -> None:
        """No need to wait for a full header to refuse a non-TLS stream."""
        layer = RecordLayer()
        layer.feed(b"G")
        self.assertRaises(UnexpectedMessageError, layer.next_record)
        self.assertEqual(layer.rejected_bytes, b"G")

    def test_bad_version_major(self) -> None:
        for data in (b"\x16\x02", b"\x16\x00\x02\x00\x01x", b"\x17\x30\x01\x00\x00"):
            layer = RecordLayer()
            error = self.assertRefused(layer, data, DecodeError)
            self.assertEqual(error.alert, AlertDescription.decode_error)
            self.assertEqual(layer.rejected_bytes, data)

    def test_any_minor_version(self) -> None:
        """RFC 8446 §5.1: legacy_record_version is otherwise ignored."""
        layer = RecordLayer()
        for version in (0x0300, 0x0301, 0x0302, 0x0303, 0x0304, 0x03FF):
            layer.feed(header(HANDSHAKE, 1, version) + b"\x01")
            self.assertEqual(bytes(layer.next_record().payload), b"\x01")

    def test_rejected_bytes_start_at_failing_record(self) -> None:
        layer = RecordLayer()
        good = header(HANDSHAKE, 2) + b"ok"
        bad = b"HTTP/1.0 400 Bad Request\r\n"
        layer.feed(good + bad)
        self.assertEqual(bytes(layer.next_record().payload), b"ok")
        self.assertRaises(UnexpectedMessageError, layer.next_record)
        self.assertEqual(layer.rejected_bytes, bad)

    def test_rejected_bytes_on_bad_mac(self) -> None:
        sender, receiver = layer_pair(AES128_13)
        sender.send(APP, b"one")
        sender.send(APP, b"two")
        first, second = sender.pending_output()
        tampered = first[:-1] + bytes((first[-1] ^ 0x80,))
        receiver.feed(tampered + second)
        self.assertRaises(BadRecordMacError, receiver.next_record)
        self.assertEqual(receiver.rejected_bytes, tampered + second)
        self.assertIsNone(RecordLayer().rejected_bytes)

    # -- sequence numbers --

    def test_write_sequence_exhaustion(self) -> None:
        for suite in (AES128_13, AES128_12, CHACHA_12):
            seal, open_ = protection_pair(suite)
            seal.sequence = open_.sequence = 2**64 - 1
            layer = RecordLayer()
            layer.set_write_protection(seal)
            layer.send(APP, b"last")
            receiver = RecordLayer()
            receiver.set_read_protection(open_)
            receiver.feed(layer.data_to_send())
            self.assertEqual(bytes(receiver.next_record().payload), b"last")
            error = self.assertRaises(InternalError, layer.send, APP, b"one too many")
            self.assertIsInstance(error, TLSError)
            # And reading a 2^64th record fails the same way, before the AEAD.
            receiver.feed(header(APP, 17) + bytes(17))
            self.assertRaises(InternalError, receiver.next_record)

    def test_should_rekey(self) -> None:
        layer = RecordLayer()
        self.assertFalse(layer.should_rekey)
        seal, _ = protection_pair(AES128_13)
        layer.set_write_protection(seal)
        self.assertFalse(layer.should_rekey)
        seal.sequence = seal.rekey_after
        self.assertTrue(layer.should_rekey)

    def test_repr_hides_keys(self) -> None:
        for suite in (AES128_13, CHACHA_12):
            seal, _ = protection_pair(suite)
            self.assertNotIn("key", repr(seal).lower())

    def test_bad_construction(self) -> None:
        self.assertRaises(ValueError, TLS13Protection, AES128_12, bytes(16), bytes(12))
        self.assertRaises(ValueError, TLS13Protection, AES128_13, bytes(32), bytes(12))
        self.assertRaises(ValueError, TLS13Protection, AES128_13, bytes(16), bytes(8))
        self.assertRaises(ValueError, TLS12Protection, AES128_13, bytes(16), bytes(4))
        self.assertRaises(ValueError, TLS12Protection, AES128_12, bytes(16), bytes(12))
        self.assertRaises(ValueError, TLS12Protection, CHACHA_12, bytes(32), bytes(4))


class BufferTests(SynchronousTestCase):
    """The receive buffer: partial records, compaction, unprocessed bytes."""

    def test_partial_record_waits(self) -> None:
        layer = RecordLayer()
        record = header(HANDSHAKE, 10) + bytes(range(10))
        layer.feed(record[:3])
        self.assertIsNone(layer.next_record())
        layer.feed(record[3:12])
        self.assertIsNone(layer.next_record())
        self.assertEqual(layer.buffered, 12)
        layer.feed(record[12:] + record[:7])
        self.assertEqual(bytes(layer.next_record().payload), bytes(range(10)))
        self.assertIsNone(layer.next_record())
        # After the drain only the incomplete tail is held.
        self.assertEqual(layer.buffered, 7)
        self.assertEqual(len(layer._buf), 7)

    def test_take_unprocessed(self) -> None:
        layer = RecordLayer()
        layer.feed(header(ALERT, 2) + b"\x01\x00" + b"plain text after")
        self.assertEqual(bytes(layer.next_record().payload), b"\x01\x00")
        self.assertEqual(layer.take_unprocessed(), b"plain text after")
        self.assertEqual(layer.buffered, 0)
        self.assertIsNone(layer.next_record())

    def test_payload_survives_later_feeds(self) -> None:
        """Payloads never alias the receive buffer."""
        for suite in (None, AES128_13, AES128_12):
            sender, receiver = layer_pair(suite)
            sender.send(APP, b"first")
            sender.send(APP, b"second")
            wire = sender.data_to_send()
            receiver.feed(wire[:-3])
            first = receiver.next_record()
            self.assertIsNone(receiver.next_record())
            receiver.feed(wire[-3:])
            second = receiver.next_record()
            self.assertEqual(
                (bytes(first.payload), bytes(second.payload)), (b"first", b"second")
            )

    def test_payloads_are_owned_bytes(self) -> None:
        """Every payload is an immutable ``bytes`` of its own, for every
        suite, record type and padding: never a view of the receive buffer
        or of any buffer the layer reuses.  Connection hands payloads to the
        application as they are, so a view would change under the
        application's feet at the next receive (and ``bytes()`` of a view
        costs a copy per record, which the receive path avoids)."""
        for suite in (None, *SUITES_13, *SUITES_12):
            for padding in (0, 512):
                sender, receiver = layer_pair(suite)
                sender.set_padding(padding)
                sender.send(HANDSHAKE, b"hs")
                sender.send(APP, b"a" * 3000 + b"\0")
                sender.send(APP, b"b" * MAX_PLAINTEXT)
                wire = sender.data_to_send()
                records = drain_fed(receiver, [wire[:100], wire[100:-7], wire[-7:]])
                for record in records:
                    self.assertIs(type(record.payload), bytes, (suite, padding))
                self.assertEqual(
                    [bytes(r.payload) for r in records],
                    [b"hs", b"a" * 3000 + b"\0", b"b" * MAX_PLAINTEXT],
                )
                # bytes() of an owned bytes is the object itself: no copy.
                self.assertIs(bytes(records[2].payload), records[2].payload)

    def test_key_change_between_records(self) -> None:
        """Records are pulled one by one so keys can change in between."""
        sender = RecordLayer()
        sender.send(HANDSHAKE, b"hello")
        seal, open_ = protection_pair(AES256_13)
        sender.set_write_protection(seal)
        sender.send(HANDSHAKE, b"encrypted")
        receiver = RecordLayer()
        receiver.feed(sender.data_to_send())
        self.assertEqual(bytes(receiver.next_record().payload), b"hello")
        receiver.set_read_protection(open_)
        self.assertEqual(bytes(receiver.next_record().payload), b"encrypted")


class EarlyDataSkippingTests(SynchronousTestCase):
    """RFC 8446 §4.2.10: a server skips rejected 0-RTT data."""

    def test_skip_undecryptable(self) -> None:
        early, _ = layer_pair(AES128_13, seed=9)
        early.send(APP, b"0-rtt" * 10)
        early.send(APP, b"more")
        handshake, receiver = layer_pair(AES128_13)
        handshake.send(HANDSHAKE, b"finished")
        receiver.skip_early_data(100)
        receiver.feed(early.data_to_send() + handshake.data_to_send())
        records = drain(receiver)
        self.assertEqual([bytes(r.payload) for r in records], [b"finished"])
        # Skipping ended with the first record that decrypted.
        early.send(APP, b"late")
        receiver.feed(early.data_to_send())
        self.assertRaises(BadRecordMacError, receiver.next_record)

    def test_skip_budget_exceeded(self) -> None:
        early, _ = layer_pair(AES128_13, seed=9)
        early.send(APP, bytes(60))
        early.send(APP, bytes(60))
        _, receiver = layer_pair(AES128_13)
        receiver.skip_early_data(100)
        receiver.feed(early.data_to_send())
        self.assertRaises(UnexpectedMessageError, drain, receiver)

    def test_skip_unprotected_after_hello_retry(self) -> None:
        early, _ = layer_pair(AES128_13, seed=9)
        early.send(APP, b"0-rtt")
        receiver = RecordLayer()
        receiver.skip_early_data(1000)
        receiver.feed(
            header(CCS, 1)
            + b"\x01"
            + early.data_to_send()
            + header(HANDSHAKE, 2)
            + b"CH"
        )
        records = drain(receiver)
        self.assertEqual(
            [(r.content_type, bytes(r.payload)) for r in records],
            [(CCS, b"\x01"), (HANDSHAKE, b"CH")],
        )
        # After the handshake record, application data is passed up again.
        receiver.feed(header(APP, 1) + b"x")
        self.assertEqual(receiver.next_record().content_type, APP)

    def test_skipping_off(self) -> None:
        early, _ = layer_pair(AES128_13, seed=9)
        early.send(APP, b"0-rtt")
        _, receiver = layer_pair(AES128_13)
        receiver.skip_early_data(1000)
        receiver.skip_early_data(None)
        receiver.feed(early.data_to_send())
        self.assertRaises(BadRecordMacError, receiver.next_record)


# ---------------------------------------------------------------------------
# Property tests
# ---------------------------------------------------------------------------

ALL_SUITES = (None, *SUITES_13, *SUITES_12)
suites = st.sampled_from(ALL_SUITES)
content_types = st.sampled_from((HANDSHAKE, APP, ALERT))


@st.composite
def chunkings(draw: st.DrawFn, data: bytes) -> list[bytes]:
    """``data`` cut at arbitrary points."""
    cuts = sorted(
        draw(st.lists(st.integers(0, len(data)), max_size=min(len(data), 20)))
    )
    pieces, last = [], 0
    for cut in [*cuts, len(data)]:
        pieces.append(data[last:cut])
        last = cut
    return pieces


@st.composite
def record_like_streams(draw: st.DrawFn) -> bytes:
    """Streams of plausible headers with arbitrary bodies, plus junk."""
    parts = []
    for _ in range(draw(st.integers(0, 6))):
        body = draw(st.binary(max_size=80))
        content_type = draw(st.sampled_from((20, 21, 22, 23, 24, 0x47, 0x80)))
        version = draw(st.sampled_from((0x0301, 0x0303, 0x0304, 0x0203, 0x4554)))
        length = draw(st.sampled_from((len(body), len(body) + 1, 0, 0xFFFF)))
        parts.append(header(content_type, length, version) + body)
    parts.append(draw(st.binary(max_size=30)))
    return b"".join(parts)


class PropertyTests(SynchronousTestCase):
    def feed_all(self, layer: RecordLayer, pieces: list[bytes]) -> list[Record]:
        """Feed piece by piece, draining after each; check the buffer bound."""
        protection = layer._read
        largest = 5 + (protection.max_fragment if protection else MAX_PLAINTEXT)
        records: list[Record] = []
        self.fed = b""
        for piece in pieces:
            before = layer.buffered
            self.fed += piece
            layer.feed(piece)
            self.assertEqual(layer.buffered, before + len(piece))
            records.extend(drain(layer))
            # After a drain at most one incomplete record is held.
            self.assertLess(layer.buffered, largest)
            self.assertLessEqual(layer.buffered, before + len(piece))
            self.assertLessEqual(len(layer._buf), before + len(piece))
        return records

    @settings(max_examples=1000, deadline=None)
    @given(
        suite=suites,
        stream=st.one_of(st.binary(max_size=300), record_like_streams()),
        data=st.data(),
    )
    def test_arbitrary_input_only_raises_tls_errors(self, suite, stream, data) -> None:
        _, receiver = layer_pair(suite)
        pieces = data.draw(chunkings(stream))
        try:
            self.feed_all(receiver, pieces)
        except TLSError as error:
            self.assertIsInstance(error.alert, AlertDescription)
            self.assertIsNotNone(receiver.rejected_bytes)
            # The refused bytes are the unread tail of what was fed.
            self.assertTrue(receiver.rejected_bytes)
            self.assertTrue(self.fed.endswith(receiver.rejected_bytes))

    @settings(max_examples=300, deadline=None)
    @given(
        suite=suites,
        messages=st.lists(
            st.tuples(content_types, st.binary(min_size=1, max_size=3000)),
            max_size=6,
        ),
        write_limit=st.sampled_from((64, 100, 1000, MAX_PLAINTEXT)),
        padding=st.sampled_from((0, 0, 32, 512)),
        data=st.data(),
    )
    def test_round_trip(self, suite, messages, write_limit, padding, data) -> None:
        sender, receiver = layer_pair(suite)
        sender.write_limit = write_limit
        sender.set_padding(padding)
        for content_type, payload in messages:
            sender.send(content_type, payload)
        wire = sender.data_to_send()
        records = self.feed_all(receiver, data.draw(chunkings(wire)))
        self.assertEqual(receiver.buffered, 0)
        self.assertTrue(all(len(r.payload) <= write_limit for r in records))
        self.assertTrue(all(type(r.payload) is bytes for r in records))
        # Consecutive records of a message come back as that message.
        received: list[tuple[int, bytes]] = []
        for record in records:
            if received and received[-1][0] == record.content_type:
                received[-1] = (
                    record.content_type,
                    received[-1][1] + bytes(record.payload),
                )
            else:
                received.append((record.content_type, bytes(record.payload)))
        merged: list[tuple[int, bytes]] = []
        for content_type, payload in messages:
            if merged and merged[-1][0] == content_type:
                merged[-1] = (content_type, merged[-1][1] + payload)
            else:
                merged.append((content_type, payload))
        self.assertEqual(received, merged)
        self.assertEqual(receiver.read_sequence, sender.write_sequence)

    @settings(max_examples=300, deadline=None)
    @given(
        suite=st.sampled_from(SUITES_13 + SUITES_12),
        payload=st.binary(max_size=500),
        content_type=content_types,
        data=st.data(),
    )
    def test_mutated_ciphertext_fails_mac(self, suite, payload, content_type, data):
        if not payload and content_type != APP:
            payload = b"\x01"
        sender, receiver = layer_pair(suite)
        sender.send(content_type, payload or b"\x00")
        wire = bytearray(sender.data_to_send())
        position = data.draw(st.integers(5, len(wire) - 1))
        wire[position] ^= data.draw(st.integers(1, 255))
        receiver.feed(bytes(wire))
        self.assertRaises(BadRecordMacError, receiver.next_record)
