"""PyTorch -> ONNX: ``torch.onnx.export`` with a dynamic batch axis, checked before it is kept.

Postconditions: the file is one self-contained ``.onnx`` (no external data for models under 2 GB),
passes ``onnx.checker`` with full shape inference, and ONNX Runtime reproduces PyTorch on seeded
inputs at batch 1 and at batch 3 within the fp32 tolerance. Otherwise nothing is written.
"""

from __future__ import annotations

import logging
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from onnxpipe.models.artifact import Artifact, Format
from onnxpipe.models.checkpoint import Checkpoint, load_checkpoint, load_model
from onnxpipe.models.errors import ExportError, UnknownNameError, UsageError
from onnxpipe.models.execution import RuntimeOpener
from onnxpipe.models.fs import atomic_path
from onnxpipe.models.spec import ModelSpec, random_values

__all__ = ["EXPORTERS", "ExportOptions", "export_onnx", "probe_inputs"]

log = logging.getLogger(__name__)

EXPORTERS = ("dynamo", "torchscript")
_TWO_GB = 2 * 1024**3


@dataclass(frozen=True)
class ExportOptions:
    """Options of the export hop.

    Attributes:
        opset: ONNX opset; ``None`` takes the model spec's default.
        exporter: ``dynamo`` (``torch.export``-based, the default) or ``torchscript`` (legacy; what
            onnx-tf needs, at opset <= 13).
    """

    opset: int | None = None
    exporter: str = "dynamo"

    def __post_init__(self) -> None:
        if self.exporter not in EXPORTERS:
            raise UnknownNameError("exporter", self.exporter, EXPORTERS)
        if self.opset is not None and not 7 <= self.opset <= 23:
            raise UsageError(f"opset: got {self.opset}, expected 7..23")


def _why(error: BaseException) -> str:
    """An exporter's error in one line: its first line, then the root cause's, without colour codes.

    The dynamo exporter wraps the cause (``Cannot view a tensor with shape ...``) in a paragraph
    about its steps, coloured for a terminal.
    """

    def first_line(e: BaseException) -> str:
        text = re.sub(r"\x1b\[[0-9;]*m", "", str(e)).strip()
        return text.splitlines()[0] if text else type(e).__name__

    root = error
    while root.__cause__ is not None and root.__cause__ is not root:
        root = root.__cause__
    why = first_line(error)
    return why if root is error else f"{why} ({type(root).__name__}: {first_line(root)})"


