"""Criteria: each loss checked against a direct computation; chains apply terms in order."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from fxnas.errors import ConfigError
from fxnas.train import (
    CRITERIA,
    MSE,
    Auxiliary,
    CriterionChain,
    CrossEntropy,
    Distillation,
    LabelSmoothing,
    build_criteria,
)


@pytest.fixture
def batch():
    g = torch.Generator().manual_seed(0)
    return torch.randn(8, 5, generator=g), torch.randint(0, 5, (8,), generator=g)


def test_cross_entropy_and_label_smoothing(batch):
    logits, y = batch
    assert torch.allclose(CrossEntropy()(None, logits, y), F.cross_entropy(logits, y))
    for eps in (0.0, 0.1, 0.3):
        want = F.cross_entropy(logits, y, label_smoothing=eps)
        assert torch.allclose(LabelSmoothing(eps)(None, logits, y), want, atol=1e-6)
    with pytest.raises(ConfigError, match="eps"):
        LabelSmoothing(1.5)


def test_auxiliary_adds_weighted_aux_loss(batch):
    logits, y = batch
    aux = logits.flip(0)
    chain = build_criteria(["CrossEntropy", {"type": "Auxiliary", "options": {"weight": 0.4}}])
    want = F.cross_entropy(logits, y) + 0.4 * F.cross_entropy(aux, y)
    assert torch.allclose(chain((logits, aux), y), want)
    # eval-mode models return only the logits: the aux term is absent
    assert torch.allclose(chain(logits, y), F.cross_entropy(logits, y))
    assert torch.allclose(chain.task_loss((logits, aux), y), F.cross_entropy(logits, y))
    assert isinstance(chain.criteria[1], Auxiliary)


def test_mse_shapes():
    pred = torch.tensor([[1.0], [2.0], [4.0]])
    y = torch.tensor([1.0, 1.0, 1.0])
    assert torch.allclose(MSE()(None, pred, y), torch.tensor(10 / 3))
    with pytest.raises(ConfigError, match="does not match"):
        MSE()(None, torch.zeros(3, 2), y)


def test_distillation_matches_hinton_formula(batch, tmp_path):
    x, y = torch.randn(8, 3), batch[1]
    teacher = nn.Linear(3, 5)
    student_logits = torch.randn(8, 5)
    T, w = 2.0, 0.5
    d = Distillation(teacher, temperature=T, weight=w)
    p_t = F.softmax(teacher(x) / T, -1)
    kl = (p_t * (p_t.log() - F.log_softmax(student_logits / T, -1))).sum(-1).mean() * T * T
    got = d(torch.tensor(1.0), student_logits, y, x)
    assert torch.allclose(got, 1.0 + w * kl, atol=1e-5)
    assert not any(p.requires_grad for p in d.teacher.parameters())
    # the same teacher from a TorchScript file, a torch.export program, and file.py:fn + weights
    torch.jit.save(torch.jit.script(teacher), tmp_path / "teacher.pt")
    d2 = Distillation(str(tmp_path / "teacher.pt"), temperature=T, weight=w)
    assert torch.allclose(d2(torch.tensor(1.0), student_logits, y, x), got, atol=1e-6)
    torch.export.save(torch.export.export(teacher, (x,)), tmp_path / "teacher.pt2")
    d_ep = Distillation(str(tmp_path / "teacher.pt2"), temperature=T, weight=w)
    assert torch.allclose(d_ep(torch.tensor(1.0), student_logits, y, x), got, atol=1e-6)
    torch.save(teacher, tmp_path / "pickled.pt")  # a whole pickled module could run code: refused
    with pytest.raises(ConfigError, match="is not a TorchScript file; a pickled module is not loaded"):
        Distillation(str(tmp_path / "pickled.pt"))
    (tmp_path / "t.py").write_text("from torch import nn\ndef build():\n    return nn.Linear(3, 5)\n")
    torch.save(teacher.state_dict(), tmp_path / "w.pt")
    d3 = Distillation(f"{tmp_path / 't.py'}:build", temperature=T, weight=w, weights=str(tmp_path / "w.pt"))
    assert torch.allclose(d3(torch.tensor(1.0), student_logits, y, x), got, atol=1e-6)
    with pytest.raises(ConfigError, match="teacher must be"):
        Distillation("no_such_teacher")


def test_distillation_ratio_is_modularnas_knowledge_distill(batch):
    x, y = torch.randn(8, 3), batch[1]
    teacher = nn.Linear(3, 5)
    student = torch.randn(8, 5)
    ce = F.cross_entropy(student, y)
    d = Distillation(teacher, temperature=1.0, ratio=0.3)
    # ModularNAS: (1 - r) * loss + r * CE(student, softmax(teacher)); that CE is the KL plus the teacher's entropy
    p_t = F.softmax(teacher(x), -1)
    soft_ce = -(p_t * F.log_softmax(student, -1)).sum(-1).mean()
    entropy = -(p_t * p_t.log()).sum(-1).mean()
    got = d(ce, student, y, x)
    assert torch.allclose(got, 0.7 * ce + 0.3 * (soft_ce - entropy), atol=1e-5)
    with pytest.raises(ConfigError, match="ratio"):
        Distillation(teacher, ratio=1.5)


def test_chain_order_and_builders(batch):
    logits, y = batch
    chain = build_criteria([{"type": "LabelSmoothing", "options": {"eps": 0.1}}])
    assert isinstance(chain, CriterionChain) and isinstance(chain.criteria[0], LabelSmoothing)
    assert isinstance(build_criteria(None).criteria[0], CrossEntropy)
    assert isinstance(build_criteria(None, default="MSE").criteria[0], MSE)
    assert build_criteria(chain) is chain
    flat = build_criteria([{"type": "LabelSmoothing", "eps": 0.2}]).criteria[0]
    assert flat.eps == 0.2
    with pytest.raises(ConfigError, match="did you mean CrossEntropy"):
        build_criteria("CrossEntropi")
    with pytest.raises(ConfigError, match="type"):
        build_criteria([{"name": "CrossEntropy"}])
    with pytest.raises(ConfigError, match="LabelSmoothing"):
        build_criteria([{"type": "LabelSmoothing", "options": {"epsilon": 0.1}}])
    with pytest.raises(ConfigError):
        CriterionChain([])
    assert {"CrossEntropy", "LabelSmoothing", "Auxiliary", "Distillation", "MSE"} <= set(CRITERIA.names())
