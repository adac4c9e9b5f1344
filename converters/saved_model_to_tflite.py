"""SavedModel -> TFLite with TensorFlow's converter, at every precision.

- ``fp32``: float weights and activations.
- ``fp16``: float16 weights (dequantized at load), float activations and I/O.
- ``dynamic_int8``: int8 weights, float activations and I/O.
- ``int8``: full integer: int8 weights, activations, inputs and outputs (what integer-only
  accelerators and microcontrollers run).
- ``int16x8``: int16 activations, inputs and outputs, int8 weights (TFLite's 16x8 scheme: far less
  activation noise than int8, still integer-only).

Full-integer precisions are calibrated with real samples (the caller passes training-split inputs,
already in the SavedModel's layout): never downloaded, never all-ones. Runtimes quantize inputs and
dequantize outputs with each tensor's scale and zero point (:mod:`validation.quant`).

This module needs only NumPy and TensorFlow: the conversion workers import it by file, in the main
environment (after onnx2tf) and in the legacy one (after onnx-tf).
"""

from __future__ import annotations

__all__ = ["CALIBRATED_PRECISIONS", "QUANTIZED_PRECISIONS", "TFLITE_PRECISIONS", "convert"]

#: Every precision this module writes.
TFLITE_PRECISIONS = ("fp32", "fp16", "dynamic_int8", "int8", "int16x8")
#: Integer precisions (onnx2tf writes the float ones itself).
QUANTIZED_PRECISIONS = ("dynamic_int8", "int8", "int16x8")
#: Precisions that need calibration samples.
CALIBRATED_PRECISIONS = ("int8", "int16x8")


def convert(saved_model: str, dest: str, precision: str, calibration: dict | None = None) -> None:
    """Write ``dest``, a TFLite file of ``saved_model`` at ``precision``.

    Args:
        saved_model: SavedModel folder (serving_default signature).
        dest: Output .tflite path.
        precision: One of :data:`TFLITE_PRECISIONS`.
        calibration: For ``int8``/``int16x8``: signature input name -> array ``[N, ...]`` of
            representative inputs.
    """
    import tensorflow as tf

    if precision not in TFLITE_PRECISIONS:
        raise ValueError(f"precision {precision!r}: expected one of {TFLITE_PRECISIONS}")
    converter = tf.lite.TFLiteConverter.from_saved_model(saved_model)
    if precision != "fp32":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if precision == "fp16":
        converter.target_spec.supported_types = [tf.float16]
    if precision in CALIBRATED_PRECISIONS:
        if not calibration:
            raise ValueError(f"{precision} needs calibration samples")
        count = min(len(v) for v in calibration.values())

        def representative():
            for i in range(count):
                yield {name: value[i : i + 1] for name, value in calibration.items()}

        converter.representative_dataset = representative
        if precision == "int8":
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            io_type = tf.int8
        else:
            converter.target_spec.supported_ops = [
                tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8
            ]
            io_type = tf.int16
        converter.inference_input_type = io_type
        converter.inference_output_type = io_type
    with open(dest, "wb") as f:
        f.write(converter.convert())
