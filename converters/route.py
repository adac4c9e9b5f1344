"""Converter routes: one protocol, one registry.

A route turns the ONNX export of a model into TensorFlow artifacts (a SavedModel, TFLite files).
Each route is one module in ``onnxpipe/converters/routes/`` holding one :class:`Route` subclass
registered with ``@ROUTES.register()``; it declares its name, the formats and precisions it makes,
what it needs and why it is unavailable, the export it wants, and :meth:`Route.convert`. Nothing
else names a route: the CLI's ``--backend`` choices, ``--compare-backends``, ``--backend auto``,
bench, ``onnxpipe routes`` and the README's table all read :data:`ROUTES`.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from onnxpipe.converters.onnx_to_saved_model import PRECISIONS, TFConvertOptions
from onnxpipe.converters.torch_to_onnx import ExportOptions
from onnxpipe.models.artifact import Artifact, Format
from onnxpipe.models.errors import UsageError
from onnxpipe.models.execution import RuntimeOpener
from onnxpipe.models.registry import Registry

__all__ = [
    "DEFAULT_BACKEND",
    "PREFER",
    "ROUTES",
    "Route",
    "RouteInfo",
    "check_route",
    "get_route",
    "render_routes_markdown",
    "route_table",
]


class Route(abc.ABC):
    """One way from an ONNX file to TensorFlow artifacts.

    Attributes:
        name: The ``--backend`` value, and the ``backend`` recorded on every artifact it makes.
        summary: One line: what does the converting.
        makes: Formats it writes (``Format.TF_SAVED_MODEL``, ``Format.TFLITE``).
        precisions: TFLite precisions it writes.
        needs: What has to be installed for it, in words, with the make target that installs it.
        layout: What it does to tensor layouts, in words.
        preference: Its place in the list (lower first): ``--backend auto`` prefers the earlier
            route when two are equally fast, and bench compares every route with the first.
        converts: ``Format.ONNX`` (the export :meth:`export_options` describes) or ``Format.TORCH``.
        export_variant: It differs from an earlier route only by its export.
    """

    name: ClassVar[str]
    summary: ClassVar[str]
    makes: ClassVar[tuple[Format, ...]] = (Format.TF_SAVED_MODEL, Format.TFLITE)
    precisions: ClassVar[tuple[str, ...]] = PRECISIONS
    needs: ClassVar[str] = "the main environment (make setup)"
    layout: ClassVar[str] = "as the ONNX file"
    preference: ClassVar[int] = 100
    #: What it converts: the ONNX export (``Format.ONNX``), or the PyTorch checkpoint itself
    #: (``Format.TORCH``: :meth:`convert` is then handed the checkpoint's artifact).
    converts: ClassVar[Format] = Format.ONNX
    #: Whether it differs from an earlier route only by the export it converts: given an ONNX file
    #: as the source (nothing to export), the planner does not try it.
    export_variant: ClassVar[bool] = False

    @classmethod
    def unavailable_reason(cls) -> str | None:
        """Why this route cannot run here, or ``None`` when it can."""
        return None

    @classmethod
    def versions(cls) -> dict[str, Any] | None:
        """Versions outside the main environment that shape its artifacts (part of the convert key)."""
        return None

    @classmethod
    def export_options(cls, requested: ExportOptions) -> ExportOptions:
        """The export this route converts, given what the user asked for (``--opset``)."""
        return requested

    @classmethod
    def onnx_name(cls, options: ExportOptions) -> str:
        """The file name, in the run directory, of the export :meth:`export_options` describes."""
        return "model.onnx"

    @classmethod
    def refusal(cls, options: TFConvertOptions) -> str | None:
        """Why this route cannot make what ``options`` ask for, or ``None`` when it can.

        With ``options.partial`` (the planner), only a route that makes none of it is refused.
        """
        if options.partial:
            makes_some = (options.saved_model and Format.TF_SAVED_MODEL in cls.makes) or (
                Format.TFLITE in cls.makes and any(p in cls.precisions for p in options.precisions)
            )
            if makes_some:
                return None
        if options.saved_model and Format.TF_SAVED_MODEL not in cls.makes:
            return f"the {cls.name} route makes no SavedModel"
        if options.precisions and Format.TFLITE not in cls.makes:
            return f"the {cls.name} route makes no TFLite file"
        missing = [p for p in options.precisions if p not in cls.precisions]
        if missing:
            return f"the {cls.name} route makes no {', '.join(missing)} TFLite file"
        return None

    @abc.abstractmethod
    def convert(
        self, onnx: Artifact, out_dir: Path, options: TFConvertOptions, run_with: RuntimeOpener
    ) -> list[Artifact]:
        """Convert ``onnx`` into ``out_dir``, atomically, all or nothing.

        ``onnx`` is the ONNX artifact, or the checkpoint's for a route that ``converts`` ``Format.TORCH``.
        With ``options.partial``, a route returns what it could make, and names the rest with the
        reason in each artifact's ``extra["not_made"]`` (artifact name -> reason).

        ``run_with`` opens a runtime on an artifact, for what the route runs to check its work (a
        route never opens an inference session of its own).

        Returns:
            The SavedModel artifact (if asked for) followed by one TFLite artifact per precision,
            each bound to the reference's names and layout and naming this route as its backend.

        Raises:
            ConversionError: The converter failed (the reason is in the message).
            EnvironmentProblem: What the route needs is missing.
        """


#: Every route, found by importing each module of ``onnxpipe.converters.routes``.
ROUTES: Registry[type[Route]] = Registry(
    "backend", discover="onnxpipe.converters.routes", order=lambda route: route.preference
)


#: What ``--backend auto`` keeps among the artifacts that passed: the first route's, or the fastest.
PREFER = ("first", "fastest")

#: The default ``--backend``: the planner, which tries the routes in order until validation passes.
DEFAULT_BACKEND = "auto"


def get_route(name: str) -> type[Route]:
    """The route registered as ``name``.

    Raises:
        UnknownNameError: No such route; the message lists the valid names.
    """
    return ROUTES.get(name)


def check_route(name: str, options: TFConvertOptions) -> type[Route]:
    """The route ``name``, refused when it cannot make what ``options`` ask for.

    Raises:
        UnknownNameError: No such route.
        UsageError: It does not make a format or precision asked for.
    """
    route = get_route(name)
    why = route.refusal(options)
    if why:
        raise UsageError(why)
    return route


@dataclass(frozen=True)
class RouteInfo:
    """One row of ``onnxpipe routes`` and of the README's table of routes."""

    name: str
    summary: str
    makes: str
    export: str
    layout: str
    needs: str
    available: str


