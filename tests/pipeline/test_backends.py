"""Both backends side by side (--compare-backends) and the validated best per artifact (--backend auto)."""

from __future__ import annotations

import json

import pytest

from onnxpipe.converters.route import ROUTES
from onnxpipe.converters.routes.onnx_tf import LEGACY_PYTHON
from onnxpipe.models.artifact import Artifact, Format
from onnxpipe.models.errors import ConversionError
from onnxpipe.models.fs import sha256_path
from onnxpipe.models.spec import ModelSpec, TensorSpec
from onnxpipe.pipeline.backends import (
    BackendRow,
    Comparison,
    RowStatus,
    keep_best,
    render_comparison_markdown,
)
from tests.conftest import onnxpipe, requires_env

needs_legacy = requires_env(LEGACY_PYTHON, "setup-legacy")

_SPEC = ModelSpec("toy", (TensorSpec("x", ("batch", 4)),), (TensorSpec("y", ("batch", 2)),), dataset=None)


def _comparison(tmp_path, rows: list[BackendRow]) -> Comparison:
    """A comparison over real (tiny) files, one per backend, with the given validation outcomes."""
    comparison = Comparison("ref.onnx", rows=rows)
    for backend in ("onnx2tf", "onnx-tf"):
        folder = tmp_path / "backends" / backend
        folder.mkdir(parents=True)
        onnx = folder / "model.onnx"
        onnx.write_bytes(b"onnx")
        comparison.onnx[backend] = Artifact(onnx, Format.ONNX, _SPEC)
        path = folder / "model_fp32.tflite"
        path.write_bytes(f"tflite by {backend}".encode())
        comparison.artifacts[("model_fp32.tflite", backend)] = Artifact(
            path, Format.TFLITE, _SPEC, parent="saved_model", backend=backend
        )
    return comparison


def test_auto_keeps_the_artifact_that_passed_even_when_the_failing_one_is_faster(tmp_path):
    rows = [
        BackendRow(
            "model_fp32.tflite", "onnx2tf", "fail", max_abs=3.0, ms_per_sample=0.01, message="softmax axis"
        ),
        BackendRow(
            "model_fp32.tflite", "onnx-tf", "pass", max_abs=1e-6, ms_per_sample=0.05, runtime="ai-edge-litert"
        ),
    ]
    comparison = _comparison(tmp_path, rows)
    out = tmp_path / "run"
    kept = keep_best(comparison, out)
    assert [(a.label, a.extra["kept"]) for a in kept] == [("model_fp32.tflite", "onnx-tf")]
    assert (out / "model_fp32.tflite").read_bytes() == b"tflite by onnx-tf"
    record = json.loads((out / "manifest.json").read_text())["artifacts"]["model_fp32.tflite"]
    assert (
        "only onnx-tf's passed parity" in record["extra"]["why"] and "softmax axis" in record["extra"]["why"]
    )
    assert record["parent"] == "model.onnx"  # its own SavedModel was not kept: blame runs from its ONNX
    assert "| model_fp32.tflite | onnx-tf | pass |" in render_comparison_markdown(comparison)


def test_auto_prefers_the_faster_when_both_pass(tmp_path):
    rows = [
        BackendRow("model_fp32.tflite", "onnx2tf", "pass", ms_per_sample=0.02, runtime="ai-edge-litert"),
        BackendRow("model_fp32.tflite", "onnx-tf", "pass", ms_per_sample=0.01, runtime="ai-edge-litert"),
    ]
    kept = keep_best(_comparison(tmp_path, rows), tmp_path / "run")
    assert kept[0].extra["kept"] == "onnx-tf" and "fastest" in kept[0].extra["why"]


def test_auto_keeps_nothing_that_failed_validation(tmp_path):
    rows = [
        BackendRow("model_fp32.tflite", "onnx2tf", "fail", ms_per_sample=0.01, message="pad value ignored"),
        BackendRow("model_fp32.tflite", "onnx-tf", "not made", message="no handler for Foo-13"),
    ]
    out = tmp_path / "run"
    with pytest.raises(
        ConversionError, match=r"kept no model_fp32\.tflite: no backend's artifact passed parity"
    ):
        keep_best(_comparison(tmp_path, rows), out)
    assert sorted(p.name for p in out.iterdir()) == ["backends.json", "backends.md"]  # the table, no artifact


