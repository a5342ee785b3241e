"""One Registry type; every component kind (patterns, candidates, mixed ops, optimizers...) gets one."""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterator
from typing import Any

from .errors import RegistryError


class Registry:
    """Maps names (and regex families such as ``MB{k}E{e}``) to builders; YAML names are these names."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, Any] = {}
        self._families: list[tuple[re.Pattern[str], Callable[..., Any], str]] = []

    def register(self, name: str | None = None, obj: Any = None) -> Any:
        """Register ``obj`` under ``name``; usable as a decorator (``@reg.register()``)."""

        def deco(o: Any) -> Any:
            key = name or o.__name__
            if key in self._items and self._items[key] is not o:
                raise RegistryError(f"{self.kind} {key!r} is already registered")
            self._items[key] = o
            return o

        return deco(obj) if obj is not None else deco

    def register_family(self, regex: str, example: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Register a factory called with the regex groups of any name that fully matches ``regex``."""

        def deco(factory: Callable[..., Any]) -> Callable[..., Any]:
            self._families.append((re.compile(regex), factory, example))
            return factory

        return deco

    def get(self, name: str) -> Any:
        """The object registered as ``name``; an unknown name raises with the closest valid names."""
        if name in self._items:
            return self._items[name]
        for rx, factory, _ in self._families:
            m = rx.fullmatch(name)
            if m:
                return factory(*m.groups())
        close = difflib.get_close_matches(name, self.names(), n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else ";"
        raise RegistryError(
            f"unknown {self.kind} {name!r}{hint} Valid {self.kind}s: {', '.join(self.names())}"
        )

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        try:
            self.get(name)
        except RegistryError:
            return False
        return True

    def names(self) -> list[str]:
        """Registered names, with one example for each family."""
        return sorted(self._items) + [ex for _, _, ex in self._families]

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {len(self._items)} items, {len(self._families)} families)"
