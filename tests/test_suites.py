"""Tests for twisted_sslfile.engine.suites.

Cipher-suite table, key shares for every group (round trips, determinism,
hostile shares) and every signature scheme (round trips, tampering, key
mismatches), plus the RFC 8448 CertificateVerify as a known answer.
"""

from __future__ import annotations

from functools import cache

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import (
    ec,
    ed448,
    ed25519,
    padding,
    rsa,
    x25519,
)
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
from cryptography.x509.oid import PublicKeyAlgorithmOID
from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from tests import rfc8448 as R
from twisted_sslfile.constants import (
    AlertDescription,
    CipherSuite,
    NamedGroup,
    ProtocolVersion,
    SignatureScheme,
)
from twisted_sslfile.engine import suites as S
from twisted_sslfile.errors import DecryptError, IllegalParameterError, InternalError

TLS12 = ProtocolVersion.TLS_1_2
TLS13 = ProtocolVersion.TLS_1_3
SS = SignatureScheme


class CountingRandom:
    """A deterministic ``random(n)``: a counter stream, recording each draw."""

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed
        self.draws: list[int] = []
        self._counter = 0

    def __call__(self, n: int) -> bytes:
        self.draws.append(n)
        out = bytearray()
        while len(out) < n:
            digest = hashes.Hash(hashes.SHA256())
            digest.update(f"{self.seed}:{self._counter}".encode())
            out += digest.finalize()
            self._counter += 1
        return bytes(out[:n])


# ---------------------------------------------------------------------------
# Cipher suites
# ---------------------------------------------------------------------------


class CipherSuiteTests(SynchronousTestCase):
    """The suite table."""

    def test_all_suites_present(self) -> None:
        expected = set(CipherSuite) - {CipherSuite.TLS_EMPTY_RENEGOTIATION_INFO_SCSV}
        self.assertEqual(set(S.CIPHER_SUITES), expected)

    def test_tls13_suites(self) -> None:
        table = {
            CipherSuite.TLS_AES_128_GCM_SHA256: (AESGCM, 16, hashes.SHA256),
            CipherSuite.TLS_AES_256_GCM_SHA384: (AESGCM, 32, hashes.SHA384),
            CipherSuite.TLS_CHACHA20_POLY1305_SHA256: (
                ChaCha20Poly1305,
                32,
                hashes.SHA256,
            ),
        }
        for suite, (aead, key_length, hash_) in table.items():
            info = S.CIPHER_SUITES[suite]
            self.assertEqual(
                (info.aead, info.key_length, info.hash), (aead, key_length, hash_)
            )
            self.assertTrue(info.tls13)
            self.assertIsNone(info.key_exchange)
            self.assertEqual((info.iv_length, info.explicit_nonce_length), (12, 0))
            self.assertEqual(info.tag_length, 16)
            self.assertEqual(info.name, suite.name)

    def test_tls12_suites(self) -> None:
        for suite, info in S.CIPHER_SUITES.items():
            if info.tls13:
                continue
            self.assertIn(info.key_exchange, suite.name)
            self.assertEqual(info.hash_length, 48 if "SHA384" in suite.name else 32)
            if info.aead is AESGCM:
                # RFC 5288 §3: 4-byte salt + 8-byte explicit nonce.
                self.assertEqual((info.iv_length, info.explicit_nonce_length), (4, 8))
                self.assertEqual(info.key_length, 32 if "AES_256" in suite.name else 16)
            else:
                # RFC 7905 §2: 12-byte fixed IV, no explicit nonce.
                self.assertEqual((info.iv_length, info.explicit_nonce_length), (12, 0))
                self.assertEqual(info.key_length, 32)

    def test_key_exchange_for_key(self) -> None:
        self.assertEqual(S.key_exchange_for_key(_p256()), "ECDHE_ECDSA")
        self.assertEqual(S.key_exchange_for_key(_ed25519()), "ECDHE_ECDSA")
        self.assertEqual(S.key_exchange_for_key(_rsa2048().public_key()), "ECDHE_RSA")
        self.assertIsNone(S.key_exchange_for_key(object()))


# ---------------------------------------------------------------------------
# Key shares
# ---------------------------------------------------------------------------

ALL_GROUPS = (
    NamedGroup.x25519,
    NamedGroup.secp256r1,
    NamedGroup.secp384r1,
    NamedGroup.X25519MLKEM768,
)
#: (client share length, server share length, secret length)
SIZES = {
    NamedGroup.x25519: (32, 32, 32),
    NamedGroup.secp256r1: (65, 65, 32),
    NamedGroup.secp384r1: (97, 97, 48),
    NamedGroup.X25519MLKEM768: (1216, 1120, 64),
}


