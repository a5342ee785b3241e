"""The two commands compose: the space file `fxnas searchify --out` writes is a model source of `fxnas search`."""

from __future__ import annotations

import json
from pathlib import Path

import torch
import yaml
from click.testing import CliRunner

from fxnas.cli.main import main
from fxnas.config import build_experiment, load_config
from fxnas.spacefile import load_supernet

TINY = Path(__file__).resolve().parents[2] / "fxnas" / "examples" / "tiny_net.py"


def test_searchify_space_file_is_searched_by_fxnas_search(tmp_path):
    runner = CliRunner()
    space = tmp_path / "spaces" / "space.yaml"
    res = runner.invoke(main, ["searchify", str(TINY), "-p", "conv3x3", "-c", "ORIG,NC3,DW3", "-s", "1,3,8,8",
                               "-a", "num_classes=10", "-a", "width=4", "--out", str(space)])
    assert res.exit_code == 0, res.output
    cfg = {"name": "composed", "progress": False, "out_root": str(tmp_path / "exp"),
           "model": {"type": "space_file", "path": "spaces/space.yaml"},  # relative to this config's folder
           "data": {"type": "digits", "size": 8, "channels": 3},
           "trainer": {"max_steps_per_epoch": 2},
           "optim": "Random", "estim": [{"type": "Uniform", "epochs": 1, "budget": 3, "bn_steps": 1}],
           "export": {"test": False}}
    (tmp_path / "exp.yaml").write_text(yaml.safe_dump(cfg))
    res = runner.invoke(main, ["search", "-c", str(tmp_path / "exp.yaml"), "--quiet"])
    assert res.exit_code == 0, res.output
    history = [json.loads(s) for s in (tmp_path / "exp" / "composed" / "history.jsonl").read_text().splitlines()]
    searched = [h for h in history if h["info"].get("loop")]
    assert len(searched) == 3 and all(set(h["arch"].values()) <= {"ORIG", "NC3", "DW3"} for h in searched)
    # the experiment built the same supernet as the space file describes (one build path, one seed)
    exp = build_experiment(load_config(tmp_path / "exp.yaml", name="again"))
    ref = load_supernet(space)
    assert list(exp.space.describe()) == list(ref.space.describe())
    for (k, a), (_, b) in zip(exp.model.state_dict().items(), ref.state_dict().items()):
        assert torch.equal(a, b), k


def test_space_file_input_shape_must_match_the_data(tmp_path):
    runner = CliRunner()
    space = tmp_path / "space.yaml"
    assert runner.invoke(main, ["searchify", str(TINY), "-c", "ORIG,NC3", "-s", "1,3,16,16",
                                "--out", str(space)]).exit_code == 0
    cfg = {"model": {"type": "space_file", "path": str(space)}, "data": {"type": "digits", "size": 8,
           "channels": 3}, "optim": "Random", "estim": "Uniform", "out_root": str(tmp_path)}
    res = runner.invoke(main, ["search", "-c", str(_write(tmp_path, cfg))])
    assert res.exit_code == 2 and "was traced on inputs (1, 3, 16, 16), but the data gives (1, 3, 8, 8)" in res.output


def test_searchify_out_into_an_unwritable_place_fails_before_the_work(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    res = CliRunner().invoke(main, ["searchify", str(TINY), "--out", str(blocker / "space.yaml")])
    assert res.exit_code == 1 and "is a file" in res.output and "slots" not in res.output


def _write(folder: Path, cfg: dict) -> Path:
    path = folder / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path
