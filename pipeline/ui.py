"""Terminal output shared by the commands: progress lines, the training bar, the parity summary."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from onnxpipe.validation.parity import ParityReport

__all__ = ["TrainProgress", "echo_parity", "say"]


def say(message: str) -> None:
    """A progress line on stderr (stdout stays clean for results)."""
    click.echo(click.style("» ", fg="cyan") + message, err=True)


class TrainProgress:
    """A progress bar over every training step, with a line per epoch."""

    def __init__(self, total_steps: int, label: str):
        self._total, self._label = total_steps, label
        self._bar: Any = None

    def on_batch(self, epoch: int, step: int, loss: float) -> None:
        """Advance one step (the bar appears with the first step, so a skipped stage shows none)."""
        if self._bar is None:
            self._bar = click.progressbar(
                length=self._total, label=self._label, file=click.get_text_stream("stderr")
            )
            self._bar.__enter__()
        self._bar.update(1)

    def on_epoch(self, result: Any) -> None:
        """Print the epoch's loss and validation accuracy."""
        if self._bar is not None:
            self._bar.render_finish()
        click.echo(
            f"epoch {result.epoch:3d}  loss {result.loss:.4f}  val loss {result.val_loss:.4f}  "
            f"val accuracy {result.val_accuracy:.4f}",
            err=True,
        )

    def close(self) -> None:
        """Finish the bar."""
        if self._bar is not None:
            self._bar.__exit__(None, None, None)


def echo_parity(report: ParityReport, where: str, echo: Callable[[str], None] = click.echo) -> None:
    """A one-screen summary of a parity report: a line per result, the verdict."""
    results = report.results
    width = max([len(r.artifact) for r in results] + [8])
    echo(f"reference: {report.reference.artifact} on {report.reference.runtime}")
    for r in results:
        colour = {"pass": "green", "fail": "red", "error": "red"}.get(r.status, "yellow")
        status = click.style(f"{r.status:<11}", fg=colour)
        m = r.metrics
        numbers = (
            f"max abs {m.max_abs:.2e}  cosine {m.cosine:.6f}"
            + (f"  non-finite {m.nonfinite}" if m.nonfinite else "")
            if m
            else (r.message or "")
        )
        echo(f"  {r.artifact:<{width}}  {r.runtime:<18} {r.device:<4} {r.precision:<7} {status} {numbers}")
        if m and r.message:
            echo(f"  {'':<{width}}  {r.message}")
        if r.blame:
            echo(f"  {'':<{width}}  blamed hop: {r.blame}")
    for name, e in (report.edge_readiness or {}).items():
        state = "edge-ready" if e.ready else "NOT edge-ready: " + "; ".join(e.problems)
        gpu = f"; {e.gpu_delegate.verdict}" if e.gpu_delegate else ""
        echo(f"edge {name}: {state}{gpu}")
    for note in report.notices():
        echo(f"note: {note}")
    for found in report.locate or []:
        echo(f"locate {found.candidate}: {found.summary()}")
    if report.first_failing_hop:
        echo(f"first failing hop: {report.first_failing_hop}")
    verdict = click.style("PASSED", fg="green") if report.passed else click.style("FAILED", fg="red")
    echo(f"parity {verdict} (fail on {report.fail_on}): {where}")
