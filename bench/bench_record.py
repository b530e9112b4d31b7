"""Record-layer throughput: seal + open of 16 KiB records, per cipher suite.

Run from the repository root::

    python bench/bench_record.py [--seconds 0.5] [--profile]

For each suite it prints, in MB/s of application data (10^6 bytes/s):

* ``seal+open``: one RecordLayer sends, another receives, record by record
  (``send`` + ``pending_output`` then ``feed`` + ``next_record``);
* ``stream``: the same, but 64 records are sealed in one ``send`` and the
  wire is fed back in 64 KiB chunks, the way a socket delivers it;
* ``raw AEAD``: ``encrypt`` + ``decrypt`` of the same 16 KiB with the bare
  ``cryptography`` object, i.e. the floor our framing adds to;
* ``overhead``: microseconds per record that the framing costs above raw.

``receive`` then times the decrypt side alone, in CPU time
(``time.process_time``): 64 sealed records fed in 64 KiB chunks, each
record taken with ``next_record`` and its payload made into the ``bytes``
that ``Connection`` hands to the application, against the bare AEAD
``decrypt`` of the same 64 records.  It prints both per record and the
difference: the microseconds per 16 KiB record *above the AEAD*, which is
the Python (and the copies) the receive path adds.

It then compares two ways to build a TLS 1.3 record (encrypt + concatenate,
which record.py uses, against ``encrypt_into`` a pre-sized bytearray that
must then become ``bytes`` for Twisted), and with ``--profile`` shows where
the time of the record-by-record loop goes.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import sys
import time
from collections.abc import Callable

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from cryptography.hazmat.primitives.ciphers.aead import (
    AESGCM,
    ChaCha20Poly1305,
)

from twisted_sslfile.constants import CipherSuite, ContentType
from twisted_sslfile.engine.record import (
    RecordLayer,
    RecordProtection,
    TLS12Protection,
    TLS13Protection,
)

RECORD = 16384
APP = ContentType.application_data

# (label, protection factory, raw AEAD class, key length)
SUITES: list[tuple[str, Callable[[bytes, bytes], RecordProtection], type, int]] = [
    (
        "TLS 1.3 AES-128-GCM",
        lambda k, iv: TLS13Protection(CipherSuite.TLS_AES_128_GCM_SHA256, k, iv),
        AESGCM,
        16,
    ),
    (
        "TLS 1.3 AES-256-GCM",
        lambda k, iv: TLS13Protection(CipherSuite.TLS_AES_256_GCM_SHA384, k, iv),
        AESGCM,
        32,
    ),
    (
        "TLS 1.3 CHACHA20-POLY1305",
        lambda k, iv: TLS13Protection(CipherSuite.TLS_CHACHA20_POLY1305_SHA256, k, iv),
        ChaCha20Poly1305,
        32,
    ),
    (
        "TLS 1.2 AES-128-GCM",
        lambda k, iv: TLS12Protection(
            CipherSuite.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, k, iv[:4]
        ),
        AESGCM,
        16,
    ),
    (
        "TLS 1.2 AES-256-GCM",
        lambda k, iv: TLS12Protection(
            CipherSuite.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384, k, iv[:4]
        ),
        AESGCM,
        32,
    ),
    (
        "TLS 1.2 CHACHA20-POLY1305",
        lambda k, iv: TLS12Protection(
            CipherSuite.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256, k, iv
        ),
        ChaCha20Poly1305,
        32,
    ),
]


def rate(func: Callable[[], int], seconds: float) -> float:
    """Best of 3 runs of ``func`` (returning bytes processed) in MB/s."""
    best = 0.0
    for _ in range(3):
        total = 0
        start = time.perf_counter()
        deadline = start + seconds / 3
        while True:
            total += func()
            now = time.perf_counter()
            if now >= deadline:
                break
        best = max(best, total / (now - start) / 1e6)
    return best


def pair(factory: Callable[[bytes, bytes], RecordProtection], key_length: int):
    key, iv = os.urandom(key_length), os.urandom(12)
    sender, receiver = RecordLayer(), RecordLayer()
    sender.set_write_protection(factory(key, iv))
    receiver.set_read_protection(factory(key, iv))
    return sender, receiver


def bench_suite(label, factory, aead_class, key_length, seconds) -> None:
    payload = os.urandom(RECORD)
    sender, receiver = pair(factory, key_length)

    def record_by_record() -> int:
        for _ in range(16):
            sender.send(APP, payload)
            for wire in sender.pending_output():
                receiver.feed(wire)
            receiver.next_record()
        return 16 * RECORD

    big = payload * 64
    s_sender, s_receiver = pair(factory, key_length)

    def stream() -> int:
        s_sender.send(APP, big)
        wire = memoryview(s_sender.data_to_send())
        for i in range(0, len(wire), 65536):
            s_receiver.feed(wire[i : i + 65536])
            while s_receiver.next_record() is not None:
                pass
        return len(big)

    aead = aead_class(os.urandom(key_length))
    nonce = os.urandom(12)
    aad = b"\x17\x03\x03\x40\x11"
    sealed = aead.encrypt(nonce, payload, aad)

    def raw() -> int:
        for _ in range(16):
            aead.encrypt(nonce, payload, aad)
            aead.decrypt(nonce, sealed, aad)
        return 16 * RECORD

    ours = rate(record_by_record, seconds)
    streamed = rate(stream, seconds)
    floor = rate(raw, seconds)
    overhead_us = (RECORD / (ours * 1e6) - RECORD / (floor * 1e6)) * 1e6
    print(
        f"{label:<27} seal+open {ours:7.0f}   stream {streamed:7.0f}   "
        f"raw AEAD {floor:7.0f}   overhead {overhead_us:5.2f} us/record"
    )


def cpu_per_call(func: Callable[[], None], seconds: float, rounds: int = 5) -> float:
    """Median CPU seconds per call of ``func`` over ``rounds`` rounds."""
    samples = []
    for _ in range(rounds):
        calls = 0
        start = time.process_time()
        deadline = start + seconds / rounds
        while True:
            func()
            calls += 1
            now = time.process_time()
            if now >= deadline:
                break
        samples.append((now - start) / calls)
    samples.sort()
    return samples[len(samples) // 2]


def bench_receive(label, factory, aead_class, key_length, seconds) -> None:
    """Decrypt side alone: CPU per 16 KiB record, ours against the AEAD."""
    count = 64
    key, iv = os.urandom(key_length), os.urandom(12)
    sender = RecordLayer()
    sender.set_write_protection(factory(key, iv))
    sender.send(APP, os.urandom(RECORD) * count)
    wire = sender.data_to_send()
    chunks = [wire[i : i + 65536] for i in range(0, len(wire), 65536)]

    def ours() -> None:
        receiver = RecordLayer()
        receiver.set_read_protection(factory(key, iv))
        for chunk in chunks:
            receiver.feed(chunk)
            while (record := receiver.next_record()) is not None:
                bytes(record.payload)  # what Connection hands to the app

    # The same records through the bare AEAD: nonce and additional data as
    # the protocol builds them, precomputed, so this is the floor.
    aead = aead_class(key)
    view = memoryview(wire)
    jobs = []
    iv_int = int.from_bytes(iv, "big")
    tls13 = factory(key, iv).tls13
    pos = 0
    for seq in range(count):
        length = int.from_bytes(wire[pos + 3 : pos + 5], "big")
        header, body = view[pos : pos + 5], view[pos + 5 : pos + 5 + length]
        if tls13:
            jobs.append(((iv_int ^ seq).to_bytes(12, "big"), body, header))
        else:
            n = length - 8 - 16 if aead_class is AESGCM else length - 16
            aad = seq.to_bytes(8, "big") + bytes((23, 3, 3, n >> 8, n & 0xFF))
            if aead_class is AESGCM:
                nonce = iv[:4] + bytes(body[:8])
                body = body[8:]
            else:
                nonce = (iv_int ^ seq).to_bytes(12, "big")
            jobs.append((nonce, body, aad))
        pos += 5 + length

    def floor() -> None:
        decrypt = aead.decrypt
        for nonce, body, aad in jobs:
            decrypt(nonce, body, aad)

    ours()
    floor()
    ours_us = cpu_per_call(ours, seconds) / count * 1e6
    floor_us = cpu_per_call(floor, seconds) / count * 1e6
    print(
        f"{label:<27} receive {ours_us:6.2f} us/record   AEAD decrypt"
        f" {floor_us:6.2f}   above the AEAD {ours_us - floor_us:5.2f} us/record"
    )


def bench_framing_variants(seconds: float) -> None:
    """encrypt + concat (what record.py does) against encrypt_into."""
    aead = AESGCM(os.urandom(16))
    iv = int.from_bytes(os.urandom(12), "big")
    payload = os.urandom(RECORD)
    length = RECORD + 17
    header = bytes((23, 3, 3, length >> 8, length & 0xFF))

    def concat() -> int:
        for seq in range(16):
            ct = aead.encrypt(
                (iv ^ seq).to_bytes(12, "big"), b"".join((payload, b"\x17")), header
            )
            _ = header + ct
        return 16 * RECORD

    def into() -> int:
        for seq in range(16):
            out = bytearray(5 + length)
            out[:5] = header
            view = memoryview(out)
            view[5 : 5 + RECORD] = payload
            out[5 + RECORD] = 23
            aead.encrypt_into(
                (iv ^ seq).to_bytes(12, "big"), view[5 : 6 + RECORD], header, view[5:]
            )
            view.release()
            _ = bytes(out)  # Twisted's write() takes bytes only
        return 16 * RECORD

    print(
        f"TLS 1.3 seal only, AES-128-GCM: encrypt+concat {rate(concat, seconds):.0f}"
        f" MB/s, encrypt_into+bytes() {rate(into, seconds):.0f} MB/s"
    )


def profile() -> None:
    label, factory, _, key_length = SUITES[0]
    sender, receiver = pair(factory, key_length)
    payload = os.urandom(RECORD)

    def loop() -> None:
        for _ in range(20000):
            sender.send(APP, payload)
            for wire in sender.pending_output():
                receiver.feed(wire)
            receiver.next_record()

    profiler = cProfile.Profile()
    profiler.runcall(loop)
    print(f"\nprofile of 20000 seal+open, {label}:")
    pstats.Stats(profiler).sort_stats("tottime").print_stats(12)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=0.6, help="per measurement")
    parser.add_argument("--profile", action="store_true", help="cProfile the loop")
    args = parser.parse_args()
    print(f"16 KiB records, MB/s of plaintext (Python {sys.version.split()[0]})")
    for label, factory, aead_class, key_length in SUITES:
        bench_suite(label, factory, aead_class, key_length, args.seconds)
    print("receive side, CPU time per 16 KiB record (fed in 64 KiB chunks):")
    for label, factory, aead_class, key_length in SUITES:
        bench_receive(label, factory, aead_class, key_length, args.seconds)
    bench_framing_variants(args.seconds)
    if args.profile:
        profile()


if __name__ == "__main__":
    main()
