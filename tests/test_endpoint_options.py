"""Tests for twisted_sslfile.endpoint_options: TLS options into a Context.

The messages of each mistake are checked through Twisted's own parsers in
tests/test_endpoints.py; here, what build_settings does with the values:
each goes through the converter of the Context field it sets (one source
of truth with the Context constructor), and the Context is built once.
"""

from __future__ import annotations

import base64
import os
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from tests.certs import CertificateFactory
from twisted_sslfile.constants import (
    TLS13_CIPHER_SUITES,
    CipherSuite,
    ClientCertificatePolicy,
    NamedGroup,
    ProtocolVersion,
)
from twisted_sslfile.context import Context
from twisted_sslfile.context_fields import ALL_CIPHER_SUITES, SUPPORTED_GROUPS
from twisted_sslfile.endpoint_options import EndpointDescriptionError, build_settings

#: A client that needs neither a name nor trust roots.
_CLIENT = {"verify": "no"}

_SUITES = sorted(ALL_CIPHER_SUITES)


def _spell(name: str, draw_case: list[bool], pad: str) -> str:
    """``name`` as a person might type it: any case, padded with blanks."""
    cased = [
        c.upper() if up else c.lower()
        for c, up in zip(name, draw_case + [False] * len(name), strict=False)
    ]
    return pad + "".join(cased) + pad


class BuildOnceTests(SynchronousTestCase):
    """No throwaway Contexts: the values are converted, then one is built."""

    def setUp(self) -> None:
        self.pki = CertificateFactory(os.path.abspath(self.mktemp()))
        self.leaf = self.pki.server("localhost")
        self.calls: list[dict[str, Any]] = []

    def factory(self, **arguments: Any) -> Context:
        self.calls.append(arguments)
        return Context(**arguments)

    def test_server(self) -> None:
        settings = build_settings(
            {
                "certKey": str(self.leaf.chain_path),
                "privateKey": str(self.leaf.key_path),
                "minVersion": "TLSv1.3",
                "maxVersion": "tlsv1.3",
                "ciphers": "TLS_AES_256_GCM_SHA384",
                "groups": "secp384r1, x25519",
                "alpn": "h2,http/1.1",
                "npn": "spdy/3",
                "clientCertificate": "Request",
                "trustRoots": str(self.pki.ca_path),
            },
            is_client=False,
            context_factory=self.factory,
        )
        self.assertEqual(len(self.calls), 1)
        # The factory gets converted values, not the description's strings.
        arguments = self.calls[0]
        self.assertIs(arguments["min_version"], ProtocolVersion.TLS_1_3)
        self.assertIs(arguments["client_certificate"], ClientCertificatePolicy.REQUEST)
        self.assertEqual(arguments["groups"], (NamedGroup.secp384r1, NamedGroup.x25519))
        context = settings.context
        self.assertEqual(context.versions, (ProtocolVersion.TLS_1_3,))
        self.assertEqual(context.cipher_suites, (CipherSuite.TLS_AES_256_GCM_SHA384,))
        self.assertEqual(context.alpn_protocols, (b"h2", b"http/1.1"))
        self.assertEqual(context.npn_protocols, (b"spdy/3",))
        self.assertEqual(len(context.credentials), 1)

    def test_client(self) -> None:
        settings = build_settings(
            {"hostname": "example.com", "maxVersion": "TLSv1.2"},
            is_client=True,
            context_factory=self.factory,
        )
        self.assertEqual(len(self.calls), 1)
        self.assertEqual(settings.context.versions, (ProtocolVersion.TLS_1_2,))
        self.assertEqual(settings.server_name, "example.com")

    def test_refused_before_building(self) -> None:
        """A bad value stops the parse before any Context is made."""
        for options in (
            {"minVersion": "TLSv9"},
            {"minVersion": "TLSv1.3", "maxVersion": "TLSv1.2"},
            {
                "ciphers": "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
                "minVersion": "TLSv1.3",
            },
            {"groups": "x25519,x25519"},
            {"alpn": "x" * 256},
        ):
            self.assertRaises(
                EndpointDescriptionError,
                build_settings,
                {**_CLIENT, **options},
                is_client=True,
                context_factory=self.factory,
            )
        self.assertEqual(self.calls, [])

    def test_ticket_keys(self) -> None:
        """
        ticketKeys= is read once, by the converter Context uses, and the
        Context keeps both the keys and the file they came from.
        """
        path = os.path.abspath(self.mktemp())
        # The documented format: one base64 line per 16-byte name + 32-byte
        # secret, newest first.
        lines = [base64.b64encode(bytes([i]) * 48).decode() for i in (1, 2)]
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write("\n".join(lines) + "\n")
        settings = build_settings(
            {
                "certKey": str(self.leaf.combined_path),
                "ticketKeys": path,
            },
            is_client=False,
            context_factory=self.factory,
        )
        self.assertEqual(len(self.calls), 1)
        context = settings.context
        self.assertEqual(context.ticket_key_file, path)
        self.assertIsNotNone(context.session_tickets)
        assert context.session_tickets is not None
        self.assertEqual(context.session_tickets.path, path)
        self.assertFalse(context._default_session_tickets)


