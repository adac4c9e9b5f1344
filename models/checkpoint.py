"""onnxpipe checkpoints: a state dict plus everything needed to rebuild and validate the model.

A checkpoint is a plain dict of tensors and primitive values, loadable with
``torch.load(path, weights_only=True)``: loading one never runs code.
"""

from __future__ import annotations

import pickle
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from onnxpipe.models.errors import CheckpointError, UsageError
from onnxpipe.models.fs import atomic_path
from onnxpipe.models.registry import get_architecture
from onnxpipe.models.spec import ModelSpec, TensorSpec, random_values
from onnxpipe.models.user import (
    USER_MODEL,
    UserModel,
    build_user_model,
    canonical_class_ref,
    load_user_class,
    trust,
)
from onnxpipe.models.weights import fit_state_dict, read_weights

__all__ = [
    "CHECKPOINT_FORMAT",
    "Checkpoint",
    "import_checkpoint",
    "import_state",
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
    try:  # a damaged file can still unpickle, into a record missing keys or holding other types
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
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise CheckpointError(
            path, f"not a valid onnxpipe checkpoint: its record does not read ({type(e).__name__}: {e})"
        ) from e


def load_model(source: str | Path | Checkpoint):
    """Rebuild the model of a checkpoint in eval mode.

    Raises:
        CheckpointError: The state dict does not fit the architecture; missing and unexpected keys and
            mismatched shapes are named.
    """
    ckpt = source if isinstance(source, Checkpoint) else load_checkpoint(source)
    where = ckpt.path or "checkpoint"
    if ckpt.model_class:
        return build_user_model(ckpt.model_class, ckpt.model_kwargs, ckpt.state_dict, where)
    model = get_architecture(ckpt.model).build(**ckpt.model_kwargs)
    fit_state_dict(model, ckpt.state_dict, where, f"architecture {ckpt.model!r}")
    return model.eval()


def _probe(inputs: Sequence[TensorSpec], value_range: tuple[float, float], batch: int) -> list[Any]:
    import torch

    rng = np.random.default_rng(0)
    return [torch.from_numpy(random_values(t, t.concrete_shape(batch), value_range, rng)) for t in inputs]


def import_checkpoint(weights: Path, user: UserModel, dest: Path, trust_pickle: bool = False) -> Path:
    """Build the user's model, load ``weights`` into it, and write an onnxpipe checkpoint to ``dest``.

    The outputs are discovered by running the model once at batch 2 (``output`` or ``output_0``...,
    batch axis dynamic).

    Raises:
        UsageError: ``dest`` is ``weights`` itself, or the model fails on the given input shapes.
        CheckpointError: Unreadable weights or keys that do not fit (named).
    """
    import torch

    weights, dest = Path(weights), Path(dest)
    if dest.resolve() == weights.resolve():
        raise UsageError(f"{weights}: importing it would overwrite it; give --out another folder")
    trust(user.class_ref)
    loaded = read_weights(weights, trust_pickle)
    if isinstance(loaded, torch.nn.Module):  # --trust-pickle: the module carries the weights
        cls = load_user_class(user.class_ref)
        if type(loaded).__name__ != cls.__name__:
            raise CheckpointError(weights, f"holds a {type(loaded).__name__}, not a {cls.__name__}")
        loaded = loaded.state_dict()
    return import_state(loaded, user, dest, weights)


def import_state(state: dict[str, Any], user: UserModel, dest: Path, source: Path) -> Path:
    """Build the user's model with ``state``, find its outputs, and write an onnxpipe checkpoint to ``dest``.

    Raises:
        UsageError: The model fails on the given input shapes, or returns something else than tensors.
        CheckpointError: Keys that do not fit (named).
    """
    import torch

    # Rebuilt from the class itself, so later stages (which rebuild it the same way) get this model.
    model = build_user_model(user.class_ref, user.kwargs, state, source)
    inputs = user.inputs()
    value_range = user.value_range or (0.0, 1.0)
    try:
        with torch.no_grad():
            out = model(*_probe(inputs, value_range, batch=2))
    except Exception as e:  # the user's forward: any error means the shapes or dtypes do not fit
        shapes = ", ".join(f"{t.name} {list(t.concrete_shape(2))} {t.dtype}" for t in inputs)
        raise UsageError(f"{type(model).__name__} fails on inputs {shapes}: {type(e).__name__}: {e}") from e
    outs = out if isinstance(out, (tuple, list)) else (out,)
    if not outs or not all(isinstance(o, torch.Tensor) for o in outs):
        raise UsageError(f"{type(model).__name__} must return a tensor or a tuple of tensors")
    names = user.output_names or (
        ("output",) if len(outs) == 1 else tuple(f"output_{i}" for i in range(len(outs)))
    )
    if len(names) != len(outs):
        raise UsageError(f"{type(model).__name__} returns {len(outs)} outputs, named {list(names)}")
    outputs = tuple(
        TensorSpec(n, ("batch", *o.shape[1:]), str(o.dtype).removeprefix("torch."))
        for n, o in zip(names, outs, strict=True)
    )
    spec = ModelSpec(type(model).__name__, inputs, outputs, dataset=None, value_range=value_range)
    ckpt = Checkpoint(
        model=USER_MODEL,
        state_dict={k: v.detach().cpu() for k, v in state.items()},
        spec=spec,
        model_kwargs=dict(user.kwargs),
        model_class=canonical_class_ref(user.class_ref),
        train_config={"imported_from": str(Path(source).resolve())},
    )
    return save_checkpoint(ckpt, dest)
