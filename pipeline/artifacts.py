"""Turn a path given on the command line into an :class:`~models.artifact.Artifact`.

A file that onnxpipe wrote is described by its run directory's manifest. Any other file is
inspected: an ONNX graph declares its interface; a SavedModel or TFLite file is bound to the
reference's interface from the shapes it declares (and the binding says it was inferred).
"""

from __future__ import annotations

from pathlib import Path

from onnxpipe.models.artifact import Artifact, Format
from onnxpipe.models.errors import ConversionError, InputFileError, UsageError
from onnxpipe.models.interface import batch_axes, unnamed_dim
from onnxpipe.models.spec import ModelSpec, TensorSpec
from onnxpipe.pipeline.rundir import RunDir

__all__ = ["detect_format", "is_hf_folder", "resolve_artifact", "spec_from_onnx"]


def is_hf_folder(path: Path) -> bool:
    """Whether ``path`` is a Hugging Face ``save_pretrained`` folder (``config.json``, not a run directory)."""
    path = Path(path)
    return path.is_dir() and (path / "config.json").is_file() and not (path / "manifest.json").is_file()


def detect_format(path: Path) -> Format:
    """The format of ``path`` from its name (a folder with ``saved_model.pb`` is a SavedModel)."""
    if path.is_dir():
        if (path / "saved_model.pb").is_file():
            return Format.TF_SAVED_MODEL
        if (path / "model.json").is_file():
            return Format.TFJS
        raise InputFileError(
            path,
            "is a folder but not a SavedModel (no saved_model.pb), a TensorFlow.js model (no model.json) "
            "nor a run directory",
        )
    suffixes = {".pt": Format.TORCH, ".pth": Format.TORCH, ".onnx": Format.ONNX, ".tflite": Format.TFLITE}
    if path.suffix.lower() not in suffixes:
        raise InputFileError(
            path,
            f"unknown artifact type {path.suffix!r}; expected .pt, .pth, .onnx, .tflite, a SavedModel folder or "
            "a TensorFlow.js folder (model.json)",
        )
    return suffixes[path.suffix.lower()]


def _load_checked_onnx(path: Path):
    """Load an ONNX graph (without its external data) and check it before anything runs it.

    Raises:
        InputFileError: Unreadable bytes, an invalid graph, or external data that is missing or
            whose path leaves the model's folder (refused: a model must not read other files).
    """
    import onnx

    if path.stat().st_size == 0:
        raise InputFileError(path, "is empty")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as e:  # onnx raises DecodeError, ValueError, OSError...
        raise InputFileError(path, f"not a readable ONNX model ({type(e).__name__}: {e})") from e
    folder = path.parent.resolve()
    for tensor in model.graph.initializer:
        if tensor.data_location != onnx.TensorProto.EXTERNAL:
            continue
        location = next((e.value for e in tensor.external_data if e.key == "location"), "")
        target = (folder / location).resolve()
        if not target.is_relative_to(folder) or Path(location).is_absolute():
            raise InputFileError(
                path,
                f"external data {location!r} of tensor {tensor.name!r} is outside the model's folder; refused",
            )
        if not target.is_file():
            raise InputFileError(path, f"external data {location!r} of tensor {tensor.name!r} is missing")
    try:
        onnx.checker.check_model(str(path))  # by path: external data is found beside the file, not in the cwd
    except Exception as e:  # onnx.checker.ValidationError and friends
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise InputFileError(path, f"invalid ONNX graph: {first}") from e
    if not model.graph.input or not model.graph.output:
        raise InputFileError(path, "the ONNX graph declares no inputs or no outputs")
    return model


def _dims(value) -> tuple[int | str, ...]:
    """A graph tensor's declared dims: sizes, symbols, and a name for each unknown one.

    A size written as ``-1`` or ``0`` (older exporters' "any") is free too, named like an unknown one.
    """
    return tuple(
        d.dim_value
        if d.HasField("dim_value") and d.dim_value > 0
        else (d.dim_param or unnamed_dim(value.name, i))
        for i, d in enumerate(value.type.tensor_type.shape.dim)
    )


