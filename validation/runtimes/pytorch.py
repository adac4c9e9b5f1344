"""PyTorch runtime: rebuilds the model from an onnxpipe checkpoint."""

from __future__ import annotations

from typing import Any

import numpy as np

from onnxpipe.models.artifact import Format
from onnxpipe.validation.runtimes.base import Runtime


class PyTorchRuntime(Runtime):
    """Eager PyTorch, in eval mode under ``torch.no_grad``."""

    name = "pytorch"
    formats = frozenset({Format.TORCH})
    packages = ("torch",)
    devices = ("cpu", "cuda")

    @classmethod
    def _cuda_reason(cls) -> str | None:
        import torch

        return None if torch.cuda.is_available() else "no CUDA device (torch.cuda.is_available() is False)"

    def _load(self) -> None:
        from onnxpipe.models.checkpoint import load_model

        if self.threads:
            import torch

            torch.set_num_threads(self.threads)
        self._model = load_model(self.artifact.path).to(self.device)

    def _forward(self, args: list) -> Any:
        import torch

        out = self._model(*args)
        if self.device == "cuda":  # CUDA kernels run asynchronously: the call ends when they do
            torch.cuda.synchronize()
        return out

    def _run(self, feeds: dict[str, np.ndarray]) -> dict[str, Any]:
        import torch

        with torch.no_grad():
            args = [torch.from_numpy(feeds[b.artifact_name]).to(self.device) for b in self.artifact.inputs]
            out = self._timed(lambda: self._forward(args))
        outs = out if isinstance(out, (tuple, list)) else (out,)
        return {b.artifact_name: o.cpu().numpy() for b, o in zip(self.artifact.outputs, outs, strict=True)}
