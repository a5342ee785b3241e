"""SubNet estimator: archs trained from scratch on digits (CNN) and on tabular tensors (MLP)."""

from __future__ import annotations

import random

import pytest
import torch
import yaml
from torch import nn

import fxnas
from fxnas.errors import ConfigError
from fxnas.estim import ESTIMATORS
from fxnas.estim.subnet import SubNet, train_subnet
from fxnas.experiment import Experiment
from fxnas.optim import OPTIMIZERS
from fxnas.train import DATASETS, Regression, Trainer

from .conftest import CNN, crash_and_resume


def supernet(cands=("ORIG", "NC3", "IDT")) -> torch.fx.GraphModule:
    torch.manual_seed(0)
    return fxnas.searchify(CNN(), pattern="conv3x3", candidates=list(cands), example_inputs=torch.randn(1, 1, 16, 16))


def test_train_subnet_learns_and_leaves_supernet_alone(digits):
    net = supernet()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    rng_before = torch.get_rng_state()
    arch = {"c1": "ORIG", "c2": "NC3"}
    m = train_subnet(net, arch, digits, Trainer(epochs=3, lr=0.1), seed=0)
    assert m["acc"] > 50.0 and {"acc", "loss", "params", "train_loss"} <= set(m)
    # params of the materialised subnet: c1 conv 1*16*9, NC3 conv 16*16*9 + BN, BNs b1/b2, fc
    assert m["params"] == 144 + (2304 + 32) + 32 + 32 + 170
    assert all(torch.equal(v, net.state_dict()[k]) for k, v in before.items())
    assert torch.equal(torch.get_rng_state(), rng_before)
    again = train_subnet(net, arch, digits, Trainer(epochs=3, lr=0.1), seed=0)
    assert again["acc"] == m["acc"]  # fixed by (seed, arch), whatever ran before
    cheap = train_subnet(net, {"c1": "IDT", "c2": "IDT"}, digits, Trainer(epochs=0))
    assert cheap["acc"] < 40 and "train_loss" not in cheap


def make_exp(tmp_path, net, data, trainer, estimator, optimizer="Random", name="exp", **opt):
    optim = OPTIMIZERS.get(optimizer)(net.space, seed=0, **opt)
    return Experiment(net, data=data, trainer=trainer, optimizer=optim, estimators=[estimator],
                      out_root=tmp_path, name=name, seed=0, progress=False)


def test_subnet_estimator_searches_digits(tmp_path, digits):
    net = supernet()
    exp = make_exp(tmp_path, net, digits, Trainer(epochs=2, lr=0.1), SubNet(epochs=2, budget=3, batch_size=2))
    summary = exp.run()
    loop = [r for r in exp.history if r.info.get("loop")]
    assert len(loop) == 3 and len({tuple(sorted(r.arch.items())) for r in loop}) == 3
    assert all({"acc", "loss", "params"} <= set(r.metrics) for r in loop)
    best = exp.best
    assert best is not None and best.metrics["acc"] == max(r.metrics["acc"] for r in loop)
    assert net.space.validate(best.arch, complete=True) == best.arch
    assert best.metrics["acc"] > 30.0  # chance is 10%
    saved = yaml.safe_load((tmp_path / "exp" / "arch_best.yaml").read_text())
    assert saved["arch"] == best.arch and summary["arch"] == best.arch
    assert len((tmp_path / "exp" / "history.jsonl").read_text().splitlines()) == 3
    # the supernet now holds the best arch's trained weights: the exported subnet is the trained one
    net.space.apply(best.arch)
    assert Trainer().evaluate(net, digits.valid)["acc"] == pytest.approx(best.metrics["acc"])
    assert summary["test_metrics"]["acc"] > 30.0


def test_subnet_resume_matches_uninterrupted(tmp_path, digits):
    def build(name):
        trainer = Trainer(epochs=1, lr=0.1, max_steps_per_epoch=6)
        return make_exp(tmp_path, supernet(), digits, trainer, SubNet(budget=4, batch_size=1), name=name)

    full, resumed = crash_and_resume(build, 4)  # after the best (the 3rd) was found
    # the best arch's weights were retrained after the resume when it was found before the crash
    a, b = full.model.state_dict(), resumed.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_subnet_registry_and_errors():
    assert ESTIMATORS.get("SubNet") is SubNet
    with pytest.raises(ConfigError, match="budget"):
        SubNet(budget=0)
    with pytest.raises(ConfigError, match="unknown options"):
        SubNet(epoch=2)


