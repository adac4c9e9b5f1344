"""Seeded, deterministic training on a bundled dataset: one process, or several with DDP.

With ``nproc > 1`` the same loop runs in ``nproc`` processes under ``torch.distributed.run``
(:mod:`models.distributed`): every process draws the same global batch order, takes its share of
each global batch, and DistributedDataParallel averages the gradients. Each share's loss is a sum
scaled by ``world_size / global_batch``, so the averaged gradient is exactly the single-process
gradient of the global batch (up to summation order), uneven last batch included.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from onnxpipe.models.checkpoint import Checkpoint
from onnxpipe.models.data import model_arrays
from onnxpipe.models.errors import UsageError
from onnxpipe.models.registry import get_architecture

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
    nproc: int = 1

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
        if not 1 <= cfg.nproc <= 64:
            raise UsageError(f"nproc: got {cfg.nproc}, expected 1..64")
        if cfg.nproc > cfg.batch_size:
            raise UsageError(
                f"nproc {cfg.nproc} exceeds the batch size {cfg.batch_size}: a process would get no samples"
            )
        return cfg


@dataclass(frozen=True)
class EpochResult:
    """Metrics at the end of one epoch."""

    epoch: int
    loss: float
    val_loss: float
    val_accuracy: float


def evaluate(
    model: Any, x: np.ndarray, y: np.ndarray, batch_size: int = 256, device: str = "cpu"
) -> tuple[float, float]:
    """Mean cross-entropy and accuracy of ``model`` on ``(x, y)``."""
    import torch
    import torch.nn.functional as F

    model.eval()
    loss, correct = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(y), batch_size):
            xb = torch.from_numpy(x[i : i + batch_size]).to(device)
            yb = torch.from_numpy(y[i : i + batch_size]).to(device)
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
    PyTorch runs with deterministic algorithms. One process: ``config.nproc > 1`` is trained with
    :func:`onnxpipe.models.distributed.launch`, which builds on this module (never the reverse).

    Args:
        config: What to train and how.
        on_batch: Called as ``on_batch(epoch, batches_done, loss)`` after every step (one process).
        on_epoch: Called with each epoch's :class:`EpochResult`.
    """
    cfg = config.resolved()
    if cfg.nproc > 1:
        raise UsageError(
            f"train() runs one process; nproc={cfg.nproc} goes to onnxpipe.models.distributed.launch()"
        )
    return train_process(cfg, on_batch=on_batch, on_epoch=on_epoch)


def train_process(
    cfg: TrainConfig,
    rank: int = 0,
    world: int = 1,
    on_batch: Callable[[int, int, float], None] | None = None,
    on_epoch: Callable[[EpochResult], None] | None = None,
    device: str = "cpu",
) -> Checkpoint:
    """The training loop of one process: the whole of it, or rank ``rank`` of ``world`` under DDP.

    Under DDP (``world > 1``) the process group must be initialised; the returned checkpoint is the
    same on every rank. On a CUDA ``device`` BatchNorm layers become SyncBatchNorm.
    """
    import torch
    import torch.nn.functional as F

    arch = get_architecture(cfg.model)
    torch.manual_seed(cfg.seed)
    torch.use_deterministic_algorithms(True)
    x_tr, y_tr = model_arrays(arch.spec, "train")
    x_va, y_va = model_arrays(arch.spec, "validation")
    net = arch.build().to(device)
    model = net
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel

        if device.startswith("cuda"):
            net = torch.nn.SyncBatchNorm.convert_sync_batchnorm(net)
            model = DistributedDataParallel(net, device_ids=[torch.device(device).index])
        else:
            model = DistributedDataParallel(net)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.epochs)
    gen = torch.Generator().manual_seed(cfg.seed)
    xt, yt = torch.from_numpy(x_tr).to(device), torch.from_numpy(y_tr).to(device)
    history: list[EpochResult] = []
    for epoch in range(1, cfg.epochs + 1):
        model.train()
        order = torch.randperm(len(yt), generator=gen).to(device)
        total, steps = 0.0, 0
        for i in range(0, len(order), cfg.batch_size):
            idx = order[i : i + cfg.batch_size]
            mine = idx[rank::world]  # this process's share of the global batch
            opt.zero_grad()
            # A sum scaled so that DDP's average over processes is the global batch's mean gradient.
            loss = F.cross_entropy(model(xt[mine]), yt[mine], reduction="sum") * (world / len(idx))
            loss.backward()
            opt.step()
            batch_loss = loss.detach().clone()
            if world > 1:
                torch.distributed.all_reduce(batch_loss)
                batch_loss /= world
            total += batch_loss.item()
            steps += 1
            if on_batch:
                on_batch(epoch, steps, batch_loss.item())
        sched.step()
        val_loss, val_acc = evaluate(net, x_va, y_va, device=device)
        result = EpochResult(epoch, total / steps, val_loss, val_acc)
        history.append(result)
        log.info(
            "epoch %d: loss %.4f, val loss %.4f, val accuracy %.4f", epoch, *dataclasses.astuple(result)[1:]
        )
        if on_epoch:
            on_epoch(result)
    net.eval()
    last = history[-1]
    return Checkpoint(
        model=cfg.model,
        state_dict={k: v.detach().cpu().clone() for k, v in net.state_dict().items()},
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
