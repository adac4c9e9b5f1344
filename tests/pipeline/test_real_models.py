"""Models onnxpipe did not make, as users have them (issue #25): files from public packages."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import onnx

from tests.conftest import onnxpipe

#: The ONNX package's own test data: an opset-6 AveragePool whose input is named "0" and output "1".
AVGPOOL = Path(onnx.__file__).parent / "backend/test/data/pytorch-converted/test_AvgPool2d/model.onnx"


def test_an_opset6_file_with_numeric_names_converts_and_validates_in_the_main_environment(tmp_path):
    """TensorFlow calls the SavedModel's input "0" by the identifier "arg_0": bound through its
    signature, the onnx2tf SavedModel is kept (before, only onnx-tf's environment could save it)."""
    source = tmp_path / "avgpool.onnx"
    shutil.copyfile(AVGPOOL, source)
    run = tmp_path / "run"
    proc = onnxpipe("convert", str(source), "--out", str(run), "--backend", "onnx2tf", check=True)
    assert "Traceback" not in proc.stderr
    proc = onnxpipe("validate", str(run), "--devices", "cpu", "--samples", "4", "--random", "4")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads((run / "parity.json").read_text())
    rows = {(r["artifact"], r["runtime"]): r["status"] for r in report["results"]}
    assert rows[("saved_model", "tensorflow")] == "pass"
    assert rows[("model_fp32.tflite", "ai-edge-litert")] == "pass"
    assert "Unsupported ONNX opset" not in proc.stderr  # ONNX Runtime's optimizer warnings are not shown
    source.write_bytes(source.read_bytes() + b"\0")  # the reference changed: validating against it is refused
    proc = onnxpipe("validate", str(run), "--devices", "cpu", "--force")
    assert proc.returncode == 2 and "which changed since (convert it again)" in proc.stderr, proc.stderr
