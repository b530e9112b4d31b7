"""Registries of the TLS protocol, one enum each.

Every number the engine puts on the wire or reads from it is named here, so
that a log line or an error says ``AlertDescription.bad_record_mac`` rather
than ``20``. The values come from the IANA TLS registries; each enum cites
the RFC that defines it.
"""

from __future__ import annotations

import enum


class StateEnum(enum.Enum):
    """Base of the state and phase enums of the engine and the adapters.

    Members are singletons compared by identity, so ``object.__hash__`` is
    exact; ``enum.Enum``'s own ``__hash__`` is Python code that hashes the
    member's name, and the state machines and lifecycles look their state
    up in tables and sets on every record and event.
    """

    __hash__ = object.__hash__


class ProtocolVersion(enum.IntEnum):
    """Protocol versions (RFC 8446 §4.2.1, RFC 5246 appendix E).

    SSL 3.0, TLS 1.0 and TLS 1.1 are named because Pike's API names them and
    old configurations mention them; the engine refuses them.  The
    ``PROTOCOL_*`` aliases are Pike's spellings of the same values.
    """

    SSL_3_0 = 0x0300
    TLS_1_0 = 0x0301
    TLS_1_1 = 0x0302
    TLS_1_2 = 0x0303
    TLS_1_3 = 0x0304

    PROTOCOL_SSL_3_0 = 0x0300
    PROTOCOL_TLS_1_0 = 0x0301
    PROTOCOL_TLS_1_1 = 0x0302
    PROTOCOL_TLS_1_2 = 0x0303
    PROTOCOL_TLS_1_3 = 0x0304
    PROTOCOL_TLS_MAX = 0x0304


#: The versions this library speaks, lowest first.
SUPPORTED_VERSIONS: tuple[ProtocolVersion, ...] = (
    ProtocolVersion.TLS_1_2,
    ProtocolVersion.TLS_1_3,
)


class ContentType(enum.IntEnum):
    """Record content types (RFC 8446 §5.1)."""

    change_cipher_spec = 20
    alert = 21
    handshake = 22
    application_data = 23


class HandshakeType(enum.IntEnum):
    """Handshake message types (RFC 8446 §4, RFC 5246 §7.4, NPN draft)."""

    hello_request = 0
    client_hello = 1
    server_hello = 2
    new_session_ticket = 4
    end_of_early_data = 5
    encrypted_extensions = 8
    certificate = 11
    server_key_exchange = 12
    certificate_request = 13
    server_hello_done = 14
    certificate_verify = 15
    client_key_exchange = 16
    finished = 20
    key_update = 24
    # draft-agl-tls-nextprotoneg-04 §3
    next_protocol = 67
    # RFC 8446 §4.4.1: stands in for ClientHello1 in the transcript after a
    # HelloRetryRequest; never sent on the wire.
    message_hash = 254


class AlertLevel(enum.IntEnum):
    """Alert levels (RFC 8446 §6)."""

    warning = 1
    fatal = 2


class AlertDescription(enum.IntEnum):
    """Alert descriptions (RFC 8446 §6, RFC 5246 §7.2)."""

    close_notify = 0
    unexpected_message = 10
    bad_record_mac = 20
    record_overflow = 22
    handshake_failure = 40
    bad_certificate = 42
    unsupported_certificate = 43
    certificate_revoked = 44
    certificate_expired = 45
    certificate_unknown = 46
    illegal_parameter = 47
    unknown_ca = 48
    access_denied = 49
    decode_error = 50
    decrypt_error = 51
    protocol_version = 70
    insufficient_security = 71
    internal_error = 80
    inappropriate_fallback = 86
    user_canceled = 90
    no_renegotiation = 100
    missing_extension = 109
    unsupported_extension = 110
    unrecognized_name = 112
    bad_certificate_status_response = 113
    unknown_psk_identity = 115
    certificate_required = 116
    no_application_protocol = 120


