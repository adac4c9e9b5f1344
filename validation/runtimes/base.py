"""The runtime interface: load an artifact once, run it on named NumPy inputs many times.

Like Polygraphy's runners, the public :meth:`Runtime.run` checks inputs against the model spec once
(names, dtypes, shapes), converts them to the artifact's own names and layout, calls the
subclass's :meth:`Runtime._run`, and maps outputs back to the reference names and layout.
Subclasses stay short and cannot forget the checks.

Also like Polygraphy's runners, a runtime times only the framework's own call (``session.run``,
``interpreter.invoke``, the module's forward): :attr:`Runtime.inference_s` is that time for the
last :meth:`Runtime.run`, without the input checks, transposes, (de)quantization and copies around
it, so benchmarks measure the runtime and not onnxpipe.
"""

from __future__ import annotations

import abc
import importlib.util
import time
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, TypeVar

import numpy as np

from onnxpipe.models.artifact import Artifact, Format
from onnxpipe.models.errors import EnvironmentProblem, UsageError, ValidationInputError

__all__ = ["ArtifactNotLoadable", "Runtime", "WorkerRuntime"]

T = TypeVar("T")


class ArtifactNotLoadable(EnvironmentProblem):
    """The runtime is installed but cannot load this artifact (e.g. an op or op version it lacks)."""


