"""``sslfile:`` endpoint strings and the endpoint classes.

Three layers of proof:

* the description syntax round-trips exactly as Twisted reads it (so
  re-serialising the inner part for ``serverFromString`` loses nothing);
* every mistake in a description fails at parse time with a message naming
  the option and, where there is one, the file - one test per mistake;
* real connections on loopback through Twisted's own ``serverFromString`` /
  ``clientFromString`` (the plugin in ``twisted/plugins/``), for tcp, unix
  and tcp6 in both directions, and a systemd socket-activated
  ``twistd sslfile-echo`` process.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.internet import defer, reactor
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.endpoints import (
    HostnameEndpoint,
    TCP4ClientEndpoint,
    TCP4ServerEndpoint,
    TCP6ServerEndpoint,
    UNIXClientEndpoint,
    UNIXServerEndpoint,
    _parse,
    clientFromString,
    serverFromString,
)
from twisted.internet.error import ConnectionDone
from twisted.internet.interfaces import (
    IHostnameResolver,
    IHostResolution,
    IReactorPluggableNameResolver,
)
from twisted.internet.protocol import Factory, Protocol
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase, TestCase
from zope.interface import implementer

from tests.certs import CertificateFactory
from tests.test_echo import EchoServer, checkout_environment
from twisted_sslfile.constants import (
    CipherSuite,
    ClientCertificatePolicy,
    NamedGroup,
    ProtocolVersion,
)
from twisted_sslfile.endpoints import (
    TLS_OPTIONS,
    TWISTED_OPTIONS,
    EndpointDescriptionError,
    TLSClientEndpoint,
    TLSServerEndpoint,
    client_from_string,
    parse_description,
    quote,
    server_from_string,
    unparse_description,
)
from twisted_sslfile.errors import CertificateError, TLSError
from twisted_sslfile.protocol import DEFAULT_CLOSE_TIMEOUT, DEFAULT_HANDSHAKE_TIMEOUT

# ---------------------------------------------------------------------------
# Syntax
# ---------------------------------------------------------------------------

_EXAMPLES = [
    "tcp:8443",
    "tcp:8443:interface=127.0.0.1:backlog=5",
    "unix:/tmp/a\\:b.sock:mode=600",
    "tcp:host=example.com:port=443",
    "a:b:d=1:c",
    "k=v=w:x\\=y",
    "x:\\\\:y",
    "tcp6:port=0:interface=\\:\\:1",
    "",
    ":",
    "a::b",
    "=v",
]


class SyntaxTests(SynchronousTestCase):
    """Our tokenizer is Twisted's; unparse is its exact inverse."""

    def test_examples_agree_with_twisted(self) -> None:
        for description in _EXAMPLES:
            self.assertEqual(
                parse_description(description), _parse(description), description
            )

    @settings(max_examples=300, deadline=None)
    @given(
        st.lists(st.text(alphabet="ab:=\\ 1", max_size=6), min_size=1, max_size=4),
        st.dictionaries(
            st.text(alphabet="ab:=\\x", min_size=1, max_size=4),
            st.text(alphabet="ab:=\\ ", max_size=6),
            max_size=3,
        ),
    )
    def test_unparse_round_trip(self, args: list[str], kwargs: dict[str, str]) -> None:
        description = unparse_description(args, kwargs)
        self.assertEqual(parse_description(description), (args, kwargs))
        self.assertEqual(_parse(description), (args, kwargs))

    def test_quote(self) -> None:
        self.assertEqual(quote("C:\\x=y"), "C\\:\\\\x\\=y")


# ---------------------------------------------------------------------------
# The plugin modules
# ---------------------------------------------------------------------------


class PluginModuleTests(SynchronousTestCase):
    """twisted/plugins/ is scanned by every Twisted program: keep it cheap."""

    def test_interfaces(self) -> None:
        from twisted.application.service import IServiceMaker
        from twisted.internet.interfaces import (
            IStreamClientEndpointStringParserWithReactor,
            IStreamServerEndpointStringParser,
        )
        from zope.interface.verify import verifyObject

        from twisted.plugins import sslfile_echo, sslfile_endpoints

        verifyObject(
            IStreamServerEndpointStringParser, sslfile_endpoints.sslfileServerParser
        )
        verifyObject(
            IStreamClientEndpointStringParserWithReactor,
            sslfile_endpoints.sslfileClientParser,
        )
        verifyObject(IServiceMaker, sslfile_echo.sslfileEcho)
        self.assertEqual(sslfile_echo.sslfileEcho.tapname, "sslfile-echo")

    def test_import_is_light(self) -> None:
        """
        Importing the plugin modules (what a plugin scan does) loads neither
        this package nor cryptography.
        """
        script = (
            "import sys\n"
            "import twisted.plugins.sslfile_endpoints, twisted.plugins.sslfile_echo\n"
            "print(sorted(m for m in sys.modules\n"
            "             if m.startswith(('twisted_sslfile', 'cryptography'))))\n"
        )
        result = subprocess.run(
            [sys.executable, "-c", script],
            env=checkout_environment(),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout.strip(), "[]")


# ---------------------------------------------------------------------------
# Parsing into endpoints
# ---------------------------------------------------------------------------


class _PKITestMixin:
    mktemp: Any

    def make_pki(self) -> CertificateFactory:
        return CertificateFactory(os.path.abspath(self.mktemp()))


