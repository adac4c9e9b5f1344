"""Layer-wise search: the first intermediate tensor whose error jumps.

Both sides run through the runtime layer (:func:`~onnxpipe.validation.runtimes.open_runtime` and
:meth:`Runtime.intermediates`): ONNX Runtime, or the ONNX reference evaluator where ONNX Runtime
cannot load the file, runs the ONNX model with every node output exposed; the LiteRT interpreter
runs the candidate with every intermediate tensor preserved (and no delegate, so each op's output
exists).
Each ONNX node output is matched to the TFLite activation of the same shape (or its channels-last
form) that is closest to it, int8/int16 tensors dequantized with their scale and zero point.
Converters fuse ops (Conv+ReLU becomes one CONV_2D), so an ONNX tensor with no counterpart shows a
large error that its consumers "heal" (their error is ten times smaller); such tensors are marked
fused and skipped. The located op is
the first node whose output error exceeds the threshold and stays large in its consumers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from onnxpipe.models.artifact import Artifact, Format
from onnxpipe.models.errors import UsageError
from onnxpipe.validation.runtimes import open_runtime

__all__ = ["LayerError", "LocateReport", "locate"]


@dataclass
class LayerError:
    """One ONNX node output compared with its closest candidate tensor."""

    node: str
    op_type: str
    output: str
    matched: str | None
    layout: str | None
    input_error: float
    output_error: float | None
    fused: bool = False


@dataclass
class LocateReport:
    """Per-layer errors and the located op."""

    reference: str
    candidate: str
    threshold: float
    layers: list[LayerError] = field(default_factory=list)
    located: LayerError | None = None
    fused_into_located: list[str] = field(default_factory=list)
    worst_amplifier: LayerError | None = None

    def summary(self) -> str:
        """One line naming the op where the error starts, with its inputs' and output's error."""
        if self.located is None:
            worst = max((x.output_error or 0.0 for x in self.layers if not x.fused), default=0.0)
            return f"no layer's error jumps above {self.threshold:g} (largest relative error {worst:.3g})"
        x = self.located
        fused = (
            f" (fused in the candidate with {', '.join(self.fused_into_located)})"
            if self.fused_into_located
            else ""
        )
        return (
            f"error starts at {x.op_type} node {x.node!r} (output {x.output!r}){fused}: "
            f"inputs' relative error {x.input_error:.3g} -> output's {x.output_error:.3g}"
        )

    def derived(self) -> dict[str, Any]:
        """Written with the fields (``onnxpipe.models.records``): the one-line summary."""
        return {"summary": self.summary()}


def _relative(r: np.ndarray, c: np.ndarray) -> float:
    r64, c64 = r.astype(np.float64).ravel(), c.astype(np.float64).ravel()
    return float(np.linalg.norm(c64 - r64) / (np.linalg.norm(r64) + 1e-12))


def _match(ref: np.ndarray, candidates: dict[str, np.ndarray]) -> tuple[str | None, str | None, float | None]:
    """The candidate tensor closest to ``ref`` in the same shape or in channels-last order."""
    best: tuple[str | None, str | None, float | None] = (None, None, None)
    forms = [("same", ref)]
    if 3 <= ref.ndim <= 5:
        forms.append(("channels-last", ref.transpose((0, *range(2, ref.ndim), 1))))
    for name, value in candidates.items():
        for layout, form in forms:
            if value.shape == form.shape:
                err = _relative(form, value)
                if best[2] is None or err < best[2]:
                    best = (name, layout, err)
    return best


def locate(
    onnx_artifact: Artifact, candidate: Artifact, feeds: dict[str, np.ndarray], threshold: float = 1e-3
) -> LocateReport:
    """Find where ``candidate`` (a .tflite file) starts to differ from ``onnx_artifact``.

    Args:
        onnx_artifact: The ONNX model the candidate descends from.
        candidate: A TFLite artifact.
        feeds: Inputs in the reference names and layout (a few samples are enough).
        threshold: Relative error (``||c - r|| / ||r||``) that counts as a jump. For an int8
            candidate against fp32, raise it to the quantization noise (e.g. 0.05).
    """
    if onnx_artifact.format is not Format.ONNX:
        raise UsageError(f"{onnx_artifact.path}: --locate needs an ONNX file as the reference side")
    if candidate.format is not Format.TFLITE:
        raise UsageError(
            f"{candidate.path}: --locate compares against a .tflite file, got {candidate.format}"
        )
    import onnx

    with open_runtime(onnx_artifact) as rt:
        ref = rt.intermediates(feeds)
    with open_runtime(candidate) as rt:
        cand = rt.intermediates(feeds)
    graph = onnx.load(str(onnx_artifact.path), load_external_data=False)
    report = LocateReport(onnx_artifact.label, candidate.label, threshold)
    error: dict[str, float] = {name: 0.0 for name in feeds}
    consumers: dict[str, list[str]] = {}
    for node in graph.graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node.name)
    by_output: dict[str, LayerError] = {}
    for node in graph.graph.node:
        in_err = max((error[i] for i in node.input if i in error), default=0.0)
        for out in node.output:
            value = ref.get(out)
            if value is None or not np.issubdtype(value.dtype, np.floating) or value.ndim == 0:
                continue
            matched, layout, err = _match(value, cand)
            layer = LayerError(node.name, node.op_type, out, matched, layout, in_err, err)
            report.layers.append(layer)
            by_output[out] = layer
            error[out] = err if err is not None else in_err
    # A large error that every consumer "heals" is a tensor the candidate fused away.
    node_outputs = {n.name: list(n.output) for n in graph.graph.node}
    for layer in report.layers:
        if layer.output_error is None or layer.output_error <= threshold:
            continue
        downstream = [
            by_output[o]
            for c in consumers.get(layer.output, [])
            for o in node_outputs.get(c, [])
            if o in by_output
        ]
        if downstream and all((d.output_error or 0.0) < layer.output_error / 10 for d in downstream):
            layer.fused = True
    # Input errors again, now that a fused tensor's error is its own inputs' error.
    effective: dict[str, float] = {name: 0.0 for name in feeds}
    nodes = {n.name: n for n in graph.graph.node}
    for layer in report.layers:
        node = nodes[layer.node]
        layer.input_error = max((effective[i] for i in node.input if i in effective), default=0.0)
        own = layer.output_error if layer.output_error is not None else layer.input_error
        effective[layer.output] = layer.input_error if layer.fused else own
    for layer in report.layers:
        if not layer.fused and layer.output_error is not None and layer.output_error > threshold:
            report.located = layer
            break
    if report.located is not None:
        idx = report.layers.index(report.located)
        for prev in reversed(report.layers[:idx]):
            if not prev.fused:
                break
            report.fused_into_located.insert(0, f"{prev.op_type} {prev.node!r}")
    ratios = [
        (x.output_error / max(x.input_error, 1e-6), x)
        for x in report.layers
        if x.output_error and not x.fused
    ]
    report.worst_amplifier = max(ratios, key=lambda t: t[0])[1] if ratios else None
    return report
