"""Uniform (SPOS) estimator: uniform-path supernet training, BN-recalibrated shared-weight search."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import fxnas
from fxnas.errors import ConfigError
from fxnas.estim import ESTIMATORS
from fxnas.estim.uniform import Uniform, evaluate_shared, fixed_batches, sample_path
from fxnas.experiment import Experiment
from fxnas.optim import OPTIMIZERS
from fxnas.train import DATASETS, Trainer, recalibrate_bn

from .conftest import CNN, crash_and_resume


def supernet(mixed_op: str = "Index") -> torch.fx.GraphModule:
    torch.manual_seed(0)
    return fxnas.searchify(CNN(), pattern="conv3x3", candidates=["ORIG", "NC3", "IDT"], mixed_op=mixed_op,
                           example_inputs=torch.randn(1, 1, 16, 16))


def snapshot(net: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in net.state_dict().items()}


@pytest.fixture(scope="module")
def trained(digits, tmp_path_factory):
    """A supernet after 3 epochs of SPOS training by the Uniform estimator (plus one cheap evaluation)."""
    net = supernet()
    est = Uniform(epochs=3, budget=1, bn_steps=0, eval_steps=1, params=False)
    exp = Experiment(net, data=digits, trainer=Trainer(epochs=3, lr=0.1),
                     optimizer=OPTIMIZERS.get("Random")(net.space, seed=0), estimators=[est],
                     out_root=tmp_path_factory.mktemp("trained"), name="t", seed=0, progress=False,
                     export={"materialize": False})
    exp.run()
    stats = [{"loss": s["train_loss"]} for s in est.train_stats]
    return net, stats


def test_uniform_training_visits_paths_and_learns(trained):
    net, stats = trained
    assert len(stats) == 3 and stats[-1]["loss"] < stats[0]["loss"]
    # every candidate's weights moved away from its copy in a fresh supernet: all paths were trained
    fresh = supernet().state_dict()
    for path in ("c1.candidates.ORIG.weight", "c1.candidates.NC3.0.weight", "c2.candidates.NC3.0.weight",
                 "c1.candidates.IDT.0.weight"):
        assert not torch.allclose(net.state_dict()[path], fresh[path]), path


def test_bn_recalibration_changes_the_path_stats(trained, digits):
    net, _ = trained
    net.space.apply({"c1": "NC3", "c2": "NC3"})
    bn = net.get_submodule("c2.candidates.NC3.1")
    other = net.get_submodule("c2.candidates.ORIG")
    before_mean, before_var = bn.running_mean.clone(), bn.running_var.clone()
    used = recalibrate_bn(net, fixed_batches(digits.train, 4), steps=4)
    assert used == 4 and int(bn.num_batches_tracked) == 4
    assert not torch.allclose(bn.running_mean, before_mean) and not torch.allclose(bn.running_var, before_var)
    assert isinstance(other, nn.Conv2d)  # ORIG has no BN of its own; b2 is shared and was recalibrated too
    assert int(net.get_submodule("b2").num_batches_tracked) == 4


def test_evaluate_shared_restores_the_supernet(trained, digits):
    net, _ = trained
    net.space.apply({"c1": "ORIG", "c2": "ORIG"})
    before = snapshot(net)
    bb = fixed_batches(digits.train, 5)
    results = {}
    for arch in ({"c1": "NC3", "c2": "NC3"}, {"c1": "IDT", "c2": "IDT"}, {"c1": "ORIG", "c2": "NC3"}):
        results[tuple(arch.values())] = evaluate_shared(net, arch, Trainer(), digits.valid, bb)
        after = snapshot(net)
        for k, v in before.items():  # weights and BN statistics are exactly as before
            assert torch.equal(v, after[k]), k
        assert net.space.current() == {"c1": "ORIG", "c2": "ORIG"}
    assert results[("NC3", "NC3")]["acc"] > results[("IDT", "IDT")]["acc"]
    assert results[("NC3", "NC3")]["params"] > results[("IDT", "IDT")]["params"]
    # without recalibration the stats are the training-time running averages: results differ
    plain = evaluate_shared(net, {"c1": "NC3", "c2": "NC3"}, Trainer(), digits.valid, [], params=False)
    assert plain["acc"] != results[("NC3", "NC3")]["acc"] or plain["loss"] != results[("NC3", "NC3")]["loss"]


def make_exp(tmp_path, net, data, estimator, name="exp", trainer=None):
    optim = OPTIMIZERS.get("Random")(net.space, seed=0)
    return Experiment(net, data=data, trainer=trainer or Trainer(epochs=6, lr=0.1), optimizer=optim,
                      estimators=[estimator], out_root=tmp_path, name=name, seed=0, progress=False)


def test_uniform_estimator_searches_digits(tmp_path, digits):
    net = supernet()
    est = Uniform(epochs=6, budget=4, batch_size=2, bn_steps=5)
    exp = make_exp(tmp_path, net, digits, est)
    exp.run()
    assert len(est.train_stats) == 6 and est.train_stats[-1]["train_loss"] < est.train_stats[0]["train_loss"]
    phases = [r.info.get("phase") for r in exp.history]
    assert phases.count("supernet") == 6 and exp.best.info.get("loop")  # training records never rank
    loop = [r for r in exp.history if r.info.get("loop")]
    assert len(loop) == 4 and all({"acc", "loss", "params"} <= set(r.metrics) for r in loop)
    best = exp.best
    assert best in loop and net.space.validate(best.arch, complete=True) == best.arch
    assert best.metrics["acc"] > 30.0
    # evaluating one more candidate through the estimator leaves the shared weights untouched
    before = snapshot(net)
    est.evaluate_arch(exp, {"c1": "IDT", "c2": "NC3"})
    assert all(torch.equal(v, net.state_dict()[k]) for k, v in before.items())


def test_uniform_resume_matches_uninterrupted(tmp_path, digits):
    def build(name):
        return make_exp(tmp_path, supernet(), digits, Uniform(epochs=2, budget=3, bn_steps=2, eval_steps=2),
                        name=name, trainer=Trainer(epochs=2, lr=0.1, max_steps_per_epoch=8))

    crash_and_resume(build, 2)


def test_uniform_checks(tmp_path, digits):
    assert ESTIMATORS.get("Uniform") is Uniform
    net = supernet("SoftmaxSum")
    with pytest.raises(ConfigError, match="Index"):
        make_exp(tmp_path, net, digits, Uniform(epochs=1)).run()
    with pytest.raises(ConfigError, match="budget"):
        Uniform(budget=0)


class MLP(nn.Module):
    """A tabular classifier: three linear layers (the search slots), no BatchNorm."""

    def __init__(self) -> None:
        super().__init__()
        self.l1, self.l2, self.l3 = nn.Linear(5, 24), nn.Linear(24, 24), nn.Linear(24, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.l3(torch.relu(self.l2(torch.relu(self.l1(x)))))


def test_uniform_on_tabular_classification(tmp_path):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(450, 5, generator=g)
    y = (x[:, 0] > 0.4).long() + (x[:, 1] + x[:, 2] > 0.5).long()  # 3 classes
    torch.save({"X": x, "y": y}, tmp_path / "tab.pt")
    data = DATASETS.build("tensors", path=str(tmp_path / "tab.pt"), batch_size=32)
    assert data.num_classes == 3
    torch.manual_seed(0)
    net = fxnas.searchify(MLP(), pattern="linear", candidates=["ORIG", "IDT"], example_inputs=torch.randn(1, 5))
    exp = make_exp(tmp_path, net, data, Uniform(epochs=8, budget=4, bn_steps=0),
                   trainer=Trainer(epochs=8, lr=0.05, weight_decay=0.0))
    exp.run()
    loop = [r for r in exp.history if r.info.get("loop")]
    assert len(loop) == 4 and all({"acc", "params"} <= set(r.metrics) for r in loop)
    majority = 100.0 * float(torch.bincount(torch.cat([b[1] for b in data.valid])).max()) / len(data.valid.dataset)
    assert exp.best.metrics["acc"] > majority + 10


def test_sample_path_is_seeded_by_seed_and_key():
    import random

    space = supernet().space
    # the seed string of the histories recorded so far: f"{seed}:{epoch}:{step}"
    assert sample_path(space, 3, 1, 7) == space.sample(random.Random("3:1:7"))
    draws = {tuple(sample_path(space, 0, 0, step).values()) for step in range(40)}
    assert len(draws) > 3  # uniform over the 9 paths, not one path
    pool = [{"c1": "NC3", "c2": "IDT"}, {"c1": "IDT", "c2": "ORIG"}]
    picked = [sample_path(space, 0, "unified", g, pool=pool) for g in range(20)]
    assert all(p in pool for p in picked) and len({tuple(p.values()) for p in picked}) == 2
    assert picked[5] == random.Random("0:unified:5").choice(pool)  # Unified's seeding, unchanged


def test_evaluate_shared_feeds_bn_through_the_step_fn_and_counts_params_without_copying_weights(trained, digits):
    from fxnas.passes.materialize import materialize

    net, _ = trained
    calls = []

    def step(model, batch):  # a model trained with a step_fn is fed by it
        calls.append(len(batch[0]))
        return nn.functional.cross_entropy(model(batch[0]), batch[1])

    arch = {"c1": "NC3", "c2": "IDT"}
    m = evaluate_shared(net, arch, Trainer(step_fn=step), digits.valid, fixed_batches(digits.train, 3))
    assert calls == [32, 32, 32]  # BN recalibration ran the step_fn, one call per batch
    assert m["params"] == sum(p.numel() for p in materialize(net, arch).parameters())
