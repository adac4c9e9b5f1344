"""``onnxpipe convert``."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import click

from onnxpipe.converters.onnx_to_saved_model import PRECISIONS
from onnxpipe.converters.route import DEFAULT_BACKEND, PREFER, ROUTES
from onnxpipe.pipeline.commands.options import (
    RegistryChoice,
    csv_choice,
    data_image_size,
    data_options,
    import_user_model,
    is_hf_source,
    named_input_shapes,
    user_data,
    user_model_options,
    with_tokenizer,
)

TARGETS = ("saved_model", "tflite", "tfjs")
#: TensorFlow.js weight precisions (``uint8`` is tfjs's only; fp32 and fp16 are shared with TFLite).
TFJS_ONLY_PRECISIONS = ("uint8",)
ALL_PRECISIONS = (*PRECISIONS, *TFJS_ONLY_PRECISIONS)


def parse_targets(to: str) -> tuple[str, ...]:
    """The ``--to`` list, checked: known names, at least one."""
    targets = csv_choice(to, TARGETS, "target")
    if not targets:
        raise click.UsageError(f"--to: give at least one of {', '.join(TARGETS)}")
    return targets


def split_precisions(
    to: tuple[str, ...], precisions: tuple[str, ...]
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The TFLite and the tfjs precisions of ``precisions`` for targets ``to``.

    Raises:
        click.UsageError: A precision no target asked for makes (``uint8`` without tfjs, ``int8``
            with tfjs alone).
    """
    from onnxpipe.converters.saved_model_to_tfjs import TFJS_PRECISIONS

    tflite = tuple(p for p in precisions if p in PRECISIONS) if "tflite" in to else ()
    tfjs = tuple(p for p in precisions if p in TFJS_PRECISIONS) if "tfjs" in to else ()
    unmade = [p for p in precisions if p not in tflite and p not in tfjs]
    if unmade and ("tflite" in to or "tfjs" in to):
        makers = {"tflite": PRECISIONS, "tfjs": tuple(TFJS_PRECISIONS)}
        made_by = [t for t, ps in makers.items() if unmade[0] in ps]
        raise click.UsageError(
            f"--precision {unmade[0]}: no target in --to {','.join(to)} makes it "
            f"(add {' or '.join(made_by)} to --to)"
        )
    return tflite, tfjs


def run_conversion(
    source: Path,
    out: Path,
    to: tuple[str, ...],
    precisions: tuple[str, ...],
    export_options,
    force: bool = False,
    backend: str = DEFAULT_BACKEND,
    compare: bool = False,
    prefer: str = "first",
    max_memory_gb: float | None = None,
    budget_s: float | None = None,
    inputs=None,
    calibration=None,
    shapes=None,
) -> list:
    """Convert and print one line per artifact (shared with ``onnxpipe run``).

    With ``compare``, convert with every backend, validate each result and print the side-by-side
    table. ``backend="auto"`` plans: routes in order until every artifact passed (``prefer="first"``)
    or all of them (``"fastest"``), then keeps the validated best per artifact. ``inputs`` (the
    user's samples, a :class:`UserData`) are validated on first, and calibrate int8/int16x8 unless
    ``calibration`` is given. Both are checked against the model before anything converts.

    Raises:
        ConversionError: ``auto``/``compare`` and some artifact passed parity with no backend.
        UsageError: The inputs do not fit the model, or a precision needs calibration and there is
            nothing to calibrate on.
    """
    from onnxpipe.converters.onnx_to_saved_model import TFConvertOptions
    from onnxpipe.converters.saved_model_to_tflite import CALIBRATED_PRECISIONS
    from onnxpipe.models.artifact import Format
    from onnxpipe.pipeline.artifacts import resolve_artifact
    from onnxpipe.pipeline.rundir import RunDir
    from onnxpipe.pipeline.sizing import size_interface
    from onnxpipe.pipeline.stages import convert_stage
    from onnxpipe.pipeline.ui import say
    from onnxpipe.validation.inputs import InputConfig
    from onnxpipe.validation.parity import ValidateOptions

    precisions, tfjs_precisions = split_precisions(to, precisions)
    calibrated = any(p in CALIBRATED_PRECISIONS for p in precisions)
    artifact = resolve_artifact(source)  # read once: what the data is checked against
    if artifact.format is Format.ONNX:  # free sizes resolved: the file converted is a sized copy
        sample_options = TFConvertOptions(
            precisions=precisions, calibration=(calibration or inputs) if calibrated else None
        )
        # the data checked against the file's own interface before a sized copy is written
        _check_data(artifact.spec, source, InputConfig(user=inputs), sample_options)
        artifact = size_interface(artifact, RunDir(out), shapes, inputs, say)
        source = artifact.path
    spec = artifact.spec
    takes_shapes = any(not t.invented for t in spec.inputs)  # no value can be made up for an input
    options = TFConvertOptions(
        saved_model="saved_model" in to or bool(tfjs_precisions),  # tfjs is converted from the SavedModel
        precisions=precisions,
        calibration=(calibration or inputs) if calibrated else None,
        samples=inputs if inputs is not None and takes_shapes else None,
    )
    validate_options = ValidateOptions(inputs=InputConfig(user=inputs))
    _check_data(spec, source, validate_options.inputs, options)
    if max_memory_gb is not None:
        options = dataclasses.replace(options, max_memory=int(max_memory_gb * 2**30))
    if compare or backend == "auto":
        artifacts = _compare(
            source,
            out,
            options,
            export_options,
            force,
            keep=backend == "auto" and not compare,  # --compare-backends keeps nothing, whatever --backend
            prefer=prefer,
            budget_s=budget_s,
            validate_options=validate_options,
        )
        if compare and backend != "auto":
            return artifacts
    else:
        artifacts = convert_stage(
            source, out, options, export_options, on_progress=say, force=force, backend=backend
        )
        _echo_artifacts(artifacts)
    if tfjs_precisions:
        artifacts += _to_tfjs(artifacts, out, tfjs_precisions, force)
    return artifacts


