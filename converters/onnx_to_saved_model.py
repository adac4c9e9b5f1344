"""ONNX -> TensorFlow SavedModel (and its TFLite fp32/fp16 files) with the onnx2tf backend.

onnx2tf builds one Keras graph and writes the SavedModel and the .tflite files from it in one run,
so this hop yields all three; each TFLite file's parent is the SavedModel. The backend runs in a
subprocess worker (:mod:`converters.onnx2tf_worker`) on a private copy of the ONNX file (onnx2tf
rewrites its input), with the environment's ``bin`` folder on ``PATH`` (it shells out to
``onnxsim``) and its calibration-image file supplied from bundled data (it would download one for
3-channel image inputs otherwise).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from onnxpipe.converters.layout import bind_tensors, settle_ambiguous
from onnxpipe.converters.repairs import scope_safe_copy
from onnxpipe.converters.saved_model_to_tflite import CALIBRATED_PRECISIONS, QUANTIZED_PRECISIONS
from onnxpipe.models import wire
from onnxpipe.models.artifact import Artifact, Format
from onnxpipe.models.errors import ConversionError, EnvironmentProblem, UnknownNameError, UsageError
from onnxpipe.models.execution import RuntimeOpener
from onnxpipe.models.fs import atomic_path
from onnxpipe.models.spec import NOT_DATA
from onnxpipe.models.user_data import UserData, load_user_inputs

__all__ = [
    "ONNX2TF_PRECISIONS",
    "PRECISIONS",
    "TFConvertOptions",
    "convert_onnx2tf",
    "tflite_name",
    "unsupported_ops",
    "worker_versions",
]

log = logging.getLogger(__name__)

#: Precisions onnx2tf writes, with its own file suffix for each.
ONNX2TF_PRECISIONS = {"fp32": "float32", "fp16": "float16"}
#: Every TFLite precision of this hop: onnx2tf's, then TensorFlow's converter's quantized ones.
PRECISIONS = (*ONNX2TF_PRECISIONS, *QUANTIZED_PRECISIONS)
_CALIBRATION_SAMPLES = 200
_CALIBRATION_FILE = "calibration_image_sample_data_20x128x128x3_float32.npy"
_WORKER = Path(__file__).with_name("onnx2tf_worker.py")


def tflite_name(precision: str) -> str:
    """File name of the TFLite artifact of ``precision`` in a run directory."""
    return f"model_{precision}.tflite"


def default_max_memory(share: float = 0.75) -> int:
    """The default cap of a conversion worker: ``share`` of this machine's physical memory."""
    return int(share * os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))


@dataclass(frozen=True)
class TFConvertOptions:
    """Options of the ONNX -> TensorFlow hop.

    Attributes:
        saved_model: Keep the SavedModel.
        precisions: TFLite precisions to keep (none: no TFLite).
        timeout_s: Give up on onnx2tf after this long.
        max_memory: Address-space cap, in bytes, of each conversion worker (default: three
            quarters of this machine's memory); a worker that runs out of it fails alone, with
            ``out of memory at N GB``.
        partial: Keep what converted when some artifact could not be made (a route that makes
            several artifacts in one run); each kept artifact's ``extra["not_made"]`` names the
            others with the reason. The planner asks for this: it validates every artifact on
            its own. Otherwise a conversion is all or nothing.
        calibration: The user's samples the calibrated precisions (int8, int16x8) are calibrated
            on (``--calibration``, else ``--inputs``); default: the bundled training split of a zoo
            model. A path is taken as :class:`UserData` with no image options.
        samples: The user's samples (``--inputs``), where the graph takes an input no value can be
            made up for (a shape): the layouts a converter chose are measured on them.
    """

    saved_model: bool = True
    precisions: tuple[str, ...] = ("fp32", "fp16")
    timeout_s: float = 1800.0
    max_memory: int | None = field(default_factory=default_max_memory)
    partial: bool = False
    calibration: UserData | None = None
    samples: UserData | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "calibration", UserData.of(self.calibration))
        object.__setattr__(self, "samples", UserData.of(self.samples))
        bad = [p for p in self.precisions if p not in PRECISIONS]
        if bad:
            raise UnknownNameError("precision", bad[0], PRECISIONS)
        if self.max_memory is not None and self.max_memory < 2**28:
            raise UsageError(f"max memory: got {self.max_memory / 2**30:.2f} GB, expected at least 0.25 GB")
        if not self.saved_model and not self.precisions:
            raise UsageError("nothing to convert: no SavedModel and no TFLite precision asked for")


