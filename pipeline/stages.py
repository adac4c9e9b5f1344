"""The stages and their order: train -> export -> convert -> validate.

Each stage reads its inputs from, and writes its outputs atomically into, a run directory, then
records itself in the manifest. Stages know nothing about the terminal: the CLI passes callbacks.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from onnxpipe.converters.onnx_to_saved_model import TFConvertOptions, tflite_name
from onnxpipe.converters.route import check_route, get_route
from onnxpipe.converters.torch_to_onnx import ExportOptions, export_onnx
from onnxpipe.models.artifact import Artifact, Format
from onnxpipe.models.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from onnxpipe.models.errors import (
    ConversionError,
    EnvironmentProblem,
    InputFileError,
    OnnxpipeError,
    UsageError,
)
from onnxpipe.pipeline.artifacts import detect_format, resolve_artifact
from onnxpipe.pipeline.rundir import RunDir
from onnxpipe.validation.locate import LocateReport
from onnxpipe.validation.parity import ParityReport, ValidateOptions, validate
from onnxpipe.validation.report import write_reports
from onnxpipe.validation.runtimes import open_runtime

__all__ = [
    "convert_onnx_stage",
    "convert_stage",
    "export_stage",
    "resolve_checkpoint",
    "run_dir_artifacts",
    "tfjs_stage",
    "train_stage",
    "validate_stage",
]

log = logging.getLogger(__name__)


def resolve_checkpoint(source: str | Path) -> Path:
    """A checkpoint path from a run directory or a checkpoint file."""
    source = Path(source)
    if source.is_dir():
        ckpt = RunDir(source).checkpoint
        if not ckpt.is_file():
            raise InputFileError(source, "run directory has no checkpoint.pt (run `onnxpipe train` first)")
        return ckpt
    if not source.exists():
        raise InputFileError(source, "no such file or folder")
    return source


def _up_to_date(
    run: RunDir, stage: str, inputs: Sequence[Path], options: object, force: bool, say: Callable
) -> bool:
    """Whether ``stage`` can be skipped: not forced, and inputs, options, versions, outputs as recorded."""
    if force:
        return False
    reason = run.stale_reason(stage, inputs, options)
    if reason is None:
        say(f"{stage}: up to date (inputs, options and tool versions as recorded); --force reruns it")
        return True
    if reason != "never run here":
        say(f"{stage}: runs again: {reason}")
    return False


def _recorded_outputs(run: RunDir, stage: str) -> list[Artifact]:
    """The artifacts ``stage`` wrote, as the manifest records them (the stage was up to date)."""
    outputs = run.manifest().stages[stage].outputs
    return [a for a in run.artifacts() if a.path.name in outputs]


def _quiet(_message: str) -> None:
    return None


def _tensorboard(run: RunDir, say: Callable[[str], None]):
    """A SummaryWriter into ``RUN/tensorboard/<time>/``, or ``None`` when tensorboard is not installed."""
    import importlib.util

    if importlib.util.find_spec("tensorboard") is None:
        log.info("tensorboard is not installed: no training scalars (pip install 'onnxpipe[tensorboard]')")
        return None
    from torch.utils.tensorboard import SummaryWriter

    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    folder = run.path / "tensorboard" / stamp
    say(f"tensorboard scalars -> {folder}")
    return SummaryWriter(log_dir=str(folder))


def _logged(writer, on_batch: Callable | None, on_epoch: Callable | None):
    """The training callbacks, also writing scalars: loss per step, losses and accuracy per epoch."""
    steps_per_epoch: dict[int, int] = {}

    def batch(epoch: int, step: int, loss: float) -> None:
        steps_per_epoch[epoch] = step
        global_step = sum(n for e, n in steps_per_epoch.items() if e < epoch) + step
        writer.add_scalar("train/loss_step", loss, global_step)
        if on_batch:
            on_batch(epoch, step, loss)

    def epoch_done(result) -> None:
        writer.add_scalar("train/loss", result.loss, result.epoch)
        writer.add_scalar("val/loss", result.val_loss, result.epoch)
        writer.add_scalar("val/accuracy", result.val_accuracy, result.epoch)
        writer.flush()
        if on_epoch:
            on_epoch(result)

    return batch, epoch_done


def train_stage(
    run: RunDir,
    config,
    on_batch: Callable[[int, int, float], None] | None = None,
    on_epoch: Callable | None = None,
    force: bool = False,
    on_progress: Callable[[str], None] = _quiet,
) -> Checkpoint:
    """Train and write ``checkpoint.pt`` (skipped when up to date).

    When ``tensorboard`` is installed, the losses and validation accuracy also go to
    ``tensorboard/<time>/`` in the run directory (``tensorboard --logdir RUN/tensorboard``).
    """
    from onnxpipe.models.distributed import launch
    from onnxpipe.models.training import train

    run.prepare()
    cfg = config.resolved()
    if run.checkpoint.is_file() and _up_to_date(
        run, "train", [], dataclasses.asdict(cfg), force, on_progress
    ):
        return load_checkpoint(run.checkpoint)
    t0 = time.perf_counter()
    writer = _tensorboard(run, on_progress)
    if writer is not None:
        on_batch, on_epoch = _logged(writer, on_batch, on_epoch)
    try:
        if cfg.nproc > 1:
            ckpt = launch(cfg, on_epoch=on_epoch)
        else:
            ckpt = train(cfg, on_batch=on_batch, on_epoch=on_epoch)
    finally:
        if writer is not None:
            writer.close()
    save_checkpoint(ckpt, run.checkpoint)
    run.record_stage(
        "train",
        inputs=[],
        outputs=[run.checkpoint],
        options=ckpt.train_config,
        seconds=time.perf_counter() - t0,
    )
    return ckpt


def export_stage_name(dest: Path) -> str:
    """The manifest's stage name for an export to ``dest``: ``export`` for ``model.onnx``.

    Other destinations (``model_opset14.onnx`` for onnx-tf) get their own record, so exports for two
    backends do not invalidate each other.
    """
    return "export" if dest.name == "model.onnx" else f"export {dest.name}"


def export_stage(
    checkpoint: Path,
    dest: Path,
    options: ExportOptions,
    force: bool = False,
    on_progress: Callable[[str], None] = _quiet,
) -> Artifact:
    """Export a checkpoint to ``dest`` (``model.onnx``; skipped when up to date)."""
    run = RunDir(dest.parent).prepare()
    stage = export_stage_name(dest)
    recorded = run.artifact(dest)
    if recorded is not None and _up_to_date(
        run, stage, [checkpoint], dataclasses.asdict(options), force, on_progress
    ):
        return recorded
    t0 = time.perf_counter()
    ckpt = load_checkpoint(checkpoint)
    artifact = export_onnx(ckpt, dest, options, run_with=open_runtime)
    artifact = dataclasses.replace(artifact, parent=checkpoint.name)
    run.record_stage(
        stage,
        inputs=[checkpoint],
        outputs=[artifact],
        options=dataclasses.asdict(options),
        seconds=time.perf_counter() - t0,
    )
    return artifact


def source_onnx(
    source: Path,
    run: RunDir,
    backend: str,
    export_options: ExportOptions = ExportOptions(),
    force: bool = False,
    on_progress: Callable[[str], None] = _quiet,
) -> tuple[Artifact, bool]:
    """The artifact route ``backend`` converts: ``source`` itself, or its export into ``run``.

    A route that converts the PyTorch module itself (``Route.converts`` is ``Format.TORCH``) gets
    the checkpoint's artifact, and an ONNX source is refused for it (``ConversionError``).

    Each route names the export it wants (:meth:`Route.export_options`) and its file name: onnx2tf
    takes ``model.onnx`` (the dynamo exporter, opset 18 by default), onnx-tf ``model_opset14.onnx``.

    Returns:
        The ONNX artifact, and whether it was exported from a checkpoint.
    """
    route = get_route(backend)
    if not source.exists():
        raise InputFileError(source, "no such file or folder")
    fmt = detect_format(source)
    if route.converts is Format.TORCH:  # the route converts the module itself: no export
        if fmt is not Format.TORCH:
            raise ConversionError(
                f"the {backend} route converts a PyTorch checkpoint; {source.name} is {fmt}"
            )
        return resolve_artifact(source), False
    if fmt is Format.ONNX:
        return resolve_artifact(source), False
    if fmt is not Format.TORCH:
        raise InputFileError(source, "convert takes a checkpoint (.pt) or an ONNX file (.onnx)")
    export_options = route.export_options(export_options)
    dest = run.path / route.onnx_name(export_options)
    on_progress(f"export {source} -> {dest}")
    return export_stage(source, dest, export_options, force, on_progress), True


def _usable_route(backend: str, options: TFConvertOptions):
    route = check_route(backend, options)
    reason = route.unavailable_reason()
    if reason:
        raise EnvironmentProblem(f"the {backend} route is unavailable: {reason}")
    return route


def convert_onnx_stage(
    onnx: Artifact,
    run: RunDir,
    options: TFConvertOptions,
    backend: str = "onnx2tf",
    force: bool = False,
    on_progress: Callable[[str], None] = _quiet,
) -> list[Artifact]:
    """Convert an ONNX artifact with route ``backend`` into ``run`` (skipped when up to date).

    Raises:
        UnknownNameError: No such route.
        UsageError: The route does not make what ``options`` ask for.
        EnvironmentProblem: The route cannot run here (what it needs is missing).
    """
    route = _usable_route(backend, options)
    run.prepare()
    convert_options = {**dataclasses.asdict(options), "backend": backend}
    del convert_options["max_memory"]  # a limit of this machine: it does not shape the artifacts
    versions = route.versions()  # environments outside tool_versions() that shape the artifacts
    if versions is not None:
        convert_options["route_versions"] = versions
    sources = [onnx.path] + ([Path(options.calibration.path)] if options.calibration else [])
    if _up_to_date(run, "convert", sources, convert_options, force, on_progress):
        return _recorded_outputs(run, "convert")
    targets = ", ".join(["saved_model/"] * options.saved_model + [tflite_name(p) for p in options.precisions])
    on_progress(f"{backend} {onnx.path.name} -> {targets}")
    t0 = time.perf_counter()
    artifacts = route().convert(onnx, run.path, options, open_runtime)
    seconds = time.perf_counter() - t0
    run.record_stage("convert", inputs=sources, outputs=artifacts, options=convert_options, seconds=seconds)
    return artifacts


def tfjs_stage(
    saved_model: Artifact,
    run: RunDir,
    precisions: Sequence[str],
    force: bool = False,
    on_progress: Callable[[str], None] = _quiet,
) -> list[Artifact]:
    """SavedModel -> TensorFlow.js graph models in ``run`` (stage ``tfjs``; skipped when up to date).

    Raises:
        ConversionError: The tfjs environment is missing, or the converter failed.
    """
    from onnxpipe.converters.saved_model_to_tfjs import convert_to_tfjs, tfjs_name, tfjs_versions

    options = {"precisions": list(precisions), "versions": tfjs_versions()}
    if _up_to_date(run, "tfjs", [saved_model.path], options, force, on_progress):
        return _recorded_outputs(run, "tfjs")
    on_progress(f"tensorflowjs {saved_model.label} -> {', '.join(tfjs_name(p) + '/' for p in precisions)}")
    t0 = time.perf_counter()
    artifacts = convert_to_tfjs(saved_model, run.path, precisions)
    run.record_stage(
        "tfjs",
        inputs=[saved_model.path],
        outputs=artifacts,
        options=options,
        seconds=time.perf_counter() - t0,
    )
    return artifacts


def convert_stage(
    source: Path,
    out_dir: Path,
    options: TFConvertOptions,
    export_options: ExportOptions = ExportOptions(),
    on_progress: Callable[[str], None] | None = None,
    force: bool = False,
    backend: str = "onnx2tf",
) -> list[Artifact]:
    """Convert a checkpoint (through ONNX) or an ONNX file to SavedModel and TFLite in ``out_dir``.

    Each stage on the way is skipped when its inputs, options and tool versions are as recorded.

    Returns:
        The exported ONNX artifact (when ``source`` is a checkpoint), then the converted ones.
    """
    say = on_progress or _quiet
    _usable_route(backend, options)  # refused before anything is exported
    run = RunDir(out_dir).prepare()
    onnx, exported = source_onnx(source, run, backend, export_options, force, say)
    artifacts = convert_onnx_stage(onnx, run, options, backend, force, say)
    return [onnx, *artifacts] if exported else artifacts


def _onnx_ancestor(artifact: Artifact, by_label: dict[str, Artifact]) -> Artifact | None:
    seen = set()
    current = by_label.get(artifact.parent or "")
    while current is not None and current.label not in seen:
        if current.format is Format.ONNX:
            return current
        seen.add(current.label)
        current = by_label.get(current.parent or "")
    return None


def locate_stage(
    reference: Artifact,
    candidates: Sequence[Artifact],
    report: ParityReport,
    options: ValidateOptions,
    threshold: float,
    on_progress: Callable[[str], None] | None = None,
) -> list[LocateReport]:
    """Layer-wise search for the TFLite candidates that failed (all of them when none failed)."""
    from onnxpipe.validation.inputs import build_inputs
    from onnxpipe.validation.locate import locate

    say = on_progress or (lambda _m: None)
    tflites = [c for c in candidates if c.format is Format.TFLITE]
    failed = {r.artifact for r in report.results if r.failed}
    targets = [c for c in tflites if c.label in failed] or tflites
    if not targets:
        raise UsageError("--locate compares ONNX with TFLite, and there is no TFLite candidate")
    by_label = {a.label: a for a in (reference, *candidates)}
    inputs = build_inputs(reference.spec, options.inputs).slice(0, 8)
    found = []
    for target in targets:
        onnx_side = _onnx_ancestor(target, by_label) or (
            reference if reference.format is Format.ONNX else None
        )
        if onnx_side is None:
            raise UsageError(f"{target.path}: --locate needs an ONNX file in its lineage or as the reference")
        say(f"locate: {onnx_side.label} (onnxruntime) vs {target.label} (ai-edge-litert), layer by layer")
        found.append(locate(onnx_side, target, inputs, threshold))
    return found


def validate_stage(
    reference: Artifact,
    candidates: Sequence[Artifact],
    out_dir: Path,
    options: ValidateOptions = ValidateOptions(),
    on_progress: Callable[[str], None] | None = None,
    locate_threshold: float | None = None,
    force: bool = False,
) -> ParityReport:
    """Validate and write ``parity.json``, ``parity.md`` and ``report.html`` into ``out_dir``.

    With ``locate_threshold``, also run the layer-wise search and add it to the reports. Skipped
    (the recorded report is returned) when inputs, options and tool versions are as recorded.

    Returns:
        The report, as written to ``parity.json``.
    """
    say = on_progress or _quiet
    run = RunDir(out_dir).prepare()
    inputs = [reference.path, *(c.path for c in candidates)]
    if options.inputs.user:  # the user's samples and labels are inputs of the stage: changed, it reruns
        inputs.append(Path(options.inputs.user.path))
    if options.inputs.labels:
        inputs.append(Path(options.inputs.labels))
    recorded_options = {**dataclasses.asdict(options), "locate_threshold": locate_threshold}
    if (run.path / "parity.json").is_file() and _up_to_date(
        run, "validate", inputs, recorded_options, force, say
    ):
        return ParityReport.read(run.path / "parity.json")
    t0 = time.perf_counter()
    report = validate(reference, candidates, options, on_progress=on_progress)
    if locate_threshold is not None:
        report.locate = locate_stage(reference, candidates, report, options, locate_threshold, on_progress)
    earlier = {k: v.seconds for k, v in run.manifest().stages.items() if k != "validate" and v.seconds}
    report.stage_seconds = {**earlier, "validate": round(time.perf_counter() - t0, 3)}
    outputs = write_reports(report, run.path)
    run.record_stage(
        "validate", inputs=inputs, outputs=outputs, options=recorded_options, seconds=time.perf_counter() - t0
    )
    return report


def _as_found(artifact: Artifact, stage: str, reference: Artifact) -> Artifact:
    """A run's artifact whose file changed since ``stage`` wrote it, bound by what the file declares.

    The manifest's record (names, layouts) describes the file onnxpipe wrote, not this one; a file
    that does not fit the reference at all becomes an ``unloadable`` artifact: an error row.
    """
    note = f"changed since {stage} wrote it (the manifest records another sha256): validated as found"
    extra = {"changed": note}
    try:
        found = resolve_artifact(artifact.path, reference.spec, use_record=False)
    except OnnxpipeError as e:
        return dataclasses.replace(artifact, extra={**extra, "unloadable": str(e)})
    return dataclasses.replace(found, precision=artifact.precision, parent=artifact.parent, extra=extra)


def run_dir_artifacts(run: RunDir) -> tuple[Artifact, list[Artifact]]:
    """The reference (checkpoint, else ONNX) and the other recorded artifacts of a run directory."""
    if not run.path.is_dir():
        raise InputFileError(run.path, "no such run directory")
    recorded = run.artifacts()
    if run.checkpoint.is_file():
        reference = resolve_artifact(run.checkpoint)
    elif run.onnx.is_file():
        reference = resolve_artifact(run.onnx)
    elif (source := run.converted_from()) is not None:  # an ONNX file converted where it lies
        reference = resolve_artifact(source)
    else:
        raise InputFileError(run.path, "has neither checkpoint.pt nor model.onnx to validate against")
    candidates = [a for a in recorded if a.path != reference.path and a.format is not Format.TORCH]
    modified = run.modified_outputs()
    for i, a in enumerate(candidates):
        stage = modified.get(a.path.relative_to(run.path).as_posix())
        if stage:
            candidates[i] = _as_found(a, stage, reference)
    if not candidates:
        raise UsageError(
            f"{run.path}: no artifacts to validate (run `onnxpipe export` or `onnxpipe convert` first)"
        )
    return reference, candidates
