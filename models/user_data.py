"""The user's own data (``--inputs``, ``--calibration``, ``--labels``), read and checked against a model.

Forms: an ``.npz`` (one array per model input, samples first); a folder of ``NAME.npy``/``.npz``
files (concatenated); a folder of images, for a model with one image input (resized, bilinear, to
the input's height and width, scaled to [0, 1] and normalised by ``--mean``/``--std``, in the
input's layout); a ``.txt`` file of lines, for a Hugging Face text model (tokenized with the
folder's own tokenizer). Everything is checked against the model's inputs before anything runs,
and every mismatch is named with what the model expects.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from onnxpipe.models.errors import InputFileError, UsageError
from onnxpipe.models.spec import ModelSpec, TensorSpec

__all__ = ["IMAGE_SUFFIXES", "TOKENIZER_FILES", "UserData", "load_labels", "load_user_inputs"]

#: Files of which a Hugging Face folder's tokenizer is made (one is enough).
TOKENIZER_FILES = (
    "tokenizer.json",
    "vocab.txt",
    "vocab.json",
    "spiece.model",
    "sentencepiece.bpe.model",
    "tokenizer.model",
)

#: Files read as images in an ``--inputs``/``--calibration`` folder.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")


@dataclass(frozen=True)
class UserData:
    """Where the user's samples are, and how images among them become tensors.

    Attributes:
        path: An ``.npz``, or a folder of ``.npy``/``.npz`` files or of images.
        mean: Per-channel mean subtracted after pixels are scaled to ``[0, 1]`` (one value: all
            channels).
        std: Per-channel standard deviation divided by, after the mean.
        image_size: The side images are resized to where the model's height and width are
            dynamic (``--image-size``); a model with a fixed size takes its own.
        tokenizer: The Hugging Face folder whose own tokenizer turns a text file's lines into
            ``input_ids`` (and ``attention_mask``, ``token_type_ids`` where the model takes them),
            padded or truncated to the model's sequence length; ``None``: text is refused.
    """

    path: str
    mean: tuple[float, ...] = (0.0,)
    std: tuple[float, ...] = (1.0,)
    tokenizer: str | None = None
    image_size: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", str(self.path))
        for name in ("mean", "std"):
            object.__setattr__(self, name, tuple(float(v) for v in getattr(self, name)))
        if not self.std or any(v == 0 for v in self.std) or not self.mean:
            raise UsageError(
                f"--mean/--std: got mean {list(self.mean)}, std {list(self.std)} (std must not be 0)"
            )

    @classmethod
    def of(cls, value: UserData | str | Path | Mapping[str, Any] | None) -> UserData | None:
        """A :class:`UserData` from itself, a path, or a table (a TOML config's), ``None`` kept."""
        if value is None or isinstance(value, UserData):
            return value
        if isinstance(value, Mapping):
            return cls(**value)
        return cls(str(value))

    @property
    def name(self) -> str:
        """The file or folder's name, for messages and manifests."""
        return Path(self.path).name


def _read_arrays(path: Path, spec: ModelSpec) -> dict[str, np.ndarray]:
    """Name -> array from an ``.npz``, or from a folder of ``.npy`` and ``.npz`` files.

    A folder holds either one file per input (``NAME.npy``, or ``.npz`` files of named arrays,
    concatenated on each input's sample axis) or one file per sample (``000.npy``, ``001.npy``...
    for a model with one input of samples; ``.npz`` files of named arrays for several): an array of
    one sample's shape gets its sample axis, and the samples are stacked in file-name order.
    """
    files = [path] if path.is_file() else sorted(p for p in path.iterdir() if p.suffix in (".npy", ".npz"))
    if not files:
        raise InputFileError(path, "holds no .npy or .npz files, nor images")
    tensors = {t.name: t for t in spec.inputs}
    rows = [t for t in spec.inputs if not t.whole]
    per_sample = (
        path.is_dir()
        and len(rows) == 1
        and all(f.suffix == ".npy" for f in files)
        and not any(f.stem in tensors for f in files)
    )
    found: dict[str, list[np.ndarray]] = {}
    for f in files:
        try:
            if f.suffix == ".npy":
                found.setdefault(rows[0].name if per_sample else f.stem, []).append(
                    np.load(f, allow_pickle=False)
                )
            else:
                with np.load(f, allow_pickle=False) as data:
                    for k in data.files:
                        found.setdefault(k, []).append(data[k])
        except (OSError, ValueError) as e:
            raise InputFileError(f, f"not a NumPy array file ({e})") from e
    out = {}
    for k, parts in found.items():
        t = tensors.get(k)
        if t is None or t.whole:  # not an input (named in the refusal), or one value: the first file's
            out[k] = parts[0]
            continue
        # one sample's shape (the sample axis left out): give it its sample axis
        parts = [np.expand_dims(a, t.batch_axis) if a.ndim == len(t.shape) - 1 else a for a in parts]
        try:
            out[k] = np.concatenate(parts, axis=t.batch_axis) if len(parts) > 1 else parts[0]
        except (ValueError, np.exceptions.AxisError) as e:
            raise InputFileError(path, f"its files disagree on the shape of {k!r} ({e})") from e
    return out


def _image_layout(t: TensorSpec) -> str | None:
    """``"NCHW"``/``"NHWC"`` for a 4-D input with 1 or 3 channels, by its layout, else its shape."""
    if len(t.shape) != 4:
        return None
    if t.layout in ("NCHW", "NHWC"):
        return t.layout
    if t.shape[1] in (1, 3):
        return "NCHW"
    if t.shape[3] in (1, 3):
        return "NHWC"
    return None


def _read_images(folder: Path, files: list[Path], spec: ModelSpec, data: UserData) -> dict[str, np.ndarray]:
    """The images of ``folder`` as the model's one image input: resized, scaled to [0, 1], normalised."""
    from PIL import Image, UnidentifiedImageError

    floats = [t for t in spec.inputs if np.dtype(t.dtype).kind == "f"]
    if len(spec.inputs) != 1 or len(floats) != 1 or _image_layout(floats[0]) is None:
        wanted = ", ".join(f"{t.name} {t.dtype} {list(t.shape)}" for t in spec.inputs)
        raise InputFileError(
            folder,
            "holds images, and images feed a model with one float input of shape [N, 1 or 3, H, W] "
            f"(or [N, H, W, 1 or 3]); this model takes {wanted}: give an .npz instead",
        )
    t = floats[0]
    layout = _image_layout(t)
    channels = t.shape[1] if layout == "NCHW" else t.shape[3]
    hw = t.shape[2:] if layout == "NCHW" else t.shape[1:3]
    if all(isinstance(d, int) for d in hw):
        size = (int(hw[0]), int(hw[1]))
        if data.image_size is not None and (data.image_size, data.image_size) != size:
            raise UsageError(
                f"--image-size {data.image_size}: {t.name!r} takes images of {list(size)} exactly"
            )
    elif data.image_size is not None:
        size = (data.image_size, data.image_size)
    else:
        raise InputFileError(
            folder,
            f"holds images, and {t.name!r} has a dynamic height or width ({list(t.shape)}): give "
            "--image-size SIDE (they are resized to SIDE x SIDE)",
        )
    mean = np.asarray(data.mean, dtype=np.float32)
    std = np.asarray(data.std, dtype=np.float32)
    for name, v in (("--mean", mean), ("--std", std)):
        if v.size not in (1, channels):
            raise UsageError(f"{name}: {v.size} values, expected 1 or {channels} (the input's channels)")
    images = []
    for f in files:
        try:
            with Image.open(f) as im:
                im = im.convert("L" if channels == 1 else "RGB").resize(size[::-1], Image.Resampling.BILINEAR)
                pixels = np.asarray(im, dtype=np.float32).reshape(size[0], size[1], channels) / 255.0
        except (UnidentifiedImageError, OSError) as e:
            raise InputFileError(f, f"not a readable image ({e})") from e
        pixels = (pixels - mean) / std
        images.append(pixels.transpose(2, 0, 1) if layout == "NCHW" else pixels)
    return {t.name: np.stack(images).astype(t.dtype)}


def _tokenize(path: Path, spec: ModelSpec, data: UserData) -> dict[str, np.ndarray]:
    """A text file's non-empty lines, tokenized with the model's folder's own tokenizer."""
    wanted = {t.name: t for t in spec.inputs}
    if "input_ids" not in wanted:
        raise InputFileError(
            path, f"text feeds a model that takes input_ids; this one takes {', '.join(wanted)}: give an .npz"
        )
    if data.tokenizer is None:
        raise InputFileError(
            path,
            "text lines are tokenized with a Hugging Face folder's own tokenizer, and this model was not "
            "imported from one: give token ids as an .npz (input_ids)",
        )
    try:
        lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except (OSError, UnicodeDecodeError) as e:
        raise InputFileError(path, f"not readable UTF-8 text ({e})") from e
    if not lines:
        raise InputFileError(path, "holds no lines of text")
    folder = Path(data.tokenizer)
    if not any((folder / f).is_file() for f in TOKENIZER_FILES):
        # (AutoTokenizer would make one of special tokens alone from the config: every word unknown)
        raise InputFileError(
            folder,
            f"has no tokenizer (none of {', '.join(TOKENIZER_FILES)}): save it beside the model "
            "(tokenizer.save_pretrained(folder)) or give token ids as an .npz (input_ids)",
        )
    try:
        from transformers import AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    except Exception as e:  # transformers raises OSError, ValueError, TypeError... for a missing tokenizer
        tokenizer, why = (
            None,
            f"{type(e).__name__}: {str(e).splitlines()[0][:160]}" if str(e) else type(e).__name__,
        )
    else:
        why = "AutoTokenizer found none"
    if tokenizer is None or not callable(tokenizer):
        raise InputFileError(
            folder,
            f"has no tokenizer onnxpipe can load offline ({why}); save it beside the model "
            "(tokenizer.save_pretrained) or give token ids as an .npz (input_ids)",
        )
    length = wanted["input_ids"].shape[-1]
    fixed = isinstance(length, int)
    encoded = tokenizer(
        lines,
        padding="max_length" if fixed else "longest",
        truncation=fixed,
        max_length=length if fixed else None,
        return_tensors="np",
    )
    return {k: np.asarray(v).astype(wanted[k].dtype) for k, v in encoded.items() if k in wanted}


def load_user_inputs(data: UserData | str | Path, spec: ModelSpec) -> dict[str, np.ndarray]:
    """The user's samples for every model input, checked against the model before anything runs.

    An input fed whole (:attr:`TensorSpec.whole`: a shape, a 0-d setting, a state of the whole
    sequence) is one value; every other input has the samples on its sample axis (the first one,
    or where the model has it: a state ``[2, N, 128]``). A model whose batch is fixed (to 1) takes
    any number of samples: validation feeds them a batch at a time.

    Raises:
        InputFileError: Unreadable, an input missing or unknown, a dtype or shape that does not fit
            (every mismatch named, with what the model expects), or inputs with different counts.
        UsageError: Images, and the image options do not fit the model's input.
    """
    data = UserData.of(data)
    path = Path(data.path)
    if not path.exists():
        raise InputFileError(
            path, "no such file or folder (expected an .npz, or a folder of .npy/.npz files or of images)"
        )
    images = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES) if path.is_dir() else []
    if path.is_file() and path.suffix.lower() == ".txt":
        arrays = _tokenize(path, spec, data)
    else:
        arrays = _read_images(path, images, spec, data) if images else _read_arrays(path, spec)
    expected = {t.name: t for t in spec.inputs}
    problems = [f"no array for input {n!r}" for n in expected if n not in arrays]
    problems += [
        f"{k!r} is not an input of the model (inputs: {', '.join(expected)})"
        for k in arrays
        if k not in expected and k not in spec.baked
    ]
    problems += [
        f"{k!r} is {np.asarray(arrays[k]).tolist()}, and this run baked {k} = {spec.baked[k]} into the "
        "model (convert again with these samples)"
        for k in arrays
        if k in spec.baked and not np.array_equal(np.asarray(arrays[k]), np.asarray(spec.baked[k]))
    ]
    for name, t in expected.items():
        a = arrays.get(name)
        if a is None:
            continue
        want = ["N" if i == t.batch_axis else "?" if isinstance(d, str) else d for i, d in enumerate(t.shape)]
        if a.dtype.name != t.dtype:
            problems.append(f"{name!r}: dtype {a.dtype.name}, expected {t.dtype}")
        if a.ndim != len(t.shape) or any(
            not isinstance(d, str) and i != t.batch_axis and d != g
            for i, (d, g) in enumerate(zip(t.shape, a.shape, strict=False))
        ):
            note = (
                f" (one value: it {t.why})"
                if t.why and t.whole
                else " (one value, fed whole)"
                if t.whole
                else ""
            )
            axis = f" (N: samples, on axis {t.batch_axis})" if t.batch_axis else " (N: samples)"
            problems.append(f"{name!r}: shape {list(a.shape)}, expected {want}" + (note or axis))
    counts = {
        k: a.shape[expected[k].batch_axis]
        for k, a in arrays.items()
        if k in expected and not expected[k].whole and a.ndim == len(expected[k].shape)
    }
    if len(set(counts.values())) > 1:
        problems.append(f"inputs with different sample counts: {counts}")
    if not problems and counts and not next(iter(counts.values())):
        problems.append("no samples (the sample axis is empty)")
    if problems:
        raise InputFileError(path, "does not fit the model: " + "; ".join(problems))
    return {name: arrays[name] for name in expected}


def load_labels(path: str | Path, count: int) -> np.ndarray:
    """Integer class labels, one per sample: an ``.npy``, or a text file of one integer per line.

    Raises:
        InputFileError: Unreadable, not integers, or not ``count`` of them.
    """
    path = Path(path)
    if not path.is_file():
        raise InputFileError(
            path, "no such file (--labels takes an .npy or a text file, one integer per line)"
        )
    try:
        if path.suffix == ".npy":
            labels = np.load(path, allow_pickle=False)
        else:
            labels = np.array([int(line) for line in path.read_text().split()], dtype=np.int64)
    except (OSError, ValueError, UnicodeDecodeError) as e:
        raise InputFileError(path, f"not integer labels ({e})") from e
    labels = np.asarray(labels).reshape(-1)
    if labels.dtype.kind not in "iu":
        raise InputFileError(path, f"labels must be integers, got {labels.dtype}")
    if labels.size != count:
        raise InputFileError(
            path, f"{labels.size} labels for {count} samples (one per sample, in their order)"
        )
    return labels.astype(np.int64)
