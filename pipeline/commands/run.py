"""``onnxpipe run``: every stage in order."""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from pathlib import Path

import click

from onnxpipe.converters.route import DEFAULT_BACKEND, ROUTES
from onnxpipe.models.registry import ZOO
from onnxpipe.pipeline.commands.options import (
    RegistryChoice,
    data_image_size,
    data_options,
    hf_model_options,
    import_user_model,
    is_hf_source,
    user_data,
    with_tokenizer,
)
from onnxpipe.pipeline.errors import EXIT_PARITY_FAILED
from onnxpipe.validation.parity import FAIL_ON


@click.command("run")
@click.option(
    "--model",
    default="cnn",
    show_default=True,
    help=f"Zoo model ({', '.join(ZOO)}), or a Hugging Face save_pretrained folder (imported, not trained).",
)
@click.option(
    "--out", type=click.Path(path_type=Path), default=None, help="Run directory [default: runs/<model>]."
)
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path),
    default=None,
    help="TOML config (sections train, export, convert, validate).",
)
@click.option("--epochs", type=int, default=None, help="Override train.epochs.")
@click.option("--seed", type=int, default=None, help="Override train.seed.")
@click.option("--precision", default=None, help="Override convert.precisions (comma list; tfjs also uint8).")
@click.option(
    "--to",
    "to",
    default="saved_model,tflite",
    show_default=True,
    help="Comma list of: saved_model, tflite, tfjs (TensorFlow.js: make setup-tfjs).",
)
@click.option("--fail-on", type=click.Choice(FAIL_ON), default=None, help="Override validate.fail_on.")
@click.option(
    "--backend",
    type=RegistryChoice(ROUTES, extra=("auto",)),
    default=DEFAULT_BACKEND,
    show_default=True,
    help="auto: the routes in order until every artifact passed validation; or one route (`onnxpipe routes`).",
)
@data_options
@click.option("--force", is_flag=True, help="Rerun every stage, even those that are up to date.")
@hf_model_options
def command(
    model: str,
    out: Path | None,
    config_path: Path | None,
    epochs: int | None,
    seed: int | None,
    precision: str | None,
    to: str,
    fail_on: str | None,
    backend: str,
    user_inputs: Path | None,
    mean: str | None,
    std: str | None,
    force: bool,
    **hf: object,
) -> None:
    """Train MODEL, export it to ONNX, convert it (SavedModel, TFLite, tfjs), validate every artifact.

    Writes the resolved configuration to OUT/config.json. Exit code 1 when parity fails.

    Examples:
      onnxpipe run --model cnn --out runs/cnn

      onnxpipe run --model path/to/bert_dir --seq-len 32

      onnxpipe run --model cnn --precision fp32,int8 --inputs my_digits.npz

      onnxpipe run --model cnn --to saved_model,tflite,tfjs --precision fp32,fp16,uint8

    A Hugging Face folder as --model is imported (offline, as `onnxpipe convert FOLDER` does) in
    place of training; OUT defaults to runs/FOLDER_NAME.
    """
    from onnxpipe.converters.onnx_to_saved_model import PRECISIONS
    from onnxpipe.models.fs import write_json
    from onnxpipe.pipeline.commands.convert import (
        ALL_PRECISIONS,
        parse_targets,
        run_conversion,
        split_precisions,
    )
    from onnxpipe.pipeline.commands.options import csv_choice
    from onnxpipe.pipeline.commands.train import run_training
    from onnxpipe.pipeline.commands.validate import run_validation
    from onnxpipe.pipeline.config import load_config
    from onnxpipe.pipeline.rundir import RunDir
    from onnxpipe.pipeline.stages import run_dir_artifacts

    folder = is_hf_source(model)
    data = user_data(user_inputs, mean, std, image_size=None if folder else data_image_size(hf, user_inputs))
    if folder:
        stray = [flag for flag, v in (("--epochs", epochs), ("--seed", seed)) if v is not None]
        if stray:
            raise click.UsageError(f"{', '.join(stray)}: a Hugging Face folder is imported, not trained")
        cfg = load_config(config_path)
    else:
        import_user_model(None, None, {"model_class": None, **hf})  # refuses the folder-only options
        cfg = load_config(config_path).override("train", model=model, epochs=epochs, seed=seed)
    cfg = cfg.override("validate", fail_on=fail_on)
    if data is not None:  # validated on first, and int8 calibrated on them
        cfg = cfg.override("validate", inputs=dataclasses.replace(cfg.validate.inputs, user=data))
    targets = parse_targets(to)
    asked = csv_choice(precision, ALL_PRECISIONS, "precision") if precision is not None else None
    if asked is not None:
        cfg = cfg.override("convert", precisions=tuple(p for p in asked if p in PRECISIONS))
    precisions = asked if asked is not None else tuple(cfg.convert.precisions)
    split_precisions(targets, precisions)  # a precision no target makes is refused before training
    if not folder:
        cfg.train.resolved()  # a bad name or value fails before the run directory is created
        if cfg.validate.inputs.user is not None:  # and so do samples that do not fit the model
            from onnxpipe.models.registry import get_architecture
            from onnxpipe.validation.inputs import check_inputs

            check_inputs(get_architecture(cfg.train.model).spec, cfg.validate.inputs)
    out = out or Path("runs") / (Path(model).resolve().name if folder else model)
    run = RunDir(out)
    timings = {}
    run.claim(force=force)  # never over files onnxpipe did not write
    with run.lock(mark=True):
        resolved = json.loads(json.dumps(cfg.to_dict()))
        if folder:  # imported, not trained: no train section to mislead
            del resolved["train"]
            resolved["import"] = {"hf_folder": str(Path(model).resolve())}
        write_json(run.path / "config.json", resolved)
        t0 = time.perf_counter()
        if folder:
            import_user_model(model, out, {"model_class": None, **hf})
            timings["import"] = time.perf_counter() - t0
        else:
            run_training(model, out, cfg.train, force)
            timings["train"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        run_conversion(
            run.checkpoint,
            out,
            targets,
            precisions,
            cfg.export,
            force,
            backend,
            inputs=with_tokenizer(cfg.validate.inputs.user, out),
            calibration=with_tokenizer(cfg.convert.calibration, out),
        )
        timings["export+convert"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        ref, cands = run_dir_artifacts(run)
        inputs = dataclasses.replace(cfg.validate.inputs, user=with_tokenizer(cfg.validate.inputs.user, out))
        passed = run_validation(
            ref, cands, out, dataclasses.replace(cfg.validate, inputs=inputs), force=force
        )
        timings["validate"] = time.perf_counter() - t0
    total = sum(timings.values())
    click.echo(
        "stage times: " + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items()) + f" (total {total:.1f} s)"
    )
    if not passed:
        sys.exit(EXIT_PARITY_FAILED)
