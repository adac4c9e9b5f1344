"""The onnx-tf backend: its compatibility module here, its conversions in the legacy environment."""

from __future__ import annotations

import json
import shutil

import numpy as np
import onnx
import onnx.helper as oh
import onnxruntime as ort
import pytest

from onnxpipe.converters.onnx_tf_compat import is_safe_name, missing_handlers, sanitize_io_names
from onnxpipe.converters.routes.onnx_tf import LEGACY_PYTHON, WORKER
from onnxpipe.models import wire
from onnxpipe.models.errors import ConversionError
from tests.conftest import export_lstm, onnxpipe, requires_env

needs_legacy = requires_env(LEGACY_PYTHON, "setup-legacy")


def _export_badly_named(path, opset=12):
    """A small conv net whose input is ``gpu_0/data_0`` and output ``prob:0``: names onnx-tf chokes on."""
    import torch

    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(256, 10)
    ).eval()
    torch.onnx.export(
        model,
        (torch.rand(2, 1, 8, 8),),
        str(path),
        input_names=["gpu_0/data_0"],
        output_names=["prob:0"],
        dynamic_axes={"gpu_0/data_0": {0: "batch"}, "prob:0": {0: "batch"}},
        opset_version=opset,
        dynamo=False,
    )
    return path


# --- the compatibility module (no legacy environment needed) ----------------------------------------


@pytest.mark.parametrize(
    ("name", "safe"), [("input", True), ("x_1", True), ("0", False), ("gpu_0/data_0", False), ("in", False)]
)
def test_safe_names_are_ascii_identifiers_that_are_not_keywords(name, safe):
    assert is_safe_name(name) is safe


def test_renaming_keeps_the_graph_valid_and_computing_the_same(tmp_path):
    path = _export_badly_named(tmp_path / "bad.onnx")
    model = onnx.load(str(path))
    back = sanitize_io_names(model)
    assert set(back.values()) == {"gpu_0/data_0", "prob:0"}
    assert all(is_safe_name(n) for n in back)
    onnx.checker.check_model(model, full_check=True)
    x = np.random.default_rng(0).random((3, 1, 8, 8), dtype=np.float32)
    before = ort.InferenceSession(str(path)).run(None, {"gpu_0/data_0": x})[0]
    session = ort.InferenceSession(model.SerializeToString())
    forward = {v: k for k, v in back.items()}
    assert session.get_inputs()[0].name == forward["gpu_0/data_0"]
    np.testing.assert_array_equal(session.run(None, {forward["gpu_0/data_0"]: x})[0], before)


def test_renaming_leaves_safe_names_alone_and_avoids_collisions():
    node = oh.make_node("Identity", ["0"], ["in"])
    taken = oh.make_node("Identity", ["0"], ["t_0"])  # the first choice for "0" is taken
    graph = oh.make_graph(
        [node, taken],
        "g",
        [oh.make_tensor_value_info("0", onnx.TensorProto.FLOAT, [1])],
        [
            oh.make_tensor_value_info("in", onnx.TensorProto.FLOAT, [1]),
            oh.make_tensor_value_info("t_0", onnx.TensorProto.FLOAT, [1]),
        ],
    )
    model = oh.make_model(graph)
    back = sanitize_io_names(model)
    assert back == {"t_0_2": "0", "t_in": "in"}
    assert [n.input[0] for n in model.graph.node] == ["t_0_2", "t_0_2"]
    assert model.graph.output[1].name == "t_0"


def test_missing_handlers_names_op_and_version():
    graph = oh.make_graph(
        [oh.make_node("Unsqueeze", ["x", "axes"], ["y"]), oh.make_node("Relu", ["y"], ["z"])],
        "g",
        [oh.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [2])],
        [oh.make_tensor_value_info("z", onnx.TensorProto.FLOAT, [1, 2])],
        [oh.make_tensor("axes", onnx.TensorProto.INT64, [1], [0])],
    )
    model = oh.make_model(graph, opset_imports=[oh.make_opsetid("", 13)])
    table = {"Unsqueeze": [1, 11], "Relu": [1, 6, 13, 14]}
    assert missing_handlers(model, table) == ["Unsqueeze-13"]
    model.opset_import[0].version = 11
    model.graph.node[0].input.pop()
    model.graph.node[0].attribute.append(oh.make_attribute("axes", [0]))
    assert missing_handlers(model, table) == []


