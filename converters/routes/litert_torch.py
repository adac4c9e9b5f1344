"""The litert-torch route: the PyTorch module straight to TFLite, with no ONNX in between.

litert-torch 0.10 (Google's PyTorch -> TFLite converter) lowers a ``torch.export`` program through
JAX/StableHLO to TFLite. Its dependencies cannot share the main environment (its ``xdsl`` needs
``typing-extensions<4.13``; the main pins have 4.16), so it lives in ``.venv-litert`` (``make
setup-litert``) and runs as a worker (``converters/litert_torch_worker.py``). The main environment
loads the checkpoint's module (zoo or user class, as every stage does) and saves its
``torch.export`` program; the worker converts that program.

What it makes, measured: TFLite files with the checkpoint's own layout (NCHW stays NCHW, with
transposes inside) at batch 1 (its dynamic shapes fail on ``flatten``: the artifacts record
``static_batch``), int64 inputs narrowed to int32 (recorded per input in ``extra["narrowed"]``; the
runtimes cast what they feed and refuse values int32 cannot hold). No SavedModel. ``fp16`` (float16
weights), ``dynamic_int8``, and the calibrated ``int8`` (int8 weights and activations) and
``int16x8`` come from ai-edge-quantizer on the fp32 file; the calibrated ones are calibrated on the
same 200 training-split samples as the other routes', and keep float inputs and outputs (the
quantizer puts the quantize/dequantize ops inside the file).
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path

from onnxpipe.converters.onnx_to_saved_model import (
    TFConvertOptions,
    calibration_arrays,
    call_worker,
    tflite_name,
    worker_versions,
)
from onnxpipe.converters.route import ROUTES, Route
from onnxpipe.converters.saved_model_to_tflite import CALIBRATED_PRECISIONS
from onnxpipe.converters.torch_to_onnx import probe_inputs
from onnxpipe.models.artifact import Artifact, Format, TensorBinding
from onnxpipe.models.errors import ConversionError, EnvironmentProblem
from onnxpipe.models.execution import RuntimeOpener
from onnxpipe.models.fs import atomic_path

__all__ = ["LITERT_PYTHON", "NAME", "LiteRtTorchRoute"]

log = logging.getLogger(__name__)

NAME = "litert-torch"
#: The environment's interpreter: ``.venv-litert`` at the project root, or ``ONNXPIPE_LITERT_PYTHON``.
LITERT_PYTHON = Path(
    os.environ.get("ONNXPIPE_LITERT_PYTHON")
    or Path(__file__).resolve().parents[2] / ".venv-litert" / "bin" / "python"
)
WORKER = Path(__file__).resolve().parents[1] / "litert_torch_worker.py"
#: The batch it converts at: its dynamic shapes do not lower (``flatten`` on a symbolic batch).
BATCH = 1


def _export_program(checkpoint: Artifact, dest: Path) -> None:
    """Save the checkpoint's module as a ``torch.export`` program, with example inputs at :data:`BATCH`."""
    import torch

    from onnxpipe.models.checkpoint import load_model

    model = load_model(checkpoint.path)
    example = tuple(torch.from_numpy(v) for v in probe_inputs(checkpoint.spec, BATCH).values())
    try:
        with torch.no_grad():
            program = torch.export.export(model, example)
    except Exception as e:  # torch.export names the construct it cannot trace
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise ConversionError(f"{checkpoint.path}: torch.export failed: {type(e).__name__}: {first}") from e
    torch.export.save(program, str(dest))


def _bind(spec, desc: dict, source: Path):
    """Bindings by position (``args_i`` is input i, ``output_i`` output i) and the narrowed dtypes."""
    narrowed = {}
    bound = []
    for refs, declared in ((spec.inputs, desc["inputs"]), (spec.outputs, desc["outputs"])):
        if len(refs) != len(declared):
            raise ConversionError(
                f"{source}: litert-torch wrote {len(declared)} tensors where the model has {len(refs)} "
                f"({', '.join(t.name for t in refs)})"
            )
        bound.append(
            tuple(
                TensorBinding(t.name, d["name"], None, t.layout) for t, d in zip(refs, declared, strict=True)
            )
        )
        narrowed |= {
            t.name: f"{t.dtype} -> {d['dtype']}"
            for t, d in zip(refs, declared, strict=True)
            if d["dtype"] != t.dtype
        }
    return bound[0], bound[1], narrowed


