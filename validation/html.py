"""A self-contained HTML parity report: inline CSS and SVG plots, no scripts, no network."""

from __future__ import annotations

import html
import math
from typing import Any

from onnxpipe.validation.metrics import fmt as _fmt
from onnxpipe.validation.parity import ParityReport

__all__ = ["render_html"]

_STATUS_COLOUR = {"pass": "#1a7f37", "fail": "#cf222e", "error": "#cf222e", "unavailable": "#9a6700"}
_CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:24px;color:#1f2328;max-width:1200px}
h1 span{padding:2px 10px;border-radius:6px;color:#fff}
table{border-collapse:collapse;margin:8px 0 20px}td,th{border:1px solid #d0d7de;padding:4px 8px;text-align:right}
th{background:#f6f8fa}td:first-child,th:first-child{text-align:left}
.plots{display:flex;flex-wrap:wrap;gap:16px}.plot{border:1px solid #d0d7de;border-radius:6px;padding:8px}
.plot h3{margin:0 0 4px;font-size:13px}svg text{font:10px system-ui,sans-serif;fill:#57606a}
"""


def _gpu_cell(gpu) -> str:
    """The GPU delegate's verdict, every rejected op in its tooltip."""
    if gpu is None:
        return "–"
    why = "; ".join(f"{r['op']} (op {r['index']}): {'; '.join(r['reasons'])}" for r in gpu.rejected)
    colour = "#1a7f37" if gpu.checked_with and not gpu.rejected else "#9a6700"
    return f"<span style='color:{colour}' title='{_e(why or gpu.checked_with or '')}'>{_e(gpu.verdict.removeprefix('gpu delegate: '))}</span>"


def _e(x: Any) -> str:
    return html.escape(str(x))


def _size(n: int | None) -> str:
    if n is None:
        return "–"
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def _histogram_svg(hist: dict[str, Any], colour: str, width: int = 300, height: int = 140) -> str:
    edges, counts = hist["log10_edges"], hist["counts"]
    top = max(*counts, hist.get("zeros", 0), 1)
    pad_l, pad_b, n = 28, 22, len(counts) + 1
    bw = (width - pad_l - 4) / n
    bars = []
    for i, c in enumerate([hist.get("zeros", 0), *counts]):
        h = (height - pad_b - 6) * math.sqrt(c / top)
        x = pad_l + i * bw
        fill = "#8c959f" if i == 0 else colour
        bars.append(
            f'<rect class="bar" x="{x:.1f}" y="{height - pad_b - h:.1f}" width="{bw - 1:.1f}" height="{h:.1f}" fill="{fill}"><title>{c}</title></rect>'
        )
    ticks = [f'<text x="{pad_l + bw / 2:.1f}" y="{height - 8}" text-anchor="middle">0</text>']
    for j, edge in enumerate(edges):
        if edge == int(edge) and int(edge) % 2 == 0:
            x = pad_l + (j + 1) * bw
            ticks.append(f'<text x="{x:.1f}" y="{height - 8}" text-anchor="middle">1e{int(edge)}</text>')
    return (
        f'<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img">'
        f'<line x1="{pad_l}" y1="{height - pad_b}" x2="{width - 4}" y2="{height - pad_b}" stroke="#8c959f"/>'
        + "".join(bars)
        + "".join(ticks)
        + '<text x="2" y="10">√n</text></svg>'
    )


def _hop_svg(rows: list[tuple[str, float | None, float | None]], width: int = 760) -> str:
    """Grouped bars, log scale: each artifact's max abs error vs its parent and vs the reference."""
    values = [v for _, a, b in rows for v in (a, b) if v]
    lo = math.floor(math.log10(min(values))) if values else -8
    hi = math.ceil(math.log10(max(values))) if values else 0
    hi = max(hi, lo + 1)
    row_h, pad_l, top = 26, 240, 18
    height = top + row_h * len(rows) + 24
    scale = (width - pad_l - 10) / (hi - lo)

    def bar(v: float | None, y: float, colour: str, label: str) -> str:
        if not v:
            return f'<text x="{pad_l + 2}" y="{y + 8}">{"0" if v == 0 else "–"}</text>'
        w = max((math.log10(v) - lo) * scale, 1)
        return f'<rect x="{pad_l}" y="{y}" width="{w:.1f}" height="10" fill="{colour}"><title>{label}: {v:.3g}</title></rect>'

    parts = [f'<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img">']
    parts.append(
        f'<rect x="{pad_l}" y="2" width="10" height="10" fill="#0969da"/><text x="{pad_l + 14}" y="11">vs parent (this hop)</text>'
    )
    parts.append(
        f'<rect x="{pad_l + 150}" y="2" width="10" height="10" fill="#8c959f"/><text x="{pad_l + 164}" y="11">vs reference</text>'
    )
    for i, (label, vs_parent, vs_ref) in enumerate(rows):
        y = top + i * row_h
        parts.append(f'<text x="{pad_l - 6}" y="{y + 14}" text-anchor="end">{_e(label)}</text>')
        parts.append(bar(vs_parent, y, "#0969da", "vs parent"))
        parts.append(bar(vs_ref, y + 11, "#8c959f", "vs reference"))
    for d in range(lo, hi + 1):
        x = pad_l + (d - lo) * scale
        parts.append(f'<text x="{x:.1f}" y="{height - 4}" text-anchor="middle">1e{d}</text>')
    parts.append("</svg>")
    return "".join(parts)


def render_html(report: ParityReport) -> str:
    """The report as one HTML page."""
    ref, inp = report.reference, report.inputs
    verdict = "PASSED" if report.passed else "FAILED"
    colour = "#1a7f37" if report.passed else "#cf222e"
    out = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>onnxpipe parity: {verdict}</title><style>{_CSS}</style></head><body>",
        f"<h1>Parity report <span style='background:{colour}'>{verdict}</span></h1>",
        f"<p>Reference <b>{_e(ref.artifact)}</b> on {_e(ref.runtime)} ({_e(ref.device)})"
        + (f", validation accuracy {ref.accuracy:.4f}" if ref.accuracy is not None else "")
        + (f". {_e(ref.note)}" if ref.note else "")
        + f". Fail on: {_e(report.fail_on)}.</p>",
    ]
    if report.first_failing_hop:
        out.append(f"<p><b>First failing hop: {_e(report.first_failing_hop)}</b></p>")
    out.append(
        "<p>Inputs: "
        + ", ".join(f"{n} {_e(g)}" for g, n in inp.groups.items())
        + f"; batch {inp.batch} and sweep {inp.sweep}.</p>"
    )
    if report.stage_seconds:
        out.append(f"<p>Stage times (wall): {_e(report.stage_times())}.</p>")
    out.append(
        "<h2>Summary</h2><table><tr><th>artifact</th><th>format</th><th>runtime</th><th>device</th><th>precision</th>"
        "<th>status</th><th>size</th><th>accuracy</th><th>latency (ms/sample)</th><th>max abs</th><th>cosine</th>"
        "<th>vs parent</th><th>blame</th></tr>"
    )
    out.append(
        f"<tr><td>{_e(ref.artifact)} (reference)</td><td>{_e(ref.format)}</td><td>{_e(ref.runtime)}</td>"
        f"<td>{_e(ref.device)}</td><td>fp32</td><td>–</td><td>{_size(ref.size_bytes)}</td>"
        f"<td>{_fmt(ref.accuracy, '.4f')}</td><td>{_fmt(ref.ms_per_sample, '.4f')}</td><td>0</td><td>1</td><td>–</td><td>–</td></tr>"
    )
    for r in report.results:
        m = r.metrics
        c = _STATUS_COLOUR.get(r.status, "#57606a")
        out.append(
            f"<tr><td>{_e(r.artifact)}</td><td>{_e(r.format)}</td><td>{_e(r.runtime)}</td><td>{_e(r.device)}</td>"
            f"<td>{_e(r.precision)}</td><td style='color:{c};font-weight:600' title='{_e(r.message or '')}'>{_e(r.status)}</td>"
            f"<td>{_size(r.size_bytes)}</td><td>{_fmt(r.accuracy, '.4f')}</td><td>{_fmt(r.ms_per_sample, '.4f')}</td>"
            f"<td>{_fmt(m and m.max_abs)}</td><td>{_fmt(m and m.cosine, '.6f')}</td>"
            f"<td>{_fmt(r.vs_parent and r.vs_parent.max_abs)}</td><td>{_e(r.blame or '–')}</td></tr>"
        )
    out.append("</table>")
    hops, seen = [], set()
    for r in report.results:
        if r.device == "cpu" and r.metrics and r.artifact not in seen:
            seen.add(r.artifact)
            hops.append(
                (
                    f"{r.parent or '?'} → {r.artifact}",
                    r.vs_parent.max_abs if r.vs_parent else None,
                    r.metrics.max_abs,
                )
            )
    if hops:
        out.append(
            "<h2>Error per hop (max abs, log scale)</h2><div class='plot' id='hops'>"
            + _hop_svg(hops)
            + "</div>"
        )
    out.append(
        "<h2>Error histograms (|candidate − reference|, per element)</h2><div class='plots' id='histograms'>"
    )
    for r in report.results:
        if r.histogram:
            c = _STATUS_COLOUR.get(r.status, "#57606a")
            out.append(
                f"<div class='plot'><h3>{_e(r.artifact)} · {_e(r.runtime)}/{_e(r.device)} · {_e(r.status)}</h3>"
                + _histogram_svg(r.histogram, c)
                + "</div>"
            )
    out.append("</div>")
    if report.provenance:
        out.append(
            "<h2>How each artifact was made (--backend auto)</h2><table><tr><th>artifact</th><th>route</th>"
            "<th>outcome</th><th>seconds</th><th>peak memory</th><th>reason</th></tr>"
        )
        for name, p in report.provenance.items():
            for a in p.attempts:
                kept = " (kept)" if a.route == p.kept else ""
                out.append(
                    f"<tr><td>{_e(name)}</td><td>{_e(a.route)}{kept}</td><td>{_e(a.outcome)}</td>"
                    f"<td>{_fmt(a.seconds, '.1f')}</td><td>{_size(a.peak_memory)}</td>"
                    f"<td style='text-align:left'>{_e(a.reason)}</td></tr>"
                )
        out.append("</table>")
    readiness = report.edge_readiness or {}
    if readiness:
        out.append(
            "<h2>Edge readiness</h2><table><tr><th>artifact</th><th>ready</th><th>ops</th><th>Flex / custom</th>"
            "<th>tflite-runtime</th><th>GPU delegate</th></tr>"
        )
        for name, e in readiness.items():
            ops = ", ".join(f"{o['op']} v{o['version']}" for o in e.ops)
            colour = "#1a7f37" if e.ready else "#cf222e"
            loads = {True: "loads", False: "refuses it", None: "not checked"}[e.tflite_runtime_loads]
            special = ", ".join(e.flex_ops + e.custom_ops) or "–"
            out.append(
                f"<tr><td>{_e(name)}</td><td style='color:{colour};font-weight:600'>{'yes' if e.ready else 'no'}</td>"
                f"<td style='text-align:left'>{_e(ops)}</td><td>{_e(special)}</td><td title='{_e(e.tflite_runtime_note or '')}'>{loads}</td>"
                f"<td style='text-align:left'>{_gpu_cell(e.gpu_delegate)}</td></tr>"
            )
        out.append("</table>")
    notes = [r for r in report.results if r.message]
    casts = {r.artifact: r.cast_inputs for r in report.results if r.cast_inputs}
    ran_on = dict.fromkeys((r.runtime, r.detail) for r in report.results if r.detail)
    if notes or casts or ran_on:
        out.append("<h2>Notes</h2><ul>")
        out += [f"<li><b>{_e(runtime)}</b> ran on {_e(detail)}</li>" for runtime, detail in ran_on]
        out += [
            f"<li><b>{_e(r.artifact)}</b> on {_e(r.runtime)}/{_e(r.device)} ({_e(r.status)}): {_e(r.message)}</li>"
            for r in notes
        ]
        out += [
            f"<li><b>{_e(name)}</b>: inputs cast as fed: "
            f"{_e(', '.join(f'{k} {v}' for k, v in cast.items()))} (values checked to fit)</li>"
            for name, cast in casts.items()
        ]
        out.append("</ul>")
    out.append("</body></html>")
    return "\n".join(out)
