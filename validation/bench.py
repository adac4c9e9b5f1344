"""Latency, throughput, size and accuracy per artifact x runtime x device.

Each runtime loads its artifact once, warms up, then times ``iters`` calls at a fixed batch on
validation samples. The time is the framework's own call as the runtime measures it (Polygraphy's
way: ``session.run``, ``invoke``, the forward pass), and ``overhead_ms`` is what onnxpipe's input
checks, layout transposes and (de)quantization add to each call on top; the figures are p50/p90 latency, throughput, and the achieved GFLOP/s from the
ONNX graph's MAC count. Accuracy is measured on the whole validation split, fed in batches.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from onnxpipe.models.artifact import Artifact
from onnxpipe.models.errors import UnknownNameError, UsageError
from onnxpipe.models.fs import size_of
from onnxpipe.models.spec import random_values
from onnxpipe.models.user_data import UserData, load_user_inputs
from onnxpipe.validation.metrics import fmt as _fmt
from onnxpipe.validation.parity import DEVICES, runtime_rows
from onnxpipe.validation.runtimes import RUNTIMES

__all__ = ["BenchOptions", "bench", "render_bench_markdown"]


@dataclass(frozen=True)
class BenchOptions:
    """What to time.

    Attributes:
        threads: Threads every runtime may use (the same for all, so the figures compare).
        warmup: Untimed calls before timing.
        iters: Timed calls.
        batch: Batch size of each call.
        devices: Devices to try (absent ones are reported unavailable).
        runtimes: Only these runtimes (``None``: every runtime that runs each format).
        inputs: The user's samples (``--inputs``), the first ``batch`` of them fed; default: the
            dataset's validation split, else seeded random rows.
    """

    threads: int = 1
    warmup: int = 10
    iters: int = 100
    batch: int = 1
    devices: tuple[str, ...] = ("cpu",)
    runtimes: tuple[str, ...] | None = None
    inputs: UserData | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "inputs", UserData.of(self.inputs))
        for name in ("threads", "iters", "batch"):
            if getattr(self, name) < 1:
                raise UsageError(f"{name}: got {getattr(self, name)}, expected >= 1")
        if self.warmup < 0:
            raise UsageError(f"warmup: got {self.warmup}, expected >= 0")
        for d in self.devices:
            if d not in DEVICES:
                raise UnknownNameError("device", d, DEVICES)
        for r in self.runtimes or ():
            if r not in RUNTIMES:
                raise UnknownNameError("runtime", r, RUNTIMES)


def _samples(spec: Any, n: int, user: UserData | None) -> tuple[dict, dict, np.ndarray | None]:
    """Rows per input (samples first), inputs fed whole, labels: the user's, the dataset's, or random rows."""
    if user is not None:
        arrays = load_user_inputs(user, spec)
        fixed = {t.name: arrays[t.name] for t in spec.inputs if t.whole}
        return {t.name: t.to_rows(arrays[t.name]) for t in spec.inputs if not t.whole}, fixed, None
    if spec.dataset and len(spec.inputs) == 1:
        from onnxpipe.models.data import model_arrays

        x, y = model_arrays(spec, "validation")
        return {spec.inputs[0].name: x}, {}, y
    rng = np.random.default_rng(0)
    return (
        {
            t.name: t.to_rows(random_values(t, t.concrete_shape(n), spec.value_range, rng))
            for t in spec.inputs
            if not t.whole
        },
        {
            t.name: random_values(t, t.concrete_shape(1), spec.value_range, rng)
            for t in spec.inputs
            if t.whole
        },
        None,
    )


def _time(rt: Any, feeds: dict[str, np.ndarray], options: BenchOptions) -> tuple[list[float], list[float]]:
    """Per timed call: the framework's own call (as the runtime timed it) and the whole ``run``."""
    for _ in range(options.warmup):
        rt.run(feeds)
    inference, whole = [], []
    for _ in range(options.iters):
        t0 = time.perf_counter()
        rt.run(feeds)
        whole.append(time.perf_counter() - t0)
        inference.append(rt.inference_s)
    return inference, whole


def _accuracy(rt: Any, spec: Any, x: np.ndarray, y: np.ndarray | None, batch: int) -> float | None:
    if y is None or len(spec.inputs) != 1:
        return None
    name, out_name = spec.inputs[0].name, spec.outputs[0].name
    preds = []
    for i in range(0, len(y), batch):
        out = rt.run({name: x[i : i + batch]})[out_name]
        if out.ndim != 2 or out.shape[1] < 2:
            return None
        preds.append(out.argmax(axis=1))
    return float((np.concatenate(preds) == y).mean())


