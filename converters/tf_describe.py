"""Describe what a TensorFlow converter wrote: a SavedModel's signature and a .tflite file's tensors.

Shared by the conversion workers (onnx2tf in the main environment, onnx-tf in the legacy one), which
import it by path: the standard library only at import time, TensorFlow or ai-edge-litert inside.
"""

import os
import re

__all__ = ["describe_saved_model", "describe_tfjs", "describe_tflite"]


def _natural(key):
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", key)]


def describe_saved_model(path):
    """Inputs and outputs of a SavedModel's serving signature, read from saved_model.pb.

    Parsing the protobuf is much faster than loading the model. Keys come in natural order
    (``output_2`` before ``output_10``), which is onnx2tf's output order.
    """
    import tensorflow as tf
    from tensorflow.core.protobuf import saved_model_pb2

    model = saved_model_pb2.SavedModel()
    with open(os.path.join(path, "saved_model.pb"), "rb") as f:
        model.ParseFromString(f.read())
    signature = model.meta_graphs[0].signature_def["serving_default"]

    def spec(name, info):
        dims = [] if info.tensor_shape.unknown_rank else [int(d.size) for d in info.tensor_shape.dim]
        return {"name": name, "shape": dims, "dtype": tf.dtypes.as_dtype(info.dtype).name}

    return {
        "inputs": [spec(k, signature.inputs[k]) for k in sorted(signature.inputs, key=_natural)],
        "outputs": [spec(k, signature.outputs[k]) for k in sorted(signature.outputs, key=_natural)],
    }


def describe_tflite(path):
    """Input and output tensors of a .tflite file (with scale and zero point where quantized)."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:  # the legacy environment has TensorFlow's interpreter only
        from tensorflow.lite.python.interpreter import Interpreter

    it = Interpreter(model_path=path)

    def spec(d):
        return {
            "name": d["name"],
            "shape": [int(x) for x in d["shape_signature"]],
            "dtype": d["dtype"].__name__,
            "quantization": [float(d["quantization"][0]), int(d["quantization"][1])],
        }

    return {
        "inputs": [spec(d) for d in it.get_input_details()],
        "outputs": [spec(d) for d in it.get_output_details()],
    }


#: TensorFlow dtypes in a graph model's signature -> what TensorFlow.js computes them in (it has no
#: int64 or float16 tensors: those are int32 and float32).
_TFJS_DTYPES = {
    "DT_FLOAT": "float32",
    "DT_HALF": "float32",
    "DT_INT32": "int32",
    "DT_INT64": "int32",
    "DT_BOOL": "bool",
}


def describe_tfjs(path):
    """Inputs and outputs of a TensorFlow.js graph model's signature, read from ``model.json``."""
    import json

    with open(os.path.join(path, "model.json")) as f:
        model = json.load(f)
    if model.get("format") != "graph-model":
        raise ValueError(f"model.json is a {model.get('format')!r}, not a graph-model")
    signature = model.get("signature") or {}

    def spec(name, info):
        dims = [int(d.get("size", -1)) for d in (info.get("tensorShape") or {}).get("dim", [])]
        return {"name": name, "shape": dims, "dtype": _TFJS_DTYPES.get(info.get("dtype"), info.get("dtype"))}

    if not signature.get("inputs") or not signature.get("outputs"):
        raise ValueError("model.json has no signature (inputs and outputs)")
    for group in model.get("weightsManifest") or []:  # shards are files of this folder, and only those
        for shard in group.get("paths", []):
            if os.path.basename(shard) != shard or shard in ("", ".", ".."):
                raise ValueError(f"weight shard {shard!r} lies outside the model's folder (refused)")
            if not os.path.isfile(os.path.join(path, shard)):
                raise ValueError(f"weight shard {shard!r} is missing")
    stored = {
        (w.get("quantization") or {}).get("dtype", "float32")
        for group in model.get("weightsManifest") or []
        for w in group.get("weights", [])
        if w.get("dtype") == "float32"
    }
    precision = "uint8" if "uint8" in stored else "fp16" if "float16" in stored else "fp32"
    return {
        **{
            side: [spec(k, signature[side][k]) for k in sorted(signature[side], key=_natural)]
            for side in ("inputs", "outputs")
        },
        "precision": precision,  # from how its float weights are stored
    }
