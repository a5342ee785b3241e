"""Metric-weighted losses: the expected metric is the profiler's count weighed by softmax(alpha), the three
formulas hold numerically, the arch gradient favours cheaper candidates, and models without alphas pass."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch
from torch import nn

import fxnas
from fxnas.errors import ConfigError
from fxnas.optim import OPTIMIZERS
from fxnas.train import AddMetrics, MultLogMetrics, MultMetrics, build_criteria


class OneConv(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(4, 4, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.a(x).mean((2, 3))


CANDS = ["NC5", "NC3", "IDT"]


def _supernet() -> tuple[nn.Module, torch.Tensor]:
    torch.manual_seed(0)
    x = torch.randn(1, 4, 6, 6)
    return fxnas.searchify(OneConv(), "conv3x3", CANDS, x, mixed_op="SoftmaxSum"), x


def _macs(sn: nn.Module, x: torch.Tensor, choice: str) -> float:
    return float(fxnas.profile(fxnas.materialize(sn, {"a": choice}), x)["macs"])


def test_expected_metric_is_the_profiled_count_under_softmax_alpha() -> None:
    sn, x = _supernet()
    macs = torch.tensor([_macs(sn, x, c) for c in CANDS], dtype=torch.float64)
    crit = AddMetrics("flops")
    with torch.no_grad():
        sn.space["a.alpha"].value.copy_(torch.tensor([0.5, -1.0, 2.0]))
    m, target = crit.expected(sn)
    p = torch.softmax(torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64), 0)
    assert float(m.detach()) == pytest.approx(float(p @ macs), rel=1e-6)
    assert target == pytest.approx(float(macs.mean()), rel=1e-6)  # default target: uniform alphas
    assert m.requires_grad


def test_the_three_formulas() -> None:
    sn, x = _supernet()
    loss = torch.tensor(2.0)
    m, t = AddMetrics().expected(sn)
    torch.testing.assert_close(AddMetrics(weight=0.5)(loss, None, None, x, sn), loss + 0.5 * (m / t - 1))
    torch.testing.assert_close(MultMetrics(alpha=2.0, beta=0.5)(loss, None, None, x, sn),
                               2.0 * loss * (m / t) ** 0.5)
    torch.testing.assert_close(MultLogMetrics(target=1000.0)(loss, None, None, x, sn),
                               loss * (torch.log(m) / math.log(1000.0)) ** 0.6)


def test_arch_gradient_favours_the_cheaper_candidates() -> None:
    sn, x = _supernet()
    chain = build_criteria(["CrossEntropy", {"type": "MultMetrics", "beta": 1.0}])
    loss = chain(sn(x), torch.tensor([1]), x, sn)
    (grad,) = torch.autograd.grad(loss, [sn.space["a.alpha"].value])
    assert grad[0] > grad[1] > grad[2]  # NC5 costs most, IDT nothing: descent raises the cheap ones
    exp = SimpleNamespace(model=sn, space=sn.space, device="cpu")
    exp.trainer = SimpleNamespace(loss=lambda model, batch: AddMetrics(weight=5.0)(
        torch.zeros(()), None, None, batch[0], model))
    opt = OPTIMIZERS.get("DARTS")(sn.space, seed=0, lr=0.05)
    for _ in range(30):
        opt.step_arch(exp, (x, None), (x, None))
    assert opt.best() == {"a": "IDT"}


def test_models_without_alphas_keep_their_loss_and_bad_options_are_refused() -> None:
    sn, x = _supernet()
    sub = fxnas.materialize(sn, {"a": "NC3"})
    loss = torch.tensor(1.5)
    assert MultMetrics()(loss, None, None, x, sub) is loss
    index = fxnas.searchify(OneConv(), "conv3x3", CANDS, x)  # a discrete supernet: no alphas
    assert AddMetrics()(loss, None, None, x, index) is loss
    with pytest.raises(ConfigError, match="task loss"):
        AddMetrics()(None, None, None, x, sn)
    with pytest.raises(ConfigError, match="flops or params"):
        AddMetrics(metric="latency")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="positive"):
        MultMetrics(target=-1.0)
    with pytest.raises(ConfigError, match="> 1"):
        MultLogMetrics(target=1.0)
