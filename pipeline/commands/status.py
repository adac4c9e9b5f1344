"""``onnxpipe status``: which stages of a run directory are up to date."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("status")
@click.argument("run_dir", type=click.Path(path_type=Path))
def command(run_dir: Path) -> None:
    """Show, per stage, whether RUN_DIR's outputs are up to date and, if not, why.

    A stage is up to date when its inputs, tool versions and outputs hash as the manifest recorded
    (`onnxpipe run` then skips it). Exit code 1 when a stage that ran is stale.

    Example: onnxpipe status runs/cnn
    """
    import sys

    from onnxpipe.models.errors import InputFileError
    from onnxpipe.pipeline.rundir import STAGES, RunDir

    run = RunDir(run_dir)
    if not run.path.is_dir():
        raise InputFileError(run.path, "no such run directory")
    stages = run.manifest().stages
    stale = False
    for stage in [*STAGES, *sorted(s for s in stages if s not in STAGES)]:
        if stage not in stages:
            click.echo(f"{stage:<9} not run")
            continue
        reason = run.stale_reason(stage)
        finished = stages[stage].finished
        if reason is None:
            click.echo(
                f"{stage:<9} {click.style('up to date', fg='green')}  (finished {finished}, {stages[stage].seconds} s)"
            )
        else:
            stale = True
            click.echo(f"{stage:<9} {click.style('stale', fg='red')}: {reason}")
    if stale:
        sys.exit(1)
