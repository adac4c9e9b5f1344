"""Helpers shared by the bench scripts (run as ``python bench/<script>.py``; not a package)."""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def ratio_line(name: str, a_s: float, b_s: float) -> str:
    """The line every ratio is printed as: ``name: ratio (a ms / b ms)``."""
    return f"{name}: {a_s / b_s:.2f} ({1000 * a_s:.3f} ms / {1000 * b_s:.3f} ms)"


def wall(cmd: list[str], cwd: Path | None = None, env: dict | None = None) -> float:
    """Seconds one command takes, start to exit; it must succeed."""
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(map(str, cmd))} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return seconds


def median_alternating(a, b, rounds: int) -> tuple[float, float]:
    """Median seconds of ``a()`` and ``b()``, run alternately so that machine load hits both alike."""
    ta, tb = [], []
    for _ in range(rounds):
        ta.append(a())
        tb.append(b())
    return statistics.median(ta), statistics.median(tb)


def load_line() -> str:
    """The machine's load, to print beside timings."""
    import os

    one, five, _ = os.getloadavg()
    return f"machine: {os.cpu_count()} CPUs, load average {one:.2f} (1 min) {five:.2f} (5 min)"
