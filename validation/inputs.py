"""Inputs that validation feeds every runtime: real samples, seeded random inputs, edge cases."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from onnxpipe.models.errors import UsageError
from onnxpipe.models.spec import ModelSpec, not_invented_message, random_values
from onnxpipe.models.user_data import UserData, load_labels, load_user_inputs

__all__ = [
    "InputConfig",
    "ValidationInputs",
    "build_inputs",
    "check_inputs",
    "load_user_inputs",
]  # (re-exported)


@dataclass(frozen=True)
class InputConfig:
    """What to feed, and at which batch sizes.

    Attributes:
        samples: Validation-split samples (all of them when larger than the split).
        random: Seeded random inputs drawn uniformly over the data's value range.
        edge: Add edge cases: zeros, the range's low and high ends, its midpoint, a checkerboard of
            both ends, and random picks of either end.
        batch: The main batch size; every input is run at it.
        sweep: Further batch sizes (for the dynamic batch axis), each run on the first
            ``sweep_inputs`` inputs.
        sweep_inputs: How many inputs each sweep size runs on.
        seed: Seed of the random inputs.
        user: ``--inputs``: an ``.npz`` (one array per model input, batch first), a folder of
            ``.npy``/``.npz`` files or of images, fed as the first group (``inputs``) in place of the
            bundled split (see :func:`models.user_data.load_user_inputs`). A path is taken as
            :class:`UserData` with no image options.
        labels: ``--labels``: class ids of the ``user`` samples (an ``.npy`` or a text file of one
            integer per line), for the accuracy of every artifact beside its top-1 agreement.
    """

    samples: int = 1000
    random: int = 64
    edge: bool = True
    batch: int = 32
    sweep: tuple[int, ...] = (1, 2, 7)
    sweep_inputs: int = 14
    seed: int = 0
    user: UserData | None = None
    labels: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "user", UserData.of(self.user))
        if self.labels is not None and self.user is None:
            raise UsageError("--labels: give the samples they label with --inputs")
        for name in ("samples", "random", "sweep_inputs"):
            if getattr(self, name) < 0:
                raise UsageError(f"{name}: got {getattr(self, name)}, expected >= 0")
        if self.batch < 1 or any(s < 1 for s in self.sweep):
            raise UsageError(f"batch sizes must be >= 1: got batch {self.batch}, sweep {list(self.sweep)}")


@dataclass(frozen=True)
class ValidationInputs:
    """Stacked inputs (reference names), their groups, and labels for dataset samples.

    ``arrays`` hold rows: each input's samples on axis 0, whatever its sample axis in the model
    (``axes``: name -> that axis; :meth:`feeds` puts them back). ``fixed``: inputs fed whole with
    every batch (:attr:`TensorSpec.whole`: a shape, a 0-d setting, a state of the whole sequence),
    in the model's layout. ``value_range``: the range random and edge floats were drawn over (the
    model's, or for a model with no dataset, that of the user's samples).
    """

    arrays: dict[str, np.ndarray]
    labels: np.ndarray | None
    groups: dict[str, tuple[int, int]]
    source: str
    fixed: dict[str, np.ndarray] = field(default_factory=dict)
    value_range: tuple[float, float] | None = None
    axes: dict[str, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return next(iter(self.arrays.values())).shape[0]

    @property
    def n_samples(self) -> int:
        """How many labelled samples lead the inputs (the dataset's, or the user's with ``--labels``)."""
        lead = "validation" if "validation" in self.groups else "inputs" if self.labels is not None else ""
        start, stop = self.groups.get(lead, (0, 0))
        return stop - start

    def slice(self, start: int, stop: int) -> dict[str, np.ndarray]:
        """Rows ``start:stop`` of every input in the model's layout, then the fixed inputs whole."""
        return self.feeds(start, stop)

    def feeds(self, start: int, stop: int, size: int | None = None) -> dict[str, np.ndarray]:
        """Rows ``start:stop`` as the model takes them: each on its sample axis, the fixed inputs whole.

        ``size``: a batch the model is fixed to; fewer rows are padded with the last one repeated.
        """
        out = {}
        for k, v in self.arrays.items():
            rows = v[start:stop]
            if size is not None and len(rows) < size:
                rows = np.concatenate([rows, np.repeat(rows[-1:], size - len(rows), axis=0)])
            axis = self.axes.get(k, 0)
            out[k] = rows if axis == 0 else np.moveaxis(rows, 0, axis)
        return out | self.fixed