def _export_words(route: type[Route]) -> str:
    if route.converts is Format.TORCH:
        return "none: the checkpoint's module itself"
    options = route.export_options(ExportOptions())
    opset = f"opset {options.opset}" if options.opset else "opset of the model (18)"
    return f"{options.exporter}, {opset} -> {route.onnx_name(options)}"


def route_table(available: bool = True) -> list[RouteInfo]:
    """Every registered route, described; ``available`` adds whether it can run here."""
    rows = []
    for name, route in ROUTES.items():
        makes = [
            "SavedModel" if f is Format.TF_SAVED_MODEL else f"TFLite ({', '.join(route.precisions)})"
            for f in route.makes
        ]
        reason = route.unavailable_reason() if available else None
        rows.append(
            RouteInfo(
                name=name,
                summary=route.summary,
                makes="; ".join(makes),
                export=_export_words(route),
                layout=route.layout,
                needs=route.needs,
                available="yes" if reason is None else f"no: {reason}",
            )
        )
    return rows


def render_routes_markdown(rows: list[RouteInfo], with_available: bool = False) -> str:
    """The table of routes as Markdown (the README holds it without the ``available`` column)."""
    head = ["route", "what converts", "makes", "export it converts", "layout", "needs"]
    lines = ["| " + " | ".join(head + ["available"] * with_available) + " |"]
    lines.append("|" + "---|" * (len(head) + with_available))
    for r in rows:
        cells = [f"`{r.name}`", r.summary, r.makes, r.export, r.layout, r.needs]
        lines.append("| " + " | ".join(cells + [r.available] * with_available) + " |")
    return "\n".join(lines) + "\n"
