"""Option parsing shared by several commands."""

from __future__ import annotations

import click

from onnxpipe.models.errors import UnknownNameError

__all__ = [
    "RegistryChoice",
    "csv_choice",
    "data_image_size",
    "data_options",
    "hf_model_options",
    "import_user_model",
    "is_hf_source",
    "user_data",
    "user_model_options",
    "with_tokenizer",
]


class RegistryChoice(click.Choice):
    """A choice among a registry's names, read when the command runs (plug-ins registered late count)."""

    def __init__(self, registry, extra: tuple[str, ...] = ()):
        self.registry, self.extra = registry, extra
        super().__init__(())

    @property
    def choices(self) -> tuple[str, ...]:  # noqa: D102
        return (*self.registry.names(), *self.extra)

    @choices.setter
    def choices(self, _value) -> None:
        pass


def csv_choice(value: str, valid: tuple[str, ...], kind: str) -> tuple[str, ...]:
    """``"a,b"`` -> ``("a", "b")``, each checked against ``valid``."""
    items = tuple(v.strip() for v in value.split(",") if v.strip())
    for item in items:
        if item not in valid:
            raise click.UsageError(str(UnknownNameError(kind, item, valid)))
    return items


def _shape(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(d) for d in text.split(",") if d.strip())
    except ValueError:
        raise click.UsageError(
            f"--input-shape: got {text!r}, expected comma-separated integers (1,3,224,224)"
        ) from None


_FLAGS = {
    "model_kwargs": "--model-kwargs",
    "input_shapes": "--input-shape",
    "input_dtypes": "--input-dtype",
    "input_names": "--input-name",
    "value_range": "--value-range",
    "trust_pickle": "--trust-pickle",
}
_HF_FLAGS = {
    "seq_len": "--seq-len",
    "image_size": "--image-size",
    "hf_output": "--output",
    "attention_mask": "--attention-mask",
}


def _floats(text: str | None, flag: str) -> tuple[float, ...] | None:
    if text is None:
        return None
    try:
        return tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise click.UsageError(
            f"{flag}: got {text!r}, expected comma-separated numbers (0.485,0.456,0.406)"
        ) from None


