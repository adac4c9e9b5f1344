import json
import shutil
import subprocess
import time

import onnx
import pytest
from onnx import numpy_helper

from tests.conftest import ROOT, onnxpipe


def _one_line_error(proc, code, pattern):
    import re

    assert proc.returncode == code, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, proc.stderr
    assert re.search(pattern, errors[0]), errors[0]


def test_help_is_instant_and_lists_every_command():
    t0 = time.perf_counter()
    proc = onnxpipe("--help", check=True)
    assert time.perf_counter() - t0 < 5  # no torch/TF import for --help
    for cmd in ("train", "export", "convert", "validate", "run"):
        assert cmd in proc.stdout


def test_missing_checkpoint(tmp_path):
    _one_line_error(onnxpipe("export", str(tmp_path / "nope.pt")), 2, r"nope\.pt: no such file")
    _one_line_error(onnxpipe("export", str(tmp_path)), 2, r"has no checkpoint\.pt")


def test_unknown_model_lists_valid_names(tmp_path):
    _one_line_error(
        onnxpipe("train", "--model", "resnet", "--out", str(tmp_path)),
        2,
        "unknown model 'resnet'; valid: cnn, gru, lstm, mlp",
    )


def test_checkpoint_that_is_not_ours(tmp_path):
    bad = tmp_path / "model.pt"
    bad.write_text("hello")
    _one_line_error(onnxpipe("convert", str(bad)), 2, r"model\.pt: not a readable PyTorch checkpoint")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pt"]


def test_verbose_shows_the_traceback(tmp_path):
    proc = onnxpipe("--verbose", "export", str(tmp_path / "nope.pt"))
    assert proc.returncode == 2 and "Traceback" in proc.stderr


def test_bad_flags_are_usage_errors(tmp_path, cnn_run):
    proc = onnxpipe("convert", str(cnn_run / "model.onnx"), "--precision", "fp8", "--out", str(tmp_path))
    assert (
        proc.returncode == 2
        and "unknown precision 'fp8'; valid: dynamic_int8, fp16, fp32, int16x8, int8" in proc.stderr
    )
    proc = onnxpipe("validate")
    assert proc.returncode == 2 and "give RUN_DIR, or --reference" in proc.stderr
    proc = onnxpipe("validate", str(cnn_run), "--reference", str(cnn_run / "checkpoint.pt"))
    assert proc.returncode == 2 and "not both" in proc.stderr
    _one_line_error(onnxpipe("validate", str(tmp_path / "none")), 2, "no such run directory")


def test_convert_checkpoint_through_onnx_to_another_folder(cnn_run, tmp_path):
    out = tmp_path / "converted"
    proc = onnxpipe(
        "convert",
        str(cnn_run / "checkpoint.pt"),
        "--to",
        "tflite",
        "--precision",
        "fp16",
        "--out",
        str(out),
        check=True,
    )
    assert sorted(p.name for p in out.iterdir()) == [
        "backends", "backends.json", "backends.md", "manifest.json", "model.onnx", "model_fp16.tflite"
    ]  # fmt: skip
    assert "tflite:" in proc.stdout and "NHWC" in proc.stdout
    # The planner (the default) kept the first route's file: a link to the validated one, not a copy.
    kept = out / "model_fp16.tflite"
    assert kept.stat().st_ino == (out / "backends" / "onnx2tf" / "model_fp16.tflite").stat().st_ino


