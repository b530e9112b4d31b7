"""Interoperability with ``openssl s_server`` and ``openssl s_client``.

The engine talks to the system's OpenSSL command-line tools over loopback, in
both roles, for every TLS 1.3 cipher suite, each classical key-exchange group,
HelloRetryRequest in both directions, client certificates, ALPN, KeyUpdate,
the certificate key types and a chain through an intermediate CA.  Every
case carries application data both ways and ends with close_notify.

These tests are not skipped when ``openssl`` is missing: they fail, because
a run that cannot prove interoperability has not proven it.

Where OpenSSL's view matters it is checked from OpenSSL's side too: the
``-brief`` summary of s_client, the ``-trace`` message log (e.g. two
ClientHellos mean a HelloRetryRequest happened), and what s_server prints.
"""

from __future__ import annotations

import os
import re
import secrets

from twisted.trial.unittest import SynchronousTestCase

from tests import peers
from tests.certs import CertificateFactory, IssuedCertificate
from tests.driver import Driver
from twisted_sslfile.constants import (
    AlertDescription,
    CipherSuite,
    ClientCertificatePolicy,
    NamedGroup,
    ProtocolVersion,
)
from twisted_sslfile.context import Context
from twisted_sslfile.engine.connection import Connection
from twisted_sslfile.engine.events import KeyUpdated
from twisted_sslfile.errors import RemoteAlertError, TLSError
from twisted_sslfile.x509 import certificate_to_pem, write_pem

SUITE_NAMES = {
    CipherSuite.TLS_AES_128_GCM_SHA256: "TLS_AES_128_GCM_SHA256",
    CipherSuite.TLS_AES_256_GCM_SHA384: "TLS_AES_256_GCM_SHA384",
    CipherSuite.TLS_CHACHA20_POLY1305_SHA256: "TLS_CHACHA20_POLY1305_SHA256",
}

#: Our group -> (the name OpenSSL's -groups takes, what -brief reports).
GROUP_NAMES = {
    NamedGroup.x25519: ("X25519", "X25519"),
    NamedGroup.secp256r1: ("P-256", "ECDH, prime256v1"),
    NamedGroup.secp384r1: ("P-384", "ECDH, secp384r1"),
}

#: Key type -> what s_client's -brief says under "Signature type".
SIGNATURE_TYPES = {
    "rsa-2048": "RSA-PSS",
    "ecdsa-p256": "ECDSA",
    "ecdsa-p384": "ECDSA",
    "ed25519": "ed25519",
}


def digit_lines(count: int) -> bytes:
    """``count`` random 64-digit lines (65 bytes each).

    Digits only: s_server acts on a command letter at the start of any
    chunk it reads from stdin (``c``, ``P``, ``S``, ``q``, ...), wherever
    the pipe happens to split the data.
    """
    return b"".join(
        b"%064d\n" % int.from_bytes(os.urandom(26), "big") for _ in range(count)
    )


def traced_signature_schemes(
    peer: peers.OpenSSLServer | peers.OpenSSLClient,
) -> list[str]:
    """The schemes of the CertificateVerify messages in OpenSSL's -trace,
    sent and received, in order ("Signature Algorithm: NAME (0xHHHH)")."""
    return re.findall(r"Signature Algorithm: (\w+) \(0x[0-9a-f]{4}\)", peer.trace)


def line(label: str) -> bytes:
    """A unique line of text: s_server and s_client are line-oriented."""
    return f"{label}-{secrets.token_hex(8)}\n".encode()


