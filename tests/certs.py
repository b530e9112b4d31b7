"""Certificates made at test time, for every test in the project.

No certificate or key is checked into the repository: fixtures that expire
break a test suite years later, and keys in a repository get copied.  A
:class:`CertificateFactory` makes a fresh PKI per test instead::

    pki = CertificateFactory(self.mktemp())
    server = pki.server("example.com", key_type="rsa-2048")
    context = Context(credentials=[server.credential()], ...)
    client_context = Context(trust_roots=pki.ca_path, ...)

Each factory has a root CA and an intermediate CA; leaves are issued by the
intermediate unless ``direct=True``.  Everything carries what the strictest
of our peers ask for, so the same files work with ``cryptography``'s
verifier, Python's ``ssl`` (with ``VERIFY_X509_STRICT``) and
``openssl s_server`` / ``s_client`` of OpenSSL 3.0:

* CAs: BasicConstraints critical with ca=True, KeyUsage critical with
  keyCertSign and cRLSign, SubjectKeyIdentifier, AuthorityKeyIdentifier
  (also on the root, pointing at itself).  CA keys are RSA or ECDSA:
  ``cryptography``'s verifier refuses Ed25519 issuers.
* Leaves: BasicConstraints ca=False, KeyUsage critical with digitalSignature
  (plus keyEncipherment for RSA), ExtendedKeyUsage, a subjectAltName
  (required by the WebPKI profile), SKI and AKI.
* Positive random serial numbers of at most 20 octets (RFC 5280 §4.1.2.2).

RSA key generation is the only slow step (~50 ms per 2048-bit key), so RSA
keys come from a small per-process pool handed out round-robin: consecutive
keys differ (a test can still make a key/certificate mismatch), but a whole
test run generates at most ``_RSA_POOL_SIZE`` keys per size.  Every factory
gets unique CA names, so two factories never vouch for each other even if
they happen to draw the same pooled RSA key.
"""

from __future__ import annotations

import datetime
import ipaddress
import itertools
import os
import re
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from twisted_sslfile.x509 import (
    PrivateKey,
    generate_private_key,
    normalize_key_type,
    write_pem,
)

__all__ = [
    "CA",
    "KEY_TYPES",
    "CertificateFactory",
    "IssuedCertificate",
    "make_key",
    "sha1_signed",
]

#: The leaf key types the suite exercises.
KEY_TYPES: tuple[str, ...] = ("rsa-2048", "ecdsa-p256", "ecdsa-p384", "ed25519")

_RSA_POOL_SIZE = 6
_rsa_pool: dict[int, list[rsa.RSAPrivateKey]] = {}
_rsa_turn = itertools.count()

#: Extended key usage shortcuts.
EKU = {
    "server": (ExtendedKeyUsageOID.SERVER_AUTH,),
    "client": (ExtendedKeyUsageOID.CLIENT_AUTH,),
    "both": (ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH),
    "code_signing": (ExtendedKeyUsageOID.CODE_SIGNING,),
    "email": (ExtendedKeyUsageOID.EMAIL_PROTECTION,),
}

_KEY_USAGE_FLAGS = (
    "digital_signature",
    "content_commitment",
    "key_encipherment",
    "data_encipherment",
    "key_agreement",
    "key_cert_sign",
    "crl_sign",
    "encipher_only",
    "decipher_only",
)

#: A value that means "use the default" where ``None`` means "leave out".
DEFAULT: object = object()


def make_key(key_type: str = "ecdsa-p256") -> PrivateKey:
    """A private key; RSA keys come from the per-process pool."""
    normal = normalize_key_type(key_type)
    if not normal.startswith("rsa-"):
        return generate_private_key(normal)
    bits = int(normal[4:])
    pool = _rsa_pool.setdefault(bits, [])
    turn = next(_rsa_turn) % _RSA_POOL_SIZE
    while len(pool) <= turn:
        pool.append(rsa.generate_private_key(public_exponent=65537, key_size=bits))
    return pool[turn]


