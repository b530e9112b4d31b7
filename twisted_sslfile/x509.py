"""Certificates and keys: loading, trust roots, chain verification, generation.

Two kinds of failure live here and they must not be confused:

* *Configuration* failures (a PEM file that does not exist, a key that does
  not decrypt, an empty CA bundle) happen when a :class:`~.context.Context`
  is built, long before any peer is involved.  They raise
  :class:`ConfigurationError`, a :class:`ValueError` whose message names the
  file.
* *Verification* failures concern what a peer sent.  They raise
  :class:`~twisted_sslfile.errors.CertificateError` carrying the TLS alert to
  send (RFC 8446 §6.2) and the certificate at fault, and the message names
  that certificate's subject and says what was wrong with it.

Path building and policy are delegated to ``cryptography.x509.verification``
(a WebPKI profile implemented in Rust).  Its errors are plain strings, so this
module checks what it can name exactly itself - validity windows, host names,
key usage - and uses the verifier's message to pick a category when it
fails for a reason we did not pre-empt; then our own look at the chain names
the certificate at fault, and the verifier's text ends the message.

Alert mapping of verification failures (RFC 8446 §6.2):

=====================================  ===========================
problem                                alert
=====================================  ===========================
empty chain (server's)                 decode_error (§4.4.2.4)
empty chain (client's, when required)  certificate_required
more certificates than allowed         bad_certificate
certificate DER does not parse         bad_certificate
expired / not yet valid (any cert)     certificate_expired
untrusted root, missing intermediate,  unknown_ca
  path too deep, issuer key mismatch
issuer not a CA (cA=FALSE or no        unknown_ca (as OpenSSL)
  basicConstraints), path length
  constraint exceeded
leaf outside a CA's name constraints   bad_certificate
SHA-1 / MD5 certificate signature      bad_certificate (§4.4.2.4)
RSA key under 2048 bits                insufficient_security
any other rule an issuer on the path   unknown_ca
  breaks (verifier's text quoted)
host name / IP address mismatch        bad_certificate
wrong EKU, leaf KeyUsage without       unsupported_certificate
  digitalSignature, forbidden key
other policy violations (missing       bad_certificate
  AKI/SAN, bad extensions, ...)
=====================================  ===========================
"""

from __future__ import annotations

import datetime
import functools
import hashlib
import ipaddress
import itertools
import os
import re
import ssl
import struct
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeAlias

import idna
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.utils import CryptographyDeprecationWarning
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, PublicKeyAlgorithmOID
from cryptography.x509.verification import (
    Criticality,
    ExtensionPolicy,
    PolicyBuilder,
    Store,
    VerificationError,
)

from twisted_sslfile._files import write_private_file
from twisted_sslfile.constants import (
    AlertDescription,
    ClientCertificatePolicy,
    SignatureScheme,
)
from twisted_sslfile.errors import CertificateError, InternalError

if TYPE_CHECKING:
    from twisted_sslfile.context import Context

__all__ = [
    "KEY_TYPES",
    "ConfigurationError",
    "EmptyCertificateChainError",
    "PrivateKey",
    "TrustRoots",
    "canonical_server_name",
    "certificate_dns_names",
    "certificate_ip_addresses",
    "certificate_to_pem",
    "client_ca_names",
    "client_verification_policy",
    "describe_certificate",
    "describe_key",
    "fingerprint_sha256",
    "generate_private_key",
    "generate_self_signed",
    "load_cert_and_key",
    "load_certificate_chain",
    "load_certificates",
    "load_pem_certificates",
    "load_private_key",
    "load_private_key_data",
    "load_trust_roots",
    "match_server_name",
    "normalize_server_name",
    "parse_chain",
    "private_key_to_pem",
    "signature_schemes_for_certificate",
    "system_trust_roots",
    "verification_policy",
    "verify_chain",
    "verify_client_certificates",
    "verify_client_chain",
    "verify_server_certificates",
    "verify_server_chain",
    "write_pem",
]

#: The private key types a credential may hold.  Keys are only ever used
#: through ``.sign(...)`` and ``.public_key()``, so tests may substitute an
#: object that behaves like one of these.
PrivateKey: TypeAlias = (
    rsa.RSAPrivateKey
    | ec.EllipticCurvePrivateKey
    | ed25519.Ed25519PrivateKey
    | ed448.Ed448PrivateKey
)

PasswordType: TypeAlias = str | bytes | Callable[[], str | bytes] | None

#: Key types :func:`generate_private_key` understands.
KEY_TYPES: tuple[str, ...] = (
    "rsa-2048",
    "rsa-3072",
    "rsa-4096",
    "ecdsa-p256",
    "ecdsa-p384",
    "ecdsa-p521",
    "ed25519",
    "ed448",
)

_KEY_TYPE_ALIASES = {
    "rsa": "rsa-2048",
    "rsa2048": "rsa-2048",
    "ecdsa": "ecdsa-p256",
    "p256": "ecdsa-p256",
    "p-256": "ecdsa-p256",
    "ecdsa-p-256": "ecdsa-p256",
    "p384": "ecdsa-p384",
    "p-384": "ecdsa-p384",
    "ecdsa-p-384": "ecdsa-p384",
    "p521": "ecdsa-p521",
    "p-521": "ecdsa-p521",
}


# ---------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------


class ConfigurationError(ValueError):
    """A certificate, key or trust-root source could not be used.

    Raised while a Context is configured, never on the wire.  ``path`` is the
    file at fault when there is one, and the message always names it.
    """

    def __init__(self, message: str, path: str | os.PathLike[str] | None = None):
        super().__init__(message)
        self.path = os.fspath(path) if path is not None else None


class EmptyCertificateChainError(CertificateError):
    """The peer sent a Certificate message with no certificate in it.

    Kept distinct because what it means depends on who sent it: an empty
    server chain is always fatal (RFC 8446 §4.4.2.4 asks for decode_error),
    an empty client chain is an answer the server may accept
    (``ClientCertificatePolicy.REQUEST``) or refuse with certificate_required
    (``REQUIRE``; RFC 8446 §4.4.2.4).  The engine makes that call; the alert
    set here is the default for the side given to :func:`parse_chain`.
    """


# ---------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------

_PEM_BLOCK = re.compile(
    rb"-----BEGIN ([A-Z0-9 ]+)-----\r?\n.*?-----END \1-----", re.DOTALL
)
_CERTIFICATE_LABELS = (b"CERTIFICATE", b"X509 CERTIFICATE")
_KEY_LABELS = (
    b"PRIVATE KEY",
    b"ENCRYPTED PRIVATE KEY",
    b"RSA PRIVATE KEY",
    b"EC PRIVATE KEY",
)


def _pem_blocks(data: bytes) -> list[tuple[bytes, bytes]]:
    """Every PEM block in ``data`` as (label, whole block), in file order."""
    return [(m.group(1), m.group(0)) for m in _PEM_BLOCK.finditer(data)]


