"""Converters, one file per hop: ``torch_to_onnx``, ``onnx_to_saved_model`` (onnx2tf backend).

Never imports ``validation`` or ``pipeline``.
"""
