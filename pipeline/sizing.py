"""Sizes resolved before anything runs: a user's ONNX file with free sizes becomes one with fixed ones.

An ONNX file whose heights, widths or lengths are free (``DynamicDimension.1``, unknown, ``-1``)
is converted as a copy in the run directory, ``model.onnx``, whose inputs declare the sizes
resolved by :func:`onnxpipe.models.interface.resolve_sizes` (each sample axis named ``batch``): the
same graph, checked to compute what the user's file computes at those sizes, and then the
reference every artifact is validated against. Converters see fixed sizes, as they need; the
record says which sizes were fixed and where each came from.

Before it is kept, the reference runs on inputs of those sizes at batch 1 and 2: a size it
rejects stops the command with one line naming the sizes onnxpipe chose and ``--input-shape``,
never a traceback; and the outputs' sample axes are read off how their sizes follow the batch.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np

from onnxpipe.models.artifact import Artifact, Format
from onnxpipe.models.errors import InputFileError, UsageError
from onnxpipe.models.fs import atomic_path
from onnxpipe.models.interface import Sizing, is_unnamed, resolve_sizes
from onnxpipe.models.spec import ModelSpec, TensorSpec, random_values
from onnxpipe.models.user_data import UserData, load_user_inputs
from onnxpipe.pipeline.rundir import RunDir

__all__ = ["BATCH", "size_interface", "sized_reference"]

log = logging.getLogger(__name__)

#: The name every free sample axis gets in the sized copy.
BATCH = "batch"


def _needs_sizing(spec: ModelSpec) -> bool:
    """Whether some input has a free size besides its sample axis, or an unnamed sample axis."""
    return any(
        isinstance(d, str) and (i != t.batch_axis or is_unnamed(d))
        for t in spec.inputs
        for i, d in enumerate(t.shape)
    )


def _probe_inputs(spec: ModelSpec, batch: int, samples: Mapping[str, np.ndarray] | None) -> dict | None:
    """Inputs of the resolved sizes at ``batch``: the user's first samples, else made up (``None``: cannot)."""
    rng = np.random.default_rng(0)
    feeds = {}
    for t in spec.inputs:
        given = None if samples is None else samples.get(t.name)
        if given is not None:
            if t.whole:
                feeds[t.name] = given
                continue
            rows = t.to_rows(given)
            if len(rows) < batch:
                rows = np.concatenate([rows, np.repeat(rows[-1:], batch - len(rows), axis=0)])
            feeds[t.name] = t.from_rows(rows[:batch])
        elif t.invented:
            feeds[t.name] = random_values(t, t.concrete_shape(batch), spec.value_range, rng)
        else:
            return None  # a shape or a setting only the user can give: check_inputs refuses it later
    return feeds


def _output_axes(outputs: Sequence[TensorSpec], one: dict, two: dict) -> tuple[TensorSpec, ...]:
    """Each output with the axis whose size follows the batch (1 at batch 1, 2 at batch 2), else none.

    Its other sizes stay as the graph declares them (a length that depends on the input's values
    stays free); a tensor the graph declares no shape for takes the sizes it had.
    """
    out = []
    for t in outputs:
        a, b = np.shape(one[t.name]), np.shape(two[t.name])
        follows = [i for i, (x, y) in enumerate(zip(a, b, strict=False)) if (x, y) == (1, 2)]
        axis = follows[0] if follows and len(a) == len(b) else None
        dims = t.shape if len(t.shape) == len(b) else b
        shape = tuple(BATCH if i == axis else d for i, d in enumerate(dims))
        out.append(dataclasses.replace(t, shape=shape, batch_axis=axis))
    return tuple(out)


def _refusal(sizing: Sizing, runtime: str, error: Exception, user: UserData | None) -> UsageError:
    said = str(error).strip().splitlines()[0][:300] if str(error).strip() else type(error).__name__
    if sizing.invented:
        what = "the inputs onnxpipe made up, " + "; ".join(sizing.chosen)
        fix = (
            "give the sizes it takes with --input-shape NAME=SIZES (one per input, e.g. "
            f"{sizing.invented[0]}=...), or samples with --inputs"
        )
    else:
        what = (
            "inputs of the sizes "
            + ("of your --inputs" if user else "it declares")
            + (f" ({'; '.join(sizing.chosen)})" if sizing.chosen else "")
        )
        fix = "check the sizes and values it takes"
    return UsageError(f"the reference ({runtime}) rejects {what}: {said}; {fix}")


