"""The ``onnxpipe`` command line.

Each command lives in its own module, imported only when it runs, so ``onnxpipe --help`` is instant.
"""

from __future__ import annotations

import importlib
import logging
import signal
import sys
import traceback

import click

from onnxpipe.pipeline.errors import EXIT_INTERRUPTED, OnnxpipeError

__all__ = ["cli", "main"]

#: Command name -> module in ``pipeline.commands`` defining a click command named ``command``.
COMMANDS = {
    "train": "Train a zoo model on its bundled dataset; writes checkpoint.pt.",
    "export": "Export a checkpoint to ONNX (checked against PyTorch before it is kept).",
    "convert": "Convert a checkpoint or ONNX file to TF SavedModel and TFLite.",
    "validate": "Check numerical parity of artifacts against the reference; exit 1 on failure.",
    "run": "Every stage: train, export, convert, validate.",
    "report": "Regenerate parity.md and report.html from parity.json.",
    "status": "Show which stages of a run directory are up to date, and why not.",
    "routes": "List the converter routes: what each makes and needs, and whether it runs here.",
    "bench": "Time every artifact on every runtime: latency, throughput, GFLOP/s, size, accuracy.",
    "doctor": "What onnxpipe can use here (environments, routes, runtimes, CUDA), and the fixes.",
}


class CliError(click.ClickException):
    """An :class:`OnnxpipeError` shown as one line, with its exit code."""

    def __init__(self, error: OnnxpipeError):
        super().__init__(str(error))
        self.exit_code = error.exit_code


class LazyGroup(click.Group):
    """A group whose commands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        return importlib.import_module(f"onnxpipe.pipeline.commands.{cmd_name}").command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with formatter.section("Commands"):
            formatter.write_dl(list(COMMANDS.items()))

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except OnnxpipeError as e:
            if ctx.obj and ctx.obj.get("verbose"):
                traceback.print_exc()
            raise CliError(e) from e
        except KeyboardInterrupt:
            click.echo(
                "interrupted: finished artifacts are intact; the unfinished one was not written", err=True
            )
            sys.exit(EXIT_INTERRUPTED)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "-v", "--verbose", is_flag=True, help="Show debug logs, tracebacks and TensorFlow's start-up lines."
)
@click.version_option(package_name="onnxpipe")
@click.pass_context
def cli(ctx: click.Context, verbose: bool) -> None:
    """onnxpipe: PyTorch -> ONNX -> TensorFlow SavedModel / TFLite, with parity proven at every hop."""
    ctx.ensure_object(dict)
    ctx.obj["verbose"] = verbose
    if not verbose:
        from onnxpipe.pipeline.quiet import filter_stderr

        filter_stderr()
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not verbose:  # the exporter's optimizer warns about folds it skips; the export check says what counts
        for name in ("onnxscript", "onnx_ir"):
            logging.getLogger(name).setLevel(logging.ERROR)


def _terminate(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main() -> None:
    """Console-script entry point. SIGTERM is handled like Ctrl-C: temporary files are removed."""
    signal.signal(signal.SIGTERM, _terminate)
    cli(prog_name="onnxpipe")
