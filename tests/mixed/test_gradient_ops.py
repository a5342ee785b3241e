"""Gradient mixed ops: paths run per step, the BinaryGate two-path gradient, rescale, Gumbel weights."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import fxnas
from fxnas.mixed import MIXED_OPS, BinaryGateGrad, GumbelSum, fixed_arch, rescale
from fxnas.space import TensorParam

CANDS = ["NC3", "DW3", "SEP3", "DIL3", "MAX3", "IDT"]


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(4, 4, 3, padding=1)
        self.c2 = nn.Conv2d(4, 4, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.c2(torch.relu(self.c1(x)))


def supernet(mixed_op: str, **kw):
    x = torch.randn(2, 4, 6, 6)
    return fxnas.searchify(Net(), "conv3x3", CANDS, x, mixed_op=mixed_op, **kw), x


def count_calls(sn: nn.Module) -> dict[str, int]:
    """Forward hooks on every candidate of every mixed op; the dict fills as they run."""
    calls: dict[str, int] = {}
    for path, op in fxnas.mixed_ops(sn).items():
        for name, cand in op.candidates.items():
            key = f"{path}.{name}"
            calls[key] = 0

            def hook(m, i, o, key=key):
                calls[key] += 1

            cand.register_forward_hook(hook)
    return calls


@pytest.mark.parametrize("mixed_op,train_calls,eval_calls", [
    ("BinaryGate", 2, 1), ("BinaryGateUniform", 2, 1), ("GumbelSum", 6, 6), ("SoftmaxSum", 6, 6), ("Index", 1, 1)])
def test_paths_run_per_step(mixed_op: str, train_calls: int, eval_calls: int) -> None:
    sn, x = supernet(mixed_op)
    calls = count_calls(sn)
    sn.train()
    for _ in range(5):
        for k in calls:
            calls[k] = 0
        sn(x).sum().backward()
        for path in ("c1", "c2"):
            assert sum(v for k, v in calls.items() if k.startswith(path + ".")) == train_calls
    sn.eval()
    for k in calls:
        calls[k] = 0
    sn(x)
    assert sum(calls.values()) == 2 * eval_calls


def test_binary_gate_eval_runs_argmax_and_matches_materialized() -> None:
    sn, x = supernet("BinaryGate")
    with torch.no_grad():
        sn.space["c1.alpha"].value.copy_(torch.tensor([0.0, 0.0, 3.0, 0.0, 0.0, 0.0]))
        sn.space["c2.alpha"].value.copy_(torch.tensor([0.0, 0.0, 0.0, 0.0, 0.0, 2.0]))
    assert sn.space.derive() == {"c1": "SEP3", "c2": "IDT"}
    sn.eval()
    calls = count_calls(sn)
    y = sn(x)
    assert calls["c1.SEP3"] == 1 and calls["c2.IDT"] == 1 and sum(calls.values()) == 2
    sub = fxnas.materialize(sn).eval()
    torch.testing.assert_close(sub(x), y)


def test_binary_gate_grad_is_proxyless_formula() -> None:
    """Backward of BinaryGateGrad equals sum_j dL/dg_j p_j (delta_ij - p_i) with p renormalised over the pair."""
    alpha = torch.randn(6, dtype=torch.float64, requires_grad=True)
    idx = torch.tensor([4, 1])
    gates = torch.tensor([1.0, 0.0], dtype=torch.float64)
    dg = torch.tensor([0.7, -1.3], dtype=torch.float64)
    g = BinaryGateGrad.apply(alpha, gates, idx)
    assert torch.equal(g.detach(), gates)
    (got,) = torch.autograd.grad(g, alpha, dg)
    p = F.softmax(alpha.detach()[idx], -1)
    want = torch.zeros(6, dtype=torch.float64)
    for i in range(2):
        for j in range(2):
            want[idx[i]] += dg[j] * p[j] * (float(i == j) - p[i])
    torch.testing.assert_close(got, want)
    # the same as the gradient of <dg, softmax(alpha[pair])> (a finite-difference check of the formula)
    eps = 1e-6
    for i in idx.tolist():
        e = torch.zeros(6, dtype=torch.float64)
        e[i] = eps
        f = lambda a: float((dg * F.softmax(a[idx], -1)).sum())  # noqa: E731
        fd = (f(alpha.detach() + e) - f(alpha.detach() - e)) / (2 * eps)
        assert got[i].item() == pytest.approx(fd, abs=1e-8)
    assert got[[0, 2, 3, 5]].abs().sum() == 0  # unsampled paths get no gradient


def test_binary_gate_op_gradient_uses_both_path_outputs() -> None:
    """Through the whole op: dL/dg_j = <dL/dout, out_j> for the pair, alpha grad from the formula."""
    sn, x = supernet("BinaryGate")
    op = sn.c1
    op.train()
    with torch.no_grad():
        op.alpha.normal_(0, 1)
    torch.manual_seed(5)
    y = op(x)
    pair = list(op.involved)
    w = torch.randn_like(y)
    (got,) = torch.autograd.grad((y * w).sum(), op.alpha)
    torch.manual_seed(5)  # replay the draw: the same pair
    idx = torch.multinomial(op.sample_probs(), 2, replacement=False)
    assert sorted(idx.tolist()) == pair
    outs = [op.candidates[op.names[i]](x).detach() for i in idx.tolist()]
    dg = torch.stack([(o * w).sum() for o in outs])
    p = F.softmax(op.alpha.detach()[idx], -1)
    want = torch.zeros_like(got)
    for a in range(2):
        for b in range(2):
            want[idx[a]] += dg[b] * p[b] * (float(a == b) - p[a])
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-6)


def test_rescale_keeps_unsampled_and_pair_logsumexp() -> None:
    before = torch.tensor([0.1, -0.4, 0.9, 0.3])
    alpha = before.clone() + torch.tensor([0.5, 0.2, -0.1, 0.7])  # an update that moved everything
    rescale(alpha, before, [0, 2])
    assert alpha[1] == before[1] and alpha[3] == before[3]
    torch.testing.assert_close(torch.logsumexp(alpha[[0, 2]], 0), torch.logsumexp(before[[0, 2]], 0))
    torch.testing.assert_close(alpha[0] - alpha[2], torch.tensor(0.6 - 0.8))  # the update's difference kept


@pytest.mark.parametrize("mixed_op", ["BinaryGate", "BinaryGateUniform", "GumbelSum", "SoftmaxSum"])
def test_alphas_from_base_class_and_shared_by_name(mixed_op: str) -> None:
    sn, x = supernet(mixed_op, param_name=lambda spec: "shared")
    assert set(sn.space.params) == {"shared", "shared.alpha"}
    t = sn.space["shared.alpha"]
    assert isinstance(t, TensorParam) and t.categorical == "shared"
    assert sn.c1.alpha is sn.c2.alpha
    with torch.no_grad():
        t.value.copy_(torch.tensor([0.0, 0.0, 0.0, 5.0, 0.0, 0.0]))
    assert sn.space.derive() == {"shared": "DIL3"}
    sn.train()
    sn(x).sum().backward()
    assert t.value.grad is not None and t.value.grad.abs().sum() > 0


def test_gumbel_sum_temperature_and_eval() -> None:
    sn, x = supernet("GumbelSum", mixed_op_args={"temperature": 0.05})
    op = sn.c1
    assert isinstance(op, GumbelSum) and op.temperature == 0.05
    op.train()
    w = torch.stack([op.weights().detach() for _ in range(50)])
    assert torch.allclose(w.sum(-1), torch.ones(50))
    assert (w.max(-1).values > 0.95).float().mean() > 0.8  # low temperature: nearly one-hot samples
    op.temperature = 100.0
    w = torch.stack([op.weights().detach() for _ in range(50)])
    assert (w.max(-1).values < 0.3).all()  # high temperature: nearly uniform
    op.eval()
    torch.testing.assert_close(op.weights(), F.softmax(op.alpha, -1))
    hard = MIXED_OPS.get("GumbelSum")
    assert hard is GumbelSum


def test_fixed_arch_runs_applied_candidate() -> None:
    sn, x = supernet("BinaryGate")
    sn.space.apply({"c1": "MAX3", "c2": "NC3"})
    calls = count_calls(sn)
    sn.train()
    with fixed_arch(sn):
        sn(x)
    assert calls["c1.MAX3"] == 1 and calls["c2.NC3"] == 1 and sum(calls.values()) == 2
    assert not sn.c1.fixed


def saved_bytes(fn) -> int:
    """Bytes of the tensors autograd keeps for backward while ``fn`` runs."""
    total = [0]

    def pack(t: torch.Tensor) -> torch.Tensor:
        total[0] += t.numel() * t.element_size()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn()
    return total[0]


def test_binary_gate_memory_is_one_path() -> None:
    """Autograd keeps what the active candidate needs plus the two gated outputs, not what both paths need."""
    x = torch.randn(2, 4, 6, 6)
    bg, _ = supernet("BinaryGate")
    op = bg.c1.train()
    single = {n: saved_bytes(lambda c=c: c(x)) for n, c in op.candidates.items()}
    out_bytes = x.numel() * 4
    for seed in range(10):
        torch.manual_seed(seed)
        got = saved_bytes(lambda: op(x))
        pair = [op.names[i] for i in op.involved]
        op.involved = []
        assert got <= max(single[n] for n in pair) + 2 * out_bytes + 64
        assert got < sum(single[n] for n in pair) or min(single[n] for n in pair) <= 2 * out_bytes
    ss, _ = supernet("SoftmaxSum")
    all_paths = saved_bytes(lambda: ss.c1.train()(x))
    assert all_paths >= sum(single.values())


def test_shared_alpha_rescaled_once_over_union_of_pairs() -> None:
    from fxnas.mixed import arch_step

    sn, x = supernet("BinaryGate", param_name=lambda spec: "shared")
    alpha = sn.space["shared.alpha"].value
    with torch.no_grad():
        alpha.copy_(torch.tensor([0.3, -0.2, 0.5, 0.1, 0.0, -0.4]))
    before = alpha.detach().clone()
    with arch_step(sn) as stats:  # the ops' before/after hooks around one update of the alphas
        sn.c1.involved, sn.c2.involved = [0, 2], [2, 5]  # the pairs the arch loss sampled
        with torch.no_grad():
            alpha.add_(torch.tensor([0.2, 0.3, -0.1, 0.4, 0.5, 0.6]))  # an optimizer step moved every entry
    assert stats == {"rescaled": 1.0}  # one alpha, rescaled once for both ops
    union, rest = [0, 2, 5], [1, 3, 4]
    assert torch.equal(alpha.detach()[rest], before[rest])
    torch.testing.assert_close(torch.logsumexp(alpha.detach()[union], 0), torch.logsumexp(before[union], 0))
    assert sn.c1.involved == [] and sn.c2.involved == []


def test_binary_gate_has_one_probability_and_one_rescale_api() -> None:
    """One probability API (sample_probs) and one rescale path (the arch-step hooks)."""
    from fxnas.mixed import BinaryGateMixedOp, arch_step

    for dup in ("probs", "rescale_alpha"):
        assert not hasattr(BinaryGateMixedOp, dup), dup
    sn, _ = supernet("BinaryGate")
    torch.testing.assert_close(sn.c1.sample_probs(), F.softmax(sn.c1.alpha.detach(), -1))
    uniform, _ = supernet("BinaryGateUniform")
    torch.testing.assert_close(uniform.c1.sample_probs(), torch.full((len(CANDS),), 1 / len(CANDS)))
    before = sn.c1.alpha.detach().clone()
    with arch_step(sn) as stats:
        sn.c1.involved, sn.c2.involved = [1, 3], []
        with torch.no_grad():
            sn.c1.alpha.add_(torch.arange(len(CANDS), dtype=before.dtype))
    assert stats == {"rescaled": 1.0}  # c2 sampled nothing: its alpha is not rescaled
    assert torch.equal(sn.c1.alpha.detach()[[0, 2, 4, 5]], before[[0, 2, 4, 5]])
