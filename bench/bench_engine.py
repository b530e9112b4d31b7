"""Engine-only figures: TLS 1.3 handshakes and bulk records, ours beside pyOpenSSL.

Run from the repository root::

    python bench/bench_engine.py [--seconds 4] [--profile]

Both ends of every connection live in this one process and talk through
memory only - no sockets, no reactor - so the figures are the cost of the
TLS engines themselves.  All times are CPU time (``time.process_time``) of
the process, i.e. client *and* server work, which is what a machine serving
both ends would pay.  Both libraries run the same configuration: TLS 1.3
only, TLS_AES_128_GCM_SHA256, one self-signed ECDSA P-256 certificate (from
:func:`twisted_sslfile.x509.generate_self_signed`) that the client trusts
and verifies, host name included.

It prints one table:

* ``handshake``: CPU milliseconds for one full handshake *pair* (a new
  client and a new server connection, every flight delivered, both sides
  complete), for the key-exchange groups x25519 and X25519MLKEM768.
  pyOpenSSL runs ``OpenSSL.SSL.Connection(ctx, None)`` - memory BIOs -
  driven by ``do_handshake``/``bio_read``/``bio_write``.
* ``bulk``: MB/s (10^6 bytes of application data per CPU second) of
  16 KiB application records sealed by one side and opened by the other:
  ``Connection.send`` + ``data_to_send`` + ``receive_data`` for us,
  ``send`` + ``bio_read`` + ``bio_write`` + ``recv`` for pyOpenSSL.
* ``cost ratio``: our CPU per operation over pyOpenSSL's (above 1: we use
  more); the issue's aims are a handshake within 1.5x and 1 GB/s bulk.

Each figure gets a warm-up, then five rounds interleaved with its
pyOpenSSL counterpart (so drift in the machine's speed hits both); the
median round is reported with the spread of the rounds.  ``--seconds`` is
the CPU budget per figure and library (default 4: the whole run then takes
about 35 seconds, and ``--profile`` adds about 10 more).

``--profile`` then shows where a handshake pair's time goes, for each
group: by area of the engine (signature, key exchange, certificate
verification, key schedule, records, messages, the rest) and by function,
measured two ways - a sampling timer, which leaves the speed alone, and
cProfile, which inflates every Python call - beside the crypto floor: the
unprofiled cost of the ``cryptography`` calls a handshake pair cannot avoid,
timed in tight loops.  Whatever is not floor is Python, plus the extra cost
of the same calls inside a handshake, where caches are colder than in a loop.

pyOpenSSL notes: pyOpenSSL 26 has no public call to choose key-exchange
groups (``Context.set_tmp_ecdh`` takes NIST curves only, not x25519 or the
hybrid), nor to check the host name, nor to turn session tickets off
(``SSL_CTX_set_num_tickets`` is not bound).  The first two go through the
private ``OpenSSL._util.lib`` binding of the same OpenSSL calls
(``SSL_CTX_set1_curves_list``, ``X509_VERIFY_PARAM_set1_host``); the group
each side negotiated is checked and printed.  For tickets, the server gets
``OP_NO_TICKET`` and no session cache, the cheapest OpenSSL allows: it still
sends two small stateful tickets after the handshake, which the client
does not read.  Our server sends its default two resumable tickets (each
a sealed session state), and our client reads them and builds a session for
each: ours does more here, as deployed servers do.
"""

from __future__ import annotations

import argparse
import cProfile
import datetime
import hashlib
import os
import platform
import pstats
import signal
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import cryptography
import OpenSSL
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, mlkem, x25519
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.x509.verification import PolicyBuilder, Store
from OpenSSL import SSL, crypto

from twisted_sslfile.constants import CipherSuite, NamedGroup, ProtocolVersion
from twisted_sslfile.context import Context, Credential
from twisted_sslfile.engine.connection import Connection
from twisted_sslfile.x509 import PrivateKey, generate_self_signed

