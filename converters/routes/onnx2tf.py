"""The default route: onnx2tf builds one Keras graph and writes the SavedModel and fp32/fp16 TFLite.

The quantized precisions come from TensorFlow's converter on that SavedModel, calibrated on
training samples in its layout. The hop itself lives in :mod:`onnxpipe.converters.onnx_to_saved_model`.
"""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path
from typing import Any

from onnxpipe.converters.onnx_to_saved_model import TFConvertOptions, convert_onnx2tf
from onnxpipe.converters.route import ROUTES, Route
from onnxpipe.models.artifact import Artifact
from onnxpipe.models.execution import RuntimeOpener

__all__ = ["Onnx2tfRoute", "RewrittenOnnx2tfRoute"]


@ROUTES.register()
class Onnx2tfRoute(Route):
    """onnx2tf 1.28 in a worker process, on a private copy of the ONNX file."""

    name = "onnx2tf"
    summary = "onnx2tf 1.28 (one Keras graph); TensorFlow's converter for the quantized precisions"
    layout = "channels last: NCHW inputs become NHWC (recorded per tensor)"
    preference = 10

    def convert(  # noqa: D102
        self, onnx: Artifact, out_dir: Path, options: TFConvertOptions, run_with: RuntimeOpener
    ) -> list[Artifact]:
        made = convert_onnx2tf(onnx, out_dir, options, run_with=run_with)
        # A subclass (another export, a rewritten graph) names itself as the artifacts' backend.
        return [
            dataclasses.replace(a, backend=self.name) if a.backend == Onnx2tfRoute.name else a for a in made
        ]


class RewrittenOnnx2tfRoute(Onnx2tfRoute):
    """onnx2tf on a rewritten copy of the ONNX file: a subclass says how in :meth:`rewrite`.

    The copy lives in a temporary folder inside ``out_dir`` and is gone afterwards; every artifact
    carries what :meth:`rewrite` returned in its ``extra``.
    """

    def rewrite(self, onnx: Artifact, dest: Path, run_with: RuntimeOpener) -> dict[str, Any]:
        """Write the rewritten graph to ``dest``; return what to record in each artifact's ``extra``.

        Raises:
            ConversionError: There is nothing to rewrite, or the rewrite failed.
        """
        raise NotImplementedError

    def convert(  # noqa: D102
        self, onnx: Artifact, out_dir: Path, options: TFConvertOptions, run_with: RuntimeOpener
    ) -> list[Artifact]:
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=f".{self.name}-", dir=out_dir) as tmp:
            rewritten = Path(tmp) / onnx.path.name
            extra = self.rewrite(onnx, rewritten, run_with)
            made = super().convert(onnx.with_path(rewritten), out_dir, options, run_with)
        return [dataclasses.replace(a, extra={**a.extra, **extra}) for a in made]
