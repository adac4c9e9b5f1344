"""Edge readiness of a .tflite file: ops, Flex and custom ops, and whether tflite-runtime loads it.

Read from the flatbuffer itself (the schema ships with ai-edge-litert), so it needs no TensorFlow.
Flex ops (``Flex...`` custom ops) need TensorFlow's select-ops delegate, which standalone edge
runtimes do not have; other custom ops need the user's own kernels. The load check runs the file in
``.venv-edge``: an op version newer than tflite-runtime 2.14 knows (e.g. FULLY_CONNECTED v12 from
TF 2.21) is named in its refusal.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from onnxpipe.models.artifact import Artifact, Format
from onnxpipe.models.errors import InputFileError

__all__ = ["EdgeReadiness", "edge_readiness", "tflite_ops"]


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
    """

    ops: list[dict[str, Any]]
    flex_ops: list[str] = field(default_factory=list)
    custom_ops: list[str] = field(default_factory=list)
    tflite_runtime_loads: bool | None = None
    tflite_runtime_note: str | None = None
    ready: bool = False
    problems: list[str] = field(default_factory=list)


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


def edge_readiness(artifacts: list[Artifact]) -> dict[str, EdgeReadiness]:
    """Per .tflite artifact: ops, Flex and custom ops, tflite-runtime loadability, and a verdict."""
    out = {}
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
        )
    return out
