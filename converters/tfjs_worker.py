"""Subprocess worker: SavedModel -> TensorFlow.js graph model, in the tfjs environment (``.venv-tfjs``).

Standalone (stdlib + tensorflowjs and its TensorFlow 2.15; no onnxpipe imports): the
``tensorflowjs`` 4.22 converter imports ``tensorflow_decision_forests``, which is built for one
TensorFlow version, and jax/flax, when it loads, so it cannot live beside the main environment's
TensorFlow 2.21.

Served with the worker protocol (:mod:`onnxpipe.models.wire`: ``python wire.py tfjs_worker.py``).
A ``versions`` request answers the versions of the packages that shape its artifacts. A
``convert`` request holds ``saved_model`` (the folder), ``dest`` (the folder to write) and
``quantize`` (``None``, ``"float16"`` or ``"uint8"``: weight quantization); the reply holds the
model's signature as written in ``model.json``.
"""

import json
import os

# TensorFlow's oneDNN graph rewrites on x86 fuse ops into Intel-only kernels (a transformer's layer
# norm becomes _MklLayerNorm) that TensorFlow.js has no kernel for: the converter must see plain ops.
os.environ["TF_ENABLE_ONEDNN_OPTS"] = "0"


def _versions(names=("tensorflowjs", "tensorflow")):
    from package_versions import package_versions  # a sibling file

    return package_versions(names)


def _convert(req):
    import warnings

    warnings.simplefilter("ignore")
    from tensorflowjs.converters import tf_saved_model_conversion_v2 as tfjs

    quantize = req.get("quantize")
    tfjs.convert_tf_saved_model(
        req["saved_model"],
        req["dest"],
        signature_def="serving_default",
        saved_model_tags="serve",
        quantization_dtype_map={quantize: True} if quantize else None,
        weight_shard_size_bytes=4 * 1024 * 1024,
    )
    with open(os.path.join(req["dest"], "model.json")) as f:
        model = json.load(f)
    return {"signature": model.get("signature", {}), "versions": _versions()}


def handle(header, arrays, emit):
    """One request of the worker protocol."""
    if header.get("mode") == "versions":
        return {"versions": _versions(header.get("names") or ("tensorflowjs", "tensorflow"))}
    return _convert(header)
