"""Map a converted artifact's tensors back to the reference: names and axis order.

onnx2tf moves the channel axis last on 3-D, 4-D and 5-D tensors (NCW -> NWC, NCHW -> NHWC,
NCDHW -> NDHWC) and renames outputs. Each binding is decided from the shapes the artifact
declares; when both the identity and the channels-last order fit (e.g. ``[N, 8, 8, 8]``), onnx2tf's
own rule decides, and the binding records which rule was used. onnx2tf does not always follow it
(it leaves a ``[N, 8, 8]`` sequence input of a recurrent net as it is), so an ambiguous binding is
then settled by measurement (:func:`settle_ambiguous`): the converted file is run on a probe in
each candidate layout and the one that reproduces ONNX Runtime is kept.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from onnxpipe.models.artifact import Artifact, Format, TensorBinding
from onnxpipe.models.errors import ConversionError, EnvironmentProblem
from onnxpipe.models.execution import RuntimeOpener
from onnxpipe.models.spec import TensorSpec

__all__ = ["bind_tensors", "channels_last_perm", "settle_ambiguous"]

_LAYOUT_LETTERS = {3: ("NCW", "NWC"), 4: ("NCHW", "NHWC"), 5: ("NCDHW", "NDHWC")}


def channels_last_perm(rank: int) -> tuple[int, ...]:
    """The permutation that moves axis 1 last: ``(0, 2, ..., rank-1, 1)``."""
    return (0, *range(2, rank), 1)


def _fits(ref_shape: Sequence[int | str], art_shape: Sequence[int]) -> bool:
    if len(ref_shape) != len(art_shape):
        return False
    return all(
        isinstance(r, str) or a in (-1, None) or r == a for r, a in zip(ref_shape, art_shape, strict=True)
    )


def _bind_one(ref: TensorSpec, art_name: str, art_shape: Sequence[int], channels_last: bool) -> TensorBinding:
    rank = len(ref.shape)
    perm = channels_last_perm(rank) if rank in _LAYOUT_LETTERS else None
    moved = [ref.shape[p] for p in perm] if perm else None
    identity_fits = _fits(ref.shape, art_shape)
    moved_fits = moved is not None and _fits(moved, art_shape)
    if moved_fits and (channels_last or not identity_fits):
        return TensorBinding(ref.name, art_name, perm, ref.layout and _LAYOUT_LETTERS[rank][1])
    if identity_fits:
        return TensorBinding(ref.name, art_name, None, ref.layout)
    raise ConversionError(
        f"tensor {ref.name!r}: the artifact declares {art_name!r} with shape {list(art_shape)}, which is "
        f"neither the reference shape {list(ref.shape)} nor its channels-last form {moved}"
    )


def bind_tensors(
    refs: Sequence[TensorSpec],
    declared: Sequence[Mapping[str, Any]],
    *,
    channels_last: bool,
    match_names: bool = True,
) -> tuple[TensorBinding, ...]:
    """Bind reference tensors to an artifact's declared tensors.

    Args:
        refs: The reference tensors, in order.
        declared: The artifact's tensors (``name``, ``shape`` with -1 for dynamic axes), in order.
        channels_last: Whether the converter moves channels last where the shape allows it.
        match_names: Bind by name where every reference name is present; otherwise by position.

    Raises:
        ConversionError: Counts differ or a shape fits neither layout.
    """
    if len(refs) != len(declared):
        raise ConversionError(
            f"the artifact has {len(declared)} tensors ({[d['name'] for d in declared]}), "
            f"the reference {len(refs)} ({[r.name for r in refs]})"
        )
    by_name = {d["name"]: d for d in declared}
    if match_names and all(r.name in by_name for r in refs):
        pairs = [(r, by_name[r.name]) for r in refs]
    else:
        pairs = list(zip(refs, declared, strict=True))
    return tuple(_bind_one(r, d["name"], d["shape"], channels_last) for r, d in pairs)


def _other(ref: TensorSpec, binding: TensorBinding, art_shape: Sequence[int]) -> TensorBinding | None:
    """The other binding that fits ``art_shape`` too (``None`` when the binding is unambiguous)."""
    rank = len(ref.shape)
    if rank not in _LAYOUT_LETTERS:
        return None
    perm = channels_last_perm(rank)
    moved = [ref.shape[p] for p in perm]
    if not (_fits(ref.shape, art_shape) and _fits(moved, art_shape)):
        return None
    if binding.perm is None:
        return TensorBinding(ref.name, binding.artifact_name, perm, ref.layout and _LAYOUT_LETTERS[rank][1])
    return TensorBinding(ref.name, binding.artifact_name, None, ref.layout)


def _rows_of(value: Any, batch: int) -> Any:
    """``batch`` rows of ``value``: its first ones, the last repeated where it has fewer."""
    import numpy as np

    if len(value) >= batch:
        return value[:batch]
    return np.concatenate([value, np.repeat(value[-1:], batch - len(value), axis=0)])


def settle_ambiguous(
    onnx: Artifact,
    tflite_path: Any,
    declared: Mapping[str, Sequence[Mapping[str, Any]]],
    inputs: tuple[TensorBinding, ...],
    outputs: tuple[TensorBinding, ...],
    run_with: RuntimeOpener,
    samples: Mapping[str, Any] | None = None,
) -> tuple[tuple[TensorBinding, ...], tuple[TensorBinding, ...]]:
    """Choose, for tensors whose shape fits both layouts, the layout the converted file really uses.

    Runs the ONNX file and the (float) TFLite file through the runtime layer (``run_with``: ONNX
    Runtime, or the reference evaluator where ONNX Runtime has no kernel) on one seeded probe, for
    every combination of the ambiguous bindings (at most 16), and keeps the closest. Unambiguous
    bindings are returned as given.

    Args:
        onnx: The ONNX artifact that was converted (the reference's names and layout).
        tflite_path: The float TFLite file.
        declared: The TFLite file's ``inputs`` and ``outputs`` (``name``, ``shape`` with -1).
        inputs: The bindings by rule, one per reference input.
        outputs: The bindings by rule, one per reference output.
        run_with: Opens a runtime on an artifact.
        samples: The user's samples (reference names; a shape input whole, the others with rows
            first): the probe is made of them, so a graph that takes an input no value can be
            made up for (a shape) is measured too. Without them, such a graph keeps the rule's
            bindings, and validation judges them.
    """
    import itertools

    import numpy as np

    refs_in, refs_out = onnx.spec.inputs, onnx.spec.outputs
    in_shapes = {d["name"]: d["shape"] for d in declared["inputs"]}
    out_shapes = {d["name"]: d["shape"] for d in declared["outputs"]}
    in_options = [
        [b, *filter(None, [_other(r, b, in_shapes[b.artifact_name])])]
        for r, b in zip(refs_in, inputs, strict=True)
    ]
    out_options = [
        [b, *filter(None, [_other(r, b, out_shapes[b.artifact_name])])]
        for r, b in zip(refs_out, outputs, strict=True)
    ]
    combos = list(itertools.product(*in_options, *out_options))
    if len(combos) == 1 or len(combos) > 16 or (samples is None and not all(t.invented for t in refs_in)):
        return inputs, outputs  # (no values can be made up for a shape: validation judges the rule)
    rows = [  # each input of samples, and the size the file declares at its sample axis
        (t, in_shapes[b.artifact_name][b.perm.index(t.batch_axis) if b.perm else t.batch_axis])
        for t, b in zip(refs_in, inputs, strict=True)
        if not t.whole and len(in_shapes[b.artifact_name]) == len(t.shape)
    ]
    batch = next((int(size) for _, size in rows if size and size > 0), 2)
    rng = np.random.default_rng(0)
    if samples is not None:
        probe = {t.name: np.asarray(samples[t.name]) for t in refs_in}
        probe |= {t.name: t.from_rows(_rows_of(t.to_rows(probe[t.name]), batch)) for t, _ in rows}
    else:
        probe = {
            t.name: rng.uniform(0.0, 1.0, size=t.concrete_shape(batch)).astype(t.dtype)
            if np.dtype(t.dtype).kind == "f"
            else rng.integers(*(t.value_range or (0, 2)), size=t.concrete_shape(batch)).astype(t.dtype)
            for t in refs_in
        }
    try:
        with run_with(onnx) as reference:
            expected = reference.run(probe)
    except (ValueError, RuntimeError):  # the graph refuses the probe: nothing to measure, validation judges
        return inputs, outputs
    best, best_error = (inputs, outputs), np.inf
    for combo in combos:
        ins, outs = tuple(combo[: len(inputs)]), tuple(combo[len(inputs) :])
        candidate = Artifact(Path(tflite_path), Format.TFLITE, onnx.spec, "fp32", ins, outs)
        try:
            with run_with(candidate) as runtime:
                got = runtime.run(probe)
        except (ValueError, RuntimeError):  # a layout the file cannot take at all: not this one
            continue
        except EnvironmentProblem:
            # No runtime here loads the file at all (Flex ops): there is nothing to measure, the
            # rule's bindings stand, and validation says why the file cannot be run.
            return inputs, outputs
        error = max(
            float(np.abs(got[name] - ref).max()) if got[name].shape == ref.shape else np.inf
            for name, ref in expected.items()
        )
        if error < best_error:
            best, best_error = (ins, outs), error
    return best