class ParseTests(_PKITestMixin, SynchronousTestCase):
    """What a good description turns into, through Twisted's own functions."""

    def setUp(self) -> None:
        self.pki = self.make_pki()
        self.leaf = self.pki.server("localhost")
        self.cert = f"certKey={self.leaf.chain_path}:privateKey={self.leaf.key_path}"

    def test_server_tcp(self) -> None:
        """
        The plugin is found; inner options reach the inner endpoint and TLS
        options the Context.
        """
        endpoint = serverFromString(
            reactor,
            f"sslfile:tcp:8443:interface=127.0.0.1:backlog=7:{self.cert}"
            ":alpn=h2,http/1.1:npn=spdy/3:minVersion=TLSv1.3:ciphers="
            "TLS_AES_256_GCM_SHA384,TLS_CHACHA20_POLY1305_SHA256:groups=x25519"
            ":handshakeTimeout=2.5:closeTimeout=0.75",
        )
        self.assertIsInstance(endpoint, TLSServerEndpoint)
        inner = endpoint.inner
        self.assertIsInstance(inner, TCP4ServerEndpoint)
        self.assertEqual(
            (inner._port, inner._interface, inner._backlog), (8443, "127.0.0.1", 7)
        )
        context = endpoint.context
        self.assertEqual(context.alpn_protocols, (b"h2", b"http/1.1"))
        self.assertEqual(context.npn_protocols, (b"spdy/3",))
        self.assertEqual(context.min_version, ProtocolVersion.TLS_1_3)
        self.assertEqual(
            context.cipher_suites,
            (
                CipherSuite.TLS_AES_256_GCM_SHA384,
                CipherSuite.TLS_CHACHA20_POLY1305_SHA256,
            ),
        )
        self.assertEqual(context.groups, (NamedGroup.x25519,))
        self.assertEqual(endpoint.handshake_timeout, 2.5)
        self.assertEqual(endpoint.close_timeout, 0.75)
        self.assertEqual(endpoint.wrap_factory(Factory()).close_timeout, 0.75)
        self.assertEqual(len(context.credentials), 1)

    def test_server_unix_combined_pem(self) -> None:
        """A unix inner endpoint; key and chain in one file."""
        path = os.path.abspath(self.mktemp())
        endpoint = serverFromString(
            reactor,
            f"sslfile:unix:{quote(path)}:mode=600:certKey={self.leaf.combined_path}",
        )
        self.assertIsInstance(endpoint.inner, UNIXServerEndpoint)
        self.assertEqual(endpoint.inner._address, path)
        self.assertEqual(endpoint.inner._mode, 0o600)
        self.assertEqual(endpoint.handshake_timeout, DEFAULT_HANDSHAKE_TIMEOUT)
        self.assertEqual(endpoint.close_timeout, DEFAULT_CLOSE_TIMEOUT)

    def test_server_tcp6_plugin_type(self) -> None:
        """An inner type that is itself a plugin (tcp6) works too."""
        endpoint = serverFromString(
            reactor, f"sslfile:tcp6:0:interface=\\:\\:1:{self.cert}"
        )
        self.assertIsInstance(endpoint.inner, TCP6ServerEndpoint)
        self.assertEqual(endpoint.inner._interface, "::1")

    def test_server_sni_list_and_client_policy(self) -> None:
        other = self.pki.server("other.test")
        endpoint = serverFromString(
            reactor,
            f"sslfile:tcp:0:certKey={self.leaf.chain_path},{other.chain_path}"
            f":privateKey={self.leaf.key_path},{other.key_path}"
            f":clientCertificate=request:trustRoots={self.pki.ca_path}",
        )
        context = endpoint.context
        self.assertEqual(
            [c.dns_names for c in context.credentials],
            [("localhost",), ("other.test",)],
        )
        self.assertEqual(context.client_certificate, ClientCertificatePolicy.REQUEST)

    def test_extra_chain(self) -> None:
        """extraChain is appended to the chain loaded from certKey."""
        intermediate = os.path.abspath(self.mktemp())
        from twisted_sslfile.x509 import write_pem

        write_pem(intermediate, self.leaf.chain[1:])
        endpoint = server_from_string(
            None,
            f"tcp:0:certKey={self.leaf.cert_path}:privateKey={self.leaf.key_path}"
            f":extraChain={intermediate}",
        )
        self.assertEqual(len(endpoint.context.credentials[0].chain), 2)

    def test_client_names(self) -> None:
        """
        The verification name is hostname=, else the host the inner tcp
        endpoint connects to, however it was written.  A host name is
        connected to through HostnameEndpoint (every address, IPv6 too, as
        Twisted's tls: does), an IP address directly.
        """
        roots = f"trustRoots={self.pki.ca_path}"
        cases = {
            f"sslfile:tcp:host=example.com:port=443:{roots}": "example.com",
            f"sslfile:tcp:example.com:443:{roots}": "example.com",
            f"sslfile:tcp:example.com:port=443:{roots}": "example.com",
            f"sslfile:tcp:443:host=example.com:{roots}": "example.com",
            f"sslfile:tcp:host=10.0.0.1:port=1:hostname=svc.test:{roots}": "svc.test",
            f"sslfile:tcp:host=\\:\\:1:port=1:{roots}": "::1",
            # Internationalised names are kept as A-labels (IDNA 2008,
            # UTS #46): what goes out as SNI and is verified.
            f"sslfile:tcp:host=10.0.0.1:port=1:hostname=Bücher.example:{roots}": (
                "xn--bcher-kva.example"
            ),
            f"sslfile:tcp:host=bücher.example:port=443:{roots}": (
                "xn--bcher-kva.example"
            ),
            f"sslfile:tcp:host=Example.COM.:port=443:{roots}": "example.com",
        }
        for description, name in cases.items():
            endpoint = clientFromString(reactor, description)
            self.assertIsInstance(endpoint, TLSClientEndpoint)
            inner = endpoint.inner
            if "host=10." in description or "host=\\:" in description:
                # An IP literal goes through Twisted's own tcp: endpoint.
                self.assertIsInstance(inner, TCP4ClientEndpoint, description)
            else:
                # A host name goes through HostnameEndpoint (IPv6, happy
                # eyeballs), which resolves the name as it was written.
                self.assertIsInstance(inner, HostnameEndpoint, description)
                self.assertEqual(inner._port, 443, description)
            self.assertEqual(endpoint.server_name, name, description)
            self.assertTrue(endpoint.context.verify)

    def test_client_inner_options(self) -> None:
        """timeout= and bindAddress= reach the HostnameEndpoint."""
        endpoint = clientFromString(
            reactor,
            "sslfile:tcp:host=example.com:port=443:timeout=7"
            ":bindAddress=127.0.0.1:alpn=h2",
        )
        self.assertIsInstance(endpoint.inner, HostnameEndpoint)
        self.assertEqual(endpoint.inner._timeout, 7)
        self.assertEqual(endpoint.inner._bindAddress, ("127.0.0.1", 0))
        self.assertEqual(endpoint.context.alpn_protocols, (b"h2",))
        endpoint = clientFromString(reactor, "sslfile:tcp:example.com:443")
        self.assertEqual(endpoint.inner._timeout, 30)
        self.assertIsNone(endpoint.inner._bindAddress)

    def test_client_unix_and_verify_off(self) -> None:
        """verify=no is the loud switch: insecure_skip_verify."""
        endpoint = clientFromString(reactor, "sslfile:unix:path=/tmp/x.sock:verify=no")
        self.assertIsInstance(endpoint.inner, UNIXClientEndpoint)
        self.assertTrue(endpoint.context.insecure_skip_verify)
        self.assertIsNone(endpoint.server_name)

    def test_client_certificate(self) -> None:
        client = self.pki.client("me")
        endpoint = client_from_string(
            None,
            f"sslfile:tcp:host=localhost:port=1:certKey={client.combined_path}",
        )
        self.assertEqual(len(endpoint.context.credentials), 1)

    def test_server_cert_dir(self) -> None:
        """
        certDir: the directory's certificates, watched every reloadInterval
        seconds; reload() reads them again.
        """
        directory = os.path.abspath(self.mktemp())
        os.makedirs(directory)
        from twisted_sslfile.x509 import write_pem

        other = self.pki.server("other.test")
        write_pem(os.path.join(directory, "a.pem"), self.leaf.chain, self.leaf.key)
        endpoint = serverFromString(
            reactor, f"sslfile:tcp:0:certDir={directory}:reloadInterval=5"
        )
        self.assertEqual(
            [c.dns_names for c in endpoint.context.credentials], [("localhost",)]
        )
        self.assertEqual(endpoint.certificates.interval, 5)
        self.assertIs(endpoint.clock, reactor)
        write_pem(os.path.join(directory, "b.pem"), other.chain, other.key)
        self.assertTrue(endpoint.reload())
        self.assertEqual(
            [c.dns_names for c in endpoint.context.credentials],
            [("localhost",), ("other.test",)],
        )
        endpoint = serverFromString(
            reactor, f"sslfile:tcp:0:certDir={directory}:reloadInterval=none"
        )
        self.assertIsNone(endpoint.certificates.interval)

    def test_server_cert_key_is_watched(self) -> None:
        """certKey files are watched too (every 60 s by default)."""
        endpoint = server_from_string(None, f"tcp:0:{self.cert}")
        self.assertEqual(endpoint.certificates.interval, 60)
        self.assertEqual(
            endpoint.certificates.credentials, endpoint.context.credentials
        )
        self.assertFalse(endpoint.reload())

    def test_defaults_certificate_group(self) -> None:
        """
        A description's own certificate replaces the defaults' as a whole:
        a default privateKey is not paired with the description's certKey.
        """
        other = self.pki.server("other.test")
        endpoint = server_from_string(
            None,
            f"sslfile:tcp:0:certKey={other.combined_path}",
            defaults={
                "certKey": self.leaf.chain_path,  # type: ignore[dict-item]
                "privateKey": self.leaf.key_path,  # type: ignore[dict-item]
            },
        )
        self.assertEqual(endpoint.context.credentials[0].dns_names, ("other.test",))

    def test_client_close_timeout_none(self) -> None:
        """closeTimeout=none: a client that waits for its peer forever."""
        endpoint = client_from_string(
            None, "sslfile:tcp:host=localhost:port=1:closeTimeout=none:verify=no"
        )
        self.assertIsNone(endpoint.close_timeout)
        self.assertIsNone(endpoint.wrap_factory(Factory()).close_timeout)

    def test_defaults_are_overridden(self) -> None:
        """Programmatic defaults (the echo plugin's) lose to the description."""
        endpoint = server_from_string(
            None,
            f"sslfile:tcp:0:{self.cert}:alpn=b",
            defaults={"alpn": "a", "npn": "n"},
        )
        self.assertEqual(endpoint.context.alpn_protocols, (b"b",))
        self.assertEqual(endpoint.context.npn_protocols, (b"n",))

    def test_documented(self) -> None:
        """docs/endpoints.rst has a row for every TLS option."""
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        with open(os.path.join(root, "docs", "endpoints.rst"), encoding="utf-8") as f:
            text = f.read()
        for name in TLS_OPTIONS:
            self.assertIn(f"``{name}``", text, name)