class KeyShareTests(SynchronousTestCase):
    """Generation, agreement and determinism for every group."""

    def test_supported_groups(self) -> None:
        self.assertEqual(S.SUPPORTED_GROUPS[0], NamedGroup.X25519MLKEM768)
        self.assertEqual(set(S.SUPPORTED_GROUPS), set(ALL_GROUPS))
        self.assertTrue(S.mlkem_available())

    def test_tls13_round_trip(self) -> None:
        """client share -> server respond -> the same secret."""
        for group in ALL_GROUPS:
            client = S.generate_key_share(group, CountingRandom(1))
            server_share, secret = S.respond_to_key_share(
                group, client.public_bytes, CountingRandom(2)
            )
            self.assertEqual(client.shared_secret(server_share), secret, group.name)
            self.assertEqual(
                (len(client.public_bytes), len(server_share), len(secret)),
                SIZES[group],
                group.name,
            )
            self.assertEqual(client.group, group)

    def test_tls12_both_sides(self) -> None:
        """TLS 1.2 ECDHE: two KeyShares agree."""
        for group in ALL_GROUPS[:3]:
            a = S.generate_key_share(group, CountingRandom(3))
            b = S.generate_key_share(group, CountingRandom(4))
            self.assertEqual(
                a.shared_secret(b.public_bytes), b.shared_secret(a.public_bytes)
            )

    def test_share_layout(self) -> None:
        """EC shares are uncompressed points; the hybrid puts ML-KEM first."""
        for group in (NamedGroup.secp256r1, NamedGroup.secp384r1):
            self.assertEqual(
                S.generate_key_share(group, CountingRandom()).public_bytes[0], 4
            )
        # The X25519 half of the hybrid client share is the key that x25519
        # alone would make from the same (second) draw.
        rng = CountingRandom(5)
        hybrid = S.generate_key_share(NamedGroup.X25519MLKEM768, rng)
        stream = CountingRandom(5)
        stream(64)
        x_only = S.generate_key_share(NamedGroup.x25519, stream)
        self.assertEqual(hybrid.public_bytes[1184:], x_only.public_bytes)

    def test_hybrid_secret_order(self) -> None:
        """draft-ietf-tls-ecdhe-mlkem: secret = ML-KEM secret || X25519 secret."""
        client = S.generate_key_share(NamedGroup.X25519MLKEM768, CountingRandom(6))
        server_share, secret = S.respond_to_key_share(
            NamedGroup.X25519MLKEM768, client.public_bytes, CountingRandom(7)
        )
        server_x = x25519.X25519PrivateKey.from_private_bytes(CountingRandom(7)(32))
        x_secret = server_x.exchange(
            x25519.X25519PublicKey.from_public_bytes(client.public_bytes[1184:])
        )
        self.assertEqual(server_share[1088:], server_x.public_key().public_bytes_raw())
        self.assertEqual(secret[32:], x_secret)

    def test_deterministic(self) -> None:
        """The same random stream gives the same client share, every group."""
        for group in ALL_GROUPS:
            self.assertEqual(
                S.generate_key_share(group, CountingRandom(9)).public_bytes,
                S.generate_key_share(group, CountingRandom(9)).public_bytes,
            )
            self.assertNotEqual(
                S.generate_key_share(group, CountingRandom(9)).public_bytes,
                S.generate_key_share(group, CountingRandom(10)).public_bytes,
            )

    def test_draws(self) -> None:
        """What each group takes from the random source."""
        expected = {
            NamedGroup.x25519: [32],
            NamedGroup.secp256r1: [40],
            NamedGroup.secp384r1: [56],
            NamedGroup.X25519MLKEM768: [64, 32],
        }
        for group, draws in expected.items():
            rng = CountingRandom()
            S.generate_key_share(group, rng)
            self.assertEqual(rng.draws, draws, group.name)

    def test_server_hybrid_x25519_half_is_reproducible(self) -> None:
        """Only the ML-KEM encapsulation escapes the injected randomness."""
        client = S.generate_key_share(NamedGroup.X25519MLKEM768, CountingRandom())
        first, _ = S.respond_to_key_share(
            NamedGroup.X25519MLKEM768, client.public_bytes, CountingRandom(8)
        )
        second, _ = S.respond_to_key_share(
            NamedGroup.X25519MLKEM768, client.public_bytes, CountingRandom(8)
        )
        self.assertEqual(first[1088:], second[1088:])

    def test_rfc8448_x25519(self) -> None:
        share = S.generate_key_share(
            NamedGroup.x25519, lambda n: R.CLIENT_X25519_PRIVATE
        )
        self.assertEqual(share.public_bytes, R.CLIENT_X25519_PUBLIC)
        self.assertEqual(
            share.shared_secret(R.SERVER_X25519_PUBLIC), R.ECDHE_SHARED_SECRET
        )

    def test_ec_scalar_range(self) -> None:
        """All-zero random bytes give scalar 1, never 0 (RFC: [1, order-1])."""
        share = S.generate_key_share(NamedGroup.secp256r1, lambda n: bytes(n))
        generator = ec.derive_private_key(1, ec.SECP256R1()).public_key()
        self.assertEqual(
            share.public_bytes,
            generator.public_bytes(
                serialization.Encoding.X962,
                serialization.PublicFormat.UncompressedPoint,
            ),
        )
        # All-ones is far above the order; it still reduces into range.
        S.generate_key_share(NamedGroup.secp384r1, lambda n: b"\xff" * n)

    def test_short_random_is_internal_error(self) -> None:
        self.assertRaises(
            InternalError, S.generate_key_share, NamedGroup.x25519, lambda n: b"\0"
        )

    def test_repr_hides_private_key(self) -> None:
        share = S.generate_key_share(
            NamedGroup.x25519, lambda n: R.CLIENT_X25519_PRIVATE
        )
        text = repr(share)
        self.assertIn("x25519", text)
        self.assertNotIn(R.CLIENT_X25519_PRIVATE.hex()[:8], text)


