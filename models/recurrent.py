"""Recurrent classifiers on the digits read row by row: 8 steps of 8 pixels.

Shared by the ``gru`` and ``lstm`` zoo entries. ``unrolled=False`` (the default) uses ``nn.GRU`` /
``nn.LSTM``, so the converters meet the ONNX GRU/LSTM ops; ``unrolled=True`` runs the same cell
step by step (``nn.GRUCell`` / ``nn.LSTMCell``), a plain graph with no loop, which full-integer
quantization needs. Both hold the same parameters (a state dict of one loads into the other's cell).
"""

from __future__ import annotations

import torch
from torch import nn

from onnxpipe.models.spec import ModelSpec, TensorSpec

STEPS, FEATURES = 8, 8


def spec(name: str) -> ModelSpec:
    """``[batch, 8, 8]`` rows in, 10 logits out."""
    return ModelSpec(
        name=name,
        inputs=(TensorSpec("rows", ("batch", STEPS, FEATURES)),),
        outputs=(TensorSpec("logits", ("batch", 10)),),
    )


class RecurrentClassifier(nn.Module):
    """A GRU or LSTM over the rows, then a Linear on the last step's hidden state."""

    def __init__(self, cell: str, hidden: int = 64, num_classes: int = 10, unrolled: bool = False):
        super().__init__()
        if cell not in ("gru", "lstm"):
            raise ValueError(f"cell: got {cell!r}, expected 'gru' or 'lstm'")
        self.cell, self.hidden, self.unrolled = cell, hidden, unrolled
        layer = nn.GRU if cell == "gru" else nn.LSTM
        self.rnn = layer(FEATURES, hidden, batch_first=True)
        self.head = nn.Linear(hidden, num_classes)

    def _unrolled(self, x: torch.Tensor) -> torch.Tensor:
        w_ih, w_hh, b_ih, b_hh = (
            self.rnn.weight_ih_l0,
            self.rnn.weight_hh_l0,
            self.rnn.bias_ih_l0,
            self.rnn.bias_hh_l0,
        )
        h = x.new_zeros(x.shape[0], self.hidden)
        c = x.new_zeros(x.shape[0], self.hidden)
        for t in range(STEPS):
            gates_x = x[:, t] @ w_ih.T + b_ih
            gates_h = h @ w_hh.T + b_hh
            if self.cell == "lstm":
                i, f, g, o = (gates_x + gates_h).chunk(4, dim=1)
                c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
                h = torch.sigmoid(o) * torch.tanh(c)
            else:
                r_x, z_x, n_x = gates_x.chunk(3, dim=1)
                r_h, z_h, n_h = gates_h.chunk(3, dim=1)
                r, z = torch.sigmoid(r_x + r_h), torch.sigmoid(z_x + z_h)
                n = torch.tanh(n_x + r * n_h)
                h = (1 - z) * n + z * h
        return h

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[batch, 8, 8]`` rows -> ``[batch, classes]`` logits."""
        last = self._unrolled(x) if self.unrolled else self.rnn(x)[0][:, -1]
        return self.head(last)