class InteropTestCase(SynchronousTestCase):
    """A fresh PKI per test (root -> intermediate -> leaves) and helpers."""

    def setUp(self) -> None:
        self.pki = CertificateFactory(self.mktemp())

    def issue(
        self, key_type: str = "ecdsa-p256", **kwargs: object
    ) -> IssuedCertificate:
        return self.pki.server("localhost", key_type=key_type, **kwargs)

    def issue_client(self, key_type: str = "ecdsa-p256") -> IssuedCertificate:
        return self.pki.client("client.example", key_type=key_type)

    def intermediates_path(self, issued: IssuedCertificate) -> str:
        """The intermediates alone, for OpenSSL's ``-cert_chain``."""
        assert issued.cert_path is not None
        path = issued.cert_path.replace(".pem", "-intermediates.pem")
        return write_pem(path, issued.intermediates)

    def client_context(self, **kwargs: object) -> Context:
        kwargs.setdefault("trust_roots", self.pki.ca_path)
        return Context(**kwargs)  # type: ignore[arg-type]

    def server_context(self, key_type: str = "ecdsa-p256", **kwargs: object) -> Context:
        kwargs.setdefault("credentials", [self.issue(key_type).credential()])
        return Context(**kwargs)  # type: ignore[arg-type]

    def assertAlert(self, error: TLSError, alert: AlertDescription) -> None:
        self.assertEqual(
            error.alert, alert, f"expected {alert.name}, got {error.alert.name}"
        )

    def check_client_ca_names(self, version: ProtocolVersion) -> None:
        """A server asking for client certificates names its client CAs and
        s_client lists them; without explicit client CAs (the system bundle)
        none are listed.  ``start_client`` is the test class's own."""
        other = CertificateFactory(self.mktemp(), name="Other")
        roots = [self.pki.root.certificate, other.root.certificate]
        issued = self.issue_client()
        credentials = {
            "cert": issued.cert_path,
            "key": issued.key_path,
            "cert_chain": self.intermediates_path(issued),
        }
        # The system bundle cannot verify the test PKI: no certificate then.
        for trust_roots, expected, options in (
            (roots, [peers.openssl_name(root.subject) for root in roots], credentials),
            (None, [], {}),
        ):
            context = self.server_context(
                client_certificate=ClientCertificatePolicy.REQUEST,
                trust_roots=trust_roots,
            )
            driver, client = self.start_client(context, brief=False, **options)
            done = driver.handshake()
            self.assertEqual(done.version, version)
            self.assertEqual(bool(done.peer_certificates), bool(options))
            client.close_stdin()
            driver.receive_until_close()
            driver.close()
            client.wait()
            self.assertEqual(client.acceptable_ca_names(), expected, client.describe())


# ---------------------------------------------------------------------------
# The engine as a client of openssl s_server
# ---------------------------------------------------------------------------


