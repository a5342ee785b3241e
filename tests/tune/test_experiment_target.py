"""The Experiment target: tuning an experiment's learning rate improves its accuracy; a tuned key the
experiment does not have is refused up front with the experiment schema's reason."""

from __future__ import annotations

import pytest
import yaml

from fxnas.errors import ConfigError
from fxnas.tune import TUNE_TARGETS, TrialRun, build_tuner, load_tune_config

EXPERIMENT = {
    "name": "lr", "progress": False,
    "model": {"type": "tiny_net", "width": 4},
    "construct": {"pattern": "conv3x3", "candidates": ["NC3"], "mixed_op": "Index"},
    "data": {"type": "digits", "size": 8, "channels": 3, "batch_size": 32},
    "trainer": {"type": "Classification", "lr": 0.0005, "epochs": 1, "max_steps_per_epoch": 12},
    "optim": "Random", "estim": [{"type": "Default", "epochs": 1}], "export": {"materialize": False},
}


@pytest.fixture
def exp_file(tmp_path):
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(EXPERIMENT))
    return path


def test_tuning_the_learning_rate_improves_accuracy(exp_file, tmp_path):
    target = TUNE_TARGETS.build({"type": "Experiment", "config": str(exp_file)}, where="target")
    as_written = target.evaluate({}, TrialRun(0, tmp_path / "baseline"))  # the config's own lr: 5e-4
    tune = tmp_path / "tune.yaml"
    tune.write_text(yaml.safe_dump({
        "name": "lr", "out_root": str(tmp_path / "runs"), "progress": False,
        "target": {"type": "Experiment", "config": "exp.yaml"},  # relative to the tune file
        "space": {"trainer.lr": {"low": 0.0005, "high": 0.5, "log": True}}, "objectives": ["acc"],
        "optim": {"type": "Optuna", "storage": "memory", "sampler_options": {"n_startup_trials": 2}},
        "budget": 3}))
    summary = build_tuner(load_tune_config(tune)).run()
    assert summary["metrics"]["acc"] > as_written["acc"] + 10  # percent points
    assert summary["params"]["trainer.lr"] > 0.01
    trial_cfg = yaml.safe_load((tmp_path / "runs" / "lr" / "trials" / "0" / "exp" / "config.yaml").read_text())
    assert trial_cfg["trainer"]["options"]["lr"] != EXPERIMENT["trainer"]["lr"]  # each trial ran its own lr


def test_a_key_the_experiment_lacks_is_refused_before_any_trial(exp_file, tmp_path):
    cfg = load_tune_config({"name": "t", "out_root": str(tmp_path), "budget": 1,
                            "target": {"type": "Experiment", "config": str(exp_file)},
                            "space": {"trainer.lrr": {"low": 0.01, "high": 0.1}}})
    with pytest.raises(ConfigError, match=r"space.trainer.lrr does not apply to .*exp.yaml: trainer: "
                                          r"Classification has no option 'lrr'; did you mean lr\?"):
        build_tuner(cfg)
