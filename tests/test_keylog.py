"""Key logging: ``Context(keylog=...)`` and :class:`KeyLogFile`.

The proof that a key log is right is that someone else can use it:

* OpenSSL, on the other end of the same connection, logs its own secrets
  with ``-keylogfile``; both logs must hold the same lines (TLS 1.3 and
  TLS 1.2, our client and our server).
* The records OpenSSL sent are decrypted here from the logged secrets
  alone, with a key derivation written out in this file from RFC 8446
  §7.1/§7.3 and RFC 5246 §5/§6.3 on top of ``cryptography``'s HKDF, HMAC
  and AES-GCM - not with the engine's key schedule.  That is what Wireshark
  does with the file.

And the rules: nothing is logged unless asked, the library never reads
``SSLKEYLOGFILE``, and the file is appended to, private, and refused when
others own or may write it.
"""

from __future__ import annotations

import os
import socket
import stat
import struct
import warnings

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand
from twisted.trial.unittest import SynchronousTestCase

from tests import peers
from tests.certs import CertificateFactory
from tests.driver import Driver
from tests.test_connection import pump
from tests.test_interop_openssl import line
from twisted_sslfile import KeyLogFile
from twisted_sslfile._files import InsecureFileWarning, UnsafeFileError
from twisted_sslfile.constants import AlertDescription, ProtocolVersion
from twisted_sslfile.context import Context
from twisted_sslfile.engine.connection import Connection
from twisted_sslfile.errors import InternalError

TLS13 = ProtocolVersion.TLS_1_3
TLS12 = ProtocolVersion.TLS_1_2


def read_log(path: str) -> set[str]:
    """The lines of an NSS key log, comments left out."""
    with open(path, encoding="ascii") as f:
        return {
            text for text in f.read().splitlines() if text and not text.startswith("#")
        }


def secrets_by_label(lines: set[str]) -> dict[str, bytes]:
    found = {}
    for text in lines:
        label, _random, secret = text.split()
        found[label] = bytes.fromhex(secret)
    return found


# -- an independent decryption, from the RFCs -----------------------------


def records(stream: bytes) -> list[tuple[int, bytes, bytes]]:
    """(content type, header, fragment) for each TLS record in ``stream``."""
    out = []
    while len(stream) >= 5:
        length = struct.unpack("!H", stream[3:5])[0]
        out.append((stream[0], stream[:5], stream[5 : 5 + length]))
        stream = stream[5 + length :]
    return out


def hkdf_expand_label(secret: bytes, label: bytes, length: int) -> bytes:
    """RFC 8446 §7.1 HKDF-Expand-Label with an empty context, SHA-256."""
    full = b"tls13 " + label
    info = struct.pack("!H", length) + bytes([len(full)]) + full + b"\x00"
    return HKDFExpand(hashes.SHA256(), length, info).derive(secret)


def tls13_decrypt(secret: bytes, sealed: list[tuple[bytes, bytes]]) -> list[bytes]:
    """Open TLS_AES_128_GCM_SHA256 records (header, fragment) in order with
    the traffic ``secret`` (RFC 8446 §5.2, §5.3, §7.3); stop at the first
    that does not open.  Returns the inner plaintexts, type byte last."""
    key = hkdf_expand_label(secret, b"key", 16)
    iv = hkdf_expand_label(secret, b"iv", 12)
    opened = []
    for sequence, (header, fragment) in enumerate(sealed):
        nonce = bytes(
            a ^ b for a, b in zip(iv, sequence.to_bytes(12, "big"), strict=True)
        )
        try:
            inner = AESGCM(key).decrypt(nonce, fragment, header)
        except InvalidTag:
            break
        opened.append(inner.rstrip(b"\x00"))
    return opened


