"""Model zoo, specs, bundled data, checkpoints and training.

This is the lowest layer: it never imports ``converters``, ``validation`` or ``pipeline``. Torch is
imported only by the functions that need it.
"""

from onnxpipe.models.artifact import Artifact, Format, TensorBinding
from onnxpipe.models.errors import OnnxpipeError
from onnxpipe.models.registry import ZOO, get_architecture
from onnxpipe.models.spec import PRECISIONS, ModelSpec, TensorSpec, Tolerance

__all__ = [
    "PRECISIONS",
    "ZOO",
    "Artifact",
    "Format",
    "ModelSpec",
    "OnnxpipeError",
    "TensorBinding",
    "TensorSpec",
    "Tolerance",
    "get_architecture",
]
