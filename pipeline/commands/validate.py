"""``onnxpipe validate``."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from onnxpipe.pipeline.commands.options import (
    data_image_size,
    data_options,
    import_user_model,
    is_hf_source,
    named_input_shapes,
    user_data,
    user_model_options,
    with_tokenizer,
)
from onnxpipe.pipeline.errors import EXIT_PARITY_FAILED
from onnxpipe.validation.parity import DEVICES, FAIL_ON
from onnxpipe.validation.runtimes import RUNTIMES


def run_validation(
    reference,
    candidates,
    out: Path,
    options,
    locate_threshold: float | None = None,
    force: bool = False,
    strict_device: bool = False,
) -> bool:
    """Validate, write the reports, print the summary; return whether parity passed.

    Raises:
        EnvironmentProblem: ``strict_device`` and a CUDA row could not run on CUDA (exit code 3).
    """
    from onnxpipe.models.errors import EnvironmentProblem
    from onnxpipe.pipeline.stages import validate_stage
    from onnxpipe.pipeline.ui import echo_parity, say

    report = validate_stage(reference, candidates, out, options, say, locate_threshold, force)
    echo_parity(report, ", ".join(str(out / n) for n in ("parity.json", "parity.md", "report.html")))
    missing = [r for r in report.results if r.device == "cuda" and r.status == "unavailable"]
    if strict_device and missing:
        where = "; ".join(f"{r.artifact} on {r.runtime}: {r.message}" for r in missing)
        raise EnvironmentProblem(f"--strict-device: CUDA was asked for but not attached: {where}")
    return report.passed


def _report_folder(reference: Path, candidates: tuple[Path, ...]) -> Path:
    """Where a report goes without --out.

    Beside the reference, unless that is a run directory and a candidate is not one of its
    artifacts: the run's own report is then left as it is, and the report goes to a folder beside
    the run (``RUN-vs-CANDIDATE``).
    """
    from onnxpipe.pipeline.rundir import RunDir
    from onnxpipe.pipeline.ui import say

    folder = reference.parent
    run = RunDir(folder)
    if not run.manifest_path.is_file():
        return folder
    own = set(run.manifest().artifacts) | {run.checkpoint.name}
    foreign = [c for c in candidates if c.resolve().parent != folder.resolve() or c.name not in own]
    if not foreign:
        return folder
    target = folder.parent / f"{folder.resolve().name}-vs-{foreign[0].stem}"
    say(
        f"{foreign[0]} is not an artifact of the run {folder}: the report goes to {target} "
        "(the run's own report is left as it is)"
    )
    return target


def _trust_run_class(run, class_ref: str, user: dict) -> None:
    """Allow rebuilding the run's imported checkpoint with ``class_ref``, if it is the one it names."""
    from onnxpipe.models.checkpoint import load_checkpoint
    from onnxpipe.models.user import canonical_class_ref, trust

    extra = [k for k, v in user.items() if v and k != "model_class"]
    if extra:
        raise click.UsageError(
            "with RUN_DIR, give only --model-class (its checkpoint already holds the interface and arguments)"
        )
    recorded = load_checkpoint(run.checkpoint).model_class if run.checkpoint.is_file() else None
    if recorded != canonical_class_ref(class_ref):
        raise click.UsageError(
            f"--model-class {class_ref}: {run.checkpoint} was imported from {recorded or 'a zoo model, not a user class'}"
        )
    trust(class_ref)


