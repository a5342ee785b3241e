"""The ``fxnas`` click group; each subcommand is a click command in its own ``fxnas.cli.<name>_cmd`` module."""

from __future__ import annotations

import importlib
from typing import Any

import click

from ..errors import FxnasError

# (module, command attribute)
COMMANDS: list[tuple[str, str]] = [
    ("searchify_cmd", "searchify"),
    ("search_cmd", "search"),
    ("profile_cmd", "profile"),
]


def one_line(exc: BaseException) -> str:
    """An exception message on one line (users see this instead of a traceback)."""
    return " ".join(str(exc).split()) or type(exc).__name__


class FxnasGroup(click.Group):
    """A click group that turns fxnas errors (bad input) into a one-line ``Error: ...`` and exit code 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except FxnasError as exc:
            raise click.ClickException(one_line(exc)) from None


@click.group(cls=FxnasGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="fxnas")
def main() -> None:
    """fxnas: neural architecture search as a compiler over torch.fx graphs."""


def _register() -> None:
    for mod_name, attr in COMMANDS:
        main.add_command(getattr(importlib.import_module(f"{__package__}.{mod_name}"), attr))


_register()
