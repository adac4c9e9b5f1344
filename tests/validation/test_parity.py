import dataclasses
import json
import shutil

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from onnxpipe.models.artifact import Artifact, Format, TensorBinding
from onnxpipe.models.errors import UnknownNameError, UsageError
from onnxpipe.pipeline.artifacts import resolve_artifact
from onnxpipe.pipeline.rundir import RunDir
from onnxpipe.pipeline.stages import run_dir_artifacts
from onnxpipe.validation.inputs import InputConfig, build_inputs
from onnxpipe.validation.parity import ParityReport, ParityResult, ValidateOptions, validate
from onnxpipe.validation.report import render_markdown
from onnxpipe.validation.runtimes.tflite_edge import EDGE_PYTHON

SMALL = ValidateOptions(inputs=InputConfig(samples=64, random=16, batch=16), devices=("cpu",))


def _rows(report):
    return {(r["artifact"], r["runtime"], r["device"]): r for r in report["results"]}


def test_run_directory_report_covers_every_runtime_and_device(cnn_run):
    report = json.loads((cnn_run / "parity.json").read_text())
    assert report["passed"] is True and report["first_failing_hop"] is None
    rows = _rows(report)
    tflite_runtimes = {"ai-edge-litert", "ai-edge-litert-ref", "tf.lite", "tflite-runtime"}
    assert {rt for (a, rt, d) in rows if a == "model_fp16.tflite"} == tflite_runtimes
    for key, r in rows.items():
        if key[2] == "cuda":  # no GPU in CI: reported with the reason, never a silent CPU fallback
            assert r["status"] == "unavailable" and r["message"]
            continue
        if key[1] == "tflite-runtime" and not EDGE_PYTHON.is_file():
            assert r["status"] == "unavailable" and "make setup-edge" in r["message"]
            continue
        assert r["status"] == "pass", r
        assert set(r["metrics"]) >= {"max_abs", "max_rel", "mean_abs", "cosine", "snr_db", "top1_agreement"}
        assert set(r["tolerance"]) == {"atol", "rtol", "min_cosine", "min_top1"}
        assert 0 <= r["noise"] <= r["tolerance"]["atol"]
        assert set(r["groups"]) == {"validation", "random", "edge"}
        assert r["batch_sizes"] == [1, 2, 7, 32] and r["dynamic_axes"] == {"input": {"batch": "dynamic"}}
        assert sum(r["histogram"]["counts"]) + r["histogram"]["zeros"] > 0
    assert rows[("model_fp32.tflite", "ai-edge-litert", "cpu")]["metrics"]["max_abs"] < 1e-4
    assert rows[("model_fp32.tflite", "ai-edge-litert", "cpu")]["vs_parent"]["max_abs"] < 1e-4
    assert report["inputs"]["groups"] == {"validation": 360, "random": 64, "edge": 6}
    md = (cnn_run / "parity.md").read_text()
    assert "| `model_fp16.tflite` | ai-edge-litert-ref | cpu | fp16 | **pass**" in md


def test_inputs_are_samples_random_and_edge_cases():
    from onnxpipe.models.registry import get_architecture

    spec = get_architecture("cnn").spec
    a, b = build_inputs(spec, SMALL.inputs), build_inputs(spec, SMALL.inputs)
    assert len(a) == 64 + 16 + 6 and a.labels.shape == (64,)
    np.testing.assert_array_equal(a.arrays["input"], b.arrays["input"])
    edge = a.arrays["input"][80:]
    assert edge[0].max() == 0 and edge[2].min() == 1 and set(np.unique(edge[4])) == {0.0, 1.0}


def test_an_attention_mask_input_is_fed_padding_masks_that_attend_to_something():
    from onnxpipe.models.spec import ModelSpec, TensorSpec

    ids = TensorSpec("input_ids", ("batch", 8), "int64")
    mask = TensorSpec("attention_mask", ("batch", 8), "int64", kind="attention_mask")
    spec = ModelSpec("m", (ids, mask), (TensorSpec("logits", ("batch", 3)),), None, (0.0, 50.0))
    inputs = build_inputs(spec, InputConfig(random=40))
    rows = inputs.arrays["attention_mask"]
    assert rows.shape == (46, 8) and rows.dtype == np.int64
    lengths = rows.sum(axis=1)
    assert lengths.min() >= 1 and len(set(lengths[:40])) > 3  # never empty; lengths vary
    np.testing.assert_array_equal(rows, np.arange(8) < lengths[:, None])  # 1s, then 0s
    assert inputs.arrays["input_ids"].max() > 1  # the ids keep the model's range
    assert (
        spec.to_dict()["inputs"][1]["kind"] == "attention_mask" and "kind" not in spec.to_dict()["inputs"][0]
    )
    with pytest.raises(UnknownNameError):
        TensorSpec("x", (1,), kind="padding")