@pytest.mark.slow  # every route converts and validates the CNN: about three minutes here
@pytest.mark.legacy
@needs_legacy
def test_compare_then_auto_on_the_cnn(cnn_copy):
    ckpt = str(cnn_copy / "checkpoint.pt")
    proc = onnxpipe("convert", ckpt, "--compare-backends", "--precision", "fp32", check=True)
    routes = ROUTES.names()  # every registered route is compared
    # The CNN has nothing to repair, and litert-torch makes no SavedModel: every other pair passes.
    expected_not_made = {
        ("saved_model", "onnx2tf-repaired"): "no repair pass applies",
        ("model_fp32.tflite", "onnx2tf-repaired"): "no repair pass applies",
        ("saved_model", "litert-torch"): "makes no SavedModel",
    }
    for backend in (b for b in routes if b != "onnx2tf-repaired"):
        assert f"| model_fp32.tflite | {backend} | pass |" in proc.stdout, proc.stdout
        assert (cnn_copy / "backends" / backend / "parity.json").is_file()
    table = json.loads((cnn_copy / "backends.json").read_text())
    assert {(r["artifact"], r["backend"]) for r in table["rows"]} == {
        (a, b) for a in ("saved_model", "model_fp32.tflite") for b in routes
    }
    made = [r for r in table["rows"] if (r["artifact"], r["backend"]) not in expected_not_made]
    assert all(r["status"] == "pass" and r["size_bytes"] > 0 and r["ms_per_sample"] > 0 for r in made)
    assert all(r["seconds"] > 0 and r["flex_ops"] == [] and not r["kept"] for r in made)
    for r in table["rows"]:
        if (r["artifact"], r["backend"]) in expected_not_made:
            assert (
                r["status"] == "not made" and expected_not_made[r["artifact"], r["backend"]] in r["message"]
            ), r
    comparison = Comparison.read(cnn_copy / "backends.json")  # the typed reader gives the rows back
    assert comparison.to_json() == table

    proc = onnxpipe("convert", ckpt, "--backend", "auto", "--precision", "fp32", check=True)
    manifest = json.loads((cnn_copy / "manifest.json").read_text())
    assert manifest["stages"]["convert"]["options"]["backend"] == "auto"
    table = json.loads((cnn_copy / "backends.json").read_text())
    # The planner stops at the first route that passes everything: the others are not tried.
    assert {r["backend"] for r in table["rows"]} == {routes[0]}
    assert set(table["not_tried"]) == set(routes[1:]) and "## Not tried" in proc.stdout
    for name in ("saved_model", "model_fp32.tflite"):
        record = manifest["artifacts"][name]
        winner = record["extra"]["kept"]
        assert [r["backend"] for r in table["rows"] if r["artifact"] == name and r["kept"]] == [winner]
        assert "passed parity" in record["extra"]["why"]
        assert sha256_path(cnn_copy / name) == sha256_path(cnn_copy / "backends" / winner / name)
    assert onnxpipe("validate", str(cnn_copy), "--devices", "cpu").returncode == 0


def _flex_row(backend, flex, ms):
    return BackendRow(
        "model_fp32.tflite", backend, RowStatus.PASS, max_abs=1e-6, ms_per_sample=ms, flex_ops=flex
    )


@pytest.mark.parametrize("prefer", ["first", "fastest"])
def test_a_builtin_only_tflite_beats_a_faster_earlier_one_that_needs_flex_ops(tmp_path, prefer):
    rows = [_flex_row("onnx2tf", ["FlexMatrixInverse"], 0.01), _flex_row("onnx-tf", [], 0.05)]
    kept = keep_best(_comparison(tmp_path, rows), tmp_path / "run", prefer=prefer)
    assert [a.extra["kept"] for a in kept] == ["onnx-tf"]
    assert "onnx2tf's needs Flex ops (FlexMatrixInverse)" in kept[0].extra["why"]


def test_first_keeps_the_earlier_route_and_fastest_the_faster(tmp_path):
    rows = [_flex_row("onnx2tf", [], 0.05), _flex_row("onnx-tf", [], 0.01)]
    first = keep_best(_comparison(tmp_path / "a", rows), tmp_path / "a" / "run", prefer="first")
    fastest = keep_best(_comparison(tmp_path / "b", rows), tmp_path / "b" / "run", prefer="fastest")
    assert [a.extra["kept"] for a in first] == ["onnx2tf"] and "passed parity first" in first[0].extra["why"]
    assert [a.extra["kept"] for a in fastest] == ["onnx-tf"] and "fastest" in fastest[0].extra["why"]
