"""A CPU-time stack sampler for the benches: where a process spends its CPU.

cProfile adds a fixed cost to every Python call, so it makes Python look
dearer than C and cannot say what a handshake costs without it.  This
sampler adds nothing per call: every ``interval`` seconds of *CPU* time
(``ITIMER_PROF``: user and system time of the process, so a process
waiting in ``epoll`` is never sampled) the kernel sends ``SIGPROF``, and
the handler walks the Python stack that was running.  CPython runs the
handler after the current bytecode or after the C function being called
returns, so time in C lands on the Python function that called it.

Each sample counts once for the innermost function ("own") and once for
every distinct function on the stack ("inclusive").  A function's CPU
time is then its count times ``interval``.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections import Counter
from collections.abc import Callable
from types import FrameType


def function_key(filename: str, line: int, qualname: str) -> str:
    """A short, stable name: ``package/module.py:line(qualname)``."""
    parts = filename.replace(os.sep, "/").split("/")
    short = "/".join(parts[-2:])
    return f"{short}:{line}({qualname})"


class StackSampler:
    """Counts the running Python stack every ``interval`` s of CPU time."""

    def __init__(self, interval: float = 0.0002) -> None:
        self.interval = interval
        self.own: Counter[str] = Counter()
        self.inclusive: Counter[str] = Counter()
        self.samples = 0
        self.cpu_started = 0.0
        self.cpu_seconds = 0.0
        self._keys: dict[object, str] = {}

    def _key(self, code: object) -> str:
        key = self._keys.get(code)
        if key is None:
            key = function_key(
                code.co_filename,  # type: ignore[attr-defined]
                code.co_firstlineno,  # type: ignore[attr-defined]
                code.co_qualname,  # type: ignore[attr-defined]
            )
            self._keys[code] = key
        return key

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.samples += 1
        seen: set[str] = set()
        if frame is not None:
            self.own[self._key(frame.f_code)] += 1
        while frame is not None:
            key = self._key(frame.f_code)
            if key not in seen:
                seen.add(key)
                self.inclusive[key] += 1
            frame = frame.f_back

    def start(self) -> None:
        self.cpu_started = time.process_time()
        signal.signal(signal.SIGPROF, self._on_signal)
        signal.setitimer(signal.ITIMER_PROF, self.interval, self.interval)

    def stop(self) -> None:
        signal.setitimer(signal.ITIMER_PROF, 0, 0)
        signal.signal(signal.SIGPROF, signal.SIG_DFL)
        self.cpu_seconds += time.process_time() - self.cpu_started

    def dump(self, path: str) -> None:
        with open(path, "w", encoding="utf-8") as f:
            json.dump(
                {
                    "interval": self.interval,
                    "samples": self.samples,
                    "cpu_seconds": self.cpu_seconds,
                    "own": dict(self.own),
                    "inclusive": dict(self.inclusive),
                },
                f,
            )


def areas(
    path: str, operations: float, classify: Callable[[str], str]
) -> list[tuple[str, float]]:
    """Own CPU µs per operation summed by ``classify(function key)``."""
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    scale = data["cpu_seconds"] / max(data["samples"], 1) * 1e6 / max(operations, 1)
    totals: Counter[str] = Counter()
    for key, count in data["own"].items():
        totals[classify(key)] += count * scale
    return totals.most_common()


def report(path: str, operations: float, label: str, top: int = 40) -> str:
    """The ``top`` functions by inclusive and own CPU µs per operation."""
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    # Scale counts by the measured CPU time rather than by the interval: the
    # timer's granularity makes the interval only approximately the period.
    per_sample = data["cpu_seconds"] / max(data["samples"], 1)
    scale = per_sample * 1e6 / max(operations, 1)
    per_operation = data["cpu_seconds"] * 1e6 / max(operations, 1)
    lines = [
        f"{label}: {data['samples']} samples, {per_operation:,.0f}"
        f" µs CPU per operation over {operations:,.0f} operations",
        "  inclusive µs/op   own µs/op  function",
    ]
    for key, count in Counter(data["inclusive"]).most_common(top):
        own = data["own"].get(key, 0)
        lines.append(f"  {count * scale:15.1f} {own * scale:11.1f}  {key}")
    lines.append("  -- by own time --")
    for key, count in Counter(data["own"]).most_common(top // 2):
        lines.append(f"  {'':15} {count * scale:11.1f}  {key}")
    return "\n".join(lines)
