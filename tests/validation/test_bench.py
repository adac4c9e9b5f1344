import json

import pytest

from onnxpipe.models.errors import UnknownNameError, UsageError
from onnxpipe.validation.bench import BenchOptions
from onnxpipe.validation.macs import count_macs
from onnxpipe.validation.runtimes.tflite_edge import EDGE_PYTHON
from tests.conftest import onnxpipe


def test_macs_of_the_cnn_match_a_hand_count(cnn_run):
    conv1, conv2, linear = 8 * 8 * 16 * (1 * 3 * 3), 8 * 8 * 32 * (16 * 3 * 3), 10 * 512
    assert count_macs(cnn_run / "model.onnx") == conv1 + conv2 + linear


def test_bench_times_every_artifact_on_every_runtime(cnn_copy):
    proc = onnxpipe(
        "bench", str(cnn_copy), "--iters", "5", "--warmup", "1", "--devices", "cpu,cuda", check=True
    )
    doc = json.loads((cnn_copy / "bench.json").read_text())
    assert doc["macs_per_sample"] == 309248 and doc["options"]["iters"] == 5
    rows = {(r["artifact"], r["runtime"], r["device"]): r for r in doc["results"]}
    assert ("checkpoint.pt", "pytorch", "cpu") in rows and (
        "model_fp16.tflite",
        "ai-edge-litert-ref",
        "cpu",
    ) in rows
    for key, r in rows.items():
        if key[2] == "cuda" or (key[1] == "tflite-runtime" and not EDGE_PYTHON.is_file()):
            assert r["status"] == "unavailable" and r["message"]
            continue
        assert r["status"] == "ok", r
        assert 0 < r["p50_ms"] <= r["p90_ms"] and r["throughput"] > 0 and r["gflops"] > 0
        assert r["accuracy"] > 0.95 and r["size_bytes"] > 1000
    assert "| `model_fp32.tflite` | ai-edge-litert | cpu | fp32 | ok |" in (cnn_copy / "bench.md").read_text()
    assert "309,248 MACs per sample" in proc.stdout


def test_bench_options_are_checked():
    with pytest.raises(UsageError, match="iters: got 0"):
        BenchOptions(iters=0)
    with pytest.raises(UnknownNameError, match="unknown device 'tpu'"):
        BenchOptions(devices=("tpu",))


def test_raw_inference_benchmark_makes_the_calls_validate_makes(cnn_run):
    """bench/raw_inference.py must stay faithful to validate, or the overhead ratio means nothing."""
    import importlib.util

    from onnxpipe.validation.inputs import InputConfig, build_inputs
    from onnxpipe.validation.parity import execute
    from onnxpipe.validation.runtimes.onnxrt import OnnxRuntime
    from tests.conftest import ROOT

    spec = importlib.util.spec_from_file_location("raw_inference", ROOT / "bench" / "raw_inference.py")
    raw = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(raw)
    from onnxpipe.pipeline.rundir import RunDir

    art = next(a for a in RunDir(cnn_run).artifacts() if a.label == "model.onnx")
    inputs = build_inputs(art.spec, InputConfig())
    sizes = []

    class Recording(OnnxRuntime):
        def _run(self, feeds):
            sizes.append(next(iter(feeds.values())).shape[0])
            return super()._run(feeds)

    with Recording(art) as rt:
        execute(rt, inputs, InputConfig())
    assert len(inputs) == 430
    assert sizes == [b - a for a, b in raw.batches(len(inputs))]


@pytest.mark.slow  # heavy end-to-end case of an older feature: the default suite stays near its time
def test_the_architecture_sweep_converts_a_folder_and_counts_what_was_validated(tmp_path):
    import subprocess
    import sys

    from tests.conftest import ROOT

    script = ROOT / "bench" / "architectures.py"
    # A previous sweep's row for another architecture is kept beside the one rerun.
    earlier = {"architecture": "bert", "kept": {}, "attempts": [], "error": "build failed: planted"}
    (tmp_path / "architectures.json").write_text(json.dumps({"precisions": "fp32", "records": [earlier]}))
    proc = subprocess.run(
        [sys.executable, str(script), "--only", "resnet", "--precisions", "fp32", "--out", str(tmp_path)],
        capture_output=True, text=True, check=False, cwd=ROOT,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    document = json.loads((tmp_path / "architectures.json").read_text())
    assert document["precisions"] == "fp32" and [r["architecture"] for r in document["records"]] == [
        "bert",
        "resnet",
    ]  # the sweep's order
    record = document["records"][1]
    assert record["architecture"] == "resnet" and record["error"] is None
    assert set(record["kept"]) == {"saved_model", "model_fp32.tflite"}
    assert record["spread"] > 0.1  # the output depends on the input: validation means something
    first = record["attempts"][0]
    assert first["route"] == "onnx2tf" and first["seconds"] > 0 and first["peak_mb"] > 0
    table = (tmp_path / "architectures.md").read_text()
    assert "| resnet | onnx2tf | kept pass | kept pass |" in table
    assert "validation proves little): none" in table
    assert "- validated model_fp32.tflite: 1 of 2 architectures" in table and "build failed: planted" in table
    assert (tmp_path / "models" / "resnet" / "config.json").is_file()  # the folder it converted
    bad = subprocess.run([sys.executable, str(script), "--only", "nosuchnet"], capture_output=True, text=True)
    assert bad.returncode != 0 and "unknown architecture(s) nosuchnet" in bad.stderr