class ParseErrorTests(_PKITestMixin, SynchronousTestCase):
    """One test per mistake: a ValueError naming the option (and file)."""

    def setUp(self) -> None:
        self.pki = self.make_pki()
        self.leaf = self.pki.server("localhost")
        self.cert = f"certKey={self.leaf.chain_path}:privateKey={self.leaf.key_path}"

    def server_error(
        self, description: str, *expected: str
    ) -> EndpointDescriptionError:
        with self.assertRaises(EndpointDescriptionError) as caught:
            serverFromString(reactor, description)
        return self._check(caught.exception, expected)

    def client_error(
        self, description: str, *expected: str
    ) -> EndpointDescriptionError:
        with self.assertRaises(EndpointDescriptionError) as caught:
            clientFromString(reactor, description)
        return self._check(caught.exception, expected)

    def _check(
        self, error: EndpointDescriptionError, expected: tuple[str, ...]
    ) -> EndpointDescriptionError:
        self.assertIsInstance(error, ValueError)
        message = str(error)
        self.assertTrue(message.startswith("sslfile: "), message)
        for part in expected:
            self.assertIn(part, message)
        return error

    # -- options -----------------------------------------------------------------

    def test_unknown_option(self) -> None:
        error = self.server_error(
            f"sslfile:tcp:0:{self.cert}:alpm=h2",
            "alpm: unknown option",
            "did you mean alpn?",
        )
        self.assertEqual(error.option, "alpm")

    def test_option_case(self) -> None:
        """A misspelt TLS option is never handed to the inner endpoint."""
        self.server_error(f"sslfile:tcp:0:{self.cert}:certkey=x", "certkey", "certKey")

    def test_client_only_option_on_server(self) -> None:
        self.server_error(
            f"sslfile:tcp:0:{self.cert}:hostname=x",
            "hostname: not an option of a TLS server",
        )

    def test_server_only_option_on_client(self) -> None:
        self.client_error(
            "sslfile:tcp:h:1:clientCertificate=require",
            "clientCertificate: not an option of a TLS client",
        )

    def test_missing_inner_type(self) -> None:
        self.server_error(f"sslfile:{self.cert}", "inner endpoint type is missing")

    def test_unknown_inner_type(self) -> None:
        self.server_error(f"sslfile:carrier-pigeon:{self.cert}", "'carrier-pigeon'")

    def test_inner_endpoint_refuses(self) -> None:
        self.server_error(f"sslfile:tcp:notaport:{self.cert}", "tcp:notaport")

    # -- certificates and keys ------------------------------------------------

    def test_server_without_certificate(self) -> None:
        self.server_error("sslfile:tcp:0", "certKey: a TLS server needs a certificate")

    def test_missing_certificate_file(self) -> None:
        error = self.server_error(
            "sslfile:tcp:0:certKey=/no/such/cert.pem", "certKey: ", "/no/such/cert.pem"
        )
        self.assertEqual(error.path, "/no/such/cert.pem")

    def test_missing_key_file(self) -> None:
        self.server_error(
            f"sslfile:tcp:0:certKey={self.leaf.chain_path}:privateKey=/no/key.pem",
            "privateKey: ",
            "/no/key.pem",
        )

    def test_not_pem(self) -> None:
        garbage = os.path.abspath(self.mktemp())
        with open(garbage, "w") as f:
            f.write("this is not a certificate\n")
        self.server_error(f"sslfile:tcp:0:certKey={garbage}", "certKey: ", garbage)

    def test_no_key_in_certificate_file(self) -> None:
        self.server_error(
            f"sslfile:tcp:0:certKey={self.leaf.chain_path}",
            "certKey: ",
            self.leaf.chain_path,  # type: ignore[arg-type]
        )

    def test_key_does_not_match(self) -> None:
        other = self.pki.server("other.test")
        self.server_error(
            f"sslfile:tcp:0:certKey={self.leaf.chain_path}:privateKey={other.key_path}",
            "does not match",
            self.leaf.chain_path,  # type: ignore[arg-type]
            other.key_path,  # type: ignore[arg-type]
        )

    def test_key_count(self) -> None:
        other = self.pki.server("other.test")
        self.server_error(
            f"sslfile:tcp:0:certKey={self.leaf.chain_path},{other.chain_path}"
            f":privateKey={self.leaf.key_path}",
            "privateKey: 1 key file(s) for 2 certKey file(s)",
        )

    def test_key_without_certificate(self) -> None:
        self.server_error(
            f"sslfile:tcp:0:privateKey={self.leaf.key_path}",
            "privateKey: given without certKey",
        )

    def test_missing_extra_chain(self) -> None:
        self.server_error(
            f"sslfile:tcp:0:{self.cert}:extraChain=/no/chain.pem",
            "extraChain: ",
            "/no/chain.pem",
        )

    def test_client_with_two_certificates(self) -> None:
        self.client_error(
            f"sslfile:tcp:h:1:verify=no:certKey={self.leaf.combined_path},{self.leaf.combined_path}",
            "certKey: a client presents one certificate",
        )

    # -- trust ------------------------------------------------------------------

    def test_missing_trust_roots(self) -> None:
        self.client_error(
            "sslfile:tcp:h:1:trustRoots=/no/ca.pem", "trustRoots: ", "/no/ca.pem"
        )

    def test_require_without_trust_roots(self) -> None:
        self.server_error(
            f"sslfile:tcp:0:{self.cert}:clientCertificate=require",
            "clientCertificate: require needs trustRoots=",
        )

    def test_unknown_client_policy(self) -> None:
        self.server_error(
            f"sslfile:tcp:0:{self.cert}:clientCertificate=maybe",
            "clientCertificate: ",
            "'maybe'",
        )

    def test_bad_verify(self) -> None:
        self.client_error(
            "sslfile:tcp:h:1:verify=perhaps", "verify: 'perhaps' is not yes or no"
        )

    def test_client_without_name(self) -> None:
        self.client_error(
            "sslfile:unix:path=/tmp/x.sock",
            "hostname: a verifying TLS client over unix",
        )

    def test_bad_hostname(self) -> None:
        self.client_error("sslfile:tcp:h:1:hostname=a..b", "hostname: ")
        for name in ("a_b.example", "xn--zz.example", "☃.example", "-a.example"):
            self.client_error(
                f"sslfile:tcp:h:1:hostname={name}", "hostname: ", repr(name)
            )

    def test_bad_host_to_verify(self) -> None:
        """
        Without hostname= the host connected to is verified: one no
        certificate can name is refused now, unless verify=no (then no SNI
        is sent).
        """
        self.client_error(
            "sslfile:tcp:my_host:443",
            "hostname: the host 'my_host' is not a name a certificate",
            "add hostname=NAME (or verify=no)",
        )
        endpoint = clientFromString(reactor, "sslfile:tcp:my_host:443:verify=no")
        self.assertIsNone(endpoint.server_name)

    def test_bad_server_name_argument(self) -> None:
        """TLSClientEndpoint and TLSFactory check the name when made."""
        from twisted_sslfile.context import Context
        from twisted_sslfile.protocol import TLSFactory

        context = Context(insecure_skip_verify=True)
        for make in (
            lambda name: TLSClientEndpoint(None, context, name),
            lambda name: TLSFactory(Factory(), context, True, name),
        ):
            with self.assertRaises(ValueError) as caught:
                make("a..b")
            self.assertIn("'a..b'", str(caught.exception))
            self.assertEqual(
                make("bücher.example").server_name, "xn--bcher-kva.example"
            )

    # -- protocol policy -------------------------------------------------------

    def test_unknown_version(self) -> None:
        self.server_error(
            f"sslfile:tcp:0:{self.cert}:minVersion=TLSv9", "minVersion: ", "'TLSv9'"
        )

    def test_refused_version(self) -> None:
        self.client_error(
            "sslfile:tcp:h:1:maxVersion=TLSv1.1", "maxVersion: TLS 1.1 is not supported"
        )

    def test_versions_reversed(self) -> None:
        self.server_error(
            f"sslfile:tcp:0:{self.cert}:minVersion=TLSv1.3:maxVersion=TLSv1.2",
            "maxVersion: minVersion TLS 1.3 is above maxVersion TLS 1.2",
        )

    def test_unknown_cipher(self) -> None:
        self.server_error(
            f"sslfile:tcp:0:{self.cert}:ciphers=RC4-MD5", "ciphers: ", "'RC4-MD5'"
        )

    def test_unknown_group(self) -> None:
        self.client_error(
            "sslfile:tcp:h:1:groups=x25519,ffdhe2048", "groups: ", "'ffdhe2048'"
        )

    def test_empty_list_entry(self) -> None:
        self.client_error("sslfile:tcp:h:1:alpn=h2,,http/1.1", "alpn: empty entry")

    def test_protocol_name_too_long(self) -> None:
        self.server_error(f"sslfile:tcp:0:{self.cert}:npn={'x' * 256}", "npn: ")

    def test_bad_handshake_timeout(self) -> None:
        self.client_error(
            "sslfile:tcp:h:1:handshakeTimeout=soon", "handshakeTimeout: 'soon'"
        )

    def test_bad_close_timeout(self) -> None:
        self.client_error("sslfile:tcp:h:1:closeTimeout=-1", "closeTimeout: '-1'")

    # -- sessions ---------------------------------------------------------------

    def test_missing_ticket_keys(self) -> None:
        self.server_error(
            f"sslfile:tcp:0:{self.cert}:ticketKeys=/no/keys", "ticketKeys: ", "/no/keys"
        )

    def test_ticket_keys_on_client(self) -> None:
        self.client_error(
            "sslfile:tcp:h:1:ticketKeys=/x", "ticketKeys: not an option of a TLS client"
        )

    # -- certificate directories ----------------------------------------------

    def test_cert_dir_and_cert_key(self) -> None:
        directory = os.path.abspath(self.mktemp())
        os.makedirs(directory)
        self.server_error(
            f"sslfile:tcp:0:certDir={directory}:{self.cert}",
            "certKey: give certDir or certKey",
        )

    def test_empty_cert_dir(self) -> None:
        directory = os.path.abspath(self.mktemp())
        os.makedirs(directory)
        error = self.server_error(
            f"sslfile:tcp:0:certDir={directory}", "certDir: no certificate found"
        )
        self.assertEqual(error.path, directory)

    def test_missing_cert_dir(self) -> None:
        self.server_error(
            "sslfile:tcp:0:certDir=/no/such/dir", "certDir: cannot list", "/no/such/dir"
        )

    def test_cert_dir_on_client(self) -> None:
        self.client_error(
            "sslfile:tcp:h:1:certDir=/x", "certDir: not an option of a TLS client"
        )

    def test_bad_reload_interval(self) -> None:
        self.server_error(
            f"sslfile:tcp:0:{self.cert}:reloadInterval=-1", "reloadInterval: '-1'"
        )

    # -- Twisted's ssl: and tls: names ------------------------------------------

    def test_twisted_option_hints(self) -> None:
        """
        Every option of Twisted's ssl:/tls: endpoints that sslfile: spells
        differently gets the sslfile: name (or why there is none), on the
        side where Twisted has it, and never a pointer back to ssl:.
        """
        expected = {
            "certificate": "did you mean certKey?",
            "caCertsDir": "did you mean trustRoots?",
            "sslmethod": "did you mean minVersion/maxVersion?",
            "extraCertChain": "did you mean extraChain?",
            "path": "did you mean certDir?",
            "dhParameters": "no sslfile: equivalent",
            "endpoint": "no sslfile: equivalent",
        }
        self.assertEqual(set(expected), set(TWISTED_OPTIONS))
        for option, hint in expected.items():
            for error in (
                self.server_error(f"sslfile:tcp:0:{self.cert}:{option}=x", hint),
                self.client_error(f"sslfile:tcp:h:1:{option}=x", hint),
            ):
                self.assertTrue(str(error).startswith(f"sslfile: {option}: "))
                self.assertEqual(error.option, option)
                self.assertNotIn("sslfile:ssl", str(error))
                self.assertNotIn("sslfile:tls", str(error))

    def test_certificate_is_not_client_certificate(self) -> None:
        """The closest spelling (clientCertificate) is the wrong answer."""
        error = self.client_error("sslfile:tcp:h:1:certificate=c.pem")
        self.assertNotIn("clientCertificate?", str(error))

    def test_twisted_tls_types_as_inner(self) -> None:
        """sslfile:ssl: / sslfile:tls: would run TLS inside OpenSSL's TLS."""
        for kind in ("ssl", "tls", "SSL"):
            self.server_error(
                f"sslfile:{kind}:443:{self.cert}",
                f"sslfile: {kind}: is already a TLS endpoint",
                "sslfile:tcp:",
            )
            self.client_error(f"sslfile:{kind}:example.com:443", "write sslfile:tcp:")

    def test_twisted_table_documented(self) -> None:
        """
        docs/endpoints.rst maps each of these options to what the code
        suggests.
        """
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        with open(os.path.join(root, "docs", "endpoints.rst"), encoding="utf-8") as f:
            text = f.read()
        for option, (instead, _) in TWISTED_OPTIONS.items():
            row = re.search(rf"^   \* - ``{option}``\n((?:     .*\n)+)", text, re.M)
            self.assertIsNotNone(row, option)
            assert row is not None
            cells = row.group(1)
            if instead is None:
                self.assertIn("not applicable", cells, option)
            else:
                for name in instead.split("/"):
                    self.assertIn(f"``{name}", cells, option)


