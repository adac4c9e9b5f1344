"""onnx2tf on the graph rewritten by the repair passes: for ops it refuses or makes Flex ops of.

:func:`onnxpipe.converters.repairs.repair` applies every pass that finds something to rewrite
(per-channel PRelu, dilated + strided Conv, 3-D pooling), checking each rewrite against the
original graph in ONNX Runtime; onnx2tf then converts the rewritten copy. Where no pass applies,
the route gives up at once (it would convert the same graph as ``onnx2tf``). Every artifact records
the passes in its ``extra`` (``repairs``: pass -> nodes rewritten).
"""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path

from onnxpipe.converters.onnx_to_saved_model import TFConvertOptions
from onnxpipe.converters.repairs import REPAIR_PASSES, repair
from onnxpipe.converters.route import ROUTES
from onnxpipe.converters.routes.onnx2tf import Onnx2tfRoute
from onnxpipe.models.artifact import Artifact
from onnxpipe.models.errors import ConversionError
from onnxpipe.models.execution import RuntimeOpener

__all__ = ["Onnx2tfRepairedRoute"]


@ROUTES.register()
class Onnx2tfRepairedRoute(Onnx2tfRoute):
    """onnx2tf 1.28 on a copy of the ONNX file rewritten by the repair passes."""

    name = "onnx2tf-repaired"
    summary = (
        "onnx2tf 1.28 on the graph rewritten by the repair passes ("
        + ", ".join(p.name for p in REPAIR_PASSES)
        + ")"
    )
    preference = 12

    def convert(  # noqa: D102
        self, onnx: Artifact, out_dir: Path, options: TFConvertOptions, run_with: RuntimeOpener
    ) -> list[Artifact]:
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=".repaired-", dir=out_dir) as tmp:
            repaired = Path(tmp) / onnx.path.name
            result = repair(onnx, repaired, run_with)
            dropped = "; ".join(f"{name}: {why}" for name, why in result.dropped.items())
            if not result.applied:
                raise ConversionError(
                    f"{onnx.path}: no repair pass applies to this graph"
                    + (f" (dropped, changed the numbers: {dropped})" if dropped else "")
                )
            made = super().convert(onnx.with_path(repaired), out_dir, options, run_with)
        extra = {"repairs": result.applied} | ({"repairs_dropped": result.dropped} if result.dropped else {})
        return [
            dataclasses.replace(
                a,
                backend=self.name if a.backend == Onnx2tfRoute.name else a.backend,
                extra={**a.extra, **extra},
            )
            for a in made
        ]