class MalformedShareTests(SynchronousTestCase):
    """Hostile key shares raise IllegalParameterError and nothing else."""

    def _bad(self, group: NamedGroup, server_share: bytes, client_share: bytes) -> None:
        client = _client_share(group)
        exc = self.assertRaises(
            IllegalParameterError, client.shared_secret, server_share
        )
        self.assertEqual(exc.alert, AlertDescription.illegal_parameter)
        self.assertRaises(
            IllegalParameterError,
            S.respond_to_key_share,
            group,
            client_share,
            CountingRandom(),
        )

    def test_wrong_lengths(self) -> None:
        for group in ALL_GROUPS:
            client_length, server_length, _ = SIZES[group]
            good = _client_share(group).public_bytes
            for delta in (-1, 1):
                self._bad(
                    group,
                    b"\x04" * (server_length + delta),
                    (good + b"\x00")[: client_length + delta],
                )
            self._bad(group, b"", b"")

    def test_x25519_small_order(self) -> None:
        """RFC 8446 §7.4.2: an all-zero secret aborts."""
        for point in (bytes(32), b"\x01" + bytes(31)):
            self._bad(NamedGroup.x25519, point, point)

    def test_ec_compressed_point(self) -> None:
        """RFC 8446 §4.2.8.2: only the uncompressed form (0x04)."""
        for group in (NamedGroup.secp256r1, NamedGroup.secp384r1):
            good = _client_share(group).public_bytes
            for prefix in (b"\x02", b"\x03", b"\x00"):
                self._bad(group, prefix + good[1:], prefix + good[1:])

    def test_ec_point_not_on_curve(self) -> None:
        for group in (NamedGroup.secp256r1, NamedGroup.secp384r1):
            good = _client_share(group).public_bytes
            off_curve = good[:-1] + bytes([good[-1] ^ 1])
            self._bad(group, off_curve, off_curve)
            zero = b"\x04" + bytes(len(good) - 1)
            self._bad(group, zero, zero)

    def test_hybrid_zero_x25519_half(self) -> None:
        client = _client_share(NamedGroup.X25519MLKEM768)
        server_share, _ = S.respond_to_key_share(
            NamedGroup.X25519MLKEM768, client.public_bytes, CountingRandom()
        )
        self._bad(
            NamedGroup.X25519MLKEM768,
            server_share[:1088] + bytes(32),
            client.public_bytes[:1184] + bytes(32),
        )

    def test_hybrid_invalid_encapsulation_key(self) -> None:
        """FIPS 203 §7.2 modulus check: coefficients >= q are refused."""
        client = _client_share(NamedGroup.X25519MLKEM768)
        self.assertRaises(
            IllegalParameterError,
            S.respond_to_key_share,
            NamedGroup.X25519MLKEM768,
            b"\xff" * 1184 + client.public_bytes[1184:],
            CountingRandom(),
        )

    def test_unsupported_group(self) -> None:
        for group in (0x0019, 0x001E, 0x0100, 0xFFFF):
            self.assertRaises(
                IllegalParameterError, S.generate_key_share, group, CountingRandom()
            )
            self.assertRaises(
                IllegalParameterError,
                S.respond_to_key_share,
                group,
                b"\x00" * 32,
                CountingRandom(),
            )

    @settings(max_examples=150, deadline=None)
    @given(
        group=st.sampled_from(ALL_GROUPS),
        data=st.data(),
    )
    def test_random_bytes(self, group: NamedGroup, data: st.DataObject) -> None:
        """Any bytes, right length or not: a secret or IllegalParameterError."""
        client_length, server_length, secret_length = SIZES[group]
        length = data.draw(
            st.sampled_from([client_length, server_length, 0, 1, 33, 65, 97])
            | st.integers(min_value=0, max_value=1300),
            label="length",
        )
        share = data.draw(st.binary(min_size=length, max_size=length), label="share")
        for attempt in (
            lambda: _client_share(group).shared_secret(share),
            lambda: S.respond_to_key_share(group, share, CountingRandom())[1],
        ):
            try:
                secret = attempt()
            except IllegalParameterError:
                continue
            self.assertEqual(len(secret), secret_length)


