"""Tests for twisted_sslfile.context_fields: one converter per Context field.

Context (tests/test_context.py) and the sslfile: endpoint parser
(tests/test_endpoint_options.py) both go through these, so each is checked
here on its own: the values it accepts, what it makes of them, and the
message of each refusal.
"""

from __future__ import annotations

import os
import pathlib
from collections.abc import Callable
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from twisted_sslfile import context_fields as f
from twisted_sslfile.constants import (
    CipherSuite,
    ClientCertificatePolicy,
    NamedGroup,
    ProtocolVersion,
    SignatureScheme,
)

TLS12 = ProtocolVersion.TLS_1_2
TLS13 = ProtocolVersion.TLS_1_3


class _Refusals:
    assertRaises: Any
    assertEqual: Any

    def refused(self, message: str, convert: Callable[..., Any], *args: Any) -> None:
        """``convert(*args)`` raises ValueError with exactly ``message``."""
        error = self.assertRaises(ValueError, convert, *args)
        self.assertEqual(str(error), message)


class VersionTests(_Refusals, SynchronousTestCase):
    def test_spellings(self) -> None:
        for spelling in (
            TLS13,
            0x0304,
            "TLSv1.3",
            "tlsv1_3",
            "TLS 1.3",
            "PROTOCOL_TLS_1_3",
            "tls1_3",
            ProtocolVersion.PROTOCOL_TLS_MAX,
        ):
            version = f.convert_version(spelling, "v")
            self.assertIs(version, TLS13)
        self.assertIs(f.convert_version("TLSv1.2", "v"), TLS12)

    def test_unknown(self) -> None:
        supported = "supported: TLS 1.2 and TLS 1.3"
        for value in ("TLSv9", True, 0x0305, 1.3, None):
            self.refused(
                f"v: unknown protocol version {value!r}; {supported}",
                f.convert_version,
                value,
                "v",
            )

    def test_refused_old(self) -> None:
        for value, name in (
            ("SSLv3", "SSL 3.0"),
            (0x0301, "TLS 1.0"),
            ("TLSv1.1", "TLS 1.1"),
        ):
            self.refused(
                f"v: {name} is not supported; this library speaks TLS 1.2 "
                f"and TLS 1.3 only",
                f.convert_version,
                value,
                "v",
            )

    def test_range(self) -> None:
        self.assertEqual(f.convert_versions(), (TLS12, TLS13))
        self.assertEqual(f.convert_versions("TLSv1.3", "TLSv1.3"), (TLS13, TLS13))
        self.refused(
            "min_version TLS 1.3 is above max_version TLS 1.2",
            f.convert_versions,
            TLS13,
            TLS12,
        )
        # Each bound is named in its own message.
        self.assertRaises(ValueError, f.convert_versions, "x", TLS13)
        error = self.assertRaises(ValueError, f.convert_versions, TLS12, "x")
        self.assertTrue(str(error).startswith("max_version: "))

    def test_version_name(self) -> None:
        self.assertEqual(f.version_name(TLS13), "TLS 1.3")
        self.assertEqual(f.version_name(0x0300), "SSL 3.0")
        self.assertEqual(f.version_name(0x7F1C), "0x7f1c")


