"""SavedModel -> TensorFlow.js graph model (``tfjs/model.json`` and its weight shards).

The ``tensorflowjs`` converter runs in its own environment (``.venv-tfjs``, ``make setup-tfjs``:
TensorFlow 2.15 with ``tensorflow_decision_forests``, which the converter imports when it loads)
as a worker (:mod:`converters.tfjs_worker`). It converts the SavedModel's ``serving_default``
signature, so the graph model takes and gives the SavedModel's tensors under the same names and in
the same layout: each tfjs artifact carries the SavedModel's bindings.

Precisions are weight quantizations (computation stays float32 in every backend):

- ``fp32``: ``tfjs/``, float32 weights.
- ``fp16``: ``tfjs_fp16/``, float16 weights (half the size).
- ``uint8``: ``tfjs_uint8/``, 8-bit affine weights per tensor (a quarter of the size).
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

from onnxpipe.converters.onnx_to_saved_model import call_worker, worker_versions
from onnxpipe.models.artifact import Artifact, Format
from onnxpipe.models.environments import TFJS_PYTHON
from onnxpipe.models.errors import ConversionError, UsageError
from onnxpipe.models.fs import atomic_path

__all__ = [
    "TFJS_PRECISIONS",
    "TFJS_PYTHON",
    "convert_to_tfjs",
    "tfjs_name",
    "tfjs_unavailable_reason",
    "tfjs_versions",
]

log = logging.getLogger(__name__)

#: Precision -> the converter's weight quantization.
TFJS_PRECISIONS = {"fp32": None, "fp16": "float16", "uint8": "uint8"}

_WORKER = Path(__file__).resolve().parent / "tfjs_worker.py"
NAME = "tensorflowjs"


def tfjs_name(precision: str) -> str:
    """The folder of the graph model at ``precision``: ``tfjs``, ``tfjs_fp16``, ``tfjs_uint8``."""
    return "tfjs" if precision == "fp32" else f"tfjs_{precision}"


def tfjs_unavailable_reason() -> str | None:
    """Why SavedModel -> tfjs cannot run here, or ``None``."""
    if not TFJS_PYTHON.is_file():
        return f"the tfjs environment is not set up ({TFJS_PYTHON} missing): run `make setup-tfjs`"
    return None


def tfjs_versions() -> dict | None:
    """The converter environment's versions (part of the tfjs stage's key)."""
    if tfjs_unavailable_reason():
        return None
    return worker_versions(TFJS_PYTHON, _WORKER, NAME, ["tensorflowjs", "tensorflow"])


def _check_signature(saved_model: Artifact, signature: dict) -> None:
    """The graph model's signature names every tensor the SavedModel's bindings name."""
    for side, bindings in (("inputs", saved_model.inputs), ("outputs", saved_model.outputs)):
        names = set(signature.get(side) or {})
        missing = [b.artifact_name for b in bindings if b.artifact_name not in names]
        if missing:
            raise ConversionError(
                f"{saved_model.path}: the tfjs model has no {side[:-1]} {missing[0]!r} "
                f"(its signature names {sorted(names)})"
            )


def convert_to_tfjs(
    saved_model: Artifact,
    out_dir: Path,
    precisions: Sequence[str] = ("fp32",),
    timeout_s: float = 1800.0,
    max_memory: int | None = None,
) -> list[Artifact]:
    """Write one graph model per precision into ``out_dir`` (each folder replaced atomically).

    Raises:
        UsageError: An unknown precision, or ``saved_model`` is not a SavedModel.
        ConversionError: The tfjs environment is missing, or the converter failed (an op
            TensorFlow.js lacks is named in its message).
    """
    bad = [p for p in precisions if p not in TFJS_PRECISIONS]
    if bad:
        raise UsageError(f"tfjs precision {bad[0]!r}: expected one of {', '.join(TFJS_PRECISIONS)}")
    if saved_model.format is not Format.TF_SAVED_MODEL:
        raise UsageError(f"{saved_model.path}: tfjs converts a SavedModel, got {saved_model.format}")
    reason = tfjs_unavailable_reason()
    if reason:
        raise ConversionError(f"{saved_model.path}: cannot convert to tfjs: {reason}")
    out_dir = Path(out_dir)
    artifacts = []
    with tempfile.TemporaryDirectory(prefix=".tfjs-", dir=out_dir) as tmp:
        work = Path(tmp).resolve()
        written = []
        for precision in precisions:
            dest = work / tfjs_name(precision)
            log.info("tensorflowjs: %s -> %s", saved_model.path, dest.name)
            reply = call_worker(
                {
                    "saved_model": str(saved_model.path.resolve()),
                    "dest": str(dest),
                    "quantize": TFJS_PRECISIONS[precision],
                },
                work,
                timeout_s,
                saved_model.path,
                NAME,
                python=TFJS_PYTHON,
                worker=_WORKER,
                max_memory=max_memory,
            )
            _check_signature(saved_model, reply["signature"])
            written.append((precision, dest, reply["versions"]))
        for precision, src, versions in written:  # every folder made before any is moved in
            final = out_dir / src.name
            with atomic_path(final) as tmp_dest:
                shutil.move(src, tmp_dest)
            artifacts.append(
                Artifact(
                    final,
                    Format.TFJS,
                    saved_model.spec,
                    precision,
                    saved_model.inputs,
                    saved_model.outputs,
                    parent=saved_model.label,
                    backend=NAME,
                    extra={"versions": versions, "weights": TFJS_PRECISIONS[precision] or "float32"},
                )
            )
    return artifacts
