"""What the fxnas commands share: options whose help lists a registry's names, the --import option."""

from __future__ import annotations

from typing import Any

import click

from ..errors import FxnasError


class RegistryOption(click.Option):
    """An option whose help ends with the names registered in ``registry`` (read when help is shown, so
    components a user module registers through ``--import`` are listed too)."""

    def __init__(self, *args: Any, registry: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.registry = registry

    def get_help_record(self, ctx: click.Context) -> tuple[str, str] | None:
        record = super().get_help_record(ctx)
        if record is None or self.registry is None:
            return record
        names = ", ".join(self.registry.names())
        return record[0], f"{record[1]} Registered: {names}."


def _import(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> tuple[str, ...]:
    from ..userobj import import_modules

    try:
        import_modules(list(value))
    except FxnasError as exc:
        raise click.BadParameter(" ".join(str(exc).split()), ctx, param) from None
    return value


def import_option(f: Any) -> Any:
    """``--import FILE.py|MODULE`` (repeatable): user modules imported first, so their components are usable by
    name (and listed in --help)."""
    return click.option("--import", "imports", multiple=True, metavar="FILE.py|MODULE", is_eager=True,
                        expose_value=True, callback=_import,
                        help="Import a module that registers components (candidates, patterns, mixed ops, "
                             "optimizers...) before anything else; repeatable.")(f)


def epilog(example: str) -> str:
    """A help epilog: the example shown at the end of a command's --help."""
    return f"Example:\n\n\b\n  {example}"
