"""Every one-shot method config (optimizer + its paper's mixed op) runs from YAML on a user model, a torchvision
model and the DARTS cell space; the best arch then materialises into plain torch ops and retrains."""

from __future__ import annotations

import pytest
import torch
import yaml

import fxnas
from fxnas.config import build_experiment, load_config, resolve_config
from fxnas.mixed import fixed_arch

METHODS = ["darts", "darts2", "directgrad", "proxyless_g", "proxyless_r", "snas", "spos"]


def method_config(name: str, model: str) -> dict:
    """The packaged config ``name`` shrunk to a few steps, its model swapped for ``model``."""
    raw = yaml.safe_load(resolve_config(name).read_text())
    mixed_op = (raw.get("construct") or {}).get("mixed_op") or raw["model"].get("mixed_op", "SoftmaxSum")
    if model == "torchvision":
        raw["model"] = {"type": "torchvision:resnet18"}
        raw["construct"] = {"pattern": "conv3x3", "candidates": ["ORIG", "NC3", "IDT"], "mixed_op": mixed_op}
    elif model == "darts":
        raw["model"] = {"type": "darts", "C": 4, "layers": 2, "steps": 2, "multiplier": 2, "mixed_op": mixed_op}
        raw.pop("construct", None)
    elif raw["model"]["type"] != "tiny_net":  # the user model: fxnas/examples/tiny_net.py
        raw["model"] = {"type": "tiny_net", "width": 8}
        raw["construct"] = {"pattern": "conv3x3", "candidates": ["NC3", "DW3", "IDT"], "mixed_op": mixed_op}
    raw["data"].update(size=16, channels=3, batch_size=16, eval_batch_size=64)
    raw["trainer"].update(epochs=1, max_steps_per_epoch=3)
    for e in raw["estim"]:
        e.update(epochs=1) if e["type"] != "Uniform" else e.update(epochs=1, budget=3, batch_size=3, bn_steps=1)
        e["eval_steps"] = 1
        e.pop("checkpoint_steps", None)
    raw["export"] = {"onnx": False}
    return raw


@pytest.mark.parametrize("model", ["user", pytest.param("torchvision", marks=pytest.mark.slow), "darts"])
@pytest.mark.parametrize("method", METHODS)
def test_method_runs_from_yaml(method: str, model: str, tmp_path) -> None:
    cfg = load_config(method_config(method, model), name=f"{method}-{model}", out_root=str(tmp_path))
    cfg["progress"] = False
    exp = build_experiment(cfg)
    summary = exp.run()
    space = exp.space
    assert set(summary["arch"]) == set(space.discrete())
    assert all(summary["arch"][k] in p.choices for k, p in space.discrete().items())
    assert 0.0 <= summary["metrics"]["acc"] <= 100.0
    assert (tmp_path / f"{method}-{model}" / "arch_best.yaml").exists()
    if space.tensors() and method != "spos":  # the alphas were trained: they left their 1e-3 init
        moved = max(float((t.value.detach() - 0).abs().max()) for t in space.tensors().values())
        assert moved > 1e-3


@pytest.mark.parametrize("method", METHODS)
def test_best_arch_materialises_and_retrains(method: str, tmp_path) -> None:
    cfg = load_config(method_config(method, "user"), name=method, out_root=str(tmp_path))
    cfg["progress"] = False
    exp = build_experiment(cfg)
    arch = exp.run()["arch"]
    sub = fxnas.materialize(exp.model, arch)
    assert not [m for m in sub.modules() if type(m).__module__.startswith("fxnas")]
    exp.model.eval()
    sub.eval()
    x, _ = next(iter(exp.data.valid))
    exp.space.apply(arch)
    with torch.no_grad(), fixed_arch(exp.model):  # the supernet on the chosen path, whatever the mixed op
        torch.testing.assert_close(sub(x), exp.model(x), rtol=1e-4, atol=1e-5)
    trainer = exp.trainer.clone(epochs=2, max_steps_per_epoch=None)
    stats = trainer.fit(sub, exp.data.train)
    assert stats[-1]["loss"] < stats[0]["loss"]
    assert trainer.evaluate(sub, exp.data.valid)["acc"] > 30.0  # 10 classes: chance is 10%
