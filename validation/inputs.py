"""Inputs that validation feeds every runtime: real samples first, then seeded random ones."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.spec import ModelSpec

__all__ = ["InputConfig", "ValidationInputs", "build_inputs"]


@dataclass(frozen=True)
class InputConfig:
    """What to feed.

    Attributes:
        samples: Validation-split samples (all of them when larger than the split).
        random: Seeded random inputs drawn uniformly over the data's value range.
        batch: The batch size > 1 every artifact is run at (on all inputs).
        batch1: How many of the inputs are also run one at a time (batch 1).
        seed: Seed of the random inputs.
    """

    samples: int = 1000
    random: int = 64
    batch: int = 32
    batch1: int = 16
    seed: int = 0


@dataclass(frozen=True)
class ValidationInputs:
    """Stacked inputs (reference names and layout) and, for dataset samples, their labels."""

    arrays: dict[str, np.ndarray]
    labels: np.ndarray | None
    n_samples: int
    n_random: int
    source: str

    def __len__(self) -> int:
        return self.n_samples + self.n_random

    def slice(self, start: int, stop: int) -> dict[str, np.ndarray]:
        """Rows ``start:stop`` of every input."""
        return {k: v[start:stop] for k, v in self.arrays.items()}


def build_inputs(spec: ModelSpec, config: InputConfig = InputConfig()) -> ValidationInputs:
    """Validation-split samples of the spec's dataset (if it has one) followed by random inputs."""
    rng = np.random.default_rng(config.seed)
    lo, hi = spec.value_range
    labels, n_samples, source = None, 0, "random"
    first: dict[str, np.ndarray] = {}
    if spec.dataset and len(spec.inputs) == 1:
        from models.data import model_arrays

        x, y = model_arrays(spec, "validation")
        n_samples = min(config.samples, len(y))
        first = {spec.inputs[0].name: x[:n_samples]}
        labels = y[:n_samples]
        source = f"{spec.dataset} validation split"
    arrays = {}
    for t in spec.inputs:
        rand = rng.uniform(lo, hi, size=t.concrete_shape(config.random)).astype(t.dtype)
        arrays[t.name] = np.concatenate([first[t.name], rand]) if t.name in first else rand
    if not first:
        n_samples = 0
    return ValidationInputs(arrays, labels, n_samples, config.random, source)
