"""YAML reading that takes ``1e-3`` for a float, as users (and YAML 1.2) expect; PyYAML's 1.1 rules want ``1.0e-3``."""

from __future__ import annotations

import re
from typing import Any

import yaml

from .errors import ConfigError


class _Loader(yaml.SafeLoader):
    """SafeLoader plus a float resolver for exponent notation without a dot."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
    list("-+0123456789."),
)


def load_yaml(text: str) -> Any:
    """Parse YAML safely, reading ``1e-3`` / ``3E+2`` as floats."""
    return yaml.load(text, Loader=_Loader)  # noqa: S506  (a SafeLoader subclass)


def yaml_error(where: str, text: str, exc: yaml.YAMLError) -> ConfigError:
    """A one-line ConfigError naming the line, the column, the problem and the offending line."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    if mark is None:
        return ConfigError(f"{where} is not valid YAML: {problem}")
    lines = text.splitlines()
    line = lines[mark.line].strip() if 0 <= mark.line < len(lines) else ""
    return ConfigError(f"{where} is not valid YAML: line {mark.line + 1}, column {mark.column + 1}: {problem} "
                       f"(the line reads: {line!r})")
