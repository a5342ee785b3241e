"""Experiment: recording, best arch, checkpoint/resume of RNGs and files, the discrete evaluate_loop."""

from __future__ import annotations

import json
import random
from typing import Any

import numpy as np
import pytest
import torch
import yaml

from fxnas.errors import ConfigError
from fxnas.estim.base import Estimator
from fxnas.experiment import Experiment
from fxnas.optim.base import Optimizer, Result
from fxnas.rng import jsonable, preserved_rng
from fxnas.space import Categorical, SearchSpace


def small_space() -> SearchSpace:
    space = SearchSpace()
    space.add(Categorical("a", ["x", "y", "z"]))
    space.add(Categorical("b", [1, 2, 3, 4]))
    return space


class StandInRandom(Optimizer):
    """A minimal random optimizer (the real ones live in fxnas/optim): may repeat archs on purpose."""

    def __init__(self, space: SearchSpace, seed: int = 0) -> None:
        super().__init__(space, seed)
        self.steps: list[list[Result]] = []

    def next(self, n: int = 1) -> list[dict[str, Any]]:
        return [self.space.sample(self.rng) for _ in range(n)]

    def step(self, results: list[Result]) -> None:
        self.steps.append(list(results))

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "n_steps": len(self.steps)}


def score(arch: dict[str, Any]) -> dict[str, float]:
    """A deterministic fake metric of an arch."""
    return {"acc": float("xyz".index(arch["a"]) * 10 + arch["b"]), "cost": float(arch["b"])}


def make_exp(tmp_path, **kw: Any) -> Experiment:
    space = small_space()
    return Experiment(space=space, optimizer=StandInRandom(space, seed=3), name="t", out_root=tmp_path,
                      objectives=kw.pop("objectives", ["acc"]), progress=False, **kw)


def test_record_keeps_best_and_writes_files(tmp_path):
    exp = make_exp(tmp_path)
    exp.record(Result({"a": "x", "b": 1}, {"acc": 5.0}))
    exp.record(Result({"a": "z", "b": 4}, {"acc": 9.0}))
    exp.record(Result({"a": "y", "b": 2}, {"acc": 7.0}))
    exp.record(Result({"a": "y", "b": 3}, {"acc": 99.0}, {"rank": False}))  # warm-up results never rank
    exp.record(Result({"a": "y", "b": 3}, {"loss": 0.1}))  # no objective metric: never the best
    assert exp.best is not None and exp.best.metrics["acc"] == 9.0
    lines = (tmp_path / "t" / "history.jsonl").read_text().splitlines()
    assert [json.loads(s)["metrics"] for s in lines][:3] == [{"acc": 5.0}, {"acc": 9.0}, {"acc": 7.0}]
    best = yaml.safe_load((tmp_path / "t" / "arch_best.yaml").read_text())
    assert best["arch"] == {"a": "z", "b": 4} and best["metrics"]["acc"] == 9.0
    assert "(best)" in (tmp_path / "t" / "log.txt").read_text()


def test_min_objective_picks_the_smallest(tmp_path):
    exp = make_exp(tmp_path, objectives=["min:cost"])
    for b in (3, 1, 2):
        exp.record(Result({"a": "x", "b": b}, {"cost": float(b)}))
    assert exp.best.arch["b"] == 1


def test_jsonable_converts_tensors_and_numpy():
    out = jsonable({"t": torch.tensor([1.0, 2.0]), "n": np.float32(0.5), "a": np.arange(2), "s": (1, "x")})
    assert out == {"t": [1.0, 2.0], "n": 0.5, "a": [0, 1], "s": [1, "x"]}
    json.dumps(out)


def test_preserved_rng_leaves_generators_untouched():
    torch.manual_seed(1)
    random.seed(1)
    want = (torch.rand(1).item(), random.random())
    torch.manual_seed(1)
    random.seed(1)
    with preserved_rng():
        torch.rand(5)
        random.random()
    assert (torch.rand(1).item(), random.random()) == want


