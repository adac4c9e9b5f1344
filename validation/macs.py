"""Multiply-accumulate count of an ONNX graph at batch 1, from its shapes (after shape inference).

Counted: Conv and ConvTranspose (output elements x input channels per group x kernel size), Gemm
and MatMul (M x N x K). Element-wise ops, pooling and normalization are memory-bound and left out,
as usual for GFLOP/s figures (1 MAC = 2 FLOP).
"""

from __future__ import annotations

import math
from pathlib import Path

__all__ = ["count_macs"]


def _shape(info) -> list[int] | None:
    dims = info.type.tensor_type.shape.dim
    if not dims:
        return None
    return [d.dim_value if d.HasField("dim_value") else 1 for d in dims]  # dynamic axes (batch) -> 1


def count_macs(path: str | Path) -> int:
    """MACs of one forward pass at batch 1."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    for value in model.graph.input:  # fix dynamic axes to 1 before inference
        for d in value.type.tensor_type.shape.dim:
            if not d.HasField("dim_value"):
                d.dim_value = 1
    model = onnx.shape_inference.infer_shapes(model)
    shapes = {v.name: _shape(v) for v in (*model.graph.input, *model.graph.value_info, *model.graph.output)}
    shapes.update({t.name: list(t.dims) for t in model.graph.initializer})
    total = 0
    for node in model.graph.node:
        out = shapes.get(node.output[0]) if node.output else None
        if node.op_type in ("Conv", "ConvTranspose") and out and len(node.input) > 1:
            w = shapes.get(node.input[1])
            if w:
                group = next((a.i for a in node.attribute if a.name == "group"), 1)
                per_output = (
                    math.prod(w[1:]) if node.op_type == "Conv" else (w[0] // group) * math.prod(w[2:])
                )
                total += math.prod(out) * per_output
        elif node.op_type in ("Gemm", "MatMul") and out:
            a = shapes.get(node.input[0])
            if a:
                trans_a = next((x.i for x in node.attribute if x.name == "transA"), 0)
                k = a[-2] if (node.op_type == "Gemm" and trans_a) else a[-1]
                total += math.prod(out) * k
    return total