try:  # private: pyOpenSSL 26 exposes no group or host name setter
    from OpenSSL._util import lib as _openssl_lib
except ImportError:  # pragma: no cover - a pyOpenSSL without it
    _openssl_lib = None

HOST = "example.com"
RECORD = 16384
ROUNDS = 5
MAX_TURNS = 10  # a TLS 1.3 handshake needs 3; more means something is stuck

#: (label, our group, OpenSSL group name)
GROUPS: list[tuple[str, NamedGroup, bytes]] = [
    ("x25519", NamedGroup.x25519, b"X25519"),
    ("X25519MLKEM768", NamedGroup.X25519MLKEM768, b"X25519MLKEM768"),
]

#: (label, our suite, OpenSSL suite name)
SUITES: list[tuple[str, CipherSuite, bytes]] = [
    ("AES-128-GCM", CipherSuite.TLS_AES_128_GCM_SHA256, b"TLS_AES_128_GCM_SHA256"),
    (
        "CHACHA20-POLY1305",
        CipherSuite.TLS_CHACHA20_POLY1305_SHA256,
        b"TLS_CHACHA20_POLY1305_SHA256",
    ),
]
HANDSHAKE_SUITE = SUITES[0]


# ---------------------------------------------------------------------------
# Measuring
# ---------------------------------------------------------------------------


@dataclass
class Figure:
    """Per-operation CPU seconds of one measured loop: median and spread."""

    per_op: float
    spread: float  # (slowest round - fastest round) / median


def _cpu_round(batch: Callable[[], int], budget: float) -> float:
    """Run ``batch`` (returning operations done) for ``budget`` CPU seconds."""
    ops = 0
    start = time.process_time()
    while True:
        ops += batch()
        elapsed = time.process_time() - start
        if elapsed >= budget:
            return elapsed / ops


def compare(
    ours: Callable[[], int], theirs: Callable[[], int], seconds: float
) -> tuple[Figure, Figure]:
    """Warm both loops up, then time them in interleaved rounds."""
    budget = seconds / ROUNDS
    for batch in (ours, theirs):
        _cpu_round(batch, min(0.3, budget))
    samples: tuple[list[float], list[float]] = ([], [])
    for _ in range(ROUNDS):
        samples[0].append(_cpu_round(ours, budget))
        samples[1].append(_cpu_round(theirs, budget))
    figures = []
    for values in samples:
        median = statistics.median(values)
        figures.append(Figure(median, (max(values) - min(values)) / median))
    return figures[0], figures[1]


# ---------------------------------------------------------------------------
# twisted_sslfile
# ---------------------------------------------------------------------------


def our_contexts(
    cert: x509.Certificate,
    key: PrivateKey,
    group: NamedGroup,
    suite: CipherSuite,
) -> tuple[Context, Context]:
    """Client and server Contexts: TLS 1.3 only, one group, one suite."""
    common = {
        "min_version": ProtocolVersion.TLS_1_3,
        "cipher_suites": [suite],
        "groups": [group],
    }
    server = Context(credentials=[Credential([cert], key)], **common)
    client = Context(trust_roots=[cert], **common)
    return client, server


def our_handshake(
    client_context: Context, server_context: Context
) -> tuple[Connection, Connection]:
    """One full handshake pair in memory; both sides end complete."""
    client = Connection(client_context, is_client=True, server_name=HOST)
    server = Connection(server_context, is_client=False)
    client.start()
    for _ in range(MAX_TURNS):
        to_server = client.data_to_send()
        if to_server:
            server.receive_data(to_server)
        to_client = server.data_to_send()
        if to_client:
            client.receive_data(to_client)
        if not to_server and not to_client:
            break
    if not (client.handshake_complete and server.handshake_complete):
        raise RuntimeError("twisted_sslfile handshake did not complete")
    return client, server


def our_transfer(client: Connection, server: Connection, payload: bytes) -> bytes:
    """Seal one record on the client, open it on the server."""
    client.send(payload)
    [event] = server.receive_data(client.data_to_send())
    return event.data  # type: ignore[attr-defined]


