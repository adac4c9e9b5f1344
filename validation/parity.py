"""Parity: run the reference and every candidate on the same inputs and judge each.

Each candidate is judged against the reference and compared with its parent artifact, so the hop
that broke is visible.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from models.artifact import Artifact
from models.errors import UsageError
from models.spec import Tolerance
from validation.inputs import InputConfig, ValidationInputs, build_inputs
from validation.metrics import Metrics, compare, worst
from validation.runtimes import DEFAULT_RUNTIME, get_runtime

__all__ = ["ParityReport", "ParityResult", "run_artifact", "validate"]

log = logging.getLogger(__name__)

PASS, FAIL, UNAVAILABLE, ERROR = "pass", "fail", "unavailable", "error"


@dataclass
class ParityResult:
    """One artifact on one runtime and device, judged against the reference."""

    artifact: str
    format: str
    runtime: str
    device: str
    precision: str
    status: str
    metrics: Metrics | None = None
    outputs: dict[str, Metrics] = field(default_factory=dict)
    tolerance: Tolerance | None = None
    parent: str | None = None
    vs_parent: Metrics | None = None
    accuracy: float | None = None
    message: str | None = None
    seconds: float = 0.0

    def __bool__(self) -> bool:
        return self.status in (PASS, UNAVAILABLE)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "artifact": self.artifact,
            "format": self.format,
            "runtime": self.runtime,
            "device": self.device,
            "precision": self.precision,
            "status": self.status,
            "metrics": self.metrics.to_dict() if self.metrics else None,
            "outputs": {k: v.to_dict() for k, v in self.outputs.items()},
            "tolerance": self.tolerance.to_dict() if self.tolerance else None,
            "parent": self.parent,
            "vs_parent": self.vs_parent.to_dict() if self.vs_parent else None,
            "accuracy": self.accuracy,
            "message": self.message,
            "seconds": round(self.seconds, 4),
        }


@dataclass
class ParityReport:
    """Every result of one validation run. Truthy when nothing failed or errored."""

    reference: dict[str, Any]
    inputs: dict[str, Any]
    results: list[ParityResult]

    @property
    def passed(self) -> bool:
        """No result failed or errored (``unavailable`` runtimes do not fail a run)."""
        return all(self.results)

    def __bool__(self) -> bool:
        return self.passed

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: ``passed``, ``reference``, ``inputs``, ``results``."""
        return {
            "passed": self.passed,
            "reference": self.reference,
            "inputs": self.inputs,
            "results": [r.to_dict() for r in self.results],
        }


def run_artifact(artifact: Artifact, runtime: Any, inputs: ValidationInputs, config: InputConfig) -> dict:
    """Outputs of ``runtime`` at batch ``config.batch``, then of the first inputs at batch 1.

    Both are stacked along the batch axis, in the reference names and layout.
    """
    chunks: list[dict[str, np.ndarray]] = []
    n = len(inputs)
    for start in range(0, n, config.batch):
        chunks.append(runtime.run(inputs.slice(start, min(start + config.batch, n))))
    for i in range(min(config.batch1, n)):
        chunks.append(runtime.run(inputs.slice(i, i + 1)))
    return {t.name: np.concatenate([c[t.name] for c in chunks]) for t in artifact.spec.outputs}


def _accuracy(outputs: dict[str, np.ndarray], inputs: ValidationInputs, artifact: Artifact) -> float | None:
    if inputs.labels is None or not inputs.n_samples:
        return None
    first = outputs[artifact.spec.outputs[0].name][: inputs.n_samples]
    if first.ndim != 2 or first.shape[1] < 2:
        return None
    return float((first.argmax(axis=1) == inputs.labels).mean())


def _judge(ref: dict, out: dict, tol: Tolerance) -> tuple[str, Metrics, dict[str, Metrics], str | None]:
    per_output, reasons = {}, []
    for name, r in ref.items():
        m = compare(r, out[name])
        per_output[name] = m
        reasons += [f"{name}: {v}" for v in m.violations(tol, tol.violation(r, out[name]))]
    summary = worst(list(per_output.values()))
    return (FAIL if reasons else PASS), summary, per_output, "; ".join(reasons) or None