def p_sha256(secret: bytes, seed: bytes, length: int) -> bytes:
    """RFC 5246 §5 P_SHA256."""
    out, a = b"", seed
    while len(out) < length:
        mac = hmac.HMAC(secret, hashes.SHA256())
        mac.update(a)
        a = mac.finalize()
        mac = hmac.HMAC(secret, hashes.SHA256())
        mac.update(a + seed)
        out += mac.finalize()
    return out[:length]


def tls12_server_keys(
    master: bytes, client_random: bytes, server_random: bytes
) -> tuple[bytes, bytes]:
    """The server write key and salt of an AES-128-GCM suite (RFC 5246
    §6.3, RFC 5288 §3): no MAC keys, 16-byte keys, 4-byte implicit IVs."""
    block = p_sha256(master, b"key expansion" + server_random + client_random, 40)
    return block[16:32], block[36:40]


def tls12_decrypt(
    key: bytes, salt: bytes, sealed: list[tuple[int, bytes]]
) -> list[bytes]:
    """Open TLS 1.2 AES-GCM records (type, fragment), sequence from 0."""
    opened = []
    for sequence, (content_type, fragment) in enumerate(sealed):
        explicit, ciphertext = fragment[:8], fragment[8:]
        length = len(ciphertext) - 16
        aad = struct.pack("!QBHH", sequence, content_type, 0x0303, length)
        opened.append(AESGCM(key).decrypt(salt + explicit, ciphertext, aad))
    return opened


