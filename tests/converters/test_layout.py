import numpy as np
import pytest

from onnxpipe.converters.layout import bind_tensors, channels_last_perm
from onnxpipe.models.errors import ConversionError
from onnxpipe.models.spec import TensorSpec


def test_channels_last_perm():
    assert channels_last_perm(3) == (0, 2, 1)
    assert channels_last_perm(4) == (0, 2, 3, 1)
    assert channels_last_perm(5) == (0, 2, 3, 4, 1)


def test_nchw_input_binds_as_nhwc_and_round_trips():
    ref = TensorSpec("input", ("batch", 1, 8, 8), layout="NCHW")
    (b,) = bind_tensors([ref], [{"name": "input", "shape": [-1, 8, 8, 1]}], channels_last=True)
    assert (b.perm, b.layout) == ((0, 2, 3, 1), "NHWC")
    x = np.arange(2 * 8 * 8, dtype=np.float32).reshape(2, 1, 8, 8)
    assert b.to_artifact(x).shape == (2, 8, 8, 1)
    np.testing.assert_array_equal(b.to_reference(b.to_artifact(x)), x)


def test_ncw_input_binds_as_nwc():
    ref = TensorSpec("seq", ("batch", 4, 16), layout="NCW")
    (b,) = bind_tensors([ref], [{"name": "seq", "shape": [-1, 16, 4]}], channels_last=True)
    assert (b.perm, b.layout) == ((0, 2, 1), "NWC")


def test_two_d_tensors_keep_their_layout_and_bind_by_position_when_renamed():
    ref = TensorSpec("logits", ("batch", 10))
    (b,) = bind_tensors(
        [ref], [{"name": "Identity", "shape": [-1, 10]}], channels_last=True, match_names=False
    )
    assert (b.name, b.artifact_name, b.perm) == ("logits", "Identity", None)


def test_ambiguous_shape_follows_the_converters_rule():
    ref = TensorSpec("x", ("batch", 8, 8, 8), layout="NCHW")
    (moved,) = bind_tensors([ref], [{"name": "x", "shape": [-1, 8, 8, 8]}], channels_last=True)
    (kept,) = bind_tensors([ref], [{"name": "x", "shape": [-1, 8, 8, 8]}], channels_last=False)
    assert moved.perm == (0, 2, 3, 1) and kept.perm is None


def test_shape_that_fits_no_layout_is_an_error():
    ref = TensorSpec("input", ("batch", 1, 8, 8))
    with pytest.raises(ConversionError, match=r"tensor 'input'.*\[-1, 7, 8, 1\]"):
        bind_tensors([ref], [{"name": "input", "shape": [-1, 7, 8, 1]}], channels_last=True)
    with pytest.raises(ConversionError, match="the artifact has 2 tensors"):
        bind_tensors([ref], [{"name": "a", "shape": [1]}, {"name": "b", "shape": [1]}], channels_last=True)
