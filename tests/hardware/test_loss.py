"""The ProxylessNAS hardware loss: add / mul / logmul criteria, the chain rule, the expected metric."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import fxnas
from fxnas.errors import ConfigError, RegistryError
from fxnas.hardware.loss import HW_CRITERIA, ExpectedMetric, HardwareLoss, chain_gradients
from fxnas.profilers.tree import build_cost_tree


def test_criteria_formulas() -> None:
    loss, value = torch.tensor(2.0), torch.tensor(30.0)
    assert float(HW_CRITERIA.get("add")(target=20.0, weight=0.2)(loss, value)) == pytest.approx(2.0 + 0.2 * 0.5)
    assert float(HW_CRITERIA.get("mul")(target=20.0, beta=0.6)(loss, value)) == pytest.approx(2.0 * 1.5 ** 0.6)
    want = 2.0 * (math.log(30.0) / math.log(20.0)) ** 0.6
    assert float(HW_CRITERIA.get("logmul")(target=20.0)(loss, value)) == pytest.approx(want)
    under = HW_CRITERIA.get("logmul")(target=20.0)(loss, torch.tensor(10.0))
    assert float(under) < 2.0  # under the target the loss shrinks


def test_bad_criteria_options() -> None:
    with pytest.raises(ConfigError, match="target must be a number > 0"):
        HW_CRITERIA.get("add")(target=0)
    with pytest.raises(ConfigError, match=r"logmul target.*microseconds.*> 1"):
        HW_CRITERIA.get("logmul")(target=0.8)
    with pytest.raises(ConfigError, match="beta must be"):
        HW_CRITERIA.get("mul")(target=1.0, beta=-1)
    with pytest.raises(RegistryError, match="did you mean logmul"):
        HW_CRITERIA.get("log_mul")
    tree = build_cost_tree(_supernet())
    with pytest.raises(ConfigError, match="hardware criterion 'add'.*unexpected keyword"):
        HardwareLoss.build(ExpectedMetric(tree, "macs"), "add", target=1.0, beta=0.6)


class Plain(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(4, 4, 3, padding=1)
        self.b = nn.Conv2d(4, 4, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.b(self.a(x))


def _supernet(mixed_op: str = "SoftmaxSum") -> nn.Module:
    torch.manual_seed(0)
    return fxnas.searchify(Plain(), "conv3x3", ["NC7", "NC5", "NC3", "IDT"], torch.randn(2, 4, 6, 6),
                           mixed_op=mixed_op)


@pytest.mark.parametrize("criterion", ["add", "mul", "logmul"])
def test_chain_rule_equals_autograd_of_the_combined_loss(criterion: str) -> None:
    sn = _supernet()
    expected = ExpectedMetric(build_cost_tree(sn), "macs")
    params = sn.space.arch_parameters()
    with torch.no_grad():
        for p in params:
            p.normal_()
    crit = HW_CRITERIA.get(criterion)(target=float(expected(sn.space).detach()) * 0.7)
    task = sum((p ** 2).sum() for p in params)  # a task loss that depends on the alphas too
    direct = torch.autograd.grad(crit(task, expected(sn.space)), params, retain_graph=True)
    task_grads = torch.autograd.grad(task, params)
    got, value = HardwareLoss(expected, crit).gradients(task, task_grads, sn.space, params)
    assert value == pytest.approx(float(expected(sn.space).detach()))
    for g, d in zip(got, direct):
        assert torch.allclose(g, d, rtol=1e-4, atol=1e-7)
    got2, _ = chain_gradients(crit, task, task_grads, expected(sn.space), params)
    assert all(torch.equal(a, b) for a, b in zip(got, got2))


@pytest.mark.parametrize("criterion", ["add", "mul", "logmul"])
def test_hardware_loss_alone_moves_alphas_to_the_cheapest_arch(criterion: str) -> None:
    """An Adam on the alphas with an indifferent task loss: only the hardware term steers (as ProxylessNAS)."""
    sn = _supernet("BinaryGate")
    tree = build_cost_tree(sn)
    expected = ExpectedMetric(tree, "macs")
    start = float(expected(sn.space).detach())
    loss_fn = HardwareLoss.build(expected, criterion, target=start / 2)
    params = sn.space.arch_parameters()
    adam = torch.optim.Adam(params, lr=0.05)
    task = torch.tensor(1.0)
    for _ in range(150):
        grads, value = loss_fn.gradients(task, [torch.zeros_like(p) for p in params], sn.space, params)
        for p, g in zip(params, grads):
            p.grad = g
        adam.step()
    assert value < start and sn.space.derive() == {"a": "IDT", "b": "IDT"}
    assert expected.of_arch({"a": "IDT", "b": "IDT"}) == tree.evaluate({"a": "IDT", "b": "IDT"})["macs"] == 0