def _signing_hash(key: PrivateKey) -> hashes.HashAlgorithm | None:
    if isinstance(key, (ed25519.Ed25519PrivateKey, ed448.Ed448PrivateKey)):
        return None
    if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp384r1":
        return hashes.SHA384()
    if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp521r1":
        return hashes.SHA512()
    return hashes.SHA256()


#: DER of the AlgorithmIdentifier OIDs sha256WithRSAEncryption and
#: sha1WithRSAEncryption (same length, so one can replace the other).
_SHA256_WITH_RSA = bytes.fromhex("06092a864886f70d01010b")
_SHA1_WITH_RSA = bytes.fromhex("06092a864886f70d010105")


def sha1_signed(cert: x509.Certificate, signing_key: PrivateKey) -> x509.Certificate:
    """``cert`` re-signed by ``signing_key`` (RSA) with SHA-1.

    cryptography refuses to make SHA-1 signatures in CertificateBuilder,
    so the SHA-256 certificate is rewritten: both signature algorithm
    identifiers (in the TBS and outside it) swapped for SHA-1's, and the
    TBS signed again with PKCS#1 v1.5 over SHA-1.  The lengths do not
    change, so no DER length needs fixing.
    """
    if not isinstance(signing_key, rsa.RSAPrivateKey):
        raise ValueError("a SHA-1 test signature needs an RSA issuer key")
    tbs = cert.tbs_certificate_bytes
    if tbs.count(_SHA256_WITH_RSA) != 1:
        raise ValueError("the certificate is not signed with sha256WithRSAEncryption")
    new_tbs = tbs.replace(_SHA256_WITH_RSA, _SHA1_WITH_RSA)
    signature = signing_key.sign(new_tbs, padding.PKCS1v15(), hashes.SHA1())
    der = cert.public_bytes(serialization.Encoding.DER).replace(tbs, new_tbs)
    if der.count(_SHA256_WITH_RSA) != 1 or der.count(cert.signature) != 1:
        raise ValueError("cannot rewrite this certificate's signature")
    der = der.replace(_SHA256_WITH_RSA, _SHA1_WITH_RSA).replace(
        cert.signature, signature
    )
    return x509.load_der_x509_certificate(der)


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "twisted_sslfile tests"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name[:64]),
        ]
    )


def _key_usage(flags: Iterable[str]) -> x509.KeyUsage:
    chosen = set(flags)
    unknown = chosen - set(_KEY_USAGE_FLAGS)
    if unknown:
        raise ValueError(f"unknown key usage flag(s) {sorted(unknown)}")
    return x509.KeyUsage(**{flag: flag in chosen for flag in _KEY_USAGE_FLAGS})


