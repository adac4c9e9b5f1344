"""Every converter route side by side: ``convert --compare-backends`` and ``convert --backend auto``.

The routes are the registered ones (:data:`onnxpipe.converters.route.ROUTES`), in registry order.
Each route (backend) converts into its own run directory (``backends/<backend>/``, with its own manifest
and parity reports), and each result is validated against the same reference. The comparison is
one row per (artifact, backend): parity, worst error, size, latency, Flex ops, and the seconds the
attempt took. ``auto`` is a planner: it tries the routes in order and stops once every artifact
asked for has passed validation with builtin TFLite ops only (``prefer="fastest"`` tries them all);
then it keeps, per artifact, the first that passed (or the fastest), a builtin-only TFLite file
before one that needs Flex ops, and copies it into the run directory. Artifacts are independent: a
route's validated SavedModel is kept even when its TFLite file failed or was not made (routes are
asked for what they can make: ``TFConvertOptions.partial``). An artifact that no route made pass
is not kept. Each converter has silent failure modes of its own, so nothing is kept on a
converter's word: only on validation's.
"""

from __future__ import annotations

import dataclasses
import enum
import math
import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from onnxpipe.converters.onnx_to_saved_model import TFConvertOptions, tflite_name
from onnxpipe.converters.route import ROUTES
from onnxpipe.converters.torch_to_onnx import ExportOptions
from onnxpipe.models import wire
from onnxpipe.models.artifact import Artifact, Format
from onnxpipe.models.errors import ConversionError, EnvironmentProblem, ExportError
from onnxpipe.models.fs import atomic_path
from onnxpipe.models.records import NOT_WRITTEN, Document
from onnxpipe.pipeline.artifacts import resolve_artifact
from onnxpipe.pipeline.rundir import RunDir
from onnxpipe.pipeline.stages import convert_onnx_stage, source_onnx, validate_stage
from onnxpipe.validation.edge import tflite_ops
from onnxpipe.validation.metrics import fmt
from onnxpipe.validation.parity import ParityReport, Status, ValidateOptions

__all__ = [
    "BackendRow",
    "Comparison",
    "RowStatus",
    "compare_backends",
    "keep_best",
    "render_comparison_markdown",
]

#: The runtime whose latency stands for each format in the table.
_LATENCY_RUNTIME = {Format.TF_SAVED_MODEL: "tensorflow", Format.TFLITE: "ai-edge-litert"}


def _quiet(_message: str) -> None:
    return None


class RowStatus(enum.StrEnum):
    """One backend's artifact: validated and passed, validated and failed, or never made."""

    PASS = "pass"
    FAIL = "fail"
    NOT_MADE = "not made"


@dataclass
class BackendRow:
    """One artifact made by one backend, as validated.

    Attributes:
        artifact: File name (``saved_model``, ``model_fp32.tflite``).
        backend: ``onnx2tf`` or ``onnx-tf``.
        status: ``pass``, ``fail`` (a runtime's parity failed) or ``not made`` (conversion failed).
        max_abs: Worst max abs error over the runtimes that ran it.
        cosine: Lowest cosine similarity over those runtimes.
        size_bytes: Size on disk.
        ms_per_sample: Latency on ``runtime`` over the validation batches.
        runtime: The runtime the latency was measured on.
        message: Why it failed or was not made.
        kept: Whether ``auto`` kept it.
        why: Why it was kept, or why none was.
        flex_ops: The Flex ops a TFLite file needs (none: builtin ops only).
        seconds: The route's whole attempt: export, convert and validate.
        peak_memory: The largest peak resident memory, in bytes, of the attempt's worker
            processes (the converters; ``None`` when it ran none).
    """

    artifact: str
    backend: str
    status: RowStatus
    max_abs: float | None = None
    cosine: float | None = None
    size_bytes: int | None = None
    ms_per_sample: float | None = None
    runtime: str | None = None
    message: str = ""
    kept: bool = False
    why: str = ""
    flex_ops: list[str] = field(default_factory=list)
    seconds: float | None = None
    peak_memory: int | None = None


