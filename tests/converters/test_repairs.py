"""ONNX repair passes: each gets a graph through onnx2tf that it refuses raw, and none changes the numbers."""

from __future__ import annotations

import dataclasses

import numpy as np
import onnx
import pytest
import torch
from onnx import helper

from onnxpipe.converters.onnx_to_saved_model import TFConvertOptions
from onnxpipe.converters.repairs import REPAIR_PASSES, RepairPass, repair, self_contained_copy
from onnxpipe.converters.routes.onnx2tf_repaired import Onnx2tfRepairedRoute
from onnxpipe.models.errors import ConversionError
from onnxpipe.pipeline.artifacts import resolve_artifact
from onnxpipe.pipeline.backends import RowStatus, compare_backends
from onnxpipe.validation.runtimes import open_runtime


class _Prelu3d(torch.nn.Module):
    """A Conv3d with a per-channel PReLU: TFLite's PRELU takes at most 4-D tensors."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv3d(2, 4, 3, padding=1)
        self.act = torch.nn.PReLU(4)
        with torch.no_grad():
            self.act.weight.copy_(torch.linspace(-1.0, 1.0, 4))  # negative, zero and positive slopes

    def forward(self, x):
        return self.act(self.conv(x))


class _DilatedStridedConv(torch.nn.Module):
    """A Conv2d both dilated and strided: TensorFlow's convolution refuses the pair."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, 3, stride=2, dilation=2, padding=2)

    def forward(self, x):
        return torch.tanh(self.conv(x))


class _Pool3d(torch.nn.Module):
    """3-D max pooling: both converters write it as a Flex op the TFLite interpreter cannot run."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv3d(2, 4, 3, padding=1)

    def forward(self, x):
        return torch.nn.functional.max_pool3d(self.conv(x), 2)


class _Erf(torch.nn.Module):
    """Erf, as the TorchScript exporter writes an exact GELU: onnx2tf makes it a Flex op (FlexErf)."""

    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(16, 16)

    def forward(self, x):
        return torch.erf(self.linear(x) * 2.0)


def _export(module: torch.nn.Module, shape: tuple[int, ...], path):
    """``module`` exported as onnxpipe's exporter does (dynamo, opset 18, dynamic batch)."""
    torch.manual_seed(0)
    module = module.eval()
    for p in module.parameters():
        torch.nn.init.uniform_(p, -1.0, 1.0) if p.dim() > 1 else None
    batch = torch.export.Dim("batch")
    torch.onnx.export(
        module, (torch.randn(*shape),), str(path), input_names=["x"], output_names=["y"],
        dynamo=True, opset_version=18, dynamic_shapes={"x": {0: batch}}, external_data=False,
    )  # fmt: skip
    return path


#: The pool3d pass's case is the Flex test below.
CASES = {
    "prelu": (_Prelu3d, (1, 2, 6, 6, 6)),
    "dilated-strided-conv": (_DilatedStridedConv, (1, 3, 17, 17)),
    "erf": (_Erf, (1, 16)),
}


@pytest.mark.parametrize("pass_name", list(CASES))
def test_each_repair_pass_gets_through_onnx2tf_what_it_refuses_raw(pass_name, tmp_path):
    cls, shape = CASES[pass_name]
    source = _export(cls(), shape, tmp_path / f"{pass_name}.onnx")
    comparison = compare_backends(
        source,
        tmp_path / "run",
        TFConvertOptions(precisions=("fp32",)),
        backends=["onnx2tf", "onnx2tf-repaired"],
    )
    raw = {r.artifact: r for r in comparison.rows if r.backend == "onnx2tf"}
    repaired = {r.artifact: r for r in comparison.rows if r.backend == "onnx2tf-repaired"}
    # Raw, onnx2tf makes no TFLite file that runs: it fails, or its file needs Flex ops no interpreter here has.
    assert raw["model_fp32.tflite"].status != RowStatus.PASS, raw
    # Repaired, every artifact passes parity against the original graph, with builtin TFLite ops only.
    assert {r.status for r in repaired.values()} == {RowStatus.PASS}, repaired
    assert repaired["model_fp32.tflite"].flex_ops == []
    assert repaired["model_fp32.tflite"].max_abs < 1e-4
    made = comparison.artifacts[("model_fp32.tflite", "onnx2tf-repaired")]
    assert made.extra["repairs"] == {pass_name: 1}
    assert made.backend == "onnx2tf-repaired"


def test_a_flex_only_tflite_file_loses_to_a_builtin_one_and_its_saved_model_is_kept(tmp_path):
    """The pool3d pass. onnx2tf's SavedModel passes and its TFLite file needs Flex ops; the repaired
    route's TFLite file is builtin. The planner keeps each artifact from where it passed."""
    from onnxpipe.pipeline.backends import keep_best

    source = _export(_Pool3d(), (1, 2, 8, 8, 8), tmp_path / "pool3d.onnx")
    run = tmp_path / "run"
    comparison = compare_backends(
        source, run, TFConvertOptions(precisions=("fp32",)), backends=["onnx2tf", "onnx2tf-repaired"],
        until_passed=True,
    )  # fmt: skip
    raw = {r.artifact: r for r in comparison.rows if r.backend == "onnx2tf"}
    assert raw["saved_model"].status == RowStatus.PASS
    assert "MaxPool3D" in " ".join(raw["model_fp32.tflite"].flex_ops) + raw["model_fp32.tflite"].message
    kept = {a.label: a.extra["kept"] for a in keep_best(comparison, run, prefer="first")}
    assert kept == {"saved_model": "onnx2tf", "model_fp32.tflite": "onnx2tf-repaired"}


