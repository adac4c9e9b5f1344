"""TFLite interpreters: ai-edge-litert (XNNPACK, and reference kernels) and TensorFlow's tf.lite.

ai-edge-litert is the maintained successor of tflite-runtime, with the same Interpreter API. Its
default resolver delegates float ops to XNNPACK; the reference-kernel variant runs TFLite's
straightforward builtin kernels, a second opinion when XNNPACK is suspected.
"""

from __future__ import annotations

import warnings
from typing import Any, ClassVar

import numpy as np

from onnxpipe.models.artifact import Format
from onnxpipe.validation.quant import dequantize, is_quantized, quantize
from onnxpipe.validation.runtimes.base import Runtime


class LiteRtRuntime(Runtime):
    """``ai_edge_litert.interpreter.Interpreter`` with the default resolver (XNNPACK delegate)."""

    name = "ai-edge-litert"
    formats = frozenset({Format.TFLITE})
    packages = ("ai_edge_litert",)
    resolver: ClassVar[str] = "AUTO"
    intermediates_supported = True

    def _interpreter(self, **kwargs: Any) -> Any:
        from ai_edge_litert.interpreter import Interpreter, OpResolverType

        return Interpreter(
            model_path=str(self.artifact.path),
            experimental_op_resolver_type=getattr(OpResolverType, self.resolver),
            **kwargs,
        )

    def _load(self) -> None:
        self._interp = self._interpreter(num_threads=self.threads or 1)
        self._interp.allocate_tensors()
        self._inputs = {d["name"]: d for d in self._interp.get_input_details()}
        self._outputs = {d["name"]: d for d in self._interp.get_output_details()}
        self._shapes = {name: tuple(d["shape"]) for name, d in self._inputs.items()}

    def declared_shapes(self) -> dict[str, list[int]]:  # noqa: D102
        return {k: [int(x) for x in d["shape_signature"]] for k, d in self._inputs.items()}

    def declared_dtypes(self) -> dict[str, str]:
        """Dtypes of the inputs that are not quantized (those are quantized as they are fed)."""
        return {
            k: np.dtype(d["dtype"]).name
            for k, d in self._inputs.items()
            if not is_quantized(d["dtype"], d["quantization"])
        }

    def _run(self, feeds: dict[str, np.ndarray]) -> dict[str, Any]:
        it = self._interp
        if any(self._shapes[k] != v.shape for k, v in feeds.items()):
            for k, v in feeds.items():
                it.resize_tensor_input(self._inputs[k]["index"], list(v.shape), strict=True)
            it.allocate_tensors()
            self._shapes = {k: v.shape for k, v in feeds.items()}
        for k, v in feeds.items():
            d = self._inputs[k]
            it.set_tensor(d["index"], quantize(v, d["dtype"], d["quantization"]))
        self._timed(it.invoke)
        return {
            k: dequantize(it.get_tensor(d["index"]), d["quantization"]).copy()
            for k, d in self._outputs.items()
        }

    def _intermediates(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Every tensor an op produced, from a second interpreter that keeps them all.

        It runs no delegate: a delegated subgraph has no per-op tensors.
        """
        from ai_edge_litert.interpreter import Interpreter, OpResolverType

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            it = Interpreter(
                model_path=str(self.artifact.path),
                experimental_preserve_all_tensors=True,
                experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
            )
        for k, v in feeds.items():
            it.resize_tensor_input(self._inputs[k]["index"], list(v.shape), strict=True)
        it.allocate_tensors()
        for k, v in feeds.items():
            d = self._inputs[k]
            it.set_tensor(d["index"], quantize(v, d["dtype"], d["quantization"]))
        it.invoke()
        details = {d["index"]: d for d in it.get_tensor_details()}
        out = {}
        for index in {int(i) for op in it._get_ops_details() for i in op["outputs"]}:
            d = details[index]
            try:
                out[d["name"]] = dequantize(it.get_tensor(index), d["quantization"]).astype(np.float32)
            except ValueError:  # a tensor the interpreter freed or never allocated
                continue
        return out


class LiteRtReferenceRuntime(LiteRtRuntime):
    """ai-edge-litert with TFLite's reference kernels (no XNNPACK)."""

    name = "ai-edge-litert-ref"
    resolver = "BUILTIN_REF"


class TfLiteRuntime(LiteRtRuntime):
    """``tf.lite.Interpreter`` from the installed TensorFlow."""

    name = "tf.lite"
    packages = ("tensorflow",)
    intermediates_supported = False
    notice = (
        "TensorFlow deprecates tf.lite.Interpreter (its warning is not shown); ai-edge-litert, its "
        "successor, runs the same files in the rows beside it"
    )

    def _interpreter(self, **kwargs: Any) -> Any:
        import warnings

        import tensorflow as tf

        with warnings.catch_warnings():  # its deprecation notice points at ai-edge-litert, which we also run
            warnings.simplefilter("ignore", UserWarning)
            return tf.lite.Interpreter(model_path=str(self.artifact.path), **kwargs)