@dataclass
class Comparison(Document):
    """Every backend's artifacts, validated against one reference (``backends.json``).

    The artifacts themselves (``artifacts``, ``onnx``) stay in memory; the file holds the rows.
    """

    KIND = "backend comparison"
    SCHEMA_VERSION = 1

    reference: str
    rows: list[BackendRow] = field(default_factory=list)
    #: (artifact, backend) -> the artifact that backend made.
    artifacts: dict[tuple[str, str], Artifact] = field(default_factory=dict, metadata=NOT_WRITTEN)
    #: backend -> the ONNX file it converted.
    onnx: dict[str, Artifact] = field(default_factory=dict, metadata=NOT_WRITTEN)
    #: Routes the planner did not try -> why (an earlier route passed everything).
    not_tried: dict[str, str] = field(default_factory=dict)
    #: Wall seconds of trying the routes (their exports, conversions and validations).
    seconds: float = 0.0

    def names(self) -> list[str]:
        """Artifact names, in the order they were asked for."""
        return list(dict.fromkeys(r.artifact for r in self.rows))


def _wanted(options: TFConvertOptions) -> list[str]:
    return ["saved_model"] * options.saved_model + [tflite_name(p) for p in options.precisions]


def _rows(report: ParityReport, artifacts: Sequence[Artifact], backend: str) -> list[BackendRow]:
    rows = []
    for art in artifacts:
        ran = [r for r in report.results if r.artifact == art.label and r.status != Status.UNAVAILABLE]
        with_metrics = [r.metrics for r in ran if r.metrics]
        failed = [r for r in ran if r.status != Status.PASS]
        timed = [r for r in ran if r.ms_per_sample is not None and r.device == "cpu"]
        primary = next((r for r in timed if r.runtime == _LATENCY_RUNTIME.get(art.format)), None)
        primary = primary or (timed[0] if timed else None)
        rows.append(
            BackendRow(
                artifact=art.label,
                backend=backend,
                status=RowStatus.FAIL if failed or not ran else RowStatus.PASS,
                max_abs=max((m.max_abs for m in with_metrics), default=None),
                cosine=min((m.cosine for m in with_metrics), default=None),
                size_bytes=next((r.size_bytes for r in ran if r.size_bytes), None),
                ms_per_sample=primary.ms_per_sample if primary else None,
                runtime=primary.runtime if primary else None,
                message="; ".join(f"{r.runtime}: {r.message}" for r in failed[:2])
                or ("no runtime could run it" if not ran else ""),
                flex_ops=sorted(
                    {o["op"] for o in tflite_ops(art.path) if o["kind"] == "flex"}
                    if art.format is Format.TFLITE
                    else set()
                ),
            )
        )
    return rows


def _peak_since(workers: int) -> int | None:
    """The largest peak memory of the worker processes that exited after the first ``workers``."""
    return max((b for _, b in wire.PEAKS[workers:]), default=None)


def _settled(rows: Sequence[BackendRow], wanted: Sequence[str]) -> bool:
    """Whether every wanted artifact has passed, a TFLite file with builtin ops only."""
    return all(
        any(r.artifact == n and r.status == RowStatus.PASS and not r.flex_ops for r in rows) for n in wanted
    )