def unsupported_ops(onnx_path: Path) -> list[str]:
    """Ops of the graph that onnx2tf has no converter for (it keeps one module per op in ``ops/``)."""
    import importlib.util

    import onnx

    spec = importlib.util.find_spec("onnx2tf")
    if spec is None or not spec.submodule_search_locations:
        return []
    ops_dir = Path(next(iter(spec.submodule_search_locations))) / "ops"
    known = {p.stem for p in ops_dir.glob("*.py")}
    try:
        graph = onnx.load(str(onnx_path), load_external_data=False).graph
    except Exception as e:  # onnx raises DecodeError, ValueError, OSError...
        raise ConversionError(f"{onnx_path}: not a readable ONNX model ({type(e).__name__})") from e
    found = []
    for node in graph.node:
        name = node.op_type if node.domain in ("", "ai.onnx") else f"{node.domain}::{node.op_type}"
        if (node.domain not in ("", "ai.onnx") or node.op_type not in known) and name not in found:
            found.append(name)
    return found


def _calibration_images() -> np.ndarray:
    """20 bundled digits, upsampled to 128x128 and repeated over 3 channels, NHWC in [0, 1]."""
    from onnxpipe.models.data import load_dataset

    x = load_dataset("digits", "train").x[:20, 0]  # [20, 8, 8]
    x = np.repeat(np.repeat(x, 16, axis=1), 16, axis=2)  # [20, 128, 128]
    return np.ascontiguousarray(np.repeat(x[..., None], 3, axis=-1), dtype=np.float32)


def call_worker(
    request: dict,
    work: Path,
    timeout_s: float,
    source: Path,
    what: str,
    python: Path | None = None,
    worker: Path = _WORKER,
    arrays: dict[str, np.ndarray] | None = None,
    max_memory: int | None = None,
) -> dict:
    """Run the handler ``worker`` with ``python`` on one request in ``work`` (the worker protocol).

    Its log (everything it printed) is kept as ``work/<what>.log``.

    Returns:
        The worker's reply header.

    Raises:
        ConversionError: It failed, died or timed out; the message has the reason and its log's tail.
    """
    python = Path(python or sys.executable)
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(python.parent), env.get("PATH", "")])
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        reply = wire.call(
            wire.command(python, worker),
            request,
            arrays,
            what=what,
            error=ConversionError,
            log=work / f"{what}.log",
            cwd=work,
            env=env,
            timeout_s=timeout_s,
            max_memory=max_memory,
        )
    except ConversionError as e:
        raise ConversionError(f"{source}: {e}") from e
    return reply.header


def worker_versions(python: Path, worker: Path, what: str, names: list[str] | None = None) -> dict | None:
    """The versions a worker environment reports (``None`` when it cannot be asked: logged).

    Part of the convert stage's key for routes in other environments, so a rebuilt one reconverts.
    """
    request = {"mode": "versions"} | ({"names": names} if names else {})
    try:
        reply = wire.call(
            wire.command(python, worker),
            request,
            what=f"{what} worker",
            error=EnvironmentProblem,
            timeout_s=60,
        )
    except EnvironmentProblem as e:
        log.warning("cannot read the %s environment's versions: %s", what, str(e).splitlines()[0])
        return None
    return reply.header["versions"]


def _run_onnx2tf(onnx_path: Path, work: Path, options: TFConvertOptions) -> dict:
    model = work / "model.onnx"
    scope_safe_copy(onnx_path, model)  # onnx2tf rewrites its input, needs its weights, and Keras's names
    # onnx2tf fetches test images for graphs whose inputs are all 4-D with one static batch (a
    # batch fixed by a route, too); stocked in its working folder, they are read from there.
    np.save(work / _CALIBRATION_FILE, _calibration_images())
    request = {"mode": "convert", "onnx": str(model), "out_dir": str(work / "out"), "options": {}}
    return call_worker(request, work, options.timeout_s, onnx_path, "onnx2tf", max_memory=options.max_memory)


