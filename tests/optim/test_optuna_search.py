"""The Optuna optimizer: it learns (TPE beats its random start), never repeats an arch, tells failures and
prunings to the study, keeps a run's SQLite study, resumes exactly, and refuses bad options in one line."""

from __future__ import annotations

import copy
import math
import pickle

import optuna
import pytest

from fxnas.errors import ConfigError
from fxnas.optim import OPTIMIZERS, Result
from fxnas.optim.optuna_search import OptunaPruner
from fxnas.space import Categorical, Numerical, SearchSpace

optuna.logging.set_verbosity(optuna.logging.WARNING)


def plane() -> SearchSpace:
    space = SearchSpace()
    space.add(Numerical("x", 0.0, 1.0))
    space.add(Numerical("y", 0.0, 1.0))
    return space


def bowl(arch: dict) -> float:
    return -((arch["x"] - 0.3) ** 2) - (arch["y"] - 0.7) ** 2


def build(space: SearchSpace, **options):
    return OPTIMIZERS.build({"type": "Optuna", **options}, where="optim",
                            inject={"space": space, "seed": 0, "metric": "value"})


def search(opt, n: int, f=bowl) -> list[float]:
    values = []
    for _ in range(n):
        (arch,) = opt.next(1)
        values.append(f(arch))
        opt.step([Result(arch, {"value": values[-1]})])
    return values


def test_tpe_finds_better_points_than_random_search():
    """Best of 25 trials on a 2-D bowl (optimum 0), six seeds: TPE's gap to the optimum is far smaller."""
    tpe, rnd = [], []
    for seed in range(6):
        opt = OPTIMIZERS.build({"type": "Optuna", "sampler_options": {"n_startup_trials": 5}}, where="optim",
                               inject={"space": plane(), "seed": seed, "metric": "value"})
        tpe.append(max(search(opt, 25)))
        rnd.append(max(search(OPTIMIZERS.build("Random", inject={"space": plane(), "seed": seed}), 25)))
        assert opt.best() == opt.history[[r.metrics["value"] for r in opt.history].index(tpe[-1])].arch
        assert len(opt.study.trials) == 25 and all(t.state.name == "COMPLETE" for t in opt.study.trials)
    assert sum(tpe) / 6 > 0.3 * sum(rnd) / 6  # less than a third of random search's mean gap
    assert sum(t > r for t, r in zip(tpe, rnd)) >= 5


def test_min_mode_minimises():
    opt = OPTIMIZERS.build({"type": "Optuna", "sampler_options": {"n_startup_trials": 5}}, where="optim",
                           inject={"space": plane(), "seed": 0, "metric": {"metric": "loss", "mode": "min"}})
    for _ in range(20):
        (arch,) = opt.next(1)
        opt.step([Result(arch, {"loss": -bowl(arch)})])
    assert min(r.metrics["loss"] for r in opt.history) < 0.02
    assert opt.best_result().metrics["loss"] == min(r.metrics["loss"] for r in opt.history)


def test_categorical_space_is_never_repeated_and_exhausts():
    space = SearchSpace()
    space.add(Categorical("op", ["NC3", "DW3"]))
    space.add(Categorical("width", [(1, 2), (3, 4)]))  # not plain values: searched by index
    opt = build(space)
    seen = []
    for _ in range(4):
        (arch,) = opt.next(1)
        assert arch["width"] in [(1, 2), (3, 4)]
        seen.append(tuple(sorted(arch.items())))
        opt.step([Result(arch, {"value": float(len(seen))})])
    assert len(set(seen)) == 4
    assert opt.next(1) == []


def test_failures_and_prunings_reach_the_study():
    opt = build(plane())
    a, b, c = opt.next(3)
    opt.step([Result.failure(a, "diverged"), Result.failure(b, "pruned at step 1", {"pruned": True}),
              Result(c, {"value": math.inf})])
    assert [t.state.name for t in opt.study.trials] == ["FAIL", "PRUNED", "FAIL"]
    assert opt.best_result() is not None and not opt.pending


def test_nsga2_multi_objective_study():
    opt = OPTIMIZERS.build({"type": "Optuna", "sampler": "NSGAII", "sampler_options": {"population_size": 4}},
                           where="optim", inject={"space": plane(), "seed": 0,
                                                  "objectives": ["max:acc", "min:params"], "metric": "acc"})
    for _ in range(10):
        (arch,) = opt.next(1)
        opt.step([Result(arch, {"acc": arch["x"], "params": arch["y"]})])
    assert len(opt.study.directions) == 2
    assert opt.pruner(opt.next(1)[0]) is None  # Optuna prunes single-objective studies only
    front = opt.study.best_trials
    assert front and all(t.values[1] == -t.params["y"] for t in front)


