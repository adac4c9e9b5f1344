"""Parity: run the reference and every candidate on the same inputs and judge each.

Every candidate artifact runs on every runtime that can run its format, on every device asked for
(an absent runtime or device is an ``unavailable`` result with the reason, never a silent
fallback). Each result is judged against the reference and compared with its parent artifact; a
failing result names the first hop whose error exceeds the tolerance. Every runtime runs twice on
the first batch: the run-to-run noise is reported and a tolerance is never tighter than it.
"""

from __future__ import annotations

import dataclasses
import enum
import itertools
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from onnxpipe.models.artifact import Artifact, Format
from onnxpipe.models.errors import EnvironmentProblem, InputFileError, UnknownNameError, UsageError
from onnxpipe.models.fs import size_of
from onnxpipe.models.records import Document
from onnxpipe.models.spec import TensorSpec, Tolerance
from onnxpipe.validation.edge import EdgeReadiness
from onnxpipe.validation.inputs import InputConfig, ValidationInputs, build_inputs
from onnxpipe.validation.locate import LocateReport
from onnxpipe.validation.metrics import Metrics, compare, error_histogram, nonfinite_report, worst
from onnxpipe.validation.runtimes import RUNTIMES, RUNTIMES_BY_FORMAT, get_runtime
from onnxpipe.validation.runtimes.base import ArtifactNotLoadable
from onnxpipe.validation.runtimes.hosted import hosted, prewarm

__all__ = [
    "DEVICES",
    "FAIL_ON",
    "Attempt",
    "InputsUsed",
    "ParityReport",
    "ParityResult",
    "Provenance",
    "ReferenceRun",
    "Status",
    "ValidateOptions",
    "runtime_rows",
    "validate",
]

log = logging.getLogger(__name__)


class Status(enum.StrEnum):
    """A result's verdict. ``unavailable`` (a runtime or device absent here) never fails a run."""

    PASS = "pass"
    FAIL = "fail"
    UNAVAILABLE = "unavailable"
    ERROR = "error"


PASS, FAIL, UNAVAILABLE, ERROR = Status.PASS, Status.FAIL, Status.UNAVAILABLE, Status.ERROR
DEVICES = ("cpu", "cuda")
#: ``any``: every failure counts; ``fp32``: only fp32 artifacts' failures count; ``none``: report only.
FAIL_ON = ("any", "fp32", "none")


@dataclass(frozen=True)
class ValidateOptions:
    """What to run and what fails the run.

    Attributes:
        inputs: What to feed.
        runtimes: Only these runtimes (``None``: every runtime that can run each format).
        devices: Devices to try; a runtime is tried on each device it supports.
        fail_on: Which failures fail the run (see :data:`FAIL_ON`).
        isolate: Run the candidates' runtimes in a host process (:mod:`validation.runtimes.hosted`),
            so one that crashes in native code is an ``error`` row, not the end of the run.
        gpu_delegate: Check each .tflite file's ops against the mobile GPU delegate (TensorFlow
            2.15's analyzer, in ``.venv-legacy``); the planner leaves it to ``validate``.
    """

    inputs: InputConfig = field(default_factory=InputConfig)
    runtimes: tuple[str, ...] | None = None
    devices: tuple[str, ...] = DEVICES
    fail_on: str = "any"
    isolate: bool = True
    gpu_delegate: bool = True

    def __post_init__(self) -> None:
        for r in self.runtimes or ():
            if r not in RUNTIMES:
                raise UnknownNameError("runtime", r, RUNTIMES)
        for d in self.devices:
            if d not in DEVICES:
                raise UnknownNameError("device", d, DEVICES)
        if "cpu" not in self.devices:
            raise UsageError("devices: the reference runs on cpu, so 'cpu' must be among them")
        if self.fail_on not in FAIL_ON:
            raise UnknownNameError("fail-on value", self.fail_on, FAIL_ON)


@dataclass
class Execution:
    """Outputs of one artifact on one runtime and device, with what it cost."""

    main: dict[str, np.ndarray]
    sweeps: dict[int, dict[str, np.ndarray]]
    noise: float
    inference_seconds: float
    rows: int
    batch_sizes: list[int]
    dynamic_axes: dict[str, dict[str, str]]
    device_used: str
    cast_inputs: dict[str, str] = field(default_factory=dict)