def _write_sized(
    source: Path, dest: Path, spec: ModelSpec, data_name: str, bake: Mapping[str, np.ndarray]
) -> list[str]:
    """``source`` with its inputs' sizes fixed, its sample axes named and ``bake``'s settings baked.

    Each input's dims become those ``spec`` declares; the settings in ``bake`` become constants,
    with the branches they choose taken (:func:`onnxpipe.converters.branches.bake_values`). A graph over 2 GB keeps its weights beside it, in ``data_name``.

    Returns:
        What baking did, one line each.
    """
    import onnx

    from onnxpipe.converters.branches import bake_values

    model = onnx.load(str(source))  # with its external data: the copy is self-contained
    tensors = {t.name: t for t in (*spec.inputs, *spec.outputs)}
    for value in [*model.graph.input, *model.graph.output]:
        t = tensors.get(value.name)
        if t is None or not value.type.HasField("tensor_type"):
            continue
        for i, dim in enumerate(value.type.tensor_type.shape.dim):
            size = t.shape[i] if i < len(t.shape) else None
            if i == t.batch_axis and not isinstance(size, int):
                dim.Clear()
                dim.dim_param = BATCH
            elif isinstance(size, int) and value in model.graph.input:
                dim.Clear()
                dim.dim_value = size
            elif dim.HasField("dim_value") and dim.dim_value <= 0:
                dim.Clear()  # a size written -1 or 0: unknown, not a size
    del model.graph.value_info[:]  # inferred again by whoever reads it, with the sizes fixed
    # after the sizes: conditions on them fold too (If nodes are taken even with nothing to bake)
    notes = bake_values(model, bake) if bake or any(n.op_type == "If" for n in model.graph.node) else []
    large = model.ByteSize() > 2**31 - 2**20
    onnx.save(model, str(dest), save_as_external_data=large, location=data_name if large else None)
    return notes


def size_interface(
    source: Artifact,
    run: RunDir,
    shapes: Mapping[str, Sequence[int]] | None = None,
    user: UserData | None = None,
    on_progress: Callable[[str], None] = lambda _m: None,
) -> Artifact:
    """The ONNX artifact to convert: ``source`` itself, or its sized copy in ``run``.

    Args:
        source: The user's ONNX file.
        run: The run directory the copy goes in (``model.onnx``, or ``model_sized.onnx`` when the
            source is that file).
        shapes: ``--input-shape NAME=SIZES``.
        user: ``--inputs``: their sizes say the free ones.
        on_progress: Told what was resolved, in one line.

    The caller has checked ``user`` against the file's interface (a shape or a setting only the user
    can give is refused before this writes anything).

    Raises:
        UsageError: The reference rejects inputs of the resolved sizes, or ``--input-shape`` does
            not fit the model.
    """
    t0 = time.perf_counter()
    spec = source.spec
    samples = None if user is None else load_user_inputs(user, spec)
    bake = _bakeable(spec, samples)
    if not shapes and not _needs_sizing(spec) and not bake:
        return source
    sizing, resolved = _resolved(spec, shapes, samples)
    baked_notes = [f"{k} = {np.asarray(v).tolist()} baked in (it {_why(spec, k)})" for k, v in bake.items()]
    on_progress("sizes: " + ("; ".join([*sizing.chosen, *baked_notes]) or "as declared"))
    name = "model.onnx" if run.onnx.resolve() != source.path.resolve() else "model_sized.onnx"
    dest = run.path / name
    options = {
        "input_shapes": {k: list(v) for k, v in (shapes or {}).items()},
        "chosen": list(sizing.chosen),
        "baked": {k: np.asarray(v).tolist() for k, v in bake.items()},
    }
    if dest.is_file() and run.stale_reason("size", [source.path], options) is None:
        recorded = run.artifact(dest)
        if recorded is not None:
            return recorded  # sized and checked before, from the same file with the same sizes
    probe = _probed(Artifact(source.path, Format.ONNX, resolved), sizing, samples, user)
    resolved = probe.spec
    sized_spec = dataclasses.replace(
        resolved,
        inputs=tuple(t for t in resolved.inputs if t.name not in bake),
        baked={k: np.asarray(v).tolist() for k, v in bake.items()},
    )
    with atomic_path(dest) as tmp:  # kept only once checked; a failure leaves what was there
        notes = _write_sized(source.path, tmp, sized_spec, f"{dest.name}.data", bake)
        _check_same(source, probe, Artifact(tmp, Format.ONNX, sized_spec))
    log.info(
        "sized %s -> %s (probed on %s)",
        source.path,
        dest,
        probe.runtime or "nothing: inputs only you can give",
    )
    artifact = Artifact(
        dest,
        Format.ONNX,
        sized_spec,
        parent=source.path.name,
        backend="onnxpipe",
        extra={"sized": list(sizing.chosen), "sized_from": str(source.path)}
        | ({"baked": [n for n in notes if n.endswith("baked in")]} if bake else {})
        | ({"branches": [n for n in notes if not n.endswith("baked in")]} if len(notes) > len(bake) else {}),
    )
    run.record_stage(
        "size",
        inputs=[source.path],
        outputs=[artifact],
        options=options,
        seconds=time.perf_counter() - t0,
    )
    return artifact


def _why(spec: ModelSpec, name: str) -> str:
    return next((t.why for t in spec.inputs if t.name == name and t.why), "is a setting")


