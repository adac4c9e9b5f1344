"""A multilayer perceptron on flattened 8x8 digits."""

from __future__ import annotations

from torch import nn

from onnxpipe.models.registry import Architecture, TrainDefaults
from onnxpipe.models.spec import ModelSpec, TensorSpec

SPEC = ModelSpec(
    name="mlp",
    inputs=(TensorSpec("input", ("batch", 64)),),
    outputs=(TensorSpec("logits", ("batch", 10)),),
)


def build(hidden: int = 128, num_classes: int = 10) -> nn.Module:
    """Linear-ReLU-Linear-ReLU-Linear."""
    return nn.Sequential(
        nn.Linear(64, hidden),
        nn.ReLU(),
        nn.Linear(hidden, hidden // 2),
        nn.ReLU(),
        nn.Linear(hidden // 2, num_classes),
    )


ARCHITECTURE = Architecture(name="mlp", spec=SPEC, build=build, defaults=TrainDefaults(epochs=30, lr=2e-3))
