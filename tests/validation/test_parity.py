import dataclasses
import json

import numpy as np
import onnx
from onnx import numpy_helper

from models.artifact import TensorBinding
from pipeline.rundir import RunDir
from pipeline.stages import run_dir_artifacts
from validation.inputs import InputConfig, build_inputs
from validation.parity import validate
from validation.report import render_markdown

SMALL = InputConfig(samples=64, random=16, batch=16, batch1=4)


def test_run_directory_report_passes_with_every_field(cnn_run):
    report = json.loads((cnn_run / "parity.json").read_text())
    assert report["passed"] is True
    rows = {r["artifact"]: r for r in report["results"]}
    assert set(rows) == {"model.onnx", "saved_model", "model_fp32.tflite", "model_fp16.tflite"}
    assert {r["runtime"] for r in rows.values()} == {"onnxruntime", "tensorflow", "ai-edge-litert"}
    for r in rows.values():
        assert r["status"] == "pass" and r["device"] == "cpu"
        assert set(r["metrics"]) >= {"max_abs", "max_rel", "mean_abs", "cosine", "snr_db", "top1_agreement"}
        assert set(r["tolerance"]) == {"atol", "rtol", "min_cosine", "min_top1"}
        assert r["metrics"]["top1_agreement"] == 1.0
    assert rows["model_fp32.tflite"]["metrics"]["max_abs"] < 1e-4
    assert rows["model_fp16.tflite"]["tolerance"]["atol"] > rows["model_fp32.tflite"]["tolerance"]["atol"]
    assert report["inputs"]["samples"] == 360 and report["inputs"]["batch_sizes"] == [32, 1]
    assert (
        "| `model_fp16.tflite` | ai-edge-litert | cpu | fp16 | **pass**"
        in (cnn_run / "parity.md").read_text()
    )


def test_inputs_are_real_samples_then_seeded_random():
    from models.registry import get_architecture

    spec = get_architecture("cnn").spec
    a, b = build_inputs(spec, SMALL), build_inputs(spec, SMALL)
    assert len(a) == 80 and a.labels.shape == (64,)
    np.testing.assert_array_equal(a.arrays["input"], b.arrays["input"])
    assert a.arrays["input"].min() >= 0 and a.arrays["input"].max() <= 1


def test_a_perturbed_weight_is_caught_and_blamed_on_its_hop(cnn_copy):
    onnx_path = cnn_copy / "model.onnx"
    model = onnx.load(str(onnx_path))
    init = model.graph.initializer[0]
    w = numpy_helper.to_array(init).copy()
    w.flat[0] += 0.5
    init.CopyFrom(numpy_helper.from_array(w, init.name))
    onnx.save(model, str(onnx_path))
    reference, candidates = run_dir_artifacts(RunDir(cnn_copy))
    report = validate(reference, candidates, SMALL)
    assert not report.passed
    rows = {r.artifact: r for r in report.results}
    assert rows["model.onnx"].status == "fail"
    assert "exceeds atol" in rows["model.onnx"].message
    # The TF artifacts were converted from the good ONNX file: they still pass, so the hop is visible.
    assert rows["model_fp32.tflite"].status == "pass"
    assert rows["model.onnx"].vs_parent.max_abs == rows["model.onnx"].metrics.max_abs
    assert "**fail**" in render_markdown(report)


def test_a_wrong_layout_is_an_error_not_a_silent_pass(cnn_run):
    reference, candidates = run_dir_artifacts(RunDir(cnn_run))
    tfl = next(c for c in candidates if c.label == "model_fp32.tflite")
    wrong = dataclasses.replace(tfl, inputs=(TensorBinding("input", "input", None, "NCHW"),))
    report = validate(reference, [wrong], SMALL)
    (row,) = report.results
    assert row.status in ("error", "fail") and not report.passed
