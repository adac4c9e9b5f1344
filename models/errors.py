"""The project's exception hierarchy.

It lives in the lowest layer (``models``) so that every package can raise it without importing
``pipeline``; :mod:`pipeline.errors` re-exports it and maps each class to a CLI exit code.
Messages say what failed, what was got, what was expected and, where it helps, the fix.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = [
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


class OnnxpipeError(Exception):
    """Base of every error onnxpipe raises on purpose.

    Attributes:
        exit_code: The process exit code the CLI uses for this error.
    """

    exit_code = 1


class UsageError(OnnxpipeError):
    """The user asked for something that cannot be done as asked (exit code 2)."""

    exit_code = 2


class UnknownNameError(UsageError):
    """A name (model, format, precision, runtime, ...) that is not registered."""

    def __init__(self, kind: str, value: str, valid: Iterable[str]):
        self.kind, self.value, self.valid = kind, value, sorted(valid)
        super().__init__(f"unknown {kind} {value!r}; valid: {', '.join(self.valid)}")


class InputFileError(UsageError):
    """A file given to onnxpipe is missing, unreadable or not what it claims to be."""

    def __init__(self, path: object, problem: str):
        self.path, self.problem = path, problem
        super().__init__(f"{path}: {problem}")


class CheckpointError(InputFileError):
    """A checkpoint that cannot be loaded or is not an onnxpipe checkpoint."""


class ValidationInputError(UsageError):
    """Inputs fed to a runtime do not match the model's declared inputs."""


class ExportError(OnnxpipeError):
    """The PyTorch -> ONNX hop failed or produced a file that does not match PyTorch."""


class ConversionError(OnnxpipeError):
    """A converter failed or wrote an artifact that does not check out."""


class EnvironmentProblem(OnnxpipeError):
    """A required package, environment or device is missing (exit code 3)."""

    exit_code = 3


class RunDirBusy(EnvironmentProblem):
    """Another onnxpipe process holds the run directory (exit code 3)."""

    def __init__(self, path: object, problem: str):
        self.path, self.problem = path, problem
        super().__init__(f"{path}: {problem}")
