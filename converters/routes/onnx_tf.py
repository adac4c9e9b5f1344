"""The onnx-tf route: ONNX -> TensorFlow SavedModel (and TFLite files) in the legacy environment.

onnx-tf 1.10 is frozen: it needs TensorFlow 2.15 and onnx 1.16, so it lives in ``.venv-legacy``
(``make setup-legacy``) and runs as a subprocess worker (``converters/onnx_tf_worker.py``), one
model per process. Before the worker sees the graph, input/output names it cannot handle are
renamed (:mod:`onnxpipe.converters.onnx_tf_compat`); each artifact binds the user's names to the renamed
ones, so reports keep the user's names. onnx-tf keeps the ONNX layout (NCHW stays NCHW). The
TFLite files come from TensorFlow 2.15's converter on onnx-tf's SavedModel; a precision the
converter cannot lower (onnx-tf's LSTM becomes TensorList ops TFLite rejects) fails the
conversion with the converter's reason, and nothing is written.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path

from onnxpipe.converters.layout import bind_tensors
from onnxpipe.converters.onnx_tf_compat import sanitize_io_names
from onnxpipe.converters.onnx_to_saved_model import (
    TFConvertOptions,
    calibration_arrays,
    call_worker,
    tflite_name,
    worker_versions,
)
from onnxpipe.converters.route import ROUTES, Route
from onnxpipe.converters.saved_model_to_tflite import CALIBRATED_PRECISIONS
from onnxpipe.converters.torch_to_onnx import ExportOptions
from onnxpipe.models.artifact import Artifact, Format, TensorBinding
from onnxpipe.models.environments import LEGACY_PYTHON
from onnxpipe.models.errors import ConversionError, EnvironmentProblem, UsageError
from onnxpipe.models.execution import RuntimeOpener
from onnxpipe.models.fs import atomic_path

__all__ = [
    "LEGACY_OPSET",
    "LEGACY_PYTHON",
    "NAME",
    "WORKER",
    "OnnxTfRoute",
    "convert_onnx_tf",
    "legacy_unavailable_reason",
    "legacy_versions",
]

log = logging.getLogger(__name__)

#: The route's name: ``--backend onnx-tf``, and the backend recorded on its artifacts.
NAME = "onnx-tf"

#: The opset checkpoints are exported at for onnx-tf (with the TorchScript exporter): 14, the first
#: at which it exports ``scaled_dot_product_attention`` (every attention block of transformers).
#: onnx-tf 1.10 stops at Squeeze/Unsqueeze-11; the worker adds the -13 handlers
#: (:mod:`onnxpipe.converters.onnx_tf_handlers`).
LEGACY_OPSET = 14
WORKER = Path(__file__).resolve().parents[1] / "onnx_tf_worker.py"


def legacy_unavailable_reason() -> str | None:
    """Why the onnx-tf backend cannot run here, or ``None`` when it can."""
    if not LEGACY_PYTHON.is_file():
        return f"the legacy environment is not set up ({LEGACY_PYTHON} missing): run `make setup-legacy`"
    return None


def legacy_versions() -> dict[str, str | None] | None:
    """Versions of the packages in the legacy environment that shape its artifacts (``None``: no env).

    Part of the convert stage's key, so a rebuilt ``.venv-legacy`` reconverts.
    """
    if legacy_unavailable_reason():
        return None
    return worker_versions(LEGACY_PYTHON, WORKER, NAME, [NAME, "tensorflow", "onnx", "numpy", "protobuf"])


def _rebind(bindings: tuple[TensorBinding, ...], forward: dict[str, str]) -> tuple[TensorBinding, ...]:
    """Bindings made against the user's names, pointed at the renamed tensors the artifact has."""
    return tuple(
        TensorBinding(b.name, forward.get(b.artifact_name, b.artifact_name), b.perm, b.layout)
        for b in bindings
    )


def _bind(spec, desc: dict, back: dict[str, str], forward: dict[str, str]):
    """Bind an artifact description (renamed tensors) to the spec (the user's names)."""

    def restored(tensors):
        return [dict(t, name=back.get(t["name"], t["name"])) for t in tensors]

    inputs = bind_tensors(spec.inputs, restored(desc["inputs"]), channels_last=False)
    outputs = bind_tensors(spec.outputs, restored(desc["outputs"]), channels_last=False)
    return _rebind(inputs, forward), _rebind(outputs, forward)


