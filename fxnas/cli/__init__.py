"""The ``fxnas`` command-line interface (a click group; subcommands live in ``*_cmd`` modules)."""

from .main import main

__all__ = ["main"]