@dataclass
class ParityResult:
    """One artifact on one runtime and device, judged against the reference."""

    artifact: str
    format: str
    runtime: str
    device: str
    precision: str
    status: Status
    metrics: Metrics | None = None
    outputs: dict[str, Metrics] = field(default_factory=dict)
    groups: dict[str, Metrics] = field(default_factory=dict)
    tolerance: Tolerance | None = None
    noise: float | None = None
    parent: str | None = None
    vs_parent: Metrics | None = None
    vs_cpu: Metrics | None = None
    blame: str | None = None
    accuracy: float | None = None
    batch_sizes: list[int] = field(default_factory=list)
    dynamic_axes: dict[str, dict[str, str]] = field(default_factory=dict)
    #: Inputs the artifact takes in another dtype (``"int64 -> int32"``), cast as they were fed.
    cast_inputs: dict[str, str] = field(default_factory=dict)
    histogram: dict[str, Any] | None = None
    size_bytes: int | None = None
    ms_per_sample: float | None = None
    message: str | None = None
    seconds: float = 0.0
    #: What the runtime ran on, where it says (tfjs-browser: the browser and the backend it got).
    detail: str | None = None

    @property
    def failed(self) -> bool:
        """Whether this result is a failure (``fail`` or ``error``)."""
        return self.status in (FAIL, ERROR)


@dataclass
class Attempt:
    """One route the planner tried (or did not) for an artifact."""

    route: str
    outcome: str
    reason: str = ""
    seconds: float | None = None
    peak_memory: int | None = None


@dataclass
class Provenance:
    """How ``--backend auto`` came to keep an artifact: the route, why, and every attempt."""

    kept: str
    why: str
    attempts: list[Attempt] = field(default_factory=list)


@dataclass
class ReferenceRun:
    """How the reference ran: the outputs every candidate is judged against."""

    artifact: str
    format: str
    runtime: str
    device: str
    note: str | None = None
    accuracy: float | None = None
    noise: float | None = None
    batch_sizes: list[int] = field(default_factory=list)
    size_bytes: int | None = None
    ms_per_sample: float | None = None
    seconds: float = 0.0


@dataclass
class InputsUsed:
    """What every artifact was fed: input groups and sizes, batch, the batch-size sweep, the seed."""

    source: str
    groups: dict[str, int]
    samples: int
    value_range: list[float]
    batch: int
    sweep: list[int]
    sweep_inputs: int
    seed: int


@dataclass
class ParityReport(Document):
    """Every result of one validation run (``parity.json``). Truthy when it passes under ``fail_on``.

    Written with :meth:`write` and read back with :meth:`read` into these same classes; the
    verdict, the first failing hop and the counts are written too, and recomputed on reading.
    """

    KIND = "parity report"
    SCHEMA_VERSION = 1

    reference: ReferenceRun
    inputs: InputsUsed
    results: list[ParityResult]
    fail_on: str = "any"
    locate: list[LocateReport] | None = None
    edge_readiness: dict[str, EdgeReadiness] | None = None
    provenance: dict[str, Provenance] | None = None
    #: Stage -> wall seconds as the user waited for it (train or import, export, convert, validate).
    stage_seconds: dict[str, float] | None = None

    def notices(self) -> list[str]:
        """What the user should know once, in onnxpipe's words: deprecated runtimes, fixed batches."""
        from onnxpipe.validation.runtimes import RUNTIMES

        said = []
        for name in dict.fromkeys(r.runtime for r in self.results if r.status != Status.UNAVAILABLE):
            notice = RUNTIMES.get(name).notice if name in RUNTIMES.names() else None
            if notice:
                said.append(f"{name}: {notice}")
        fixed: dict[str, str] = {}
        for r in self.results:
            for axes in r.dynamic_axes.values():
                for how in axes.values():
                    if how.startswith("static"):
                        fixed.setdefault(r.artifact, how.split()[-1])
        said += [
            f"{artifact}: its batch is fixed to {n} (the route that made it fixed it to convert the model); "
            f"feed it {n} sample(s) per call"
            for artifact, n in fixed.items()
        ]
        return said

    def stage_times(self) -> str:
        """``train 4.8 s, export 2.2 s, convert 6.1 s, validate 0.8 s``: each stage as the user waited."""
        return ", ".join(f"{k} {v:.1f} s" for k, v in (self.stage_seconds or {}).items())

    @property
    def failures(self) -> list[ParityResult]:
        """Results that fail the run under ``fail_on``."""
        if self.fail_on == "none":
            return []
        return [r for r in self.results if r.failed and (self.fail_on == "any" or r.precision == "fp32")]

    @property
    def passed(self) -> bool:
        """No counted result failed or errored (``unavailable`` never fails a run)."""
        return not self.failures

    @property
    def first_failing_hop(self) -> str | None:
        """The blame of the first failing result, in lineage order."""
        return next((r.blame for r in self.results if r.failed and r.blame), None)

    def counts(self) -> dict[Status, int]:
        """How many results have each status."""
        return {s: sum(r.status == s for r in self.results) for s in Status}

    def __bool__(self) -> bool:
        return self.passed

    def derived(self) -> dict[str, Any]:
        """Written for other tools beside the fields: ``passed``, ``first_failing_hop``, ``counts``."""
        return {"passed": self.passed, "first_failing_hop": self.first_failing_hop, "counts": self.counts()}


