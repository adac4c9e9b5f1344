import pytest
import torch

from onnxpipe.models.checkpoint import load_checkpoint
from onnxpipe.models.errors import UsageError
from onnxpipe.models.training import TrainConfig, train


def test_training_is_deterministic_for_a_seed():
    a = train(TrainConfig(model="mlp", epochs=2, seed=3))
    b = train(TrainConfig(model="mlp", epochs=2, seed=3))
    c = train(TrainConfig(model="mlp", epochs=2, seed=4))
    for k in a.state_dict:
        torch.testing.assert_close(a.state_dict[k], b.state_dict[k], rtol=0, atol=0)
    assert any(not torch.equal(a.state_dict[k], c.state_dict[k]) for k in a.state_dict)
    assert a.metrics["history"] == b.metrics["history"]


def test_callbacks_report_every_step_and_epoch():
    steps, epochs = [], []
    train(
        TrainConfig(model="mlp", epochs=2, batch_size=512),
        on_batch=lambda *a: steps.append(a),
        on_epoch=epochs.append,
    )
    assert len(steps) == 2 * 3  # 1437 samples / 512 -> 3 steps per epoch
    assert [e.epoch for e in epochs] == [1, 2]
    assert all(0.0 <= e.val_accuracy <= 1.0 for e in epochs)


def test_digits_cnn_reaches_95_percent_by_default(cnn_run):
    ckpt = load_checkpoint(cnn_run / "checkpoint.pt")
    assert ckpt.model == "cnn"
    assert ckpt.metrics["val_accuracy"] >= 0.95
    assert ckpt.train_config["epochs"] == 20 and ckpt.train_config["seed"] == 0


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [("epochs", 0, "epochs: got 0"), ("lr", -1.0, "lr: got -1.0"), ("batch_size", 0, "batch size: got 0")],
)
def test_bad_hyperparameters_are_refused(field, value, message):
    with pytest.raises(UsageError, match=message):
        TrainConfig(model="mlp", **{field: value}).resolved()
