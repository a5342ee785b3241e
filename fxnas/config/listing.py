"""The registered components as rows (kind, name, one-line doc, options), filtered: ``fxnas list``."""

from __future__ import annotations

from dataclasses import dataclass

from ..components import registries
from ..errors import ConfigError


@dataclass(frozen=True)
class Row:
    """One registered component."""

    kind: str
    name: str
    doc: str
    options: tuple[str, ...]


def component_rows(kind: str | None = None, pattern: str | None = None) -> list[Row]:
    """Every component of ``kind`` (all kinds when None) whose name or doc contains ``pattern`` (any case).

    A family (a name pattern such as ``MB<k>E<e>``) is listed by its example name and its regex.
    ConfigError for an unknown kind, naming the valid ones.
    """
    regs = registries()
    if kind is not None:
        matches = [k for k in regs if k == kind or k.replace(" ", "_") == kind or k.replace(" ", "") == kind]
        if not matches:
            raise ConfigError(f"unknown component kind {kind!r}; valid kinds: "
                              f"{', '.join(k.replace(' ', '_') for k in regs)}")
        regs = {matches[0]: regs[matches[0]]}
    needle = (pattern or "").lower()
    rows = []
    for k, reg in regs.items():
        families = {f.example: f for f in reg.families()}
        for name in reg.names():
            doc = reg.doc(name)
            if name in families:
                doc = f"family {families[name].regex.pattern}" + (f": {doc}" if doc else "")
            if needle and needle not in name.lower() and needle not in doc.lower():
                continue
            rows.append(Row(k, name, doc, tuple(o.describe() for o in reg.options(name))))
    return rows