def _safe_filename(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or "cert"


@dataclass(eq=False)
class CA:
    """A certificate authority of a factory: root (``issuer is None``) or not."""

    name: str
    certificate: x509.Certificate
    key: PrivateKey
    issuer: CA | None = None

    @property
    def is_root(self) -> bool:
        return self.issuer is None

    @property
    def root(self) -> CA:
        ca = self
        while ca.issuer is not None:
            ca = ca.issuer
        return ca

    def chain_to_root(self) -> list[x509.Certificate]:
        """This CA and the CAs above it, excluding the root."""
        chain: list[x509.Certificate] = []
        ca: CA | None = self
        while ca is not None and ca.issuer is not None:
            chain.append(ca.certificate)
            ca = ca.issuer
        return chain


@dataclass(eq=False)
class IssuedCertificate:
    """A leaf certificate with its key, chain and (when written) file paths.

    ``chain`` is what a peer sends: the leaf, then the intermediates (never
    the root).  ``root`` is the trust anchor a verifier needs.
    """

    name: str
    certificate: x509.Certificate
    key: PrivateKey
    chain: list[x509.Certificate]
    root: x509.Certificate
    cert_path: str | None = None
    chain_path: str | None = None
    key_path: str | None = None
    combined_path: str | None = None
    ca_path: str | None = None
    key_password: str | None = None
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def der(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.DER)

    @property
    def chain_der(self) -> list[bytes]:
        return [c.public_bytes(serialization.Encoding.DER) for c in self.chain]

    @property
    def intermediates(self) -> list[x509.Certificate]:
        return self.chain[1:]

    def credential(self):  # -> twisted_sslfile.context.Credential
        """The chain and key as a ``Credential`` for a Context."""
        from twisted_sslfile.context import Credential

        return Credential(self.chain, self.key)


class CertificateFactory:
    """A throw-away PKI: one root, one intermediate, and leaves on demand.

    ``directory`` (typically ``self.mktemp()``; created if missing) receives
    PEM files; without it nothing is written and the ``*_path`` attributes
    stay None.  ``now`` anchors every default validity window, so a test
    with an injected clock can make certificates valid at that moment.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str] | None = None,
        *,
        name: str = "Test",
        root_key_type: str = "ecdsa-p256",
        intermediate_key_type: str = "ecdsa-p256",
        now: datetime.datetime | None = None,
    ) -> None:
        self.directory = os.fspath(directory) if directory is not None else None
        if self.directory is not None:
            os.makedirs(self.directory, exist_ok=True)
        self.name = name
        self.tag = secrets.token_hex(4)
        self.now = now or datetime.datetime.now(datetime.UTC)
        self._counter = itertools.count(1)
        self.root = self.make_root(key_type=root_key_type)
        self.intermediate = self.make_intermediate(key_type=intermediate_key_type)
        self.ca_path = self._write(
            f"{_safe_filename(name)}-ca.pem", self.root.certificate
        )

    # -- helpers --------------------------------------------------------------

    def _when(
        self, value: datetime.datetime | datetime.timedelta | None, default_days: float
    ) -> datetime.datetime:
        if value is None:
            return self.now + datetime.timedelta(days=default_days)
        if isinstance(value, datetime.timedelta):
            return self.now + value
        if value.tzinfo is None:
            return value.replace(tzinfo=datetime.UTC)
        return value

    def _write(
        self, filename: str, *objects, password: str | None = None
    ) -> str | None:
        if self.directory is None:
            return None
        return write_pem(
            os.path.join(self.directory, filename), *objects, password=password
        )

    def _unique(self, base: str) -> str:
        return f"{_safe_filename(base)}-{next(self._counter)}"

    def _ca_key(self, key_type: str) -> PrivateKey:
        normal = normalize_key_type(key_type)
        if normal in ("ed25519", "ed448"):
            raise ValueError(
                "CA keys must be RSA or ECDSA: cryptography's verifier refuses "
                "EdDSA issuers (Ed25519 leaves are fine)"
            )
        return make_key(normal)

    # -- CAs ------------------------------------------------------------------

    def _issue(
        self,
        *,
        subject: x509.Name,
        public_key,
        issuer: CA | None,
        signing_key: PrivateKey,
        not_before: datetime.datetime,
        not_after: datetime.datetime,
        extensions: Sequence[tuple[x509.ExtensionType, bool]],
        sha1_signature: bool = False,
    ) -> x509.Certificate:
        issuer_name = issuer.certificate.subject if issuer else subject
        issuer_public = (
            issuer.certificate.public_key() if issuer else signing_key.public_key()
        )
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer_name)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before)
            .not_valid_after(not_after)
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_public),
                critical=False,
            )
        )
        for extension, critical in extensions:
            builder = builder.add_extension(extension, critical=critical)
        cert = builder.sign(signing_key, _signing_hash(signing_key))
        if sha1_signature:
            cert = sha1_signed(cert, signing_key)
        return cert

    def _ca_extensions(
        self, path_length: int | None
    ) -> list[tuple[x509.ExtensionType, bool]]:
        return [
            (x509.BasicConstraints(ca=True, path_length=path_length), True),
            (_key_usage(("digital_signature", "key_cert_sign", "crl_sign")), True),
        ]

    def make_root(
        self,
        common_name: str | None = None,
        *,
        key_type: str = "ecdsa-p256",
        not_before: datetime.datetime | datetime.timedelta | None = None,
        not_after: datetime.datetime | datetime.timedelta | None = None,
    ) -> CA:
        """A self-signed root CA (another one: ``self.root`` exists already)."""
        common_name = common_name or f"{self.name} Root CA {self.tag}"
        key = self._ca_key(key_type)
        cert = self._issue(
            subject=_name(common_name),
            public_key=key.public_key(),
            issuer=None,
            signing_key=key,
            not_before=self._when(not_before, -2),
            not_after=self._when(not_after, 3650),
            extensions=self._ca_extensions(None),
        )
        return CA(common_name, cert, key, None)

    def make_intermediate(
        self,
        common_name: str | None = None,
        *,
        issuer: CA | None = None,
        key_type: str = "ecdsa-p256",
        key: PrivateKey | None = None,
        path_length: int | None = None,
        is_ca: bool | None = True,
        name_constraints: x509.NameConstraints | None = None,
        sha1_signature: bool = False,
        not_before: datetime.datetime | datetime.timedelta | None = None,
        not_after: datetime.datetime | datetime.timedelta | None = None,
    ) -> CA:
        """An intermediate CA under ``issuer`` (default: the root).

        For the broken chains of the verification tests: ``is_ca=False``
        issues it with basicConstraints cA=FALSE, ``is_ca=None`` without
        basicConstraints; ``name_constraints`` adds that (critical)
        extension; ``key`` takes any key (an RSA-1024 one); with
        ``sha1_signature`` its issuer signs it with SHA-1 (the issuer's key
        must be RSA).
        """
        issuer = issuer or self.root
        common_name = common_name or (
            f"{self.name} Intermediate CA {self.tag}-{next(self._counter)}"
        )
        key = key or self._ca_key(key_type)
        extensions = self._ca_extensions(path_length)
        if is_ca is None:
            extensions = extensions[1:]
        elif not is_ca:
            extensions[0] = (x509.BasicConstraints(ca=False, path_length=None), True)
        if name_constraints is not None:
            extensions.append((name_constraints, True))
        cert = self._issue(
            subject=_name(common_name),
            public_key=key.public_key(),
            issuer=issuer,
            signing_key=issuer.key,
            not_before=self._when(not_before, -1),
            not_after=self._when(not_after, 1825),
            extensions=extensions,
            sha1_signature=sha1_signature,
        )
        return CA(common_name, cert, key, issuer)

    def make_chain(self, depth: int, **kwargs) -> CA:
        """``depth`` intermediates stacked under the root; returns the lowest.

        For "chain too long" tests: a leaf issued by the result has
        ``depth`` intermediates in its chain.
        """
        ca = self.root
        for _ in range(depth):
            ca = self.make_intermediate(issuer=ca, **kwargs)
        return ca

    # -- leaves ---------------------------------------------------------------

    def leaf(
        self,
        common_name: str = "localhost",
        *,
        dns_names: Sequence[str] | None = None,
        ip_addresses: Sequence[
            str | ipaddress.IPv4Address | ipaddress.IPv6Address
        ] = (),
        key_type: str = "ecdsa-p256",
        key: PrivateKey | None = None,
        issuer: CA | None = None,
        direct: bool = False,
        extended_key_usage: str | Sequence[x509.ObjectIdentifier] | None = "server",
        key_usage: Iterable[str] | object | None = DEFAULT,
        include_san: bool = True,
        not_before: datetime.datetime | datetime.timedelta | None = None,
        not_after: datetime.datetime | datetime.timedelta | None = None,
        key_password: str | None = None,
        basename: str | None = None,
    ) -> IssuedCertificate:
        """Issue an end-entity certificate.

        * ``dns_names`` default to ``[common_name]`` (unless it is an IP
          address, which then goes to the IP SANs); ``ip_addresses`` are
          added as IP SANs.  ``include_san=False`` leaves the SAN out.
        * ``issuer``: a CA from this factory; default the intermediate, or
          the root with ``direct=True``.
        * ``extended_key_usage``: ``"server"``, ``"client"``, ``"both"``,
          ``"code_signing"``, ``"email"``, a list of OIDs, or None (no EKU
          extension).
        * ``key_usage``: KeyUsage flag names (``"digital_signature"``,
          ``"key_encipherment"``...), or None for no KeyUsage extension.
        * ``not_before``/``not_after``: a datetime or a timedelta from the
          factory's ``now`` (defaults -1 day / +365 days).  For expired use
          ``not_after=timedelta(days=-1)``; for not yet valid
          ``not_before=timedelta(days=1)``.
        * ``key_password``: write the key file encrypted with it.
        """
        if issuer is None:
            issuer = self.root if direct else self.intermediate
        if key is None:
            key = make_key(key_type)
        names: list[x509.GeneralName] = []
        if include_san:
            if dns_names is None:
                try:
                    ip = ipaddress.ip_address(common_name)
                except ValueError:
                    dns_names = [common_name]
                else:
                    dns_names = []
                    ip_addresses = [ip, *ip_addresses]
            names += [x509.DNSName(name) for name in dns_names]
            names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ip_addresses]
        if key_usage is DEFAULT:
            key_usage = ["digital_signature"]
            if isinstance(key, rsa.RSAPrivateKey):
                key_usage.append("key_encipherment")
        extensions: list[tuple[x509.ExtensionType, bool]] = [
            (x509.BasicConstraints(ca=False, path_length=None), True)
        ]
        if key_usage is not None:
            extensions.append((_key_usage(key_usage), True))  # type: ignore[arg-type]
        if extended_key_usage is not None:
            oids = (
                EKU[extended_key_usage]
                if isinstance(extended_key_usage, str)
                else tuple(extended_key_usage)
            )
            extensions.append((x509.ExtendedKeyUsage(list(oids)), False))
        if names:
            extensions.append((x509.SubjectAlternativeName(names), False))
        cert = self._issue(
            subject=_name(common_name),
            public_key=key.public_key(),
            issuer=issuer,
            signing_key=issuer.key,
            not_before=self._when(not_before, -1),
            not_after=self._when(not_after, 365),
            extensions=extensions,
        )
        chain = [cert, *issuer.chain_to_root()]
        root = issuer.root.certificate
        base = self._unique(basename or common_name)
        issued = IssuedCertificate(
            name=common_name,
            certificate=cert,
            key=key,
            chain=chain,
            root=root,
            key_password=key_password,
        )
        if self.directory is not None:
            issued.cert_path = self._write(f"{base}.pem", cert)
            issued.chain_path = self._write(f"{base}-chain.pem", chain)
            issued.key_path = self._write(f"{base}-key.pem", key, password=key_password)
            issued.combined_path = self._write(
                f"{base}-combined.pem", chain, key, password=key_password
            )
            if issuer.root is self.root:
                issued.ca_path = self.ca_path
            else:
                issued.ca_path = self._write(f"{base}-ca.pem", root)
        return issued

    def server(self, common_name: str = "localhost", **kwargs) -> IssuedCertificate:
        """A leaf for TLS servers (EKU serverAuth)."""
        kwargs.setdefault("extended_key_usage", "server")
        return self.leaf(common_name, **kwargs)

    def client(self, common_name: str = "client", **kwargs) -> IssuedCertificate:
        """A leaf for TLS clients (EKU clientAuth)."""
        kwargs.setdefault("extended_key_usage", "client")
        return self.leaf(common_name, **kwargs)

    @property
    def trust_roots(self) -> list[x509.Certificate]:
        """The root certificate, as a list for ``Context(trust_roots=...)``."""
        return [self.root.certificate]
