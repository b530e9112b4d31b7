"""Tests for twisted_sslfile.x509 (and the test PKI in tests/certs.py).

The verification matrix uses certificates made by :mod:`tests.certs` at a
fixed instant, ``NOW``, so every validity window is exact and the tests do
not depend on the wall clock.  The interop tests at the end check that the
same certificates satisfy OpenSSL 3.0 (through Python's ``ssl`` in strict
mode, and the ``openssl`` command when present).
"""

from __future__ import annotations

import datetime
import hashlib
import os
import shutil
import ssl
import stat
import subprocess
import sys

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, padding, rsa
from cryptography.x509.verification import Store
from twisted.trial.unittest import SynchronousTestCase

from tests.certs import KEY_TYPES, CertificateFactory, make_key
from twisted_sslfile import x509 as tx509
from twisted_sslfile.constants import SignatureScheme
from twisted_sslfile.x509 import (
    ConfigurationError,
    TrustRoots,
)

NOW = datetime.datetime(2031, 5, 17, 12, 0, 0, tzinfo=datetime.UTC)
DAY = datetime.timedelta(days=1)


def der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


class LoadingTests(SynchronousTestCase):
    """PEM/DER loading: every error names the file."""

    def setUp(self) -> None:
        self.dir = self.mktemp()
        self.pki = CertificateFactory(self.dir)
        self.server = self.pki.server("example.com")

    def write(self, name: str, data: bytes) -> str:
        path = os.path.join(self.dir, name)
        with open(path, "wb") as f:
            f.write(data)
        return path

    def assertNamesFile(self, exc: ConfigurationError, path: str) -> None:
        self.assertIn(path, str(exc))
        self.assertEqual(exc.path, path)

    def test_load_chain(self) -> None:
        chain = tx509.load_certificate_chain(self.server.chain_path)
        self.assertEqual(chain, self.server.chain)

    def test_load_der(self) -> None:
        path = self.write("leaf.der", self.server.der)
        self.assertEqual(tx509.load_certificates(path), [self.server.certificate])

    def test_missing_file(self) -> None:
        path = os.path.join(self.dir, "nope.pem")
        exc = self.assertRaises(ConfigurationError, tx509.load_certificates, path)
        self.assertNamesFile(exc, path)
        self.assertIn("does not exist", str(exc))
        self.assertIsInstance(exc, ValueError)

    def test_directory_given_as_file(self) -> None:
        exc = self.assertRaises(ConfigurationError, tx509.load_certificates, self.dir)
        self.assertIn("is a directory", str(exc))

    def test_key_file_given_as_certificate(self) -> None:
        exc = self.assertRaises(
            ConfigurationError, tx509.load_certificates, self.server.key_path
        )
        self.assertNamesFile(exc, self.server.key_path)
        self.assertIn("no certificate found", str(exc))
        self.assertIn("PRIVATE KEY", str(exc))

    def test_empty_file(self) -> None:
        path = self.write("empty.pem", b"")
        exc = self.assertRaises(ConfigurationError, tx509.load_certificates, path)
        self.assertNamesFile(exc, path)

    def test_garbage_file(self) -> None:
        path = self.write("garbage.pem", b"this is not a certificate\n")
        exc = self.assertRaises(ConfigurationError, tx509.load_certificates, path)
        self.assertNamesFile(exc, path)
        self.assertIn("neither a PEM file", str(exc))

    def test_corrupt_second_certificate(self) -> None:
        good = self.server.certificate.public_bytes(serialization.Encoding.PEM)
        bad = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
        path = self.write("corrupt.pem", good + bad)
        exc = self.assertRaises(ConfigurationError, tx509.load_certificates, path)
        self.assertIn(f"certificate #2 in {path}", str(exc))

    def test_private_key(self) -> None:
        key = tx509.load_private_key(self.server.key_path)
        self.assertEqual(
            key.public_key().public_bytes(
                serialization.Encoding.DER,
                serialization.PublicFormat.SubjectPublicKeyInfo,
            ),
            self.server.certificate.public_key().public_bytes(
                serialization.Encoding.DER,
                serialization.PublicFormat.SubjectPublicKeyInfo,
            ),
        )

    def test_private_key_der(self) -> None:
        data = self.server.key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        path = self.write("key.der", data)
        self.assertIsInstance(tx509.load_private_key(path), ec.EllipticCurvePrivateKey)

    def test_encrypted_key(self) -> None:
        leaf = self.pki.server("secret.example", key_password="s3cret")
        for password in ("s3cret", b"s3cret", lambda: "s3cret"):
            key = tx509.load_private_key(leaf.key_path, password)
            self.assertIsInstance(key, ec.EllipticCurvePrivateKey)

    def test_encrypted_key_without_password(self) -> None:
        leaf = self.pki.server("secret.example", key_password="s3cret")
        exc = self.assertRaises(
            ConfigurationError, tx509.load_private_key, leaf.key_path
        )
        self.assertNamesFile(exc, leaf.key_path)
        self.assertIn("encrypted; a password is needed", str(exc))

    def test_wrong_password(self) -> None:
        leaf = self.pki.server("secret.example", key_password="s3cret")
        exc = self.assertRaises(
            ConfigurationError, tx509.load_private_key, leaf.key_path, "wrong"
        )
        self.assertNamesFile(exc, leaf.key_path)
        self.assertIn("wrong password", str(exc))

    def test_password_for_plain_key(self) -> None:
        exc = self.assertRaises(
            ConfigurationError, tx509.load_private_key, self.server.key_path, "x"
        )
        self.assertIn("not encrypted", str(exc))

    def test_no_key_in_file(self) -> None:
        exc = self.assertRaises(
            ConfigurationError, tx509.load_private_key, self.server.cert_path
        )
        self.assertNamesFile(exc, self.server.cert_path)
        self.assertIn("no private key", str(exc))

    def test_unsupported_key_type(self) -> None:
        key = dsa.generate_private_key(2048)
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        path = self.write("dsa.pem", pem)
        exc = self.assertRaises(ConfigurationError, tx509.load_private_key, path)
        self.assertNamesFile(exc, path)
        self.assertIn("DSA", str(exc))

    def test_combined_file(self) -> None:
        chain, key = tx509.load_cert_and_key(self.server.combined_path)
        self.assertEqual(chain, self.server.chain)
        self.assertIsInstance(key, ec.EllipticCurvePrivateKey)

    def test_combined_file_without_key(self) -> None:
        exc = self.assertRaises(
            ConfigurationError, tx509.load_cert_and_key, self.server.chain_path
        )
        self.assertNamesFile(exc, self.server.chain_path)
        self.assertIn("no key file was given", str(exc))