def data_options(command):
    """``--inputs`` and how images among them are normalised (convert, validate)."""
    from pathlib import Path

    options = [
        click.option(
            "--inputs",
            "user_inputs",
            type=click.Path(path_type=Path),
            default=None,
            help="Your samples, validated first: an .npz (one array per input, samples first), or a folder "
            "of .npy/.npz files or of images.",
        ),
        click.option(
            "--mean",
            default=None,
            help="Images: per-channel mean subtracted after pixels are scaled to [0, 1] [0].",
        ),
        click.option("--std", default=None, help="Images: per-channel standard deviation divided by [1]."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def data_image_size(user: dict, *paths) -> int | None:
    """``--image-size`` for the images of ``paths`` when SOURCE is not a Hugging Face folder.

    It is taken out of ``user`` (the model options), which refuse it without a folder; with a folder
    it stays there and sets the model's own size, which images are resized to anyway.
    """
    if user.get("image_size") is None or not any(p is not None for p in paths):
        return None
    size, user["image_size"] = user["image_size"], None
    return size


def user_data(path, mean: str | None, std: str | None, *also, image_size: int | None = None):
    """A :class:`models.user_data.UserData` for ``path`` with the image options (``None`` without a path).

    ``also``: the other paths the image options may apply to (``--calibration``); with none of them
    given, ``--mean``/``--std`` are refused rather than ignored.
    """
    from onnxpipe.models.user_data import UserData

    if path is None:
        if (mean is not None or std is not None) and not any(p is not None for p in also):
            raise click.UsageError("--mean/--std: they normalise images given with --inputs; give --inputs")
        return None
    values = {"mean": _floats(mean, "--mean"), "std": _floats(std, "--std"), "image_size": image_size}
    return UserData(str(path.resolve()), **{k: v for k, v in values.items() if v is not None})


def with_tokenizer(data, run_dir):
    """``data`` with the tokenizer of the Hugging Face folder ``run_dir``'s checkpoint was imported from.

    Text lines in ``--inputs`` are tokenized with it; a run that was not imported from a folder
    leaves ``data`` as it is (and text is refused with the reason).
    """
    import dataclasses

    from onnxpipe.pipeline.rundir import RunDir

    if data is None or data.tokenizer is not None or run_dir is None:
        return data
    record = RunDir(run_dir).manifest().stages.get("import")
    folder = record.options.get("hf_folder") if record is not None else None
    return dataclasses.replace(data, tokenizer=folder) if folder else data


def is_hf_source(source) -> bool:
    """Whether SOURCE is a Hugging Face ``save_pretrained`` folder."""
    from pathlib import Path

    from onnxpipe.pipeline.artifacts import is_hf_folder  # no torch: this runs before every convert

    return source is not None and is_hf_folder(Path(source))


def _import_hf(source, out, hf: dict) -> object:
    import time
    from pathlib import Path

    from onnxpipe.models.checkpoint import import_state
    from onnxpipe.models.hf import HfOptions, hf_user_model
    from onnxpipe.pipeline.rundir import RunDir

    options = HfOptions(hf["seq_len"], hf["image_size"], hf["hf_output"], bool(hf["attention_mask"]))
    run = RunDir(out).prepare()
    t0 = time.perf_counter()
    user, state = hf_user_model(Path(source), options)
    path = import_state(state, user, run.checkpoint, Path(source))
    files = sorted(
        p for p in Path(source).iterdir() if p.is_file() and p.suffix in (".json", ".safetensors", ".bin")
    )
    recorded = {
        "hf_folder": str(Path(source).resolve()),
        **{k: v for k, v in hf.items() if v is not None and v is not False},
    }
    run.record_stage(
        "import", inputs=files, outputs=[path], options=recorded, seconds=time.perf_counter() - t0
    )
    return path


def named_input_shapes(source, options: dict) -> dict[str, tuple[int, ...]] | None:
    """``--input-shape NAME=SIZES`` for an ONNX file's free sizes; taken out of ``options``.

    The bare form (``1,3,224,224``) describes a ``--model-class`` model's input and stays there.
    """
    from onnxpipe.models.errors import UsageError
    from onnxpipe.models.interface import parse_input_shapes

    given = options.get("input_shapes") or ()
    named = [s for s in given if "=" in s]
    bare = [s for s in given if "=" not in s]
    if bare and options.get("model_class") is None and str(source).lower().endswith(".onnx"):
        raise click.UsageError(
            f"--input-shape {bare[0]}: for an ONNX file, name the input: NAME=SIZES (e.g. x={bare[0]})"
        )
    if not named:
        return None
    if options.get("model_class") is not None or len(named) != len(given):
        raise click.UsageError(
            "--input-shape: NAME=SIZES sets an ONNX file's free sizes; with --model-class give the bare "
            "form (1,3,224,224), one per input, and not both"
        )
    if not str(source).lower().endswith(".onnx"):
        raise click.UsageError("--input-shape NAME=SIZES: only for an ONNX file as SOURCE")
    options["input_shapes"] = ()
    try:
        return parse_input_shapes(named)
    except UsageError as e:
        raise click.UsageError(str(e)) from None


def user_model_options(command):
    """The options that name a user's model class and its inputs (convert, export, validate)."""
    options = [
        click.option(
            "--model-class",
            default=None,
            help="Your model class: path/to/file.py:ClassName or package.module:ClassName (SOURCE: its state dict).",
        ),
        click.option(
            "--model-kwargs", default=None, help="JSON object of the class's constructor arguments."
        ),
        click.option(
            "--input-shape",
            "input_shapes",
            multiple=True,
            help="With --model-class: an input's shape, batch first (made dynamic), e.g. 1,3,224,224; "
            "for an ONNX file: NAME=SIZES fixes that input's free sizes (x=1,3,640,640). Repeat per input.",
        ),
        click.option(
            "--input-dtype",
            "input_dtypes",
            multiple=True,
            help="Input dtype [default: float32]; one, or one per input.",
        ),
        click.option(
            "--input-name", "input_names", multiple=True, help="Input name; one per input [default: input]."
        ),
        click.option(
            "--value-range", default=None, help="LO,HI of input values (required for integer inputs)."
        ),
        click.option(
            "--trust-pickle", is_flag=True, help="Accept a whole pickled module (unpickling runs its code)."
        ),
    ]
    command = hf_model_options(command)  # listed after these in --help
    for option in reversed(options):
        command = option(command)
    return command


def hf_model_options(command):
    """The options that say how a Hugging Face folder is fed and read (convert, export, validate, run)."""
    options = [
        click.option(
            "--seq-len",
            type=int,
            default=None,
            help="Hugging Face folder: tokens (or audio samples) per input [16].",
        ),
        click.option(
            "--image-size",
            type=click.IntRange(min=1),
            default=None,
            help="Image side: a Hugging Face folder's input size [the config's]; images in --inputs or "
            "--calibration are resized to it where the model's height and width are dynamic.",
        ),
        click.option(
            "--output",
            "hf_output",
            default=None,
            help="Hugging Face folder: the output field to convert [the first: logits, last_hidden_state...].",
        ),
        click.option(
            "--attention-mask",
            is_flag=True,
            help="Hugging Face text model: also take attention_mask (0/1 per token) as an input.",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def import_user_model(source, out, options: dict) -> object:
    """With ``--model-class``: import SOURCE (the user's weights) into ``out/checkpoint.pt``; its path.

    A Hugging Face folder as SOURCE is imported the same way (``out`` ``None``: only its options are
    checked). Otherwise: ``None`` (and the other user-model options are refused, so none is silently
    ignored).
    """
    import json
    from pathlib import Path

    from onnxpipe.models.checkpoint import import_checkpoint
    from onnxpipe.models.user import UserModel

    class_ref = options.pop("model_class")
    hf = {k: options.pop(k) for k in _HF_FLAGS}
    given = [_FLAGS[k] for k, v in options.items() if v]
    if is_hf_source(source):  # its config says what the model is and how to feed it
        stray = ([] if class_ref is None else ["--model-class"]) + given
        if stray:
            raise click.UsageError(
                f"{', '.join(stray)}: not with a Hugging Face folder (its config.json says it)"
            )
        return None if out is None else _import_hf(source, out, hf)
    hf_given = [_HF_FLAGS[k] for k, v in hf.items() if v is not None and v is not False]
    if hf_given:
        raise click.UsageError(f"{', '.join(hf_given)}: only with a Hugging Face folder as SOURCE")
    if class_ref is None:
        if given:
            raise click.UsageError(f"{', '.join(given)}: only with --model-class (they describe your model)")
        return None
    try:
        kwargs = json.loads(options["model_kwargs"]) if options["model_kwargs"] else {}
    except json.JSONDecodeError as e:
        raise click.UsageError(f"--model-kwargs: not valid JSON ({e})") from None
    if not isinstance(kwargs, dict):
        raise click.UsageError("--model-kwargs: expected a JSON object, e.g. '{\"width\": 16}'")
    value_range = None
    if options["value_range"]:
        try:
            lo, hi = (float(v) for v in options["value_range"].split(","))
        except ValueError:
            raise click.UsageError(f"--value-range: got {options['value_range']!r}, expected LO,HI") from None
        value_range = (lo, hi)
    user = UserModel(
        class_ref,
        kwargs,
        tuple(_shape(s) for s in options["input_shapes"]),
        tuple(options["input_dtypes"]) or ("float32",),
        tuple(options["input_names"]),
        value_range,
    )
    import dataclasses
    import time

    from onnxpipe.pipeline.rundir import RunDir

    run = RunDir(out).prepare()
    t0 = time.perf_counter()
    path = import_checkpoint(Path(source), user, run.checkpoint, options["trust_pickle"])
    recorded = {**dataclasses.asdict(user), "trust_pickle": options["trust_pickle"]}
    run.record_stage(
        "import", inputs=[Path(source)], outputs=[path], options=recorded, seconds=time.perf_counter() - t0
    )
    return path
