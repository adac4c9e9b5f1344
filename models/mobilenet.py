"""A MobileNetV2-style network: depthwise-separable convolutions in inverted residual blocks.

Input 3x96x96: the bundled digits upsampled (nearest) and repeated over three channels, so it
trains on real data; big enough (~25 M MACs per image) for latency figures to mean something.
"""

from __future__ import annotations

from torch import nn

from onnxpipe.models.registry import Architecture, TrainDefaults
from onnxpipe.models.spec import ModelSpec, TensorSpec

SPEC = ModelSpec(
    name="mobilenet",
    inputs=(TensorSpec("input", ("batch", 3, 96, 96), layout="NCHW"),),
    outputs=(TensorSpec("logits", ("batch", 10)),),
    dataset="digits-rgb96",
)

#: (expansion, output channels, repeats, first stride), as in MobileNetV2, trimmed for 96x96 inputs.
BLOCKS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 2, 2), (6, 96, 1, 1))


def _conv_bn(
    cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1, act: bool = True
) -> list[nn.Module]:
    layers: list[nn.Module] = [
        nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
    ]
    return [*layers, nn.ReLU6()] if act else layers


class InvertedResidual(nn.Module):
    """1x1 expansion, 3x3 depthwise, 1x1 linear projection; a residual when shapes allow."""

    def __init__(self, cin: int, cout: int, stride: int, expansion: int):
        super().__init__()
        hidden = cin * expansion
        layers = _conv_bn(cin, hidden, 1) if expansion != 1 else []
        layers += _conv_bn(hidden, hidden, 3, stride, groups=hidden)
        layers += _conv_bn(hidden, cout, 1, act=False)
        self.block = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        """Block output, plus the input when it is a residual block."""
        return x + self.block(x) if self.residual else self.block(x)


def build(width: int = 16, last: int = 256, num_classes: int = 10) -> nn.Module:
    """Stem, inverted residual stages, 1x1 head, global average pool, Linear."""
    layers = _conv_bn(3, width, 3, stride=2)
    cin = width
    for expansion, cout, repeats, stride in BLOCKS:
        for i in range(repeats):
            layers.append(InvertedResidual(cin, cout, stride if i == 0 else 1, expansion))
            cin = cout
    layers += _conv_bn(cin, last, 1)
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.1), nn.Linear(last, num_classes)]
    return nn.Sequential(*layers)


ARCHITECTURE = Architecture(
    name="mobilenet", spec=SPEC, build=build, defaults=TrainDefaults(epochs=4, lr=3e-3, batch_size=64)
)
