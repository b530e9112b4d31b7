"""Why a peer's chain was refused: the certificate at fault and the alert.

``cryptography``'s verifier reports a refusal as a plain string that names
a rule but not the certificate that broke it.  :func:`_diagnose` reads that
string, checks the chain as sent itself to find the certificate, and builds
a :class:`~twisted_sslfile.errors.CertificateError` carrying the alert
(RFC 8446 §6.2) and a message that names the certificate and what is wrong
with it; the verifier's own text ends the message.  The alert each refusal
gets is tabled in :mod:`twisted_sslfile.engine.certificates`.

Pure functions over certificates already parsed: no I/O.
"""

from __future__ import annotations

import datetime
import itertools
from collections.abc import Sequence
from typing import Protocol, TypeAlias

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID
from cryptography.x509.verification import VerificationError

from ..constants import AlertDescription
from ..errors import CertificateError
from .certnames import _format_names, describe_certificate, describe_key


class _Roots(Protocol):
    """The trust roots as the diagnosis sees them (a ``TrustRoots``)."""

    @property
    def certificates(self) -> tuple[x509.Certificate, ...]: ...


_EKU_NAMES = {
    ExtendedKeyUsageOID.SERVER_AUTH: "serverAuth",
    ExtendedKeyUsageOID.CLIENT_AUTH: "clientAuth",
    ExtendedKeyUsageOID.CODE_SIGNING: "codeSigning",
    ExtendedKeyUsageOID.EMAIL_PROTECTION: "emailProtection",
    ExtendedKeyUsageOID.TIME_STAMPING: "timeStamping",
    ExtendedKeyUsageOID.OCSP_SIGNING: "OCSPSigning",
    ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE: "anyExtendedKeyUsage",
}


def _format_time(when: datetime.datetime) -> str:
    return when.astimezone(datetime.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


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
    roots: _Roots,
    now: datetime.datetime,
    *,
    purpose: str,
    max_length: int,
    min_rsa_bits: int,
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
        return _refused_path(reason, certs, roots, min_rsa_bits=min_rsa_bits)

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
    certs: list[x509.Certificate], roots: _Roots, text: str
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
    certs: list[x509.Certificate], roots: _Roots
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


def _find_weak_key(path: list[x509.Certificate], min_rsa_bits: int) -> _Culprit | None:
    for cert in path[1:]:
        key = cert.public_key()
        if isinstance(key, rsa.RSAPublicKey) and key.key_size < min_rsa_bits:
            return (
                f"CA certificate {describe_certificate(cert)} has a "
                f"{key.key_size}-bit RSA key; at least {min_rsa_bits} bits "
                f"are required",
                cert,
            )
    return None


#: Certificate signature hashes refused by the verifier and named by RFC
#: 8446 §4.4.2.4 (MD5: MUST refuse; SHA-1: RECOMMENDED to refuse).
_WEAK_SIGNATURE_HASHES = {"sha1": "SHA-1", "md5": "MD5"}


def _find_weak_signature(
    path: list[x509.Certificate], roots: _Roots
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
    reason: str,
    certs: list[x509.Certificate],
    roots: _Roots,
    *,
    min_rsa_bits: int,
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
        culprit = _find_weak_key(path, min_rsa_bits)
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