@cache
def _client_share(group: NamedGroup) -> S.KeyShare:
    return S.generate_key_share(group, CountingRandom(42))


# ---------------------------------------------------------------------------
# Signature schemes
# ---------------------------------------------------------------------------


@cache
def _p256() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@cache
def _p384() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP384R1())


@cache
def _p521() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP521R1())


@cache
def _rsa2048() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@cache
def _ed25519() -> ed25519.Ed25519PrivateKey:
    return ed25519.Ed25519PrivateKey.generate()


@cache
def _ed448() -> ed448.Ed448PrivateKey:
    return ed448.Ed448PrivateKey.generate()


# A 1024-bit key whose PKCS#8 and SubjectPublicKeyInfo carry the
# id-RSASSA-PSS algorithm (made with `openssl genpkey -algorithm RSA-PSS`),
# and a self-signed certificate for it.
PSS_KEY_PEM = b"""\
-----BEGIN PRIVATE KEY-----
MIICdgIBADALBgkqhkiG9w0BAQoEggJiMIICXgIBAAKBgQC86xzPL/yQ8DikM/rg
hQ5WNec7Aec1wLP4tfEoknyt6ohyCo29uHqernZWUeS4Vl4uWxC9YQihsR/VqW4J
EOkMu9uJ89eBXA3Up2lvclFX4pufOBJTRlZ/VtS4a6t3PYsGxl0MRICAguII066n
McS37deYAg6ALvfY2acl+LWUCwIDAQABAoGAOOcoek+d55oztWHiwxXQx67cwy1D
kzFEBDnpNatJ2qi2CIOdRfP3Gyy5gC6SkeOR4qyTUjeT/f/38sdh2WE6kJLC/8Ee
pNRyHLMXOYc7z5CtLmSZHjJMgCvordNnIxMXkSa4HRUossEUEcwX9FFib9k+Jsau
NuVzNwSc2AFZp4ECQQDkIb1u0HStNPL8e2Ixeyu1Dbko7bPopfVLZnGk/uTrT5Kw
LJVFACWMgTQ3PmH1E8xx5fZ9Q/FOL52GnJsXp78bAkEA0/8SB524I7veb5YrJyQ1
Csnt68VlleLt2Hqm5fEeCrcRIfLJ7by8+1+ZoLiuhlEkzzppEZC/51fDFPMJD52d
0QJBALviidh1OFLak/CbUZC9B48ywTdTJePKos45jgk8oJ6oR4BvB3TvnP0uACor
Z5PnfW6k3a/nQBqLnqoZ2qXN0tcCQQCqowHRLYs9AAf/y2C6pbMoFvcxsnadGcaW
W8shBF5JA6d/qtwMRsHal82hh2W66W92ea5+nANLY+G7aBAgCJ8xAkEAllw3Y0b8
1RAkIZqhNePXeCXHzCbt+bgUZ2UTbpg/I2oDooNR1UwS5tfohMp2YFrOqE/Pj689
X96t/PNT7+lB8A==
-----END PRIVATE KEY-----
"""
PSS_CERT_PEM = b"""\
-----BEGIN CERTIFICATE-----
MIICeDCCAa2gAwIBAgIUfgUwIqX4/xFeL1vJyDBRub9o9OwwQQYJKoZIhvcNAQEK
MDSgDzANBglghkgBZQMEAgEFAKEcMBoGCSqGSIb3DQEBCDANBglghkgBZQMEAgEF
AKIDAgFeMBoxGDAWBgNVBAMMD3JzYXNzYS1wc3MudGVzdDAgFw0yNjExMjUxNzI4
NTlaGA8yMTI2MTEwMTE3Mjg1OVowGjEYMBYGA1UEAwwPcnNhc3NhLXBzcy50ZXN0
MIGdMAsGCSqGSIb3DQEBCgOBjQAwgYkCgYEAvOsczy/8kPA4pDP64IUOVjXnOwHn
NcCz+LXxKJJ8reqIcgqNvbh6nq52VlHkuFZeLlsQvWEIobEf1aluCRDpDLvbifPX
gVwN1Kdpb3JRV+KbnzgSU0ZWf1bUuGurdz2LBsZdDESAgILiCNOupzHEt+3XmAIO
gC732NmnJfi1lAsCAwEAAaNTMFEwHQYDVR0OBBYEFAYEyQSd6/aq6ob7HX23oOQV
W83GMB8GA1UdIwQYMBaAFAYEyQSd6/aq6ob7HX23oOQVW83GMA8GA1UdEwEB/wQF
MAMBAf8wQQYJKoZIhvcNAQEKMDSgDzANBglghkgBZQMEAgEFAKEcMBoGCSqGSIb3
DQEBCDANBglghkgBZQMEAgEFAKIDAgFeA4GBAGPPAE4egWsAzgGG85flqQDqrnE0
fNlm6POdMe6bIIZGAQLEKoRGPERf8WvCmwZJ5KPKQz8gC+/UkEMq4F3gvae/32mp
2pfRGRqD/hVBCD9CI8jr8g4ZcbtMFozw56NxaMDnHVztF1XwDsvEjjjfKZcs4pba
uUXc8YQR1moKbCAj
-----END CERTIFICATE-----
"""

