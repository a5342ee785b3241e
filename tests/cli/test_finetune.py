"""A fine-tune of a found subnet from the CLI: ``fxnas search`` on a config whose model loads local pretrained
weights (``model.weights``) and whose estimator is Retrain with ``from_scratch: false``; the exported subnet
starts from those weights (all ORIG: the pretrained model itself) and the fine-tune reports test accuracy."""

from __future__ import annotations

import json

import pytest
import torch
import yaml
from click.testing import CliRunner

from fxnas.cli.search_cmd import search
from fxnas.spaces.registry import tiny_net


def _config(tmp_path, epochs: int) -> dict:
    return {
        "name": f"ft{epochs}", "seed": 0, "out_root": str(tmp_path),
        "model": {"type": "tiny_net", "width": 6, "weights": "pretrained.pt"},  # relative to the config file
        "construct": {"pattern": "conv3x3", "candidates": ["ORIG", "NC3", "DW3"]},
        "data": {"type": "digits", "size": 8, "channels": 3, "batch_size": 32, "test_fraction": 0.2},
        "trainer": {"type": "Classification", "lr": 0.05, "max_steps_per_epoch": 5},
        "optim": "Random",
        "estim": [{"type": "Retrain", "from_scratch": False, "epochs": epochs, "arch": "found.yaml"}],
    }


@pytest.fixture
def pretrained(tmp_path) -> torch.nn.Module:
    torch.manual_seed(3)
    model = tiny_net(width=6).eval()
    with torch.no_grad():  # BN statistics that are not the defaults, as a trained model has
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)
    torch.save(model.state_dict(), tmp_path / "pretrained.pt")
    return model


def _run(tmp_path, epochs: int):
    cfg = _config(tmp_path, epochs)
    path = tmp_path / f"ft{epochs}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    res = CliRunner().invoke(search, ["-c", str(path), "--quiet"])
    assert res.exit_code == 0, res.output
    return torch.load(tmp_path / cfg["name"] / "subnet.pt", weights_only=False).eval(), res


def test_fine_tune_from_the_cli_starts_from_the_pretrained_weights(tmp_path, pretrained) -> None:
    slots = ["stem.0", "res1.conv1", "res1.conv2", "res2.conv1", "res2.conv2", "branch_a.0"]
    (tmp_path / "found.yaml").write_text(yaml.safe_dump({"arch": {s: "ORIG" for s in slots}}))
    start, _ = _run(tmp_path, epochs=0)
    x = torch.randn(4, 3, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(start(x), pretrained(x))  # every slot ORIG: the pretrained model itself
    tuned, res = _run(tmp_path, epochs=1)
    with torch.no_grad():
        assert not torch.allclose(tuned(x), pretrained(x))
    assert "test_acc" in res.output
    history = [json.loads(s) for s in (tmp_path / "ft1" / "history.jsonl").read_text().splitlines()]
    assert history[-1]["info"]["estimator"] == "Retrain" and "test_acc" in history[-1]["metrics"]


def test_missing_weights_file_is_one_line(tmp_path) -> None:
    (tmp_path / "found.yaml").write_text("arch: {}\n")
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(_config(tmp_path, 0)))
    res = CliRunner().invoke(search, ["-c", str(path)])
    assert res.exit_code == 2 and "model.weights" in res.output and "pretrained.pt" in res.output
    assert "Traceback" not in res.output
