"""A materialised subnet against the same network written by hand: forward and train step (target 1.00x).

Run: python benchmarks/subnet_vs_handwritten.py [--model resnet18] [--size 64] [--batch 8] [--rounds 30]
The model's 3x3 convs are searchified (candidates ORIG, NC3, IDT) and the subnet of the all-ORIG arch is
materialised: it must compute what the hand-written torchvision model computes (checked first) and cost
the same, since materialize leaves plain torch modules and an fx GraphModule's generated forward.
"""

from __future__ import annotations

import argparse
import copy

import torch
import torch.nn.functional as F
import torchvision
from _bench import alternate, fmt_ratio, machine, ms, ratio, single_thread

import fxnas


def train_step(model: torch.nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor) -> None:
    """One SGD step: zero_grad, cross-entropy, backward, step."""
    opt.zero_grad(set_to_none=True)
    F.cross_entropy(model(x), y).backward()
    opt.step()


def main(argv: list[str] | None = None) -> dict[str, float]:
    """Print forward and train-step ratios materialised / hand-written; returns the medians."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="resnet18")
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--reps", type=int, default=3)
    a = ap.parse_args(argv)
    single_thread()
    torch.manual_seed(0)
    hand = torchvision.models.get_model(a.model, num_classes=10)
    x, y = torch.randn(a.batch, 3, a.size, a.size), torch.randint(0, 10, (a.batch,))
    supernet = fxnas.searchify(copy.deepcopy(hand), "conv3x3", ["ORIG", "NC3", "IDT"], example_inputs=x[:1])
    arch = {k: "ORIG" for k in supernet.space.discrete()}
    sub = fxnas.materialize(supernet, arch)
    hand.eval(), sub.eval()
    with torch.no_grad():
        diff = (hand(x) - sub(x)).abs().max().item()
    assert diff < 1e-5, f"the materialised subnet does not compute the hand-written model: max |diff| {diff}"
    print(f"{a.model}, batch {a.batch} of 3x{a.size}x{a.size}, {len(arch)} slots (all ORIG); {machine()}")

    def fwd(m: torch.nn.Module):
        def run() -> None:
            with torch.no_grad():
                m(x)
        return run

    times = alternate({"hand": fwd(hand), "subnet": fwd(sub)}, a.rounds, a.reps)
    r_fwd = ratio(times, "subnet", "hand")
    print(f"forward (eval):  hand-written {ms(times['hand']):.2f} ms, materialised {ms(times['subnet']):.2f} ms, "
          f"ratio {fmt_ratio(r_fwd, '1.00x')}")
    hand.train(), sub.train()
    opts = {m: torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9) for m in (hand, sub)}
    times = alternate({"hand": lambda: train_step(hand, opts[hand], x, y),
                       "subnet": lambda: train_step(sub, opts[sub], x, y)}, a.rounds, a.reps)
    r_train = ratio(times, "subnet", "hand")
    print(f"train step:      hand-written {ms(times['hand']):.2f} ms, materialised {ms(times['subnet']):.2f} ms, "
          f"ratio {fmt_ratio(r_train, '1.00x')}")
    return {"forward": r_fwd[0], "train": r_train[0]}


if __name__ == "__main__":
    main()