def test_a_waveform_input_gets_signals_as_edge_cases_not_constant_offsets():
    from onnxpipe.models.spec import ModelSpec, TensorSpec

    audio = TensorSpec("input_values", ("batch", 400), kind="waveform")
    spec = ModelSpec("m", (audio,), (TensorSpec("h", ("batch", 3)),), None, (-1.0, 1.0))
    edge = build_inputs(spec, InputConfig(random=4)).arrays["input_values"][4:]
    assert edge.shape == (6, 400) and np.abs(edge).max() <= 1.0
    assert not edge[0].any()  # silence
    spread = edge.max(axis=1) - edge.min(axis=1)
    assert (spread[1:] > 0.4).all()  # every other case varies over time: no DC offset alone
    plain = build_inputs(
        dataclasses.replace(spec, inputs=(TensorSpec("x", ("batch", 400)),)), InputConfig(random=4)
    )
    assert (np.ptp(plain.arrays["x"][4:], axis=1) == 0).sum() >= 3  # plain data keeps its constant cases


def _perturb_first_weight(path, delta):
    model = onnx.load(str(path))
    init = model.graph.initializer[0]
    w = numpy_helper.to_array(init).copy()
    w.flat[0] += delta
    init.CopyFrom(numpy_helper.from_array(w, init.name))
    onnx.save(model, str(path))


def test_a_perturbed_onnx_weight_is_caught_and_its_hop_named(cnn_copy):
    _perturb_first_weight(cnn_copy / "model.onnx", 0.5)
    reference, candidates = run_dir_artifacts(RunDir(cnn_copy))
    report = validate(reference, candidates, SMALL)
    assert not report.passed
    rows = {(r.artifact, r.runtime): r for r in report.results}
    bad = rows[("model.onnx", "onnxruntime")]
    assert bad.status == "fail" and "exceeds atol" in bad.message
    assert bad.blame == "checkpoint.pt -> model.onnx"
    assert report.first_failing_hop == "checkpoint.pt -> model.onnx"
    # The TF artifacts were converted from the good ONNX file: they pass, so the broken hop stands out.
    assert rows[("model_fp32.tflite", "ai-edge-litert")].status == "pass"
    assert "First failing hop: checkpoint.pt -> model.onnx" in render_markdown(report)
    # parity.json reads back into the same objects, and renders the same.
    path = report.write(cnn_copy / "parity.json")
    again = ParityReport.read(path)
    assert again == report and not again.passed and again.first_failing_hop == report.first_failing_hop
    assert render_markdown(again) == render_markdown(report)
    data = json.loads(path.read_text())
    assert data["schema_version"] == ParityReport.SCHEMA_VERSION and data["kind"] == "parity report"


def test_a_wrong_file_in_a_later_hop_is_blamed_on_that_hop(cnn_copy):
    # An fp16 file shipped as the fp32 artifact: ONNX and SavedModel are fine, the last hop is not.
    shutil.copyfile(cnn_copy / "model_fp16.tflite", cnn_copy / "model_fp32.tflite")
    reference, candidates = run_dir_artifacts(RunDir(cnn_copy))
    report = validate(reference, candidates, SMALL)
    rows = {(r.artifact, r.runtime): r for r in report.results}
    assert rows[("saved_model", "tensorflow")].status == "pass"
    bad = rows[("model_fp32.tflite", "ai-edge-litert")]
    assert bad.status == "fail" and bad.blame == "saved_model -> model_fp32.tflite"
    assert report.first_failing_hop == "saved_model -> model_fp32.tflite"


