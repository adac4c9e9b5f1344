"""Turn a path given on the command line into an :class:`~models.artifact.Artifact`.

A file that onnxpipe wrote is described by its run directory's manifest. Any other file is
inspected: an ONNX graph declares its interface; a SavedModel or TFLite file is bound to the
reference's interface from the shapes it declares (and the binding says it was inferred).
"""

from __future__ import annotations

from pathlib import Path

from models.artifact import Artifact, Format
from models.errors import InputFileError, UsageError
from models.spec import ModelSpec, TensorSpec
from pipeline.rundir import RunDir

__all__ = ["detect_format", "resolve_artifact", "spec_from_onnx"]


def detect_format(path: Path) -> Format:
    """The format of ``path`` from its name (a folder with ``saved_model.pb`` is a SavedModel)."""
    if path.is_dir():
        if (path / "saved_model.pb").is_file():
            return Format.TF_SAVED_MODEL
        raise InputFileError(path, "is a folder but not a SavedModel (no saved_model.pb) nor a run directory")
    suffixes = {".pt": Format.TORCH, ".pth": Format.TORCH, ".onnx": Format.ONNX, ".tflite": Format.TFLITE}
    if path.suffix.lower() not in suffixes:
        raise InputFileError(
            path,
            f"unknown artifact type {path.suffix!r}; expected .pt, .pth, .onnx, .tflite or a SavedModel folder",
        )
    return suffixes[path.suffix.lower()]


def spec_from_onnx(path: Path) -> ModelSpec:
    """A :class:`ModelSpec` read from an ONNX graph's declared inputs and outputs.

    Raises:
        InputFileError: The file is not a loadable ONNX model.
    """
    import onnx
    from onnx.helper import tensor_dtype_to_np_dtype

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as e:  # onnx raises DecodeError, ValueError, OSError...
        raise InputFileError(path, f"not a readable ONNX model ({type(e).__name__}: {e})") from e
    initializers = {i.name for i in model.graph.initializer}

    def tensors(values: list) -> tuple[TensorSpec, ...]:
        out = []
        for v in values:
            if v.name in initializers:
                continue
            tt = v.type.tensor_type
            shape = tuple(
                d.dim_value if d.HasField("dim_value") else (d.dim_param or f"{v.name}_dim{i}")
                for i, d in enumerate(tt.shape.dim)
            )
            out.append(TensorSpec(v.name, shape, str(tensor_dtype_to_np_dtype(tt.elem_type))))
        return tuple(out)

    if not model.graph.input or not model.graph.output:
        raise InputFileError(path, "the ONNX graph declares no inputs or no outputs")
    return ModelSpec(
        name=path.stem, inputs=tensors(model.graph.input), outputs=tensors(model.graph.output), dataset=None
    )


def _describe(path: Path, fmt: Format) -> dict:
    from converters.onnx2tf_worker import describe_saved_model, describe_tflite

    try:
        return describe_saved_model(str(path)) if fmt is Format.TF_SAVED_MODEL else describe_tflite(str(path))
    except Exception as e:  # TF and LiteRT raise ValueError, RuntimeError, OSError on bad files
        raise InputFileError(path, f"cannot be loaded as {fmt} ({type(e).__name__}: {e})") from e


def resolve_artifact(path: str | Path, reference: ModelSpec | None = None) -> Artifact:
    """The artifact at ``path``, described by its manifest record where one exists.

    Args:
        path: A checkpoint, ONNX file, SavedModel folder or TFLite file.
        reference: The reference interface, needed to bind a SavedModel or TFLite file that has no
            manifest record.
    """
    from models.checkpoint import load_checkpoint

    path = Path(path)
    if not path.exists():
        raise InputFileError(path, "no such file or folder")
    fmt = detect_format(path)
    if fmt is Format.TORCH:
        return Artifact(path, Format.TORCH, load_checkpoint(path).spec)
    recorded = RunDir(path.parent).artifact(path) if (path.parent / "manifest.json").is_file() else None
    if recorded is not None:
        return recorded
    if fmt is Format.ONNX:
        spec = spec_from_onnx(path)
        if reference is not None and [t.name for t in reference.inputs] == [t.name for t in spec.inputs]:
            spec = reference
        return Artifact(path, Format.ONNX, spec)
    if reference is None:
        raise UsageError(
            f"{path}: a {fmt} artifact needs a reference (a checkpoint or ONNX file) to be bound to"
        )
    from converters.layout import bind_tensors

    desc = _describe(path, fmt)
    stem = path.stem.lower()
    precision = next((p for p in ("fp16", "float16", "int8") if p in stem), "fp32").replace("float16", "fp16")
    return Artifact(
        path,
        fmt,
        reference,
        precision=precision,
        inputs=bind_tensors(reference.inputs, desc["inputs"], channels_last=True),
        outputs=bind_tensors(reference.outputs, desc["outputs"], channels_last=True, match_names=False),
        extra={"inferred": "layout from declared shapes, precision from the file name (no manifest record)"},
    )
