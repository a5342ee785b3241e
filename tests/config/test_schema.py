"""Config values are checked against the components' signatures and type hints: one line, with the key path."""

from __future__ import annotations

import pytest
import torch
import yaml
from click.testing import CliRunner

from fxnas.cli.search_cmd import search
from fxnas.config import build_experiment, load_config
from fxnas.errors import ConfigError


def base(**changes):
    cfg = {"name": "s", "progress": False,
           "model": {"type": "tiny_net", "width": 4},
           "construct": {"pattern": "conv3x3", "candidates": ["NC3", "DW3"]},
           "data": {"type": "digits", "size": 8, "channels": 3},
           "optim": {"type": "Random"}, "estim": [{"type": "SubNet", "budget": 2}]}
    cfg.update(changes)
    return cfg


@pytest.mark.parametrize("changes, overrides, pattern", [
    ({"trainer": {"type": "Classification", "epochs": "ten"}}, [],
     r"^trainer\.epochs: 'ten' is not an int \(Classification takes epochs: int, e\.g\. epochs: 1\)$"),
    ({"trainer": {"type": "Classification", "lr": "fast"}}, [], r"^trainer\.lr: 'fast' is not a float"),
    ({}, ["trainer.epochs=ten"], r"^trainer\.epochs: 'ten' is not an int"),
    ({}, ["estim.0.budget=ten"], r"^estim\.0\.budget: 'ten' is not an int \(SubNet takes budget: int"),
    ({}, ["trainer.lr=[1,"], r"override 'trainer\.lr=\[1,'.*not valid YAML.*quote"),
    ({"construct": {"pattern": "conv3x3", "candidates": ["MB3E0"]}}, [], r"construct\.candidates: .*MB3E0"),
    ({"construct": {"pattern": "conv3x3", "candidates": ["NC0"]}}, [], r"construct\.candidates: .*NC0"),
    ({"construct": {"pattern": "conv3x3", "candidates": ["MB3E3", "MB3E3"]}}, [],
     r"lists MB3E3 more than once"),
    ({"construct": {"pattern": "conv3x3", "candidates": ["nc3"]}}, [], r"unknown candidate 'nc3'; did you mean NC3"),
    ({"seed": "zero"}, [], r"^seed must be int, got 'zero'$"),
    ({"progress": "yes"}, [], r"^progress must be bool"),
    ({"construct": {"pattern": "conv3x3", "candidates": ["NC3"], "check": "no"}}, [], r"construct\.check must be bool"),
    ({"estim": [{"type": "SubNet", "keep_best": "sure"}]}, [], r"estim\.0\.keep_best: 'sure' is not a bool"),
    ({"optim": {"type": "RegularizedEvolution", "population": 2.5}}, [], r"optim\.population: 2\.5 is not an int"),
    ({"construct": {"pattern": "conv3x3", "candidates": ["NC3"], "mixed_op": "GumbelSum",
                    "mixed_op_args": {"temprature": 2}}}, [], r"construct\.mixed_op: GumbelSum has no option "
                                                              r"'temprature'; did you mean temperature"),
])
def test_wrong_values_are_one_line_errors_with_the_key_path(changes, overrides, pattern):
    with pytest.raises(ConfigError, match=pattern):
        load_config(base(**changes), overrides)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
def test_cuda_device_without_a_gpu():
    with pytest.raises(ConfigError, match="device 'cuda': no CUDA device is available here"):
        load_config(base(device="cuda"))


def test_yaml_syntax_errors_name_line_column_and_the_line(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("name: x\nmodel: tiny_net\ntrainer:\n  lr: 0.1: 2\n")
    with pytest.raises(ConfigError) as ei:
        load_config(p)
    msg = str(ei.value)
    assert "line 4, column 10" in msg and "'lr: 0.1: 2'" in msg and "\n" not in msg


def test_paths_resolve_against_the_config_files_folder(tmp_path, monkeypatch):
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "net.py").write_text("from torch import nn\n"
                                   "def build(num_classes=10):\n"
                                   "    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.Flatten(),"
                                   " nn.Linear(4 * 64, num_classes))\n")
    torch.save({"X": torch.randn(20, 3, 8, 8), "y": torch.randint(0, 3, (20,))}, folder / "data.pt")
    (folder / "arch.yaml").write_text(yaml.safe_dump({"0": "DW3"}))
    cfg = {"model": {"type": "net.py"}, "data": {"type": "tensors", "path": "data.pt", "batch_size": 10},
           "construct": {"pattern": "conv3x3", "candidates": ["NC3", "DW3"]}, "optim": "Random",
           "estim": [{"type": "Default", "epochs": 1, "arch": "arch.yaml"}], "progress": False,
           "out_root": str(tmp_path / "exp")}
    (folder / "exp.yaml").write_text(yaml.safe_dump(cfg))
    monkeypatch.chdir(tmp_path)  # elsewhere: the paths are the config's, not the working directory's
    loaded = load_config(folder / "exp.yaml")
    assert loaded["data"]["options"]["path"] == str(folder / "data.pt")
    assert loaded["estim"][0]["options"]["arch"] == str(folder / "arch.yaml")
    summary = build_experiment(loaded).run()
    assert summary["arch"] == {"0": "DW3"}
    cfg["data"]["path"] = "missing.pt"
    (folder / "exp.yaml").write_text(yaml.safe_dump(cfg))
    with pytest.raises(ConfigError, match=str(folder / "missing.pt")):  # the error says where it looked
        build_experiment(load_config(folder / "exp.yaml"))


def test_misspelt_objective_or_constraint_metric_is_refused_before_the_search(tmp_path):
    for bad, close in ((["acc_"], "did you mean acc"), ({"constraints": ["parms <= 1e4"]}, "did you mean params")):
        cfg = base(out_root=str(tmp_path), **({"objectives": bad} if isinstance(bad, list) else bad))
        exp = build_experiment(load_config(cfg))
        with pytest.raises(ConfigError, match=close):
            exp.run()
        assert not (tmp_path / "s" / "history.jsonl").exists()  # nothing ran


def test_search_never_prints_a_traceback(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text(yaml.safe_dump(base(trainer={"type": "Classification", "epochs": "ten"})))
    res = CliRunner().invoke(search, ["-c", str(p)])
    assert res.exit_code == 2 and "Traceback" not in res.output and len(res.stderr.strip().splitlines()) == 1


def test_trainer_epochs_that_no_estimator_uses_gets_a_note(tmp_path):
    res = CliRunner().invoke(search, ["-c", "demo", "-o", "trainer.epochs=5", "-o", "name=../x"])
    assert res.exit_code == 2  # a bad name stops before any work; the note is for valid runs
    cfg = load_config("demo", ["trainer.epochs=5"], out_root=str(tmp_path))
    from rich.console import Console

    console = Console(record=True, width=400)
    build_experiment(cfg, console=console, progress=False)
    assert "trainer.epochs=5 has no effect: every estimator sets its own" in console.export_text()