def test_a_wrong_layout_is_an_error_not_a_silent_pass(cnn_run):
    reference, candidates = run_dir_artifacts(RunDir(cnn_run))
    tfl = next(c for c in candidates if c.label == "model_fp32.tflite")
    wrong = dataclasses.replace(tfl, inputs=(TensorBinding("input", "input", None, "NCHW"),))
    report = validate(reference, [wrong], dataclasses.replace(SMALL, runtimes=("ai-edge-litert",)))
    (row,) = report.results
    assert row.status in ("error", "fail") and not report.passed


def test_dynamic_batch_is_validated_at_1_and_7_and_a_static_one_is_reported(cnn_run, tmp_path):
    reference, candidates = run_dir_artifacts(RunDir(cnn_run))
    onnx_art = next(c for c in candidates if c.label == "model.onnx")
    static = tmp_path / "static.onnx"
    model = onnx.load(str(cnn_run / "model.onnx"))
    for v in (*model.graph.input, *model.graph.output):
        v.type.tensor_type.shape.dim[0].dim_value = 1
    onnx.save(model, str(static))
    report = validate(reference, [onnx_art, onnx_art.with_path(static)], SMALL)
    dynamic, fixed = report.results
    assert dynamic.status == "pass" and {1, 7} <= set(dynamic.batch_sizes)
    assert dynamic.dynamic_axes == {"input": {"batch": "dynamic"}}
    assert fixed.status == "pass" and fixed.batch_sizes == [1]
    assert fixed.dynamic_axes == {"input": {"batch": "static 1"}}
    assert "dynamic axes made static" in render_markdown(report)


def test_onnx_reference_that_onnxruntime_cannot_load_runs_on_the_reference_evaluator(tmp_path):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])
    w = numpy_helper.from_array(np.arange(12, dtype=np.float32).reshape(4, 3) / 10, "W")
    b = numpy_helper.from_array(np.ones(3, np.float32), "B")
    nodes = [
        helper.make_node("Add", ["x", "x"], ["a"]),
        helper.make_node("Gemm", ["a", "W", "B"], ["y"], broadcast=1),
    ]
    w_in = helper.make_tensor_value_info("W", TensorProto.FLOAT, [4, 3])
    b_in = helper.make_tensor_value_info("B", TensorProto.FLOAT, [3])
    graph = helper.make_graph(nodes, "old", [x, w_in, b_in], [y], [w, b])  # IR 3: initializers are inputs too
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 6)])
    model.ir_version = 3
    path = tmp_path / "opset6.onnx"
    onnx.save(model, str(path))
    ref = resolve_artifact(path)
    opts = ValidateOptions(
        inputs=InputConfig(random=8, batch=4, sweep=(1,)), devices=("cpu",), runtimes=("onnx-reference",)
    )
    report = validate(ref, [ref], opts)
    assert report.reference.runtime == "onnx-reference"
    assert "onnxruntime could not load it" in report.reference.note
    assert report.results[0].status == "pass" and report.results[0].metrics.max_abs == 0


def test_fail_on_decides_which_failures_count():
    results = [
        ParityResult("a.tflite", "tflite", "ai-edge-litert", "cpu", "fp16", "fail"),
        ParityResult("b.tflite", "tflite", "ai-edge-litert", "cpu", "fp32", "pass"),
        ParityResult("c.onnx", "onnx", "onnxruntime", "cuda", "fp32", "unavailable"),
    ]
    verdicts = {f: ParityReport(None, None, results, fail_on=f).passed for f in ("any", "fp32", "none")}
    assert verdicts == {"any": False, "fp32": True, "none": True}
    results[1].status = "error"
    assert not ParityReport({}, {}, results, fail_on="fp32").passed


def test_options_are_checked():
    with pytest.raises(UnknownNameError, match="unknown runtime 'tensorrt'"):
        ValidateOptions(runtimes=("tensorrt",))
    with pytest.raises(UnknownNameError, match="unknown device 'tpu'"):
        ValidateOptions(devices=("cpu", "tpu"))
    with pytest.raises(UsageError, match="'cpu' must be among them"):
        ValidateOptions(devices=("cuda",))
    with pytest.raises(UsageError, match="batch sizes must be >= 1"):
        InputConfig(sweep=(0,))


