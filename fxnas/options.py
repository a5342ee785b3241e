"""Options of a component: what its constructor takes, read from its signature and type hints, and checked.

The one place where a config's options meet Python signatures. ``options_of(fn)`` lists the options a
class (through its chain of ``__init__`` methods) or a function takes; ``check_options`` rejects an unknown
key with the closest valid names and a value of the wrong type with the key path, the value and what would
be valid. Paths in a config resolve against the config file's folder: options annotated :data:`FilePath`
say which.

Example::

    >>> def digits(size: int = 8, batch_size: int = 64, root: FilePath | None = None): ...
    >>> check_options("data", "digits", digits, {"size": "ten"})
    Traceback (most recent call last):
    fxnas.errors.ConfigError: data.size: 'ten' is not an int (digits takes size: int, e.g. size: 8)
"""

from __future__ import annotations

import collections.abc as cabc
import difflib
import functools
import inspect
import os
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NewType

from .errors import ConfigError

FilePath = NewType("FilePath", str)
"""A path option: a relative value in a config file resolves against the config file's folder."""

_EMPTY = inspect.Parameter.empty


@dataclass(frozen=True)
class Option:
    """One constructor option: its name, type hint (``Any`` when none) and default (``REQUIRED`` when none)."""

    name: str
    hint: Any = Any
    default: Any = _EMPTY

    @property
    def required(self) -> bool:
        """True when the option has no default."""
        return self.default is _EMPTY

    def describe(self) -> str:
        """``name: type = default`` for listings."""
        text = f"{self.name}: {type_name(self.hint)}"
        return text if self.required else f"{text} = {self.default!r}"


REQUIRED = _EMPTY

# base classes whose ``**kwargs`` exist only to reject unknown options: the option chain stops at them
_STRICT_BASES = ("Estimator", "Optimizer", "Criterion", "MixedOp", "Module")


def _hints(fn: Callable[..., Any]) -> dict[str, Any]:
    """Resolved type hints of ``fn``; names only importable for type checkers fall back to ``Any``."""
    try:
        return typing.get_type_hints(fn)
    except Exception:  # a forward reference under TYPE_CHECKING: resolve what can be resolved, one by one
        out: dict[str, Any] = {}
        module = inspect.getmodule(fn)
        ns = dict(vars(module)) if module is not None else {}
        for k, v in getattr(fn, "__annotations__", {}).items():
            try:
                out[k] = eval(v, ns) if isinstance(v, str) else v  # noqa: S307  (annotations of our own code)
            except Exception:
                out[k] = Any
        return out


def options_of(fn: Any, internal: Sequence[str] = ()) -> tuple[list[Option], bool]:
    """(options, takes any other keyword) of a function, a class through its ``__init__`` chain, or a partial.

    ``internal`` names are left out: the build path passes them (an optimizer's ``space``), a config may not.
    A partial's preset keywords are left out too (a registry alias fixes them).
    """
    preset: Mapping[str, Any] = {}
    if isinstance(fn, functools.partial):
        fn, preset = fn.func, fn.keywords
    if inspect.isclass(fn):
        chain = [(c.__dict__["__init__"], c.__name__) for c in fn.__mro__ if "__init__" in c.__dict__]
    else:
        chain = [(fn, "")]
    skip = {"self", "cls", *internal, *preset}
    out: list[Option] = []
    seen: set[str] = set()
    for init, owner in chain:
        try:
            params = list(inspect.signature(init).parameters.values())
        except (TypeError, ValueError):
            return out, True
        hints = _hints(init)
        for p in params:
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name not in skip and p.name not in seen:
                seen.add(p.name)
                out.append(Option(p.name, hints.get(p.name, Any), p.default))
        if owner in _STRICT_BASES or not any(p.kind == p.VAR_KEYWORD for p in params):
            return out, False
    return out, True


def closest_hint(key: str, valid: Sequence[str]) -> str:
    """``; did you mean X, Y?`` for a misspelt ``key`` among ``valid`` (case-insensitive too), or ``''``."""
    close = difflib.get_close_matches(key, list(valid), n=3, cutoff=0.5)
    if not close:
        low = {v.lower(): v for v in valid}
        close = [low[m] for m in difflib.get_close_matches(key.lower(), list(low), n=3, cutoff=0.5)]
    return f"; did you mean {', '.join(close)}?" if close else ""


def check_options(where: str, name: str, fn: Any, options: Mapping[str, Any], internal: Sequence[str] = (),
                  given: Sequence[str] = ()) -> list[Option]:
    """ConfigError for an option ``fn`` does not take, a value of the wrong type, or a missing required one.

    ``where`` is the key path of the section (``trainer``, ``estim.0``); ``given`` names values the build path
    supplies itself (injected), which count as present. Returns the options ``fn`` takes.
    """
    opts, anything = options_of(fn, internal)
    by_name = {o.name: o for o in opts}
    for k, v in options.items():
        if k not in by_name:
            if anything:
                continue
            raise ConfigError(f"{where}: {name} has no option {k!r}{closest_hint(k, list(by_name))} "
                              f"Valid options: {', '.join(by_name) or '(none)'}")
        opt = by_name[k]
        if not matches(v, opt.hint):
            eg = f", e.g. {k}: {opt.default!r}" if not opt.required and opt.default is not None else ""
            raise ConfigError(f"{where}.{k}: {v!r} is not {article(type_name(opt.hint))} "
                              f"({name} takes {k}: {type_name(opt.hint)}{eg})")
    missing = [o.name for o in opts if o.required and o.name not in options and o.name not in given]
    if missing:
        raise ConfigError(f"{where}: {name} needs {', '.join(repr(m) for m in missing)} "
                          f"({'; '.join(by_name[m].describe() for m in missing)})")
    return opts


