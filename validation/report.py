"""Render a :class:`~validation.parity.ParityReport` for people (Markdown) and machines (JSON)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from models.fs import atomic_path, write_json
from validation.parity import ParityReport

__all__ = ["render_markdown", "write_reports"]


def _num(x: Any, fmt: str = ".3g") -> str:
    if x is None:
        return "–"
    return format(x, fmt)


def render_markdown(report: ParityReport | dict[str, Any]) -> str:
    """Markdown summary: verdict, reference, inputs, one row per result, then failure reasons."""
    d = report.to_dict() if isinstance(report, ParityReport) else report
    ref, inp = d["reference"], d["inputs"]
    lines = [
        f"# Parity report: {'PASSED' if d['passed'] else 'FAILED'}",
        "",
        f"Reference: `{ref['artifact']}` on {ref['runtime']} ({ref['device']})"
        + (f", validation accuracy {ref['accuracy']:.4f}" if ref.get("accuracy") is not None else ""),
        "",
        f"Inputs: {inp['samples']} samples from the {inp['source']} + {inp['random']} seeded random inputs "
        f"over {inp['value_range']} (seed {inp['seed']}), run at batch sizes {inp['batch_sizes']} "
        f"({inp['batch1_inputs']} inputs at batch 1).",
        "",
        "| artifact | runtime | device | precision | status | max abs | max rel | mean abs | cosine "
        "| SNR dB | top-1 | accuracy | vs parent (max abs) | tolerance (atol / rtol / cos / top-1) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in d["results"]:
        m, t, p = r["metrics"] or {}, r["tolerance"], r["vs_parent"]
        tol = f"{t['atol']:g} / {t['rtol']:g} / {t['min_cosine']} / {_num(t['min_top1'], 'g')}" if t else "–"
        snr = "∞" if m and m.get("snr_db") is None else _num(m.get("snr_db"), ".1f")
        parent = f"{_num(p['max_abs'])} vs `{r['parent']}`" if p else "–"
        lines.append(
            f"| `{r['artifact']}` | {r['runtime']} | {r['device']} | {r['precision']} | **{r['status']}** "
            f"| {_num(m.get('max_abs'))} | {_num(m.get('max_rel'))} | {_num(m.get('mean_abs'))} "
            f"| {_num(m.get('cosine'), '.6f')} | {snr if m else '–'} | {_num(m.get('top1_agreement'), '.4f')} "
            f"| {_num(r['accuracy'], '.4f')} | {parent} | {tol} |"
        )
    notes = [r for r in d["results"] if r["message"]]
    if notes:
        lines += ["", "## Notes", ""]
        lines += [f"- `{r['artifact']}` on {r['runtime']} ({r['status']}): {r['message']}" for r in notes]
    return "\n".join(lines) + "\n"


def write_reports(
    report: ParityReport, out_dir: str | Path, extra: dict[str, Any] | None = None
) -> list[Path]:
    """Write ``parity.json`` and ``parity.md`` into ``out_dir`` atomically."""
    out_dir = Path(out_dir)
    data = report.to_dict() | (extra or {})
    json_path, md_path = out_dir / "parity.json", out_dir / "parity.md"
    write_json(json_path, data)
    with atomic_path(md_path) as tmp:
        tmp.write_text(render_markdown(data))
    return [json_path, md_path]
