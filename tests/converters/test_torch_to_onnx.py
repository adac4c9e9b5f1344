import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from onnxpipe.converters.torch_to_onnx import ExportOptions, export_onnx, probe_inputs
from onnxpipe.models.checkpoint import load_checkpoint, load_model
from onnxpipe.models.errors import CheckpointError, UnknownNameError, UsageError
from onnxpipe.validation.runtimes import open_runtime


@pytest.mark.parametrize(("exporter", "opset"), [("dynamo", 18), ("torchscript", 12)])
def test_export_keeps_a_dynamic_batch_and_matches_pytorch(cnn_run, tmp_path, exporter, opset):
    dest = tmp_path / "model.onnx"
    art = export_onnx(
        cnn_run / "checkpoint.pt", dest, ExportOptions(opset=opset, exporter=exporter), run_with=open_runtime
    )
    model = onnx.load(str(dest))
    assert model.opset_import[0].version == opset
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_param  # named, dynamic
    assert not any(t.data_location == onnx.TensorProto.EXTERNAL for t in model.graph.initializer)
    assert art.extra["ort_vs_torch_max_abs"]["logits"] < 1e-4
    # ONNX Runtime agrees with PyTorch at a batch size the exporter never saw.
    feeds = probe_inputs(art.spec, batch=7, seed=11)
    got = ort.InferenceSession(str(dest), providers=["CPUExecutionProvider"]).run(None, feeds)[0]
    with torch.no_grad():
        want = load_model(load_checkpoint(cnn_run / "checkpoint.pt"))(
            torch.from_numpy(feeds["input"])
        ).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
    assert not list(tmp_path.glob(".*tmp*")), "temporary files left behind"


def test_failed_export_writes_nothing(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError):
        export_onnx(bad, tmp_path / "model.onnx", run_with=open_runtime)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.pt"]


def test_export_options_are_checked():
    with pytest.raises(UnknownNameError, match="unknown exporter 'jit'"):
        ExportOptions(exporter="jit")
    with pytest.raises(UsageError, match="opset: got 99"):
        ExportOptions(opset=99)