class ListOptionTests(SynchronousTestCase):
    """Comma-separated names: each entry converted as Context converts it."""

    def build(self, **options: str) -> Context:
        return build_settings({**_CLIENT, **options}, is_client=True).context

    @settings(max_examples=200, deadline=None)
    @given(
        st.lists(st.sampled_from(_SUITES), min_size=1, unique=True),
        st.lists(st.booleans(), max_size=60),
        st.sampled_from(["", " ", "  "]),
    )
    def test_cipher_names(
        self, suites: list[CipherSuite], case: list[bool], pad: str
    ) -> None:
        value = ",".join(_spell(s.name, case, pad) for s in suites)
        context = self.build(ciphers=value)
        self.assertEqual(context.cipher_suites, tuple(suites))

    @settings(max_examples=100, deadline=None)
    @given(st.lists(st.sampled_from(_SUITES), min_size=1, unique=True), st.data())
    def test_cipher_names_twice(self, suites: list[CipherSuite], data: Any) -> None:
        twice = data.draw(st.sampled_from(suites))
        value = ",".join(s.name for s in [*suites, twice])
        with self.assertRaises(EndpointDescriptionError) as caught:
            self.build(ciphers=value)
        self.assertEqual(
            str(caught.exception),
            f"sslfile: ciphers: ciphers lists {twice.name} twice",
        )

    @settings(max_examples=100, deadline=None)
    @given(st.lists(st.sampled_from(SUPPORTED_GROUPS), min_size=1, unique=True))
    def test_group_names(self, groups: list[NamedGroup]) -> None:
        context = self.build(groups=",".join(g.name for g in groups))
        self.assertEqual(context.groups, tuple(groups))
        self.assertTrue(set(context.key_share_groups) <= set(groups))

    _PROTOCOL_NAME = st.text(
        alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E).filter(
            lambda c: c != ","
        ),
        min_size=1,
        max_size=255,
    )

    @settings(max_examples=100, deadline=None)
    @given(st.lists(_PROTOCOL_NAME, min_size=1, max_size=8, unique=True))
    def test_protocol_names(self, names: list[str]) -> None:
        value = ",".join(names)
        context = self.build(alpn=value, npn=value)
        expected = tuple(n.encode("ascii") for n in names)
        self.assertEqual(context.alpn_protocols, expected)
        self.assertEqual(context.npn_protocols, expected)

    @settings(max_examples=300, deadline=None)
    @given(
        st.sampled_from(["ciphers", "groups", "alpn", "npn"]),
        st.text(max_size=80),
    )
    def test_any_text(self, option: str, value: str) -> None:
        """Any value either converts or is refused naming the option."""
        try:
            context = self.build(**{option: value})
        except EndpointDescriptionError as e:
            self.assertTrue(str(e).startswith(f"sslfile: {option}: "), str(e))
            self.assertEqual(e.option, option)
        else:
            self.assertIsInstance(context, Context)

    def test_version_range_needs_suites(self) -> None:
        """ciphers is checked against the versions given before it."""
        tls12_only = [s.name for s in _SUITES if s not in TLS13_CIPHER_SUITES]
        with self.assertRaises(EndpointDescriptionError) as caught:
            self.build(ciphers=",".join(tls12_only), minVersion="TLSv1.3")
        self.assertEqual(caught.exception.option, "ciphers")
        self.assertIn("add one or change minVersion/maxVersion", str(caught.exception))