# ---------------------------------------------------------------------------
# Real connections
# ---------------------------------------------------------------------------


class _Echo(Protocol):
    def dataReceived(self, data: bytes) -> None:
        self.transport.write(data)


class _Collector(Protocol):
    """Client side: collects bytes, fires ``lost`` with the reason."""

    def __init__(self) -> None:
        self.data = b""
        self.reason: Failure | None = None
        #: Fires (with None: a Failure would read as an error) when lost.
        self.lost: defer.Deferred[None] = defer.Deferred()
        self._want: tuple[int, defer.Deferred[bytes]] | None = None

    def dataReceived(self, data: bytes) -> None:
        self.data += data
        if self._want is not None and len(self.data) >= self._want[0]:
            d = self._want[1]
            self._want = None
            d.callback(self.data)

    def receive(self, count: int) -> defer.Deferred[bytes]:
        if len(self.data) >= count:
            return defer.succeed(self.data)
        d: defer.Deferred[bytes] = defer.Deferred()
        self._want = (count, d)
        return d

    def connectionLost(self, reason: Failure) -> None:
        self.reason = reason
        self.lost.callback(None)


def _loopback_addresses() -> set[str]:
    """Addresses this machine can bind on loopback (is ::1 on lo?)."""
    found = set()
    for family, address in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
        try:
            with socket.socket(family, socket.SOCK_STREAM) as probe:
                probe.bind((address, 0))
        except OSError:
            continue
        found.add(address)
    return found


