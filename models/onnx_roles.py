"""What an ONNX graph does with each integer input: data, an index into a table, or a shape.

Random values are meaningless, and often invalid, for an input that carries a shape (``Expand``'s
target shape, ``Reshape``'s, ``Tile``'s repeats, ``Slice``'s starts...): ONNX Runtime refuses an
``Expand`` to shape ``[0, 0, 0]`` (``INVALID_ARGUMENT``), and a converter may bake the value it saw
while tracing into the file, which then passes on that value and is wrong on any other. Such an
input is found here by following each integer graph input through the ops that carry a shape's
value along (``Cast``, ``Concat``, ``Unsqueeze``, arithmetic...) until it reaches a position that
takes a shape, a count or axes. An integer input that reaches a ``Gather``-like op's indices is an
index: random values are meaningful only below the size of the table it indexes, when that size is
known (an initializer's).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["InputRole", "input_roles"]

#: op type -> positions of inputs that take a shape, a size, a count or axes.
SHAPE_POSITIONS: dict[str, tuple[int, ...]] = {
    "Reshape": (1,),
    "Expand": (1,),
    "Tile": (1,),
    "Slice": (1, 2, 3, 4),
    "ConstantOfShape": (0,),
    "Range": (0, 1, 2),
    "Resize": (3,),
    "OneHot": (1,),
    "TopK": (1,),
    "Pad": (1, 3),
    "Split": (1,),
    "Squeeze": (1,),
    "Unsqueeze": (1,),
    "ReduceSum": (1,),
    "ReduceMean": (1,),
    "ReduceMax": (1,),
    "ReduceMin": (1,),
    "ReduceProd": (1,),
    "ReduceL1": (1,),
    "ReduceL2": (1,),
    "ReduceLogSumExp": (1,),
    "ReduceSumSquare": (1,),
    "CenterCropPad": (1, 2),
    "Trilu": (1,),
    "CumSum": (1,),
    "NonMaxSuppression": (2,),
    "RandomNormalLike": (0,),
    "Upsample": (1,),
}

#: op type -> positions of inputs that choose a branch or a count of iterations: values that are not
#: data (a sample rate compared with 16000 and fed to ``If``), never randomised.
BRANCH_POSITIONS: dict[str, tuple[int, ...]] = {"If": (0,), "Loop": (0, 1)}

#: op type -> (position of the indices, position of the table they index).
INDEX_POSITIONS: dict[str, tuple[int, int]] = {
    "Gather": (1, 0),
    "GatherElements": (1, 0),
    "GatherND": (1, 0),
    "ScatterElements": (1, 0),
    "ScatterND": (1, 0),
    "Scatter": (1, 0),
    "OneHot": (0, -1),
}

#: Ops whose output carries the values of these inputs on (a shape computed from an input is a shape).
CARRY_POSITIONS: dict[str, tuple[int, ...]] = {
    "Cast": (0,),
    "Identity": (0,),
    "Concat": (),  # every input
    "Squeeze": (0,),
    "Unsqueeze": (0,),
    "Reshape": (0,),
    "Flatten": (0,),
    "Slice": (0,),
    "Gather": (0,),
    "Add": (),
    "Sub": (),
    "Mul": (),
    "Div": (),
    "Neg": (),
    "Abs": (),
    "Max": (),
    "Min": (),
    "Clip": (0,),
    "Mod": (0,),
    "Equal": (),
    "Greater": (),
    "GreaterOrEqual": (),
    "Less": (),
    "LessOrEqual": (),
    "Not": (),
    "And": (),
    "Or": (),
}

_INTEGER_TYPES = {2, 3, 4, 5, 6, 7, 12, 13}  # onnx.TensorProto: (U)INT8/16/32/64


@dataclass(frozen=True)
class InputRole:
    """What one integer input is to the graph.

    Attributes:
        kind: ``"shape"`` or ``"value"`` (never randomised), or ``"index"``.
        why: Where it goes, e.g. ``"feeds Expand's input 1 (node 'expand_0')"``.
        high: For an index: the size of the table it indexes (random values lie in ``[0, high)``);
            ``None`` when not known, and then it is not randomised either.
    """

    kind: str
    why: str
    high: int | None = None


def _table_size(model, table: str, axis: int) -> int | None:
    """The size of initializer ``table`` along ``axis``, when it is one."""
    for init in model.graph.initializer:
        if init.name == table and len(init.dims) > abs(axis):
            return int(init.dims[axis])
    return None


def input_roles(model) -> dict[str, InputRole]:
    """Graph input name -> its role, for each one that is not plain data.

    Integer inputs are followed through the graph (:func:`_follow`); any input with no axis (0-d) is
    a ``"value"``: a setting fed whole (a sample rate, a threshold), never rows of samples.

    Args:
        model: An ``onnx.ModelProto``.
    """
    graph = model.graph
    initializers = {i.name for i in graph.initializer}
    consumers: dict[str, list] = {}
    for node in graph.node:
        for pos, name in enumerate(node.input):
            if name:
                consumers.setdefault(name, []).append((node, pos))
    roles: dict[str, InputRole] = {}
    for value in graph.input:
        if value.name in initializers:
            continue
        tensor = value.type.tensor_type
        role = _follow(model, value.name, consumers) if tensor.elem_type in _INTEGER_TYPES else None
        if tensor.HasField("shape") and not tensor.shape.dim and (role is None or role.kind == "index"):
            role = InputRole("value", "has no axis (a 0-d setting, not rows of samples)")
        if role is not None:
            roles[value.name] = role
    return roles


def _follow(model, start: str, consumers: dict[str, list]) -> InputRole | None:
    """The first shape (else index) position that values of ``start`` reach, breadth first."""
    seen, frontier, index = {start}, [start], None
    while frontier:
        name = frontier.pop(0)
        for node, pos in consumers.get(name, []):
            label = f"{node.op_type}'s input {pos} (node {node.name or node.output[0]!r})"
            via = "" if name == start else f" through {name!r}"
            if pos in SHAPE_POSITIONS.get(node.op_type, ()):
                return InputRole("shape", f"feeds {label}{via}")
            if pos in BRANCH_POSITIONS.get(node.op_type, ()):
                return InputRole("value", f"chooses {label}{via}")
            if node.op_type in INDEX_POSITIONS and pos == INDEX_POSITIONS[node.op_type][0] and index is None:
                table = INDEX_POSITIONS[node.op_type][1]
                high = None
                if table >= 0 and len(node.input) > table:
                    axis = next((a.i for a in node.attribute if a.name == "axis"), 0)
                    high = _table_size(model, node.input[table], axis)
                index = InputRole("index", f"indexes {label}", high)
                continue
            carried = CARRY_POSITIONS.get(node.op_type)
            if carried is not None and (not carried or pos in carried):
                for out in node.output:
                    if out and out not in seen:
                        seen.add(out)
                        frontier.append(out)
    return index
