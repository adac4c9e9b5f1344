"""Error metrics between a reference output and a candidate output (NumPy only)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from onnxpipe.models.spec import Tolerance

__all__ = ["HISTOGRAM_EDGES", "Metrics", "compare", "error_histogram", "fmt", "nonfinite_report", "worst"]


#: Metrics are clamped to the largest finite float: a report is strict JSON, never ``inf``.
_LARGEST = float(np.finfo(np.float64).max)


@dataclass(frozen=True)
class Metrics:
    """How far a candidate is from the reference.

    Attributes:
        max_abs: ``max |c - r|``.
        max_rel: ``max |c - r| / (|r| + 1e-3 * max|r|)``: relative error, with a floor so that
            near-zero reference values do not blow it up.
        mean_abs: ``mean |c - r|``.
        cosine: Smallest per-sample cosine similarity (1.0 for identical directions).
        snr_db: ``10 log10(sum r^2 / sum (c - r)^2)``; ``None`` when the outputs are identical.
        top1_agreement: Fraction of samples whose argmax over the last axis agrees; ``None`` for
            outputs that are not ``[batch, classes]`` scores.
        nonfinite: Count of NaN/Inf values in the candidate where the reference has a finite value
            (or another non-finite one); the other metrics are over the positions where both are
            finite, so they stay numbers.
        nonfinite_at: Index of the first of them (``None`` when there are none).
    """

    max_abs: float
    max_rel: float
    mean_abs: float
    cosine: float
    snr_db: float | None
    top1_agreement: float | None
    nonfinite: int = 0
    nonfinite_at: list[int] | None = None

    def to_dict(self) -> dict[str, float | int | None]:
        """JSON-ready form."""
        return asdict(self)

    def violations(self, tol: Tolerance, bound_excess: float) -> list[str]:
        """Human-readable reasons this result fails ``tol`` (empty when it passes)."""
        out = []
        if self.nonfinite:
            at = f", the first at {self.nonfinite_at}" if self.nonfinite_at is not None else ""
            out.append(f"{self.nonfinite} non-finite values (NaN or Inf){at}")
        if bound_excess > 0:
            out.append(f"max abs {self.max_abs:.3g} exceeds atol {tol.atol:g} + rtol {tol.rtol:g}·|ref|")
        if self.cosine < tol.min_cosine:
            out.append(f"cosine {self.cosine:.6f} < {tol.min_cosine}")
        if (
            tol.min_top1 is not None
            and self.top1_agreement is not None
            and self.top1_agreement < tol.min_top1
        ):
            out.append(f"top-1 agreement {self.top1_agreement:.4f} < {tol.min_top1}")
        return out


def fmt(x: Any, spec: str = ".3g") -> str:
    """A number for a report cell: formatted with ``spec``, or an en dash when absent."""
    return "–" if x is None else format(x, spec)


def compare(reference: np.ndarray, candidate: np.ndarray, floor: float = 0.0) -> Metrics:
    """Metrics of ``candidate`` against ``reference`` (same shape, batch first).

    ``floor``: the absolute tolerance. A row (sample) whose difference is below it in RMS differs
    by nothing the tolerance counts, so its cosine counts as 1 (the element-wise bound judges it):
    cosine measures the direction of differences that matter, and on a signal itself near zero it
    measures rounding. Measured: a text detector's probability map on an image with no text is
    1e-7 everywhere, and the cosine of two such maps was 0.0 for a file 1.4e-7 from the reference.
    """
    r = np.asarray(reference, dtype=np.float64)
    c = np.asarray(candidate, dtype=np.float64)
    if r.shape != c.shape:
        raise ValueError(f"shape {list(c.shape)} differs from the reference's {list(r.shape)}")
    if r.size == 0:
        return Metrics(0.0, 0.0, 0.0, 1.0, None, None)
    finite = np.isfinite(r) & np.isfinite(c)
    same = (r == c) | (np.isnan(r) & np.isnan(c))  # the same Inf, or NaN on both sides, agree
    bad = ~finite & ~same
    nonfinite = int(bad.sum())
    nonfinite_at = [int(i) for i in np.argwhere(bad)[0]] if nonfinite else None
    if not finite.all():  # judged apart (``nonfinite``): the other metrics are over finite positions
        r, c = np.where(finite, r, 0.0), np.where(finite, c, 0.0)
    diff = np.abs(c - r)
    scale = float(np.abs(r).max())
    max_abs = float(diff.max())
    max_rel = float(np.minimum(diff / (np.abs(r) + 1e-3 * scale + 1e-30), _LARGEST).max())
    rows_r = r.reshape(r.shape[0], -1) if r.ndim else r.reshape(1, -1)
    rows_c = c.reshape(rows_r.shape)
    both = max(scale, float(np.abs(c).max()))
    if both > 0:  # cosine does not depend on scale; dividing first keeps squares of 1e300 finite
        rows_r, rows_c = rows_r / both, rows_c / both
    norms = np.linalg.norm(rows_r, axis=1) * np.linalg.norm(rows_c, axis=1)
    dots = (rows_r * rows_c).sum(axis=1)
    same = np.all(rows_r == rows_c, axis=1)
    cos = np.where(same, 1.0, np.where(norms > 0, dots / np.where(norms > 0, norms, 1.0), 0.0))
    if floor > 0 and rows_r.shape[1]:
        rms = np.sqrt(np.mean(np.square(rows_c - rows_r), axis=1)) * (both if both > 0 else 1.0)
        cos = np.where(rms <= floor, 1.0, cos)
    noise = float((diff**2).sum())
    power = min(max(float((r**2).sum()), 1e-300), _LARGEST)
    snr = None if noise == 0 else 10 * math.log10(power / min(noise, _LARGEST))
    top1 = None
    if r.ndim == 2 and r.shape[1] > 1:
        top1 = float((r.argmax(axis=1) == c.argmax(axis=1)).mean())
    return Metrics(
        max_abs=max_abs,
        max_rel=max_rel,
        mean_abs=float(diff.mean()),
        cosine=float(np.clip(cos.min(), -1.0, 1.0)) if cos.size else 1.0,
        snr_db=snr,
        top1_agreement=top1,
        nonfinite=nonfinite,
        nonfinite_at=nonfinite_at,
    )


def nonfinite_report(outputs: dict[str, np.ndarray]) -> str | None:
    """Where ``outputs`` (name -> array, rows first) hold NaN or Inf: count and first index per output."""
    found = []
    for name, value in outputs.items():
        bad = ~np.isfinite(np.asarray(value, dtype=np.float64))
        if bad.any():
            found.append(
                f"{int(bad.sum())} in output {name!r} (the first at {[int(i) for i in np.argwhere(bad)[0]]})"
            )
    return "; ".join(found) or None


#: log10 bin edges of the absolute-error histogram: 1e-9 .. 1e1, half a decade per bin.
HISTOGRAM_EDGES = tuple(x / 2 for x in range(-18, 3))


def error_histogram(errors: list[np.ndarray]) -> dict[str, list[float] | list[int] | int]:
    """Histogram of absolute errors over log10 bins; exact zeros counted apart, outliers clamped."""
    e = np.concatenate([np.ravel(x) for x in errors]) if errors else np.zeros(0)
    e = np.nan_to_num(e, nan=np.inf)
    zeros = int((e == 0).sum())
    logs = np.log10(e[e > 0])
    logs = np.clip(logs, HISTOGRAM_EDGES[0], HISTOGRAM_EDGES[-1] - 1e-9)
    counts, _ = np.histogram(logs, bins=HISTOGRAM_EDGES)
    return {"log10_edges": list(HISTOGRAM_EDGES), "counts": counts.tolist(), "zeros": zeros}


def worst(metrics: list[Metrics]) -> Metrics:
    """One summary of several outputs' metrics: the worst value of each."""
    snrs = [m.snr_db for m in metrics if m.snr_db is not None]
    top1s = [m.top1_agreement for m in metrics if m.top1_agreement is not None]
    return Metrics(
        max_abs=max(m.max_abs for m in metrics),
        max_rel=max(m.max_rel for m in metrics),
        mean_abs=max(m.mean_abs for m in metrics),
        cosine=min(m.cosine for m in metrics),
        snr_db=min(snrs) if snrs else None,
        top1_agreement=min(top1s) if top1s else None,
        nonfinite=sum(m.nonfinite for m in metrics),
        nonfinite_at=next((m.nonfinite_at for m in metrics if m.nonfinite_at is not None), None),
    )
