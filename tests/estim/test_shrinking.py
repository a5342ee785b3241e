"""ProgressiveShrinking: stages full -> kernel -> depth -> width, sandwich steps, in-place distillation,
BN-recalibrated evaluation, a search under a MACs constraint, resume at a stage boundary."""

from __future__ import annotations

import pytest
import torch

import fxnas
from fxnas.elastic import cost, elastic_params, largest, smallest
from fxnas.elastic.sampling import step_subnets
from fxnas.errors import ConfigError
from fxnas.estim import ESTIMATORS
from fxnas.estim.shrinking import ProgressiveShrinking
from fxnas.experiment import Experiment
from fxnas.optim import OPTIMIZERS
from fxnas.train import TRAINERS
from fxnas.train.criteria import soft_kl

from .conftest import CNN, Crash, elastic_cnn


def experiment(data, tmp_path, name: str = "ps", model=None, constraints=(), **options) -> Experiment:
    net = model if model is not None else elastic_cnn()
    est = ESTIMATORS.build("ProgressiveShrinking", **{"epochs": 1, "bn_steps": 2, "eval_steps": 2, "budget": 3,
                                                      **options})
    trainer = TRAINERS.build("Classification", max_steps_per_epoch=3, lr=0.05)
    opt = OPTIMIZERS.build("Random", inject={"space": net.space, "seed": 0, "constraints": list(constraints)})
    return Experiment(net, net.space, data, trainer, opt, [est], name=name, out_root=tmp_path, progress=False,
                      constraints=constraints, export={"materialize": False})


def transforms(net) -> list[torch.Tensor]:
    return [p.detach().clone() for n, p in net.named_parameters() if ".transforms." in n]


def test_stages_run_in_order_and_the_search_meets_the_constraint(digits8, tmp_path) -> None:
    """Each stage's epoch records its largest and (once shrinking) smallest setting, with the stage's kinds at
    their smallest and the others at their largest; costs are the elastic cost; each stage starts its own
    schedule at its lr; the search's results are ranked under the MACs constraint."""
    net = elastic_cnn()
    kinds = {k: p.kind for k, p in elastic_params(net).items()}
    assert set(kinds.values()) == {"width", "kernel", "depth"}
    bound = (cost(net, largest(net))["macs"] + cost(net, smallest(net))["macs"]) / 2
    exp = experiment(digits8, tmp_path, model=net, constraints=[f"macs <= {bound}"],
                     lr={"full": 0.1, "width": 0.02})
    before = transforms(net)
    exp.run()
    epochs = [r for r in exp.history if "epoch" in r.info]
    assert [(r.info["phase"], r.info["subnet"]) for r in epochs] == [
        ("full", "largest"), ("kernel", "largest"), ("kernel", "smallest"), ("depth", "largest"),
        ("depth", "smallest"), ("width", "largest"), ("width", "smallest")]
    unlocked = {"kernel": {"kernel"}, "depth": {"kernel", "depth"}, "width": {"kernel", "depth", "width"}}
    for r in epochs:
        assert r.info["rank"] is False and {"acc", "loss", "params", "macs", "train_loss"} <= set(r.metrics)
        assert r.metrics["macs"] == cost(net, r.arch)["macs"] and r.metrics["params"] == cost(net, r.arch)["params"]
        small = r.info["subnet"] == "smallest"
        for k, kind in kinds.items():
            p = net.space[k]
            assert r.arch[k] == (p.choices[0] if small and kind in unlocked[r.info["phase"]] else p.choices[-1])
    found = [r for r in exp.history if r.info.get("loop")]
    assert len(found) == 3 and exp.best in found and exp.best.metrics["macs"] <= bound
    assert exp.trainer.optimizer.param_groups[0]["initial_lr"] == pytest.approx(0.02)  # the width stage's
    assert any(not torch.equal(a, b) for a, b in zip(transforms(net), before))  # the kernel stage trained them


def test_the_full_stage_trains_the_largest_setting_only(digits8, tmp_path) -> None:
    """stages: [full]: weights move, but the kernel transforms (used by smaller kernels only) do not."""
    net = elastic_cnn()
    before_t, before_w = transforms(net), net.get_submodule("stem.0").weight.detach().clone()
    exp = experiment(digits8, tmp_path, model=net, stages=["full"], budget=0)
    summary_best = exp.run()["metrics"]
    assert all(torch.equal(a, b) for a, b in zip(transforms(net), before_t))
    assert not torch.equal(net.get_submodule("stem.0").weight, before_w)
    assert exp.best is not None and exp.best.info["subnet"] == "largest" and "acc" in summary_best