def _to_tfjs(artifacts: list, out: Path, precisions: tuple[str, ...], force: bool) -> list:
    """The tfjs stage on the SavedModel just made (or kept by the planner)."""
    from onnxpipe.models.artifact import Format
    from onnxpipe.models.errors import ConversionError
    from onnxpipe.pipeline.rundir import RunDir
    from onnxpipe.pipeline.stages import tfjs_stage
    from onnxpipe.pipeline.ui import say

    saved_models = [a for a in artifacts if a.format is Format.TF_SAVED_MODEL]
    if not saved_models:
        raise ConversionError(f"{out}: no SavedModel was made, so there is nothing to convert to tfjs")
    made = tfjs_stage(saved_models[0], RunDir(out), precisions, force=force, on_progress=say)
    _echo_artifacts(made)
    return made


def _check_data(spec, source: Path, inputs, options) -> None:
    """Refuse, before anything is exported, data that does not fit the model (``spec``) or is missing."""
    from onnxpipe.converters.onnx_to_saved_model import calibration_arrays
    from onnxpipe.models.artifact import identity_bindings
    from onnxpipe.validation.inputs import check_inputs

    check_inputs(spec, inputs)
    calibration_arrays(spec, identity_bindings(spec.inputs), options.precisions, source, options.calibration)


def _echo_artifacts(artifacts: list) -> None:
    for a in artifacts:
        layout = ", ".join(f"{b.name}: {b.layout or 'as reference'}" for b in a.inputs)
        click.echo(f"{a.format}: {a.path}  ({a.precision}; {a.backend}; inputs {layout})")


def _compare(
    source: Path,
    out: Path,
    options,
    export_options,
    force: bool,
    keep: bool,
    prefer: str = "first",
    budget_s: float | None = None,
    validate_options=None,
) -> list:
    from onnxpipe.models.errors import ConversionError
    from onnxpipe.pipeline.backends import compare_backends, keep_best, render_comparison_markdown
    from onnxpipe.pipeline.ui import say

    comparison = compare_backends(
        source,
        out,
        options,
        export_options,
        force=force,
        on_progress=say,
        until_passed=keep and prefer == "first",
        budget_s=budget_s,
        validate_options=validate_options,
    )
    kept, error = [], None
    if keep:
        try:
            kept = keep_best(comparison, out, on_progress=say, prefer=prefer)
        except ConversionError as e:
            error = e
    click.echo(render_comparison_markdown(comparison), nl=False)
    click.echo(f"table: {out / 'backends.md'}, {out / 'backends.json'}")
    _echo_artifacts(kept)
    if error is not None:
        raise error
    unshippable = [
        n
        for n in comparison.names()
        if not any(r.status == "pass" for r in comparison.rows if r.artifact == n)
    ]
    if unshippable:
        raise ConversionError(
            f"no backend made {', '.join(unshippable)} pass parity (see {out / 'backends.md'})"
        )
    return kept


