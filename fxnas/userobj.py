"""Importing what users wrote: objects named ``file.py:name`` or ``package.module:name``, and plugin modules.

A config's ``imports: [my_ops.py, mypkg.nas_ops]`` (and ``--import`` on the CLI) import user modules before
the config is checked, so the components they register (``@CANDIDATES.register_family``,
``@OPTIMIZERS.register``...) are usable by name everywhere.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from .errors import ConfigError
from .modelfile import import_model_file


def load_object(ref: str) -> Any:
    """The object named by ``"path/to/file.py:name"`` or ``"package.module:name"``."""
    if ":" not in ref:
        raise ConfigError(f"{ref!r} must look like 'file.py:name' or 'package.module:name'")
    mod_ref, _, name = ref.rpartition(":")
    if mod_ref.endswith(".py"):
        if not Path(mod_ref).is_file():
            raise ConfigError(f"python file {mod_ref!r} does not exist")
        module = import_model_file(mod_ref)  # one importer for user files: stable module names, ModelError
    else:
        try:
            module = importlib.import_module(mod_ref)
        except ImportError as e:
            raise ConfigError(f"cannot import {mod_ref!r}: {e}") from None
    if not hasattr(module, name):
        public = [n for n in dir(module) if not n.startswith("_")]
        raise ConfigError(f"{mod_ref} has no {name!r}; it defines {public[:20]}")
    return getattr(module, name)


def resolve_callable(fn: Callable[..., Any] | str | None) -> Callable[..., Any] | None:
    """A callable, or one loaded from a ``file.py:name`` reference (YAML configs give strings)."""
    if fn is None or callable(fn):
        return fn
    obj = load_object(fn)
    if not callable(obj):
        raise ConfigError(f"{fn!r} is not callable")
    return obj


def import_module_ref(ref: str, base: str | os.PathLike | None = None) -> ModuleType:
    """Import ``ref``: a ``.py`` file (relative to ``base``, the config's folder) or a dotted module name."""
    if not isinstance(ref, str) or not ref:
        raise ConfigError(f"imports: each entry is a .py file or a module name, got {ref!r}")
    if ref.endswith(".py"):
        path = Path(ref) if base is None or os.path.isabs(ref) else Path(base) / ref
        if not path.is_file():
            raise ConfigError(f"imports: {ref!r} does not exist (looked at {path.resolve()})")
        return import_model_file(path)
    try:
        return importlib.import_module(ref)
    except ImportError as exc:
        raise ConfigError(f"imports: cannot import module {ref!r}: {exc}") from None


def import_modules(refs: Sequence[str], base: str | os.PathLike | None = None) -> list[ModuleType]:
    """Import every entry of ``refs`` (see import_module_ref), in order."""
    if isinstance(refs, str):
        refs = [refs]
    return [import_module_ref(r, base) for r in refs]