def _padded(call: Callable, inputs: ValidationInputs, start: int, stop: int, size: int | None) -> dict:
    """Run rows ``start:stop``; a static-batch artifact gets the last row repeated up to its size."""
    rows = stop - start
    out = call(inputs.feeds(start, stop, size), rows)
    return {k: v[:rows] for k, v in out.items()} if size is not None else out


def _samples_first(tensor: TensorSpec | None, value: np.ndarray) -> np.ndarray:
    """An output samples first: its sample axis moved to axis 0; one computed once per call is a row."""
    if tensor is None:
        return value
    return value[None] if tensor.whole else tensor.to_rows(value)


def _cat(chunks: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    return {k: np.concatenate([c[k] for c in chunks]) for k in chunks[0]}


def _repeat_noise(again: np.ndarray, first: np.ndarray) -> float:
    """Largest difference between two runs of the same batch; equal non-finite values count as equal."""
    a, b = np.asarray(again, np.float64), np.asarray(first, np.float64)
    if not a.size:
        return 0.0
    same = (a == b) | (np.isnan(a) & np.isnan(b))
    diff = np.where(same, 0.0, np.abs(a - b))
    return float(np.where(np.isfinite(diff), diff, 0.0).max())


def execute(runtime: Any, inputs: ValidationInputs, config: InputConfig) -> Execution:
    """Run a loaded runtime on all inputs at the main batch, the first batch again, and the sweep.

    The second run of the first batch measures run-to-run noise. A static-batch artifact runs at
    its own batch size only.
    """
    static = runtime.static_batch()
    batch = static or config.batch
    spent, rows = 0.0, 0
    outputs = {t.name: t for t in runtime.artifact.spec.outputs}

    def call(feeds: dict, n: int) -> dict:
        nonlocal spent, rows
        out = runtime.run(feeds)
        spent += runtime.inference_s  # the framework's own call, as the runtime timed it
        rows += n
        # samples first: each output's sample axis to axis 0; one computed once per call is a row of its own
        return {k: _samples_first(outputs.get(k), v) for k, v in out.items()}

    n = len(inputs)
    main = _cat([_padded(call, inputs, i, min(i + batch, n), static) for i in range(0, n, batch)])
    again = _padded(call, inputs, 0, min(batch, n), static)
    noise = max(_repeat_noise(again[k], main[k][: len(again[k])]) for k in main)
    sweeps = {}
    k = min(config.sweep_inputs, n)
    for size in [static] if static else config.sweep:
        sweeps[size] = _cat([_padded(call, inputs, i, min(i + size, k), static) for i in range(0, k, size)])
    sizes = sorted({batch, *sweeps})
    return Execution(
        main,
        sweeps,
        noise,
        spent,
        rows,
        sizes,
        runtime.dynamic_axes(),
        runtime.device_used,
        runtime.cast_inputs(),
    )


def _stack(e: Execution, sizes: list[int]) -> dict[str, np.ndarray]:
    return _cat([e.main, *(e.sweeps[s] for s in sizes)])


def _accuracy(outputs: dict[str, np.ndarray], inputs: ValidationInputs, artifact: Artifact) -> float | None:
    if inputs.labels is None or not inputs.n_samples:
        return None
    first = outputs[artifact.spec.outputs[0].name][: inputs.n_samples]
    if first.ndim != 2 or first.shape[1] < 2:
        return None
    return float((first.argmax(axis=1) == inputs.labels).mean())


def _judge(
    result: ParityResult, ref: Execution, cand: Execution, tol: Tolerance, inputs: ValidationInputs
) -> None:
    common = sorted(set(ref.sweeps) & set(cand.sweeps))
    r, c = _stack(ref, common), _stack(cand, common)
    noise = ref.noise + cand.noise
    notes = []
    if noise > tol.atol:
        tol = dataclasses.replace(tol, atol=noise)
        notes.append(f"atol raised to the measured run-to-run noise {noise:.3g}")
    reasons = []
    for name in r:
        m = compare(r[name], c[name], tol.atol)
        result.outputs[name] = m
        reasons += [f"{name}: {v}" for v in m.violations(tol, tol.violation(r[name], c[name]))]
    result.metrics = worst(list(result.outputs.values()))
    # Per group, by rows; an output whose first axis is not the rows (shaped by an input that
    # carries a shape) has no row for some groups, and those are left out of them.
    by_group = {
        g: [compare(ref.main[k][a:b], cand.main[k][a:b], tol.atol) for k in ref.main if ref.main[k][a:b].size]
        for g, (a, b) in inputs.groups.items()
    }
    result.groups = {g: worst(m) for g, m in by_group.items() if m}
    result.histogram = error_histogram([np.abs(c[k].astype(np.float64) - r[k]) for k in r])
    result.tolerance, result.noise = tol, cand.noise
    result.status = FAIL if reasons else PASS
    result.message = "; ".join(reasons + notes) or None


def _blame(
    result: ParityResult,
    art: Artifact,
    primary: dict[str, Execution],
    by_label: dict[str, Artifact],
    ref_label: str,
) -> str | None:
    """The first hop, from the reference down to ``art``, whose own error exceeds the tolerance."""
    chain = [art.label]
    while chain[-1] != ref_label:
        parent = by_label[chain[-1]].parent if chain[-1] in by_label else None
        if parent is None or parent not in primary or parent in chain:
            chain.append(ref_label)
            break
        chain.append(parent)
    chain.reverse()
    for a, b in itertools.pairwise(chain):
        if a not in primary or b not in primary:
            continue
        tol = by_label[b].spec.tolerance(by_label[b].precision)
        pa, pb = primary[a].main, primary[b].main
        for k in pa:
            m = compare(pa[k], pb[k], tol.atol)
            if m.nonfinite or tol.violation(pa[k], pb[k]) > 0 or m.cosine < tol.min_cosine:
                return f"{a} -> {b}"
    return (
        f"runtime {result.runtime} on {result.device}"
        if art.label in primary
        else "accumulated drift: no single hop exceeds its tolerance"
    )


def _reference_runtime(reference: Artifact) -> tuple[type, str | None]:
    """The runtime for the reference; an ONNX file ONNX Runtime cannot load falls back to onnx-reference."""
    if reference.format is Format.ONNX:
        cls = get_runtime("onnxruntime")
        if cls.unavailable_reason("cpu") is None:
            try:
                with cls(reference, "cpu"):
                    return cls, None
            except Exception as e:
                return get_runtime(
                    "onnx-reference"
                ), f"onnxruntime could not load it ({type(e).__name__}: {e}); ran onnx-reference"
        return get_runtime("onnx-reference"), "onnxruntime is not installed; ran onnx-reference"
    return get_runtime(RUNTIMES_BY_FORMAT[reference.format][0]), None


def _rows(reference: Artifact, candidates: Sequence[Artifact], options: ValidateOptions, ref_runtime: type):
    """(artifact, runtime class, device) for every row of the report, in lineage order."""
    for device in options.devices:
        if (
            device != "cpu"
            and device in ref_runtime.devices
            and (options.runtimes is None or ref_runtime.name in options.runtimes)
        ):
            yield reference, ref_runtime, device
    for art, cls, device in runtime_rows(candidates, options.runtimes, options.devices):
        yield art, hosted(cls) if options.isolate else cls, device


def runtime_rows(artifacts: Sequence[Artifact], runtimes: Sequence[str] | None, devices: Sequence[str]):
    """(artifact, runtime class, device) for every runtime that runs each artifact, on each device it supports.

    ``runtimes`` keeps only the runtimes named (``None``: every runtime registered for the format).
    """
    for art in artifacts:
        names = RUNTIMES_BY_FORMAT[art.format]
        if runtimes is not None:
            names = tuple(n for n in runtimes if art.format in get_runtime(n).formats)
        for name in names:
            cls = get_runtime(name)
            for device in devices:
                if device in cls.devices:
                    yield art, cls, device


def validate(
    reference: Artifact,
    candidates: Sequence[Artifact],
    options: ValidateOptions = ValidateOptions(),
    on_progress: Callable[[str], None] | None = None,
) -> ParityReport:
    """Run ``reference`` and every candidate on the same inputs and judge every result.

    Raises:
        UsageError: No candidates, or a candidate does not share the reference's inputs.
        EnvironmentProblem: The reference itself cannot run here.
    """
    if not candidates:
        raise UsageError("nothing to validate: no candidate artifacts")
    spec = reference.spec
    for c in candidates:
        if [t.name for t in c.spec.inputs] != [t.name for t in spec.inputs]:
            raise UsageError(
                f"{c.path}: inputs {[t.name for t in c.spec.inputs]} differ from the reference's {[t.name for t in spec.inputs]}"
            )
        problems = [p for r, t in zip(spec.inputs, c.spec.inputs, strict=True) if (p := r.mismatch(t))]
        if problems:
            raise UsageError(f"{c.path}: input {problems[0]} (as the reference declares)")
    inputs = build_inputs(spec, options.inputs)
    if options.isolate:  # the host imports the frameworks while the reference runs here
        prewarm()
    say = on_progress or (lambda _msg: None)
    ref_runtime, ref_note = _reference_runtime(reference)
    say(f"reference {reference.label} on {ref_runtime.name}/cpu")
    t0 = time.perf_counter()
    try:
        with ref_runtime(reference, "cpu") as rt:
            ref = execute(rt, inputs, options.inputs)
    except EnvironmentProblem:
        raise
    except Exception as e:  # whatever the runtime raised, the reference file is unusable
        note = f" ({ref_note})" if ref_note else ""
        raise InputFileError(
            reference.path, f"the reference does not run on {ref_runtime.name}{note}: {type(e).__name__}: {e}"
        ) from e
    ref_seconds = time.perf_counter() - t0
    for group, (a, b) in inputs.groups.items():
        where = nonfinite_report({k: v[a:b] for k, v in ref.main.items()})
        if where:  # nothing can be judged against a NaN
            raise InputFileError(
                reference.path,
                f"the reference gives non-finite values (NaN or Inf) on the {group!r} inputs: {where} "
                "(row numbers within the group); nothing can be judged against them. Check the model's "
                "weights and inputs" + (" (--no-edge leaves out the edge cases)" if group == "edge" else ""),
            )
    by_label = {a.label: a for a in (reference, *candidates)}
    primary: dict[str, Execution] = {reference.label: ref}  # first cpu execution of each artifact
    cpu_runs: dict[tuple[str, str], Execution] = {(reference.label, ref_runtime.name): ref}
    results: list[ParityResult] = []
    for art, cls, device in _rows(reference, candidates, options, ref_runtime):
        result = ParityResult(
            art.label, str(art.format), cls.name, device, art.precision, PASS, parent=art.parent
        )
        result.size_bytes = size_of(art.path)
        results.append(result)
        say(f"{art.label} on {cls.name}/{device}")
        if art.extra.get("unloadable"):  # a run's file replaced by one that does not fit the reference
            result.status, result.message = ERROR, art.extra["unloadable"]
            continue
        reason = cls.unavailable_reason(device)
        if reason:
            result.status, result.message = UNAVAILABLE, reason
            continue
        t0 = time.perf_counter()
        try:
            with cls(art, device) as rt:
                result.detail = rt.detail
                ex = execute(rt, inputs, options.inputs)
        except ArtifactNotLoadable as e:  # a runtime that cannot load this file: reported, never a failure
            result.status, result.message = UNAVAILABLE, str(e)
            continue
        except Exception as e:  # (a hosted runtime's error keeps the name of what it raised)
            result.status, result.message = ERROR, f"{getattr(e, 'worker_type', type(e).__name__)}: {e}"
            result.seconds = time.perf_counter() - t0
            log.debug("%s failed on %s/%s", art.label, cls.name, device, exc_info=True)
            continue
        result.seconds = time.perf_counter() - t0
        if ex.device_used != device:
            result.status = UNAVAILABLE
            result.message = (
                f"asked for {device}, but the session runs on {ex.device_used}: not reported as {device}"
            )
            continue
        result.batch_sizes, result.dynamic_axes = ex.batch_sizes, ex.dynamic_axes
        result.cast_inputs = ex.cast_inputs
        result.ms_per_sample = 1000 * ex.inference_seconds / max(ex.rows, 1)
        shapes = {
            k: (ref.main[k].shape, ex.main[k].shape)
            for k in ref.main
            if ref.main[k].shape != ex.main[k].shape
        }
        if shapes:
            result.status = ERROR
            result.message = "; ".join(
                f"{k}: shape {list(c)} vs reference {list(r)}" for k, (r, c) in shapes.items()
            )
            continue
        tol = art.spec.tolerance(art.precision)
        _judge(result, ref, ex, tol, inputs)
        result.accuracy = _accuracy(ex.main, inputs, art)
        if device == "cpu":
            primary.setdefault(art.label, ex)
            cpu_runs[(art.label, cls.name)] = ex
        elif (art.label, cls.name) in cpu_runs:
            cpu = cpu_runs[(art.label, cls.name)].main
            result.vs_cpu = worst([compare(cpu[k], ex.main[k]) for k in cpu])
        if art.parent in primary and art.label != reference.label:
            parent = primary[art.parent].main
            result.vs_parent = worst([compare(parent[k], ex.main[k]) for k in parent])
        if result.failed:
            result.blame = _blame(result, art, primary, by_label, reference.label)
    for result in results:  # a run's file that is no longer the one onnxpipe wrote: said on each row
        changed = by_label[result.artifact].extra.get("changed")
        if changed:
            result.message = f"{changed}; {result.message}" if result.message else changed
    tflites = [c for c in candidates if c.format is Format.TFLITE and not c.extra.get("unloadable")]
    readiness = None
    if tflites:
        from onnxpipe.validation.edge import edge_readiness

        say("edge readiness: ops, Flex/custom ops, tflite-runtime load check, GPU delegate ops")
        readiness = edge_readiness(tflites, options.gpu_delegate)
    provenance = {
        c.label: Provenance(
            c.extra["kept"],
            c.extra.get("why", ""),
            [Attempt(**a) for a in c.extra.get("attempts", [])],
        )
        for c in candidates
        if c.extra.get("kept")
    }
    return ParityReport(
        provenance=provenance or None,
        edge_readiness=readiness,
        reference=ReferenceRun(
            artifact=reference.label,
            format=str(reference.format),
            runtime=ref_runtime.name,
            device="cpu",
            note=ref_note,
            accuracy=_accuracy(ref.main, inputs, reference),
            noise=ref.noise,
            batch_sizes=ref.batch_sizes,
            size_bytes=size_of(reference.path),
            ms_per_sample=1000 * ref.inference_seconds / max(ref.rows, 1),
            seconds=round(ref_seconds, 4),
        ),
        inputs=InputsUsed(
            source=inputs.source,
            groups={g: b - a for g, (a, b) in inputs.groups.items()},
            samples=inputs.n_samples,
            value_range=[float(v) for v in (inputs.value_range or spec.value_range)],
            batch=options.inputs.batch,
            sweep=list(options.inputs.sweep),
            sweep_inputs=min(options.inputs.sweep_inputs, len(inputs)),
            seed=options.inputs.seed,
        ),
        results=results,
        fail_on=options.fail_on,
    )