def _tiny_model(tmp_path, op="PRelu", slope=(0.25,)):
    x = helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["batch", 3, 4, 4])
    y = helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, ["batch", 3, 4, 4])
    s = onnx.numpy_helper.from_array(np.array(slope, np.float32).reshape(-1, 1, 1), "slope")
    node = helper.make_node(op, ["x", "slope"], ["y"])
    graph = helper.make_graph([node], "tiny", [x], [y], [s])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    path = tmp_path / "tiny.onnx"
    onnx.save(model, str(path))
    return resolve_artifact(path)


def test_a_pass_that_changes_the_numbers_is_dropped_with_the_reason(tmp_path):
    def wrong(model):  # a "repair" that turns every PRelu into Mul: negative inputs right, positive wrong
        for node in model.graph.node:
            node.op_type = "Mul"
        return len(model.graph.node)

    onnx_file = _tiny_model(tmp_path, slope=(0.1, 0.2, 0.3))
    planted = RepairPass("wrong", "PRelu -> Mul", wrong)
    result = repair(onnx_file, tmp_path / "out.onnx", open_runtime, passes=(planted, *REPAIR_PASSES))
    assert result.applied == {"prelu": 1}
    assert "differs by" in result.dropped["wrong"]
    written = onnx.load(str(tmp_path / "out.onnx"))
    assert "PRelu" not in {n.op_type for n in written.graph.node}
    assert "Mul" in {n.op_type for n in written.graph.node}  # the prelu pass's own Mul, checked


def test_every_matching_node_is_rewritten_and_the_numbers_kept(tmp_path):
    # Three chained Erf nodes and two PRelu nodes: each pass rewrites all of its nodes, in place.
    x = helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["batch", 3, 4, 4])
    y = helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, ["batch", 3, 4, 4])
    slope = onnx.numpy_helper.from_array(np.array([0.1, -0.5, 2.0], np.float32).reshape(3, 1, 1), "slope")
    nodes = [
        helper.make_node("Erf", ["x"], ["e1"]),
        helper.make_node("PRelu", ["e1", "slope"], ["p1"]),
        helper.make_node("Erf", ["p1"], ["e2"]),
        helper.make_node("PRelu", ["e2", "slope"], ["p2"]),
        helper.make_node("Erf", ["p2"], ["y"]),
    ]
    graph = helper.make_graph(nodes, "chain", [x], [y], [slope])
    path = tmp_path / "chain.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=9), str(path))
    result = repair(resolve_artifact(path), tmp_path / "out.onnx", open_runtime)
    assert result.applied == {"prelu": 2, "erf": 3} and result.dropped == {}
    written = onnx.load(str(tmp_path / "out.onnx"))
    assert not {"Erf", "PRelu"} & {n.op_type for n in written.graph.node}
    probe = {"x": np.linspace(-4, 4, 2 * 48, dtype=np.float32).reshape(2, 3, 4, 4)}
    with (
        open_runtime(resolve_artifact(path)) as a,
        open_runtime(resolve_artifact(tmp_path / "out.onnx")) as b,
    ):
        np.testing.assert_allclose(b.run(probe)["y"], a.run(probe)["y"], atol=1e-6)


def test_a_graph_no_pass_applies_to_is_refused_at_once(tmp_path):
    onnx_file = _tiny_model(tmp_path, slope=(0.25,))  # one slope for every element: left alone
    assert repair(onnx_file, tmp_path / "out.onnx", open_runtime).applied == {}
    with pytest.raises(ConversionError, match="no repair pass applies"):
        Onnx2tfRepairedRoute().convert(onnx_file, tmp_path / "conv", TFConvertOptions(), open_runtime)
    assert not any((tmp_path / "conv").iterdir())  # nothing left behind


def test_a_model_with_external_data_is_read_from_any_folder_and_copied_whole(tmp_path, monkeypatch):
    folder = tmp_path / "model"
    folder.mkdir()
    onnx_file = _tiny_model(folder, slope=(0.1, 0.2, 0.3))
    model = onnx.load(str(onnx_file.path))
    onnx.save(model, str(onnx_file.path), save_as_external_data=True, size_threshold=0, location="tiny.data")
    assert (folder / "tiny.data").is_file()
    monkeypatch.chdir(tmp_path)  # the weights are found beside the file, not in the working folder
    art = resolve_artifact(onnx_file.path)
    self_contained_copy(art.path, tmp_path / "copy.onnx")
    copy = onnx.load(str(tmp_path / "copy.onnx"), load_external_data=False)
    assert all(t.data_location != onnx.TensorProto.EXTERNAL for t in copy.graph.initializer)
    with open_runtime(dataclasses.replace(art, path=tmp_path / "copy.onnx")) as session:
        out = session.run({"x": -np.ones((1, 3, 4, 4), np.float32)})["y"]
    np.testing.assert_allclose(out[0, :, 0, 0], [-0.1, -0.2, -0.3], rtol=1e-6)
