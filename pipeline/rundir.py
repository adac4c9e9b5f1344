"""The run directory: fixed file names, the manifest, and artifact records.

``manifest.json`` records, per stage, the SHA-256 of its inputs and outputs, its options, tool
versions, timing and lineage, and, per artifact, how its tensors map to the reference (so later
stages and other tools never guess a layout).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import importlib.metadata
import json
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from onnxpipe.models.artifact import Artifact
from onnxpipe.models.errors import InputFileError, RunDirBusy
from onnxpipe.models.fs import sha256_path
from onnxpipe.models.records import Document

__all__ = ["STAGES", "Manifest", "RunDir", "StageRecord", "tool_versions"]

_TOOLS = (
    "onnxpipe",
    "torch",
    "onnx",
    "onnxscript",
    "onnxruntime",
    "tensorflow",
    "onnx2tf",
    "onnxsim",
    "ai-edge-litert",
    "numpy",
    "scikit-learn",
)
STAGES = ("train", "export", "convert", "validate")


def _key(inputs: dict[str, str], options: Any, versions: dict[str, str | None]) -> str:
    """What a stage's result depends on, hashed: input contents, options, tool versions."""
    text = json.dumps(
        {"inputs": inputs, "options": options, "versions": versions}, sort_keys=True, default=str
    )
    return hashlib.sha256(text.encode()).hexdigest()


def tool_versions(names: Iterable[str] = _TOOLS) -> dict[str, str | None]:
    """Installed versions of the tools that shape the artifacts (``None`` when absent)."""
    out: dict[str, str | None] = {}
    for name in names:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


#: Names onnxpipe writes in a run directory (besides ``model_*.tflite`` and ``model_*.onnx``).
OUR_NAMES = frozenset(
    {
        "checkpoint.pt",
        "manifest.json",
        "config.json",
        "model.onnx",
        "saved_model",
        "parity.json",
        "parity.md",
        "report.html",
        "bench.json",
        "bench.md",
        "backends",
        "backends.json",
        "backends.md",
    }
)
_OUR_PATTERN = re.compile(r"^model_[A-Za-z0-9_]+\.(tflite|onnx)$|^tfjs(_[a-z0-9]+)?$")

#: Names of what onnxpipe writes half-way: atomic writes (``.NAME.tmp-1a2b3c4d``, ``.NAME.old-...``)
#: and the conversion routes' working folders (``.onnx2tf-k3j_x9q1``, ``.onnx2tf-static-...``).
_TEMPORARY = re.compile(
    r"^\..+\.(tmp|old)-[0-9a-f]{8}$|^\.(onnx2tf|onnx-tf|litert|tfjs)[a-z0-9-]*-[a-z0-9_]{8}$"
)


def remove_stale_temporaries(folder: Path) -> list[str]:
    """Remove what a killed onnxpipe left half-written in ``folder`` and its route subfolders.

    Only names onnxpipe gives its temporaries are touched; call it holding the folder's lock.

    Returns:
        The paths removed, relative to ``folder``.
    """
    import shutil

    removed = []
    for sub in [folder, *sorted(p for p in (folder / "backends").glob("*") if p.is_dir())]:
        for p in sorted(sub.iterdir()):
            if _TEMPORARY.match(p.name):
                shutil.rmtree(p, ignore_errors=True) if p.is_dir() and not p.is_symlink() else p.unlink(
                    missing_ok=True
                )
                removed.append(str(p.relative_to(folder)))
    return removed


@dataclass
class StageRecord:
    """One finished stage: when, how long, and what its result depends on.

    Attributes:
        finished: ISO time, UTC.
        seconds: Wall time.
        key: SHA-256 over the input hashes, the options and the tool versions.
        inputs: Input path (relative to the run directory) -> SHA-256.
        outputs: Output path -> SHA-256.
        options: The stage's options as JSON.
        versions: Tool versions that shaped the outputs.
    """

    finished: str
    seconds: float
    inputs: dict[str, str]
    outputs: dict[str, str]
    options: Any
    versions: dict[str, str | None]
    key: str | None = None