#: scheme -> (key factory, version, rsassa_pss flag) for round trips.
ROUND_TRIPS = {
    SS.ecdsa_secp256r1_sha256: (_p256, TLS13, False),
    SS.ecdsa_secp384r1_sha384: (_p384, TLS13, False),
    SS.ecdsa_secp521r1_sha512: (_p521, TLS13, False),
    SS.rsa_pss_rsae_sha256: (_rsa2048, TLS13, False),
    SS.rsa_pss_rsae_sha384: (_rsa2048, TLS13, False),
    SS.rsa_pss_rsae_sha512: (_rsa2048, TLS13, False),
    # cryptography cannot tell an RSASSA-PSS key from its object, so any RSA
    # key exercises the pss_pss code path once the flag says "PSS SPKI".
    SS.rsa_pss_pss_sha256: (_rsa2048, TLS13, True),
    SS.rsa_pss_pss_sha384: (_rsa2048, TLS13, True),
    SS.rsa_pss_pss_sha512: (_rsa2048, TLS13, True),
    SS.ed25519: (_ed25519, TLS13, False),
    SS.ed448: (_ed448, TLS13, False),
    SS.rsa_pkcs1_sha256: (_rsa2048, TLS12, False),
    SS.rsa_pkcs1_sha384: (_rsa2048, TLS12, False),
    SS.rsa_pkcs1_sha512: (_rsa2048, TLS12, False),
}
DATA = b"signed content " * 7


