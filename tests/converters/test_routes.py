"""Routes as plug-ins: one registry, a toy route added from this module alone, and the rules around it."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from onnxpipe.converters.layout import bind_tensors
from onnxpipe.converters.onnx_to_saved_model import TFConvertOptions
from onnxpipe.converters.route import ROUTES, Route, render_routes_markdown, route_table
from onnxpipe.models.artifact import Artifact, Format
from onnxpipe.models.errors import UnknownNameError, UsageError
from onnxpipe.models.registry import ZOO, Registry
from onnxpipe.pipeline.cli import cli
from onnxpipe.validation.runtimes import RUNTIMES
from tests.conftest import ROOT

TOY = "toy-wrong"


class WrongTfliteRoute(Route):
    """A converter that writes a well-formed TFLite file computing the wrong thing (the input's mean)."""

    name = TOY
    summary = "test only: a TFLite file that computes the wrong thing"
    makes = (Format.TFLITE,)
    precisions = ("fp32",)
    preference = 1  # first in line: the planner tries it, validation refuses it, the next route passes

    def convert(self, onnx: Artifact, out_dir: Path, options: TFConvertOptions, run_with) -> list[Artifact]:
        import tensorflow as tf

        from onnxpipe.converters.tf_describe import describe_tflite

        (x,), (y,) = onnx.spec.inputs, onnx.spec.outputs
        shape = [None, *x.shape[1:]]

        @tf.function(input_signature=[tf.TensorSpec(shape, tf.float32)])
        def wrong(t):
            mean = tf.reduce_mean(tf.reshape(t, [tf.shape(t)[0], -1]), axis=1, keepdims=True)
            return tf.tile(mean, [1, y.shape[1]])

        converter = tf.lite.TFLiteConverter.from_concrete_functions([wrong.get_concrete_function()], wrong)
        dest = Path(out_dir) / "model_fp32.tflite"
        dest.write_bytes(converter.convert())
        desc = describe_tflite(str(dest))
        ins = bind_tensors(onnx.spec.inputs, desc["inputs"], channels_last=False, match_names=False)
        outs = bind_tensors(onnx.spec.outputs, desc["outputs"], channels_last=False, match_names=False)
        return [Artifact(dest, Format.TFLITE, onnx.spec, "fp32", ins, outs, onnx.label, self.name)]


@pytest.fixture
def toy_route():
    ROUTES.register()(WrongTfliteRoute)
    yield WrongTfliteRoute
    ROUTES.remove(TOY)


def _cli(*args: str):
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.output


def test_a_route_from_one_module_is_listed_run_validated_and_rejected_by_auto(toy_route, cnn_run, tmp_path):
    # Listed: by `onnxpipe routes` and as a --backend choice, without touching any other file.
    code, out = _cli("routes")
    assert code == 0 and f"| `{TOY}` |" in out and "test only" in out
    assert TOY in _cli("convert", "--help")[1]

    # Run on its own: the file is made and recorded with the route's name ...
    alone = tmp_path / "alone"
    code, out = _cli(
        "convert", str(cnn_run / "checkpoint.pt"), "--backend", TOY, "--to", "tflite", "--precision", "fp32",
        "--out", str(alone),
    )  # fmt: skip
    assert code == 0, out
    manifest = json.loads((alone / "manifest.json").read_text())
    assert manifest["artifacts"]["model_fp32.tflite"]["backend"] == TOY
    # ... and validation catches it, blaming the route's hop.
    code, out = _cli(
        "validate", str(alone), "--devices", "cpu", "--runtimes", "pytorch,onnxruntime,ai-edge-litert"
    )
    assert code == 1, out
    report = json.loads((alone / "parity.json").read_text())
    rows = {r["artifact"]: r for r in report["results"] if r["runtime"] == "ai-edge-litert"}
    assert rows["model_fp32.tflite"]["status"] == "fail"
    assert report["first_failing_hop"] == "model.onnx -> model_fp32.tflite"

    # Rejected by auto: the planner tries it first, validation refuses its file, the next route's is kept.
    auto = tmp_path / "auto"
    code, out = _cli(
        "convert", str(cnn_run / "checkpoint.pt"), "--backend", "auto", "--to", "tflite", "--precision", "fp32",
        "--out", str(auto),
    )  # fmt: skip
    assert code == 0, out
    rows = json.loads((auto / "backends.json").read_text())["rows"]
    toy_row = next(r for r in rows if r["backend"] == TOY)
    assert toy_row["status"] == "fail" and not toy_row["kept"]
    (kept,) = [r for r in rows if r["kept"]]  # the next route in line, which passed
    assert (
        kept["artifact"] == "model_fp32.tflite"
        and kept["backend"] == ROUTES.names()[1]
        and kept["status"] == "pass"
    )
    kept_manifest = json.loads((auto / "manifest.json").read_text())["artifacts"]["model_fp32.tflite"]
    assert kept_manifest["extra"]["kept"] == kept["backend"]


def test_a_route_is_refused_what_it_does_not_make(toy_route, cnn_run, tmp_path):
    code, out = _cli(
        "convert", str(cnn_run / "checkpoint.pt"), "--backend", TOY, "--precision", "fp32", "--out", str(tmp_path / "x")
    )  # fmt: skip
    assert code == 2 and f"the {TOY} route makes no SavedModel" in out
    assert not (tmp_path / "x").exists()


def test_registry_names_the_valid_choices_and_refuses_a_second_registration():
    registry: Registry[int] = Registry("widget", lazy={"b": "json:dumps"})
    registry.add("a", 1)
    assert registry.names() == ["b", "a"] and "a" in registry and len(registry) == 2
    assert registry.get("b") is json.dumps  # lazy entries are imported when first asked for
    with pytest.raises(UnknownNameError, match="unknown widget 'c'; valid: a, b"):
        registry.get("c")
    with pytest.raises(UsageError, match="widget 'a' is registered twice"):
        registry.add("a", 2)


def test_one_registry_type_serves_routes_runtimes_and_the_zoo():
    assert all(isinstance(r, Registry) for r in (ROUTES, RUNTIMES, ZOO))
    assert ROUTES.names()[:6] == [
        "onnx2tf",
        "onnx2tf-repaired",
        "onnx2tf-static",
        "onnx2tf-torchscript",
        "onnx2tf-torchscript-static",
        "onnx-tf",
    ]  # found by importing converters/routes/*, in order of preference
    assert {"onnxruntime", "onnx-reference", "ai-edge-litert"} <= set(RUNTIMES)
    assert "cnn" in ZOO


def test_no_route_name_is_spelled_outside_its_own_module():
    # `if backend == "onnx-tf"` branches are what routes replace: the name lives in its module (and
    # in its standalone worker, which runs where onnxpipe is not installed).
    own = {ROOT / "converters" / "routes" / "onnx_tf.py", ROOT / "converters" / "onnx_tf_worker.py"}
    spelled = []
    for folder in ("pipeline", "models", "converters", "validation", "bench"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            if path in own:
                continue
            for number, line in enumerate(path.read_text().splitlines(), 1):
                if re.search(r"""["']onnx-tf["']""", line):
                    spelled.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not spelled, "\n".join(spelled)


def test_route_order_does_not_depend_on_import_order():
    import subprocess
    import sys

    code = (
        "import onnxpipe.converters.routes.onnx_tf\n"
        "from onnxpipe.converters.route import ROUTES\n"
        "print(','.join(ROUTES.names()))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == (
        "onnx2tf,onnx2tf-repaired,onnx2tf-static,onnx2tf-torchscript,onnx2tf-torchscript-static,onnx-tf,litert-torch"
    )


def test_the_readme_table_of_routes_is_the_registry():
    table = render_routes_markdown(route_table(available=False))
    assert table in (ROOT / "README.md").read_text(), "README's table of routes is stale:\n" + table
