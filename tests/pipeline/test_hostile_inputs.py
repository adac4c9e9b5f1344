"""The hostile-input catalogue: each case runs the real CLI and must give one error line with the
problem named, a documented exit code, no traceback, and no file written.

The number of cases tried is printed at the end of the test session.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

from tests.conftest import HOSTILE_TRIED, MUTATED_OUTCOMES, onnxpipe


@dataclass(frozen=True)
class Case:
    name: str
    build: Callable[[Path, Path], list[str]]  # (tmp folder, CNN run dir) -> CLI arguments
    code: int
    error: str  # regex the single "Error:" line must match


class _Evil:
    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _ckpt(run: Path, tmp: Path, name: str, edit: Callable[[dict], None]) -> Path:
    raw = torch.load(run / "checkpoint.pt", weights_only=True)
    edit(raw)
    torch.save(raw, tmp / name)
    return tmp / name


def _onnx_with(tmp: Path, name: str, nodes, inputs, outputs, initializers=(), opsets=(("", 17),)) -> Path:
    graph = helper.make_graph(nodes, "g", inputs, outputs, list(initializers))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid(d, v) for d, v in opsets])
    onnx.save(model, str(tmp / name))
    return tmp / name


def _relu(tmp: Path, name: str, shape, dtype=TensorProto.FLOAT, input_name="input") -> Path:
    x = helper.make_tensor_value_info(input_name, dtype, shape)
    y = helper.make_tensor_value_info("logits", dtype, shape)
    return _onnx_with(tmp, name, [helper.make_node("Relu", [input_name], ["logits"])], [x], [y])


def _external(tmp: Path, name: str, location: str) -> Path:
    w = numpy_helper.from_array(np.ones((4,), np.float32), "w")
    w.ClearField("raw_data")
    w.data_location = TensorProto.EXTERNAL
    entry = w.external_data.add()
    entry.key, entry.value = "location", location
    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 4])
    y = helper.make_tensor_value_info("out", TensorProto.FLOAT, ["batch", 4])
    return _onnx_with(tmp, name, [helper.make_node("Add", ["input", "w"], ["out"])], [x], [y], [w])


def _validate(run: Path, tmp: Path, candidate: Path) -> list[str]:
    return [
        "validate",
        "--reference",
        str(run / "checkpoint.pt"),
        "--candidate",
        str(candidate),
        "--out",
        str(tmp / "report"),
    ]


def _config(tmp: Path, text: str) -> list[str]:
    (tmp / "c.toml").write_text(text)
    return ["run", "--out", str(tmp / "run"), "--config", str(tmp / "c.toml")]


CASES = [
    # --- checkpoints
    Case("checkpoint missing", lambda t, r: ["export", str(t / "nope.pt")], 2, r"nope\.pt: no such file"),
    Case("checkpoint empty", lambda t, r: ["export", str(_write(t / "e.pt", b""))], 2, r"e\.pt: is empty"),
    Case(
        "checkpoint garbage",
        lambda t, r: ["export", str(_write(t / "g.pt", os.urandom(4096)))],
        2,
        r"g\.pt: (not a readable PyTorch checkpoint|refused)",
    ),
    Case(
        "checkpoint truncated",
        lambda t, r: ["export", str(_write(t / "t.pt", (r / "checkpoint.pt").read_bytes()[:3000]))],
        2,
        r"t\.pt: not a readable PyTorch checkpoint",
    ),
    Case(
        "checkpoint pickle that runs code",
        lambda t, r: (
            torch.save({"x": _Evil(str(t / "pwned"))}, t / "evil.pt"),
            ["export", str(t / "evil.pt")],
        )[1],
        2,
        r"evil\.pt: refused",
    ),
    Case(
        "checkpoint plain state dict",
        lambda t, r: (torch.save({"w": torch.ones(2)}, t / "sd.pt"), ["export", str(t / "sd.pt")])[1],
        2,
        r"sd\.pt: not an onnxpipe checkpoint",
    ),
    Case(
        "checkpoint of another architecture",
        lambda t, r: ["export", str(_ckpt(r, t, "arch.pt", lambda d: d.update(model="mlp")))],
        2,
        r"arch\.pt: does not fit architecture 'mlp': missing keys",
    ),
    Case(  # found by the fuzz test: one byte of the spec's "outputs" key zeroed still unpickles
        "checkpoint whose spec lacks a key",
        lambda t, r: ["export", str(_ckpt(r, t, "spec.pt", lambda d: d["spec"].pop("outputs")))],
        2,
        r"spec\.pt: not a valid onnxpipe checkpoint: its record does not read \(KeyError: 'outputs'\)",
    ),
    Case(
        "checkpoint with unknown model",
        lambda t, r: ["export", str(_ckpt(r, t, "vgg.pt", lambda d: d.update(model="vgg")))],
        2,
        r"unknown model 'vgg'; valid: cnn, gru, lstm, mlp",
    ),
    Case(
        "checkpoint of a future format",
        lambda t, r: [
            "export",
            str(_ckpt(r, t, "v9.pt", lambda d: d.update(format="onnxpipe-checkpoint/9"))),
        ],
        2,
        r"v9\.pt: checkpoint format",
    ),
    Case("run directory without checkpoint", lambda t, r: ["export", str(t)], 2, r"has no checkpoint\.pt"),
    Case(
        "ONNX file given to export",
        lambda t, r: ["export", str(r / "model.onnx"), "--out", str(t / "x.onnx")],
        2,
        r"model\.onnx: not a readable PyTorch checkpoint \(neither a torch\.save zip archive nor a pickle\)",
    ),
    # --- ONNX files
    Case(
        "ONNX garbage bytes",
        lambda t, r: ["convert", str(_write(t / "g.onnx", b"\x12\x34garbage" * 50)), "--out", str(t / "o")],
        2,
        r"g\.onnx: not a readable ONNX model",
    ),
    Case(
        "ONNX empty",
        lambda t, r: ["convert", str(_write(t / "e.onnx", b"")), "--out", str(t / "o")],
        2,
        r"e\.onnx: is empty",
    ),
    Case(
        "ONNX truncated",
        lambda t, r: [
            "convert",
            str(_write(t / "t.onnx", (r / "model.onnx").read_bytes()[:2000])),
            "--out",
            str(t / "o"),
        ],
        2,
        r"t\.onnx: (not a readable ONNX model|invalid ONNX graph)",
    ),
    Case(
        "ONNX invalid graph",
        lambda t, r: [
            "convert",
            str(
                _onnx_with(
                    t,
                    "bad.onnx",
                    [helper.make_node("Relu", ["nowhere"], ["y"])],
                    [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                    [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
                )
            ),
            "--out",
            str(t / "o"),
        ],
        2,
        r"bad\.onnx: invalid ONNX graph",
    ),
    Case(
        "ONNX op the backend lacks",
        lambda t, r: [
            "convert",
            str(
                _onnx_with(
                    t,
                    "op.onnx",
                    [helper.make_node("MyOp", ["x"], ["y"], domain="com.example")],
                    [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                    [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
                    opsets=(("", 17), ("com.example", 1)),
                )
            ),
            "--out",
            str(t / "o"),
            "--backend",
            "onnx2tf",
        ],
        1,
        r"op\.onnx: the onnx2tf backend cannot convert op\(s\) com\.example::MyOp",
    ),
    Case(
        "ONNX external data outside its folder",
        lambda t, r: ["convert", str(_external(t, "ext.onnx", "../../../etc/passwd")), "--out", str(t / "o")],
        2,
        r"ext\.onnx: external data '\.\./\.\./\.\./etc/passwd' of tensor 'w' is outside the model's folder; refused",
    ),
    Case(
        "ONNX external data absolute path",
        lambda t, r: ["convert", str(_external(t, "abs.onnx", "/etc/hostname")), "--out", str(t / "o")],
        2,
        r"abs\.onnx: external data '/etc/hostname' .* refused",
    ),
    Case(
        "ONNX external data missing",
        lambda t, r: ["convert", str(_external(t, "miss.onnx", "weights.bin")), "--out", str(t / "o")],
        2,
        r"miss\.onnx: external data 'weights\.bin' of tensor 'w' is missing",
    ),
    # --- sizes of an ONNX file (--input-shape NAME=SIZES)
    Case(
        "ONNX input shape without its name",
        lambda t, r: ["convert", str(r / "model.onnx"), "--input-shape", "1,1,8,8", "--out", str(t / "o")],
        2,
        r"--input-shape 1,1,8,8: for an ONNX file, name the input: NAME=SIZES",
    ),
    Case(
        "ONNX input shape of an input it lacks",
        lambda t, r: ["convert", str(r / "model.onnx"), "--input-shape", "x=1,1,8,8", "--out", str(t / "o")],
        2,
        r"--input-shape x=\.\.\.: the model has no input 'x' \(inputs: input\)",
    ),
    Case(
        "ONNX input shape that is not sizes",
        lambda t, r: [
            "convert",
            str(r / "model.onnx"),
            "--input-shape",
            "input=1,a,8",
            "--out",
            str(t / "o"),
        ],
        2,
        r"--input-shape 'input=1,a,8': expected NAME=SIZES",
    ),
    Case(
        "ONNX input shape against a fixed size",
        lambda t, r: [
            "convert",
            str(r / "model.onnx"),
            "--input-shape",
            "input=1,3,8,8",
            "--out",
            str(t / "o"),
        ],
        2,
        r"axis 1 of 'input' is fixed to 1",
    ),
    # --- TFLite and SavedModel files
    Case(
        "TFLite garbage",
        lambda t, r: _validate(r, t, _write(t / "g.tflite", os.urandom(2048))),
        2,
        r"g\.tflite: cannot be loaded as tflite",
    ),
    Case(
        "TFLite truncated",
        lambda t, r: _validate(r, t, _write(t / "t.tflite", (r / "model_fp32.tflite").read_bytes()[:5000])),
        2,
        r"t\.tflite: cannot be loaded as tflite",
    ),
    Case(
        "TFLite empty",
        lambda t, r: _validate(r, t, _write(t / "e.tflite", b"")),
        2,
        r"e\.tflite: cannot be loaded as tflite",
    ),
    Case(
        "SavedModel garbage",
        lambda t, r: (
            (t / "sm").mkdir(),
            _write(t / "sm" / "saved_model.pb", b"junk"),
            _validate(r, t, t / "sm"),
        )[2],
        2,
        r"sm: cannot be loaded as tf_saved_model",
    ),
    Case(
        "folder that is no artifact",
        lambda t, r: ((t / "empty").mkdir(), _validate(r, t, t / "empty"))[1],
        2,
        r"empty: is a folder but not a SavedModel",
    ),
    Case(
        "unknown artifact type",
        lambda t, r: _validate(r, t, _write(t / "model.txt", b"hi")),
        2,
        r"model\.txt: unknown artifact type '\.txt'",
    ),
    # --- validate: inputs that do not fit the reference
    Case(
        "candidate with another input name",
        lambda t, r: _validate(r, t, _relu(t, "name.onnx", ["batch", 1, 8, 8], input_name="x")),
        2,
        r"name\.onnx: inputs \['x'\] differ from the reference's \['input'\]",
    ),
    Case(
        "candidate with another input shape",
        lambda t, r: _validate(r, t, _relu(t, "shape.onnx", ["batch", 1, 9, 9])),
        2,
        r"shape\.onnx: input 'input': shape \['batch', 1, 9, 9\], expected \['batch', 1, 8, 8\]",
    ),
    Case(
        "candidate with another input dtype",
        lambda t, r: _validate(r, t, _relu(t, "dtype.onnx", ["batch", 1, 8, 8], TensorProto.DOUBLE)),
        2,
        r"dtype\.onnx: input 'input': dtype float64, expected float32",
    ),
    Case(
        "TFLite of another model",
        lambda t, r: _validate(r, t, _mlp_tflite(t)),
        2,
        r"does not match the reference's interface",
    ),
    # --- names and flags
    Case(
        "unknown model",
        lambda t, r: ["train", "--model", "resnet", "--out", str(t / "o")],
        2,
        r"unknown model 'resnet'; valid: cnn, gru, lstm, mlp",
    ),
    Case(
        "unknown precision",
        lambda t, r: ["convert", str(r / "model.onnx"), "--precision", "int4", "--out", str(t / "o")],
        2,
        r"unknown precision 'int4'",
    ),
    Case(
        "unknown target",
        lambda t, r: ["convert", str(r / "model.onnx"), "--to", "keras", "--out", str(t / "o")],
        2,
        r"unknown target 'keras'",
    ),
    Case(
        "unknown backend",
        lambda t, r: ["convert", str(r / "model.onnx"), "--backend", "tvm", "--out", str(t / "o")],
        2,
        r"Invalid value for '--backend': 'tvm'",
    ),
    Case(
        "unknown runtime",
        lambda t, r: ["validate", str(r), "--runtimes", "tensorrt", "--out", str(t / "o")],
        2,
        r"unknown runtime 'tensorrt'; valid:",
    ),
    Case(
        "unknown device",
        lambda t, r: ["validate", str(r), "--devices", "cpu,tpu", "--out", str(t / "o")],
        2,
        r"unknown device 'tpu'; valid: cpu, cuda",
    ),
    Case(
        "unknown exporter",
        lambda t, r: ["export", str(r), "--exporter", "jit", "--out", str(t / "m.onnx")],
        2,
        r"'jit' is not one of 'dynamo', 'torchscript'",
    ),
    Case(
        "conflicting validate flags",
        lambda t, r: ["validate", str(r), "--reference", str(r / "checkpoint.pt"), "--out", str(t / "o")],
        2,
        r"either RUN_DIR or --reference/--candidate, not both",
    ),
    Case(
        "reference without candidate",
        lambda t, r: ["validate", "--reference", str(r / "checkpoint.pt"), "--out", str(t / "o")],
        2,
        r"give RUN_DIR, or --reference and at least one --candidate",
    ),
    Case(
        "bad batch sweep",
        lambda t, r: ["validate", str(r), "--sweep", "1,x", "--out", str(t / "o")],
        2,
        r"--sweep: got '1,x'",
    ),
    Case(
        "zero batch",
        lambda t, r: ["validate", str(r), "--batch", "0", "--out", str(t / "o")],
        2,
        r"batch sizes must be >= 1",
    ),
    Case("zero epochs", lambda t, r: ["train", "--epochs", "0", "--out", str(t / "o")], 2, r"epochs: got 0"),
    Case(
        "opset out of range",
        lambda t, r: ["export", str(r), "--opset", "99", "--out", str(t / "m.onnx")],
        2,
        r"opset: got 99",
    ),
    # --- output locations
    Case(
        "output folder under a file",
        lambda t, r: ["convert", str(r / "model.onnx"), "--out", str(_write(t / "afile", b"x") / "sub")],
        2,
        r"afile/sub: cannot create the run directory",
    ),
    Case(
        "output folder is a file",
        lambda t, r: ["train", "--out", str(_write(t / "taken", b"x"))],
        2,
        r"taken: exists and is not a folder",
    ),
    # --- configuration and run-directory files
    Case(
        "config with unknown key",
        lambda t, r: _config(t, "[train]\nepoch = 3\n"),
        2,
        r"c\.toml \[train\]: unknown keys \['epoch'\]",
    ),
    Case(
        "config with unknown section",
        lambda t, r: _config(t, "[deploy]\nx = 1\n"),
        2,
        r"c\.toml: unknown sections \['deploy'\]",
    ),
    Case("config not TOML", lambda t, r: _config(t, "[train\nepochs=\n"), 2, r"c\.toml: not valid TOML"),
    Case(
        "config with a bad value",
        lambda t, r: _config(t, '[validate]\nfail_on = "sometimes"\n'),
        2,
        r"unknown fail-on value 'sometimes'",
    ),
    Case(
        "config missing",
        lambda t, r: ["run", "--out", str(t / "run"), "--config", str(t / "none.toml")],
        2,
        r"none\.toml: no such config file",
    ),
    Case(
        "corrupted manifest",
        lambda t, r: (
            shutil.copytree(r, t / "copy"),
            _write(t / "copy" / "manifest.json", b"{not json"),
            ["validate", str(t / "copy")],
        )[2],
        2,
        r"manifest\.json: not valid JSON",
    ),
    Case(
        "parity.json that is no report",
        lambda t, r: (_write(t / "parity.json", b'{"passed": true}'), ["report", str(t)])[1],
        2,
        r"parity\.json: not an onnxpipe parity report",
    ),
    Case(
        "status of a missing run directory",
        lambda t, r: ["status", str(t / "none")],
        2,
        r"none: no such run directory",
    ),
]


def _npz(tmp: Path, name: str, **arrays) -> Path:
    np.savez(tmp / name, **arrays)
    return tmp / name


def _digits(n: int = 4, dtype="float32", shape=(1, 8, 8)) -> np.ndarray:
    return np.random.default_rng(0).uniform(0, 1, (n, *shape)).astype(dtype)


def _images(tmp: Path, name: str, broken: bool = False) -> Path:
    from PIL import Image

    folder = tmp / name
    folder.mkdir()
    for i in range(3):
        Image.fromarray(np.full((8, 8), 40 * i, np.uint8)).save(folder / f"{i}.png")
    if broken:
        _write(folder / "3.png", b"not a png at all")
    return folder


def _matmul_onnx(tmp: Path, name: str, nan: bool = False) -> Path:
    w = np.ones((4, 3), np.float32)
    if nan:
        w[0, 0] = np.nan
    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 4])
    y = helper.make_tensor_value_info("out", TensorProto.FLOAT, ["batch", 3])
    nodes = [helper.make_node("MatMul", ["input", "w"], ["out"])]
    return _onnx_with(tmp, name, nodes, [x], [y], [numpy_helper.from_array(w, "w")])


def _expand_onnx(tmp: Path) -> Path:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [3, 1])
    shape = helper.make_tensor_value_info("shape", TensorProto.INT64, [3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["a", "b", "c"])
    return _onnx_with(
        tmp, "expand.onnx", [helper.make_node("Expand", ["x", "shape"], ["y"])], [x, shape], [y]
    )


def _inputs(run: Path, *extra: str) -> list[str]:
    return ["validate", str(run), "--devices", "cpu", *extra]


YOUR_DATA_AND_CONFIG_TYPES = [
    # --- your data (--inputs, --calibration, --labels), refused before anything runs
    Case(
        "inputs of the wrong shape",
        lambda t, r: _inputs(r, "--inputs", str(_npz(t, "s.npz", input=_digits(shape=(1, 8, 9))))),
        2,
        r"'input': shape \[4, 1, 8, 9\], expected \['N', 1, 8, 8\] \(N: samples\)",
    ),
    Case(
        "inputs of the wrong dtype",
        lambda t, r: _inputs(r, "--inputs", str(_npz(t, "s.npz", input=_digits(dtype="float64")))),
        2,
        r"'input': dtype float64, expected float32",
    ),
    Case(
        "inputs with an unknown array",
        lambda t, r: _inputs(r, "--inputs", str(_npz(t, "s.npz", input=_digits(), other=_digits()))),
        2,
        r"'other' is not an input of the model",
    ),
    Case(
        "inputs missing",
        lambda t, r: _inputs(r, "--inputs", str(t / "none.npz")),
        2,
        r"none\.npz: no such file or folder",
    ),
    Case(
        "inputs that are not NumPy",
        lambda t, r: _inputs(r, "--inputs", str(_write(t / "g.npz", os.urandom(512)))),
        2,
        r"g\.npz: not a NumPy array file",
    ),
    Case(
        "inputs folder with nothing to read",
        lambda t, r: ((t / "empty").mkdir(), _inputs(r, "--inputs", str(t / "empty")))[1],
        2,
        r"empty: holds no \.npy or \.npz files, nor images",
    ),
    Case(
        "inputs folder with a broken image",
        lambda t, r: _inputs(r, "--inputs", str(_images(t, "imgs", broken=True))),
        2,
        r"3\.png: not a readable image",
    ),
    Case(
        "images for a model that takes no image",
        lambda t, r: [
            "validate",
            "--reference",
            str(_matmul_onnx(t, "m.onnx")),
            "--candidate",
            str(t / "m.onnx"),
            "--out",
            str(t),
            "--inputs",
            str(_images(t, "imgs")),
        ],
        2,
        r"images feed a model with one float input",
    ),
    Case(
        "an image size that contradicts the model's",
        lambda t, r: _inputs(r, "--inputs", str(_images(t, "imgs")), "--image-size", "12"),
        2,
        r"--image-size 12: 'input' takes images of \[8, 8\] exactly",
    ),
    Case(
        "text for a model that takes no tokens",
        lambda t, r: _inputs(r, "--inputs", str(_write(t / "l.txt", b"the cat sat\n"))),
        2,
        r"l\.txt: text feeds a model that takes input_ids",
    ),
    Case(
        "labels that are not one per sample",
        lambda t, r: _inputs(
            r,
            "--inputs",
            str(_npz(t, "s.npz", input=_digits())),
            "--labels",
            str(_write(t / "l.txt", b"1\n2\n")),
        ),
        2,
        r"l\.txt: 2 labels for 4 samples",
    ),
    Case(
        "labels that are not integers",
        lambda t, r: _inputs(
            r,
            "--inputs",
            str(_npz(t, "s.npz", input=_digits())),
            "--labels",
            str(_write(t / "l.txt", b"a b c d")),
        ),
        2,
        r"l\.txt: not integer labels",
    ),
    Case(
        "labels without inputs",
        lambda t, r: _inputs(r, "--labels", str(_write(t / "l.txt", b"1\n"))),
        2,
        r"--labels: give the samples they label with --inputs",
    ),
    Case(
        "image normalisation without images",
        lambda t, r: _inputs(r, "--mean", "0.5"),
        2,
        r"--mean/--std: they normalise images given with --inputs",
    ),
    Case(
        "a shape input with no values",
        lambda t, r: ["convert", str(_expand_onnx(t)), "--out", str(t)],
        2,
        r"input 'shape' \(int64 \[3\]\) carries a shape, a size or axes: it feeds Expand's input 1",
    ),
    Case(
        "int8 with nothing to calibrate on",
        lambda t, r: ["convert", str(_matmul_onnx(t, "m.onnx")), "--out", str(t), "--precision", "int8"],
        2,
        r"int8 needs calibration samples, and this model has no bundled dataset",
    ),
    Case(
        "calibration samples that do not fit",
        lambda t, r: [
            "convert",
            str(_matmul_onnx(t, "m.onnx")),
            "--out",
            str(t),
            "--precision",
            "int8",
            "--calibration",
            str(_npz(t, "c.npz", input=np.zeros((4, 5), np.float32))),
        ],
        2,
        r"c\.npz: does not fit the model: 'input': shape \[4, 5\], expected \['N', 4\]",
    ),
    Case(
        "run with inputs that do not fit, before training",
        lambda t, r: [
            "run",
            "--out",
            str(t / "run"),
            "--inputs",
            str(_npz(t, "s.npz", input=_digits(shape=(3, 8, 8)))),
        ],
        2,
        r"'input': shape \[4, 3, 8, 8\], expected \['N', 1, 8, 8\]",
    ),
    Case(
        "bench with inputs that do not fit",
        lambda t, r: ["bench", str(r), "--inputs", str(_npz(t, "s.npz", input=_digits(dtype="int64")))],
        2,
        r"'input': dtype int64, expected float32",
    ),
    # --- files that are not onnxpipe's
    Case(
        "convert into a folder holding the user's own tflite",
        lambda t, r: (
            _write(t / "model_fp16.tflite", b"the user's"),
            ["convert", str(_matmul_onnx(t, "m.onnx")), "--out", str(t)],
        )[1],
        2,
        r"is not an onnxpipe run directory, and holds model_fp16\.tflite, which onnxpipe would replace",
    ),
    Case(
        "train into a folder holding the user's own checkpoint",
        lambda t, r: (
            _write(t / "checkpoint.pt", b"the user's"),
            ["train", "--model", "mlp", "--out", str(t), "--epochs", "1"],
        )[1],
        2,
        r"holds checkpoint\.pt, which onnxpipe would replace; refused",
    ),
    Case(
        "validate into a folder holding the user's own report",
        lambda t, r: (
            _write(t / "parity.json", b"{}"),
            ["validate", "--reference", str(_matmul_onnx(t, "m.onnx")), "--candidate", str(t / "m.onnx")],
        )[1],
        2,
        r"holds parity\.json, which onnxpipe would replace",
    ),
    # --- NaN and Inf
    Case(
        "a reference whose outputs are NaN",
        lambda t, r: [
            "validate",
            "--reference",
            str(_matmul_onnx(t, "nan.onnx", nan=True)),
            "--candidate",
            str(_matmul_onnx(t, "ok.onnx")),
            "--out",
            str(t),
            "--devices",
            "cpu",
        ],
        2,
        r"nan\.onnx: the reference gives non-finite values \(NaN or Inf\) on the 'random' inputs: \d+ in output 'out'",
    ),
    # --- configuration values of the wrong type
    Case(
        "config epochs as a string",
        lambda t, r: _config(t, '[train]\nepochs = "x"\n'),
        2,
        r'\[train\]: epochs: expected an integer, got "x"',
    ),
    Case(
        "config learning rate as a boolean",
        lambda t, r: _config(t, "[train]\nlr = true\n"),
        2,
        r"\[train\]: lr: expected a number, got true",
    ),
    Case(
        "config precisions as a string",
        lambda t, r: _config(t, '[convert]\nprecisions = "fp32"\n'),
        2,
        r'\[convert\]: precisions: expected a list of strings, got "fp32"',
    ),
    Case(
        "config opset as a string",
        lambda t, r: _config(t, '[export]\nopset = "18"\n'),
        2,
        r'\[export\]: opset: expected an integer, got "18"',
    ),
    Case(
        "config random inputs as a fraction",
        lambda t, r: _config(t, "[validate]\nrandom = 1.5\n"),
        2,
        r"\[validate\]: random: expected an integer, got 1\.5",
    ),
    Case(
        "config devices with a number",
        lambda t, r: _config(t, '[validate]\ndevices = ["cpu", 3]\n'),
        2,
        r"\[validate\]: devices: expected a list of strings \(not 3\)",
    ),
    Case(
        "config section as a value",
        lambda t, r: _config(t, "train = 3\n"),
        2,
        r"\[train\]: expected a table, got int",
    ),
    Case(
        "config epochs out of range",
        lambda t, r: _config(t, "[train]\nepochs = 0\n"),
        2,
        r"\[train\]: epochs: got 0, expected an integer >= 1",
    ),
    Case(
        "config calibration as a number",
        lambda t, r: _config(t, "[convert]\ncalibration = 3\n"),
        2,
        r"\[convert\]: calibration: expected a path, or a table",
    ),
    Case(
        "config nproc as a list",
        lambda t, r: _config(t, "[train]\nnproc = [2]\n"),
        2,
        r"\[train\]: nproc: expected an integer, got \[2\]",
    ),
]
CASES += YOUR_DATA_AND_CONFIG_TYPES


def _tfjs(tmp: Path, name: str, model: dict | str, shards: dict[str, bytes] | None = None) -> Path:
    folder = tmp / name
    folder.mkdir()
    (folder / "model.json").write_text(model if isinstance(model, str) else json.dumps(model))
    for shard, data in (shards or {}).items():
        (folder / shard).write_bytes(data)
    return folder


_SIGNATURE = {
    "inputs": {
        "input": {
            "name": "input:0",
            "dtype": "DT_FLOAT",
            "tensorShape": {"dim": [{"size": "-1"}, {"size": "8"}, {"size": "8"}, {"size": "1"}]},
        }
    },
    "outputs": {
        "output_0": {
            "name": "Identity:0",
            "dtype": "DT_FLOAT",
            "tensorShape": {"dim": [{"size": "-1"}, {"size": "10"}]},
        }
    },
}


def _graph_model(paths: list[str]) -> dict:
    weights = [{"name": "w", "shape": [4], "dtype": "float32"}]
    return {
        "format": "graph-model",
        "signature": _SIGNATURE,
        "modelTopology": {"node": []},
        "weightsManifest": [{"paths": paths, "weights": weights}],
    }


def _convert_to(run: Path, tmp: Path, to: str, precision: str) -> list[str]:
    return [
        "convert",
        str(run / "checkpoint.pt"),
        "--out",
        str(tmp / "o"),
        "--to",
        to,
        "--precision",
        precision,
    ]


TFJS = [
    Case(
        "uint8 without tfjs",
        lambda t, r: _convert_to(r, t, "tflite", "uint8"),
        2,
        r"--precision uint8: no target in --to tflite makes it \(add tfjs to --to\)",
    ),
    Case(
        "int8 with tfjs alone",
        lambda t, r: _convert_to(r, t, "tfjs", "int8"),
        2,
        r"--precision int8: no target in --to tfjs makes it \(add tflite to --to\)",
    ),
    Case(
        "tfjs model.json that is not JSON",
        lambda t, r: _validate(r, t, _tfjs(t, "web", "{not json")),
        2,
        r"web: cannot be loaded as tfjs \(JSONDecodeError",
    ),
    Case(
        "tfjs layers model, not a graph model",
        lambda t, r: _validate(r, t, _tfjs(t, "web", {"format": "layers-model", "modelTopology": {}})),
        2,
        r"web: cannot be loaded as tfjs .*'layers-model', not a graph-model",
    ),
    Case(
        "tfjs graph model without a signature",
        lambda t, r: _validate(r, t, _tfjs(t, "web", {"format": "graph-model", "modelTopology": {}})),
        2,
        r"web: cannot be loaded as tfjs .*no signature",
    ),
    Case(
        "tfjs weight shard outside its folder",
        lambda t, r: _validate(r, t, _tfjs(t, "web", _graph_model(["../secret.bin"]))),
        2,
        r"weight shard '\.\./secret\.bin' lies outside the model's folder",
    ),
    Case(
        "tfjs weight shard missing",
        lambda t, r: _validate(r, t, _tfjs(t, "web", _graph_model(["group1-shard1of1.bin"]))),
        2,
        r"weight shard 'group1-shard1of1\.bin' is missing",
    ),
]
CASES += TFJS


def _mlp_tflite(tmp: Path) -> Path:
    """A TFLite file of a 2-D model: its [batch, 64] input fits no layout of the CNN's [batch, 1, 8, 8]."""
    import tensorflow as tf

    fn = tf.function(lambda x: tf.nn.relu(x), input_signature=[tf.TensorSpec([None, 64], tf.float32)])
    converter = tf.lite.TFLiteConverter.from_concrete_functions([fn.get_concrete_function()])
    return _write(tmp / "mlp.tflite", converter.convert())


