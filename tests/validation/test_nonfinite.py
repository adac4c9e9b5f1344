"""NaN and Inf are results, not crashes: a candidate's are a failure with where, a reference's an error."""

import json
import math

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from onnxpipe.validation.metrics import compare
from tests.conftest import onnxpipe


def _matmul(path, w):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])], "g", [x], [y], [numpy_helper.from_array(w, "w")]
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


def _strict(text: str):
    def refuse(constant):
        raise AssertionError(f"{constant} in a report: not strict JSON")

    return json.loads(text, parse_constant=refuse)


@pytest.fixture
def models(tmp_path):
    w = np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32)
    nan, inf = w.copy(), w.copy()
    nan[1, 2] = np.nan  # a corrupted weight: NaN in column 2 of every row
    inf[0, 0] = np.inf
    return (
        _matmul(tmp_path / "ref.onnx", w),
        _matmul(tmp_path / "nan.onnx", nan),
        _matmul(tmp_path / "inf.onnx", inf),
    )


def test_non_finite_candidate_outputs_are_a_failure_with_count_and_place(models, tmp_path):
    ref, nan, inf = models
    out = tmp_path / "v"
    proc = onnxpipe(
        "validate", "--reference", str(ref), "--candidate", str(nan), "--candidate", str(inf), "--devices", "cpu",
        "--out", str(out),
    )  # fmt: skip
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    report = _strict((out / "parity.json").read_text())
    rows = {r["artifact"]: r for r in report["results"]}
    rows_n = 64 + 6 + 3 * 14  # every row's column 2: random and edge rows, and the sweep's (1, 2, 7 on 14)
    assert rows["nan.onnx"]["status"] == "fail" and rows["nan.onnx"]["metrics"]["nonfinite"] == rows_n
    assert rows["nan.onnx"]["metrics"]["nonfinite_at"] == [0, 2]
    assert "non-finite values (NaN or Inf), the first at [0, 2]" in rows["nan.onnx"]["message"]
    assert "exceeds atol" not in rows["nan.onnx"]["message"]  # the finite values are right
    assert rows["nan.onnx"]["blame"] == "ref.onnx -> nan.onnx"
    assert rows["inf.onnx"]["status"] == "fail" and rows["inf.onnx"]["metrics"]["nonfinite"] > 0
    assert rows["inf.onnx"]["metrics"]["nonfinite_at"][1] == 0
    for r in rows.values():
        assert math.isfinite(r["noise"]) and math.isfinite(r["metrics"]["max_abs"])
    assert "non-finite values (NaN or Inf)" in (out / "parity.md").read_text()
    assert "non-finite values (NaN or Inf)" in (out / "report.html").read_text()
    assert f"non-finite {rows_n}" in proc.stdout


def test_a_reference_with_non_finite_outputs_is_an_error_naming_the_output(models, tmp_path):
    ref, nan, _ = models
    out = tmp_path / "v"
    proc = onnxpipe(
        "validate", "--reference", str(nan), "--candidate", str(ref), "--devices", "cpu", "--out", str(out)
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert "the reference gives non-finite values (NaN or Inf)" in proc.stderr
    assert "in output 'y' (the first at [0, 2])" in proc.stderr
    assert not (out / "parity.json").exists()


@pytest.mark.parametrize(
    "reference, candidate",
    [
        (np.zeros((4, 3)), np.zeros((4, 3))),  # zero-variance, identical
        (np.zeros((4, 3)), np.ones((4, 3))),  # a constant zero reference
        (np.full((4, 3), 5.0), np.full((4, 3), 5.0 + 1e-7)),  # constant, nearly equal
        (np.zeros((0, 3)), np.zeros((0, 3))),  # an empty group
        (np.full((2, 2), 1e300), np.full((2, 2), -1e300)),  # squares overflow float64
        (np.array([[np.inf, 1.0]]), np.array([[np.inf, 1.0]])),  # the same Inf on both sides agrees
    ],
)
def test_metrics_are_numbers_for_every_valid_input(reference, candidate):
    m = compare(reference, candidate)
    for name, value in m.to_dict().items():
        if isinstance(value, float):
            assert math.isfinite(value), (name, value)
    assert m.nonfinite == 0