def test_candidate_with_other_inputs_is_refused(cnn_run):
    reference, _ = run_dir_artifacts(RunDir(cnn_run))
    from onnxpipe.models.registry import get_architecture

    other = Artifact(cnn_run / "model.onnx", Format.ONNX, get_architecture("mlp").spec)
    other = dataclasses.replace(
        other,
        spec=dataclasses.replace(other.spec, inputs=(dataclasses.replace(other.spec.inputs[0], name="x"),)),
    )
    with pytest.raises(UsageError, match="differ from the reference's"):
        validate(reference, [other], SMALL)


def test_reference_that_no_runtime_can_run_is_a_usage_error(tmp_path):
    from onnxpipe.models.errors import InputFileError

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])
    node = helper.make_node("NoSuchOp", ["x"], ["y"], domain="com.example")  # passes onnx.checker
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid("com.example", 1)]
    model = helper.make_model(helper.make_graph([node], "g", [x], [y]), opset_imports=opsets)
    path = tmp_path / "unknown_op.onnx"
    onnx.save(model, str(path))
    ref = resolve_artifact(path)
    with pytest.raises(
        InputFileError,
        match=r"unknown_op\.onnx: the reference does not run on onnx-reference \(onnxruntime could not load it",
    ):
        validate(ref, [ref], SMALL)


def test_a_parity_report_from_a_newer_onnxpipe_or_of_another_kind_is_refused_with_the_reason(
    cnn_run, tmp_path
):
    from onnxpipe.models.errors import InputFileError

    data = json.loads((cnn_run / "parity.json").read_text())
    newer = tmp_path / "newer.json"
    newer.write_text(json.dumps(data | {"schema_version": ParityReport.SCHEMA_VERSION + 1}))
    with pytest.raises(InputFileError, match="written by a newer onnxpipe"):
        ParityReport.read(newer)
    bad = tmp_path / "bad.json"
    data["results"][0]["status"] = "maybe"
    bad.write_text(json.dumps(data))
    with pytest.raises(InputFileError, match=r"results\[0\]\.status: 'maybe' is not one of 'pass'"):
        ParityReport.read(bad)
    with pytest.raises(InputFileError, match="is an onnxpipe manifest, not a parity report"):
        ParityReport.read(cnn_run / "manifest.json")


def test_your_inputs_are_checked_against_the_model_and_every_mismatch_named(cnn_copy, tmp_path):
    from tests.conftest import onnxpipe

    before = (cnn_copy / "parity.json").read_bytes()
    bad = tmp_path / "bad.npz"
    np.savez(bad, input=np.zeros((20, 1, 8, 9), "float64"), extra=np.zeros(3))
    proc = onnxpipe("validate", str(cnn_copy), "--inputs", str(bad))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    for said in (
        "'input': shape [20, 1, 8, 9], expected ['N', 1, 8, 8]",
        "'input': dtype float64, expected float32",
        "'extra' is not an input of the model (inputs: input)",
    ):
        assert said in proc.stderr, proc.stderr
    assert (cnn_copy / "parity.json").read_bytes() == before  # refused before anything ran
    missing = tmp_path / "missing.npz"
    np.savez(missing, other=np.zeros((2, 1, 8, 8), "float32"))
    proc = onnxpipe("validate", str(cnn_copy), "--inputs", str(missing))
    assert proc.returncode == 2 and "no array for input 'input'" in proc.stderr


def test_your_inputs_are_the_first_group_from_an_npz_or_a_folder_of_npy(cnn_copy, tmp_path):
    from tests.conftest import onnxpipe

    samples = np.random.default_rng(3).uniform(0, 1, (20, 1, 8, 8)).astype("float32")
    folder = tmp_path / "samples"
    folder.mkdir()
    np.save(folder / "input.npy", samples[:12])
    np.savez(folder / "more.npz", input=samples[12:])  # files are concatenated in name order
    proc = onnxpipe("validate", str(cnn_copy), "--inputs", str(folder), "--devices", "cpu", "--random", "8")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads((cnn_copy / "parity.json").read_text())
    assert list(report["inputs"]["groups"].items()) == [("inputs", 20), ("random", 8), ("edge", 6)]
    assert report["inputs"]["source"] == "--inputs samples"
    onnx_row = next(r for r in report["results"] if r["artifact"] == "model.onnx" and r["device"] == "cpu")
    assert list(onnx_row["groups"]) == ["inputs", "random", "edge"] and onnx_row["status"] == "pass"
    # A changed file is a changed input of the stage: validation reruns instead of being up to date.
    np.save(folder / "input.npy", samples[:12] * 0.5)
    proc = onnxpipe("validate", str(cnn_copy), "--inputs", str(folder), "--devices", "cpu", "--random", "8")
    assert proc.returncode == 0 and "up to date" not in proc.stdout + proc.stderr


