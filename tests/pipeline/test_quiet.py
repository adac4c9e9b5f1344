"""TensorFlow's start-up lines stay off the terminal; ``--verbose`` brings them back."""

from __future__ import annotations

import os
import subprocess
import sys

from onnxpipe.pipeline.quiet import is_noise
from tests.conftest import ONNXPIPE, ROOT

#: Lines measured from `onnxpipe run` before the filter (TensorFlow 2.21, ai-edge-litert 2.x).
STARTUP = [
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    "I0000 00:00:1796123029.613639   13182 port.cc:153] oneDNN custom operations are on. You may see "
    "slightly different numerical results due to floating-point round-off errors.",
    "I0000 00:00:1796123029.614436   13182 cudart_stub.cc:31] Could not find cuda drivers on your "
    "machine, GPU will not be used.",
    "E0000 00:00:1796123031.328238   13182 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA "
    "error: Failed call to cuInit: UNKNOWN ERROR (303)",
    "To enable the following instructions: AVX2 AVX512F FMA, in other operations, rebuild TensorFlow "
    "with the appropriate compiler flags.",
    "INFO: Created TensorFlow Lite XNNPACK delegate for CPU.",
]


def test_the_startup_lines_are_noise_and_onnxpipes_own_are_not():
    assert all(is_noise(line) for line in STARTUP)
    for line in (
        "Error: /tmp/x: no such run directory",
        "» export runs/cnn/checkpoint.pt -> runs/cnn/model.onnx",
        "E0000 00:00:1.0   1 op_kernel.cc:1] INVALID_ARGUMENT: indices[3] = 99 is not in [0, 17)",
        "WARNING onnxscript.optimizer: Evaluation failed",
        "Traceback (most recent call last):",
    ):
        assert not is_noise(line), line


def test_the_filter_drops_noise_from_the_process_and_its_children_and_keeps_the_rest_in_order():
    script = r"""
import os, subprocess, sys, time
from onnxpipe.pipeline.quiet import filter_stderr
filter_stderr()
os.write(2, b"I0000 00:00:1.5   7 port.cc:153] oneDNN custom operations are on.\n")
os.write(2, b"first line\n")
os.write(2, b"\r 10%|#   |\r 20%|##  |")  # a progress bar: no newline, passes at once
time.sleep(0.2)
os.write(2, b"\n")
os.write(2, b"INFO: Created TensorFlow Lite")  # noise arriving in two pieces
time.sleep(0.2)
os.write(2, b" XNNPACK delegate for CPU.\n")
subprocess.run([sys.executable, "-c", "import os; os.write(2, b'WARNING: All log messages before "
                "absl::InitializeLog() is called are written to STDERR\\nchild line\\n')"], check=True)
print("Traceback (most recent call last):", file=sys.stderr)
os.write(2, b"no newline at exit")
"""
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, check=False, timeout=60, cwd=ROOT
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == (
        b"first line\n\r 10%|#   |\r 20%|##  |\nchild line\nTraceback (most recent call last):\n"
        b"no newline at exit"
    )


def test_the_filter_works_when_stderr_is_a_file(tmp_path):
    # A file is seekable, a pipe is not: sys.stderr opened on the file must not be kept over the pipe
    # (click's progress bar then died with "Illegal seek" under `make all > log 2>&1`).
    script = (
        "import click, sys\n"
        "from onnxpipe.pipeline.quiet import filter_stderr\n"
        "filter_stderr()\n"
        "with click.progressbar(length=3, label='steps', file=click.get_text_stream('stderr')) as bar:\n"
        "    for _ in bar: pass\n"
        "print('INFO: Created TensorFlow Lite XNNPACK delegate for CPU.', file=sys.stderr)\n"
        "print('done', file=sys.stderr)\n"
    )
    log = tmp_path / "log.txt"
    with log.open("wb") as f:
        proc = subprocess.run([sys.executable, "-c", script], stderr=f, check=False, timeout=60, cwd=ROOT)
    text = log.read_text()
    assert proc.returncode == 0, text
    assert "steps" in text and text.endswith("done\n") and "XNNPACK" not in text


def test_onnxpipe_run_prints_none_of_them_and_verbose_brings_them_back(cnn_run, cnn_copy):
    seen = (cnn_run.parent / "run-output.txt").read_text()
    assert "parity PASSED" in seen and "» export" in seen
    assert not [line for line in seen.splitlines() if is_noise(line)]
    for text in ("oneDNN", "cuda drivers", "cuInit", "XNNPACK delegate", "absl::InitializeLog"):
        assert text not in seen, text
    env = {k: v for k, v in os.environ.items() if not k.startswith("TF_CPP")}
    proc = subprocess.run(
        [*ONNXPIPE, "--verbose", "validate", str(cnn_copy), "--force", "--runtimes", "tensorflow,ai-edge-litert"],
        capture_output=True, text=True, check=False, timeout=600, cwd=ROOT, env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert [line for line in proc.stderr.splitlines() if is_noise(line)]  # TensorFlow's own lines are back


def test_the_recorded_validate_time_covers_the_validation_as_waited_for(cnn_copy):
    import json
    import time

    t0 = time.perf_counter()
    proc = subprocess.run(
        [*ONNXPIPE, "validate", str(cnn_copy), "--force", "--devices", "cpu"],
        capture_output=True, text=True, check=False, timeout=600, cwd=ROOT,
    )  # fmt: skip
    wall = time.perf_counter() - t0
    assert proc.returncode == 0, proc.stderr[-2000:]
    seconds = json.loads((cnn_copy / "manifest.json").read_text())["stages"]["validate"]["seconds"]
    # Everything but the interpreter's start and onnxpipe's own import (runtimes' imports included).
    assert 0.6 * wall <= seconds <= wall, (seconds, wall)
    report = json.loads((cnn_copy / "parity.json").read_text())
    assert {"train", "export", "convert", "validate"} <= set(report["stage_seconds"])
    assert 0.5 * seconds <= report["stage_seconds"]["validate"] <= seconds  # measured before the reports
    assert "Stage times (wall): train " in (cnn_copy / "parity.md").read_text()
    assert "Stage times (wall): train " in (cnn_copy / "report.html").read_text()
