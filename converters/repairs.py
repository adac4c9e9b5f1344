"""ONNX rewrites that keep a graph's meaning and get it through a converter that refuses it as is.

Each pass takes an ONNX file and writes a rewritten copy; the caller converts the copy, and what the
converter makes is validated against the reference like any other artifact, so a pass can never
make a wrong artifact look right.

- :func:`fix_batch`: every graph input's and output's batch axis (the first) fixed to ``N``. Graphs
  exported with a dynamic batch compute shapes at run time (``Shape -> Gather -> Concat ->
  Reshape``), which onnx2tf cannot follow through attention blocks (``Cannot convert a partially
  known TensorShape``, a Softmax over ``(None, None, None, None)``); with the batch fixed, its
  constant folding (onnxsim) turns them into constants. The artifact then runs at batch ``N`` only,
  which validation measures and the report states (``static N``).
"""

from __future__ import annotations

from pathlib import Path

from onnxpipe.models.errors import ConversionError

__all__ = ["fix_batch"]


def fix_batch(source: Path, dest: Path, batch: int = 1) -> list[str]:
    """Write ``source`` to ``dest`` with the first axis of every graph input and output fixed to ``batch``.

    Only axes that are symbolic or unknown change; intermediate shapes are inferred again.

    Returns:
        The tensors whose batch axis was fixed (empty: the graph had no dynamic batch; ``dest`` is
        still written).

    Raises:
        ConversionError: ``source`` is not a readable ONNX model.
    """
    import onnx

    try:
        model = onnx.load(str(source))
    except Exception as e:  # onnx raises DecodeError, ValueError, OSError...
        raise ConversionError(f"{source}: not a readable ONNX model ({type(e).__name__})") from e
    initializers = {i.name for i in model.graph.initializer}
    fixed = []
    for value in [*model.graph.input, *model.graph.output]:
        if value.name in initializers or not value.type.HasField("tensor_type"):
            continue
        dims = value.type.tensor_type.shape.dim
        if dims and not dims[0].HasField("dim_value"):
            dims[0].Clear()
            dims[0].dim_value = batch
            fixed.append(value.name)
    if fixed:
        del model.graph.value_info[:]  # inferred again below, with the batch fixed
        model = onnx.shape_inference.infer_shapes(model)
    onnx.save(model, str(dest))
    return fixed
