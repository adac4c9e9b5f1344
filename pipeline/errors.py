"""Errors and exit codes of the CLI.

The exception classes live in :mod:`models.errors` (the lowest layer, so every package can raise
them); this module re-exports them and documents the exit codes.

| code | meaning |
|---|---|
| 0 | success, parity passed |
| 1 | parity failed, or a stage (export, conversion) failed |
| 2 | usage error: bad argument, missing or invalid input file, unknown name |
| 3 | environment problem: a required package, environment or device is missing, or the run directory is in use |
| 130 | interrupted (Ctrl-C); finished artifacts are intact, unfinished ones were not written |
"""

from onnxpipe.models.errors import (
    CheckpointError,
    ConversionError,
    EnvironmentProblem,
    ExportError,
    InputFileError,
    OnnxpipeError,
    RunDirBusy,
    UnknownNameError,
    UsageError,
    ValidationInputError,
)

EXIT_OK, EXIT_PARITY_FAILED, EXIT_USAGE, EXIT_ENVIRONMENT, EXIT_INTERRUPTED = 0, 1, 2, 3, 130

__all__ = [
    "EXIT_ENVIRONMENT",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_PARITY_FAILED",
    "EXIT_USAGE",
    "CheckpointError",
    "ConversionError",
    "EnvironmentProblem",
    "ExportError",
    "InputFileError",
    "OnnxpipeError",
    "RunDirBusy",
    "UnknownNameError",
    "UsageError",
    "ValidationInputError",
]
