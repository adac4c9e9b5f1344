"""How the layers below the pipeline run a model: through a runtime they are handed.

Converters check what they make (the export against PyTorch, the layout a converter really used),
and that means running models. They never open an ONNX Runtime or LiteRT session of their own and
never import ``validation``: the pipeline hands them a :data:`RuntimeOpener`
(:func:`onnxpipe.validation.runtimes.open_runtime`), so the runtime layer's fallback (the ONNX
reference evaluator where ONNX Runtime has no kernel), its input checks, its layout bindings and
its thread control apply to every model onnxpipe runs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from typing import Protocol

import numpy as np

from onnxpipe.models.artifact import Artifact

__all__ = ["RuntimeOpener", "Session"]


class Session(Protocol):
    """A loaded artifact: inputs and outputs by the reference's names, in the reference's layout."""

    name: str

    def run(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run once on ``inputs``; outputs by the reference's names."""
        ...


#: Opens a session on an artifact (a context manager), choosing the runtime for its format.
RuntimeOpener = Callable[[Artifact], AbstractContextManager[Session]]
