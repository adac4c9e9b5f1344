"""The onnx-tf 1.10 handlers it lacks and that are small: Squeeze-13, Unsqueeze-13 and Reshape-19.

Loaded by the onnx-tf worker, in the legacy environment only (it imports onnx_tf and TensorFlow
2.15), before it converts anything. onnx-tf 1.10 stops at Squeeze/Unsqueeze-11 (axes as an
attribute) and Reshape-14, so any graph exported at opset 13 or later fails on its first Squeeze.
:func:`install` adds the versions to onnx-tf's own handler classes and to its table of handled
versions (which ``missing_handlers`` reads):

- Squeeze-13 / Unsqueeze-13 take ``axes`` as an input instead of an attribute. Exporters write it
  as a constant, and the handlers read its value while the graph is built; where it is computed at
  run time, the output shape is computed from it (Squeeze) or the node is refused by name.
- Reshape-19 only adds types to Reshape-14: the same handler.
"""

import tensorflow as tf

__all__ = ["install"]


def _axes(node, tensor_dict, rank):
    """The node's ``axes`` input as sorted non-negative ints (``None``: not known until run time)."""
    value = tf.get_static_value(tensor_dict[node.inputs[1]])
    if value is None:
        return None
    return sorted(int(a) % rank for a in value.reshape(-1))


def _squeeze_13(cls, node, **kwargs):
    x = kwargs["tensor_dict"][node.inputs[0]]
    if len(node.inputs) < 2 or not node.inputs[1]:  # no axes: every dimension of size 1
        return [tf.squeeze(x)]
    rank = x.shape.rank
    axes = _axes(node, kwargs["tensor_dict"], rank) if rank is not None else None
    if axes is None:  # axes computed at run time: drop those dimensions from the shape
        given = tf.cast(tf.reshape(kwargs["tensor_dict"][node.inputs[1]], [-1]), tf.int32)
        dims = tf.rank(x)
        given = tf.math.floormod(given, dims)
        keep = tf.reduce_all(tf.not_equal(tf.range(dims)[:, None], given[None, :]), axis=1)
        return [tf.reshape(x, tf.boolean_mask(tf.shape(x), keep))]
    return [tf.squeeze(x, axis=axes)]


def _unsqueeze_13(cls, node, **kwargs):
    x = kwargs["tensor_dict"][node.inputs[0]]
    rank = x.shape.rank
    value = tf.get_static_value(kwargs["tensor_dict"][node.inputs[1]])
    if value is None or rank is None:
        raise ValueError(
            f"Unsqueeze-13 {node.name!r}: its axes are computed at run time; onnx-tf needs them constant"
        )
    out_rank = rank + value.size
    for axis in sorted(int(a) % out_rank for a in value.reshape(-1)):
        x = tf.expand_dims(x, axis=axis)
    return [x]


def install():
    """Add the handlers to onnx-tf (idempotent)."""
    from onnx_tf.handlers.backend.reshape import Reshape
    from onnx_tf.handlers.backend.squeeze import Squeeze
    from onnx_tf.handlers.backend.unsqueeze import Unsqueeze
    from onnx_tf.opset_version import backend_opset_version

    Squeeze.version_13 = classmethod(_squeeze_13)
    Unsqueeze.version_13 = classmethod(_unsqueeze_13)
    Reshape.version_19 = Reshape.version_14
    for op, version in (("Squeeze", 13), ("Unsqueeze", 13), ("Reshape", 19)):
        if version not in backend_opset_version[op]:
            backend_opset_version[op].append(version)
