"""Weights in, weights checked: read a user's weight file, load a state dict strictly.

The one strict loader (:func:`fit_state_dict`) serves zoo checkpoints and user models alike.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

from onnxpipe.models.errors import CheckpointError

__all__ = ["fit_state_dict", "read_weights"]


def fit_state_dict(model: Any, state: dict[str, Any], where: Path | str, what: str) -> None:
    """Load ``state`` into ``model`` strictly, naming missing and unexpected keys and shape mismatches.

    Raises:
        CheckpointError: ``state`` does not fit ``what`` (e.g. ``architecture 'cnn'``).
    """
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [
        f"{k}: {tuple(state[k].shape)} vs {tuple(v.shape)}"
        for k, v in own.items()
        if k in state and tuple(state[k].shape) != tuple(v.shape)
    ]
    parts = []
    if missing:
        parts.append(f"missing keys {missing}")
    if unexpected:
        parts.append(f"unexpected keys {unexpected}")
    if shapes:
        parts.append(f"shape mismatch (checkpoint vs model) {shapes}")
    if parts:
        raise CheckpointError(where, f"does not fit {what}: " + "; ".join(parts))
    model.load_state_dict(state)


def read_weights(path: Path, trust_pickle: bool = False) -> Any:
    """The weights in ``path``: a state dict, or a whole module only with ``trust_pickle``.

    ``.pt``/``.pth`` files are read with ``weights_only=True``; ``.safetensors`` with safetensors. A
    ``.pt`` dict that wraps its state dict (``{"state_dict": ...}`` or ``{"model": ...}``, as many
    training scripts save) is unwrapped.

    Raises:
        CheckpointError: Unreadable, or a pickled module without ``trust_pickle``.
    """
    import torch

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(path, "no such file")
    if path.suffix.lower() == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except (SafetensorError, OSError, ValueError) as e:
            raise CheckpointError(path, f"not a readable safetensors file ({e})") from e
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        if not trust_pickle:
            raise CheckpointError(
                path,
                "holds pickled objects (a whole module?), and unpickling runs code: refused. Save "
                "model.state_dict() instead, or pass --trust-pickle if you trust this file",
            ) from e
        try:
            payload = torch.load(path, map_location="cpu", weights_only=False)
        except Exception as e2:  # the pickle names its classes by module: they must be importable here
            raise CheckpointError(
                path,
                f"cannot be unpickled ({type(e2).__name__}: {e2}); a pickled module needs its class "
                "importable under the module name it was saved from (or save model.state_dict())",
            ) from e2
    except Exception as e:  # torch.load raises many types on foreign bytes
        raise CheckpointError(path, f"not a readable PyTorch file ({type(e).__name__}: {e})") from e
    if isinstance(payload, torch.nn.Module):
        return payload
    if isinstance(payload, dict):
        for key in ("state_dict", "model_state_dict", "model"):
            if isinstance(payload.get(key), dict):
                return payload[key]
        if payload and all(isinstance(v, torch.Tensor) for v in payload.values()):
            return payload
    raise CheckpointError(path, f"holds no state dict (got {type(payload).__name__})")
