"""The interface model: sample axes found, free sizes resolved (issue #25)."""

from __future__ import annotations

import numpy as np
import pytest

from onnxpipe.models.errors import UsageError
from onnxpipe.models.interface import (
    DEFAULT_SIZES,
    batch_axes,
    parse_input_shapes,
    resolve_sizes,
    unnamed_dim,
)
from onnxpipe.models.spec import ModelSpec, TensorSpec


def _spec(inputs, outputs=None):
    ins, outs = batch_axes(inputs, outputs or (TensorSpec("y", ("batch", 2)),))
    return ModelSpec("m", ins, outs, dataset=None)


def test_the_sample_axis_follows_the_batch_symbol_to_any_axis():
    spec = _spec(
        [
            TensorSpec("input", ("batch", "sequence")),
            TensorSpec("state", (2, "batch", 128)),
            TensorSpec("sr", (), "int64", kind="value"),
            TensorSpec("h", (1, 1, 128)),  # no batch: the state of the whole sequence, fed whole
        ],
        [TensorSpec("out", ("batch", 1)), TensorSpec("stateN", (2, "batch", 128))],
    )
    assert [t.batch_axis for t in spec.inputs] == [0, 1, None, None]
    assert [t.batch_axis for t in spec.outputs] == [0, 1]
    assert spec.inputs[1].sample_shape == (2, 128)
    x = np.arange(2 * 3 * 4).reshape(2, 3, 4)
    t = spec.inputs[1]
    np.testing.assert_array_equal(t.from_rows(t.to_rows(x)), x)
    assert t.to_rows(x).shape == (3, 2, 4)


def test_an_unnamed_batch_is_linked_through_each_tensors_first_unnamed_axis():
    q = unnamed_dim
    spec = _spec(
        [TensorSpec("input", (q("input", 0), q("input", 1))), TensorSpec("state", (2, q("state", 1), 128))]
    )
    assert [t.batch_axis for t in spec.inputs] == [0, 1]


def test_a_fixed_batch_is_found_by_its_size():
    spec = _spec([TensorSpec("input", (1, 576)), TensorSpec("state", (2, 1, 128))])
    assert [t.batch_axis for t in spec.inputs] == [0, 1]


def test_free_sizes_come_from_the_option_then_the_samples_then_the_defaults():
    spec = _spec(
        [
            TensorSpec("image", ("batch", 3, "height", "width")),
            TensorSpec("ids", ("batch", "tokens"), "int64"),
            TensorSpec("mask", ("batch", "tokens"), "int64"),
            TensorSpec("audio", ("batch", unnamed_dim("audio", 1))),
        ]
    )
    sized = resolve_sizes(spec)
    shapes = {t.name: t.shape for t in sized.spec.inputs}
    side, tokens, other = DEFAULT_SIZES["image side"], DEFAULT_SIZES["tokens"], DEFAULT_SIZES["other"]
    assert shapes == {
        "image": ("batch", 3, side, side),
        "ids": ("batch", tokens),
        "mask": ("batch", tokens),  # the same symbol, the same size
        "audio": ("batch", other),
    }
    assert sized.invented == ("image", "ids", "audio")
    sized = resolve_sizes(
        spec, {"image": (1, 3, 64, 48)}, {"ids": np.zeros((5, 7), np.int64), "audio": np.zeros((5, 512))}
    )
    shapes = {t.name: t.shape for t in sized.spec.inputs}
    assert shapes["image"] == ("batch", 3, 64, 48) and shapes["ids"] == shapes["mask"] == ("batch", 7)
    assert shapes["audio"] == ("batch", 512)
    assert "image axis 2 (height) = 64 (--input-shape)" in sized.chosen
    assert "audio axis 1 = 512 (your --inputs)" in sized.chosen


def test_input_shapes_that_do_not_fit_are_refused_by_name():
    spec = _spec([TensorSpec("image", ("batch", 3, "h", "w"))])
    with pytest.raises(UsageError, match=r"the model has no input 'x' \(inputs: image\)"):
        resolve_sizes(spec, {"x": (1, 3, 8, 8)})
    with pytest.raises(UsageError, match="3 sizes, and 'image' has 4 axes"):
        resolve_sizes(spec, {"image": (1, 8, 8)})
    with pytest.raises(UsageError, match="axis 1 of 'image' is fixed to 3"):
        resolve_sizes(spec, {"image": (1, 1, 8, 8)})
    assert parse_input_shapes(["x=1,3,640,640", "state=2,1,128"]) == {
        "x": (1, 3, 640, 640),
        "state": (2, 1, 128),
    }
    for bad in ("1,3,640,640", "x=1,a", "x=0,3", "=1"):
        with pytest.raises(UsageError, match="expected NAME=SIZES"):
            parse_input_shapes([bad])
    with pytest.raises(UsageError, match="given twice"):
        parse_input_shapes(["x=1", "x=2"])
