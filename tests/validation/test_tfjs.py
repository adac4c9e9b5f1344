"""TensorFlow.js: the digits CNN converted to graph models and validated under Node.js (cpu, wasm) and
in headless Chromium, against the PyTorch reference, like every artifact."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from onnxpipe.converters.saved_model_to_tfjs import TFJS_PYTHON
from onnxpipe.validation.runtimes.tfjs import TFJS_DIR, node_reason
from onnxpipe.validation.runtimes.tfjs_browser import chromium_path
from tests.conftest import ROOT, onnxpipe, requires_env

TFJS_RUNTIMES = ("tfjs-cpu", "tfjs-wasm", "tfjs-browser")
IN_CI = bool(os.environ.get("CI"))
pytestmark = [
    requires_env(TFJS_PYTHON, "setup-tfjs"),
    pytest.mark.skipif(
        node_reason() is not None and not IN_CI,
        reason=f"Requires: Node.js and the npm packages ({node_reason()})",
    ),
]
#: In CI the browser must be there (`make setup-browser` runs first): its test never skips there.
requires_chromium = pytest.mark.skipif(
    chromium_path() is None and not IN_CI, reason="Requires: chromium (make setup-browser installs it)"
)


@pytest.fixture(scope="module")
def tfjs_run(cnn_run, tmp_path_factory) -> Path:
    """The CNN run with its SavedModel converted to tfjs at fp32, fp16 and uint8 weights."""
    run = tmp_path_factory.mktemp("tfjs") / "cnn"
    shutil.copytree(cnn_run, run)
    _to_tfjs(run, "fp32,fp16,uint8")
    return run


def _to_tfjs(run: Path, precisions: str) -> None:
    onnxpipe(
        "convert",
        str(run / "checkpoint.pt"),
        "--backend",
        "onnx2tf",
        "--to",
        "tfjs",
        "--precision",
        precisions,
        check=True,
    )


def _validate(run: Path, *extra: str, env: dict | None = None):
    return onnxpipe(
        "validate",
        str(run),
        "--runtimes",
        ",".join(TFJS_RUNTIMES),
        "--devices",
        "cpu",
        "--samples",
        "64",
        "--random",
        "16",
        "--force",
        *extra,
        env=env,
    )


def _rows(run: Path, prefix: str = "tfjs") -> list[dict]:
    report = json.loads((run / "parity.json").read_text())
    return [r for r in report["results"] if r["artifact"].startswith(prefix)]


def test_convert_writes_graph_models_recorded_like_every_artifact(tfjs_run):
    manifest = json.loads((tfjs_run / "manifest.json").read_text())
    records = {k: v for k, v in manifest["artifacts"].items() if k.startswith("tfjs")}
    assert set(records) == {"tfjs", "tfjs_fp16", "tfjs_uint8"}
    for name, record in records.items():
        assert record["format"] == "tfjs" and record["parent"] == "saved_model"
        assert record["backend"] == "tensorflowjs" and record["extra"]["versions"]["tensorflowjs"] == "4.22.0"
        assert record["inputs"][0]["layout"] == "NHWC"  # the SavedModel's layout, recorded
        assert (tfjs_run / name / "model.json").is_file()
        assert json.loads((tfjs_run / name / "model.json").read_text())["format"] == "graph-model"
    assert [records[n]["precision"] for n in ("tfjs", "tfjs_fp16", "tfjs_uint8")] == ["fp32", "fp16", "uint8"]
    size = {n: sum(f.stat().st_size for f in (tfjs_run / n).glob("*.bin")) for n in records}
    assert size["tfjs_uint8"] < size["tfjs_fp16"] < size["tfjs"]  # the weights really were quantized
    assert "tfjs" in manifest["stages"] and not list(tfjs_run.glob(".tfjs-*"))


@requires_chromium
def test_tfjs_rows_pass_in_node_and_in_chromium(tfjs_run):
    proc = _validate(tfjs_run)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = _rows(tfjs_run)
    assert {(r["artifact"], r["runtime"]) for r in rows} == {
        (a, rt) for a in ("tfjs", "tfjs_fp16", "tfjs_uint8") for rt in TFJS_RUNTIMES
    }
    assert {r["status"] for r in rows} == {"pass"}
    fp32 = {r["runtime"]: r for r in rows if r["artifact"] == "tfjs"}
    assert all(r["metrics"]["max_abs"] < 1e-4 for r in fp32.values())
    assert all(r["ms_per_sample"] > 0 for r in rows)
    assert "cpu backend, Node.js" in fp32["tfjs-cpu"]["detail"]
    assert "wasm backend" in fp32["tfjs-wasm"]["detail"]
    assert "in Chromium" in fp32["tfjs-browser"]["detail"]
    assert (
        "backend webgl" in fp32["tfjs-browser"]["detail"] or "backend wasm" in fp32["tfjs-browser"]["detail"]
    )
    assert "- tfjs-browser: ran on @tensorflow/tfjs" in (tfjs_run / "parity.md").read_text()
    assert "<b>tfjs-wasm</b> ran on @tensorflow/tfjs" in (tfjs_run / "report.html").read_text()


def test_a_perturbed_weight_shard_is_caught_and_blamed_on_the_tfjs_hop(tfjs_run, tmp_path):
    run = tmp_path / "cnn"
    shutil.copytree(tfjs_run, run)
    shard = next((run / "tfjs").glob("*.bin"))
    weights = np.frombuffer(shard.read_bytes(), dtype=np.float32).copy()
    weights[: len(weights) // 8] *= 1.05  # 5% on the first layers' weights
    shard.write_bytes(weights.tobytes())
    proc = _validate(run, "--runtimes", "tensorflow,tfjs-cpu,tfjs-wasm")  # the parent runs too
    assert proc.returncode == 1, proc.stdout + proc.stderr
    rows = _rows(run, "tfjs")
    bad = [r for r in rows if r["artifact"] == "tfjs"]
    assert bad and {r["status"] for r in bad} == {"fail"}
    assert {r["blame"] for r in bad} == {"saved_model -> tfjs"}
    assert all("changed since tfjs wrote it" in r["message"] for r in bad)
    assert {r["status"] for r in rows if r["artifact"] != "tfjs"} == {"pass"}  # the other graph models
    assert "first failing hop: saved_model -> tfjs" in proc.stdout + proc.stderr


def test_without_node_and_chromium_the_rows_are_unavailable_with_the_fix(tfjs_run, tmp_path):
    run = tmp_path / "cnn"
    shutil.copytree(tfjs_run, run)
    bare = tmp_path / "bin"  # a PATH with this Python and nothing else
    bare.mkdir()
    (bare / "python").symlink_to(sys.executable)
    proc = _validate(run, env={"PATH": str(bare), "ONNXPIPE_CHROMIUM": ""})
    assert proc.returncode == 0, proc.stdout + proc.stderr  # unavailable is not a failure
    rows = _rows(run)
    assert {r["status"] for r in rows} == {"unavailable"}
    by_runtime = {r["runtime"]: r["message"] for r in rows}
    assert (
        "Node.js is not installed" in by_runtime["tfjs-cpu"] and "make setup-tfjs" in by_runtime["tfjs-cpu"]
    )
    assert "Chromium is not installed" in by_runtime["tfjs-browser"]
    assert "make setup-browser" in by_runtime["tfjs-browser"]


def test_a_tfjs_folder_from_elsewhere_is_bound_by_its_signature(tfjs_run, tmp_path):
    foreign = tmp_path / "web_model"
    shutil.copytree(tfjs_run / "tfjs_fp16", foreign)  # no manifest beside it
    out = tmp_path / "report"
    proc = onnxpipe(
        "validate",
        "--reference",
        str(tfjs_run / "checkpoint.pt"),
        "--candidate",
        str(foreign),
        "--runtimes",
        "tfjs-cpu",
        "--samples",
        "32",
        "--out",
        str(out),
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (row,) = json.loads((out / "parity.json").read_text())["results"]
    assert (row["artifact"], row["format"], row["status"]) == ("web_model", "tfjs", "pass")


def test_the_npz_codec_of_the_javascript_side_round_trips_what_numpy_writes(tmp_path):
    """npz.js reads numpy's zip64 .npz and writes one numpy reads back: every dtype the runtimes pass."""
    if shutil.which("node") is None and not IN_CI:
        pytest.skip("Requires: Node.js")
    rng = np.random.default_rng(0)
    arrays = {
        "f32": rng.standard_normal((2, 3, 4)).astype(np.float32),
        "i32": rng.integers(-(2**31), 2**31 - 1, (5,), dtype=np.int32),
        "i64": rng.integers(-(2**40), 2**40, (3, 2), dtype=np.int64),
        "b": rng.random((4,)) > 0.5,
        "scalar": np.float32(3.5).reshape(()),
        "empty": np.zeros((0, 3), np.float32),
    }
    np.savez(tmp_path / "in.npz", **arrays)
    script = f"""
const fs = require("fs");
const {{ readNpz, writeNpz }} = require({json.dumps(str(TFJS_DIR / "npz.js"))});
const got = readNpz(new Uint8Array(fs.readFileSync({json.dumps(str(tmp_path / "in.npz"))})));
fs.writeFileSync({json.dumps(str(tmp_path / "out.npz"))}, writeNpz(got));
"""
    subprocess.run(["node", "-e", script], check=True, cwd=ROOT, timeout=60)
    with np.load(tmp_path / "out.npz") as back:
        assert sorted(back.files) == sorted(arrays)
        for k, v in arrays.items():
            assert back[k].dtype == v.dtype and back[k].shape == v.shape, k
            np.testing.assert_array_equal(back[k], v)


@pytest.mark.slow  # trains the zoo transformer (about 70 s in all)
@requires_chromium
def test_the_transformer_s_int64_tokens_go_through_tfjs_as_int32(tmp_path):
    """Its layer norms reach the converter as plain ops (oneDNN's _MklLayerNorm has no tfjs kernel)."""
    run = tmp_path / "tr"
    onnxpipe("train", "--model", "transformer", "--out", str(run), "--epochs", "2", check=True)
    _to_tfjs(run, "fp32")
    proc = _validate(run)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = _rows(run)
    assert len(rows) == 3 and {r["status"] for r in rows} == {"pass"}
    assert all(r["cast_inputs"] == {"tokens": "int64 -> int32"} for r in rows)
