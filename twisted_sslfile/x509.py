"""Certificates and keys on the configuration side: loading, trust roots, generation.

Everything here runs when a :class:`~twisted_sslfile.context.Context` is
built or reloaded, long before any peer is involved: reading PEM and DER
files, decrypting keys, gathering trust roots from a file, a directory or
the system bundle, generating self-signed certificates and writing PEM.
Its failures raise :class:`~twisted_sslfile.errors.ConfigurationError`, a
:class:`ValueError` whose message names the file.

What happens during a handshake - checking a peer's chain, its host name,
the policy digests that sessions carry - is the engine's, in
:mod:`twisted_sslfile.engine.certificates` (with
:mod:`~twisted_sslfile.engine.certnames` and
:mod:`~twisted_sslfile.engine.chaindiagnosis`); those failures concern what
a peer sent and raise :class:`~twisted_sslfile.errors.CertificateError`
with the alert to send.  Their public names are importable from here too.
"""

from __future__ import annotations

import datetime
import os
import re
import ssl
import warnings
from collections.abc import Callable, Iterable, Sequence
from typing import TypeAlias

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.utils import CryptographyDeprecationWarning
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from cryptography.x509.verification import Store

from twisted_sslfile._files import write_private_file
from twisted_sslfile.engine.certificates import (
    MAX_CLIENT_CA_NAMES,
    MAX_CLIENT_CA_NAMES_BYTES,
    MIN_RSA_KEY_BITS,
    VERIFICATION_RULES_VERSION,
    TrustRoots,
    client_ca_names,
    client_verification_policy,
    parse_chain,
    signature_schemes_for_certificate,
    verification_policy,
    verify_chain,
    verify_client_certificates,
    verify_client_chain,
    verify_server_certificates,
    verify_server_chain,
)
from twisted_sslfile.engine.certnames import (
    canonical_server_name,
    certificate_common_names,
    certificate_dns_names,
    certificate_ip_addresses,
    describe_certificate,
    describe_key,
    match_server_name,
    normalize_server_name,
)
from twisted_sslfile.errors import ConfigurationError, EmptyCertificateChainError

__all__ = [
    "KEY_TYPES",
    "MAX_CLIENT_CA_NAMES",
    "MAX_CLIENT_CA_NAMES_BYTES",
    "MIN_RSA_KEY_BITS",
    "VERIFICATION_RULES_VERSION",
    "ConfigurationError",
    "EmptyCertificateChainError",
    "PrivateKey",
    "TrustRoots",
    "canonical_server_name",
    "certificate_common_names",
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
        # A Store cannot be looked into: a random digest names these roots,
        # so only sessions verified under this very object match them.
        return TrustRoots(source, (), "<Store>", digest=os.urandom(32))
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


# ---------------------------------------------------------------------------
# Describing certificates and keys
# ---------------------------------------------------------------------------


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
