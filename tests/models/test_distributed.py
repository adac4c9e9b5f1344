"""Distributed training (torchrun + DDP, gloo on CPU) against one process, and TensorBoard scalars."""

from __future__ import annotations

import json

import pytest

from onnxpipe.models.checkpoint import load_checkpoint
from onnxpipe.models.training import TrainConfig, train
from tests.conftest import onnxpipe

#: Stated tolerance: without BatchNorm, DDP over N processes is the single-process run up to the
#: order of summation (measured 8e-8 on the MLP after 3 epochs).
DDP_PARAM_TOLERANCE = 1e-6


def test_two_processes_match_one_on_the_same_global_batch(tmp_path):
    out = tmp_path / "mlp-ddp"
    proc = onnxpipe("train", "--model", "mlp", "--epochs", "3", "--nproc", "2", "--out", str(out), check=True)
    assert "DDP in 2 processes" in proc.stderr
    assert proc.stderr.count("val accuracy") == 3  # rank 0 reports every epoch, once
    ddp = load_checkpoint(out / "checkpoint.pt")
    assert ddp.metrics["distributed"] == {"backend": "gloo", "world_size": 2}
    single = train(TrainConfig(model="mlp", epochs=3))
    assert ddp.state_dict.keys() == single.state_dict.keys()
    worst = max((ddp.state_dict[k] - single.state_dict[k]).abs().max().item() for k in single.state_dict)
    assert worst <= DDP_PARAM_TOLERANCE
    assert ddp.metrics["val_accuracy"] == single.metrics["val_accuracy"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["stages"]["train"]["options"]["nproc"] == 2

    # TensorBoard is installed with the dev extra: the same run wrote its scalars.
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    (events,) = (out / "tensorboard").iterdir()
    acc = EventAccumulator(str(events))
    acc.Reload()
    logged = [e.value for e in acc.Scalars("val/accuracy")]
    assert logged == pytest.approx([h["val_accuracy"] for h in ddp.metrics["history"]])
    assert [e.step for e in acc.Scalars("train/loss")] == [1, 2, 3]


def test_single_process_training_logs_every_step(tmp_path):
    onnxpipe("train", "--model", "mlp", "--epochs", "2", "--out", str(tmp_path / "mlp"), check=True)
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    (events,) = (tmp_path / "mlp" / "tensorboard").iterdir()
    acc = EventAccumulator(str(events))
    acc.Reload()
    steps = [e.step for e in acc.Scalars("train/loss_step")]
    assert steps == list(range(1, 2 * 23 + 1))  # 1,437 samples in batches of 64: 23 steps an epoch


@pytest.mark.parametrize(
    ("nproc", "error"), [("0", "nproc: got 0, expected 1..64"), ("65", "expected 1..64")]
)
def test_bad_process_counts_are_refused_before_anything_runs(tmp_path, nproc, error):
    proc = onnxpipe("train", "--model", "mlp", "--nproc", nproc, "--out", str(tmp_path / "x"))
    assert proc.returncode == 2 and error in proc.stderr, proc.stderr
    assert not (tmp_path / "x").exists()
