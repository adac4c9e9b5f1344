"""tflite-runtime, the standalone edge interpreter, in its own environment (``.venv-edge``).

tflite-runtime 2.14 needs numpy < 2 and cannot live beside TensorFlow 2.21, so it runs in a worker
process (:mod:`validation.edge_worker`, over the worker protocol :mod:`onnxpipe.models.wire`) that
keeps one interpreter for the artifact and answers every call. It proves a .tflite file loads and
computes the same without TensorFlow. The worker times ``invoke`` itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from onnxpipe.models import wire
from onnxpipe.models.artifact import Format
from onnxpipe.models.errors import OnnxpipeError
from onnxpipe.validation.quant import dequantize, is_quantized, quantize
from onnxpipe.validation.runtimes.base import ArtifactNotLoadable, WorkerRuntime

__all__ = ["EDGE_PYTHON", "TfliteRuntimeEdge"]

#: The edge environment's interpreter: ``.venv-edge`` at the project root (``make setup-edge``).
EDGE_PYTHON = Path(__file__).resolve().parents[2] / ".venv-edge" / "bin" / "python"
_WORKER = Path(__file__).resolve().parents[1] / "edge_worker.py"


class EdgeWorkerError(OnnxpipeError):
    """The edge worker failed on a call, or died."""


class TfliteRuntimeEdge(WorkerRuntime):
    """tflite-runtime 2.14 through the edge worker."""

    name = "tflite-runtime"
    formats = frozenset({Format.TFLITE})

    @classmethod
    def unavailable_reason(cls, device: str = "cpu") -> str | None:  # noqa: D102
        if not EDGE_PYTHON.is_file():
            return (
                f"the edge environment is not set up ({EDGE_PYTHON.parents[1].name} missing: make setup-edge)"
            )
        return super().unavailable_reason(device)

    def _load(self) -> None:
        self._worker = wire.Worker(
            wire.command(EDGE_PYTHON, _WORKER),
            what="tflite-runtime",
            error=EdgeWorkerError,
            errors={"not-loadable": ArtifactNotLoadable},
        )
        self._worker.start()
        try:
            hello = self._worker.request(
                {"op": "open", "model": str(self.artifact.path), "threads": self.threads}, timeout_s=120
            ).header
        except Exception:
            self._close()
            raise
        self._declared = {d["name"]: d["shape"] for d in hello["inputs"]}
        self._in = {d["name"]: (np.dtype(d["dtype"]), d["quantization"]) for d in hello["inputs"]}
        self._out = {d["name"]: d["quantization"] for d in hello["outputs"]}

    def declared_shapes(self) -> dict[str, list[int]]:  # noqa: D102
        return self._declared

    def declared_dtypes(self) -> dict[str, str]:
        """Dtypes of the inputs that are not quantized (those are quantized as they are fed)."""
        return {k: dtype.name for k, (dtype, q) in self._in.items() if not is_quantized(dtype, q)}

    def _run(self, feeds: dict[str, np.ndarray]) -> dict[str, Any]:
        reply = self._worker.request(
            {"op": "run"}, {k: quantize(v, *self._in[k]) for k, v in feeds.items()}, timeout_s=600
        )
        self.inference_s = reply.header["seconds"]
        return {k: dequantize(v, self._out[k]) for k, v in reply.arrays.items()}