# ---------------------------------------------------------------------------
# pyOpenSSL over memory BIOs
# ---------------------------------------------------------------------------


def openssl_contexts(
    cert: x509.Certificate, key: PrivateKey, group: bytes, suite: bytes
) -> tuple[SSL.Context, SSL.Context]:
    """The same configuration as :func:`our_contexts`, in pyOpenSSL."""
    server = SSL.Context(SSL.TLS_METHOD)
    server.use_certificate(cert)
    server.use_privatekey(key)
    # Tickets cannot be switched off from pyOpenSSL; stateful ones are the
    # cheapest (no ticket encryption), see the module docstring.
    server.set_options(SSL.OP_NO_TICKET)
    server.set_session_cache_mode(SSL.SESS_CACHE_OFF)
    client = SSL.Context(SSL.TLS_METHOD)
    client.get_cert_store().add_cert(crypto.X509.from_cryptography(cert))
    client.set_verify(SSL.VERIFY_PEER, None)
    for ctx in (client, server):
        ctx.set_min_proto_version(SSL.TLS1_3_VERSION)
        ctx.set_max_proto_version(SSL.TLS1_3_VERSION)
        ctx.set_tls13_ciphersuites(suite)
        if _openssl_lib is None:
            raise RuntimeError("pyOpenSSL cannot select the key-exchange group")
        if _openssl_lib.SSL_CTX_set1_curves_list(ctx._context, group) != 1:
            raise RuntimeError(f"OpenSSL refused group {group.decode()}")
    return client, server


def _step(conn: SSL.Connection) -> bool:
    try:
        conn.do_handshake()
    except SSL.WantReadError:
        return False
    return True


def _drain(conn: SSL.Connection) -> bytes:
    try:
        return conn.bio_read(65536)
    except SSL.WantReadError:
        return b""


def openssl_handshake(
    client_context: SSL.Context, server_context: SSL.Context
) -> tuple[SSL.Connection, SSL.Connection]:
    """One full handshake pair over memory BIOs; both sides end complete."""
    client = SSL.Connection(client_context, None)
    client.set_connect_state()
    client.set_tlsext_host_name(HOST.encode())
    if _openssl_lib is not None:
        param = _openssl_lib.SSL_get0_param(client._ssl)
        _openssl_lib.X509_VERIFY_PARAM_set1_host(param, HOST.encode(), 0)
    server = SSL.Connection(server_context, None)
    server.set_accept_state()
    client_done = server_done = False
    for _ in range(MAX_TURNS):
        client_done = client_done or _step(client)
        to_server = _drain(client)
        if to_server:
            server.bio_write(to_server)
        server_done = server_done or _step(server)
        to_client = _drain(server)
        if to_client:
            client.bio_write(to_client)
        if not to_server and not to_client:
            break
    if not (client_done and server_done):
        raise RuntimeError("pyOpenSSL handshake did not complete")
    return client, server


def openssl_transfer(
    client: SSL.Connection, server: SSL.Connection, payload: bytes
) -> bytes:
    """Seal one record on the client, open it on the server."""
    client.send(payload)
    server.bio_write(client.bio_read(RECORD + 256))
    return server.recv(RECORD)


# ---------------------------------------------------------------------------
# The figures
# ---------------------------------------------------------------------------


@dataclass
class Row:
    label: str
    unit: str
    ours: float
    theirs: float
    ours_spread: float
    theirs_spread: float
    cost_ratio: float
    aim: str
    digits: int = 0


