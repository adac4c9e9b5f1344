"""What the toolkit adds on top of the tools it drives, measured side by side in one run.

- `onnxpipe convert` vs calling onnx2tf directly on the same ONNX file (same outputs: SavedModel,
  TFLite fp32 and fp16).
- `onnxpipe validate` vs the raw inference of the runtimes it runs (bench/raw_inference.py: the
  same artifacts, runtimes, batches and calls, without checks, metrics or reports); and validate
  with its runtimes in a host process (the default: a crash is a result) vs `--in-process`.

Both sides are whole processes (start-up and imports included), run alternately, median of N.
Usage: python bench/overhead.py RUN_DIR [--rounds N]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

from _common import ROOT, load_line, median_alternating, ratio_line, wall

#: What raw_inference.py runs, and tflite-runtime (which it does not: validate pays for it): a run
#: with tfjs artifacts is measured on the same runtimes as one without.
RUNTIMES = "pytorch,onnxruntime,tensorflow,ai-edge-litert,ai-edge-litert-ref,tf.lite,tflite-runtime"


def main() -> None:
    """Print the convert and validate overhead ratios."""
    parser = argparse.ArgumentParser()
    parser.add_argument("run")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    run = Path(args.run).resolve()
    python = sys.executable
    env = {**os.environ, "PATH": os.pathsep.join([str(Path(python).parent), os.environ.get("PATH", "")])}
    print(load_line())
    with tempfile.TemporaryDirectory() as tmp:
        ours, raw = Path(tmp) / "ours", Path(tmp) / "raw"
        ours.mkdir()
        raw.mkdir()
        shutil.copyfile(run / "model.onnx", ours / "model.onnx")

        def convert_ours() -> float:
            cmd = [python, "-m", "onnxpipe.pipeline", "convert", str(ours / "model.onnx"), "--out", str(ours)]
            return wall([*cmd, "--precision", "fp32,fp16", "--force"], cwd=ROOT, env=env)

        def convert_raw() -> float:
            shutil.copyfile(run / "model.onnx", raw / "model.onnx")  # onnx2tf rewrites its input
            shutil.rmtree(raw / "out", ignore_errors=True)
            return wall(
                [str(Path(python).parent / "onnx2tf"), "-i", "model.onnx", "-o", "out", "-osd", "-n"],
                cwd=raw,
                env=env,
            )

        a, b = median_alternating(convert_ours, convert_raw, args.rounds)
        print(ratio_line("onnxpipe convert vs raw onnx2tf", a, b))

        out = Path(tmp) / "report"

        validate = [python, "-m", "onnxpipe.pipeline", "validate", str(run), "--devices", "cpu"]
        validate += ["--runtimes", RUNTIMES, "--out", str(out), "--force"]

        def validate_ours() -> float:
            return wall(validate, cwd=ROOT, env=env)

        def validate_raw() -> float:
            return wall(
                [python, str(Path(__file__).with_name("raw_inference.py")), str(run)], cwd=ROOT, env=env
            )

        def validate_in_process() -> float:
            return wall([*validate, "--in-process"], cwd=ROOT, env=env)

        a, b = median_alternating(validate_ours, validate_raw, args.rounds)
        print(ratio_line("onnxpipe validate vs raw inference of its runtimes", a, b))
        c, _ = median_alternating(validate_in_process, lambda: 0.0, args.rounds)
        print(ratio_line("onnxpipe validate (runtimes in a host process) vs --in-process", a, c))


if __name__ == "__main__":
    main()