class TrustRootTests(SynchronousTestCase):
    """Trust roots from files, directories, lists, Stores and the system."""

    def setUp(self) -> None:
        self.dir = self.mktemp()
        self.pki = CertificateFactory(self.dir, now=NOW)
        self.server = self.pki.server("example.com")

    def verify(self, roots: TrustRoots) -> list[x509.Certificate]:
        return tx509.verify_server_certificates(
            self.server.chain_der,
            trust_roots=roots,
            server_name="example.com",
            time=NOW,
        )

    def test_file(self) -> None:
        roots = tx509.load_trust_roots(self.pki.ca_path)
        self.assertEqual(roots.certificates, (self.pki.root.certificate,))
        self.assertEqual(roots.source, self.pki.ca_path)
        self.assertEqual(len(self.verify(roots)), 3)

    def test_directory(self) -> None:
        directory = os.path.join(self.dir, "cadir")
        os.mkdir(directory)
        shutil.copy(self.pki.ca_path, os.path.join(directory, "root.pem"))
        with open(os.path.join(directory, "README"), "w") as f:
            f.write("not a certificate\n")
        other = CertificateFactory(now=NOW)
        tx509.write_pem(os.path.join(directory, "other.crt"), other.root.certificate)
        roots = tx509.load_trust_roots(directory)
        self.assertEqual(len(roots.certificates), 2)
        self.assertEqual(len(self.verify(roots)), 3)

    def test_empty_directory(self) -> None:
        directory = os.path.join(self.dir, "empty")
        os.mkdir(directory)
        exc = self.assertRaises(ConfigurationError, tx509.load_trust_roots, directory)
        self.assertIn(directory, str(exc))

    def test_missing_path(self) -> None:
        path = os.path.join(self.dir, "missing.pem")
        exc = self.assertRaises(ConfigurationError, tx509.load_trust_roots, path)
        self.assertIn(path, str(exc))

    def test_list_of_certificates(self) -> None:
        roots = tx509.load_trust_roots(self.pki.trust_roots * 2)
        self.assertEqual(len(roots.certificates), 1)  # duplicates dropped
        self.assertEqual(len(self.verify(roots)), 3)

    def test_empty_list(self) -> None:
        self.assertRaises(ConfigurationError, tx509.load_trust_roots, [])

    def test_list_with_non_certificate(self) -> None:
        exc = self.assertRaises(
            ConfigurationError, tx509.load_trust_roots, [b"not a certificate"]
        )
        self.assertIn("cryptography.x509.Certificate", str(exc))

    def test_store(self) -> None:
        roots = tx509.load_trust_roots(Store(self.pki.trust_roots))
        self.assertEqual(roots.certificates, ())
        self.assertEqual(len(self.verify(roots)), 3)

    def test_system_bundle_from_environment(self) -> None:
        # ssl.get_default_verify_paths() reads SSL_CERT_FILE at call time.
        empty = os.path.join(self.dir, "no-such-dir")
        self.patch(
            os, "environ", {"SSL_CERT_FILE": self.pki.ca_path, "SSL_CERT_DIR": empty}
        )
        roots = tx509.system_trust_roots()
        self.assertEqual(roots.certificates, (self.pki.root.certificate,))

    def test_no_system_bundle(self) -> None:
        missing = os.path.join(self.dir, "missing")
        fake = ssl.DefaultVerifyPaths(missing, missing, "", missing, "", missing)
        self.patch(tx509.ssl, "get_default_verify_paths", lambda: fake)
        self.patch(sys, "modules", {**sys.modules, "certifi": None})
        exc = self.assertRaises(ConfigurationError, tx509.system_trust_roots)
        self.assertIn("no system CA bundle found", str(exc))
        self.assertIn(missing, str(exc))
        self.assertIn("trust_roots=", str(exc))

    def test_certifi_fallback(self) -> None:
        missing = os.path.join(self.dir, "missing")
        fake = ssl.DefaultVerifyPaths(missing, missing, "", missing, "", missing)
        self.patch(tx509.ssl, "get_default_verify_paths", lambda: fake)

        class FakeCertifi:
            @staticmethod
            def where() -> str:
                return self.pki.ca_path

        self.patch(sys, "modules", {**sys.modules, "certifi": FakeCertifi})
        roots = tx509.system_trust_roots()
        self.assertEqual(roots.source, self.pki.ca_path)

    def test_real_system_bundle(self) -> None:
        # Debian's ca-certificates provides the bundle (.ci/run installs it).
        roots = tx509.system_trust_roots()
        self.assertGreater(len(roots.certificates), 10)


