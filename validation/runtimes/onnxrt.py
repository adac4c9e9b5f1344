"""ONNX Runtime. The device reported is read from the session's providers, never assumed."""

from __future__ import annotations

from typing import Any

import numpy as np

from onnxpipe.models.artifact import Format
from onnxpipe.validation.runtimes.base import Runtime

_PROVIDERS = {"cpu": ["CPUExecutionProvider"], "cuda": ["CUDAExecutionProvider", "CPUExecutionProvider"]}


def _version(dist: str) -> str | None:
    import importlib.metadata

    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


class OnnxRuntime(Runtime):
    """``onnxruntime.InferenceSession`` with the CPU or CUDA execution provider."""

    name = "onnxruntime"
    formats = frozenset({Format.ONNX})
    packages = ("onnxruntime",)
    devices = ("cpu", "cuda")
    intermediates_supported = True

    @classmethod
    def unavailable_reason(cls, device: str = "cpu") -> str | None:  # noqa: D102
        installed = [f"{d} {v}" for d in ("onnxruntime", "onnxruntime-gpu") if (v := _version(d))]
        if len(installed) == 2:  # both write the same onnxruntime package: one silently overwrote the other
            return f"both {installed[0]} and {installed[1]} are installed (make setup-gpu keeps only onnxruntime-gpu)"
        return super().unavailable_reason(device)

    @classmethod
    def _cuda_reason(cls) -> str | None:
        import onnxruntime as ort

        if "CUDAExecutionProvider" in ort.get_available_providers():
            return None
        return "this onnxruntime build has no CUDAExecutionProvider (make setup-gpu installs onnxruntime-gpu in its place)"

    def _load(self) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.log_severity_level = (
            3  # errors only: its optimizers' warnings ("Unsupported ONNX opset: 6") say nothing of the model
        )
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
        outs = self._timed(lambda: self._session.run(self._output_names, feeds))
        return dict(zip(self._output_names, outs, strict=True))

    def _intermediates(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        import onnxruntime as ort

        from onnxpipe.validation.runtimes.onnxref import every_tensor_as_output

        model = every_tensor_as_output(self.artifact.path)
        options = ort.SessionOptions()
        options.log_severity_level = (
            3  # errors only: its optimizers' warnings ("Unsupported ONNX opset: 6") say nothing of the model
        )
        if self.threads:
            options.intra_op_num_threads, options.inter_op_num_threads = self.threads, 1
        session = ort.InferenceSession(model.SerializeToString(), options, providers=_PROVIDERS[self.device])
        names = [o.name for o in session.get_outputs()]
        return dict(zip(names, session.run(names, feeds), strict=True))
