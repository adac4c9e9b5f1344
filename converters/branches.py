"""Settings baked into a graph, and the ``If`` branches they choose taken in its place.

A 0-d input that chooses a branch (Silero VAD's sample rate ``sr``: ``If(sr == 16000)``) is one
value for a deployment, and converters cannot take the ``If`` around it (onnx2tf 1.28 fails on
it; onnx-tf 1.10 has no handler for If-16). Given its value (the user's ``--inputs``), the input
becomes a constant, each ``If`` whose condition is then a constant is replaced by the branch it
takes (repeatedly: a branch taken may hold more), and the graph has one input fewer. A condition
on a size (``Shape(x)[-1] == 1``) is a constant too where the sizes are fixed. The caller checks
that the result computes what the original computes with that value fed.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

__all__ = ["bake_values"]


def _inferred_dims(model) -> dict[str, list[int | None]]:
    """Tensor name -> its dims as ONNX shape inference finds them (``None`` where not a fixed size)."""
    import onnx

    try:
        inferred = onnx.shape_inference.infer_shapes(model).graph
    except Exception:  # a graph inference cannot follow: no sizes known, nothing folded from them
        return {}
    dims = {}
    for v in [*inferred.input, *inferred.value_info, *inferred.output]:
        t = v.type.tensor_type
        if v.type.HasField("tensor_type") and t.HasField("shape"):
            dims[v.name] = [d.dim_value if d.HasField("dim_value") else None for d in t.shape.dim]
    return dims


def _sizes_as_constants(graph, dims: dict, constants: dict[str, np.ndarray]) -> None:
    """Add to ``constants`` what ``Shape`` (and ``Gather`` of it) give where the sizes are fixed.

    A condition like ``Shape(x)[-1] == 1`` is a constant once the input's sizes are: with them
    fixed, such ``If``s can be taken too (Silero VAD's decoder branches on its frame count).
    """
    shapes = {}
    for node in graph.node:
        if node.op_type != "Shape" or node.input[0] not in dims:
            continue
        attrs = {a.name: a.i for a in node.attribute}
        full = dims[node.input[0]]
        start, end = attrs.get("start", 0), attrs.get("end", len(full))
        shapes[node.output[0]] = full[start:end]
        if all(d is not None for d in full[start:end]):
            constants[node.output[0]] = np.array(full[start:end], np.int64)
    for node in graph.node:
        if node.op_type != "Gather" or node.input[0] not in shapes or node.input[1] not in constants:
            continue
        known = shapes[node.input[0]]
        index = np.asarray(constants[node.input[1]])
        picked = [known[int(i)] if -len(known) <= int(i) < len(known) else None for i in index.reshape(-1)]
        if all(d is not None for d in picked):
            constants[node.output[0]] = np.array(picked, np.int64).reshape(index.shape)


def _constant(graph, name: str, constants: dict[str, np.ndarray], opsets) -> np.ndarray | None:
    """The value of ``name`` when it follows from constants alone (``None`` when an input feeds it)."""
    import onnx
    from onnx import helper, numpy_helper
    from onnx.reference import ReferenceEvaluator

    if name in constants:
        return constants[name]
    producers = {o: n for n in graph.node for o in n.output}
    needed, seen, wanted = [name], set(), set()
    while needed:
        tensor = needed.pop()
        if tensor in constants or tensor in seen or not tensor:
            continue
        node = producers.get(tensor)
        if node is None or any(a.type == onnx.AttributeProto.GRAPH for a in node.attribute):
            return None  # a graph input, or a value computed by a subgraph
        seen.add(tensor)
        wanted.add(id(node))
        needed += list(node.input)
    nodes = [n for n in graph.node if id(n) in wanted]  # in the graph's (topological) order
    used = {i for n in nodes for i in n.input}
    sub = helper.make_graph(
        nodes,
        "constant",
        [],
        [helper.make_tensor_value_info(name, onnx.TensorProto.UNDEFINED, None)],
        [numpy_helper.from_array(v, k) for k, v in constants.items() if k in used],
    )
    model = helper.make_model(sub, opset_imports=opsets)
    try:
        return np.asarray(ReferenceEvaluator(model).run(None, {})[0])
    except Exception:  # an op the reference evaluator cannot run: the branch stays
        return None


def _rename_clashes(branch, taken: set[str]) -> None:
    """Give every name the branch defines that the outer graph also uses a fresh one, in place."""
    defined = {o for n in branch.node for o in n.output if o} | {i.name for i in branch.initializer}
    renames = {}
    for name in sorted(defined & taken):
        k, fresh = 0, f"{name}__taken"
        while fresh in taken or fresh in defined:
            k += 1
            fresh = f"{name}__taken{k}"
        renames[name] = fresh
    if not renames:
        return
    for node in branch.node:
        node.input[:] = [renames.get(i, i) for i in node.input]
        node.output[:] = [renames.get(o, o) for o in node.output]
    for init in branch.initializer:
        init.name = renames.get(init.name, init.name)
    for out in branch.output:
        out.name = renames.get(out.name, out.name)


def bake_values(model, values: Mapping[str, np.ndarray]) -> list[str]:
    """Make ``values``' inputs constants of ``model`` and take the ``If`` branches they choose (in place).

    Returns:
        What was done, one line each (``"sr = 16000 baked in"``, ``"If 'If_0': then_branch taken"``).
    """
    from onnx import helper, numpy_helper

    graph = model.graph
    notes = []
    for name, value in values.items():
        declared = next((i for i in graph.input if i.name == name), None)
        if declared is None:
            continue
        graph.input.remove(declared)
        graph.initializer.append(numpy_helper.from_array(np.asarray(value), name))
        notes.append(f"{name} = {np.asarray(value).tolist()} baked in")
    for _ in range(1000):  # each pass takes one branch; a taken branch may hold more
        constants = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
        for node in graph.node:
            if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
                constants[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
        if any(n.op_type == "If" for n in graph.node):
            _sizes_as_constants(graph, _inferred_dims(model), constants)
        for pos, node in enumerate(graph.node):
            if node.op_type != "If":
                continue
            cond = _constant(graph, node.input[0], constants, model.opset_import)
            if cond is None or cond.size != 1:
                continue
            which = "then_branch" if bool(cond.reshape(-1)[0]) else "else_branch"
            branch = next(a.g for a in node.attribute if a.name == which)
            taken = {t for n in graph.node for t in (*n.input, *n.output)} | {
                i.name for i in graph.initializer
            }
            taken |= {i.name for i in graph.input} | {o.name for o in graph.output}
            _rename_clashes(branch, taken)
            inlined = list(branch.node) + [
                helper.make_node("Identity", [b.name], [o], name=f"{node.name or 'If'}_{i}_taken")
                for i, (b, o) in enumerate(zip(branch.output, node.output, strict=True))
            ]
            graph.initializer.extend(branch.initializer)
            del graph.node[pos]
            for k, n in enumerate(inlined):
                graph.node.insert(pos + k, n)
            notes.append(f"If {node.name!r}: {which} taken")
            break
        else:
            return notes
    return notes
