"""The route planner (``--backend auto``): routes in order until validation passes, repairs included."""

from __future__ import annotations

import json
import textwrap

import numpy as np
import pytest

from onnxpipe.converters.repairs import fix_batch
from onnxpipe.converters.routes.onnx_tf import LEGACY_PYTHON
from onnxpipe.converters.routes.onnx_tf import NAME as LEGACY_NAME
from tests.conftest import export_lstm, onnxpipe, requires_env

needs_legacy = requires_env(LEGACY_PYTHON, "setup-legacy")

#: A BERT-shaped block: token embedding, multi-head self-attention through view/transpose and
#: scaled_dot_product_attention, a mean-pooled classifier head. Exported with a dynamic batch, its
#: attention shapes are computed at run time, and onnx2tf 1.28 gives up on the Softmax.
ATTENTION = textwrap.dedent(
    """
    import torch
    import torch.nn.functional as F


    class Attention(torch.nn.Module):
        def __init__(self, vocab=50, dim=32, heads=4, classes=3):
            super().__init__()
            self.emb = torch.nn.Embedding(vocab, dim)
            self.pos = torch.nn.Parameter(torch.randn(1, 16, dim) * 0.5)
            self.qkv = torch.nn.Linear(dim, 3 * dim)
            self.out = torch.nn.Linear(dim, dim)
            self.norm = torch.nn.LayerNorm(dim)
            self.head = torch.nn.Linear(dim, classes)
            self.heads = heads

        def forward(self, x):
            h = self.emb(x) + self.pos[:, : x.shape[1]]
            b, s, d = h.shape
            q, k, v = self.qkv(h).split(d, dim=-1)
            q, k, v = (t.view(b, s, self.heads, d // self.heads).transpose(1, 2) for t in (q, k, v))
            a = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, s, d)
            return self.head(self.norm(h + self.out(a)).mean(dim=1))
    """
)


