"""Lines a user writes for each setup of the ModularNAS usability study (its Table 7), counted from the files.

A line counts when it is neither blank nor a comment. Python lines are what a user writes beyond the model
file (the model itself is not edited: fxnas traces it as it is); YAML lines are the experiment config, and
the search-space lines are the config's ``construct:`` or ``elastic:`` section. Prints a Markdown table next
to the paper's figures for ModularNAS and NNI::

    python examples/usability/count_loc.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
SETUPS = {  # file -> (what it is, the paper's lines of code for ModularNAS, for NNI)
    "setup_a.yaml": ("A: random search, subnets trained from scratch", "0", "15"),
    "setup_b.yaml": ("B: ProxylessNAS supernet", "0", "15"),
    "setup_c.yaml": ("C: random search over elastic depth and width", "25", "200"),
}
SPACE_KEYS = ("construct", "elastic")
PAPER_SPACE = ("< 10", "30")  # the paper's lines for defining the search space (ModularNAS, NNI)


def code_lines(text: str, comment: str = "#") -> int:
    """Lines that are not blank and not only a comment."""
    return sum(1 for line in text.splitlines() if line.strip() and not line.strip().startswith(comment))


def space_lines(config: Path) -> int:
    """Lines of the config's search-space section (``construct:`` or ``elastic:``, with its nested lines)."""
    lines, inside = 0, False
    for line in config.read_text().splitlines():
        if not line.strip() or line.strip().startswith("#"):
            continue
        if not line.startswith((" ", "\t")):
            inside = line.split(":")[0] in SPACE_KEYS
        lines += inside
    return lines


def python_lines(folder: Path = HERE) -> int:
    """Python a user writes beyond the model file and this script: none, the configs name components only."""
    skip = {"model.py", Path(__file__).name, "__init__.py"}
    return sum(code_lines(p.read_text()) for p in folder.glob("*.py") if p.name not in skip)


def table(folder: Path = HERE) -> list[tuple[str, int, int, int, str, str]]:
    """(setup, Python lines, config lines, of which search space, ModularNAS paper, NNI paper) per setup."""
    rows = []
    py = python_lines(folder)
    for name, (what, modular, nni) in SETUPS.items():
        path = folder / name
        yaml.safe_load(path.read_text())  # a config that does not parse is not counted
        rows.append((what, py, code_lines(path.read_text()), space_lines(path), modular, nni))
    return rows


def markdown(rows: list[tuple[str, int, int, int, str, str]]) -> str:
    """The README table."""
    out = ["| setup | fxnas: Python lines | fxnas: config lines (search space) | ModularNAS (paper) | NNI (paper) |",
           "|---|---|---|---|---|",
           f"| search space | 0 (the model file is not edited) | see each setup "
           f"| {PAPER_SPACE[0]} | {PAPER_SPACE[1]} |"]
    out += [f"| {what} | {py} | {cfg} ({space}) | {modular} | {nni} |" for what, py, cfg, space, modular, nni in rows]
    return "\n".join(out)


if __name__ == "__main__":
    sys.stdout.write(markdown(table()) + "\n")
