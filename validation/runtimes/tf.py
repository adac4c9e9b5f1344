"""TensorFlow SavedModel runtime, through its ``serving_default`` signature."""

from __future__ import annotations

from typing import Any

import numpy as np

from onnxpipe.models.artifact import Format
from onnxpipe.validation.runtimes.base import Runtime


class TensorFlowRuntime(Runtime):
    """``tf.saved_model.load`` and the serving signature."""

    name = "tensorflow"
    formats = frozenset({Format.TF_SAVED_MODEL})
    packages = ("tensorflow",)
    devices = ("cpu", "cuda")

    @classmethod
    def _cuda_reason(cls) -> str | None:
        import tensorflow as tf

        if tf.config.list_physical_devices("GPU"):
            return None
        return "TensorFlow sees no GPU (tf.config.list_physical_devices('GPU') is empty)"

    def _load(self) -> None:
        import tensorflow as tf

        self._tf = tf
        if self.threads:
            try:
                tf.config.threading.set_intra_op_parallelism_threads(self.threads)
                tf.config.threading.set_inter_op_parallelism_threads(1)
            except RuntimeError:  # TensorFlow already started in this process: its pools are fixed
                pass
        self._tf_device = "/GPU:0" if self.device == "cuda" else "/CPU:0"
        self._model = tf.saved_model.load(str(self.artifact.path))
        self._fn = self._model.signatures["serving_default"]
        _, kwargs = self._fn.structured_input_signature
        # The signature's own names ("0", "input.1") are the keys the file declares; TensorFlow calls
        # the function with Python identifiers made from them ("arg_0"), in the same order.
        self._keywords = {spec.name or k: k for k, spec in kwargs.items()}

    def declared_shapes(self) -> dict[str, list[int]]:  # noqa: D102
        _, kwargs = self._fn.structured_input_signature
        return {v.name or k: [-1 if d is None else int(d) for d in v.shape] for k, v in kwargs.items()}

    def _run(self, feeds: dict[str, np.ndarray]) -> dict[str, Any]:
        with self._tf.device(self._tf_device):
            tensors = {self._keywords.get(k, k): self._tf.constant(v) for k, v in feeds.items()}
            out = self._timed(lambda: self._fn(**tensors))
        return {k: v.numpy() for k, v in out.items()}