def _waveform_edges(shape: tuple[int, ...], lo: float, hi: float, rng: np.random.Generator) -> np.ndarray:
    """Edge cases of raw audio: silence, a Nyquist square wave, random full-scale samples, two sines, a click.

    Not constant non-zero signals: audio models normalise each channel over time (wav2vec2's
    GroupNorm), so a DC offset is 0/0 there and its fp32 output is rounding noise (measured on a
    tiny wav2vec2: PyTorch fp32 itself is 4e-4 from its fp64 result on a constant -1, 2e-6 on
    silence or noise); their feature extractors normalise waveforms to zero mean anyway.
    """
    n = shape[-1]
    t = np.arange(n) / n
    amplitude = min(abs(lo), abs(hi))
    click = np.zeros(n)
    click[n // 2] = hi
    cases = [
        np.zeros(n),
        np.where(np.arange(n) % 2, hi, lo),
        rng.uniform(lo, hi, n),
        amplitude * np.sin(2 * np.pi * 4 * t),
        0.5 * amplitude * np.sin(2 * np.pi * (n // 8) * t),
        click,
    ]
    return np.stack([np.broadcast_to(c, shape) for c in cases])


def _edge_cases(
    shape: tuple[int, ...],
    lo: float,
    hi: float,
    dtype: str,
    rng: np.random.Generator,
    kind: str | None = None,
) -> np.ndarray:
    if kind == "attention_mask":  # every token, the first alone, half, all but the last, one to three
        n = shape[-1]
        lengths = [n, 1, max(1, n // 2), max(1, n - 1), min(n, 2), min(n, 3)]
        return np.stack([np.broadcast_to(np.arange(n) < k, shape) for k in lengths]).astype(dtype)
    if kind == "waveform":  # silence and full-scale signals; no constant offset (see _waveform_edges)
        return _waveform_edges(shape, lo, hi, rng).astype(dtype)
    if np.dtype(dtype).kind in "iu":  # integer ranges are half-open: [lo, hi)
        hi = np.ceil(hi) - 1
    checker = (np.indices(shape).sum(axis=0) % 2).astype(bool)
    cases = [
        np.zeros(shape),
        np.full(shape, lo),
        np.full(shape, hi),
        np.full(shape, (lo + hi) / 2),
        np.where(checker, hi, lo),
        np.where(rng.random(shape) < 0.5, lo, hi),
    ]
    return np.stack(cases).astype(dtype)


def check_inputs(spec: ModelSpec, config: InputConfig) -> None:
    """Refuse, before anything runs, inputs that do not fit ``spec`` or an input no value can be made up for.

    Raises:
        InputFileError: The ``--inputs`` or ``--labels`` file does not fit the model.
        UsageError: No ``--inputs``, and some input carries a shape (see :attr:`TensorSpec.invented`).
    """
    if config.user is None:
        for t in spec.inputs:
            if not t.invented:
                raise UsageError(not_invented_message(t))
        return
    user = load_user_inputs(config.user, spec)
    if config.labels is not None:
        rows = [t.to_rows(user[t.name]) for t in spec.inputs if not t.whole]
        load_labels(config.labels, len(rows[0]) if rows else 0)


def build_inputs(spec: ModelSpec, config: InputConfig = InputConfig()) -> ValidationInputs:
    """The user's samples (``--inputs``) or the dataset's validation split, random inputs, edge cases.

    An input that carries a shape is one value from ``--inputs``, fed whole with every batch; random
    and edge cases are made only when every other input's values can be made up. For a model with
    no dataset, random and edge floats span the range of the user's samples (images normalised to
    [-2, 2] are not probed over a default [0, 1]).

    Raises:
        UsageError: Some input's values cannot be made up and ``--inputs`` does not give them.
        InputFileError: The ``--inputs`` file does not fit the model (see :func:`load_user_inputs`).
    """
    rng = np.random.default_rng(config.seed)
    lo, hi = spec.value_range
    labels, source = None, "random"
    rows_of = [t for t in spec.inputs if not t.whole]
    parts: dict[str, list[np.ndarray]] = {t.name: [] for t in rows_of}
    groups: dict[str, tuple[int, int]] = {}
    fixed: dict[str, np.ndarray] = {}
    n = 0
    if config.user:
        user = load_user_inputs(config.user, spec)
        for t in spec.inputs:
            if t.whole:
                fixed[t.name] = user[t.name]
            else:
                parts[t.name].append(t.to_rows(user[t.name]))
        n = next((len(user[t.name]) for t in rows_of), 0)
        groups["inputs"], source = (0, n), f"--inputs {config.user.name}"
        floats = [user[t.name] for t in rows_of if np.dtype(t.dtype).kind == "f" and user[t.name].size]
        if floats and not spec.dataset:  # random floats over the user's data, not a declared default
            lo = float(min(a.min() for a in floats))
            hi = float(max(a.max() for a in floats))
            hi = hi if hi > lo else lo + 1.0
        if config.labels is not None:
            labels = load_labels(config.labels, n)
    else:
        for t in spec.inputs:
            if not t.invented:
                raise UsageError(not_invented_message(t))
        for t in spec.inputs:  # a state fed whole, made up once (the same for every batch)
            if t.whole:
                fixed[t.name] = random_values(t, t.concrete_shape(1), spec.value_range, rng)
        if spec.dataset and len(spec.inputs) == 1 and config.samples:
            from onnxpipe.models.data import model_arrays

            x, y = model_arrays(spec, "validation")
            k = min(config.samples, len(y))
            parts[spec.inputs[0].name].append(x[:k])
            labels, source = y[:k], f"{spec.dataset} validation split"
            groups["validation"] = (0, k)
            n = k
    if not rows_of:
        raise UsageError(
            "every input of the model carries a shape: there are no samples to run "
            f"({', '.join(t.name for t in spec.inputs)})"
        )
    inventable = all(t.invented for t in rows_of)
    if config.random and inventable:
        for t in rows_of:
            shape = (config.random, *_sample_shape(t))  # rows on the first axis, whatever the model's
            over = (lo, hi) if np.dtype(t.dtype).kind == "f" else spec.value_range
            parts[t.name].append(random_values(t, shape, over, rng))
        groups["random"] = (n, n + config.random)
        n += config.random
    if config.edge and inventable:
        for t in rows_of:
            t_lo, t_hi = t.value_range or ((lo, hi) if np.dtype(t.dtype).kind == "f" else spec.value_range)
            parts[t.name].append(_edge_cases(_sample_shape(t), t_lo, t_hi, t.dtype, rng, t.kind))
        groups["edge"] = (n, n + 6)
        n += 6
    if not n:
        raise UsageError("no inputs to validate with: samples, random and edge cases are all off")
    arrays = {k: np.concatenate(v) for k, v in parts.items()}
    axes = {t.name: t.batch_axis for t in rows_of}
    return ValidationInputs(arrays, labels, groups, source, fixed, (lo, hi), axes)


def _sample_shape(t) -> tuple[int, ...]:
    """One sample's shape (any axis left unresolved taken as 1, as the batch once was)."""
    return tuple(1 if isinstance(d, str) else d for d in t.sample_shape)