def probe_inputs(spec: ModelSpec, batch: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Seeded random inputs over the spec's value range, with every dynamic axis set to ``batch``."""
    rng = np.random.default_rng(seed)
    return {t.name: random_values(t, t.concrete_shape(batch), spec.value_range, rng) for t in spec.inputs}


def _torch_outputs(model: Any, spec: ModelSpec, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    import torch

    with torch.no_grad():
        out = model(*(torch.from_numpy(feeds[t.name]) for t in spec.inputs))
    outs = out if isinstance(out, (tuple, list)) else (out,)
    return [o.detach().numpy() for o in outs]


def _export(model: Any, spec: ModelSpec, path: Path, opset: int, exporter: str) -> None:
    import torch

    example = tuple(torch.from_numpy(v) for v in probe_inputs(spec, batch=2).values())
    kwargs = {
        "input_names": [t.name for t in spec.inputs],
        "output_names": [t.name for t in spec.outputs],
        "dynamic_axes": {t.name: t.dynamic_axes for t in (*spec.inputs, *spec.outputs) if t.dynamic_axes},
        "opset_version": opset,
    }
    # The dynamo exporter warns that torchvision ops cannot be registered: irrelevant here.
    registration_log = logging.getLogger("torch.onnx._internal.exporter._registration")
    level = registration_log.level
    registration_log.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if exporter == "dynamo":
                program = torch.onnx.export(
                    model, example, dynamo=True, external_data=False, verbose=False, **kwargs
                )
                program.save(str(path), external_data=False)
            else:
                torch.onnx.export(model, example, str(path), dynamo=False, **kwargs)
    finally:
        registration_log.setLevel(level)


def _check_with_runtime(model: Any, spec: ModelSpec, path: Path, run_with: RuntimeOpener) -> dict[str, float]:
    """ONNX Runtime (or the reference evaluator, where it has no kernel) against PyTorch, batches 1 and 3."""
    tol = spec.tolerance("fp32")
    worst: dict[str, float] = {}
    with run_with(Artifact(path, Format.ONNX, spec)) as runtime:
        for batch in (1, 3):
            feeds = probe_inputs(spec, batch, seed=batch)
            expected = _torch_outputs(model, spec, feeds)
            outs = runtime.run(feeds)
            for t, e in zip(spec.outputs, expected, strict=True):
                g = outs[t.name]
                if e.shape != g.shape:
                    raise ExportError(
                        f"{path.name}: output {t.name!r} at batch {batch} has shape {g.shape} in {runtime.name}, "
                        f"{e.shape} in PyTorch (dynamic batch axis lost?)"
                    )
                max_abs = float(np.abs(e.astype(np.float64) - g).max()) if e.size else 0.0
                worst[t.name] = max(worst.get(t.name, 0.0), max_abs)
                if tol.violation(e, g) > 0:
                    raise ExportError(
                        f"{path.name}: {runtime.name} differs from PyTorch on output {t.name!r} at batch {batch}: "
                        f"max abs {max_abs:.3g} exceeds atol {tol.atol:g} + rtol {tol.rtol:g}·|ref|"
                    )
    return worst


def export_onnx(
    source: Checkpoint | str | Path,
    dest: str | Path,
    options: ExportOptions = ExportOptions(),
    *,
    run_with: RuntimeOpener,
) -> Artifact:
    """Export a checkpoint to ONNX at ``dest``.

    Args:
        source: An onnxpipe checkpoint (loaded or a path).
        dest: Where ``model.onnx`` goes; written atomically.
        options: Opset and exporter.
        run_with: Opens the runtime that checks the export against PyTorch.

    Returns:
        The ONNX artifact, with the max abs difference ONNX Runtime vs PyTorch in ``extra``.

    Raises:
        ExportError: The exporter failed, the graph is invalid, or ONNX Runtime disagrees with PyTorch.
    """
    import onnx

    ckpt = source if isinstance(source, Checkpoint) else load_checkpoint(source)
    model = load_model(ckpt)
    spec = ckpt.spec
    opset = options.opset or spec.opset
    dest = Path(dest)
    with atomic_path(dest) as tmp:
        try:
            _export(model, spec, tmp, opset, options.exporter)
        except Exception as e:  # the exporters raise many unrelated types
            raise ExportError(
                f"torch.onnx.export ({options.exporter}, opset {opset}) failed: {_why(e)}"
            ) from e
        if tmp.stat().st_size >= _TWO_GB:
            raise ExportError(f"{dest.name}: {tmp.stat().st_size} bytes; models over 2 GB need external data")
        try:
            onnx.checker.check_model(str(tmp), full_check=True)
            inferred = onnx.shape_inference.infer_shapes(
                onnx.load(str(tmp)), check_type=True, strict_mode=True
            )
        except Exception as e:  # onnx raises ValidationError, InferenceError and plain RuntimeErrors
            raise ExportError(f"{dest.name}: the exported graph is invalid: {e}") from e
        onnx.save(inferred, str(tmp))
        worst = _check_with_runtime(model, spec, tmp, run_with)
    log.info("exported %s (opset %d, %s); ORT vs PyTorch max abs %s", dest, opset, options.exporter, worst)
    return Artifact(
        path=dest,
        format=Format.ONNX,
        spec=spec,
        backend=f"torch.onnx/{options.exporter}",
        parent="checkpoint.pt",
        extra={"opset": opset, "ort_vs_torch_max_abs": worst},
    )