def compare_backends(
    source: Path,
    out_dir: Path,
    options: TFConvertOptions,
    export_options: ExportOptions = ExportOptions(),
    validate_options: ValidateOptions = ValidateOptions(),
    force: bool = False,
    on_progress: Callable[[str], None] = _quiet,
    backends: Sequence[str] | None = None,
    until_passed: bool = False,
    budget_s: float | None = None,
) -> Comparison:
    """Convert ``source`` with every backend into ``out_dir/backends/<backend>/`` and validate each.

    ``backends``: the routes to try, in order, default every registered one. A route that cannot
    convert, is not installed or does not make what is asked gets ``not made`` rows with the reason;
    the others go on. With ``until_passed``, the routes after the first that leaves every artifact
    passed (TFLite with builtin ops only) are not tried (``Comparison.not_tried``). With
    ``budget_s``, no route starts once that many seconds have passed (a route that started
    finishes). Writes ``backends.json`` and ``backends.md`` into ``out_dir``.
    """
    backends = list(backends or ROUTES.names())
    options = dataclasses.replace(options, partial=True)  # each artifact is validated on its own
    if validate_options.isolate:  # the runtime host imports the frameworks while the first route converts
        from onnxpipe.validation.runtimes.hosted import prewarm

        prewarm()
    run = RunDir(out_dir).prepare()
    comparison = Comparison(Path(source).name)  # the checkpoint, or the ONNX file both backends convert
    rows: list[BackendRow] = []
    checkpoint: Artifact | None = None
    source = Path(source)
    source_is_onnx = source.suffix.lower() == ".onnx"
    failed_exports: dict[str, str] = {}  # export file name -> why it could not be made
    started = time.perf_counter()
    for i, backend in enumerate(backends):
        spent = time.perf_counter() - started
        if budget_s is not None and i > 0 and spent >= budget_s:
            for later in backends[i:]:
                comparison.not_tried[later] = f"the budget of {budget_s:g} s was spent ({spent:.0f} s)"
            on_progress(f"planner: budget spent ({spent:.0f} s); not tried: {', '.join(backends[i:])}")
            break
        if until_passed and _settled(rows, _wanted(options)):
            first = next(r.backend for r in rows if r.status == RowStatus.PASS)
            for later in backends[i:]:
                comparison.not_tried[later] = f"every artifact passed before it ({first})"
            on_progress(f"planner: every artifact passed; not tried: {', '.join(backends[i:])}")
            break
        route = ROUTES.get(backend)
        if route.export_variant and source_is_onnx:
            comparison.not_tried[backend] = (
                f"it differs from an earlier route only by its export; {source.name} is ONNX"
            )
            on_progress(f"backend {backend}: not tried: {comparison.not_tried[backend]}")
            continue
        on_progress(f"backend {backend}")
        t0, workers = time.perf_counter(), len(wire.PEAKS)

        sub = RunDir(run.path / "backends" / backend)
        reason = route.unavailable_reason()  # before anything is exported for it
        refusal = route.refusal(options) or (reason and f"the {backend} route is unavailable: {reason}")
        if refusal:
            on_progress(f"backend {backend}: not made: {refusal}")
            rows += [
                BackendRow(name, backend, RowStatus.NOT_MADE, message=refusal) for name in _wanted(options)
            ]
            continue
        export = (
            None if route.converts is Format.TORCH else route.onnx_name(route.export_options(export_options))
        )
        try:
            if export in failed_exports:  # an earlier route's export of the same file failed: no retry
                raise ExportError(failed_exports[export])
            onnx, exported = source_onnx(source, run, backend, export_options, force, on_progress)
            made = convert_onnx_stage(onnx, sub, options, backend, force, on_progress)
        except (ConversionError, EnvironmentProblem, ExportError) as e:
            reason = str(e).splitlines()[0]
            if isinstance(e, ExportError) and export:
                failed_exports[export] = reason
            seconds = time.perf_counter() - t0
            on_progress(f"backend {backend}: not made ({seconds:.1f} s): {reason}")
            rows += [
                BackendRow(
                    name,
                    backend,
                    RowStatus.NOT_MADE,
                    message=reason,
                    seconds=seconds,
                    peak_memory=_peak_since(workers),
                )
                for name in _wanted(options)
            ]
            continue
        if exported:
            checkpoint = checkpoint or resolve_artifact(source)
        reference = checkpoint if exported else onnx
        candidates = [onnx, *made] if exported else made
        report = validate_stage(
            reference,
            candidates,
            sub.path,
            dataclasses.replace(validate_options, gpu_delegate=False),  # readiness is validate's to report
            on_progress,
            force=force,
        )
        seconds = time.perf_counter() - t0
        made_names = {a.label for a in made}
        not_made = {k: v for a in made for k, v in a.extra.get("not_made", {}).items()}
        rows += [
            dataclasses.replace(r, seconds=seconds, peak_memory=_peak_since(workers))
            for r in _rows(report, made, backend)
        ] + [
            BackendRow(
                name,
                backend,
                RowStatus.NOT_MADE,
                message=not_made.get(name, f"the {backend} route did not make it"),
                seconds=seconds,
                peak_memory=_peak_since(workers),
            )
            for name in _wanted(options)
            if name not in made_names
        ]
        on_progress(
            f"backend {backend}: "
            + ", ".join(f"{r.artifact} {r.status}" for r in rows if r.backend == backend)
            + f" ({seconds:.1f} s)"
        )
        comparison.artifacts.update({(a.label, backend): a for a in made})
        comparison.onnx[backend] = onnx
    order = {name: i for i, name in enumerate(_wanted(options))}
    rank = {b: i for i, b in enumerate(backends)}
    comparison.rows = sorted(rows, key=lambda r: (order.get(r.artifact, len(order)), rank[r.backend]))
    comparison.seconds = time.perf_counter() - started
    write_comparison(comparison, run.path)
    return comparison


