"""The report page: one self-contained HTML file (inline CSS and SVG, no script, nothing fetched)."""

from __future__ import annotations

import html
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from .data import RunData
from .plots import alpha_svgs, history_svg, pareto_svg

REFRESH_S = 10  # how often a browser reloads the page of a run still going

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2rem auto;max-width:1100px;color:#222;
padding:0 1rem}
h1{font-size:1.5rem}h2{font-size:1.15rem;border-bottom:1px solid #ddd;padding-bottom:.2rem;margin-top:2rem}
table{border-collapse:collapse;font-size:.85rem;margin:.5rem 0}td,th{border:1px solid #ddd;padding:.25rem .5rem;
text-align:left;vertical-align:top}th{background:#f4f4f4}.plot svg{max-width:100%;height:auto}
.grid{display:flex;flex-wrap:wrap;gap:1rem}.grid figure{margin:0;flex:1 1 380px}
.status{display:inline-block;padding:.1rem .5rem;border-radius:.3rem;font-size:.8rem}
.done{background:#d4f4dd}.running{background:#fdf1c7}pre{background:#f7f7f7;padding:.75rem;overflow:auto;
font-size:.8rem}.note{color:#a33}.chosen{font-weight:bold}
"""


def _e(v: Any) -> str:
    return html.escape(str(v))


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, (list, tuple)):
        return "x".join(map(str, v)) if all(isinstance(x, int) for x in v) else ", ".join(map(str, v))
    return "-" if v is None else str(v)


def table(header: Sequence[str], rows: Sequence[Sequence[Any]], cls: str = "") -> str:
    """An HTML table (cells escaped)."""
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{_e(_fmt(c))}</td>" for c in r) + "</tr>" for r in rows)
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _kv(d: Mapping[str, Any]) -> str:
    return table(["", "value"], [(k, v) for k, v in d.items()])


def _plot(svg: str | None, what: str) -> str:
    if svg is None:
        return f"<p>No {_e(what)} recorded.</p>"
    return f'<div class="plot" data-plot="{_e(what)}">{svg}</div>'


def _slots_section(run: RunData) -> str:
    if not run.slots:
        return "<p>No slot table (see the notes).</p>"
    rows = []
    for s in run.slots:
        cands = ", ".join(f"[{c}]" if c == s["chosen"] else str(c) for c in s["candidates"])
        rows.append((s["name"], s["in_shape"], s["out_shape"], s["stride"], cands, s["chosen"]))
    return table(["slot", "input", "output", "stride", "candidates ([chosen])", "chosen"], rows, "slots")


def _pareto_section(run: RunData) -> str:
    if not run.pareto:
        return "<p>Single-objective run: no Pareto front.</p>"
    objs = [o["metric"] for o in run.pareto.get("objectives", [])]
    front = sorted(run.pareto.get("front") or [], key=lambda r: tuple(float(r["metrics"].get(m, 0)) for m in objs[:2]))
    rows = [(i + 1, *[r["metrics"].get(m) for m in objs], ", ".join(f"{k}={v}" for k, v in r["arch"].items()))
            for i, r in enumerate(front)]
    return (_plot(pareto_svg(run.history, run.pareto), "Pareto front")
            + table(["#", *objs, "arch"], rows, "pareto"))


def _alpha_section(run: RunData) -> str:
    cands = {s["name"]: s["candidates"] for s in run.slots}
    svgs = alpha_svgs(run.alphas, cands)
    if not svgs:
        return "<p>No architecture weights (alphas) recorded: not a gradient method.</p>"
    figs = "".join(f'<figure class="plot" data-plot="alpha {_e(n)}">{svg}</figure>' for n, svg in svgs.items())
    return f'<div class="grid">{figs}</div>'


def render(run: RunData) -> str:
    """The whole page for ``run``; a run without summary.json reloads itself every REFRESH_S seconds."""
    name = run.config.get("name") or run.folder.name
    metric, mode = run.objective
    status = ('<span class="status done">finished</span>' if run.finished else
              f'<span class="status running">running (this page reloads every {REFRESH_S} s)</span>')
    refresh = "" if run.finished else f'<meta http-equiv="refresh" content="{REFRESH_S}">'
    best = run.best or {}
    parts = [
        f"<h1>fxnas report: {_e(name)} {status}</h1>",
        f"<p>{len(run.history)} results; objective {_e(mode)}:{_e(metric)}; written "
        f"{_e(time.strftime('%Y-%m-%d %H:%M:%S'))}.</p>",
        "".join(f'<p class="note">{_e(n)}</p>' for n in run.notes),
        "<h2>Metric history</h2>", _plot(history_svg(run.history, metric, mode), "metric history"),
        "<h2>Architecture weights (softmax of alpha) per slot</h2>", _alpha_section(run),
        "<h2>Pareto front</h2>", _pareto_section(run),
        "<h2>Slots</h2>", _slots_section(run),
        "<h2>Final architecture</h2>",
        _kv(best.get("arch", {})) if best else "<p>No best arch yet.</p>",
        "<h3>Its metrics</h3>", _kv({**best.get("metrics", {}),
                                     **{f"test_{k}": v for k, v in (run.summary or {}).get("test_metrics",
                                                                                            {}).items()}}),
        "<h3>Its profile</h3>", _kv(run.profile) if run.profile else "<p>Profiled once the run has exported "
                                                                     "its subnet.</p>",
        "<h2>Config</h2>", f"<pre>{_e(yaml.safe_dump(run.config, sort_keys=False))}</pre>",
    ]
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">{refresh}'
            f"<title>fxnas report: {_e(name)}</title><style>{CSS}</style></head><body>"
            + "\n".join(parts) + "</body></html>\n")


def write_report(folder: str | Path, out: str | Path | None = None, profile: bool = True) -> Path:
    """Read the run in ``folder`` and write its page to ``out`` (default ``<folder>/report.html``), atomically."""
    from ..outputs import atomic_write
    from .data import read_run

    run = read_run(folder, profile=profile)
    path = Path(out) if out is not None else Path(folder) / "report.html"
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, render(run))
    return path


__all__ = ["render", "write_report"]
