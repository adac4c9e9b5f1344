"""What onnx-tf 1.10 needs from an ONNX graph before it can convert it.

onnx-tf turns each graph input into a Python parameter name and looks tensors up by name, so a graph
whose input or output names are not identifiers (``"0"``, ``"gpu_0/data_0"``, ``"in"``) fails with
``KeyError: '0'`` or ``'in' is not a valid parameter name``. :func:`sanitize_io_names` renames
them (and every use inside the graph) and returns the mapping, so the artifact's tensors can be
bound back to the user's names. :func:`missing_handlers` lists the ops, at the graph's opset, that
onnx-tf has no handler for (Unsqueeze/Squeeze-13, Reshape-19...), so the user gets a clear message
instead of a traceback from inside TensorFlow.

Only ``onnx`` and the standard library are used: the legacy worker imports this file by path.
"""

from __future__ import annotations

import keyword
import re

__all__ = ["is_safe_name", "missing_handlers", "sanitize_io_names"]


def is_safe_name(name: str) -> bool:
    """Whether onnx-tf can use ``name`` as a graph input/output name (an ASCII, non-keyword identifier)."""
    return name.isascii() and name.isidentifier() and not keyword.iskeyword(name)


def _safe_variant(name: str, taken: set[str]) -> str:
    base = re.sub(r"\W", "_", name, flags=re.ASCII).strip("_") or "tensor"
    if not base.isidentifier() or keyword.iskeyword(base):
        base = f"t_{base}"
    candidate, n = base, 1
    while candidate in taken:
        n += 1
        candidate = f"{base}_{n}"
    return candidate


def _all_names(graph) -> set[str]:
    names = {t.name for t in (*graph.input, *graph.output, *graph.value_info, *graph.initializer)}
    for node in graph.node:
        names.update(node.input)
        names.update(node.output)
        for attr in node.attribute:
            for sub in (attr.g, *attr.graphs) if attr.HasField("g") else attr.graphs:
                names |= _all_names(sub)
    return names


def _rename_uses(graph, renames: dict[str, str]) -> None:
    for tensor in (*graph.input, *graph.output, *graph.value_info, *graph.initializer):
        tensor.name = renames.get(tensor.name, tensor.name)
    for node in graph.node:
        node.input[:] = [renames.get(n, n) for n in node.input]
        node.output[:] = [renames.get(n, n) for n in node.output]
        for attr in node.attribute:  # subgraphs (If/Loop/Scan bodies) may read outer tensors
            subs = [attr.g] if attr.HasField("g") else []
            for sub in (*subs, *attr.graphs):
                _rename_uses(sub, renames)


def sanitize_io_names(model) -> dict[str, str]:
    """Rename graph inputs and outputs onnx-tf cannot handle, in place.

    Returns:
        ``{new_name: original_name}`` for every renamed tensor (empty when all names were safe).
    """
    graph = model.graph
    taken = _all_names(graph)
    renames: dict[str, str] = {}
    for tensor in (*graph.input, *graph.output):
        if tensor.name not in renames and not is_safe_name(tensor.name):
            new = _safe_variant(tensor.name, taken)
            taken.add(new)
            renames[tensor.name] = new
    if renames:
        _rename_uses(graph, renames)
    return {new: old for old, new in renames.items()}


def missing_handlers(model, supported: dict[str, list[int]]) -> list[str]:
    """Ops of ``model`` whose version at the model's opset onnx-tf has no handler for.

    Args:
        model: An ONNX ModelProto.
        supported: onnx-tf's ``backend_opset_version`` table (op type -> handled versions).

    Returns:
        ``"Op-version"`` strings, in graph order, without repeats.
    """
    import onnx.defs

    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
    missing: list[str] = []
    for node in model.graph.node:
        if node.domain not in ("", "ai.onnx"):
            label = f"{node.domain}::{node.op_type}"
        else:
            try:
                since = onnx.defs.get_schema(
                    node.op_type, opset or onnx.defs.onnx_opset_version()
                ).since_version
            except onnx.defs.SchemaError:
                since = None
            label = f"{node.op_type}-{since}" if since is not None else node.op_type
            if since is not None and since in supported.get(node.op_type, ()):
                continue
        if label not in missing:
            missing.append(label)
    return missing
