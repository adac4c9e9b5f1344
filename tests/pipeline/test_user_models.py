"""Your model class and your checkpoint, from the CLI: converted, validated, refused where unsafe."""

from __future__ import annotations

import json
import textwrap

import onnx
import pytest

from onnxpipe.models.errors import UsageError
from onnxpipe.models.user import UserModel
from tests.conftest import onnxpipe

NET = textwrap.dedent(
    """
    import torch


    class Net(torch.nn.Module):
        def __init__(self, width=8, classes=10):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, width, 3, padding=1)
            self.head = torch.nn.Linear(width * 16 * 16, classes)

        def forward(self, x):
            return self.head(torch.relu(self.conv(x)).flatten(1))
    """
)


@pytest.fixture
def user_files(tmp_path):
    """A model file outside the repository, and its weights as .pt, .safetensors and a pickled module."""
    import sys

    import torch
    from safetensors.torch import save_file

    folder = tmp_path / "elsewhere"
    folder.mkdir()
    (folder / "user_net_for_tests.py").write_text(NET)
    sys.path.insert(0, str(folder))
    try:
        import user_net_for_tests

        torch.manual_seed(0)
        model = user_net_for_tests.Net(width=4)
        torch.save(model.state_dict(), folder / "weights.pt")
        save_file(model.state_dict(), str(folder / "weights.safetensors"))
        torch.save(model, folder / "whole.pt")
    finally:
        sys.path.remove(str(folder))
        sys.modules.pop("user_net_for_tests", None)
    return folder


def _class(folder) -> str:
    return f"{folder / 'user_net_for_tests.py'}:Net"


@pytest.mark.parametrize(
    "weights",
    [
        "weights.pt",
        pytest.param("weights.safetensors", marks=pytest.mark.slow),
    ],  # the same path after loading
)
def test_a_user_class_is_converted_and_validated_from_its_checkpoint(user_files, tmp_path, weights):
    run = tmp_path / "run"
    model = ["--model-class", _class(user_files), "--model-kwargs", '{"width": 4}']
    onnxpipe(
        "convert", str(user_files / weights), *model, "--input-shape", "1,3,16,16",
        "--out", str(run), "--precision", "fp32", check=True,
    )  # fmt: skip
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["stages"]["import"]["options"]["class_ref"] == _class(user_files)
    assert manifest["artifacts"]["model_fp32.tflite"]["inputs"][0]["layout"] == "NHWC"

    refused = onnxpipe("validate", str(run), "--devices", "cpu")
    assert refused.returncode == 2, refused.stderr  # the checkpoint names code: it is not imported unasked
    assert f"pass --model-class {_class(user_files)}" in refused.stderr and "Traceback" not in refused.stderr

    proc = onnxpipe("validate", str(run), "--model-class", _class(user_files), "--devices", "cpu")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads((run / "parity.json").read_text())
    assert report["reference"]["runtime"] == "pytorch"
    ran = [r for r in report["results"] if r["status"] != "unavailable"]
    assert {r["artifact"] for r in ran} == {"model.onnx", "saved_model", "model_fp32.tflite"}
    assert all(r["status"] == "pass" and r["metrics"]["max_abs"] < 1e-4 for r in ran)


