"""The planner's cost: ``convert --backend auto`` against the single route it kept, in one run.

For each run directory's checkpoint, times (median of ``--rounds``, alternating):
- ``onnxpipe convert CKPT --backend auto`` (the planner: routes in order, each converted and
  validated, until every artifact passed), and
- ``onnxpipe convert CKPT --backend <the route auto kept>`` followed by ``onnxpipe validate`` (what a
  user who already knew the route would run to get the same proof).
Goal: at most 1.3x when the first route passes. Then each attempt's seconds and peak memory, as
the planner recorded them in ``backends.json``.

Usage: python bench/planner.py RUN_DIR [RUN_DIR ...] [--rounds N]
"""

from __future__ import annotations

import argparse
import functools
import json
import shutil
import sys
import tempfile
from pathlib import Path

from _common import load_line, median_alternating, ratio_line, wall

ONNXPIPE = [sys.executable, "-m", "onnxpipe.pipeline"]


def _route_then_validate(convert, out: Path, route: str) -> float:
    return convert(out, route) + wall([*ONNXPIPE, "validate", str(out), "--force"])


def main() -> None:
    """Print the planner's time ratio and its attempts for each run directory."""
    parser = argparse.ArgumentParser()
    parser.add_argument("runs", nargs="+")
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    print(load_line())
    for run in map(Path, args.runs):
        with tempfile.TemporaryDirectory(prefix="onnxpipe-bench-planner-") as tmp:
            auto_out, single_out = Path(tmp) / "auto", Path(tmp) / "single"
            for out in (auto_out, single_out):  # each its own run directory, validated against the checkpoint
                out.mkdir()
                shutil.copyfile(run / "checkpoint.pt", out / "checkpoint.pt")

            def convert(out: Path, backend: str) -> float:
                cmd = [*ONNXPIPE, "convert", str(out / "checkpoint.pt"), "--precision", "fp32", "--force"]
                return wall([*cmd, "--backend", backend])

            convert(auto_out, "auto")  # which route does auto keep?
            table = json.loads((auto_out / "backends.json").read_text())
            kept = sorted({r["backend"] for r in table["rows"] if r["kept"]})
            if len(kept) != 1:
                print(f"{run.name}: skipped (auto kept artifacts from {kept or 'no route'}, not one route)")
                continue
            route = kept[0]

            planner_s, single_s = median_alternating(
                functools.partial(convert, auto_out, "auto"),
                functools.partial(_route_then_validate, convert, single_out, route),
                args.rounds,
            )
            print(ratio_line(f"{run.name} planner (auto) vs {route} + validate", planner_s, single_s))
            table = json.loads((auto_out / "backends.json").read_text())
            attempts = {}
            for r in table["rows"]:
                attempts.setdefault(r["backend"], r)
            for backend, r in attempts.items():
                peak = f"{r['peak_memory'] / 2**20:.0f} MB" if r.get("peak_memory") else "n/a"
                print(
                    f"{run.name} attempt {backend}: {r['status']}, {r['seconds']:.1f} s, peak memory {peak}"
                )
            for backend, why in table.get("not_tried", {}).items():
                print(f"{run.name} attempt {backend}: not tried ({why})")


if __name__ == "__main__":
    main()
