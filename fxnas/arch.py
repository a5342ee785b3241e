"""Architecture descriptions: a plain ``{param name: value}`` dict, read from and written to YAML or JSON."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError, missing_file
from .space import SearchSpace
from .yamlio import load_yaml, yaml_error


def to_plain(value: Any) -> Any:
    """A value as plain YAML/JSON data (numpy and torch scalars become Python numbers)."""
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", 0) == 0:
        return value.item()
    if isinstance(value, (list, tuple)):
        return [to_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): to_plain(v) for k, v in value.items()}
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    raise ConfigError(f"arch value {value!r} ({type(value).__name__}) cannot be written; use str, int or float")


def write_arch(arch: Mapping[str, Any], path: str | os.PathLike) -> Path:
    """Write ``arch`` to ``path``: JSON for ``.json``, YAML otherwise."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = to_plain(dict(arch))
    if path.suffix.lower() == ".json":
        path.write_text(json.dumps(data, indent=2) + "\n")
    else:
        import yaml

        path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def read_arch(path: str | os.PathLike, space: SearchSpace | None = None) -> dict[str, Any]:
    """Read an arch file (YAML or JSON; a top-level ``arch:`` key is unwrapped), validated against ``space``."""
    path = Path(path)
    if not path.is_file():
        raise missing_file("arch file", path)
    text = path.read_text()
    try:
        if path.suffix.lower() == ".json":
            data = json.loads(text)
        else:
            data = load_yaml(text)
    except yaml.YAMLError as exc:
        raise yaml_error(f"arch file {str(path)!r}", text, exc) from None
    except ValueError as exc:  # json.JSONDecodeError: one line with its position
        raise ConfigError(f"arch file {str(path)!r} is not valid {path.suffix}: {exc}") from None
    if isinstance(data, Mapping) and set(data) >= {"arch"} and isinstance(data["arch"], Mapping):
        data = data["arch"]  # results and history entries wrap the arch
    if not isinstance(data, Mapping):
        raise ConfigError(f"arch file {str(path)!r} must hold a mapping of param name to value, "
                          f"got {type(data).__name__}")
    arch = {str(k): v for k, v in data.items()}
    if space is None:
        return arch
    try:
        return space.validate(arch)
    except ConfigError as exc:
        raise ConfigError(f"arch file {str(path)!r}: {exc}") from None
