"""Worker that hosts the in-process runtimes for validation, so a crash in native code stays in it.

Served with the worker protocol (:mod:`onnxpipe.models.wire`: ``python wire.py runtime_host.py``),
in onnxpipe's own environment. One artifact is open at a time:

1. ``{"op": "open", "runtime": NAME, "artifact": {...}, "device": ..., "threads": ...}``: loads the
   artifact with the registered runtime ``NAME``; the reply holds what the parent needs to feed it
   (``declared_shapes``, ``declared_dtypes``, ``device_used``). A file the runtime cannot load fails
   with the error kind ``not-loadable``, a runtime that is unavailable with ``environment``.
2. ``{"op": "run"}`` with the feeds (the artifact's names and layout, already checked and cast by
   the parent) as arrays: the reply's arrays are the raw outputs by the artifact's names, and
   ``seconds`` the time of the framework's own call.
3. ``{"op": "close"}``.
4. ``{"op": "warm"}``: imports the frameworks; the parent sends it first and collects the reply
   later, so the imports overlap with its own work (the reference's run, a conversion).

A runtime that aborts or segfaults on a malformed file kills this process only: the parent reports
that artifact's row as an error naming the signal and starts a new host for the next one.
"""

from __future__ import annotations

import time

_state: dict = {}


class NotLoadable(Exception):
    """The runtime cannot load the artifact."""

    kind = "not-loadable"


class Unavailable(Exception):
    """The runtime cannot run here."""

    kind = "environment"


def _close() -> None:
    runtime = _state.pop("runtime", None)
    if runtime is not None:
        runtime.__exit__(None, None, None)


def _open(req: dict) -> dict:
    from onnxpipe.models.artifact import Artifact
    from onnxpipe.models.errors import EnvironmentProblem
    from onnxpipe.validation.runtimes import get_runtime
    from onnxpipe.validation.runtimes.base import ArtifactNotLoadable

    _close()
    runtime = get_runtime(req["runtime"])(
        Artifact.from_dict(req["artifact"]), req["device"], req.get("threads")
    )
    try:
        runtime.__enter__()
    except ArtifactNotLoadable as e:
        raise NotLoadable(str(e)) from e
    except EnvironmentProblem as e:
        raise Unavailable(str(e)) from e
    _state["runtime"] = runtime
    return {
        "declared_shapes": runtime.declared_shapes(),
        "declared_dtypes": runtime.declared_dtypes(),
        "device_used": runtime.device_used,
    }


def _run(arrays: dict) -> tuple[dict, dict]:
    runtime = _state["runtime"]
    runtime.inference_s = None
    t0 = time.perf_counter()
    raw = runtime._run(arrays)
    seconds = runtime.inference_s if runtime.inference_s is not None else time.perf_counter() - t0
    import numpy as np

    return {"seconds": seconds}, {k: np.asarray(v) for k, v in raw.items()}


def _warm() -> dict:
    """Import the frameworks now, while the parent does something else (it does not wait)."""
    import importlib
    import importlib.util

    warmed = []
    for module in ("onnxruntime", "ai_edge_litert.interpreter", "tensorflow"):
        if importlib.util.find_spec(module.split(".")[0]) is not None:
            importlib.import_module(module)
            warmed.append(module)
    return {"warmed": warmed}


def handle(header: dict, arrays: dict, emit) -> object:
    """One request of the protocol above."""
    op = header.get("op")
    if op == "warm":
        return _warm()
    if op == "open":
        return _open(header)
    if op == "run":
        return _run(arrays)
    if op == "close":
        _close()
        return {}
    raise ValueError(f"unknown op {op!r}")
