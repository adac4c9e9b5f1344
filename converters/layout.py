"""Map a converted artifact's tensors back to the reference: names and axis order.

onnx2tf moves the channel axis last on 3-D, 4-D and 5-D tensors (NCW -> NWC, NCHW -> NHWC,
NCDHW -> NDHWC) and renames outputs. Each binding is decided from the shapes the artifact
declares; when both the identity and the channels-last order fit (e.g. ``[N, 8, 8, 8]``), onnx2tf's
own rule decides, and the binding records which rule was used. onnx2tf does not always follow it
(it leaves a ``[N, 8, 8]`` sequence input of a recurrent net as it is), so an ambiguous binding is
then settled by measurement (:func:`settle_ambiguous`): the converted file is run on a probe in
each candidate layout and the one that reproduces ONNX Runtime is kept.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from models.artifact import TensorBinding
from models.errors import ConversionError
from models.spec import TensorSpec

__all__ = ["bind_tensors", "channels_last_perm", "settle_ambiguous"]

_LAYOUT_LETTERS = {3: ("NCW", "NWC"), 4: ("NCHW", "NHWC"), 5: ("NCDHW", "NDHWC")}


def channels_last_perm(rank: int) -> tuple[int, ...]:
    """The permutation that moves axis 1 last: ``(0, 2, ..., rank-1, 1)``."""
    return (0, *range(2, rank), 1)


def _fits(ref_shape: Sequence[int | str], art_shape: Sequence[int]) -> bool:
    if len(ref_shape) != len(art_shape):
        return False
    return all(
        isinstance(r, str) or a in (-1, None) or r == a for r, a in zip(ref_shape, art_shape, strict=True)
    )


def _bind_one(ref: TensorSpec, art_name: str, art_shape: Sequence[int], channels_last: bool) -> TensorBinding:
    rank = len(ref.shape)
    perm = channels_last_perm(rank) if rank in _LAYOUT_LETTERS else None
    moved = [ref.shape[p] for p in perm] if perm else None
    identity_fits = _fits(ref.shape, art_shape)
    moved_fits = moved is not None and _fits(moved, art_shape)
    if moved_fits and (channels_last or not identity_fits):
        return TensorBinding(ref.name, art_name, perm, ref.layout and _LAYOUT_LETTERS[rank][1])
    if identity_fits:
        return TensorBinding(ref.name, art_name, None, ref.layout)
    raise ConversionError(
        f"tensor {ref.name!r}: the artifact declares {art_name!r} with shape {list(art_shape)}, which is "
        f"neither the reference shape {list(ref.shape)} nor its channels-last form {moved}"
    )


def bind_tensors(
    refs: Sequence[TensorSpec],
    declared: Sequence[Mapping[str, Any]],
    *,
    channels_last: bool,
    match_names: bool = True,
) -> tuple[TensorBinding, ...]:
    """Bind reference tensors to an artifact's declared tensors.

    Args:
        refs: The reference tensors, in order.
        declared: The artifact's tensors (``name``, ``shape`` with -1 for dynamic axes), in order.
        channels_last: Whether the converter moves channels last where the shape allows it.
        match_names: Bind by name where every reference name is present; otherwise by position.

    Raises:
        ConversionError: Counts differ or a shape fits neither layout.
    """
    if len(refs) != len(declared):
        raise ConversionError(
            f"the artifact has {len(declared)} tensors ({[d['name'] for d in declared]}), "
            f"the reference {len(refs)} ({[r.name for r in refs]})"
        )
    by_name = {d["name"]: d for d in declared}
    if match_names and all(r.name in by_name for r in refs):
        pairs = [(r, by_name[r.name]) for r in refs]
    else:
        pairs = list(zip(refs, declared, strict=True))
    return tuple(_bind_one(r, d["name"], d["shape"], channels_last) for r, d in pairs)


def _other(ref: TensorSpec, binding: TensorBinding, art_shape: Sequence[int]) -> TensorBinding | None:
    """The other binding that fits ``art_shape`` too (``None`` when the binding is unambiguous)."""
    rank = len(ref.shape)
    if rank not in _LAYOUT_LETTERS:
        return None
    perm = channels_last_perm(rank)
    moved = [ref.shape[p] for p in perm]
    if not (_fits(ref.shape, art_shape) and _fits(moved, art_shape)):
        return None
    if binding.perm is None:
        return TensorBinding(ref.name, binding.artifact_name, perm, ref.layout and _LAYOUT_LETTERS[rank][1])
    return TensorBinding(ref.name, binding.artifact_name, None, ref.layout)


def settle_ambiguous(
    onnx_path: Any,
    refs_in: Sequence[TensorSpec],
    refs_out: Sequence[TensorSpec],
    tflite_path: Any,
    inputs: tuple[TensorBinding, ...],
    outputs: tuple[TensorBinding, ...],
) -> tuple[tuple[TensorBinding, ...], tuple[TensorBinding, ...]]:
    """Choose, for tensors whose shape fits both layouts, the layout the converted file really uses.

    Runs ONNX Runtime and the (float) TFLite file on one seeded probe, every combination of the
    ambiguous bindings (at most 16), and keeps the closest. Unambiguous bindings are returned as given.
    """
    import itertools

    import numpy as np
    import onnxruntime as ort
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_path=str(tflite_path))
    details = {d["name"]: d for d in it.get_input_details()}
    out_details = {d["name"]: d for d in it.get_output_details()}
    in_options = [
        [b, *filter(None, [_other(r, b, details[b.artifact_name]["shape_signature"])])]
        for r, b in zip(refs_in, inputs, strict=True)
    ]
    out_options = [
        [b, *filter(None, [_other(r, b, out_details[b.artifact_name]["shape_signature"])])]
        for r, b in zip(refs_out, outputs, strict=True)
    ]
    combos = list(itertools.product(*in_options, *out_options))
    if len(combos) == 1 or len(combos) > 16:
        return inputs, outputs
    batch = next((int(d["shape_signature"][0]) for d in details.values() if d["shape_signature"][0] > 0), 2)
    rng = np.random.default_rng(0)
    probe = {
        t.name: rng.uniform(0.0, 1.0, size=t.concrete_shape(batch)).astype(t.dtype)
        if np.dtype(t.dtype).kind == "f"
        else rng.integers(0, 2, size=t.concrete_shape(batch)).astype(t.dtype)
        for t in refs_in
    }
    expected = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"]).run(
        [t.name for t in refs_out], probe
    )
    best, best_error = (inputs, outputs), np.inf
    for combo in combos:
        ins, outs = combo[: len(inputs)], combo[len(inputs) :]
        for b in ins:
            value = np.ascontiguousarray(b.to_artifact(probe[b.name]))
            it.resize_tensor_input(details[b.artifact_name]["index"], list(value.shape))
        it.allocate_tensors()
        for b in ins:
            it.set_tensor(
                details[b.artifact_name]["index"], np.ascontiguousarray(b.to_artifact(probe[b.name]))
            )
        it.invoke()
        error = 0.0
        for b, ref in zip(outs, expected, strict=True):
            got = b.to_reference(it.get_tensor(out_details[b.artifact_name]["index"]))
            error = max(error, float(np.abs(got - ref).max()) if got.shape == ref.shape else np.inf)
        if error < best_error:
            best, best_error = (tuple(ins), tuple(outs)), error
    return best
