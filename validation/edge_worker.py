"""Worker for the standalone edge interpreter (tflite-runtime), run inside ``.venv-edge``.

Standalone: numpy and tflite_runtime only (no TensorFlow, no onnxpipe), so it proves an artifact
runs where TensorFlow is absent. One model per process; the interpreter is created once and reused.

Served with the worker protocol (:mod:`onnxpipe.models.wire`: ``python wire.py edge_worker.py``):
1. ``{"op": "open", "model": path, "threads": n}``: the reply holds the runtime's version and the
   model's input/output tensors; a model the interpreter cannot load fails with the error kind
   ``not-loadable`` (the message names the op it lacks).
2. then ``{"op": "run"}`` with the inputs (by tensor name, already quantized) as its arrays: the
   reply's arrays are the outputs by tensor name, and ``seconds`` is the time of ``invoke`` alone.
"""

import time


class NotLoadable(Exception):
    """The interpreter cannot load the model."""

    kind = "not-loadable"


_state = {}


def _describe(d):
    return {
        "name": d["name"],
        "shape": [int(x) for x in d["shape_signature"]],
        "dtype": d["dtype"].__name__,
        "quantization": [float(d["quantization"][0]), int(d["quantization"][1])],
    }


def _open(req):
    import tflite_runtime
    from tflite_runtime.interpreter import Interpreter

    try:
        it = Interpreter(model_path=req["model"], num_threads=req.get("threads") or 1)
        it.allocate_tensors()
    except Exception as e:  # the load error names the op the runtime lacks
        raise NotLoadable(f"{type(e).__name__}: {e}") from e
    inputs = {d["name"]: d for d in it.get_input_details()}
    outputs = {d["name"]: d for d in it.get_output_details()}
    _state.update(
        it=it, inputs=inputs, outputs=outputs, shapes={k: tuple(d["shape"]) for k, d in inputs.items()}
    )
    return {
        "version": getattr(tflite_runtime, "__version__", "unknown"),
        "inputs": [_describe(d) for d in inputs.values()],
        "outputs": [_describe(d) for d in outputs.values()],
    }


def _run(feeds):
    it, inputs, outputs = _state["it"], _state["inputs"], _state["outputs"]
    if any(_state["shapes"][k] != v.shape for k, v in feeds.items()):
        for k, v in feeds.items():
            it.resize_tensor_input(inputs[k]["index"], list(v.shape), strict=True)
        it.allocate_tensors()
        _state["shapes"] = {k: v.shape for k, v in feeds.items()}
    for k, v in feeds.items():
        it.set_tensor(inputs[k]["index"], v)
    t0 = time.perf_counter()
    it.invoke()
    seconds = time.perf_counter() - t0
    return {"seconds": seconds}, {k: it.get_tensor(d["index"]) for k, d in outputs.items()}


def handle(req, arrays, emit):
    """``op`` ``open`` (once), then ``run`` per call."""
    if req["op"] == "open":
        return _open(req)
    if "it" not in _state:
        raise RuntimeError("run before open")
    return _run(arrays)