@implementer(IHostResolution)
class _Resolution:
    def __init__(self, name: str) -> None:
        self.name = name

    def cancel(self) -> None:
        pass


@implementer(IHostnameResolver)
class _Hosts:
    """A resolver answering from a table, addresses in the table's order."""

    def __init__(self, table: dict[str, list[str]], log: list[str]) -> None:
        self.table = table
        self.log = log

    def resolveHostName(
        self,
        resolutionReceiver: Any,
        hostName: str,
        portNumber: int = 0,
        addressTypes: Any = None,
        transportSemantics: str = "TCP",
    ) -> Any:
        self.log.append(hostName)
        resolution = _Resolution(hostName)
        resolutionReceiver.resolutionBegan(resolution)
        for address in self.table.get(hostName, []):
            kind = IPv6Address if ":" in address else IPv4Address
            if addressTypes is None or kind in addressTypes:
                resolutionReceiver.addressResolved(kind("TCP", address, portNumber))
        resolutionReceiver.resolutionComplete()
        return resolution


@implementer(IReactorPluggableNameResolver)
class _ReactorWithHosts:
    """The real reactor with its name resolver replaced by a table."""

    def __init__(self, real: Any, table: dict[str, list[str]]) -> None:
        self._real = real
        self.resolved: list[str] = []
        self.nameResolver = _Hosts(table, self.resolved)

    def installNameResolver(self, resolver: Any) -> Any:
        raise NotImplementedError

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