def test_sandwich_steps_and_in_place_distillation(digits8, tmp_path) -> None:
    """A step trains ``subnets`` settings (largest and smallest first); with distill the largest's logits are
    the soft targets of the others: their loss is CE + kd_weight * T^2 KL, numerically."""
    net = elastic_cnn().eval()
    exp = experiment(digits8, tmp_path, model=net, distill=True, kd_weight=0.5, kd_temperature=2.0)
    est: ProgressiveShrinking = exp.estimators[0]  # type: ignore[assignment]
    x, y = next(iter(digits8.train))
    kinds = {"kernel", "depth", "width"}
    for sandwich in (True, False):
        archs = step_subnets(net.space, kinds, 3, sandwich, 0, "t", sandwich)
        fns = est.losses(exp, archs, shrinking=True)
        assert len(fns) == 3
        with torch.no_grad():
            net.space.apply(largest(net))
            teacher = net(x)
            for fn, arch in zip(fns, archs):
                got = fn(net, (x, y))
                net.space.apply(arch)
                out = net(x)
                ce = torch.nn.functional.cross_entropy(out, y)
                want = ce if arch == largest(net) else ce + 0.5 * soft_kl(out, teacher, 2.0)
                torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
        assert (archs[0] == largest(net)) is sandwich
    calls = []
    real = exp.trainer.train_step
    exp.trainer.train_step = lambda m, b, losses=None: calls.append(len(losses)) or real(m, b, losses)
    net.train()
    exp.configure_trainer(1)
    exp.space.apply(largest(net))
    est.epoch = 1  # the kernel stage
    est.weight_step(exp, (x, y))
    assert calls == [4] and exp.space.current() == largest(net)  # the step leaves the arch it found


def test_resumed_at_a_stage_boundary_it_ends_as_an_uninterrupted_run(digits8, tmp_path) -> None:
    """Killed right after the kernel stage's epoch (its schedule done, the depth stage's not begun), the run
    resumed from its checkpoint ends with the same history."""
    full = experiment(digits8, tmp_path, "full")
    full.run()
    broken = experiment(digits8, tmp_path, "broken")
    real, n = broken.checkpoint, []

    def crash():
        n.append(real())
        if len(n) == 2:
            raise Crash
        return n[-1]

    broken.checkpoint = crash
    with pytest.raises(Crash):
        broken.run()
    assert broken.estimators[0].epoch == 2
    resumed = experiment(digits8, tmp_path, "broken")
    resumed.run(resume=True)
    assert [(r.arch, r.metrics) for r in resumed.history] == [(r.arch, r.metrics) for r in full.history]


def test_bad_setups_are_refused(digits8, tmp_path) -> None:
    for opts, match in [({"stages": ["kernel", "full"]}, "'full' first"), ({"stages": ["kernel", "kernel"]},
                        "distinct"), ({"epochs": {"widht": 1}}, "'widht' is not one of its stages"),
                        ({"epochs": {"full": -1}}, r"epochs.full must be an integer >= 0"),
                        ({"subnets": 1}, ">= 2 with sandwich"), ({"lr": {"full": 0}}, r"lr.full must be a number"),
                        ({"costs": ["mac"]}, "did you mean macs")]:
        with pytest.raises(ConfigError, match=match):
            ProgressiveShrinking(**opts)
    torch.manual_seed(0)
    plain = fxnas.searchify(CNN(), "conv3x3", ["ORIG", "NC3"], torch.randn(1, 1, 8, 8))
    with pytest.raises(ConfigError, match="needs an elastic supernet"):
        experiment(digits8, tmp_path, "plain", model=plain).run()
    exp = experiment(digits8, tmp_path, "stepfn", distill=True)
    exp.trainer.step_fn = lambda m, b: m(b[0]).sum()
    with pytest.raises(ConfigError, match="distill needs the trainer's own loss"):
        exp.run()


def test_phases_widen_a_stage_from_the_largest_choices_down(digits8, tmp_path) -> None:
    """phases: {width: 2}: the width stage's first epoch trains and evaluates the larger half of each width
    param's choices (OFA's expansion {6, 4} before {6, 4, 3}), its second epoch all of them."""
    from fxnas.elastic.sampling import allowed

    torch.manual_seed(0)
    net = fxnas.elasticize(CNN().eval(), torch.randn(1, 1, 8, 8), width=(0.25, 0.5, 0.75, 1.0),
                           divisor=4).train()
    widths = {k: p.choices for k, p in elastic_params(net).items()}
    assert widths and all(len(c) >= 3 for c in widths.values())
    exp = experiment(digits8, tmp_path, model=net, stages=["full", "width"], epochs={"full": 1, "width": 2},
                     phases={"width": 2}, budget=0)
    est: ProgressiveShrinking = exp.estimators[0]  # type: ignore[assignment]
    assert est.fractions(exp, 0) == {} and est.fractions(exp, 1) == {"width": 0.5} and est.fractions(exp, 2) == {
        "width": 1.0}
    for epoch, fraction in ((1, 0.5), (2, 1.0)):
        for step in range(5):
            for arch in step_subnets(net.space, {"width"}, 4, True, 0, "ps", epoch, step,
                                     fractions=est.fractions(exp, epoch)):
                assert all(arch[k] in allowed(c, fraction) for k, c in widths.items())
    exp.run()
    smallest_of = {r.info["epoch"]: r.arch for r in exp.history if r.info.get("subnet") == "smallest"}
    assert all(smallest_of[2][k] == allowed(c, 0.5)[0] != c[0] for k, c in widths.items())
    assert all(smallest_of[3][k] == c[0] for k, c in widths.items())
    with pytest.raises(ConfigError, match="phases.width must be an integer >= 1"):
        ESTIMATORS.build("ProgressiveShrinking", phases={"width": 0})