def article(text: str) -> str:
    """``an int`` / ``a float`` / ``one of ...`` for messages."""
    if text.startswith(("one of", "a ", "an ")):
        return text
    return f"an {text}" if text[:1] in "aeiou" else f"a {text}"


# --- type hints -----------------------------------------------------------------------------------------------
def _origin(hint: Any) -> Any:
    return typing.get_origin(hint)


def _is_union(hint: Any) -> bool:
    return _origin(hint) is typing.Union or isinstance(hint, types.UnionType)


def _supertype(hint: Any) -> Any:
    """A NewType's underlying type (FilePath -> str)."""
    while hasattr(hint, "__supertype__"):
        hint = hint.__supertype__
    return hint


def matches(value: Any, hint: Any) -> bool:
    """True when ``value`` (plain config data, or a Python object) fits the type ``hint``.

    Checks what a YAML value can get wrong (numbers, strings, booleans, lists, mappings, literals, None);
    hints it cannot judge (Any, type variables, protocols) accept anything.
    """
    hint = _supertype(hint)
    if hint is Any or hint is inspect.Parameter.empty or isinstance(hint, typing.TypeVar):
        return True
    if hint is None or hint is type(None):
        return value is None
    if _is_union(hint):
        return any(matches(value, h) for h in typing.get_args(hint))
    origin, args = _origin(hint), typing.get_args(hint)
    if origin is typing.Literal:
        return value in args
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    if hint in (os.PathLike,) or (inspect.isclass(hint) and issubclass(hint, os.PathLike)):
        return isinstance(value, (str, os.PathLike))
    base = origin or hint
    if base in (list, tuple, set, frozenset, cabc.Sequence, cabc.Iterable, cabc.Collection, cabc.MutableSequence):
        if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, (list, tuple, set, frozenset)):
            return False
        if base is tuple and args and args[-1] is not Ellipsis:
            return len(value) == len(args) and all(matches(v, h) for v, h in zip(value, args))
        item = args[0] if args else Any
        return all(matches(v, item) for v in value)
    if base in (dict, cabc.Mapping, cabc.MutableMapping):
        if not isinstance(value, Mapping):
            return False
        if len(args) == 2:
            return all(matches(k, args[0]) and matches(v, args[1]) for k, v in value.items())
        return True
    if base is cabc.Callable:
        return callable(value)
    if inspect.isclass(base):
        if base.__module__ == "torch" and base.__name__ == "device":
            return isinstance(value, (str, base))
        try:
            return isinstance(value, base)
        except TypeError:
            return True
    return True


def type_name(hint: Any) -> str:
    """A readable name of a type hint (``int``, ``float | None``, ``list of float``, ``one of 'a', 'b'``)."""
    if hasattr(hint, "__supertype__"):
        return "path" if hint is FilePath else type_name(_supertype(hint))
    if hint is Any or hint is inspect.Parameter.empty:
        return "any value"
    if hint is None or hint is type(None):
        return "None"
    if _is_union(hint):
        return " | ".join(type_name(h) for h in typing.get_args(hint))
    origin, args = _origin(hint), typing.get_args(hint)
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    base = origin or hint
    if base in (list, tuple, set, cabc.Sequence, cabc.Iterable, cabc.Collection):
        if base is tuple and args and args[-1] is not Ellipsis:
            return "list of " + ", ".join(type_name(a) for a in args)
        return f"list of {type_name(args[0])}" if args else "list"
    if base in (dict, cabc.Mapping, cabc.MutableMapping):
        return "mapping"
    if base is cabc.Callable:
        return "callable"
    return getattr(base, "__name__", str(base))


def is_path_hint(hint: Any) -> bool:
    """True when ``hint`` is FilePath, or a union holding it."""
    if hint is FilePath:
        return True
    return _is_union(hint) and any(h is FilePath for h in typing.get_args(hint))


def resolve_path(value: str, base: str | os.PathLike | None) -> str:
    """``value`` made absolute against ``base`` (the config file's folder) when it is relative."""
    if base is None or os.path.isabs(value):
        return value
    return os.path.normpath(os.path.join(os.fspath(base), value))


def call_with(fn: Any, options: Mapping[str, Any], inject: Mapping[str, Any]) -> Any:
    """``fn(**options)`` plus each injected value ``fn`` takes and ``options`` leave out."""
    names = {o.name for o in options_of(fn)[0]}  # named parameters only: a **kwargs catch-all gets none
    extra = {k: v for k, v in inject.items() if k not in options and k in names}
    return fn(**options, **extra)
