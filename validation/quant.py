"""Quantized tensors at a runtime's boundary: float in, integer to the model, float out.

A full-integer TFLite file (``int8``, ``int16x8``) takes and gives integer tensors, each with its
scale and zero point (``real = (q - zero_point) * scale``). Runtimes quantize the reference's
float inputs and dequantize the outputs, so every artifact is compared in the reference's units.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["dequantize", "is_quantized", "quantize"]

_INTEGER = (np.int8, np.uint8, np.int16)


def is_quantized(dtype: np.dtype | type, quantization: Sequence[float]) -> bool:
    """Whether a tensor of ``dtype`` with ``(scale, zero_point)`` holds quantized values."""
    scale = quantization[0] if quantization else 0.0
    return np.dtype(dtype).type in _INTEGER and bool(scale)


def quantize(value: np.ndarray, dtype: np.dtype | type, quantization: Sequence[float]) -> np.ndarray:
    """``round(value / scale) + zero_point``, saturated to ``dtype``; other tensors are only cast."""
    if not is_quantized(dtype, quantization):
        return np.asarray(value).astype(dtype, copy=False)
    scale, zero = quantization[0], quantization[1]
    info = np.iinfo(dtype)
    q = np.round(np.asarray(value, dtype=np.float64) / scale) + zero
    return np.clip(q, info.min, info.max).astype(dtype)


def dequantize(value: np.ndarray, quantization: Sequence[float]) -> np.ndarray:
    """``(value - zero_point) * scale`` as float32 for a quantized tensor; other tensors unchanged."""
    value = np.asarray(value)
    if not is_quantized(value.dtype, quantization):
        return value
    return ((value.astype(np.float32) - quantization[1]) * quantization[0]).astype(np.float32)
