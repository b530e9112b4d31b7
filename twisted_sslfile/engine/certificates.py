"""Checking a peer's certificate chain during the handshake.

The engine's side of certificates: everything here takes what it needs as
plain values - the chain as sent, the trust roots (:class:`TrustRoots`,
a ``cryptography`` ``Store`` or a list of root certificates), the time, the
limits (chain length, RSA minimum), the role and the expected name - and
does no I/O.  Loading roots and credentials from files is the configuration
side's (:mod:`twisted_sslfile.x509`); a Context hands the result over once,
as a :class:`VerificationPolicy`.

Verification failures concern what a peer sent.  They raise
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
RSA key under the minimum (2048 bits)  insufficient_security
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
import hashlib
import struct
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol, TypeAlias

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.x509.oid import PublicKeyAlgorithmOID
from cryptography.x509.verification import (
    Criticality,
    ExtensionPolicy,
    PolicyBuilder,
    Store,
    VerificationError,
)

from ..constants import AlertDescription, ClientCertificatePolicy, SignatureScheme
from ..errors import (
    CertificateError,
    ConfigurationError,
    EmptyCertificateChainError,
    InternalError,
)
from . import suites
from .certnames import (
    _format_names,
    _san,
    describe_certificate,
    describe_key,
    match_server_name,
    normalize_server_name,
)
from .chaindiagnosis import _check_validity, _diagnose

__all__ = [
    "MAX_CLIENT_CA_NAMES",
    "MAX_CLIENT_CA_NAMES_BYTES",
    "MIN_RSA_KEY_BITS",
    "VERIFICATION_RULES_VERSION",
    "ParsedCertificates",
    "PolicySource",
    "TrustAnchors",
    "TrustRoots",
    "VerificationPolicy",
    "certificate_authorities",
    "client_ca_names",
    "client_policy_digest",
    "client_verification_policy",
    "parse_chain",
    "server_policy_digest",
    "signature_schemes_for_certificate",
    "verification_policy",
    "verify_chain",
    "verify_client_certificates",
    "verify_client_chain",
    "verify_peer_chain",
    "verify_server_certificates",
    "verify_server_chain",
]


@dataclass(frozen=True, slots=True)
class TrustRoots:
    """A verification ``Store`` plus the certificates it was made from.

    The ``Store`` is opaque; keeping the certificates lets an error say
    "issued by X, which is not a trust root" rather than only "unknown CA".
    ``certificates`` is empty when the caller handed us a ready ``Store``.

    ``digest`` names the set of roots (order and duplicates aside): SHA-256
    over their sorted SHA-256 fingerprints, so the same roots give the same
    digest in any process, whether read from a file, a directory or a list.
    A ready ``Store`` cannot be looked into: whoever wraps one names it
    with a ``digest`` of their choosing (:func:`~twisted_sslfile.x509.
    load_trust_roots` draws 32 random bytes, which only that object
    carries), or leaves it None, and then no session counts as verified
    under these roots.  :func:`server_policy_digest` builds on it.
    """

    store: Store
    certificates: tuple[x509.Certificate, ...]
    source: str
    digest: bytes | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.certificates:
            fingerprints = sorted(
                {c.fingerprint(hashes.SHA256()) for c in self.certificates}
            )
            digest = hashlib.sha256(b"".join(fingerprints)).digest()
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


#: What the verification functions accept as trust roots.
TrustAnchors: TypeAlias = TrustRoots | Store | Sequence[x509.Certificate]


#: RSA keys below this many bits are refused in a verified chain: NIST
#: SP 800-131A and the CA/Browser Forum baseline requirements retired them,
#: and cryptography's verifier does not check key sizes itself.
MIN_RSA_KEY_BITS = 2048

#: Bumped whenever a change to :func:`verify_peer_chain` could accept a
#: chain that an earlier release refused: sessions verified under the old
#: rules then stop being offered by clients (see :func:`server_policy_digest`)
#: and resumed by servers (see :func:`client_policy_digest`).
VERIFICATION_RULES_VERSION = 1


class ParsedCertificates:
    """A Context's parsed peer certificates, by their exact DER bytes.

    Why: a client that talks to the same server again and again parses the
    same chain in every handshake, and the parse is only the start - the
    first ``public_key()`` and ``extensions`` of a new certificate object
    cost about 55 µs of a TLS 1.3 handshake pair's 1.6 ms CPU (issue 12).
    ``cryptography`` keeps both on the object, so handing out one object
    per DER saves them.

    What is cached is the parse alone, a pure function of the bytes: every
    handshake still runs every check (validity at its own time, the name,
    path building, key strength) on the certificates it got.  DER that
    does not parse is never stored, so it fails the same way each time.
    Bounded: at most ``max_entries`` certificates of at most ``max_der``
    bytes each; when full the cache is emptied (no order to keep, so a
    second thread using the same Context cannot break it).
    """

    __slots__ = ("_entries", "max_der", "max_entries")

    def __init__(self, max_entries: int = 64, max_der: int = 16384) -> None:
        self._entries: dict[bytes, x509.Certificate] = {}
        self.max_entries = max_entries
        self.max_der = max_der

    def __len__(self) -> int:
        return len(self._entries)

    def load(self, der: bytes) -> x509.Certificate:
        """The certificate in ``der``; raises as ``load_der_x509_certificate``."""
        cert = self._entries.get(der)
        if cert is None:
            cert = x509.load_der_x509_certificate(der)
            if len(der) <= self.max_der:
                if len(self._entries) >= self.max_entries:
                    self._entries.clear()
                self._entries[der] = cert
        return cert


@dataclass(frozen=True, slots=True)
class VerificationPolicy:
    """How a Context checks peers' chains, as the plain values the engine reads.

    A :class:`~twisted_sslfile.context.Context` builds one on first use and
    keeps it (:attr:`~twisted_sslfile.context.Context.certificate_policy`);
    the handshake reads nothing else of the Context's certificate settings.

    * ``verify``: False under ``insecure_skip_verify=True`` (chains are
      then only parsed).
    * ``trust_roots``: the roots the operator configured, already loaded,
      or None for the default roots (the system bundle), which are loaded
      on first need by ``load_default_roots`` - a callable the Context
      provides, like its clock, so that a server that never checks a client
      chain never reads the bundle and the engine never reads a file.
    * ``client_certificate``: whether a server asks for client chains at
      all (no client chain is verified under ``NONE``).
    * ``max_chain_length``: certificates a peer may send, and the longest
      path to a trust root (``max_certificate_chain_length``).
    * ``min_rsa_bits``: RSA keys below this in a verified chain (trust
      anchors aside) are refused with insufficient_security.
    * ``parsed``: the peer certificates this policy has parsed, kept for
      the next handshake (:class:`ParsedCertificates`; not a verdict).
    """

    verify: bool = True
    trust_roots: TrustRoots | None = None
    load_default_roots: Callable[[], TrustRoots] | None = field(
        default=None, repr=False, compare=False
    )
    client_certificate: ClientCertificatePolicy = ClientCertificatePolicy.NONE
    max_chain_length: int = 10
    min_rsa_bits: int = MIN_RSA_KEY_BITS
    parsed: ParsedCertificates = field(
        default_factory=ParsedCertificates, repr=False, compare=False
    )
    #: :func:`server_policy_digest` by (server name, roots digest): a pure
    #: function of them and of this policy, asked on every handshake.
    server_digests: dict[tuple[str, bytes], bytes] = field(
        default_factory=dict, repr=False, compare=False
    )

    def anchors(self) -> TrustRoots:
        """The roots to verify against.

        Raises :class:`~twisted_sslfile.errors.ConfigurationError` when
        there are none to be had (no roots configured and no system bundle).
        """
        if self.trust_roots is not None:
            return self.trust_roots
        if self.load_default_roots is None:
            raise ConfigurationError("no trust roots are configured")
        return self.load_default_roots()


#: At most this many CA names in a CertificateRequest (see
#: :func:`certificate_authorities`; docs/security.rst).
MAX_CLIENT_CA_NAMES = 100


#: At most this many bytes of encoded names, so that the CertificateRequest
#: stays within one 16 KiB record and far below peers' message limits.
MAX_CLIENT_CA_NAMES_BYTES = 16384


def certificate_authorities(policy: VerificationPolicy) -> list[bytes]:
    """The DER subject names a server lists in its CertificateRequest.

    RFC 5246 §7.4.4 (TLS 1.2 certificate_authorities) and RFC 8446 §4.2.4
    (the TLS 1.3 extension): the CAs whose certificates the server accepts.
    Some clients (Pike 8.0's among them) only send a certificate issued
    under a listed name, so a server verifying clients against its own
    roots must list them.  They are the subjects of the policy's configured
    ``trust_roots``, in order, without repeats.

    Empty - meaning "any CA" in both versions - for the default roots
    (the system bundle: hundreds of public CAs tell a client nothing), a
    ready ``Store`` whose certificates we cannot see, and a list longer than
    :data:`MAX_CLIENT_CA_NAMES` names or :data:`MAX_CLIENT_CA_NAMES_BYTES`
    bytes: a list cut short would turn away clients of the CAs left out.
    """
    roots = policy.trust_roots
    if roots is None:
        return []
    if len(roots.certificates) > MAX_CLIENT_CA_NAMES:
        return []
    names: dict[bytes, None] = {}
    for cert in roots.certificates:
        names.setdefault(cert.subject.public_bytes(), None)
    # Each name is a 2-byte length and its DER (RFC 5246 §7.4.4).
    if sum(2 + len(name) for name in names) > MAX_CLIENT_CA_NAMES_BYTES:
        return []
    return list(names)


def signature_schemes_for_certificate(
    cert: x509.Certificate, version: int
) -> tuple[SignatureScheme, ...]:
    """Schemes the certificate's key can sign a handshake with in ``version``.

    The rules (RFC 8446 §4.2.3: curve-bound ECDSA and PSS-only RSA in
    TLS 1.3; rsa_pss_pss_* for an RSASSA-PSS key) live in
    ``engine.suites.schemes_for_key``; this only adds what the key object
    cannot tell, whether the certificate declares an RSASSA-PSS key.
    """
    pss = cert.public_key_algorithm_oid == PublicKeyAlgorithmOID.RSASSA_PSS
    try:
        schemes = suites.schemes_for_key(cert.public_key(), version, rsassa_pss=pss)
    except (TypeError, ValueError, UnsupportedAlgorithm):
        return ()
    return tuple(schemes)


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
    load: Callable[[bytes], x509.Certificate] = x509.load_der_x509_certificate,
) -> list[x509.Certificate]:
    """Parse the DER certificates a peer sent, leaf first.

    Counts before parsing, so a peer cannot make us parse more than
    ``max_length`` certificates.  ``load`` parses one (a policy's
    :meth:`ParsedCertificates.load`, or a fresh parse).
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
            certs.append(load(bytes(item)))
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


def _as_roots(trust_roots: TrustAnchors) -> TrustRoots:
    if isinstance(trust_roots, TrustRoots):
        return trust_roots
    if trust_roots is None:
        # verify_*_certificates are explicit about roots; the system bundle
        # is the Context's default, not theirs.
        raise TypeError("trust_roots is required")
    if isinstance(trust_roots, Store):
        return TrustRoots(trust_roots, (), "<Store>")
    if isinstance(trust_roots, (str, bytes)):
        raise TypeError(_NOT_LOADED)
    try:
        certificates = list(trust_roots)
    except TypeError:  # a path, say: files are the configuration side's
        raise TypeError(_NOT_LOADED) from None
    return TrustRoots.from_certificates(certificates)


_NOT_LOADED = (
    "trust_roots must be TrustRoots, a Store or a list of certificates; "
    "load files with twisted_sslfile.x509.load_trust_roots() first"
)


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
    trust_roots: TrustAnchors,
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
                e,
                certs,
                roots,
                now,
                purpose=purpose,
                max_length=max_length,
                min_rsa_bits=MIN_RSA_KEY_BITS,
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
    trust_roots: TrustAnchors,
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


def verify_peer_chain(
    policy: VerificationPolicy,
    chain_der: Sequence[bytes],
    *,
    now: float | datetime.datetime,
    server_name: str | None,
    is_server_cert: bool,
) -> list[x509.Certificate]:
    """Check a peer's chain under ``policy`` at ``now``; returns leaf first.

    With ``policy.verify`` false (``insecure_skip_verify=True``) the chain
    is only counted and parsed - the engine still needs the leaf's public
    key for CertificateVerify - and returned as sent.  Otherwise it is
    verified against the policy's trust roots and the verified path (leaf
    .. trust root) is returned.
    """
    max_length = policy.max_chain_length
    # Parse first: an empty or malformed chain is the peer's fault and must
    # not be hidden behind a local "no CA bundle" error.
    certs = parse_chain(
        chain_der,
        max_length=max_length,
        is_server_cert=is_server_cert,
        load=policy.parsed.load,
    )
    if not policy.verify:
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
        roots = policy.anchors()
    except ConfigurationError as e:
        raise InternalError(f"cannot verify the peer's certificate: {e}") from e
    if is_server_cert:
        path = verify_server_certificates(
            certs,
            trust_roots=roots,
            server_name=server_name,
            time=now,
            max_length=max_length,
        )
    else:
        path = verify_client_certificates(
            certs, trust_roots=roots, time=now, max_length=max_length
        )
    # The trust anchor is the operator's choice; what the peer brought is not.
    _check_key_strength(path[:-1] or path, policy.min_rsa_bits)
    return path


def _check_key_strength(certs: Sequence[x509.Certificate], min_rsa_bits: int) -> None:
    for cert in certs:
        key = cert.public_key()
        if isinstance(key, rsa.RSAPublicKey) and key.key_size < min_rsa_bits:
            raise CertificateError(
                f"certificate {describe_certificate(cert)} has a {key.key_size}-bit "
                f"RSA key; at least {min_rsa_bits} bits are required",
                AlertDescription.insufficient_security,
                certificate=cert,
            )


def server_policy_digest(policy: VerificationPolicy, server_name: str | None) -> bytes:
    """32 bytes naming what a verified server chain was checked against.

    A client remembers this in each session it verified
    (:attr:`~twisted_sslfile.engine.sessions.Session.verification_policy`)
    and offers a session only when the connection's own value is equal: a
    resumed handshake skips the certificate check, so it must stand for a
    check this client would have made itself.  What goes in is everything
    that decides :func:`verify_peer_chain`'s verdict on a server chain apart
    from the chain and the clock:

    * the trust roots, by content (:attr:`TrustRoots.digest`);
    * the chain length limit (``max_certificate_chain_length``);
    * the rules of this library (:data:`VERIFICATION_RULES_VERSION` and the
      RSA minimum, :data:`MIN_RSA_KEY_BITS`);
    * the server name, normalized as verification sees it (case, one
      trailing dot and IDNA aside, names are compared exactly).

    The time of the check is not part of it: a session is bounded by its
    lifetime (seven days at most), as in every TLS stack.  Returns ``b""``
    when the policy does not verify (``insecure_skip_verify=True``) or
    could not (no server name, an invalid one, no trust roots to load).
    """
    if not policy.verify or server_name is None:
        return b""
    try:
        roots = policy.anchors()
    except ConfigurationError:
        return b""
    if roots.digest is None:
        return b""
    known = policy.server_digests.get((server_name, roots.digest))
    if known is not None:
        return known
    try:
        kind, value = normalize_server_name(server_name)
    except ValueError:
        return b""
    digest = _policy_hash(b"twisted_sslfile server chain verification\0", policy)
    digest.update(roots.digest)
    digest.update(f"{kind}:{value}".encode("ascii"))
    result = digest.digest()
    if len(policy.server_digests) >= _MAX_SERVER_DIGESTS:
        policy.server_digests.clear()
    policy.server_digests[(server_name, roots.digest)] = result
    return result


#: Server names whose policy digest a VerificationPolicy keeps (emptied
#: when full, like ParsedCertificates).
_MAX_SERVER_DIGESTS = 64


def client_policy_digest(policy: VerificationPolicy) -> bytes:
    """32 bytes naming what a verified *client* chain was checked against.

    The server's counterpart of :func:`server_policy_digest`.  A server
    seals it with each session whose client chain it verified
    (:attr:`~twisted_sslfile.engine.sessions.ServerSessionState.
    verification_policy`) and resumes such a session as verified only when
    its own value is equal: servers that share a ticket key file may trust
    different client CAs, and a server's CAs may change while its tickets
    live.  What goes in is everything that decides
    :func:`verify_peer_chain`'s verdict on a client chain apart from the
    chain and the clock: the trust roots by content
    (:attr:`TrustRoots.digest`), the chain length limit and the library's
    rules.  There is no server name: a client chain is not checked against
    one.  Whether a certificate is required is not part of it either; the
    server checks that itself on every resumption.

    Returns ``b""`` when the policy verifies no client chain: it does not
    ask for one (``client_certificate="none"``), does not verify
    (``insecure_skip_verify=True``) or cannot (no trust roots to load).
    """
    if not policy.verify or policy.client_certificate is ClientCertificatePolicy.NONE:
        return b""
    try:
        roots = policy.anchors()
    except ConfigurationError:
        return b""
    if roots.digest is None:
        return b""
    digest = _policy_hash(b"twisted_sslfile client chain verification\0", policy)
    digest.update(roots.digest)
    return digest.digest()


def _policy_hash(label: bytes, policy: VerificationPolicy) -> hashlib._Hash:
    """SHA-256 over ``label`` and the library's rules under ``policy``."""
    digest = hashlib.sha256(label)
    digest.update(
        struct.pack(
            ">III",
            VERIFICATION_RULES_VERSION,
            policy.min_rsa_bits,
            policy.max_chain_length,
        )
    )
    return digest


# ---------------------------------------------------------------------------
# The handshake machines' entry points
# ---------------------------------------------------------------------------


class PolicySource(Protocol):
    """What the entry points below read of a Context: two plain values."""

    @property
    def certificate_policy(self) -> VerificationPolicy: ...

    @property
    def clock(self) -> Callable[[], float]: ...


def verify_chain(
    context: PolicySource,
    chain_der: Sequence[bytes],
    *,
    server_name: str | None,
    is_server_cert: bool,
) -> list[x509.Certificate]:
    """:func:`verify_peer_chain` under a Context's policy, at its clock."""
    return verify_peer_chain(
        context.certificate_policy,
        chain_der,
        now=context.clock(),
        server_name=server_name,
        is_server_cert=is_server_cert,
    )


def verify_server_chain(
    context: PolicySource, chain_der: Sequence[bytes], server_name: str | None
) -> list[x509.Certificate]:
    """A client's check of the server's chain: :func:`verify_chain` for it."""
    return verify_chain(
        context, chain_der, server_name=server_name, is_server_cert=True
    )


def verify_client_chain(
    context: PolicySource, chain_der: Sequence[bytes]
) -> list[x509.Certificate]:
    """A server's check of the client's chain: :func:`verify_chain` for it."""
    return verify_chain(context, chain_der, server_name=None, is_server_cert=False)


def verification_policy(context: PolicySource, server_name: str | None) -> bytes:
    """:func:`server_policy_digest` of a Context's policy."""
    return server_policy_digest(context.certificate_policy, server_name)


def client_verification_policy(context: PolicySource) -> bytes:
    """:func:`client_policy_digest` of a Context's policy."""
    return client_policy_digest(context.certificate_policy)


def client_ca_names(context: PolicySource) -> list[bytes]:
    """:func:`certificate_authorities` of a Context's policy."""
    return certificate_authorities(context.certificate_policy)
