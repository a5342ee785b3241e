"""The console side of a run: messages and nested progress bars with ETA (silent with ``--quiet``)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from .console import make_console


class Tracker:
    """One progress bar (a no-op when progress is off)."""

    def __init__(self, progress: Progress | None, task: Any) -> None:
        self._progress, self._task = progress, task

    def advance(self, n: float = 1) -> None:
        """Move the bar ``n`` steps on."""
        if self._progress is not None:
            self._progress.advance(self._task, n)

    def note(self, text: str) -> None:
        """Show ``text`` next to the bar (latest metrics)."""
        if self._progress is not None:
            self._progress.update(self._task, info=text)


class Display:
    """Prints messages and shows progress bars; nested bars share one live display."""

    def __init__(self, console: Console | None = None, progress: bool = True) -> None:
        self.console = console or make_console(stderr=True)
        self.show_progress = progress
        self._progress: Progress | None = None

    def print(self, msg: str, style: str | None = None) -> None:
        """Print ``msg`` above the bars."""
        target = self._progress.console if self._progress is not None else self.console
        target.print(msg, style=style, highlight=False, markup=False)

    @contextlib.contextmanager
    def track(self, total: int, description: str, completed: int = 0) -> Iterator[Tracker]:
        """A progress bar with ETA for ``total`` units of work."""
        if not self.show_progress or not self.console.is_terminal:  # bars in a pipe are only blank lines
            yield Tracker(None, None)
            return
        owner = self._progress is None
        if owner:
            self._progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                      TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
                                      TextColumn("{task.fields[info]}"), console=self.console, transient=True)
            self._progress.start()
        progress = self._progress
        assert progress is not None
        task = progress.add_task(description, total=total, completed=completed, info="")
        try:
            yield Tracker(progress, task)
        finally:
            progress.remove_task(task)
            if owner:
                progress.stop()
                self._progress = None