def _read(path: str | os.PathLike[str], what: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        raise ConfigurationError(
            f"{what} file {os.fspath(path)!r} does not exist", path
        ) from None
    except IsADirectoryError:
        raise ConfigurationError(
            f"{what} file {os.fspath(path)!r} is a directory", path
        ) from None
    except OSError as e:
        raise ConfigurationError(
            f"cannot read {what} file {os.fspath(path)!r}: {e.strerror or e}", path
        ) from e


def load_pem_certificates(
    data: bytes, source: str = "<data>", *, strict: bool = True
) -> list[x509.Certificate]:
    """Parse every CERTIFICATE block of PEM ``data``, in order.

    ``source`` names the data in error messages.  With ``strict=False`` a
    block that does not parse is skipped instead: the system CA bundle may
    hold a certificate that ``cryptography`` rejects (e.g. a negative serial
    number), and one odd root must not make every other one unusable.
    """
    certs: list[x509.Certificate] = []
    index = 0
    for label, block in _pem_blocks(data):
        if label not in _CERTIFICATE_LABELS:
            continue
        index += 1
        try:
            if strict:
                certs.append(x509.load_pem_x509_certificate(block))
            else:
                # Old roots in OS bundles trip cryptography's deprecation
                # warnings (e.g. a zero serial number); they are not ours to
                # fix, and a warning per process start is only noise.
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", CryptographyDeprecationWarning)
                    certs.append(x509.load_pem_x509_certificate(block))
        except ValueError as e:
            if strict:
                raise ConfigurationError(
                    f"certificate #{index} in {source} does not parse: {e}", source
                ) from e
    return certs


def load_certificates(path: str | os.PathLike[str]) -> list[x509.Certificate]:
    """Load the certificates in a PEM file (any number) or a DER file (one).

    A file with no certificate in it is an error: it is almost always the
    wrong file (a key, an empty file) given where a certificate belongs.
    """
    name = os.fspath(path)
    data = _read(path, "certificate")
    if b"-----BEGIN" in data:
        certs = load_pem_certificates(data, name)
        if not certs:
            labels = sorted({label.decode() for label, _ in _pem_blocks(data)})
            found = f" (found only {', '.join(labels)})" if labels else ""
            raise ConfigurationError(
                f"no certificate found in PEM file {name!r}{found}", path
            )
        return certs
    if not data.strip():
        raise ConfigurationError(f"certificate file {name!r} is empty", path)
    try:
        return [x509.load_der_x509_certificate(data)]
    except ValueError as e:
        raise ConfigurationError(
            f"{name!r} is neither a PEM file with certificates nor a DER "
            f"certificate: {e}",
            path,
        ) from e


def load_certificate_chain(path: str | os.PathLike[str]) -> list[x509.Certificate]:
    """Load a certificate chain, leaf first, as a server or client presents it."""
    return load_certificates(path)


def _password_bytes(password: PasswordType) -> bytes | None:
    if callable(password):
        password = password()
    if password is None:
        return None
    if isinstance(password, str):
        return password.encode("utf-8")
    if isinstance(password, (bytes, bytearray)):
        return bytes(password)
    raise TypeError(f"password must be str, bytes or a callable, not {password!r}")


def _check_key_type(key: object, source: str) -> PrivateKey:
    if isinstance(
        key,
        (
            rsa.RSAPrivateKey,
            ec.EllipticCurvePrivateKey,
            ed25519.Ed25519PrivateKey,
            ed448.Ed448PrivateKey,
        ),
    ):
        return key
    raise ConfigurationError(
        f"the private key in {source} is a {type(key).__name__}; TLS credentials "
        f"need an RSA, ECDSA, Ed25519 or Ed448 key",
        source,
    )


def load_private_key_data(
    data: bytes, source: str = "<data>", password: PasswordType = None
) -> PrivateKey:
    """Load the (first) private key from PEM or DER ``data``.

    PEM data may hold certificates as well (a combined cert+key file); only
    the key block is used.
    """
    pw = _password_bytes(password)
    if b"-----BEGIN" in data:
        blocks = [block for label, block in _pem_blocks(data) if label in _KEY_LABELS]
        if not blocks:
            raise ConfigurationError(f"no private key found in {source}", source)
        encoded, loader = blocks[0], serialization.load_pem_private_key
    else:
        encoded, loader = data, serialization.load_der_private_key
    try:
        key = loader(encoded, password=pw)
    except TypeError as e:
        # cryptography: TypeError for "encrypted but no password" and for
        # "password given but not encrypted".
        if pw is None:
            raise ConfigurationError(
                f"the private key in {source} is encrypted; a password is needed",
                source,
            ) from e
        raise ConfigurationError(
            f"the private key in {source} is not encrypted but a password was given",
            source,
        ) from e
    except UnsupportedAlgorithm as e:
        raise ConfigurationError(
            f"the private key in {source} uses an unsupported algorithm: {e}", source
        ) from e
    except ValueError as e:
        if pw is not None:
            raise ConfigurationError(
                f"cannot load the private key in {source}: wrong password or "
                f"corrupt key ({e})",
                source,
            ) from e
        raise ConfigurationError(
            f"cannot load the private key in {source}: {e}", source
        ) from e
    return _check_key_type(key, source)


def load_private_key(
    path: str | os.PathLike[str], password: PasswordType = None
) -> PrivateKey:
    """Load a private key from a PEM or DER file, decrypting it if needed."""
    return load_private_key_data(_read(path, "private key"), os.fspath(path), password)


def load_cert_and_key(
    certfile: str | os.PathLike[str],
    keyfile: str | os.PathLike[str] | None = None,
    password: PasswordType = None,
) -> tuple[list[x509.Certificate], PrivateKey]:
    """Load a chain and its key; the key may sit in ``certfile`` itself."""
    chain = load_certificate_chain(certfile)
    if keyfile is None:
        data = _read(certfile, "certificate")
        if not any(label in _KEY_LABELS for label, _ in _pem_blocks(data)):
            raise ConfigurationError(
                f"no private key found in {os.fspath(certfile)!r} and no key "
                f"file was given",
                certfile,
            )
        key = load_private_key_data(data, os.fspath(certfile), password)
    else:
        key = load_private_key(keyfile, password)
    return chain, key


# ---------------------------------------------------------------------------
# Trust roots
# ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TrustRoots:
    """A verification ``Store`` plus the certificates it was made from.

    The ``Store`` is opaque; keeping the certificates lets an error say
    "issued by X, which is not a trust root" rather than only "unknown CA".
    ``certificates`` is empty when the caller handed us a ready ``Store``.

    ``digest`` names the set of roots (order and duplicates aside): SHA-256
    over their sorted SHA-256 fingerprints, so the same roots give the same
    digest in any process, whether read from a file, a directory or a list.
    A ready ``Store`` cannot be looked into; its roots get a random digest
    instead, which only this object carries.  :func:`verification_policy`
    builds on it.
    """

    store: Store
    certificates: tuple[x509.Certificate, ...]
    source: str
    digest: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.certificates:
            fingerprints = sorted(
                {c.fingerprint(hashes.SHA256()) for c in self.certificates}
            )
            digest = hashlib.sha256(b"".join(fingerprints)).digest()
        else:
            digest = os.urandom(32)
        object.__setattr__(self, "digest", digest)

    def __repr__(self) -> str:
        return f"<TrustRoots {len(self.certificates)} certificates from {self.source}>"

    @classmethod
    def from_certificates(
        cls, certificates: Iterable[x509.Certificate], source: str = "<list>"
    ) -> TrustRoots:
        unique: dict[bytes, x509.Certificate] = {}
        for cert in certificates:
            if not isinstance(cert, x509.Certificate):
                raise ConfigurationError(
                    f"trust roots from {source} must be "
                    f"cryptography.x509.Certificate objects, not {cert!r}"
                )
            unique.setdefault(cert.fingerprint(hashes.SHA256()), cert)
        if not unique:
            raise ConfigurationError(f"no trust root certificates in {source}", source)
        certs = tuple(unique.values())
        return cls(Store(list(certs)), certs, source)


def _certificates_in_directory(
    directory: str, *, strict: bool
) -> list[x509.Certificate]:
    """PEM certificates in every regular file of ``directory``.

    Files without a PEM certificate (READMEs, CRLs, keys) are skipped: an
    OpenSSL ``CApath`` directory mixes hash links with other files.
    """
    certs: list[x509.Certificate] = []
    try:
        names = sorted(os.listdir(directory))
    except OSError as e:
        raise ConfigurationError(
            f"cannot list trust root directory {directory!r}: {e.strerror or e}",
            directory,
        ) from e
    for name in names:
        path = os.path.join(directory, name)
        if not os.path.isfile(path):
            continue
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as e:
            if strict:
                raise ConfigurationError(
                    f"cannot read trust root file {path!r}: {e.strerror or e}", path
                ) from e
            continue
        if b"-----BEGIN" in data:
            certs.extend(load_pem_certificates(data, path, strict=strict))
    return certs


def _load_trust_path(path: str, *, strict: bool) -> TrustRoots | None:
    if os.path.isdir(path):
        certs = _certificates_in_directory(path, strict=strict)
        if not certs:
            if not strict:
                return None
            raise ConfigurationError(
                f"no PEM certificates found in trust root directory {path!r}", path
            )
        return TrustRoots.from_certificates(certs, path)
    if not strict and not os.path.isfile(path):
        return None
    if strict:
        certs = load_certificates(path)
    else:
        try:
            with open(path, "rb") as f:
                certs = load_pem_certificates(f.read(), path, strict=False)
        except OSError:
            return None
    if not certs:
        return None
    return TrustRoots.from_certificates(certs, path)


def system_trust_roots() -> TrustRoots:
    """The operating system's CA bundle, as OpenSSL would find it.

    ``ssl.get_default_verify_paths()`` already honours ``SSL_CERT_FILE`` and
    ``SSL_CERT_DIR``; after it come OpenSSL's compiled-in locations and then
    certifi's bundle when that package is installed.
    """
    paths = ssl.get_default_verify_paths()
    candidates = [
        paths.cafile,
        paths.capath,
        paths.openssl_cafile,
        paths.openssl_capath,
    ]
    tried: list[str] = []
    for candidate in candidates:
        if not candidate or candidate in tried:
            continue
        tried.append(candidate)
        roots = _load_trust_path(candidate, strict=False)
        if roots is not None:
            return roots
    try:
        import certifi
    except ImportError:
        pass
    else:
        where = certifi.where()
        tried.append(where)
        roots = _load_trust_path(where, strict=False)
        if roots is not None:
            return roots
    raise ConfigurationError(
        "no system CA bundle found (looked in "
        + (", ".join(tried) if tried else "no locations")
        + "); pass trust_roots= a PEM file, a directory or a list of "
        "certificates, install certifi, or set SSL_CERT_FILE"
    )


TrustRootsSource: TypeAlias = (
    str | os.PathLike[str] | Sequence[x509.Certificate] | Store | TrustRoots | None
)


def load_trust_roots(source: TrustRootsSource = None) -> TrustRoots:
    """Build the trust roots from ``source``.

    ``None`` means the system bundle (:func:`system_trust_roots`); a path is a
    PEM (or DER) file or a directory of PEM files; a sequence holds
    ``cryptography.x509.Certificate`` objects; a ready ``Store`` is used as
    it is (errors then cannot name the roots).
    """
    if source is None:
        return system_trust_roots()
    if isinstance(source, TrustRoots):
        return source
    if isinstance(source, Store):
        return TrustRoots(source, (), "<Store>")
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        if not os.path.exists(path):
            raise ConfigurationError(
                f"trust root file or directory {path!r} does not exist", path
            )
        roots = _load_trust_path(path, strict=True)
        if roots is None:  # pragma: no cover - strict mode raises instead
            raise ConfigurationError(f"no certificates found in {path!r}", path)
        return roots
    if isinstance(source, x509.Certificate):
        return TrustRoots.from_certificates([source], "<certificate>")
    if isinstance(source, (bytes, bytearray)):
        raise ConfigurationError(
            "trust roots given as bytes; pass a path, or parse them with "
            "load_pem_certificates() first"
        )
    try:
        certs = list(source)
    except TypeError:
        raise ConfigurationError(
            f"trust roots must be None, a path, a list of certificates or a "
            f"Store, not {type(source).__name__}"
        ) from None
    return TrustRoots.from_certificates(certs)


#: At most this many CA names in a CertificateRequest (see
#: :func:`client_ca_names`; docs/security.rst).
MAX_CLIENT_CA_NAMES = 100
#: At most this many bytes of encoded names, so that the CertificateRequest
#: stays within one 16 KiB record and far below peers' message limits.
MAX_CLIENT_CA_NAMES_BYTES = 16384


def client_ca_names(context: Context) -> list[bytes]:
    """The DER subject names a server lists in its CertificateRequest.

    RFC 5246 §7.4.4 (TLS 1.2 certificate_authorities) and RFC 8446 §4.2.4
    (the TLS 1.3 extension): the CAs whose certificates the server accepts.
    Some clients (Pike 8.0's among them) only send a certificate issued
    under a listed name, so a server verifying clients against its own
    roots must list them.  They are the subjects of the context's
    ``trust_roots``, in order, without repeats.

    Empty - meaning "any CA" in both versions - for the system bundle
    (``trust_roots=None``: hundreds of public CAs tell a client nothing), a
    ready ``Store`` whose certificates we cannot see, and a list longer than
    :data:`MAX_CLIENT_CA_NAMES` names or :data:`MAX_CLIENT_CA_NAMES_BYTES`
    bytes: a list cut short would turn away clients of the CAs left out.
    """
    if context.trust_roots is None:
        return []
    roots = context.trust_anchors  # explicit roots: loaded by the Context
    if len(roots.certificates) > MAX_CLIENT_CA_NAMES:
        return []
    names: dict[bytes, None] = {}
    for cert in roots.certificates:
        names.setdefault(cert.subject.public_bytes(), None)
    # Each name is a 2-byte length and its DER (RFC 5246 §7.4.4).
    if sum(2 + len(name) for name in names) > MAX_CLIENT_CA_NAMES_BYTES:
        return []
    return list(names)


# ---------------------------------------------------------------------------
# Describing certificates and keys
# ---------------------------------------------------------------------------

_EKU_NAMES = {
    ExtendedKeyUsageOID.SERVER_AUTH: "serverAuth",
    ExtendedKeyUsageOID.CLIENT_AUTH: "clientAuth",
    ExtendedKeyUsageOID.CODE_SIGNING: "codeSigning",
    ExtendedKeyUsageOID.EMAIL_PROTECTION: "emailProtection",
    ExtendedKeyUsageOID.TIME_STAMPING: "timeStamping",
    ExtendedKeyUsageOID.OCSP_SIGNING: "OCSPSigning",
    ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE: "anyExtendedKeyUsage",
}


def describe_certificate(cert: x509.Certificate) -> str:
    """A short human name for a certificate: its subject, else its SAN."""
    try:
        subject = cert.subject.rfc4514_string()
    except (ValueError, TypeError):  # undecodable or mistyped attribute values
        subject = ""
    if subject:
        return subject
    try:
        names = _format_names(cert)
    except Exception:  # a corrupt SAN must not hide the real error
        names = ""
    if names:
        return f"<empty subject, {names}>"
    return f"<empty subject, serial {cert.serial_number:#x}>"


def describe_key(key: object) -> str:
    """``RSA-2048``, ``ECDSA-secp256r1``, ``Ed25519``... for messages."""
    if isinstance(key, (rsa.RSAPrivateKey, rsa.RSAPublicKey)):
        return f"RSA-{key.key_size}"
    if isinstance(key, (ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey)):
        return f"ECDSA-{key.curve.name}"
    if isinstance(key, (ed25519.Ed25519PrivateKey, ed25519.Ed25519PublicKey)):
        return "Ed25519"
    if isinstance(key, (ed448.Ed448PrivateKey, ed448.Ed448PublicKey)):
        return "Ed448"
    return type(key).__name__


def _san(cert: x509.Certificate) -> x509.SubjectAlternativeName | None:
    try:
        return cert.extensions.get_extension_for_class(
            x509.SubjectAlternativeName
        ).value
    except x509.ExtensionNotFound:
        return None


def certificate_dns_names(cert: x509.Certificate) -> list[str]:
    """DNS names in the subjectAltName, lower-cased (wildcards kept)."""
    san = _san(cert)
    if san is None:
        return []
    return [name.lower() for name in san.get_values_for_type(x509.DNSName)]


def certificate_ip_addresses(
    cert: x509.Certificate,
) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    """IP addresses in the subjectAltName."""
    san = _san(cert)
    if san is None:
        return []
    return [
        ip
        for ip in san.get_values_for_type(x509.IPAddress)
        if isinstance(ip, (ipaddress.IPv4Address, ipaddress.IPv6Address))
    ]


def certificate_common_names(cert: x509.Certificate) -> list[str]:
    """The subject's commonName values (only for credential selection)."""
    names = []
    for attribute in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME):
        value = attribute.value
        if isinstance(value, bytes):  # pragma: no cover - odd encodings
            value = value.decode("latin-1")
        names.append(value.lower())
    return names


