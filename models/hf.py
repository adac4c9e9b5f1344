"""Hugging Face models by folder: a ``save_pretrained`` folder imported as an onnxpipe checkpoint.

``onnxpipe convert path/to/model_dir`` (and ``export``) takes a folder holding
``config.json`` and its weights (``model.safetensors``, sharded or not, or ``pytorch_model.bin``;
:func:`onnxpipe.pipeline.artifacts.is_hf_folder` tells one, without importing torch).
The model is loaded with ``from_pretrained(..., local_files_only=True)`` from the class the config's
``architectures`` names: nothing is ever downloaded, and a folder whose config asks for remote code
(``auto_map``) is refused, as is an architecture this transformers does not have.

Its inputs come from the model's ``main_input_name``, named as transformers names them:
``input_ids`` (int64, ``[batch, --seq-len]``, token ids over the vocabulary; with
``--attention-mask`` also ``attention_mask``, int64, validated on right-padding masks: 1s then 0s,
at least one 1), ``pixel_values``
(float32, ``[batch, channels, --image-size, --image-size]``, the config's image size by default),
``input_values`` (raw audio, ``[batch, --seq-len]`` samples; its edge cases are signals, not
constant offsets) or ``input_features`` (Whisper's log-mel
frames, ``[batch, mel bins, 2 * max source positions]``). The output is one field of the model's
``ModelOutput``: the first one it returns (``logits`` for a task head, ``last_hidden_state`` for a
bare model) or ``--output NAME``.

The checkpoint names :class:`HuggingFaceModel` (onnxpipe's own wrapper, so no user code is imported)
with the config and those choices as its arguments; every later stage rebuilds the model from them
and the stored weights, offline.
"""

from __future__ import annotations

import inspect
import json
from dataclasses import dataclass
from pathlib import Path

import torch

from onnxpipe.models.errors import InputFileError, UsageError

__all__ = ["HF_CLASS", "HfOptions", "HuggingFaceModel", "hf_user_model"]

#: The class reference imported checkpoints name (onnxpipe's own code: trusted without --model-class).
HF_CLASS = "onnxpipe.models.hf:HuggingFaceModel"

_WEIGHTS = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)


def _transformers():
    try:
        import transformers
    except ImportError as e:  # pragma: no cover - pinned in the main environment
        raise UsageError("Hugging Face folders need transformers: run `make setup`") from e
    transformers.utils.logging.disable_progress_bar()  # "Loading weights" bars: onnxpipe says what it does
    return transformers


def _model_class(config: dict, folder: Path):
    """The transformers class the config's ``architectures`` names, refused with the reason."""
    if config.get("auto_map"):
        raise InputFileError(
            folder,
            "its config.json asks for remote code (auto_map); onnxpipe runs only transformers' own models",
        )
    names = config.get("architectures") or []
    if not names:
        raise InputFileError(folder, "config.json names no architectures (save it with save_pretrained)")
    transformers = _transformers()
    cls = getattr(transformers, names[0], None)
    if cls is None:
        raise InputFileError(
            folder,
            f"unknown architecture {names[0]!r}: transformers {transformers.__version__} has no such model",
        )
    return cls


class HuggingFaceModel(torch.nn.Module):
    """A transformers model from its config, called with positional inputs, returning one output field."""

    def __init__(self, config: dict, inputs: list[str], output: str):
        super().__init__()
        cls = _model_class(config, Path("config.json"))
        self.model = cls(cls.config_class.from_dict(config)).eval()
        self.inputs, self.output = list(inputs), output

    def forward(self, input_0, input_1=None, input_2=None):
        """The chosen output field for the inputs, given in the order of ``inputs``.

        Named parameters, not ``*args``: the exporters map dynamic axes onto the signature.
        """
        given = (input_0, input_1, input_2)[: len(self.inputs)]
        out = self.model(**dict(zip(self.inputs, given, strict=True)), return_dict=True)
        return out[self.output]


@dataclass(frozen=True)
class HfOptions:
    """``--seq-len``, ``--image-size``, ``--output``, ``--attention-mask``: how a model is fed and read."""

    seq_len: int | None = None
    image_size: int | None = None
    output: str | None = None
    attention_mask: bool = False

    def __post_init__(self) -> None:
        for flag, value in (("--seq-len", self.seq_len), ("--image-size", self.image_size)):
            if value is not None and value < 1:
                raise UsageError(f"{flag}: expected a positive integer, got {value}")


