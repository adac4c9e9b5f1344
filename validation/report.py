"""Render a parity report for people (Markdown, HTML) and machines (JSON)."""

from __future__ import annotations

from pathlib import Path

from onnxpipe.models.fs import atomic_path
from onnxpipe.models.spec import Tolerance
from onnxpipe.validation.metrics import fmt as _fmt
from onnxpipe.validation.parity import ParityReport

__all__ = ["render_markdown", "write_reports"]


def _tolerance(t: Tolerance | None) -> str:
    return f"{t.atol:.3g} / {t.rtol:g} / {t.min_cosine} / {_fmt(t.min_top1, 'g')}" if t else "–"


def render_markdown(report: ParityReport) -> str:
    """Markdown summary: verdict, blamed hop, reference, inputs, one row per result, notes."""
    ref, inp = report.reference, report.inputs
    lines = [f"# Parity report: {'PASSED' if report.passed else 'FAILED'} (fail on: {report.fail_on})", ""]
    if report.first_failing_hop:
        lines += [f"**First failing hop: {report.first_failing_hop}**", ""]
    counts = ", ".join(f"{v} {k}" for k, v in report.counts().items() if v)
    lines += [
        f"Results: {counts}.",
        "",
        f"Reference: `{ref.artifact}` on {ref.runtime} ({ref.device})"
        + (f", validation accuracy {ref.accuracy:.4f}" if ref.accuracy is not None else "")
        + f", run-to-run noise {_fmt(ref.noise)}."
        + (f" Note: {ref.note}." if ref.note else ""),
        "",
        "Inputs: " + ", ".join(f"{n} {g}" for g, n in inp.groups.items()) + f" (from the {inp.source}; "
        f"random and edge cases over {inp.value_range}, seed {inp.seed}); every input at batch "
        f"{inp.batch}, and the first {inp.sweep_inputs} at batch sizes {inp.sweep}.",
        "",
        *([f"Stage times (wall): {report.stage_times()}.", ""] if report.stage_seconds else []),
        "| artifact | runtime | device | precision | status | max abs | max rel | mean abs | cosine | SNR dB "
        "| top-1 | accuracy | noise | vs parent (max abs) | tolerance (atol / rtol / cos / top-1) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in report.results:
        m, p = r.metrics, r.vs_parent
        snr = ("∞" if m.snr_db is None else _fmt(m.snr_db, ".1f")) if m else "–"
        parent = f"{_fmt(p.max_abs)} vs `{r.parent}`" if p else "–"
        lines.append(
            f"| `{r.artifact}` | {r.runtime} | {r.device} | {r.precision} | **{r.status}** "
            f"| {_fmt(m and m.max_abs)} | {_fmt(m and m.max_rel)} | {_fmt(m and m.mean_abs)} "
            f"| {_fmt(m and m.cosine, '.6f')} | {snr} | {_fmt(m and m.top1_agreement, '.4f')} "
            f"| {_fmt(r.accuracy, '.4f')} | {_fmt(r.noise)} | {parent} | {_tolerance(r.tolerance)} |"
        )
    notes = []
    for r in report.results:
        where = f"`{r.artifact}` on {r.runtime}/{r.device}"
        if r.blame:
            notes.append(f"- {where}: blamed hop **{r.blame}**")
        if r.message:
            notes.append(f"- {where} ({r.status}): {r.message}")
        static = {k: v for k, axes in r.dynamic_axes.items() for v in axes.values() if v != "dynamic"}
        if static:
            notes.append(f"- {where}: dynamic axes made static: {static}; run at batch {r.batch_sizes}")
        if r.cast_inputs:
            casts = ", ".join(f"{k} {v}" for k, v in r.cast_inputs.items())
            notes.append(f"- {where}: inputs cast as fed: {casts} (values checked to fit)")
        if r.status == "fail" and r.groups:
            notes.append(
                f"- {where}: max abs by input group: "
                + ", ".join(f"{g} {_fmt(v.max_abs)}" for g, v in r.groups.items())
            )
    ran_on = dict.fromkeys(f"- {r.runtime}: ran on {r.detail}" for r in report.results if r.detail)
    notes = [f"- {n}" for n in report.notices()] + list(ran_on) + notes  # said once, before the per-row notes
    if notes:
        lines += ["", "## Notes", "", *notes]
    if report.provenance:
        lines += ["", "## How each artifact was made (`--backend auto`)", ""]
        for name, p in report.provenance.items():
            lines.append(f"- `{name}`: kept from **{p.kept}**: {p.why}")
            for a in p.attempts:
                cost = f", {a.seconds:.1f} s" if a.seconds is not None else ""
                cost += f", peak {a.peak_memory / 2**20:.0f} MB" if a.peak_memory else ""
                lines.append(f"  - {a.route}: {a.outcome}{cost}" + (f": {a.reason}" if a.reason else ""))
    readiness = report.edge_readiness or {}
    if readiness:
        lines += [
            "",
            "## Edge readiness",
            "",
            "| artifact | ready | ops (version) | Flex ops | custom ops | loads on tflite-runtime | GPU delegate |",
            "|---|---|---|---|---|---|---|",
        ]
        for name, e in readiness.items():
            ops = ", ".join(f"{o['op']} v{o['version']}" for o in e.ops)
            loads = {True: "yes", False: "no", None: "not checked"}[e.tflite_runtime_loads]
            gpu = e.gpu_delegate.verdict.removeprefix("gpu delegate: ") if e.gpu_delegate else "–"
            lines.append(
                f"| `{name}` | {'yes' if e.ready else '**no**'} | {ops} | {', '.join(e.flex_ops) or '–'} "
                f"| {', '.join(e.custom_ops) or '–'} | {loads} | {gpu} |"
            )
        lines += [f"- `{name}`: {p}" for name, e in readiness.items() for p in e.problems]
        lines += [
            f"- `{name}`: {e.tflite_runtime_note}"
            for name, e in readiness.items()
            if e.tflite_runtime_loads is None
        ]
        lines += [
            f"- `{name}`: the GPU delegate rejects {r['op']} (op {r['index']}"
            + (f" of subgraph {r['subgraph']}" if r["subgraph"] else "")
            + f"): {'; '.join(r['reasons'])}"
            for name, e in readiness.items()
            if e.gpu_delegate
            for r in e.gpu_delegate.rejected
        ]
    for found in report.locate or []:
        lines += [
            "",
            f"## Layer-wise search: `{found.reference}` vs `{found.candidate}`",
            "",
            f"**{found.summary()}**",
            "",
        ]
        lines += [
            "| node | op | output | matched candidate tensor | layout | input error | output error | |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for x in found.layers:
            located = found.located is not None and x.output == found.located.output
            mark = "fused" if x.fused else ("**located**" if located else "")
            lines.append(
                f"| `{x.node}` | {x.op_type} | `{x.output}` | `{(x.matched or '–')[:60]}` | {x.layout or '–'} "
                f"| {_fmt(x.input_error)} | {_fmt(x.output_error)} | {mark} |"
            )
    return "\n".join(lines) + "\n"


def write_reports(report: ParityReport, out_dir: str | Path) -> list[Path]:
    """Write ``parity.json``, ``parity.md`` and ``report.html`` into ``out_dir`` atomically."""
    from onnxpipe.validation.html import render_html

    out_dir = Path(out_dir)
    paths = [out_dir / "parity.json", out_dir / "parity.md", out_dir / "report.html"]
    report.write(paths[0])
    for path, text in ((paths[1], render_markdown(report)), (paths[2], render_html(report))):
        with atomic_path(path) as tmp:
            tmp.write_text(text)
    return paths
