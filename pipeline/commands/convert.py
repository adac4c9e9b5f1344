"""``onnxpipe convert``."""

from __future__ import annotations

from pathlib import Path

import click

from converters.onnx_to_saved_model import PRECISIONS
from pipeline.commands.options import csv_choice

TARGETS = ("saved_model", "tflite")
BACKENDS = ("onnx2tf",)


def run_conversion(
    source: Path,
    out: Path,
    to: tuple[str, ...],
    precisions: tuple[str, ...],
    export_options,
    force: bool = False,
) -> list:
    """Convert and print one line per artifact (shared with ``onnxpipe run``)."""
    from converters.onnx_to_saved_model import TFConvertOptions
    from pipeline.stages import convert_stage
    from pipeline.ui import say

    options = TFConvertOptions(
        saved_model="saved_model" in to, precisions=precisions if "tflite" in to else ()
    )
    artifacts = convert_stage(source, out, options, export_options, on_progress=say, force=force)
    for a in artifacts:
        layout = ", ".join(f"{b.name}: {b.layout or 'as reference'}" for b in a.inputs)
        click.echo(f"{a.format}: {a.path}  ({a.precision}; inputs {layout})")
    return artifacts


@click.command("convert")
@click.argument("source", type=click.Path(path_type=Path))
@click.option(
    "--to", "to", default="saved_model,tflite", show_default=True, help="Comma list of: saved_model, tflite."
)
@click.option(
    "--precision",
    default="fp32,fp16",
    show_default=True,
    help=f"TFLite precisions: {', '.join(PRECISIONS)}.",
)
@click.option(
    "--out", type=click.Path(path_type=Path), default=None, help="Output folder [default: SOURCE's folder]."
)
@click.option("--opset", type=int, default=None, help="Opset when SOURCE is a checkpoint [default: 18].")
@click.option(
    "--backend", type=click.Choice(BACKENDS), default="onnx2tf", show_default=True, help="Converter backend."
)
@click.option("--force", is_flag=True, help="Convert even when the artifacts are up to date.")
def command(
    source: Path, to: str, precision: str, out: Path | None, opset: int | None, backend: str, force: bool
) -> None:
    """Convert SOURCE (a checkpoint, or an ONNX file) to a TF SavedModel and TFLite files.

    A checkpoint is exported to ONNX on the way. The backend is onnx2tf, run on a private copy of the
    ONNX file. Each artifact records its layout (onnx2tf turns NCHW inputs into NHWC).

    Example: onnxpipe convert runs/cnn/checkpoint.pt --to saved_model,tflite --precision fp32,fp16
    """
    from converters.torch_to_onnx import ExportOptions
    from pipeline.rundir import RunDir
    from pipeline.stages import resolve_checkpoint

    targets = csv_choice(to, TARGETS, "target")
    precisions = csv_choice(precision, tuple(PRECISIONS), "precision")
    if not targets:
        raise click.UsageError("--to: give at least one of saved_model, tflite")
    if source.is_dir():
        source = resolve_checkpoint(source)
    out = out or source.parent
    with RunDir(out).lock():
        run_conversion(source, out, targets, precisions, ExportOptions(opset=opset), force)