def _format_names(cert: x509.Certificate) -> str:
    names = [f"DNS:{n}" for n in certificate_dns_names(cert)]
    names += [f"IP:{ip}" for ip in certificate_ip_addresses(cert)]
    return ", ".join(names)


def _format_time(when: datetime.datetime) -> str:
    return when.astimezone(datetime.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def fingerprint_sha256(cert: x509.Certificate | bytes) -> str:
    """SHA-256 fingerprint as upper-case hex pairs joined by colons.

    The format ``openssl x509 -fingerprint -sha256`` prints, so an operator
    can compare the two by eye.
    """
    if isinstance(cert, (bytes, bytearray, memoryview)):
        digest = hashes.Hash(hashes.SHA256())
        digest.update(bytes(cert))
        raw = digest.finalize()
    else:
        raw = cert.fingerprint(hashes.SHA256())
    return ":".join(f"{b:02X}" for b in raw)


# ---------------------------------------------------------------------------
# Keys and signature schemes
# ---------------------------------------------------------------------------


def normalize_key_type(key_type: str) -> str:
    """Canonical spelling of a key type name (``"p256"`` -> ``"ecdsa-p256"``)."""
    normal = key_type.strip().lower().replace("_", "-")
    normal = _KEY_TYPE_ALIASES.get(normal, normal)
    if normal not in KEY_TYPES:
        raise ValueError(
            f"unknown key type {key_type!r}; choose one of {', '.join(KEY_TYPES)}"
        )
    return normal


def generate_private_key(key_type: str = "ecdsa-p256") -> PrivateKey:
    """A fresh private key of one of :data:`KEY_TYPES`."""
    normal = normalize_key_type(key_type)
    if normal.startswith("rsa-"):
        return rsa.generate_private_key(public_exponent=65537, key_size=int(normal[4:]))
    if normal == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    if normal == "ed448":
        return ed448.Ed448PrivateKey.generate()
    curve = {
        "ecdsa-p256": ec.SECP256R1(),
        "ecdsa-p384": ec.SECP384R1(),
        "ecdsa-p521": ec.SECP521R1(),
    }[normal]
    return ec.generate_private_key(curve)


def signature_schemes_for_certificate(
    cert: x509.Certificate, version: int
) -> tuple[SignatureScheme, ...]:
    """Schemes the certificate's key can sign a handshake with in ``version``.

    The rules (RFC 8446 §4.2.3: curve-bound ECDSA and PSS-only RSA in
    TLS 1.3; rsa_pss_pss_* for an RSASSA-PSS key) live in
    ``engine.suites.schemes_for_key``; this only adds what the key object
    cannot tell, whether the certificate declares an RSASSA-PSS key.
    """
    from twisted_sslfile.engine import suites

    pss = cert.public_key_algorithm_oid == PublicKeyAlgorithmOID.RSASSA_PSS
    try:
        schemes = suites.schemes_for_key(cert.public_key(), version, rsassa_pss=pss)
    except (TypeError, ValueError, UnsupportedAlgorithm):
        return ()
    return tuple(schemes)


# ---------------------------------------------------------------------------
# Writing and generating
# ---------------------------------------------------------------------------


def certificate_to_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def private_key_to_pem(key: PrivateKey, password: str | bytes | None = None) -> bytes:
    """PKCS#8 PEM, encrypted with the best available scheme if a password is set."""
    encryption: serialization.KeySerializationEncryption
    if password is None:
        encryption = serialization.NoEncryption()
    else:
        pw = password.encode("utf-8") if isinstance(password, str) else password
        encryption = serialization.BestAvailableEncryption(pw)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )


