"""Where onnxpipe's other Python environments live: the interpreter of each, for the workers it runs.

Each is a folder at the project root (``make setup-legacy``, ``make setup-tfjs``), or the
interpreter an environment variable names. Converters and validation both run workers there (the
legacy environment converts with onnx-tf and also runs TensorFlow 2.15's model analyzer), so the
paths live in the bottom layer.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["LEGACY_PYTHON", "TFJS_PYTHON", "environment_python"]

_ROOT = Path(__file__).resolve().parents[1]


def environment_python(folder: str, variable: str) -> Path:
    """The interpreter of the environment ``folder`` at the project root, or the one ``variable`` names."""
    return Path(os.environ.get(variable) or _ROOT / folder / "bin" / "python")


#: onnx-tf 1.10 on TensorFlow 2.15 (``.venv-legacy``, or ``ONNXPIPE_LEGACY_PYTHON``).
LEGACY_PYTHON = environment_python(".venv-legacy", "ONNXPIPE_LEGACY_PYTHON")
#: The tensorflowjs converter on TensorFlow 2.15 (``.venv-tfjs``, or ``ONNXPIPE_TFJS_PYTHON``).
TFJS_PYTHON = environment_python(".venv-tfjs", "ONNXPIPE_TFJS_PYTHON")
