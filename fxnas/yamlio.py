"""YAML reading that takes ``1e-3`` for a float, as users (and YAML 1.2) expect; PyYAML's 1.1 rules want ``1.0e-3``."""

from __future__ import annotations

import re
from typing import Any

import yaml


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
