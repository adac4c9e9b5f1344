"""The inference `onnxpipe validate RUN --devices cpu` performs, straight on the frameworks.

Same artifacts, runtimes, batch sizes and number of calls as validate, with none of its work
around them (no input checks, metrics, reports, manifest). `bench/overhead.py` times this script
against `onnxpipe validate` to measure what the toolkit adds.

Usage: python bench/raw_inference.py RUN_DIR
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np


def batches(n: int, main: int = 32, sweep=(1, 2, 7), sweep_inputs: int = 14) -> list[tuple[int, int]]:
    """(start, stop) of every call validate makes: all inputs at ``main``, the first batch again, the sweep."""
    calls = [(i, min(i + main, n)) for i in range(0, n, main)] + [(0, min(main, n))]
    for size in sweep:
        calls += [(i, min(i + size, sweep_inputs)) for i in range(0, sweep_inputs, size)]
    return calls


def main(run: Path) -> None:
    """Run every artifact of ``run`` on every runtime validate uses, with validate's calls."""
    import onnxruntime as ort
    import tensorflow as tf
    import torch
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    from onnxpipe.models.checkpoint import load_checkpoint, load_model

    ckpt = load_checkpoint(run / "checkpoint.pt")
    shape = [d for d in ckpt.spec.inputs[0].shape[1:]]
    x = np.random.default_rng(0).random((430, *shape), dtype=np.float32)  # 360 samples + 64 random + 6 edge
    x_last = np.ascontiguousarray(x.transpose(0, 2, 3, 1)) if len(shape) == 3 else x
    calls = batches(len(x))

    model = load_model(ckpt)
    with torch.no_grad():
        for a, b in calls:
            model(torch.from_numpy(x[a:b]))

    session = ort.InferenceSession(str(run / "model.onnx"), providers=["CPUExecutionProvider"])
    for a, b in calls:
        session.run(None, {"input": x[a:b]})

    fn = tf.saved_model.load(str(run / "saved_model")).signatures["serving_default"]
    for a, b in calls:
        fn(input=tf.constant(x_last[a:b]))

    def litert(path, resolver):
        return Interpreter(model_path=str(path), num_threads=1, experimental_op_resolver_type=resolver)

    def tflite(path):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return tf.lite.Interpreter(model_path=str(path), num_threads=1)

    for path in sorted(run.glob("model_*.tflite")):
        for make in (
            lambda p: litert(p, OpResolverType.AUTO),
            lambda p: litert(p, OpResolverType.BUILTIN_REF),
            tflite,
        ):
            it = make(path)
            inp, out = it.get_input_details()[0], it.get_output_details()[0]
            current = None
            for a, b in calls:
                if current != b - a:
                    it.resize_tensor_input(inp["index"], [b - a, *x_last.shape[1:]])
                    it.allocate_tensors()
                    current = b - a
                it.set_tensor(inp["index"], x_last[a:b])
                it.invoke()
                it.get_tensor(out["index"])


if __name__ == "__main__":
    main(Path(sys.argv[1]))