def calibration_arrays(
    spec, bindings, precisions, source: Path, calibration: UserData | None = None
) -> tuple[dict[str, np.ndarray], dict | None]:
    """Calibration samples for the calibrated precisions, in the artifact's layout, and their record.

    The user's samples (``calibration``) when given, else the bundled training split of a zoo model.

    Returns:
        Artifact input name -> samples (empty when no precision needs calibration), and what to
        record in each calibrated artifact's ``extra["calibration"]``: ``source`` and ``samples``.

    Raises:
        UsageError: A precision needs calibration and there is nothing to calibrate on.
        InputFileError: The user's samples do not fit the model.
    """
    wanted = [p for p in precisions if p in CALIBRATED_PRECISIONS]
    if not wanted:
        return {}, None
    if calibration is not None:
        if any(t.kind in NOT_DATA for t in spec.inputs):
            shaped = next(t for t in spec.inputs if t.kind in NOT_DATA)
            what = "carries a shape" if shaped.kind == "shape" else "is a setting"
            raise UsageError(
                f"{source}: {wanted[0]} calibration of a model whose input {shaped.name!r} {what} "
                "is not supported (its samples are not rows); convert to fp32/fp16/dynamic_int8"
            )
        odd = next((t for t in spec.inputs if t.batch_axis != 0), None)
        if odd is not None:  # the calibration worker feeds rows on axis 0, one sample at a time
            where = "is fed whole" if odd.whole else f"has its samples on axis {odd.batch_axis}"
            raise UsageError(
                f"{source}: {wanted[0]} calibration of a model whose input {odd.name!r} {where} is not "
                "supported yet; convert to fp32/fp16/dynamic_int8"
            )
        arrays = load_user_inputs(calibration, spec)
        count = min(len(next(iter(arrays.values()))), _CALIBRATION_SAMPLES)
        samples = {b.artifact_name: b.to_artifact(arrays[b.name][:count]) for b in bindings}
        record = {"source": calibration.name, "samples": count}
    else:
        from onnxpipe.models.data import model_arrays

        if not spec.dataset or len(spec.inputs) != 1:
            raise UsageError(
                f"{source}: {wanted[0]} needs calibration samples, and this model has no bundled dataset: "
                "give your own with --calibration PATH (an .npz, or a folder of .npy/.npz files or images)"
            )
        x, _ = model_arrays(spec, "train")
        count = min(len(x), _CALIBRATION_SAMPLES)
        samples = {bindings[0].artifact_name: bindings[0].to_artifact(x[:count])}
        record = {"source": f"{spec.dataset} training split", "samples": count}
    return {k: np.ascontiguousarray(v) for k, v in samples.items()}, record


def _run_quantize(
    spec, saved_model: Path, bindings, precisions, work: Path, options: TFConvertOptions, source: Path
) -> dict:
    """Integer TFLite files from the SavedModel, calibrated on training-split samples in its layout."""
    request = {
        "mode": "quantize",
        "saved_model": str(saved_model),
        "outputs": {p: str(work / tflite_name(p)) for p in precisions},
    }
    calibration, record = calibration_arrays(spec, bindings, precisions, source, options.calibration)
    reply = call_worker(
        request,
        work,
        options.timeout_s,
        source,
        "quantization",
        arrays=calibration,
        max_memory=options.max_memory,
    )
    return reply | {"calibration": record}


def _measured_layouts(
    onnx: Artifact, produced: Path, result: dict, run_with: RuntimeOpener, samples: UserData | None = None
):
    """A function that gives each binding the layout onnx2tf really used, measured on its float TFLite.

    Only tensors whose shape fits both layouts (``[N, 8, 8]``) can change; onnx2tf writes one graph,
    so the SavedModel and every TFLite file of the run share the measured layouts.
    """
    name = f"model_{ONNX2TF_PRECISIONS['fp32']}.tflite"
    if name not in result.get("tflite", {}):
        return lambda bindings: bindings
    desc = result["tflite"][name]
    spec = onnx.spec
    ins, outs = settle_ambiguous(
        onnx,
        produced / name,
        desc,
        bind_tensors(spec.inputs, desc["inputs"], channels_last=True),
        bind_tensors(spec.outputs, desc["outputs"], channels_last=True, match_names=False),
        run_with,
        None if samples is None else load_user_inputs(samples, spec),
    )
    measured = {b.name: (b.perm, b.layout) for b in (*ins, *outs)}

    def relayout(bindings):
        return tuple(
            dataclasses.replace(b, perm=measured[b.name][0], layout=measured[b.name][1])
            if b.name in measured
            else b
            for b in bindings
        )

    return relayout


