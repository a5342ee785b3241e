"""The generated list of every registered component (docs/experiments.md and ``fxnas list``)."""

from __future__ import annotations

from pathlib import Path

from ..components import registries


def components_markdown() -> str:
    """A markdown list of every registered component per kind, with its one-line doc and options."""
    out = []
    for kind, reg in registries().items():
        out.append(f"### {kind}\n")
        families = {f.example: f for f in reg.families()}
        for name in reg.names():
            doc = reg.doc(name)
            if name in families:  # a family: show its name pattern and what the factory builds
                doc = f"family `{families[name].regex.pattern}`" + (f": {doc}" if doc else "")
            opts = ", ".join(f"`{o.name}`" for o in reg.options(name))
            line = f"- `{name}`" + (f" — {doc}" if doc else "")
            out.append(line + (f" (options: {opts})" if opts else ""))
        out.append("")
    return "\n".join(out)


DOC_START, DOC_END = "<!-- components:start -->", "<!-- components:end -->"


def write_components_doc(path: str | Path) -> None:
    """Regenerate the component list between the markers of ``path`` (docs/experiments.md)."""
    p = Path(path)
    text = p.read_text()
    head, _, rest = text.partition(DOC_START)
    _, _, tail = rest.partition(DOC_END)
    p.write_text(f"{head}{DOC_START}\n{components_markdown()}\n{DOC_END}{tail}")