class GenerationTests(SynchronousTestCase):
    """generate_self_signed, fingerprints, write_pem, key helpers."""

    def test_self_signed_key_types(self) -> None:
        for key_type in (*KEY_TYPES, "ecdsa-p521", "ed448"):
            cert, key = tx509.generate_self_signed(
                ["example.com", "127.0.0.1"], key_type=key_type
            )
            self.assertEqual(
                tx509.describe_key(key), tx509.describe_key(cert.public_key())
            )
            for name in ("example.com", "127.0.0.1"):
                path = tx509.verify_server_certificates(
                    [der(cert)],
                    trust_roots=[cert],
                    server_name=name,
                    time=datetime.datetime.now(datetime.UTC),
                )
                self.assertEqual(path, [cert])

    def test_self_signed_validity(self) -> None:
        cert, _ = tx509.generate_self_signed("h.example", days=10, now=NOW)
        self.assertEqual(cert.not_valid_after_utc, NOW + 10 * DAY)
        self.assertLess(cert.not_valid_before_utc, NOW)
        self.assertRaises(ValueError, tx509.generate_self_signed, [])
        self.assertRaises(ValueError, tx509.generate_self_signed, "x", days=0)
        self.assertRaises(ValueError, tx509.generate_self_signed, "x", key_type="dsa")

    def test_self_signed_as_client_certificate(self) -> None:
        cert, _ = tx509.generate_self_signed("client.example", now=NOW)
        path = tx509.verify_client_certificates(
            [der(cert)], trust_roots=[cert], time=NOW
        )
        self.assertEqual(path, [cert])

    def test_fingerprint(self) -> None:
        cert, _ = tx509.generate_self_signed("example.com")
        expected = hashlib.sha256(der(cert)).hexdigest().upper()
        fingerprint = tx509.fingerprint_sha256(cert)
        self.assertEqual(fingerprint.replace(":", ""), expected)
        self.assertEqual(len(fingerprint), 32 * 3 - 1)
        self.assertEqual(tx509.fingerprint_sha256(der(cert)), fingerprint)

    def test_write_pem(self) -> None:
        directory = self.mktemp()
        os.mkdir(directory)
        cert, key = tx509.generate_self_signed("example.com")
        path = tx509.write_pem(os.path.join(directory, "both.pem"), [cert], key)
        self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600)
        chain, loaded = tx509.load_cert_and_key(path)
        self.assertEqual(chain, [cert])
        self.assertEqual(loaded.private_numbers(), key.private_numbers())
        encrypted = tx509.write_pem(
            os.path.join(directory, "enc.pem"), key, password="pw"
        )
        self.assertRaises(ConfigurationError, tx509.load_private_key, encrypted)
        tx509.load_private_key(encrypted, "pw")
        cert_only = tx509.write_pem(os.path.join(directory, "cert.pem"), cert)
        self.assertEqual(tx509.load_certificates(cert_only), [cert])
        self.assertEqual(stat.S_IMODE(os.stat(cert_only).st_mode), 0o644)

    def test_write_pem_replaces_an_open_file_privately(self) -> None:
        """
        A key written over an existing 0644 file ends up 0600 (it used to
        keep the old mode), and a symlink at the name is replaced, not
        followed.
        """
        directory = self.mktemp()
        os.mkdir(directory)
        path = os.path.join(directory, "key.pem")
        with open(path, "wb") as f:
            f.write(b"old")
        os.chmod(path, 0o644)
        _, key = tx509.generate_self_signed("example.com")
        tx509.write_pem(path, key)
        self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600)
        victim = os.path.join(directory, "victim")
        with open(victim, "wb") as f:
            f.write(b"untouched")
        os.unlink(path)
        os.symlink(victim, path)
        tx509.write_pem(path, key)
        self.assertFalse(os.path.islink(path))
        self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600)
        with open(victim, "rb") as f:
            self.assertEqual(f.read(), b"untouched")

    def test_key_types(self) -> None:
        self.assertEqual(tx509.normalize_key_type("P256"), "ecdsa-p256")
        self.assertEqual(tx509.normalize_key_type("rsa"), "rsa-2048")
        self.assertRaises(ValueError, tx509.normalize_key_type, "dsa")

    def test_signature_schemes(self) -> None:
        pki = CertificateFactory(now=NOW)
        ss = SignatureScheme
        cases = {
            "ecdsa-p256": (
                (ss.ecdsa_secp256r1_sha256,),
                ss.ecdsa_secp256r1_sha256,
            ),
            "ecdsa-p384": ((ss.ecdsa_secp384r1_sha384,), ss.ecdsa_secp384r1_sha384),
            "ed25519": ((ss.ed25519,), ss.ed25519),
            "rsa-2048": (
                (
                    ss.rsa_pss_rsae_sha256,
                    ss.rsa_pss_rsae_sha384,
                    ss.rsa_pss_rsae_sha512,
                ),
                ss.rsa_pkcs1_sha256,
            ),
        }
        for key_type, (tls13, also12) in cases.items():
            cert = pki.server("x.example", key_type=key_type).certificate
            self.assertEqual(
                tx509.signature_schemes_for_certificate(cert, 0x0304), tls13
            )
            schemes12 = tx509.signature_schemes_for_certificate(cert, 0x0303)
            self.assertIn(also12, schemes12)
            for scheme in tls13:
                self.assertIn(scheme, schemes12)
        # TLS 1.2: ECDSA schemes name only the hash, so P-384 may use SHA-256.
        cert = pki.server("x.example", key_type="ecdsa-p384").certificate
        self.assertIn(
            ss.ecdsa_secp256r1_sha256,
            tx509.signature_schemes_for_certificate(cert, 0x0303),
        )

    def test_normalize_server_name(self) -> None:
        n = tx509.normalize_server_name
        self.assertEqual(n("Example.COM."), ("dns", "example.com"))
        self.assertEqual(n("bücher.example"), ("dns", "xn--bcher-kva.example"))
        self.assertEqual(n("[::1]")[0], "ip")
        self.assertEqual(str(n("127.0.0.1")[1]), "127.0.0.1")
        for bad in ("", ".", "a..b"):
            self.assertRaises(ValueError, n, bad)


