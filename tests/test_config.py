"""Experiment configs: loading, overrides, validation errors with close names, model building, the docs list."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
import yaml

from fxnas.config import (
    apply_override,
    build_experiment,
    build_model,
    components_markdown,
    load_config,
    packaged_configs,
    registries,
    resolve_config,
)
from fxnas.config.schema import typed
from fxnas.errors import ConfigError
from fxnas.supernet import mixed_ops

DOCS = Path(__file__).resolve().parents[1] / "docs" / "experiments.md"


def base(**changes):
    cfg = {
        "name": "c", "progress": False,
        "model": {"type": "tiny_net", "width": 4},
        "construct": {"pattern": "conv3x3", "candidates": ["NC3", "DW3"]},
        "data": {"type": "digits", "size": 8, "channels": 3},
        "optim": {"type": "Random"},
        "estim": [{"type": "Default", "epochs": 1}],
    }
    cfg.update(changes)
    return cfg


def test_packaged_configs_resolve_by_name_and_validate():
    names = packaged_configs()
    for required in ("demo", "darts", "darts2", "proxyless_g", "proxyless_r", "snas", "spos", "directgrad"):
        assert required in names
    for n in names:
        cfg = load_config(n)
        assert cfg["name"] and cfg["estim"], n
    assert resolve_config("demo").name == "demo.yaml"


def test_unknown_config_name_suggests_packaged_ones():
    with pytest.raises(ConfigError, match="did you mean demo"):
        resolve_config("dem")


def test_overrides_are_yaml_typed_and_reach_lists():
    cfg = {"trainer": {"lr": 0.1}, "estim": [{"type": "Default", "epochs": 3}]}
    apply_override(cfg, "trainer.lr=0.5")
    apply_override(cfg, "trainer.nesterov=true")
    apply_override(cfg, "estim.0.epochs=1")
    apply_override(cfg, "data.size=16")
    apply_override(cfg, "construct.candidates=[NC3, DW3]")
    assert cfg["trainer"] == {"lr": 0.5, "nesterov": True}
    assert cfg["estim"][0]["epochs"] == 1 and cfg["data"] == {"size": 16}
    assert cfg["construct"]["candidates"] == ["NC3", "DW3"]
    with pytest.raises(ConfigError, match="key.path=value"):
        apply_override(cfg, "trainer.lr")
    with pytest.raises(ConfigError, match="index 0..0"):
        apply_override(cfg, "estim.4.epochs=1")


def test_overrides_apply_on_load(tmp_path):
    p = tmp_path / "e.yaml"
    p.write_text(yaml.safe_dump(base()))
    cfg = load_config(p, ["optim.type=Evolution", "seed=7"], name="other")
    assert cfg["optim"]["type"] == "Evolution" and cfg["seed"] == 7 and cfg["name"] == "other"


@pytest.mark.parametrize("changes, pattern", [
    ({"optimm": {"type": "Random"}}, r"unknown key 'optimm'.*did you mean optim"),
    ({"optim": {"type": "DART"}}, r"optim.type: unknown optimizer 'DART'; did you mean DARTS"),
    ({"estim": [{"type": "Supernet"}]}, r"estim.0.type: unknown estimator 'Supernet'; did you mean SuperNet"),
    ({"trainer": {"type": "Classification", "lrr": 0.1}}, r"no option 'lrr'; did you mean lr"),
    ({"optim": {"type": "DARTS", "options": {"unroled": True}}}, r"no option 'unroled'; did you mean unrolled"),
    ({"estim": [{"type": "SuperNet", "arch_update_interval": 2}]}, r"did you mean arch_update_intv"),
    ({"data": {"type": "digit"}}, r"unknown dataset 'digit'; did you mean digits"),
    ({"construct": {"pattern": "conv3x3", "candidates": ["NC3", "CONV3"]}}, r"unknown candidate 'CONV3'"),
    ({"construct": {"pattern": "conv3x3", "candidates": ["NC3"], "mixed_op": "Softmax"}},
     r"unknown mixed op 'Softmax'; did you mean SoftmaxSum"),
    ({"construct": {"pattern": "conv3x3", "candidate": ["NC3"]}}, r"unknown key 'candidate' in construct"),
    ({"export": {"onx": True}}, r"unknown key 'onx' in export; did you mean onnx"),
    ({"parallel": {"backend": "ray"}}, r"parallel.backend must be 'local', 'process', 'dask', got 'ray'"),
    ({"estim": []}, r"at least one estimator"),
    ({"optim": None}, r"needs a 'optim' section"),
    ({"name": "a/b"}, r"folder name"),
    ({"objectives": ["best:acc"]}, r"must look like 'acc', 'max:acc'"),
    ({"constraints": "params < lots"}, r"must look like 'params <= 1e6'"),
])
def test_bad_configs_name_what_is_wrong(changes, pattern):
    with pytest.raises(ConfigError, match=pattern):
        load_config(base(**changes))


def test_typed_sections_take_flat_or_nested_options():
    assert typed("optim", "DARTS") == {"type": "DARTS", "options": {}}
    assert typed("optim", {"type": "DARTS", "lr": 1, "options": {"unrolled": True}}) == \
        {"type": "DARTS", "options": {"unrolled": True, "lr": 1}}
    with pytest.raises(ConfigError, match="needs a 'type'"):
        typed("optim", {"lr": 1})


def test_model_sources(tmp_path):
    data = type("D", (), {"num_classes": 7, "input_shape": (1, 3, 8, 8),
                          "example_input": lambda self: torch.randn(1, 3, 8, 8)})()
    con = {"pattern": "conv3x3", "candidates": ["ORIG", "NC3"], "mixed_op": "Index", "mixed_op_args": {},
           "share": "none", "check": True}
    f = tmp_path / "m.py"
    f.write_text("import torch.nn as nn\n"
                 "def net(num_classes, width=4):\n"
                 "    return nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.ReLU(), nn.Conv2d(width, width, 3,"
                 " padding=1), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, num_classes))\n")
    net, space = build_model({"type": f"{f}:net", "options": {"width": 5}}, con, data)
    assert len(space) == 2 and net(torch.randn(2, 3, 8, 8)).shape == (2, 7)  # num_classes came from the data
    net, space = build_model({"type": "torchvision:resnet18", "options": {}}, {**con, "share": "shape"}, data)
    assert net.training and net(torch.randn(2, 3, 8, 8)).shape == (2, 7)
    assert len(space) < len(mixed_ops(net))  # slots of equal shape share one param
    net, space = build_model({"type": "tiny_net", "options": {}}, {**con, "share": "all"}, data)
    assert list(space) == ["shared"]
    with pytest.raises(ConfigError, match="did you mean resnet18"):
        build_model({"type": "torchvision:resnet81", "options": {}}, con, data)
    with pytest.raises(ConfigError, match="has no search space; add a construct"):
        build_model({"type": "tiny_net", "options": {}}, None, data)
    with pytest.raises(ConfigError, match="unknown space 'tiny_nett'; did you mean tiny_net"):
        build_model({"type": "tiny_nett", "options": {}}, con, data)
    with pytest.raises(ConfigError, match="no option 'widht'; did you mean width"):
        build_model({"type": f"{f}:net", "options": {"widht": 5}}, con, data)


def test_build_experiment_wires_components(tmp_path):
    exp = build_experiment(load_config(base(out_root=str(tmp_path), construct={
        "pattern": "conv3x3", "candidates": ["NC3", "DW3"], "mixed_op": "SoftmaxSum"}, optim={"type": "DARTS"})))
    assert exp.out_dir == tmp_path / "c"
    assert exp.optimizer.space is exp.space and exp.space is exp.model.space
    assert exp.data.num_classes == 10 and exp.objectives[0].metric == "acc"
    assert len(exp.space.tensors()) == len(exp.space.discrete()) == 6
    assert exp.config["model"]["type"] == "tiny_net"


def shipped(reg, name: str) -> bool:
    """True for components defined in the fxnas package (tests may register stand-ins of their own)."""
    fams = {f.example: f.factory for f in reg.families()}
    obj = fams.get(name) or reg.get(name)
    return (getattr(obj, "__module__", None) or type(obj).__module__).startswith("fxnas")


def test_every_registered_component_is_documented():
    """docs/experiments.md lists every registry name (regenerate: fxnas.config.write_components_doc)."""
    text = DOCS.read_text()
    missing = [f"{kind}: {name}" for kind, reg in registries().items() for name in reg.names()
               if shipped(reg, name) and not re.search(rf"`{re.escape(name)}`", text)]
    assert not missing, ("docs/experiments.md is missing components; run python -c \"from fxnas.config import "
                         f"write_components_doc; write_components_doc('docs/experiments.md')\": {missing}")
    assert "### optimizer" in components_markdown()


GRADIENT_CONFIGS = ["demo", "darts", "darts2", "proxyless_g", "proxyless_r", "snas", "spos", "directgrad"]


@pytest.mark.slow
@pytest.mark.parametrize("name", GRADIENT_CONFIGS)
def test_packaged_method_configs_run_shortened(name, tmp_path):
    """Each packaged method config runs end to end (1 epoch per stage, 4 steps per epoch, tiny budgets)."""
    cfg = load_config(name, ["trainer.max_steps_per_epoch=4", "trainer.epochs=1", "export.onnx=false"],
                      out_root=str(tmp_path))
    for e in cfg["estim"]:
        if "epochs" in e["options"]:
            e["options"]["epochs"] = 1
        if "budget" in e["options"]:
            e["options"].update(budget=3, batch_size=3)
        e["options"]["eval_steps"] = 1
    cfg["progress"] = False
    summary = build_experiment(cfg).run()
    assert summary["arch"] and "acc" in summary["metrics"]
    assert (tmp_path / name / "arch_best.yaml").exists()
