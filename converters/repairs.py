"""ONNX rewrites that keep a graph's meaning and get it through a converter that refuses it as is.

Each pass takes an ONNX file and writes a rewritten copy; the caller converts the copy, and what the
converter makes is validated against the reference like any other artifact, so a pass can never
make a wrong artifact look right. The rewrites of :data:`REPAIR_PASSES` are also checked on their
own (:func:`repair`): the rewritten graph must compute what the original computes, in ONNX Runtime,
or the pass is dropped and says why.

- ``prelu``: a ``PRelu`` whose slope is not one number becomes ``Max(x, 0) + slope * Min(x, 0)``.
  onnx2tf maps PRelu to TFLite's ``PRELU``, which takes at most 4-D tensors (``'tfl.prelu' op
  failed to verify ... within the rank 4`` on a Conv3d's PReLU); onnx-tf 1.10 has no PRelu-16.
- ``dilated-strided-conv``: a ``Conv`` that is both dilated and strided becomes the dilated Conv
  at stride 1 followed by a ``Slice`` with the stride as its step (the same numbers: a strided
  convolution is the stride-1 one sampled). TensorFlow's convolution refuses the pair (```strides
  > 1` not supported in conjunction with `dilation_rate > 1```), in both converters.
- ``pool3d``: a 3-D ``MaxPool``/``AveragePool`` without padding becomes two 2-D pools (height and
  width on ``[N, C*D, H, W]``, then depth on ``[N, C, D, H'*W']``): max and mean over a box are the
  max and mean of the per-slice ones. onnx2tf writes ``MaxPool3D``/``AvgPool3D`` as Flex ops
  (TensorFlow ops inside the TFLite file), which the plain TFLite interpreter cannot run; for
  onnx-tf, TensorFlow's TFLite converter refuses ``MaxPool3D``.

- :func:`fix_batch`: every graph input's and output's batch axis (the first) fixed to ``N``. Graphs
  exported with a dynamic batch compute shapes at run time (``Shape -> Gather -> Concat ->
  Reshape``), which onnx2tf cannot follow through attention blocks (``Cannot convert a partially
  known TensorShape``, a Softmax over ``(None, None, None, None)``); with the batch fixed, its
  constant folding (onnxsim) turns them into constants. The artifact then runs at batch ``N`` only,
  which validation measures and the report states (``static N``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from onnxpipe.models.artifact import Artifact
from onnxpipe.models.errors import ConversionError, EnvironmentProblem
from onnxpipe.models.execution import RuntimeOpener

__all__ = [
    "REPAIR_PASSES",
    "RepairPass",
    "RepairResult",
    "fix_batch",
    "load_model",
    "repair",
    "save_model",
    "self_contained_copy",
]

#: Protobuf's limit: larger models keep their weights in an external data file.
_PROTOBUF_LIMIT = 2**31 - 1


def load_model(source: Path):
    """Load an ONNX model with its external data (read from beside ``source``).

    Raises:
        ConversionError: ``source`` is not a readable ONNX model, or its external data is missing.
    """
    import onnx

    try:
        return onnx.load(str(source))
    except Exception as e:  # onnx raises DecodeError, ValueError, OSError...
        raise ConversionError(f"{source}: not a readable ONNX model ({type(e).__name__}: {e})") from e


def save_model(model, dest: Path) -> None:
    """Write ``model`` to ``dest``: one file, or ``dest`` plus ``<name>.data`` beside it when over 2 GB."""
    import onnx

    if model.ByteSize() < _PROTOBUF_LIMIT:
        onnx.save(model, str(dest))
    else:
        onnx.save(model, str(dest), save_as_external_data=True, location=f"{Path(dest).name}.data")


def self_contained_copy(source: Path, dest: Path) -> None:
    """Copy an ONNX model to ``dest`` with its weights, wherever ``source`` kept them.

    A model exported with external data (``model.onnx`` + ``model.onnx.data``) cannot be copied as
    one file: a converter working on the copy would find no weights.
    """
    save_model(load_model(source), dest)


_SCOPE_NAME = re.compile(r"^[A-Za-z0-9_.\\/>-]*$")


def scope_safe_copy(source: Path, dest: Path) -> int:
    """:func:`self_contained_copy` with every node name TensorFlow can take as a scope name.

    Keras refuses a name like ``Softmax@0`` (Paddle's exports) as a scope (``'Softmax@0' is not a
    valid scope name``), and onnx2tf names its layers after the nodes. Node names carry no meaning
    in ONNX, so other characters become ``_`` (made unique); tensor names are left as they are.

    Returns:
        How many nodes were renamed.
    """
    model = load_model(source)
    taken = {n.name for n in model.graph.node}
    renamed = 0
    for node in model.graph.node:
        if _SCOPE_NAME.match(node.name):
            continue
        base = re.sub(r"[^A-Za-z0-9_.\\/>-]", "_", node.name)
        name, k = base, 0
        while name in taken:
            k += 1
            name = f"{base}_{k}"
        taken.add(name)
        node.name = name
        renamed += 1
    save_model(model, dest)
    return renamed


def fix_batch(source: Path, dest: Path, batch: int = 1) -> list[str]:
    """Write ``source`` to ``dest`` with the batch of every graph input and output fixed to ``batch``.

    The batch is the first axis, and any axis named with the symbol an input has there (a state
    ``[2, batch, 128]``); only axes that are symbolic or unknown change; intermediate shapes are
    inferred again.

    Returns:
        The tensors whose batch axis was fixed (empty: the graph had no dynamic batch; ``dest`` is
        still written).

    Raises:
        ConversionError: ``source`` is not a readable ONNX model.
    """
    import onnx

    model = load_model(source)
    initializers = {i.name for i in model.graph.initializer}
    values = [
        v
        for v in [*model.graph.input, *model.graph.output]
        if v.name not in initializers and v.type.HasField("tensor_type")
    ]
    # the batch's symbol wherever it is (a state [2, batch, 128] has it on axis 1)
    symbols = {
        v.type.tensor_type.shape.dim[0].dim_param
        for v in model.graph.input
        if v in values and v.type.tensor_type.shape.dim and v.type.tensor_type.shape.dim[0].dim_param
    }
    fixed = []
    for value in values:
        dims = value.type.tensor_type.shape.dim
        for i, dim in enumerate(dims):
            if (i == 0 and not dim.HasField("dim_value")) or (dim.dim_param and dim.dim_param in symbols):
                dim.Clear()
                dim.dim_value = batch
                if value.name not in fixed:
                    fixed.append(value.name)
    if fixed:
        del model.graph.value_info[:]  # inferred again below, with the batch fixed
        model = onnx.shape_inference.infer_shapes(model)
    save_model(model, dest)
    return fixed


# --- repair passes ---------------------------------------------------------------------------


class _Graph:
    """Fresh names and constants for the nodes a pass adds to ``model``'s main graph.

    A pass adds nodes with :meth:`node` (they collect in :attr:`added`), then :meth:`replace` puts
    them where the node they stand for was.
    """

    def __init__(self, model) -> None:
        self.graph = model.graph
        self._names = {i.name for i in self.graph.initializer} | {v.name for v in self.graph.input}
        for node in self.graph.node:
            self._names.update(node.output)
            self._names.add(node.name)
        self.added: list = []

    def fresh(self, base: str) -> str:
        i = 0
        while f"{base}_{i}" in self._names:
            i += 1
        self._names.add(name := f"{base}_{i}")
        return name

    def constant(self, base: str, value: np.ndarray) -> str:
        from onnx import numpy_helper

        name = self.fresh(base)
        self.graph.initializer.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def node(self, op: str, inputs: list[str], base: str, **attrs) -> str:
        from onnx import helper

        out = self.fresh(base)
        self.added.append(helper.make_node(op, inputs, [out], name=self.fresh(f"{base}_{op}"), **attrs))
        return out

    def replace(self, old, out: str) -> None:
        """Put the nodes added since the last call where ``old`` was; ``out`` stands for its output.

        The last added node (the one writing ``out``) takes ``old``'s output name, so every consumer
        and the graph's outputs still find it; the graph stays topologically sorted.
        """
        assert list(self.added[-1].output) == [out]
        self.added[-1].output[0] = old.output[0]
        nodes = list(self.graph.node)
        # Found by its output (unique in a graph): an earlier replace rebuilt the node list, so the
        # caller's node objects are copies by then.
        i = next(j for j, n in enumerate(nodes) if n.output[:1] == old.output[:1])
        del self.graph.node[:]
        self.graph.node.extend(nodes[:i] + self.added + nodes[i + 1 :])
        self.added = []


def _attrs(node) -> dict:
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _value_info(model, name: str):
    """The declared type of tensor ``name`` (after shape inference), or ``None``."""
    for value in [*model.graph.value_info, *model.graph.input, *model.graph.output]:
        if value.name == name and value.type.HasField("tensor_type"):
            return value.type.tensor_type
    return None


def _static_shape(model, name: str) -> list[int] | None:
    """The shape of tensor ``name``, -1 for unknown axes; ``None`` when its rank is unknown."""
    info = _value_info(model, name)
    if info is None or not info.HasField("shape"):
        return None
    return [d.dim_value if d.HasField("dim_value") else -1 for d in info.shape.dim]


def _initializer(model, name: str) -> np.ndarray | None:
    from onnx import numpy_helper

    for init in model.graph.initializer:
        if init.name == name:
            return numpy_helper.to_array(init)
    return None


def _dtype_of(model, name: str) -> np.dtype:
    from onnx.helper import tensor_dtype_to_np_dtype

    info = _value_info(model, name)
    if info is not None:
        return tensor_dtype_to_np_dtype(info.elem_type)
    init = _initializer(model, name)
    return init.dtype if init is not None else np.dtype("float32")


#: ``auto_pad`` values whose padding does not depend on the stride (``pads`` says it all).
_EXPLICIT_PADDING = (b"NOTSET", b"VALID")


def _prelu(model) -> int:
    g, count = _Graph(model), 0
    for node in [n for n in model.graph.node if n.op_type == "PRelu"]:
        x, slope = node.input[0], node.input[1]
        value = _initializer(model, slope)
        if value is not None and value.size == 1:
            continue  # one slope for every element: every converter handles it
        zero = g.constant("repair_zero", np.zeros((), dtype=_dtype_of(model, x)))
        pos = g.node("Max", [x, zero], "prelu_pos")
        neg = g.node("Min", [x, zero], "prelu_neg")
        g.replace(node, g.node("Add", [pos, g.node("Mul", [slope, neg], "prelu_scaled")], "prelu"))
        count += 1
    return count


def _dilated_strided_conv(model) -> int:
    g, count = _Graph(model), 0
    for node in [n for n in model.graph.node if n.op_type == "Conv"]:
        attrs = _attrs(node)
        strides, dilations = attrs.get("strides", []), attrs.get("dilations", [])
        if not any(s > 1 for s in strides) or not any(d > 1 for d in dilations):
            continue
        if attrs.get("auto_pad", b"NOTSET") not in _EXPLICIT_PADDING:
            continue  # SAME padding depends on the stride: not the same numbers at stride 1
        kept = {k: v for k, v in attrs.items() if k != "strides"}
        full = g.node("Conv", list(node.input), "conv_stride1", strides=[1] * len(strides), **kept)
        axes = list(range(2, 2 + len(strides)))
        bounds = [
            g.constant("slice_starts", np.zeros(len(axes), np.int64)),
            g.constant("slice_ends", np.full(len(axes), np.iinfo(np.int64).max, np.int64)),
            g.constant("slice_axes", np.array(axes, np.int64)),
            g.constant("slice_steps", np.array(strides, np.int64)),
        ]
        g.replace(node, g.node("Slice", [full, *bounds], "conv_strided"))
        count += 1
    return count


def _pool3d(model) -> int:
    g, count = _Graph(model), 0
    for node in [n for n in model.graph.node if n.op_type in ("MaxPool", "AveragePool")]:
        attrs = _attrs(node)
        kernel = attrs.get("kernel_shape", [])
        shape = _static_shape(model, node.input[0])
        if len(kernel) != 3 or shape is None or len(shape) != 5 or min(shape[1:]) < 1:
            continue  # not 3-D, or channels/depth/height/width not known
        if len(node.output) > 1 and node.output[1]:
            continue  # MaxPool's indices are used
        if (
            attrs.get("auto_pad", b"NOTSET") not in _EXPLICIT_PADDING
            or any(attrs.get("pads", []))
            or attrs.get("ceil_mode", 0)
            or any(d != 1 for d in attrs.get("dilations", [1]))
        ):
            continue
        (kd, kh, kw), (sd, sh, sw) = kernel, attrs.get("strides", [1, 1, 1])
        _, c, d, h, w = shape
        h2, w2, d2 = (h - kh) // sh + 1, (w - kw) // sw + 1, (d - kd) // sd + 1
        op = node.op_type
        extra = {"count_include_pad": attrs["count_include_pad"]} if "count_include_pad" in attrs else {}

        def reshaped(x: str, dims: list[int], base: str) -> str:
            return g.node("Reshape", [x, g.constant("pool_shape", np.array([0, *dims], np.int64))], base)

        slices = reshaped(node.input[0], [c * d, h, w], "pool_hw_in")
        hw = g.node(op, [slices], "pool_hw", kernel_shape=[kh, kw], strides=[sh, sw], **extra)
        depth = reshaped(hw, [c, d, h2 * w2], "pool_d_in")
        pooled = g.node(op, [depth], "pool_d", kernel_shape=[kd, 1], strides=[sd, 1], **extra)
        g.replace(node, reshaped(pooled, [c, d2, h2, w2], "pool3d"))
        count += 1
    return count


#: Abramowitz & Stegun 7.1.26: erf(x) = 1 - t(a1 + t(a2 + t(a3 + t(a4 + t a5)))) exp(-x^2) for
#: x >= 0, t = 1 / (1 + p x); absolute error under 1.5e-7 everywhere (odd: erf(-x) = -erf(x)).
_ERF_P = 0.3275911
_ERF_A = (0.254829592, -0.284496736, 1.421413741, -1.453152027, 1.061405429)


def _erf(model) -> int:
    g, count = _Graph(model), 0
    consts: dict[np.dtype, tuple[str, str, list[str]]] = {}  # dtype -> one, p, [a1..a5]
    for node in [n for n in model.graph.node if n.op_type == "Erf"]:
        x = node.input[0]
        dtype = _dtype_of(model, x)
        if dtype.kind != "f":
            continue
        if dtype not in consts:
            consts[dtype] = (
                g.constant("erf_one", np.asarray(1.0, dtype)),
                g.constant("erf_p", np.asarray(_ERF_P, dtype)),
                [g.constant(f"erf_a{i + 1}", np.asarray(a, dtype)) for i, a in enumerate(_ERF_A)],
            )
        one, p, coefficients = consts[dtype]
        a = g.node("Abs", [x], "erf_abs")
        t = g.node("Div", [one, g.node("Add", [one, g.node("Mul", [a, p], "erf_pa")], "erf_den")], "erf_t")
        poly = coefficients[-1]
        for c in reversed(coefficients[:-1]):  # Horner: a1 + t(a2 + t(a3 + t(a4 + t a5)))
            poly = g.node("Add", [c, g.node("Mul", [t, poly], "erf_tp")], "erf_poly")
        decay = g.node("Exp", [g.node("Neg", [g.node("Mul", [a, a], "erf_sq")], "erf_negsq")], "erf_exp")
        tail = g.node("Mul", [g.node("Mul", [t, poly], "erf_tpoly"), decay], "erf_tail")
        magnitude = g.node("Sub", [one, tail], "erf_mag")
        g.replace(node, g.node("Mul", [g.node("Sign", [x], "erf_sign"), magnitude], "erf"))
        count += 1
    return count


@dataclass(frozen=True)
class RepairPass:
    """One rewrite: ``apply`` changes a model in place and returns how many nodes it rewrote."""

    name: str
    summary: str
    apply: Callable[..., int]


#: Every repair pass, in the order they are applied.
REPAIR_PASSES: tuple[RepairPass, ...] = (
    RepairPass("prelu", "per-channel PRelu -> Max(x, 0) + slope * Min(x, 0)", _prelu),
    RepairPass(
        "dilated-strided-conv",
        "dilated + strided Conv -> stride-1 Conv, then Slice by the stride",
        _dilated_strided_conv,
    ),
    RepairPass("pool3d", "3-D MaxPool/AveragePool -> two 2-D pools (height/width, then depth)", _pool3d),
    RepairPass(
        "erf", "Erf (exact GELU) -> a polynomial in 1/(1 + p|x|) times exp(-x^2), error < 1.5e-7", _erf
    ),
)


@dataclass
class RepairResult:
    """What :func:`repair` did: nodes rewritten per pass, and passes dropped with the reason."""

    applied: dict[str, int]
    dropped: dict[str, str]

    def extra(self) -> dict[str, dict]:
        """What an artifact records of it: ``repairs`` (pass -> nodes) and ``repairs_dropped`` (pass -> why)."""
        return ({"repairs": self.applied} if self.applied else {}) | (
            {"repairs_dropped": self.dropped} if self.dropped else {}
        )


def _probe(artifact: Artifact, batch: int) -> dict[str, np.ndarray]:
    """Seeded inputs with negative values too (a PRelu rewrite must hold on both sides of zero)."""
    rng = np.random.default_rng(0)
    return {
        t.name: rng.standard_normal(t.concrete_shape(batch)).astype(t.dtype)
        if np.dtype(t.dtype).kind == "f"
        else rng.integers(0, 2, size=t.concrete_shape(batch)).astype(t.dtype)
        for t in artifact.spec.inputs
    }


def _differs(expected: dict, got: dict) -> str | None:
    for name, want in expected.items():
        have = got.get(name)
        if have is None or np.shape(have) != np.shape(want):
            return f"output {name!r}: shape {np.shape(have)} instead of {np.shape(want)}"
        scale = max(1.0, float(np.max(np.abs(want))) if np.size(want) else 1.0)
        worst = float(np.max(np.abs(np.asarray(have, np.float64) - want))) if np.size(want) else 0.0
        if not worst <= 1e-5 * scale:  # NaN-safe
            return f"output {name!r} differs by {worst:.3g}"
    return None


def repair(
    onnx: Artifact,
    dest: Path,
    run_with: RuntimeOpener,
    passes: tuple[RepairPass, ...] = REPAIR_PASSES,
    batch: int = 2,
) -> RepairResult:
    """Write ``onnx`` to ``dest`` with every pass of ``passes`` that applies, each checked.

    A pass is kept only if the graph it rewrote computes the original's outputs (on seeded random
    inputs, through ``run_with``: ONNX Runtime, or the reference evaluator where it has no kernel)
    and passes the ONNX checker; otherwise it is undone and listed in ``dropped`` (so is every pass
    when no random inputs can be made for the graph, or it refuses them). ``batch``: the
    batch of those inputs (a graph whose batch is fixed takes only that one).

    Raises:
        ConversionError: ``onnx`` is not a readable model.
    """
    import onnx as onnx_lib

    model = onnx_lib.shape_inference.infer_shapes(load_model(onnx.path))
    unchecked = next((f"input {t.name!r} carries a shape" for t in onnx.spec.inputs if not t.invented), None)
    if unchecked is None:
        probe = _probe(onnx, batch)
        try:
            with run_with(onnx) as session:
                expected = session.run(probe)
        except (RuntimeError, ValueError) as e:
            unchecked = (
                f"the graph refuses random inputs ({type(e).__name__}: {str(e).splitlines()[0][:160]})"
            )
    result = RepairResult({}, {})
    dest = Path(dest)
    for p in passes:
        candidate = onnx_lib.ModelProto()
        candidate.CopyFrom(model)
        count = p.apply(candidate)
        if not count:
            continue
        if unchecked:  # a rewrite that cannot be checked is not made
            result.dropped[p.name] = f"not checked: {unchecked}"
            continue
        try:
            onnx_lib.checker.check_model(candidate)
            save_model(candidate, dest)
            with run_with(onnx.with_path(dest)) as session:
                why = _differs(expected, session.run(probe))
        except (onnx_lib.checker.ValidationError, EnvironmentProblem, RuntimeError, ValueError) as e:
            why = f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"
        if why:
            result.dropped[p.name] = why
        else:
            model, result.applied[p.name] = candidate, count
    save_model(model, dest)
    return result
