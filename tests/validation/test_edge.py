"""The standalone edge interpreter (tflite-runtime 2.14 in .venv-edge) and edge readiness."""

import json

import onnx
import pytest

from onnxpipe.converters.routes.onnx_tf import LEGACY_PYTHON
from onnxpipe.pipeline.artifacts import resolve_artifact
from onnxpipe.pipeline.rundir import RunDir
from onnxpipe.validation.edge import edge_readiness, gpu_delegate_check, tflite_ops
from onnxpipe.validation.runtimes.tflite_edge import EDGE_PYTHON, TfliteRuntimeEdge
from tests.conftest import onnxpipe, requires_env

needs_edge = requires_env(EDGE_PYTHON, "setup-edge")


def test_ops_and_versions_are_read_from_the_flatbuffer(cnn_run):
    ops = tflite_ops(cnn_run / "model_fp32.tflite")
    assert {o["op"] for o in ops} >= {"CONV_2D", "FULLY_CONNECTED"}
    assert all(o["kind"] == "builtin" and o["version"] >= 1 for o in ops)


def test_missing_edge_environment_is_unavailable_with_the_fix(monkeypatch, tmp_path):
    import onnxpipe.validation.runtimes.tflite_edge as edge

    monkeypatch.setattr(edge, "EDGE_PYTHON", tmp_path / "none" / "bin" / "python")
    assert "make setup-edge" in TfliteRuntimeEdge.unavailable_reason()


@pytest.mark.legacy
@needs_edge
def test_every_tflite_has_results_from_both_interpreters(cnn_run):
    report = json.loads((cnn_run / "parity.json").read_text())
    for name in ("model_fp32.tflite", "model_fp16.tflite"):
        rows = {r["runtime"]: r for r in report["results"] if r["artifact"] == name}
        assert rows["tflite-runtime"]["status"] == rows["ai-edge-litert"]["status"] == "pass"
        assert rows["tflite-runtime"]["metrics"]["max_abs"] == pytest.approx(
            rows["ai-edge-litert"]["metrics"]["max_abs"], rel=1e-3
        )
        assert report["edge_readiness"][name]["ready"] is True
        assert report["edge_readiness"][name]["tflite_runtime_loads"] is True


@pytest.mark.legacy
@needs_edge
def test_edge_runtime_session_serves_many_calls(cnn_run):
    import numpy as np

    art = next(a for a in RunDir(cnn_run).artifacts() if a.label == "model_fp32.tflite")
    with TfliteRuntimeEdge(art) as rt:
        outs = [rt.run({"input": np.full((n, 1, 8, 8), 0.5, np.float32)})["logits"] for n in (1, 7, 32, 1)]
        assert rt.static_batch() is None
    assert [o.shape[0] for o in outs] == [1, 7, 32, 1]
    np.testing.assert_array_equal(outs[0], outs[3])


@pytest.mark.legacy
@needs_edge
def test_a_model_that_needs_flex_ops_is_flagged(cnn_run, tmp_path):
    import tensorflow as tf

    fn = tf.function(lambda x: tf.linalg.inv(x), input_signature=[tf.TensorSpec([None, 3, 3], tf.float32)])
    converter = tf.lite.TFLiteConverter.from_concrete_functions([fn.get_concrete_function()])
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS, tf.lite.OpsSet.SELECT_TF_OPS]
    path = tmp_path / "flex.tflite"
    path.write_bytes(converter.convert())
    spec = resolve_artifact(cnn_run / "checkpoint.pt").spec
    from onnxpipe.models.artifact import Artifact, Format

    (readiness,) = edge_readiness([Artifact(path, Format.TFLITE, spec)]).values()
    assert readiness.flex_ops == ["FlexMatrixInverse"]
    assert readiness.ready is False and readiness.tflite_runtime_loads is False
    assert any("Flex delegate for FlexMatrixInverse" in p for p in readiness.problems)
    assert "not supported by this interpreter" in readiness.tflite_runtime_note


needs_legacy = requires_env(LEGACY_PYTHON, "setup-legacy")


@needs_legacy
def test_the_gpu_delegate_takes_every_op_of_the_cnn_with_its_fp16_weights_folded(cnn_run):
    gpu = gpu_delegate_check([cnn_run / "model_fp32.tflite", cnn_run / "model_fp16.tflite"])
    fp32, fp16 = gpu[str(cnn_run / "model_fp32.tflite")], gpu[str(cnn_run / "model_fp16.tflite")]
    assert fp32.checked_with.startswith("TensorFlow Lite 2.15")
    assert (
        fp32.verdict == f"gpu delegate: all {fp32.ops} ops"
        and fp32.ops >= 5
        and not fp32.folded_fp16_dequantize
    )
    # The analyzer alone rejects the fp16 file's convolutions (their weights arrive through DEQUANTIZE);
    # the delegate folds those DEQUANTIZE ops, and so does the verdict.
    assert not fp16.rejected and fp16.folded_fp16_dequantize == fp16.ops - fp32.ops


@needs_legacy
def test_an_op_the_gpu_delegate_rejects_is_named_in_edge_readiness(tmp_path):
    """A top-k model: ONNX reference, TFLite candidate; TOPK_V2 runs on no mobile GPU."""
    import tensorflow as tf
    from onnx import TensorProto, helper

    k = helper.make_tensor("k", TensorProto.INT64, [1], [3])
    graph = helper.make_graph(
        [helper.make_node("TopK", ["input", "k"], ["values", "indices"], axis=-1)],
        "topk",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 16])],
        [helper.make_tensor_value_info("values", TensorProto.FLOAT, [1, 3])],
        [k],
    )
    onnx.save(
        helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(tmp_path / "topk.onnx")
    )
    fn = tf.function(
        lambda x: tf.math.top_k(x, 3).values, input_signature=[tf.TensorSpec([1, 16], tf.float32)]
    )
    converter = tf.lite.TFLiteConverter.from_concrete_functions([fn.get_concrete_function()])
    (tmp_path / "topk.tflite").write_bytes(converter.convert())
    proc = onnxpipe(
        "validate",
        "--reference",
        str(tmp_path / "topk.onnx"),
        "--candidate",
        str(tmp_path / "topk.tflite"),
        "--runtimes",
        "ai-edge-litert",
        "--out",
        str(tmp_path / "report"),
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr  # it computes the right thing, on the CPU
    assert "gpu delegate: partial: 0 of 1, first rejected: TOPK_V2 (Not supported op TOPK_V2)" in proc.stdout
    report = json.loads((tmp_path / "report" / "parity.json").read_text())
    gpu = report["edge_readiness"]["topk.tflite"]["gpu_delegate"]
    assert [r["op"] for r in gpu["rejected"]] == ["TOPK_V2"] and gpu["verdict"].startswith(
        "gpu delegate: partial"
    )
    assert (
        "the GPU delegate rejects TOPK_V2 (op 0): Not supported op TOPK_V2"
        in (tmp_path / "report" / "parity.md").read_text()
    )
    assert "TOPK_V2" in (tmp_path / "report" / "report.html").read_text()
