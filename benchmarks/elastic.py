"""Forward time of a materialised half-width resnet18 vs a hand-written resnet18 of the same widths, and vs
the elastic supernet run at that setting.

Run: python benchmarks/elastic.py [--size 64] [--batch 8] [--rounds 15] [--iters 5]
The three models are timed in alternating rounds on one torch thread; each figure is the median over
rounds. The materialised subnet is plain torch ops with real smaller convs, so its target is x1.00 the
hand-written model; the supernet slices weight views at run time, and its ratio shows what that costs.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
import torchvision
from torch import nn

import fxnas
from fxnas.elastic import elastic_params


class BasicBlock(nn.Module):
    """The resnet basic block: conv3x3-bn-relu-conv3x3-bn plus the shortcut, then relu."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.down = None
        if stride != 1 or cin != cout:
            self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return torch.relu(y + (x if self.down is None else self.down(x)))


class ResNet18(nn.Module):
    """resnet18 written by hand with stage widths ``w, 2w, 4w, 8w``."""

    def __init__(self, w: int = 64, num_classes: int = 10) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, w, 7, 2, 3, bias=False), nn.BatchNorm2d(w), nn.ReLU(),
                                  nn.MaxPool2d(3, 2, 1))
        blocks, cin = [], w
        for i, cout in enumerate((w, 2 * w, 4 * w, 8 * w)):
            blocks += [BasicBlock(cin, cout, 1 if i == 0 else 2), BasicBlock(cout, cout, 1)]
            cin = cout
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(self.blocks(self.stem(x)), 1), 1))


def timed_rounds(models: dict[str, Callable], x: torch.Tensor, rounds: int, iters: int) -> dict[str, float]:
    """Median over rounds of the mean forward ms; the models take turns within every round."""
    per: dict[str, list[float]] = {k: [] for k in models}
    with torch.no_grad():
        for fn in models.values():
            for _ in range(3):
                fn(x)
        for r in range(rounds):
            order = list(models) if r % 2 == 0 else list(reversed(models))
            for k in order:
                t = time.perf_counter()
                for _ in range(iters):
                    models[k](x)
                per[k].append(1e3 * (time.perf_counter() - t) / iters)
    return {k: statistics.median(v) for k, v in per.items()}


def main() -> None:
    """Print the three forward times and the ratios to the hand-written model."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--iters", type=int, default=5)
    a = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    x = torch.randn(a.batch, 3, a.size, a.size)
    model = torchvision.models.resnet18(num_classes=10).eval()
    t = time.perf_counter()
    supernet = fxnas.elasticize(model, x[:1], width=(0.5, 1.0)).eval()
    t_build = time.perf_counter() - t
    half = {k: p.choices[0] for k, p in elastic_params(supernet, "width").items()}
    supernet.space.apply(half)
    t = time.perf_counter()
    subnet = fxnas.materialize(supernet, half).eval()
    t_mat = time.perf_counter() - t
    hand = ResNet18(32).eval()
    n_sub, n_hand = (sum(p.numel() for p in m.parameters()) for m in (subnet, hand))
    assert n_sub == n_hand, (n_sub, n_hand)  # the same architecture
    ms = timed_rounds({"hand-written": hand, "materialised": subnet, "supernet": supernet}, x, a.rounds, a.iters)
    base = ms["hand-written"]
    print(f"resnet18 at half width ({len(half)} width params), batch {a.batch}, {a.size}x{a.size}, "
          f"torch threads {torch.get_num_threads()}, {a.rounds} alternated rounds of {a.iters}")
    print(f"elasticize {t_build:.2f} s, materialize {t_mat:.2f} s, {n_sub} params in both")
    print(f"hand-written {base:.2f} ms | materialised {ms['materialised']:.2f} ms "
          f"(x{ms['materialised'] / base:.3f}) | supernet {ms['supernet']:.2f} ms (x{ms['supernet'] / base:.3f})")


if __name__ == "__main__":
    main()