def test_validate_takes_the_weights_as_reference_too(user_files, tmp_path):
    run = tmp_path / "run"
    onnxpipe(
        "export", str(user_files / "weights.pt"), "--model-class", _class(user_files),
        "--model-kwargs", '{"width": 4}', "--input-shape", "1,3,16,16", "--out", str(run / "model.onnx"),
        check=True,
    )  # fmt: skip
    proc = onnxpipe(
        "validate", "--reference", str(user_files / "weights.safetensors"), "--model-class", _class(user_files),
        "--model-kwargs", '{"width": 4}', "--input-shape", "1,3,16,16", "--candidate", str(run / "model.onnx"),
        "--out", str(tmp_path / "check"), "--devices", "cpu",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = json.loads((tmp_path / "check" / "parity.json").read_text())["results"]
    assert [(r["artifact"], r["status"]) for r in rows if r["device"] == "cpu"] == [("model.onnx", "pass")]


def test_a_pickled_module_is_refused_unless_trusted(user_files, tmp_path):
    args = [
        "export", str(user_files / "whole.pt"), "--model-class", _class(user_files), "--model-kwargs",
        '{"width": 4}', "--input-shape", "1,3,16,16", "--out", str(tmp_path / "run" / "model.onnx"),
    ]  # fmt: skip
    proc = onnxpipe(*args)
    assert proc.returncode == 2 and "unpickling runs code: refused" in proc.stderr, proc.stderr
    assert "--trust-pickle" in proc.stderr and not (tmp_path / "run" / "model.onnx").exists()
    proc = onnxpipe(*args, "--trust-pickle", env={"PYTHONPATH": str(user_files)})
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "run" / "model.onnx").is_file()


def test_missing_and_unexpected_keys_are_named(user_files, tmp_path):
    import torch

    state = torch.load(user_files / "weights.pt")
    state["fc.weight"] = state.pop("head.weight")
    torch.save(state, tmp_path / "renamed.pt")
    proc = onnxpipe(
        "export", str(tmp_path / "renamed.pt"), "--model-class", _class(user_files), "--model-kwargs",
        '{"width": 4}', "--input-shape", "1,3,16,16", "--out", str(tmp_path / "run" / "model.onnx"),
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert "missing keys ['head.weight']" in proc.stderr and "unexpected keys ['fc.weight']" in proc.stderr
    assert not (tmp_path / "run" / "checkpoint.pt").exists()


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["--input-shape", "1,3,16,16"], "--input-shape: only with --model-class"),
        (["--model-class", "{net}:Nope", "--input-shape", "1,3,16,16"], "has no 'Nope' (classes there: Net)"),
        (["--model-class", "{net}:Net"], "--model-class needs --input-shape"),
        (
            ["--model-class", "{net}:Net", "--model-kwargs", '{"width": 4}', "--input-shape", "1,3,9,9"],
            "Net fails on inputs input [2, 3, 9, 9]",
        ),
        (
            ["--model-class", "{net}:Net", "--model-kwargs", "[4]", "--input-shape", "1,3,16,16"],
            "expected a JSON object",
        ),
        (
            ["--model-class", "{net}:Net", "--model-kwargs", '{"depth": 2}', "--input-shape", "1,3,16,16"],
            "refused them",
        ),
        (["--model-class", "no_such_module_xyz:Net", "--input-shape", "1,3,16,16"], "cannot import module"),
    ],
)
def test_user_model_usage_errors(user_files, tmp_path, args, error):
    args = [a.replace("{net}", str(user_files / "user_net_for_tests.py")) for a in args]
    out = tmp_path / "run"
    proc = onnxpipe("export", str(user_files / "weights.pt"), *args, "--out", str(out / "model.onnx"))
    assert proc.returncode == 2, proc.stderr
    assert error in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert not out.exists() or not any(out.iterdir())


def test_integer_inputs_need_a_value_range():
    with pytest.raises(UsageError, match="integer inputs need --value-range"):
        UserModel("m.py:Net", input_shapes=((1, 8),), input_dtypes=("int64",))
    tokens = UserModel("m.py:Net", input_shapes=((1, 8),), input_dtypes=("int64",), value_range=(0, 50))
    assert [(t.name, t.shape, t.dtype) for t in tokens.inputs()] == [("input", ("batch", 8), "int64")]