@click.command("validate")
@click.argument("run_dir", required=False, type=click.Path(path_type=Path))
@click.option(
    "--reference",
    type=click.Path(path_type=Path),
    help="Reference: a checkpoint (PyTorch), a Hugging Face folder (PyTorch) or an ONNX file (ONNX Runtime).",
)
@click.option(
    "--candidate",
    "candidates",
    multiple=True,
    type=click.Path(path_type=Path),
    help="Artifact to check (repeatable): .onnx, SavedModel folder, .tflite.",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=None,
    help="Where the reports go [default: RUN_DIR, or the reference's folder].",
)
@click.option(
    "--runtimes",
    default=None,
    help=f"Comma list of runtimes [default: every one that runs each format]: {', '.join(RUNTIMES)}.",
)
@click.option(
    "--devices",
    default="cpu,cuda",
    show_default=True,
    help="Comma list of devices: cpu, cuda (absent ones are reported unavailable).",
)
@click.option(
    "--fail-on",
    type=click.Choice(FAIL_ON),
    default="any",
    show_default=True,
    help="Which failures make the exit code 1.",
)
@click.option(
    "--samples", type=int, default=None, help="Validation-split samples to feed [default: all (360)]."
)
@click.option(
    "--random", "random_inputs", type=int, default=None, help="Seeded random inputs to add [default: 64]."
)
@click.option(
    "--no-edge", is_flag=True, help="Leave out the edge-case inputs (zeros, range ends, checkerboards)."
)
@click.option("--batch", type=int, default=None, help="Main batch size [default: 32].")
@click.option("--sweep", default=None, help="Further batch sizes, comma list [default: 1,2,7].")
@click.option("--seed", type=int, default=None, help="Seed of the random inputs [default: 0].")
@data_options
@click.option(
    "--labels",
    type=click.Path(path_type=Path),
    default=None,
    help="Class ids of the --inputs samples (.npy, or one integer per line): every artifact's accuracy.",
)
@click.option(
    "--locate",
    is_flag=True,
    help="Layer-wise search: the first ONNX op whose error jumps in each failing .tflite.",
)
@click.option(
    "--locate-threshold",
    type=float,
    default=1e-3,
    show_default=True,
    help="Relative error that counts as a jump (raise it for int8).",
)
@click.option("--force", is_flag=True, help="Validate even when the reports are up to date.")
@click.option(
    "--in-process",
    is_flag=True,
    help="Run the runtimes in this process, not in a host process: one that crashes in native code "
    "then ends the run without a report.",
)
@click.option("--strict-device", is_flag=True, help="Exit 3 when a runtime asked to run on CUDA could not.")
@user_model_options
def command(
    run_dir: Path | None,
    reference: Path | None,
    candidates: tuple[Path, ...],
    out: Path | None,
    runtimes: str | None,
    devices: str,
    fail_on: str,
    samples: int | None,
    random_inputs: int | None,
    no_edge: bool,
    batch: int | None,
    sweep: str | None,
    seed: int | None,
    user_inputs: Path | None,
    mean: str | None,
    std: str | None,
    labels: Path | None,
    locate: bool,
    locate_threshold: float,
    force: bool,
    in_process: bool,
    strict_device: bool,
    **user: object,
) -> None:
    """Check that every artifact computes what the reference computes. Exit code 1 on failure.

    Either RUN_DIR (reference: its checkpoint; candidates: every artifact it records), or
    --reference with one or more --candidate. Writes parity.json, parity.md and report.html.

    Examples:
      onnxpipe validate runs/cnn

      onnxpipe validate runs/cnn --runtimes onnxruntime,ai-edge-litert --devices cpu --fail-on fp32

      onnxpipe validate --reference runs/cnn/model.onnx --candidate runs/cnn/model_fp16.tflite

      onnxpipe validate runs/cnn --locate

      onnxpipe validate runs/net --model-class net.py:Net --inputs my_samples.npz

      onnxpipe validate runs/net --model-class net.py:Net

      onnxpipe validate --reference weights.pt --model-class net.py:Net --input-shape 1,3,32,32 --candidate m.tflite

      onnxpipe validate --reference path/to/bert_dir --seq-len 32 --candidate runs/bert/model_fp32.tflite

    A run directory made from your model class (convert/export --model-class) needs --model-class
    again: onnxpipe imports code only when told to. With --reference, --model-class imports your
    weights as OUT/checkpoint.pt first; so is a Hugging Face save_pretrained folder given as
    --reference (OUT defaults to runs/FOLDER_NAME).
    """
    import dataclasses

    from onnxpipe.pipeline.artifacts import resolve_artifact
    from onnxpipe.pipeline.commands.options import csv_choice
    from onnxpipe.pipeline.rundir import RunDir
    from onnxpipe.pipeline.sizing import sized_reference
    from onnxpipe.pipeline.stages import run_dir_artifacts
    from onnxpipe.validation.inputs import InputConfig, check_inputs
    from onnxpipe.validation.parity import ValidateOptions

    if run_dir and (reference or candidates):
        raise click.UsageError("give either RUN_DIR or --reference/--candidate, not both")
    shapes = named_input_shapes(reference, user)
    values = {"samples": samples, "random": random_inputs, "batch": batch, "seed": seed}
    hf = not run_dir and is_hf_source(reference)
    image_size = None if hf else data_image_size(user, user_inputs)
    values["user"] = user_data(user_inputs, mean, std, image_size=image_size)
    if labels is not None:
        values["labels"] = str(labels.resolve())
    if no_edge:
        values["edge"] = False
    if sweep is not None:
        try:
            values["sweep"] = tuple(int(s) for s in sweep.split(",") if s.strip())
        except ValueError:
            raise click.UsageError(f"--sweep: got {sweep!r}, expected comma-separated integers") from None
    inputs = dataclasses.replace(InputConfig(), **{k: v for k, v in values.items() if v is not None})
    options = ValidateOptions(
        inputs=inputs,
        runtimes=csv_choice(runtimes, tuple(RUNTIMES), "runtime") if runtimes else None,
        devices=csv_choice(devices, DEVICES, "device"),
        fail_on=fail_on,
        isolate=not in_process,
    )
    class_ref = user["model_class"]
    if class_ref is None:
        import_user_model(reference if hf else None, None, dict(user))  # refuses stray options
    if run_dir:
        if class_ref is not None:
            _trust_run_class(RunDir(run_dir), str(class_ref), user)
        ref, cands = run_dir_artifacts(RunDir(run_dir))
        out = out or run_dir
    elif reference and candidates:
        out = out or (
            Path("runs") / reference.resolve().name if hf else _report_folder(reference, candidates)
        )
    else:
        raise click.UsageError("give RUN_DIR, or --reference and at least one --candidate")
    RunDir(out).claim(reading=[p for p in (reference, *candidates) if p], force=force)
    with RunDir(out).lock(mark=True):
        if not run_dir:
            if class_ref is not None or hf:
                reference = import_user_model(reference, out, dict(user))
            ref = sized_reference(resolve_artifact(reference), shapes, inputs.user)  # free sizes resolved
            cands = [resolve_artifact(c, ref.spec) for c in candidates]
        inputs = dataclasses.replace(inputs, user=with_tokenizer(inputs.user, ref.path.parent))
        options = dataclasses.replace(options, inputs=inputs)
        check_inputs(ref.spec, inputs)  # refused, naming each mismatch, before any runtime loads
        passed = run_validation(
            ref, cands, out, options, locate_threshold if locate else None, force, strict_device
        )
    if not passed:
        sys.exit(EXIT_PARITY_FAILED)