def test_general_validate_form_and_a_caught_parity_failure(cnn_run, tmp_path):
    bad = tmp_path / "perturbed.onnx"
    model = onnx.load(str(cnn_run / "model.onnx"))
    init = model.graph.initializer[0]
    w = numpy_helper.to_array(init).copy()
    w *= 1.05
    init.CopyFrom(numpy_helper.from_array(w, init.name))
    onnx.save(model, str(bad))
    shutil.copytree(cnn_run / "saved_model", tmp_path / "saved_model")
    proc = onnxpipe(
        "validate",
        "--reference", str(cnn_run / "checkpoint.pt"),
        "--candidate", str(bad),
        "--candidate", str(tmp_path / "saved_model"),
        "--out", str(tmp_path),
        "--devices", "cpu",
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    report = json.loads((tmp_path / "parity.json").read_text())
    assert report["passed"] is False
    status = {r["artifact"]: r["status"] for r in report["results"]}
    assert status == {"perturbed.onnx": "fail", "saved_model": "pass"}
    assert "parity FAILED" in proc.stdout
    assert "first failing hop: checkpoint.pt -> perturbed.onnx" in proc.stdout
    # --fail-on none reports the same failure but exits 0
    proc = onnxpipe(
        "validate",
        "--reference",
        str(cnn_run / "checkpoint.pt"),
        "--candidate",
        str(bad),
        "--out",
        str(tmp_path),
        "--devices",
        "cpu",
        "--fail-on",
        "none",
    )
    assert proc.returncode == 0 and "fail" in proc.stdout


def test_onnx_file_as_the_reference(cnn_run, tmp_path):
    proc = onnxpipe(
        "validate",
        "--reference",
        str(cnn_run / "model.onnx"),
        "--candidate",
        str(cnn_run / "model_fp32.tflite"),
        "--out",
        str(tmp_path),
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads((tmp_path / "parity.json").read_text())
    assert report["reference"]["runtime"] == "onnxruntime"
    tflite = [r for r in report["results"] if r["artifact"] == "model_fp32.tflite"]
    assert {r["runtime"] for r in tflite} == {
        "ai-edge-litert",
        "ai-edge-litert-ref",
        "tf.lite",
        "tflite-runtime",
    }
    assert all(r["metrics"]["max_abs"] < 1e-4 for r in tflite if r["status"] != "unavailable")
    assert (tmp_path / "report.html").is_file()


def test_mlp_end_to_end(tmp_path):
    out = tmp_path / "mlp"
    proc = onnxpipe("run", "--model", "mlp", "--out", str(out), "--epochs", "5")
    assert proc.returncode == 0, proc.stderr
    report = json.loads((out / "parity.json").read_text())
    assert report["passed"] and {r["artifact"] for r in report["results"]} >= {
        "model.onnx",
        "saved_model",
        "model_fp32.tflite",
        "model_fp16.tflite",
    }
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["artifacts"]["model_fp32.tflite"]["inputs"][0]["perm"] is None  # 2-D input: no transpose
    assert "stage times: train" in proc.stdout


def test_make_stage_targets_are_file_targets(cnn_copy):
    args = ["make", "-q", "-C", str(ROOT), f"RUN={cnn_copy}", "STAMP=Makefile"]
    assert subprocess.run([*args, "validate"], check=False).returncode == 0  # everything up to date
    (cnn_copy / "model.onnx").touch()
    assert subprocess.run([*args, "train"], check=False).returncode == 0
    assert subprocess.run([*args, "export"], check=False).returncode == 0
    assert subprocess.run([*args, "convert"], check=False).returncode == 1  # stale: ONNX is newer
    assert subprocess.run([*args, "validate"], check=False).returncode == 1


@pytest.mark.parametrize(
    "command",
    ["train", "export", "convert", "validate", "run", "report", "status", "bench", "routes", "doctor"],
)
def test_every_command_documents_an_example(command):
    assert "Example" in onnxpipe(command, "--help", check=True).stdout
    assert f"onnxpipe {command}" in (ROOT / "README.md").read_text()


def test_re_export_forgets_artifacts_converted_from_the_old_onnx(cnn_copy):
    onnxpipe("export", str(cnn_copy), "--opset", "17", check=True)
    manifest = json.loads((cnn_copy / "manifest.json").read_text())
    assert set(manifest["artifacts"]) == {"model.onnx"}  # the TF artifacts came from the previous ONNX file
    proc = onnxpipe("validate", str(cnn_copy), check=True)
    assert "model_fp16.tflite" not in proc.stdout and "model.onnx" in proc.stdout


@pytest.mark.slow
def test_mobilenet_end_to_end(tmp_path):
    out = tmp_path / "mobilenet"
    proc = onnxpipe("run", "--model", "mobilenet", "--out", str(out), "--epochs", "1", "--fail-on", "fp32")
    assert proc.returncode == 0, proc.stderr
    report = json.loads((out / "parity.json").read_text())
    rows = {(r["artifact"], r["runtime"]): r for r in report["results"] if r["device"] == "cpu"}
    assert rows[("model_fp32.tflite", "ai-edge-litert")]["status"] == "pass"
    assert rows[("saved_model", "tensorflow")]["status"] == "pass"
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["artifacts"]["model_fp32.tflite"]["inputs"][0]["layout"] == "NHWC"


def test_strict_device_fails_when_cuda_was_asked_for_and_not_attached(cnn_copy):
    proc = onnxpipe(
        "validate",
        str(cnn_copy),
        "--devices",
        "cpu,cuda",
        "--runtimes",
        "pytorch,onnxruntime",
        "--strict-device",
        "--force",
    )
    assert proc.returncode == 3, proc.stderr
    assert (
        "--strict-device: CUDA was asked for but not attached: checkpoint.pt on pytorch: no CUDA device"
        in proc.stderr
    )
    assert (cnn_copy / "parity.json").is_file()  # the report is written before the verdict
    assert (
        onnxpipe(
            "validate", str(cnn_copy), "--devices", "cpu", "--runtimes", "onnxruntime", "--strict-device"
        ).returncode
        == 0
    )