class SignatureTests(SynchronousTestCase):
    """sign/verify for every scheme."""

    def test_table_covers_round_trips(self) -> None:
        self.assertEqual(set(S.SIGNATURE_SCHEMES), set(ROUND_TRIPS))

    def test_round_trips(self) -> None:
        for scheme, (key, version, pss) in ROUND_TRIPS.items():
            signature = S.sign(scheme, key(), DATA, version=version)
            S.verify(
                scheme,
                key().public_key(),
                DATA,
                signature,
                version=version,
                rsassa_pss=pss,
            )
            # verify also takes the private key (its public half is used).
            S.verify(scheme, key(), DATA, signature, version=version, rsassa_pss=pss)

    def test_tampered_data_or_signature(self) -> None:
        for scheme, (key, version, pss) in ROUND_TRIPS.items():
            signature = S.sign(scheme, key(), DATA, version=version)
            public = key().public_key()
            flipped = bytes([signature[0] ^ 0x80]) + signature[1:]
            for data, sig in (
                (DATA + b"!", signature),
                (DATA, flipped),
                (DATA, signature[:-1]),
                (DATA, b""),
                (DATA, signature + b"\x00"),
            ):
                exc = self.assertRaises(
                    DecryptError,
                    S.verify,
                    scheme,
                    public,
                    data,
                    sig,
                    version=version,
                    rsassa_pss=pss,
                )
                self.assertEqual(exc.alert, AlertDescription.decrypt_error)

    def test_wrong_key_type(self) -> None:
        """A key of another algorithm is a DecryptError (RFC 8446 §4.4.3)."""
        keys = [_p256, _p384, _rsa2048, _ed25519, _ed448]
        for scheme, (right, version, pss) in ROUND_TRIPS.items():
            signature = S.sign(scheme, right(), DATA, version=version)
            for other in keys:
                if other is right or (
                    scheme.name.startswith("ecdsa") and other in (_p256, _p384)
                ):
                    continue
                self.assertRaises(
                    DecryptError,
                    S.verify,
                    scheme,
                    other().public_key(),
                    DATA,
                    signature,
                    version=version,
                    rsassa_pss=pss,
                )

    def test_ecdsa_curve_binding(self) -> None:
        """TLS 1.3 binds the curve; TLS 1.2 names only the hash."""
        signature = S.sign(SS.ecdsa_secp256r1_sha256, _p384(), DATA, version=TLS12)
        S.verify(
            SS.ecdsa_secp256r1_sha256,
            _p384().public_key(),
            DATA,
            signature,
            version=TLS12,
        )
        self.assertRaises(
            DecryptError,
            S.verify,
            SS.ecdsa_secp256r1_sha256,
            _p384().public_key(),
            DATA,
            signature,
        )
        # Signing with the wrong curve in TLS 1.3 is our own mistake.
        self.assertRaises(
            InternalError, S.sign, SS.ecdsa_secp256r1_sha256, _p384(), DATA
        )

    def test_rsa_pss_spki_binding(self) -> None:
        """rsae needs rsaEncryption, pss_pss needs RSASSA-PSS (RFC 8446 §4.2.3)."""
        key = _rsa2048()
        rsae = S.sign(SS.rsa_pss_rsae_sha256, key, DATA)
        pss = S.sign(SS.rsa_pss_pss_sha256, key, DATA)
        self.assertRaises(
            DecryptError,
            S.verify,
            SS.rsa_pss_rsae_sha256,
            key.public_key(),
            DATA,
            rsae,
            rsassa_pss=True,
        )
        self.assertRaises(
            DecryptError, S.verify, SS.rsa_pss_pss_sha256, key.public_key(), DATA, pss
        )
        pkcs1 = S.sign(SS.rsa_pkcs1_sha256, key, DATA, version=TLS12)
        self.assertRaises(
            DecryptError,
            S.verify,
            SS.rsa_pkcs1_sha256,
            key.public_key(),
            DATA,
            pkcs1,
            version=TLS12,
            rsassa_pss=True,
        )

    def test_rsassa_pss_key_from_pem(self) -> None:
        """cryptography loads id-RSASSA-PSS keys as plain RSA keys.

        The key object keeps no trace of the PSS identifier, so the caller
        reads it from the certificate and passes ``rsassa_pss``.
        """
        key = serialization.load_pem_private_key(PSS_KEY_PEM, password=None)
        cert = x509.load_pem_x509_certificate(PSS_CERT_PEM)
        self.assertIsInstance(key, rsa.RSAPrivateKey)
        self.assertIsInstance(cert.public_key(), rsa.RSAPublicKey)
        is_pss = cert.public_key_algorithm_oid == PublicKeyAlgorithmOID.RSASSA_PSS
        self.assertTrue(is_pss)
        schemes = S.schemes_for_key(key, TLS13, rsassa_pss=is_pss)
        # 1024 bits: too short for PSS with SHA-512 and a 64-byte salt.
        self.assertEqual(schemes, [SS.rsa_pss_pss_sha256, SS.rsa_pss_pss_sha384])
        for scheme in schemes:
            signature = S.sign(scheme, key, DATA)
            S.verify(scheme, cert.public_key(), DATA, signature, rsassa_pss=True)

    def test_pkcs1_not_in_tls13(self) -> None:
        """RFC 8446 §4.4.3: RSA signatures MUST use RSASSA-PSS."""
        signature = S.sign(SS.rsa_pkcs1_sha256, _rsa2048(), DATA, version=TLS12)
        self.assertRaises(
            IllegalParameterError,
            S.verify,
            SS.rsa_pkcs1_sha256,
            _rsa2048().public_key(),
            DATA,
            signature,
        )
        self.assertRaises(InternalError, S.sign, SS.rsa_pkcs1_sha256, _rsa2048(), DATA)

    def test_unknown_scheme(self) -> None:
        for scheme in (0x0201, 0x0203, 0x0000, 0xFEFE):
            self.assertRaises(
                IllegalParameterError,
                S.verify,
                scheme,
                _p256().public_key(),
                DATA,
                b"x",
            )
            self.assertRaises(InternalError, S.sign, scheme, _p256(), DATA)

    def test_real_key_of_wrong_type_refused_when_signing(self) -> None:
        self.assertRaises(InternalError, S.sign, SS.ed25519, _p256(), DATA)
        self.assertRaises(
            InternalError, S.sign, SS.rsa_pss_rsae_sha256, _ed25519(), DATA
        )
        self.assertRaises(
            InternalError, S.sign, SS.ecdsa_secp256r1_sha256, _rsa2048(), DATA
        )

    def test_duck_typed_private_key(self) -> None:
        """Only ``sign`` is called; PSS uses MGF1 with the hash, salt = hLen."""
        real = _rsa2048()
        calls: list[tuple[object, ...]] = []

        class Signer:
            def sign(self, *args: object) -> bytes:
                calls.append(args)
                return real.sign(*args)  # type: ignore[arg-type]

        signature = S.sign(SS.rsa_pss_rsae_sha384, Signer(), DATA)
        S.verify(SS.rsa_pss_rsae_sha384, real.public_key(), DATA, signature)
        ((data, pad, algorithm),) = calls
        self.assertEqual(data, DATA)
        self.assertIsInstance(pad, padding.PSS)
        self.assertIsInstance(algorithm, hashes.SHA384)
        # A verifier that insists on MGF1-SHA384 and a 48-byte salt agrees.
        real.public_key().verify(
            signature,
            DATA,
            padding.PSS(mgf=padding.MGF1(hashes.SHA384()), salt_length=48),
            hashes.SHA384(),
        )

    def test_signer_failure_is_internal_error(self) -> None:
        class Broken:
            def sign(self, *args: object) -> bytes:
                raise ValueError("token unplugged")

        self.assertRaises(InternalError, S.sign, SS.ed25519, Broken(), DATA)

    @settings(max_examples=100, deadline=None)
    @given(
        scheme=st.sampled_from(sorted(ROUND_TRIPS)),
        signature=st.binary(max_size=600),
    )
    def test_random_signatures(self, scheme: SignatureScheme, signature: bytes) -> None:
        """Garbage signatures are DecryptError, never another exception."""
        key, version, pss = ROUND_TRIPS[scheme]
        self.assertRaises(
            DecryptError,
            S.verify,
            scheme,
            key().public_key(),
            DATA,
            signature,
            version=version,
            rsassa_pss=pss,
        )


