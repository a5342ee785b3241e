"""``fxnas report``: an experiment folder as one self-contained HTML page (plots inline as SVG)."""

from .data import RunData, read_run
from .page import render, write_report

__all__ = ["RunData", "read_run", "render", "write_report"]