def bench_handshakes(
    cert: x509.Certificate, key: PrivateKey, seconds: float
) -> list[Row]:
    rows = []
    _, suite, suite_name = HANDSHAKE_SUITE
    for label, group, openssl_group in GROUPS:
        ours_ctx = our_contexts(cert, key, group, suite)
        theirs_ctx = openssl_contexts(cert, key, openssl_group, suite_name)
        client, _ = our_handshake(*ours_ctx)
        oc, os_ = openssl_handshake(*theirs_ctx)
        negotiated = (oc.get_group_name(), os_.get_group_name())
        if client.group != group or any(
            (name or "").lower() != openssl_group.decode().lower()
            for name in negotiated
        ):
            raise RuntimeError(f"{label}: negotiated {client.group} / {negotiated}")
        print(
            f"checked: {label} negotiated by twisted_sslfile ({client.group.name}, "
            f"{client.cipher_suite.name}) and by both pyOpenSSL ends "
            f"({' / '.join(negotiated)}, {oc.get_cipher_name()})"
        )

        def ours(ctx: tuple[Context, Context] = ours_ctx) -> int:
            for _ in range(10):
                our_handshake(*ctx)
            return 10

        def theirs(ctx: tuple[SSL.Context, SSL.Context] = theirs_ctx) -> int:
            for _ in range(10):
                openssl_handshake(*ctx)
            return 10

        mine, other = compare(ours, theirs, seconds)
        rows.append(
            Row(
                f"handshake pair, {label}",
                "ms CPU",
                mine.per_op * 1e3,
                other.per_op * 1e3,
                mine.spread,
                other.spread,
                mine.per_op / other.per_op,
                "<= 1.5x",
                digits=3,
            )
        )
    return rows


def bench_bulk(cert: x509.Certificate, key: PrivateKey, seconds: float) -> list[Row]:
    rows = []
    payload = os.urandom(RECORD)
    for label, suite, suite_name in SUITES:
        client, server = our_handshake(
            *our_contexts(cert, key, NamedGroup.x25519, suite)
        )
        oc, os_ = openssl_handshake(*openssl_contexts(cert, key, b"X25519", suite_name))
        if client.cipher_suite != suite or oc.get_cipher_name() != suite_name.decode():
            raise RuntimeError(
                f"{label}: {client.cipher_suite} / {oc.get_cipher_name()}"
            )
        if our_transfer(client, server, payload) != payload:
            raise RuntimeError("twisted_sslfile bulk transfer garbled the data")
        if openssl_transfer(oc, os_, payload) != payload:
            raise RuntimeError("pyOpenSSL bulk transfer garbled the data")

        def ours(c: Connection = client, s: Connection = server) -> int:
            for _ in range(64):
                our_transfer(c, s, payload)
            return 64

        def theirs(c: SSL.Connection = oc, s: SSL.Connection = os_) -> int:
            for _ in range(64):
                openssl_transfer(c, s, payload)
            return 64

        mine, other = compare(ours, theirs, seconds)
        rows.append(
            Row(
                f"bulk 16 KiB records, {label}",
                "MB/s",
                RECORD / mine.per_op / 1e6,
                RECORD / other.per_op / 1e6,
                mine.spread,
                other.spread,
                mine.per_op / other.per_op,
                ">= 1000 MB/s",
            )
        )
    return rows


def machine() -> str:
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} CPUs, {platform.system()} {platform.release()}"


def print_table(rows: list[Row]) -> None:
    print(
        f"{'figure':<40} {'unit':<7} {'ours':>9} {'+-':>4} {'pyOpenSSL':>10} "
        f"{'+-':>4} {'cost ratio':>11}  aim"
    )
    for row in rows:
        print(
            f"{row.label:<40} {row.unit:<7} {row.ours:>9.{row.digits}f} "
            f"{row.ours_spread * 100:>3.0f}% {row.theirs:>10.{row.digits}f} "
            f"{row.theirs_spread * 100:>3.0f}% {row.cost_ratio:>10.2f}x  {row.aim}"
        )
    print(
        "cost ratio = our CPU per handshake (or per record) / pyOpenSSL's; "
        "+- = spread of the rounds"
    )


# ---------------------------------------------------------------------------
# Where a handshake's time goes
# ---------------------------------------------------------------------------

