"""Forward-time ratios: fxnas supernet (Index mixed op) and materialised subnet vs the hand-written model.

Run: python benchmarks/overhead.py [--model resnet18] [--size 64] [--batch 8] [--repeats 30]
A materialised subnet whose choices equal the original ops should cost what the original costs (ratio ~1.0);
the supernet's overhead is the Python dispatch of its mixed ops.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torchvision

import fxnas


def median_ms(fn, x: torch.Tensor, repeats: int) -> float:
    """Median wall time of fn(x) in milliseconds after warm-up."""
    with torch.no_grad():
        for _ in range(3):
            fn(x)
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            fn(x)
            times.append(time.perf_counter() - t)
    return 1e3 * statistics.median(times)


def main() -> None:
    """Print ms and ratios for original, supernet and materialised subnet."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", default="resnet18")
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=30)
    a = ap.parse_args()
    torch.manual_seed(0)
    model = torchvision.models.get_model(a.model, num_classes=10).eval()
    x = torch.randn(a.batch, 3, a.size, a.size)
    t = time.perf_counter()
    supernet = fxnas.searchify(model, "conv", ["ORIG", "NC3", "IDT"], example_inputs=x[:1]).eval()
    t_searchify = time.perf_counter() - t
    arch = {k: "ORIG" for k in supernet.space.discrete()}
    supernet.space.apply(arch)
    t = time.perf_counter()
    subnet = fxnas.materialize(supernet, arch).eval()
    t_mat = time.perf_counter() - t
    base = median_ms(model, x, a.repeats)
    sup = median_ms(supernet, x, a.repeats)
    sub = median_ms(subnet, x, a.repeats)
    print(f"{a.model} batch {a.batch} {a.size}x{a.size}, {len(arch)} slots, torch threads {torch.get_num_threads()}")
    print(f"searchify {t_searchify:.2f} s, materialize {t_mat:.2f} s")
    print(f"hand-written {base:.2f} ms | supernet {sup:.2f} ms (x{sup / base:.3f}) | "
          f"materialised {sub:.2f} ms (x{sub / base:.3f})")


if __name__ == "__main__":
    main()
