"""The litert-torch route: the PyTorch module straight to TFLite, in its own environment."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from onnxpipe.converters.onnx_to_saved_model import TFConvertOptions
from onnxpipe.converters.routes.litert_torch import LITERT_PYTHON, LiteRtTorchRoute
from onnxpipe.models.checkpoint import Checkpoint, save_checkpoint
from onnxpipe.models.errors import ValidationInputError
from onnxpipe.models.registry import get_architecture
from onnxpipe.pipeline.artifacts import resolve_artifact
from onnxpipe.pipeline.backends import RowStatus, compare_backends
from onnxpipe.validation.runtimes import open_runtime
from tests.conftest import onnxpipe, requires_env

needs_litert = requires_env(LITERT_PYTHON, "setup-litert")


@pytest.fixture(scope="module")
def transformer_checkpoint(tmp_path_factory):
    """The zoo's token transformer (int64 token ids), seeded weights, as a checkpoint."""
    arch = get_architecture("transformer")
    torch.manual_seed(0)
    model = arch.build()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.2)  # away from the initial near-zero values
    path = tmp_path_factory.mktemp("litert") / "checkpoint.pt"
    return save_checkpoint(Checkpoint("transformer", model.state_dict(), arch.spec), path)


@needs_litert
def test_litert_torch_converts_the_module_and_its_int32_input_is_fed_and_reported(
    transformer_checkpoint, tmp_path
):
    run = tmp_path / "run"
    onnxpipe(
        "convert", str(transformer_checkpoint), "--backend", "litert-torch", "--to", "tflite",
        "--precision", "fp32,fp16", "--out", str(run), check=True,
    )  # fmt: skip
    assert not (run / "model.onnx").exists()  # no ONNX on this route
    manifest = json.loads((run / "manifest.json").read_text())
    fp32 = manifest["artifacts"]["model_fp32.tflite"]
    assert fp32["backend"] == "litert-torch" and fp32["parent"] == "checkpoint.pt"
    assert fp32["extra"]["narrowed"] == {"tokens": "int64 -> int32"}
    assert fp32["extra"]["static_batch"] == 1

    proc = onnxpipe(
        "validate", "--reference", str(transformer_checkpoint), "--candidate", str(run / "model_fp32.tflite"),
        "--candidate", str(run / "model_fp16.tflite"), "--out", str(tmp_path / "v"),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads((tmp_path / "v" / "parity.json").read_text())
    litert = [r for r in report["results"] if r["runtime"] == "ai-edge-litert"]
    assert {r["artifact"] for r in litert} == {"model_fp32.tflite", "model_fp16.tflite"}
    assert all(r["status"] == "pass" and r["cast_inputs"] == {"tokens": "int64 -> int32"} for r in litert)
    fp32_row = next(r for r in litert if r["artifact"] == "model_fp32.tflite")
    assert fp32_row["metrics"]["max_abs"] < 1e-4
    assert "inputs cast as fed: tokens int64 -> int32" in (tmp_path / "v" / "parity.md").read_text()

    # A token id int32 cannot hold is refused, never wrapped around.
    art = resolve_artifact(run / "model_fp32.tflite")
    with open_runtime(art) as session:
        good = np.zeros((1, *art.spec.inputs[0].shape[1:]), np.int64)
        session.run({"tokens": good})
        with pytest.raises(ValidationInputError, match="do not fit the artifact's int32 input"):
            session.run({"tokens": good + 2**40})


def test_the_planner_asks_litert_torch_for_what_it_makes_and_refuses_it_an_onnx_file(tmp_path):
    options = TFConvertOptions(saved_model=True, precisions=("fp32", "int8"))
    assert "makes no SavedModel" in LiteRtTorchRoute.refusal(options)  # pinned: all or nothing
    partial = TFConvertOptions(saved_model=True, precisions=("fp32", "int8"), partial=True)
    assert LiteRtTorchRoute.refusal(partial) is None  # the planner takes the fp32 file alone
    only_saved_model = TFConvertOptions(saved_model=True, precisions=(), partial=True)
    assert "makes no SavedModel" in LiteRtTorchRoute.refusal(only_saved_model)

    from tests.conftest import export_lstm

    onnx_file = export_lstm(tmp_path / "lstm.onnx")
    comparison = compare_backends(onnx_file, tmp_path / "run", TFConvertOptions(), backends=["litert-torch"])
    rows = [r for r in comparison.rows if r.backend == "litert-torch"]
    assert rows and all(r.status == RowStatus.NOT_MADE for r in rows)
    if LITERT_PYTHON.is_file():
        assert all("converts a PyTorch checkpoint" in r.message for r in rows), rows


@pytest.mark.slow  # two calibrated quantizations and their validation: about two minutes here
@needs_litert
def test_litert_torch_int8_is_calibrated_on_the_training_split_and_keeps_the_top1(cnn_copy, tmp_path):
    run = tmp_path / "run"
    onnxpipe(
        "convert", str(cnn_copy / "checkpoint.pt"), "--backend", "litert-torch", "--to", "tflite",
        "--precision", "int8,int16x8", "--out", str(run), check=True,
    )  # fmt: skip
    onnxpipe(
        "validate", "--reference", str(cnn_copy / "checkpoint.pt"), "--candidate", str(run / "model_int8.tflite"),
        "--candidate", str(run / "model_int16x8.tflite"), "--out", str(tmp_path / "v"), "--devices", "cpu",
    )  # fmt: skip
    # Measured on the trained digits CNN: top-1 agreement 0.987 (int8) and 0.99 (int16x8), but a max
    # abs of 7.7 on the logits (TensorFlow's converter: 2.1), over the int8 tolerance: validation
    # refuses both, and the planner keeps onnx2tf's int8 file, which comes first anyway.
    rows = json.loads((tmp_path / "v" / "parity.json").read_text())["results"]
    litert = {r["artifact"]: r for r in rows if r["runtime"] == "ai-edge-litert"}
    assert set(litert) == {"model_int8.tflite", "model_int16x8.tflite"}
    for r in litert.values():  # quantized for real (not float weights), and calibrated: the top-1 holds
        assert r["metrics"]["top1_agreement"] >= 0.95 and r["metrics"]["max_abs"] > 1e-3, r
    assert (run / "model_int8.tflite").stat().st_size < 0.5 * (cnn_copy / "model_fp32.tflite").stat().st_size
