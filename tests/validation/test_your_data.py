"""The user's own data: inputs that carry a shape, images, labels and int8 calibration."""

import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from onnxpipe.models.errors import InputFileError, UsageError
from onnxpipe.models.onnx_roles import input_roles
from onnxpipe.pipeline.artifacts import spec_from_onnx
from onnxpipe.validation.inputs import InputConfig, build_inputs
from tests.conftest import onnxpipe


def _expand_model(path, target=None):
    """y = Expand(x, shape): ``shape`` a graph input, or baked to ``target`` (a converter's wrong guess)."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [3, 1])
    inputs = [x]
    nodes = []
    if target is None:
        inputs.append(helper.make_tensor_value_info("shape", TensorProto.INT64, [3]))
    else:  # the input is still declared (same interface), its values ignored
        inputs.append(helper.make_tensor_value_info("shape", TensorProto.INT64, [3]))
        nodes.append(helper.make_node("Identity", ["shape"], ["ignored"]))
        nodes.append(
            helper.make_node(
                "Constant", [], ["baked"], value=numpy_helper.from_array(np.array(target, np.int64))
            )
        )
    nodes.append(
        helper.make_node("Expand", ["x", "shape" if target is None else "baked"], ["y"], name="expand")
    )
    outputs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["a", "b", "c"])]
    if target is not None:
        outputs.append(helper.make_tensor_value_info("ignored", TensorProto.INT64, [3]))
    graph = helper.make_graph(nodes, "expand", inputs, outputs)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path


def test_roles_find_shapes_through_carrying_ops_and_indices_with_their_table(tmp_path):
    ids = helper.make_tensor_value_info("ids", TensorProto.INT64, ["N", 4])
    dims = helper.make_tensor_value_info("dims", TensorProto.INT32, [2])
    mask = helper.make_tensor_value_info("mask", TensorProto.INT64, ["N", 4])
    table = numpy_helper.from_array(np.zeros((50, 8), np.float32), "table")
    nodes = [
        helper.make_node("Gather", ["table", "ids"], ["emb"]),  # ids index a 50-row table
        helper.make_node("Cast", ["dims"], ["dims64"], to=TensorProto.INT64),  # carried on...
        helper.make_node("Concat", ["dims64", "dims64"], ["four"], axis=0),
        helper.make_node("Reshape", ["emb", "four"], ["out"], name="reshape"),  # ...to a shape
        helper.make_node("Cast", ["mask"], ["maskf"], to=TensorProto.FLOAT),  # plain data
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [ids, dims, mask],
        [
            helper.make_tensor_value_info("out", TensorProto.FLOAT, None),
            helper.make_tensor_value_info("maskf", TensorProto.FLOAT, None),
        ],
        [table],
    )
    roles = input_roles(helper.make_model(graph))
    assert set(roles) == {"ids", "dims"}  # the mask is data
    assert roles["ids"].kind == "index" and roles["ids"].high == 50
    assert roles["dims"].kind == "shape"
    assert "Reshape's input 1 (node 'reshape')" in roles["dims"].why and "through 'four'" in roles["dims"].why


def test_a_shape_input_is_never_randomised_and_is_fed_whole(tmp_path):
    spec = spec_from_onnx(_expand_model(tmp_path / "expand.onnx"))
    shape_input = next(t for t in spec.inputs if t.name == "shape")
    assert shape_input.kind == "shape" and not shape_input.invented
    with pytest.raises(UsageError, match=r"input 'shape' \(int64 \[3\]\) carries a shape.*Expand's input 1"):
        build_inputs(spec, InputConfig(random=4))
    npz = tmp_path / "in.npz"
    np.savez(npz, x=np.ones((3, 1), np.float32), shape=np.array([2, 1, 6], np.int64))
    inputs = build_inputs(spec, InputConfig(user=str(npz), random=4))
    assert set(inputs.arrays) == {"x"} and list(inputs.fixed["shape"]) == [2, 1, 6]
    assert inputs.groups == {"inputs": (0, 3), "random": (3, 7), "edge": (7, 13)}  # x is data: randomised
    assert list(inputs.slice(3, 5)) == ["x", "shape"] and inputs.slice(3, 5)["shape"].shape == (3,)
    bad = tmp_path / "bad.npz"
    np.savez(bad, x=np.ones((3, 1), np.float32), shape=np.array([[2, 1, 6]], np.int64))
    with pytest.raises(
        InputFileError, match=r"'shape': shape \[1, 3\], expected \[3\] \(one value: it feeds Expand"
    ):
        build_inputs(spec, InputConfig(user=str(bad)))


def test_a_wrong_artifact_that_passes_on_made_up_values_is_caught_on_your_inputs(tmp_path):
    reference = _expand_model(tmp_path / "expand.onnx")
    wrong = _expand_model(tmp_path / "baked.onnx", target=[2, 3, 6])  # what it saw while tracing
    ok = tmp_path / "ok.npz"
    np.savez(ok, x=np.arange(3, dtype=np.float32).reshape(3, 1), shape=np.array([2, 1, 6], np.int64))
    other = tmp_path / "other.npz"
    np.savez(other, x=np.arange(3, dtype=np.float32).reshape(3, 1), shape=np.array([4, 1, 6], np.int64))
    args = [
        "validate",
        "--reference",
        str(reference),
        "--candidate",
        str(wrong),
        "--out",
        str(tmp_path / "v"),
    ]
    proc = onnxpipe(*args, "--devices", "cpu")
    assert proc.returncode == 2 and "give its values with --inputs FILE.npz" in proc.stderr, proc.stderr
    assert not (tmp_path / "v" / "parity.json").exists()
    proc = onnxpipe(*args, "--devices", "cpu", "--inputs", str(ok))  # the value it baked: passes
    assert proc.returncode == 0, proc.stdout + proc.stderr
    proc = onnxpipe(*args, "--devices", "cpu", "--inputs", str(other))  # any other value: caught
    assert proc.returncode == 1, proc.stdout + proc.stderr
    report = json.loads((tmp_path / "v" / "parity.json").read_text())
    (row,) = [r for r in report["results"] if r["artifact"] == "baked.onnx"]
    assert row["status"] in ("fail", "error") and "vs reference [" in row["message"], row


def test_convert_refuses_a_shape_input_without_values_before_anything_runs(tmp_path):
    model = _expand_model(tmp_path / "expand.onnx")
    proc = onnxpipe("convert", str(model), "--out", str(tmp_path / "run"))
    assert proc.returncode == 2 and "input 'shape'" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "run").exists() or not any((tmp_path / "run").iterdir())
    bad = tmp_path / "bad.npz"
    np.savez(bad, x=np.ones((5, 2), np.float32), shape=np.array([2, 1, 6], np.int64))
    proc = onnxpipe("convert", str(model), "--out", str(tmp_path / "run"), "--inputs", str(bad))
    assert proc.returncode == 2 and "'x': shape [5, 2], expected ['N', 1] (N: samples)" in proc.stderr
    # With the values, the planner measures onnx2tf's layouts on them (its output is [2, 6, 3] for the
    # reference's [2, 3, 6]; judged by the rule alone it failed) and keeps what it validated on them.
    good = tmp_path / "good.npz"
    np.savez(good, x=np.arange(3, dtype=np.float32).reshape(3, 1), shape=np.array([2, 1, 6], np.int64))
    proc = onnxpipe(
        "convert", str(model), "--out", str(tmp_path / "run"), "--inputs", str(good), "--to", "tflite"
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    kept = [r for r in json.loads((tmp_path / "run" / "backends.json").read_text())["rows"] if r["kept"]]
    assert [(r["artifact"], r["status"]) for r in kept] == [
        ("model_fp32.tflite", "pass"),
        ("model_fp16.tflite", "pass"),
    ]
    report = json.loads((tmp_path / "run" / "backends" / kept[0]["backend"] / "parity.json").read_text())
    assert report["inputs"]["groups"] == {"inputs": 3, "random": 64, "edge": 6}


def test_int8_without_anything_to_calibrate_on_is_refused_with_the_way_out(tmp_path):
    model = _expand_model(tmp_path / "expand.onnx")
    npz = tmp_path / "in.npz"
    np.savez(npz, x=np.ones((3, 1), np.float32), shape=np.array([2, 1, 6], np.int64))
    proc = onnxpipe(
        "convert", str(model), "--precision", "int8", "--inputs", str(npz), "--out", str(tmp_path / "r")
    )
    assert (
        proc.returncode == 2 and "calibration of a model whose input 'shape' carries a shape" in proc.stderr
    )


def _write_images(folder, n, rng):
    """Images a tiny classifier tells apart: mostly red, green or blue squares, noisy, at 20x20."""
    from PIL import Image

    folder.mkdir()
    labels = []
    for i in range(n):
        label = i % 3
        pixels = rng.integers(0, 90, (20, 20, 3))
        pixels[4:16, 4:16, label] += 160
        Image.fromarray(pixels.astype(np.uint8)).save(folder / f"img_{i:03d}.png")
        labels.append(label)
    return labels


def test_images_are_read_in_the_model_layout_resized_and_normalised(tmp_path):
    from onnxpipe.models.spec import ModelSpec, TensorSpec
    from onnxpipe.models.user_data import UserData, load_user_inputs

    _write_images(tmp_path / "imgs", 4, np.random.default_rng(0))
    spec = ModelSpec(
        "m", (TensorSpec("image", ("N", 3, 16, 16)),), (TensorSpec("y", ("N", 3)),), dataset=None
    )
    x = load_user_inputs(UserData(str(tmp_path / "imgs"), mean=(0.5,), std=(0.25,)), spec)["image"]
    assert x.shape == (4, 3, 16, 16) and x.dtype == np.float32
    assert x.min() >= -2.0 and x.max() <= 2.0  # (p/255 - 0.5) / 0.25
    assert x[0, 0, 8, 8] > x[0, 1, 8, 8]  # image 0 is the red one, in channel 0 (NCHW)
    nhwc = ModelSpec(
        "m", (TensorSpec("image", ("N", 16, 16, 3)),), (TensorSpec("y", ("N", 3)),), dataset=None
    )
    y = load_user_inputs(str(tmp_path / "imgs"), nhwc)["image"]
    assert y.shape == (4, 16, 16, 3) and y.min() >= 0 and y.max() <= 1
    two = ModelSpec(
        "m", (TensorSpec("a", ("N", 3, 16, 16)), TensorSpec("b", ("N", 3))), (TensorSpec("y", ("N", 3)),)
    )
    with pytest.raises(InputFileError, match="images feed a model with one float input"):
        load_user_inputs(str(tmp_path / "imgs"), two)
    dynamic = ModelSpec(
        "m", (TensorSpec("image", ("N", 3, "h", "w")),), (TensorSpec("y", ("N", 3)),), dataset=None
    )
    with pytest.raises(InputFileError, match=r"dynamic height or width.*give --image-size SIDE"):
        load_user_inputs(str(tmp_path / "imgs"), dynamic)
    assert load_user_inputs(UserData(str(tmp_path / "imgs"), image_size=12), dynamic)["image"].shape == (
        4,
        3,
        12,
        12,
    )
    with pytest.raises(UsageError, match=r"--image-size 12: 'image' takes images of \[16, 16\] exactly"):
        load_user_inputs(UserData(str(tmp_path / "imgs"), image_size=12), spec)
    (tmp_path / "imgs" / "broken.png").write_bytes(b"not a png")
    with pytest.raises(InputFileError, match=r"broken\.png: not a readable image"):
        load_user_inputs(str(tmp_path / "imgs"), spec)


USER_NET = """
import torch


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.head = torch.nn.Linear(8, 3)

    def forward(self, image):
        return self.head(torch.relu(self.conv(image)).mean(dim=(2, 3)))
