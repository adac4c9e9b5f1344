"""The model zoo: architecture name -> module, imported only when asked for."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from models.errors import UnknownNameError
from models.spec import ModelSpec

__all__ = ["ARCHITECTURES", "Architecture", "TrainDefaults", "get_architecture"]

#: Name -> module defining ``ARCHITECTURE``. One architecture per file.
ARCHITECTURES: dict[str, str] = {
    "mlp": "models.mlp",
    "cnn": "models.cnn",
    "mobilenet": "models.mobilenet",
    "transformer": "models.transformer",
    "gru": "models.gru",
    "lstm": "models.lstm",
}


@dataclass(frozen=True)
class TrainDefaults:
    """Training hyper-parameters that reach the documented accuracy for this architecture."""

    epochs: int = 20
    lr: float = 1e-3
    batch_size: int = 64


@dataclass(frozen=True)
class Architecture:
    """A registered architecture: its interface, its constructor and its training defaults."""

    name: str
    spec: ModelSpec
    build: Callable[..., Any]
    defaults: TrainDefaults = TrainDefaults()


def get_architecture(name: str) -> Architecture:
    """The registered architecture called ``name``.

    Raises:
        UnknownNameError: ``name`` is not registered; the message lists the valid names.
    """
    if name not in ARCHITECTURES:
        raise UnknownNameError("model", name, ARCHITECTURES)
    return importlib.import_module(ARCHITECTURES[name]).ARCHITECTURE