def write_pem(
    path: str | os.PathLike[str],
    *objects: x509.Certificate | PrivateKey | Iterable[x509.Certificate],
    password: str | bytes | None = None,
) -> str:
    """Write certificates and keys to ``path`` as PEM, in the order given.

    Lists of certificates are flattened, so ``write_pem(p, chain, key)``
    makes a combined file.  The file is replaced atomically
    (:func:`~twisted_sslfile._files.write_private_file`: a random temporary
    name, no symlink followed).  A file that holds a key gets mode 0600 -
    also when it replaces an older, more open file - so the key is never
    world-readable, even briefly; certificates alone get 0644.  Returns the
    path.
    """
    parts: list[bytes] = []
    has_key = False
    for obj in objects:
        if isinstance(obj, x509.Certificate):
            parts.append(certificate_to_pem(obj))
        elif hasattr(obj, "private_bytes"):
            # Any cryptography private key (tests write DSA keys too).
            parts.append(private_key_to_pem(obj, password))  # type: ignore[arg-type]
            has_key = True
        elif isinstance(obj, Iterable):
            parts.extend(certificate_to_pem(cert) for cert in obj)
        else:
            raise TypeError(f"write_pem cannot write {type(obj).__name__}")
    return write_private_file(path, b"".join(parts), mode=0o600 if has_key else 0o644)


def _signing_hash(
    key: PrivateKey,
) -> hashes.SHA256 | hashes.SHA384 | hashes.SHA512 | None:
    if isinstance(key, (ed25519.Ed25519PrivateKey, ed448.Ed448PrivateKey)):
        return None
    if isinstance(key, ec.EllipticCurvePrivateKey):
        if key.curve.name == "secp384r1":
            return hashes.SHA384()
        if key.curve.name == "secp521r1":
            return hashes.SHA512()
    return hashes.SHA256()


def _general_names(hostnames: Iterable[str]) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = []
    for hostname in hostnames:
        if hostname.startswith("*."):
            # A wildcard is a certificate name, never a host name: check the
            # rest (RFC 6125 §6.4.3 allows it only as the leftmost label).
            kind, value = normalize_server_name(hostname[2:])
            if kind == "dns":
                names.append(x509.DNSName(f"*.{value}"))
                continue
            raise ValueError(f"no wildcard over an IP address: {hostname!r}")
        kind, value = normalize_server_name(hostname)
        if kind == "ip":
            names.append(x509.IPAddress(value))  # type: ignore[arg-type]
        else:
            names.append(x509.DNSName(value))  # type: ignore[arg-type]
    return names


def generate_self_signed(
    hostnames: str | Sequence[str],
    key_type: str = "ecdsa-p256",
    days: int = 365,
    *,
    now: datetime.datetime | None = None,
) -> tuple[x509.Certificate, PrivateKey]:
    """A self-signed server certificate for ``hostnames`` (DNS names or IPs).

    Meant for the echo plugin and quick tests: the peer must trust this very
    certificate (``trust_roots=[cert]``).  It carries what strict verifiers
    ask of a leaf - SAN, serverAuth+clientAuth EKU, digitalSignature key
    usage, subject and authority key identifiers - so OpenSSL, Python's
    ``ssl`` and ``cryptography`` all accept it as its own trust anchor.
    """
    if isinstance(hostnames, str):
        hostnames = [hostnames]
    hostnames = list(hostnames)
    if not hostnames:
        raise ValueError("generate_self_signed needs at least one host name")
    if days < 1:
        raise ValueError(f"days must be at least 1, not {days}")
    key = generate_private_key(key_type)
    now = now or datetime.datetime.now(datetime.UTC)
    common_name = hostnames[0][:64]
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    public = key.public_key()
    key_usage = x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=isinstance(key, rsa.RSAPrivateKey),
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(key_usage, critical=True)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(
            x509.SubjectAlternativeName(_general_names(hostnames)), critical=False
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(public), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(public), critical=False
        )
    )
    cert = builder.sign(key, _signing_hash(key))
    return cert, key


# ---------------------------------------------------------------------------
# Verification
# ---------------------------------------------------------------------------


#: RFC 1035 §2.3.4 / RFC 1123 §2.1: a name is at most 253 characters in
#: text form, a label 1 to 63 letters, digits and hyphens, not starting or
#: ending with a hyphen (LDH).
_MAX_DNS_NAME = 253
_LDH_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")


def _shown(name: str) -> str:
    # A name from the wire may be 64 KiB long; an error quotes only its start.
    return repr(name) if len(name) <= 80 else repr(name[:80]) + "..."


