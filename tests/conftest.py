"""Shared fixtures: one real pipeline run per session, reused by most tests."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: Names of the hostile inputs tried in this session (tests/pipeline/test_hostile_inputs.py).
HOSTILE_TRIED: list[str] = []
MUTATED_OUTCOMES: list[str] = []  # per mutated artifact validated: refused, or the statuses of its rows
ONNXPIPE = [sys.executable, "-m", "onnxpipe.pipeline"]


def requires_env(python: Path, target: str):
    """Skip (with the fix) when a worker environment is missing, except in CI, where it must exist."""
    return pytest.mark.skipif(
        not python.is_file() and not os.environ.get("CI"),
        reason=f"Requires: {python.parents[1].name} (make {target})",
    )


def onnxpipe(*args: str, cwd: Path | None = None, check: bool = False, env: dict | None = None):
    """Run the real CLI in a subprocess; returns the CompletedProcess (text output)."""
    proc = subprocess.run(
        [*ONNXPIPE, *args],
        cwd=cwd or ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},  # TensorFlow's start-up lines: onnxpipe drops them itself
        timeout=900,
        check=False,
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"onnxpipe {' '.join(args)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
        )
    return proc


@pytest.fixture(scope="session")
def cnn_run(tmp_path_factory) -> Path:
    """``onnxpipe run --model cnn``: checkpoint, ONNX, SavedModel, TFLite fp32/fp16, parity reports."""
    out = tmp_path_factory.mktemp("runs") / "cnn"
    proc = onnxpipe("run", "--model", "cnn", "--out", str(out), check=True)
    (out.parent / "run-output.txt").write_text(proc.stdout + proc.stderr)  # what the user saw
    return out


@pytest.fixture
def cnn_copy(cnn_run, tmp_path) -> Path:
    """A private copy of the CNN run directory, for tests that modify it."""
    dest = tmp_path / "cnn"
    shutil.copytree(cnn_run, dest)
    return dest


def pytest_terminal_summary(terminalreporter):
    if HOSTILE_TRIED:
        terminalreporter.write_line(
            f"hostile inputs tried: {len(HOSTILE_TRIED)} (each: one error line, documented exit code, "
            "no traceback, no file written)"
        )
    if MUTATED_OUTCOMES:
        counts = {k: MUTATED_OUTCOMES.count(k) for k in sorted(set(MUTATED_OUTCOMES))}
        terminalreporter.write_line(
            f"mutated artifacts validated: {len(MUTATED_OUTCOMES)} ("
            + ", ".join(f"{k}: {n}" for k, n in counts.items())
            + "; none ended without a report or an error line)"
        )


def export_lstm(path: Path, dynamic_batch: bool = True) -> Path:
    """An LSTM classifier (rows of 8 features -> 10 logits) exported at opset 12 with the TorchScript
    exporter: onnx-tf makes a good SavedModel of it but no working TFLite file."""
    import torch

    class Lstm(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = torch.nn.LSTM(8, 16, batch_first=True)
            self.head = torch.nn.Linear(16, 10)

        def forward(self, x):
            return self.head(self.rnn(x)[0][:, -1])

    torch.manual_seed(0)
    torch.onnx.export(
        Lstm().eval(),
        (torch.rand(1, 8, 8),),
        str(path),
        input_names=["rows"],
        output_names=["logits"],
        dynamic_axes={"rows": {0: "batch"}, "logits": {0: "batch"}} if dynamic_batch else None,
        opset_version=12,
        dynamo=False,
    )
    return path
