"""Edge readiness of a .tflite file: ops, Flex/custom ops, tflite-runtime loading, GPU delegate ops.

Read from the flatbuffer itself (the schema ships with ai-edge-litert), so it needs no TensorFlow.
Flex ops (``Flex...`` custom ops) need TensorFlow's select-ops delegate, which standalone edge
runtimes do not have; other custom ops need the user's own kernels. The load check runs the file in
``.venv-edge``: an op version newer than tflite-runtime 2.14 knows (e.g. FULLY_CONNECTED v12 from
TF 2.21) is named in its refusal. The GPU delegate check is TensorFlow Lite's own model analyzer
with GPU compatibility checking, run in ``.venv-legacy`` (TensorFlow 2.15: the analyzer of 2.21 no
longer flags anything) by :mod:`validation.gpu_delegate_worker`, once for every file of a report.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from onnxpipe.models.artifact import Artifact, Format
from onnxpipe.models.errors import InputFileError

__all__ = [
    "EdgeReadiness",
    "GpuDelegate",
    "edge_readiness",
    "gpu_delegate_check",
    "tflite_ops",
]

_GPU_WORKER = Path(__file__).resolve().parent / "gpu_delegate_worker.py"


@dataclass
class GpuDelegate:
    """Which ops of one .tflite file TensorFlow Lite's GPU delegate takes (its analyzer's verdict).

    Attributes:
        ops: How many ops the file has (every subgraph).
        rejected: The ops it would leave to the CPU: ``op``, ``subgraph``, ``index``, ``reasons``.
        checked_with: The analyzer's TensorFlow version; ``None`` when it could not run.
        note: Why it was not checked.
        folded_fp16_dequantize: DEQUANTIZE ops of float16 weights, which the delegate folds into
            their consumers (the analyzer checks ops one by one and rejects those consumers for
            taking the DEQUANTIZE outputs as runtime inputs: they are accepted again here).
    """

    ops: int = 0
    rejected: list[dict[str, Any]] = field(default_factory=list)
    checked_with: str | None = None
    note: str | None = None
    folded_fp16_dequantize: int = 0

    def derived(self) -> dict[str, Any]:
        """Written to ``parity.json`` beside the fields (recomputed on reading)."""
        return {"verdict": self.verdict}

    @property
    def verdict(self) -> str:
        """``gpu delegate: all N ops``, ``partial: M of N, first rejected: OP (reason)``, or why not checked."""
        if self.checked_with is None:
            return f"gpu delegate: not checked ({self.note})"
        if not self.rejected:
            folded = (
                f" (the {self.folded_fp16_dequantize} DEQUANTIZE ops of fp16 weights folded into their consumers)"
                if self.folded_fp16_dequantize
                else ""
            )
            return f"gpu delegate: all {self.ops} ops{folded}"
        first = self.rejected[0]
        return (
            f"gpu delegate: partial: {self.ops - len(self.rejected)} of {self.ops}, first rejected: "
            f"{first['op']} ({'; '.join(first['reasons'])})"
        )


@dataclass
class EdgeReadiness:
    """Whether one .tflite file runs on a standalone edge runtime, and why not.

    Attributes:
        ops: Every operator code: ``op``, ``version``, ``kind`` (builtin, flex, custom).
        flex_ops: Ops that need TensorFlow's Flex delegate.
        custom_ops: Ops that need the user's own kernels.
        tflite_runtime_loads: Whether tflite-runtime loads it (``None``: not checked).
        tflite_runtime_note: Its refusal, or why it was not checked.
        ready: No Flex or custom op, and tflite-runtime does not refuse it.
        problems: What stands in the way, one sentence each.
        gpu_delegate: The ops the mobile GPU delegate takes and rejects (not part of ``ready``: a
            rejected op runs on the CPU, the rest still on the GPU).
    """

    ops: list[dict[str, Any]]
    flex_ops: list[str] = field(default_factory=list)
    custom_ops: list[str] = field(default_factory=list)
    tflite_runtime_loads: bool | None = None
    tflite_runtime_note: str | None = None
    ready: bool = False
    problems: list[str] = field(default_factory=list)
    gpu_delegate: GpuDelegate | None = None


def tflite_ops(path: str | Path) -> list[dict[str, Any]]:
    """Every operator code of a .tflite file: ``op``, ``version``, ``kind`` (builtin, flex, custom).

    Raises:
        InputFileError: Not a TFLite flatbuffer.
    """
    from ai_edge_litert import schema_py_generated as schema

    data = Path(path).read_bytes()
    if len(data) < 8 or data[4:8] != b"TFL3":
        raise InputFileError(path, "not a TFLite flatbuffer (no TFL3 identifier)")
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    model = schema.Model.GetRootAs(data, 0)
    ops = []
    for i in range(model.OperatorCodesLength()):
        code = model.OperatorCodes(i)
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        custom = code.CustomCode()
        if names.get(builtin) == "CUSTOM" and custom is not None:
            custom = custom.decode() if isinstance(custom, bytes) else str(custom)
            ops.append(
                {
                    "op": custom,
                    "version": code.Version(),
                    "kind": "flex" if custom.startswith("Flex") else "custom",
                }
            )
        else:
            ops.append(
                {"op": names.get(builtin, f"BUILTIN_{builtin}"), "version": code.Version(), "kind": "builtin"}
            )
    return ops


def _loads_on_tflite_runtime(artifact: Artifact) -> tuple[bool | None, str | None]:
    from onnxpipe.validation.runtimes.base import ArtifactNotLoadable
    from onnxpipe.validation.runtimes.tflite_edge import TfliteRuntimeEdge

    reason = TfliteRuntimeEdge.unavailable_reason("cpu")
    if reason:
        return None, reason
    try:
        with TfliteRuntimeEdge(artifact):
            return True, None
    except ArtifactNotLoadable as e:
        return False, str(e)


def gpu_delegate_check(paths: list[Path]) -> dict[str, GpuDelegate]:
    """The GPU delegate's verdict on each .tflite file, by path: one analyzer worker for all of them.

    A file the analyzer could not check (no legacy environment, the worker failed) gets a verdict
    that says why.
    """
    from onnxpipe.models import wire
    from onnxpipe.models.environments import LEGACY_PYTHON
    from onnxpipe.models.errors import EnvironmentProblem

    if not paths:
        return {}
    if not LEGACY_PYTHON.is_file():
        note = f"TensorFlow 2.15's analyzer is not set up ({LEGACY_PYTHON.parents[1].name} missing: make setup-legacy)"
        return {str(p): GpuDelegate(note=note) for p in paths}
    try:
        reply = wire.call(
            wire.command(LEGACY_PYTHON, _GPU_WORKER),
            {"models": [str(p) for p in paths]},
            what="GPU delegate analyzer",
            error=EnvironmentProblem,
            timeout_s=300,
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
        ).header
    except EnvironmentProblem as e:
        note = f"the analyzer failed: {str(e).splitlines()[0]}"
        return {str(p): GpuDelegate(note=note) for p in paths}
    return {
        path: GpuDelegate(
            ops=len(r["ops"]),
            rejected=r["rejected"],
            checked_with=f"TensorFlow Lite {reply['tensorflow']} analyzer",
            folded_fp16_dequantize=r["folded_fp16_dequantize"],
        )
        for path, r in reply["models"].items()
    }


def edge_readiness(artifacts: list[Artifact], gpu_delegate: bool = True) -> dict[str, EdgeReadiness]:
    """Per .tflite artifact: ops, Flex and custom ops, tflite-runtime loadability, GPU delegate, a verdict.

    ``gpu_delegate=False`` leaves out the GPU delegate's check (``gpu_delegate`` stays ``None``).
    """
    out = {}
    gpu = gpu_delegate_check([a.path for a in artifacts if a.format is Format.TFLITE]) if gpu_delegate else {}
    for art in artifacts:
        if art.format is not Format.TFLITE:
            continue
        ops = tflite_ops(art.path)
        flex = sorted({o["op"] for o in ops if o["kind"] == "flex"})
        custom = sorted({o["op"] for o in ops if o["kind"] == "custom"})
        loads, why = _loads_on_tflite_runtime(art)
        problems = []
        if flex:
            problems.append(f"needs TensorFlow's Flex delegate for {', '.join(flex)}")
        if custom:
            problems.append(f"needs custom kernels for {', '.join(custom)}")
        if loads is False:
            problems.append(why)
        out[art.label] = EdgeReadiness(
            ops=ops,
            flex_ops=flex,
            custom_ops=custom,
            tflite_runtime_loads=loads,
            tflite_runtime_note=why,
            ready=not problems and loads is not False,
            problems=problems,
            gpu_delegate=gpu.get(str(art.path)),
        )
    return out