class MLP(nn.Module):
    """A tabular regressor: three linear layers (the search slots)."""

    def __init__(self) -> None:
        super().__init__()
        self.l1, self.l2, self.l3 = nn.Linear(6, 32), nn.Linear(32, 32), nn.Linear(32, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.l3(torch.relu(self.l2(torch.relu(self.l1(x)))))


def test_subnet_on_tabular_regression(tmp_path):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(400, 6, generator=g)
    y = torch.sin(x[:, 0]) * 2 + x[:, 1] * x[:, 2] + 0.5 * x[:, 3]
    torch.save({"X": x, "y": y}, tmp_path / "tab.pt")
    data = DATASETS.build("tensors", path=str(tmp_path / "tab.pt"), batch_size=32, valid_fraction=0.25)
    torch.manual_seed(0)
    net = fxnas.searchify(MLP(), pattern="linear", candidates=["ORIG", "IDT"], example_inputs=torch.randn(1, 6))
    assert len(net.space) == 3
    trainer = Regression(epochs=10, lr=0.05, weight_decay=0.0)
    exp = make_exp(tmp_path, net, data, trainer, SubNet(budget=4, batch_size=2))
    exp.run()
    loop = [r for r in exp.history if r.info.get("loop")]
    assert len(loop) == 4 and all({"neg_mse", "mse", "params"} <= set(r.metrics) for r in loop)
    var = float(torch.cat([b[1] for b in data.valid]).var())
    assert exp.best.metrics["mse"] < 0.6 * var  # clearly better than predicting the mean
    assert exp.best.metrics["neg_mse"] == max(r.metrics["neg_mse"] for r in loop)
    # ORIG on l2 (32->32) is a Linear; IDT there is the identity with no params
    p = {r.arch["l2"]: r.metrics["params"] for r in loop if r.arch["l1"] == "ORIG" and r.arch["l3"] == "ORIG"}
    if len(p) == 2:
        assert p["ORIG"] - p["IDT"] == 32 * 32 + 32


def test_random_archs_of_space_are_trainable(digits):
    net = supernet()
    arch = net.space.sample(random.Random(3))
    m = train_subnet(net, arch, digits, Trainer(epochs=1, lr=0.1, max_steps_per_epoch=2))
    assert 0 <= m["acc"] <= 100 and m["params"] > 0


def test_keep_best_needs_a_single_path_supernet(tmp_path, digits):
    torch.manual_seed(0)
    net = fxnas.searchify(CNN(), pattern="conv3x3", candidates=["ORIG", "NC3"], mixed_op="SoftmaxSum",
                          example_inputs=torch.randn(1, 1, 16, 16))
    trainer = Trainer(epochs=1, lr=0.1, max_steps_per_epoch=2)
    exp = make_exp(tmp_path, net, digits, trainer, SubNet(budget=1))
    with pytest.raises(ConfigError, match="keep_best.*Index.*keep_best: false"):
        exp.run()
    ok = make_exp(tmp_path, net, digits, trainer, SubNet(budget=1, keep_best=False, bn_steps=0), name="ok")
    assert len([r for r in ok.estimators[0].run(ok) if r.info.get("loop")]) == 1


def test_fit_subnet_leaves_every_global_rng_alone(digits):
    import numpy as np

    from fxnas.estim.subnet import fit_subnet

    def step(model, batch):  # training that draws from python's and numpy's generators (e.g. augmentation)
        x = batch[0] + 0.01 * (random.random() + float(np.random.rand()))
        return nn.functional.cross_entropy(model(x), batch[1])

    net = supernet()
    py, npy, tch = random.getstate(), np.random.get_state(), torch.get_rng_state()
    m, module = fit_subnet(net, {"c1": "NC3", "c2": "IDT"}, digits,
                           Trainer(epochs=1, lr=0.1, max_steps_per_epoch=3, step_fn=step), bn_steps=2)
    assert random.getstate() == py and torch.equal(torch.get_rng_state(), tch)
    assert all(np.array_equal(a, b) for a, b in zip(np.random.get_state(), npy))
    assert m["params"] == (144 + 32) + 32 + 32 + 170  # c1 NC3 (conv 1*16*9 + its BN), IDT c2, b1, b2, fc
    assert module is not net and module.space.current() == {"c1": "NC3", "c2": "IDT"}