def _dns_name(text: str, name: str) -> str:
    """``text`` (no trailing dot) as lower-case A-labels, or ValueError.

    A non-ASCII name is mapped with IDNA 2008 under UTS #46 (non-transitional
    processing, what the ``idna`` package and so Twisted and browsers do):
    case folded, width and dots normalised, ``ß`` kept (``faß.de`` is
    ``xn--fa-hia.de``, not ``fass.de`` as IDNA 2003 had it).  Then every
    label must be LDH, and one spelled ``xn--`` a valid A-label: hostname
    verification and SNI compare A-labels, so a malformed one could only
    ever fail later, less clearly.  Underscores are not host-name
    characters, and ``cryptography``'s verifier refuses them too.
    """
    if len(text) > 4 * _MAX_DNS_NAME:  # bound the IDNA work on absurd input
        raise ValueError(
            f"server name {_shown(name)} is longer than {_MAX_DNS_NAME} characters"
        )
    if not text.isascii():
        try:
            text = idna.encode(text, uts46=True).decode("ascii")
        except idna.IDNAError as e:
            raise ValueError(
                f"server name {_shown(name)} is not a valid internationalised "
                f"domain name (IDNA 2008 / UTS #46): {e}"
            ) from None
    text = text.lower()
    if len(text) > _MAX_DNS_NAME:
        raise ValueError(
            f"server name {_shown(name)} is longer than {_MAX_DNS_NAME} characters"
        )
    for label in text.split("."):
        if not label:
            raise ValueError(f"server name {_shown(name)} has an empty label")
        if _LDH_LABEL.fullmatch(label) is None:
            raise ValueError(
                f"server name {_shown(name)}: label {_shown(label)} is not a host "
                f"name label (1 to 63 letters, digits or inner hyphens)"
            )
        if label.startswith("xn--"):
            try:
                valid = idna.alabel(idna.ulabel(label)) == label.encode("ascii")
            except (idna.IDNAError, UnicodeError):
                valid = False
            if not valid:
                raise ValueError(
                    f"server name {_shown(name)}: {label!r} is not a valid IDNA A-label"
                )
    return text


# A pure function called several times per handshake (SNI, credential choice,
# verification); for a DNS name ipaddress raises on every call, which costs
# more than the rest of it. The cache is bounded, so a peer sending many
# names can only evict entries.
@functools.lru_cache(maxsize=1024)
def normalize_server_name(
    name: str,
) -> tuple[str, str | ipaddress.IPv4Address | ipaddress.IPv6Address]:
    """Classify a host name: ``("ip", address)`` or ``("dns", a-label name)``.

    ``[::1]`` brackets and one trailing dot are dropped; a DNS name is
    returned in lower-case A-label form (see :func:`_dns_name`: IDNA 2008
    with UTS #46 mapping, LDH labels) because certificates and SNI only
    carry those (RFC 5280 §7.2, RFC 6066 §3).  Raises ValueError, naming
    the name, for one that cannot be a host name.
    """
    if not isinstance(name, str):
        raise ValueError(f"server name must be a str, not {name!r}")
    text = name.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    try:
        return "ip", ipaddress.ip_address(text)
    except ValueError:
        pass
    if text.endswith("."):
        text = text[:-1]
    if not text:
        raise ValueError(f"empty server name {name!r}")
    return "dns", _dns_name(text, name)


def canonical_server_name(name: str) -> str:
    """The form of ``name`` a client sends as SNI and verifies against.

    Lower-case A-labels without a trailing dot for a DNS name
    (``Bücher.Example.`` becomes ``xn--bcher-kva.example``), the standard
    text form for an IP address (``[::1]`` becomes ``::1``; an address is
    never sent as SNI).  Clients call it when they are configured, so an
    invalid name is a ValueError naming it then, not a failed handshake.
    """
    _kind, value = normalize_server_name(name)
    return str(value)


def _dns_pattern_matches(pattern: str, name: str) -> bool:
    """RFC 6125 §6.4.3 matching, wildcard only as a whole leftmost label.

    ``*.example.com`` matches ``a.example.com`` but neither ``example.com``
    nor ``a.b.example.com``; a wildcard directly above a single label
    (``*.com``) matches nothing.
    """
    pattern = pattern.lower().rstrip(".")
    if pattern == name:
        return True
    if not pattern.startswith("*."):
        return False
    rest = pattern[2:]
    if "*" in rest or rest.count(".") < 1:
        return False
    head, _, tail = name.partition(".")
    return bool(head) and tail == rest


def match_server_name(cert: x509.Certificate, server_name: str) -> bool:
    """Whether the certificate's SAN covers ``server_name`` (DNS name or IP)."""
    kind, value = normalize_server_name(server_name)
    if kind == "ip":
        return value in certificate_ip_addresses(cert)
    return any(
        _dns_pattern_matches(pattern, value)  # type: ignore[arg-type]
        for pattern in certificate_dns_names(cert)
    )


def _to_datetime(when: float | datetime.datetime) -> datetime.datetime:
    if isinstance(when, datetime.datetime):
        if when.tzinfo is None:
            return when.replace(tzinfo=datetime.UTC)
        return when.astimezone(datetime.UTC)
    return datetime.datetime.fromtimestamp(float(when), tz=datetime.UTC)


def parse_chain(
    chain: Sequence[bytes | x509.Certificate],
    *,
    max_length: int = 10,
    is_server_cert: bool = True,
) -> list[x509.Certificate]:
    """Parse the DER certificates a peer sent, leaf first.

    Counts before parsing, so a peer cannot make us parse more than
    ``max_length`` certificates.
    """
    if len(chain) == 0:
        if is_server_cert:
            raise EmptyCertificateChainError(
                "the server sent an empty certificate chain",
                AlertDescription.decode_error,
            )
        raise EmptyCertificateChainError(
            "the client sent no certificate", AlertDescription.certificate_required
        )
    if len(chain) > max_length:
        raise CertificateError(
            f"the peer sent {len(chain)} certificates; at most {max_length} are "
            f"allowed (max_certificate_chain_length)",
            AlertDescription.bad_certificate,
        )
    certs: list[x509.Certificate] = []
    for index, item in enumerate(chain):
        if isinstance(item, x509.Certificate):
            certs.append(item)
            continue
        try:
            certs.append(x509.load_der_x509_certificate(bytes(item)))
        except (ValueError, x509.InvalidVersion) as e:
            # bad_certificate rather than decode_error: the TLS framing was
            # fine, the certificate inside it is corrupt - RFC 8446 §6.2
            # "bad_certificate: A certificate was corrupt".
            position = "leaf certificate" if index == 0 else f"certificate #{index}"
            raise CertificateError(
                f"the peer's {position} is not valid DER: {e}",
                AlertDescription.bad_certificate,
            ) from e
    return certs


def _check_validity(cert: x509.Certificate, now: datetime.datetime, role: str) -> None:
    not_before = cert.not_valid_before_utc
    not_after = cert.not_valid_after_utc
    # RFC 5280 §4.1.2.5: both ends of the window are inclusive.  No alert
    # exists for "not yet valid"; certificate_expired is the nearest (as
    # OpenSSL does).
    if now < not_before:
        raise CertificateError(
            f"{role} {describe_certificate(cert)} is not yet valid: valid from "
            f"{_format_time(not_before)}, now is {_format_time(now)}",
            AlertDescription.certificate_expired,
            certificate=cert,
        )
    if now > not_after:
        raise CertificateError(
            f"{role} {describe_certificate(cert)} has expired: valid until "
            f"{_format_time(not_after)}, now is {_format_time(now)}",
            AlertDescription.certificate_expired,
            certificate=cert,
        )


def _check_name(cert: x509.Certificate, server_name: str) -> None:
    if _san(cert) is None:
        raise CertificateError(
            f"certificate {describe_certificate(cert)} has no subjectAltName, so "
            f"it names no host; expected {server_name!r} (the subject CN is not "
            f"consulted, RFC 6125 §6.4.4)",
            AlertDescription.bad_certificate,
            certificate=cert,
        )
    if not match_server_name(cert, server_name):
        names = _format_names(cert) or "no DNS names or IP addresses"
        raise CertificateError(
            f"certificate {describe_certificate(cert)} does not match host name "
            f"{server_name!r}: it is for {names}",
            AlertDescription.bad_certificate,
            certificate=cert,
        )


def _check_leaf_key_usage(cert: x509.Certificate, role: str) -> None:
    try:
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return
    # RFC 8446 §4.4.2.2: "the digitalSignature bit MUST be set if the Key
    # Usage extension is present".  unsupported_certificate: the certificate
    # is intact and trusted, only not made for this use.
    if not usage.digital_signature:
        raise CertificateError(
            f"{role} {describe_certificate(cert)} may not be used for TLS: its "
            f"key usage does not include digitalSignature (RFC 8446 §4.4.2.2)",
            AlertDescription.unsupported_certificate,
            certificate=cert,
        )


def _eku_names(cert: x509.Certificate) -> str:
    try:
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return "none"
    return ", ".join(_EKU_NAMES.get(oid, oid.dotted_string) for oid in eku) or "none"


