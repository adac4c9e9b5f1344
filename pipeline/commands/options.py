"""Option parsing shared by several commands."""

from __future__ import annotations

import click

from onnxpipe.models.errors import UnknownNameError

__all__ = ["RegistryChoice", "csv_choice", "import_user_model", "user_model_options"]


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
            help="An input's shape, batch first (made dynamic), e.g. 1,3,224,224; repeat per input.",
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
    for option in reversed(options):
        command = option(command)
    return command


def import_user_model(source, out, options: dict) -> object:
    """With ``--model-class``: import SOURCE (the user's weights) into ``out/checkpoint.pt``; its path.

    Without it: ``None`` (and the other user-model options are refused, so none is silently ignored).
    """
    import json
    from pathlib import Path

    from onnxpipe.models.checkpoint import import_checkpoint
    from onnxpipe.models.user import UserModel

    class_ref = options.pop("model_class")
    given = [_FLAGS[k] for k, v in options.items() if v]
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