def convert_onnx2tf(
    onnx: Artifact,
    out_dir: str | Path,
    options: TFConvertOptions = TFConvertOptions(),
    *,
    run_with: RuntimeOpener,
) -> list[Artifact]:
    """Convert an ONNX artifact with onnx2tf into ``out_dir``.

    ``run_with`` opens the runtimes that measure the layout onnx2tf used where a shape fits two.

    Writes ``saved_model/`` and ``model_<precision>.tflite`` atomically: an artifact appears under
    its final name only once complete, and a failure leaves earlier files as they were.

    Returns:
        The SavedModel artifact (if asked for) followed by one TFLite artifact per precision.

    Raises:
        ConversionError: onnx2tf failed, or an artifact's tensors cannot be mapped to the reference.
    """
    if onnx.format is not Format.ONNX:
        raise UsageError(f"{onnx.path}: the onnx2tf backend converts ONNX files, got {onnx.format}")
    if not onnx.path.is_file():
        raise ConversionError(f"{onnx.path}: no such ONNX file")
    missing = unsupported_ops(onnx.path)
    if missing:
        raise ConversionError(f"{onnx.path}: the onnx2tf backend cannot convert op(s) {', '.join(missing)}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    spec = onnx.spec
    with tempfile.TemporaryDirectory(prefix=".onnx2tf-", dir=out_dir) as tmp:
        work = Path(tmp).resolve()
        log.info("onnx2tf: converting %s", onnx.path)
        result = _run_onnx2tf(onnx.path, work, options)
        produced = work / "out"
        relayout = _measured_layouts(onnx, produced, result, run_with, options.samples)
        sm_inputs = relayout(bind_tensors(spec.inputs, result["saved_model"]["inputs"], channels_last=True))
        sm_outputs = relayout(
            bind_tensors(
                spec.outputs, result["saved_model"]["outputs"], channels_last=True, match_names=False
            )
        )
        files: dict[str, tuple[Path, dict, str]] = {}  # precision -> (file in work, description, backend)
        for precision in (p for p in options.precisions if p in ONNX2TF_PRECISIONS):
            src = produced / f"model_{ONNX2TF_PRECISIONS[precision]}.tflite"
            if not src.is_file():
                raise ConversionError(f"{onnx.path}: onnx2tf wrote no {precision} TFLite file ({src.name})")
            files[precision] = (src, result["tflite"][src.name], "onnx2tf")
        quantized = [p for p in options.precisions if p in QUANTIZED_PRECISIONS]
        q: dict = {"calibration": None}
        if quantized:
            log.info("quantizing %s to %s", onnx.path, quantized)
            q = _run_quantize(spec, produced, sm_inputs, quantized, work, options, onnx.path)
            for precision in quantized:
                src = work / tflite_name(precision)
                files[precision] = (src, q["tflite"][src.name], "tf.lite.TFLiteConverter")
        bound = {
            precision: (
                src,
                relayout(bind_tensors(spec.inputs, desc["inputs"], channels_last=True)),
                relayout(bind_tensors(spec.outputs, desc["outputs"], channels_last=True, match_names=False)),
                backend,
            )
            for precision, (src, desc, backend) in files.items()
        }
        extra = {"onnx2tf_version": result.get("onnx2tf_version")}
        artifacts: list[Artifact] = []
        sm_dest = out_dir / "saved_model"
        for src, *_ in bound.values():
            if src.parent == produced:
                src.rename(work / f"onnx2tf_{src.name}")
        if options.saved_model:
            with atomic_path(sm_dest) as dest_tmp:
                produced.rename(dest_tmp)
            artifacts.append(
                Artifact(
                    sm_dest,
                    Format.TF_SAVED_MODEL,
                    spec,
                    "fp32",
                    sm_inputs,
                    sm_outputs,
                    onnx.label,
                    "onnx2tf",
                    extra,
                )
            )
        for precision in options.precisions:
            src, ins, outs, backend = bound[precision]
            src = work / f"onnx2tf_{src.name}" if src.parent == produced else src
            dest = out_dir / tflite_name(precision)
            with atomic_path(dest) as dest_tmp:
                shutil.move(src, dest_tmp)
            calibrated = {"calibration": q["calibration"]} if precision in CALIBRATED_PRECISIONS else {}
            artifacts.append(
                Artifact(
                    dest, Format.TFLITE, spec, precision, ins, outs, sm_dest.name, backend, extra | calibrated
                )
            )
    return artifacts
