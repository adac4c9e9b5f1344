"""One interface model for every source: each axis a sample axis, a fixed size or a free size.

Real models do not all take "a dynamic batch on axis 0, every other size fixed". Their batch may be
fixed to 1, written ``-1``, or sit on axis 1 (a recurrent state ``[2, batch, 128]``); heights,
widths and lengths may be free (``DynamicDimension.1``, unknown, ``-1``); a 0-d input may choose a
branch. Here each tensor's sample axis is found (:func:`batch_axes`) and every free size is given
a value before anything runs (:func:`resolve_sizes`): from ``--input-shape NAME=...``, else the
user's samples, else a documented default per kind (:data:`DEFAULT_SIZES`).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from typing import Any

from onnxpipe.models.errors import UsageError
from onnxpipe.models.spec import NOT_DATA, ModelSpec, TensorSpec

__all__ = [
    "DEFAULT_SIZES",
    "Sizing",
    "batch_axes",
    "free_axes",
    "is_unnamed",
    "parse_input_shapes",
    "resolve_sizes",
    "unnamed_dim",
]

#: What a free size is set to when neither ``--input-shape`` nor the user's samples say: the sides
#: of an image (a 4-D input with 1 or 3 channels), the length of token ids (integer inputs, as
#: ``--seq-len``), any other axis of a float input (a signal's length, a sequence of frames).
DEFAULT_SIZES = {"image side": 224, "tokens": 16, "other": 256}

_UNNAMED = re.compile(r"^\?(\d+):")


def unnamed_dim(tensor: str, axis: int) -> str:
    """The name given to an axis the graph leaves unnamed (unknown, ``-1`` or ``0``)."""
    return f"?{axis}:{tensor}"


def is_unnamed(dim: int | str) -> bool:
    """Whether ``dim`` is a free size the graph gave no name (:func:`unnamed_dim`)."""
    return isinstance(dim, str) and bool(_UNNAMED.match(dim))


def _axis_of(t: TensorSpec, batch: int | str, fallback: int | None) -> int | None:
    """The sample axis of ``t``, where the model's batch is ``batch`` (a symbol, or a fixed size)."""
    if not t.shape:
        return None
    if isinstance(batch, str) and not is_unnamed(batch):
        if batch in t.shape:
            return t.shape.index(batch)
    elif isinstance(batch, str):  # unnamed: the tensor's first unnamed axis
        found = next((i for i, d in enumerate(t.shape) if is_unnamed(d)), None)
        if found is not None:
            return found
    else:  # a fixed batch: the first axis of that size
        found = next((i for i, d in enumerate(t.shape) if d == batch), None)
        if found is not None:
            return found
    return fallback


def batch_axes(
    inputs: Sequence[TensorSpec], outputs: Sequence[TensorSpec]
) -> tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...]]:
    """Each tensor with its sample axis (``TensorSpec.batch_axis``).

    The model's batch is axis 0 of its first data input (a symbol, or a fixed size). Another input
    has its sample axis where the same symbol is (``state [2, batch, 128]``: axis 1), or for an
    unnamed batch its first unnamed axis, or for a fixed batch its first axis of that size; an input
    with none is fed whole (the state of a whole sequence). Outputs are found the same way, else
    axis 0 (a probe of the reference settles them: :func:`pipeline.sizing.size_interface`).
    """
    data = [t for t in inputs if t.kind not in NOT_DATA and t.shape]
    if not data:
        return tuple(inputs), tuple(outputs)
    batch = data[0].shape[0]
    ins = tuple(
        dataclasses.replace(t, batch_axis=0 if t is data[0] else _axis_of(t, batch, None))
        if t.kind not in NOT_DATA
        else t
        for t in inputs
    )
    outs = tuple(dataclasses.replace(t, batch_axis=_axis_of(t, batch, 0)) for t in outputs)
    return ins, outs


def free_axes(t: TensorSpec) -> list[int]:
    """The axes of ``t`` with a free size, its sample axis apart."""
    return [i for i, d in enumerate(t.shape) if isinstance(d, str) and i != t.batch_axis]


def parse_input_shapes(values: Sequence[str]) -> dict[str, tuple[int, ...]]:
    """``--input-shape NAME=1,3,640,640`` (repeatable) -> name -> shape.

    Raises:
        UsageError: Not ``NAME=d,d,...`` with positive integers, or a name given twice.
    """
    shapes: dict[str, tuple[int, ...]] = {}
    for value in values:
        name, sep, dims = value.rpartition("=")
        try:
            shape = tuple(int(d) for d in dims.split(",")) if dims.strip() else ()
        except ValueError:
            shape = None
        if not sep or not name or shape is None or any(d < 1 for d in shape):
            raise UsageError(
                f"--input-shape {value!r}: expected NAME=SIZES, sizes positive integers separated by "
                "commas (e.g. images=1,3,640,640)"
            )
        if name in shapes:
            raise UsageError(f"--input-shape: {name!r} given twice")
        shapes[name] = shape
    return shapes


