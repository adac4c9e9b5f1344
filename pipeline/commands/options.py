"""Option parsing shared by several commands."""

from __future__ import annotations

import click

from models.errors import UnknownNameError

__all__ = ["csv_choice"]


def csv_choice(value: str, valid: tuple[str, ...], kind: str) -> tuple[str, ...]:
    """``"a,b"`` -> ``("a", "b")``, each checked against ``valid``."""
    items = tuple(v.strip() for v in value.split(",") if v.strip())
    for item in items:
        if item not in valid:
            raise click.UsageError(str(UnknownNameError(kind, item, valid)))
    return items