def test_evaluate_loop_dedups_and_respects_budget(tmp_path):
    exp = make_exp(tmp_path)
    calls: list[dict] = []

    def fn(arch):
        calls.append(arch)
        return score(arch)

    results = exp.evaluate_loop(fn, budget=8, batch_size=3)
    keys = [tuple(sorted(c.items())) for c in calls]
    assert len(results) == 8 and len(calls) == 8 and len(set(keys)) == 8  # each arch evaluated once
    proposed = sum(len(s) for s in exp.optimizer.steps)
    assert proposed >= 8
    # every proposal (duplicates included) went back to the optimizer with its metrics
    for batch in exp.optimizer.steps:
        for r in batch:
            assert r.metrics == score(r.arch)
    assert exp.best.metrics["acc"] == max(score(c)["acc"] for c in calls)
    assert (tmp_path / "t" / "checkpoint.pt").exists()
    assert not list((tmp_path / "t").glob("*.tmp"))


def test_evaluate_loop_stops_when_the_space_is_exhausted(tmp_path):
    exp = make_exp(tmp_path)
    results = exp.evaluate_loop(score, budget=100, batch_size=4)
    assert len(results) == 12  # 3 * 4 archs; the loop stops instead of spinning on repeats


class Boom(RuntimeError):
    pass


def test_evaluate_loop_resumes_after_a_crash_like_an_uninterrupted_run(tmp_path):
    ref = make_exp(tmp_path / "ref")
    ref.evaluate_loop(score, budget=7, batch_size=2)
    want = [(r.arch, r.metrics) for r in ref.history]

    crashed = make_exp(tmp_path / "run")
    n = {"calls": 0}

    def flaky(arch):
        n["calls"] += 1
        if n["calls"] == 5:
            raise Boom("killed")
        return score(arch)

    with pytest.raises(Boom):
        crashed.evaluate_loop(flaky, budget=7, batch_size=2)
    # the history file may hold results past the last checkpoint; resume cuts it back
    with open(tmp_path / "run" / "t" / "history.jsonl", "a") as f:  # as if killed after a record
        f.write(json.dumps({"arch": {"a": "x", "b": 9}, "metrics": {}, "info": {}}) + "\n")
    fresh = make_exp(tmp_path / "run")
    assert fresh.resume()
    assert 0 < len(fresh.history) < 7
    assert len((tmp_path / "run" / "t" / "history.jsonl").read_text().splitlines()) == len(fresh.history)
    fresh.evaluate_loop(score, budget=7, batch_size=2)
    assert [(r.arch, r.metrics) for r in fresh.history] == want
    lines = (tmp_path / "run" / "t" / "history.jsonl").read_text().splitlines()
    assert [json.loads(s)["arch"] for s in lines] == [a for a, _ in want]


def test_checkpoint_restores_rng_and_optimizer(tmp_path):
    exp = make_exp(tmp_path)
    exp.evaluate_loop(score, budget=2)
    torch.manual_seed(5)
    random.seed(5)
    np.random.seed(5)
    exp.checkpoint()
    want = (torch.rand(2).tolist(), random.random(), float(np.random.rand()), exp.optimizer.rng.random())
    other = make_exp(tmp_path)
    assert other.resume()
    got = (torch.rand(2).tolist(), random.random(), float(np.random.rand()), other.optimizer.rng.random())
    assert got == want
    assert [r.arch for r in other.history] == [r.arch for r in exp.history]


def test_resume_without_checkpoint_is_false(tmp_path):
    assert make_exp(tmp_path).resume() is False


def test_run_needs_estimators(tmp_path):
    with pytest.raises(ConfigError, match="no estimators"):
        make_exp(tmp_path).run()


def test_bad_parallel_backend(tmp_path):
    with pytest.raises(ConfigError, match="parallel.backend must be one of local, thread, process, dask"):
        make_exp(tmp_path, parallel={"backend": "ray"})