def _link_or_copy(source: Path | str, dest: Path | str) -> None:
    """A hard link where the file system allows one (a kept artifact then costs no second copy), else a copy.

    Nothing onnxpipe writes is modified in place (every write replaces the file), so the two names
    never diverge through onnxpipe.
    """
    try:
        os.link(source, dest)
    except OSError:
        shutil.copyfile(source, dest)


def _speed(row: BackendRow) -> float:
    return row.ms_per_sample if row.ms_per_sample is not None else math.inf


def _clip(text: str, limit: int = 160) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _choose(rows: list[BackendRow], prefer: str = "first") -> tuple[BackendRow | None, str]:
    """The row to keep among one artifact's rows (in route order), and why (or why none).

    Only rows that passed count; among TFLite files, builtin ops only beat Flex ops; then the first
    route's, or with ``prefer="fastest"`` the fastest.
    """
    passed = [r for r in rows if r.status == RowStatus.PASS]

    def said(r: BackendRow) -> str:  # a route's reason, when it explains the choice (all are in attempts)
        if not r.message or (passed and r.status == RowStatus.NOT_MADE):
            return f"{r.backend}: {r.status}"
        return f"{r.backend}: {r.status} ({_clip(r.message)})"

    others = "; ".join(said(r) for r in rows)
    if not passed:
        return None, f"no backend's artifact passed parity ({others})"
    builtin = [r for r in passed if not r.flex_ops]
    flex_note = ""
    if builtin and len(builtin) < len(passed):
        flex_note = "; " + ", ".join(
            f"{r.backend}'s needs Flex ops ({', '.join(r.flex_ops)})" for r in passed if r.flex_ops
        )
    elif not builtin:
        flex_note = f"; it needs Flex ops ({', '.join(passed[0].flex_ops)}): no route made one without"
    pool = builtin or passed
    if len(rows) == 1:
        return passed[0], f"it passed parity with {passed[0].backend}, the first route tried{flex_note}"
    if len(passed) == 1:
        return passed[0], f"only {passed[0].backend}'s passed parity ({others}){flex_note}"
    if prefer == "first" or len(pool) == 1:
        best = pool[0]
        return best, f"{best.backend}'s passed parity first ({others}){flex_note}"
    best = min(pool, key=_speed)
    rest = ", ".join(f"{r.backend} {fmt(r.ms_per_sample)}" for r in pool if r is not best)
    return best, (
        f"all passed parity; {best.backend} is the fastest on {best.runtime} "
        f"({fmt(best.ms_per_sample)} ms/sample vs {rest}){flex_note}"
    )


