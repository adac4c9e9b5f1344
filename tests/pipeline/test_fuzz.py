"""Property-based tests: the loaders and the config parser raise onnxpipe's own errors, nothing else."""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from onnxpipe.models.checkpoint import load_checkpoint, load_model
from onnxpipe.models.errors import OnnxpipeError
from onnxpipe.pipeline.artifacts import resolve_artifact
from onnxpipe.pipeline.config import load_config

BOUNDED = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def _mutate(data: bytes, edits: list[tuple[int, int]], cut: int | None) -> bytes:
    b = bytearray(data)
    for index, value in edits:
        b[index % len(b)] = value
    return bytes(b[:cut] if cut else b)


edits = st.lists(st.tuples(st.integers(0, 10**9), st.integers(0, 255)), max_size=24)
cuts = st.one_of(st.none(), st.integers(1, 10**6))


def _loads_or_refuses(name: str, data: bytes | str, load) -> None:
    """Write ``data`` to a fresh file called ``name`` and load it: success or an OnnxpipeError only."""
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / name
        path.write_bytes(data) if isinstance(data, bytes) else path.write_text(data)
        with contextlib.suppress(OnnxpipeError):  # refusing is fine; any other exception fails the test
            load(path)


@pytest.fixture(scope="module")
def originals(cnn_run):
    return {
        name: (cnn_run / name).read_bytes() for name in ("checkpoint.pt", "model.onnx", "model_fp32.tflite")
    }


@BOUNDED
@given(data=st.binary(max_size=4096))
def test_checkpoint_loader_on_random_bytes(data):
    _loads_or_refuses("c.pt", data, lambda p: load_model(load_checkpoint(p)))


@BOUNDED
@given(edits=edits, cut=cuts)
def test_checkpoint_loader_on_mutated_checkpoints(originals, edits, cut):
    _loads_or_refuses(
        "c.pt", _mutate(originals["checkpoint.pt"], edits, cut), lambda p: load_model(load_checkpoint(p))
    )


@BOUNDED
@given(edits=edits, cut=cuts)
def test_onnx_loader_on_mutated_models(originals, edits, cut):
    _loads_or_refuses("m.onnx", _mutate(originals["model.onnx"], edits, cut), resolve_artifact)


@BOUNDED
@given(edits=edits, cut=cuts)
def test_tflite_loader_on_mutated_models(originals, cnn_run, edits, cut):
    reference = load_checkpoint(cnn_run / "checkpoint.pt").spec
    _loads_or_refuses(
        "m.tflite",
        _mutate(originals["model_fp32.tflite"], edits, cut),
        lambda p: resolve_artifact(p, reference),
    )


toml_values = st.one_of(
    st.integers(-5, 5), st.floats(allow_nan=False, width=32), st.booleans(), st.text(max_size=8),
    st.lists(st.sampled_from(["fp32", "fp16", "int4", "cpu", "cuda"]), max_size=3),
)  # fmt: skip
keys = st.sampled_from(
    [
        "epochs",
        "lr",
        "seed",
        "model",
        "opset",
        "exporter",
        "precisions",
        "samples",
        "batch",
        "sweep",
        "fail_on",
        "devices",
        "x",
    ]
)


def _toml(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return repr(value)


@BOUNDED
@given(
    sections=st.dictionaries(
        st.sampled_from(["train", "export", "convert", "validate", "other"]),
        st.dictionaries(keys, toml_values, max_size=4),
        max_size=4,
    )
)
def test_config_parser_on_generated_documents(sections):
    text = "\n".join(
        f"[{name}]\n" + "\n".join(f"{k} = {_toml(v)}" for k, v in body.items())
        for name, body in sections.items()
    )
    _loads_or_refuses("c.toml", text, load_config)


@BOUNDED
@given(text=st.text(max_size=300))
def test_config_parser_on_random_text(text):
    _loads_or_refuses("c.toml", text, load_config)
