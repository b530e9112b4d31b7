"""Names: of servers as a client is given them, and in certificates.

A server name reaches the engine from a client's configuration (the name to
send as SNI and to verify the certificate against) and from the wire (a
ClientHello's SNI); certificates name their subjects in the subjectAltName
and, for people, in the subject.  This module puts both in the one form they
are compared in (lower-case A-labels, RFC 5280 §7.2, RFC 6066 §3), matches
them (RFC 6125 §6.4), and names certificates and keys in messages.

Pure functions: no I/O, nothing from the configuration side.
"""

from __future__ import annotations

import functools
import ipaddress
import re

import idna
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.x509.oid import NameOID

__all__ = [
    "canonical_server_name",
    "certificate_common_names",
    "certificate_dns_names",
    "certificate_ip_addresses",
    "describe_certificate",
    "describe_key",
    "match_server_name",
    "normalize_server_name",
]


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