def test_missing_legacy_environment_names_the_make_target(cnn_copy):
    proc = onnxpipe(
        "convert",
        str(cnn_copy / "checkpoint.pt"),
        "--backend",
        "onnx-tf",
        "--out",
        str(cnn_copy / "legacy"),
        env={"ONNXPIPE_LEGACY_PYTHON": str(cnn_copy / "no-such-venv" / "bin" / "python")},
    )
    assert proc.returncode == 3, proc.stderr
    assert "make setup-legacy" in proc.stderr and "Traceback" not in proc.stderr
    assert not (cnn_copy / "legacy" / "saved_model").exists()


# --- conversions in the legacy environment ---------------------------------------------------------


@pytest.mark.legacy
@needs_legacy
def test_onnx_tf_converts_the_cnn_and_its_artifacts_pass_validation(cnn_copy):
    out = cnn_copy / "legacy"
    onnxpipe(
        "convert",
        str(cnn_copy / "checkpoint.pt"),
        "--backend",
        "onnx-tf",
        "--to",
        "saved_model,tflite",
        "--precision",
        "fp32,fp16,int8",
        "--out",
        str(out),
        check=True,
    )
    exported = onnx.load(str(out / "model_opset14.onnx"))
    assert exported.opset_import[0].version == 14
    records = json.loads((out / "manifest.json").read_text())["artifacts"]
    assert records["saved_model"]["backend"] == records["model_fp32.tflite"]["backend"] == "onnx-tf"
    assert records["saved_model"]["parent"] == "model_opset14.onnx"
    assert records["saved_model"]["inputs"][0]["perm"] is None  # onnx-tf keeps NCHW
    proc = onnxpipe(
        "validate",
        "--reference",
        str(cnn_copy / "checkpoint.pt"),
        *(
            f"--candidate={out / name}"
            for name in (
                "model_opset14.onnx",
                "saved_model",
                "model_fp32.tflite",
                "model_fp16.tflite",
                "model_int8.tflite",
            )
        ),
        "--out",
        str(out),
        "--devices",
        "cpu",
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads((out / "parity.json").read_text())
    ran = {(r["artifact"], r["runtime"]): r for r in report["results"]}
    assert ran[("saved_model", "tensorflow")]["metrics"]["max_abs"] < 1e-4
    assert ran[("model_fp32.tflite", "tflite-runtime")]["status"] == "pass"
    assert ran[("model_int8.tflite", "ai-edge-litert")]["metrics"]["top1_agreement"] >= 0.98


@pytest.mark.legacy
@needs_legacy
def test_names_onnx_tf_cannot_take_are_renamed_and_mapped_back(tmp_path):
    path = _export_badly_named(tmp_path / "bad.onnx")
    # Raw onnx-tf on the graph as exported: it fails on the name.
    work = tmp_path / "raw"
    work.mkdir()
    shutil.copyfile(path, work / "model.onnx")
    request = {"onnx": str(work / "model.onnx"), "saved_model": str(work / "sm"), "tflite": {}}
    with pytest.raises(ConversionError, match="gpu_0/data_0") as raised:
        wire.call(
            wire.command(LEGACY_PYTHON, WORKER), request, what="onnx-tf", error=ConversionError, cwd=work
        )
    assert raised.value.worker_type != "MissingHandlers"  # it fails on the name, not on an op
    # Through onnxpipe: renamed for the converter, the user's names in the manifest and the report.
    out = tmp_path / "converted"
    onnxpipe(
        "convert", str(path), "--backend", "onnx-tf", "--precision", "fp32", "--out", str(out), check=True
    )
    record = json.loads((out / "manifest.json").read_text())["artifacts"]["saved_model"]
    assert [b["name"] for b in record["inputs"]] == ["gpu_0/data_0"]
    assert [b["name"] for b in record["outputs"]] == ["prob:0"]
    assert set(record["extra"]["renamed"].values()) == {"gpu_0/data_0", "prob:0"}
    proc = onnxpipe(
        "validate",
        "--reference",
        str(path),
        "--candidate",
        str(out / "saved_model"),
        "--candidate",
        str(out / "model_fp32.tflite"),
        "--out",
        str(out),
        "--devices",
        "cpu",
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads((out / "parity.json").read_text())
    rows = [r for r in report["results"] if r["status"] != "unavailable"]
    assert rows and all(r["status"] == "pass" and list(r["outputs"]) == ["prob:0"] for r in rows)


@pytest.mark.legacy
@needs_legacy
@pytest.mark.parametrize(
    ("dynamic_batch", "reason"),
    [
        (True, "TensorList"),  # the TFLite converter refuses onnx-tf's TensorList ops
        (False, "does not run"),  # at a fixed batch it converts, but the file fails to prepare
    ],
)
def test_an_lstm_tflite_onnx_tf_cannot_make_is_refused_with_the_reason(tmp_path, dynamic_batch, reason):
    path = export_lstm(tmp_path / "lstm.onnx", dynamic_batch)
    out = tmp_path / "out"
    out.mkdir()
    proc = onnxpipe("convert", str(path), "--backend", "onnx-tf", "--precision", "fp32", "--out", str(out))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "model_fp32.tflite" in proc.stderr and reason in proc.stderr, proc.stderr
    assert "nothing was written" in proc.stderr and "Traceback" not in proc.stderr
    assert sorted(p.name for p in out.iterdir()) == []  # no broken file, no SavedModel, no temp folder
    onnxpipe(
        "convert", str(path), "--backend", "onnx-tf", "--to", "saved_model", "--out", str(out), check=True
    )
    assert (out / "saved_model" / "saved_model.pb").is_file()


def _shape_ops_graph(path):
    """Unsqueeze-13, Squeeze-13 (with and without axes) and Reshape-19 around a Relu, at opset 19."""
    from onnx import numpy_helper

    def const(name, values):
        return numpy_helper.from_array(np.array(values, np.int64), name)

    nodes = [
        oh.make_node("Unsqueeze", ["x", "axes_13"], ["u"]),  # [N, 6] -> [N, 1, 6, 1]
        oh.make_node("Relu", ["u"], ["r"]),
        oh.make_node("Squeeze", ["r", "axes_3"], ["s"]),  # -> [N, 1, 6]
        oh.make_node("Reshape", ["s", "shape"], ["t"]),  # -> [N, 2, 3]
        oh.make_node("Neg", ["t"], ["n"]),
        oh.make_node("Reshape", ["n", "flat"], ["y"]),  # -> [N, 6]
    ]
    graph = oh.make_graph(
        nodes, "shape_ops",
        [oh.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["N", 6])],
        [oh.make_tensor_value_info("y", onnx.TensorProto.FLOAT, ["N", 6])],
        [const("axes_13", [1, -1]), const("axes_3", [3]), const("shape", [0, 2, 3]), const("flat", [0, 6])],
    )  # fmt: skip
    onnx.save(oh.make_model(graph, opset_imports=[oh.make_opsetid("", 19)], ir_version=9), str(path))
    return path


@pytest.mark.legacy
@needs_legacy
def test_onnx_tf_converts_squeeze_unsqueeze_13_and_reshape_19_with_the_added_handlers(tmp_path):
    path = _shape_ops_graph(tmp_path / "shape_ops.onnx")
    stock = {"Squeeze": [1, 11], "Unsqueeze": [1, 11], "Reshape": [1, 5, 13, 14], "Relu": [14], "Neg": [13]}
    assert missing_handlers(onnx.load(str(path)), stock) == ["Unsqueeze-13", "Squeeze-13", "Reshape-19"]
    out = tmp_path / "out"
    onnxpipe(
        "convert", str(path), "--backend", "onnx-tf", "--precision", "fp32", "--out", str(out), check=True
    )
    proc = onnxpipe(
        "validate", "--reference", str(path), "--candidate", str(out / "saved_model"),
        "--candidate", str(out / "model_fp32.tflite"), "--out", str(out), "--devices", "cpu",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = [
        r for r in json.loads((out / "parity.json").read_text())["results"] if r["status"] != "unavailable"
    ]
    assert {r["artifact"] for r in rows} == {"saved_model", "model_fp32.tflite"}
    assert all(r["status"] == "pass" and r["metrics"]["max_abs"] == 0 for r in rows), rows
