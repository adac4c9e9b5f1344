"""The default route: onnx2tf builds one Keras graph and writes the SavedModel and fp32/fp16 TFLite.

The quantized precisions come from TensorFlow's converter on that SavedModel, calibrated on
training samples in its layout. The hop itself lives in :mod:`onnxpipe.converters.onnx_to_saved_model`.
"""

from __future__ import annotations

from pathlib import Path

from onnxpipe.converters.onnx_to_saved_model import TFConvertOptions, convert_onnx2tf
from onnxpipe.converters.route import ROUTES, Route
from onnxpipe.models.artifact import Artifact
from onnxpipe.models.execution import RuntimeOpener

__all__ = ["Onnx2tfRoute"]


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
        return convert_onnx2tf(onnx, out_dir, options, run_with=run_with)