@click.command("convert")
@click.argument("source", type=click.Path(path_type=Path))
@click.option(
    "--to",
    "to",
    default="saved_model,tflite",
    show_default=True,
    help="Comma list of: saved_model, tflite, tfjs (TensorFlow.js, from the SavedModel: make setup-tfjs).",
)
@click.option(
    "--precision",
    default="fp32,fp16",
    show_default=True,
    help=f"Precisions: TFLite {', '.join(PRECISIONS)}; tfjs weights fp32, fp16, uint8.",
)
@click.option(
    "--out", type=click.Path(path_type=Path), default=None, help="Output folder [default: SOURCE's folder]."
)
@click.option("--opset", type=int, default=None, help="Opset when SOURCE is a checkpoint [default: 18].")
@click.option(
    "--backend",
    # The routes are read when the command runs: a route registered by a plug-in is a choice too.
    type=RegistryChoice(ROUTES, extra=("auto",)),
    default=DEFAULT_BACKEND,
    show_default=True,
    help="auto: the routes in order until every artifact passed validation, then the validated best "
    "per artifact; or one route (`onnxpipe routes` lists them, with what each needs), all or nothing.",
)
@click.option(
    "--prefer",
    type=click.Choice(PREFER),
    default="first",
    show_default=True,
    help="With --backend auto: keep the first route's validated artifact and stop once every artifact "
    "passed, or try every route and keep the fastest.",
)
@click.option(
    "--compare-backends",
    is_flag=True,
    help="Convert with every route into OUT/backends/, validate each, write backends.md/json; keep none.",
)
@click.option(
    "--max-memory",
    "max_memory_gb",
    type=click.FloatRange(min=0.25),
    default=None,
    help="Memory cap of each conversion worker, in GB [default: 3/4 of this machine's memory]; "
    "a worker that runs out of it fails alone (auto goes on to the next route).",
)
@click.option(
    "--budget",
    "budget_s",
    type=click.FloatRange(min=0),
    default=None,
    help="With auto or --compare-backends: start no route after this many seconds (the one running "
    "finishes) [default: no limit].",
)
@data_options
@click.option(
    "--calibration",
    type=click.Path(path_type=Path),
    default=None,
    help="Samples int8/int16x8 are calibrated on, in the forms --inputs takes [--inputs, else a zoo "
    "model's training split].",
)
@click.option("--force", is_flag=True, help="Convert even when the artifacts are up to date.")
@user_model_options
def command(
    source: Path,
    to: str,
    precision: str,
    out: Path | None,
    opset: int | None,
    backend: str,
    prefer: str,
    compare_backends: bool,
    max_memory_gb: float | None,
    budget_s: float | None,
    user_inputs: Path | None,
    mean: str | None,
    std: str | None,
    calibration: Path | None,
    force: bool,
    **user: object,
) -> None:
    """Convert SOURCE (a checkpoint, or an ONNX file) to a TF SavedModel and TFLite files.

    By default (--backend auto) the routes are tried in order, each artifact validated against
    the reference, until every artifact asked for has passed; the validated ones are kept.
    A checkpoint is exported to ONNX on the way, as each route wants it: model.onnx (dynamo
    exporter) for onnx2tf, model_opset14.onnx (TorchScript exporter) for onnx-tf. Each artifact
    records its layout (onnx2tf turns NCHW inputs into NHWC; onnx-tf keeps NCHW) and the route
    that made it.

    Examples:
      onnxpipe convert runs/cnn/checkpoint.pt --to saved_model,tflite --precision fp32,fp16

      onnxpipe convert runs/cnn/checkpoint.pt --to tfjs --precision fp32,fp16,uint8

      onnxpipe convert runs/cnn/checkpoint.pt --backend onnx-tf

      onnxpipe convert runs/cnn/checkpoint.pt --compare-backends

      onnxpipe convert runs/cnn/checkpoint.pt --precision fp32,fp16,int8 --budget 600

      onnxpipe convert runs/cnn/checkpoint.pt --prefer fastest

      onnxpipe convert weights.pt --model-class net.py:Net --input-shape 1,3,32,32 --out runs/net

      onnxpipe convert path/to/bert_dir --seq-len 32 --out runs/bert

      onnxpipe convert model.onnx --inputs samples.npz

      onnxpipe convert det.onnx --input-shape x=1,3,640,640

      onnxpipe convert weights.pt --model-class net.py:Net --input-shape 1,3,32,32 --precision fp32,int8 --calibration images/ --mean 0.5 --std 0.25

    With --model-class, SOURCE is your model's state dict (.pt or .safetensors), imported as
    OUT/checkpoint.pt first (see `onnxpipe export --help`). A Hugging Face save_pretrained folder
    (config.json + weights) is imported the same way, offline, its inputs and output named as
    transformers names them (OUT defaults to runs/FOLDER_NAME).
    """
    from onnxpipe.converters.torch_to_onnx import ExportOptions
    from onnxpipe.pipeline.rundir import RunDir
    from onnxpipe.pipeline.stages import resolve_checkpoint

    targets = parse_targets(to)
    shapes = named_input_shapes(source, user)
    precisions = csv_choice(precision, ALL_PRECISIONS, "precision")
    split_precisions(targets, precisions)  # refused before anything runs
    hf = is_hf_source(source)
    image_size = None if hf else data_image_size(user, user_inputs, calibration)
    if user["model_class"] is None:
        import_user_model(source, None, dict(user))  # refuses stray user-model options
    elif source.is_dir() and not hf:
        raise click.UsageError("--model-class: SOURCE must be your weights file (.pt or .safetensors)")
    if hf:
        out = out or Path("runs") / source.resolve().name
    elif source.is_dir():
        source = resolve_checkpoint(source)
    out = out or source.parent
    RunDir(out).claim(reading=[source], force=force)  # never over files onnxpipe did not write
    with RunDir(out).lock(mark=True):
        if user["model_class"] is not None or hf:
            source = import_user_model(source, out, dict(user))
        run_conversion(
            source,
            out,
            targets,
            precisions,
            ExportOptions(opset=opset),
            force,
            backend,
            compare_backends,
            prefer,
            max_memory_gb,
            budget_s,
            with_tokenizer(user_data(user_inputs, mean, std, calibration, image_size=image_size), out),
            with_tokenizer(user_data(calibration, mean, std, image_size=image_size), out),
            shapes=shapes,
        )