def convert_onnx_tf(
    onnx: Artifact, out_dir: str | Path, options: TFConvertOptions = TFConvertOptions()
) -> list[Artifact]:
    """Convert an ONNX artifact with onnx-tf into ``out_dir``: ``saved_model/`` and ``model_<p>.tflite``.

    All or nothing: every artifact is written atomically, and only once all of them were made.

    Returns:
        The SavedModel artifact (if asked for) followed by one TFLite artifact per precision.

    Raises:
        EnvironmentProblem: The legacy environment is missing.
        ConversionError: onnx-tf or the TFLite converter failed (the reason is in the message).
    """
    import onnx as onnx_lib

    if onnx.format is not Format.ONNX:
        raise UsageError(f"{onnx.path}: the onnx-tf backend converts ONNX files, got {onnx.format}")
    reason = legacy_unavailable_reason()
    if reason:
        raise EnvironmentProblem(f"the onnx-tf backend is unavailable: {reason}")
    try:
        model = onnx_lib.load(str(onnx.path))
    except Exception as e:  # onnx raises DecodeError, ValueError, OSError...
        raise ConversionError(f"{onnx.path}: not a readable ONNX model ({type(e).__name__})") from e
    back = sanitize_io_names(model)  # renamed -> user's name
    forward = {v: k for k, v in back.items()}
    if back:
        log.info("onnx-tf: renamed %s", ", ".join(f"{v!r} -> {k!r}" for k, v in back.items()))
    spec = onnx.spec
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".onnx-tf-", dir=out_dir) as tmp:
        work = Path(tmp).resolve()
        onnx_lib.save(model, str(work / "model.onnx"))
        sm_calibration = tuple(
            TensorBinding(t.name, forward.get(t.name, t.name), None, t.layout) for t in spec.inputs
        )
        request = {
            "onnx": str(work / "model.onnx"),
            "saved_model": str(work / "saved_model"),
            "tflite": {p: str(work / tflite_name(p)) for p in options.precisions},
        }
        calibration, record = calibration_arrays(
            spec, sm_calibration, options.precisions, onnx.path, options.calibration
        )
        log.info("onnx-tf: converting %s", onnx.path)
        try:
            result = call_worker(
                request,
                work,
                options.timeout_s,
                onnx.path,
                NAME,
                python=LEGACY_PYTHON,
                worker=WORKER,
                arrays=calibration,
                max_memory=options.max_memory,
            )
        except ConversionError as e:
            if "has no handler for" in str(e):
                raise ConversionError(
                    f"{str(e).splitlines()[0]} (export the checkpoint at opset {LEGACY_OPSET} with the "
                    f"TorchScript exporter: `onnxpipe convert CHECKPOINT --backend onnx-tf` does this)"
                ) from e
            raise
        not_made = {tflite_name(p): why for p, why in result["failed"].items()}
        if not_made and not (options.partial and (options.saved_model or result["tflite"])):
            reasons = "; ".join(f"{name}: {why}" for name, why in not_made.items())
            raise ConversionError(
                f"{onnx.path}: onnx-tf made a SavedModel but no working TFLite file from it ({reasons}); "
                f"nothing was written (try --to saved_model, or --backend onnx2tf)"
            )
        extra = {"versions": result["versions"], "renamed": back}
        if not_made:  # the planner asked for what converted: the rest is named, with the reason
            log.warning("onnx-tf: %s not made", ", ".join(not_made))
            extra["not_made"] = not_made
        sm_in, sm_out = _bind(spec, result["saved_model"], back, forward)
        artifacts: list[Artifact] = []
        sm_dest = out_dir / "saved_model"
        bound = []
        for precision in options.precisions:
            src = work / tflite_name(precision)
            if src.name in not_made:
                continue
            ins, outs = _bind(spec, result["tflite"][src.name], back, forward)
            bound.append((precision, src, ins, outs))
        if options.saved_model:
            with atomic_path(sm_dest) as dest_tmp:
                (work / "saved_model").rename(dest_tmp)
            artifacts.append(
                Artifact(sm_dest, Format.TF_SAVED_MODEL, spec, "fp32", sm_in, sm_out, onnx.label, NAME, extra)
            )
        for precision, src, ins, outs in bound:
            dest = out_dir / tflite_name(precision)
            with atomic_path(dest) as dest_tmp:
                shutil.move(src, dest_tmp)
            parent = sm_dest.name if options.saved_model else onnx.label
            calibrated = {"calibration": record} if precision in CALIBRATED_PRECISIONS else {}
            artifacts.append(
                Artifact(dest, Format.TFLITE, spec, precision, ins, outs, parent, NAME, extra | calibrated)
            )
    return artifacts


@ROUTES.register()
class OnnxTfRoute(Route):
    """onnx-tf 1.10 in ``.venv-legacy``, from a TorchScript export at opset 14."""

    name = NAME
    summary = "onnx-tf 1.10 on TensorFlow 2.15 (worker in .venv-legacy); TF 2.15's converter for TFLite"
    needs = "the legacy environment, .venv-legacy (make setup-legacy)"
    layout = "as the ONNX file (NCHW stays NCHW)"
    preference = 20

    @classmethod
    def unavailable_reason(cls) -> str | None:  # noqa: D102
        return legacy_unavailable_reason()

    @classmethod
    def versions(cls) -> dict[str, str | None] | None:  # noqa: D102
        return legacy_versions()

    @classmethod
    def export_options(cls, requested: ExportOptions) -> ExportOptions:
        """The TorchScript exporter at opset 14 (or the ``--opset`` asked for): onnx-tf predates newer ops."""
        return ExportOptions(opset=requested.opset or LEGACY_OPSET, exporter="torchscript")

    @classmethod
    def onnx_name(cls, options: ExportOptions) -> str:  # noqa: D102
        return f"model_opset{options.opset}.onnx"

    def convert(  # noqa: D102
        self, onnx: Artifact, out_dir: Path, options: TFConvertOptions, run_with: RuntimeOpener
    ) -> list[Artifact]:
        return convert_onnx_tf(onnx, out_dir, options)