def _issuer_of(
    cert: x509.Certificate, candidates: Sequence[x509.Certificate]
) -> x509.Certificate | None:
    for candidate in candidates:
        if candidate is not cert and candidate.subject == cert.issuer:
            return candidate
    return None


def _is_self_issued(cert: x509.Certificate) -> bool:
    return cert.issuer == cert.subject


def _diagnose(
    error: VerificationError,
    certs: list[x509.Certificate],
    roots: TrustRoots,
    now: datetime.datetime,
    *,
    purpose: str,
    max_length: int,
) -> CertificateError:
    """Turn the verifier's string into an alert and an exact message."""
    text = str(error)
    leaf = certs[0]

    if "not valid at validation time" in text:
        # An intermediate or a root (the leaf was checked beforehand).  Name
        # the first one we can find that is out of its window.
        for index, cert in enumerate(certs[1:], 1):
            try:
                _check_validity(cert, now, f"intermediate certificate #{index}")
            except CertificateError as e:
                return e
        for root in roots.certificates:
            if any(c.issuer == root.subject for c in certs):
                try:
                    _check_validity(root, now, "trust root")
                except CertificateError as e:
                    return e
        return CertificateError(
            f"a certificate in the chain of {describe_certificate(leaf)} is not "
            f"valid now ({text})",
            AlertDescription.certificate_expired,
            certificate=leaf,
        )

    if "required EKU not found" in text:
        # unsupported_certificate rather than bad_certificate: the certificate
        # is well formed and may be trusted, it was issued for another use
        # (RFC 5280 §4.2.1.12).  OpenSSL sends the same for a wrong purpose.
        return CertificateError(
            f"certificate {describe_certificate(leaf)} is not valid for "
            f"{purpose}: its extended key usage allows {_eku_names(leaf)}",
            AlertDescription.unsupported_certificate,
            certificate=leaf,
        )

    if "no matching subjectAltName" in text:  # our own check runs first
        return CertificateError(
            f"certificate {describe_certificate(leaf)} does not match the "
            f"expected name: it is for {_format_names(leaf) or 'no names'}",
            AlertDescription.bad_certificate,
            certificate=leaf,
        )

    if "exceeds max depth" in text:
        return CertificateError(
            f"no path from {describe_certificate(leaf)} to a trust root within "
            f"{max_length} certificates (max_certificate_chain_length)",
            AlertDescription.unknown_ca,
            certificate=leaf,
        )

    if "candidates exhausted" in text:
        # "candidates exhausted: REASON": REASON is why the last candidate
        # path was refused.  Only "no interior errors" means no path to a
        # trust root was found at all; anything else is a path that exists
        # but breaks a rule, and saying "untrusted root" then would send
        # the operator after the wrong problem.
        reason = text.partition("candidates exhausted:")[2].strip()
        if not reason or "no interior errors" in reason:
            return _unknown_ca(certs, roots, text)
        return _refused_path(reason, certs, roots)

    if "Forbidden public key algorithm" in text:
        return CertificateError(
            f"certificate {describe_certificate(leaf)} has a key type the "
            f"verifier does not accept ({describe_key(leaf.public_key())})",
            AlertDescription.unsupported_certificate,
            certificate=leaf,
        )

    return CertificateError(
        f"certificate {describe_certificate(leaf)} was rejected: {text}",
        AlertDescription.bad_certificate,
        certificate=leaf,
    )


def _unknown_ca(
    certs: list[x509.Certificate], roots: TrustRoots, text: str
) -> CertificateError:
    """Walk up the chain as sent and say where it stops being trusted."""
    current = certs[0]
    seen = {id(current)}
    while True:
        issuer = _issuer_of(current, certs)
        if issuer is None or id(issuer) in seen:
            break
        seen.add(id(issuer))
        current = issuer
    what = describe_certificate(current)
    issuer_name = current.issuer.rfc4514_string() or "<empty>"
    same_name_roots = [r for r in roots.certificates if r.subject == current.issuer]
    if same_name_roots:
        # A root with the right name exists but did not verify the
        # signature: a different CA that happens to share the name.
        message = (
            f"certificate {what} claims to be issued by {issuer_name}, but the "
            f"trust root of that name did not sign it (untrusted root)"
        )
    elif _is_self_issued(current) and roots.certificates:
        message = f"the chain ends at self-signed {what}, which is not a trust root"
    elif roots.certificates:
        message = (
            f"issuer {issuer_name} of certificate {what} is neither a trust "
            f"root nor among the certificates sent (missing intermediate or "
            f"untrusted root)"
        )
    else:
        message = f"no path from {what} to a trust root ({text})"
    return CertificateError(message, AlertDescription.unknown_ca, certificate=current)


def _path_as_sent(
    certs: list[x509.Certificate], roots: TrustRoots
) -> list[x509.Certificate]:
    """Leaf, then its issuers among the certificates sent, then the trust
    root that issued the last of them (when there is one): the path the
    verifier most likely tried, for naming the certificate at fault."""
    path = [certs[0]]
    seen = {id(certs[0])}
    while True:
        issuer = _issuer_of(path[-1], certs)
        if issuer is None or id(issuer) in seen:
            break
        seen.add(id(issuer))
        path.append(issuer)
    if not _is_self_issued(path[-1]):
        top = path[-1]
        root = next((r for r in roots.certificates if r.subject == top.issuer), None)
        if root is not None:
            path.append(root)
    return path


def _basic_constraints(cert: x509.Certificate) -> x509.BasicConstraints | None:
    try:
        return cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        return None


_Culprit: TypeAlias = tuple[str, x509.Certificate]


def _find_non_ca(path: list[x509.Certificate]) -> _Culprit | None:
    # RFC 5280 §4.2.1.9: only a certificate asserting cA=TRUE in its basic
    # constraints may issue certificates; without the extension it is not
    # a CA either.
    for child, cert in itertools.pairwise(path):
        constraints = _basic_constraints(cert)
        if constraints is None:
            why = "has no basicConstraints extension, so it is not a CA"
        elif not constraints.ca:
            why = "is not a CA (its basicConstraints say cA=FALSE)"
        else:
            continue
        return (
            f"certificate {describe_certificate(cert)} {why}, yet it is the "
            f"issuer of {describe_certificate(child)}: only a CA certificate "
            f"may issue others (RFC 5280 §4.2.1.9)",
            cert,
        )
    return None


def _find_path_length(path: list[x509.Certificate]) -> _Culprit | None:
    # RFC 5280 §4.2.1.9: pathLenConstraint counts the non-self-issued
    # intermediate CA certificates that may follow in the path.
    for index, cert in enumerate(path[1:], 1):
        constraints = _basic_constraints(cert)
        if constraints is None or constraints.path_length is None:
            continue
        below = sum(1 for c in path[1:index] if not _is_self_issued(c))
        if below > constraints.path_length:
            return (
                f"CA certificate {describe_certificate(cert)} allows at most "
                f"{constraints.path_length} intermediate CA certificate(s) below "
                f"it (pathLenConstraint), but the chain has {below} "
                f"(RFC 5280 §4.2.1.9)",
                cert,
            )
    return None


def _describe_subtrees(subtrees: Sequence[x509.GeneralName] | None) -> str:
    if not subtrees:
        return "none"
    return ", ".join(
        f"{type(name).__name__.removesuffix('Name')}:{name.value}" for name in subtrees
    )


def _find_name_constraints(path: list[x509.Certificate]) -> _Culprit | None:
    # RFC 5280 §4.2.1.10: a CA's name constraints bind every certificate
    # below it; the certificate at fault is the leaf whose names fall outside.
    leaf = path[0]
    for cert in path[1:]:
        try:
            constraints = cert.extensions.get_extension_for_class(
                x509.NameConstraints
            ).value
        except x509.ExtensionNotFound:
            continue
        return (
            f"certificate {describe_certificate(leaf)} (for "
            f"{_format_names(leaf) or 'no names'}) is outside the name "
            f"constraints of CA {describe_certificate(cert)} (permitted: "
            f"{_describe_subtrees(constraints.permitted_subtrees)}; excluded: "
            f"{_describe_subtrees(constraints.excluded_subtrees)}; "
            f"RFC 5280 §4.2.1.10)",
            leaf,
        )
    return None


