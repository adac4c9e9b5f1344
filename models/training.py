"""Seeded, deterministic single-process training on a bundled dataset."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from models.checkpoint import Checkpoint
from models.data import model_arrays
from models.errors import UsageError
from models.registry import get_architecture

__all__ = ["EpochResult", "TrainConfig", "train"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainConfig:
    """Training options; ``None`` takes the architecture's default."""

    model: str = "cnn"
    epochs: int | None = None
    lr: float | None = None
    batch_size: int | None = None
    seed: int = 0

    def resolved(self) -> TrainConfig:
        """This config with the architecture's defaults filled in and values checked."""
        d = get_architecture(self.model).defaults
        cfg = dataclasses.replace(
            self,
            epochs=d.epochs if self.epochs is None else self.epochs,
            lr=d.lr if self.lr is None else self.lr,
            batch_size=d.batch_size if self.batch_size is None else self.batch_size,
        )
        if cfg.epochs < 1:
            raise UsageError(f"epochs: got {cfg.epochs}, expected an integer >= 1")
        if not cfg.lr > 0:
            raise UsageError(f"lr: got {cfg.lr}, expected a number > 0")
        if cfg.batch_size < 1:
            raise UsageError(f"batch size: got {cfg.batch_size}, expected an integer >= 1")
        return cfg


@dataclass(frozen=True)
class EpochResult:
    """Metrics at the end of one epoch."""

    epoch: int
    loss: float
    val_loss: float
    val_accuracy: float


def evaluate(model: Any, x: np.ndarray, y: np.ndarray, batch_size: int = 256) -> tuple[float, float]:
    """Mean cross-entropy and accuracy of ``model`` on ``(x, y)``."""
    import torch
    import torch.nn.functional as F

    model.eval()
    loss, correct = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(y), batch_size):
            xb, yb = torch.from_numpy(x[i : i + batch_size]), torch.from_numpy(y[i : i + batch_size])
            out = model(xb)
            loss += F.cross_entropy(out, yb, reduction="sum").item()
            correct += (out.argmax(1) == yb).sum().item()
    return loss / len(y), correct / len(y)


def train(
    config: TrainConfig,
    on_batch: Callable[[int, int, float], None] | None = None,
    on_epoch: Callable[[EpochResult], None] | None = None,
) -> Checkpoint:
    """Train ``config.model`` from scratch and return its checkpoint.

    Same seed, same machine, same result: the seed fixes initialisation and batch order, and
    PyTorch runs with deterministic algorithms.

    Args:
        config: What to train and how.
        on_batch: Called as ``on_batch(epoch, batches_done, loss)`` after every step.
        on_epoch: Called with each epoch's :class:`EpochResult`.
    """
    import torch
    import torch.nn.functional as F

    cfg = config.resolved()
    arch = get_architecture(cfg.model)
    torch.manual_seed(cfg.seed)
    torch.use_deterministic_algorithms(True)
    x_tr, y_tr = model_arrays(arch.spec, "train")
    x_va, y_va = model_arrays(arch.spec, "validation")
    model = arch.build()
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.epochs)
    gen = torch.Generator().manual_seed(cfg.seed)
    xt, yt = torch.from_numpy(x_tr), torch.from_numpy(y_tr)
    history: list[EpochResult] = []
    for epoch in range(1, cfg.epochs + 1):
        model.train()
        order = torch.randperm(len(yt), generator=gen)
        total, steps = 0.0, 0
        for i in range(0, len(order), cfg.batch_size):
            idx = order[i : i + cfg.batch_size]
            opt.zero_grad()
            loss = F.cross_entropy(model(xt[idx]), yt[idx])
            loss.backward()
            opt.step()
            total += loss.item()
            steps += 1
            if on_batch:
                on_batch(epoch, steps, loss.item())
        sched.step()
        val_loss, val_acc = evaluate(model, x_va, y_va)
        result = EpochResult(epoch, total / steps, val_loss, val_acc)
        history.append(result)
        log.info(
            "epoch %d: loss %.4f, val loss %.4f, val accuracy %.4f", epoch, *dataclasses.astuple(result)[1:]
        )
        if on_epoch:
            on_epoch(result)
    model.eval()
    last = history[-1]
    return Checkpoint(
        model=cfg.model,
        state_dict={k: v.detach().clone() for k, v in model.state_dict().items()},
        spec=arch.spec,
        train_config=dataclasses.asdict(cfg),
        metrics={
            "val_accuracy": last.val_accuracy,
            "val_loss": last.val_loss,
            "train_loss": last.loss,
            "train_samples": len(y_tr),
            "val_samples": len(y_va),
            "history": [dataclasses.asdict(h) for h in history],
        },
    )