#: Areas of the engine: (label, file suffix, function names or None for all).
#: A function belongs to the first area that lists it.
AREAS: list[tuple[str, tuple[str, ...], frozenset[str] | None]] = [
    (
        "signature (CertificateVerify sign + verify)",
        ("engine/suites.py",),
        frozenset({"sign", "verify"}),
    ),
    (
        "key exchange (key shares, shared secrets)",
        ("engine/suites.py",),
        frozenset({"generate_key_share", "respond_to_key_share", "shared_secret"}),
    ),
    (
        "certificate verification",
        ("engine/certificates.py", "engine/certnames.py"),
        None,
    ),
    ("key schedule + transcript hash", ("engine/keyschedule.py",), None),
    ("record layer (key set-up, seal/open)", ("engine/record.py",), None),
    (
        "message parse/serialize",
        (
            "engine/messages.py",
            "engine/messages12.py",
            "engine/extensions.py",
            "engine/buffer.py",
        ),
        None,
    ),
]
REST = "state machines, Connection, Context, loop"
PACKAGE = os.sep + "twisted_sslfile" + os.sep


def _area_of(filename: str, name: str) -> str | None:
    path = filename.replace(os.sep, "/")
    for label, suffixes, names in AREAS:
        if path.endswith(suffixes) and (names is None or name in names):
            return label
    return None


def profile_areas(stats: pstats.Stats) -> dict[str, float]:
    """Seconds per area from cProfile's per-caller cumulative times.

    An area's time is what its functions cost when called from outside the
    area (C functions they call included), so nothing is counted twice.
    """
    areas = dict.fromkeys([label for label, _, _ in AREAS], 0.0)
    raw = stats.stats  # type: ignore[attr-defined]
    for (filename, _, name), (_, _, _, _, callers) in raw.items():
        area = _area_of(filename, name)
        if area is None:
            continue
        for caller, (_, _, _, cumulative) in callers.items():
            if _area_of(caller[0], caller[2]) != area:
                areas[area] += cumulative
    areas[REST] = stats.total_tt - sum(areas.values())  # type: ignore[attr-defined]
    return areas


@dataclass
class Samples:
    areas: dict[str, int]
    functions: dict[str, int]  # innermost twisted_sslfile function

    @property
    def total(self) -> int:
        return sum(self.areas.values())


def sample(run: Callable[[], object], interval: float = 0.0002) -> Samples:
    """Where ``run`` spends its time, by interval-timer sampling.

    Every ``interval`` seconds of wall time (the loop is CPU-bound, so that
    is CPU time) a SIGALRM handler looks at the running frame.  CPython runs
    it right after the current bytecode, or after the C function being
    called returns, so C time lands on the Python function that called it.
    A sample goes to the innermost frame of twisted_sslfile (the function)
    and the innermost frame that belongs to an area (the area).  Unlike
    cProfile this adds nothing per call, so Python is not made to look
    dearer than C.
    """
    result = Samples(dict.fromkeys([*(label for label, _, _ in AREAS), REST], 0), {})

    def on_alarm(signum: int, frame: FrameType | None) -> None:
        function = area = None
        while frame is not None and area is None:
            code = frame.f_code
            if function is None and PACKAGE in code.co_filename:
                function = f"{os.path.basename(code.co_filename)}:{code.co_qualname}"
            area = _area_of(code.co_filename, code.co_name)
            frame = frame.f_back
        while function is None and frame is not None:
            if PACKAGE in frame.f_code.co_filename:
                code = frame.f_code
                function = f"{os.path.basename(code.co_filename)}:{code.co_qualname}"
            frame = frame.f_back
        result.areas[area or REST] += 1
        key = function or "(outside twisted_sslfile)"
        result.functions[key] = result.functions.get(key, 0) + 1

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, interval, interval)
    try:
        run()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0, 0)
        signal.signal(signal.SIGALRM, previous)
    return result