def _find_weak_key(path: list[x509.Certificate]) -> _Culprit | None:
    for cert in path[1:]:
        key = cert.public_key()
        if isinstance(key, rsa.RSAPublicKey) and key.key_size < MIN_RSA_KEY_BITS:
            return (
                f"CA certificate {describe_certificate(cert)} has a "
                f"{key.key_size}-bit RSA key; at least {MIN_RSA_KEY_BITS} bits "
                f"are required",
                cert,
            )
    return None


#: Certificate signature hashes refused by the verifier and named by RFC
#: 8446 §4.4.2.4 (MD5: MUST refuse; SHA-1: RECOMMENDED to refuse).
_WEAK_SIGNATURE_HASHES = {"sha1": "SHA-1", "md5": "MD5"}


def _find_weak_signature(
    path: list[x509.Certificate], roots: TrustRoots
) -> _Culprit | None:
    for cert in path:
        if cert in roots.certificates:
            continue  # a trust anchor's own signature is never checked
        try:
            algorithm = cert.signature_hash_algorithm
        except UnsupportedAlgorithm:
            continue
        weak = _WEAK_SIGNATURE_HASHES.get(algorithm.name if algorithm else "")
        if weak is not None:
            oid = cert.signature_algorithm_oid
            name = getattr(oid, "_name", None) or oid.dotted_string
            return (
                f"certificate {describe_certificate(cert)} is signed with {weak} "
                f"({name}), which is not accepted (RFC 8446 §4.4.2.4)",
                cert,
            )
    return None


def _refused_path(
    reason: str, certs: list[x509.Certificate], roots: TrustRoots
) -> CertificateError:
    """A path to a trust root exists but breaks a rule: say which, and where.

    The verifier's message names the rule but not the certificate; our own
    checks on the path as sent find the certificate.  The verifier's text
    is kept at the end of the message either way.  Alerts: a certificate
    that may not act as a CA (not a CA, path too long) is unknown_ca, as
    OpenSSL sends for the same errors; a leaf outside its CA's name
    constraints and a SHA-1 or MD5 signature (RFC 8446 §4.4.2.4) are
    bad_certificate; a weak RSA key is insufficient_security, like our own
    key-size check (:func:`_check_key_strength`).
    """
    leaf = certs[0]
    path = _path_as_sent(certs, roots)
    lowered = reason.lower()
    culprit: _Culprit | None = None
    alert = AlertDescription.unknown_ca
    if "basicconstraints" in lowered or "2.5.29.19" in lowered:
        culprit = _find_non_ca(path)
    elif "path length" in lowered:
        culprit = _find_path_length(path)
    elif "name constraint" in lowered:
        alert = AlertDescription.bad_certificate
        culprit = _find_name_constraints(path)
    elif "too weak" in lowered:
        alert = AlertDescription.insufficient_security
        culprit = _find_weak_key(path)
    elif "signature algorithm" in lowered:
        alert = AlertDescription.bad_certificate
        culprit = _find_weak_signature(path, roots)
    elif "signature does not match" in lowered:
        # An issuer of the right name whose key did not make the signature:
        # most often a different CA that shares a trusted root's name.
        error = _unknown_ca(certs, roots, reason)
        return CertificateError(
            f"{error.message} (verifier: {reason})",
            error.alert,
            certificate=error.certificate,
        )
    if culprit is None:
        message, cert = (
            f"no acceptable path from {describe_certificate(leaf)} to a trust root",
            leaf,
        )
    else:
        message, cert = culprit
    return CertificateError(f"{message} (verifier: {reason})", alert, certificate=cert)


def _verification_time(time: float | datetime.datetime) -> datetime.datetime:
    return _to_datetime(time)


def _policy(
    roots: TrustRoots, now: datetime.datetime, max_length: int
) -> PolicyBuilder:
    # max_chain_depth counts the intermediates between leaf and trust anchor
    # (cryptography's definition); the leaf takes one of our max_length.
    return (
        PolicyBuilder()
        .store(roots.store)
        .time(now)
        .max_chain_depth(max(0, max_length - 1))
    )


def _as_roots(trust_roots: TrustRootsSource) -> TrustRoots:
    if isinstance(trust_roots, TrustRoots):
        return trust_roots
    if trust_roots is None:
        # verify_*_certificates are explicit about roots; the system bundle
        # is the Context's default, not theirs.
        raise TypeError("trust_roots is required")
    return load_trust_roots(trust_roots)


def _malformed(certs: list[x509.Certificate], error: Exception) -> CertificateError:
    # cryptography parses extensions, names and keys lazily, so a corrupt
    # extension in a certificate that loaded fine surfaces only when it is
    # read.  It is the peer's certificate that is corrupt: bad_certificate.
    return CertificateError(
        f"the peer's certificate chain is malformed: {error}",
        AlertDescription.bad_certificate,
        certificate=certs[0],
    )


#: What cryptography raises for a certificate it loaded but cannot use
#: (several of these are plain Exception subclasses, not ValueError).
_MALFORMED = (
    ValueError,
    UnsupportedAlgorithm,
    x509.DuplicateExtension,
    x509.UnsupportedGeneralNameType,
    x509.InvalidVersion,
    x509.AttributeNotFound,
    # A name attribute whose ASN.1 string type does not fit its OID (say a
    # BIT STRING commonName) fails when the Name is built, with TypeError.
    TypeError,
)


def verify_server_certificates(
    chain: Sequence[bytes | x509.Certificate],
    *,
    trust_roots: TrustRootsSource,
    server_name: str | None,
    time: float | datetime.datetime,
    max_length: int = 10,
) -> list[x509.Certificate]:
    """Verify a server's chain for ``server_name``; returns leaf .. root.

    ``time`` is the Context clock's reading (seconds since the epoch) or a
    datetime.  Checks run in this order, so the first message is the most
    exact one: chain shape, the leaf's validity window, the host name, then
    path building to a trust root, then the leaf's key usage.

    The leaf's window is checked before path building because the leaf is
    in every path; the other certificates' windows are only looked at once
    the verifier has failed - a server may send a spare expired cross-sign
    that the path does not need (the AddTrust expiry of 2020), and that must
    not fail an otherwise good chain.
    """
    if server_name is None:
        # A local mistake (the client did not say whom it expects), not the
        # peer's: refuse rather than accept any certificate of any CA.
        raise InternalError(
            "cannot verify the server certificate: no server name was given "
            "(pass server_name=, or insecure_skip_verify=True)"
        )
    try:
        kind, value = normalize_server_name(server_name)
    except ValueError as e:
        raise InternalError(f"cannot verify the server certificate: {e}") from e
    roots = _as_roots(trust_roots)
    now = _verification_time(time)
    certs = parse_chain(chain, max_length=max_length, is_server_cert=True)
    subject: x509.DNSName | x509.IPAddress = (
        x509.IPAddress(value)  # type: ignore[arg-type]
        if kind == "ip"
        else x509.DNSName(value)  # type: ignore[arg-type]
    )
    verifier = _policy(roots, now, max_length).build_server_verifier(subject)
    return _run_verifier(
        lambda leaf, rest: verifier.verify(leaf, rest),
        certs,
        roots,
        now,
        max_length,
        role="server certificate",
        purpose="TLS server authentication (serverAuth)",
        check_name=lambda leaf: _check_name(leaf, server_name),
    )


def _run_verifier(
    verify: Callable[
        [x509.Certificate, list[x509.Certificate]], Sequence[x509.Certificate]
    ],
    certs: list[x509.Certificate],
    roots: TrustRoots,
    now: datetime.datetime,
    max_length: int,
    *,
    role: str,
    purpose: str,
    check_name: Callable[[x509.Certificate], None] | None = None,
) -> list[x509.Certificate]:
    """The checks both roles share, in the order that gives the most exact
    message: the leaf's validity, its name (servers), path building, the
    leaf's key usage. Returns the path, leaf .. root."""
    try:
        leaf = certs[0]
        _check_validity(leaf, now, role)
        if check_name is not None:
            check_name(leaf)
        try:
            path = verify(leaf, certs[1:])
        except VerificationError as e:
            raise _diagnose(
                e, certs, roots, now, purpose=purpose, max_length=max_length
            ) from e
        _check_leaf_key_usage(leaf, role)
    except _MALFORMED as e:
        raise _malformed(certs, e) from e
    return list(path)