def keep_best(
    comparison: Comparison,
    out_dir: Path,
    on_progress: Callable[[str], None] = _quiet,
    prefer: str = "fastest",
) -> list[Artifact]:
    """Copy, per artifact, the validated best backend's file into ``out_dir`` and record it.

    The manifest's ``convert`` record lists the kept artifacts, each with ``kept`` (the backend) and
    ``why`` in its ``extra``; ``backends.json``/``backends.md`` mark the kept rows.

    Raises:
        ConversionError: Some artifact passed parity with no backend (it is not kept); the others are.
    """
    run = RunDir(out_dir).prepare()
    t0 = time.perf_counter()
    kept: list[Artifact] = []
    refused: list[str] = []
    kept_from: dict[str, str] = {}
    for name in comparison.names():
        rows = [r for r in comparison.rows if r.artifact == name]
        best, why = _choose(rows, prefer)
        if best is None:
            refused.append(f"{name}: {why}")
            on_progress(f"auto: {name} not kept: {why}")
            continue
        best.kept, best.why = True, why
        source = comparison.artifacts[(name, best.backend)]
        dest = run.path / name
        with atomic_path(dest) as tmp:
            if source.path.is_dir():
                shutil.copytree(source.path, tmp, copy_function=_link_or_copy)
            else:
                _link_or_copy(source.path, tmp)
        parent = source.parent
        if source.format is Format.TFLITE and kept_from.get("saved_model") != best.backend:
            parent = comparison.onnx[best.backend].label  # its own SavedModel was not kept: blame from ONNX
        kept_from[name] = best.backend
        attempts = [
            {
                "route": r.backend,
                "outcome": str(r.status),
                "reason": r.message,
                "seconds": r.seconds,
                "peak_memory": r.peak_memory,
            }
            for r in rows
        ] + [{"route": b, "outcome": "not tried", "reason": w} for b, w in comparison.not_tried.items()]
        extra = {**source.extra, "kept": best.backend, "why": why, "attempts": attempts}
        kept.append(dataclasses.replace(source, path=dest, parent=parent, extra=extra))
        on_progress(f"auto: keep {best.backend}'s {name}: {why}")
    inputs = [a.path for a in comparison.onnx.values()]
    options = {"backend": "auto", "kept": {a.label: a.extra["kept"] for a in kept}}
    if kept:  # the stage as the user waited for it: trying the routes, then keeping the best
        seconds = comparison.seconds + time.perf_counter() - t0
        run.record_stage("convert", inputs=inputs, outputs=kept, options=options, seconds=seconds)
    write_comparison(comparison, run.path)
    if refused:
        raise ConversionError("--backend auto kept no " + "; no ".join(refused))
    return kept


def render_comparison_markdown(comparison: Comparison) -> str:
    """The side-by-side table (``backends.md``)."""
    lines = [
        f"# Backends compared (reference: {comparison.reference})",
        "",
        "| artifact | backend | parity | max abs | min cosine | size | ms/sample | kept | Flex ops | attempt (s) "
        "| peak memory (MB) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in comparison.rows:
        size = f"{r.size_bytes / 1024:.1f} KiB" if r.size_bytes else fmt(None)
        latency = f"{fmt(r.ms_per_sample)} ({r.runtime})" if r.ms_per_sample is not None else fmt(None)
        cosine = fmt(r.cosine, ".6f")
        lines.append(
            f"| {r.artifact} | {r.backend} | {r.status} | {fmt(r.max_abs)} | {cosine} | {size} | {latency} "
            f"| {'yes' if r.kept else ''} | {', '.join(r.flex_ops) or '–'} | {fmt(r.seconds, '.1f')} "
            f"| {fmt(r.peak_memory and r.peak_memory / 2**20, '.0f')} |"
        )
    notes = [r for r in comparison.rows if r.message or r.why]
    if notes:
        lines += ["", "## Notes", ""]
        lines += [f"- {r.artifact} ({r.backend}): {r.why or r.message}" for r in notes]
    if comparison.not_tried:
        lines += ["", "## Not tried", ""]
        lines += [f"- {route}: {why}" for route, why in comparison.not_tried.items()]
    return "\n".join(lines) + "\n"


def write_comparison(comparison: Comparison, out_dir: Path) -> list[Path]:
    """Write ``backends.json`` and ``backends.md`` (atomically)."""
    paths = [out_dir / "backends.json", out_dir / "backends.md"]
    comparison.write(paths[0])
    with atomic_path(paths[1]) as tmp:
        tmp.write_text(render_comparison_markdown(comparison))
    return paths
