"""Model zoo, specs, bundled data, checkpoints and training.

This is the lowest layer: it never imports ``converters``, ``validation`` or ``pipeline``. Torch is
imported only by the functions that need it.
"""

from models.artifact import Artifact, Format, TensorBinding
from models.errors import OnnxpipeError
from models.registry import ARCHITECTURES, get_architecture
from models.spec import PRECISIONS, ModelSpec, TensorSpec, Tolerance

__all__ = [
    "ARCHITECTURES",
    "PRECISIONS",
    "Artifact",
    "Format",
    "ModelSpec",
    "OnnxpipeError",
    "TensorBinding",
    "TensorSpec",
    "Tolerance",
    "get_architecture",
]