def test_a_candidate_from_elsewhere_never_replaces_the_run_s_own_report(cnn_copy, tmp_path):
    from tests.conftest import onnxpipe

    before = (cnn_copy / "parity.json").read_bytes()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    shutil.copy(cnn_copy / "model_fp32.tflite", elsewhere / "other.tflite")
    proc = onnxpipe(
        "validate", "--reference", str(cnn_copy / "model.onnx"), "--candidate", str(elsewhere / "other.tflite"),
        "--devices", "cpu", "--runtimes", "onnxruntime,ai-edge-litert",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (cnn_copy / "parity.json").read_bytes() == before
    target = cnn_copy.parent / f"{cnn_copy.name}-vs-other"
    assert (
        "is not an artifact of the run" in proc.stdout + proc.stderr
        and str(target) in proc.stdout + proc.stderr
    )
    report = json.loads((target / "parity.json").read_text())
    assert {r["artifact"] for r in report["results"]} == {"other.tflite"}
    # The run's own artifacts still go to the run's report.
    proc = onnxpipe(
        "validate", "--reference", str(cnn_copy / "model.onnx"), "--candidate", str(cnn_copy / "model_fp16.tflite"),
        "--devices", "cpu", "--runtimes", "onnxruntime,ai-edge-litert",
    )  # fmt: skip
    assert proc.returncode == 0 and (cnn_copy / "parity.json").read_bytes() != before


def test_a_runtime_that_crashes_in_native_code_is_an_error_row_and_the_report_stands(
    cnn_copy, tmp_path, monkeypatch
):
    """A host whose runtime aborts (as an interpreter does on a malformed flatbuffer) on one artifact."""
    from onnxpipe.pipeline.stages import validate_stage
    from onnxpipe.validation.runtimes import hosted

    handler = tmp_path / "aborting_host.py"
    handler.write_text(
        "import os\n"
        "from onnxpipe.validation.runtime_host import handle as serve\n\n\n"
        "def handle(header, arrays, emit):\n"
        "    if header.get('op') == 'run' and os.environ.get('ONNXPIPE_OPENED', '').endswith('model_fp16.tflite'):\n"
        "        os.abort()  # a real SIGABRT, in the middle of an inference\n"
        "    if header.get('op') == 'open' and header['runtime'] == 'ai-edge-litert':\n"
        "        os.environ['ONNXPIPE_OPENED'] = header['artifact']['path']\n"
        "    elif header.get('op') == 'open':\n"
        "        os.environ['ONNXPIPE_OPENED'] = ''\n"
        "    return serve(header, arrays, emit)\n"
    )
    hosted.close_host()
    monkeypatch.setattr(hosted, "_HANDLER", handler)
    reference, candidates = run_dir_artifacts(RunDir(cnn_copy))
    options = dataclasses.replace(SMALL, runtimes=("onnxruntime", "tensorflow", "ai-edge-litert"))
    try:
        report = validate_stage(reference, candidates, cnn_copy, options, force=True)
    finally:
        hosted.close_host()
    rows = {(r.artifact, r.runtime): r for r in report.results}
    crashed = rows[("model_fp16.tflite", "ai-edge-litert")]
    assert crashed.status == "error" and "killed by SIGABRT (signal 6)" in crashed.message, crashed.message
    assert "the other results stand" in crashed.message
    others = [
        r for k, r in rows.items() if k != ("model_fp16.tflite", "ai-edge-litert") and r.device == "cpu"
    ]
    assert others and all(r.status == "pass" for r in others), [
        (r.artifact, r.runtime, r.status) for r in others
    ]
    written = ParityReport.read(cnn_copy / "parity.json")  # the report was written, with the crash in it
    assert any(r.status == "error" and "SIGABRT" in (r.message or "") for r in written.results)
    assert not written.passed  # an error fails the run (exit code 1), as documented
