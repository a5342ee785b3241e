"""BatchNorm recalibration: cumulative stats over the given batches, unused BNs kept, snapshots restore."""

from __future__ import annotations

import torch
from torch import nn

from fxnas.train import bn_state, load_bn_state, recalibrate_bn


class TwoPath(nn.Module):
    """Two BN branches, only one of which runs (like a mixed op's unchosen candidate)."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.BatchNorm1d(3)
        self.b = nn.BatchNorm1d(3)
        self.use_b = False

    def forward(self, x):
        return self.b(x) if self.use_b else self.a(x)


def test_recalibrate_is_cumulative_average_and_keeps_unused():
    torch.manual_seed(0)
    model = TwoPath().eval()
    with torch.no_grad():
        model.b.running_mean.fill_(7.0)
        model.a.running_mean.fill_(-3.0)
    batches = [(torch.randn(16, 3) * 2 + i, torch.zeros(16)) for i in range(5)]
    rng = torch.get_rng_state()
    used = recalibrate_bn(model, batches, steps=4)
    assert used == 4 and torch.equal(torch.get_rng_state(), rng)
    xs = torch.stack([b[0] for b in batches[:4]])
    want_mean = xs.mean(1).mean(0)  # momentum=None: equal weight per batch
    want_var = xs.var(1, unbiased=True).mean(0)
    assert torch.allclose(model.a.running_mean, want_mean, atol=1e-5)
    assert torch.allclose(model.a.running_var, want_var, atol=1e-4)
    assert int(model.a.num_batches_tracked) == 4
    assert torch.all(model.b.running_mean == 7.0)  # branch not on the path keeps its stats
    assert model.a.momentum == 0.1 and not model.training  # momentum and mode restored


def test_bn_snapshot_restores():
    model = nn.Sequential(nn.Linear(3, 3), nn.BatchNorm1d(3))
    snap = bn_state(model)
    recalibrate_bn(model, [(torch.randn(8, 3) + 5,)], steps=1)
    assert not torch.equal(model[1].running_mean, snap["1"]["running_mean"])
    load_bn_state(model, snap)
    assert torch.equal(model[1].running_mean, snap["1"]["running_mean"])
    assert torch.equal(model[1].num_batches_tracked, snap["1"]["num_batches_tracked"])
    assert recalibrate_bn(nn.Linear(2, 2), [(torch.randn(2, 2),)]) == 0


def test_recalibrate_leaves_python_numpy_and_torch_rngs_alone():
    import random

    import numpy as np

    model = nn.Sequential(nn.Linear(3, 3), nn.BatchNorm1d(3))
    calls = []

    def forward(m, batch):  # e.g. a step_fn with random augmentation
        calls.append(1)
        x = batch[0] + random.random() + float(np.random.rand()) + torch.rand(1)
        return m(x)

    batches = [(torch.randn(8, 3),)] * 3
    py, npy, tch = random.getstate(), np.random.get_state(), torch.get_rng_state()
    assert recalibrate_bn(model, batches, steps=3, forward_fn=forward) == 3
    assert len(calls) == 3
    assert random.getstate() == py and torch.equal(torch.get_rng_state(), tch)
    assert all(np.array_equal(a, b) for a, b in zip(np.random.get_state(), npy))
