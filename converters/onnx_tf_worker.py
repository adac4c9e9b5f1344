"""Subprocess worker: run onnx-tf 1.10 on one ONNX file, in the legacy environment (``.venv-legacy``).

Standalone on purpose (stdlib + onnx + onnx_tf + tensorflow 2.15, and its sibling files; no
onnxpipe imports): onnx-tf cannot live beside TensorFlow 2.21, and it converts one model per
process cleanly (a second ``prepare``/``export_graph`` in the same process fails), so each
conversion gets a fresh process.

Served with the worker protocol (:mod:`onnxpipe.models.wire`: ``python wire.py
onnx_tf_worker.py``). A ``versions`` request answers the versions of the packages that shape its
artifacts. A ``convert`` request (the default; one per process) holds ``onnx`` (a private copy
whose graph input/output names the caller has already made safe for onnx-tf), ``saved_model`` (the
folder to write) and ``tflite`` (precision -> .tflite path), with the calibration samples
(SavedModel input name -> array, for int8/int16x8) as its arrays. The reply holds the SavedModel
signature, each written .tflite file's tensors, and ``failed`` (precision -> reason) for TFLite
files the converter could not make or that do not run one inference (onnx-tf's LSTM, for one):
those files are removed.
"""

import os


class MissingHandlers(Exception):
    """onnx-tf has no handler for some of the graph's ops (at their opset)."""

    kind = "missing-handlers"


def _versions(names=("onnx-tf", "tensorflow", "onnx")):
    from package_versions import package_versions  # a sibling file

    return package_versions(names)


def _convert(req, calibration):
    import onnx
    from onnx_tf.backend import prepare
    from onnx_tf.opset_version import backend_opset_version
    from onnx_tf_compat import missing_handlers  # sibling files: this script runs without onnxpipe
    from onnx_tf_handlers import install
    from saved_model_to_tflite import convert
    from tf_describe import describe_saved_model, describe_tflite

    install()  # Squeeze/Unsqueeze-13 and Reshape-19, which onnx-tf 1.10 lacks
    model = onnx.load(req["onnx"])
    missing = missing_handlers(model, backend_opset_version)
    if missing:
        raise MissingHandlers(f"onnx-tf 1.10 has no handler for {', '.join(missing)}")
    prepare(model).export_graph(req["saved_model"])
    files, failed = {}, {}
    for precision, dest in req.get("tflite", {}).items():
        try:
            convert(req["saved_model"], dest, precision, calibration)
        except Exception as e:  # the TFLite converter's error names the op it could not lower
            failed[precision] = f"{type(e).__name__}: {_first_error_line(str(e))}"
        else:
            problem = _does_not_run(dest)
            if problem is None:
                files[os.path.basename(dest)] = describe_tflite(dest)
            else:
                failed[precision] = f"the converted file does not run: {problem}"
        if precision in failed and os.path.exists(dest):
            os.remove(dest)
    return {
        "versions": _versions(),
        "saved_model": describe_saved_model(req["saved_model"]),
        "tflite": files,
        "failed": failed,
    }


def _does_not_run(path):
    """Why a .tflite file cannot run one inference on zeros (``None`` when it can).

    The converter can write a file whose kernels then refuse their shapes (onnx-tf's LSTM at a fixed
    batch: its WHILE body's BATCH_MATMUL fails to prepare), so every file is run once before it is kept.
    """
    import numpy as np
    from tensorflow.lite.python.interpreter import Interpreter

    try:
        it = Interpreter(model_path=path)
        it.allocate_tensors()
        for d in it.get_input_details():
            it.set_tensor(d["index"], np.zeros(d["shape"], dtype=d["dtype"]))
        it.invoke()
    except Exception as e:  # the interpreter reports the node that failed
        return f"{type(e).__name__}: {' '.join(str(e).split())[:400]}"
    return None


def _first_error_line(message):
    """The TFLite converter's first ``error:`` line (its messages run to pages of MLIR locations)."""
    for line in message.splitlines():
        if "error:" in line:
            return line.split("error:", 1)[1].strip()[:400]
    return message.strip().splitlines()[0][:400] if message.strip() else "no message"


def handle(req, arrays, emit):
    """One request: ``mode`` ``convert`` (the default) or ``versions`` (``names``: the packages)."""
    if req.get("mode") == "versions":
        return {"versions": _versions(tuple(req["names"]))}
    return _convert(req, arrays)