def _inputs(model, config: dict, options: HfOptions, folder: Path):
    """(names, shapes with batch 1, dtypes, value range, kinds) for the model's inputs."""
    name = getattr(model, "main_input_name", "input_ids")
    takes_mask = "attention_mask" in inspect.signature(model.forward).parameters
    if options.attention_mask and (name != "input_ids" or not takes_mask):
        raise UsageError(f"--attention-mask: {type(model).__name__} takes no attention_mask beside {name}")
    if name == "input_ids":
        vocab = config.get("vocab_size")
        if not vocab:
            raise InputFileError(folder, "a text model whose config.json has no vocab_size")
        length = options.seq_len or 16
        if options.attention_mask:  # 1s then 0s per row, beside ids over the vocabulary
            kinds = [None, "attention_mask"]
            return [name, "attention_mask"], [(1, length)] * 2, ["int64"] * 2, (0.0, float(vocab)), kinds
        return [name], [(1, length)], ["int64"], (0.0, float(vocab)), []
    if name == "pixel_values":
        size = options.image_size or config.get("image_size") or 224
        size = size[0] if isinstance(size, (list, tuple)) else size
        channels = config.get("num_channels", 3)
        return [name], [(1, channels, int(size), int(size))], ["float32"], (-1.0, 1.0), []
    if name == "input_values":
        return [name], [(1, options.seq_len or 16000)], ["float32"], (-1.0, 1.0), ["waveform"]
    if name == "input_features":
        frames = 2 * config.get("max_source_positions", 1500)
        return [name], [(1, config.get("num_mel_bins", 80), frames)], ["float32"], (-1.0, 1.0), []
    raise InputFileError(folder, f"onnxpipe does not know how to feed {name!r} (the model's main input)")


def hf_user_model(folder: Path, options: HfOptions | None = None):
    """Load the folder offline and describe it for import: (UserModel, state dict).

    Raises:
        InputFileError: No config or weights, weights that lack tensors of the model (transformers
            would initialize them at random), remote code, an unknown architecture, or a main input
            onnxpipe cannot feed.
        UsageError: ``--output`` names no field of the model's output.
    """
    from onnxpipe.models.user import UserModel

    folder, options = Path(folder), options or HfOptions()
    try:
        config = json.loads((folder / "config.json").read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise InputFileError(folder / "config.json", f"not readable JSON ({e})") from e
    cls = _model_class(config, folder)
    if not any((folder / w).is_file() for w in _WEIGHTS):
        raise InputFileError(folder, f"holds no weights ({', '.join(_WEIGHTS)})")
    try:
        model, info = cls.from_pretrained(
            folder, local_files_only=True, trust_remote_code=False, output_loading_info=True
        )
    except Exception as e:  # transformers names the key or file it could not read
        raise InputFileError(folder, f"{cls.__name__}.from_pretrained failed: {type(e).__name__}: {e}") from e
    missing = sorted(info.get("missing_keys") or [])
    if missing:  # transformers would fill them at random, and the random model would pass validation
        shown = ", ".join(missing[:4]) + (f" and {len(missing) - 4} more" if len(missing) > 4 else "")
        raise InputFileError(
            folder, f"its weights lack tensors {cls.__name__} needs ({shown}); they would be random"
        )
    model = model.eval()
    config = model.config.to_dict()  # complete: every default written out
    names, shapes, dtypes, value_range, kinds = _inputs(model, config, options, folder)
    assert len(names) <= 3, names  # HuggingFaceModel.forward takes up to three
    probe = [torch.ones(s, dtype=getattr(torch, d)) for s, d in zip(shapes, dtypes, strict=True)]
    with torch.no_grad():
        out = model(**dict(zip(names, probe, strict=True)), return_dict=True)
    fields = [k for k, v in out.items() if isinstance(v, torch.Tensor)]
    output = options.output or fields[0]
    if output not in fields:
        raise UsageError(f"--output: {cls.__name__} returns {', '.join(fields)}; got {output!r}")
    user = UserModel(
        HF_CLASS,
        {"config": config, "inputs": names, "output": output},
        tuple(shapes),
        tuple(dtypes),
        tuple(names),
        value_range,
        output_names=(output,),
        input_kinds=tuple(kinds),
    )
    state = {f"model.{k}": v for k, v in model.state_dict().items()}
    return user, state
