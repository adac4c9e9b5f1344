"""The ``onnx`` package's own ``ReferenceEvaluator``: slow, but it runs opsets ONNX Runtime dropped."""

from __future__ import annotations

from typing import Any

import numpy as np

from onnxpipe.models.artifact import Format
from onnxpipe.validation.runtimes.base import Runtime


class OnnxReferenceRuntime(Runtime):
    """``onnx.reference.ReferenceEvaluator`` (pure NumPy, CPU only)."""

    name = "onnx-reference"
    formats = frozenset({Format.ONNX})
    packages = ("onnx",)

    def _load(self) -> None:
        import onnx
        from onnx.reference import ReferenceEvaluator

        model = onnx.load(str(self.artifact.path))
        self._evaluator = ReferenceEvaluator(model)
        self._declared = {
            v.name: [d.dim_value if d.HasField("dim_value") else -1 for d in v.type.tensor_type.shape.dim]
            for v in model.graph.input
        }
        self._output_names = [b.artifact_name for b in self.artifact.outputs]

    def declared_shapes(self) -> dict[str, list[int]]:  # noqa: D102
        return self._declared

    def _run(self, feeds: dict[str, np.ndarray]) -> dict[str, Any]:
        outs = self._evaluator.run(self._output_names, feeds)
        return dict(zip(self._output_names, outs, strict=True))
