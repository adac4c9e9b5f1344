"""Settings baked in and the If branches they choose taken (Silero VAD's ``sr``)."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from onnxpipe.converters.branches import bake_values


def _branch(name: str, factor: float):
    k = numpy_helper.from_array(np.array(factor, np.float32), f"{name}_k")
    out = helper.make_tensor_value_info(f"{name}_y", TensorProto.FLOAT, None)
    return helper.make_graph([helper.make_node("Mul", ["x", k.name], [out.name])], name, [], [out], [k])


def _model():
    """``y = x * (2 if sr == 16000 else 3)``, then ``* (5 if x.shape[1] == 4 else 7)``."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])
    sr = helper.make_tensor_value_info("sr", TensorProto.INT64, [])
    y = helper.make_tensor_value_info("z", TensorProto.FLOAT, ["batch", 4])
    consts = [
        numpy_helper.from_array(np.array(16000, np.int64), "rate"),
        numpy_helper.from_array(np.array(1, np.int64), "one"),
        numpy_helper.from_array(np.array(4, np.int64), "four"),
        numpy_helper.from_array(np.array(5.0, np.float32), "five"),
        numpy_helper.from_array(np.array(7.0, np.float32), "seven"),
    ]
    then_, else_ = _branch("then", 2.0), _branch("else", 3.0)
    size_then = helper.make_graph(
        [helper.make_node("Mul", ["y", "five"], ["s5"])],
        "s_then",
        [],
        [helper.make_tensor_value_info("s5", TensorProto.FLOAT, None)],
    )
    size_else = helper.make_graph(
        [helper.make_node("Mul", ["y", "seven"], ["s7"])],
        "s_else",
        [],
        [helper.make_tensor_value_info("s7", TensorProto.FLOAT, None)],
    )
    nodes = [
        helper.make_node("Equal", ["sr", "rate"], ["is16k"]),
        helper.make_node("If", ["is16k"], ["y"], then_branch=then_, else_branch=else_, name="by_rate"),
        helper.make_node("Shape", ["x"], ["shape"]),
        helper.make_node("Gather", ["shape", "one"], ["width"], axis=0),
        helper.make_node("Equal", ["width", "four"], ["is4"]),
        helper.make_node("If", ["is4"], ["z"], then_branch=size_then, else_branch=size_else, name="by_width"),
    ]
    model = helper.make_model(
        helper.make_graph(nodes, "g", [x, sr], [y], consts), opset_imports=[helper.make_opsetid("", 17)]
    )
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def _run(model, feeds):
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, feeds)[0]


def test_a_baked_setting_and_a_fixed_size_take_their_branches_and_compute_the_same():
    model = _model()
    x = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    want = _run(model, {"x": x, "sr": np.array(16000, np.int64)})
    np.testing.assert_allclose(want, x * 2 * 5, rtol=1e-6)
    baked = _model()
    notes = bake_values(baked, {"sr": np.array(16000, np.int64)})
    assert notes == [
        "sr = 16000 baked in",
        "If 'by_rate': then_branch taken",
        "If 'by_width': then_branch taken",
    ]
    assert [i.name for i in baked.graph.input] == ["x"]
    assert not any(n.op_type == "If" for n in baked.graph.node)
    onnx.checker.check_model(baked)
    np.testing.assert_array_equal(_run(baked, {"x": x}), want)
    other = _model()
    assert bake_values(other, {"sr": np.array(8000, np.int64)})[1] == "If 'by_rate': else_branch taken"
    np.testing.assert_allclose(_run(other, {"x": x}), x * 3 * 5, rtol=1e-6)


def test_an_if_on_a_value_of_the_input_stays():
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])
    zero = numpy_helper.from_array(np.array(0.0, np.float32), "zero")
    nodes = [
        helper.make_node("ReduceSum", ["x"], ["total"], keepdims=0),
        helper.make_node("Greater", ["total", "zero"], ["positive"]),
        helper.make_node(
            "If", ["positive"], ["y"], then_branch=_branch("a", 2.0), else_branch=_branch("b", 3.0)
        ),
    ]
    model = helper.make_model(
        helper.make_graph(nodes, "g", [x], [y], [zero]), opset_imports=[helper.make_opsetid("", 17)]
    )
    assert bake_values(model, {}) == []
    assert any(n.op_type == "If" for n in model.graph.node)
