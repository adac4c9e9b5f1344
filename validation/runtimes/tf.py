"""TensorFlow SavedModel runtime, through its ``serving_default`` signature."""

from __future__ import annotations

from typing import Any

import numpy as np

from models.artifact import Format
from validation.runtimes.base import Runtime


class TensorFlowRuntime(Runtime):
    """``tf.saved_model.load`` and the serving signature."""

    name = "tensorflow"
    formats = frozenset({Format.TF_SAVED_MODEL})
    packages = ("tensorflow",)

    def _load(self) -> None:
        import tensorflow as tf

        self._tf = tf
        self._model = tf.saved_model.load(str(self.artifact.path))
        self._fn = self._model.signatures["serving_default"]

    def _run(self, feeds: dict[str, np.ndarray]) -> dict[str, Any]:
        with self._tf.device("/CPU:0"):
            out = self._fn(**{k: self._tf.constant(v) for k, v in feeds.items()})
        return {k: v.numpy() for k, v in out.items()}
