"""The Tuner: it improves an external script's metric, keeps trials in flight at once, records failures and
prunings and goes on, and a killed run resumed from its checkpoint ends as an uninterrupted one."""

from __future__ import annotations

import json
import threading

import pytest
import yaml

from fxnas.errors import ConfigError
from fxnas.tune import TUNE_TARGETS, TuneTarget, build_tuner, load_tune_config
from fxnas.tune.runner import Tuner


def config(bowl, tmp_path, **changes):
    cfg = {"name": "bowl", "out_root": str(tmp_path / "runs"), "progress": False,
           "target": {"type": "Command", "command": ["{python}", str(bowl)]},
           "space": {"x": {"low": 0.0, "high": 1.0}, "y": {"low": 0.0, "high": 1.0}},
           "optim": {"type": "Optuna", "storage": "memory", "sampler_options": {"n_startup_trials": 5}}, "budget": 10}
    cfg.update(changes)
    return load_tune_config(cfg)


def history(out_dir):
    return [json.loads(line) for line in (out_dir / "history.jsonl").read_text().splitlines()]


def test_tuning_improves_an_external_scripts_metric(bowl, tmp_path):
    summary = build_tuner(config(bowl, tmp_path)).run()
    rows = history(tmp_path / "runs" / "bowl")
    values = [r["metrics"]["value"] for r in rows]
    assert len(values) == 10 == summary["trials"]
    # the optimum is 0 at (0.3, 0.7); a uniform random point scores -0.17 on average
    assert summary["metrics"]["value"] == max(values) > max(values[0], -0.02)
    best = yaml.safe_load((tmp_path / "runs" / "bowl" / "best.yaml").read_text())
    assert best["params"] == summary["params"] and best["metrics"]["value"] == max(values)
    assert (tmp_path / "runs" / "bowl" / "trials" / "9" / "stdout.txt").is_file()


def test_failed_and_pruned_trials_are_recorded_and_the_search_goes_on(bowl, tmp_path):
    cfg = config(bowl, tmp_path, target={"type": "Command", "command": ["{python}", str(bowl), "--fail_above", "0.7"]},
                 optim={"type": "Optuna", "storage": "memory", "pruner": "Median",
                        "pruner_options": {"n_startup_trials": 2}, "sampler_options": {"n_startup_trials": 4}},
                 budget=9)
    summary = build_tuner(cfg).run()
    rows = history(tmp_path / "runs" / "bowl")
    failed = [r for r in rows if r["info"].get("failed") and not r["info"].get("pruned")]
    pruned = [r for r in rows if r["info"].get("pruned")]
    assert len(rows) == 9 and failed and pruned
    assert all(r["arch"]["x"] > 0.7 and "x too large" in r["info"]["failed"] for r in failed)
    assert summary["failed"] == len(failed) and summary["pruned"] == len(pruned)
    assert summary["params"]["x"] <= 0.7


def test_resumed_run_ends_as_an_uninterrupted_one(bowl, tmp_path):
    full = build_tuner(config(bowl, tmp_path, name="full", budget=6))
    full.run()
    broken = build_tuner(config(bowl, tmp_path, name="broken", budget=6))
    real, writes = broken.checkpoint, []

    def crash_after_third():
        real()
        writes.append(1)
        if len(writes) == 3:
            raise KeyboardInterrupt

    broken.checkpoint = crash_after_third
    with pytest.raises(KeyboardInterrupt):
        broken.run()
    with pytest.raises(ConfigError, match="use --resume to continue or --overwrite"):
        build_tuner(config(bowl, tmp_path, name="broken", budget=6)).run()
    resumed = build_tuner(config(bowl, tmp_path, name="broken", budget=6))
    resumed.run(resume=True)
    assert [r.arch for r in resumed.history] == [r.arch for r in full.history]
    assert [(r["arch"], r["metrics"]) for r in history(tmp_path / "runs" / "broken")] == \
        [(r["arch"], r["metrics"]) for r in history(tmp_path / "runs" / "full")]


def test_trials_run_at_the_same_time_on_the_executor(tmp_path):
    barrier = threading.Barrier(2, timeout=30)

    with TUNE_TARGETS.scoped():
        @TUNE_TARGETS.register("Meet")
        class Meet(TuneTarget):
            """Waits until two trials are running at once."""

            def evaluate(self, params, trial):
                barrier.wait()  # raises BrokenBarrierError (a failed trial) unless another trial runs now
                return {"value": params["x"]}

        cfg = load_tune_config({"name": "meet", "out_root": str(tmp_path), "progress": False, "target": "Meet",
                                "space": {"x": {"low": 0.0, "high": 1.0}}, "optim": "Random", "budget": 4,
                                "parallel": {"backend": "thread", "workers": 2}})
        summary = build_tuner(cfg).run()
    assert summary["trials"] == 4 and summary["failed"] == 0


def test_a_tuner_with_every_trial_failing_says_so(bowl, tmp_path):
    cfg = config(bowl, tmp_path, target={"type": "Command", "command": ["{python}", str(bowl), "--fail_above", "-1"]},
                 budget=2)
    with pytest.raises(ConfigError, match="no trial of bowl gave the objective metric .* x too large"):
        build_tuner(cfg).run()
    assert isinstance(build_tuner(cfg), Tuner)
