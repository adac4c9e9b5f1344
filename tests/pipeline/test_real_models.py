"""Models onnxpipe did not make, as users have them (issue #25): files from public packages."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from onnxpipe.models.fs import sha256_path
from tests.conftest import onnxpipe

#: The ONNX package's own test data: an opset-6 AveragePool whose input is named "0" and output "1".
AVGPOOL = Path(onnx.__file__).parent / "backend/test/data/pytorch-converted/test_AvgPool2d/model.onnx"


def test_an_opset6_file_with_numeric_names_converts_and_validates_in_the_main_environment(tmp_path):
    """TensorFlow calls the SavedModel's input "0" by the identifier "arg_0": bound through its
    signature, the onnx2tf SavedModel is kept (before, only onnx-tf's environment could save it)."""
    source = tmp_path / "avgpool.onnx"
    shutil.copyfile(AVGPOOL, source)
    run = tmp_path / "run"
    proc = onnxpipe("convert", str(source), "--out", str(run), "--backend", "onnx2tf", check=True)
    assert "Traceback" not in proc.stderr
    proc = onnxpipe("validate", str(run), "--devices", "cpu", "--samples", "4", "--random", "4")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads((run / "parity.json").read_text())
    rows = {(r["artifact"], r["runtime"]): r["status"] for r in report["results"]}
    assert rows[("saved_model", "tensorflow")] == "pass"
    assert rows[("model_fp32.tflite", "ai-edge-litert")] == "pass"
    assert "Unsupported ONNX opset" not in proc.stderr  # ONNX Runtime's optimizer warnings are not shown
    source.write_bytes(source.read_bytes() + b"\0")  # the reference changed: validating against it is refused
    proc = onnxpipe("validate", str(run), "--devices", "cpu", "--force")
    assert proc.returncode == 2 and "which changed since (convert it again)" in proc.stderr, proc.stderr


def _save(graph, path: Path, opset: int = 17) -> Path:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path


def _free_sizes_cnn(path: Path, flatten_to: int | None = None) -> Path:
    """A CNN as Paddle exports them: batch and height symbolic, width written -1 (``[N, 3, H, -1]``).

    ``flatten_to``: the features are reshaped to ``[N, flatten_to]``: only one image size fits.
    """
    x = helper.make_tensor_value_info(
        "x", TensorProto.FLOAT, ["p2o.DynamicDimension.0", 3, "p2o.DynamicDimension.1", -1]
    )
    w = numpy_helper.from_array(
        np.random.default_rng(0).standard_normal((4, 3, 3, 3)).astype(np.float32), "w"
    )
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1], name="Conv@0")
    ]  # a name Keras refuses
    if flatten_to is None:
        nodes.append(helper.make_node("ReduceMean", ["c"], ["y"], axes=[2, 3], keepdims=0))
    else:
        shape = numpy_helper.from_array(np.array([0, flatten_to], np.int64), "shape")  # 0: the batch
        nodes.append(helper.make_node("Reshape", ["c", shape.name], ["y"]))
    inits = [w] + ([] if flatten_to is None else [shape])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["p2o.DynamicDimension.2", -1])
    return _save(helper.make_graph(nodes, "cnn", [x], [y], inits), path)


