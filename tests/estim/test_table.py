"""The Table estimator: lookups, counted costs, the Experiment loop (local and dask), the nb201_*.yaml configs."""

from __future__ import annotations

import json
import pickle
from types import SimpleNamespace

import pytest
import yaml

from fxnas.errors import ConfigError
from fxnas.estim import ESTIMATORS
from fxnas.estim.table import Table
from fxnas.objectives import dominates, parse_objective
from fxnas.optim import arch_key
from fxnas.optim.discrete import Random
from fxnas.optim.evolution import RegularizedEvolution
from fxnas.spaces.nb201 import EDGE_PARAMS, load_table, nb201_space

ALL_RCB3 = {k: "RCB3" for k in EDGE_PARAMS}


pytestmark = pytest.mark.nb201  # every test here looks archs up in the tables


def test_registered_and_lookup_order():
    assert ESTIMATORS.get("Table") is Table
    t = Table(metric="cifar100_valid_12ep", report=["cifar10_test_200ep", "imagenet16_test_200ep"])
    m = t.evaluate(ALL_RCB3)
    assert list(m) == ["cifar100_valid_12ep", "cifar10_test_200ep", "imagenet16_test_200ep"]
    row = load_table().lookup(ALL_RCB3)
    assert all(m[k] == row[k] for k in m)


def test_costs_counted_from_the_graph():
    t = Table(costs=["params", "flops"])
    full, empty = t.evaluate(ALL_RCB3), t.evaluate({k: "NIL" for k in EDGE_PARAMS})
    assert full["params"] == 1531546 and full["flops"] == pytest.approx(220.12e6, rel=1e-4)
    assert empty["params"] < full["params"] and empty["flops"] < full["flops"]


def test_bad_options():
    with pytest.raises(ConfigError, match="valid"):
        Table(metric="cifar10_top5")
    with pytest.raises(ConfigError, match="latency"):
        Table(costs=["latency"])
    with pytest.raises(ConfigError, match="budget"):
        Table(budget=0)


def test_search_runs_the_experiments_loop(tmp_path, monkeypatch):
    import fxnas.experiment as routine
    import fxnas.loop

    calls = []
    loop = fxnas.loop.discrete_loop
    spy = lambda *a, **k: calls.append(1) or loop(*a, **k)  # noqa: E731
    monkeypatch.setattr(fxnas.loop, "discrete_loop", spy)
    monkeypatch.setattr(routine, "discrete_loop", spy)
    t = Table(budget=25, batch_size=4)
    opt = Random(nb201_space(), seed=0)
    results = t.search(opt)
    assert calls == [1]  # the routine's loop, not one of its own
    assert len(results) == 25 and len({arch_key(r.arch) for r in results}) == 25
    assert len(opt.history) == 25 and t.state_dict() == {}  # no progress kept outside an experiment
    exp = routine.Experiment(space=nb201_space(), optimizer=Random(nb201_space(), seed=0), estimators=[t],
                             out_root=tmp_path, name="r", progress=False)
    ref = exp.evaluate_loop(t.evaluator(), 25, 4)
    assert calls == [1, 1]
    assert [(r.arch, r.metrics) for r in results] == [(r.arch, r.metrics) for r in ref]


def test_run_needs_an_experiment():
    opt = Random(nb201_space(), seed=0)
    with pytest.raises(AttributeError):  # no hidden stand-alone loop for experiment-like objects
        Table(budget=3).run(SimpleNamespace(optimizer=opt))
    assert not opt.history


def test_evaluator_pickles_with_its_costs():
    t = Table(costs=["params", "flops"], report=["cifar100_valid_12ep"])
    fn = pickle.loads(pickle.dumps(t.evaluator()))
    assert fn(ALL_RCB3) == t.evaluate(ALL_RCB3)
    assert list(fn(ALL_RCB3)) == ["cifar10_valid_12ep", "cifar100_valid_12ep", "params", "flops"]