class RecordingConnection(Connection):
    """Keeps every byte the peer sent: the capture Wireshark would have."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.captured = bytearray()

    def receive_data(self, data: bytes) -> list:  # type: ignore[override]
        self.captured += data
        return super().receive_data(data)


# -- the rules ------------------------------------------------------------


class KeyLogOptionTests(SynchronousTestCase):
    """Off unless asked; never from the environment; both ends agree."""

    def setUp(self) -> None:
        self.pki = CertificateFactory(self.mktemp())
        leaf = self.pki.server("example.com")
        self.credentials = [leaf.credential()]

    def handshake(
        self, client_log: object = None, server_log: object = None, **options: object
    ) -> None:
        client = Connection(
            Context(trust_roots=self.pki.trust_roots, keylog=client_log, **options),  # type: ignore[arg-type]
            is_client=True,
            server_name="example.com",
        )
        server = Connection(
            Context(credentials=self.credentials, keylog=server_log, **options),  # type: ignore[arg-type]
            is_client=False,
        )
        client.start()
        pump(client, server)
        self.assertIsNotNone(client.handshake_result)

    def test_off_by_default(self) -> None:
        self.assertIsNone(Context().keylog)

    def test_environment_is_not_read(self) -> None:
        """SSLKEYLOGFILE means nothing to the library (only the CLI reads it)."""
        path = os.path.abspath(self.mktemp())
        self.patch(os, "environ", {**os.environ, "SSLKEYLOGFILE": path})
        self.handshake()
        self.assertFalse(os.path.exists(path))

    def test_both_ends_log_the_same(self) -> None:
        for version, labels in (
            (
                TLS13,
                {
                    "CLIENT_HANDSHAKE_TRAFFIC_SECRET",
                    "SERVER_HANDSHAKE_TRAFFIC_SECRET",
                    "CLIENT_TRAFFIC_SECRET_0",
                    "SERVER_TRAFFIC_SECRET_0",
                    "EXPORTER_SECRET",
                },
            ),
            (TLS12, {"CLIENT_RANDOM"}),
        ):
            client_lines: list[str] = []
            server_lines: list[str] = []
            self.handshake(
                client_lines.append, server_lines.append, max_version=version
            )
            self.assertEqual(client_lines, server_lines)
            self.assertEqual({text.split()[0] for text in client_lines}, labels)
            self.assertEqual(len(client_lines), len(labels))

    def test_failing_callable_fails_the_handshake(self) -> None:
        """A key log that cannot be written is not silently skipped."""

        def broken(text: str) -> None:
            raise OSError("disk full")

        with self.assertRaises(InternalError) as caught:
            self.handshake(client_log=broken)
        self.assertEqual(caught.exception.alert, AlertDescription.internal_error)
        self.assertIn("disk full", str(caught.exception))

    def test_not_callable_refused(self) -> None:
        with self.assertRaises(ValueError) as caught:
            Context(keylog="/tmp/keys.log")  # type: ignore[arg-type]
        self.assertIn("keylog must be None or a callable", str(caught.exception))

    def test_replace_keeps_it(self) -> None:
        lines: list[str] = []
        context = Context(keylog=lines.append).replace(alpn_protocols=[b"h2"])
        self.assertEqual(context.keylog, lines.append)


class KeyLogFileTests(SynchronousTestCase):
    """The file: appended to, created 0600, refused when it is not ours."""

    def setUp(self) -> None:
        self.directory = os.path.abspath(self.mktemp())
        os.makedirs(self.directory)
        self.path = os.path.join(self.directory, "keys.log")

    def test_created_private_and_appended(self) -> None:
        with open(self.path, "w") as f:
            f.write("# earlier lines stay\n")
        os.chmod(self.path, 0o600)
        log = KeyLogFile(self.path)
        self.addCleanup(log.close)
        log("CLIENT_RANDOM aa bb")
        log("CLIENT_RANDOM cc dd")
        with open(self.path) as f:
            self.assertEqual(
                f.read(),
                "# earlier lines stay\nCLIENT_RANDOM aa bb\nCLIENT_RANDOM cc dd\n",
            )
        new = os.path.join(self.directory, "new.log")
        old_umask = os.umask(0)
        try:
            KeyLogFile(new).close()
        finally:
            os.umask(old_umask)
        self.assertEqual(stat.S_IMODE(os.stat(new).st_mode), 0o600)

    def test_others_may_write_refused(self) -> None:
        with open(self.path, "w"):
            pass
        os.chmod(self.path, 0o622)
        with self.assertRaises(UnsafeFileError) as caught:
            KeyLogFile(self.path)
        self.assertIn("chmod 600", str(caught.exception))

    def test_others_may_read_warned(self) -> None:
        with open(self.path, "w"):
            pass
        os.chmod(self.path, 0o644)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            KeyLogFile(self.path).close()
        self.assertEqual([w.category for w in caught], [InsecureFileWarning])

    def test_not_a_regular_file_refused(self) -> None:
        with self.assertRaises(OSError):  # EISDIR
            KeyLogFile(self.directory)
        with self.assertRaises(UnsafeFileError) as caught:
            KeyLogFile("/dev/zero")
        self.assertIn("not a regular file", str(caught.exception))

    def test_dev_null(self) -> None:
        log = KeyLogFile(os.devnull)
        log("CLIENT_RANDOM aa bb")
        log.close()

    def test_closed(self) -> None:
        log = KeyLogFile(self.path)
        log.close()
        self.assertIn("closed", repr(log))
        self.assertRaises(ValueError, log, "CLIENT_RANDOM aa bb")


# -- against OpenSSL ---------------------------------------------------------


class OpenSSLKeyLogTests(SynchronousTestCase):
    """Both ends of one connection log the same secrets, and the secrets
    open what OpenSSL sent."""

    def setUp(self) -> None:
        self.pki = CertificateFactory(self.mktemp())
        self.directory = self.pki.directory
        assert self.directory is not None
        self.ours = os.path.join(self.directory, "ours.log")
        self.theirs = os.path.join(self.directory, "theirs.log")

    def client_against_s_server(
        self, version: ProtocolVersion
    ) -> tuple[RecordingConnection, bytes]:
        issued = self.pki.server("localhost", direct=True)
        assert issued.cert_path and issued.key_path
        server = peers.OpenSSLServer(
            issued.cert_path,
            issued.key_path,
            tls_version="1.3" if version == TLS13 else "1.2",
            ciphersuites="TLS_AES_128_GCM_SHA256",
            ciphers="ECDHE-ECDSA-AES128-GCM-SHA256",
            extra=["-keylogfile", self.theirs],
        )
        self.addCleanup(server.stop)
        server.start()
        sock = server.connect()
        self.addCleanup(sock.close)
        log = KeyLogFile(self.ours)
        self.addCleanup(log.close)
        conn = RecordingConnection(
            Context(trust_roots=self.pki.ca_path, keylog=log),
            is_client=True,
            server_name="localhost",
        )
        driver = Driver(conn, sock, describe_peer=server.describe)
        driver.handshake()
        message = line("from-openssl")
        server.write(message)
        self.assertEqual(driver.receive_exactly(len(message)), message)
        driver.close(wait_for_peer=True)
        self.assertEqual(server.wait(), 0, server.describe())
        return conn, message

    def test_tls13_client(self) -> None:
        conn, message = self.client_against_s_server(TLS13)
        ours = read_log(self.ours)
        self.assertEqual(len(ours), 5)
        self.assertEqual(ours, read_log(self.theirs))
        secrets = secrets_by_label(ours)
        sealed = [(h, f) for t, h, f in records(bytes(conn.captured)) if t == 23]
        handshake = tls13_decrypt(secrets["SERVER_HANDSHAKE_TRAFFIC_SECRET"], sealed)
        # EncryptedExtensions .. Finished, under the handshake secret.
        self.assertTrue(handshake)
        self.assertTrue(all(inner[-1] == 22 for inner in handshake))
        application = tls13_decrypt(
            secrets["SERVER_TRAFFIC_SECRET_0"], sealed[len(handshake) :]
        )
        self.assertEqual(len(handshake) + len(application), len(sealed))
        self.assertIn(message + b"\x17", application)

    def test_tls12_client(self) -> None:
        conn, message = self.client_against_s_server(TLS12)
        ours = read_log(self.ours)
        self.assertEqual(ours, read_log(self.theirs))
        [entry] = ours
        label, client_random, master = entry.split()
        self.assertEqual(label, "CLIENT_RANDOM")
        stream = records(bytes(conn.captured))
        # ServerHello: record header, handshake header, version, random.
        server_random = stream[0][2][6:38]
        key, salt = tls12_server_keys(
            bytes.fromhex(master), bytes.fromhex(client_random), server_random
        )
        ccs = next(i for i, (t, _, _) in enumerate(stream) if t == 20)
        sealed = [(t, f) for t, _, f in stream[ccs + 1 :]]
        opened = tls12_decrypt(key, salt, sealed)
        self.assertEqual(opened[0][:1], b"\x14")  # the server's Finished
        self.assertIn(message, opened)

    def test_tls13_server(self) -> None:
        """Our server, s_client with -keylogfile: the same lines."""
        issued = self.pki.server("localhost")
        log = KeyLogFile(self.ours)
        self.addCleanup(log.close)
        context = Context(credentials=[issued.credential()], keylog=log)
        listener = socket.create_server(("127.0.0.1", 0))
        self.addCleanup(listener.close)
        client = peers.OpenSSLClient(
            listener.getsockname()[1],
            ca_file=self.pki.ca_path,
            extra=["-keylogfile", self.theirs],
        )
        self.addCleanup(client.stop)
        client.start()
        listener.settimeout(peers.TIMEOUT)
        sock, _ = listener.accept()
        self.addCleanup(sock.close)
        driver = Driver(
            Connection(context, is_client=False), sock, describe_peer=client.describe
        )
        driver.handshake()
        client.expect_connected()
        client.close_stdin()
        driver.receive_until_close()
        driver.close()
        self.assertEqual(client.wait(), 0, client.describe())
        ours = read_log(self.ours)
        self.assertEqual(len(ours), 5)
        self.assertEqual(ours, read_log(self.theirs))