@pytest.fixture
def project_with_models_package(tmp_path):
    """A user project whose own package is called ``models`` (as most are), with weights."""
    import torch

    project = tmp_path / "project"
    (project / "models").mkdir(parents=True)
    (project / "models" / "__init__.py").write_text("")
    (project / "models" / "layers.py").write_text(
        "import torch\n\n\nclass Block(torch.nn.Module):\n"
        "    def __init__(self, n):\n        super().__init__()\n        self.fc = torch.nn.Linear(n, n)\n\n"
        "    def forward(self, x):\n        return torch.tanh(self.fc(x))\n"
    )
    net = "import torch\n\nfrom models.layers import Block\n\n\nclass Net(torch.nn.Module):\n" + (
        "    def __init__(self):\n        super().__init__()\n        self.block = Block(6)\n"
        "        self.head = torch.nn.Linear(6, 3)\n\n"
        "    def forward(self, x):\n        return self.head(self.block(x))\n"
    )
    (project / "models" / "net.py").write_text(net)
    (project / "train_script.py").write_text(net)  # a file given by path that imports `models.layers`
    torch.manual_seed(0)
    state = {
        "block.fc.weight": torch.randn(6, 6), "block.fc.bias": torch.randn(6),
        "head.weight": torch.randn(3, 6), "head.bias": torch.randn(3),
    }  # fmt: skip
    torch.save(state, project / "weights.pt")
    return project


def test_a_user_package_named_models_is_the_users(project_with_models_package, tmp_path):
    project = project_with_models_package
    # By module path, from the project's folder: onnxpipe's own packages live under onnxpipe.*.
    proc = onnxpipe(
        "convert", "weights.pt", "--model-class", "models.net:Net", "--input-shape", "1,6",
        "--precision", "fp32", "--out", str(tmp_path / "by-module"), cwd=project,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    proc = onnxpipe(
        "validate",
        str(tmp_path / "by-module"),
        "--model-class",
        "models.net:Net",
        "--devices",
        "cpu",
        cwd=project,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads((tmp_path / "by-module" / "parity.json").read_text())
    ran = [r for r in report["results"] if r["status"] != "unavailable"]
    assert ran and all(r["status"] == "pass" for r in ran)
    # By file path, from anywhere: the file's own folder is where `models.layers` comes from.
    proc = onnxpipe(
        "export", str(project / "weights.pt"), "--model-class", f"{project / 'train_script.py'}:Net",
        "--input-shape", "1,6", "--out", str(tmp_path / "by-file" / "model.onnx"), cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (tmp_path / "by-file" / "model.onnx").is_file()


def test_only_onnxpipe_s_own_files_are_written_or_replaced(user_files, tmp_path):
    code = tmp_path / "code"  # a folder of the user's, with a checkpoint.pt of their own
    code.mkdir()
    (code / "checkpoint.pt").write_bytes(b"the user's own checkpoint")
    (code / "notes.txt").write_text("mine")
    model = [
        "--model-class",
        _class(user_files),
        "--model-kwargs",
        '{"width": 4}',
        "--input-shape",
        "1,3,16,16",
    ]
    proc = onnxpipe("export", str(user_files / "weights.pt"), *model, "--out", str(code / "m.onnx"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "is not an onnxpipe run directory: only m.onnx is written there" in proc.stderr
    assert sorted(p.name for p in code.iterdir()) == ["checkpoint.pt", "m.onnx", "notes.txt"]
    assert (code / "checkpoint.pt").read_bytes() == b"the user's own checkpoint"
    onnx.checker.check_model(str(code / "m.onnx"))
    # Commands that write a run directory refuse a folder that holds files with onnxpipe's names.
    (code / "model_fp32.tflite").write_bytes(b"the user's own tflite")
    proc = onnxpipe("convert", str(code / "m.onnx"), "--out", str(code))
    assert proc.returncode == 2 and "is not an onnxpipe run directory, and holds" in proc.stderr, proc.stderr
    assert "checkpoint.pt, model_fp32.tflite, which onnxpipe would replace" in proc.stderr
    assert "m.onnx" not in proc.stderr.split("holds")[1]  # the file it reads is not in the way
    proc = onnxpipe("train", "--model", "mlp", "--out", str(code), "--epochs", "1")
    assert proc.returncode == 2 and "which onnxpipe would replace" in proc.stderr
    assert sorted(p.name for p in code.iterdir()) == [
        "checkpoint.pt",
        "m.onnx",
        "model_fp32.tflite",
        "notes.txt",
    ]
