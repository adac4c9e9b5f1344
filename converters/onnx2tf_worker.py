"""Subprocess worker: run onnx2tf on one ONNX file and describe what it wrote.

Standalone on purpose (stdlib + onnx2tf + tensorflow + ai_edge_litert, no onnxpipe imports) so it
runs in a clean process: onnx2tf keeps global TensorFlow state, prints heavily, and converts one
model per process most reliably.

Protocol: ``python onnx2tf_worker.py REQUEST.json RESULT.json``. A ``convert`` request (the
default) holds ``onnx`` (a private copy: onnx2tf rewrites its input), ``out_dir`` and ``options``
(extra keyword arguments of ``onnx2tf.convert``); the process runs in the request's folder, which
the caller has stocked with onnx2tf's calibration/test-image file, so onnx2tf never downloads it.
A ``quantize`` request holds ``saved_model``, ``outputs`` (precision -> .tflite path) and
``calibration`` (input name -> .npy path) and runs :mod:`saved_model_to_tflite`. The result lists
the SavedModel signature and each .tflite file's input/output tensors (name, shape with -1 for
dynamic axes, dtype).
"""

import os
import sys

from tf_describe import describe_saved_model, describe_tflite  # sibling files, stdlib-only at import
from worker_protocol import serve


def _quantize(req):
    """``mode: quantize``: SavedModel -> integer TFLite files, calibration arrays from .npy files."""
    import numpy as np
    from saved_model_to_tflite import convert  # a sibling file: this script runs without onnxpipe

    calibration = {name: np.load(path) for name, path in req.get("calibration", {}).items()}
    files = {}
    for precision, dest in req["outputs"].items():
        convert(req["saved_model"], dest, precision, calibration)
        files[os.path.basename(dest)] = describe_tflite(dest)
    return {"ok": True, "tflite": files}


def _convert(req):
    """Default mode: ONNX -> SavedModel and TFLite fp32/fp16 with onnx2tf."""
    import onnx2tf

    onnx2tf.convert(
        input_onnx_file_path=req["onnx"],
        output_folder_path=req["out_dir"],
        output_signaturedefs=True,
        non_verbose=True,
        **req.get("options", {}),
    )
    files = {}
    for name in sorted(os.listdir(req["out_dir"])):
        if name.endswith(".tflite"):
            files[name] = describe_tflite(os.path.join(req["out_dir"], name))
    return {
        "ok": True,
        "onnx2tf_version": getattr(onnx2tf, "__version__", "unknown"),
        "saved_model": describe_saved_model(req["out_dir"]),
        "tflite": files,
    }


def _handle(req):
    return _quantize(req) if req.get("mode") == "quantize" else _convert(req)


def main(request_path, result_path):
    """Serve the request (``mode``: ``convert``, the default, or ``quantize``); write the result JSON."""
    return serve(request_path, result_path, _handle)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
