"""How validation cost grows: with the number of samples, and with the model's size.

Runs in one process (imports and sessions warm), so the slope is the per-sample cost and the
intercept the fixed cost of a validation (session creation, reports).
Usage: python bench/scaling.py RUN_DIR [RUN_DIR ...]
"""

from __future__ import annotations

import sys
import time

import numpy as np
from _common import load_line, ratio_line

SAMPLES = (1, 10, 100, 1000)


def validate_seconds(run: str, samples: int) -> float:
    """Seconds of one in-process validation of the run's ONNX and fp32 TFLite on ``samples`` inputs."""
    from onnxpipe.pipeline.rundir import RunDir
    from onnxpipe.pipeline.stages import run_dir_artifacts
    from onnxpipe.validation.inputs import InputConfig
    from onnxpipe.validation.parity import ValidateOptions, validate

    reference, candidates = run_dir_artifacts(RunDir(run))
    picked = [c for c in candidates if c.label in ("model.onnx", "model_fp32.tflite")]
    options = ValidateOptions(
        inputs=InputConfig(samples=0, random=samples, edge=False, sweep=()),
        devices=("cpu",),
        runtimes=("pytorch", "onnxruntime", "ai-edge-litert"),
    )
    t0 = time.perf_counter()
    validate(reference, picked, options)
    return time.perf_counter() - t0


def main(runs: list[str]) -> None:
    """Print the slope against samples for each run, then the growth against model size."""
    from onnxpipe.validation.macs import count_macs

    print(load_line())
    per_sample = {}
    for run in runs:
        validate_seconds(run, 1)  # warm: imports, first session
        times = [validate_seconds(run, n) for n in SAMPLES]
        slope, intercept = np.polyfit(SAMPLES, times, 1)
        macs = count_macs(f"{run}/model.onnx")
        per_sample[run] = (slope, macs)
        detail = ", ".join(f"{n}: {t * 1000:.0f} ms" for n, t in zip(SAMPLES, times, strict=True))
        print(
            f"{run} validate time vs samples: slope {slope * 1000:.3f} ms/sample, fixed {intercept * 1000:.0f} ms ({detail})"
        )
        print(ratio_line(f"{run} validate 1000 vs 100 samples", times[3], times[2]))
    if len(runs) > 1:
        (a, (sa, ma)), (b, (sb, mb)) = (
            sorted(per_sample.items(), key=lambda kv: kv[1][1])[-1],
            min(per_sample.items(), key=lambda kv: kv[1][1]),
        )
        print(ratio_line(f"validate per-sample cost {a} vs {b} ({ma / mb:.0f}x the MACs)", sa, sb))


if __name__ == "__main__":
    main(sys.argv[1:])
