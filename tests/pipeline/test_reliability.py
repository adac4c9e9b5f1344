"""Interrupted stages, repeated runs, concurrent runs: nothing is lost or half-written."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from onnxpipe.models.fs import sha256_path
from onnxpipe.pipeline.rundir import RunDir
from tests.conftest import ROOT, onnxpipe


def _hashes(folder: Path) -> dict[str, str]:
    return {p.name: sha256_path(p) for p in folder.iterdir() if not p.name.startswith(".")}


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_interrupted_conversion_leaves_the_previous_artifacts_intact(cnn_copy, sig):
    before = _hashes(cnn_copy)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "onnxpipe.pipeline",
            "convert",
            str(cnn_copy / "model.onnx"),
            "--out",
            str(cnn_copy),
            "--force",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # Python ignores SIGINT when it starts with it ignored (a shell's background job, `nohup ... &`):
        # the child gets the default disposition, as from a terminal.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 120
    # The planner (the default backend) converts in backends/<route>/ first.
    while not list(cnn_copy.glob("**/.onnx2tf-*/out")) and time.monotonic() < deadline:  # onnx2tf is at work
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    assert list(cnn_copy.glob("**/.onnx2tf-*")), "the conversion never started"
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    assert _hashes(cnn_copy) == before  # every artifact and the manifest as they were
    left = [p for p in cnn_copy.rglob(".*") if p.name != ".lock"]
    assert not left, f"temporary files left behind: {left}"
    assert onnxpipe("status", str(cnn_copy)).returncode == 0


def test_a_second_onnxpipe_on_the_same_run_directory_is_refused(cnn_copy):
    with RunDir(cnn_copy).lock():
        proc = onnxpipe("validate", str(cnn_copy), "--force")
        assert proc.returncode == 3
        assert f"is in use by onnxpipe pid {os.getpid()}" in proc.stderr
        assert "Traceback" not in proc.stderr
    assert not (cnn_copy / ".lock").exists()
    assert onnxpipe("validate", str(cnn_copy), "--devices", "cpu", "--force").returncode == 0


def test_rerun_skips_up_to_date_stages_and_status_says_why_others_are_stale(cnn_copy):
    proc = onnxpipe("run", "--model", "cnn", "--out", str(cnn_copy), check=True)
    for stage in ("train", "export", "convert", "validate"):
        assert f"{stage}: up to date" in proc.stderr
    assert onnxpipe("status", str(cnn_copy), check=True).stdout.count("up to date") == 4
    with (cnn_copy / "model_fp16.tflite").open("ab") as f:
        f.write(b"tampered")
    status = onnxpipe("status", str(cnn_copy))
    assert status.returncode == 1
    assert "convert   stale: output model_fp16.tflite was modified" in status.stdout
    proc = onnxpipe("convert", str(cnn_copy / "model.onnx"), "--out", str(cnn_copy), check=True)
    assert "convert: runs again: output model_fp16.tflite was modified" in proc.stderr
    proc = onnxpipe("export", str(cnn_copy), "--opset", "17", check=True)
    assert "export: runs again: options changed" in proc.stderr
    proc = onnxpipe("export", str(cnn_copy), "--opset", "17", check=True)
    assert "export: up to date" in proc.stderr
    proc = onnxpipe("export", str(cnn_copy), "--opset", "17", "--force", check=True)
    assert "up to date" not in proc.stderr


KILL_POINTS = {
    # command -> what shows the stage is at work (a glob in the run directory), before SIGKILL
    "train": (["train", "--model", "cnn"], ".lock"),
    "export": (["export"], ".model.onnx.tmp-*"),
    "convert": (["convert", "model.onnx", "--backend", "onnx2tf"], ".onnx2tf-*/out"),
    "validate": (["validate", "--devices", "cpu"], ".lock"),
}


@pytest.mark.parametrize("stage", list(KILL_POINTS))
def test_a_run_killed_with_sigkill_completes_when_run_again(cnn_copy, stage):
    args, at_work = KILL_POINTS[stage]
    if stage == "train":
        argv = [*args, "--out", str(cnn_copy), "--epochs", "3", "--force"]
    elif stage == "convert":
        argv = [args[0], str(cnn_copy / args[1]), *args[2:], "--out", str(cnn_copy), "--force"]
    else:
        argv = [*args, str(cnn_copy), "--force"]
    before = _hashes(cnn_copy)
    proc = subprocess.Popen(
        [sys.executable, "-m", "onnxpipe.pipeline", *argv],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 120
    while not list(cnn_copy.glob(at_work)) and time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.02)
    time.sleep(0.5 if at_work == ".lock" else 0.0)  # into the stage's work
    assert proc.poll() is None, "it finished before it could be killed"
    proc.kill()  # SIGKILL: no handler runs, nothing is cleaned up by the process itself
    proc.communicate(timeout=60)
    assert _hashes(cnn_copy) == before  # every artifact, report and the manifest as they were
    assert (cnn_copy / ".lock").read_text().startswith(f"onnxpipe pid {proc.pid}")  # left by the dead holder
    again = onnxpipe(*argv)
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"taking over from onnxpipe pid {proc.pid}" in again.stderr
    left = list(cnn_copy.rglob(".*"))
    assert not left, f"left behind: {left}"


def _tflite_of(fn_body, signature) -> bytes:
    import tensorflow as tf

    fn = tf.function(fn_body, input_signature=[tf.TensorSpec(signature, tf.float32)])
    return tf.lite.TFLiteConverter.from_concrete_functions([fn.get_concrete_function()]).convert()


@pytest.mark.parametrize("swap", ["another model", pytest.param("another interface", marks=pytest.mark.slow)])
def test_an_artifact_swapped_for_another_file_is_caught_and_named(cnn_copy, swap):
    """A run's .tflite replaced by another model's file: the manifest's record (names, layouts) is of
    the file onnxpipe wrote, so the new one is bound by what it declares and judged as found."""
    import numpy as np
    import tensorflow as tf

    weights = tf.constant(np.random.RandomState(0).randn(64, 10).astype(np.float32))
    if swap == "another model":  # the same NHWC input and 10 logits, other numbers, other tensor names
        data = _tflite_of(lambda x: tf.matmul(tf.reshape(x, [-1, 64]), weights), [None, 8, 8, 1])
    else:  # rows of 64 features: fits no layout of the CNN's [batch, 1, 8, 8]
        data = _tflite_of(lambda x: tf.matmul(x, weights), [None, 64])
    (cnn_copy / "model_fp32.tflite").write_bytes(data)
    proc = onnxpipe(
        "validate", str(cnn_copy), "--devices", "cpu", "--samples", "32", "--random", "8", "--force"
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    report = json.loads((cnn_copy / "parity.json").read_text())
    rows = [r for r in report["results"] if r["artifact"] == "model_fp32.tflite"]
    assert rows and all("changed since convert wrote it" in r["message"] for r in rows)
    if swap == "another model":
        assert {r["status"] for r in rows} == {"fail"}
        assert {r["blame"] for r in rows} == {"saved_model -> model_fp32.tflite"}
    else:
        assert {r["status"] for r in rows} == {"error"}
        assert all("does not match the reference's interface" in r["message"] for r in rows)
    others = [r for r in report["results"] if r["artifact"] != "model_fp32.tflite"]
    assert others and {r["status"] for r in others} == {"pass"}  # the rest of the run stands


def test_a_failed_command_leaves_a_run_directory_that_the_same_command_takes_again(tmp_path):
    """The folder is marked as onnxpipe's before its first file: what a failed convert left
    (``backends/``) does not make the rerun refuse the folder as someone else's."""
    run = RunDir(tmp_path / "new")
    run.claim()
    with pytest.raises(RuntimeError), run.lock(mark=True):
        (run.path / "backends").mkdir()  # a route's files, then the command fails
        raise RuntimeError("the route failed")
    assert run.is_run_dir()
    run.claim()  # not refused: the same command runs again without --force


def test_the_mark_goes_when_nothing_was_written(tmp_path):
    folder = tmp_path / "yours"
    folder.mkdir()
    (folder / "notes.txt").write_text("the user's")
    with pytest.raises(RuntimeError), RunDir(folder).lock(mark=True):
        raise RuntimeError("refused before anything was written")
    assert sorted(p.name for p in folder.iterdir()) == ["notes.txt"]
    with pytest.raises(RuntimeError), RunDir(tmp_path / "fresh").lock(mark=True):
        raise RuntimeError("refused")
    assert not (tmp_path / "fresh").exists()