class EnumListTests(_Refusals, SynchronousTestCase):
    def test_cipher_suites(self) -> None:
        self.assertEqual(f.convert_cipher_suites(None), f.DEFAULT_CIPHER_SUITES)
        self.assertEqual(
            f.convert_cipher_suites(
                ["tls-aes-128-gcm-sha256", 0xC02F, CipherSuite.TLS_AES_256_GCM_SHA384]
            ),
            (
                CipherSuite.TLS_AES_128_GCM_SHA256,
                CipherSuite.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
                CipherSuite.TLS_AES_256_GCM_SHA384,
            ),
        )
        self.refused(
            "cipher_suites must be a sequence of cipher suites, not str",
            f.convert_cipher_suites,
            "TLS_AES_128_GCM_SHA256",
        )
        self.refused("cipher_suites must not be empty", f.convert_cipher_suites, [])
        self.refused(
            "cipher_suites lists TLS_AES_128_GCM_SHA256 twice",
            f.convert_cipher_suites,
            [0x1301, "TLS_AES_128_GCM_SHA256"],
        )
        error = self.assertRaises(
            ValueError,
            f.convert_cipher_suites,
            [CipherSuite.TLS_EMPTY_RENEGOTIATION_INFO_SCSV],
        )
        self.assertTrue(str(error).startswith("unknown cipher suite"))
        self.assertNotIn("SCSV", str(error).partition("supported:")[2])

    def test_cipher_suites_need_a_version(self) -> None:
        tls12 = [CipherSuite.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256]
        tls13 = [CipherSuite.TLS_AES_128_GCM_SHA256]
        self.assertEqual(f.convert_cipher_suites(tls12, TLS12, TLS13), tuple(tls12))
        self.refused(
            "cipher_suites has no suite for TLS 1.3; add one or change "
            "min_version/max_version",
            f.convert_cipher_suites,
            tls12,
            TLS13,
            TLS13,
        )
        self.refused(
            "cipher_suites has no suite for TLS 1.2; add one or change "
            "min_version/max_version",
            f.convert_cipher_suites,
            tls13,
            TLS12,
            TLS12,
        )

    def test_groups(self) -> None:
        self.assertEqual(f.convert_groups(None), f.DEFAULT_GROUPS)
        self.assertEqual(
            f.convert_groups(["X25519", 23]), (NamedGroup.x25519, NamedGroup.secp256r1)
        )
        names = ", ".join(g.name for g in NamedGroup if g in f.SUPPORTED_GROUPS)
        self.refused(
            f"unknown group 'ffdhe2048'; supported: {names}",
            f.convert_groups,
            ["ffdhe2048"],
        )
        self.refused("groups must not be empty", f.convert_groups, [])
        self.refused(
            "groups must be a sequence of groups, not int", f.convert_groups, 5
        )

    def test_key_share_groups(self) -> None:
        groups = (NamedGroup.secp256r1, NamedGroup.x25519)
        # Default: the default shares among the groups, else the first group.
        self.assertEqual(f.convert_key_share_groups(None, groups), (NamedGroup.x25519,))
        self.assertEqual(
            f.convert_key_share_groups(None, (NamedGroup.secp384r1,)),
            (NamedGroup.secp384r1,),
        )
        self.assertEqual(f.convert_key_share_groups([], groups), ())
        self.assertEqual(
            f.convert_key_share_groups(["secp256r1"], groups), (NamedGroup.secp256r1,)
        )
        self.refused(
            "key_share_groups secp384r1 not in groups (RFC 8446 §4.2.8: every "
            "share must be an offered group)",
            f.convert_key_share_groups,
            [NamedGroup.secp384r1],
            groups,
        )

    def test_signature_schemes(self) -> None:
        self.assertEqual(f.convert_signature_schemes(None), f.DEFAULT_SIGNATURE_SCHEMES)
        self.assertEqual(
            f.convert_signature_schemes(["Ed25519", 0x0804]),
            (SignatureScheme.ed25519, SignatureScheme.rsa_pss_rsae_sha256),
        )
        self.refused(
            "signature_schemes must not be empty", f.convert_signature_schemes, []
        )
        error = self.assertRaises(ValueError, f.convert_signature_schemes, [0x0201])
        self.assertTrue(str(error).startswith("unknown signature scheme 513;"))

    @settings(max_examples=300, deadline=None)
    @given(
        st.lists(
            st.one_of(
                st.integers(-1, 0x10000),
                st.text(max_size=40),
                st.sampled_from(list(CipherSuite)),
                st.booleans(),
                st.none(),
            ),
            max_size=12,
        )
    )
    def test_any_cipher_list(self, values: list[object]) -> None:
        """Any list gives distinct implemented suites or a ValueError."""
        try:
            suites = f.convert_cipher_suites(values)
        except ValueError:
            return
        # One suite per value, none dropped or repeated, all implemented.
        self.assertEqual(len(suites), len(values))
        self.assertEqual(len(set(suites)), len(suites))
        self.assertTrue(set(suites) <= f.ALL_CIPHER_SUITES)