class SchemesForKeyTests(SynchronousTestCase):
    """Preference lists per key and version."""

    def test_ecdsa(self) -> None:
        self.assertEqual(S.schemes_for_key(_p256(), TLS13), [SS.ecdsa_secp256r1_sha256])
        self.assertEqual(S.schemes_for_key(_p384(), TLS13), [SS.ecdsa_secp384r1_sha384])
        self.assertEqual(S.schemes_for_key(_p521(), TLS13), [SS.ecdsa_secp521r1_sha512])
        self.assertEqual(
            S.schemes_for_key(_p384(), TLS12),
            [
                SS.ecdsa_secp384r1_sha384,
                SS.ecdsa_secp256r1_sha256,
                SS.ecdsa_secp521r1_sha512,
            ],
        )

    def test_rsa(self) -> None:
        pss = [SS.rsa_pss_rsae_sha256, SS.rsa_pss_rsae_sha384, SS.rsa_pss_rsae_sha512]
        self.assertEqual(S.schemes_for_key(_rsa2048(), TLS13), pss)
        self.assertEqual(
            S.schemes_for_key(_rsa2048(), TLS12),
            [*pss, SS.rsa_pkcs1_sha256, SS.rsa_pkcs1_sha384, SS.rsa_pkcs1_sha512],
        )
        self.assertEqual(
            S.schemes_for_key(_rsa2048(), TLS12, rsassa_pss=True),
            [SS.rsa_pss_pss_sha256, SS.rsa_pss_pss_sha384, SS.rsa_pss_pss_sha512],
        )

    def test_small_rsa_key_drops_sha512_pss(self) -> None:
        """RFC 8448's 1024-bit key cannot hold a PSS-SHA512 encoding."""
        self.assertEqual(
            S.schemes_for_key(R.server_rsa_private_key(), TLS13),
            [SS.rsa_pss_rsae_sha256, SS.rsa_pss_rsae_sha384],
        )

    def test_eddsa(self) -> None:
        for version in (TLS12, TLS13):
            self.assertEqual(S.schemes_for_key(_ed25519(), version), [SS.ed25519])
            self.assertEqual(S.schemes_for_key(_ed448(), version), [SS.ed448])

    def test_public_and_duck_typed_keys(self) -> None:
        class Wrapped:
            def public_key(self) -> ec.EllipticCurvePublicKey:
                return _p256().public_key()

            def sign(self, data: bytes, algorithm: object) -> bytes:
                return _p256().sign(data, algorithm)  # type: ignore[arg-type]

        self.assertEqual(
            S.schemes_for_key(_p256().public_key(), TLS13),
            [SS.ecdsa_secp256r1_sha256],
        )
        self.assertEqual(
            S.schemes_for_key(Wrapped(), TLS13), [SS.ecdsa_secp256r1_sha256]
        )
        signature = S.sign(SS.ecdsa_secp256r1_sha256, Wrapped(), DATA)
        S.verify(SS.ecdsa_secp256r1_sha256, Wrapped(), DATA, signature)
        self.assertEqual(S.schemes_for_key(object(), TLS13), [])

    def test_every_offered_scheme_signs(self) -> None:
        for key in (_p256, _p384, _p521, _rsa2048, _ed25519, _ed448):
            for version in (TLS12, TLS13):
                for scheme in S.schemes_for_key(key(), version):
                    signature = S.sign(scheme, key(), DATA, version=version)
                    S.verify(
                        scheme, key().public_key(), DATA, signature, version=version
                    )


