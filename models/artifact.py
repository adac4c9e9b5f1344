"""Artifacts: a file on disk, its format and precision, and how its tensors map to the reference.

Converters may change tensor names and axis order (onnx2tf turns NCHW into NHWC). Each artifact
records, per tensor, its own name and the permutation from the reference layout, so validation
feeds it correctly and maps its outputs back without guessing.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from onnxpipe.models.spec import ModelSpec, TensorSpec

__all__ = ["Artifact", "Format", "TensorBinding", "identity_bindings", "inverse_perm"]


class Format(enum.StrEnum):
    """Artifact formats."""

    TORCH = "torch"
    ONNX = "onnx"
    TF_SAVED_MODEL = "tf_saved_model"
    TFLITE = "tflite"
    TFJS = "tfjs"


def inverse_perm(perm: Sequence[int]) -> tuple[int, ...]:
    """The permutation that undoes ``perm``."""
    inv = [0] * len(perm)
    for i, p in enumerate(perm):
        inv[p] = i
    return tuple(inv)


@dataclass(frozen=True)
class TensorBinding:
    """How one reference tensor appears in an artifact.

    Attributes:
        name: The reference (PyTorch/ONNX) tensor name.
        artifact_name: The name the artifact uses (signature key or tensor name).
        perm: ``artifact_tensor = reference_tensor.transpose(perm)``; ``None`` means same layout.
        layout: Axis letters in the artifact, e.g. ``"NHWC"``, when known.
    """

    name: str
    artifact_name: str
    perm: tuple[int, ...] | None = None
    layout: str | None = None

    def to_artifact(self, value: Any) -> Any:
        """Reference layout -> artifact layout."""
        return value if self.perm is None else value.transpose(self.perm)

    def to_reference(self, value: Any) -> Any:
        """Artifact layout -> reference layout."""
        return value if self.perm is None else value.transpose(inverse_perm(self.perm))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "name": self.name,
            "artifact_name": self.artifact_name,
            "perm": None if self.perm is None else list(self.perm),
            "layout": self.layout,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TensorBinding:
        """Inverse of :meth:`to_dict`."""
        perm = d.get("perm")
        return cls(d["name"], d["artifact_name"], None if perm is None else tuple(perm), d.get("layout"))


def identity_bindings(tensors: Sequence[TensorSpec]) -> tuple[TensorBinding, ...]:
    """Bindings for an artifact that keeps the reference names and layouts."""
    return tuple(TensorBinding(t.name, t.name, None, t.layout) for t in tensors)


@dataclass(frozen=True)
class Artifact:
    """A model file (or SavedModel folder) and everything needed to run it like the reference.

    Attributes:
        path: File or folder.
        format: Its :class:`Format`.
        spec: The reference model's interface.
        precision: one of :data:`models.spec.PRECISIONS`.
        inputs: Bindings of the spec's inputs, in spec order.
        outputs: Bindings of the spec's outputs, in spec order.
        parent: File name of the artifact this one was converted from (for hop-by-hop blame).
        backend: The converter backend that wrote it (``torch.onnx``, ``onnx2tf``, ...).
    """

    path: Path
    format: Format
    spec: ModelSpec
    precision: str = "fp32"
    inputs: tuple[TensorBinding, ...] = ()
    outputs: tuple[TensorBinding, ...] = ()
    parent: str | None = None
    backend: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))
        object.__setattr__(self, "format", Format(self.format))
        if not self.inputs:
            object.__setattr__(self, "inputs", identity_bindings(self.spec.inputs))
        if not self.outputs:
            object.__setattr__(self, "outputs", identity_bindings(self.spec.outputs))

    @property
    def label(self) -> str:
        """Short name for reports: the file or folder name."""
        return self.path.name

    def with_path(self, path: Path) -> Artifact:
        """The same artifact at another path (after an atomic rename)."""
        return replace(self, path=Path(path))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, with the path relative to nothing (callers relativise)."""
        return {
            "path": str(self.path),
            "format": str(self.format),
            "precision": self.precision,
            "spec": self.spec.to_dict(),
            "inputs": [b.to_dict() for b in self.inputs],
            "outputs": [b.to_dict() for b in self.outputs],
            "parent": self.parent,
            "backend": self.backend,
            "extra": dict(self.extra),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], base: Path | None = None) -> Artifact:
        """Inverse of :meth:`to_dict`; a relative path is resolved against ``base``."""
        path = Path(d["path"])
        if base is not None and not path.is_absolute():
            path = base / path
        return cls(
            path=path,
            format=Format(d["format"]),
            spec=ModelSpec.from_dict(d["spec"]),
            precision=d.get("precision", "fp32"),
            inputs=tuple(TensorBinding.from_dict(b) for b in d.get("inputs", ())),
            outputs=tuple(TensorBinding.from_dict(b) for b in d.get("outputs", ())),
            parent=d.get("parent"),
            backend=d.get("backend"),
            extra=d.get("extra", {}),
        )
