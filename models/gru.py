"""A GRU reading the digits row by row (8 steps of 8 pixels); see :mod:`models.recurrent`."""

from __future__ import annotations

from onnxpipe.models.recurrent import RecurrentClassifier, spec
from onnxpipe.models.registry import Architecture, TrainDefaults

SPEC = spec("gru")


def build(hidden: int = 64, num_classes: int = 10, unrolled: bool = True) -> RecurrentClassifier:
    """``nn.GRU`` (or the same cell unrolled over the 8 steps) and a Linear head."""
    return RecurrentClassifier("gru", hidden, num_classes, unrolled)


ARCHITECTURE = Architecture(name="gru", spec=SPEC, build=build, defaults=TrainDefaults(epochs=30, lr=5e-3))