class ProtocolNameTests(_Refusals, SynchronousTestCase):
    def test_names(self) -> None:
        self.assertEqual(
            f.convert_protocol_names(["h2", b"http/1.1", bytearray(b"x")], "alpn"),
            (b"h2", b"http/1.1", b"x"),
        )
        self.assertEqual(f.convert_protocol_names((), "alpn"), ())

    def test_refusals(self) -> None:
        self.refused(
            "alpn must be a sequence of protocol names such as "
            "[b'h2', b'http/1.1'], not 'h2'",
            f.convert_protocol_names,
            "h2",
            "alpn",
        )
        self.refused(
            "alpn: protocol name b'' must be 1 to 255 bytes long",
            f.convert_protocol_names,
            [""],
            "alpn",
        )
        self.refused(
            "alpn: protocol name 'é' is not ASCII; pass bytes",
            f.convert_protocol_names,
            ["é"],
            "alpn",
        )
        self.refused(
            "alpn: protocol names are bytes or str, not 2",
            f.convert_protocol_names,
            [2],
            "alpn",
        )
        self.refused(
            "alpn lists b'h2' twice", f.convert_protocol_names, ["h2", b"h2"], "alpn"
        )
        # ProtocolNameList is at most 2^16-1 bytes (RFC 7301 §3.1), each
        # name with its length byte: 255 names of 255 bytes are 65280.
        names = [b"%03d" % i + b"x" * 252 for i in range(255)]
        fits = [*names, b"z" * 254]  # 65535 bytes
        self.assertEqual(len(f.convert_protocol_names(fits, "alpn")), 256)
        self.refused(
            "alpn is longer than 65535 bytes when encoded",
            f.convert_protocol_names,
            [*names, b"z" * 255],  # 65536 bytes
            "alpn",
        )

    @settings(max_examples=300, deadline=None)
    @given(
        st.lists(
            st.one_of(st.binary(max_size=300), st.text(max_size=20), st.integers()),
            max_size=6,
        )
    )
    def test_any_list(self, values: list[object]) -> None:
        """Any list gives distinct 1..255-byte names or a ValueError."""
        try:
            names = f.convert_protocol_names(values, "alpn")
        except ValueError as e:
            self.assertTrue(str(e).startswith("alpn"), str(e))
            return
        self.assertEqual(len(set(names)), len(names))
        for name in names:
            self.assertIsInstance(name, bytes)
            self.assertTrue(1 <= len(name) <= 255)


class ScalarTests(_Refusals, SynchronousTestCase):
    def test_random_and_clock(self) -> None:
        self.assertIs(f.convert_random(os.urandom), os.urandom)
        self.refused(
            "random must be a callable(n) -> bytes, not b'1'", f.convert_random, b"1"
        )
        clock = lambda: 1.0  # noqa: E731
        self.assertIs(f.convert_clock(clock), clock)
        self.refused("clock must be a callable() -> float, not 3", f.convert_clock, 3)

    def test_keylog(self) -> None:
        """Off by default (None); a callable; nothing else."""
        self.assertIsNone(f.convert_keylog(None))
        self.assertIs(f.convert_keylog(print), print)
        self.refused(
            "keylog must be None or a callable(line: str), not 'file.txt'",
            f.convert_keylog,
            "file.txt",
        )

    def test_integers(self) -> None:
        for convert, option, low, high in (
            (
                f.convert_max_handshake_message_size,
                "max_handshake_message_size",
                2**14,
                2**24 - 1,
            ),
            (
                f.convert_max_certificate_chain_length,
                "max_certificate_chain_length",
                1,
                255,
            ),
            (f.convert_record_size_limit, "record_size_limit", 64, 2**14 + 1),
            (f.convert_session_lifetime, "session_lifetime", 1, 604800),
            (f.convert_tickets_per_handshake, "tickets_per_handshake", 0, 10),
        ):
            self.assertEqual(convert(low), low)
            self.assertEqual(convert(high), high)
            for bad in (low - 1, high + 1):
                self.refused(
                    f"{option} must be between {low} and {high}, not {bad}",
                    convert,
                    bad,
                )
            for bad in (True, "10", 10.0):
                self.refused(f"{option} must be an integer, not {bad!r}", convert, bad)
        self.assertIsNone(f.convert_record_size_limit(None))

    def test_flag(self) -> None:
        self.assertIs(f.convert_flag(True, "x"), True)
        self.assertIs(f.convert_flag(False, "x"), False)
        for bad in (1, 0, "no", None):
            self.refused(
                f"allow_psk_ke must be True or False, not {bad!r}",
                f.convert_flag,
                bad,
                "allow_psk_ke",
            )

    def test_path(self) -> None:
        self.assertIsNone(f.convert_path(None, "p"))
        self.assertEqual(f.convert_path("/a/b", "p"), "/a/b")
        self.assertEqual(f.convert_path(pathlib.Path("/a/b"), "p"), "/a/b")
        self.refused("p must be a path, not 3", f.convert_path, 3, "p")
        self.refused("p must be a path, not b'/a'", f.convert_path, b"/a", "p")

    def test_client_certificate(self) -> None:
        for value, policy in (
            (" Require ", ClientCertificatePolicy.REQUIRE),
            ("request", ClientCertificatePolicy.REQUEST),
            (ClientCertificatePolicy.NONE, ClientCertificatePolicy.NONE),
        ):
            self.assertIs(f.convert_client_certificate(value), policy)
        for bad in ("always", 3, None):
            self.refused(
                f"unknown client_certificate policy {bad!r}; use one of "
                f"none, request, require",
                f.convert_client_certificate,
                bad,
            )