def test_dask_backend_without_dask_says_how_to_install(tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "dask.distributed", None)  # as if dask were not installed
    exp = make_exp(tmp_path, parallel={"backend": "dask", "workers": 2})
    with pytest.raises(ConfigError, match=r"pip install 'dask\[distributed\]'"):
        exp.evaluate_loop(score, budget=2)


def test_dask_backend_on_a_real_local_cluster(tmp_path):
    pytest.importorskip("dask.distributed", reason="the test extras install dask[distributed]")
    exp = make_exp(tmp_path / "d", parallel={"backend": "dask", "workers": 2, "processes": False})
    got = exp.evaluate_loop(score, budget=6, batch_size=3)
    ref = make_exp(tmp_path / "l").evaluate_loop(score, budget=6, batch_size=3)
    # Random proposes regardless of results: the same archs, evaluated asynchronously in any order
    key = lambda r: sorted(r.arch.items())  # noqa: E731
    assert [(r.arch, r.metrics) for r in sorted(got, key=key)] == [(r.arch, r.metrics) for r in sorted(ref, key=key)]
    assert sorted(r.info["sid"] for r in got) == list(range(6))


def test_two_objectives_write_the_pareto_front(tmp_path):
    exp = make_exp(tmp_path, objectives=["max:acc", "min:cost"], export={"plot": False})
    exp.evaluate_loop(score, budget=12, batch_size=4)
    summary = exp.finish()
    front = json.loads((tmp_path / "t" / "pareto.json").read_text())["front"]
    assert summary["pareto"] == len(front) == 4  # for each cost b the best a ("z") is non-dominated
    assert {r["arch"]["a"] for r in front} == {"z"}
    assert summary["arch"] == {"a": "z", "b": 4}


def test_resume_calls_the_optimizers_on_resume_hook(tmp_path):
    exp = make_exp(tmp_path)
    exp.evaluate_loop(score, budget=2)
    other = make_exp(tmp_path)
    seen = []
    other.optimizer.on_resume = lambda e: seen.append(len(e.history))
    assert other.resume() and seen == [2]


class LoopEstimator(Estimator):
    """A stand-in estimator whose stage is one evaluate_loop over ``fn``."""

    parallel_safe = False

    def __init__(self, fn=score, parallel_safe: bool = False) -> None:
        self.fn, self.parallel_safe = fn, parallel_safe

    def run(self, exp: Experiment) -> list[Result]:
        return exp.evaluate_loop(self.fn, budget=4, batch_size=2)

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


def test_dask_backend_refuses_estimators_that_are_not_parallel_safe(tmp_path):
    from fxnas.estim.base import Estimator

    pytest.importorskip("dask.distributed", reason="the test extras install dask[distributed]")
    assert Estimator.parallel_safe is False
    exp = make_exp(tmp_path, parallel={"backend": "dask", "workers": 2}, estimators=[LoopEstimator()])
    with pytest.raises(ConfigError, match="supports the Table and SubNet estimators.*LoopEstimator.*use backend"):
        exp.run()
    assert not exp.history  # refused before anything was evaluated
    ok = make_exp(tmp_path / "ok", parallel={"backend": "dask", "workers": 2, "processes": False},
                  estimators=[LoopEstimator(parallel_safe=True)], export={"materialize": False})
    assert ok.run()["results"] == 4


def test_dask_backend_turns_pickling_errors_into_config_errors(tmp_path):
    import threading

    lock = threading.RLock()  # what the built-in estimators' closures captured (rich console, dask client)

    def closure(arch):
        with lock:
            return score(arch)

    exp = make_exp(tmp_path, parallel={"backend": "dask"}, estimators=[LoopEstimator(closure, parallel_safe=True)])
    with pytest.raises(ConfigError, match=r"cannot be pickled.*RLock.*use backend: local"):
        exp.run()  # refused before any cluster starts
