"""Runtimes, one module each, imported only when used."""

from __future__ import annotations

import importlib

from models.artifact import Format
from models.errors import UnknownNameError
from validation.runtimes.base import Runtime

__all__ = ["DEFAULT_RUNTIME", "RUNTIMES", "RUNTIMES_BY_FORMAT", "Runtime", "get_runtime"]

#: Runtime name -> "module:class".
RUNTIMES = {
    "pytorch": "validation.runtimes.pytorch:PyTorchRuntime",
    "onnxruntime": "validation.runtimes.onnxrt:OnnxRuntime",
    "onnx-reference": "validation.runtimes.onnxref:OnnxReferenceRuntime",
    "tensorflow": "validation.runtimes.tf:TensorFlowRuntime",
    "ai-edge-litert": "validation.runtimes.tflite:LiteRtRuntime",
    "ai-edge-litert-ref": "validation.runtimes.tflite:LiteRtReferenceRuntime",
    "tf.lite": "validation.runtimes.tflite:TfLiteRuntime",
    "tflite-runtime": "validation.runtimes.tflite_edge:TfliteRuntimeEdge",
}

#: The runtime that runs each format when none is chosen.
DEFAULT_RUNTIME = {
    Format.TORCH: "pytorch",
    Format.ONNX: "onnxruntime",
    Format.TF_SAVED_MODEL: "tensorflow",
    Format.TFLITE: "ai-edge-litert",
}


#: Every runtime that validation runs a candidate of each format on, when none is selected.
#: ``onnx-reference`` is kept for references ONNX Runtime cannot load (and for ``--runtimes``).
RUNTIMES_BY_FORMAT = {
    Format.TORCH: ("pytorch",),
    Format.ONNX: ("onnxruntime",),
    Format.TF_SAVED_MODEL: ("tensorflow",),
    Format.TFLITE: ("ai-edge-litert", "ai-edge-litert-ref", "tf.lite", "tflite-runtime"),
}


def get_runtime(name: str) -> type[Runtime]:
    """The runtime class registered as ``name``."""
    if name not in RUNTIMES:
        raise UnknownNameError("runtime", name, RUNTIMES)
    module, cls = RUNTIMES[name].split(":")
    return getattr(importlib.import_module(module), cls)
