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
    ("tune_cmd", "tune"),
    ("pipeline_cmd", "pipeline"),
    ("export_cmd", "export"),
    ("list_cmd", "list_components"),
    ("report_cmd", "report"),
]


def one_line(exc: BaseException) -> str:
    """An exception message on one line (users see this instead of a traceback)."""
    return " ".join(str(exc).split()) or type(exc).__name__


class FxnasGroup(click.Group):
    """A click group that turns every error into a one-line ``Error: ...`` (exit code 1; 2 for bad input of
    ``search``); ``--debug`` shows the traceback instead."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort, KeyboardInterrupt):
            raise
        except FxnasError as exc:
            if ctx.obj and ctx.obj.get("debug"):
                raise
            raise click.ClickException(one_line(exc)) from None
        except Exception as exc:  # a bug, or a failure in user code: one line unless --debug
            if ctx.obj and ctx.obj.get("debug"):
                raise
            raise click.ClickException(f"{type(exc).__name__}: {one_line(exc)} (rerun with --debug for the "
                                       f"traceback)") from None


@click.group(cls=FxnasGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show Python tracebacks instead of one-line errors.")
@click.version_option(package_name="fxnas")
@click.pass_context
def main(ctx: click.Context, debug: bool) -> None:
    """fxnas: neural architecture search as a compiler over torch.fx graphs."""
    ctx.obj = {"debug": debug}


def _register() -> None:
    for mod_name, attr in COMMANDS:
        main.add_command(getattr(importlib.import_module(f"{__package__}.{mod_name}"), attr))


_register()