class CertsModuleTests(SynchronousTestCase):
    """tests/certs.py itself: the PKI helpers every other test relies on."""

    def test_files_and_objects(self) -> None:
        pki = CertificateFactory(self.mktemp())
        leaf = pki.server("example.com", ip_addresses=["::1"])
        self.assertEqual(leaf.chain, [leaf.certificate, pki.intermediate.certificate])
        self.assertEqual(leaf.root, pki.root.certificate)
        for path in (
            leaf.cert_path,
            leaf.chain_path,
            leaf.key_path,
            leaf.combined_path,
            leaf.ca_path,
        ):
            self.assertTrue(os.path.isfile(path), path)
        self.assertEqual(tx509.load_certificates(leaf.chain_path), leaf.chain)
        self.assertEqual(tx509.load_certificates(leaf.ca_path), [leaf.root])
        self.assertEqual(stat.S_IMODE(os.stat(leaf.key_path).st_mode), 0o600)
        self.assertEqual(
            tx509.certificate_ip_addresses(leaf.certificate)[0].compressed, "::1"
        )

    def test_no_directory(self) -> None:
        pki = CertificateFactory()
        leaf = pki.server()
        self.assertIsNone(leaf.cert_path)
        self.assertIsNone(pki.ca_path)

    def test_broken_intermediates(self) -> None:
        """The knobs the chain-refusal tests turn do what they say."""
        pki = CertificateFactory(now=NOW, root_key_type="rsa-2048")

        def constraints(ca: object) -> x509.BasicConstraints | None:
            try:
                return ca.certificate.extensions.get_extension_for_class(  # type: ignore[attr-defined]
                    x509.BasicConstraints
                ).value
            except x509.ExtensionNotFound:
                return None

        self.assertFalse(constraints(pki.make_intermediate(is_ca=False)).ca)  # type: ignore[union-attr]
        self.assertIsNone(constraints(pki.make_intermediate(is_ca=None)))
        sha1 = pki.make_intermediate(sha1_signature=True).certificate
        self.assertIsInstance(sha1.signature_hash_algorithm, hashes.SHA1)
        # The rewritten certificate is really signed by the root, with SHA-1.
        root_key = pki.root.certificate.public_key()
        assert isinstance(root_key, rsa.RSAPublicKey)
        root_key.verify(
            sha1.signature,
            sha1.tbs_certificate_bytes,
            padding.PKCS1v15(),
            hashes.SHA1(),
        )
        ecdsa = CertificateFactory(now=NOW)
        self.assertRaises(ValueError, ecdsa.make_intermediate, sha1_signature=True)

    def test_direct_leaf(self) -> None:
        pki = CertificateFactory(now=NOW)
        leaf = pki.server("example.com", direct=True)
        self.assertEqual(leaf.chain, [leaf.certificate])
        self.assertEqual(leaf.certificate.issuer, pki.root.certificate.subject)

    def test_rsa_keys_are_pooled_but_distinct_in_a_row(self) -> None:
        first, second = make_key("rsa-2048"), make_key("rsa-2048")
        self.assertNotEqual(first.private_numbers(), second.private_numbers())

    def test_factories_do_not_trust_each_other(self) -> None:
        a = CertificateFactory(now=NOW, root_key_type="rsa-2048")
        b = CertificateFactory(now=NOW, root_key_type="rsa-2048")
        self.assertNotEqual(a.root.certificate.subject, b.root.certificate.subject)

    def test_eddsa_ca_refused(self) -> None:
        self.assertRaises(ValueError, CertificateFactory, root_key_type="ed25519")

    def test_rsa_and_p384_cas(self) -> None:
        pki = CertificateFactory(
            now=NOW, root_key_type="rsa-2048", intermediate_key_type="ecdsa-p384"
        )
        leaf = pki.server("example.com", key_type="ed25519")
        path = tx509.verify_server_certificates(
            leaf.chain, trust_roots=pki.trust_roots, server_name="example.com", time=NOW
        )
        self.assertEqual(path[-1], pki.root.certificate)


