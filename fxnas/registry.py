"""One Registry type; every component kind (patterns, candidates, mixed ops, optimizers...) gets one.

A registry maps names to components: plain entries, regex families (``MB{k}E{e}``) and aliases (a name that
builds another entry with preset options). ``build`` is the one build path of every component kind: it takes
a name, ``{type: NAME, option: value}`` or ``{type: NAME, options: {...}}``, checks the options against the
constructor's signature and type hints (closest-name errors naming the key path), and calls it.

Example::

    >>> from fxnas.registry import Registry
    >>> SCHEDULES = Registry("schedule")
    >>> @SCHEDULES.register("Step")
    ... class Step:
    ...     def __init__(self, every: int = 10, gamma: float = 0.5) -> None:
    ...         self.every, self.gamma = every, gamma
    >>> SCHEDULES.build({"type": "Step", "every": 5}, where="sched").every
    5
    >>> SCHEDULES.build("Step", where="sched", gama=0.1)
    Traceback (most recent call last):
    fxnas.errors.ConfigError: sched: Step has no option 'gama'; did you mean gamma? Valid options: every, gamma
    >>> with SCHEDULES.scoped():      # tests register stand-ins without leaking them
    ...     _ = SCHEDULES.register("Tmp", obj=Step)
    >>> "Tmp" in SCHEDULES
    False
"""

from __future__ import annotations

import contextlib
import difflib
import functools
import inspect
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .errors import ConfigError, RegistryError, UnknownComponentError
from .options import Option, call_with, check_options, options_of


@dataclass(frozen=True)
class Family:
    """Names matching ``regex`` are built by ``factory(*groups)``; ``example`` is one such name."""

    regex: re.Pattern[str]
    factory: Callable[..., Any]
    example: str


def spec_parts(spec: Any, where: str) -> tuple[str, dict[str, Any]]:
    """(name, options) of ``"Name"``, ``{type: Name, k: v}`` or ``{type: Name, options: {...}}``."""
    if isinstance(spec, str):
        return spec, {}
    if not isinstance(spec, Mapping) or "type" not in spec:
        raise ConfigError(f"{where} needs a 'type' (e.g. {where}: {{type: NAME, option: value}}), got {spec!r}")
    if not isinstance(spec["type"], str):
        raise ConfigError(f"{where}.type must be a name, got {spec['type']!r}")
    nested = spec.get("options") or {}
    if not isinstance(nested, Mapping):
        raise ConfigError(f"{where}.options must be a mapping of option: value, got {nested!r}")
    opts = dict(nested)
    opts.update({k: v for k, v in spec.items() if k not in ("type", "options")})
    return spec["type"], opts


