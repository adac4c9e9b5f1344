"""TensorFlow.js under Node.js: the graph model on tfjs's ``cpu`` and ``wasm`` backends.

``@tensorflow/tfjs`` and ``@tensorflow/tfjs-backend-wasm`` (pinned in ``validation/tfjs/package-lock.json``,
installed by ``make setup-tfjs``) run in a Node worker (``validation/tfjs/worker.js``) that speaks the
worker protocol (:mod:`onnxpipe.models.wire`, its ``.npz`` bodies read and written by
``validation/tfjs/npz.js``). No ``tfjs-node``: it downloads native TensorFlow when it installs, and the
browser has none either; the pure-JavaScript ``cpu`` kernels and the WebAssembly ones are what a page
runs. One worker per artifact, the model loaded once; the worker times ``execute`` and the read-back
of the outputs.

TensorFlow.js has no int64: such inputs are fed as int32 (a value that does not fit is refused).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from onnxpipe.models import wire
from onnxpipe.models.artifact import Format
from onnxpipe.models.errors import OnnxpipeError
from onnxpipe.validation.runtimes.base import WorkerRuntime

__all__ = ["TFJS_DIR", "TfjsCpuRuntime", "TfjsRuntime", "TfjsWasmRuntime", "node_reason", "packages_reason"]

#: The JavaScript side: package.json, its lock file, node_modules, the worker and the browser page.
TFJS_DIR = Path(__file__).resolve().parents[1] / "tfjs"
_WORKER = TFJS_DIR / "worker.js"


class TfjsWorkerError(OnnxpipeError):
    """The Node worker failed on a call, or died."""


def packages_reason() -> str | None:
    """Why the npm packages every tfjs runtime loads are not there (``make setup-tfjs``), or ``None``."""
    if not (TFJS_DIR / "node_modules" / "@tensorflow" / "tfjs-backend-wasm").is_dir():
        return f"the TensorFlow.js packages are not installed ({TFJS_DIR / 'node_modules'} missing): run `make setup-tfjs`"
    return None


def node_reason() -> str | None:
    """Why the Node runtimes cannot run here (no ``node``, or the npm packages missing), or ``None``."""
    if shutil.which("node") is None:
        return "Node.js is not installed (no `node` on PATH): install Node.js 18 or newer, then `make setup-tfjs`"
    return packages_reason()


class TfjsRuntime(WorkerRuntime):
    """A tfjs graph model on one backend of ``@tensorflow/tfjs`` in a Node worker."""

    formats = frozenset({Format.TFJS})
    backend: ClassVar[str]

    @classmethod
    def unavailable_reason(cls, device: str = "cpu") -> str | None:  # noqa: D102
        return node_reason() or super().unavailable_reason(device)

    def _load(self) -> None:
        self._worker = wire.Worker(["node", str(_WORKER)], what=self.name, error=TfjsWorkerError)
        self._worker.start()
        try:
            hello = self._worker.request(
                {"op": "open", "model": str(self.artifact.path.resolve()), "backend": self.backend},
                timeout_s=120,
            ).header
        except Exception:
            self._close()
            raise
        self.version, self._node = hello["version"], hello["node"]
        self._declared = {d["name"]: d["shape"] for d in hello["inputs"]}
        self._dtypes = {d["name"]: d["dtype"] for d in hello["inputs"]}

    @property
    def detail(self) -> str:  # noqa: D102
        return f"@tensorflow/tfjs {self.version}, {self.backend} backend, Node.js {self._node}"

    def declared_shapes(self) -> dict[str, list[int]]:  # noqa: D102
        return self._declared

    def declared_dtypes(self) -> dict[str, str]:  # noqa: D102
        return {k: v for k, v in self._dtypes.items() if v in ("float32", "int32", "bool")}

    def _run(self, feeds: dict[str, np.ndarray]) -> dict[str, Any]:
        reply = self._worker.request({"op": "run"}, feeds, timeout_s=600)
        self.inference_s = reply.header["seconds"]
        return reply.arrays


class TfjsCpuRuntime(TfjsRuntime):
    """``@tensorflow/tfjs``'s plain JavaScript kernels (the ``cpu`` backend) under Node.js."""

    name = "tfjs-cpu"
    backend = "cpu"


class TfjsWasmRuntime(TfjsRuntime):
    """``@tensorflow/tfjs-backend-wasm`` (WebAssembly, SIMD) under Node.js."""

    name = "tfjs-wasm"
    backend = "wasm"