def _memory_handshake(
    client_ctx: ssl.SSLContext, server_ctx: ssl.SSLContext, server_hostname: str
) -> tuple[ssl.SSLObject, ssl.SSLObject]:
    """Run a handshake between two in-memory ssl objects."""
    c_in, c_out, s_in, s_out = (ssl.MemoryBIO() for _ in range(4))
    client = client_ctx.wrap_bio(c_in, c_out, server_hostname=server_hostname)
    server = server_ctx.wrap_bio(s_in, s_out, server_side=True)
    done = {"client": False, "server": False}
    for _ in range(20):
        for name, obj in (("client", client), ("server", server)):
            if done[name]:
                continue
            try:
                obj.do_handshake()
                done[name] = True
            except ssl.SSLWantReadError:
                pass
        s_in.write(c_out.read())
        c_in.write(s_out.read())
        if all(done.values()):
            return client, server
    raise AssertionError("handshake did not finish")


class OpenSSLInteropTests(SynchronousTestCase):
    """The test PKI is acceptable to OpenSSL 3.0, in X.509 strict mode."""

    def setUp(self) -> None:
        # Real time: OpenSSL verifies against the wall clock.
        self.pki = CertificateFactory(self.mktemp())

    def contexts(self, server, client=None) -> tuple[ssl.SSLContext, ssl.SSLContext]:
        server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        server_ctx.load_cert_chain(server.combined_path)
        client_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        client_ctx.load_verify_locations(server.ca_path)
        client_ctx.verify_flags |= ssl.VERIFY_X509_STRICT
        if client is not None:
            server_ctx.verify_mode = ssl.CERT_REQUIRED
            server_ctx.verify_flags |= ssl.VERIFY_X509_STRICT
            server_ctx.load_verify_locations(client.ca_path)
            client_ctx.load_cert_chain(client.combined_path)
        return client_ctx, server_ctx

    def test_python_ssl_accepts_chains(self) -> None:
        for key_type in KEY_TYPES:
            server = self.pki.server("localhost", key_type=key_type)
            client = self.pki.client("alice", key_type=key_type)
            client_ctx, server_ctx = self.contexts(server, client)
            c, s = _memory_handshake(client_ctx, server_ctx, "localhost")
            self.assertEqual(
                c.getpeercert()["subject"][-1][0], ("commonName", "localhost")
            )
            self.assertIsNotNone(s.getpeercert())

    def test_python_ssl_accepts_ip_san(self) -> None:
        server = self.pki.server("server", ip_addresses=["127.0.0.1"])
        client_ctx, server_ctx = self.contexts(server)
        _memory_handshake(client_ctx, server_ctx, "127.0.0.1")

    def test_python_ssl_rejects_wrong_host(self) -> None:
        server = self.pki.server("localhost")
        client_ctx, server_ctx = self.contexts(server)
        self.assertRaises(
            ssl.SSLCertVerificationError,
            _memory_handshake,
            client_ctx,
            server_ctx,
            "other.example",
        )

    def test_python_ssl_accepts_self_signed(self) -> None:
        directory = self.mktemp()
        os.mkdir(directory)
        for key_type in ("ecdsa-p256", "rsa-2048", "ed25519"):
            cert, key = tx509.generate_self_signed(["localhost"], key_type=key_type)
            path = tx509.write_pem(
                os.path.join(directory, f"{key_type}.pem"), cert, key
            )
            server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            server_ctx.load_cert_chain(path)
            client_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            client_ctx.load_verify_locations(
                cadata=tx509.certificate_to_pem(cert).decode()
            )
            client_ctx.verify_flags |= ssl.VERIFY_X509_STRICT
            _memory_handshake(client_ctx, server_ctx, "localhost")

    def test_openssl_verify(self) -> None:
        openssl = shutil.which("openssl")
        self.assertIsNotNone(
            openssl, "the openssl command is needed (.ci/run installs it)"
        )
        for key_type in KEY_TYPES:
            for purpose, leaf in (
                ("sslserver", self.pki.server("localhost", key_type=key_type)),
                ("sslclient", self.pki.client("alice", key_type=key_type)),
            ):
                result = subprocess.run(
                    [
                        openssl,
                        "verify",
                        "-x509_strict",
                        "-purpose",
                        purpose,
                        "-CAfile",
                        leaf.ca_path,
                        "-untrusted",
                        leaf.chain_path,
                        leaf.cert_path,
                    ],
                    capture_output=True,
                    text=True,
                    timeout=30,
                    check=False,
                )
                self.assertEqual(
                    result.returncode, 0, f"{key_type} {purpose}: {result.stderr}"
                )
