import json

import numpy as np
import onnx
import pytest
import torch
from torch import nn

from onnxpipe.converters.onnx_to_saved_model import TFConvertOptions, _calibration_images, convert_onnx2tf
from onnxpipe.models.artifact import Artifact, Format
from onnxpipe.models.errors import ConversionError, UsageError
from onnxpipe.models.fs import sha256_path
from onnxpipe.pipeline.artifacts import spec_from_onnx
from onnxpipe.validation.runtimes import open_runtime


def test_run_records_nhwc_layout_for_every_tf_artifact(cnn_run):
    manifest = json.loads((cnn_run / "manifest.json").read_text())
    arts = manifest["artifacts"]
    assert set(arts) == {"model.onnx", "saved_model", "model_fp32.tflite", "model_fp16.tflite"}
    assert arts["model.onnx"]["inputs"][0]["perm"] is None
    for name in ("saved_model", "model_fp32.tflite", "model_fp16.tflite"):
        assert arts[name]["inputs"][0] == {
            "name": "input",
            "artifact_name": "input",
            "perm": [0, 2, 3, 1],
            "layout": "NHWC",
        }
        assert arts[name]["outputs"][0]["perm"] is None
        assert arts[name]["backend"] == "onnx2tf"
    assert arts["saved_model"]["parent"] == "model.onnx"
    assert arts["model_fp16.tflite"]["parent"] == "saved_model"
    assert arts["model_fp16.tflite"]["precision"] == "fp16"


def test_onnx2tf_works_on_a_private_copy(cnn_run):
    manifest = json.loads((cnn_run / "manifest.json").read_text())
    # The ONNX file convert read is byte-for-byte the one export wrote (onnx2tf rewrites its input).
    assert manifest["stages"]["convert"]["inputs"]["model.onnx"] == sha256_path(cnn_run / "model.onnx")
    assert manifest["stages"]["export"]["outputs"]["model.onnx"] == sha256_path(cnn_run / "model.onnx")
    assert not list(cnn_run.glob(".onnx2tf-*")), "onnx2tf work folder left behind"


def test_calibration_images_come_from_bundled_data():
    x = _calibration_images()
    assert x.shape == (20, 128, 128, 3) and x.dtype == np.float32
    assert x.min() >= 0.0 and x.max() <= 1.0 and x.std() > 0.1  # real digits, not all-ones


def test_static_three_channel_model_converts_without_any_download(tmp_path, monkeypatch):
    # onnx2tf fetches test images for static-batch 3-channel inputs unless it finds its own file;
    # with every proxy pointing at a closed port, any download attempt would fail the conversion.
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.setenv(var, "http://127.0.0.1:9")
    monkeypatch.setenv("NO_PROXY", "")
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten()
    ).eval()
    path = tmp_path / "rgb.onnx"
    torch.onnx.export(
        model,
        (torch.rand(1, 3, 16, 16),),
        str(path),
        input_names=["image"],
        output_names=["features"],
        dynamo=False,
        opset_version=13,
    )
    spec = spec_from_onnx(path)
    arts = convert_onnx2tf(
        Artifact(path, Format.ONNX, spec),
        tmp_path / "out",
        TFConvertOptions(precisions=("fp32",)),
        run_with=open_runtime,
    )
    assert [a.format for a in arts] == [Format.TF_SAVED_MODEL, Format.TFLITE]
    assert arts[1].inputs[0].perm == (0, 2, 3, 1) and arts[1].inputs[0].artifact_name == "image"
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_path=str(arts[1].path))
    it.allocate_tensors()
    x = np.random.default_rng(0).random((1, 3, 16, 16), dtype=np.float32)
    it.set_tensor(it.get_input_details()[0]["index"], x.transpose(0, 2, 3, 1).copy())
    it.invoke()
    got = it.get_tensor(it.get_output_details()[0]["index"])
    np.testing.assert_allclose(got, model(torch.from_numpy(x)).detach().numpy(), atol=1e-5)