class ClientAgainstOpenSSLServerTests(InteropTestCase):
    """Our client, ``openssl s_server`` as the server."""

    def start_server(
        self, issued: IssuedCertificate | None = None, **options: object
    ) -> peers.OpenSSLServer:
        issued = issued or self.issue()
        assert issued.cert_path and issued.key_path
        options.setdefault("cert_chain", self.intermediates_path(issued))
        server = peers.OpenSSLServer(
            issued.cert_path,
            issued.key_path,
            **options,  # type: ignore[arg-type]
        )
        self.addCleanup(server.stop)
        return server.start()

    def connect(
        self, server: peers.OpenSSLServer, context: Context | None = None
    ) -> Driver:
        sock = server.connect()
        self.addCleanup(sock.close)
        conn = Connection(
            context or self.client_context(), is_client=True, server_name="localhost"
        )
        return Driver(conn, sock, describe_peer=server.describe)

    def exchange(self, driver: Driver, server: peers.OpenSSLServer) -> None:
        """Data both ways, then close_notify both ways and a clean exit."""
        ours = line("from-engine")
        driver.send_all(ours)
        server.expect_output(ours)
        theirs = line("from-openssl")
        server.write(theirs)
        self.assertEqual(driver.receive_exactly(len(theirs)), theirs)
        driver.close(wait_for_peer=True)
        self.assertTrue(driver.close_notify_received, "s_server sent no close_notify")
        self.assertEqual(server.wait(), 0, server.describe())

    def handshake_and_exchange(
        self, server: peers.OpenSSLServer, context: Context | None = None
    ) -> Connection:
        driver = self.connect(server, context)
        completed = driver.handshake()
        self.assertEqual(completed.version, ProtocolVersion.TLS_1_3)
        self.assertTrue(completed.verified)
        self.exchange(driver, server)
        return driver.conn

    # -- cipher suites --------------------------------------------------------

    def check_suite(self, suite: CipherSuite) -> None:
        server = self.start_server(ciphersuites=SUITE_NAMES[suite])
        conn = self.handshake_and_exchange(server)
        self.assertEqual(conn.cipher_suite, suite)
        server.expect_output(f"CIPHER is {SUITE_NAMES[suite]}")

    def test_aes_128_gcm(self) -> None:
        self.check_suite(CipherSuite.TLS_AES_128_GCM_SHA256)

    def test_aes_256_gcm(self) -> None:
        self.check_suite(CipherSuite.TLS_AES_256_GCM_SHA384)

    def test_chacha20_poly1305(self) -> None:
        self.check_suite(CipherSuite.TLS_CHACHA20_POLY1305_SHA256)

    # -- groups -----------------------------------------------------------------

    def check_group(self, group: NamedGroup) -> None:
        server = self.start_server(groups=GROUP_NAMES[group][0])
        context = self.client_context(key_share_groups=[group])
        conn = self.handshake_and_exchange(server, context)
        self.assertEqual(conn.group, group)
        self.assertEqual(server.count_in_trace("ClientHello"), 1, server.trace)

    def test_group_x25519(self) -> None:
        self.check_group(NamedGroup.x25519)

    def test_group_p256(self) -> None:
        self.check_group(NamedGroup.secp256r1)

    def test_group_p384(self) -> None:
        self.check_group(NamedGroup.secp384r1)

    def test_hello_retry_request(self) -> None:
        """A share for x25519 only; s_server accepts P-256 only: HRR, then P-256."""
        server = self.start_server(groups="P-256")
        context = self.client_context(
            groups=[NamedGroup.x25519, NamedGroup.secp256r1],
            key_share_groups=[NamedGroup.x25519],
        )
        conn = self.handshake_and_exchange(server, context)
        self.assertEqual(conn.group, NamedGroup.secp256r1)
        self.assertEqual(server.count_in_trace("ClientHello"), 2, server.trace)

    def test_hello_retry_request_default_shares(self) -> None:
        """Default shares (hybrid + x25519) against a P-384-only server."""
        server = self.start_server(groups="P-384")
        conn = self.handshake_and_exchange(server)
        self.assertEqual(conn.group, NamedGroup.secp384r1)
        self.assertEqual(server.count_in_trace("ClientHello"), 2, server.trace)

    # -- certificates -------------------------------------------------------------

    def check_key_type(self, key_type: str) -> None:
        issued = self.issue(key_type)
        server = self.start_server(issued)
        conn = self.handshake_and_exchange(server)
        self.assertEqual(list(conn.peer_certificates), issued.chain_der)
        # The scheme we report is the one s_server says it signed with.
        scheme = conn.peer_signature_scheme
        assert scheme is not None
        self.assertEqual(traced_signature_schemes(server), [scheme.name])

    def test_rsa_2048(self) -> None:
        self.check_key_type("rsa-2048")

    def test_ecdsa_p256(self) -> None:
        self.check_key_type("ecdsa-p256")

    def test_ecdsa_p384(self) -> None:
        self.check_key_type("ecdsa-p384")

    def test_ed25519(self) -> None:
        self.check_key_type("ed25519")

    def test_chain_through_intermediate(self) -> None:
        """The leaf comes with its intermediate; we trust only the root."""
        issued = self.issue()
        self.assertEqual(len(issued.chain), 2)
        server = self.start_server(issued)
        conn = self.handshake_and_exchange(server)
        self.assertEqual(len(conn.peer_certificates), 2)
        self.assertEqual(list(conn.peer_certificates), issued.chain_der)

    def test_missing_intermediate_is_unknown_ca(self) -> None:
        """Without its intermediate the leaf does not chain to our root."""
        issued = self.issue()
        server = self.start_server(issued, cert_chain=None)
        driver = self.connect(server)
        with self.assertRaises(TLSError) as caught:
            driver.handshake()
        self.assertAlert(caught.exception, AlertDescription.unknown_ca)
        # The refused chain, for a report: what s_server sent (no intermediate).
        self.assertEqual(caught.exception.peer_certificates, (issued.der,))
        server.expect_error_output("unknown ca")

    def test_intermediate_not_a_ca_is_named(self) -> None:
        """
        s_server sends a chain whose intermediate is not a CA: we refuse it
        with unknown_ca (OpenSSL's own choice for an invalid CA) and the
        error says why, naming the intermediate - not "untrusted root".
        """
        bad = self.pki.make_intermediate("Not A CA", is_ca=False)
        issued = self.issue(issuer=bad)
        server = self.start_server(issued)
        driver = self.connect(server)
        with self.assertRaises(TLSError) as caught:
            driver.handshake()
        self.assertAlert(caught.exception, AlertDescription.unknown_ca)
        message = str(caught.exception)
        self.assertIn("certificate CN=Not A CA", message)
        self.assertIn("is not a CA", message)
        self.assertNotIn("untrusted root", message)
        server.expect_error_output("unknown ca")

    def test_internationalised_server_name(self) -> None:
        """
        Asked for bücher.example, we send the A-label as SNI: s_server,
        told to answer xn--bcher-kva.example with its second certificate
        and to refuse any other name fatally, serves that certificate, and
        we verify it.
        """
        default = self.pki.server("other.example", direct=True)
        wanted = self.pki.server("xn--bcher-kva.example", direct=True)
        assert wanted.cert_path and wanted.key_path
        server = self.start_server(
            default,
            cert_chain=None,
            extra=[
                "-cert2",
                wanted.cert_path,
                "-key2",
                wanted.key_path,
                "-servername",
                "xn--bcher-kva.example",
                "-servername_fatal",
            ],
        )
        sock = server.connect()
        self.addCleanup(sock.close)
        conn = Connection(
            self.client_context(), is_client=True, server_name="bücher.example"
        )
        driver = Driver(conn, sock, describe_peer=server.describe)
        completed = driver.handshake()
        self.assertTrue(completed.verified)
        self.assertEqual(conn.server_name, "xn--bcher-kva.example")
        self.assertEqual(list(conn.peer_certificates), [wanted.der])
        server.expect_output('Hostname in TLS extension: "xn--bcher-kva.example"')
        server.expect_output("Switching server context")
        self.exchange(driver, server)

    def check_client_certificate(self, key_type: str) -> None:
        client = self.issue_client(key_type)
        server = self.start_server(
            verify=2, require_client_certificate=True, ca_file=self.pki.ca_path
        )
        context = self.client_context(credentials=[client.credential()])
        self.handshake_and_exchange(server, context)
        # s_server prints the client's certificate once it verified it.
        server.expect_output(b"Client certificate")
        server.expect_output(certificate_to_pem(client.certificate).strip())

    def test_client_certificate_ecdsa(self) -> None:
        self.check_client_certificate("ecdsa-p256")

    def test_client_certificate_rsa(self) -> None:
        self.check_client_certificate("rsa-2048")

    def test_client_certificate_ed25519(self) -> None:
        self.check_client_certificate("ed25519")

    def test_client_certificate_required_but_missing(self) -> None:
        """s_server -Verify with no client certificate: certificate_required."""
        server = self.start_server(
            verify=2, require_client_certificate=True, ca_file=self.pki.ca_path
        )
        driver = self.connect(server)
        with self.assertRaises(RemoteAlertError) as caught:
            # In TLS 1.3 the client finishes first; the alert follows.
            driver.handshake()
            driver.receive_until_close()
        self.assertAlert(caught.exception, AlertDescription.certificate_required)
        server.expect_error_output("peer did not return a certificate")

    def test_client_certificate_requested_not_required(self) -> None:
        """s_server -verify (optional) and no certificate: the handshake works."""
        server = self.start_server(verify=2, ca_file=self.pki.ca_path)
        self.handshake_and_exchange(server)

    # -- ALPN -------------------------------------------------------------------

    def test_alpn_agreement(self) -> None:
        server = self.start_server(alpn="http/1.1,h2")
        context = self.client_context(alpn_protocols=[b"h2"])
        conn = self.handshake_and_exchange(server, context)
        self.assertEqual(conn.alpn_protocol, b"h2")
        server.expect_output("ALPN protocols advertised by the client: h2")

    def test_alpn_no_overlap(self) -> None:
        """s_server answers an ALPN mismatch with no_application_protocol."""
        server = self.start_server(alpn="h2")
        context = self.client_context(alpn_protocols=[b"http/1.1"])
        driver = self.connect(server, context)
        with self.assertRaises(RemoteAlertError) as caught:
            driver.handshake()
        self.assertAlert(caught.exception, AlertDescription.no_application_protocol)

    def test_alpn_server_without_alpn(self) -> None:
        server = self.start_server()
        context = self.client_context(alpn_protocols=[b"h2"])
        conn = self.handshake_and_exchange(server, context)
        self.assertIsNone(conn.alpn_protocol)

    # -- KeyUpdate ----------------------------------------------------------------

    def test_key_update_from_us(self) -> None:
        """We update and request an update; OpenSSL follows on its next write."""
        server = self.start_server()
        driver = self.connect(server)
        driver.handshake()
        for round_ in range(3):
            driver.conn.key_update(request_peer=True)
            ours = line(f"after-our-update-{round_}")
            driver.send_all(ours)
            server.expect_output(ours)  # s_server read it with the new keys
            theirs = line(f"their-reply-{round_}")
            server.write(theirs)
            self.assertEqual(driver.receive_exactly(len(theirs)), theirs)
        received_updates = [e for e in driver.events if e == KeyUpdated("receive")]
        self.assertEqual(len(received_updates), 3)
        self.exchange(driver, server)

    def test_key_update_from_openssl(self) -> None:
        """s_server's ``K`` command: KeyUpdate with update_requested."""
        server = self.start_server()
        driver = self.connect(server)
        driver.handshake()
        for round_ in range(3):
            server.key_update(request_peer=True)
            # s_server cannot tell us it acted (see peers.key_update): see the
            # KeyUpdate arrive before writing, or the two would merge.
            driver.wait_for(
                lambda n=round_ + 1: driver.events.count(KeyUpdated("receive")) == n,
                "waiting for s_server's KeyUpdate",
            )
            theirs = line(f"after-their-update-{round_}")
            server.write(theirs)
            self.assertEqual(driver.receive_exactly(len(theirs)), theirs)
            ours = line(f"our-reply-{round_}")
            driver.send_all(ours)
            server.expect_output(ours)  # our answer switched our keys too
        self.assertEqual(driver.events.count(KeyUpdated("receive")), 3)
        self.assertEqual(driver.events.count(KeyUpdated("send")), 3)
        self.exchange(driver, server)

    # -- volume -------------------------------------------------------------------

    def test_one_mebibyte_each_way(self) -> None:
        """Many full records both ways through s_server's stdin and stdout."""
        server = self.start_server()
        driver = self.connect(server)
        driver.handshake()
        ours = digit_lines(16384)
        driver.send_all(ours)
        server.expect_output(ours[-65:])
        self.assertIn(ours, server.stdout.data)
        theirs = digit_lines(16384)
        server.write(theirs, background=True)
        self.assertEqual(driver.receive_exactly(len(theirs)), theirs)
        self.exchange(driver, server)


