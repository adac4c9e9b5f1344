"""``onnxpipe export``."""

from __future__ import annotations

from pathlib import Path

import click

from onnxpipe.converters.torch_to_onnx import EXPORTERS
from onnxpipe.pipeline.commands.options import import_user_model, is_hf_source, user_model_options


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
@user_model_options
def command(
    source: Path, opset: int | None, exporter: str, out: Path | None, force: bool, **user: object
) -> None:
    """Export SOURCE (a run directory, a checkpoint or a Hugging Face folder) to ONNX.

    The file is kept only if onnx.checker, shape inference and an ONNX Runtime vs PyTorch check pass.
    With --model-class, SOURCE is your model's state dict (.pt or .safetensors): it is imported as
    checkpoint.pt beside the ONNX file first. Into a folder that is not an onnxpipe run directory
    (and not empty), only the ONNX file is written: nothing of yours beside it is touched.

    Examples:
      onnxpipe export runs/cnn --opset 18

      onnxpipe export weights.safetensors --model-class net.py:Net --input-shape 1,3,32,32 --out runs/net/model.onnx

      onnxpipe export path/to/vit_dir --out runs/vit/model.onnx
    """
    from onnxpipe.converters.torch_to_onnx import ExportOptions
    from onnxpipe.pipeline.rundir import RunDir
    from onnxpipe.pipeline.stages import export_stage, resolve_checkpoint
    from onnxpipe.pipeline.ui import say

    hf = is_hf_source(source)
    if hf:
        import_user_model(source, None, dict(user))  # refuses options that do not apply
        dest = out or Path("runs") / source.resolve().name / "model.onnx"
    elif user["model_class"] is not None:
        if source.is_dir():
            raise click.UsageError("--model-class: SOURCE must be your weights file (.pt or .safetensors)")
        dest = out or source.parent / "model.onnx"
    else:
        import_user_model(source, None, dict(user))  # refuses stray user-model options
        ckpt = resolve_checkpoint(source)
        dest = out or ckpt.parent / "model.onnx"
    options = ExportOptions(opset=opset, exporter=exporter)
    folder = dest.parent
    if folder.is_dir() and any(folder.iterdir()) and not RunDir(folder).is_run_dir():
        # A folder of the user's: FILE is written there and nothing beside it (the checkpoint an
        # import makes and the manifest stay in a temporary run directory).
        import shutil
        import tempfile

        from onnxpipe.models.fs import atomic_path

        with tempfile.TemporaryDirectory(prefix="onnxpipe-export-") as tmp, RunDir(Path(tmp)).lock():
            if user["model_class"] is not None or hf:
                ckpt = import_user_model(source, Path(tmp), dict(user))
            say(
                f"export {ckpt} -> {dest} ({folder} is not an onnxpipe run directory: only {dest.name} is written there)"
            )
            art = export_stage(ckpt, Path(tmp) / dest.name, options, True, say)
            with atomic_path(dest) as tmp_dest:
                shutil.move(art.path, tmp_dest)
    else:
        with RunDir(folder).lock():
            if user["model_class"] is not None or hf:
                ckpt = import_user_model(source, folder, dict(user))
            say(f"export {ckpt} -> {dest}")
            art = export_stage(ckpt, dest, options, force, say)
    worst = max(art.extra["ort_vs_torch_max_abs"].values())
    click.echo(f"onnx: {dest}  (opset {art.extra['opset']}, ONNX Runtime vs PyTorch max abs {worst:.2e})")
