"""SavedModel -> TFLite with TensorFlow's converter: dynamic-range and full-integer int8.

Full-integer quantization is calibrated with real samples (the caller passes training-split
inputs, already in the SavedModel's layout): never downloaded, never all-ones. Inputs and outputs
stay float32, so every runtime feeds an int8 file the same way as an fp32 one; the int8 tensors
inside are what the layer-wise search dequantizes.

This module needs only NumPy and TensorFlow: the conversion worker imports it by file.
"""

from __future__ import annotations

__all__ = ["QUANTIZED_PRECISIONS", "quantize"]

QUANTIZED_PRECISIONS = ("dynamic_int8", "int8")


def quantize(saved_model: str, dest: str, precision: str, calibration: dict | None = None) -> None:
    """Write ``dest``, a TFLite file of ``saved_model`` at ``precision``.

    Args:
        saved_model: SavedModel folder (serving_default signature).
        dest: Output .tflite path.
        precision: ``dynamic_int8`` (int8 weights, float activations) or ``int8`` (int8 weights and
            activations, float32 inputs and outputs).
        calibration: For ``int8``: signature input name -> array ``[N, ...]`` of representative inputs.
    """
    import tensorflow as tf

    if precision not in QUANTIZED_PRECISIONS:
        raise ValueError(f"precision {precision!r}: expected one of {QUANTIZED_PRECISIONS}")
    converter = tf.lite.TFLiteConverter.from_saved_model(saved_model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if precision == "int8":
        if not calibration:
            raise ValueError("int8 needs calibration samples")
        count = min(len(v) for v in calibration.values())

        def representative():
            for i in range(count):
                yield {name: value[i : i + 1] for name, value in calibration.items()}

        converter.representative_dataset = representative
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    with open(dest, "wb") as f:
        f.write(converter.convert())