def test_default_storage_is_the_run_folders_sqlite_file(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    opt = build(plane(), out_dir=str(out))
    search(opt, 3)
    assert (out / "optuna.db").is_file() and opt.study.study_name == "run"
    state = copy.deepcopy(opt.state_dict())
    resumed = build(plane(), out_dir=str(out))
    resumed.load_state_dict(state)  # joins the study in the file: no trial added twice
    assert len(resumed.study.trials) == 3
    assert resumed.next(1) == opt.next(1)
    fresh = build(plane(), out_dir=str(out))  # a fresh run of the same folder starts an empty study
    search(fresh, 1)
    assert len(fresh.study.trials) == 1


def test_resumed_in_memory_study_continues_exactly():
    a = build(plane(), sampler_options={"n_startup_trials": 3})
    search(a, 5)
    pending = a.next(2)
    b = build(plane(), sampler_options={"n_startup_trials": 3})
    b.load_state_dict(copy.deepcopy(a.state_dict()))
    assert sorted(b.pending) == sorted(a.pending)
    results = [Result(x, {"value": bowl(x)}) for x in pending]
    a.step(results)
    b.step(copy.deepcopy(results))
    assert a.next(3) == b.next(3)
    assert [t.state for t in a.study.trials] == [t.state for t in b.study.trials]


def test_median_pruner_stops_a_bad_trial(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    opt = build(plane(), out_dir=str(out), pruner="Median", pruner_options={"n_startup_trials": 2})
    for _ in range(3):  # three trials that reached 1.0 at step 0
        (arch,) = opt.next(1)
        assert opt.pruner(arch).report(0, {"value": 1.0}) is False
        opt.step([Result(arch, {"value": 1.0})])
    (arch,) = opt.next(1)
    pruner = pickle.loads(pickle.dumps(opt.pruner(arch)))  # as a worker process gets it: through the storage URL
    assert pruner.report(0, {"other": 5.0}) is False  # no objective metric: nothing to judge
    assert pruner.report(0, {"value": -1.0}) is True
    assert opt.study.trials[-1].intermediate_values == {0: -1.0}


def test_in_memory_pruner_stays_in_its_process():
    opt = build(plane(), pruner="Median")
    (arch,) = opt.next(1)
    pruner = opt.pruner(arch)
    assert isinstance(pruner, OptunaPruner) and pruner.report(0, {"value": 0.5}) is False
    with pytest.raises(ConfigError, match="optim.storage"):
        pickle.dumps(pruner)


@pytest.mark.parametrize("options, match", [
    ({"sampler": "CMA"}, "optim.sampler"),
    ({"sampler_options": {"n_startup": 3}}, "optim.sampler_options: TPE has no option 'n_startup'"),
    ({"pruner": "Median", "pruner_options": {"warmup": 1}}, "optim.pruner_options: Median has no option"),
    ({"storage": "nosuchdb://x"}, "optim.storage 'nosuchdb://x'"),
])
def test_bad_options_are_one_line_errors(options, match):
    with pytest.raises(ConfigError, match=match):
        opt = build(plane(), **options)
        opt.next(1)


def test_a_search_keeps_its_study_in_its_run_folder(tmp_path):
    from fxnas.config import build_experiment, load_config

    cfg = load_config({"name": "optuna_run", "model": {"type": "tiny_net", "width": 4},
                       "construct": {"pattern": "conv3x3", "candidates": ["NC3", "DW3"]},
                       "data": {"type": "digits", "size": 8, "channels": 3, "batch_size": 64},
                       "trainer": {"type": "Classification", "epochs": 1, "max_steps_per_epoch": 2},
                       "optim": {"type": "Optuna"}, "estim": [{"type": "SubNet", "budget": 2}],
                       "export": {"onnx": False}, "progress": False}, out_root=str(tmp_path))
    exp = build_experiment(cfg)
    exp.run()
    assert (tmp_path / "optuna_run" / "optuna.db").is_file()
    assert len(exp.optimizer.study.trials) == 2 and exp.optimizer.study.study_name == "optuna_run"
