"""MixUp: the chain's training loss is ModularNAS's lam * L(y) + (1 - lam) * L(y') on the mixed batch, for
classification and regression; evaluation is unmixed; the draw follows torch's generator; bad chains refused."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from fxnas.config import load_config
from fxnas.errors import ConfigError
from fxnas.train import TRAINERS, LabelSmoothing, MixUp, build_criteria


def _lam(seed: int, alpha: float) -> float:
    torch.manual_seed(seed)
    a = torch.tensor(alpha)
    return float(torch.distributions.Beta(a, a).sample())


def test_mixup_loss_is_the_lam_weighted_loss_of_both_targets() -> None:
    torch.manual_seed(0)
    model = nn.Linear(6, 4)
    x, y = torch.randn(5, 6), torch.tensor([0, 1, 2, 3, 1])
    chain = build_criteria([{"type": "MixUp", "alpha": 0.4}, "CrossEntropy"])
    torch.manual_seed(7)
    got = chain.training_loss(model, x, y)
    lam = _lam(7, 0.4)
    out = model(lam * x + (1 - lam) * x.flip(0))
    want = lam * F.cross_entropy(out, y) + (1 - lam) * F.cross_entropy(out, y.flip(0))
    torch.testing.assert_close(got, want)
    assert 0.0 < lam < 1.0
    torch.manual_seed(7)  # the same generator state draws the same mix (a resumed run replays it)
    torch.testing.assert_close(chain.training_loss(model, x, y), got)


def test_mixup_regression_mixes_the_target_values() -> None:
    torch.manual_seed(0)
    model = nn.Linear(3, 1)
    x, y = torch.randn(4, 3), torch.tensor([0.5, -1.0, 2.0, 3.0])
    chain = build_criteria(["MSE", {"type": "MixUp", "alpha": 1.0, "flip": False}])
    torch.manual_seed(3)
    got = chain.training_loss(model, x, y)
    torch.manual_seed(3)
    a = torch.tensor(1.0)
    lam = float(torch.distributions.Beta(a, a).sample())
    order = torch.randperm(4)
    pred = model(lam * x + (1 - lam) * x[order]).squeeze(-1)
    torch.testing.assert_close(got, F.mse_loss(pred, lam * y + (1 - lam) * y[order]))


def test_label_smoothing_takes_soft_targets() -> None:
    logits, y = torch.randn(6, 5), torch.tensor([0, 4, 2, 2, 1, 3])
    ls = LabelSmoothing(0.1)
    torch.testing.assert_close(ls(None, logits, F.one_hot(y, 5).float()), ls(None, logits, y))
    soft = 0.3 * F.one_hot(y, 5).float() + 0.7 * F.one_hot(y.flip(0), 5).float()
    want = 0.3 * ls(None, logits, y) + 0.7 * ls(None, logits, y.flip(0))
    torch.testing.assert_close(ls(None, logits, soft), want)


def test_trainer_trains_on_mixed_batches_and_evaluates_unmixed() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(8, 3))
    x, y = torch.randn(12, 2, 4), torch.randint(0, 3, (12,))
    mixing = TRAINERS.build("Classification", criteria=["CrossEntropy", "MixUp"])
    plain = TRAINERS.build("Classification")
    mixing.configure(model, 1)
    loader = [(x, y)]
    assert mixing.evaluate(model, loader) == plain.evaluate(model, loader)
    torch.manual_seed(1)
    before = mixing.loss(model, (x, y))
    torch.manual_seed(1)
    assert torch.isfinite(torch.tensor(mixing.train_step(model, (x, y))["loss"]))
    assert float(before.detach()) != pytest.approx(float(F.cross_entropy(model(x), y).detach()), rel=1e-3)


def test_bad_mixup_configs() -> None:
    with pytest.raises(ConfigError, match="no loss term"):
        build_criteria(["MixUp"])
    with pytest.raises(ConfigError, match="alpha"):
        MixUp(alpha=0.0)
    with pytest.raises(ConfigError, match="tensor inputs"):
        MixUp().mix_batch([torch.zeros(2, 3)], torch.zeros(2))
    cfg = load_config({"name": "m", "model": {"type": "tiny_net"}, "optim": "Random", "estim": "SubNet",
                       "construct": {"pattern": "conv3x3", "candidates": ["NC3"]},
                       "trainer": {"criteria": [{"type": "MixUp", "alpha": 0.2}, "CrossEntropy"]}})
    assert cfg["trainer"]["options"]["criteria"][0] == {"type": "MixUp", "options": {"alpha": 0.2}}
    with pytest.raises(ConfigError, match="alpah"):
        load_config({"name": "m", "model": {"type": "tiny_net"}, "optim": "Random", "estim": "SubNet",
                     "construct": {"pattern": "conv3x3", "candidates": ["NC3"]},
                     "trainer": {"criteria": [{"type": "MixUp", "alpah": 0.2}, "CrossEntropy"]}})
