"""``onnxpipe report``: regenerate the human-readable reports from ``parity.json``."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("report")
@click.argument("run_dir", type=click.Path(path_type=Path))
def command(run_dir: Path) -> None:
    """Rewrite RUN_DIR/parity.md and RUN_DIR/report.html from RUN_DIR/parity.json.

    Example: onnxpipe report runs/cnn
    """
    from onnxpipe.models.errors import InputFileError
    from onnxpipe.pipeline.rundir import RunDir
    from onnxpipe.validation.parity import ParityReport
    from onnxpipe.validation.report import write_reports

    path = run_dir / "parity.json"
    if not path.is_file():
        raise InputFileError(path, "no such file (run `onnxpipe validate` first)")
    report = ParityReport.read(path)  # a clear error for a file that is not a parity report
    with RunDir(run_dir).lock():
        write_reports(report, run_dir)
    click.echo(f"wrote {run_dir / 'parity.md'} and {run_dir / 'report.html'}")
