"""Bundled datasets: nothing is downloaded.

``digits`` is scikit-learn's copy of the UCI handwritten digits (1,797 8x8 grey images, 10
classes) that ships inside the scikit-learn package. Pixels are scaled from 0..16 to 0..1.
``digits-rgb96`` is the same images upsampled to 96x96 and repeated over three channels, for
models that expect RGB images of a realistic size; ``digits-tokens`` the same images as 64 int64
token ids (the raw intensities 0..16), for the transformer. The
train/validation split is stratified and fixed (its seed is not the training seed), so every run
and every tool validates on the same images.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from onnxpipe.models.errors import UnknownNameError
from onnxpipe.models.spec import ModelSpec

__all__ = ["DATASETS", "SPLIT_SEED", "Dataset", "load_dataset", "model_arrays"]

SPLIT_SEED = 20240607
VALIDATION_FRACTION = 0.2
DATASETS = ("digits", "digits-rgb96", "digits-tokens")


@dataclass(frozen=True)
class Dataset:
    """Inputs and labels of one split (``digits``: float32 ``[N, 1, 8, 8]`` in ``[0, 1]``)."""

    x: np.ndarray
    y: np.ndarray

    def __len__(self) -> int:
        return len(self.y)


@functools.cache
def _digits() -> tuple[Dataset, Dataset]:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    x = (bunch.images.astype(np.float32) / 16.0)[:, None, :, :]
    y = bunch.target.astype(np.int64)
    x_tr, x_va, y_tr, y_va = train_test_split(
        x, y, test_size=VALIDATION_FRACTION, random_state=SPLIT_SEED, stratify=y
    )
    return Dataset(x_tr, y_tr), Dataset(x_va, y_va)


@functools.cache
def _digits_rgb96() -> tuple[Dataset, Dataset]:
    """The digits upsampled 12x (nearest) to 96x96 and repeated over 3 channels: [N, 3, 96, 96]."""

    def grow(ds: Dataset) -> Dataset:
        x = np.repeat(np.repeat(ds.x, 12, axis=2), 12, axis=3)
        return Dataset(np.ascontiguousarray(np.repeat(x, 3, axis=1)), ds.y)

    train, validation = _digits()
    return grow(train), grow(validation)


@functools.cache
def _digits_tokens() -> tuple[Dataset, Dataset]:
    """The digits as 64 token ids each: the raw pixel intensities 0..16, int64 ``[N, 64]``."""

    def tokens(ds: Dataset) -> Dataset:
        return Dataset(np.rint(ds.x.reshape(len(ds), 64) * 16).astype(np.int64), ds.y)

    train, validation = _digits()
    return tokens(train), tokens(validation)


def load_dataset(name: str, split: str) -> Dataset:
    """The ``train`` or ``validation`` split of a bundled dataset."""
    if name not in DATASETS:
        raise UnknownNameError("dataset", name, DATASETS)
    splits = {"train": 0, "validation": 1}
    if split not in splits:
        raise UnknownNameError("split", split, splits)
    source = {"digits": _digits, "digits-rgb96": _digits_rgb96, "digits-tokens": _digits_tokens}[name]
    return source()[splits[split]]


def model_arrays(spec: ModelSpec, split: str) -> tuple[np.ndarray, np.ndarray]:
    """A split shaped for ``spec``'s first input (e.g. flattened to ``[N, 64]`` for an MLP)."""
    ds = load_dataset(spec.dataset, split)
    sample_shape = spec.inputs[0].shape[1:]
    x = ds.x.reshape((len(ds), *sample_shape)).astype(spec.inputs[0].dtype)
    return x, ds.y
