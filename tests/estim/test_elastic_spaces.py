"""SubNet, Uniform and Table on an elastic supernet, with costs counted without materialising."""

from __future__ import annotations

import pickle

import torch

import fxnas
from fxnas.elastic import cost, largest
from fxnas.estim import ESTIMATORS
from fxnas.estim.subnet import reset_weights
from fxnas.estim.table import BENCHMARKS
from fxnas.estim.uniform import evaluate_shared
from fxnas.experiment import Experiment
from fxnas.optim import OPTIMIZERS
from fxnas.train import TRAINERS, fixed_batches, recalibrate_bn

from .conftest import elastic_cnn


def run(net, data, tmp_path, est, name: str, constraints=(), materialize: bool = False) -> Experiment:
    opt = OPTIMIZERS.build("RegularizedEvolution", inject={"space": net.space, "seed": 0}, population=2)
    exp = Experiment(net, net.space, data, TRAINERS.build("Classification", max_steps_per_epoch=4, lr=0.05), opt,
                     [est], name=name, out_root=tmp_path, progress=False, constraints=constraints,
                     export={"materialize": materialize, "test": False})
    exp.run()
    return exp


def test_uniform_searches_an_elastic_space_with_bn_recalibration(digits8, tmp_path) -> None:
    """Shared-weight metrics of an elastic setting are those of its materialised subnet recalibrated on the
    same batches; costs are the elastic cost; the supernet's statistics come back unchanged."""
    net = elastic_cnn()
    est = ESTIMATORS.build("Uniform", epochs=1, budget=4, bn_steps=3, eval_steps=2, costs=["params", "macs"])
    exp = run(net, digits8, tmp_path, est, "uniform")
    found = [r for r in exp.history if r.info.get("loop")]
    assert len(found) == 4
    for r in found:
        assert r.metrics["params"] == cost(net, r.arch)["params"] and r.metrics["macs"] == cost(net, r.arch)["macs"]
    arch = min((r.arch for r in found), key=lambda a: cost(net, a)["macs"])
    batches = fixed_batches(digits8.train, 3)
    stats = {k: v.clone() for k, v in net.state_dict().items() if "running" in k}
    shared = evaluate_shared(net, arch, exp.trainer, digits8.valid, batches, eval_steps=2, params=False)
    assert all(torch.equal(v, net.state_dict()[k]) for k, v in stats.items())
    sub = fxnas.materialize(net, arch)
    recalibrate_bn(sub, batches, 3)
    alone = exp.trainer.evaluate(sub, digits8.valid, 2)
    assert shared["acc"] == alone["acc"]
    assert abs(shared["loss"] - alone["loss"]) < 1e-4 * max(1.0, alone["loss"])
    stale = evaluate_shared(net, arch, exp.trainer, digits8.valid, batches, bn_steps=0, eval_steps=2, params=False)
    assert stale["loss"] != shared["loss"]  # the recalibration did change the elastic BatchNorms' statistics


def test_subnet_trains_elastic_settings_from_scratch(digits8, tmp_path) -> None:
    """Elastic modules re-initialise like the layers they replace; the best setting's trained weights go back
    into the supernet, and the exported subnet is that setting's, smaller than the full net."""
    net = elastic_cnn()
    probe = elastic_cnn()
    w = probe.get_submodule("stem.0").weight.detach().clone()
    reset_weights(probe)
    assert not torch.equal(probe.get_submodule("stem.0").weight, w)
    assert all(torch.equal(p, torch.eye(p.shape[0])) for n, p in probe.named_parameters() if ".transforms." in n)
    full = cost(net, largest(net))
    bound = full["macs"] * 0.9
    est = ESTIMATORS.build("SubNet", epochs=1, budget=3, bn_steps=2, eval_steps=2, costs=["macs"])
    exp = run(net, digits8, tmp_path, est, "subnet", constraints=[f"macs <= {bound}"], materialize=True)
    assert exp.best is not None and exp.best.metrics["macs"] <= bound
    assert exp.best.metrics["params"] == cost(net, exp.best.arch)["params"]
    sub = torch.load(exp.out_dir / "subnet.pt", weights_only=False)
    assert sum(p.numel() for p in sub.parameters()) < full["params"]
    assert net.space.current() == exp.best.arch


def test_table_looks_up_elastic_archs_and_counts_their_costs(tmp_path) -> None:
    """A user's benchmark of elastic archs: looked up by Table, costs from the elastic supernet, and the
    evaluate function pickles (dask) without the supernet."""
    net = elastic_cnn()

    class WidthTable:
        metrics = ["score"]

        def lookup(self, arch):
            return {"score": float(sum(v for k, v in arch.items() if k.startswith("width.")))}

    with BENCHMARKS.scoped():
        BENCHMARKS.register("widths", obj=lambda path=None: WidthTable())
        est = ESTIMATORS.build("Table", benchmark="widths", metric="score", report=[], costs=["params", "macs"],
                               budget=5)
        opt = OPTIMIZERS.build("Random", inject={"space": net.space, "seed": 0})
        exp = Experiment(net, net.space, None, None, opt, [est], name="table", out_root=tmp_path, progress=False,
                         export={"materialize": False})
        exp.run()
        for r in exp.history:
            assert r.metrics["score"] == sum(v for k, v in r.arch.items() if k.startswith("width."))
            assert (r.metrics["params"], r.metrics["macs"]) == tuple(float(v) for v in cost(net, r.arch).values())
        fn = pickle.loads(pickle.dumps(est.evaluator(net)))
        arch = exp.history[0].arch
        assert fn(arch) == exp.history[0].metrics
        counter = fn.cost_fn.counters["params"]
        assert fn.cost_fn.supernet is None and all(p.is_meta for p in counter.supernet.parameters())