class Runtime(abc.ABC):
    """Runs one artifact on one device. Use as a context manager.

    Attributes:
        name: Runtime name used in reports and on the command line.
        formats: Artifact formats it can run.
        packages: Python modules it needs (checked by :meth:`unavailable_reason`).
        devices: Devices it can run on.
        intermediates_supported: Whether :meth:`intermediates` can expose every tensor (``--locate``).
        notice: What a user should know about this runtime, said once per report (a deprecation).
        inference_s: Seconds the framework's own call took in the last :meth:`run`.
    """

    name: ClassVar[str]
    formats: ClassVar[frozenset[Format]]
    packages: ClassVar[tuple[str, ...]] = ()
    devices: ClassVar[tuple[str, ...]] = ("cpu",)
    intermediates_supported: ClassVar[bool] = False
    notice: ClassVar[str | None] = None

    def __init__(self, artifact: Artifact, device: str = "cpu", threads: int | None = None):
        if artifact.format not in self.formats:
            raise UsageError(
                f"{artifact.path}: runtime {self.name!r} runs {sorted(map(str, self.formats))}, "
                f"not {artifact.format}"
            )
        self.artifact = artifact
        self.device = device
        self.threads = threads  # None: the runtime's own default
        self._loaded = False
        self.inference_s: float | None = None

    @classmethod
    def unavailable_reason(cls, device: str = "cpu") -> str | None:
        """Why this runtime cannot run here on ``device``, or ``None`` when it can."""
        missing = [p for p in cls.packages if importlib.util.find_spec(p) is None]
        if missing:
            return f"package {', '.join(missing)} is not installed"
        if device not in cls.devices:
            return f"device {device!r} is not supported by {cls.name} (supported: {', '.join(cls.devices)})"
        return cls._cuda_reason() if device == "cuda" else None

    @classmethod
    def _cuda_reason(cls) -> str | None:
        """Why CUDA cannot be used; called once the packages are known to be installed."""
        return None

    @property
    def detail(self) -> str | None:
        """What the loaded runtime runs on, where it is worth saying (a browser's backend), else ``None``."""
        return None

    @property
    def device_used(self) -> str:
        """The device the loaded session really runs on (never the one merely asked for)."""
        return self.device

    def __enter__(self) -> Runtime:
        reason = self.unavailable_reason(self.device)
        if reason:
            raise EnvironmentProblem(f"{self.name} on {self.device}: unavailable: {reason}")
        self._load()
        self._loaded = True
        declared = self.declared_shapes() or self.declared_dtypes()
        missing = [
            b.artifact_name for b in self.artifact.inputs if declared and b.artifact_name not in declared
        ]
        if missing:  # bound by a record of another file (a run's artifact replaced since)
            self.__exit__(None, None, None)
            raise ValidationInputError(
                f"{self.artifact.label} has no input {missing[0]!r}; it declares {sorted(declared)}"
            )
        self._casts = self._cast_to()
        return self

    def __exit__(self, *exc: object) -> None:
        self._close()
        self._loaded = False

    def declared_shapes(self) -> dict[str, list[int]]:
        """Input shapes the loaded artifact declares, by artifact name, -1 for dynamic axes.

        Empty when the runtime cannot tell (PyTorch: every axis is as dynamic as the code).
        """
        return {}

    def declared_dtypes(self) -> dict[str, str]:
        """Input dtypes the loaded artifact declares, by artifact name (empty when it cannot tell)."""
        return {}

    def _cast_to(self) -> dict[str, np.dtype]:
        """Reference input name -> the other dtype the artifact takes it in."""
        declared = self.declared_dtypes()
        return {
            t.name: np.dtype(declared[b.artifact_name])
            for t, b in zip(self.artifact.spec.inputs, self.artifact.inputs, strict=True)
            if b.artifact_name in declared and np.dtype(declared[b.artifact_name]) != np.dtype(t.dtype)
        }

    def cast_inputs(self) -> dict[str, str]:
        """Reference inputs the artifact takes in another dtype: name -> ``"int64 -> int32"``.

        Such inputs are cast as they are fed; an integer value the narrower type cannot hold is
        refused (:meth:`run` raises), never wrapped.
        """
        dtypes = {t.name: t.dtype for t in self.artifact.spec.inputs}
        return {name: f"{dtypes[name]} -> {target}" for name, target in self._cast_to().items()}

    def dynamic_axes(self) -> dict[str, dict[str, str]]:
        """Per input, per reference dynamic axis: ``"dynamic"`` or ``"static N"`` in this artifact."""
        declared = self.declared_shapes()
        out: dict[str, dict[str, str]] = {}
        for t, b in zip(self.artifact.spec.inputs, self.artifact.inputs, strict=True):
            shape = declared.get(b.artifact_name)
            axes = {}
            for axis, axis_name in t.dynamic_axes.items():
                if not shape:
                    axes[axis_name] = "dynamic"
                    continue
                pos = b.perm.index(axis) if b.perm else axis
                size = shape[pos] if pos < len(shape) else -1
                axes[axis_name] = "dynamic" if size is None or size < 0 else f"static {size}"
            out[t.name] = axes
        return out

    def static_batch(self) -> int | None:
        """The batch size the artifact is fixed to, or ``None`` when its batch axis is dynamic.

        A reference whose interface has no dynamic axis at all (an ONNX file exported with a fixed
        batch) is fixed to the batch its first input declares.
        """
        rows = [t for t in self.artifact.spec.inputs if not t.whole]  # rows of samples, not fed whole
        if rows and isinstance(rows[0].shape[rows[0].batch_axis], int):
            return rows[0].shape[rows[0].batch_axis]
        dynamic = self.dynamic_axes()
        for t in rows:
            state = dynamic.get(t.name, {}).get(t.shape[t.batch_axis], "dynamic")
            if state.startswith("static"):
                return int(state.split()[1])
        return None

    def _feeds(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Check ``inputs`` (reference names and layout) and give them in the artifact's names and layout."""
        if not self._loaded:
            raise RuntimeError(f"{type(self).__name__} used outside its context manager")
        spec = self.artifact.spec
        expected = {t.name for t in spec.inputs}
        if set(inputs) != expected:
            raise ValidationInputError(
                f"{self.artifact.label}: inputs {sorted(inputs)}, expected {sorted(expected)}"
            )
        feeds: dict[str, np.ndarray] = {}
        for t, b in zip(spec.inputs, self.artifact.inputs, strict=True):
            value = np.asarray(inputs[t.name])
            if value.dtype != np.dtype(t.dtype):
                raise ValidationInputError(f"input {t.name!r}: got dtype {value.dtype}, expected {t.dtype}")
            if len(value.shape) != len(t.shape) or any(
                not isinstance(d, str) and d != s for d, s in zip(t.shape, value.shape, strict=True)
            ):
                raise ValidationInputError(
                    f"input {t.name!r}: got shape {list(value.shape)}, expected {list(t.shape)}"
                )
            target = self._casts.get(t.name)
            if target is not None and target.kind in "iu" and value.dtype.kind in "iu" and value.size:
                info = np.iinfo(target)
                if value.min() < info.min or value.max() > info.max:
                    raise ValidationInputError(
                        f"input {t.name!r}: values {value.min()}..{value.max()} do not fit the artifact's "
                        f"{target} input ({self.artifact.label} takes it as {target})"
                    )
            feeds[b.artifact_name] = np.ascontiguousarray(b.to_artifact(value))
        return feeds

    def run(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run the artifact on ``inputs`` given in the reference names and layout.

        Afterwards :attr:`inference_s` holds the time of the framework's own call.

        Raises:
            ValidationInputError: An input is missing, unexpected, or has the wrong dtype or shape.
        """
        feeds = self._feeds(inputs)
        self.inference_s = None
        t0 = time.perf_counter()
        raw = self._run(feeds)
        if self.inference_s is None:  # a subclass that does not time its call: the whole of _run
            self.inference_s = time.perf_counter() - t0
        missing = [b.artifact_name for b in self.artifact.outputs if b.artifact_name not in raw]
        if missing:
            raise ValidationInputError(
                f"{self.artifact.label}: outputs {missing} not produced; it gave {sorted(raw)}"
            )
        return {b.name: np.asarray(b.to_reference(raw[b.artifact_name])) for b in self.artifact.outputs}

    def intermediates(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Every tensor the artifact computes on ``inputs``, by its own names, in its own layout.

        Integer tensors come dequantized; ``--locate`` compares them layer by layer.

        Raises:
            UsageError: This runtime cannot expose intermediate tensors.
        """
        if not self.intermediates_supported:
            raise UsageError(f"runtime {self.name!r} cannot expose intermediate tensors")
        return self._intermediates(self._feeds(inputs))

    def _timed(self, call: Callable[[], T]) -> T:
        """Run the framework's own call and record its time as :attr:`inference_s`."""
        t0 = time.perf_counter()
        out = call()
        self.inference_s = time.perf_counter() - t0
        return out

    def _intermediates(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        raise NotImplementedError

    @abc.abstractmethod
    def _load(self) -> None:
        """Create the session (once)."""

    def _close(self) -> None:  # noqa: B027 - optional hook
        """Release the session."""

    @abc.abstractmethod
    def _run(self, feeds: dict[str, np.ndarray]) -> Mapping[str, Any]:
        """Run on feeds in the artifact's names and layout; return outputs by the artifact's names."""


class WorkerRuntime(Runtime):
    """A runtime that keeps one worker process (:class:`onnxpipe.models.wire.Worker`) per artifact."""

    _worker: Any = None

    def _close(self) -> None:
        worker, self._worker = self._worker, None
        if worker is not None:
            worker.close()
