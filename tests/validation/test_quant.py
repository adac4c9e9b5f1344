"""Quantizing inputs and dequantizing outputs at a full-integer model's boundary."""

import numpy as np
import pytest

from onnxpipe.validation.quant import dequantize, is_quantized, quantize


def test_round_trip_is_within_half_a_step_inside_the_range():
    x = np.linspace(0.0, 1.0, 101, dtype=np.float32)
    q = quantize(x, np.int8, (1 / 255, -128))
    assert q.dtype == np.int8 and q.min() == -128 and q.max() == 127
    assert np.abs(dequantize(q, (1 / 255, -128)) - x).max() <= 0.5 / 255 + 1e-7


def test_values_beyond_the_range_saturate_instead_of_wrapping():
    q = quantize(np.array([-5.0, 5.0]), np.int8, (0.01, 0))
    assert q.tolist() == [-128, 127]
    q16 = quantize(np.array([-5.0, 5.0]), np.int16, (1e-4, 0))
    assert q16.tolist() == [-32768, 32767]


@pytest.mark.parametrize(
    ("dtype", "quantization", "expected"),
    [
        (np.int8, (0.1, 3), True),
        (np.int16, (1e-4, 0), True),
        (np.float32, (0.0, 0), False),
        (np.int8, (0.0, 0), False),
    ],
)
def test_only_integer_tensors_with_a_scale_are_quantized(dtype, quantization, expected):
    assert is_quantized(dtype, quantization) is expected


def test_float_and_unscaled_tensors_pass_through_unchanged():
    x = np.array([0.25, -1.5], dtype=np.float32)
    same = quantize(x, np.float32, (0.0, 0))
    assert same.dtype == np.float32 and np.array_equal(same, x)
    ids = np.array([3, 7], dtype=np.int64)
    assert dequantize(ids, (0.0, 0)) is ids
    assert dequantize(np.array([5, -3], dtype=np.int8), (0.5, 1)).tolist() == [2.0, -2.0]
