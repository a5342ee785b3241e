"""subnet_from_run: a finished search's subnet rebuilt from plain files, equal to the one it exported."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
import yaml

from fxnas.errors import ConfigError
from fxnas.export import subnet_from_run


def test_rebuilt_subnet_equals_the_exported_one(finished_runs) -> None:
    folder = finished_runs["pareto"]
    run = subnet_from_run(folder)
    saved = torch.load(folder / "subnet.pt", weights_only=False).eval()  # our own file, written by the fixture
    x = torch.randn(4, *run.input_shape[1:])
    with torch.no_grad():
        torch.testing.assert_close(run.module(x), saved(x))
    assert run.input_shape == (1, 3, 16, 16)
    assert run.arch == {k: v for k, v in yaml.safe_load((folder / "arch_best.yaml").read_text())["arch"].items()}


def test_pickles_are_refused_and_missing_files_named(finished_runs, tmp_path: Path) -> None:
    folder = tmp_path / "run"
    shutil.copytree(finished_runs["pareto"], folder)
    # a state file holding an arbitrary object (a pickled module) is refused, not unpickled
    torch.save(torch.nn.ReLU(), folder / "subnet_state.pt")
    with pytest.raises(ConfigError, match="beyond tensors"):
        subnet_from_run(folder)
    (folder / "subnet_state.pt").unlink()
    with pytest.raises(ConfigError, match="subnet_state.pt"):
        subnet_from_run(folder)
    with pytest.raises(ConfigError, match="no config.yaml"):
        subnet_from_run(tmp_path)
