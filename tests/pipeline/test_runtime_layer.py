"""One runtime layer: converters run what they make through the Runtime classes, with their fallback."""

from __future__ import annotations

import json

import pytest

from onnxpipe.models.artifact import Artifact, Format
from onnxpipe.pipeline.artifacts import resolve_artifact
from onnxpipe.validation.runtimes import open_runtime
from tests.conftest import onnxpipe


@pytest.fixture
def opset1_average_pool(tmp_path):
    """An opset-1 AveragePool graph: ONNX Runtime has no kernel for it, onnx2tf converts it.

    Eight channels on an 8x8 image: the shape fits NCHW and NHWC alike, so the conversion has to
    measure which layout onnx2tf used (the probe that used to open ONNX Runtime by itself).
    """
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 8, 8, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 8, 4, 4])
    pool = helper.make_node("AveragePool", ["x"], ["y"], kernel_shape=[2, 2], strides=[2, 2])
    model = helper.make_model(
        helper.make_graph([pool], "pool", [x], [y]), opset_imports=[helper.make_opsetid("", 1)]
    )
    model.ir_version = 3
    onnx.checker.check_model(model)
    path = tmp_path / "pool.onnx"
    onnx.save(model, str(path))
    return path


def test_the_runtime_chain_falls_back_to_the_reference_evaluator(opset1_average_pool):
    import numpy as np
    import onnxruntime as ort

    with pytest.raises(Exception, match="AveragePool"):  # the premise: ONNX Runtime refuses it
        ort.InferenceSession(str(opset1_average_pool), providers=["CPUExecutionProvider"])
    art = resolve_artifact(opset1_average_pool)
    x = np.arange(2 * 8 * 8 * 8, dtype=np.float32).reshape(2, 8, 8, 8)
    with open_runtime(art) as runtime:
        assert runtime.name == "onnx-reference"
        y = runtime.run({"x": x})["y"]
    np.testing.assert_allclose(y, x.reshape(2, 8, 4, 2, 4, 2).mean(axis=(3, 5)), rtol=1e-6)


def test_an_onnx_file_onnx_runtime_cannot_load_converts_and_validates(opset1_average_pool, tmp_path):
    out = tmp_path / "out"
    proc = onnxpipe("convert", str(opset1_average_pool), "--precision", "fp32", "--out", str(out))
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stdout + proc.stderr
    proc = onnxpipe(
        "validate", "--reference", str(opset1_average_pool), "--candidate", str(out / "saved_model"),
        "--candidate", str(out / "model_fp32.tflite"), "--out", str(tmp_path / "check"), "--devices", "cpu",
    )  # fmt: skip
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stdout + proc.stderr
    report = json.loads((tmp_path / "check" / "parity.json").read_text())
    assert report["reference"]["runtime"] == "onnx-reference"
    ran = [r for r in report["results"] if r["status"] != "unavailable"]
    assert {r["artifact"] for r in ran} == {"saved_model", "model_fp32.tflite"}
    assert all(r["status"] == "pass" and r["metrics"]["max_abs"] < 1e-5 for r in ran)
    # The layout onnx2tf used was measured through the runtime layer, and recorded.
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["artifacts"]["model_fp32.tflite"]["inputs"][0]["perm"] == [0, 2, 3, 1]


def test_an_artifact_no_runtime_can_load_is_an_environment_problem_naming_each_reason(tmp_path):
    from onnxpipe.models.errors import EnvironmentProblem
    from onnxpipe.models.spec import ModelSpec, TensorSpec

    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"not an onnx file")
    spec = ModelSpec(
        "g", (TensorSpec("x", ("batch", 2), "float32"),), (TensorSpec("y", ("batch", 2), "float32"),)
    )
    with (
        pytest.raises(
            EnvironmentProblem, match=r"onnxruntime: cannot load it .*onnx-reference: cannot load it"
        ),
        open_runtime(Artifact(garbage, Format.ONNX, spec)),
    ):
        pass


def test_locate_searches_a_model_onnx_runtime_cannot_load(opset1_average_pool, tmp_path):
    """``--locate`` runs both sides through the runtime layer: the reference evaluator gives the ONNX
    side's tensors where ONNX Runtime has no kernel."""
    import numpy as np

    from onnxpipe.validation.locate import locate

    out = tmp_path / "out"
    proc = onnxpipe("convert", str(opset1_average_pool), "--precision", "fp32", "--out", str(out))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    onnx_art = resolve_artifact(opset1_average_pool)
    tflite = resolve_artifact(out / "model_fp32.tflite")
    x = np.random.default_rng(0).random((2, 8, 8, 8), dtype=np.float32)
    report = locate(onnx_art, tflite, {"x": x})
    (layer,) = report.layers
    assert layer.op_type == "AveragePool" and layer.matched is not None
    assert layer.output_error is not None and layer.output_error < 1e-6
    assert report.located is None


def test_a_runtime_times_its_own_call_not_the_work_around_it(tmp_path):
    """``inference_s`` is set by every run, to the framework's call inside the whole ``run``."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 8, 8, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 8, 8, 8])
    model = helper.make_model(
        helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g", [x], [y]),
        opset_imports=[helper.make_opsetid("", 17)],
    )
    path = tmp_path / "relu.onnx"
    onnx.save(model, str(path))
    art = resolve_artifact(path)
    import time

    with open_runtime(art) as runtime:
        assert runtime.inference_s is None
        t0 = time.perf_counter()
        runtime.run({"x": np.ones((1, 8, 8, 8), np.float32)})
        whole = time.perf_counter() - t0
        assert 0 < runtime.inference_s <= whole