class Registry:
    """Maps names (and regex families such as ``MB{k}E{e}``) to components; YAML names are these names.

    ``internal`` names constructor arguments the build path supplies (an optimizer's ``space``, a mixed op's
    candidates): a config cannot set them and they are not listed as options.
    """

    def __init__(self, kind: str, internal: Sequence[str] = ()) -> None:
        self.kind = kind
        self.internal = tuple(internal)
        self._items: dict[str, Any] = {}
        self._families: list[Family] = []

    # --- registering ------------------------------------------------------------------------------------
    def register(self, name: str | None = None, obj: Any = None) -> Any:
        """Register ``obj`` under ``name`` (default: its ``__name__``); usable as a decorator."""

        def deco(o: Any) -> Any:
            key = name or o.__name__
            if key in self._items and self._items[key] is not o:
                raise RegistryError(f"{self.kind} {key!r} is already registered (by "
                                    f"{_origin(self._items[key])}); unregister it first or pick another name")
            self._items[key] = o
            return o

        return deco(obj) if obj is not None else deco

    def register_family(self, regex: str, example: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Register a factory called with the regex groups of any name that fully matches ``regex``."""

        def deco(factory: Callable[..., Any]) -> Callable[..., Any]:
            self._families.append(Family(re.compile(regex), factory, example))
            return factory

        return deco

    def alias(self, name: str, target: str, doc: str, **preset: Any) -> None:
        """Register ``name`` as ``target`` built with ``preset`` options (the same algorithm under another name)."""
        obj = functools.partial(self.get(target), **preset)
        obj.__doc__ = doc  # type: ignore[misc]  # partials take a docstring; listings show it
        self.register(name, obj)

    def unregister(self, name: str) -> None:
        """Remove entry ``name`` (a family is removed by its example name)."""
        if name in self._items:
            del self._items[name]
            return
        for f in self._families:
            if f.example == name:
                self._families.remove(f)
                return
        raise RegistryError(f"{self.kind} {name!r} is not registered")

    @contextlib.contextmanager
    def scoped(self) -> Iterator[Registry]:
        """Within the block, registrations and removals are undone on exit (for tests and experiments)."""
        items, families = dict(self._items), list(self._families)
        try:
            yield self
        finally:
            self._items, self._families = items, families

    # --- looking up -------------------------------------------------------------------------------------
    def _family(self, name: str) -> tuple[Family, re.Match[str]] | None:
        for f in self._families:
            m = f.regex.fullmatch(name)
            if m:
                return f, m
        return None

    def get(self, name: str) -> Any:
        """The component registered as ``name``; an unknown name raises with the closest valid names."""
        if not isinstance(name, str):
            raise RegistryError(f"a {self.kind} is named by a string, got {name!r}")
        if name in self._items:
            return self._items[name]
        found = self._family(name)
        if found:
            return found[0].factory(*found[1].groups())
        raise RegistryError(f"unknown {self.kind} {name!r}{self.hint(name)} "
                            f"Valid {self.kind}s: {', '.join(self.names())}")

    def hint(self, name: str) -> str:
        """``; did you mean X, Y?`` for a misspelt ``name`` (case-insensitive), or ``;``."""
        names = self.names()
        close = difflib.get_close_matches(name, names, n=3, cutoff=0.5)
        if not close:
            low = {n.lower(): n for n in names}
            close = [low[m] for m in difflib.get_close_matches(name.lower(), list(low), n=3, cutoff=0.5)]
        return f"; did you mean {', '.join(close)}?" if close else ";"

    def __contains__(self, name: object) -> bool:
        """True when ``name`` is registered or matches a family (never raises, never builds anything)."""
        return isinstance(name, str) and (name in self._items or self._family(name) is not None)

    def names(self) -> list[str]:
        """Registered names, with one example for each family."""
        return sorted(self._items) + [f.example for f in self._families]

    def families(self) -> list[Family]:
        """The registered families."""
        return list(self._families)

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._items) + len(self._families)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {len(self._items)} items, {len(self._families)} families)"

    # --- describing -------------------------------------------------------------------------------------
    def doc(self, name: str) -> str:
        """The first line of the entry's docstring (a family's: its factory's)."""
        found = self._family(name) if name not in self._items else None
        obj = found[0].factory if found else self.get(name)
        doc = inspect.getdoc(obj) or ""
        return doc.strip().splitlines()[0] if doc.strip() else ""

    def options(self, name: str) -> list[Option]:
        """The options entry ``name`` takes (empty for families: their options are in the name)."""
        if name not in self._items:
            return []
        return options_of(self._items[name], self.internal)[0]

    # --- building ---------------------------------------------------------------------------------------
    def resolve(self, spec: Any, where: str | None = None) -> tuple[str, Any, dict[str, Any]]:
        """(name, component, options) of a spec, with an unknown name reported at ``where``."""
        where = where or self.kind
        name, opts = spec_parts(spec, where)
        try:
            return name, self.get(name), opts
        except RegistryError as exc:
            raise UnknownComponentError(f"{where}{'' if isinstance(spec, str) else '.type'}: {exc}") from None

    def check(self, spec: Any, where: str | None = None, inject: Mapping[str, Any] | None = None,
              **options: Any) -> tuple[str, Any, dict[str, Any]]:
        """Validate ``spec`` without building: (name, component, options); ConfigError naming the key path."""
        where = where or self.kind
        name, obj, opts = self.resolve(spec, where)
        opts.update(options)
        check_options(where, name, obj, opts, self.internal, given=list(inject or {}))
        return name, obj, opts

    def build(self, spec: Any, where: str | None = None, inject: Mapping[str, Any] | None = None,
              **options: Any) -> Any:
        """Build the component ``spec`` names with its options (and ``options``), checked first.

        ``inject`` holds values the build path offers (``seed``, ``device``, ``space``...): each is passed
        when the constructor takes it and the spec does not set it.
        """
        _, obj, opts = self.check(spec, where, inject, **options)
        return call_with(obj, opts, inject or {})


def _origin(obj: Any) -> str:
    mod = getattr(obj, "__module__", None) or type(obj).__module__
    return f"{mod}.{getattr(obj, '__qualname__', type(obj).__name__)}"