def _tree(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if "__pycache__" not in p.parts}


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_hostile_input(case: Case, cnn_run: Path, tmp_path: Path):
    argv = case.build(tmp_path, cnn_run)
    before, run_before = _tree(tmp_path), _tree(cnn_run)
    manifest_before = (cnn_run / "manifest.json").read_bytes()
    proc = onnxpipe(*argv)
    HOSTILE_TRIED.append(case.name)
    assert proc.returncode == case.code, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr + proc.stdout
    errors = [line for line in proc.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, proc.stderr
    assert re.search(case.error, errors[0]), errors[0]
    assert _tree(tmp_path) == before, "files were written"
    assert _tree(cnn_run) == run_before and (cnn_run / "manifest.json").read_bytes() == manifest_before
    assert not (tmp_path / "pwned").exists()


# --- mutated artifacts: each seed overwrites 1 to 64 random bytes of the CNN's .tflite or .onnx (and
# cuts it short one time in five). Validated through the CLI with every runtime of the format, each
# is a clean error (exit 2, one line, nothing written) or a report whose rows say what happened (a
# runtime that crashes in native code is an error row naming the signal): never a crash without a
# report, never a traceback. 4 seeds per format in the default run, 26 more with the slow tests.
MUTATED = [
    pytest.param(fmt, seed, marks=[pytest.mark.slow] if seed >= 4 else [], id=f"{fmt}-seed{seed}")
    for fmt in ("tflite", "onnx")
    for seed in range(30)
]


def _mutated(original: bytes, seed: int) -> bytes:
    rng = random.Random(seed)
    data = bytearray(original)
    for _ in range(rng.choice([1, 4, 16, 64])):
        data[rng.randrange(len(data))] = rng.randrange(256)
    return bytes(data[: rng.randrange(1, len(data))] if rng.random() < 0.2 else data)


@pytest.mark.parametrize(("fmt", "seed"), MUTATED)
def test_mutated_artifact(fmt: str, seed: int, cnn_run: Path, tmp_path: Path):
    original = cnn_run / {"tflite": "model_fp32.tflite", "onnx": "model.onnx"}[fmt]
    candidate = _write(tmp_path / f"mutated.{fmt}", _mutated(original.read_bytes(), seed))
    out = tmp_path / "report"
    run_before = _tree(cnn_run)
    proc = onnxpipe(
        "validate",
        "--reference",
        str(cnn_run / "checkpoint.pt"),
        "--candidate",
        str(candidate),
        "--out",
        str(out),
        "--devices",
        "cpu",
        "--samples",
        "32",
        "--random",
        "8",
        "--sweep",
        "",
    )
    log = proc.stdout + proc.stderr
    assert proc.returncode in (0, 1, 2), log  # a negative code: the validating process died of a signal
    assert "Traceback" not in log
    assert _tree(cnn_run) == run_before
    if proc.returncode == 2:  # refused: the file does not load as what it claims to be
        errors = [line for line in proc.stderr.splitlines() if line.startswith("Error:")]
        assert len(errors) == 1 and "mutated." in errors[0], proc.stderr
        assert not out.exists()
        MUTATED_OUTCOMES.append("refused")
        return
    report = json.loads((out / "parity.json").read_text())  # strict JSON, whatever the file did
    rows = [r for r in report["results"] if r["artifact"] == candidate.name]
    assert rows and all(r["status"] in ("pass", "fail", "error", "unavailable") for r in rows)
    assert all(r["message"] for r in rows if r["status"] in ("error", "unavailable"))
    judged = [r for r in rows if r["status"] in ("pass", "fail", "error")]
    assert (proc.returncode == 1) == any(r["status"] != "pass" for r in judged), log
    crashed = any("crashed on" in (r["message"] or "") for r in rows)
    MUTATED_OUTCOMES.append(
        "a runtime crashed, its row an error" if crashed else "/".join(sorted({r["status"] for r in rows}))
    )


def test_catalogue_is_large_and_documented():
    from tests.conftest import ROOT

    assert len(CASES) >= 80
    assert len({c.name for c in CASES}) == len(CASES)
    readme = (ROOT / "README.md").read_text()
    assert f"{len(CASES)} hostile inputs" in readme
    assert f"{len(MUTATED)} mutated files" in readme
    json.dumps([c.name for c in CASES])
