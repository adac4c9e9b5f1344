"""Your model, not only ours: a model class from your code and your checkpoint, imported into a run.

``--model-class path/to/file.py:ClassName`` (or ``package.module:ClassName``) names the class;
``--model-kwargs`` its constructor's keyword arguments; ``--input-shape`` (first axis: the batch,
made dynamic), ``--input-dtype`` and ``--input-name`` its inputs. The weights come as a state dict in
a ``.pt``/``.pth`` file (read with ``weights_only=True``: no code runs) or a ``.safetensors`` file.
A whole pickled module runs code when loaded, so it is refused unless ``--trust-pickle`` is given.

Importing writes an onnxpipe checkpoint (state dict, interface, the class reference and its
arguments) into the run directory, so every later stage works as with a zoo model. A checkpoint
never makes onnxpipe import code on its own: rebuilding a user model needs the class reference to
be passed again (``trust``), and a checkpoint naming another class is refused.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from onnxpipe.models.errors import CheckpointError, InputFileError, UsageError
from onnxpipe.models.spec import TensorSpec
from onnxpipe.models.weights import fit_state_dict

__all__ = [
    "USER_MODEL",
    "UserModel",
    "build_user_model",
    "canonical_class_ref",
    "load_user_class",
    "trust",
]

#: The ``model`` name of an imported checkpoint (its class is in ``model_class``).
USER_MODEL = "user"
_TRUSTED: set[str] = set()
_INTEGER = ("int8", "int16", "int32", "int64", "uint8")


@dataclass(frozen=True)
class UserModel:
    """How to build and feed a user's model.

    Attributes:
        class_ref: ``file.py:ClassName`` or ``package.module:ClassName``.
        kwargs: Keyword arguments of the class's constructor.
        input_shapes: One shape per input, batch first (the batch axis becomes dynamic).
        input_dtypes: One dtype per input (one for all when a single one is given).
        input_names: One name per input (default ``input``, or ``input_0``, ``input_1``...).
        value_range: Range of input values for probes and random validation inputs (token ids:
            ``0,VOCAB``); required for integer inputs.
        output_names: One name per output (default ``output``, or ``output_0``, ``output_1``...).
        input_kinds: Per input, what it is besides data (``"attention_mask"``) or ``None`` (empty:
            all data).
    """

    class_ref: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    input_shapes: tuple[tuple[int, ...], ...] = ()
    input_dtypes: tuple[str, ...] = ("float32",)
    input_names: tuple[str, ...] = ()
    value_range: tuple[float, float] | None = None
    output_names: tuple[str, ...] = ()
    input_kinds: tuple[str | None, ...] = ()

    def __post_init__(self) -> None:
        if not self.input_shapes:
            raise UsageError("--model-class needs --input-shape (e.g. --input-shape 1,3,224,224)")
        n = len(self.input_shapes)
        if any(len(s) < 1 or any(d < 1 for d in s) for s in self.input_shapes):
            raise UsageError(
                f"--input-shape: every dimension must be a positive integer, got {self.input_shapes}"
            )
        if len(self.input_dtypes) not in (1, n):
            raise UsageError(f"--input-dtype: give one, or one per input ({n}), got {len(self.input_dtypes)}")
        for dtype in self.input_dtypes:
            try:
                np.dtype(dtype)
            except TypeError:
                raise UsageError(f"--input-dtype: {dtype!r} is not a dtype (e.g. float32, int64)") from None
        if self.input_names and len(self.input_names) != n:
            raise UsageError(f"--input-name: give one per input ({n}), got {len(self.input_names)}")
        if len(set(self.input_names)) != len(self.input_names):
            raise UsageError(f"--input-name: names must differ, got {list(self.input_names)}")
        if self.value_range is None and any(np.dtype(d).name in _INTEGER for d in self.input_dtypes):
            raise UsageError("integer inputs need --value-range LO,HI (token ids: 0,VOCAB_SIZE)")
        if self.value_range is not None and not self.value_range[0] < self.value_range[1]:
            raise UsageError(f"--value-range: LO must be below HI, got {list(self.value_range)}")
        if self.input_kinds and len(self.input_kinds) != n:
            raise UsageError(f"input kinds: give one per input ({n}), got {len(self.input_kinds)}")

    def inputs(self) -> tuple[TensorSpec, ...]:
        """The input tensors, batch axis dynamic."""
        n = len(self.input_shapes)
        names = self.input_names or (("input",) if n == 1 else tuple(f"input_{i}" for i in range(n)))
        dtypes = self.input_dtypes * n if len(self.input_dtypes) == 1 else self.input_dtypes
        kinds = self.input_kinds or (None,) * n
        return tuple(
            TensorSpec(
                name,
                ("batch", *shape[1:]),
                np.dtype(dtype).name,
                "NCHW" if len(shape) == 4 else None,
                kind,
            )
            for name, shape, dtype, kind in zip(names, self.input_shapes, dtypes, kinds, strict=True)
        )


def trust(class_ref: str) -> None:
    """Allow this process to import ``class_ref`` when rebuilding a checkpoint that names it."""
    _TRUSTED.add(canonical_class_ref(class_ref))


def canonical_class_ref(class_ref: str) -> str:
    """``file.py:Class`` with the file made absolute; ``module:Class`` as given."""
    target, sep, name = class_ref.rpartition(":")
    if not sep or not target or not name:
        raise UsageError(
            f"--model-class: got {class_ref!r}, expected path/to/file.py:ClassName or package.module:ClassName"
        )
    if target.endswith(".py"):
        return f"{Path(target).resolve()}:{name}"
    return class_ref


def _importable_from(folder: Path) -> None:
    """Put ``folder`` first on ``sys.path`` (once), so the user's own packages import by their names.

    onnxpipe's packages live under ``onnxpipe.*``: a user package called ``models`` is the user's.
    """
    entry = str(folder.resolve())
    if entry not in sys.path:
        sys.path.insert(0, entry)


def load_user_class(class_ref: str) -> type:
    """Import the class ``class_ref`` names.

    Raises:
        UsageError: Malformed reference, a module or class that does not exist, or not a torch Module.
        InputFileError: The file does not exist or fails to import.
    """
    import torch

    target, _, name = canonical_class_ref(class_ref).rpartition(":")
    if target.endswith(".py"):
        path = Path(target)
        if not path.is_file():
            raise InputFileError(path, "no such file (from --model-class)")
        _importable_from(path.parent)  # as `python file.py` would: its own folder's packages import
        module_name = f"onnxpipe_user_{hashlib.sha1(str(path).encode()).hexdigest()[:12]}"
        module = sys.modules.get(module_name)
        if module is None:
            spec = importlib.util.spec_from_file_location(module_name, path)
            module = importlib.util.module_from_spec(spec)
            sys.modules[module_name] = module
            try:
                spec.loader.exec_module(module)
            except Exception as e:
                del sys.modules[module_name]
                raise InputFileError(path, f"failed to import ({type(e).__name__}: {e})") from e
    else:
        _importable_from(Path.cwd())  # as `python -m` would: the current folder's packages import
        try:
            module = importlib.import_module(target)
        except ImportError as e:
            raise UsageError(f"--model-class: cannot import module {target!r} ({e})") from e
    cls = getattr(module, name, None)
    if cls is None:
        public = sorted(k for k, v in vars(module).items() if isinstance(v, type) and not k.startswith("_"))
        raise UsageError(
            f"--model-class: {target} has no {name!r} (classes there: {', '.join(public) or 'none'})"
        )
    if not (isinstance(cls, type) and issubclass(cls, torch.nn.Module)):
        raise UsageError(f"--model-class: {name!r} in {target} is not a torch.nn.Module subclass")
    return cls


def build_user_model(
    class_ref: str, kwargs: dict[str, Any], state: dict[str, Any] | None, where: Path | str
) -> Any:
    """Instantiate a trusted user class with ``kwargs`` and load ``state`` into it (eval mode).

    onnxpipe's own classes (``onnxpipe.models.hf:HuggingFaceModel``) need no trust: they are not user code.

    Raises:
        CheckpointError: The class was not trusted in this process (pass ``--model-class``).
        UsageError: The constructor refused ``kwargs``.
    """
    if canonical_class_ref(class_ref) not in _TRUSTED and not class_ref.startswith("onnxpipe."):
        raise CheckpointError(
            where,
            f"was imported from user model class {class_ref}; onnxpipe imports code only when told to: "
            f"pass --model-class {class_ref}",
        )
    cls = load_user_class(class_ref)
    try:
        model = cls(**kwargs)
    except TypeError as e:
        raise UsageError(f"--model-kwargs {json.dumps(kwargs)}: {cls.__name__}() refused them ({e})") from e
    if state is not None:
        fit_state_dict(model, state, where, cls.__name__)
    return model.eval()
