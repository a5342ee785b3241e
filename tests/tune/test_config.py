"""Tune configs are validated like experiment configs: every key, component, option and domain, each error one
line naming its key path and what would be valid; paths resolve against the config's folder."""

from __future__ import annotations

import pytest
import yaml

from fxnas.errors import ConfigError
from fxnas.tune import load_tune_config, tune_space

BASE = {"target": {"type": "Command", "command": "python run.py"}, "space": {"lr": {"low": 0.1, "high": 1.0}}}


@pytest.mark.parametrize("change, match", [
    ({"budjet": 3}, "unknown key 'budjet' in the tune config; did you mean budget"),
    ({"target": {"type": "Comand", "command": "x"}},
     "target.type: unknown tune target 'Comand'; did you mean Command?"),
    ({"target": {"type": "Command", "comand": "x"}}, "target: Command has no option 'comand'; did you mean command?"),
    ({"target": {"type": "Command", "command": "x", "timeout": "soon"}},
     "target.timeout: 'soon' is not a float | None"),
    ({"optim": {"type": "Optuna", "sampler": "tpe"}}, "optim.sampler: 'tpe' is not one of 'TPE', 'NSGAII', 'Random'"),
    ({"optim": "RandomSearch"}, "optim: unknown optimizer 'RandomSearch'; did you mean Random?"),
    ({"space": {"lr": {"low": 0.1}}}, "space.lr needs 'high'"),
    ({"space": {"lr": {"low": 0, "high": 1, "log": True}}}, "space.lr: a log-scaled param needs low > 0"),
    ({"space": {"lr": {"min": 0, "max": 1}}}, "space.lr has no key 'max'"),
    ({"space": {"lr": "fast"}}, "space.lr must be a list of choices"),
    ({"budget": 0}, "budget must be >= 1"),
    ({"parallel": {"backend": "mpi"}}, "parallel.backend must be one of local, thread, process"),
    ({"objectives": ["best:acc"]}, "objective 'best:acc' must look like"),
])
def test_bad_configs_are_one_line_errors(change, match):
    with pytest.raises(ConfigError) as info:
        load_tune_config({**BASE, **change})
    assert match in str(info.value) and "\n" not in str(info.value)


def test_paths_resolve_against_the_config_file(tmp_path):
    (tmp_path / "sub").mkdir()
    path = tmp_path / "sub" / "t.yaml"
    path.write_text(yaml.safe_dump({**BASE, "target": {"type": "Experiment", "config": "exp.yaml"}}))
    cfg = load_tune_config(path, overrides=["budget=3"])
    assert cfg["target"]["options"]["config"] == str(tmp_path / "sub" / "exp.yaml")
    assert cfg["budget"] == 3 and cfg["name"] == "t" and cfg["optim"]["type"] == "Optuna"
    assert cfg["base_dir"] == str(tmp_path / "sub")


def test_space_forms():
    space = tune_space({"lr": {"low": 1e-3, "high": 1.0, "log": True}, "n": {"low": 1, "high": 4, "integer": True},
                        "opt": ["sgd", "adam"], "bs": {"choices": [16, 32], "default": 32}})
    assert space["n"].sample(__import__("random").Random(0)) in range(1, 5)
    assert space["opt"].choices == ["sgd", "adam"] and space["bs"].value == 32
    assert space.size() == float("inf")
