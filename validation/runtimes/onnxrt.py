"""ONNX Runtime. The device reported is read from the session's providers, never assumed."""

from __future__ import annotations

from typing import Any

import numpy as np

from models.artifact import Format
from validation.runtimes.base import Runtime

_PROVIDERS = {"cpu": ["CPUExecutionProvider"], "cuda": ["CUDAExecutionProvider", "CPUExecutionProvider"]}


class OnnxRuntime(Runtime):
    """``onnxruntime.InferenceSession`` with the CPU or CUDA execution provider."""

    name = "onnxruntime"
    formats = frozenset({Format.ONNX})
    packages = ("onnxruntime",)
    devices = ("cpu", "cuda")

    @classmethod
    def _cuda_reason(cls) -> str | None:
        import onnxruntime as ort

        if "CUDAExecutionProvider" in ort.get_available_providers():
            return None
        return "this onnxruntime build has no CUDAExecutionProvider (onnxruntime-gpu, in place of onnxruntime, has it)"

    def _load(self) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        if self.threads:
            options.intra_op_num_threads, options.inter_op_num_threads = self.threads, 1
        self._session = ort.InferenceSession(
            str(self.artifact.path), options, providers=_PROVIDERS[self.device]
        )
        self._output_names = [b.artifact_name for b in self.artifact.outputs]

    @property
    def device_used(self) -> str:
        """``cuda`` only when the session really attached the CUDA provider."""
        providers = self._session.get_providers()
        return "cuda" if "CUDAExecutionProvider" in providers else "cpu"

    def declared_shapes(self) -> dict[str, list[int]]:  # noqa: D102
        return {
            i.name: [d if isinstance(d, int) else -1 for d in i.shape] for i in self._session.get_inputs()
        }

    def _run(self, feeds: dict[str, np.ndarray]) -> dict[str, Any]:
        outs = self._session.run(self._output_names, feeds)
        return dict(zip(self._output_names, outs, strict=True))
