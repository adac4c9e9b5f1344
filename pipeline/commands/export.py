"""``onnxpipe export``."""

from __future__ import annotations

from pathlib import Path

import click

from converters.torch_to_onnx import EXPORTERS


@click.command("export")
@click.argument("source", type=click.Path(path_type=Path))
@click.option("--opset", type=int, default=None, help="ONNX opset [default: the model's, 18].")
@click.option("--exporter", type=click.Choice(EXPORTERS), default="dynamo", show_default=True)
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=None,
    help="Output file [default: next to the checkpoint, model.onnx].",
)
@click.option("--force", is_flag=True, help="Export even when model.onnx is up to date.")
def command(source: Path, opset: int | None, exporter: str, out: Path | None, force: bool) -> None:
    """Export SOURCE (a run directory or a checkpoint) to ONNX.

    The file is kept only if onnx.checker, shape inference and an ONNX Runtime vs PyTorch check pass.

    Example: onnxpipe export runs/cnn --opset 18
    """
    from converters.torch_to_onnx import ExportOptions
    from pipeline.rundir import RunDir
    from pipeline.stages import export_stage, resolve_checkpoint
    from pipeline.ui import say

    ckpt = resolve_checkpoint(source)
    dest = out or ckpt.parent / "model.onnx"
    options = ExportOptions(opset=opset, exporter=exporter)
    say(f"export {ckpt} -> {dest}")
    with RunDir(dest.parent).lock():
        art = export_stage(ckpt, dest, options, force, say)
    worst = max(art.extra["ort_vs_torch_max_abs"].values())
    click.echo(f"onnx: {dest}  (opset {art.extra['opset']}, ONNX Runtime vs PyTorch max abs {worst:.2e})")
