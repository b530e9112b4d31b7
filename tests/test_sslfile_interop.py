"""SSLFile against OpenSSL's command-line tools, in both roles and modes.

An SSLFile client talks to ``openssl s_server`` and an SSLFile server to
``openssl s_client``, in blocking mode (in the test thread: no reactor runs
here, so nothing can deadlock) and in nonblocking mode (on a SelectReactor
running in its own thread, the test thread waiting with bounded timeouts),
over TLS 1.3 and TLS 1.2, with data both ways and close_notify at the end.
NPN (``-nextprotoneg``) is checked on both sides, and renegotiation (a TLS
1.3 KeyUpdate, a TLS 1.2 secure renegotiation) against both tools.

As with the engine's own interop tests, nothing is skipped: a missing
``openssl`` fails the tests.
"""

from __future__ import annotations

import secrets
import threading
from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from tests import peers
from tests.certs import CertificateFactory, IssuedCertificate
from tests.test_sslfile import (
    TIMEOUT,
    ThreadedReactor,
)
from twisted_sslfile.constants import ProtocolVersion
from twisted_sslfile.context import Context
from twisted_sslfile.sslfile import SSLFile
from twisted_sslfile.x509 import write_pem

VERSIONS = {"1.3": ProtocolVersion.TLS_1_3, "1.2": ProtocolVersion.TLS_1_2}


def line(label: str) -> bytes:
    """A unique line: the OpenSSL tools are line-oriented, and a line that
    starts with a command letter would be taken as a command."""
    return f"0-{label}-{secrets.token_hex(8)}\n".encode()


