"""Typed JSON documents: dataclasses written as JSON and read back into the same dataclasses.

``parity.json``, ``manifest.json`` and ``backends.json`` are each one :class:`Document`: a
dataclass with a ``schema_version`` and a ``kind``. :func:`to_json` writes any dataclass (enums as
their values, nested dataclasses, lists, dicts); :func:`from_json` reads a value back into the type
its annotation names, and says which field is wrong when it cannot. A dataclass's ``derived()``
values (a verdict, counts, a summary) are written for other tools and ignored on reading: they are
computed from the fields. A field marked ``field(metadata=NOT_WRITTEN)`` stays in memory only.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import types
import typing
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from onnxpipe.models.errors import InputFileError

__all__ = ["NOT_WRITTEN", "Document", "RecordError", "from_json", "to_json"]

T = TypeVar("T")
D = TypeVar("D", bound="Document")

#: ``field(metadata=NOT_WRITTEN)``: a field kept in memory, never written.
NOT_WRITTEN = {"json": False}


class RecordError(ValueError):
    """A JSON value that does not fit the type it is read into; ``where`` names the field."""

    def __init__(self, where: str, problem: str):
        self.where, self.problem = where, problem
        super().__init__(f"{where or 'the document'}: {problem}")


def to_json(value: Any) -> Any:
    """``value`` as JSON-ready data: dataclasses by field, enums by value, tuples as lists."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        derived = value.derived() if hasattr(value, "derived") else {}
        return to_json(derived) | {
            f.name: to_json(getattr(value, f.name))
            for f in dataclasses.fields(value)
            if f.metadata.get("json", True)
        }
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dict):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def from_json(tp: Any, data: Any, where: str = "") -> Any:
    """Read ``data`` (parsed JSON) into type ``tp`` (a dataclass, enum, container or scalar)."""
    origin = typing.get_origin(tp)
    if tp is Any or tp is object:
        return data
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(tp)
        if data is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return from_json(option, data, where)
            except RecordError as e:
                errors.append(e.problem)
        raise RecordError(where, "; ".join(errors))
    if origin in (list, tuple):
        if not isinstance(data, list):
            raise RecordError(where, f"expected a list, got {type(data).__name__}")
        args = typing.get_args(tp)
        item = args[0] if args else Any
        items = [from_json(item, v, f"{where}[{i}]") for i, v in enumerate(data)]
        return items if origin is list else tuple(items)
    if origin is dict:
        if not isinstance(data, dict):
            raise RecordError(where, f"expected an object, got {type(data).__name__}")
        key_t, value_t = typing.get_args(tp) or (str, Any)
        return {
            (int(k) if key_t is int else k): from_json(value_t, v, f"{where}.{k}") for k, v in data.items()
        }
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        try:
            return tp(data)
        except ValueError:
            valid = ", ".join(repr(m.value) for m in tp)
            raise RecordError(where, f"{data!r} is not one of {valid}") from None
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return _dataclass(tp, data, where)
    if tp is float:
        if isinstance(data, bool) or not isinstance(data, (int, float)):
            raise RecordError(where, f"expected a number, got {data!r}")
        return float(data)
    if tp in (int, str, bool):
        if not isinstance(data, tp) or (tp is int and isinstance(data, bool)):
            raise RecordError(where, f"expected {tp.__name__}, got {data!r}")
        return data
    raise RecordError(where, f"cannot read a value of type {tp!r}")


def _dataclass(cls: type[T], data: Any, where: str) -> T:
    if not isinstance(data, dict):
        raise RecordError(where, f"expected an object for {cls.__name__}, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for f in dataclasses.fields(cls):
        if not f.init or not f.metadata.get("json", True):
            continue
        if f.name in data:
            kwargs[f.name] = from_json(hints[f.name], data[f.name], f"{where}.{f.name}".lstrip("."))
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise RecordError(where, f"{cls.__name__} needs {f.name!r}, which is missing")
    return cls(**kwargs)


class Document:
    """A dataclass written as one JSON file, with ``schema_version`` and ``kind`` at the top.

    Subclasses set :attr:`KIND` and :attr:`SCHEMA_VERSION` (raise it when a field changes meaning
    or goes away; files without a version are version 1, the layout before versions were written).
    """

    KIND: ClassVar[str]
    SCHEMA_VERSION: ClassVar[int] = 1

    def to_json(self) -> dict[str, Any]:
        """The document as JSON-ready data (with its ``derived()`` values, when it has any)."""
        return {"schema_version": self.SCHEMA_VERSION, "kind": self.KIND, **to_json(self)}

    @classmethod
    def from_json(cls: type[D], data: Any, source: str | Path = "") -> D:
        """Read parsed JSON into this document type.

        Raises:
            InputFileError: Not this kind of document, a newer schema, or a field that does not fit.
        """
        where = source or cls.KIND
        if not isinstance(data, dict):
            raise InputFileError(where, f"not an onnxpipe {cls.KIND} (a JSON object expected)")
        kind = data.get("kind", cls.KIND)
        if kind != cls.KIND:
            raise InputFileError(where, f"is an onnxpipe {kind}, not a {cls.KIND}")
        version = data.get("schema_version", 1)
        if not isinstance(version, int) or version > cls.SCHEMA_VERSION:
            raise InputFileError(
                where,
                f"{cls.KIND} schema version {version!r}: written by a newer onnxpipe (this one reads up "
                f"to version {cls.SCHEMA_VERSION}); upgrade onnxpipe or re-run the stage that wrote it",
            )
        try:
            return _dataclass(cls, data, "")
        except RecordError as e:
            raise InputFileError(where, f"not an onnxpipe {cls.KIND} ({e})") from e

    @classmethod
    def read(cls: type[D], path: str | Path) -> D:
        """Load the document at ``path``.

        Raises:
            InputFileError: Missing, not JSON, or not a valid document of this kind.
        """
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise InputFileError(path, "no such file") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise InputFileError(path, f"not valid JSON ({e})") from e
        return cls.from_json(data, path)

    def write(self, path: str | Path) -> Path:
        """Write the document atomically."""
        from onnxpipe.models.fs import write_json

        write_json(Path(path), self.to_json())
        return Path(path)