def _calls_per_pair(stats: pstats.Stats, suffix: str, name: str, pairs: int) -> float:
    raw = stats.stats  # type: ignore[attr-defined]
    calls = sum(
        value[1]
        for (filename, _, function), value in raw.items()
        if filename.replace(os.sep, "/").endswith(suffix) and function == name
    )
    return calls / pairs


def _unit_cost(func: Callable[[], object], repeat: int = 1000) -> float:
    """Best-of-5 CPU seconds of one call, in a tight (cache-warm) loop."""
    func()
    best = float("inf")
    for _ in range(5):
        start = time.process_time()
        for _ in range(repeat):
            func()
        best = min(best, (time.process_time() - start) / repeat)
    return best


def crypto_floor(
    cert: x509.Certificate,
    key: PrivateKey,
    group: NamedGroup,
    hmac_calls: float,
    aead_keys: float,
) -> list[tuple[str, float]]:
    """Seconds of the ``cryptography`` calls one handshake pair must make."""
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    signed = os.urandom(130)  # 64 pad + context string + SHA-256 transcript hash
    signature = key.sign(signed, ec.ECDSA(hashes.SHA256()))
    public = key.public_key()
    der = cert.public_bytes(serialization.Encoding.DER)
    store = Store([cert])
    now = datetime.datetime.now(datetime.UTC)
    peer = x25519.X25519PrivateKey.generate().public_key().public_bytes_raw()

    def x25519_side() -> None:
        # Each side: a key from 32 random bytes, its share, the exchange.
        private = x25519.X25519PrivateKey.from_private_bytes(os.urandom(32))
        private.public_key().public_bytes_raw()
        private.exchange(x25519.X25519PublicKey.from_public_bytes(peer))

    def verify_certificate() -> None:
        leaf = x509.load_der_x509_certificate(der)
        PolicyBuilder().store(store).time(now).build_server_verifier(
            x509.DNSName(HOST)
        ).verify(leaf, [])

    info, aes_key = os.urandom(40), os.urandom(16)
    inner_pad, outer_pad = os.urandom(64), os.urandom(64)

    def hmac() -> None:
        # What an HMAC-SHA256 cannot avoid: its two hashes (the key schedule
        # runs RFC 2104 over hashlib; every HKDF-Expand-Label is one HMAC).
        inner = hashlib.sha256(inner_pad + info).digest()
        hashlib.sha256(outer_pad + inner).digest()

    def ecdsa_sign() -> None:
        key.sign(signed, ec.ECDSA(hashes.SHA256()))

    def ecdsa_verify() -> None:
        public.verify(signature, signed, ec.ECDSA(hashes.SHA256()))

    parts = [
        ("ECDSA P-256 sign", _unit_cost(ecdsa_sign)),
        ("ECDSA P-256 verify", _unit_cost(ecdsa_verify)),
        ("x25519 key + share + exchange, x2", 2 * _unit_cost(x25519_side)),
    ]
    if group == NamedGroup.X25519MLKEM768:
        seed = os.urandom(64)
        decapsulation = mlkem.MLKEM768PrivateKey.from_seed_bytes(seed)
        encapsulation = decapsulation.public_key().public_bytes_raw()
        _, ciphertext = mlkem.MLKEM768PublicKey.from_public_bytes(
            encapsulation
        ).encapsulate()

        def kem() -> None:
            private = mlkem.MLKEM768PrivateKey.from_seed_bytes(seed)
            private.public_key().public_bytes_raw()
            mlkem.MLKEM768PublicKey.from_public_bytes(encapsulation).encapsulate()
            decapsulation.decapsulate(ciphertext)

        parts.append(("ML-KEM-768 keygen, encaps, decaps", _unit_cost(kem, 300)))
    parts += [
        ("certificate parse + path + name check", _unit_cost(verify_certificate)),
        (
            f"HMAC-SHA256 x{hmac_calls:.0f} (HKDF included)",
            hmac_calls * _unit_cost(hmac),
        ),
        (
            f"AES-GCM key set-up x{aead_keys:.0f}",
            aead_keys * _unit_cost(lambda: AESGCM(aes_key)),
        ),
    ]
    return parts


