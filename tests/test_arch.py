"""Arch files: plain {param: value} dicts as YAML or JSON, validated against a space on read."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from fxnas.arch import read_arch, to_plain, write_arch
from fxnas.errors import ConfigError
from fxnas.space import Categorical, Numerical, SearchSpace


def space() -> SearchSpace:
    s = SearchSpace()
    s.add(Categorical("a.b", ["ORIG", "MB3E3"]))
    s.add(Numerical("w", 1, 8, integer=True))
    return s


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_roundtrip(tmp_path: Path, suffix: str) -> None:
    arch = {"a.b": "MB3E3", "w": np.int64(4)}
    p = write_arch(arch, tmp_path / "sub" / f"arch{suffix}")
    got = read_arch(p, space())
    assert got == {"a.b": "MB3E3", "w": 4} and type(got["w"]) is int


def test_wrapped_and_invalid(tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text("arch: {a.b: ORIG, w: 2}\nmetrics: {acc: 0.9}\n")
    assert read_arch(tmp_path / "r.yaml") == {"a.b": "ORIG", "w": 2}
    (tmp_path / "bad.yaml").write_text("a.b: NC9\n")
    with pytest.raises(ConfigError, match="not a valid value for 'a.b'"):
        read_arch(tmp_path / "bad.yaml", space())
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="mapping of param name to value"):
        read_arch(tmp_path / "list.yaml")
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(ConfigError, match="not valid .json"):
        read_arch(tmp_path / "broken.json")
    with pytest.raises(ConfigError, match="does not exist"):
        read_arch(tmp_path / "none.yaml")


def test_to_plain() -> None:
    assert to_plain({"x": torch.tensor(3), "y": (np.float32(0.5), "s")}) == {"x": 3, "y": [0.5, "s"]}
    with pytest.raises(ConfigError, match="cannot be written"):
        to_plain({"t": torch.zeros(2)})