def test_garbage_onnx_fails_cleanly_and_writes_nothing(tmp_path, cnn_run):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x08\x07garbage" * 10)
    spec = json.loads((cnn_run / "manifest.json").read_text())["artifacts"]["model.onnx"]["spec"]
    from onnxpipe.models.spec import ModelSpec

    out = tmp_path / "out"
    with pytest.raises(ConversionError, match="not a readable ONNX model"):
        convert_onnx2tf(Artifact(bad, Format.ONNX, ModelSpec.from_dict(spec)), out, run_with=open_runtime)
    assert not out.exists() or list(out.iterdir()) == []


def test_unsupported_precision_and_empty_request():
    with pytest.raises(
        UsageError, match="unknown precision 'int4'; valid: dynamic_int8, fp16, fp32, int16x8, int8"
    ):
        TFConvertOptions(precisions=("int4",))
    with pytest.raises(UsageError, match="nothing to convert"):
        TFConvertOptions(saved_model=False, precisions=())


def test_spec_from_onnx_reads_the_declared_interface(cnn_run):
    spec = spec_from_onnx(cnn_run / "model.onnx")
    assert [(t.name, t.shape, t.dtype) for t in spec.inputs] == [("input", ("batch", 1, 8, 8), "float32")]
    assert [(t.name, t.shape) for t in spec.outputs] == [("logits", ("batch", 10))]
    assert onnx.load(str(cnn_run / "model.onnx")).graph.output[0].name == "logits"


def test_integer_precisions_are_calibrated_on_real_samples_and_keep_top1(cnn_run, tmp_path):
    from ai_edge_litert.interpreter import Interpreter

    from onnxpipe.pipeline.rundir import RunDir
    from onnxpipe.validation.inputs import InputConfig
    from onnxpipe.validation.parity import ValidateOptions, validate

    onnx_art = next(a for a in RunDir(cnn_run).artifacts() if a.label == "model.onnx")
    arts = convert_onnx2tf(
        onnx_art,
        tmp_path,
        TFConvertOptions(saved_model=False, precisions=("dynamic_int8", "int8", "int16x8")),
        run_with=open_runtime,
    )
    assert [(a.label, a.precision, a.backend) for a in arts] == [
        ("model_dynamic_int8.tflite", "dynamic_int8", "tf.lite.TFLiteConverter"),
        ("model_int8.tflite", "int8", "tf.lite.TFLiteConverter"),
        ("model_int16x8.tflite", "int16x8", "tf.lite.TFLiteConverter"),
    ]
    io_types = []
    for a in arts:  # full integer means integer inputs and outputs, each with a scale and zero point
        it = Interpreter(model_path=str(a.path))
        d, o = it.get_input_details()[0], it.get_output_details()[0]
        io_types.append((d["dtype"].__name__, o["dtype"].__name__, d["quantization"][0] > 0))
    assert io_types == [("float32", "float32", False), ("int8", "int8", True), ("int16", "int16", True)]
    assert all(a.inputs[0].perm == (0, 2, 3, 1) for a in arts)
    assert arts[1].path.stat().st_size < (cnn_run / "model_fp32.tflite").stat().st_size / 2
    reference = type(onnx_art)(cnn_run / "checkpoint.pt", "torch", onnx_art.spec)
    options = ValidateOptions(
        inputs=InputConfig(random=0, edge=False), devices=("cpu",), runtimes=("ai-edge-litert",)
    )
    report = validate(reference, arts, options)
    for row in report.results:  # the whole validation split
        assert row.status == "pass", row.message
        assert row.metrics.top1_agreement >= 0.98
        assert row.accuracy >= 0.97


def test_int8_without_bundled_data_is_refused(tmp_path):
    from onnxpipe.models.spec import ModelSpec, TensorSpec

    spec = ModelSpec(
        "x", (TensorSpec("input", ("batch", 4)),), (TensorSpec("y", ("batch", 4)),), dataset=None
    )
    from onnxpipe.converters.onnx_to_saved_model import calibration_arrays

    with pytest.raises(
        UsageError, match=r"int8 needs calibration samples.*give your own with --calibration PATH"
    ):
        calibration_arrays(spec, [], ["int8"], tmp_path / "m.onnx")
    assert calibration_arrays(spec, [], ["fp32", "dynamic_int8"], tmp_path / "m.onnx") == ({}, None)
