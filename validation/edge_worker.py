"""Worker for the standalone edge interpreter (tflite-runtime), run inside ``.venv-edge``.

Standalone: numpy and tflite_runtime only (no TensorFlow, no onnxpipe), so it proves an artifact
runs where TensorFlow is absent. One model per process; the session is created once and reused.

Protocol on stdin/stdout, each message an 8-byte little-endian length then the payload:
1. parent -> worker: JSON ``{"model": path, "threads": n}``; worker -> parent: JSON
   ``{"ok": true, "version": ..., "inputs": [...], "outputs": [...]}`` or ``{"ok": false, "error": ...}``.
2. then repeatedly: parent -> worker: an ``.npz`` of inputs by tensor name; worker -> parent: an
   ``.npz`` of outputs by tensor name, or JSON ``{"ok": false, "error": ...}``.
"""

import io
import json
import struct
import sys


def _read(stream):
    header = stream.read(8)
    if len(header) < 8:
        return None
    (size,) = struct.unpack("<Q", header)
    return stream.read(size)


def _write(stream, payload):
    stream.write(struct.pack("<Q", len(payload)) + payload)
    stream.flush()


def main():
    """Serve one model until stdin closes."""
    import numpy as np

    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # anything printed goes to stderr, never into the protocol
    hello = json.loads(_read(stdin))
    try:
        import tflite_runtime
        from tflite_runtime.interpreter import Interpreter

        it = Interpreter(model_path=hello["model"], num_threads=hello.get("threads") or 1)
        it.allocate_tensors()
    except Exception as e:  # the load error names the op the runtime lacks
        _write(stdout, json.dumps({"ok": False, "error": f"{type(e).__name__}: {e}"}).encode())
        return 0
    inputs = {d["name"]: d for d in it.get_input_details()}
    outputs = {d["name"]: d for d in it.get_output_details()}

    def describe(d):
        return {
            "name": d["name"],
            "shape": [int(x) for x in d["shape_signature"]],
            "dtype": d["dtype"].__name__,
            "quantization": [float(d["quantization"][0]), int(d["quantization"][1])],
        }

    _write(
        stdout,
        json.dumps(
            {
                "ok": True,
                "version": getattr(tflite_runtime, "__version__", "unknown"),
                "inputs": [describe(d) for d in inputs.values()],
                "outputs": [describe(d) for d in outputs.values()],
            }
        ).encode(),
    )
    shapes = {k: tuple(d["shape"]) for k, d in inputs.items()}
    while (payload := _read(stdin)) is not None:
        try:
            feeds = dict(np.load(io.BytesIO(payload)))
            if any(shapes[k] != v.shape for k, v in feeds.items()):
                for k, v in feeds.items():
                    it.resize_tensor_input(inputs[k]["index"], list(v.shape), strict=True)
                it.allocate_tensors()
                shapes = {k: v.shape for k, v in feeds.items()}
            for k, v in feeds.items():
                it.set_tensor(inputs[k]["index"], v)
            it.invoke()
            buf = io.BytesIO()
            np.savez(buf, **{k: it.get_tensor(d["index"]) for k, d in outputs.items()})
            _write(stdout, buf.getvalue())
        except Exception as e:
            _write(stdout, json.dumps({"ok": False, "error": f"{type(e).__name__}: {e}"}).encode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
