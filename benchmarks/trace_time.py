"""Trace and searchify time of large torchvision models (target under 1 s each).

Run: python benchmarks/trace_time.py [--models resnet50,efficientnet_b7,vit_b_16] [--size 224] [--repeats 3]
``trace`` is fxnas.trace (symbolic trace of a deep copy, then one forward of a batch-1 example to record every
node's shape); ``searchify`` is trace + rewrite + construct, with the pattern and candidates below. Model
construction (random weights) is not timed. Figures are medians of ``--repeats`` runs.
"""

from __future__ import annotations

import argparse
import functools
import statistics
import time

import torch
import torchvision
from _bench import machine, single_thread

import fxnas

SPACES = {  # model: (pattern, candidates)
    "resnet18": ("conv3x3", ["ORIG", "NC3", "IDT"]),  # small: the smoke test
    "resnet50": ("conv3x3", ["ORIG", "NC3", "NC5", "MB3E3", "IDT"]),
    "efficientnet_b7": ("dwconv", ["ORIG", "DW3", "DW5", "IDT"]),
    "vit_b_16": ("linear", ["ORIG", "NIL"]),  # IDT fails on (batch, tokens, features) Linear slots
}


def seconds(fn, repeats: int) -> float:
    """Median wall time of fn() over ``repeats`` calls."""
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> dict[str, tuple[float, float]]:
    """Print trace and searchify seconds per model; returns {model: (trace s, searchify s)}."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="resnet50,efficientnet_b7,vit_b_16", help=",".join(SPACES))
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args(argv)
    single_thread()
    print(f"batch-1 example of 3x{a.size}x{a.size}; {machine()}")
    out: dict[str, tuple[float, float]] = {}
    for name in a.models.split(","):
        pattern, cands = SPACES[name]
        model = torchvision.models.get_model(name).eval()
        x = torch.randn(1, 3, a.size, a.size)
        t_trace = seconds(functools.partial(fxnas.trace, model, x), a.repeats)
        t_search = seconds(functools.partial(fxnas.searchify, model, pattern, cands, example_inputs=x), a.repeats)
        net = fxnas.searchify(model, pattern, cands, example_inputs=x)
        added = sum(p.numel() for p in net.parameters()) - sum(p.numel() for p in model.parameters())
        t_init = seconds(lambda n=max(added, 1): torch.empty(n).uniform_(-1.0, 1.0), a.repeats)
        print(f"{name:16s} {len(net.graph.nodes):5d} nodes, {len(fxnas.mixed_ops(net)):3d} slots ({pattern}: "
              f"{len(cands)} candidates): trace {t_trace:.2f} s, searchify {t_search:.2f} s  target < 1 s; "
              f"the candidates add {added / 1e6:.1f} M weights, whose random init alone takes {t_init:.2f} s")
        out[name] = (t_trace, t_search)
    return out


if __name__ == "__main__":
    main()
