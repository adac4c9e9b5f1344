"""Pipeline configuration: frozen dataclasses, loadable from a TOML file that may hold only known keys.

Precedence: defaults < config file < command-line flags. The resolved configuration is written into
the run directory (``config.json``).
"""

from __future__ import annotations

import dataclasses
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from onnxpipe.converters.onnx_to_saved_model import TFConvertOptions
from onnxpipe.converters.torch_to_onnx import ExportOptions
from onnxpipe.models.errors import InputFileError, UsageError
from onnxpipe.models.training import TrainConfig
from onnxpipe.models.user_data import UserData
from onnxpipe.validation.inputs import InputConfig
from onnxpipe.validation.parity import ValidateOptions

__all__ = ["PipelineConfig", "load_config"]


@dataclass(frozen=True)
class PipelineConfig:
    """Every stage's options."""

    train: TrainConfig = field(default_factory=TrainConfig)
    export: ExportOptions = field(default_factory=ExportOptions)
    convert: TFConvertOptions = field(default_factory=TFConvertOptions)
    validate: ValidateOptions = field(default_factory=ValidateOptions)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return dataclasses.asdict(self)

    def override(self, section: str, **values: Any) -> PipelineConfig:
        """A copy with ``values`` (those not ``None``) set in ``section``."""
        values = {k: v for k, v in values.items() if v is not None}
        if not values:
            return self
        return dataclasses.replace(self, **{section: dataclasses.replace(getattr(self, section), **values)})


def _shown(value: Any) -> str:
    """A TOML value as the user wrote it, for messages."""
    return (
        f'"{value}"'
        if isinstance(value, str)
        else repr(value).replace("True", "true").replace("False", "false")
    )


def _type_error(tp: Any, value: Any) -> str | None:
    """What ``value`` (parsed TOML) should have been for a field annotated ``tp``; ``None`` when it fits."""
    origin = typing.get_origin(tp)
    if tp is Any:
        return None
    if origin in (typing.Union, types.UnionType):
        options = [t for t in typing.get_args(tp) if t is not type(None)]
        problems = [_type_error(t, value) for t in options]
        return None if any(p is None for p in problems) else " or ".join(p for p in problems if p)
    if origin is tuple:
        item = typing.get_args(tp)[0]
        if not isinstance(value, list):
            return f"a list of {_type_name(item)}s"
        bad = next((v for v in value if _type_error(item, v)), None)
        return None if bad is None else f"a list of {_type_name(item)}s (not {_shown(bad)})"
    if tp is bool:
        return None if isinstance(value, bool) else "true or false"
    if tp is int:
        return None if isinstance(value, int) and not isinstance(value, bool) else "an integer"
    if tp is float:
        return None if isinstance(value, (int, float)) and not isinstance(value, bool) else "a number"
    if tp is str:
        return None if isinstance(value, str) else "a string"
    if tp is UserData:
        return None if isinstance(value, (str, dict)) else "a path, or a table {path = ..., mean = [...]}"
    return None  # a type TOML cannot name is checked by the dataclass itself


def _type_name(tp: Any) -> str:
    return {int: "integer", float: "number", str: "string", bool: "boolean"}.get(
        tp, getattr(tp, "__name__", str(tp))
    )


def _section(cls: type, data: Any, where: str) -> Any:
    """``cls`` from a TOML table: every key known and of its field's type (all bad keys named at once)."""
    if not isinstance(data, dict):
        raise UsageError(f"{where}: expected a table, got {type(data).__name__}")
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise UsageError(f"{where}: unknown keys {unknown}; valid: {sorted(known)}")
    hints = typing.get_type_hints(cls)
    problems = [
        f"{k}: expected {expected}, got {_shown(v)}"
        for k, v in data.items()
        if (expected := _type_error(hints[k], v)) is not None
    ]
    if problems:
        raise UsageError(f"{where}: " + "; ".join(problems))
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
    try:
        made = cls(**values)
        if hasattr(made, "resolved"):  # ranges that depend on defaults (train: epochs >= 1 ...)
            made.resolved()
        return made
    except UsageError as e:
        raise UsageError(f"{where}: {e}") from e
    except (TypeError, ValueError) as e:
        raise UsageError(f"{where}: {e}") from e


def _validate_section(data: Any, where: str) -> ValidateOptions:
    """``[validate]`` is flat in the file: the input keys and the options side by side."""
    if not isinstance(data, dict):
        raise UsageError(f"{where}: expected a table, got {type(data).__name__}")
    input_keys = {f.name for f in dataclasses.fields(InputConfig)}
    option_keys = {f.name for f in dataclasses.fields(ValidateOptions)} - {"inputs"}
    unknown = sorted(set(data) - input_keys - option_keys)
    if unknown:
        raise UsageError(f"{where}: unknown keys {unknown}; valid: {sorted(input_keys | option_keys)}")
    options = {k: v for k, v in data.items() if k in option_keys}
    try:
        _section(ValidateOptions, options, where)  # its own keys' types, before the inputs' are known
    except UsageError as e:
        try:
            _section(InputConfig, {k: v for k, v in data.items() if k in input_keys}, where)
        except UsageError as inputs_error:
            raise UsageError(f"{inputs_error}; {str(e).removeprefix(where + ': ')}") from e
        raise
    inputs = _section(InputConfig, {k: v for k, v in data.items() if k in input_keys}, where)
    return _section(ValidateOptions, {**options, "inputs": inputs}, where)


def load_config(path: str | Path | None) -> PipelineConfig:
    """Load a TOML config (sections ``train``, ``export``, ``convert``, ``validate``); ``None`` -> defaults.

    Raises:
        InputFileError: The file is missing or not valid TOML.
        UsageError: A section or key is unknown, or a value is invalid.
    """
    if path is None:
        return PipelineConfig()
    path = Path(path)
    if not path.is_file():
        raise InputFileError(path, "no such config file")
    try:
        data = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise InputFileError(path, f"not valid TOML: {e}") from e
    sections = {f.name: f for f in dataclasses.fields(PipelineConfig)}
    unknown = sorted(set(data) - set(sections))
    if unknown:
        raise UsageError(f"{path}: unknown sections {unknown}; valid: {sorted(sections)}")
    defaults = PipelineConfig()
    values, problems = {}, []
    for name in data:  # every section checked, every bad key named at once
        where = f"{path} [{name}]"
        try:
            if name == "validate":
                values[name] = _validate_section(data[name], where)
            else:
                values[name] = _section(type(getattr(defaults, name)), data[name], where)
        except UsageError as e:
            problems.append(str(e))
    if problems:
        raise UsageError("\n".join(problems))
    return dataclasses.replace(defaults, **values)
