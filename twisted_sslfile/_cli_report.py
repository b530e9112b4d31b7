"""The report of ``python -m twisted_sslfile`` (``sslfile-client``).

The lines the client writes on standard error: the handshake's facts in
words, each certificate of the chain as ``openssl s_client`` and ``openssl
x509 -text`` show them, and why a connection ended.  Formatting only: what
to report and when stays in :mod:`twisted_sslfile.__main__`.
"""

from __future__ import annotations

import contextlib
from typing import Any, TextIO

from twisted.python.failure import Failure

from twisted_sslfile._cli_stdio import _blocking, _null_over


class _Report:
    """Lines about the connection, on standard error."""

    def __init__(self, out: TextIO | None, quiet: bool) -> None:
        self.out = out
        self.quiet = quiet

    def __call__(self, line: str = "", *, always: bool = False) -> None:
        if self.out is None or not (always or not self.quiet):
            return
        try:
            # stderr often shares its open file description with stdin or
            # stdout, which StandardIO made non-blocking: write this line
            # blocking, as any tool's report is written.
            with _blocking(self.out.fileno()):
                print(line, file=self.out, flush=True)
        except (OSError, ValueError):
            # stderr is gone (EPIPE, a hung-up terminal): the report is
            # best-effort, the exit status still tells.  /dev/null in its
            # place lets the interpreter's last flush succeed.
            out, self.out = self.out, None
            with contextlib.suppress(OSError, ValueError):
                _null_over(out.fileno())


def describe_server_name(name: str | None) -> str:
    """The name and whether it went out as SNI (RFC 6066 §3: never an IP).

    ``name`` is the A-label form the endpoint keeps; an internationalised
    one is shown in Unicode too.
    """
    if name is None:
        return "(none)"
    from twisted_sslfile.x509 import normalize_server_name

    try:
        kind, _ = normalize_server_name(name)
    except ValueError:
        kind = "dns"
    if kind == "ip":
        return f"{name} (an IP address: checked, not sent as SNI)"
    import idna

    try:
        unicode = idna.decode(name)
    except (idna.IDNAError, UnicodeError):
        unicode = name
    if unicode != name:  # an internationalised name: both forms
        return f"{name} ({unicode}; sent as SNI)"
    return f"{name} (sent as SNI)"


#: cryptography's curve names -> the NIST names ``openssl x509 -text`` shows.
_NIST_CURVES = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}


def describe_public_key(key: object) -> str:
    """``RSA 2048 bits``, ``EC P-256 (256 bits)``, ``Ed25519``...

    The facts ``openssl x509 -noout -text`` gives as "Public-Key: (N bit)"
    and "NIST CURVE: P-256".
    """
    from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa

    if isinstance(key, rsa.RSAPublicKey):
        return f"RSA {key.key_size} bits"
    if isinstance(key, ec.EllipticCurvePublicKey):
        curve = _NIST_CURVES.get(key.curve.name, key.curve.name)
        return f"EC {curve} ({key.curve.key_size} bits)"
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "Ed25519"
    if isinstance(key, ed448.Ed448PublicKey):
        return "Ed448"
    if isinstance(key, dsa.DSAPublicKey):
        return f"DSA {key.key_size} bits"
    return type(key).__name__


def describe_validity(cert: Any, now: float) -> str:
    """notBefore and notAfter in UTC, and whether ``now`` is between them
    (RFC 5280 §4.1.2.5: both ends inclusive)."""
    import datetime

    before = cert.not_valid_before_utc
    after = cert.not_valid_after_utc
    moment = datetime.datetime.fromtimestamp(now, datetime.UTC)
    if moment < before:
        state = "NOT YET VALID"
    elif moment > after:
        state = "EXPIRED"
    else:
        state = "valid now"
    return f"notBefore {_utc(before)}, notAfter {_utc(after)} ({state})"


def describe_names(cert: Any) -> str:
    """The subjectAltName's DNS names and IP addresses, as sent."""
    from cryptography import x509

    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return "(none)"
    names = [f"DNS:{name}" for name in san.value.get_values_for_type(x509.DNSName)]
    names += [f"IP:{ip}" for ip in san.value.get_values_for_type(x509.IPAddress)]
    return ", ".join(names) or "(no DNS names or IP addresses)"


def describe_chain_certificate(index: int, der: bytes, now: float) -> list[str]:
    """The report's lines for certificate ``index`` of the chain: subject,
    issuer, validity, public key, SHA-256; the leaf's SANs too."""
    from cryptography import x509 as cx509

    from twisted_sslfile import x509

    fingerprint = x509.fingerprint_sha256(der)
    try:
        cert = cx509.load_der_x509_certificate(der)
        lines = [
            f"  {index} subject: {x509.describe_certificate(cert)}",
            f"    issuer: {cert.issuer.rfc4514_string()}",
            f"    validity: {describe_validity(cert, now)}",
            f"    public key: {describe_public_key(cert.public_key())}",
        ]
        if index == 0:
            lines.append(f"    subjectAltName: {describe_names(cert)}")
    except Exception as e:  # a corrupt certificate is reported, not fatal here
        return [
            f"  {index} (not a readable certificate: {e})",
            f"    SHA-256: {fingerprint}",
        ]
    lines.append(f"    SHA-256: {fingerprint}")
    return lines


def describe_signature_scheme(result: Any) -> str:
    """The scheme of the server's CertificateVerify (TLS 1.3) or
    ServerKeyExchange (TLS 1.2): s_client's "Peer signature type"."""
    scheme = result.peer_signature_scheme
    if scheme is not None:
        return _name(scheme)
    if result.resumed:
        return "(none: a resumed session is not signed again)"
    return "(none)"


def _utc(when: Any) -> str:
    return when.strftime("%Y-%m-%d %H:%M:%S UTC")


def _pem(der: bytes) -> list[str]:
    """The certificate's bytes as sent, in PEM armour (RFC 7468 §5)."""
    import base64
    import textwrap

    body = textwrap.wrap(base64.b64encode(der).decode("ascii"), 64)
    return ["-----BEGIN CERTIFICATE-----", *body, "-----END CERTIFICATE-----"]


def _name(value: Any) -> str:
    return "(none)" if value is None else getattr(value, "name", str(value))


def _proto(value: bytes | None) -> str:
    return "(none)" if value is None else value.decode("ascii", "backslashreplace")


def _address(address: Any) -> str:
    from twisted_sslfile.echo import describe_peer

    return describe_peer(address)


def _why(reason: Failure) -> str:
    from twisted_sslfile.protocol import TLSTruncationError

    if reason.check(TLSTruncationError):
        return f"{reason.value} - the data may be incomplete"
    return f"{reason.getErrorMessage()} ({type(reason.value).__name__})"