@ROUTES.register()
class LiteRtTorchRoute(Route):
    """litert-torch 0.10 in ``.venv-litert``, from the checkpoint's ``torch.export`` program."""

    name = NAME
    summary = "litert-torch 0.10 (PyTorch -> TFLite, no ONNX; worker in .venv-litert); ai-edge-quantizer for the other precisions"
    makes = (Format.TFLITE,)
    precisions = ("fp32", "fp16", "dynamic_int8", "int8", "int16x8")
    needs = "the litert environment, .venv-litert (make setup-litert)"
    layout = "as the checkpoint (NCHW stays NCHW); batch 1 only; int64 inputs become int32"
    preference = 30
    converts = Format.TORCH

    @classmethod
    def unavailable_reason(cls) -> str | None:  # noqa: D102
        if not LITERT_PYTHON.is_file():
            return f"the litert environment is not set up ({LITERT_PYTHON} missing): run `make setup-litert`"
        return None

    @classmethod
    def versions(cls) -> dict[str, str | None] | None:  # noqa: D102
        return None if cls.unavailable_reason() else worker_versions(LITERT_PYTHON, WORKER, NAME)

    def convert(  # noqa: D102
        self, onnx: Artifact, out_dir: Path, options: TFConvertOptions, run_with: RuntimeOpener
    ) -> list[Artifact]:
        checkpoint = onnx
        if checkpoint.format is not Format.TORCH:
            raise ConversionError(
                f"{checkpoint.path}: the {NAME} route converts a PyTorch checkpoint, and this is {checkpoint.format}"
            )
        reason = self.unavailable_reason()
        if reason:
            raise EnvironmentProblem(f"the {NAME} route is unavailable: {reason}")
        refusal = self.refusal(options)  # with options.partial: only when it makes none of it
        if refusal:
            raise ConversionError(f"{checkpoint.path}: {refusal}")
        # What the planner asked for and this route does not make, named for its report.
        not_made = {"saved_model": f"the {NAME} route makes no SavedModel"} if options.saved_model else {}
        not_made |= {
            tflite_name(p): f"the {NAME} route makes no {p}"
            for p in options.precisions
            if p not in self.precisions
        }
        wanted = [p for p in options.precisions if p in self.precisions]
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=".litert-", dir=out_dir) as tmp:
            work = Path(tmp).resolve()
            _export_program(checkpoint, work / "program.pt2")
            request = {
                "program": str(work / "program.pt2"),
                "tflite": {p: str(work / tflite_name(p)) for p in wanted},
            }
            log.info("%s: converting %s", NAME, checkpoint.path)
            # Samples of each input by position (the file's names are litert-torch's own).
            positional = tuple(
                TensorBinding(t.name, str(i), None, t.layout) for i, t in enumerate(checkpoint.spec.inputs)
            )
            calibration, record = calibration_arrays(
                checkpoint.spec, positional, wanted, checkpoint.path, options.calibration
            )
            result = call_worker(
                request,
                work,
                options.timeout_s,
                checkpoint.path,
                NAME,
                python=LITERT_PYTHON,
                worker=WORKER,
                arrays=calibration,
                max_memory=options.max_memory,
            )
            not_made |= {tflite_name(p): why for p, why in result["failed"].items()}
            if not options.partial and result["failed"]:
                raise ConversionError(f"{checkpoint.path}: {'; '.join(not_made.values())}")
            artifacts = []
            for precision in wanted:
                if precision in result["failed"]:
                    continue
                ins, outs, narrowed = _bind(checkpoint.spec, result["tflite"][precision], checkpoint.path)
                extra = {"versions": result["versions"], "static_batch": BATCH}
                extra |= {"narrowed": narrowed} if narrowed else {}
                extra |= {"not_made": not_made} if not_made else {}
                extra |= {"calibration": record} if precision in CALIBRATED_PRECISIONS else {}
                dest = out_dir / tflite_name(precision)
                with atomic_path(dest) as dest_tmp:
                    shutil.move(work / tflite_name(precision), dest_tmp)
                artifacts.append(
                    Artifact(
                        dest,
                        Format.TFLITE,
                        checkpoint.spec,
                        precision,
                        ins,
                        outs,
                        checkpoint.label,
                        NAME,
                        extra,
                    )
                )
        if not artifacts:
            raise ConversionError(
                f"{checkpoint.path}: {NAME} made nothing asked for ({'; '.join(not_made.values())})"
            )
        return artifacts
