"""``onnxpipe routes``."""

from __future__ import annotations

import click


@click.command("routes")
def command() -> None:
    """List the converter routes (--backend values) and whether each can run here.

    Per route: what it makes, the export it converts, what it does to layouts, what it needs.

    Example:
      onnxpipe routes
    """
    from onnxpipe.converters.route import render_routes_markdown, route_table

    click.echo(render_routes_markdown(route_table(available=True), with_available=True), nl=False)