def _table_run(tmp_path, name, parallel=None):
    from fxnas.experiment import Experiment

    opt = RegularizedEvolution(nb201_space(), seed=0, population=6, sample=3)
    exp = Experiment(space=nb201_space(), optimizer=opt,
                     estimators=[Table(budget=12, batch_size=4, costs=["params", "flops"])],
                     out_root=tmp_path, name=name, objectives=["cifar10_valid_12ep"], progress=False,
                     parallel=parallel, export={"materialize": False})
    return exp.run(), exp


def test_dask_process_cluster_looks_up_as_the_local_loop(tmp_path):
    pytest.importorskip("dask.distributed", reason="the test extras install dask[distributed]")
    _, local = _table_run(tmp_path, "local")
    got, dask = _table_run(tmp_path, "dask", {"backend": "dask", "workers": 2, "processes": True})
    # asynchronous: the proposals depend on the order results come back in, each lookup does not
    assert len(dask.history) == 12 and len({arch_key(r.arch) for r in dask.history}) == 12
    assert all(r.metrics == Table(costs=["params", "flops"]).evaluate(r.arch) for r in dask.history)
    assert sorted(r.info["sid"] for r in dask.history) == list(range(12))
    assert got["metrics"] == max((r.metrics for r in dask.history), key=lambda m: m["cifar10_valid_12ep"])
    assert len(local.history) == 12


def test_run_in_an_experiment(tmp_path):
    from fxnas.experiment import Experiment

    opt = RegularizedEvolution(nb201_space(), seed=0, population=10, sample=3)
    exp = Experiment(space=nb201_space(), optimizer=opt, estimators=[Table(budget=30, batch_size=3)],
                     out_root=tmp_path, name="t", objectives=["cifar10_valid_12ep"], progress=False)
    summary = exp.run()
    assert summary["results"] == 30
    hist = [json.loads(line) for line in (tmp_path / "t" / "history.jsonl").read_text().splitlines()]
    assert len(hist) == 30
    best = max(hist, key=lambda h: h["metrics"]["cifar10_valid_12ep"])
    assert summary["arch"] == best["arch"]


def _run_config(name: str, tmp_path, *overrides: str) -> tuple[dict, object]:
    from fxnas.config import build_experiment, load_config

    cfg = load_config(name, overrides=list(overrides), out_root=str(tmp_path))
    exp = build_experiment(cfg, progress=False)
    return exp.run(), exp


@pytest.mark.parametrize("name,overrides", [
    ("nb201_random", []),
    ("nb201_grid", ["estim.0.budget=30"]),
    ("nb201_rea", []),
    ("nb201_evolution", ["estim.0.budget=40"]),
    ("nb201_smbo", ["estim.0.budget=20", "optim.anneal_steps=10", "optim.xgb_params={n_estimators: 20}"]),
])
def test_yaml_configs_run(name, overrides, tmp_path):
    summary, exp = _run_config(name, tmp_path, *overrides)
    budget = exp.estimators[0].budget
    assert summary["results"] == budget
    assert len({arch_key(r.arch) for r in exp.history}) == budget
    assert summary["metrics"]["cifar10_valid_12ep"] == max(r.metrics["cifar10_valid_12ep"] for r in exp.history)
    saved = yaml.safe_load((tmp_path / name / "arch_best.yaml").read_text())
    assert saved["arch"] == summary["arch"]


def test_yaml_nsga2_writes_pareto_front(tmp_path):
    summary, exp = _run_config("nb201_nsga2", tmp_path, "estim.0.budget=60")
    data = json.loads((tmp_path / "nb201_nsga2" / "pareto.json").read_text())
    assert (tmp_path / "nb201_nsga2" / "pareto.png").stat().st_size > 1000
    objs = [parse_objective(o) for o in ("max:cifar10_valid_12ep", "min:params")]
    front = [[o.value(r["metrics"]) for o in objs] for r in data["front"]]
    assert front and all(r["metrics"]["flops"] <= 150e6 for r in data["front"])
    feasible = [[o.value(r.metrics) for o in objs] for r in exp.history if r.metrics["flops"] <= 150e6]
    for p in front:
        assert not any(dominates(q, p) for q in feasible)
    for q in feasible:
        assert any(dominates(p, q) or p == q for p in front)