def _default(t: TensorSpec, axis: int) -> tuple[int, str]:
    """The default size of a free axis of ``t``, and which default it is."""
    import numpy as np

    rank = len(t.shape)
    image = rank == 4 and (t.shape[1] in (1, 3) or t.shape[3] in (1, 3))
    if image and axis in ((2, 3) if t.shape[1] in (1, 3) else (1, 2)):
        return DEFAULT_SIZES["image side"], "image side"
    if np.dtype(t.dtype).kind in "iub":
        return DEFAULT_SIZES["tokens"], "tokens"
    return DEFAULT_SIZES["other"], "other"


@dataclasses.dataclass(frozen=True)
class Sizing:
    """The interface with every free size resolved, and where each size came from.

    Attributes:
        spec: Every axis a fixed size but the sample axes (still their symbol, or a fixed batch).
        chosen: ``"NAME axis K = SIZE (how)"`` for each free size, in input order; ``how`` is
            ``--input-shape``, ``your --inputs`` or ``default for ...``.
        invented: The inputs onnxpipe chose a size for by default (no option, no samples said).
    """

    spec: ModelSpec
    chosen: tuple[str, ...] = ()
    invented: tuple[str, ...] = ()

    @property
    def changed(self) -> bool:
        """Whether any size was resolved (the graph's declared interface must be pinned)."""
        return bool(self.chosen)


def resolve_sizes(
    spec: ModelSpec,
    shapes: Mapping[str, Sequence[int]] | None = None,
    samples: Mapping[str, Any] | None = None,
) -> Sizing:
    """Give every free size of ``spec``'s inputs a value.

    In order: ``shapes`` (``--input-shape NAME=...``: the whole shape; the size at the sample axis
    is ignored, the batch being validation's to vary), the user's ``samples`` (arrays in the
    model's layout, samples on the sample axis), then :data:`DEFAULT_SIZES`. A symbol shared by
    several inputs (``sequence`` of ``input_ids`` and ``attention_mask``) gets one value.

    Raises:
        UsageError: ``--input-shape`` names no input, has the wrong rank, or contradicts a fixed size.
    """
    shapes = dict(shapes or {})
    names = [t.name for t in spec.inputs]
    unknown = [n for n in shapes if n not in names]
    if unknown:
        raise UsageError(
            f"--input-shape {unknown[0]}=...: the model has no input {unknown[0]!r} (inputs: {', '.join(names)})"
        )
    by_symbol: dict[str, tuple[int, str]] = {}
    chosen: list[str] = []
    invented: list[str] = []
    inputs = []
    for t in spec.inputs:
        given = shapes.get(t.name)
        if given is not None:
            if len(given) != len(t.shape):
                raise UsageError(
                    f"--input-shape {t.name}={','.join(map(str, given))}: {len(given)} sizes, and "
                    f"{t.name!r} has {len(t.shape)} axes ({list(t.shape)})"
                )
            clash = [
                i for i, d in enumerate(t.shape) if isinstance(d, int) and d != given[i] and i != t.batch_axis
            ]
            if clash:
                raise UsageError(
                    f"--input-shape {t.name}={','.join(map(str, given))}: axis {clash[0]} of {t.name!r} is "
                    f"fixed to {t.shape[clash[0]]} ({list(t.shape)})"
                )
        sample = None if samples is None else samples.get(t.name)
        dims = list(t.shape)
        for axis in free_axes(t):
            symbol = t.shape[axis]
            if given is not None:
                size, how = given[axis], "--input-shape"
            elif sample is not None and getattr(sample, "ndim", -1) == len(t.shape):
                size, how = int(sample.shape[axis]), "your --inputs"
            elif not is_unnamed(symbol) and symbol in by_symbol:
                size, how = by_symbol[symbol]
            else:
                size, kind = _default(t, axis)
                how = f"default for {kind}"
                if t.name not in invented:
                    invented.append(t.name)
            if not is_unnamed(symbol):
                by_symbol.setdefault(symbol, (size, how))
            dims[axis] = size
            label = "" if is_unnamed(symbol) else f" ({symbol})"
            chosen.append(f"{t.name} axis {axis}{label} = {size} ({how})")
        inputs.append(dataclasses.replace(t, shape=tuple(dims)))
    return Sizing(dataclasses.replace(spec, inputs=tuple(inputs)), tuple(chosen), tuple(invented))
