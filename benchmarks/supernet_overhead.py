"""Supernet overhead on the 6-layer DARTS benchmark space: each mixed op's training step against its baseline.

Run: python benchmarks/supernet_overhead.py [--batch 32] [--size 32] [--rounds 20] [--archs 4]
* Index: a train step (forward, backward, SGD) of the Index supernet against its materialised subnet, the
  same arch (target <= 1.05x): the cost of the mixed ops' dispatch.
* BinaryGate: a ProxylessNAS weight step (two sampled candidates per layer, the inactive one without
  autograd) against a single path: the mean train step of ``--archs`` random materialised subnets (target
  <= 2.2x).
* SoftmaxSum: forward + backward of the six mixed ops, each on an input of its layer's shape, against the sum
  of the same forward + backward of their 24 candidates run one by one (target <= 1.05x): the cost of the
  softmax and the weighted sum.
"""

from __future__ import annotations

import argparse
import random

import torch
import torch.nn.functional as F
from _bench import alternate, fmt_ratio, machine, ms, ratio, single_thread
from _darts6 import fxnas_supernet, layer_ops

import fxnas


def train_step(model: torch.nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor) -> None:
    """One SGD step: zero_grad, cross-entropy, backward, step."""
    opt.zero_grad(set_to_none=True)
    F.cross_entropy(model(x), y).backward()
    opt.step()


def stepper(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor):
    """A no-argument train step of ``model`` with its own SGD."""
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    return lambda: train_step(model, opt, x, y)


def layer_inputs(supernet: torch.nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    """The input each mixed op sees in a forward of ``x`` (captured with forward pre-hooks)."""
    got: list[torch.Tensor] = []
    hooks = [op.register_forward_pre_hook(lambda m, args: got.append(args[0].detach())) for op in layer_ops(supernet)]
    with torch.no_grad():
        supernet(x)
    for h in hooks:
        h.remove()
    return got


def main(argv: list[str] | None = None) -> dict[str, float]:
    """Print the three overhead ratios; returns their medians."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--archs", type=int, default=4, help="random single paths the BinaryGate step is compared with")
    a = ap.parse_args(argv)
    single_thread()
    torch.manual_seed(0)
    x, y = torch.randn(a.batch, 3, a.size, a.size), torch.randint(0, 10, (a.batch,))
    print(f"6-layer x 4-candidate space, batch {a.batch} of 3x{a.size}x{a.size}; {machine()}")
    out: dict[str, float] = {}

    index = fxnas_supernet("Index")
    rng = random.Random(0)
    archs = [index.space.sample(rng) for _ in range(max(1, a.archs))]
    index.space.apply(archs[0])
    sub = fxnas.materialize(index, archs[0])
    times = alternate({"supernet": stepper(index, x, y), "subnet": stepper(sub, x, y)}, a.rounds, a.reps)
    r = ratio(times, "supernet", "subnet")
    out["index"] = r[0]
    print(f"Index supernet {ms(times['supernet']):.1f} ms vs its materialised subnet {ms(times['subnet']):.1f} ms: "
          f"{fmt_ratio(r, '<= 1.05x')}")

    gate = fxnas_supernet("BinaryGate")
    fns = {"gate": stepper(gate, x, y)}
    for i, arch in enumerate(archs):
        fns[f"path{i}"] = stepper(fxnas.materialize(index, arch), x, y)
    times = alternate(fns, a.rounds, a.reps)
    paths = [f"path{i}" for i in range(len(archs))]
    r = tuple(v * len(paths) for v in ratio(times, "gate", paths))  # against the mean single path
    out["binary_gate"] = r[0]
    mean_path = sum(ms(times[p]) for p in paths) / len(paths)
    print(f"BinaryGate step {ms(times['gate']):.1f} ms vs a single path (mean of {len(paths)} random subnets, "
          f"{mean_path:.1f} ms): {fmt_ratio(r, '<= 2.2x')}")  # type: ignore[arg-type]

    soft = fxnas_supernet("SoftmaxSum")
    ops, inputs = layer_ops(soft), layer_inputs(soft, x)
    grads = [torch.randn_like(op(xi)) for op, xi in zip(ops, inputs)]

    def mixed() -> None:
        for op, xi, g in zip(ops, inputs, grads):
            op(xi).backward(g)

    def candidates() -> None:
        for op, xi, g in zip(ops, inputs, grads):
            for cand in op.candidates.values():
                cand(xi).backward(g)

    times = alternate({"mixed": mixed, "candidates": candidates}, a.rounds, a.reps)
    soft.zero_grad(set_to_none=True)
    r = ratio(times, "mixed", "candidates")
    out["softmax_sum"] = r[0]
    print(f"SoftmaxSum ops {ms(times['mixed']):.1f} ms vs the sum of their candidates {ms(times['candidates']):.1f} ms:"
          f" {fmt_ratio(r, '<= 1.05x')}")
    return out


if __name__ == "__main__":
    main()
