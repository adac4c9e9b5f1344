"""Runtimes, one module each, imported only when used."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from onnxpipe.models.artifact import Artifact, Format
from onnxpipe.models.errors import EnvironmentProblem
from onnxpipe.models.registry import Registry
from onnxpipe.validation.runtimes.base import Runtime

__all__ = ["DEFAULT_RUNTIME", "RUNTIMES", "RUNTIMES_BY_FORMAT", "Runtime", "get_runtime", "open_runtime"]

log = logging.getLogger(__name__)

#: Runtime name -> its class (one module each, imported when first used).
RUNTIMES: Registry[type[Runtime]] = Registry(
    "runtime",
    lazy={
        "pytorch": "onnxpipe.validation.runtimes.pytorch:PyTorchRuntime",
        "onnxruntime": "onnxpipe.validation.runtimes.onnxrt:OnnxRuntime",
        "onnx-reference": "onnxpipe.validation.runtimes.onnxref:OnnxReferenceRuntime",
        "tensorflow": "onnxpipe.validation.runtimes.tf:TensorFlowRuntime",
        "ai-edge-litert": "onnxpipe.validation.runtimes.tflite:LiteRtRuntime",
        "ai-edge-litert-ref": "onnxpipe.validation.runtimes.tflite:LiteRtReferenceRuntime",
        "tf.lite": "onnxpipe.validation.runtimes.tflite:TfLiteRuntime",
        "tflite-runtime": "onnxpipe.validation.runtimes.tflite_edge:TfliteRuntimeEdge",
        "tfjs-cpu": "onnxpipe.validation.runtimes.tfjs:TfjsCpuRuntime",
        "tfjs-wasm": "onnxpipe.validation.runtimes.tfjs:TfjsWasmRuntime",
        "tfjs-browser": "onnxpipe.validation.runtimes.tfjs_browser:TfjsBrowserRuntime",
    },
)

#: The runtime that runs each format when none is chosen.
DEFAULT_RUNTIME = {
    Format.TORCH: "pytorch",
    Format.ONNX: "onnxruntime",
    Format.TF_SAVED_MODEL: "tensorflow",
    Format.TFLITE: "ai-edge-litert",
    Format.TFJS: "tfjs-cpu",
}


#: Every runtime that validation runs a candidate of each format on, when none is selected.
#: ``onnx-reference`` is kept for references ONNX Runtime cannot load (and for ``--runtimes``).
RUNTIMES_BY_FORMAT = {
    Format.TORCH: ("pytorch",),
    Format.ONNX: ("onnxruntime",),
    Format.TF_SAVED_MODEL: ("tensorflow",),
    Format.TFLITE: ("ai-edge-litert", "ai-edge-litert-ref", "tf.lite", "tflite-runtime"),
    Format.TFJS: ("tfjs-cpu", "tfjs-wasm", "tfjs-browser"),
}


def get_runtime(name: str) -> type[Runtime]:
    """The runtime class registered as ``name``."""
    return RUNTIMES.get(name)


#: The runtimes that run an artifact of each format for a check, in the order they are tried: the
#: next one where the first is missing or cannot load the file (ONNX Runtime has no kernel for some
#: old opsets; the reference evaluator runs them).
_CHECK_CHAIN = {
    Format.TORCH: ("pytorch",),
    Format.ONNX: ("onnxruntime", "onnx-reference"),
    Format.TF_SAVED_MODEL: ("tensorflow",),
    Format.TFLITE: ("ai-edge-litert", "ai-edge-litert-ref"),
    Format.TFJS: ("tfjs-cpu",),
}


@contextmanager
def open_runtime(artifact: Artifact, device: str = "cpu", threads: int | None = None) -> Iterator[Runtime]:
    """A loaded runtime for ``artifact``: the first of its format's chain that is installed and loads it.

    This is what converters are handed to run what they make (``RuntimeOpener``).

    Raises:
        EnvironmentProblem: No runtime of the chain can run it; every reason is named.
    """
    reasons = []
    for name in _CHECK_CHAIN[artifact.format]:
        cls = get_runtime(name)
        reason = cls.unavailable_reason(device)
        if reason:
            reasons.append(f"{name}: {reason}")
            continue
        runtime = cls(artifact, device, threads)
        try:
            runtime.__enter__()
        except Exception as e:  # a runtime that cannot load this file: the next one in the chain tries
            reasons.append(f"{name}: cannot load it ({type(e).__name__}: {str(e).splitlines()[0][:200]})")
            continue
        if reasons:
            log.info("%s: ran %s (%s)", artifact.label, name, "; ".join(reasons))
        try:
            yield runtime
        finally:
            runtime.__exit__(None, None, None)
        return
    raise EnvironmentProblem(f"{artifact.path}: no runtime can run it here ({'; '.join(reasons)})")
