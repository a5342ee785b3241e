"""Rich consoles for fxnas's output: laid out to the terminal on a terminal, never wrapped when piped."""

from __future__ import annotations

import os
from typing import IO

from rich.console import Console

# A pipe or a file has no width: rich would assume 80 columns and break every longer record (a result line,
# the best arch) over several lines, which log readers and grep then see as pieces.
PIPE_WIDTH = 10_000


def make_console(*, stderr: bool = False, quiet: bool = False, file: IO[str] | None = None,
                 min_width: int | None = None) -> Console:
    """A rich Console on stdout (or stderr, or ``file``).

    On a terminal it wraps to the terminal's width (at least ``min_width`` columns when given). Anywhere else
    lines are never wrapped and tables are as wide as their content, unless $COLUMNS sets a width.
    """
    console = Console(stderr=stderr, quiet=quiet, file=file)
    if console.is_terminal:
        if min_width is not None and console.width < min_width:
            console.width = min_width
        return console
    console.soft_wrap = True
    if "COLUMNS" not in os.environ:
        console.width = PIPE_WIDTH
    return console
