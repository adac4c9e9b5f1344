"""``onnxpipe validate``."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from pipeline.errors import EXIT_PARITY_FAILED


def run_validation(reference, candidates, out: Path, input_config) -> bool:
    """Validate, write the reports, print the summary; return whether parity passed."""
    from pipeline.stages import validate_stage
    from pipeline.ui import echo_parity, say

    report = validate_stage(reference, candidates, out, input_config, on_progress=say)
    echo_parity(report, f"{out / 'parity.json'}, {out / 'parity.md'}")
    return report.passed


@click.command("validate")
@click.argument("run_dir", required=False, type=click.Path(path_type=Path))
@click.option(
    "--reference",
    type=click.Path(path_type=Path),
    help="Reference: a checkpoint (PyTorch) or an ONNX file (ONNX Runtime).",
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
    help="Where parity.json/.md go [default: RUN_DIR, or the reference's folder].",
)
@click.option(
    "--samples", type=int, default=None, help="Validation-split samples to feed [default: all (360)]."
)
@click.option(
    "--random", "random_inputs", type=int, default=None, help="Seeded random inputs to add [default: 64]."
)
@click.option("--batch", type=int, default=None, help="Batch size > 1 to run at [default: 32].")
@click.option("--seed", type=int, default=None, help="Seed of the random inputs [default: 0].")
def command(
    run_dir: Path | None,
    reference: Path | None,
    candidates: tuple[Path, ...],
    out: Path | None,
    samples: int | None,
    random_inputs: int | None,
    batch: int | None,
    seed: int | None,
) -> None:
    """Check that every artifact computes what the reference computes. Exit code 1 on failure.

    Either RUN_DIR (reference: its checkpoint; candidates: every artifact it records), or
    --reference with one or more --candidate.

    Examples:
      onnxpipe validate runs/cnn

      onnxpipe validate --reference runs/cnn/model.onnx --candidate runs/cnn/model_fp16.tflite
    """
    import dataclasses

    from pipeline.artifacts import resolve_artifact
    from pipeline.rundir import RunDir
    from pipeline.stages import run_dir_artifacts
    from validation.inputs import InputConfig

    if run_dir and (reference or candidates):
        raise click.UsageError("give either RUN_DIR or --reference/--candidate, not both")
    if run_dir:
        ref, cands = run_dir_artifacts(RunDir(run_dir))
        out = out or run_dir
    elif reference and candidates:
        ref = resolve_artifact(reference)
        cands = [resolve_artifact(c, ref.spec) for c in candidates]
        out = out or reference.parent
    else:
        raise click.UsageError("give RUN_DIR, or --reference and at least one --candidate")
    values = {"samples": samples, "random": random_inputs, "batch": batch, "seed": seed}
    config = dataclasses.replace(InputConfig(), **{k: v for k, v in values.items() if v is not None})
    for name in ("samples", "random"):
        if getattr(config, name) < 0:
            raise click.UsageError(f"--{name}: got {getattr(config, name)}, expected >= 0")
    if config.batch < 1:
        raise click.UsageError(f"--batch: got {config.batch}, expected >= 1")
    if not run_validation(ref, cands, out, config):
        sys.exit(EXIT_PARITY_FAILED)
