"""TFLite through ai-edge-litert, the maintained successor of tflite-runtime."""

from __future__ import annotations

from typing import Any

import numpy as np

from models.artifact import Format
from validation.runtimes.base import Runtime


class LiteRtRuntime(Runtime):
    """``ai_edge_litert.interpreter.Interpreter``; inputs are resized when the batch changes."""

    name = "ai-edge-litert"
    formats = frozenset({Format.TFLITE})
    packages = ("ai_edge_litert",)

    def _load(self) -> None:
        from ai_edge_litert.interpreter import Interpreter

        self._interp = Interpreter(model_path=str(self.artifact.path), num_threads=1)
        self._interp.allocate_tensors()
        self._inputs = {d["name"]: d for d in self._interp.get_input_details()}
        self._outputs = {d["name"]: d for d in self._interp.get_output_details()}
        self._shapes = {name: tuple(d["shape"]) for name, d in self._inputs.items()}

    def _run(self, feeds: dict[str, np.ndarray]) -> dict[str, Any]:
        it = self._interp
        if any(self._shapes[k] != v.shape for k, v in feeds.items()):
            for k, v in feeds.items():
                it.resize_tensor_input(self._inputs[k]["index"], list(v.shape), strict=True)
            it.allocate_tensors()
            self._shapes = {k: v.shape for k, v in feeds.items()}
        for k, v in feeds.items():
            it.set_tensor(self._inputs[k]["index"], v)
        it.invoke()
        return {k: it.get_tensor(d["index"]).copy() for k, d in self._outputs.items()}
