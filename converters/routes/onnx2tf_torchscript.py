"""onnx2tf on the TorchScript exporter's graph: for models the dynamo exporter cannot export right.

The dynamo exporter (``torch.export``) fails on some models (data-dependent control flow, ops it has
no decomposition for) and exports others with wrong numbers (caught by the export check, which
refuses the file). The TorchScript exporter traces the module instead: another graph of the same
model, at opset 17. These routes export it (``model_torchscript_opset17.onnx``, checked against
PyTorch like every export) and hand it to onnx2tf, as it is and then with the batch fixed to 1.

They differ from ``onnx2tf`` and ``onnx2tf-static`` only by the export they convert, so for an
ONNX file given as the source they are not tried (``Route.export_variant``).
"""

from __future__ import annotations

from onnxpipe.converters.route import ROUTES
from onnxpipe.converters.routes.onnx2tf import Onnx2tfRoute
from onnxpipe.converters.routes.onnx2tf_static import Onnx2tfStaticRoute
from onnxpipe.converters.torch_to_onnx import ExportOptions

__all__ = ["TORCHSCRIPT_OPSET", "Onnx2tfTorchscriptRoute", "Onnx2tfTorchscriptStaticRoute"]

#: The opset of the TorchScript export (``--opset`` overrides it).
TORCHSCRIPT_OPSET = 17


class _TorchscriptExport:
    """The export these routes convert: the TorchScript exporter at opset 17."""

    export_variant = True

    @classmethod
    def export_options(cls, requested: ExportOptions) -> ExportOptions:
        return ExportOptions(opset=requested.opset or TORCHSCRIPT_OPSET, exporter="torchscript")

    @classmethod
    def onnx_name(cls, options: ExportOptions) -> str:
        return f"model_torchscript_opset{options.opset}.onnx"


@ROUTES.register()
class Onnx2tfTorchscriptRoute(_TorchscriptExport, Onnx2tfRoute):
    """onnx2tf 1.28 on the TorchScript export at opset 17."""

    name = "onnx2tf-torchscript"
    summary = "onnx2tf 1.28 on the TorchScript exporter's graph (for models the dynamo exporter gets wrong)"
    preference = 16


@ROUTES.register()
class Onnx2tfTorchscriptStaticRoute(_TorchscriptExport, Onnx2tfStaticRoute):
    """onnx2tf 1.28 on the TorchScript export at opset 17, its batch fixed to 1."""

    name = "onnx2tf-torchscript-static"
    summary = "onnx2tf 1.28 on the TorchScript exporter's graph, batch fixed to 1, repair passes applied (batch 1 only)"
    preference = 17
