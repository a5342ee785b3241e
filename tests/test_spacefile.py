"""Space files: the supernet re-created from a space file has the same params and computes the same."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

import fxnas
from fxnas.errors import ConfigError, FxnasError
from fxnas.modelfile import parse_source
from fxnas.spacefile import SpaceRecipe, load_supernet, read_space, write_space

TINY = Path(fxnas.__file__).parent / "examples" / "tiny_net.py"


def recipe(**kw) -> SpaceRecipe:
    base = dict(source=parse_source(str(TINY)), input_shape=(2, 3, 16, 16), pattern="conv3x3,dwconv",
                candidates="ORIG,MB3E3,IDT")
    base.update(kw)
    return SpaceRecipe(**base)


def test_roundtrip_same_params_and_outputs(tmp_path: Path) -> None:
    r = recipe(seed=3)
    net, specs = r.build()
    path = write_space(tmp_path / "space.yaml", r, net, specs)
    again = load_supernet(path)
    assert again.space.describe() == net.space.describe()
    assert list(again.space.discrete()) == list(specs)
    x = torch.randn(2, 3, 16, 16)
    net.eval()
    again.eval()
    for seed in range(3):
        arch = net.space.sample(seed)
        net.space.apply(arch)
        again.space.apply(arch)
        torch.testing.assert_close(again(x), net(x))
    data = yaml.safe_load(path.read_text())
    assert data["size"] == 3.0 ** len(specs)
    assert data["slots"]["res2.conv1"]["stride"] == 2
    assert data["slots"]["dw.dw"]["groups"] == 32
    assert data["pattern"] == ["conv3x3", "dwconv"]


def test_weights_recorded_and_reloaded(tmp_path: Path) -> None:
    torch.manual_seed(5)
    model = parse_source(str(TINY)).build()
    torch.save({"state_dict": model.state_dict()}, tmp_path / "w.pth")
    r = recipe(weights=str(tmp_path / "w.pth"), candidates=["ORIG", "IDT"])
    path = write_space(tmp_path / "s.yaml", r)
    assert yaml.safe_load(path.read_text())["weights"] == "w.pth"  # next to the space file: relative
    net = load_supernet(path).eval()
    net.space.apply({k: "ORIG" for k in net.space.discrete()})
    x = torch.randn(2, 3, 16, 16)
    torch.testing.assert_close(net(x), model.eval()(x))


def test_different_seed_gives_different_candidates(tmp_path: Path) -> None:
    a, _ = recipe(seed=0).build()
    b, _ = recipe(seed=1).build()
    pa = dict(a.named_parameters())
    pb = dict(b.named_parameters())
    key = next(k for k in pa if "MB3E3" in k)
    assert not torch.equal(pa[key], pb[key])


def test_torchvision_source(tmp_path: Path) -> None:
    r = SpaceRecipe(parse_source("torchvision:resnet18", {"num_classes": 4}), (1, 3, 32, 32), "resnet_block",
                    ["ORIG", "IDT"])
    path = write_space(tmp_path / "rn.yaml", r)
    rec, data = read_space(path)
    assert rec.source.kind == "torchvision" and rec.source.kwargs == {"num_classes": 4}
    assert len(data["params"]) == 8
    net = load_supernet(path).eval()
    assert net(torch.randn(1, 3, 32, 32)).shape == (1, 4)


def test_callable_pattern_cannot_be_saved() -> None:
    def my_pred(m):
        return isinstance(m, torch.nn.Conv2d)

    with pytest.raises(ConfigError, match="'my_pred' is a Python callable and cannot be saved.*Registered"):
        recipe(pattern=my_pred)
    with pytest.raises(ConfigError, match="'Conv2d' is a Python type"):
        recipe(pattern=torch.nn.Conv2d)
    with pytest.raises(ConfigError, match="not a Python callable"):
        recipe(candidates=lambda spec: ["ORIG"])
    with pytest.raises(fxnas.RegistryError, match="unknown pattern"):
        recipe(pattern="conv9x9")


def test_registered_pattern_object_saved_by_name() -> None:
    assert recipe(pattern=fxnas.PATTERNS.get("dwconv")).pattern == "dwconv"


def test_validation_detects_changed_space(tmp_path: Path) -> None:
    path = write_space(tmp_path / "s.yaml", recipe(candidates=["ORIG", "IDT"]))
    data = yaml.safe_load(path.read_text())
    data["params"]["stem.0"]["choices"] = ["ORIG"]
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(FxnasError, match=r"other params.*stem.0"):
        load_supernet(path)
    assert load_supernet(path, validate=False) is not None


def test_bad_space_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_supernet(tmp_path / "none.yaml")
    (tmp_path / "x.yaml").write_text("a: 1\n")
    with pytest.raises(ConfigError, match="not an fxnas space file"):
        read_space(tmp_path / "x.yaml")
    (tmp_path / "y.yaml").write_text("version: 1\nmodel: {kind: file, target: m.py}\n")
    with pytest.raises(ConfigError, match="lacks"):
        read_space(tmp_path / "y.yaml")


@pytest.mark.parametrize("pattern", [None, "conv3x3"])
def test_elastic_section_roundtrip(tmp_path: Path, pattern) -> None:
    """An elastic space (alone, or on top of slots) is re-created from its file with the same params and
    the same outputs at a sampled setting."""
    r = recipe(pattern=pattern, candidates=None if pattern is None else "ORIG,DW3",
               elastic={"width": [0.5, 1.0], "depth": [0, 1]})
    net, _ = r.build()
    path = write_space(tmp_path / "space.yaml", r, net, {})
    again = load_supernet(path)
    assert again.space.describe() == net.space.describe()
    assert any(k.startswith("width.") for k in again.space.describe())
    assert (pattern is not None) == any(k == "res1.conv1" for k in again.space.describe())
    arch = net.space.sample(1)
    x = torch.randn(2, 3, 16, 16)
    net.space.apply(arch)
    again.space.apply(arch)
    torch.testing.assert_close(again.eval()(x), net.eval()(x))


def test_space_needs_slots_or_elastic() -> None:
    with pytest.raises(ConfigError, match="pattern .*elastic section"):
        recipe(pattern=None, elastic=None)
    with pytest.raises(ConfigError, match="unknown key 'wdth' in elastic"):
        recipe(elastic={"wdth": [0.5]})