# ---------------------------------------------------------------------------
# The engine as a server for openssl s_client
# ---------------------------------------------------------------------------


class ServerForOpenSSLClientTests(InteropTestCase):
    """Our server, ``openssl s_client`` as the client."""

    def start_client(
        self, context: Context | None = None, **options: object
    ) -> tuple[Driver, peers.OpenSSLClient]:
        listener, port = peers.accept_one()
        options.setdefault("ca_file", self.pki.ca_path)
        client = peers.OpenSSLClient(port, **options)  # type: ignore[arg-type]
        self.addCleanup(client.stop)
        client.start()
        sock = peers.accept(listener)
        self.addCleanup(sock.close)
        conn = Connection(context or self.server_context(), is_client=False)
        return Driver(conn, sock, describe_peer=client.describe), client

    def exchange(self, driver: Driver, client: peers.OpenSSLClient) -> None:
        """Data both ways; s_client closes at end of input; clean exit."""
        client.expect_connected()
        theirs = line("from-openssl")
        client.write(theirs)
        self.assertEqual(driver.receive_exactly(len(theirs)), theirs)
        ours = line("from-engine")
        driver.send_all(ours)
        client.expect_output(ours)
        client.close_stdin()
        driver.receive_until_close()
        self.assertTrue(driver.close_notify_received, "s_client sent no close_notify")
        driver.close()
        self.assertEqual(client.wait(), 0, client.describe())
        self.assertEqual(client.summary("Verification"), "OK", client.describe())

    def serve(
        self, context: Context | None = None, **options: object
    ) -> tuple[Connection, peers.OpenSSLClient]:
        driver, client = self.start_client(context, **options)
        completed = driver.handshake()
        self.assertEqual(completed.version, ProtocolVersion.TLS_1_3)
        self.exchange(driver, client)
        self.assertEqual(client.summary("Protocol version"), "TLSv1.3")
        return driver.conn, client

    # -- cipher suites --------------------------------------------------------

    def check_suite(self, suite: CipherSuite) -> None:
        context = self.server_context(
            cipher_suites=[suite], min_version=ProtocolVersion.TLS_1_3
        )
        conn, client = self.serve(context, ciphersuites=SUITE_NAMES[suite])
        self.assertEqual(conn.cipher_suite, suite)
        self.assertEqual(client.summary("Ciphersuite"), SUITE_NAMES[suite])

    def test_aes_128_gcm(self) -> None:
        self.check_suite(CipherSuite.TLS_AES_128_GCM_SHA256)

    def test_aes_256_gcm(self) -> None:
        self.check_suite(CipherSuite.TLS_AES_256_GCM_SHA384)

    def test_chacha20_poly1305(self) -> None:
        self.check_suite(CipherSuite.TLS_CHACHA20_POLY1305_SHA256)

    def test_client_suite_order_within_ours(self) -> None:
        """s_client offers all three; we pick one of ours, s_client agrees."""
        conn, client = self.serve()
        self.assertEqual(client.summary("Ciphersuite"), SUITE_NAMES[conn.cipher_suite])

    # -- groups -----------------------------------------------------------------

    def check_group(self, group: NamedGroup) -> None:
        openssl_name, brief = GROUP_NAMES[group]
        conn, client = self.serve(groups=openssl_name)
        self.assertEqual(conn.group, group)
        summary = client.summary("Server Temp Key") or ""
        self.assertTrue(summary.startswith(brief), summary)
        self.assertEqual(client.count_in_trace("ClientHello"), 1, client.trace)

    def test_group_x25519(self) -> None:
        self.check_group(NamedGroup.x25519)

    def test_group_p256(self) -> None:
        self.check_group(NamedGroup.secp256r1)

    def test_group_p384(self) -> None:
        self.check_group(NamedGroup.secp384r1)

    def test_hello_retry_request(self) -> None:
        """s_client sends a share for X25519 only; we accept P-256 only: HRR."""
        conn, client = self.serve(
            self.server_context(groups=[NamedGroup.secp256r1]),
            groups="X25519:P-256",
        )
        self.assertEqual(conn.group, NamedGroup.secp256r1)
        self.assertEqual(client.count_in_trace("ClientHello"), 2, client.trace)
        summary = client.summary("Server Temp Key") or ""
        self.assertTrue(summary.startswith("ECDH, prime256v1"), summary)

    def test_prefer_offered_share(self) -> None:
        """Both groups acceptable: the share the client sent avoids an HRR."""
        conn, client = self.serve(
            self.server_context(groups=[NamedGroup.secp256r1, NamedGroup.x25519]),
            groups="X25519:P-256",
        )
        self.assertEqual(conn.group, NamedGroup.x25519)
        self.assertEqual(client.count_in_trace("ClientHello"), 1, client.trace)

    # -- certificates -------------------------------------------------------------

    def check_key_type(self, key_type: str) -> None:
        _, client = self.serve(self.server_context(key_type))
        self.assertEqual(client.summary("Signature type"), SIGNATURE_TYPES[key_type])

    def test_rsa_2048(self) -> None:
        self.check_key_type("rsa-2048")

    def test_ecdsa_p256(self) -> None:
        self.check_key_type("ecdsa-p256")

    def test_ecdsa_p384(self) -> None:
        self.check_key_type("ecdsa-p384")

    def test_ed25519(self) -> None:
        self.check_key_type("ed25519")

    def test_chain_through_intermediate(self) -> None:
        """s_client trusts only the root: we must send the intermediate."""
        issued = self.issue()
        self.assertEqual(len(issued.chain), 2)
        _, client = self.serve(self.server_context(credentials=[issued.credential()]))
        self.assertIn(
            "Peer certificate: O = twisted_sslfile tests, CN = localhost",
            client.stderr.text,
        )

    def test_client_rejects_untrusted_server(self) -> None:
        """s_client trusts another PKI: its unknown_ca alert must reach us.

        OpenSSL sends that alert before it has handshake write keys, so it
        arrives unprotected after we switched our read keys (see
        test_interop_python_ssl for the same case with the stdlib).
        """
        other = CertificateFactory(self.mktemp(), name="Other")
        driver, client = self.start_client(ca_file=other.ca_path)
        with self.assertRaises(RemoteAlertError) as caught:
            driver.handshake()
        self.assertAlert(caught.exception, AlertDescription.unknown_ca)
        client.expect_error_output("unable to get local issuer certificate")

    def check_client_certificate(self, key_type: str) -> None:
        issued = self.issue_client(key_type)
        assert issued.cert_path and issued.key_path
        context = self.server_context(
            client_certificate=ClientCertificatePolicy.REQUIRE,
            trust_roots=self.pki.ca_path,
        )
        conn, client = self.serve(
            context,
            cert=issued.cert_path,
            key=issued.key_path,
            cert_chain=self.intermediates_path(issued),
        )
        self.assertEqual(list(conn.peer_certificates), issued.chain_der)
        # s_client's trace: our CertificateVerify, then its own.
        scheme = conn.peer_signature_scheme
        assert scheme is not None
        self.assertEqual(traced_signature_schemes(client)[-1:], [scheme.name])

    def test_client_certificate_ecdsa(self) -> None:
        self.check_client_certificate("ecdsa-p256")

    def test_client_certificate_rsa(self) -> None:
        self.check_client_certificate("rsa-2048")

    def test_client_certificate_ed25519(self) -> None:
        self.check_client_certificate("ed25519")

    def test_client_certificate_required_but_missing(self) -> None:
        context = self.server_context(
            client_certificate=ClientCertificatePolicy.REQUIRE,
            trust_roots=self.pki.ca_path,
        )
        driver, client = self.start_client(context)
        with self.assertRaises(TLSError) as caught:
            driver.handshake()
        self.assertAlert(caught.exception, AlertDescription.certificate_required)
        client.expect_error_output("certificate required")

    def test_client_certificate_requested_not_sent(self) -> None:
        context = self.server_context(
            client_certificate=ClientCertificatePolicy.REQUEST,
            trust_roots=self.pki.ca_path,
        )
        conn, _ = self.serve(context)
        self.assertEqual(conn.peer_certificates, ())

    def test_client_ca_names(self) -> None:
        """Issue 9.16: the CertificateRequest's certificate_authorities
        extension (RFC 8446 §4.2.4) names our client CAs, and s_client lists
        them; without explicit client CAs the extension is left out."""
        self.check_client_ca_names(ProtocolVersion.TLS_1_3)

    # -- ALPN -------------------------------------------------------------------

    def test_alpn_agreement(self) -> None:
        """The server's preference wins (RFC 7301 §3.2)."""
        conn, client = self.serve(
            self.server_context(alpn_protocols=[b"h2", b"http/1.1"]),
            alpn="http/1.1,h2",
        )
        self.assertEqual(conn.alpn_protocol, b"h2")
        # What s_client saw in EncryptedExtensions: the ALPN extension, "h2".
        self.assertRegex(
            client.trace,
            r"EncryptedExtensions, Length=\d+\n(?:\s+.*\n)*?"
            r"\s+extension_type=application_layer_protocol_negotiation\(16\), "
            r"length=\d+\n\s+h2\n",
        )

    def test_alpn_no_overlap(self) -> None:
        driver, client = self.start_client(
            self.server_context(alpn_protocols=[b"h2"]), alpn="http/1.1"
        )
        with self.assertRaises(TLSError) as caught:
            driver.handshake()
        self.assertAlert(caught.exception, AlertDescription.no_application_protocol)
        client.expect_error_output("no application protocol")

    def test_alpn_client_without_alpn(self) -> None:
        conn, _ = self.serve(self.server_context(alpn_protocols=[b"h2"]))
        self.assertIsNone(conn.alpn_protocol)

    # -- KeyUpdate ----------------------------------------------------------------

    def test_key_update_from_us(self) -> None:
        driver, client = self.start_client()
        driver.handshake()
        client.expect_connected()
        for round_ in range(3):
            driver.conn.key_update(request_peer=True)
            ours = line(f"after-our-update-{round_}")
            driver.send_all(ours)
            client.expect_output(ours)
            theirs = line(f"their-reply-{round_}")
            client.write(theirs)
            self.assertEqual(driver.receive_exactly(len(theirs)), theirs)
        self.assertEqual(driver.events.count(KeyUpdated("receive")), 3)
        self.exchange(driver, client)

    def test_key_update_from_openssl(self) -> None:
        """s_client's ``K`` command: KeyUpdate with update_requested."""
        driver, client = self.start_client()
        driver.handshake()
        client.expect_connected()
        for round_ in range(3):
            client.key_update(request_peer=True)
            theirs = line(f"after-their-update-{round_}")
            client.write(theirs)
            self.assertEqual(driver.receive_exactly(len(theirs)), theirs)
            ours = line(f"our-reply-{round_}")
            driver.send_all(ours)
            client.expect_output(ours)
        client.expect_error_output("KEYUPDATE")
        self.assertEqual(driver.events.count(KeyUpdated("receive")), 3)
        self.assertEqual(driver.events.count(KeyUpdated("send")), 3)
        self.exchange(driver, client)

    def test_key_update_flood_from_openssl(self) -> None:
        """32 ``K`` commands in a row are answered, application data starts
        the count again, and the 33rd in a row ends the connection with
        unexpected_message, which s_client reports."""
        driver, client = self.start_client()
        driver.handshake()
        client.expect_connected()
        for round_ in range(2):
            for _ in range(32):
                client.key_update(request_peer=True)
            theirs = line(f"after-32-updates-{round_}")
            client.write(theirs)
            self.assertEqual(driver.receive_exactly(len(theirs)), theirs)
        self.assertEqual(driver.events.count(KeyUpdated("send")), 64)
        for _ in range(33):
            client.key_update(request_peer=True)
        with self.assertRaises(TLSError) as caught:
            driver.wait_for(lambda: False, "reading the KeyUpdate flood")
        self.assertAlert(caught.exception, AlertDescription.unexpected_message)
        events = driver.events + caught.exception.events
        self.assertEqual(events.count(KeyUpdated("receive")), 64 + 32)
        client.expect_error_output("unexpected message")

    # -- volume -------------------------------------------------------------------

    def test_one_mebibyte_each_way(self) -> None:
        driver, client = self.start_client(commands=False)
        driver.handshake()
        client.expect_connected()
        theirs = digit_lines(16384)
        client.write(theirs, background=True)
        self.assertEqual(driver.receive_exactly(len(theirs)), theirs)
        ours = digit_lines(16384)
        driver.send_all(ours)
        client.expect_output(ours[-65:])
        self.assertEqual(client.stdout.data, ours)
        self.exchange(driver, client)
