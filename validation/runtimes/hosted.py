"""Runtimes run in a host process (:mod:`validation.runtime_host`): a crash in native code is a result.

Every in-process runtime (ONNX Runtime, TensorFlow, the TFLite interpreters) loads foreign files: a
mutated flatbuffer can make an interpreter abort or segfault, and in the validating process that
would end the run with no report. :func:`hosted` wraps a runtime class so that its artifact is
loaded and run in one host worker (over the worker protocol), which the wrapper feeds after doing
:meth:`Runtime.run`'s checks, casts and transposes itself. Frameworks are imported once, in the
host; sessions are still created once per artifact. A host that dies by a signal makes that row an
``error`` naming the signal (:class:`RuntimeCrashed`); the next artifact gets a new host, and the
other rows, the report and the exit code stand.
"""

from __future__ import annotations

import atexit
import contextlib
import signal
import sys
from pathlib import Path
from typing import Any

import numpy as np

from onnxpipe.models import wire
from onnxpipe.models.errors import EnvironmentProblem, OnnxpipeError
from onnxpipe.validation.runtimes.base import ArtifactNotLoadable, Runtime

__all__ = ["HOSTED", "HostedError", "RuntimeCrashed", "close_host", "hosted", "prewarm"]

#: The runtimes validation runs in the host (tflite-runtime has a worker of its own; PyTorch runs
#: the reference, which is the user's own code).
HOSTED = ("onnxruntime", "onnx-reference", "tensorflow", "tf.lite", "ai-edge-litert", "ai-edge-litert-ref")

_HANDLER = Path(__file__).resolve().parents[1] / "runtime_host.py"
_host: wire.Worker | None = None
_warming = False  # a "warm" request was sent and its reply not collected yet


class HostError(OnnxpipeError):
    """The runtime host failed on a request, or died."""


class HostedError(OnnxpipeError):
    """What a hosted runtime raised; ``worker_type`` is its exception's class name."""

    def __init__(self, message: str, worker_type: str):
        super().__init__(message)
        self.worker_type = worker_type


class RuntimeCrashed(OnnxpipeError):
    """A runtime died in native code (a signal) while loading or running an artifact."""


def _alive(worker: wire.Worker | None) -> bool:
    return worker is not None and worker._proc is not None and worker._proc.poll() is None


def prewarm() -> None:
    """Start the host and have it import the frameworks while this process goes on (no waiting)."""
    global _warming
    if _alive(_host) or _warming:
        return
    host = _the_host()
    host.send({"op": "warm"})
    _warming = True


def _the_host() -> wire.Worker:
    global _host, _warming
    if not _alive(_host):
        _warming = False
        _host = wire.Worker(
            wire.command(sys.executable, _HANDLER),
            what="runtime host",
            error=HostError,
            errors={"not-loadable": ArtifactNotLoadable, "environment": EnvironmentProblem},
        )
        _host.start()
    return _host


@atexit.register
def close_host() -> None:
    """End the host (at exit; a test may call it)."""
    global _host, _warming
    if _alive(_host):
        _host.close()
    _host, _warming = None, False


def _signal_name(code: int) -> str:
    try:
        return f"{signal.Signals(-code).name} (signal {-code})"
    except ValueError:
        return f"signal {-code}"


class _Hosted(Runtime):
    """A runtime whose artifact lives in the host; subclasses made by :func:`hosted` set ``inner``."""

    inner: type[Runtime]

    @classmethod
    def unavailable_reason(cls, device: str = "cpu") -> str | None:
        return cls.inner.unavailable_reason(device)

    def _request(self, header: dict, arrays: dict | None = None, timeout_s: float = 600) -> wire.Message:
        global _warming
        host = _the_host()
        try:
            if _warming:  # collect the warm-up's reply first
                _warming = False
                host.reply(timeout_s=600)
            return host.request(header, arrays, timeout_s=timeout_s)
        except OnnxpipeError as e:
            code = host._proc.returncode if host._proc is not None else None
            if code is not None and code < 0:
                raise RuntimeCrashed(
                    f"{self.name} crashed on {self.artifact.label}: killed by {_signal_name(code)}; "
                    "it ran in a host process, so the other results stand"
                ) from None
            worker_type = getattr(e, "worker_type", None)
            if worker_type is None:
                raise
            # What the runtime raised, as it would have said it in this process (no host log).
            said = str(e).split("\n--- last lines of its log ---")[0]
            said = said.removeprefix(f"{host.what} failed: {worker_type}: ")
            if isinstance(e, EnvironmentProblem):  # not loadable / unavailable: the same class, its words
                raise type(e)(said) from None
            raise HostedError(said, worker_type) from None

    def _load(self) -> None:
        artifact = self.artifact.to_dict()
        artifact["path"] = str(Path(self.artifact.path).resolve())
        self._meta = self._request(
            {
                "op": "open",
                "runtime": self.inner.name,
                "artifact": artifact,
                "device": self.device,
                "threads": self.threads,
            }
        ).header

    def declared_shapes(self) -> dict[str, list[int]]:
        return self._meta["declared_shapes"]

    def declared_dtypes(self) -> dict[str, str]:
        return self._meta["declared_dtypes"]

    @property
    def device_used(self) -> str:
        return self._meta["device_used"] if getattr(self, "_meta", None) else self.device

    def _run(self, feeds: dict[str, np.ndarray]) -> dict[str, Any]:
        reply = self._request({"op": "run"}, feeds)
        self.inference_s = reply.header["seconds"]
        return dict(reply.arrays)

    def _close(self) -> None:
        if _alive(_host) and getattr(self, "_meta", None) is not None:
            with contextlib.suppress(OnnxpipeError):  # a host that died closing: the next gets a new one
                self._request({"op": "close"}, timeout_s=60)
        self._meta = None


_CLASSES: dict[str, type[Runtime]] = {}


def hosted(cls: type[Runtime]) -> type[Runtime]:
    """``cls`` run in the host process (the same name, formats, devices and notice)."""
    if cls.name not in HOSTED:
        return cls
    if cls.name not in _CLASSES:
        _CLASSES[cls.name] = type(
            f"Hosted{cls.__name__}",
            (_Hosted,),
            {
                "inner": cls,
                "name": cls.name,
                "formats": cls.formats,
                "packages": cls.packages,
                "devices": cls.devices,
                "notice": cls.notice,
                "__doc__": f"{cls.__name__} in the runtime host.",
            },
        )
    return _CLASSES[cls.name]
