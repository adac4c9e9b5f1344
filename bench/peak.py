"""The machine's measured peak (a large fp32 matmul) beside the GFLOP/s the artifacts achieve.

Usage: python bench/peak.py RUN_DIR [RUN_DIR ...]   (after `onnxpipe bench RUN_DIR`)
"""

from __future__ import annotations

import json
import sys
import time

from _common import ROOT, load_line


def peak_gflops(threads: int, n: int = 1024, reps: int = 20) -> float:
    """fp32 GFLOP/s of an n x n matmul in PyTorch on ``threads`` threads (best of ``reps``)."""
    import torch

    torch.set_num_threads(threads)
    a, b = torch.rand(n, n), torch.rand(n, n)
    a @ b
    best = min(_timed(lambda: a @ b) for _ in range(reps))
    return 2 * n**3 / best / 1e9


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main(run_dirs: list[str]) -> None:
    """Print the peak and each benchmarked artifact's share of it."""
    print(load_line())
    peak = peak_gflops(threads=1)
    print(f"peak_matmul_fp32 (1 thread): {peak:.1f} GFLOP/s")
    for run in run_dirs:
        path = ROOT / run / "bench.json"  # an absolute RUN_DIR replaces ROOT
        if not path.is_file():
            print(f"{run}: no bench.json (run `onnxpipe bench {run}` first)")
            continue
        doc = json.loads(path.read_text())
        for r in doc["results"]:
            if r.get("gflops") and doc["options"]["threads"] == 1:
                print(
                    f"{doc['model']} {r['artifact']} on {r['runtime']} vs peak: {r['gflops'] / peak:.3f} ({r['gflops']:.2f} GFLOP/s / {peak:.1f} GFLOP/s)"
                )


if __name__ == "__main__":
    main(sys.argv[1:])
