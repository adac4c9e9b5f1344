"""Our TFLite fp32 and int8 vs ONNX Runtime vs PyTorch on the same model, inputs and threads.

Usage: python bench/runtimes.py RUN_DIR [RUN_DIR ...] [--threads N] [--iters N]
Also compares onnx2tf's fp32 TFLite with onnx-tf's, and their conversion times, where
``onnxpipe convert RUN/checkpoint.pt --compare-backends`` has written ``RUN/backends/``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from _common import ROOT, load_line, ratio_line


def main() -> None:
    """Print the runtime ratios for each run directory."""
    parser = argparse.ArgumentParser()
    parser.add_argument("runs", nargs="+")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--iters", type=int, default=200)
    args = parser.parse_args()

    from pipeline.rundir import RunDir
    from pipeline.stages import run_dir_artifacts
    from validation.bench import BenchOptions, bench

    print(load_line())
    runtimes = ("pytorch", "onnxruntime", "ai-edge-litert")
    for run in args.runs:
        reference, candidates = run_dir_artifacts(RunDir(run))
        options = BenchOptions(
            threads=args.threads, iters=args.iters, warmup=max(5, args.iters // 10), runtimes=runtimes
        )
        doc = bench([reference, *candidates], None, options)
        p50 = {
            (r["artifact"], r["runtime"]): r["p50_ms"] / 1000 for r in doc["results"] if r["status"] == "ok"
        }
        model = doc["model"]
        torch_s = p50.get(("checkpoint.pt", "pytorch"))
        ort_s = p50.get(("model.onnx", "onnxruntime"))
        fp32 = p50.get(("model_fp32.tflite", "ai-edge-litert"))
        int8 = p50.get(("model_int8.tflite", "ai-edge-litert"))
        print(f"{model} ({args.threads} thread, batch 1, p50 of {args.iters} calls)")
        if fp32 and ort_s:
            print(ratio_line(f"{model} tflite_fp32 vs onnxruntime", fp32, ort_s))
        if fp32 and torch_s:
            print(ratio_line(f"{model} tflite_fp32 vs pytorch", fp32, torch_s))
        if ort_s and torch_s:
            print(ratio_line(f"{model} onnxruntime vs pytorch", ort_s, torch_s))
        if int8 and fp32:
            print(ratio_line(f"{model} tflite_int8 vs tflite_fp32", int8, fp32))
        if int8 and ort_s:
            print(ratio_line(f"{model} tflite_int8 vs onnxruntime", int8, ort_s))
        if not int8:
            print(f"{model} tflite_int8: skipped (no model_int8.tflite; convert with --precision ...,int8)")
        backend_ratios(run, model, options)


def backend_ratios(run: str, model: str, options) -> None:
    """onnx2tf's fp32 TFLite vs onnx-tf's (latency, same runtime and inputs), and their convert times.

    Reads ``RUN/backends/<backend>/``, which ``onnxpipe convert --compare-backends`` writes.
    """
    import dataclasses

    from pipeline.rundir import RunDir
    from validation.bench import bench

    if not (ROOT / ".venv-legacy").is_dir():
        print(f"{model} onnx2tf vs onnx-tf: skipped (.venv-legacy is not set up, so onnx-tf cannot run here)")
        return
    folders = {b: Path(run) / "backends" / b for b in ("onnx2tf", "onnx-tf")}
    files = {b: f / "model_fp32.tflite" for b, f in folders.items()}
    if not all(p.is_file() for p in files.values()):
        print(
            f"{model} onnx2tf vs onnx-tf: skipped (run `onnxpipe convert {run}/checkpoint.pt --compare-backends`)"
        )
        return
    litert = dataclasses.replace(options, runtimes=("ai-edge-litert",))
    p50 = {}
    for backend, path in files.items():
        doc = bench([RunDir(folders[backend]).artifact(path)], None, litert)
        p50[backend] = doc["results"][0]["p50_ms"] / 1000
    print(ratio_line(f"{model} tflite_fp32 onnx2tf vs onnx-tf", p50["onnx2tf"], p50["onnx-tf"]))
    seconds = {b: RunDir(f).manifest()["stages"]["convert"]["seconds"] for b, f in folders.items()}
    print(ratio_line(f"{model} convert onnx2tf vs onnx-tf", seconds["onnx2tf"], seconds["onnx-tf"]))


if __name__ == "__main__":
    main()
