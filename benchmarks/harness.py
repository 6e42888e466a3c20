"""Measuring helpers shared by the benchmark figures.

Page timings are server-side: a request goes through the whole Django stack (middleware,
session, OTP, scoping, view, template) in-process with the test client, and the clock covers
that call only. Raw-SQL floors run the same rows through psycopg on the same connection.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import statistics
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

RESULTS_DIR = Path(__file__).resolve().parent / "results"


@dataclass
class Timing:
    samples_ms: list[float]

    @property
    def p50(self) -> float:
        return round(statistics.median(self.samples_ms), 2)

    @property
    def p95(self) -> float:
        data = sorted(self.samples_ms)
        return round(data[min(len(data) - 1, int(round(0.95 * (len(data) - 1))))], 2)

    @property
    def p99(self) -> float:
        data = sorted(self.samples_ms)
        return round(data[min(len(data) - 1, int(round(0.99 * (len(data) - 1))))], 2)

    @property
    def noisy(self) -> bool:
        """p95 more than twice the median: say so beside the figure."""
        return self.p95 > 2 * self.p50 + 1


def timed(func: Callable[[int], object], runs: int, warmup: int = 2) -> Timing:
    for i in range(warmup):
        func(i)
    samples = []
    for i in range(runs):
        started = time.perf_counter()
        func(i)
        samples.append((time.perf_counter() - started) * 1000)
    return Timing(samples)


@dataclass
class Figure:
    name: str
    how: str
    ours: dict
    compared_with: str = ""
    theirs: dict = field(default_factory=dict)
    target: str = ""
    met: bool | None = None
    notes: str = ""

    def ratio(self) -> str:
        a, b = self.ours.get("p50"), self.theirs.get("p50")
        if not a or not b:
            return ""
        return f"{b / a:.1f}x" if b >= a else f"{a / b:.2f}x slower"


def machine() -> dict:
    info = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    try:
        import psutil

        info["memory_gib"] = round(psutil.virtual_memory().total / 2**30, 1)
    except ImportError:
        pass
    with contextlib.suppress(OSError, StopIteration):
        info["cpu_model"] = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    try:
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("SHOW server_version")
            info["postgres"] = cursor.fetchone()[0]
    except Exception:  # noqa: BLE001 - machine description is best effort
        pass
    with contextlib.suppress(OSError):
        info["git"] = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
        ).stdout.strip()
    return info


def save(scale: str, figures: list[Figure], extra: dict | None = None) -> Path:
    RESULTS_DIR.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS_DIR / f"{stamp}-{scale}.json"
    payload = {"scale": scale, "machine": machine(), "figures": [asdict(f) for f in figures]}
    if extra:
        payload.update(extra)
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    return path


def render_table(figures: list[Figure]) -> str:
    header = "| figure | ours | compared with | theirs | ratio | target | met |"
    lines = [header, "|---|---|---|---|---|---|---|"]
    for f in figures:
        ours = _fmt(f.ours)
        theirs = _fmt(f.theirs) if f.theirs else "—"
        met = "—" if f.met is None else ("yes" if f.met else "NO")
        lines.append(
            f"| {f.name} | {ours} | {f.compared_with or '—'} | {theirs} | {f.ratio()} | "
            f"{f.target or '—'} | {met} |"
        )
    return "\n".join(lines)


def _fmt(d: dict) -> str:
    if "p50" in d:
        out = f"p50 {d['p50']} ms / p95 {d['p95']} ms"
        if d.get("queries") is not None:
            out += f", {d['queries']} queries"
        if d.get("noisy"):
            out += " (noisy)"
        return out
    return ", ".join(f"{k} {v}" for k, v in d.items())


def timing_dict(t: Timing, **extra) -> dict:
    return {
        "p50": t.p50,
        "p95": t.p95,
        "p99": t.p99,
        "runs": len(t.samples_ms),
        "noisy": t.noisy,
        **extra,
    }
