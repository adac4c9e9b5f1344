"""The standalone edge interpreter (tflite-runtime 2.14 in .venv-edge) and edge readiness."""

import json

import pytest

from onnxpipe.pipeline.artifacts import resolve_artifact
from onnxpipe.pipeline.rundir import RunDir
from onnxpipe.validation.edge import edge_readiness, tflite_ops
from onnxpipe.validation.runtimes.tflite_edge import EDGE_PYTHON, TfliteRuntimeEdge
from tests.conftest import requires_env

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
