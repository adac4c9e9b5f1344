"""A small transformer encoder over the digits as tokens: 64 pixel intensities (0..16) in, logits out.

The input is ``int64`` token ids, the case that trips converters (integer inputs, Gather on an
embedding) and int8 calibration (which must keep the ids integers). Attention is written out with
matmuls and a softmax, so every exporter and converter sees plain ops.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from onnxpipe.models.registry import Architecture, TrainDefaults
from onnxpipe.models.spec import ModelSpec, TensorSpec

VOCAB, LENGTH = 17, 64

SPEC = ModelSpec(
    name="transformer",
    inputs=(TensorSpec("tokens", ("batch", LENGTH), dtype="int64"),),
    outputs=(TensorSpec("logits", ("batch", 10)),),
    dataset="digits-tokens",
    value_range=(0.0, float(VOCAB)),  # token ids: [0, 17)
)


class EncoderBlock(nn.Module):
    """Pre-norm self-attention and MLP, each with a residual connection."""

    def __init__(self, dim: int, heads: int, hidden: int):
        super().__init__()
        self.heads = heads
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.qkv, self.proj = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(approximate="tanh"), nn.Linear(hidden, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[batch, tokens, dim]`` -> the same shape."""
        b, n, d = x.shape
        q, k, v = self.qkv(self.norm1(x)).reshape(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        attn = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(d // self.heads), dim=-1)
        x = x + self.proj((attn @ v).transpose(1, 2).reshape(b, n, d))
        return x + self.mlp(self.norm2(x))


class TokenTransformer(nn.Module):
    """Token and position embeddings, encoder blocks, mean pooling, a Linear head."""

    def __init__(self, dim: int = 32, heads: int = 4, layers: int = 2, num_classes: int = 10):
        super().__init__()
        self.tokens = nn.Embedding(VOCAB, dim)
        self.position = nn.Parameter(torch.zeros(1, LENGTH, dim))
        nn.init.normal_(self.position, std=0.02)
        self.blocks = nn.ModuleList(EncoderBlock(dim, heads, 2 * dim) for _ in range(layers))
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """``[batch, 64]`` int64 token ids -> ``[batch, classes]`` logits."""
        x = self.tokens(tokens) + self.position
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm(x).mean(dim=1))


def build(dim: int = 32, heads: int = 4, layers: int = 2, num_classes: int = 10) -> TokenTransformer:
    """A 2-block, 4-head, 32-wide encoder."""
    return TokenTransformer(dim, heads, layers, num_classes)


ARCHITECTURE = Architecture(
    name="transformer", spec=SPEC, build=build, defaults=TrainDefaults(epochs=30, lr=3e-3, batch_size=64)
)
