"""Our TFLite fp32 and int8 vs ONNX Runtime vs PyTorch vs TensorFlow.js, same model, inputs and threads.

Usage: python bench/runtimes.py RUN_DIR [RUN_DIR ...] [--threads N] [--iters N]
Also compares each converter route's fp32 TFLite with the first route's, and their conversion times, where
``onnxpipe convert RUN/checkpoint.pt --compare-backends`` has written ``RUN/backends/``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from _common import load_line, ratio_line


def main() -> None:
    """Print the runtime ratios for each run directory."""
    parser = argparse.ArgumentParser()
    parser.add_argument("runs", nargs="+")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--iters", type=int, default=200)
    args = parser.parse_args()

    from onnxpipe.pipeline.rundir import RunDir
    from onnxpipe.pipeline.stages import run_dir_artifacts
    from onnxpipe.validation.bench import BenchOptions, bench

    print(load_line())
    runtimes = ("pytorch", "onnxruntime", "ai-edge-litert", "tfjs-cpu", "tfjs-wasm", "tfjs-browser")
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
        tfjs = {rt: p50.get(("tfjs", rt)) for rt in ("tfjs-cpu", "tfjs-wasm", "tfjs-browser")}
        for rt, seconds in tfjs.items():  # TensorFlow.js's backends beside the desktop runtimes
            if seconds and fp32:
                print(ratio_line(f"{model} {rt} vs tflite_fp32", seconds, fp32))
            elif not seconds:
                print(
                    f"{model} {rt}: skipped (no tfjs/ run on it; convert with --to ...,tfjs and make setup-tfjs)"
                )
        if tfjs["tfjs-wasm"] and tfjs["tfjs-cpu"]:
            print(ratio_line(f"{model} tfjs-wasm vs tfjs-cpu", tfjs["tfjs-wasm"], tfjs["tfjs-cpu"]))
        backend_ratios(run, model, options)


def backend_ratios(run: str, model: str, options) -> None:
    """Each route's fp32 TFLite vs the first route's (latency, same runtime and inputs), and convert times.

    The routes are the registered ones (``onnxpipe routes``); reads ``RUN/backends/<route>/``, which
    ``onnxpipe convert --compare-backends`` writes.
    """
    import dataclasses

    from onnxpipe.converters.route import ROUTES
    from onnxpipe.pipeline.rundir import RunDir
    from onnxpipe.validation.bench import bench

    first, *others = ROUTES.names()
    for other in others:
        name = f"{model} {first} vs {other}"
        reason = ROUTES.get(other).unavailable_reason()
        if reason:
            print(f"{name}: skipped ({reason})")
            continue
        folders = {b: Path(run) / "backends" / b for b in (first, other)}
        files = {b: f / "model_fp32.tflite" for b, f in folders.items()}
        if not all(p.is_file() for p in files.values()):
            print(f"{name}: skipped (run `onnxpipe convert {run}/checkpoint.pt --compare-backends`)")
            continue
        litert = dataclasses.replace(options, runtimes=("ai-edge-litert",))
        p50 = {}
        for backend, path in files.items():
            doc = bench([RunDir(folders[backend]).artifact(path)], None, litert)
            p50[backend] = doc["results"][0]["p50_ms"] / 1000
        print(ratio_line(f"{model} tflite_fp32 {first} vs {other}", p50[first], p50[other]))
        seconds = {b: RunDir(f).manifest().stages["convert"].seconds for b, f in folders.items()}
        print(ratio_line(f"{model} convert {first} vs {other}", seconds[first], seconds[other]))


if __name__ == "__main__":
    main()
