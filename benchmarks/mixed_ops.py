"""Training-step cost of each mixed op on the DARTS cell space, as a ratio to the materialised single path.

Run: python benchmarks/mixed_ops.py [--C 8] [--layers 5] [--batch 16] [--size 16] [--steps 5]
A binary-gate step runs two candidates per edge and Index one, so their cost should sit near 2x and 1x the
hand-written (materialised) subnet, while SoftmaxSum/GumbelSum run all eight candidates.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

import fxnas
from fxnas.spaces.darts import darts_supernet


def step_ms(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int) -> float:
    """Median ms of one forward + backward in train mode."""
    model.train()
    times = []
    for i in range(steps + 1):
        t = time.perf_counter()
        F.cross_entropy(model(x), y).backward()
        if i:  # the first step warms up
            times.append(time.perf_counter() - t)
        model.zero_grad(set_to_none=True)
    return 1e3 * statistics.median(times)


def main() -> None:
    """Print ms per training step and the ratio to the materialised subnet for every mixed op."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--C", type=int, default=8)
    ap.add_argument("--layers", type=int, default=5)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--size", type=int, default=16)
    ap.add_argument("--steps", type=int, default=5)
    a = ap.parse_args()
    torch.manual_seed(0)
    shape = (1, 3, a.size, a.size)
    x, y = torch.randn(a.batch, 3, a.size, a.size), torch.randint(0, 10, (a.batch,))
    index = darts_supernet(C=a.C, layers=a.layers, input_shape=shape, mixed_op="Index")
    arch = {k: "SEP3" for k in index.space.discrete()}
    base = step_ms(fxnas.materialize(index, arch), x, y, a.steps)
    print(f"DARTS space C={a.C} layers={a.layers}, batch {a.batch} of {a.size}x{a.size}, "
          f"{len(arch)} params, torch threads {torch.get_num_threads()}")
    print(f"materialised subnet (all SEP3, hand-written equivalent): {base:.1f} ms/step")
    for op in ["Index", "BinaryGate", "GumbelSum", "SoftmaxSum"]:
        net = index if op == "Index" else darts_supernet(C=a.C, layers=a.layers, input_shape=shape, mixed_op=op)
        net.space.apply(arch)
        ms = step_ms(net, x, y, a.steps)
        print(f"{op:>10}: {ms:8.1f} ms/step  (x{ms / base:.2f} the subnet)")


if __name__ == "__main__":
    main()
