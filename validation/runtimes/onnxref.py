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
    intermediates_supported = True

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
        outs = self._timed(lambda: self._evaluator.run(self._output_names, feeds))
        return dict(zip(self._output_names, outs, strict=True))

    def _intermediates(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        model = every_tensor_as_output(self.artifact.path)
        names = [o.name for o in model.graph.output]
        return dict(zip(names, self._evaluator.run(names, feeds), strict=True))


def every_tensor_as_output(path: Any) -> Any:
    """The ONNX model at ``path`` with every node output also a graph output (shapes inferred)."""
    import onnx

    model = onnx.shape_inference.infer_shapes(onnx.load(str(path)))
    known = {v.name for v in model.graph.output}
    types = {v.name: v for v in model.graph.value_info}
    for node in model.graph.node:
        for out in node.output:
            if out and out not in known:
                model.graph.output.append(types.get(out) or onnx.helper.make_empty_tensor_value_info(out))
                known.add(out)
    return model
