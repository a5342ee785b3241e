"""The Table estimator: lookups, counted costs, standalone and Experiment loops, and the nb201_*.yaml configs."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import yaml

from fxnas.errors import ConfigError
from fxnas.estim import ESTIMATORS
from fxnas.estim.table import Table
from fxnas.nb201 import EDGE_PARAMS, load_table, nb201_space
from fxnas.objectives import dominates, parse_objective
from fxnas.optim import arch_key
from fxnas.optim.discrete import Random
from fxnas.optim.evolution import RegularizedEvolution

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


def test_run_without_evaluate_loop_uses_its_own_loop():
    t = Table(budget=25, batch_size=4)
    opt = Random(nb201_space(), seed=0)
    results = t.run(SimpleNamespace(optimizer=opt))
    assert len(results) == 25 and len({arch_key(r.arch) for r in results}) == 25
    assert len(opt.history) == 25 and t.state_dict() == {"n_done": 25}


def test_run_in_an_experiment(tmp_path):
    from fxnas.routine import Experiment

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
