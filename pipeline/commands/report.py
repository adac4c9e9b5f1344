"""``onnxpipe report``: regenerate the human-readable reports from ``parity.json``."""

from __future__ import annotations

import json
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
    from onnxpipe.validation.report import write_reports

    path = run_dir / "parity.json"
    if not path.is_file():
        raise InputFileError(path, "no such file (run `onnxpipe validate` first)")
    try:
        data = json.loads(path.read_text())
        if not isinstance(data, dict) or "results" not in data or "reference" not in data:
            raise ValueError("expected keys 'reference' and 'results'")
        with RunDir(run_dir).lock():
            write_reports(data, run_dir)
    except (ValueError, KeyError, TypeError) as e:
        raise InputFileError(path, f"not an onnxpipe parity report ({type(e).__name__}: {e})") from e
    click.echo(f"wrote {run_dir / 'parity.md'} and {run_dir / 'report.html'}")
