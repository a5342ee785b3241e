"""Shared fixtures of the estimator tests: a two-slot CNN and the digits data at 16x16."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from fxnas.train import DATASETS


class CNN(nn.Module):
    """Two 3x3 convs (the search slots) with BN, a pool and a linear head."""

    def __init__(self) -> None:
        super().__init__()
        self.c1, self.b1 = nn.Conv2d(1, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16)
        self.c2, self.b2 = nn.Conv2d(16, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16)
        self.fc = nn.Linear(16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = nn.functional.max_pool2d(torch.relu(self.b1(self.c1(x))), 2)
        x = torch.relu(self.b2(self.c2(x)))
        return self.fc(x.mean((2, 3)))


@pytest.fixture(scope="module")
def digits():
    """digits at 16x16, batch 32, seed 0."""
    return DATASETS.build("digits", size=16, batch_size=32, seed=0)


class Crash(Exception):
    """Raised by crash_and_resume's injected failure."""


def crash_and_resume(build, crash_at: int):
    """Run ``build("full")`` to the end; run ``build("broken")`` until its estimator's ``crash_at``-th
    evaluate_arch call raises; resume it from its checkpoint. Returns (full, resumed) experiments, and asserts
    the resumed history equals the uninterrupted one."""
    full = build("full")
    full.run()
    broken = build("broken")
    est = broken.estimators[0]
    real, calls = est.evaluate_arch, []

    def crash(exp, arch):
        calls.append(arch)
        if len(calls) == crash_at:
            raise Crash
        return real(exp, arch)

    est.evaluate_arch = crash
    with pytest.raises(Crash):
        broken.run()
    resumed = build("broken")
    resumed.run(resume=True)
    assert len(calls) == crash_at  # the failure did happen mid-search
    assert [(r.arch, r.metrics) for r in resumed.history] == [(r.arch, r.metrics) for r in full.history]
    return full, resumed


class ElasticCNN(nn.Module):
    """A stem, a stage of two residual blocks and a 5x5 depthwise conv: width, depth and kernel to shrink."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU())
        self.blocks = nn.ModuleList(nn.Sequential(nn.Conv2d(16, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16),
                                                  nn.ReLU(), nn.Conv2d(16, 16, 1, bias=False), nn.BatchNorm2d(16))
                                    for _ in range(2))
        self.dw = nn.Sequential(nn.Conv2d(16, 16, 5, padding=2, groups=16, bias=False), nn.BatchNorm2d(16))
        self.fc = nn.Linear(16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for b in self.blocks:
            x = torch.relu(x + b(x))
        return self.fc(torch.relu(self.dw(x)).mean((2, 3)))


def elastic_cnn(seed: int = 0) -> torch.fx.GraphModule:
    """ElasticCNN made elastic (width 8/16, kernel 3/5, depth 1/2), traced on 8x8 inputs, in train mode."""
    import fxnas

    torch.manual_seed(seed)
    return fxnas.elasticize(ElasticCNN().eval(), torch.randn(1, 1, 8, 8), width=(0.5, 1.0), kernel=(3, 5),
                            depth=(0, 1)).train()


@pytest.fixture(scope="module")
def digits8():
    """digits at their native 8x8, batch 32, seed 0."""
    return DATASETS.build("digits", size=8, batch_size=32, seed=0)