def profile_handshake(
    cert: x509.Certificate,
    key: PrivateKey,
    label: str,
    group: NamedGroup,
    measured: float,
    pairs: int = 500,
) -> None:
    """Print where one handshake pair's ``measured`` CPU seconds go."""
    ctx = our_contexts(cert, key, group, HANDSHAKE_SUITE[1])
    for _ in range(20):
        our_handshake(*ctx)
    samples = sample(lambda: [our_handshake(*ctx) for _ in range(pairs * 8)])
    profiler = cProfile.Profile()
    profiler.runcall(lambda: [our_handshake(*ctx) for _ in range(pairs)])
    stats = pstats.Stats(profiler)
    total = stats.total_tt  # type: ignore[attr-defined]
    us = measured * 1e6
    print(
        f"\n{label} handshake pair, {us:.0f} us: by area, sampled ({samples.total} "
        f"samples, scaled to {us:.0f} us) and by cProfile ({total / pairs * 1e6:.0f} "
        f"us/pair: it inflates every Python call)"
    )
    print(f"  {'area':<45} {'sampled':>16} {'cProfile':>16}")
    for area, seconds in profile_areas(stats).items():
        share = samples.areas[area] / samples.total
        print(
            f"  {area:<45} {share * us:6.0f} us {share * 100:5.1f} % "
            f"{seconds / pairs * 1e6:6.0f} us {seconds / total * 100:5.1f} %"
        )
    floor = crypto_floor(
        cert,
        key,
        group,
        hmac_calls=_calls_per_pair(stats, "engine/keyschedule.py", "_hmac_with", pairs),
        aead_keys=_calls_per_pair(
            stats, "engine/tls13.py", "traffic_protection", pairs
        ),
    )
    floor_us = sum(seconds for _, seconds in floor) * 1e6
    print("  crypto floor: the cryptography calls alone, in tight loops")
    for part, seconds in floor:
        print(f"    {part:<43} {seconds * 1e6:6.0f} us")
    print(
        f"    {'sum':<43} {floor_us:6.0f} us = {floor_us / us * 100:.0f} % of the "
        f"handshake; the other {us - floor_us:.0f} us are Python (and the floor's "
        f"calls running slower in a handshake than in a loop)"
    )
    print("  top functions, sampled (own time + the C functions they call)")
    ranked = sorted(samples.functions.items(), key=lambda item: -item[1])
    for function, count in ranked[:14]:
        share = count / samples.total
        print(f"    {function:<55} {share * us:6.1f} us {share * 100:5.1f} %")
    print("  top functions by own time, cProfile")
    stats.sort_stats("tottime").print_stats(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--seconds", type=float, default=4.0, help="CPU budget per figure and library"
    )
    parser.add_argument(
        "--profile", action="store_true", help="cProfile the x25519 handshake"
    )
    args = parser.parse_args()
    cert, key = generate_self_signed(HOST, "ecdsa-p256")
    print(
        f"twisted_sslfile engine vs pyOpenSSL {OpenSSL.__version__} "
        f"({SSL.OpenSSL_version(SSL.OPENSSL_VERSION).decode()}), "
        f"cryptography {cryptography.__version__}, Python {platform.python_version()}"
    )
    print(f"{datetime.date.today().isoformat()}, {machine()}")
    print(
        "TLS 1.3, ECDSA P-256 self-signed certificate verified with host name, "
        "CPU time of both ends in one process\n"
    )
    rows = bench_handshakes(cert, key, args.seconds)
    rows += bench_bulk(cert, key, args.seconds)
    print_table(rows)
    if args.profile:
        for row, (label, group, _) in zip(rows, GROUPS, strict=False):
            profile_handshake(cert, key, label, group, row.ours / 1e3)


if __name__ == "__main__":
    main()
