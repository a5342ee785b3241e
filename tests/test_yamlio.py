"""load_yaml: exponent notation without a dot is a float (PyYAML's safe_load keeps it a string)."""

from __future__ import annotations

import pytest
import yaml

from fxnas.config import load_config
from fxnas.yamlio import load_yaml


@pytest.mark.parametrize("text,value", [("1e-3", 1e-3), ("3E+2", 300.0), ("-2e5", -2e5), ("1.5e-4", 1.5e-4),
                                        ("10", 10), ("1e", "1e"), ("'1e-3'", "1e-3"), ("abc", "abc")])
def test_scalars(text: str, value) -> None:
    got = load_yaml(f"v: {text}")["v"]
    assert got == value and type(got) is type(value)


def test_plain_safe_load_would_have_kept_a_string() -> None:
    assert yaml.safe_load("v: 1e-3")["v"] == "1e-3"  # why fxnas has its own loader


def test_configs_and_overrides_read_exponents_as_floats(tmp_path) -> None:
    cfg = load_config("demo", ["optim.lr=1e-3", "trainer.weight_decay=5e-4"])
    assert cfg["optim"]["options"]["lr"] == 1e-3
    assert cfg["trainer"]["options"]["weight_decay"] == 5e-4
    path = tmp_path / "exp.yaml"
    path.write_text("name: x\nmodel: {type: tiny_net}\n"
                    "construct: {pattern: conv3x3, candidates: [NC3, IDT]}\ndata: {type: digits}\n"
                    "optim: {type: Random}\nestim: [{type: Uniform, epochs: 1, budget: 1}]\n"
                    "trainer: {type: Classification, lr: 3e-2}\n")
    assert load_config(path)["trainer"]["options"]["lr"] == 3e-2
