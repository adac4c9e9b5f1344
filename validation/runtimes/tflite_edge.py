"""tflite-runtime, the standalone edge interpreter, in its own environment (``.venv-edge``).

tflite-runtime 2.14 needs numpy < 2 and cannot live beside TensorFlow 2.21, so it runs in a worker
process (:mod:`validation.edge_worker`) that keeps one interpreter for the artifact and answers
every call over a pipe. It proves a .tflite file loads and computes the same without TensorFlow.
"""

from __future__ import annotations

import io
import json
import struct
import subprocess
from pathlib import Path
from typing import Any

import numpy as np

from onnxpipe.models.artifact import Format
from onnxpipe.validation.quant import dequantize, quantize
from onnxpipe.validation.runtimes.base import ArtifactNotLoadable, Runtime

__all__ = ["EDGE_PYTHON", "TfliteRuntimeEdge"]

#: The edge environment's interpreter: ``.venv-edge`` at the project root (``make setup-edge``).
EDGE_PYTHON = Path(__file__).resolve().parents[2] / ".venv-edge" / "bin" / "python"
_WORKER = Path(__file__).resolve().parents[1] / "edge_worker.py"


class TfliteRuntimeEdge(Runtime):
    """tflite-runtime 2.14 through the edge worker."""

    name = "tflite-runtime"
    formats = frozenset({Format.TFLITE})

    @classmethod
    def unavailable_reason(cls, device: str = "cpu") -> str | None:  # noqa: D102
        if not EDGE_PYTHON.is_file():
            return (
                f"the edge environment is not set up ({EDGE_PYTHON.parents[1].name} missing: make setup-edge)"
            )
        return super().unavailable_reason(device)

    def _send(self, payload: bytes) -> bytes:
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._proc.stdin.write(struct.pack("<Q", len(payload)) + payload)
        self._proc.stdin.flush()
        header = self._proc.stdout.read(8)
        if len(header) < 8:
            raise RuntimeError(
                f"the edge worker exited: {self._proc.stderr.read().decode(errors='replace')[-500:]}"
            )
        return self._proc.stdout.read(struct.unpack("<Q", header)[0])

    def _load(self) -> None:
        self._proc = subprocess.Popen(
            [str(EDGE_PYTHON), str(_WORKER)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        hello = json.loads(
            self._send(json.dumps({"model": str(self.artifact.path), "threads": self.threads}).encode())
        )
        if not hello["ok"]:
            self._close()
            raise ArtifactNotLoadable(f"tflite-runtime cannot load {self.artifact.label}: {hello['error']}")
        self._declared = {d["name"]: d["shape"] for d in hello["inputs"]}
        self._in = {d["name"]: (np.dtype(d["dtype"]), d["quantization"]) for d in hello["inputs"]}
        self._out = {d["name"]: d["quantization"] for d in hello["outputs"]}

    def declared_shapes(self) -> dict[str, list[int]]:  # noqa: D102
        return self._declared

    def _close(self) -> None:
        proc = getattr(self, "_proc", None)
        if proc is not None and proc.poll() is None:
            proc.stdin.close()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def _run(self, feeds: dict[str, np.ndarray]) -> dict[str, Any]:
        buf = io.BytesIO()
        np.savez(buf, **{k: quantize(v, *self._in[k]) for k, v in feeds.items()})
        reply = self._send(buf.getvalue())
        if reply[:1] == b"{":
            raise RuntimeError(f"tflite-runtime: {json.loads(reply)['error']}")
        return {k: dequantize(v, self._out[k]) for k, v in np.load(io.BytesIO(reply)).items()}
