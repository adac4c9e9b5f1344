"""Distributed training on PyTorch's own engine: ``torch.distributed.run`` (torchrun) and DDP.

:func:`launch` starts ``nproc`` processes with ``python -m torch.distributed.run --standalone``
(a rendezvous on this machine only); each runs :func:`main`: it joins the process group (gloo on
CPU, nccl with one GPU per process when CUDA is there), runs the shared training loop
(:func:`models.training.train_process`) on its share of every global batch, and rank 0 writes the
checkpoint. Rank 0 speaks the worker protocol (:mod:`onnxpipe.models.wire`) on stdout: one event
per epoch, then the reply, or its failure as an error the parent raises with rank 0's message.

BatchNorm statistics are per process on CPU (PyTorch's SyncBatchNorm needs GPUs), so models with
BatchNorm match single-process training statistically, not exactly; with nccl they are synced.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from onnxpipe.models import wire
from onnxpipe.models.errors import OnnxpipeError

__all__ = ["launch", "main"]


class DistributedTrainingError(OnnxpipeError):
    """The distributed run failed; the message holds the failing rank's last lines."""

    exit_code = 1


def launch(cfg, on_epoch: Callable | None = None, timeout_s: float = 24 * 3600):
    """Train ``cfg`` (``cfg.nproc`` processes) and return rank 0's checkpoint.

    Raises:
        DistributedTrainingError: A process failed; its error is in the message.
    """
    from onnxpipe.models.checkpoint import load_checkpoint
    from onnxpipe.models.training import EpochResult

    with tempfile.TemporaryDirectory(prefix="onnxpipe-ddp-") as tmp:
        request = Path(tmp) / "request.json"
        dest = Path(tmp) / "checkpoint.pt"
        request.write_text(json.dumps({"config": dataclasses.asdict(cfg), "checkpoint": str(dest)}))
        cmd = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            f"--nproc_per_node={cfg.nproc}",
            "-m",
            "onnxpipe.models.distributed",
            str(request),
        ]
        env = dict(os.environ)
        env.setdefault("OMP_NUM_THREADS", "1")  # torchrun's default, said out loud: no oversubscription

        def epoch(msg: wire.Message) -> None:
            if on_epoch:
                on_epoch(EpochResult(**msg.header["epoch"]))

        worker = wire.Worker(
            cmd,
            what=f"distributed training ({cfg.nproc} processes)",
            error=DistributedTrainingError,
            log=Path(tmp) / "log.txt",
            cwd=tmp,
            env=env,
        )
        with worker:
            worker.reply(on_event=epoch, timeout_s=timeout_s)
            code = worker.close(timeout_s=120)
        if code != 0 or not dest.is_file():
            raise DistributedTrainingError(
                f"distributed training ({cfg.nproc} processes) exited with code {code} after rank 0 finished"
            )
        ckpt = load_checkpoint(dest)
        ckpt.path = None
        return ckpt


def main(request_path: str) -> int:
    """One torchrun process: join the group, train its share, rank 0 writes the checkpoint."""
    from onnxpipe.models.training import TrainConfig

    request = json.loads(Path(request_path).read_text())
    cfg = TrainConfig(**request["config"])
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    channel = wire.claim_stdout()  # every rank: prints go to the log; only rank 0 sends frames
    try:
        _train(cfg, request, rank, world, channel)
    except Exception as e:
        if rank == 0:
            channel.send("error", wire.describe_error(e))
        raise
    if rank == 0:
        channel.send("reply", {"checkpoint": request["checkpoint"]})
    return 0


def _train(cfg, request: dict, rank: int, world: int, channel: wire.Channel) -> None:
    """Join the group, train this rank's share; rank 0 reports epochs and writes the checkpoint."""
    import torch
    import torch.distributed as dist

    from onnxpipe.models.checkpoint import save_checkpoint
    from onnxpipe.models.training import train_process

    cuda = torch.cuda.is_available() and torch.cuda.device_count() >= world
    if cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", rank)))
    dist.init_process_group(backend="nccl" if cuda else "gloo")
    try:

        def report(result) -> None:
            if rank == 0:
                channel.send("event", {"epoch": dataclasses.asdict(result)})

        device = f"cuda:{torch.cuda.current_device()}" if cuda else "cpu"
        ckpt = train_process(cfg, rank=rank, world=world, on_epoch=report, device=device)
        ckpt.metrics["distributed"] = {"backend": dist.get_backend(), "world_size": world}
        if rank == 0:
            save_checkpoint(ckpt, request["checkpoint"])
        dist.barrier()
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