class LoopbackTests(_PKITestMixin, TestCase):
    """Connections through serverFromString / clientFromString, both ends ours."""

    timeout = 30

    def setUp(self) -> None:
        self.pki = self.make_pki()
        self.leaf = self.pki.server("localhost", ip_addresses=["127.0.0.1", "::1"])
        self.cert = f"certKey={self.leaf.chain_path}:privateKey={self.leaf.key_path}"

    @defer.inlineCallbacks
    def listen(self, description: str) -> Any:
        endpoint = serverFromString(reactor, description)
        port = yield endpoint.listen(Factory.forProtocol(_Echo))
        self.addCleanup(port.stopListening)
        return port

    @defer.inlineCallbacks
    def round_trip(self, client_description: str, message: bytes = b"hello") -> Any:
        endpoint = clientFromString(reactor, client_description)
        client = yield endpoint.connect(Factory.forProtocol(_Collector))
        result = yield client.transport.whenHandshakeDone()
        client.transport.write(message)
        echoed = yield client.receive(len(message))
        self.assertEqual(echoed, message)
        client.transport.loseConnection()
        yield client.lost
        self.assertTrue(client.reason.check(ConnectionDone), client.reason)
        return client, result

    @defer.inlineCallbacks
    def test_tcp(self) -> Any:
        port = yield self.listen(
            f"sslfile:tcp:0:interface=127.0.0.1:{self.cert}:alpn=echo"
        )
        client, result = yield self.round_trip(
            f"sslfile:tcp:host=localhost:port={port.getHost().port}"
            f":trustRoots={self.pki.ca_path}:alpn=x,echo"
        )
        self.assertEqual(client.transport.negotiatedProtocol, b"echo")
        self.assertTrue(result.verified)
        self.assertEqual(client.transport.getPeerCertificate(), self.leaf.certificate)

    @defer.inlineCallbacks
    def test_tcp_tls12_npn(self) -> Any:
        """NPN needs TLS 1.2; the client caps its version."""
        port = yield self.listen(
            f"sslfile:tcp:0:interface=127.0.0.1:{self.cert}:npn=a,b"
        )
        client, result = yield self.round_trip(
            f"sslfile:tcp:127.0.0.1:{port.getHost().port}:trustRoots={self.pki.ca_path}"
            ":npn=b:maxVersion=TLSv1.2"
        )
        self.assertEqual(result.version, ProtocolVersion.TLS_1_2)
        self.assertEqual(client.transport.negotiatedProtocol, b"b")

    @defer.inlineCallbacks
    def test_unix(self) -> Any:
        path = os.path.abspath(self.mktemp())
        yield self.listen(f"sslfile:unix:{quote(path)}:{self.cert}")
        _, result = yield self.round_trip(
            f"sslfile:unix:path={quote(path)}:hostname=localhost"
            f":trustRoots={self.pki.ca_path}"
        )
        self.assertEqual(result.server_name, "localhost")

    @defer.inlineCallbacks
    def test_tcp6(self) -> Any:
        port = yield self.listen(f"sslfile:tcp6:0:interface=\\:\\:1:{self.cert}")
        client, result = yield self.round_trip(
            f"sslfile:tcp:host=\\:\\:1:port={port.getHost().port}"
            f":trustRoots={self.pki.ca_path}"
        )
        self.assertEqual(client.transport.getPeer().host, "::1")
        self.assertTrue(result.verified)

    @defer.inlineCallbacks
    def test_sni_selects_certificate(self) -> Any:
        other = self.pki.server("other.test")
        port = yield self.listen(
            f"sslfile:tcp:0:interface=127.0.0.1:certKey={self.leaf.chain_path},"
            f"{other.combined_path}:privateKey={self.leaf.key_path},{other.key_path}"
        )
        client, _ = yield self.round_trip(
            f"sslfile:tcp:127.0.0.1:{port.getHost().port}:hostname=other.test"
            f":trustRoots={self.pki.ca_path}"
        )
        self.assertEqual(client.transport.getPeerCertificate(), other.certificate)

    @defer.inlineCallbacks
    def test_cert_dir_sni_and_reload(self) -> Any:
        """
        One certDir endpoint serves each name its own certificate; after a
        renewal on disk and reload(), a new connection gets the new
        certificate while a connection made before keeps working.
        """
        from tests.test_certstore import put

        directory = os.path.abspath(self.mktemp())
        os.makedirs(os.path.join(directory, "b.example"))
        a = self.pki.server("a.example")
        b = self.pki.server("b.example")
        put(os.path.join(directory, "a.pem"), a.chain, a.key)
        put(os.path.join(directory, "b.example", "fullchain.pem"), b.chain)
        put(os.path.join(directory, "b.example", "privkey.pem"), b.key)
        endpoint = serverFromString(
            reactor,
            f"sslfile:tcp:0:interface=127.0.0.1:certDir={directory}"
            ":reloadInterval=none",
        )
        port = yield endpoint.listen(Factory.forProtocol(_Echo))
        self.addCleanup(port.stopListening)
        base = (
            f"sslfile:tcp:127.0.0.1:{port.getHost().port}:trustRoots={self.pki.ca_path}"
        )
        for name, leaf in (("a.example", a), ("b.example", b)):
            client, result = yield self.round_trip(f"{base}:hostname={name}")
            self.assertEqual(client.transport.getPeerCertificate(), leaf.certificate)
            self.assertTrue(result.verified)

        before = yield clientFromString(reactor, f"{base}:hostname=a.example").connect(
            Factory.forProtocol(_Collector)
        )
        yield before.transport.whenHandshakeDone()
        renewed = self.pki.server("a.example")
        put(os.path.join(directory, "a.pem"), renewed.chain, renewed.key)
        self.assertTrue(endpoint.reload())
        client, _ = yield self.round_trip(f"{base}:hostname=a.example")
        self.assertEqual(client.transport.getPeerCertificate(), renewed.certificate)
        self.assertNotEqual(
            renewed.certificate.serial_number, a.certificate.serial_number
        )
        before.transport.write(b"still here")
        echoed = yield before.receive(10)
        self.assertEqual(echoed, b"still here")
        self.assertEqual(before.transport.getPeerCertificate(), a.certificate)
        before.transport.loseConnection()
        yield before.lost

    @defer.inlineCallbacks
    def test_host_name_connects_over_ipv6(self) -> Any:
        """
        sslfile:tcp:host=localhost connects like tls: (HostnameEndpoint):
        with a server on ::1 only and localhost resolving to 127.0.0.1
        first, then ::1 (as a stock /etc/hosts has it), the refused IPv4
        attempt is followed by the IPv6 one, which succeeds.
        """
        self.assertIn("::1", _loopback_addresses())
        port = yield self.listen(f"sslfile:tcp6:0:interface=\\:\\:1:{self.cert}")
        number = port.getHost().port
        # Nobody may accept on 127.0.0.1 at that port: hold it, not listening.
        blocker = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.addCleanup(blocker.close)
        blocker.bind(("127.0.0.1", number))
        hosts = _ReactorWithHosts(reactor, {"localhost": ["127.0.0.1", "::1"]})
        endpoint = clientFromString(
            hosts,
            f"sslfile:tcp:host=localhost:port={number}:trustRoots={self.pki.ca_path}",
        )
        self.assertIsInstance(endpoint.inner, HostnameEndpoint)
        client = yield endpoint.connect(Factory.forProtocol(_Collector))
        result = yield client.transport.whenHandshakeDone()
        self.assertEqual(client.transport.getPeer().host, "::1")
        self.assertEqual(result.server_name, "localhost")
        self.assertTrue(result.verified)
        self.assertEqual(hosts.resolved, ["localhost"])
        client.transport.loseConnection()
        yield client.lost

    @defer.inlineCallbacks
    def test_host_name_with_the_system_resolver(self) -> Any:
        """The real resolver: localhost is found and verified by name."""
        port = yield self.listen(f"sslfile:tcp:0:interface=127.0.0.1:{self.cert}")
        client, result = yield self.round_trip(
            f"sslfile:tcp:localhost:{port.getHost().port}:trustRoots={self.pki.ca_path}"
        )
        self.assertEqual(result.server_name, "localhost")
        self.assertEqual(client.transport.getPeer().host, "127.0.0.1")

    @defer.inlineCallbacks
    def test_client_certificate_required(self) -> Any:
        port = yield self.listen(
            f"sslfile:tcp:0:interface=127.0.0.1:{self.cert}"
            f":clientCertificate=require:trustRoots={self.pki.ca_path}"
        )
        me = self.pki.client("me")
        base = (
            f"sslfile:tcp:localhost:{port.getHost().port}:trustRoots={self.pki.ca_path}"
        )
        yield self.round_trip(
            f"{base}:certKey={me.chain_path}:privateKey={me.key_path}"
        )
        endpoint = clientFromString(reactor, base)
        client = yield endpoint.connect(Factory.forProtocol(_Collector))
        client.transport.write(b"no certificate")
        yield client.lost
        self.assertTrue(client.reason.check(TLSError), client.reason)

    @defer.inlineCallbacks
    def test_verification(self) -> Any:
        """
        Verification is on by default (an unknown CA fails the handshake)
        and verify=no turns it off.
        """
        port = yield self.listen(f"sslfile:tcp:0:interface=127.0.0.1:{self.cert}")
        elsewhere = self.make_pki()
        base = (
            f"sslfile:tcp:localhost:{port.getHost().port}"
            f":trustRoots={elsewhere.ca_path}"
        )
        client = yield clientFromString(reactor, base).connect(
            Factory.forProtocol(_Collector)
        )
        with self.assertRaises(CertificateError):
            yield client.transport.whenHandshakeDone()
        yield client.lost
        _, result = yield self.round_trip(f"{base}:verify=no")
        self.assertFalse(result.verified)

    @defer.inlineCallbacks
    def test_handshake_timeout(self) -> Any:
        """A silent client is dropped after handshakeTimeout."""
        port = yield self.listen(
            f"sslfile:tcp:0:interface=127.0.0.1:{self.cert}:handshakeTimeout=0.3"
        )
        silent = yield TCP4ClientEndpoint(
            reactor, "127.0.0.1", port.getHost().port
        ).connect(Factory.forProtocol(_Collector))
        started = reactor.seconds()
        yield silent.lost
        self.assertLess(reactor.seconds() - started, 5)
        self.assertEqual(silent.data, b"")