@pytest.fixture(scope="module")
def attention(tmp_path_factory):
    """The attention model's file and its weights (seeded)."""
    import importlib.util

    import torch

    folder = tmp_path_factory.mktemp("attention")
    (folder / "attention_net.py").write_text(ATTENTION)
    spec = importlib.util.spec_from_file_location("attention_net_for_tests", folder / "attention_net.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    torch.manual_seed(0)
    torch.save(module.Attention().state_dict(), folder / "weights.pt")
    return folder


def _model_options(folder):
    return [
        "--model-class", f"{folder / 'attention_net.py'}:Attention",
        "--input-shape", "1,16", "--input-dtype", "int64", "--value-range", "0,50",
    ]  # fmt: skip


def test_a_transformer_that_fails_with_a_dynamic_batch_comes_out_validated_with_a_static_batch(
    attention, tmp_path
):
    run = tmp_path / "run"
    proc = onnxpipe(
        "convert", str(attention / "weights.pt"), *_model_options(attention),
        "--precision", "fp32", "--backend", "auto", "--out", str(run),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    table = json.loads((run / "backends.json").read_text())
    rows = {(r["artifact"], r["backend"]): r for r in table["rows"]}
    for name in ("saved_model", "model_fp32.tflite"):
        # onnx2tf on the dynamic-batch graph: not made, with its reason.
        raw = rows[(name, "onnx2tf")]
        assert raw["status"] == "not made" and "onnx2tf failed" in raw["message"], raw
        # The same graph with its batch fixed: converted and validated, and kept.
        fixed = rows[(name, "onnx2tf-static")]
        assert fixed["status"] == "pass" and fixed["kept"] and fixed["max_abs"] < 1e-5, fixed
    assert "onnx-tf" in table["not_tried"]  # the planner stopped at the first route that passed
    assert "backend onnx2tf: not made" in proc.stderr  # one line per attempt
    assert "backend onnx2tf-static: saved_model pass, model_fp32.tflite pass" in proc.stderr

    manifest = json.loads((run / "manifest.json").read_text())
    for name in ("saved_model", "model_fp32.tflite"):
        record = manifest["artifacts"][name]
        assert record["backend"] == "onnx2tf-static" and record["extra"]["static_batch"] == 1
    # Validated again from the run directory: it passes, and says its batch is static.
    proc = onnxpipe(
        "validate",
        str(run),
        "--devices",
        "cpu",
        "--model-class",
        f"{attention / 'attention_net.py'}:Attention",
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads((run / "parity.json").read_text())
    tflite = [r for r in report["results"] if r["artifact"] == "model_fp32.tflite" and r["status"] == "pass"]
    assert tflite and all(r["dynamic_axes"]["input"]["batch"] == "static 1" for r in tflite)
    assert "dynamic axes made static" in (run / "parity.md").read_text()
    # How each artifact was made: every attempt, in the manifest and both reports.
    attempts = manifest["artifacts"]["model_fp32.tflite"]["extra"]["attempts"]
    assert [(a["route"], a["outcome"]) for a in attempts] == [
        ("onnx2tf", "not made"), ("onnx2tf-repaired", "not made"), ("onnx2tf-static", "pass"),
        ("onnx2tf-torchscript", "not tried"), ("onnx2tf-torchscript-static", "not tried"),
        ("onnx-tf", "not tried"), ("litert-torch", "not tried"),
    ]  # fmt: skip
    assert "no repair pass applies" in attempts[1]["reason"]
    assert attempts[0]["seconds"] > 0 and attempts[2]["peak_memory"] > 0
    markdown = (run / "parity.md").read_text()
    assert "kept from **onnx2tf-static**" in markdown and "  - onnx2tf: not made" in markdown
    assert "How each artifact was made" in (run / "report.html").read_text()


def test_fix_batch_fixes_the_batch_axis_and_keeps_what_the_graph_computes(tmp_path):
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 2])
    shape = helper.make_node("Shape", ["x"], ["s"], start=0, end=1)
    concat = helper.make_node("Concat", ["s", "two"], ["target"], axis=0)
    reshape = helper.make_node("Reshape", ["x"], ["r"])
    reshape.input.append("target")  # reshape to [N, 2, 2] with N taken from the input at run time
    reduce = helper.make_node("ReduceSum", ["r", "axes"], ["y"], keepdims=0)
    graph = helper.make_graph(
        [shape, concat, reshape, reduce], "g", [x], [y],
        [helper.make_tensor("two", TensorProto.INT64, [2], [2, 2]), helper.make_tensor("axes", TensorProto.INT64, [1], [2])],
    )  # fmt: skip
    source = tmp_path / "dynamic.onnx"
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9  # what this ONNX Runtime reads
    onnx.save(model, str(source))
    fixed = tmp_path / "fixed.onnx"
    assert fix_batch(source, fixed, 1) == ["x", "y"]
    model = onnx.load(str(fixed))
    assert [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim] == [1, 4]
    feed = {"x": np.arange(4, dtype=np.float32)[None]}
    want = ort.InferenceSession(str(source)).run(None, feed)[0]
    got = ort.InferenceSession(str(fixed)).run(None, feed)[0]
    np.testing.assert_array_equal(got, want)
    assert fix_batch(fixed, tmp_path / "again.onnx", 1) == []  # nothing dynamic left to fix


GREEDY = "toy-greedy"
GREEDY_HANDLER = """
import numpy as np


def handle(req, arrays, emit):
    block = np.ones(req["bytes"] // 8)  # more than the worker's cap allows
    return {"sum": float(block.sum())}
"""


@pytest.fixture
def greedy_route(tmp_path):
    """A route whose worker asks for 4 GB, registered first in line."""
    import sys
    from pathlib import Path

    from onnxpipe.converters.route import ROUTES, Route
    from onnxpipe.models import wire
    from onnxpipe.models.artifact import Format
    from onnxpipe.models.errors import ConversionError

    handler = tmp_path / "greedy_worker.py"
    handler.write_text(GREEDY_HANDLER)

    class GreedyRoute(Route):
        name = GREEDY
        summary = "test only: a converter that needs more memory than it may have"
        makes = (Format.TFLITE,)
        precisions = ("fp32",)
        preference = 1

        def convert(self, onnx, out_dir: Path, options, run_with):
            wire.call(
                wire.command(sys.executable, handler), {"bytes": 4 * 2**30},
                what="greedy converter", error=ConversionError, max_memory=options.max_memory,
            )  # fmt: skip
            raise AssertionError("the worker should have run out of memory")

    ROUTES.register()(GreedyRoute)
    yield GreedyRoute
    ROUTES.remove(GREEDY)


def test_a_route_that_runs_out_of_memory_is_recorded_and_the_planner_moves_on(
    greedy_route, cnn_run, tmp_path
):
    from click.testing import CliRunner

    from onnxpipe.pipeline.cli import cli

    out = tmp_path / "auto"
    result = CliRunner().invoke(
        cli,
        ["convert", str(cnn_run / "checkpoint.pt"), "--backend", "auto", "--to", "tflite",
         "--precision", "fp32", "--max-memory", "3", "--out", str(out)],
        catch_exceptions=False,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = {r["backend"]: r for r in json.loads((out / "backends.json").read_text())["rows"]}
    greedy = rows[GREEDY]
    assert greedy["status"] == "not made" and "out of memory at 3.0 GB" in greedy["message"], greedy
    assert greedy["peak_memory"] < 3 * 2**30  # it died at the cap, and this machine lived on
    kept = [r for r in rows.values() if r["kept"]]
    assert [r["backend"] for r in kept] == ["onnx2tf"] and kept[0]["status"] == "pass"
    assert 0 < kept[0]["peak_memory"] < 3 * 2**30  # onnx2tf's worker converted under the same cap


def test_the_budget_stops_the_search_and_says_which_routes_were_not_tried(greedy_route, cnn_run, tmp_path):
    from click.testing import CliRunner

    from onnxpipe.pipeline.cli import cli

    out = tmp_path / "auto"
    result = CliRunner().invoke(
        cli,
        ["convert", str(cnn_run / "checkpoint.pt"), "--backend", "auto", "--to", "tflite", "--precision", "fp32",
         "--max-memory", "3", "--budget", "0.5", "--out", str(out)],
    )  # fmt: skip
    # The first route always runs; it fails, and the budget is spent before the next one starts.
    assert result.exit_code == 1 and "auto kept no model_fp32.tflite" in result.output, result.output
    table = json.loads((out / "backends.json").read_text())
    assert {r["backend"] for r in table["rows"]} == {GREEDY}
    assert all("budget of 0.5 s was spent" in why for why in table["not_tried"].values())
    assert "onnx2tf" in table["not_tried"] and "## Not tried" in (out / "backends.md").read_text()
    assert not (out / "model_fp32.tflite").exists()  # nothing validated, nothing kept


@pytest.mark.legacy
@needs_legacy
def test_a_route_whose_tflite_fails_keeps_its_validated_saved_model(tmp_path):
    """onnx-tf makes a good SavedModel of an LSTM but no working TFLite file: the planner keeps the one."""
    from onnxpipe.converters.onnx_to_saved_model import TFConvertOptions
    from onnxpipe.models.errors import ConversionError
    from onnxpipe.pipeline.backends import compare_backends, keep_best
    from onnxpipe.validation.parity import ValidateOptions

    source = export_lstm(tmp_path / "lstm.onnx")
    out = tmp_path / "run"
    comparison = compare_backends(
        source, out, TFConvertOptions(precisions=("fp32",)),
        validate_options=ValidateOptions(devices=("cpu",)), backends=[LEGACY_NAME], until_passed=True,
    )  # fmt: skip
    rows = {r.artifact: r for r in comparison.rows}
    assert rows["saved_model"].status == "pass" and rows["saved_model"].max_abs < 1e-4
    assert (
        rows["model_fp32.tflite"].status == "not made" and "TensorList" in rows["model_fp32.tflite"].message
    )
    with pytest.raises(ConversionError, match=r"kept no model_fp32\.tflite"):
        keep_best(comparison, out, prefer="first")
    # The SavedModel was kept all the same, and recorded; no TFLite file was.
    assert (out / "saved_model" / "saved_model.pb").is_file() and not (out / "model_fp32.tflite").exists()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["artifacts"]["saved_model"]["extra"]["kept"] == LEGACY_NAME


#: A Hugging Face T5 encoder from a tiny config. The dynamo exporter cannot export it with a dynamic
#: batch (``Cannot view a tensor with shape ...`` while decomposing the attention's reshape); the
#: TorchScript exporter can, and onnx2tf converts that graph once its batch is fixed.
T5_ENCODER = textwrap.dedent(
    """
    import torch
    import transformers


    class T5Encoder(torch.nn.Module):
        def __init__(self):
            super().__init__()
            config = transformers.T5Config(
                vocab_size=64, d_model=16, d_kv=8, d_ff=32, num_layers=2, num_heads=2
            )
            self.t5 = transformers.T5EncoderModel(config).eval()

        def forward(self, input_ids):
            return self.t5(input_ids).last_hidden_state
    """
)


@pytest.mark.slow
def test_a_model_the_dynamo_exporter_cannot_export_comes_out_of_the_torchscript_export(tmp_path):
    import importlib.util

    import torch

    (tmp_path / "t5_net.py").write_text(T5_ENCODER)
    spec = importlib.util.spec_from_file_location("t5_net_for_tests", tmp_path / "t5_net.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    torch.manual_seed(0)
    model = module.T5Encoder()
    with torch.no_grad():  # weights far from their small defaults: a wrong op cannot hide
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.2)
    torch.save(model.state_dict(), tmp_path / "weights.pt")
    run = tmp_path / "run"
    proc = onnxpipe(
        "convert", str(tmp_path / "weights.pt"), "--model-class", f"{tmp_path / 't5_net.py'}:T5Encoder",
        "--input-shape", "1,8", "--input-dtype", "int64", "--value-range", "0,64", "--input-name", "input_ids",
        "--precision", "fp32", "--out", str(run),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    attempts = json.loads((run / "manifest.json").read_text())["artifacts"]["model_fp32.tflite"]["extra"][
        "attempts"
    ]
    outcome = {a["route"]: a for a in attempts}
    # The dynamo export fails once; the two routes after it that need the same file are not retried.
    export_failed = [outcome[r] for r in ("onnx2tf", "onnx2tf-repaired", "onnx2tf-static")]
    assert all(a["outcome"] == "not made" and "dynamo" in a["reason"] for a in export_failed), export_failed
    assert export_failed[1]["seconds"] < 1 and export_failed[2]["seconds"] < 1
    kept = outcome["onnx2tf-torchscript-static"]
    assert kept["outcome"] == "pass"
    assert (run / "model_torchscript_opset17.onnx").is_file()
    manifest = json.loads((run / "manifest.json").read_text())
    for name in ("saved_model", "model_fp32.tflite"):
        record = manifest["artifacts"][name]
        assert record["backend"] == "onnx2tf-torchscript-static" and record["extra"]["static_batch"] == 1
    rows = json.loads((run / "backends.json").read_text())["rows"]
    assert all(r["max_abs"] < 1e-4 for r in rows if r["kept"])


def test_routes_that_differ_only_by_their_export_are_not_tried_on_an_onnx_file(tmp_path):
    from onnxpipe.converters.onnx_to_saved_model import TFConvertOptions
    from onnxpipe.pipeline.backends import compare_backends

    source = export_lstm(tmp_path / "lstm.onnx")
    variants = ["onnx2tf-torchscript", "onnx2tf-torchscript-static"]
    comparison = compare_backends(
        source, tmp_path / "run", TFConvertOptions(precisions=("fp32",)), backends=variants
    )
    assert set(comparison.not_tried) == set(variants) and not comparison.rows
    assert all("only by its export; lstm.onnx is ONNX" in why for why in comparison.not_tried.values())