def test_free_sizes_are_resolved_named_and_recorded_and_the_users_file_is_left_as_it_was(tmp_path):
    source = _free_sizes_cnn(tmp_path / "det.onnx")
    before = sha256_path(source)
    run = tmp_path / "run"
    args = ("convert", str(source), "--out", str(run), "--backend", "onnx2tf", "--input-shape", "x=1,3,32,40")
    proc = onnxpipe(*args, check=True)
    assert (
        "sizes: x axis 2 (p2o.DynamicDimension.1) = 32 (--input-shape); x axis 3 = 40 (--input-shape)"
        in proc.stderr
    )
    assert sha256_path(source) == before
    record = json.loads((run / "manifest.json").read_text())["artifacts"]["model.onnx"]
    assert record["parent"] == "det.onnx" and record["spec"]["inputs"][0]["shape"] == ["batch", 3, 32, 40]
    sized = onnx.load(str(run / "model.onnx"))
    dims = [d.dim_param or d.dim_value for d in sized.graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["batch", 3, 32, 40]
    proc = onnxpipe(
        "validate", str(run), "--devices", "cpu", "--runtimes", "onnxruntime,tensorflow,ai-edge-litert"
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads((run / "parity.json").read_text())
    assert report["reference"]["artifact"] == "model.onnx"
    assert {r["status"] for r in report["results"]} == {"pass"}
    proc = onnxpipe(*args, check=True)  # the same command again: nothing to do
    assert "convert: up to date" in proc.stderr


def test_sizes_the_reference_rejects_are_refused_with_the_sizes_and_the_option(tmp_path):
    source = _free_sizes_cnn(tmp_path / "fixed_inside.onnx", flatten_to=4 * 8 * 8)  # takes 8x8 images only
    run = tmp_path / "run"
    proc = onnxpipe("convert", str(source), "--out", str(run), "--backend", "onnx2tf")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert "the reference (onnxruntime) rejects the inputs onnxpipe made up, x axis 2" in proc.stderr
    assert "= 224 (default for image side)" in proc.stderr and "--input-shape NAME=SIZES" in proc.stderr
    assert not run.exists()  # nothing written, not even the mark
    proc = onnxpipe(
        "convert", str(source), "--out", str(run), "--backend", "onnx2tf", "--input-shape", "x=1,3,8,8"
    )
    assert proc.returncode == 0, proc.stderr


def _state_model(path: Path) -> Path:
    """Silero VAD's interface: ``input [?, ?]``, ``state [2, ?, 4]`` (its batch on axis 1), ``sr`` 0-d."""
    inputs = [
        helper.make_tensor_value_info("input", TensorProto.FLOAT, [None, None]),
        helper.make_tensor_value_info("state", TensorProto.FLOAT, [2, None, 4]),
        helper.make_tensor_value_info("sr", TensorProto.INT64, []),
    ]
    consts = [
        numpy_helper.from_array(np.array([0], np.int64), "zero"),
        numpy_helper.from_array(np.array([4], np.int64), "four"),
        numpy_helper.from_array(np.array([1], np.int64), "one"),
        numpy_helper.from_array(np.array(0, np.int64), "first"),
        numpy_helper.from_array(np.array(16000.0, np.float32), "rate"),
        numpy_helper.from_array(np.array(2.0, np.float32), "two"),
    ]
    nodes = [
        helper.make_node("Slice", ["input", "zero", "four", "one"], ["head"]),  # [N, 4]
        helper.make_node("Gather", ["state", "first"], ["h"], axis=0),  # [N, 4]: fails if N differs
        helper.make_node("Add", ["head", "h"], ["sum"]),
        helper.make_node("Cast", ["sr"], ["srf"], to=TensorProto.FLOAT),
        helper.make_node("Div", ["srf", "rate"], ["scale"]),
        helper.make_node("Mul", ["sum", "scale"], ["output"]),
        helper.make_node("Mul", ["state", "two"], ["stateN"]),
    ]
    outputs = [
        helper.make_tensor_value_info("output", TensorProto.FLOAT, [None, 4]),
        helper.make_tensor_value_info("stateN", TensorProto.FLOAT, [None, None, None]),
    ]
    return _save(helper.make_graph(nodes, "vad", inputs, outputs, consts), path)


def test_a_state_with_its_batch_on_axis_1_and_a_0d_setting_are_fed_as_the_model_takes_them(tmp_path):
    source = _state_model(tmp_path / "vad.onnx")
    rng = np.random.default_rng(0)
    samples = tmp_path / "audio.npz"
    np.savez(
        samples,
        input=rng.uniform(-1, 1, (5, 64)).astype(np.float32),
        state=rng.standard_normal((2, 5, 4)).astype(np.float32),  # 5 samples on axis 1
        sr=np.array(16000, np.int64),
    )
    args = ("validate", "--reference", str(source), "--candidate", str(source), "--devices", "cpu")
    proc = onnxpipe(*args, "--out", str(tmp_path / "v"))
    assert proc.returncode == 2 and "input 'sr' (int64 [])" in proc.stderr and "Traceback" not in proc.stderr
    proc = onnxpipe(*args, "--out", str(tmp_path / "v"), "--inputs", str(samples), "--sweep", "1,2,3")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads((tmp_path / "v" / "parity.json").read_text())
    assert report["inputs"]["groups"] == {"inputs": 5, "random": 64, "edge": 6}
    assert {r["status"] for r in report["results"]} == {"pass"}


def test_a_fixed_batch_takes_any_number_of_samples_and_a_folder_of_one_file_per_sample(tmp_path):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])
    source = _save(
        helper.make_graph(
            [helper.make_node("ReduceMax", ["x"], ["y"], axes=[2, 3], keepdims=0)], "g", [x], [y]
        ),
        tmp_path / "fixed.onnx",
    )
    folder = tmp_path / "samples"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(5):  # one sample per file, as such folders usually are
        np.save(folder / f"{i:03d}.npy", rng.uniform(0, 1, (3, 8, 8)).astype(np.float32))
    proc = onnxpipe(
        "validate",
        "--reference",
        str(source),
        "--candidate",
        str(source),
        "--devices",
        "cpu",
        "--out",
        str(tmp_path / "v"),
        "--inputs",
        str(folder),
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads((tmp_path / "v" / "parity.json").read_text())
    assert report["inputs"]["groups"]["inputs"] == 5 and report["inputs"]["batch"] == 32


# --- trained models from public packages (downloaded with pip, as bench/real_models.py does) ---


def _bench():
    """``bench/real_models.py`` (the bench scripts are not a package)."""
    import importlib.util
    import sys

    from tests.conftest import ROOT

    sys.path.insert(0, str(ROOT / "bench"))
    spec = importlib.util.spec_from_file_location("real_models", ROOT / "bench" / "real_models.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["real_models"] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def real():
    """The bench module and the unpacked wheels (cached in runs/.real-models)."""
    from tests.conftest import ROOT

    bench = _bench()
    cache = ROOT / "runs" / ".real-models"
    cache.mkdir(parents=True, exist_ok=True)
    return bench, bench.fetch(cache)


def _real_row(real, name: str, tmp_path: Path) -> list[dict]:
    bench, files = real
    model = next(m for m in bench.MODELS if m.name == name)
    rows = bench.run_one(model, files, tmp_path, None)
    assert not any(r["traceback"] for r in rows), rows
    return rows


@pytest.mark.parametrize(
    "name",
    [
        "ppocr-cls",  # batch written -1, height and width unknown; node names Keras refuses
        pytest.param("ppocr-det", marks=pytest.mark.slow),  # a probability map: cosine of noise
        pytest.param("ppocr-rec", marks=pytest.mark.slow),
        pytest.param("yolov8n", marks=pytest.mark.slow),  # only the static-batch route converts it
        pytest.param("mtcnn-pnet", marks=pytest.mark.slow),
        pytest.param("mtcnn-rnet", marks=pytest.mark.slow),
        pytest.param("mtcnn-onet", marks=pytest.mark.slow),
    ],
)
def test_a_real_trained_model_converts_and_its_kept_files_pass_on_realistic_inputs(real, name, tmp_path):
    rows = {r["artifact"]: r for r in _real_row(real, name, tmp_path)}
    for artifact in ("saved_model", "model_fp32.tflite"):
        assert rows.get(artifact, {}).get("status") == "pass", rows


def test_a_setting_that_chooses_a_branch_is_refused_without_its_value_and_named(real, tmp_path):
    """Silero VAD's ``sr`` (0-d, compared with 16000 and fed to an If): never made up."""
    _, files = real
    proc = onnxpipe("convert", str(files / "silero_vad/data/silero_vad.onnx"), "--out", str(tmp_path / "run"))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert "input 'sr' (int64 [])" in proc.stderr and "chooses If's input 0 (node 'If_0')" in proc.stderr
    assert "give its values with --inputs FILE.npz (an array named 'sr')" in proc.stderr


@pytest.mark.slow
@pytest.mark.parametrize("name", ["silero-vad", "silero-vad-op15", "silero-vad-op18"])
def test_silero_vad_with_its_settings_ends_in_kept_files_or_a_refusal_naming_the_op(real, name, tmp_path):
    rows = _real_row(real, name, tmp_path)
    for r in rows:
        assert r["status"] == "pass" or (r["status"] in ("failed", "refused") and r["reason"]), rows


def test_int8_of_a_model_with_a_setting_or_a_state_on_axis_1_is_refused_before_anything_is_written(tmp_path):
    source = _state_model(tmp_path / "vad.onnx")
    samples = tmp_path / "audio.npz"
    rng = np.random.default_rng(0)
    np.savez(
        samples,
        input=rng.uniform(-1, 1, (5, 64)).astype(np.float32),
        state=rng.standard_normal((2, 5, 4)).astype(np.float32),
        sr=np.array(16000, np.int64),
    )
    proc = onnxpipe(
        "convert", str(source), "--out", str(tmp_path / "run"), "--backend", "onnx2tf",
        "--precision", "int8", "--inputs", str(samples),
    )  # fmt: skip
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert "int8 calibration of a model whose input 'sr' is a setting is not supported" in proc.stderr
    assert not (tmp_path / "run").exists()  # refused before the sized copy is written
