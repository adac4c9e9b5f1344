"""A small convolutional network on 1x8x8 digits: Conv+BatchNorm+ReLU blocks, pooling, Linear."""

from __future__ import annotations

from torch import nn

from onnxpipe.models.registry import Architecture, TrainDefaults
from onnxpipe.models.spec import ModelSpec, TensorSpec

SPEC = ModelSpec(
    name="cnn",
    inputs=(TensorSpec("input", ("batch", 1, 8, 8), layout="NCHW"),),
    outputs=(TensorSpec("logits", ("batch", 10)),),
)


def build(channels: int = 16, num_classes: int = 10) -> nn.Module:
    """Two Conv-BN-ReLU blocks, 2x2 max-pool, flatten, Linear."""
    c = channels
    return nn.Sequential(
        nn.Conv2d(1, c, 3, padding=1, bias=False),
        nn.BatchNorm2d(c),
        nn.ReLU(),
        nn.Conv2d(c, 2 * c, 3, padding=1, bias=False),
        nn.BatchNorm2d(2 * c),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(2 * c * 4 * 4, num_classes),
    )


ARCHITECTURE = Architecture(name="cnn", spec=SPEC, build=build, defaults=TrainDefaults(epochs=20, lr=2e-3))