def spec_from_onnx(path: Path) -> ModelSpec:
    """A :class:`ModelSpec` read from an ONNX graph's declared inputs and outputs.

    Integer inputs that carry a shape or an index get that kind, 0-d inputs and branch conditions
    ``"value"`` (:func:`models.onnx_roles.input_roles`); each tensor's sample axis is found by
    :func:`models.interface.batch_axes`.

    Raises:
        InputFileError: The file is not a loadable, valid ONNX model (see :func:`_load_checked_onnx`).
    """
    from onnx.helper import tensor_dtype_to_np_dtype

    from onnxpipe.models.onnx_roles import input_roles

    model = _load_checked_onnx(Path(path))
    initializers = {i.name for i in model.graph.initializer}
    roles = input_roles(model)  # inputs that are shapes, indices or settings, not data

    def tensors(values: list) -> tuple[TensorSpec, ...]:
        out = []
        for v in values:
            if v.name in initializers:
                continue
            role = roles.get(v.name)
            out.append(
                TensorSpec(
                    v.name,
                    _dims(v),
                    str(tensor_dtype_to_np_dtype(v.type.tensor_type.elem_type)),
                    kind=role and role.kind,
                    value_range=None if role is None or role.high is None else (0, role.high),
                    why=role and role.why,
                )
            )
        return tuple(out)

    if not model.graph.input or not model.graph.output:
        raise InputFileError(path, "the ONNX graph declares no inputs or no outputs")
    inputs, outputs = batch_axes(tensors(model.graph.input), tensors(model.graph.output))
    return ModelSpec(name=path.stem, inputs=inputs, outputs=outputs, dataset=None)


def _describe(path: Path, fmt: Format) -> dict:
    from onnxpipe.converters.tf_describe import describe_saved_model, describe_tfjs, describe_tflite

    describe = {Format.TF_SAVED_MODEL: describe_saved_model, Format.TFJS: describe_tfjs}.get(
        fmt, describe_tflite
    )
    try:
        return describe(str(path))
    except Exception as e:  # TF and LiteRT raise ValueError, RuntimeError, OSError on bad files
        raise InputFileError(path, f"cannot be loaded as {fmt} ({type(e).__name__}: {e})") from e


def resolve_artifact(
    path: str | Path, reference: ModelSpec | None = None, *, use_record: bool = True
) -> Artifact:
    """The artifact at ``path``, described by its manifest record where one exists.

    Args:
        path: A checkpoint, ONNX file, SavedModel folder, TFLite file or TensorFlow.js folder.
        reference: The reference interface, needed to bind a SavedModel or TFLite file that has no
            manifest record.
        use_record: ``False``: bind the file by what it declares even where the manifest records it
            (a recorded file whose content changed since).
    """
    from onnxpipe.models.checkpoint import load_checkpoint

    path = Path(path)
    if not path.exists():
        raise InputFileError(path, "no such file or folder")
    fmt = detect_format(path)
    if fmt is Format.TORCH:
        return Artifact(path, Format.TORCH, load_checkpoint(path).spec)
    recorded = None
    if use_record and (path.parent / "manifest.json").is_file():
        recorded = RunDir(path.parent).artifact(path)
    if fmt is Format.ONNX:
        spec = spec_from_onnx(path)  # checks the file even when the manifest describes it
        if recorded is not None:
            return recorded
        same_names = reference is not None and [t.name for t in reference.inputs] == [
            t.name for t in spec.inputs
        ]
        if same_names and not any(r.mismatch(c) for r, c in zip(reference.inputs, spec.inputs, strict=True)):
            spec = reference  # the same interface: keep the reference's dataset, range and tolerances
        return Artifact(path, Format.ONNX, spec)
    if recorded is not None:
        _describe(path, fmt)  # a recorded file must still load
        return recorded
    if reference is None:
        raise UsageError(
            f"{path}: a {fmt} artifact needs a reference (a checkpoint or ONNX file) to be bound to"
        )
    from onnxpipe.converters.layout import bind_tensors

    desc = _describe(path, fmt)
    try:
        inputs = bind_tensors(reference.inputs, desc["inputs"], channels_last=True)
        outputs = bind_tensors(reference.outputs, desc["outputs"], channels_last=True, match_names=False)
    except ConversionError as e:
        raise InputFileError(path, f"does not match the reference's interface: {e}") from e
    stem = path.stem.lower()
    known = ("fp16", "float16", "int16x8", "dynamic_int8", "uint8", "int8")
    precision = desc.get("precision") or next((p for p in known if p in stem), "fp32").replace(
        "float16", "fp16"
    )
    return Artifact(
        path,
        fmt,
        reference,
        precision=precision,
        inputs=inputs,
        outputs=outputs,
        extra={
            "inferred": "layout from declared shapes, precision from "
            + ("its weights" if desc.get("precision") else "the file name")
            + " (no manifest record)"
        },
    )
