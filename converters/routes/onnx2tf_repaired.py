"""onnx2tf on the graph rewritten by the repair passes: for ops it refuses or makes Flex ops of.

:func:`onnxpipe.converters.repairs.repair` applies every pass that finds something to rewrite
(per-channel PRelu, dilated + strided Conv, 3-D pooling), checking each rewrite against the
original graph in ONNX Runtime; onnx2tf then converts the rewritten copy. Where no pass applies,
the route gives up at once (it would convert the same graph as ``onnx2tf``). Every artifact records
the passes in its ``extra`` (``repairs``: pass -> nodes rewritten).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from onnxpipe.converters.repairs import REPAIR_PASSES, repair
from onnxpipe.converters.route import ROUTES
from onnxpipe.converters.routes.onnx2tf import RewrittenOnnx2tfRoute
from onnxpipe.models.artifact import Artifact
from onnxpipe.models.errors import ConversionError
from onnxpipe.models.execution import RuntimeOpener

__all__ = ["Onnx2tfRepairedRoute"]


@ROUTES.register()
class Onnx2tfRepairedRoute(RewrittenOnnx2tfRoute):
    """onnx2tf 1.28 on a copy of the ONNX file rewritten by the repair passes."""

    name = "onnx2tf-repaired"
    summary = (
        "onnx2tf 1.28 on the graph rewritten by the repair passes ("
        + ", ".join(p.name for p in REPAIR_PASSES)
        + ")"
    )
    preference = 12

    def rewrite(self, onnx: Artifact, dest: Path, run_with: RuntimeOpener) -> dict[str, Any]:  # noqa: D102
        result = repair(onnx, dest, run_with)
        if not result.applied:
            dropped = "; ".join(f"{name}: {why}" for name, why in result.dropped.items())
            raise ConversionError(
                f"{onnx.path}: no repair pass applies to this graph"
                + (f" (dropped, changed the numbers: {dropped})" if dropped else "")
            )
        return result.extra()
