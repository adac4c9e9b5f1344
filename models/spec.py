"""Declarative description of a model's interface: tensors, dynamic axes, data and tolerances."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from onnxpipe.models.errors import UnknownNameError, UsageError

__all__ = [
    "KINDS",
    "NOT_DATA",
    "PRECISIONS",
    "ModelSpec",
    "TensorSpec",
    "Tolerance",
    "default_tolerances",
    "not_invented_message",
    "random_values",
]

#: What an input can be besides plain data over the model's value range (``TensorSpec.kind``).
KINDS = ("attention_mask", "waveform", "index", "shape", "value")

#: Kinds whose values are not data: never invented, they come from the user's inputs, fed whole.
NOT_DATA = ("shape", "value")

#: Precisions an artifact can have, from exact to most aggressive.
PRECISIONS = ("fp32", "fp16", "dynamic_int8", "int16x8", "int8")


@dataclass(frozen=True)
class TensorSpec:
    """One named input or output tensor.

    Attributes:
        name: The tensor's name in PyTorch/ONNX.
        shape: Dimensions; a string names a dynamic axis (e.g. ``"batch"``).
        dtype: NumPy dtype name.
        layout: Axis letters in the reference (PyTorch) layout, e.g. ``"NCHW"``; ``None`` when
            the axes have no spatial meaning.
        kind: ``None`` for data over the model's value range; ``"attention_mask"`` for 1s then 0s
            per row (at least one 1: a row that attends to nothing has no defined output);
            ``"waveform"`` for raw audio (its edge cases are signals, not constant offsets);
            ``"index"`` for indices into a table (random values only within ``value_range``, the
            table's size; none when that is unknown); ``"shape"`` for a shape, a size or axes;
            ``"value"`` for a 0-d value or one that chooses a branch (``If``'s condition, a sample
            rate): neither is randomised (see :mod:`models.onnx_roles`).
        value_range: This input's own range (``[lo, hi)`` for integers), over the model's.
        why: For ``index``, ``shape`` and ``value``: what the graph does with it, for messages.
        batch_axis: The sample axis (samples are stacked on it); ``None`` when the tensor has none:
            an input fed whole with every batch (a recurrent state of the whole sequence, a 0-d
            value), an output computed once per call. A fixed size there is a fixed batch.
    """

    name: str
    shape: tuple[int | str, ...]
    dtype: str = "float32"
    layout: str | None = None
    kind: str | None = None
    value_range: tuple[float, float] | None = None
    why: str | None = None
    batch_axis: int | None = 0

    @property
    def invented(self) -> bool:
        """Whether random and edge values may be made up for this input.

        Not for a shape, nor for an index into a table of unknown size.
        """
        return self.kind not in NOT_DATA and not (self.kind == "index" and self.value_range is None)

    def __post_init__(self) -> None:
        if self.kind is not None and self.kind not in KINDS:
            raise UnknownNameError("input kind", self.kind, KINDS)
        if self.kind in NOT_DATA or not self.shape:
            object.__setattr__(self, "batch_axis", None)  # one value: no sample axis
        elif self.batch_axis is not None and not 0 <= self.batch_axis < len(self.shape):
            raise UsageError(
                f"tensor {self.name!r}: batch axis {self.batch_axis} of shape {list(self.shape)}"
            )

    @property
    def whole(self) -> bool:
        """Whether this input is one value fed whole with every batch, not rows of samples."""
        return self.batch_axis is None

    @property
    def dynamic_axes(self) -> dict[int, str]:
        """Axis index -> name for every dynamic dimension."""
        return {i: d for i, d in enumerate(self.shape) if isinstance(d, str)}

    @property
    def sample_shape(self) -> tuple[int | str, ...]:
        """The shape of one sample: the shape without its sample axis (all of it when it has none)."""
        if self.batch_axis is None:
            return self.shape
        return self.shape[: self.batch_axis] + self.shape[self.batch_axis + 1 :]

    def concrete_shape(self, batch: int) -> tuple[int, ...]:
        """The shape with the sample axis set to ``batch`` (and any other dynamic axis, unresolved, too)."""
        return tuple(
            batch if isinstance(d, str) or i == self.batch_axis else d for i, d in enumerate(self.shape)
        )

    def to_rows(self, value: Any) -> Any:
        """``value`` in this tensor's layout -> samples first (its sample axis moved to axis 0)."""
        import numpy as np

        return value if self.batch_axis in (None, 0) else np.moveaxis(value, self.batch_axis, 0)

    def from_rows(self, rows: Any) -> Any:
        """Inverse of :meth:`to_rows`: samples first -> this tensor's layout."""
        import numpy as np

        return rows if self.batch_axis in (None, 0) else np.moveaxis(rows, 0, self.batch_axis)

    def mismatch(self, other: TensorSpec) -> str | None:
        """Why ``other`` cannot be fed what this tensor is fed (``None`` when it can).

        A named (dynamic) dimension on either side matches any size.
        """
        if other.dtype != self.dtype:
            return f"{other.name!r}: dtype {other.dtype}, expected {self.dtype}"
        if len(other.shape) != len(self.shape) or any(
            not isinstance(a, str) and not isinstance(b, str) and a != b
            for a, b in zip(self.shape, other.shape, strict=True)
        ):
            return f"{other.name!r}: shape {list(other.shape)}, expected {list(self.shape)}"
        return None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (``kind`` only when set)."""
        d = {"name": self.name, "shape": list(self.shape), "dtype": self.dtype, "layout": self.layout}
        extra = {
            "kind": self.kind,
            "value_range": self.value_range and list(self.value_range),
            "why": self.why,
        }
        d |= {k: v for k, v in extra.items() if v is not None}
        return d if self.batch_axis == 0 or not self.shape else d | {"batch_axis": self.batch_axis}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TensorSpec:
        """Inverse of :meth:`to_dict`."""
        value_range = d.get("value_range")
        return cls(
            d["name"],
            tuple(d["shape"]),
            d.get("dtype", "float32"),
            d.get("layout"),
            d.get("kind"),
            None if value_range is None else tuple(value_range),
            d.get("why"),
            d.get("batch_axis", 0),
        )


def random_values(tensor: TensorSpec, shape: tuple[int, ...], value_range: tuple[float, float], rng) -> Any:
    """Seeded random values for ``tensor`` at ``shape``.

    Uniform over the tensor's own value range, else ``value_range`` (the model's); for an attention
    mask, each row 1s then 0s, with a random number (at least one) of 1s.

    Raises:
        UsageError: The input's values cannot be made up (:attr:`TensorSpec.invented`).
    """
    import numpy as np

    if not tensor.invented:
        raise UsageError(not_invented_message(tensor))
    value_range = tensor.value_range or value_range
    if tensor.kind == "attention_mask":
        lengths = rng.integers(1, shape[-1] + 1, size=shape[:-1])
        return (np.arange(shape[-1]) < lengths[..., None]).astype(tensor.dtype)
    return rng.uniform(*value_range, size=shape).astype(tensor.dtype)


def not_invented_message(tensor: TensorSpec) -> str:
    """Why validation cannot make up values for ``tensor``, and what to give instead."""
    what = {
        "shape": "a shape, a size or axes",
        "value": "a value that is not data (a 0-d setting, or one that chooses a branch)",
    }.get(tensor.kind, "an index into a table of unknown size")
    return (
        f"input {tensor.name!r} ({tensor.dtype} {list(tensor.shape)}) carries {what}"
        + (f": it {tensor.why}" if tensor.why else "")
        + "; random values would be meaningless or invalid there, so onnxpipe does not invent them: "
        f"give its values with --inputs FILE.npz (an array named {tensor.name!r})"
    )


@dataclass(frozen=True)
class Tolerance:
    """When a candidate's outputs count as equal to the reference's.

    An output passes when every element satisfies ``|c - r| <= atol + rtol * |r|`` (NumPy's
    ``allclose`` rule), the cosine similarity is at least ``min_cosine`` and, for classifier outputs
    and when set, the top-1 agreement is at least ``min_top1``.
    """

    atol: float
    rtol: float
    min_cosine: float
    min_top1: float | None = None

    def violation(self, reference: Any, candidate: Any) -> float:
        """Largest ``|c - r| - (atol + rtol * |r|)`` over the elements; ``<= 0`` means within bounds.

        Only the element-wise bound, over the positions where both are finite; non-finite values,
        cosine and top-1 are judged by :mod:`validation.parity`.
        """
        import numpy as np

        r = np.asarray(reference, dtype=np.float64)
        c = np.asarray(candidate, dtype=np.float64)
        if r.shape != c.shape:
            return float("inf")
        finite = np.isfinite(r) & np.isfinite(c)  # NaN and Inf are counted apart (Metrics.nonfinite)
        if not finite.any():
            return 0.0
        r, c = r[finite], c[finite]
        excess = np.abs(c - r) - (self.atol + self.rtol * np.abs(r))
        return float(np.nan_to_num(excess, nan=np.inf).max())

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Tolerance:
        """Inverse of :meth:`to_dict`."""
        return cls(**d)


def default_tolerances() -> dict[str, Tolerance]:
    """Tolerances per precision, as tabled in the README.

    fp32 differences come from kernel summation order only (measured ~1e-6 on the digits models),
    so the bound is tight. fp16 stores weights in half precision (10-bit mantissa, relative error
    ~5e-4 per weight) and errors accumulate through the layers, hence the looser bound. The
    full-integer precisions (int8, int16x8) saturate activations beyond the calibrated range: on
    the digits CNN the edge-case inputs dominate their max error (2.2, against 0.5 on validation
    samples, for both), so they share one bound and are judged by top-1 agreement as well.
    """
    return {
        "fp32": Tolerance(atol=1e-4, rtol=1e-4, min_cosine=0.99999),
        "fp16": Tolerance(atol=2e-2, rtol=1e-2, min_cosine=0.999, min_top1=0.99),
        "dynamic_int8": Tolerance(atol=0.5, rtol=0.1, min_cosine=0.98, min_top1=0.95),
        "int16x8": Tolerance(atol=1.0, rtol=0.2, min_cosine=0.95, min_top1=0.95),
        "int8": Tolerance(atol=1.0, rtol=0.2, min_cosine=0.95, min_top1=0.95),
        # TensorFlow.js 8-bit weights (affine per tensor, dequantized at load, float32 compute):
        # the weight error of dynamic_int8 without its activation quantization.
        "uint8": Tolerance(atol=0.5, rtol=0.1, min_cosine=0.98, min_top1=0.95),
    }


@dataclass(frozen=True)
class ModelSpec:
    """Interface of a model: what it takes, what it gives, what data it sees, how close is close.

    Attributes:
        name: Architecture name in the registry.
        inputs: Input tensors, in call order.
        outputs: Output tensors, in return order.
        dataset: Name of the dataset in :mod:`models.data` the model is trained and validated on.
        value_range: Range of the input values in that dataset (used for random and edge inputs).
        opset: Default ONNX opset for export.
        tolerances: Precision name -> :class:`Tolerance`.
        baked: Inputs of the user's model that this one has as constants (a setting that chose a
            branch), name -> the value baked in: the user's samples may still carry it, equal.
    """

    name: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    dataset: str = "digits"
    value_range: tuple[float, float] = (0.0, 1.0)
    opset: int = 18
    tolerances: Mapping[str, Tolerance] = field(default_factory=default_tolerances)
    baked: Mapping[str, Any] = field(default_factory=dict)

    def tolerance(self, precision: str) -> Tolerance:
        """The tolerance for ``precision`` (the default one when the spec predates that precision)."""
        found = self.tolerances.get(precision) or default_tolerances().get(precision)
        if found is None:
            raise UnknownNameError("precision", precision, {**default_tolerances(), **self.tolerances})
        return found

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (also stored inside checkpoints, so only plain types)."""
        return {
            "name": self.name,
            "inputs": [t.to_dict() for t in self.inputs],
            "outputs": [t.to_dict() for t in self.outputs],
            "dataset": self.dataset,
            "value_range": list(self.value_range),
            "opset": self.opset,
            "tolerances": {k: v.to_dict() for k, v in self.tolerances.items()},
        } | ({"baked": dict(self.baked)} if self.baked else {})

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ModelSpec:
        """Inverse of :meth:`to_dict`."""
        return cls(
            name=d["name"],
            inputs=tuple(TensorSpec.from_dict(t) for t in d["inputs"]),
            outputs=tuple(TensorSpec.from_dict(t) for t in d["outputs"]),
            dataset=d.get("dataset", "digits"),
            value_range=tuple(d.get("value_range", (0.0, 1.0))),
            opset=d.get("opset", 18),
            tolerances={k: Tolerance.from_dict(v) for k, v in d.get("tolerances", {}).items()}
            or default_tolerances(),
            baked=dict(d.get("baked", {})),
        )