# ---------------------------------------------------------------------------
# systemd socket activation (a separate process, as systemd would start it)
# ---------------------------------------------------------------------------

#: What systemd (227 or later) does before exec: the socket on fd 3, and
#: LISTEN_FDS, LISTEN_FDNAMES and LISTEN_PID (this very process, which exec
#: keeps) in the environment.
_SYSTEMD_LAUNCHER = (
    "import os, sys\n"
    "fd = int(sys.argv[1])\n"
    "os.dup2(fd, 3)\n"
    "os.environ['LISTEN_FDS'] = '1'\n"
    "os.environ['LISTEN_PID'] = str(os.getpid())\n"
    "os.environ['LISTEN_FDNAMES'] = 'echo'\n"
    "os.execv(sys.argv[2], sys.argv[2:])\n"
)


class SystemdTests(_PKITestMixin, TestCase):
    """``sslfile:systemd:...``: several processes could share this socket."""

    timeout = 60

    @defer.inlineCallbacks
    def test_socket_activation(self) -> Any:
        pki = self.make_pki()
        leaf = pki.server("localhost")
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.addCleanup(listener.close)
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        port = listener.getsockname()[1]
        server = EchoServer(
            os.path.abspath(self.mktemp()),
            (
                "--endpoint",
                "sslfile:systemd:domain=INET:index=0",
                "--cert",
                leaf.chain_path,  # type: ignore[list-item]
                "--key",
                leaf.key_path,  # type: ignore[list-item]
            ),
            launcher=(sys.executable, "-c", _SYSTEMD_LAUNCHER, str(listener.fileno())),
            pass_fds=(listener.fileno(),),
        )
        self.addCleanup(server.kill)
        server.start()
        self.assertEqual(server.addresses, [("127.0.0.1", port)])
        # The process adopted our socket: connecting to it reaches twistd.
        endpoint = clientFromString(
            reactor, f"sslfile:tcp:localhost:{port}:trustRoots={pki.ca_path}"
        )
        client = yield endpoint.connect(Factory.forProtocol(_Collector))
        yield client.transport.whenHandshakeDone()
        client.transport.write(b"activated")
        echoed = yield client.receive(9)
        self.assertEqual(echoed, b"activated")
        client.transport.loseConnection()
        yield client.lost
        self.assertIn(" in=9 out=9 ", server.connection_line())