# Client certificates often identify a person or device by subject alone,
# with no subjectAltName; the WebPKI end-entity profile would require one.
# Everything else of the profile (AKI, EKU clientAuth, key usage) still holds.
def _client_ee_policy() -> ExtensionPolicy:
    return ExtensionPolicy.webpki_defaults_ee().may_be_present(
        x509.SubjectAlternativeName, Criticality.AGNOSTIC, None
    )


def verify_client_certificates(
    chain: Sequence[bytes | x509.Certificate],
    *,
    trust_roots: TrustRootsSource,
    time: float | datetime.datetime,
    max_length: int = 10,
) -> list[x509.Certificate]:
    """Verify a client's chain for clientAuth; returns leaf .. root.

    Same order of checks as :func:`verify_server_certificates`, without the
    name.
    """
    roots = _as_roots(trust_roots)
    now = _verification_time(time)
    certs = parse_chain(chain, max_length=max_length, is_server_cert=False)
    verifier = (
        _policy(roots, now, max_length)
        .extension_policies(
            ca_policy=ExtensionPolicy.webpki_defaults_ca(),
            ee_policy=_client_ee_policy(),
        )
        .build_client_verifier()
    )
    return _run_verifier(
        lambda leaf, rest: verifier.verify(leaf, rest).chain,
        certs,
        roots,
        now,
        max_length,
        role="client certificate",
        purpose="TLS client authentication (clientAuth)",
    )


def verify_chain(
    context: Context,
    chain_der: Sequence[bytes],
    *,
    server_name: str | None,
    is_server_cert: bool,
) -> list[x509.Certificate]:
    """Check a peer's chain under a Context's policy; returns leaf first.

    With ``context.verify`` false (``insecure_skip_verify=True``) the chain
    is only counted and parsed - the engine still needs the leaf's public
    key for CertificateVerify - and returned as sent.  Otherwise it is
    verified against ``context.trust_store`` at ``context.clock()`` and the
    verified path (leaf .. trust root) is returned.
    """
    max_length = context.max_certificate_chain_length
    # Parse first: an empty or malformed chain is the peer's fault and must
    # not be hidden behind a local "no CA bundle" error.
    certs = parse_chain(chain_der, max_length=max_length, is_server_cert=is_server_cert)
    if not context.verify:
        # The engine needs the leaf's key for CertificateVerify even when
        # nobody vouches for it; make sure it is one we can use.
        try:
            key = certs[0].public_key()
        except _MALFORMED as e:
            raise _malformed(certs, e) from e
        if not isinstance(
            key,
            (
                rsa.RSAPublicKey,
                ec.EllipticCurvePublicKey,
                ed25519.Ed25519PublicKey,
                ed448.Ed448PublicKey,
            ),
        ):
            raise CertificateError(
                f"certificate {describe_certificate(certs[0])} has a "
                f"{describe_key(key)} key, which TLS cannot use",
                AlertDescription.unsupported_certificate,
                certificate=certs[0],
            )
        return certs
    try:
        roots = context.trust_anchors
    except ConfigurationError as e:
        raise InternalError(f"cannot verify the peer's certificate: {e}") from e
    if is_server_cert:
        path = verify_server_certificates(
            certs,
            trust_roots=roots,
            server_name=server_name,
            time=context.clock(),
            max_length=max_length,
        )
    else:
        path = verify_client_certificates(
            certs, trust_roots=roots, time=context.clock(), max_length=max_length
        )
    # The trust anchor is the operator's choice; what the peer brought is not.
    _check_key_strength(path[:-1] or path)
    return path


#: RSA keys below this many bits are refused in a verified chain: NIST
#: SP 800-131A and the CA/Browser Forum baseline requirements retired them,
#: and cryptography's verifier does not check key sizes itself.
MIN_RSA_KEY_BITS = 2048


def _check_key_strength(certs: Sequence[x509.Certificate]) -> None:
    for cert in certs:
        key = cert.public_key()
        if isinstance(key, rsa.RSAPublicKey) and key.key_size < MIN_RSA_KEY_BITS:
            raise CertificateError(
                f"certificate {describe_certificate(cert)} has a {key.key_size}-bit "
                f"RSA key; at least {MIN_RSA_KEY_BITS} bits are required",
                AlertDescription.insufficient_security,
                certificate=cert,
            )


def verify_server_chain(
    context: Context, chain_der: Sequence[bytes], server_name: str | None
) -> list[x509.Certificate]:
    """A client's check of the server's chain: :func:`verify_chain` for it."""
    return verify_chain(
        context, chain_der, server_name=server_name, is_server_cert=True
    )


def verify_client_chain(
    context: Context, chain_der: Sequence[bytes]
) -> list[x509.Certificate]:
    """A server's check of the client's chain: :func:`verify_chain` for it."""
    return verify_chain(context, chain_der, server_name=None, is_server_cert=False)


#: Bumped whenever a change to :func:`verify_chain` could accept a chain
#: that an earlier release refused: sessions verified under the old rules
#: then stop being offered by clients (see :func:`verification_policy`) and
#: resumed by servers (see :func:`client_verification_policy`).
VERIFICATION_RULES_VERSION = 1


def verification_policy(context: Context, server_name: str | None) -> bytes:
    """32 bytes naming what a verified server chain was checked against.

    A client remembers this in each session it verified
    (:attr:`~twisted_sslfile.engine.sessions.Session.verification_policy`)
    and offers a session only when the connection's own value is equal: a
    resumed handshake skips the certificate check, so it must stand for a
    check this client would have made itself.  What goes in is everything
    that decides :func:`verify_server_chain`'s verdict apart from the chain
    and the clock:

    * the trust roots, by content (:attr:`TrustRoots.digest`);
    * ``context.max_certificate_chain_length``;
    * the rules of this library (:data:`VERIFICATION_RULES_VERSION` and
      :data:`MIN_RSA_KEY_BITS`);
    * the server name, normalized as verification sees it (case, one
      trailing dot and IDNA aside, names are compared exactly).

    The time of the check is not part of it: a session is bounded by its
    lifetime (seven days at most), as in every TLS stack.  Returns ``b""``
    when the context does not verify (``insecure_skip_verify=True``) or
    could not (no server name, an invalid one, no trust roots to load).
    """
    if not context.verify or server_name is None:
        return b""
    try:
        kind, value = normalize_server_name(server_name)
        roots = context.trust_anchors
    except (ValueError, ConfigurationError):
        return b""
    policy = _policy_hash(b"twisted_sslfile server chain verification\0", context)
    policy.update(roots.digest)
    policy.update(f"{kind}:{value}".encode("ascii"))
    return policy.digest()


def client_verification_policy(context: Context) -> bytes:
    """32 bytes naming what a verified *client* chain was checked against.

    The server's counterpart of :func:`verification_policy`.  A server
    seals it with each session whose client chain it verified
    (:attr:`~twisted_sslfile.engine.sessions.ServerSessionState.
    verification_policy`) and resumes such a session as verified only when
    its own value is equal: servers that share a ticket key file may trust
    different client CAs, and a server's CAs may change while its tickets
    live.  What goes in is everything that decides
    :func:`verify_client_chain`'s verdict apart from the chain and the
    clock: the trust roots by content (:attr:`TrustRoots.digest`),
    ``context.max_certificate_chain_length`` and the library's rules.  There
    is no server name: a client chain is not checked against one.  Whether
    a certificate is required is not part of it either; the server checks
    that itself on every resumption.

    Returns ``b""`` when the context verifies no client chain: it does not
    ask for one (``client_certificate="none"``), does not verify
    (``insecure_skip_verify=True``) or cannot (no trust roots to load).
    """
    if not context.verify or context.client_certificate is ClientCertificatePolicy.NONE:
        return b""
    try:
        roots = context.trust_anchors
    except ConfigurationError:
        return b""
    policy = _policy_hash(b"twisted_sslfile client chain verification\0", context)
    policy.update(roots.digest)
    return policy.digest()


def _policy_hash(label: bytes, context: Context) -> hashlib._Hash:
    """SHA-256 over ``label`` and the library's rules under ``context``."""
    policy = hashlib.sha256(label)
    policy.update(
        struct.pack(
            ">III",
            VERIFICATION_RULES_VERSION,
            MIN_RSA_KEY_BITS,
            context.max_certificate_chain_length,
        )
    )
    return policy