@dataclass
class Manifest(Document):
    """``manifest.json``: every stage's record, and every artifact's record (see ``Artifact.to_dict``)."""

    KIND = "manifest"
    SCHEMA_VERSION = 1

    onnxpipe: str | None = None
    stages: dict[str, StageRecord] = field(default_factory=dict)
    artifacts: dict[str, dict[str, Any]] = field(default_factory=dict)


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
    def manifest_path(self) -> Path:
        """``manifest.json``."""
        return self.path / "manifest.json"

    def prepare(self) -> RunDir:
        """Create the folder, or fail with a clear message when it cannot be a run directory."""
        if self.path.exists() and not self.path.is_dir():
            raise InputFileError(self.path, "exists and is not a folder")
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise InputFileError(self.path, f"cannot create the run directory ({e.strerror})") from e
        return self

    @contextlib.contextmanager
    def lock(self, mark: bool = False) -> Iterator[RunDir]:
        """Hold the run directory for this process; a second onnxpipe on it is refused, not interleaved.

        Args:
            mark: Make the folder a run directory (an empty ``manifest.json``) before anything is
                written into it, so that a command that fails half-way can be run again as it was
                (:meth:`claim` then knows its files as onnxpipe's). The mark is removed again when
                nothing else was written.

        Raises:
            RunDirBusy: Another process holds it; the message says which.
        """
        created = not self.path.exists()
        self.prepare()
        path = self.path / ".lock"
        while True:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.read(fd, 200).decode(errors="replace").strip() or "another process"
                os.close(fd)
                raise RunDirBusy(
                    self.path, f"is in use by {holder}; try again when it has finished"
                ) from None
            if path.exists() and os.fstat(fd).st_ino == path.stat().st_ino:
                break
            os.close(fd)  # the holder removed the file between our open and our lock: take the new one
        try:
            previous = os.read(fd, 200).decode(errors="replace").strip()
            if (
                previous
            ):  # its holder ended without releasing it: killed (SIGKILL, the OOM killer, a CI timeout)
                from onnxpipe.pipeline.ui import say

                removed = remove_stale_temporaries(self.path)
                say(
                    f"{self.path}: taking over from {previous}, which ended without releasing it"
                    + (f"; removed what it left half-written: {', '.join(removed)}" if removed else "")
                )
            os.lseek(fd, 0, os.SEEK_SET)
            os.ftruncate(fd, 0)
            since = dt.datetime.now().isoformat(timespec="seconds")
            os.write(fd, f"onnxpipe pid {os.getpid()} since {since}".encode())
            marked = mark and not self.manifest_path.exists()
            if marked:
                Manifest(onnxpipe=tool_versions(["onnxpipe"])["onnxpipe"]).write(self.manifest_path)
            yield self
        finally:
            if marked and self._only_the_mark():
                self.manifest_path.unlink(missing_ok=True)
            path.unlink(missing_ok=True)
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
            if created and not any(self.path.iterdir()):
                self.path.rmdir()  # nothing was written: leave no empty run directory behind

    def _only_the_mark(self) -> bool:
        """Whether the manifest records nothing and no other file of onnxpipe's is in the folder."""
        try:
            data = self.manifest()
        except InputFileError:
            return False
        ours = [
            p
            for p in self.path.iterdir()
            if (p.name in OUR_NAMES or _OUR_PATTERN.match(p.name)) and p.name != "manifest.json"
        ]
        return not data.stages and not data.artifacts and not ours

    def is_run_dir(self) -> bool:
        """Whether onnxpipe made this folder: its ``manifest.json`` is an onnxpipe manifest."""
        if not self.manifest_path.is_file():
            return False
        try:
            Manifest.read(self.manifest_path)
        except InputFileError:
            return False
        return True

    def claim(self, reading: Iterable[Path] = (), force: bool = False) -> None:
        """Refuse to write into a folder that holds files with onnxpipe's names it did not write.

        A run directory (:meth:`is_run_dir`), a new folder and one without such files can be
        written. ``reading``: the files the command reads (an ONNX file converted in place is not
        replaced). ``force`` writes anyway.

        Raises:
            InputFileError: The folder is not a run directory and holds files onnxpipe would replace.
        """
        if force or not self.path.is_dir() or self.is_run_dir():
            return
        read = {Path(p).resolve() for p in reading}
        taken = sorted(
            p.name
            for p in self.path.iterdir()
            if (p.name in OUR_NAMES or _OUR_PATTERN.match(p.name)) and p.resolve() not in read
        )
        if taken:
            raise InputFileError(
                self.path,
                f"is not an onnxpipe run directory, and holds {', '.join(taken)}, which onnxpipe would "
                "replace; refused (give --out a new or empty folder, or --force to replace them)",
            )

    def manifest(self) -> Manifest:
        """The manifest, or an empty one.

        Raises:
            InputFileError: It is not valid JSON, or not an onnxpipe manifest this version reads.
        """
        if not self.manifest_path.is_file():
            return Manifest()
        return Manifest.read(self.manifest_path)

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
        data.onnxpipe = tool_versions(["onnxpipe"])["onnxpipe"]
        hashes = {self._input_key(p): sha256_path(p) for p in inputs}
        options = json.loads(json.dumps(options, default=str))
        versions = tool_versions()
        data.stages[stage] = StageRecord(
            finished=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            seconds=round(seconds, 3),
            key=_key(hashes, options, versions),
            inputs=hashes,
            outputs={self._rel(self._path_of(o)): sha256_path(self._path_of(o)) for o in outs},
            options=options,
            versions=versions,
        )
        written = {self._rel(self._path_of(o)) for o in outs}
        _forget_descendants(data.artifacts, written)
        for o in outs:
            if isinstance(o, Artifact):
                record = o.to_dict()
                record["path"] = self._rel(o.path)
                data.artifacts[self._rel(o.path)] = record
        data.write(self.manifest_path)

    def stale_reason(
        self, stage: str, inputs: Iterable[Path] | None = None, options: Any = None
    ) -> str | None:
        """Why ``stage`` must run again (``None``: its inputs, options, versions and outputs are as recorded).

        Args:
            stage: Stage name.
            inputs: The stage's inputs now (default: the recorded ones).
            options: The stage's options now (default: the recorded ones).
        """
        record = self.manifest().stages.get(stage)
        if not record:
            return "never run here"
        paths = [self.path / p for p in record.inputs] if inputs is None else list(inputs)
        for p in paths:
            if not Path(p).exists():
                return f"input {self._input_key(p)} is missing"
        hashes = {self._input_key(p): sha256_path(p) for p in paths}
        changed = [k for k in hashes if record.inputs.get(k) != hashes[k]]
        if changed or set(hashes) != set(record.inputs):
            return f"input {(changed or sorted(set(hashes) ^ set(record.inputs)))[0]} changed"
        options = record.options if options is None else json.loads(json.dumps(options, default=str))
        if options != record.options:
            return "options changed"
        versions = tool_versions()
        moved = [k for k, v in versions.items() if record.versions.get(k) != v]
        if moved:
            return f"{moved[0]} changed from {record.versions.get(moved[0])} to {versions[moved[0]]}"
        for name, digest in record.outputs.items():
            out = self.path / name
            if not out.exists():
                return f"output {name} is missing"
            if sha256_path(out) != digest:
                return f"output {name} was modified"
        if record.key != _key(hashes, options, versions):
            return "recorded without a key"
        return None

    def modified_outputs(self) -> dict[str, str]:
        """Recorded outputs whose content is no longer what their stage wrote: name -> that stage."""
        out: dict[str, str] = {}
        for stage, record in self.manifest().stages.items():
            for name, digest in record.outputs.items():
                path = self.path / name
                if path.exists() and sha256_path(path) != digest:
                    out[name] = stage
        return out

    def artifacts(self) -> list[Artifact]:
        """Recorded artifacts that exist on disk, in the order they were recorded (lineage order)."""
        records = self.manifest().artifacts
        out = [Artifact.from_dict(r, base=self.path) for r in records.values()]
        return [a for a in out if a.path.exists()]

    def converted_from(self) -> Path | None:
        """The ONNX file outside the run directory that ``convert`` converted, while it is unchanged.

        Raises:
            InputFileError: It was changed or removed since (validating against it would be wrong).
        """
        stage = self.manifest().stages.get("convert")
        sources = [k for k in (stage.inputs if stage else {}) if k.endswith(".onnx")]
        if not sources:
            return None
        path = (self.path / sources[0]).resolve() if not Path(sources[0]).is_absolute() else Path(sources[0])
        if not path.is_file():
            raise InputFileError(self.path, f"was converted from {path}, which is no longer there")
        if sha256_path(path) != stage.inputs[sources[0]]:
            raise InputFileError(
                self.path, f"was converted from {path}, which changed since (convert it again)"
            )
        return path

    def artifact(self, path: Path) -> Artifact | None:
        """The recorded artifact at ``path``, if any."""
        record = self.manifest().artifacts.get(self._rel(path))
        return Artifact.from_dict(record, base=self.path) if record else None

    @staticmethod
    def _path_of(o: Artifact | Path) -> Path:
        return o.path if isinstance(o, Artifact) else Path(o)

    def _input_key(self, p: Path) -> str:
        """An input's key in a stage record, relative to this run directory where it can be.

        Also relative when the input lies up to two levels above (a route's run directory,
        ``backends/<route>/``, converts the outer run's ``model.onnx``), so that a copied or moved
        run stays up to date.
        """
        p, here = Path(p).resolve(), self.path.resolve()
        for levels, base in enumerate([here, *list(here.parents)[:2]]):
            try:
                return str(Path(*[".."] * levels, p.relative_to(base)))
            except ValueError:
                continue
        return str(p)

    def _rel(self, p: Path) -> str:
        p = Path(p).resolve()
        try:
            return str(p.relative_to(self.path.resolve()))
        except ValueError:
            return str(p)