def _bakeable(spec: ModelSpec, samples: Mapping[str, np.ndarray] | None) -> dict[str, np.ndarray]:
    """The settings that choose an ``If`` branch and whose value the user gave: baked into the copy."""
    if samples is None:
        return {}
    return {
        t.name: samples[t.name]
        for t in spec.inputs
        if t.kind == "value" and (t.why or "").startswith("chooses If") and t.name in samples
    }


@dataclasses.dataclass(frozen=True)
class _Probe:
    """What running the user's file told: its spec with the outputs' sample axes, and its last run."""

    spec: ModelSpec
    runtime: str | None = None
    feeds: dict | None = None  # None: not run (an input only the user can give is missing)
    outputs: dict | None = None


def _probed(
    probe: Artifact, sizing: Sizing, samples: Mapping[str, np.ndarray] | None, user: UserData | None
) -> _Probe:
    """Run ``probe`` (the user's file at the resolved sizes) and measure its outputs' sample axes.

    The reference runs at batch 1 and 2 where its batch is free (else at the batch it is fixed
    to); not at all where an input only the user can give is missing.

    Raises:
        UsageError: The reference rejects the inputs (:func:`_refusal`).
    """
    from onnxpipe.validation.runtimes import open_runtime

    spec = probe.spec
    fixed = _fixed_batch(spec)
    one = _probe_inputs(spec, fixed or 1, samples)
    two = _probe_inputs(spec, 2, samples) if fixed is None else None
    if one is None:
        return _Probe(spec)
    with open_runtime(probe) as rt:  # EnvironmentProblem: no runtime loads the file at all
        try:
            feeds, outputs = one, rt.run(one)
            if two is not None:
                feeds, first, outputs = two, outputs, rt.run(two)
                spec = dataclasses.replace(spec, outputs=_output_axes(spec.outputs, first, outputs))
        except Exception as e:  # the runtime's own exception on sizes onnxpipe resolved: a refusal
            raise _refusal(sizing, rt.name, e, user) from e
        return _Probe(spec, rt.name, feeds, outputs)


def sized_reference(
    reference: Artifact, shapes: Mapping[str, Sequence[int]] | None = None, user: UserData | None = None
) -> Artifact:
    """An ONNX reference with its free sizes resolved, as validation feeds it (no copy is written).

    Raises:
        UsageError: ``--input-shape`` does not fit the model.
    """
    unnamed = any(is_unnamed(d) for t in reference.spec.outputs for d in t.shape)
    if reference.format is not Format.ONNX or (
        not shapes and not _needs_sizing(reference.spec) and not unnamed
    ):
        if shapes:
            raise UsageError("--input-shape NAME=SIZES: the reference has no free sizes to set")
        return reference
    samples = None if user is None else load_user_inputs(user, reference.spec)
    sizing, spec = _resolved(reference.spec, shapes, samples)
    probe = _probed(dataclasses.replace(reference, spec=spec), sizing, samples, user)
    return dataclasses.replace(reference, spec=probe.spec)


def _resolved(spec: ModelSpec, shapes, samples) -> tuple[Sizing, ModelSpec]:
    """:func:`resolve_sizes`, and its spec with each free sample axis named :data:`BATCH`."""
    sizing = resolve_sizes(spec, shapes, samples)
    return sizing, dataclasses.replace(sizing.spec, inputs=tuple(_named_batch(t) for t in sizing.spec.inputs))


def _named_batch(t: TensorSpec) -> TensorSpec:
    """``t`` with its free sample axis named :data:`BATCH`."""
    if t.whole or isinstance(t.shape[t.batch_axis], int):
        return t
    return dataclasses.replace(
        t, shape=tuple(BATCH if i == t.batch_axis else d for i, d in enumerate(t.shape))
    )


def _fixed_batch(spec: ModelSpec) -> int | None:
    """The batch a model is fixed to (1 when no input has a sample axis); ``None`` when it is free."""
    rows = [t for t in spec.inputs if not t.whole]
    size = rows[0].shape[rows[0].batch_axis] if rows else 1
    return size if isinstance(size, int) else None


def _check_same(source: Artifact, probe: _Probe, sized: Artifact) -> None:
    """The sized copy computes what the user's file computed in the probe, on the same inputs.

    The copy takes the probe's inputs but those baked in.
    """
    from onnxpipe.validation.runtimes import open_runtime

    if probe.feeds is None:
        return
    with open_runtime(sized) as rt:
        got = rt.run({k: v for k, v in probe.feeds.items() if k not in sized.spec.baked})
    tolerance = probe.spec.tolerance("fp32")
    for k, want in probe.outputs.items():
        if np.shape(want) != np.shape(got[k]) or tolerance.violation(want, got[k]) > 0:
            raise InputFileError(
                sized.path,
                f"the sized copy of {source.path.name} does not compute what it computes ({k!r}); "
                "nothing was kept",
            )