def validate(
    reference: Artifact,
    candidates: Sequence[Artifact],
    input_config: InputConfig = InputConfig(),
    device: str = "cpu",
    on_progress: Callable[[str], None] | None = None,
) -> ParityReport:
    """Run ``reference`` and each candidate on the same inputs and judge every candidate.

    Each candidate runs on its format's default runtime. A runtime that is not installed gives an
    ``unavailable`` result with the reason; one that raises gives ``error`` with the message.

    Raises:
        UsageError: No candidates, or a candidate does not share the reference's interface.
        EnvironmentProblem: The reference itself cannot run here.
    """
    if not candidates:
        raise UsageError("nothing to validate: no candidate artifacts")
    spec = reference.spec
    names = [t.name for t in spec.outputs]
    for c in candidates:
        if [t.name for t in c.spec.inputs] != [t.name for t in spec.inputs]:
            raise UsageError(
                f"{c.path}: inputs {[t.name for t in c.spec.inputs]} differ from the reference's "
                f"{[t.name for t in spec.inputs]}"
            )
    inputs = build_inputs(spec, input_config)
    say = on_progress or (lambda _msg: None)
    ref_runtime = get_runtime(DEFAULT_RUNTIME[reference.format])
    say(f"reference {reference.label} on {ref_runtime.name}/{device}")
    t0 = time.perf_counter()
    with ref_runtime(reference, device) as rt:
        ref_out = run_artifact(reference, rt, inputs, input_config)
        ref_device = rt.device_used
    ref_seconds = time.perf_counter() - t0
    outputs_by_label = {reference.label: ref_out}
    results: list[ParityResult] = []
    for art in candidates:
        runtime_cls = get_runtime(DEFAULT_RUNTIME[art.format])
        result = ParityResult(art.label, str(art.format), runtime_cls.name, device, art.precision, PASS)
        result.parent = art.parent
        say(f"{art.label} on {runtime_cls.name}/{device}")
        reason = runtime_cls.unavailable_reason(device)
        if reason:
            result.status, result.message = UNAVAILABLE, reason
            results.append(result)
            continue
        t0 = time.perf_counter()
        try:
            tol = art.spec.tolerance(art.precision)
            result.tolerance = tol
            with runtime_cls(art, device) as rt:
                out = run_artifact(art, rt, inputs, input_config)
                result.device = rt.device_used
        except Exception as e:
            result.status, result.message = ERROR, f"{type(e).__name__}: {e}"
            result.seconds = time.perf_counter() - t0
            log.debug("%s failed on %s", art.label, runtime_cls.name, exc_info=True)
            results.append(result)
            continue
        result.seconds = time.perf_counter() - t0
        shapes = {n: (ref_out[n].shape, out[n].shape) for n in names if ref_out[n].shape != out[n].shape}
        if shapes:
            result.status = ERROR
            result.message = "; ".join(
                f"{n}: shape {list(c)} vs reference {list(r)}" for n, (r, c) in shapes.items()
            )
            results.append(result)
            continue
        outputs_by_label[art.label] = out
        result.status, result.metrics, result.outputs, result.message = _judge(ref_out, out, tol)
        result.accuracy = _accuracy(out, inputs, art)
        parent_out = outputs_by_label.get(art.parent) if art.parent else None
        if parent_out is not None:
            result.vs_parent = worst([compare(parent_out[n], out[n]) for n in names])
        results.append(result)
    return ParityReport(
        reference={
            "artifact": reference.label,
            "format": str(reference.format),
            "runtime": ref_runtime.name,
            "device": ref_device,
            "accuracy": _accuracy(ref_out, inputs, reference),
            "seconds": round(ref_seconds, 4),
        },
        inputs={
            "source": inputs.source,
            "samples": inputs.n_samples,
            "random": inputs.n_random,
            "value_range": list(spec.value_range),
            "batch_sizes": [input_config.batch, 1] if input_config.batch1 else [input_config.batch],
            "batch1_inputs": min(input_config.batch1, len(inputs)),
            "seed": input_config.seed,
        },
        results=results,
    )