def bench(
    artifacts: Sequence[Artifact],
    macs: int | None,
    options: BenchOptions = BenchOptions(),
    on_progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Time every artifact on every runtime and device; returns the ``bench.json`` document."""
    say = on_progress or (lambda _m: None)
    if not artifacts:
        raise UsageError("nothing to benchmark: no artifacts")
    spec = artifacts[0].spec
    rows_of, fixed, y = _samples(spec, max(options.batch, 32), options.inputs)
    tensors = {t.name: t for t in spec.inputs}
    feeds = {
        k: np.ascontiguousarray(tensors[k].from_rows(v[: options.batch])) for k, v in rows_of.items()
    } | fixed
    available = min(len(v) for v in rows_of.values()) if rows_of else 0
    if available < options.batch:
        raise UsageError(f"batch: got {options.batch}, but only {available} samples exist")
    x = next(iter(rows_of.values()))
    rows = []
    for art, cls, device in runtime_rows(artifacts, options.runtimes, options.devices):
        row: dict[str, Any] = {
            "artifact": art.label,
            "format": str(art.format),
            "precision": art.precision,
            "runtime": cls.name,
            "device": device,
            "size_bytes": size_of(art.path),
            "status": "ok",
            "message": None,
        }
        rows.append(row)
        reason = cls.unavailable_reason(device)
        if reason:
            row.update(status="unavailable", message=reason)
            continue
        say(
            f"{art.label} on {cls.name}/{device}: {options.warmup} warm-up + {options.iters} timed calls at batch {options.batch}"
        )
        try:
            t0 = time.perf_counter()
            with cls(art, device, threads=options.threads) as rt:
                load_s = time.perf_counter() - t0
                if rt.device_used != device:
                    row.update(
                        status="unavailable",
                        message=f"asked for {device}, the session runs on {rt.device_used}",
                    )
                    continue
                times, whole = _time(rt, feeds, options)
                accuracy = _accuracy(rt, spec, x, y, rt.static_batch() or 32)
        except Exception as e:  # a runtime that fails is this row's result
            row.update(status="error", message=f"{type(e).__name__}: {e}")
            continue
        p50, p90 = (float(np.percentile(times, q)) for q in (50, 90))
        row.update(
            load_s=load_s,
            p50_ms=1000 * p50,
            p90_ms=1000 * p90,
            mean_ms=1000 * statistics.fmean(times),
            overhead_ms=1000 * (statistics.fmean(whole) - statistics.fmean(times)),
            throughput=options.batch / statistics.fmean(times),
            gflops=(2 * macs * options.batch / p50 / 1e9) if macs else None,
            accuracy=accuracy,
        )
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {
        "model": spec.name,
        "macs_per_sample": macs,
        "options": asdict(options),
        "machine": {"cpus": os.cpu_count(), "load_average": list(load) if load else None},
        "results": rows,
    }


def render_bench_markdown(doc: dict[str, Any]) -> str:
    """The benchmark as a Markdown table."""
    o = doc["options"]
    lines = [
        f"# Benchmark: {doc['model']}",
        "",
        f"{_fmt(doc['macs_per_sample'], ',')} MACs per sample; batch {o['batch']}, {o['threads']} thread(s), "
        f"{o['warmup']} warm-up + {o['iters']} timed calls; {doc['machine']['cpus']} CPUs, "
        f"load average {doc['machine']['load_average']}.",
        "",
        "Latency is the runtime's own call; overhead is what onnxpipe adds around it per call "
        "(input checks, layout transposes, (de)quantization).",
        "",
        "| artifact | runtime | device | precision | status | size (KB) | p50 (ms) | p90 (ms) | overhead (ms) | throughput (/s) | GFLOP/s | accuracy |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in doc["results"]:
        lines.append(
            f"| `{r['artifact']}` | {r['runtime']} | {r['device']} | {r['precision']} | {r['status']} "
            f"| {r['size_bytes'] / 1024:.1f} | {_fmt(r.get('p50_ms'), '.4f')} | {_fmt(r.get('p90_ms'), '.4f')} "
            f"| {_fmt(r.get('overhead_ms'), '.4f')} "
            f"| {_fmt(r.get('throughput'), '.0f')} | {_fmt(r.get('gflops'), '.2f')} | {_fmt(r.get('accuracy'), '.4f')} |"
        )
    notes = [r for r in doc["results"] if r["message"]]
    if notes:
        lines += [
            "",
            *(f"- `{r['artifact']}` on {r['runtime']}/{r['device']}: {r['message']}" for r in notes),
        ]
    return "\n".join(lines) + "\n"
