"""Map a converted artifact's tensors back to the reference: names and axis order.

onnx2tf moves the channel axis last on 3-D, 4-D and 5-D tensors (NCW -> NWC, NCHW -> NHWC,
NCDHW -> NDHWC) and renames outputs. Each binding is decided from the shapes the artifact
declares; when both the identity and the channels-last order fit (e.g. ``[N, 8, 8, 8]``), onnx2tf's
own rule decides, and the binding records which rule was used.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from models.artifact import TensorBinding
from models.errors import ConversionError
from models.spec import TensorSpec

__all__ = ["bind_tensors", "channels_last_perm"]

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
