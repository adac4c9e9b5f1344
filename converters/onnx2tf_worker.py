"""Subprocess worker: run onnx2tf on one ONNX file and describe what it wrote.

Standalone on purpose (stdlib + onnx2tf + tensorflow + ai_edge_litert, no onnxpipe imports) so it
runs in a clean process: onnx2tf keeps global TensorFlow state, prints heavily, and converts one
model per process most reliably.

Served with the worker protocol (:mod:`onnxpipe.models.wire`: ``python wire.py
onnx2tf_worker.py``), one request per process. A ``convert`` request (the default) holds ``onnx`` (a
private copy: onnx2tf rewrites its input), ``out_dir`` and ``options`` (extra keyword arguments of
``onnx2tf.convert``); the process runs in the request's folder, which the caller has stocked with
onnx2tf's calibration/test-image file, so onnx2tf never downloads it. A ``quantize`` request holds
``saved_model`` and ``outputs`` (precision -> .tflite path), with the calibration samples (input
name -> array) as the request's arrays, and runs :mod:`saved_model_to_tflite`. The reply lists the
SavedModel signature and each .tflite file's input/output tensors (name, shape with -1 for dynamic
axes, dtype); a failure is the exception onnx2tf raised, carried back by the protocol.
"""

import os

from tf_describe import describe_saved_model, describe_tflite  # sibling files, stdlib-only at import


def _quantize(req, calibration):
    """``mode: quantize``: SavedModel -> integer TFLite files, calibrated on the request's arrays."""
    from saved_model_to_tflite import convert  # a sibling file: this script runs without onnxpipe

    files = {}
    for precision, dest in req["outputs"].items():
        convert(req["saved_model"], dest, precision, calibration)
        files[os.path.basename(dest)] = describe_tflite(dest)
    return {"tflite": files}


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
        "onnx2tf_version": getattr(onnx2tf, "__version__", "unknown"),
        "saved_model": describe_saved_model(req["out_dir"]),
        "tflite": files,
    }


def handle(req, arrays, emit):
    """One request: ``mode`` ``convert`` (the default) or ``quantize``."""
    return _quantize(req, arrays) if req.get("mode") == "quantize" else _convert(req)
