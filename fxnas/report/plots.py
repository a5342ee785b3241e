"""The report's plots as inline SVG (matplotlib's SVG canvas on its own Figure; pyplot is left alone)."""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from typing import Any


def _figure(w: float = 6.0, h: float = 3.6) -> Any:
    from matplotlib.backends.backend_svg import FigureCanvasSVG
    from matplotlib.figure import Figure

    fig = Figure(figsize=(w, h))
    FigureCanvasSVG(fig)
    return fig


def to_svg(fig: Any) -> str:
    """The figure as an ``<svg>`` element (the XML prolog and doctype dropped, for inlining in HTML)."""
    buf = io.StringIO()
    fig.tight_layout()
    fig.savefig(buf, format="svg")
    text = buf.getvalue()
    return text[text.index("<svg"):]


def history_svg(history: Sequence[dict[str, Any]], metric: str, mode: str) -> str | None:
    """Each result's ``metric`` in order, and the best so far (max or min)."""
    pts = [(i, float(r["metrics"][metric])) for i, r in enumerate(history)
           if isinstance(r.get("metrics", {}).get(metric), (int, float)) and not r.get("failed")]
    if not pts:
        return None
    fig = _figure()
    ax = fig.add_subplot()
    xs, ys = zip(*pts)
    best, run = [], -math.inf if mode == "max" else math.inf
    for y in ys:
        run = max(run, y) if mode == "max" else min(run, y)
        best.append(run)
    ax.plot(xs, ys, "o", ms=4, alpha=0.6, label=metric)
    ax.step(xs, best, where="post", lw=2, label=f"best so far ({mode})")
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("result #")
    ax.set_ylabel(metric)
    ax.set_title("metric history")
    ax.legend(loc="best", fontsize=8)
    ax.grid(alpha=0.3)
    return to_svg(fig)


def softmax(v: Sequence[float]) -> list[float]:
    """softmax of a list (the alphas file holds it too; recomputed when only raw alphas were logged)."""
    m = max(v)
    e = [math.exp(x - m) for x in v]
    s = sum(e)
    return [x / s for x in e]


def alpha_svgs(alphas: Sequence[dict[str, Any]], candidates: dict[str, list[str]]) -> dict[str, str]:
    """Per arch param: the softmax of its alphas over the epochs, one line per candidate."""
    out: dict[str, str] = {}
    if not alphas:
        return out
    names = list(alphas[-1].get("softmax") or alphas[-1].get("alphas") or {})
    for name in names:
        series = []
        for row in alphas:
            probs = (row.get("softmax") or {}).get(name)
            if probs is None and name in (row.get("alphas") or {}):
                probs = softmax(row["alphas"][name])
            if probs is not None:
                series.append((row.get("epoch", len(series)), probs))
        if not series:
            continue
        fig = _figure(4.2, 2.8)
        ax = fig.add_subplot()
        labels = candidates.get(name.removesuffix(".alpha")) or [f"#{i}" for i in range(len(series[0][1]))]
        for j, label in enumerate(labels):
            ax.plot([e for e, _ in series], [p[j] for _, p in series], marker="o", ms=3, label=label)
        ax.set_ylim(0, 1)
        ax.set_xlabel("epoch")
        ax.set_ylabel("softmax(alpha)")
        ax.set_title(name, fontsize=9)
        ax.legend(fontsize=7, loc="best")
        ax.grid(alpha=0.3)
        out[name] = to_svg(fig)
    return out


def pareto_svg(history: Sequence[dict[str, Any]], pareto: dict[str, Any]) -> str | None:
    """Every result over the first two objectives, the front highlighted, the chosen archs numbered."""
    objs = pareto.get("objectives") or []
    if len(objs) < 2:
        return None
    mx, my = objs[0]["metric"], objs[1]["metric"]

    def xy(rows: Sequence[dict[str, Any]]) -> list[tuple[float, float]]:
        return [(float(r["metrics"][mx]), float(r["metrics"][my])) for r in rows
                if mx in r.get("metrics", {}) and my in r.get("metrics", {})]

    front = sorted(xy(pareto.get("front") or []))
    every = xy([r for r in history if not r.get("failed")])
    if not front:
        return None
    fig = _figure()
    ax = fig.add_subplot()
    if every:
        ax.scatter(*zip(*every), s=14, c="#999999", alpha=0.6, label="all results")
    ax.plot(*zip(*front), "-o", c="#d62728", ms=6, label="Pareto front")
    for i, (x, y) in enumerate(front):
        ax.annotate(str(i + 1), (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8)
    ax.set_xlabel(f"{mx} ({objs[0]['mode']})")
    ax.set_ylabel(f"{my} ({objs[1]['mode']})")
    ax.set_title("Pareto front")
    ax.legend(fontsize=8, loc="best")
    ax.grid(alpha=0.3)
    return to_svg(fig)
