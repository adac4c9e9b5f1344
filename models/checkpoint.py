"""onnxpipe checkpoints: a state dict plus everything needed to rebuild and validate the model.

A checkpoint is a plain dict of tensors and primitive values, loadable with
``torch.load(path, weights_only=True)``: loading one never runs code.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from models.errors import CheckpointError
from models.fs import atomic_path
from models.registry import get_architecture
from models.spec import ModelSpec

__all__ = [
    "CHECKPOINT_FORMAT",
    "Checkpoint",
    "fit_state_dict",
    "load_checkpoint",
    "load_model",
    "save_checkpoint",
]

CHECKPOINT_FORMAT = "onnxpipe-checkpoint/1"
_REQUIRED = ("format", "model", "state_dict", "spec")


@dataclass
class Checkpoint:
    """A loaded checkpoint.

    Attributes:
        model: Architecture name in the registry.
        state_dict: Parameters and buffers.
        spec: The model's interface.
        model_kwargs: Keyword arguments of the architecture's ``build`` (or the user class).
        model_class: For an imported user model (``model == "user"``): its class reference.
        train_config: The training configuration that produced it.
        metrics: Final training metrics (e.g. validation accuracy).
    """

    model: str
    state_dict: dict[str, Any]
    spec: ModelSpec
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    model_class: str | None = None
    train_config: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    path: Path | None = field(default=None, compare=False)  # where it was loaded from (not saved)


def save_checkpoint(ckpt: Checkpoint, path: str | Path) -> Path:
    """Write ``ckpt`` atomically and return its path."""
    import torch

    payload = {
        "format": CHECKPOINT_FORMAT,
        "model": ckpt.model,
        "model_kwargs": ckpt.model_kwargs,
        "model_class": ckpt.model_class,
        "state_dict": ckpt.state_dict,
        "spec": ckpt.spec.to_dict(),
        "train_config": ckpt.train_config,
        "metrics": ckpt.metrics,
    }
    path = Path(path)
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return path


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Load an onnxpipe checkpoint without running any code from it.

    Raises:
        CheckpointError: The file is missing, is not a PyTorch file, holds pickled code, or is not an
            onnxpipe checkpoint.
    """
    import torch

    path = Path(path)
    if not path.exists():
        raise CheckpointError(path, "no such file")
    if path.is_dir():
        raise CheckpointError(path, "is a folder, expected a checkpoint file (.pt)")
    if path.stat().st_size == 0:
        raise CheckpointError(path, "is empty")
    with path.open("rb") as f:
        magic = f.read(4)
    if not magic.startswith((b"PK\x03\x04", b"\x80")):  # torch's zip format, or a legacy pickle
        raise CheckpointError(
            path, "not a readable PyTorch checkpoint (neither a torch.save zip archive nor a pickle)"
        )
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(
            path, f"refused: it holds objects that only a full unpickle could load ({first})"
        ) from e
    except Exception as e:  # torch.load raises many types on foreign bytes (KeyError, RuntimeError, ...)
        raise CheckpointError(path, f"not a readable PyTorch checkpoint ({type(e).__name__}: {e})") from e
    if not isinstance(payload, dict) or any(k not in payload for k in _REQUIRED):
        got = sorted(payload) if isinstance(payload, dict) else type(payload).__name__
        raise CheckpointError(path, f"not an onnxpipe checkpoint: expected keys {list(_REQUIRED)}, got {got}")
    if payload["format"] != CHECKPOINT_FORMAT:
        raise CheckpointError(
            path, f"checkpoint format {payload['format']!r}, expected {CHECKPOINT_FORMAT!r}"
        )
    return Checkpoint(
        model=payload["model"],
        state_dict=payload["state_dict"],
        spec=ModelSpec.from_dict(payload["spec"]),
        model_kwargs=dict(payload.get("model_kwargs", {})),
        model_class=payload.get("model_class"),
        train_config=dict(payload.get("train_config", {})),
        metrics=dict(payload.get("metrics", {})),
        path=path,
    )


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


def load_model(source: str | Path | Checkpoint):
    """Rebuild the model of a checkpoint in eval mode.

    Raises:
        CheckpointError: The state dict does not fit the architecture; missing and unexpected keys and
            mismatched shapes are named.
    """
    ckpt = source if isinstance(source, Checkpoint) else load_checkpoint(source)
    where = ckpt.path or "checkpoint"
    if ckpt.model_class:
        from models.user import build_user_model

        return build_user_model(ckpt.model_class, ckpt.model_kwargs, ckpt.state_dict, where)
    model = get_architecture(ckpt.model).build(**ckpt.model_kwargs)
    fit_state_dict(model, ckpt.state_dict, where, f"architecture {ckpt.model!r}")
    return model.eval()
