"""onnx2tf on the graph with its batch fixed to 1: for graphs it cannot convert with a dynamic batch.

Transformers exported with a dynamic batch compute their attention shapes at run time, and onnx2tf
1.28 gives up on them (``Cannot convert a partially known TensorShape``); with the batch fixed
(:func:`onnxpipe.converters.repairs.fix_batch`), the same graphs convert and match PyTorch. The
artifacts then run at batch 1 only: every artifact records ``static_batch`` in its ``extra``, and
the parity report shows the batch axis as ``static 1``. The repair passes that apply to the fixed
graph are applied too, each checked (:func:`onnxpipe.converters.repairs.repair`; ``repairs`` in
``extra``). It comes after ``onnx2tf`` and ``onnx2tf-repaired`` in the order, so ``--backend
auto`` keeps a dynamic batch wherever one converts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from onnxpipe.converters.repairs import fix_batch, repair
from onnxpipe.converters.route import ROUTES
from onnxpipe.converters.routes.onnx2tf import RewrittenOnnx2tfRoute
from onnxpipe.models.artifact import Artifact
from onnxpipe.models.execution import RuntimeOpener

__all__ = ["STATIC_BATCH", "Onnx2tfStaticRoute"]

#: The batch size the graph is fixed to.
STATIC_BATCH = 1


@ROUTES.register()
class Onnx2tfStaticRoute(RewrittenOnnx2tfRoute):
    """onnx2tf 1.28 on a copy of the ONNX file whose batch axis is fixed to 1."""

    name = "onnx2tf-static"
    summary = (
        "onnx2tf 1.28 on the graph with its batch fixed to 1 and the repair passes that apply (batch 1 only)"
    )
    preference = 15

    def rewrite(self, onnx: Artifact, dest: Path, run_with: RuntimeOpener) -> dict[str, Any]:  # noqa: D102
        fixed = dest.with_name(f"fixed_{dest.name}")
        fix_batch(onnx.path, fixed, STATIC_BATCH)
        result = repair(onnx.with_path(fixed), dest, run_with, batch=STATIC_BATCH)
        return {"static_batch": STATIC_BATCH} | result.extra()
