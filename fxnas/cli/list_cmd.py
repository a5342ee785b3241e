"""``fxnas list [KIND] [FILTER]``: every registered component with its one-line doc and options."""

from __future__ import annotations

import click

from .common import epilog, import_option


@click.command("list", epilog=epilog("fxnas list candidate MB   # the MobileNet blocks"))
@import_option
@click.argument("kind", required=False)
@click.argument("pattern", required=False, metavar="[FILTER]")
def list_components(imports: tuple[str, ...], kind: str | None, pattern: str | None) -> None:
    """List registered components: all kinds, one KIND (e.g. candidate, optimizer, mixed_op; spaces may be
    written as _), and only those whose name or doc contains FILTER. Components a module registers appear
    with --import."""
    from rich.console import Console
    from rich.table import Table

    from ..config.listing import component_rows

    rows = component_rows(kind, pattern)
    if not rows:
        click.echo(f"no component matches {pattern!r}" + (f" among {kind}s" if kind else ""))
        return
    table = Table(show_lines=False)
    for col, style in (("kind", "magenta"), ("name", "cyan"), ("description", None), ("options", "dim")):
        table.add_column(col, style=style, overflow="fold")
    for r in rows:
        table.add_row(r.kind, r.name, r.doc, ", ".join(r.options))
    Console(width=max(140, Console().width)).print(table)
    click.echo(f"{len(rows)} component{'s' if len(rows) != 1 else ''}")
