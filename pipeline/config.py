"""Pipeline configuration: frozen dataclasses, loadable from a TOML file that may hold only known keys.

Precedence: defaults < config file < command-line flags. The resolved configuration is written into
the run directory (``config.json``).
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from onnxpipe.converters.onnx_to_saved_model import TFConvertOptions
from onnxpipe.converters.torch_to_onnx import ExportOptions
from onnxpipe.models.errors import InputFileError, UsageError
from onnxpipe.models.training import TrainConfig
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


def _section(cls: type, data: Any, where: str) -> Any:
    if not isinstance(data, dict):
        raise UsageError(f"{where}: expected a table, got {type(data).__name__}")
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise UsageError(f"{where}: unknown keys {unknown}; valid: {sorted(known)}")
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
    try:
        return cls(**values)
    except TypeError as e:
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
    inputs = _section(InputConfig, {k: v for k, v in data.items() if k in input_keys}, where)
    options = {k: v for k, v in data.items() if k in option_keys}
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
    values = {}
    for name in data:
        where = f"{path} [{name}]"
        if name == "validate":
            values[name] = _validate_section(data[name], where)
        else:
            values[name] = _section(type(getattr(defaults, name)), data[name], where)
    return dataclasses.replace(defaults, **values)