class _Events:
    """What NB callbacks report to the waiting test thread."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self.data = bytearray()
        self.accepts = 0
        self.closed: int | None = None
        self.errors: list[str] = []

    def update(self, function: Any) -> None:
        with self._cond:
            function(self)
            self._cond.notify_all()

    def wait_for(self, predicate: Any, what: str) -> None:
        with self._cond:
            if not self._cond.wait_for(lambda: predicate(self), TIMEOUT):
                raise AssertionError(f"timed out waiting for {what}: {vars(self)}")


class InteropMixin(SynchronousTestCase):
    """A PKI whose files the OpenSSL tools can read."""

    def setUp(self) -> None:
        self.pki = CertificateFactory(self.mktemp())
        self.leaf: IssuedCertificate = self.pki.server("localhost")
        assert self.leaf.cert_path is not None
        self.intermediates = write_pem(
            self.leaf.cert_path.replace(".pem", "-intermediates.pem"),
            self.leaf.intermediates,
        )

    def client_context(self, **kwargs: Any) -> Context:
        return Context(trust_roots=self.pki.ca_path, **kwargs)

    def server_context(self, **kwargs: Any) -> Context:
        return Context(credentials=[self.leaf.credential()], **kwargs)

    def start_server(self, tls_version: str, **options: Any) -> peers.OpenSSLServer:
        assert self.leaf.cert_path and self.leaf.key_path
        server = peers.OpenSSLServer(
            self.leaf.cert_path,
            self.leaf.key_path,
            cert_chain=self.intermediates,
            tls_version=tls_version,
            **options,
        )
        self.addCleanup(server.stop)
        return server.start()

    def start_client(self, port: int, tls_version: str, **options: Any):
        client = peers.OpenSSLClient(
            port, tls_version=tls_version, ca_file=self.pki.ca_path, **options
        )
        self.addCleanup(client.stop)
        return client.start()

    def threaded_backend(self) -> ThreadedReactor:
        backend = ThreadedReactor().start()
        self.addCleanup(backend.stop)
        return backend


# ---------------------------------------------------------------------------
# SSLFile client, openssl s_server
# ---------------------------------------------------------------------------


class ClientAgainstOpenSSLServerTests(InteropMixin):
    def _blocking(self, tls_version: str) -> None:
        server = self.start_server(tls_version)
        sock = server.connect()
        self.addCleanup(sock.close)
        sock.settimeout(None)
        f = SSLFile(sock, self.client_context(), True, True, server_name="localhost")
        f.set_timeout(TIMEOUT)
        self.assertEqual(f.query_version(), VERSIONS[tls_version])
        hello = line("client")
        self.assertEqual(f.write(hello), len(hello))
        server.expect_output(hello)
        reply = line("server")
        server.write(reply)
        self.assertEqual(f.read(len(reply)), reply)
        self.assertEqual(f.close(), 1)
        server.expect_output("DONE")
        self.assertEqual(server.wait(), 0)

    def test_blocking_tls13(self) -> None:
        """A blocking SSLFile client with s_server over TLS 1.3."""
        self._blocking("1.3")

    def test_blocking_tls12(self) -> None:
        """A blocking SSLFile client with s_server over TLS 1.2."""
        self._blocking("1.2")

    def _nonblocking(self, tls_version: str, renegotiate: bool = False) -> None:
        # OpenSSL 3 refuses client-initiated renegotiation unless told.
        extra = (
            ["-client_renegotiation"] if renegotiate and tls_version == "1.2" else []
        )
        server = self.start_server(tls_version, extra=extra)
        backend = self.threaded_backend()
        sock = server.connect()
        self.addCleanup(sock.close)
        events = _Events()
        hello = line("client")
        files: list[SSLFile] = []

        def start() -> None:
            f = SSLFile(
                sock,
                self.client_context(),
                True,
                False,
                server_name="localhost",
                backend=backend.reactor,
            )
            files.append(f)
            sent = [False]

            def on_write(ident: object) -> None:
                if not sent[0]:
                    sent[0] = True
                    f.write(hello)

            f.set_nonblocking(
                lambda ident, data: events.update(lambda e: e.data.extend(data)),
                on_write,
                lambda ident: events.update(lambda e: setattr(e, "closed", f.errno())),
                accept_cb=lambda file, ident: events.update(
                    lambda e: setattr(e, "accepts", e.accepts + 1)
                ),
            )

        backend.call(start)
        f = files[0]
        server.expect_output(hello)
        events.wait_for(lambda e: e.accepts == 1, "the accept callback")
        self.assertEqual(backend.call(f.query_version), VERSIONS[tls_version])
        reply = line("server")
        server.write(reply)
        events.wait_for(lambda e: bytes(e.data) == reply, "the reply")
        if renegotiate:
            self.assertEqual(backend.call(f.renegotiate), 1)
            # Data behind our request: once s_server printed it, it has seen
            # the request too.  RFC 8446 §4.6.3 lets it answer a KeyUpdate
            # request right before its next data, which OpenSSL does, so
            # then give it something to say.
            again = line("after")
            backend.call(f.write, again)
            server.expect_output(again)
            more = line("more")
            server.write(more)
            events.wait_for(lambda e: e.accepts == 2, "the renegotiation")
            events.wait_for(lambda e: bytes(e.data) == reply + more, "more data")
        self.assertEqual(backend.call(f.close), 1)
        server.expect_output("DONE")
        self.assertEqual(server.wait(), 0)

    def test_nonblocking_tls13(self) -> None:
        """A nonblocking SSLFile client with s_server over TLS 1.3."""
        self._nonblocking("1.3")

    def test_nonblocking_tls12(self) -> None:
        """A nonblocking SSLFile client with s_server over TLS 1.2."""
        self._nonblocking("1.2")

    def test_renegotiate_tls13(self) -> None:
        """renegotiate() with s_server over TLS 1.3: its KeyUpdate answers."""
        self._nonblocking("1.3", renegotiate=True)

    def test_renegotiate_tls12(self) -> None:
        """renegotiate() with s_server over TLS 1.2: a secure renegotiation."""
        self._nonblocking("1.2", renegotiate=True)

    def test_next_protocol(self) -> None:
        """
        NPN: s_server -nextprotoneg advertises, the SSLFile client selects;
        next_protocol says which.
        """
        server = self.start_server("1.2", npn="spdy/3,http/1.1")
        sock = server.connect()
        self.addCleanup(sock.close)
        sock.settimeout(None)
        f = SSLFile(
            sock,
            self.client_context(npn_protocols=[b"http/1.1"]),
            True,
            True,
            server_name="localhost",
        )
        f.set_timeout(TIMEOUT)
        self.assertEqual(f.next_protocol, b"http/1.1")
        hello = line("npn")
        self.assertEqual(f.write(hello), len(hello))
        server.expect_output(hello)
        self.assertEqual(f.close(), 1)
        self.assertEqual(server.wait(), 0)


# ---------------------------------------------------------------------------
# SSLFile server, openssl s_client
# ---------------------------------------------------------------------------


class ServerForOpenSSLClientTests(InteropMixin):
    def _blocking(self, tls_version: str) -> None:
        listener, port = peers.accept_one()
        client = self.start_client(port, tls_version)
        sock = peers.accept(listener)
        self.addCleanup(sock.close)
        sock.settimeout(None)
        f = SSLFile(sock, self.server_context(), False, True)
        f.set_timeout(TIMEOUT)
        hello = line("client")
        client.write(hello)
        self.assertEqual(f.read(len(hello)), hello)
        self.assertEqual(f.query_version(), VERSIONS[tls_version])
        reply = line("server")
        self.assertEqual(f.write(reply), len(reply))
        client.expect_output(reply)
        client.close_stdin()  # s_client sends close_notify and exits
        self.assertEqual(f.read(), b"")
        self.assertEqual(f.errno(), 0)
        self.assertEqual(f.close(), 1)
        self.assertEqual(client.wait(), 0)

    def test_blocking_tls13(self) -> None:
        """A blocking SSLFile server for s_client over TLS 1.3."""
        self._blocking("1.3")

    def test_blocking_tls12(self) -> None:
        """A blocking SSLFile server for s_client over TLS 1.2."""
        self._blocking("1.2")

    def _nonblocking(
        self,
        tls_version: str,
        *,
        renegotiate: bool = False,
        npn: bool = False,
    ) -> None:
        backend = self.threaded_backend()
        listener, port = peers.accept_one()
        client = self.start_client(
            port, tls_version, **({"npn": "http/1.1"} if npn else {})
        )
        sock = peers.accept(listener)
        self.addCleanup(sock.close)
        events = _Events()
        files: list[SSLFile] = []
        context = self.server_context(
            npn_protocols=[b"spdy/3", b"http/1.1"] if npn else ()
        )

        def start() -> None:
            f = SSLFile(sock, context, False, False, backend=backend.reactor)
            files.append(f)
            f.set_nonblocking(
                lambda ident, data: events.update(lambda e: e.data.extend(data)),
                None,
                lambda ident: events.update(lambda e: setattr(e, "closed", f.errno())),
                accept_cb=lambda file, ident: events.update(
                    lambda e: setattr(e, "accepts", e.accepts + 1)
                ),
            )

        backend.call(start)
        f = files[0]
        events.wait_for(lambda e: e.accepts == 1, "the accept callback")
        client.expect_connected()
        self.assertEqual(backend.call(f.query_version), VERSIONS[tls_version])
        if npn:
            self.assertEqual(backend.call(lambda: f.next_protocol), b"http/1.1")
        hello = line("client")
        client.write(hello)
        events.wait_for(lambda e: bytes(e.data) == hello, "the client's line")
        reply = line("server")
        self.assertEqual(backend.call(f.write, reply), len(reply))
        client.expect_output(reply)
        if renegotiate:
            self.assertEqual(backend.call(f.renegotiate), 1)
            if tls_version == "1.2":
                # s_client loses stdin data that arrives while its own side of
                # the renegotiation is still running: first let it finish.
                events.wait_for(lambda e: e.accepts == 2, "the renegotiation")
            # Data behind our KeyUpdate request / Finished: once s_client
            # printed it, it processed them.  It answers a KeyUpdate request
            # before its next data (RFC 8446 §4.6.3), so then it speaks.
            again = line("after")
            self.assertEqual(backend.call(f.write, again), len(again))
            client.expect_output(again)
            more = line("more")
            client.write(more)
            events.wait_for(lambda e: e.accepts == 2, "the renegotiation")
            events.wait_for(lambda e: bytes(e.data) == hello + more, "more data")
        client.close_stdin()
        events.wait_for(lambda e: e.closed is not None, "the close callback")
        self.assertEqual(events.closed, 0)
        self.assertEqual(backend.call(f.close), 1)
        self.assertEqual(client.wait(), 0)

    def test_nonblocking_tls13(self) -> None:
        """A nonblocking SSLFile server for s_client over TLS 1.3."""
        self._nonblocking("1.3")

    def test_nonblocking_tls12(self) -> None:
        """A nonblocking SSLFile server for s_client over TLS 1.2."""
        self._nonblocking("1.2")

    def test_renegotiate_tls13(self) -> None:
        """renegotiate() with s_client over TLS 1.3: a KeyUpdate exchange."""
        self._nonblocking("1.3", renegotiate=True)

    def test_renegotiate_tls12(self) -> None:
        """renegotiate() with s_client over TLS 1.2: HelloRequest, new hello."""
        self._nonblocking("1.2", renegotiate=True)

    def test_next_protocol(self) -> None:
        """
        NPN: the SSLFile server advertises, s_client -nextprotoneg selects;
        next_protocol says which.
        """
        self._nonblocking("1.2", npn=True)
