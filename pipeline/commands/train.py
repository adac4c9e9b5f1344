"""``onnxpipe train``."""

from __future__ import annotations

from pathlib import Path

import click

from onnxpipe.models.registry import ZOO


def run_training(model: str, out: Path, config, force: bool = False) -> None:
    """Train with a progress bar and print the result (shared with ``onnxpipe run``)."""
    import math

    from onnxpipe.models.data import load_dataset
    from onnxpipe.models.registry import get_architecture
    from onnxpipe.pipeline.rundir import RunDir
    from onnxpipe.pipeline.stages import train_stage
    from onnxpipe.pipeline.ui import TrainProgress, say

    cfg = config.resolved()
    spec = get_architecture(model).spec
    steps = math.ceil(len(load_dataset(spec.dataset, "train")) / cfg.batch_size) * cfg.epochs
    where = f", DDP in {cfg.nproc} processes" if cfg.nproc > 1 else ""
    say(
        f"train {model} for {cfg.epochs} epochs (seed {cfg.seed}, lr {cfg.lr}, batch {cfg.batch_size}{where}) -> {out}"
    )
    progress = TrainProgress(steps, f"training {model}")
    try:
        ckpt = train_stage(
            RunDir(out), cfg, progress.on_batch, progress.on_epoch, force=force, on_progress=say
        )
    finally:
        progress.close()
    click.echo(
        f"checkpoint: {RunDir(out).checkpoint}  validation accuracy {ckpt.metrics['val_accuracy']:.4f}"
    )


@click.command("train")
@click.option("--model", "model", default="cnn", show_default=True, help=f"Zoo model: {', '.join(ZOO)}.")
@click.option(
    "--out", type=click.Path(path_type=Path), default=None, help="Run directory [default: runs/<model>]."
)
@click.option("--epochs", type=int, default=None, help="Epochs [default: the model's].")
@click.option(
    "--seed", type=int, default=0, show_default=True, help="Seed of initialisation and batch order."
)
@click.option("--lr", type=float, default=None, help="Adam learning rate [default: the model's].")
@click.option("--batch-size", type=int, default=None, help="Batch size [default: the model's].")
@click.option(
    "--nproc",
    type=int,
    default=1,
    show_default=True,
    help="Processes: >1 trains with DDP under torchrun (gloo on CPU, nccl on GPUs); rank 0 writes.",
)
@click.option("--force", is_flag=True, help="Train even when checkpoint.pt is up to date.")
def command(
    model: str,
    out: Path | None,
    epochs: int | None,
    seed: int,
    lr: float | None,
    batch_size: int | None,
    nproc: int,
    force: bool,
):
    """Train a zoo model on its bundled dataset and write OUT/checkpoint.pt.

    With --nproc N, N processes each take 1/N of every global batch (--batch-size stays the
    global batch) and DDP averages their gradients: the result matches one process up to
    summation order (BatchNorm statistics are per process on CPU).

    Examples:
      onnxpipe train --model cnn --out runs/cnn --epochs 20

      onnxpipe train --model mlp --out runs/mlp-ddp --nproc 2
    """
    from onnxpipe.models.training import TrainConfig
    from onnxpipe.pipeline.rundir import RunDir

    out = out or Path("runs") / model
    config = TrainConfig(model=model, epochs=epochs, lr=lr, batch_size=batch_size, seed=seed, nproc=nproc)
    config.resolved()  # a bad name or value fails before the run directory is created
    RunDir(out).claim(force=force)  # never over files onnxpipe did not write
    with RunDir(out).lock(mark=True):
        run_training(model, out, config, force)
