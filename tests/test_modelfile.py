"""Model sources: model files (function / class / explicit entry), torchvision builders, local weights."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

import fxnas
from fxnas.errors import ModelError
from fxnas.modelfile import (
    ModelSource,
    find_entry,
    import_model_file,
    load_model,
    load_weights,
    parse_kwargs,
    parse_shape,
    parse_source,
    read_state_dict,
)

TINY = Path(fxnas.__file__).parent / "examples" / "tiny_net.py"

TWO_FUNCS = """
from torch import nn
def small():
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1))
def large(width=8):
    return nn.Sequential(nn.Conv2d(3, width, 3, padding=1))
"""

ONE_CLASS = """
import torch
from torch import nn
from torch.nn import Conv2d  # imported names are not candidates
class Net(nn.Module):
    def __init__(self, c=4):
        super().__init__()
        self.conv = Conv2d(3, c, 3, padding=1)
    def forward(self, x):
        return self.conv(x)
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def test_single_function_found_automatically() -> None:
    m = load_model(str(TINY))
    assert type(m).__name__ == "TinyNet"
    assert m(torch.randn(2, 3, 16, 16)).shape == (2, 10)


def test_explicit_entry_and_kwargs() -> None:
    m = load_model(f"{TINY}:build", {"num_classes": 7, "width": 8})
    assert m(torch.randn(1, 3, 16, 16)).shape == (1, 7)
    assert m.stem[0].out_channels == 8


def test_class_entry_found_when_no_function(tmp_path: Path) -> None:
    p = write(tmp_path, "one_class.py", ONE_CLASS)
    m = load_model(str(p), {"c": 6})
    assert type(m).__name__ == "Net" and m.conv.out_channels == 6


def test_several_candidates_error_lists_them(tmp_path: Path) -> None:
    p = write(tmp_path, "two.py", TWO_FUNCS)
    with pytest.raises(ModelError, match=r"several candidates \(small, large\).*two.py:small"):
        load_model(str(p))
    assert load_model(f"{p}:large", {"width": 5})[0].out_channels == 5


def test_unknown_entry_lists_candidates(tmp_path: Path) -> None:
    p = write(tmp_path, "two.py", TWO_FUNCS)
    with pytest.raises(ModelError, match="no function or class 'build'.*small, large"):
        load_model(f"{p}:build")


def test_missing_file_and_bad_spec(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="does not exist"):
        parse_source(str(tmp_path / "nope.py"))
    with pytest.raises(ModelError, match="torchvision:<builder>"):
        parse_source("resnet18")


def test_entry_returning_non_module(tmp_path: Path) -> None:
    p = write(tmp_path, "bad.py", "def build():\n    return 3\n")
    with pytest.raises(ModelError, match="returned int, not an nn.Module"):
        load_model(str(p))


def test_import_error_is_reported(tmp_path: Path) -> None:
    p = write(tmp_path, "broken.py", "import not_a_module_xyz\n")
    with pytest.raises(ModelError, match="importing .*broken.py.*ModuleNotFoundError"):
        import_model_file(p)


def test_no_candidates(tmp_path: Path) -> None:
    p = write(tmp_path, "empty.py", "X = 1\n")
    with pytest.raises(ModelError, match="no function or nn.Module class"):
        find_entry(import_model_file(p), None)


def test_torchvision_builder_with_kwargs() -> None:
    m = load_model("torchvision:resnet18", {"num_classes": 3})
    assert m.fc.out_features == 3


def test_torchvision_unknown_and_download_refused() -> None:
    with pytest.raises(ModelError, match="did you mean resnet18"):
        load_model("torchvision:resnet19")
    with pytest.raises(ModelError, match="would download"):
        load_model("torchvision:resnet18", {"weights": "DEFAULT"})


@pytest.mark.parametrize("wrap", ["plain", "state_dict", "model", "module_prefix"])
def test_weights_roundtrip(tmp_path: Path, wrap: str) -> None:
    torch.manual_seed(1)
    src = load_model(str(TINY))
    sd = src.state_dict()
    if wrap == "state_dict":
        obj = {"state_dict": sd, "epoch": 3}
    elif wrap == "model":
        obj = {"model": sd, "optimizer": {}}
    elif wrap == "module_prefix":
        obj = {f"module.{k}": v for k, v in sd.items()}
    else:
        obj = sd
    torch.save(obj, tmp_path / "w.pth")
    torch.manual_seed(2)
    dst = load_model(str(TINY), weights=tmp_path / "w.pth")
    x = torch.randn(2, 3, 16, 16)
    src.eval()
    dst.eval()
    torch.testing.assert_close(dst(x), src(x))
    assert set(read_state_dict(tmp_path / "w.pth")) == set(sd)


def test_mismatched_weights_error_lists_keys(tmp_path: Path) -> None:
    sd = load_model(str(TINY), {"width": 8}).state_dict()
    sd["extra.weight"] = torch.zeros(1)
    del sd["head.bias"]
    torch.save(sd, tmp_path / "w.pth")
    with pytest.raises(ModelError) as ei:
        load_weights(load_model(str(TINY)), tmp_path / "w.pth")
    msg = str(ei.value)
    assert "1 missing (e.g. head.bias)" in msg and "1 unexpected (e.g. extra.weight)" in msg
    assert "other shapes" in msg and "stem.0.weight (8, 3, 3, 3) vs (16, 3, 3, 3)" in msg


def test_weights_errors(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="does not exist"):
        read_state_dict(tmp_path / "none.pth")
    (tmp_path / "junk.pth").write_text("not a checkpoint")
    with pytest.raises(ModelError, match="is not a torch weights file"):
        read_state_dict(tmp_path / "junk.pth")
    torch.save({"lr": 0.1}, tmp_path / "nots.pth")
    with pytest.raises(ModelError, match="holds no tensors"):
        read_state_dict(tmp_path / "nots.pth")


def test_source_dict_roundtrip(tmp_path: Path) -> None:
    src = parse_source(f"{TINY}:build", {"width": 4})
    d = src.to_dict(relative_to=tmp_path)
    assert d["target"] == str(TINY)  # outside tmp_path: stored absolute
    assert ModelSource.from_dict(d, tmp_path) == src
    local = write(tmp_path, "m.py", ONE_CLASS)
    d = parse_source(str(local)).to_dict(relative_to=tmp_path)
    assert d["target"] == "m.py"
    assert ModelSource.from_dict(d, tmp_path).target == str(local)


def test_parse_shape_and_kwargs() -> None:
    assert parse_shape("1,3,32,32") == (1, 3, 32, 32)
    assert parse_shape("2x3x8x8") == (2, 3, 8, 8)
    for bad in ("", "1,3,a", "1,0,3", "-1,3"):
        with pytest.raises(ModelError, match="comma-separated positive integers"):
            parse_shape(bad)
    assert parse_kwargs(["num_classes=10", "width=0.5", "name=abc"]) == {"num_classes": 10, "width": 0.5,
                                                                         "name": "abc"}
    with pytest.raises(ModelError, match="KEY=VALUE"):
        parse_kwargs(["oops"])


def test_user_class_picklable_after_import() -> None:
    m = load_model(str(TINY))
    import io

    buf = io.BytesIO()
    torch.save(m, buf)  # the user module is registered in sys.modules, so its classes pickle
    buf.seek(0)
    m2 = torch.load(buf, weights_only=False)
    assert isinstance(m2, nn.Module)
