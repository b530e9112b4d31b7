"""Tests for twisted_sslfile.engine.messages.

Known-answer tests replay the handshake messages of RFC 8448 ("Example
Handshake Traces for TLS 1.3": §3 simple 1-RTT, §4 resumed 0-RTT, §5
HelloRetryRequest, §6 client authentication) and, for TLS 1.2, a
ServerKeyExchange from "The Illustrated TLS 1.2 Connection"
(tls12.xargs.org).  Each is parsed, its fields are checked against the values
the trace states, and it is serialized back to the identical bytes.
Property-based tests cover round trips of generated messages, hostile input
(arbitrary bytes, truncations, mutations: only TLSError may escape) and the
reassembly of arbitrarily fragmented handshake streams.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import time
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from tests import rfc8448
from twisted_sslfile.constants import (
    AlertDescription,
    ExtensionType,
    HandshakeType,
    NamedGroup,
)
from twisted_sslfile.engine import messages
from twisted_sslfile.engine.messages import (
    DOWNGRADE_TLS11,
    DOWNGRADE_TLS12,
    HELLO_RETRY_REQUEST_RANDOM,
    TLS12_MESSAGES,
    TLS13_MESSAGES,
    Certificate,
    Certificate12,
    CertificateEntry,
    CertificateRequest,
    CertificateRequest12,
    CertificateVerify,
    ClientHello,
    ClientKeyExchange12,
    EncryptedExtensions,
    EndOfEarlyData,
    Finished,
    HandshakeReassembler,
    HelloRequest,
    KeyShareEntry,
    KeyUpdate,
    NewSessionTicket,
    NewSessionTicket12,
    NextProtocol,
    OfferedPsks,
    PskIdentity,
    ServerHello,
    ServerHelloDone12,
    ServerKeyExchange12,
    encode_handshake,
)
from twisted_sslfile.errors import (
    DecodeError,
    IllegalParameterError,
    InternalError,
    LimitExceededError,
    MissingExtensionError,
    TLSError,
)

E = ExtensionType


def _h(text: str) -> bytes:
    return bytes.fromhex("".join(text.split()))


# ---------------------------------------------------------------------------
# RFC 8448 vectors: complete handshake messages (4-byte header included).
# The long runs of zero padding in §4 and §5 ClientHellos are written as
# bytes(n) rather than spelled out.

# §3 "Simple 1-RTT Handshake": shared with the other RFC 8448 tests.
CH_1RTT = rfc8448.CLIENT_HELLO
SH_1RTT = rfc8448.SERVER_HELLO
EE_1RTT = rfc8448.ENCRYPTED_EXTENSIONS
CERT_1RTT = rfc8448.CERTIFICATE
CV_1RTT = rfc8448.CERTIFICATE_VERIFY
SERVER_FINISHED_1RTT = rfc8448.SERVER_FINISHED
CLIENT_FINISHED_1RTT = rfc8448.CLIENT_FINISHED
NST_1RTT = rfc8448.NEW_SESSION_TICKET

CH_RESUMED_HEAD = _h(
    """
    01 00 01 fc 03 03 1b c3 ce b6 bb e3 9c ff 93 83 55 b5 a5 0a db 6d b2 1b
    7a 6a f6 49 d7 b4 bc 41 9d 78 76 48 7d 95 00 00 06 13 01 13 03 13 02 01
    00 01 cd 00 00 00 0b 00 09 00 00 06 73 65 72 76 65 72 ff 01 00 01 00 00
    0a 00 14 00 12 00 1d 00 17 00 18 00 19 01 00 01 01 01 02 01 03 01 04 00
    33 00 26 00 24 00 1d 00 20 e4 ff b6 8a c0 5f 8d 96 c9 9d a2 66 98 34 6c
    6b e1 64 82 ba dd da fe 05 1a 66 b4 f1 8d 66 8f 0b 00 2a 00 00 00 2b 00
    03 02 03 04 00 0d 00 20 00 1e 04 03 05 03 06 03 02 03 08 04 08 05 08 06
    04 01 05 01 06 01 02 01 04 02 05 02 06 02 02 02 00 2d 00 02 01 01 00 1c
    00 02 40 01 00 15 00 57
    """
)

CH_RESUMED_PSK = _h(
    """
    00 29 00 dd 00 b8 00 b2 2c 03 5d 82 93 59 ee 5f f7 af 4e c9 00 00 00 00
    26 2a 64 94 dc 48 6d 2c 8a 34 cb 33 fa 90 bf 1b 00 70 ad 3c 49 88 83 c9
    36 7c 09 a2 be 78 5a bc 55 cd 22 60 97 a3 a9 82 11 72 83 f8 2a 03 a1 43
    ef d3 ff 5d d3 6d 64 e8 61 be 7f d6 1d 28 27 db 27 9c ce 14 50 77 d4 54
    a3 66 4d 4e 6d a4 d2 9e e0 37 25 a6 a4 da fc d0 fc 67 d2 ae a7 05 29 51
    3e 3d a2 67 7f a5 90 6c 5b 3f 7d 8f 92 f2 28 bd a4 0d da 72 14 70 f9 fb
    f2 97 b5 ae a6 17 64 6f ac 5c 03 27 2e 97 07 27 c6 21 a7 91 41 ef 5f 7d
    e6 50 5e 5b fb c3 88 e9 33 43 69 40 93 93 4a e4 d3 57 fa d6 aa cb 00 21
    20 3a dd 4f b2 d8 fd f8 22 a0 ca 3c f7 67 8e f5 e8 8d ae 99 01 41 c5 92
    4d 57 bb 6f a3 1b 9e 5f 9d
    """
)

SH_RESUMED = _h(
    """
    02 00 00 5c 03 03 3c cf d2 de c8 90 22 27 63 47 2a e8 13 67 77 c9 d7 35
    87 77 bb 66 e9 1e a5 12 24 95 f5 59 ea 2d 00 13 01 00 00 34 00 29 00 02
    00 00 00 33 00 24 00 1d 00 20 12 17 61 ee 42 c3 33 e1 b9 e7 7b 60 dd 57
    c2 05 3c d9 45 12 ab 47 f1 15 e8 6e ff 50 94 2c ea 31 00 2b 00 02 03 04
    """
)

EE_RESUMED = _h(
    """
    08 00 00 28 00 26 00 0a 00 14 00 12 00 1d 00 17 00 18 00 19 01 00 01 01
    01 02 01 03 01 04 00 1c 00 02 40 01 00 00 00 00 00 2a 00 00
    """
)

CH1_HRR = _h(
    """
    01 00 00 b0 03 03 b0 b1 c5 a5 aa 37 c5 91 9f 2e d1 d5 c6 ff f7 fc b7 84
    97 16 94 5a 2b 8c ee 92 58 a3 46 67 7b 6f 00 00 06 13 01 13 03 13 02 01
    00 00 81 00 00 00 0b 00 09 00 00 06 73 65 72 76 65 72 ff 01 00 01 00 00
    0a 00 08 00 06 00 1d 00 17 00 18 00 33 00 26 00 24 00 1d 00 20 e8 e8 e3
    f3 b9 3a 25 ed 97 a1 4a 7d ca cb 8a 27 2c 62 88 e5 85 c6 48 4d 05 26 2f
    ca d0 62 ad 1f 00 2b 00 03 02 03 04 00 0d 00 20 00 1e 04 03 05 03 06 03
    02 03 08 04 08 05 08 06 04 01 05 01 06 01 02 01 04 02 05 02 06 02 02 02
    00 2d 00 02 01 01 00 1c 00 02 40 01
    """
)

HRR = _h(
    """
    02 00 00 ac 03 03 cf 21 ad 74 e5 9a 61 11 be 1d 8c 02 1e 65 b8 91 c2 a2
    11 16 7a bb 8c 5e 07 9e 09 e2 c8 a8 33 9c 00 13 01 00 00 84 00 33 00 02
    00 17 00 2c 00 74 00 72 71 dc d0 4b b8 8b c3 18 91 19 39 8a 00 00 00 00
    ee fa fc 76 c1 46 b8 23 b0 96 f8 aa ca d3 65 dd 00 30 95 3f 4e df 62 56
    36 e5 f2 1b b2 e2 3f cc 65 4b 1b 5b 40 31 8d 10 d1 37 ab cb b8 75 74 e3
    6e 8a 1f 02 5f 7d fa 5d 6e 50 78 1b 5e da 4a a1 5b 0c 8b e7 78 25 7d 16
    aa 30 30 e9 e7 84 1d d9 e4 c0 34 22 67 e8 ca 0c af 57 1f b2 b7 cf f0 f9
    34 b0 00 2b 00 02 03 04
    """
)

CH2_HRR_HEAD = _h(
    """
    01 00 01 fc 03 03 b0 b1 c5 a5 aa 37 c5 91 9f 2e d1 d5 c6 ff f7 fc b7 84
    97 16 94 5a 2b 8c ee 92 58 a3 46 67 7b 6f 00 00 06 13 01 13 03 13 02 01
    00 01 cd 00 00 00 0b 00 09 00 00 06 73 65 72 76 65 72 ff 01 00 01 00 00
    0a 00 08 00 06 00 1d 00 17 00 18 00 33 00 47 00 45 00 17 00 41 04 a6 da
    73 92 ec 59 1e 17 ab fd 53 59 64 b9 98 94 d1 3b ef b2 21 b3 de f2 eb e3
    83 0e ac 8f 01 51 81 26 77 c4 d6 d2 23 7e 85 cf 01 d6 91 0c fb 83 95 4e
    76 ba 73 52 83 05 34 15 98 97 e8 06 57 80 00 2b 00 03 02 03 04 00 0d 00
    20 00 1e 04 03 05 03 06 03 02 03 08 04 08 05 08 06 04 01 05 01 06 01 02
    01 04 02 05 02 06 02 02 02 00 2c 00 74 00 72 71 dc d0 4b b8 8b c3 18 91
    19 39 8a 00 00 00 00 ee fa fc 76 c1 46 b8 23 b0 96 f8 aa ca d3 65 dd 00
    30 95 3f 4e df 62 56 36 e5 f2 1b b2 e2 3f cc 65 4b 1b 5b 40 31 8d 10 d1
    37 ab cb b8 75 74 e3 6e 8a 1f 02 5f 7d fa 5d 6e 50 78 1b 5e da 4a a1 5b
    0c 8b e7 78 25 7d 16 aa 30 30 e9 e7 84 1d d9 e4 c0 34 22 67 e8 ca 0c af
    57 1f b2 b7 cf f0 f9 34 b0 00 2d 00 02 01 01 00 1c 00 02 40 01 00 15 00
    af
    """
)

SH_HRR = _h(
    """
    02 00 00 77 03 03 bb 34 1d 84 7f d7 89 c4 7c 38 71 72 dc 0c 9b f1 47 fc
    ca cb 50 43 d8 6c a4 c5 98 d3 ff 57 1b 98 00 13 01 00 00 4f 00 33 00 45
    00 17 00 41 04 58 3e 05 4b 7a 66 67 2a e0 20 ad 9d 26 86 fc c8 5b 5a d4
    1a 13 4a 0f 03 ee 72 b8 93 05 2b d8 5b 4c 8d e6 77 6f 5b 04 ac 07 d8 35
    40 ea b3 e3 d9 c5 47 bc 65 28 c4 31 7d 29 46 86 09 3a 6c ad 7d 00 2b 00
    02 03 04
    """
)

SERVER_FLIGHT_HRR = _h(
    """
    08 00 00 18 00 16 00 0a 00 08 00 06 00 17 00 18 00 1d 00 1c 00 02 40 01
    00 00 00 00 0b 00 01 b9 00 00 01 b5 00 01 b0 30 82 01 ac 30 82 01 15 a0
    03 02 01 02 02 01 02 30 0d 06 09 2a 86 48 86 f7 0d 01 01 0b 05 00 30 0e
    31 0c 30 0a 06 03 55 04 03 13 03 72 73 61 30 1e 17 0d 31 36 30 37 33 30
    30 31 32 33 35 39 5a 17 0d 32 36 30 37 33 30 30 31 32 33 35 39 5a 30 0e
    31 0c 30 0a 06 03 55 04 03 13 03 72 73 61 30 81 9f 30 0d 06 09 2a 86 48
    86 f7 0d 01 01 01 05 00 03 81 8d 00 30 81 89 02 81 81 00 b4 bb 49 8f 82
    79 30 3d 98 08 36 39 9b 36 c6 98 8c 0c 68 de 55 e1 bd b8 26 d3 90 1a 24
    61 ea fd 2d e4 9a 91 d0 15 ab bc 9a 95 13 7a ce 6c 1a f1 9e aa 6a f9 8c
    7c ed 43 12 09 98 e1 87 a8 0e e0 cc b0 52 4b 1b 01 8c 3e 0b 63 26 4d 44
    9a 6d 38 e2 2a 5f da 43 08 46 74 80 30 53 0e f0 46 1c 8c a9 d9 ef bf ae
    8e a6 d1 d0 3e 2b d1 93 ef f0 ab 9a 80 02 c4 74 28 a6 d3 5a 8d 88 d7 9f
    7f 1e 3f 02 03 01 00 01 a3 1a 30 18 30 09 06 03 55 1d 13 04 02 30 00 30
    0b 06 03 55 1d 0f 04 04 03 02 05 a0 30 0d 06 09 2a 86 48 86 f7 0d 01 01
    0b 05 00 03 81 81 00 85 aa d2 a0 e5 b9 27 6b 90 8c 65 f7 3a 72 67 17 06
    18 a5 4c 5f 8a 7b 33 7d 2d f7 a5 94 36 54 17 f2 ea e8 f8 a5 8c 8f 81 72
    f9 31 9c f3 6b 7f d6 c5 5b 80 f2 1a 03 01 51 56 72 60 96 fd 33 5e 5e 67
    f2 db f1 02 70 2e 60 8c ca e6 be c1 fc 63 a4 2a 99 be 5c 3e b7 10 7c 3c
    54 e9 b9 eb 2b d5 20 3b 1c 3b 84 e0 a8 b2 f7 59 40 9b a3 ea c9 d9 1d 40
    2d cc 0c c8 f8 96 12 29 ac 91 87 b4 2b 4d e1 00 00 0f 00 00 84 08 04 00
    80 33 ab 13 d4 46 27 07 23 1b 5d ca e6 c8 19 0b 63 d1 da bc 74 f2 8c 39
    53 70 da 0b 07 e5 b8 30 66 d0 24 6a 31 ac d9 5d f4 75 bf d7 99 a4 a7 0d
    33 ad 93 d3 a3 17 a9 b2 c0 d2 37 a5 68 5b 21 9e 77 41 12 e3 91 a2 47 60
    7d 1a ef f1 bb d0 a3 9f 38 2e e1 a5 fe 88 ae 99 ec 59 22 8e 64 97 e4 5d
    48 ce 27 5a 6d 5e f4 0d 16 9f b6 f9 d3 3b 05 2e d3 dc dd 6b 5a 48 ba af
    ff bc b2 90 12 84 15 bd 38 14 00 00 20 88 63 e6 bf b0 42 0a 92 7f a2 7f
    34 33 6a 70 ae 42 6e 96 8e 3e b8 84 94 5b 96 85 6d ba 39 76 d1
    """
)

CR_CLIENT_AUTH = _h(
    """
    0d 00 00 27 00 00 24 00 0d 00 20 00 1e 04 03 05 03 06 03 02 03 08 04 08
    05 08 06 04 01 05 01 06 01 02 01 04 02 05 02 06 02 02 02
    """
)

SKE_TLS12 = _h(
    """
    0c 00 01 28 03 00 1d 20 9f d7 ad 6d cf f4 29 8d d3 f9 6d 5b 1b 2a f9 10
    a0 53 5b 14 88 d7 f8 fa bb 34 9a 98 28 80 b6 15 04 01 01 00 04 02 b6 61
    f7 c1 91 ee 59 be 45 37 66 39 bd c3 d4 bb 81 e1 15 ca 73 c8 34 8b 52 5b
    0d 23 38 aa 14 46 67 ed 94 31 02 14 12 cd 9b 84 4c ba 29 93 4a aa cc e8
    73 41 4e c1 1c b0 2e 27 2d 0a d8 1f 76 7d 33 07 67 21 f1 3b f3 60 20 cf
    0b 1f d0 ec b0 78 de 11 28 be ba 09 49 eb ec e1 a1 f9 6e 20 9d c3 6e 4f
    ff d3 6b 67 3a 7d dc 15 97 ad 44 08 e4 85 c4 ad b2 c8 73 84 12 49 37 25
    23 80 9e 43 12 d0 c7 b3 52 2e f9 83 ca c1 e0 39 35 ff 13 a8 e9 6b a6 81
    a6 2e 40 d3 e7 0a 7f f3 58 66 d3 d9 99 3f 9e 26 a6 34 c8 1b 4e 71 38 0f
    cd d6 f4 e8 35 f7 5a 64 09 c7 dc 2c 07 41 0e 6f 87 85 8c 7b 94 c0 1c 2e
    32 f2 91 76 9e ac ca 71 64 3b 8b 98 a9 63 df 0a 32 9b ea 4e d6 39 7e 8c
    d0 1a 11 0a b3 61 ac 5b ad 1c cd 84 0a 6c 8a 6e aa 00 1a 9d 7d 87 dc 33
    18 64 35 71 22 6c 4d d2 c2 ac 41 fb
    """
)

CH_RESUMED = CH_RESUMED_HEAD + bytes(87) + CH_RESUMED_PSK
CH2_HRR = CH2_HRR_HEAD + bytes(175)
END_OF_EARLY_DATA = _h("05 00 00 00")
SERVER_HELLO_DONE_TLS12 = _h("0e 00 00 00")

# RFC 8448 §4: SHA-256 of the ClientHello truncated before the binders.
BINDER_HASH_RESUMED = _h(
    "63 22 4b 2e 45 73 f2 d3 45 4c a8 4b 9d 00 9a 04"
    "f6 be 9e 05 71 1a 83 96 47 3a ef a0 1e 92 4a 14"
)

#: (class, complete message) for every known-answer vector.
VECTORS: list[tuple[type, bytes]] = [
    (ClientHello, CH_1RTT),
    (ServerHello, SH_1RTT),
    (EncryptedExtensions, EE_1RTT),
    (Certificate, CERT_1RTT),
    (CertificateVerify, CV_1RTT),
    (Finished, SERVER_FINISHED_1RTT),
    (Finished, CLIENT_FINISHED_1RTT),
    (NewSessionTicket, NST_1RTT),
    (ClientHello, CH_RESUMED),
    (ServerHello, SH_RESUMED),
    (EncryptedExtensions, EE_RESUMED),
    (EndOfEarlyData, END_OF_EARLY_DATA),
    (ClientHello, CH1_HRR),
    (ServerHello, HRR),
    (ClientHello, CH2_HRR),
    (ServerHello, SH_HRR),
    (CertificateRequest, CR_CLIENT_AUTH),
    (ServerKeyExchange12, SKE_TLS12),
    (ServerHelloDone12, SERVER_HELLO_DONE_TLS12),
]


def _body(message: bytes) -> bytes:
    """Strip and check the 4-byte handshake header."""
    assert int.from_bytes(message[1:4], "big") == len(message) - 4
    return message[4:]


# ---------------------------------------------------------------------------
# Helpers to build small hand-made messages.


def _ext(ext_type: int, data: bytes = b"") -> bytes:
    return ext_type.to_bytes(2, "big") + len(data).to_bytes(2, "big") + data


def _block(*extensions: bytes) -> bytes:
    data = b"".join(extensions)
    return len(data).to_bytes(2, "big") + data


def _ch_body(*extensions: bytes) -> bytes:
    """A ClientHello body: TLS_AES_128_GCM_SHA256, null compression."""
    return _h("0303") + bytes(32) + _h("00 0002 1301 0100") + _block(*extensions)


def _sh_body(*extensions: bytes, random: bytes = bytes(32)) -> bytes:
    return _h("0303") + random + _h("00 1301 00") + _block(*extensions)


def _vec(length_size: int, data: bytes) -> bytes:
    return len(data).to_bytes(length_size, "big") + data


TLS13_VERSION = _ext(E.supported_versions, _h("0304"))  # ServerHello form
TLS13_VERSIONS = _ext(E.supported_versions, _h("02 0304"))  # ClientHello form


class ConstantTests(SynchronousTestCase):
    def test_hello_retry_request_random(self) -> None:
        # RFC 8446 §4.1.3: SHA-256("HelloRetryRequest").
        self.assertEqual(
            HELLO_RETRY_REQUEST_RANDOM, hashlib.sha256(b"HelloRetryRequest").digest()
        )

    def test_downgrade_sentinels(self) -> None:
        # RFC 8446 §4.1.3: "DOWNGRD" followed by 01 (TLS 1.2) or 00 (older).
        self.assertEqual(DOWNGRADE_TLS12, _h("44 4F 57 4E 47 52 44 01"))
        self.assertEqual(DOWNGRADE_TLS11, _h("44 4F 57 4E 47 52 44 00"))
        self.assertEqual(DOWNGRADE_TLS12[:7], b"DOWNGRD")

    def test_encode_handshake_header(self) -> None:
        self.assertEqual(encode_handshake(KeyUpdate(1)), _h("18 000001 01"))
        self.assertEqual(encode_handshake(EndOfEarlyData()), _h("05 000000"))
        raw = encode_handshake(Finished(bytes(300)))
        self.assertEqual(raw[:4], _h("14 00012c"))

    def test_message_tables(self) -> None:
        self.assertIs(TLS13_MESSAGES[HandshakeType.certificate], Certificate)
        self.assertIs(TLS12_MESSAGES[HandshakeType.certificate], Certificate12)
        self.assertIs(
            TLS13_MESSAGES[HandshakeType.new_session_ticket], NewSessionTicket
        )
        self.assertIs(
            TLS12_MESSAGES[HandshakeType.new_session_ticket], NewSessionTicket12
        )
        self.assertIs(TLS12_MESSAGES[HandshakeType.next_protocol], NextProtocol)
        self.assertNotIn(HandshakeType.server_key_exchange, TLS13_MESSAGES)
        for table in (TLS13_MESSAGES, TLS12_MESSAGES):
            for msg_type, cls in table.items():
                self.assertEqual(cls.msg_type, msg_type)

    def test_every_extension_type_has_a_row(self) -> None:
        # Every registry value we name is "recognised" (RFC 8446 §4.2), so
        # each needs a row saying where it may appear.
        self.assertEqual(set(messages._WHERE), {int(e) for e in ExtensionType})


class SimpleHandshakeVectorTests(SynchronousTestCase):
    """RFC 8448 §3: Simple 1-RTT Handshake."""

    def test_client_hello_fields(self) -> None:
        hello = ClientHello.parse(_body(CH_1RTT))
        self.assertEqual(hello.legacy_version, 0x0303)
        self.assertEqual(hello.random[:4], _h("cb 34 ec b1"))
        self.assertEqual(hello.random[-4:], _h("02 4d ec e7"))
        self.assertEqual(hello.legacy_session_id, b"")
        self.assertEqual(hello.cipher_suites, [0x1301, 0x1303, 0x1302])
        self.assertEqual(hello.legacy_compression_methods, b"\x00")
        self.assertEqual(hello.server_name, "server")
        self.assertEqual(hello.renegotiation_info, b"")
        self.assertEqual(
            hello.supported_groups,
            [0x001D, 0x0017, 0x0018, 0x0019, 0x0100, 0x0101, 0x0102, 0x0103, 0x0104],
        )
        self.assertEqual(hello.session_ticket, b"")
        self.assertEqual(len(hello.key_share), 1)
        self.assertEqual(hello.key_share[0].group, NamedGroup.x25519)
        self.assertEqual(
            hello.key_share[0].key_exchange,
            _h(
                "99 38 1d e5 60 e4 bd 43 d2 3d 8e 43 5a 7d ba fe"
                "b3 c0 6e 51 c1 3c ae 4d 54 13 69 1e 52 9a af 2c"
            ),
        )
        self.assertEqual(hello.supported_versions, [0x0304])
        self.assertEqual(
            hello.signature_algorithms,
            [
                0x0403, 0x0503, 0x0603, 0x0203, 0x0804, 0x0805, 0x0806, 0x0401,
                0x0501, 0x0601, 0x0201, 0x0402, 0x0502, 0x0602, 0x0202,
            ],
        )  # fmt: skip
        self.assertEqual(hello.psk_key_exchange_modes, [1])
        self.assertEqual(hello.record_size_limit, 0x4001)
        self.assertIsNone(hello.pre_shared_key)
        self.assertIsNone(hello.alpn_protocols)
        self.assertIsNone(hello.cookie)
        self.assertFalse(hello.early_data)
        self.assertFalse(hello.extended_master_secret)
        self.assertEqual(hello.other_extensions, [])
        self.assertEqual(
            hello.extension_order,
            [0x0000, 0xFF01, 0x000A, 0x0023, 0x0033, 0x002B, 0x000D, 0x002D, 0x001C],
        )
        self.assertEqual(hello.binders_length(), 0)

    def test_server_hello_fields(self) -> None:
        hello = ServerHello.parse(_body(SH_1RTT))
        self.assertFalse(hello.is_hello_retry_request)
        self.assertEqual(hello.legacy_version, 0x0303)
        self.assertEqual(hello.random[:4], _h("a6 af 06 a4"))
        self.assertEqual(hello.legacy_session_id_echo, b"")
        self.assertEqual(hello.cipher_suite, 0x1301)
        self.assertEqual(hello.legacy_compression_method, 0)
        self.assertEqual(hello.supported_versions, 0x0304)
        self.assertEqual(hello.key_share.group, NamedGroup.x25519)
        self.assertEqual(hello.key_share.key_exchange[:4], _h("c9 82 88 76"))
        self.assertEqual(len(hello.key_share.key_exchange), 32)
        self.assertIsNone(hello.selected_group)
        self.assertIsNone(hello.pre_shared_key)
        self.assertEqual(hello.extension_order, [0x0033, 0x002B])

    def test_encrypted_extensions_fields(self) -> None:
        extensions = EncryptedExtensions.parse(_body(EE_1RTT))
        self.assertEqual(
            extensions.supported_groups,
            [0x001D, 0x0017, 0x0018, 0x0019, 0x0100, 0x0101, 0x0102, 0x0103, 0x0104],
        )
        self.assertEqual(extensions.record_size_limit, 0x4001)
        self.assertTrue(extensions.server_name_ack)
        self.assertIsNone(extensions.alpn_protocol)
        self.assertFalse(extensions.early_data)
        self.assertEqual(extensions.extension_order, [0x000A, 0x001C, 0x0000])

    def test_certificate_fields(self) -> None:
        certificate = Certificate.parse(_body(CERT_1RTT))
        self.assertEqual(certificate.certificate_request_context, b"")
        self.assertEqual(len(certificate.entries), 1)
        entry = certificate.entries[0]
        self.assertEqual(len(entry.cert_data), 0x01B0)
        # A DER SEQUENCE of 0x01ac bytes, ending in the signature's last bytes.
        self.assertEqual(entry.cert_data[:4], _h("30 82 01 ac"))
        self.assertEqual(entry.cert_data[-4:], _h("b4 2b 4d e1"))
        self.assertEqual(entry.extensions, [])

    def test_certificate_verify_fields(self) -> None:
        verify = CertificateVerify.parse(_body(CV_1RTT))
        self.assertEqual(verify.algorithm, 0x0804)  # rsa_pss_rsae_sha256
        self.assertEqual(len(verify.signature), 128)
        self.assertEqual(verify.signature[:4], _h("5a 74 7c 5d"))
        self.assertEqual(verify.signature[-4:], _h("d4 2f 74 f3"))

    def test_finished_fields(self) -> None:
        server = Finished.parse(_body(SERVER_FINISHED_1RTT))
        self.assertEqual(
            server.verify_data,
            _h(
                "9b 9b 14 1d 90 63 37 fb d2 cb dc e7 1d f4 de da"
                "4a b4 2c 30 95 72 cb 7f ff ee 54 54 b7 8f 07 18"
            ),
        )
        client = Finished.parse(_body(CLIENT_FINISHED_1RTT))
        self.assertEqual(client.verify_data[:4], _h("a8 ec 43 6d"))

    def test_new_session_ticket_fields(self) -> None:
        ticket = NewSessionTicket.parse(_body(NST_1RTT))
        self.assertEqual(ticket.ticket_lifetime, 30)
        self.assertEqual(ticket.ticket_age_add, 0xFAD6AAC5)
        self.assertEqual(ticket.ticket_nonce, _h("00 00"))
        self.assertEqual(len(ticket.ticket), 0xB2)
        self.assertEqual(ticket.ticket[:4], _h("2c 03 5d 82"))
        self.assertEqual(ticket.max_early_data_size, 0x400)
        self.assertEqual(ticket.other_extensions, [])
        self.assertEqual(ticket.extension_order, [0x002A])


class ResumptionVectorTests(SynchronousTestCase):
    """RFC 8448 §4: Resumed 0-RTT Handshake."""

    def test_client_hello_fields(self) -> None:
        hello = ClientHello.parse(_body(CH_RESUMED))
        self.assertEqual(hello.random[:4], _h("1b c3 ce b6"))
        self.assertTrue(hello.early_data)
        self.assertEqual(hello.key_share[0].key_exchange[:4], _h("e4 ff b6 8a"))
        psk = hello.pre_shared_key
        self.assertEqual(len(psk.identities), 1)
        # The identity is the ticket of §3's NewSessionTicket.
        ticket = NewSessionTicket.parse(_body(NST_1RTT)).ticket
        self.assertEqual(psk.identities[0].identity, ticket)
        self.assertEqual(psk.identities[0].obfuscated_ticket_age, 0xFAD6AACB)
        self.assertEqual(
            psk.binders,
            [
                _h(
                    "3a dd 4f b2 d8 fd f8 22 a0 ca 3c f7 67 8e f5 e8"
                    "8d ae 99 01 41 c5 92 4d 57 bb 6f a3 1b 9e 5f 9d"
                )
            ],
        )
        # padding (RFC 7685) is allowed in a ClientHello but not parsed.
        self.assertEqual(hello.other_extensions, [(E.padding, bytes(87))])
        self.assertEqual(hello.extension_order[-2:], [E.padding, E.pre_shared_key])

    def test_binders_length_gives_the_truncated_hello(self) -> None:
        hello = ClientHello.parse(_body(CH_RESUMED))
        self.assertEqual(hello.binders_length(), 2 + 1 + 32)
        raw = encode_handshake(hello)
        truncated = raw[: -hello.binders_length()]
        self.assertEqual(hashlib.sha256(truncated).digest(), BINDER_HASH_RESUMED)

    def test_server_hello_fields(self) -> None:
        hello = ServerHello.parse(_body(SH_RESUMED))
        self.assertEqual(hello.pre_shared_key, 0)
        self.assertEqual(hello.key_share.group, NamedGroup.x25519)
        self.assertEqual(hello.supported_versions, 0x0304)
        self.assertEqual(hello.extension_order, [0x0029, 0x0033, 0x002B])

    def test_encrypted_extensions_fields(self) -> None:
        extensions = EncryptedExtensions.parse(_body(EE_RESUMED))
        self.assertTrue(extensions.early_data)
        self.assertTrue(extensions.server_name_ack)
        self.assertEqual(extensions.record_size_limit, 0x4001)

    def test_end_of_early_data(self) -> None:
        self.assertEqual(
            EndOfEarlyData.parse(_body(END_OF_EARLY_DATA)), EndOfEarlyData()
        )


class HelloRetryVectorTests(SynchronousTestCase):
    """RFC 8448 §5: HelloRetryRequest."""

    def test_first_client_hello(self) -> None:
        hello = ClientHello.parse(_body(CH1_HRR))
        self.assertEqual(hello.supported_groups, [0x001D, 0x0017, 0x0018])
        self.assertEqual([e.group for e in hello.key_share], [0x001D])
        self.assertIsNone(hello.cookie)

    def test_hello_retry_request(self) -> None:
        retry = ServerHello.parse(_body(HRR))
        self.assertTrue(retry.is_hello_retry_request)
        self.assertEqual(retry.cipher_suite, 0x1301)
        self.assertEqual(retry.selected_group, NamedGroup.secp256r1)
        self.assertIsNone(retry.key_share)
        self.assertEqual(len(retry.cookie), 0x72)
        self.assertEqual(retry.cookie[:4], _h("71 dc d0 4b"))
        self.assertEqual(retry.supported_versions, 0x0304)
        self.assertEqual(retry.extension_order, [0x0033, 0x002C, 0x002B])

    def test_second_client_hello(self) -> None:
        retry = ServerHello.parse(_body(HRR))
        first = ClientHello.parse(_body(CH1_HRR))
        second = ClientHello.parse(_body(CH2_HRR))
        self.assertEqual(second.cookie, retry.cookie)
        self.assertEqual(second.random, first.random)
        self.assertEqual(len(second.key_share), 1)
        self.assertEqual(second.key_share[0].group, NamedGroup.secp256r1)
        self.assertEqual(len(second.key_share[0].key_exchange), 65)
        self.assertEqual(second.key_share[0].key_exchange[0], 0x04)
        self.assertEqual(second.other_extensions, [(E.padding, bytes(175))])
        # The retry is the first hello with a new share, a cookie and padding.
        self.assertEqual(
            dataclasses.replace(
                first,
                key_share=second.key_share,
                cookie=second.cookie,
                other_extensions=second.other_extensions,
                extension_order=second.extension_order,
            ),
            second,
        )

    def test_server_hello(self) -> None:
        hello = ServerHello.parse(_body(SH_HRR))
        self.assertFalse(hello.is_hello_retry_request)
        self.assertEqual(hello.key_share.group, NamedGroup.secp256r1)
        self.assertEqual(len(hello.key_share.key_exchange), 65)

    def test_server_flight_reassembly(self) -> None:
        # §5's server flight: EE, Certificate, CertificateVerify and Finished
        # in one record payload.
        reassembler = HandshakeReassembler(2**14)
        reassembler.feed(SERVER_FLIGHT_HRR)
        self.assertFalse(reassembler.has_partial)
        popped = []
        while (item := reassembler.pop()) is not None:
            popped.append(item)
        self.assertEqual([t for t, _, _ in popped], [8, 11, 15, 20])
        self.assertEqual(b"".join(raw for _, raw, _ in popped), SERVER_FLIGHT_HRR)
        classes = (EncryptedExtensions, Certificate, CertificateVerify, Finished)
        for cls, (_, raw, body) in zip(classes, popped, strict=True):
            self.assertEqual(raw[4:], body)
            self.assertEqual(encode_handshake(cls.parse(body)), raw)
        extensions = EncryptedExtensions.parse(popped[0][2])
        self.assertEqual(extensions.supported_groups, [0x0017, 0x0018, 0x001D])
        self.assertEqual(CertificateVerify.parse(popped[2][2]).algorithm, 0x0804)
        self.assertEqual(
            Finished.parse(popped[3][2]).verify_data[:4], _h("88 63 e6 bf")
        )


class ClientAuthVectorTests(SynchronousTestCase):
    """RFC 8448 §6: Client Authentication."""

    def test_certificate_request(self) -> None:
        request = CertificateRequest.parse(_body(CR_CLIENT_AUTH))
        self.assertEqual(request.certificate_request_context, b"")
        self.assertEqual(len(request.signature_algorithms), 15)
        self.assertEqual(request.signature_algorithms[:2], [0x0403, 0x0503])
        self.assertIsNone(request.signature_algorithms_cert)
        self.assertIsNone(request.certificate_authorities)
        self.assertEqual(request.extension_order, [0x000D])


class VectorRoundTripTests(SynchronousTestCase):
    def test_every_vector_round_trips(self) -> None:
        for cls, message in VECTORS:
            parsed = cls.parse(_body(message))
            self.assertEqual(encode_handshake(parsed), message, cls.__name__)
            self.assertEqual(message[0], cls.msg_type)

    def test_vectors_are_in_canonical_order(self) -> None:
        # Forgetting the received order changes nothing: the canonical order
        # of our tables is the one RFC 8448's implementation used.
        for cls, message in VECTORS:
            parsed = cls.parse(_body(message))
            if hasattr(parsed, "extension_order"):
                parsed.extension_order = []
                self.assertEqual(encode_handshake(parsed), message, cls.__name__)

    def test_parse_accepts_memoryview(self) -> None:
        parsed = ClientHello.parse(memoryview(CH_1RTT)[4:])
        self.assertEqual(parsed, ClientHello.parse(CH_1RTT[4:]))
        self.assertIs(type(parsed.random), bytes)
        self.assertIs(type(parsed.key_share[0].key_exchange), bytes)

    def test_received_order_is_replayed(self) -> None:
        # Swap two extensions of the §3 ServerHello: still parsed, and the
        # serialization keeps the peer's order.
        body = _sh_body(
            TLS13_VERSION,
            _ext(E.key_share, _h("001d 0002 abcd")),
            random=bytes(range(32)),
        )
        hello = ServerHello.parse(body)
        self.assertEqual(hello.extension_order, [0x002B, 0x0033])
        self.assertEqual(hello.serialize(), body)
        hello.extension_order = []
        self.assertNotEqual(hello.serialize(), body)


class TLS12MessageTests(SynchronousTestCase):
    def test_server_key_exchange_vector(self) -> None:
        body = _body(SKE_TLS12)
        exchange = ServerKeyExchange12.parse(body)
        self.assertEqual(exchange.named_curve, NamedGroup.x25519)
        self.assertEqual(exchange.public[:4], _h("9f d7 ad 6d"))
        self.assertEqual(len(exchange.public), 32)
        self.assertEqual(exchange.algorithm, 0x0401)  # rsa_pkcs1_sha256
        self.assertEqual(len(exchange.signature), 256)
        self.assertEqual(exchange.signature[:4], _h("04 02 b6 61"))
        # RFC 8422 §5.4: the signed params are curve_type, curve and point.
        self.assertEqual(exchange.signed_params(), body[:36])
        self.assertEqual(exchange.serialize(), body)

    def test_server_hello_done(self) -> None:
        self.assertEqual(
            ServerHelloDone12.parse(_body(SERVER_HELLO_DONE_TLS12)), ServerHelloDone12()
        )
        self.assertEqual(encode_handshake(ServerHelloDone12()), SERVER_HELLO_DONE_TLS12)

    def test_server_hello_with_tls12_extensions(self) -> None:
        random = bytes(range(0x70, 0x90))
        session_id = bytes(range(0xE0, 0x100))
        body = (
            _h("0303")
            + random
            + _vec(1, session_id)
            + _h("c02f 00")
            + _block(
                _ext(E.server_name),
                _ext(E.extended_master_secret),
                _ext(E.renegotiation_info, _h("00")),
                _ext(E.ec_point_formats, _h("01 00")),
                _ext(E.session_ticket),
                _ext(E.next_protocol_negotiation, b"\x02h2\x08http/1.1"),
                _ext(E.application_layer_protocol_negotiation, _h("0003 02") + b"h2"),
                _ext(0x1234, b"opaque"),
            )
        )
        hello = ServerHello.parse(body)
        self.assertEqual(hello.random, random)
        self.assertEqual(hello.legacy_session_id_echo, session_id)
        self.assertEqual(hello.cipher_suite, 0xC02F)
        self.assertIsNone(hello.supported_versions)
        self.assertTrue(hello.server_name_ack)
        self.assertTrue(hello.extended_master_secret)
        self.assertEqual(hello.renegotiation_info, b"")
        self.assertEqual(hello.ec_point_formats, b"\x00")
        self.assertTrue(hello.session_ticket)
        self.assertEqual(hello.next_protocol_negotiation, [b"h2", b"http/1.1"])
        self.assertEqual(hello.alpn_protocol, b"h2")
        self.assertEqual(hello.other_extensions, [(0x1234, b"opaque")])
        self.assertEqual(hello.serialize(), body)
        hello.extension_order = []
        self.assertEqual(hello.serialize(), body)

    def test_server_hello_without_extensions(self) -> None:
        # RFC 5246 §7.4.1.3: the extension block may be absent.
        body = _h("0303") + bytes(32) + _h("00 c02b 00")
        hello = ServerHello.parse(body)
        self.assertEqual(hello.cipher_suite, 0xC02B)
        self.assertEqual(hello.extension_order, [])
        self.assertFalse(hello.extended_master_secret)
        self.assertEqual(hello.serialize(), body)

    def test_client_hello_without_extensions(self) -> None:
        body = _h("0303") + bytes(32) + _h("00 0004 c02b 00ff 01 00")
        hello = ClientHello.parse(body)
        self.assertEqual(hello.cipher_suites, [0xC02B, 0x00FF])
        self.assertIsNone(hello.supported_versions)
        self.assertEqual(hello.serialize(), body)

    def test_client_hello_tls12_extensions(self) -> None:
        body = _ch_body(
            _ext(E.extended_master_secret),
            _ext(E.renegotiation_info, _h("0c") + bytes(12)),
            _ext(E.ec_point_formats, _h("01 00")),
            _ext(E.session_ticket, b"ticket"),
            _ext(E.next_protocol_negotiation),
            _ext(E.encrypt_then_mac),
            _ext(E.status_request, _h("01 0000 0000")),
        )
        hello = ClientHello.parse(body)
        self.assertTrue(hello.extended_master_secret)
        self.assertEqual(hello.renegotiation_info, bytes(12))
        self.assertEqual(hello.ec_point_formats, b"\x00")
        self.assertEqual(hello.session_ticket, b"ticket")
        self.assertTrue(hello.next_protocol_negotiation)
        # Recognised but not interpreted: kept raw.
        self.assertEqual(
            hello.other_extensions,
            [(E.encrypt_then_mac, b""), (E.status_request, _h("01 0000 0000"))],
        )
        self.assertEqual(hello.serialize(), body)

    def test_certificate12(self) -> None:
        body = _vec(3, _vec(3, b"first") + _vec(3, b"second"))
        certificate = Certificate12.parse(body)
        self.assertEqual(certificate.certificates, [b"first", b"second"])
        self.assertEqual(certificate.serialize(), body)
        self.assertEqual(Certificate12.parse(_h("000000")).certificates, [])

    def test_certificate_request12(self) -> None:
        body = (
            _h("02 01 40")  # rsa_sign, ecdsa_sign
            + _h("0004 0403 0804")
            + _vec(2, _vec(2, b"CN=a") + _vec(2, b"CN=b"))
        )
        request = CertificateRequest12.parse(body)
        self.assertEqual(request.certificate_types, b"\x01\x40")
        self.assertEqual(request.signature_algorithms, [0x0403, 0x0804])
        self.assertEqual(request.certificate_authorities, [b"CN=a", b"CN=b"])
        self.assertEqual(request.serialize(), body)

    def test_client_key_exchange12(self) -> None:
        body = _vec(1, bytes(range(32)))
        self.assertEqual(ClientKeyExchange12.parse(body).public, bytes(range(32)))
        self.assertEqual(ClientKeyExchange12(bytes(range(32))).serialize(), body)

    def test_new_session_ticket12(self) -> None:
        body = _h("00001c20") + _vec(2, b"sealed")
        ticket = NewSessionTicket12.parse(body)
        self.assertEqual(ticket.lifetime_hint, 7200)
        self.assertEqual(ticket.ticket, b"sealed")
        self.assertEqual(ticket.serialize(), body)
        # RFC 5077 §3.3: an empty ticket means "no new ticket".
        self.assertEqual(NewSessionTicket12.parse(_h("00000000 0000")).ticket, b"")

    def test_next_protocol_padding(self) -> None:
        # draft-agl-tls-nextprotoneg-04: 32 - ((2 + 2) % 32) = 28 zero bytes.
        body = NextProtocol(b"h2").serialize()
        self.assertEqual(body, _h("02") + b"h2" + _h("1c") + bytes(28))
        self.assertEqual(len(body), 32)
        self.assertEqual(NextProtocol.parse(body).selected_protocol, b"h2")
        # A 30-byte name: 32 - (32 % 32) = 32 bytes of padding.
        self.assertEqual(len(NextProtocol(bytes(30)).serialize()), 1 + 30 + 1 + 32)

    def test_next_protocol_other_padding_length_accepted(self) -> None:
        body = _h("02") + b"h2" + _h("01 00")
        self.assertEqual(NextProtocol.parse(body).selected_protocol, b"h2")

    def test_hello_request(self) -> None:
        self.assertEqual(HelloRequest.parse(b""), HelloRequest())
        self.assertEqual(encode_handshake(HelloRequest()), _h("00 000000"))


class ClientHelloRejectionTests(SynchronousTestCase):
    def assertRejected(self, body: bytes, error: type[TLSError]) -> None:
        with self.assertRaises(error) as caught:
            ClientHello.parse(body)
        self.assertEqual(caught.exception.alert, error.default_alert)

    def test_baseline_is_accepted(self) -> None:
        hello = ClientHello.parse(_ch_body(TLS13_VERSIONS))
        self.assertEqual(hello.supported_versions, [0x0304])

    def test_cipher_suites_bounds(self) -> None:
        head = _h("0303") + bytes(32) + _h("00")
        tail = _h("0100") + _block()
        # cipher_suites<2..2^16-2>: odd, empty and truncated lengths.
        self.assertRejected(head + _h("0003 130113") + tail, DecodeError)
        self.assertRejected(head + _h("0000") + tail, DecodeError)
        self.assertRejected(head + _h("0004 1301") + tail, DecodeError)

    def test_session_id_bounds(self) -> None:
        # legacy_session_id<0..32>
        body = _h("0303") + bytes(32) + _vec(1, bytes(33)) + _h("0002 1301 0100")
        self.assertRejected(body, DecodeError)
        body = _h("0303") + bytes(32) + _vec(1, bytes(32)) + _h("0002 1301 0100")
        self.assertEqual(ClientHello.parse(body).legacy_session_id, bytes(32))

    def test_short_random(self) -> None:
        self.assertRejected(_h("0303") + bytes(31), DecodeError)

    def test_compression_methods_bounds(self) -> None:
        body = _h("0303") + bytes(32) + _h("00 0002 1301 00")
        self.assertRejected(body, DecodeError)

    def test_trailing_bytes(self) -> None:
        self.assertRejected(_ch_body(TLS13_VERSIONS) + b"\x00", DecodeError)

    def test_extension_block_overrun(self) -> None:
        body = _ch_body(TLS13_VERSIONS)
        self.assertRejected(body[:-1], DecodeError)
        # An extension whose length runs past the block.
        self.assertRejected(_ch_body(_h("002b 0009 0203 04")), DecodeError)

    def test_duplicate_extension(self) -> None:
        # RFC 8446 §4.2: no two extensions of one type.
        self.assertRejected(
            _ch_body(TLS13_VERSIONS, TLS13_VERSIONS), IllegalParameterError
        )
        unknown = _ext(0x4444, b"x")
        self.assertRejected(_ch_body(unknown, unknown), IllegalParameterError)

    def test_a_full_block_of_extensions_parses_in_linear_time(self) -> None:
        """The most extensions a block can hold (16,382 empty ones and the
        supported_versions, 65,535 bytes): kept in order, duplicate check
        included, in well under a second.  A check that compared each with
        every other would take some 134 million steps here."""
        unknown = [_ext(0x4000 + i) for i in range(16382)]
        body = _ch_body(TLS13_VERSIONS, *unknown)
        started = time.perf_counter()
        hello = ClientHello.parse(body)
        elapsed = time.perf_counter() - started
        self.assertEqual(len(hello.other_extensions), 16382)
        self.assertEqual(hello.other_extensions[-1], (0x4000 + 16381, b""))
        self.assertLess(elapsed, 1.0)
        # The same block with its last extension a copy of the first.
        started = time.perf_counter()
        self.assertRejected(
            _ch_body(TLS13_VERSIONS, *unknown[:-1], unknown[0]), IllegalParameterError
        )
        self.assertLess(time.perf_counter() - started, 1.0)

    def test_pre_shared_key_must_be_last(self) -> None:
        psk = _ext(
            E.pre_shared_key,
            _vec(2, _vec(2, b"id") + bytes(4)) + _vec(2, _vec(1, bytes(32))),
        )
        hello = ClientHello.parse(_ch_body(TLS13_VERSIONS, psk))
        self.assertEqual(hello.pre_shared_key.identities, [PskIdentity(b"id", 0)])
        self.assertRejected(_ch_body(psk, TLS13_VERSIONS), IllegalParameterError)

    def test_extension_of_another_message(self) -> None:
        # oid_filters belongs to CertificateRequest only (RFC 8446 §4.2).
        self.assertRejected(
            _ch_body(_ext(E.oid_filters, _h("0000"))), IllegalParameterError
        )

    def test_unknown_extensions_are_kept(self) -> None:
        body = _ch_body(_ext(0x0A0A), TLS13_VERSIONS, _ext(0xFE0D, b"ech"))
        hello = ClientHello.parse(body)
        self.assertEqual(hello.other_extensions, [(0x0A0A, b""), (0xFE0D, b"ech")])
        self.assertEqual(hello.extension_order, [0x0A0A, 0x002B, 0xFE0D])
        self.assertEqual(hello.serialize(), body)

    def test_server_name(self) -> None:
        def sni(entries: bytes) -> bytes:
            return _ch_body(_ext(E.server_name, _vec(2, entries)))

        self.assertEqual(
            ClientHello.parse(sni(_h("00") + _vec(2, b"example.com"))).server_name,
            "example.com",
        )
        # host_name<1..2^16-1>; list<1..2^16-1>
        self.assertRejected(sni(_h("00") + _vec(2, b"")), DecodeError)
        self.assertRejected(_ch_body(_ext(E.server_name, _h("0000"))), DecodeError)
        # RFC 6066 §3: one name per type; no other type exists.
        two = _h("00") + _vec(2, b"a.example") + _h("00") + _vec(2, b"b.example")
        self.assertRejected(sni(two), DecodeError)
        self.assertRejected(sni(_h("01") + _vec(2, b"example.com")), DecodeError)
        # Not ASCII, or with a control character or space.
        self.assertRejected(
            sni(_h("00") + _vec(2, "bü.de".encode())), IllegalParameterError
        )
        self.assertRejected(sni(_h("00") + _vec(2, b"a\x00b")), IllegalParameterError)
        self.assertRejected(sni(_h("00") + _vec(2, b"a b")), IllegalParameterError)
        # Longer than any host name (RFC 1035 §2.3.4).
        self.assertRejected(sni(_h("00") + _vec(2, b"a" * 256)), IllegalParameterError)
        # RFC 6066 §3 wants LDH labels / A-labels without a trailing dot from
        # clients; as OpenSSL and BoringSSL, a server takes any printable
        # ASCII name as it came (it then selects no certificate by name).
        for good in (
            "xn--bcher-kva.example",
            "EXAMPLE.com",
            "ab--cd.example",
            "a" * 63 + ".example",
            "127.0.0.1",  # forbidden by RFC 6066 but tolerated
            "::1",
            "example.com.",
            "a_b.example",
            "a..b",
            "*.example.com",
            "xn--zz.example",
            "[::1]",
            ".".join(["a" * 63] * 4),  # 255 characters
        ):
            hello = ClientHello.parse(sni(_h("00") + _vec(2, good.encode())))
            self.assertEqual(hello.server_name, good)

    @given(st.binary(min_size=1, max_size=300))
    @settings(max_examples=300, deadline=None)
    def test_server_name_arbitrary_bytes(self, host: bytes) -> None:
        """Any host_name is a host name, or decode_error / illegal_parameter."""
        body = _ch_body(_ext(E.server_name, _vec(2, _h("00") + _vec(2, host))))
        try:
            hello = ClientHello.parse(body)
        except (DecodeError, IllegalParameterError):
            return
        assert hello.server_name is not None
        self.assertEqual(hello.server_name.encode("ascii"), host)

    def test_alpn(self) -> None:
        def alpn(names: bytes) -> bytes:
            return _ch_body(
                _ext(E.application_layer_protocol_negotiation, _vec(2, names))
            )

        hello = ClientHello.parse(alpn(_vec(1, b"h2") + _vec(1, b"http/1.1")))
        self.assertEqual(hello.alpn_protocols, [b"h2", b"http/1.1"])
        # ProtocolName<1..2^8-1>, protocol_name_list<2..2^16-1>
        self.assertRejected(alpn(_vec(1, b"")), DecodeError)
        self.assertRejected(alpn(b""), DecodeError)
        self.assertRejected(alpn(_h("05") + b"h2"), DecodeError)

    def test_key_share(self) -> None:
        def shares(entries: bytes) -> bytes:
            return _ch_body(_ext(E.key_share, _vec(2, entries)))

        self.assertEqual(ClientHello.parse(shares(b"")).key_share, [])
        # key_exchange<1..2^16-1>
        self.assertRejected(shares(_h("001d") + _vec(2, b"")), DecodeError)
        # RFC 8446 §4.2.8: one share per group.
        twice = _h("001d") + _vec(2, b"a") + _h("001d") + _vec(2, b"b")
        self.assertRejected(shares(twice), IllegalParameterError)

    def test_supported_versions_bounds(self) -> None:
        # ProtocolVersion versions<2..254>
        self.assertRejected(_ch_body(_ext(E.supported_versions, _h("00"))), DecodeError)
        self.assertRejected(
            _ch_body(_ext(E.supported_versions, _h("03 0304 03"))), DecodeError
        )
        body = _ch_body(_ext(E.supported_versions, _h("04 0304 0303")))
        self.assertEqual(ClientHello.parse(body).supported_versions, [0x0304, 0x0303])

    def test_supported_groups_and_signature_algorithms_bounds(self) -> None:
        for ext_type in (
            E.supported_groups,
            E.signature_algorithms,
            E.signature_algorithms_cert,
        ):
            self.assertRejected(_ch_body(_ext(ext_type, _h("0000"))), DecodeError)
            self.assertRejected(_ch_body(_ext(ext_type, _h("0001 00"))), DecodeError)
            self.assertRejected(
                _ch_body(_ext(ext_type, _h("0002 0017 00"))), DecodeError
            )

    def test_record_size_limit(self) -> None:
        # RFC 8449 §4: below 64 is an illegal_parameter.
        body = _ch_body(_ext(E.record_size_limit, _h("0040")))
        self.assertEqual(ClientHello.parse(body).record_size_limit, 64)
        self.assertRejected(
            _ch_body(_ext(E.record_size_limit, _h("003f"))), IllegalParameterError
        )
        self.assertRejected(_ch_body(_ext(E.record_size_limit, _h("00"))), DecodeError)

    def test_record_size_limit_in_server_hello(self) -> None:
        """RFC 8449 §4: a TLS 1.2 ServerHello answers; a TLS 1.3 one may not
        (EncryptedExtensions does)."""
        limit = _ext(E.record_size_limit, _h("0200"))
        self.assertEqual(ServerHello.parse(_sh_body(limit)).record_size_limit, 512)
        self.assertRaises(
            IllegalParameterError, ServerHello.parse, _sh_body(TLS13_VERSION, limit)
        )
        self.assertRaises(
            IllegalParameterError,
            ServerHello.parse,
            _sh_body(_ext(E.record_size_limit, _h("003f"))),
        )

    def test_pre_shared_key_bounds(self) -> None:
        def psk(identities: bytes, binders: bytes) -> bytes:
            return _ch_body(
                _ext(E.pre_shared_key, _vec(2, identities) + _vec(2, binders))
            )

        identity = _vec(2, b"ticket") + _h("00000001")
        binder = _vec(1, bytes(32))
        # RFC 8446 §4.2.11: as many binders as identities.
        self.assertRejected(psk(identity + identity, binder), IllegalParameterError)
        # PskBinderEntry<32..255>, identities<7..2^16-1>, identity<1..2^16-1>
        self.assertRejected(psk(identity, _vec(1, bytes(31))), DecodeError)
        self.assertRejected(psk(b"", binder), DecodeError)
        self.assertRejected(
            psk(_vec(2, b"") + _h("00000001 0000"), binder), DecodeError
        )

    def test_flag_extensions_must_be_empty(self) -> None:
        for ext_type in (
            E.early_data,
            E.post_handshake_auth,
            E.extended_master_secret,
            E.next_protocol_negotiation,
        ):
            hello = ClientHello.parse(_ch_body(_ext(ext_type)))
            self.assertEqual(hello.extension_order, [ext_type])
            self.assertRejected(_ch_body(_ext(ext_type, b"\x00")), DecodeError)

    def test_small_vectors(self) -> None:
        # cookie<1..2^16-1>, ke_modes<1..255>, ec_point_format_list<1..2^8-1>
        self.assertRejected(_ch_body(_ext(E.cookie, _h("0000"))), DecodeError)
        self.assertRejected(
            _ch_body(_ext(E.psk_key_exchange_modes, _h("00"))), DecodeError
        )
        self.assertRejected(_ch_body(_ext(E.ec_point_formats, _h("00"))), DecodeError)
        body = _ch_body(_ext(E.psk_key_exchange_modes, _h("02 00 01")))
        self.assertEqual(ClientHello.parse(body).psk_key_exchange_modes, [0, 1])


class ServerHelloRejectionTests(SynchronousTestCase):
    def test_tls13_server_hello_takes_only_its_extensions(self) -> None:
        # RFC 8446 §4.2: ALPN and friends go in EncryptedExtensions in 1.3.
        alpn = _ext(E.application_layer_protocol_negotiation, _h("0003 02") + b"h2")
        self.assertRaises(
            IllegalParameterError, ServerHello.parse, _sh_body(TLS13_VERSION, alpn)
        )
        ems = _ext(E.extended_master_secret)
        self.assertRaises(
            IllegalParameterError, ServerHello.parse, _sh_body(TLS13_VERSION, ems)
        )

    def test_cookie_only_in_hello_retry_request(self) -> None:
        cookie = _ext(E.cookie, _vec(2, b"c"))
        self.assertRaises(
            IllegalParameterError, ServerHello.parse, _sh_body(TLS13_VERSION, cookie)
        )
        retry = ServerHello.parse(
            _sh_body(TLS13_VERSION, cookie, random=HELLO_RETRY_REQUEST_RANDOM)
        )
        self.assertEqual(retry.cookie, b"c")

    def test_hello_retry_request_takes_only_its_extensions(self) -> None:
        psk = _ext(E.pre_shared_key, _h("0000"))
        body = _sh_body(TLS13_VERSION, psk, random=HELLO_RETRY_REQUEST_RANDOM)
        self.assertRaises(IllegalParameterError, ServerHello.parse, body)

    def test_tls12_server_hello_rejects_tls13_extensions(self) -> None:
        share = _ext(E.key_share, _h("001d 0001 00"))
        self.assertRaises(IllegalParameterError, ServerHello.parse, _sh_body(share))

    def test_client_only_extension(self) -> None:
        modes = _ext(E.psk_key_exchange_modes, _h("01 01"))
        self.assertRaises(IllegalParameterError, ServerHello.parse, _sh_body(modes))

    def test_key_share_shape_depends_on_hello_retry_request(self) -> None:
        entry = _ext(E.key_share, _h("0017 0001 04"))
        group = _ext(E.key_share, _h("0017"))
        hrr = HELLO_RETRY_REQUEST_RANDOM
        self.assertRaises(
            DecodeError, ServerHello.parse, _sh_body(TLS13_VERSION, entry, random=hrr)
        )
        self.assertRaises(
            DecodeError, ServerHello.parse, _sh_body(TLS13_VERSION, group)
        )
        self.assertEqual(
            ServerHello.parse(_sh_body(group, random=hrr)).selected_group, 0x17
        )

    def test_alpn_must_name_one_protocol(self) -> None:
        # RFC 7301 §3.1: exactly one ProtocolName in the server's reply.
        two = _ext(
            E.application_layer_protocol_negotiation,
            _h("0006 02") + b"h2" + _h("02") + b"h3",
        )
        self.assertRaises(DecodeError, ServerHello.parse, _sh_body(two))

    def test_next_protocol_negotiation_names(self) -> None:
        empty_name = _ext(E.next_protocol_negotiation, _h("00"))
        self.assertRaises(DecodeError, ServerHello.parse, _sh_body(empty_name))
        self.assertEqual(
            ServerHello.parse(
                _sh_body(_ext(E.next_protocol_negotiation))
            ).next_protocol_negotiation,
            [],
        )

    def test_session_ticket_must_be_empty(self) -> None:
        self.assertRaises(
            DecodeError, ServerHello.parse, _sh_body(_ext(E.session_ticket, b"x"))
        )

    def test_session_id_echo_bounds(self) -> None:
        body = _h("0303") + bytes(32) + _vec(1, bytes(33)) + _h("1301 00")
        self.assertRaises(DecodeError, ServerHello.parse, body)

    def test_truncated(self) -> None:
        body = _sh_body(TLS13_VERSION)
        for end in range(len(body)):
            if end == 38:  # a TLS 1.2 ServerHello may end after compression
                continue
            self.assertRaises(DecodeError, ServerHello.parse, body[:end])


class OtherMessageRejectionTests(SynchronousTestCase):
    def test_encrypted_extensions(self) -> None:
        for ext in (
            _ext(E.supported_versions, _h("0304")),
            _ext(E.key_share, _h("001d 0001 00")),
            _ext(E.status_request, b""),
            _ext(E.pre_shared_key, _h("0000")),
        ):
            self.assertRaises(
                IllegalParameterError, EncryptedExtensions.parse, _block(ext)
            )
        self.assertRaises(
            DecodeError, EncryptedExtensions.parse, _block(_ext(E.server_name, b"x"))
        )
        self.assertRaises(DecodeError, EncryptedExtensions.parse, _block() + b"x")
        self.assertRaises(DecodeError, EncryptedExtensions.parse, b"")
        dup = _ext(E.early_data)
        self.assertRaises(
            IllegalParameterError, EncryptedExtensions.parse, _block(dup, dup)
        )
        # Allowed in EE but not interpreted here: kept for the state machine.
        kept = EncryptedExtensions.parse(_block(_ext(E.max_fragment_length, b"\x02")))
        self.assertEqual(kept.other_extensions, [(E.max_fragment_length, b"\x02")])

    def test_certificate_request(self) -> None:
        sigalgs = _ext(E.signature_algorithms, _h("0002 0804"))
        with self.assertRaises(MissingExtensionError) as caught:
            CertificateRequest.parse(
                _h("00")
                + _block(_ext(E.certificate_authorities, _vec(2, _vec(2, b"CN=x"))))
            )
        self.assertEqual(caught.exception.alert, AlertDescription.missing_extension)
        # extensions<2..2^16-1>
        self.assertRaises(DecodeError, CertificateRequest.parse, _h("00 0000"))
        self.assertRaises(
            IllegalParameterError,
            CertificateRequest.parse,
            _h("00") + _block(sigalgs, _ext(E.key_share, b"")),
        )
        request = CertificateRequest.parse(
            _h("02 abcd")
            + _block(
                sigalgs,
                _ext(E.oid_filters, _h("0000")),
                _ext(E.certificate_authorities, _vec(2, _vec(2, b"CN=x"))),
            )
        )
        self.assertEqual(request.certificate_request_context, _h("abcd"))
        self.assertEqual(request.other_extensions, [(E.oid_filters, _h("0000"))])
        self.assertEqual(request.certificate_authorities, [b"CN=x"])
        # DistinguishedName<1..2^16-1>, authorities<3..2^16-1>
        empty_name = _ext(E.certificate_authorities, _vec(2, _vec(2, b"")))
        self.assertRaises(
            DecodeError,
            CertificateRequest.parse,
            _h("00") + _block(sigalgs, empty_name),
        )

    def test_certificate(self) -> None:
        def cert(entry: bytes) -> bytes:
            return _h("00") + _vec(3, entry)

        ocsp = (E.status_request, _h("01 000001 00"))
        certificate = Certificate.parse(cert(_vec(3, b"der") + _block(_ext(*ocsp))))
        self.assertEqual(certificate.entries, [CertificateEntry(b"der", [ocsp])])
        # cert_data<1..2^24-1>
        self.assertRaises(DecodeError, Certificate.parse, cert(_vec(3, b"") + _block()))
        # Only status_request and signed_certificate_timestamp belong here.
        self.assertRaises(
            IllegalParameterError,
            Certificate.parse,
            cert(_vec(3, b"der") + _block(_ext(E.key_share))),
        )
        dup = _ext(*ocsp)
        self.assertRaises(
            IllegalParameterError,
            Certificate.parse,
            cert(_vec(3, b"der") + _block(dup, dup)),
        )
        self.assertRaises(DecodeError, Certificate.parse, cert(_vec(3, b"der")))

    def test_new_session_ticket(self) -> None:
        head = _h("00000001 00000002 00")
        # ticket<1..2^16-1>
        self.assertRaises(
            DecodeError, NewSessionTicket.parse, head + _h("0000") + _block()
        )
        self.assertRaises(
            IllegalParameterError,
            NewSessionTicket.parse,
            head + _vec(2, b"t") + _block(_ext(E.key_share)),
        )
        self.assertRaises(
            DecodeError,
            NewSessionTicket.parse,
            head + _vec(2, b"t") + _block(_ext(E.early_data, b"\x00")),
        )
        # extensions<0..2^16-2>
        ticket = NewSessionTicket.parse(
            head + _vec(2, b"t") + _block(_ext(0x7777, b"x"))
        )
        self.assertEqual(ticket.other_extensions, [(0x7777, b"x")])
        self.assertIsNone(ticket.max_early_data_size)

    def test_key_update(self) -> None:
        self.assertEqual(KeyUpdate.parse(b"\x00").request_update, 0)
        self.assertEqual(KeyUpdate.parse(b"\x01").request_update, 1)
        with self.assertRaises(IllegalParameterError) as caught:
            KeyUpdate.parse(b"\x02")
        self.assertEqual(caught.exception.alert, AlertDescription.illegal_parameter)
        self.assertRaises(DecodeError, KeyUpdate.parse, b"")
        self.assertRaises(DecodeError, KeyUpdate.parse, b"\x01\x00")

    def test_empty_messages_must_be_empty(self) -> None:
        for cls in (EndOfEarlyData, ServerHelloDone12, HelloRequest):
            self.assertRaises(DecodeError, cls.parse, b"\x00")

    def test_certificate_verify(self) -> None:
        self.assertRaises(DecodeError, CertificateVerify.parse, _h("0804 0002 00"))
        self.assertRaises(DecodeError, CertificateVerify.parse, _h("08"))

    def test_tls12_messages(self) -> None:
        # RFC 8422 §5.4: only named curves.
        self.assertRaises(
            IllegalParameterError,
            ServerKeyExchange12.parse,
            _h("01 001d 01 00 0401 0000"),
        )
        self.assertRaises(
            DecodeError, ServerKeyExchange12.parse, _h("03 001d 00 0401 0000")
        )
        self.assertRaises(DecodeError, ClientKeyExchange12.parse, _h("00"))
        self.assertRaises(DecodeError, Certificate12.parse, _vec(3, _vec(3, b"")))
        self.assertRaises(
            DecodeError, CertificateRequest12.parse, _h("00 0002 0401 0000")
        )
        self.assertRaises(
            DecodeError, CertificateRequest12.parse, _h("01 40 0003 040100 0000")
        )
        self.assertRaises(
            DecodeError, NextProtocol.parse, _h("02") + b"h2" + _h("02 0001")
        )
        self.assertRaises(DecodeError, NewSessionTicket12.parse, _h("000000"))


class SerializationTests(SynchronousTestCase):
    def _full_hello(self, **changes: Any) -> ClientHello:
        hello = ClientHello(
            random=bytes(range(32)),
            legacy_session_id=bytes(32),
            cipher_suites=[0x1301, 0x1302],
            server_name="example.com",
            supported_versions=[0x0304, 0x0303],
            supported_groups=[0x11EC, 0x001D],
            signature_algorithms=[0x0403, 0x0804],
            signature_algorithms_cert=[0x0403],
            key_share=[KeyShareEntry(0x001D, bytes(32))],
            cookie=b"cookie",
            alpn_protocols=[b"h2", b"http/1.1"],
            record_size_limit=0x4001,
            psk_key_exchange_modes=[1],
            pre_shared_key=OfferedPsks([PskIdentity(b"id", 7)], [bytes(32)]),
            early_data=True,
            post_handshake_auth=True,
            extended_master_secret=True,
            renegotiation_info=b"",
            session_ticket=b"",
            next_protocol_negotiation=True,
            ec_point_formats=b"\x00",
            other_extensions=[(E.padding, bytes(10)), (0x0A0A, b"")],
        )
        return dataclasses.replace(hello, **changes)

    def test_canonical_order(self) -> None:
        hello = self._full_hello()
        parsed = ClientHello.parse(hello.serialize())
        self.assertEqual(
            parsed.extension_order,
            [
                E.server_name, E.extended_master_secret, E.renegotiation_info,
                E.supported_groups, E.ec_point_formats, E.session_ticket,
                E.next_protocol_negotiation, E.application_layer_protocol_negotiation,
                E.key_share, E.early_data, E.supported_versions, E.signature_algorithms,
                E.signature_algorithms_cert, E.cookie, E.psk_key_exchange_modes,
                E.post_handshake_auth, E.record_size_limit, E.padding, 0x0A0A,
                E.pre_shared_key,
            ],
        )  # fmt: skip
        parsed.extension_order = []
        self.assertEqual(parsed, hello)

    def test_binders_length_is_the_tail(self) -> None:
        hello = self._full_hello(
            pre_shared_key=OfferedPsks(
                [PskIdentity(b"a", 1), PskIdentity(b"b", 2)], [bytes(32), bytes(48)]
            )
        )
        raw = encode_handshake(hello)
        length = hello.binders_length()
        self.assertEqual(length, 2 + 33 + 49)
        self.assertEqual(
            raw[-length:], _h("0052") + _vec(1, bytes(32)) + _vec(1, bytes(48))
        )

    def test_pre_shared_key_stays_last(self) -> None:
        hello = self._full_hello()
        hello.extension_order = [E.pre_shared_key, E.server_name]
        parsed = ClientHello.parse(hello.serialize())
        self.assertEqual(parsed.extension_order[0], E.server_name)
        self.assertEqual(parsed.extension_order[-1], E.pre_shared_key)

    def test_added_extension_follows_received_order(self) -> None:
        hello = ClientHello.parse(_body(CH_RESUMED))
        retry = dataclasses.replace(hello, cookie=b"c")
        order = ClientHello.parse(retry.serialize()).extension_order
        self.assertEqual(order[:-1], [*hello.extension_order[:-1], E.cookie])
        self.assertEqual(order[-1], E.pre_shared_key)
        # Dropped extensions simply disappear from the replayed order.
        plain = dataclasses.replace(hello, pre_shared_key=None, early_data=False)
        order = ClientHello.parse(plain.serialize()).extension_order
        self.assertNotIn(E.pre_shared_key, order)
        self.assertNotIn(E.early_data, order)

    def test_hello_retry_request_built_in_code(self) -> None:
        retry = ServerHello(
            random=HELLO_RETRY_REQUEST_RANDOM,
            cipher_suite=0x1301,
            supported_versions=0x0304,
            selected_group=NamedGroup.secp256r1,
        )
        body = retry.serialize()
        self.assertEqual(body[-12:], _h("0033 0002 0017 002b 0002 0304"))
        self.assertEqual(ServerHello.parse(body).selected_group, 0x17)

    def test_local_errors_are_internal(self) -> None:
        cases = [
            ClientHello(random=bytes(31), cipher_suites=[0x1301]),
            ClientHello(random=bytes(32), cipher_suites=[]),
            ClientHello(random=bytes(32), cipher_suites=[0x10000]),
            ClientHello(
                random=bytes(32), legacy_session_id=bytes(33), cipher_suites=[1]
            ),
            ClientHello(random=bytes(32), cipher_suites=[1], server_name="bü.de"),
            ClientHello(random=bytes(32), cipher_suites=[1], alpn_protocols=[b""]),
            ClientHello(random=bytes(32), cipher_suites=[1], record_size_limit=63),
            ClientHello(
                random=bytes(32), cipher_suites=[1], psk_key_exchange_modes=[256]
            ),
            ClientHello(
                random=bytes(32),
                cipher_suites=[1],
                pre_shared_key=OfferedPsks([PskIdentity(b"i", 0)], [bytes(31)]),
            ),
            ClientHello(
                random=bytes(32),
                cipher_suites=[1],
                server_name="a",
                other_extensions=[(E.server_name, b"")],
            ),
            ServerHello(
                random=HELLO_RETRY_REQUEST_RANDOM,
                cipher_suite=1,
                key_share=KeyShareEntry(1, b"x"),
            ),
            ServerHello(random=bytes(32), cipher_suite=1, selected_group=0x17),
            KeyUpdate(2),
            NextProtocol(bytes(256)),
            Certificate12([b""]),
        ]
        for message in cases:
            with self.assertRaises(InternalError, msg=repr(message)) as caught:
                message.serialize()
            self.assertEqual(caught.exception.alert, AlertDescription.internal_error)

    def test_messages_are_plain_dataclasses(self) -> None:
        entry = KeyShareEntry(group=0x1D, key_exchange=b"k")
        self.assertEqual(entry, KeyShareEntry(0x1D, b"k"))
        self.assertEqual(
            CertificateVerify(algorithm=0x0804, signature=b"s").algorithm, 0x0804
        )
        self.assertEqual(Finished(verify_data=b"v").serialize(), b"v")


# ---------------------------------------------------------------------------
# Strategies for valid messages.

_RECOGNISED = {int(e) for e in ExtensionType}
_u8 = st.integers(0, 0xFF)
_u16 = st.integers(0, 0xFFFF)
_u32 = st.integers(0, 0xFFFFFFFF)
_u16_list = st.lists(_u16, min_size=1, max_size=6)
_names = st.lists(st.binary(min_size=1, max_size=10), min_size=1, max_size=4)
_random = st.binary(min_size=32, max_size=32).filter(
    lambda r: r != HELLO_RETRY_REQUEST_RANDOM
)
# Host names as RFC 6066 §3 wants them: LDH labels (none spelled like an
# IDNA A-label, which would have to decode).
_label = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?", fullmatch=True).filter(
    lambda label: label[2:4] != "--"
)
_host = st.lists(_label, min_size=1, max_size=4).map(".".join)
_limit = st.integers(64, 0xFFFF)
_other = st.lists(
    st.tuples(_u16.filter(lambda t: t not in _RECOGNISED), st.binary(max_size=12)),
    max_size=3,
    unique_by=lambda e: e[0],
)


def _opt(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.none() | strategy


_share = st.builds(KeyShareEntry, _u16, st.binary(min_size=1, max_size=40))
_psks = st.integers(1, 3).flatmap(
    lambda n: st.builds(
        OfferedPsks,
        st.lists(
            st.builds(PskIdentity, st.binary(min_size=1, max_size=20), _u32),
            min_size=n,
            max_size=n,
        ),
        st.lists(st.binary(min_size=32, max_size=48), min_size=n, max_size=n),
    )
)

client_hellos = st.builds(
    ClientHello,
    legacy_version=_u16,
    random=st.binary(min_size=32, max_size=32),
    legacy_session_id=st.binary(max_size=32),
    cipher_suites=st.lists(_u16, min_size=1, max_size=8),
    legacy_compression_methods=st.binary(min_size=1, max_size=3),
    server_name=_opt(_host),
    supported_versions=_opt(_u16_list),
    supported_groups=_opt(_u16_list),
    signature_algorithms=_opt(_u16_list),
    signature_algorithms_cert=_opt(_u16_list),
    key_share=_opt(st.lists(_share, max_size=3, unique_by=lambda e: e.group)),
    cookie=_opt(st.binary(min_size=1, max_size=20)),
    alpn_protocols=_opt(_names),
    record_size_limit=_opt(_limit),
    psk_key_exchange_modes=_opt(st.lists(_u8, min_size=1, max_size=3)),
    pre_shared_key=_opt(_psks),
    early_data=st.booleans(),
    post_handshake_auth=st.booleans(),
    extended_master_secret=st.booleans(),
    renegotiation_info=_opt(st.binary(max_size=24)),
    session_ticket=_opt(st.binary(max_size=24)),
    next_protocol_negotiation=st.booleans(),
    ec_point_formats=_opt(st.binary(min_size=1, max_size=3)),
    other_extensions=_other,
)

_tls13_server_hellos = st.builds(
    ServerHello,
    random=_random,
    legacy_session_id_echo=st.binary(max_size=32),
    cipher_suite=_u16,
    legacy_compression_method=_u8,
    supported_versions=st.just(0x0304),
    key_share=_opt(_share),
    pre_shared_key=_opt(_u16),
    other_extensions=_other,
)
_hello_retry_requests = st.builds(
    ServerHello,
    random=st.just(HELLO_RETRY_REQUEST_RANDOM),
    cipher_suite=_u16,
    supported_versions=_opt(_u16),
    selected_group=_opt(_u16),
    cookie=_opt(st.binary(min_size=1, max_size=30)),
    other_extensions=_other,
)
_tls12_server_hellos = st.builds(
    ServerHello,
    legacy_version=_u16,
    random=_random,
    legacy_session_id_echo=st.binary(max_size=32),
    cipher_suite=_u16,
    supported_versions=_opt(_u16.filter(lambda v: v != 0x0304)),
    extended_master_secret=st.booleans(),
    renegotiation_info=_opt(st.binary(max_size=24)),
    alpn_protocol=_opt(st.binary(min_size=1, max_size=12)),
    next_protocol_negotiation=_opt(
        st.lists(st.binary(min_size=1, max_size=8), max_size=3)
    ),
    session_ticket=st.booleans(),
    ec_point_formats=_opt(st.binary(min_size=1, max_size=3)),
    server_name_ack=st.booleans(),
    record_size_limit=_opt(_limit),
    other_extensions=_other,
)
server_hellos = _tls13_server_hellos | _hello_retry_requests | _tls12_server_hellos

_entry_extensions = st.lists(
    st.tuples(
        st.sampled_from([E.status_request, E.signed_certificate_timestamp, 0x9999]),
        st.binary(max_size=8),
    ),
    max_size=2,
    unique_by=lambda e: e[0],
)
other_messages = st.one_of(
    st.builds(
        EncryptedExtensions,
        server_name_ack=st.booleans(),
        supported_groups=_opt(_u16_list),
        alpn_protocol=_opt(st.binary(min_size=1, max_size=12)),
        record_size_limit=_opt(_limit),
        early_data=st.booleans(),
        other_extensions=_other,
    ),
    st.builds(
        CertificateRequest,
        certificate_request_context=st.binary(max_size=8),
        signature_algorithms=_u16_list,
        signature_algorithms_cert=_opt(_u16_list),
        certificate_authorities=_opt(_names),
        other_extensions=_other,
    ),
    st.builds(
        Certificate,
        st.binary(max_size=8),
        st.lists(
            st.builds(
                CertificateEntry, st.binary(min_size=1, max_size=30), _entry_extensions
            ),
            max_size=3,
        ),
    ),
    st.builds(CertificateVerify, _u16, st.binary(max_size=64)),
    st.builds(Finished, st.binary(max_size=48)),
    st.builds(
        NewSessionTicket,
        ticket_lifetime=_u32,
        ticket_age_add=_u32,
        ticket_nonce=st.binary(max_size=8),
        ticket=st.binary(min_size=1, max_size=40),
        max_early_data_size=_opt(_u32),
        other_extensions=_other,
    ),
    st.builds(KeyUpdate, st.integers(0, 1)),
    st.just(EndOfEarlyData()),
    st.builds(Certificate12, st.lists(st.binary(min_size=1, max_size=30), max_size=3)),
    st.builds(
        ServerKeyExchange12,
        _u16,
        st.binary(min_size=1, max_size=65),
        _u16,
        st.binary(max_size=64),
    ),
    st.just(ServerHelloDone12()),
    st.builds(ClientKeyExchange12, st.binary(min_size=1, max_size=65)),
    st.builds(
        CertificateRequest12,
        st.binary(min_size=1, max_size=4),
        _u16_list,
        st.lists(st.binary(min_size=1, max_size=12), max_size=3),
    ),
    st.builds(NewSessionTicket12, _u32, st.binary(max_size=40)),
    st.builds(NextProtocol, st.binary(max_size=40)),
    st.just(HelloRequest()),
)
any_message = client_hellos | server_hellos | other_messages

ALL_CLASSES = sorted(
    set(TLS13_MESSAGES.values()) | set(TLS12_MESSAGES.values()),
    key=lambda c: c.__name__,
)


class PropertyTests(SynchronousTestCase):
    def assertRoundTrips(self, message: Any) -> None:
        body = message.serialize()
        parsed = type(message).parse(body)
        self.assertEqual(parsed.serialize(), body)
        if hasattr(message, "extension_order"):
            # Built in code: canonical order, which parsing then records.
            self.assertEqual(message.extension_order, [])
            message.extension_order = parsed.extension_order
        self.assertEqual(parsed, message)

    def assertParsesSanely(self, cls: type, body: bytes) -> None:
        """Only TLSError escapes; what parses re-serializes stably."""
        try:
            parsed = cls.parse(body)
        except TLSError:
            return
        again = cls.parse(parsed.serialize())
        self.assertEqual(again, parsed)

    @settings(max_examples=300, deadline=None)
    @given(client_hellos)
    def test_client_hello_round_trip(self, hello: ClientHello) -> None:
        self.assertRoundTrips(hello)
        if hello.pre_shared_key is not None:
            raw = encode_handshake(hello)
            binders = hello.pre_shared_key.binders
            tail = b"".join(_vec(1, b) for b in binders)
            self.assertEqual(raw[-hello.binders_length() :], _vec(2, tail))

    @settings(max_examples=300, deadline=None)
    @given(server_hellos)
    def test_server_hello_round_trip(self, hello: ServerHello) -> None:
        self.assertRoundTrips(hello)

    @settings(max_examples=400, deadline=None)
    @given(other_messages)
    def test_other_messages_round_trip(self, message: Any) -> None:
        self.assertRoundTrips(message)

    @settings(max_examples=600, deadline=None)
    @given(st.sampled_from(ALL_CLASSES), st.binary(max_size=200))
    def test_arbitrary_bytes(self, cls: type, body: bytes) -> None:
        self.assertParsesSanely(cls, body)

    @settings(max_examples=400, deadline=None)
    @given(
        st.sampled_from(ALL_CLASSES),
        st.lists(st.tuples(_u16, st.binary(max_size=20)), max_size=6),
        st.binary(max_size=40),
    )
    def test_arbitrary_extension_blocks(
        self, cls: type, extensions: list[tuple[int, bytes]], prefix: bytes
    ) -> None:
        # Random extension blocks (mostly recognised types, bodies of any
        # shape) behind a plausible fixed part: reaches the extension codecs
        # far more often than uniform random bytes.
        types = sorted(_RECOGNISED)
        block = _block(*(_ext(types[t % len(types)], data) for t, data in extensions))
        for body in (
            _ch_body()[:-2] + block,
            _sh_body()[:-2] + block,
            _sh_body(random=HELLO_RETRY_REQUEST_RANDOM)[:-2] + block,
            block,
            prefix + block,
        ):
            self.assertParsesSanely(cls, body)

    @settings(max_examples=500, deadline=None)
    @given(
        st.one_of(
            st.sampled_from(VECTORS).map(lambda v: (v[0], _body(v[1]))),
            any_message.map(lambda m: (type(m), m.serialize())),
        ),
        st.lists(
            st.tuples(st.sampled_from("xidt"), st.integers(0, 2**16), _u8),
            min_size=1,
            max_size=4,
        ),
    )
    def test_mutations(
        self, valid: tuple[type, bytes], edits: list[tuple[str, int, int]]
    ) -> None:
        cls, body = valid
        data = bytearray(body)
        for op, position, value in edits:
            at = position % (len(data) + 1)
            if op == "x" and at < len(data):
                data[at] ^= value or 1  # flip bits
            elif op == "i":
                data.insert(at, value)
            elif op == "d" and at < len(data):
                del data[at]
            elif op == "t":
                del data[at:]
        self.assertParsesSanely(cls, bytes(data))

    def test_every_truncation_of_every_vector(self) -> None:
        for cls, message in VECTORS:
            body = _body(message)
            for end in range(len(body)):
                self.assertParsesSanely(cls, body[:end])


# ---------------------------------------------------------------------------
# Reassembly.


def _message(msg_type: int, body: bytes) -> bytes:
    return bytes((msg_type,)) + len(body).to_bytes(3, "big") + body


class ReassemblerTests(SynchronousTestCase):
    def _drain(
        self, reassembler: HandshakeReassembler
    ) -> list[tuple[int, bytes, bytes]]:
        out = []
        while (item := reassembler.pop()) is not None:
            out.append(item)
        return out

    def test_empty(self) -> None:
        reassembler = HandshakeReassembler(100)
        self.assertIsNone(reassembler.pop())
        self.assertFalse(reassembler.has_partial)
        self.assertFalse(reassembler.has_pending)
        reassembler.feed(b"")
        self.assertIsNone(reassembler.pop())

    def test_one_message(self) -> None:
        reassembler = HandshakeReassembler(100)
        reassembler.feed(_message(20, b"verify"))
        self.assertTrue(reassembler.has_pending)
        self.assertFalse(reassembler.has_partial)
        self.assertEqual(reassembler.pop(), (20, _message(20, b"verify"), b"verify"))
        self.assertIsNone(reassembler.pop())
        self.assertFalse(reassembler.has_pending)

    def test_results_are_bytes(self) -> None:
        reassembler = HandshakeReassembler(100)
        reassembler.feed(memoryview(bytearray(_message(20, b"v"))))
        msg_type, raw, body = reassembler.pop()
        self.assertIs(type(raw), bytes)
        self.assertIs(type(body), bytes)
        self.assertIs(type(msg_type), int)

    def test_byte_by_byte(self) -> None:
        reassembler = HandshakeReassembler(100)
        raw = _message(11, b"certificate")
        for i, byte in enumerate(raw):
            self.assertIsNone(reassembler.pop())
            self.assertEqual(reassembler.has_partial, i > 0)
            reassembler.feed(bytes((byte,)))
        self.assertFalse(reassembler.has_partial)
        self.assertEqual(reassembler.pop(), (11, raw, b"certificate"))

    def test_empty_bodies(self) -> None:
        reassembler = HandshakeReassembler(0)
        reassembler.feed(_message(14, b"") + _message(5, b"")[:2])
        self.assertEqual(reassembler.pop(), (14, _h("0e000000"), b""))
        self.assertTrue(reassembler.has_partial)
        reassembler.feed(_message(5, b"")[2:])
        self.assertEqual(reassembler.pop(), (5, _h("05000000"), b""))
        self.assertFalse(reassembler.has_partial)

    def test_coalesced_and_split(self) -> None:
        stream = _message(8, b"ee") + _message(11, bytes(50)) + _message(20, b"fin")
        reassembler = HandshakeReassembler(100)
        reassembler.feed(stream[:10])
        self.assertEqual([m[0] for m in self._drain(reassembler)], [8])
        self.assertTrue(reassembler.has_partial)
        reassembler.feed(stream[10:60])
        self.assertEqual([m[0] for m in self._drain(reassembler)], [11])
        reassembler.feed(stream[60:])
        self.assertEqual([m[0] for m in self._drain(reassembler)], [20])
        self.assertFalse(reassembler.has_partial)

    def test_maximum_size_is_allowed(self) -> None:
        reassembler = HandshakeReassembler(10)
        reassembler.feed(_message(1, bytes(10)))
        self.assertEqual(reassembler.pop()[2], bytes(10))

    def test_oversized_declaration_fails_on_the_header(self) -> None:
        # The limit bites as soon as the length is known, before any body.
        reassembler = HandshakeReassembler(10)
        with self.assertRaises(LimitExceededError) as caught:
            reassembler.feed(_h("01 00000b"))
        self.assertEqual(caught.exception.alert, AlertDescription.illegal_parameter)

    def test_oversized_declaration_split_header(self) -> None:
        reassembler = HandshakeReassembler(2**14)
        reassembler.feed(_h("0b"))
        reassembler.feed(_h("ff"))
        reassembler.feed(_h("ff"))
        self.assertRaises(LimitExceededError, reassembler.feed, _h("ff"))

    def test_limit_per_message_type(self) -> None:
        """A type listed in ``limits`` has its own bound, larger or smaller;
        the others keep ``max_message_size``."""
        reassembler = HandshakeReassembler(10, {11: 50, 20: 4})
        reassembler.feed(_message(11, bytes(50)) + _message(1, bytes(10)))
        self.assertEqual([m[0] for m in self._drain(reassembler)], [11, 1])
        for header, name, length, limit in (
            ("0b 000033", "certificate", 51, 50),
            ("01 00000b", "client_hello", 11, 10),
            ("14 000005", "finished", 5, 4),
        ):
            with self.assertRaises(LimitExceededError) as caught:
                HandshakeReassembler(10, {11: 50, 20: 4}).feed(_h(header))
            self.assertEqual(caught.exception.alert, AlertDescription.illegal_parameter)
            self.assertIn(
                f"{name} of {length} bytes exceeds the limit of {limit}",
                str(caught.exception),
            )

    def test_oversized_after_complete_messages(self) -> None:
        reassembler = HandshakeReassembler(10)
        self.assertRaises(
            LimitExceededError, reassembler.feed, _message(20, b"ok") + _h("0b 000100")
        )

    @settings(max_examples=300, deadline=None)
    @given(
        st.lists(st.tuples(_u8, st.binary(max_size=300)), max_size=8),
        st.lists(st.integers(0, 3000), max_size=12),
    )
    def test_arbitrary_fragmentation(
        self, items: list[tuple[int, bytes]], cuts: list[int]
    ) -> None:
        raws = [_message(t, body) for t, body in items]
        stream = b"".join(raws)
        boundaries = {0}
        offset = 0
        for raw in raws:
            offset += len(raw)
            boundaries.add(offset)
        points = sorted({c % (len(stream) + 1) for c in cuts} | {0, len(stream)})
        reassembler = HandshakeReassembler(300)
        out = []
        for start, end in itertools.pairwise(points):
            reassembler.feed(stream[start:end])
            out.extend(self._drain(reassembler))
            self.assertEqual(reassembler.has_partial, end not in boundaries)
        self.assertEqual(
            out, [(t, raw, body) for (t, body), raw in zip(items, raws, strict=True)]
        )
        self.assertFalse(reassembler.has_partial)

    @settings(max_examples=300, deadline=None)
    @given(
        st.integers(0, 2000),
        st.integers(1, 5000),
        st.lists(st.integers(1, 64), min_size=1, max_size=20),
    )
    def test_limit_enforced_before_the_body(
        self, limit: int, excess: int, piece_sizes: list[int]
    ) -> None:
        declared = limit + excess
        stream = _h("01") + declared.to_bytes(3, "big") + bytes(min(declared, 4000))
        reassembler = HandshakeReassembler(limit)
        fed = 0
        for size in piece_sizes * 100:
            piece = stream[fed : fed + size]
            if fed + len(piece) >= 4:
                # This piece completes the header: it must be refused now,
                # whatever body bytes ride along.
                self.assertRaises(LimitExceededError, reassembler.feed, piece)
                return
            reassembler.feed(piece)
            fed += len(piece)
        self.fail("the header was never completed")


class KeptEncodingTests(SynchronousTestCase):
    """Configuration-derived extension values are encoded once and kept."""

    def hello(self, **fields: Any) -> ClientHello:
        base: dict[str, Any] = {
            "random": bytes(32),
            "cipher_suites": [0x1301],
            "supported_versions": [0x0304, 0x0303],
            "supported_groups": [0x001D, 0x0017],
            "signature_algorithms": [0x0403, 0x0804],
            "alpn_protocols": [b"h2", b"http/1.1"],
            "psk_key_exchange_modes": [1],
        }
        base.update(fields)
        return ClientHello(**base)

    def test_same_bytes_as_a_fresh_encoding(self) -> None:
        """A kept encoding is the one the codec makes; a changed value (the
        list changed in place included) is encoded anew."""
        from twisted_sslfile.engine import extensions

        extensions._ENCODED.clear()
        hello = self.hello()
        first = hello.serialize()
        self.assertTrue(extensions._ENCODED)
        self.assertEqual(hello.serialize(), first)
        extensions._ENCODED.clear()
        self.assertEqual(hello.serialize(), first)
        assert hello.supported_groups is not None
        hello.supported_groups.append(0x0018)
        changed = hello.serialize()
        self.assertNotEqual(changed, first)
        self.assertEqual(ClientHello.parse(changed).supported_groups, [29, 23, 24])

    def test_connection_values_never_kept(self) -> None:
        """Key shares, PSKs and cookies differ per connection: not kept."""
        from twisted_sslfile.constants import ExtensionType as E
        from twisted_sslfile.engine import extensions

        table = extensions._CLIENT_HELLO_EXTENSIONS
        for ext_type in (E.key_share, E.pre_shared_key, E.cookie, E.session_ticket):
            self.assertFalse(table[ext_type].kept, ext_type)
        self.assertTrue(table[E.supported_groups].kept)

    def test_bounded(self) -> None:
        """However many distinct values, the table stays bounded."""
        from twisted_sslfile.engine import extensions

        for i in range(1000):
            self.hello(alpn_protocols=[b"p%d" % i]).serialize()
        self.assertLessEqual(len(extensions._ENCODED), extensions._MAX_ENCODED)