class RFC8448SignatureTests(SynchronousTestCase):
    """The trace's CertificateVerify as a known answer."""

    def _content(self) -> bytes:
        digest = hashes.Hash(hashes.SHA256())
        digest.update(b"".join(R.HANDSHAKE_MESSAGES[:4]))
        return S.certificate_verify_input(digest.finalize(), server=True)

    def test_certificate_verify_input(self) -> None:
        content = self._content()
        self.assertEqual(content[:64], b" " * 64)
        self.assertEqual(content[64:98], b"TLS 1.3, server CertificateVerify\x00")
        self.assertEqual(len(content), 64 + 34 + 32)
        client = S.certificate_verify_input(b"h", server=False)
        self.assertEqual(client[64:], b"TLS 1.3, client CertificateVerify\x00h")

    def test_certificate_verify_verifies(self) -> None:
        cert = x509.load_der_x509_certificate(R.CERTIFICATE_DER)
        self.assertEqual(
            cert.public_key().public_numbers(),
            R.server_rsa_private_key().public_key().public_numbers(),
        )
        scheme = int.from_bytes(R.CERTIFICATE_VERIFY[4:6], "big")
        self.assertEqual(scheme, SS.rsa_pss_rsae_sha256)
        S.verify(
            scheme, cert.public_key(), self._content(), R.CERTIFICATE_VERIFY_SIGNATURE
        )
        self.assertRaises(
            DecryptError,
            S.verify,
            scheme,
            cert.public_key(),
            self._content()[:-1] + b"\x00",
            R.CERTIFICATE_VERIFY_SIGNATURE,
        )

    def test_rsa_key_signs_like_the_server(self) -> None:
        """Our signature with the §2 key verifies under the certificate."""
        cert = x509.load_der_x509_certificate(R.CERTIFICATE_DER)
        signature = S.sign(SS.rsa_pss_rsae_sha256, R.server_rsa_private_key(), b"x")
        S.verify(SS.rsa_pss_rsae_sha256, cert.public_key(), b"x", signature)
