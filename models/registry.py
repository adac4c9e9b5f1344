"""One registry type for every kind of plug-in: zoo models, runtimes and converter routes.

A registry maps a name to a plug-in. Plug-ins are registered where they are defined (a decorator,
as optimum's ``TasksManager`` does), named lazily as ``"module:attribute"`` so that nothing heavy is
imported before it is used, or found by importing every module of a package (``discover``): adding
a converter route is then one module in ``onnxpipe/converters/routes/`` and nothing else. The CLI's
choices, ``--backend auto``, bench and the README's tables read the registries.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from onnxpipe.models.errors import UnknownNameError, UsageError
from onnxpipe.models.spec import ModelSpec

__all__ = ["ZOO", "Architecture", "Registry", "TrainDefaults", "get_architecture"]

T = TypeVar("T")


class Registry(Generic[T]):
    """Name -> plug-in, in registration order.

    Args:
        kind: What the plug-ins are, for error messages (``model``, ``runtime``, ``backend``).
        lazy: Name -> ``"module:attribute"``, imported on first :meth:`get`.
        discover: A package whose every module is imported on first use; each registers itself.
        order: A sort key on plug-ins for :meth:`names` (default: registration order), so that
            the order never depends on which module happened to be imported first.
    """

    def __init__(
        self,
        kind: str,
        lazy: Mapping[str, str] | None = None,
        discover: str | None = None,
        order: Callable[[T], Any] | None = None,
    ):
        self.kind = kind
        self._order = order
        self._lazy: dict[str, str] = dict(lazy or {})
        self._loaded: dict[str, T] = {}
        self._discover = discover

    def _discovered(self) -> None:
        if self._discover is None:
            return
        package, self._discover = self._discover, None  # once, even if a module fails to import
        for info in sorted(pkgutil.iter_modules(importlib.import_module(package).__path__)):
            if not info.name.startswith("_"):
                importlib.import_module(f"{package}.{info.name}")

    def register(self, name: str | None = None, *, replace: bool = False) -> Callable[[T], T]:
        """A decorator registering its target under ``name`` (default: the target's ``name``)."""

        def decorate(plugin: T) -> T:
            self.add(name or plugin.name, plugin, replace=replace)  # type: ignore[attr-defined]
            return plugin

        return decorate

    def add(self, name: str, plugin: T, *, replace: bool = False) -> None:
        """Register ``plugin`` as ``name``.

        Raises:
            UsageError: ``name`` is taken (and ``replace`` is not set).
        """
        own = self._discover and getattr(plugin, "__module__", "").startswith(f"{self._discover}.")
        if not own:  # one of the package's own modules registers: discovering now would import it half-made
            self._discovered()  # a clash with one of the package's own plug-ins is seen now
        if not replace and (name in self._loaded or name in self._lazy):
            raise UsageError(f"{self.kind} {name!r} is registered twice")
        self._lazy.pop(name, None)
        self._loaded[name] = plugin

    def remove(self, name: str) -> None:
        """Unregister ``name`` (tests that add a plug-in take it away again)."""
        self._loaded.pop(name, None)
        self._lazy.pop(name, None)

    def names(self) -> list[str]:
        """Every registered name: lazy ones first, then by ``order`` or in registration order."""
        self._discovered()
        loaded = [n for n in self._loaded if n not in self._lazy]
        if self._order is not None:
            loaded.sort(key=lambda n: self._order(self._loaded[n]))
        return [*self._lazy, *loaded]

    def get(self, name: str) -> T:
        """The plug-in registered as ``name``.

        Raises:
            UnknownNameError: ``name`` is not registered; the message lists the valid names.
        """
        self._discovered()
        if name in self._loaded:
            return self._loaded[name]
        if name not in self._lazy:
            raise UnknownNameError(self.kind, name, self.names())
        module, _, attribute = self._lazy[name].partition(":")
        plugin = getattr(importlib.import_module(module), attribute)
        self._loaded[name] = plugin
        return plugin

    def items(self) -> list[tuple[str, T]]:
        """``(name, plugin)`` pairs, importing lazy plug-ins."""
        return [(n, self.get(n)) for n in self.names()]

    def __contains__(self, name: object) -> bool:
        return name in self.names()

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self.names())


@dataclass(frozen=True)
class TrainDefaults:
    """Training hyper-parameters that reach the documented accuracy for this architecture."""

    epochs: int = 20
    lr: float = 1e-3
    batch_size: int = 64


@dataclass(frozen=True)
class Architecture:
    """A registered architecture: its interface, its constructor and its training defaults."""

    name: str
    spec: ModelSpec
    build: Callable[..., Any]
    defaults: TrainDefaults = TrainDefaults()


#: The model zoo: one architecture per file, each defining ``ARCHITECTURE``, imported when asked for.
ZOO: Registry[Architecture] = Registry(
    "model",
    lazy={
        name: f"onnxpipe.models.{name}:ARCHITECTURE"
        for name in ("mlp", "cnn", "mobilenet", "transformer", "gru", "lstm")
    },
)


def get_architecture(name: str) -> Architecture:
    """The registered architecture called ``name``.

    Raises:
        UnknownNameError: ``name`` is not registered; the message lists the valid names.
    """
    return ZOO.get(name)