class ExtensionType(enum.IntEnum):
    """Extension types (IANA "TLS ExtensionType Values")."""

    server_name = 0
    max_fragment_length = 1
    status_request = 5
    supported_groups = 10
    ec_point_formats = 11
    signature_algorithms = 13
    use_srtp = 14
    heartbeat = 15
    application_layer_protocol_negotiation = 16
    signed_certificate_timestamp = 18
    client_certificate_type = 19
    server_certificate_type = 20
    padding = 21
    encrypt_then_mac = 22
    extended_master_secret = 23
    record_size_limit = 28
    session_ticket = 35
    pre_shared_key = 41
    early_data = 42
    supported_versions = 43
    cookie = 44
    psk_key_exchange_modes = 45
    certificate_authorities = 47
    oid_filters = 48
    post_handshake_auth = 49
    signature_algorithms_cert = 50
    key_share = 51
    # draft-agl-tls-nextprotoneg-04 §3
    next_protocol_negotiation = 13172
    renegotiation_info = 0xFF01


class CipherSuite(enum.IntEnum):
    """Cipher suites (RFC 8446 §B.4, RFC 5289, RFC 7905).

    Only AEAD suites with forward secrecy exist here: this library has no
    code for any other kind.
    """

    TLS_AES_128_GCM_SHA256 = 0x1301
    TLS_AES_256_GCM_SHA384 = 0x1302
    TLS_CHACHA20_POLY1305_SHA256 = 0x1303

    TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 = 0xC02B
    TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384 = 0xC02C
    TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 = 0xC02F
    TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384 = 0xC030
    TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256 = 0xCCA8
    TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256 = 0xCCA9

    # RFC 5746 §3.3: signalling value, never negotiated.
    TLS_EMPTY_RENEGOTIATION_INFO_SCSV = 0x00FF


TLS13_CIPHER_SUITES: frozenset[CipherSuite] = frozenset(
    {
        CipherSuite.TLS_AES_128_GCM_SHA256,
        CipherSuite.TLS_AES_256_GCM_SHA384,
        CipherSuite.TLS_CHACHA20_POLY1305_SHA256,
    }
)


class NamedGroup(enum.IntEnum):
    """Key-exchange groups (RFC 8446 §4.2.7, draft-ietf-tls-ecdhe-mlkem)."""

    secp256r1 = 0x0017
    secp384r1 = 0x0018
    x25519 = 0x001D
    X25519MLKEM768 = 0x11EC


class SignatureScheme(enum.IntEnum):
    """Signature schemes (RFC 8446 §4.2.3)."""

    rsa_pkcs1_sha256 = 0x0401
    rsa_pkcs1_sha384 = 0x0501
    rsa_pkcs1_sha512 = 0x0601
    ecdsa_secp256r1_sha256 = 0x0403
    ecdsa_secp384r1_sha384 = 0x0503
    ecdsa_secp521r1_sha512 = 0x0603
    rsa_pss_rsae_sha256 = 0x0804
    rsa_pss_rsae_sha384 = 0x0805
    rsa_pss_rsae_sha512 = 0x0806
    ed25519 = 0x0807
    ed448 = 0x0808
    rsa_pss_pss_sha256 = 0x0809
    rsa_pss_pss_sha384 = 0x080A
    rsa_pss_pss_sha512 = 0x080B


class PskKeyExchangeMode(enum.IntEnum):
    """PSK key-exchange modes (RFC 8446 §4.2.9)."""

    psk_ke = 0
    psk_dhe_ke = 1


class KeyUpdateRequest(enum.IntEnum):
    """KeyUpdate request values (RFC 8446 §4.6.3)."""

    update_not_requested = 0
    update_requested = 1


class NameType(enum.IntEnum):
    """server_name name types (RFC 6066 §3)."""

    host_name = 0


class ClientCertificatePolicy(enum.Enum):
    """What a server asks of the client's certificate."""

    NONE = "none"  #: do not ask
    REQUEST = "request"  #: ask; an empty answer is accepted
    REQUIRE = "require"  #: ask; an empty answer is a certificate_required alert


#: RFC 8446 §5.1: the largest plaintext in one record.
MAX_PLAINTEXT = 2**14
#: RFC 8446 §5.2: the largest TLSCiphertext.length in TLS 1.3.
MAX_CIPHERTEXT_TLS13 = 2**14 + 256
#: RFC 5246 §6.2.3: the largest TLSCiphertext.length in TLS 1.2.
MAX_CIPHERTEXT_TLS12 = 2**14 + 2048
#: Record header: type, legacy version, length.
RECORD_HEADER_SIZE = 5
