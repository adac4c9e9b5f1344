import json
import shutil

import onnx
import pytest
from onnx import numpy_helper

from onnxpipe.converters.onnx_to_saved_model import TFConvertOptions, convert_onnx2tf
from onnxpipe.models.data import model_arrays
from onnxpipe.pipeline.artifacts import resolve_artifact
from onnxpipe.pipeline.rundir import RunDir
from onnxpipe.validation.locate import locate
from onnxpipe.validation.runtimes import open_runtime
from tests.conftest import onnxpipe


def _artifacts(run):
    return {a.label: a for a in RunDir(run).artifacts()}


@pytest.fixture(scope="module")
def buggy_tflite(cnn_run, tmp_path_factory):
    """A TFLite file converted from the CNN's ONNX with one weight of the second Conv perturbed."""
    work = tmp_path_factory.mktemp("bug")
    model = onnx.load(str(cnn_run / "model.onnx"))
    conv = [n for n in model.graph.node if n.op_type == "Conv"][1]
    init = next(i for i in model.graph.initializer if i.name == conv.input[1])
    w = numpy_helper.to_array(init).copy()
    w[0] += 0.3
    init.CopyFrom(numpy_helper.from_array(w, init.name))
    onnx.save(model, str(work / "bad.onnx"))
    bad = _artifacts(cnn_run)["model.onnx"].with_path(work / "bad.onnx")
    (tflite,) = convert_onnx2tf(
        bad, work, TFConvertOptions(saved_model=False, precisions=("fp32",)), run_with=open_runtime
    )
    return tflite.path, conv.name


def test_planted_bug_is_caught_its_hop_named_and_its_op_located(cnn_copy, buggy_tflite):
    path, conv_name = buggy_tflite
    shutil.copyfile(path, cnn_copy / "model_fp32.tflite")
    proc = onnxpipe(
        "validate",
        str(cnn_copy),
        "--locate",
        "--devices",
        "cpu",
        "--runtimes",
        "onnxruntime,tensorflow,ai-edge-litert",
    )
    assert proc.returncode == 1, proc.stderr
    report = json.loads((cnn_copy / "parity.json").read_text())
    assert report["first_failing_hop"] == "saved_model -> model_fp32.tflite"
    (found,) = report["locate"]  # only the failing TFLite file is searched
    assert found["candidate"] == "model_fp32.tflite" and found["reference"] == "model.onnx"
    assert found["located"]["node"] == conv_name and found["located"]["op_type"] == "Conv"
    assert found["located"]["input_error"] < 1e-5 < 1e-1 < found["located"]["output_error"]
    assert f"error starts at Conv node '{conv_name}'" in proc.stdout
    assert "## Layer-wise search" in (cnn_copy / "parity.md").read_text()


def test_fused_ops_are_not_mistaken_for_a_jump(cnn_run):
    arts = _artifacts(cnn_run)
    x, _ = model_arrays(arts["model.onnx"].spec, "validation")
    found = locate(arts["model.onnx"], arts["model_fp32.tflite"], {"input": x[:8]})
    assert found.located is None, found.summary()
    fused = [layer.op_type for layer in found.layers if layer.fused]
    assert fused == ["Conv", "Conv"]  # onnx2tf fuses each Conv with its ReLU
    assert all(layer.output_error < 1e-5 for layer in found.layers if not layer.fused)


def test_int8_artifact_is_searched_against_the_fp32_reference(cnn_run, tmp_path):
    import tensorflow as tf

    arts = _artifacts(cnn_run)
    x_train, _ = model_arrays(arts["model.onnx"].spec, "train")

    def calibration():
        for i in range(64):
            yield {"input": x_train[i : i + 1].transpose(0, 2, 3, 1)}

    converter = tf.lite.TFLiteConverter.from_saved_model(str(cnn_run / "saved_model"))
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = calibration
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    path = tmp_path / "model_int8.tflite"
    path.write_bytes(converter.convert())
    int8 = resolve_artifact(path, arts["model.onnx"].spec)
    assert int8.precision == "int8" and int8.inputs[0].perm == (0, 2, 3, 1)
    x, _ = model_arrays(int8.spec, "validation")
    coarse = locate(arts["model.onnx"], int8, {"input": x[:8]}, threshold=0.05)
    assert coarse.located is None  # quantization noise stays below 5% at every layer
    errors = [layer.output_error for layer in coarse.layers if not layer.fused]
    assert all(1e-4 < e < 0.05 for e in errors), errors  # int8 tensors were dequantized and compared
    fine = locate(arts["model.onnx"], int8, {"input": x[:8]}, threshold=1e-3)
    assert fine.located is not None and fine.located.op_type == "Relu"  # the first quantized layer
    assert fine.fused_into_located and fine.fused_into_located[0].startswith("Conv")
    assert fine.worst_amplifier is not None
