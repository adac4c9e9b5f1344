"""The run directory: fixed file names, the manifest, and artifact records.

``manifest.json`` records, per stage, the SHA-256 of its inputs and outputs, its options, tool
versions, timing and lineage, and, per artifact, how its tensors map to the reference (so later
stages and other tools never guess a layout).
"""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from models.artifact import Artifact
from models.errors import InputFileError
from models.fs import sha256_path, write_json

__all__ = ["RunDir", "tool_versions"]

_TOOLS = (
    "onnxpipe",
    "torch",
    "onnx",
    "onnxscript",
    "onnxruntime",
    "tensorflow",
    "onnx2tf",
    "ai-edge-litert",
    "numpy",
)


def tool_versions(names: Iterable[str] = _TOOLS) -> dict[str, str | None]:
    """Installed versions of the tools that shape the artifacts (``None`` when absent)."""
    out: dict[str, str | None] = {}
    for name in names:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def _forget_descendants(records: dict[str, Any], rewritten: set[str]) -> None:
    """Drop the records of artifacts derived from a rewritten one: they no longer match their parent.

    The files stay on disk, but validation no longer treats them as this run's artifacts.
    """
    stale = set(rewritten)
    changed = True
    while changed:
        changed = False
        for name, record in list(records.items()):
            if name not in rewritten and record.get("parent") in stale:
                stale.add(name)
                del records[name]
                changed = True


@dataclass(frozen=True)
class RunDir:
    """A run directory and the names of everything in it."""

    path: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))

    @property
    def checkpoint(self) -> Path:
        """``checkpoint.pt``."""
        return self.path / "checkpoint.pt"

    @property
    def onnx(self) -> Path:
        """``model.onnx``."""
        return self.path / "model.onnx"

    @property
    def saved_model(self) -> Path:
        """``saved_model/``."""
        return self.path / "saved_model"

    @property
    def manifest_path(self) -> Path:
        """``manifest.json``."""
        return self.path / "manifest.json"

    def tflite(self, precision: str) -> Path:
        """``model_<precision>.tflite``."""
        return self.path / f"model_{precision}.tflite"

    def prepare(self) -> RunDir:
        """Create the folder, or fail with a clear message when it cannot be a run directory."""
        if self.path.exists() and not self.path.is_dir():
            raise InputFileError(self.path, "exists and is not a folder")
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise InputFileError(self.path, f"cannot create the run directory ({e.strerror})") from e
        return self

    def manifest(self) -> dict[str, Any]:
        """The manifest, or an empty one."""
        if not self.manifest_path.is_file():
            return {"stages": {}, "artifacts": {}}
        try:
            data = json.loads(self.manifest_path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise InputFileError(self.manifest_path, f"not valid JSON ({e})") from e
        data.setdefault("stages", {})
        data.setdefault("artifacts", {})
        return data

    def record_stage(
        self,
        stage: str,
        *,
        inputs: Iterable[Path],
        outputs: Iterable[Artifact | Path],
        options: dict[str, Any],
        seconds: float,
    ) -> None:
        """Record a finished stage and the artifacts it wrote (atomic rewrite of the manifest)."""
        data = self.manifest()
        outs = list(outputs)
        data["onnxpipe"] = tool_versions(["onnxpipe"])["onnxpipe"]
        data["stages"][stage] = {
            "finished": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "seconds": round(seconds, 3),
            "inputs": {self._rel(p): sha256_path(p) for p in inputs},
            "outputs": {self._rel(self._path_of(o)): sha256_path(self._path_of(o)) for o in outs},
            "options": options,
            "versions": tool_versions(),
        }
        written = {self._rel(self._path_of(o)) for o in outs}
        _forget_descendants(data["artifacts"], written)
        for o in outs:
            if isinstance(o, Artifact):
                record = o.to_dict()
                record["path"] = self._rel(o.path)
                data["artifacts"][self._rel(o.path)] = record
        write_json(self.manifest_path, data)

    def artifacts(self) -> list[Artifact]:
        """Recorded artifacts that exist on disk, in the order they were recorded (lineage order)."""
        records = self.manifest()["artifacts"]
        out = [Artifact.from_dict(r, base=self.path) for r in records.values()]
        return [a for a in out if a.path.exists()]

    def artifact(self, path: Path) -> Artifact | None:
        """The recorded artifact at ``path``, if any."""
        record = self.manifest()["artifacts"].get(self._rel(path))
        return Artifact.from_dict(record, base=self.path) if record else None

    @staticmethod
    def _path_of(o: Artifact | Path) -> Path:
        return o.path if isinstance(o, Artifact) else Path(o)

    def _rel(self, p: Path) -> str:
        p = Path(p).resolve()
        try:
            return str(p.relative_to(self.path.resolve()))
        except ValueError:
            return str(p)
