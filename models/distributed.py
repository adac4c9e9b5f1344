"""Distributed training on PyTorch's own engine: ``torch.distributed.run`` (torchrun) and DDP.

:func:`launch` starts ``nproc`` processes with ``python -m torch.distributed.run --standalone``
(a rendezvous on this machine only); each runs :func:`main`: it joins the process group (gloo on
CPU, nccl with one GPU per process when CUDA is there), runs the shared training loop
(:func:`models.training.train_process`) on its share of every global batch, and rank 0 writes the
checkpoint and reports each epoch on stdout as one ``ONNXPIPE-EPOCH {json}`` line.

BatchNorm statistics are per process on CPU (PyTorch's SyncBatchNorm needs GPUs), so models with
BatchNorm match single-process training statistically, not exactly; with nccl they are synced.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from onnxpipe.models.errors import OnnxpipeError

__all__ = ["launch", "main"]

_EPOCH = "ONNXPIPE-EPOCH "


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
        log = Path(tmp) / "log.txt"
        with log.open("w") as err:
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True, cwd=tmp, env=env)
            assert proc.stdout is not None
            for line in proc.stdout:
                if line.startswith(_EPOCH) and on_epoch:
                    on_epoch(EpochResult(**json.loads(line[len(_EPOCH) :])))
            code = proc.wait(timeout=timeout_s)
        if code != 0 or not dest.is_file():
            lines = [ln for ln in log.read_text(errors="replace").splitlines() if ln.strip()]
            errors = [ln for ln in lines if "Error" in ln and not ln.startswith(" ")]
            tail = "\n".join(lines[-12:])
            reason = errors[-1] if errors else f"exit code {code}"
            raise DistributedTrainingError(
                f"distributed training ({cfg.nproc} processes) failed: {reason}\n--- last lines ---\n{tail}"
            )
        ckpt = load_checkpoint(dest)
        ckpt.path = None
        return ckpt


def main(request_path: str) -> int:
    """One torchrun process: join the group, train its share, rank 0 writes the checkpoint."""
    import torch
    import torch.distributed as dist

    from onnxpipe.models.checkpoint import save_checkpoint
    from onnxpipe.models.training import TrainConfig, train_process

    request = json.loads(Path(request_path).read_text())
    cfg = TrainConfig(**request["config"])
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    cuda = torch.cuda.is_available() and torch.cuda.device_count() >= world
    if cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", rank)))
    dist.init_process_group(backend="nccl" if cuda else "gloo")
    try:

        def report(result) -> None:
            if rank == 0:
                print(_EPOCH + json.dumps(dataclasses.asdict(result)), flush=True)

        device = f"cuda:{torch.cuda.current_device()}" if cuda else "cpu"
        ckpt = train_process(cfg, rank=rank, world=world, on_epoch=report, device=device)
        ckpt.metrics["distributed"] = {"backend": dist.get_backend(), "world_size": world}
        if rank == 0:
            save_checkpoint(ckpt, request["checkpoint"])
        dist.barrier()
    finally:
        dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