"""


def _trained_user_net(tmp_path, images, labels):
    """The user's class, trained a little on their images, saved as a state dict."""
    import torch

    (tmp_path / "net.py").write_text(USER_NET)
    namespace: dict = {}
    exec(USER_NET, namespace)
    torch.manual_seed(0)
    net = namespace["Net"]()
    x, y = torch.from_numpy(images), torch.tensor(labels)
    opt = torch.optim.Adam(net.parameters(), lr=0.05)
    for _ in range(60):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(x), y).backward()
        opt.step()
    torch.save(net.state_dict(), tmp_path / "weights.pt")
    return tmp_path / "weights.pt"


def test_a_user_model_is_quantized_to_int8_from_a_folder_of_images(tmp_path):
    from onnxpipe.models.spec import ModelSpec, TensorSpec
    from onnxpipe.models.user_data import UserData, load_user_inputs

    rng = np.random.default_rng(1)
    labels = _write_images(tmp_path / "imgs", 36, rng)
    (tmp_path / "labels.txt").write_text("\n".join(map(str, labels)))
    norm = ["--mean", "0.5", "--std", "0.25"]
    spec = ModelSpec("Net", (TensorSpec("image", ("N", 3, 20, 20)),), (TensorSpec("y", ("N", 3)),))
    images = load_user_inputs(UserData(str(tmp_path / "imgs"), (0.5,), (0.25,)), spec)["image"]
    weights = _trained_user_net(tmp_path, images, labels)
    out = tmp_path / "run"
    user = [
        "--model-class",
        f"{tmp_path / 'net.py'}:Net",
        "--input-shape",
        "1,3,20,20",
        "--input-name",
        "image",
    ]
    proc = onnxpipe(
        "convert", str(weights), *user, "--out", str(out), "--to", "tflite", "--precision", "fp32,int8",
        "--backend", "onnx2tf", "--calibration", str(tmp_path / "imgs"), *norm,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["artifacts"]["model_int8.tflite"]["extra"]["calibration"] == {
        "source": "imgs",
        "samples": 36,
    }
    assert "calibration" not in manifest["artifacts"]["model_fp32.tflite"]["extra"]
    proc = onnxpipe(
        "validate", str(out), "--model-class", f"{tmp_path / 'net.py'}:Net", "--devices", "cpu",
        "--runtimes", "onnxruntime,ai-edge-litert", "--inputs", str(tmp_path / "imgs"), *norm,
        "--labels", str(tmp_path / "labels.txt"),
    )  # fmt: skip
    report = json.loads((out / "parity.json").read_text())
    lo, hi = report["inputs"]["value_range"]  # random and edge cases over the images' own range, not [0, 1]
    assert lo == pytest.approx(images.min()) and hi == pytest.approx(images.max()) and lo < -1.5 and hi > 1.5
    rows = {r["artifact"]: r for r in report["results"] if r["runtime"] in ("onnxruntime", "ai-edge-litert")}
    assert report["inputs"]["samples"] == 36 and report["reference"]["accuracy"] >= 0.9, report["reference"]
    int8 = rows["model_int8.tflite"]
    assert int8["status"] == "pass" and proc.returncode == 0, proc.stdout + proc.stderr
    assert int8["accuracy"] >= 0.9 and int8["metrics"]["top1_agreement"] >= 0.95, int8
    assert int8["groups"]["inputs"]["max_abs"] < 0.5  # on the user's own images
    # Labels that do not fit the samples are refused before anything runs.
    (tmp_path / "short.txt").write_text("0\n1\n")
    proc = onnxpipe(
        "validate", str(out), "--model-class", f"{tmp_path / 'net.py'}:Net", "--inputs", str(tmp_path / "imgs"),
        "--labels", str(tmp_path / "short.txt"),
    )  # fmt: skip
    assert proc.returncode == 2 and "2 labels for 36 samples" in proc.stderr, proc.stderr


def test_bench_feeds_your_inputs_and_run_refuses_unfit_ones_before_training(cnn_copy, tmp_path):
    samples = tmp_path / "samples.npz"
    np.savez(samples, input=np.random.default_rng(0).uniform(0, 1, (6, 1, 8, 8)).astype(np.float32))
    proc = onnxpipe(
        "bench", str(cnn_copy), "--iters", "2", "--warmup", "0", "--batch", "4", "--inputs", str(samples),
        "--runtimes", "onnxruntime,pytorch",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    doc = json.loads((cnn_copy / "bench.json").read_text())
    assert doc["options"]["inputs"]["path"] == str(samples) and doc["options"]["batch"] == 4
    assert {r["status"] for r in doc["results"]} == {"ok"}
    proc = onnxpipe("bench", str(cnn_copy), "--iters", "1", "--batch", "8", "--inputs", str(samples))
    assert proc.returncode == 2 and "batch: got 8, but only 6 samples exist" in proc.stderr, proc.stderr
    bad = tmp_path / "bad.npz"
    np.savez(bad, input=np.zeros((2, 3, 8, 8), np.float32))
    out = tmp_path / "never"
    proc = onnxpipe("run", "--model", "cnn", "--out", str(out), "--inputs", str(bad))
    assert proc.returncode == 2 and "'input': shape [2, 3, 8, 8], expected ['N', 1, 8, 8]" in proc.stderr
    assert not out.exists()  # refused before the run directory, let alone training
    proc = onnxpipe("validate", str(cnn_copy), "--mean", "0.5")
    assert proc.returncode == 2 and "--mean/--std: they normalise images given with --inputs" in proc.stderr
