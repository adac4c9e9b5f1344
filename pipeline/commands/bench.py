"""``onnxpipe bench``."""

from __future__ import annotations

from pathlib import Path

import click

from onnxpipe.pipeline.commands.options import data_options
from onnxpipe.validation.parity import DEVICES
from onnxpipe.validation.runtimes import RUNTIMES


@click.command("bench")
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option(
    "--threads", type=int, default=1, show_default=True, help="Threads per runtime (the same for all)."
)
@click.option("--warmup", type=int, default=10, show_default=True, help="Untimed calls first.")
@click.option("--iters", type=int, default=100, show_default=True, help="Timed calls.")
@click.option("--batch", type=int, default=1, show_default=True, help="Batch size of each call.")
@click.option("--devices", default="cpu", show_default=True, help="Comma list of: cpu, cuda.")
@click.option(
    "--runtimes",
    default=None,
    help=f"Comma list [default: every runtime of each format]: {', '.join(RUNTIMES)}.",
)
@data_options
def command(
    run_dir: Path,
    threads: int,
    warmup: int,
    iters: int,
    batch: int,
    devices: str,
    runtimes: str | None,
    user_inputs: Path | None,
    mean: str | None,
    std: str | None,
) -> None:
    """Time every artifact of RUN_DIR on every runtime: latency, throughput, GFLOP/s, size, accuracy.

    Writes RUN_DIR/bench.json and RUN_DIR/bench.md. Each call is fed the first --batch samples of
    --inputs when given, else of the model's validation split, else seeded random rows.

    Examples:
      onnxpipe bench runs/cnn --threads 1 --iters 200 --batch 1

      onnxpipe bench runs/net --inputs samples.npz --batch 8
    """
    from onnxpipe.models.fs import atomic_path, write_json
    from onnxpipe.pipeline.commands.options import csv_choice, user_data, with_tokenizer
    from onnxpipe.pipeline.rundir import RunDir
    from onnxpipe.pipeline.stages import run_dir_artifacts
    from onnxpipe.pipeline.ui import say
    from onnxpipe.validation.bench import BenchOptions, bench, render_bench_markdown
    from onnxpipe.validation.macs import count_macs

    options = BenchOptions(
        threads=threads,
        warmup=warmup,
        iters=iters,
        batch=batch,
        devices=csv_choice(devices, DEVICES, "device"),
        runtimes=csv_choice(runtimes, tuple(RUNTIMES), "runtime") if runtimes else None,
        inputs=with_tokenizer(user_data(user_inputs, mean, std), run_dir),
    )
    run = RunDir(run_dir)
    reference, candidates = run_dir_artifacts(run)
    onnx = next((a for a in (reference, *candidates) if a.format == "onnx"), None)
    macs = count_macs(onnx.path) if onnx else None
    with run.lock():
        doc = bench([reference, *candidates], macs, options, on_progress=say)
        write_json(run.path / "bench.json", doc)
        text = render_bench_markdown(doc)
        with atomic_path(run.path / "bench.md") as tmp:
            tmp.write_text(text)
    click.echo(text)
