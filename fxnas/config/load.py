"""Reading experiment configs: packaged names, YAML files (errors with line and column), ``-o`` overrides,
the ``imports`` of user modules, then validation (fxnas.config.schema)."""

from __future__ import annotations

import copy
import difflib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from ..errors import ConfigError
from ..userobj import import_modules
from ..yamlio import load_yaml, yaml_error

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"


def packaged_configs() -> list[str]:
    """Names of the configs shipped in fxnas/configs (usable as ``-c NAME``)."""
    return sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))


def resolve_config(ref: str | Path) -> Path:
    """The YAML file of ``ref``: a path, or the name of a packaged config."""
    p = Path(ref)
    if p.is_file():
        return p
    named = CONFIG_DIR / f"{ref}.yaml"
    if named.is_file():
        return named
    close = difflib.get_close_matches(str(ref), packaged_configs(), n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise ConfigError(f"config {str(ref)!r} is neither a file nor a packaged config (no file at {p.resolve()}){hint} "
                      f"Packaged configs: {', '.join(packaged_configs())}")


def read_yaml_file(path: Path) -> Any:
    """The data of a YAML file; ConfigError with the line and column of a syntax error."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read {str(path)!r}: {exc.strerror}") from None
    try:
        return load_yaml(text)
    except yaml.YAMLError as exc:
        raise yaml_error(str(path), text, exc) from None


def apply_override(cfg: dict[str, Any], override: str) -> None:
    """Apply ``key.path=value`` in place (value parsed as YAML; list items by index: ``estim.0.epochs=2``)."""
    key, sep, raw = override.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"override {override!r} must look like key.path=value")
    try:
        value = load_yaml(raw)
    except yaml.YAMLError as exc:
        raise ConfigError(f"override {override!r}: {yaml_error('the value', raw, exc)}; quote a string value "
                          f"(-o '{key}=\"{raw}\"')") from None
    parts = key.strip().split(".")
    node: Any = cfg
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise ConfigError(f"override {key!r}: {'.'.join(parts[:i]) or 'config'} is a list of "
                                  f"{len(node)}; use an index 0..{len(node) - 1}")
            if last:
                node[int(part)] = value
            else:
                node = node[int(part)]
        elif isinstance(node, dict):
            if last:
                node[part] = value
            else:
                if not isinstance(node.get(part), (dict, list)):
                    node[part] = {} if node.get(part) is None else {"type": node[part]}
                node = node[part]
        else:
            raise ConfigError(f"override {key!r}: {'.'.join(parts[:i])} is a value, not a section")


def load_config(ref: str | Path | Mapping[str, Any], overrides: Sequence[str] = (), name: str | None = None,
                out_root: str | None = None, imports: Sequence[str] = ()) -> dict[str, Any]:
    """Read a config (path, packaged name or mapping), apply overrides, import user modules, validate.

    Relative paths in a config file (model files, data folders, arch files, imports) resolve against the
    file's folder; in a mapping, against the working directory. ``imports`` adds to the config's own.
    """
    from .schema import validate

    if isinstance(ref, Mapping):
        raw, stem, base = copy.deepcopy(dict(ref)), "exp", None
    else:
        path = resolve_config(ref)
        raw, stem, base = read_yaml_file(path) or {}, path.stem, path.resolve().parent
    if not isinstance(raw, dict):
        raise ConfigError(f"a config must be a mapping of sections, got {type(raw).__name__}")
    for o in overrides:
        apply_override(raw, o)
    raw.setdefault("name", stem)
    if name:
        raw["name"] = name
    if out_root:
        raw["out_root"] = out_root
    own = raw.get("imports") or []
    if isinstance(own, str):
        own = [own]
    if not isinstance(own, list):
        raise ConfigError(f"imports must be a list of .py files or module names, got {own!r}")
    import_modules(own, base)
    import_modules(list(imports), None)  # the CLI's, relative to the working directory
    return validate(raw, base)
