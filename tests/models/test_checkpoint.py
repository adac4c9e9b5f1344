import os
import pickle
from pathlib import Path

import pytest
import torch

from onnxpipe.models.checkpoint import Checkpoint, load_checkpoint, load_model, save_checkpoint
from onnxpipe.models.errors import CheckpointError, UnknownNameError
from onnxpipe.models.registry import get_architecture


@pytest.fixture
def mlp_ckpt(tmp_path) -> Path:
    arch = get_architecture("mlp")
    torch.manual_seed(0)
    ckpt = Checkpoint("mlp", {k: v.clone() for k, v in arch.build().state_dict().items()}, arch.spec)
    return save_checkpoint(ckpt, tmp_path / "mlp.pt")


def test_round_trip_and_plain_weights_only_load(mlp_ckpt):
    raw = torch.load(mlp_ckpt, weights_only=True)
    assert raw["model"] == "mlp" and raw["format"] == "onnxpipe-checkpoint/1"
    ckpt = load_checkpoint(mlp_ckpt)
    assert ckpt.spec == get_architecture("mlp").spec
    model = load_model(mlp_ckpt)
    assert not model.training


def test_missing_empty_and_garbage_files(tmp_path):
    with pytest.raises(CheckpointError, match="no such file"):
        load_checkpoint(tmp_path / "nope.pt")
    (tmp_path / "empty.pt").write_bytes(b"")
    with pytest.raises(CheckpointError, match="is empty"):
        load_checkpoint(tmp_path / "empty.pt")
    (tmp_path / "garbage.pt").write_bytes(os.urandom(512))
    with pytest.raises(CheckpointError, match=r"not a readable PyTorch checkpoint|refused"):
        load_checkpoint(tmp_path / "garbage.pt")
    with pytest.raises(CheckpointError, match="is a folder"):
        load_checkpoint(tmp_path)


def test_truncated_checkpoint(mlp_ckpt, tmp_path):
    data = mlp_ckpt.read_bytes()
    bad = tmp_path / "truncated.pt"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="not a readable PyTorch checkpoint"):
        load_checkpoint(bad)


class _Evil:
    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_pickle_that_runs_code_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pt"
    torch.save({"format": "onnxpipe-checkpoint/1", "payload": _Evil(str(marker))}, evil)
    with pytest.raises(CheckpointError, match="refused"):
        load_checkpoint(evil)
    assert not marker.exists()
    # And a plain pickle file (not a torch zip) is refused as well.
    plain = tmp_path / "plain.pt"
    plain.write_bytes(pickle.dumps(_Evil(str(marker))))
    with pytest.raises(CheckpointError):
        load_checkpoint(plain)
    assert not marker.exists()


def test_checkpoint_that_is_not_ours(tmp_path):
    path = tmp_path / "state_dict.pt"
    torch.save({"weight": torch.zeros(3)}, path)
    with pytest.raises(CheckpointError, match=r"not an onnxpipe checkpoint: expected keys"):
        load_checkpoint(path)


def test_checkpoint_of_another_architecture_names_the_tensors(mlp_ckpt, tmp_path):
    raw = torch.load(mlp_ckpt, weights_only=True)
    raw["model"] = "cnn"
    bad = tmp_path / "mislabelled.pt"
    torch.save(raw, bad)
    with pytest.raises(
        CheckpointError,
        match=r"does not fit architecture 'cnn': missing keys \['1.weight'.*'0.weight: \(128, 64\) vs \(16, 1, 3, 3\)'",
    ):
        load_model(bad)
    raw["model"] = "vgg"
    torch.save(raw, bad)
    with pytest.raises(UnknownNameError, match="unknown model 'vgg'"):
        load_model(bad)
