"""Inputs that validation feeds every runtime: real samples, seeded random inputs, edge cases."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from onnxpipe.models.errors import InputFileError, UsageError
from onnxpipe.models.spec import ModelSpec, random_values

__all__ = ["InputConfig", "ValidationInputs", "build_inputs", "load_user_inputs"]


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
        user: ``--inputs``: an ``.npz`` (one array per model input, batch first) or a folder of
            ``.npy``/``.npz`` files, fed as the first group (``inputs``) in place of the bundled
            split (see :func:`load_user_inputs`).
    """

    samples: int = 1000
    random: int = 64
    edge: bool = True
    batch: int = 32
    sweep: tuple[int, ...] = (1, 2, 7)
    sweep_inputs: int = 14
    seed: int = 0
    user: str | None = None

    def __post_init__(self) -> None:
        for name in ("samples", "random", "sweep_inputs"):
            if getattr(self, name) < 0:
                raise UsageError(f"{name}: got {getattr(self, name)}, expected >= 0")
        if self.batch < 1 or any(s < 1 for s in self.sweep):
            raise UsageError(f"batch sizes must be >= 1: got batch {self.batch}, sweep {list(self.sweep)}")


@dataclass(frozen=True)
class ValidationInputs:
    """Stacked inputs (reference names and layout), their groups, and labels for dataset samples."""

    arrays: dict[str, np.ndarray]
    labels: np.ndarray | None
    groups: dict[str, tuple[int, int]]
    source: str

    def __len__(self) -> int:
        return next(iter(self.arrays.values())).shape[0]

    @property
    def n_samples(self) -> int:
        """How many dataset samples lead the inputs."""
        start, stop = self.groups.get("validation", (0, 0))
        return stop - start

    def slice(self, start: int, stop: int) -> dict[str, np.ndarray]:
        """Rows ``start:stop`` of every input."""
        return {k: v[start:stop] for k, v in self.arrays.items()}


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


def _read_arrays(path: Path) -> dict[str, np.ndarray]:
    """Name -> array from an ``.npz``, or from a folder of ``NAME.npy`` and ``.npz`` files (concatenated)."""
    files = [path] if path.is_file() else sorted(p for p in path.iterdir() if p.suffix in (".npy", ".npz"))
    if not files:
        raise InputFileError(path, "holds no .npy or .npz files")
    found: dict[str, list[np.ndarray]] = {}
    for f in files:
        try:
            if f.suffix == ".npy":
                found.setdefault(f.stem, []).append(np.load(f, allow_pickle=False))
            else:
                with np.load(f, allow_pickle=False) as data:
                    for k in data.files:
                        found.setdefault(k, []).append(data[k])
        except (OSError, ValueError) as e:
            raise InputFileError(f, f"not a NumPy array file ({e})") from e
    try:
        return {k: np.concatenate(v) if len(v) > 1 else v[0] for k, v in found.items()}
    except ValueError as e:
        raise InputFileError(path, f"its files disagree on a shape ({e})") from e


def load_user_inputs(path: str | Path, spec: ModelSpec) -> dict[str, np.ndarray]:
    """The user's samples for every model input, checked against the model before anything runs.

    Raises:
        InputFileError: Unreadable, an input missing or unknown, a dtype or shape that does not fit
            (every mismatch named, with what the model expects), or inputs with different counts.
    """
    path = Path(path)
    if not path.exists():
        raise InputFileError(path, "no such file or folder (--inputs takes an .npz or a folder of .npy/.npz)")
    arrays = _read_arrays(path)
    expected = {t.name: t for t in spec.inputs}
    problems = [f"no array for input {n!r}" for n in expected if n not in arrays]
    problems += [
        f"{k!r} is not an input of the model (inputs: {', '.join(expected)})"
        for k in arrays
        if k not in expected
    ]
    for name, t in expected.items():
        a = arrays.get(name)
        if a is None:
            continue
        want = ["N" if isinstance(d, str) else d for d in t.shape]
        if a.dtype.name != t.dtype:
            problems.append(f"{name!r}: dtype {a.dtype.name}, expected {t.dtype}")
        if a.ndim != len(t.shape) or any(
            not isinstance(d, str) and d != g for d, g in zip(t.shape, a.shape, strict=False)
        ):
            problems.append(f"{name!r}: shape {list(a.shape)}, expected {want} (N: samples)")
    counts = {k: a.shape[0] for k, a in arrays.items() if k in expected and a.ndim}
    if len(set(counts.values())) > 1:
        problems.append(f"inputs with different sample counts: {counts}")
    if not problems and not next(iter(counts.values()), 0):
        problems.append("no samples (the first axis is empty)")
    if problems:
        raise InputFileError(path, "does not fit the model: " + "; ".join(problems))
    return {name: arrays[name] for name in expected}


def build_inputs(spec: ModelSpec, config: InputConfig = InputConfig()) -> ValidationInputs:
    """The user's samples (``--inputs``) or the dataset's validation split, random inputs, edge cases."""
    rng = np.random.default_rng(config.seed)
    lo, hi = spec.value_range
    labels, source = None, "random"
    parts: dict[str, list[np.ndarray]] = {t.name: [] for t in spec.inputs}
    groups: dict[str, tuple[int, int]] = {}
    n = 0
    if config.user:
        user = load_user_inputs(config.user, spec)
        for name, a in user.items():
            parts[name].append(a)
        n = next(iter(user.values())).shape[0]
        groups["inputs"], source = (0, n), f"--inputs file {Path(config.user).name}"
    elif spec.dataset and len(spec.inputs) == 1 and config.samples:
        from onnxpipe.models.data import model_arrays

        x, y = model_arrays(spec, "validation")
        k = min(config.samples, len(y))
        parts[spec.inputs[0].name].append(x[:k])
        labels, source = y[:k], f"{spec.dataset} validation split"
        groups["validation"] = (0, k)
        n = k
    if config.random:
        for t in spec.inputs:
            shape = (config.random, *t.concrete_shape(1)[1:])  # rows on the first axis, even at a fixed batch
            parts[t.name].append(random_values(t, shape, (lo, hi), rng))
        groups["random"] = (n, n + config.random)
        n += config.random
    if config.edge:
        for t in spec.inputs:
            parts[t.name].append(_edge_cases(t.concrete_shape(1)[1:], lo, hi, t.dtype, rng, t.kind))
        groups["edge"] = (n, n + 6)
        n += 6
    if not n:
        raise UsageError("no inputs to validate with: samples, random and edge cases are all off")
    arrays = {k: np.concatenate(v) for k, v in parts.items()}
    return ValidationInputs(arrays, labels, groups, source)
