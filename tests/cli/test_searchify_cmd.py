"""`fxnas searchify`: the slot table, the space file, and one-line errors with exit codes (CliRunner)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

import fxnas
from fxnas.cli.main import main
from fxnas.spacefile import SpaceRecipe, load_supernet, read_space

TINY = str(Path(fxnas.__file__).parent / "examples" / "tiny_net.py")


def run(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_help_lists_searchify() -> None:
    r = run("--help")
    assert r.exit_code == 0 and "searchify" in r.output


def test_table_and_space_file(tmp_path: Path) -> None:
    out = tmp_path / "space.yaml"
    r = run("searchify", TINY, "--pattern", "conv3x3", "--candidates", "MB3E3,MB5E6",
            "--input-shape", "1,3,32,32", "--out", str(out))
    assert r.exit_code == 0, r.output
    for slot in ("stem.0", "res1.conv1", "res2.conv1", "branch_a.0"):
        assert slot in r.output
    assert "branch_b.0" not in r.output  # a 5x5 conv: not conv3x3
    assert "1x32x16x16" in r.output  # res2.conv1's output shape, stride 2
    assert "space size: 64 archs over 6 params" in r.output
    recipe, data = read_space(out)
    assert recipe.candidates == ["MB3E3", "MB5E6"] and recipe.input_shape == (1, 3, 32, 32)
    net = load_supernet(out)
    assert len(net.space) == 6
    # the same recipe built in-process computes exactly what the reloaded supernet computes
    ref, _ = SpaceRecipe(recipe.source, recipe.input_shape, "conv3x3", ["MB3E3", "MB5E6"]).build()
    arch = net.space.sample(0)
    net.space.apply(arch)
    ref.space.apply(arch)
    x = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(net.eval()(x), ref.eval()(x))


def test_entry_weights_and_model_args(tmp_path: Path) -> None:
    torch.manual_seed(0)
    m = fxnas.modelfile.load_model(TINY, {"num_classes": 5})
    torch.save({"model": m.state_dict()}, tmp_path / "w.pth")
    out = tmp_path / "s.yaml"
    r = run("searchify", f"{TINY}:build", "-a", "num_classes=5", "-p", "dwconv,linear", "-c", "ORIG,IDT",
            "-s", "2,3,16,16", "-w", str(tmp_path / "w.pth"), "-o", str(out))
    assert r.exit_code == 0, r.output
    assert "head" in r.output and "dw.dw" in r.output
    net = load_supernet(out).eval()
    net.space.apply({k: "ORIG" for k in net.space.discrete()})
    x = torch.randn(2, 3, 16, 16)
    torch.testing.assert_close(net(x), m.eval()(x))


def test_torchvision_block_pattern() -> None:
    r = run("searchify", "torchvision:resnet18", "-a", "num_classes=10", "-p", "resnet_block", "-c", "ORIG,IDT")
    assert r.exit_code == 0, r.output
    assert "layer4.1" in r.output and "BasicBlock" in r.output
    assert "space size: 256 archs over 8 params" in r.output


@pytest.mark.parametrize("args, code, needle", [
    (["missing_model.py"], 1, "model file 'missing_model.py' does not exist"),
    ([TINY, "-p", "conv7x7"], 1, "unknown pattern 'conv7x7'"),
    ([TINY, "-p", "conv7x7"], 1, "Valid patterns: attention, conv, conv1d, conv3x3"),
    ([TINY, "-p", "pwconv", "-c", "ORIG", "-s", "1,3,8,8"], 0, "space size"),
    ([TINY, "-c", "MB3E3,XYZ"], 1, "unknown candidate 'XYZ'"),
    ([TINY, "-c", "MB3E3,XYZ"], 1, "Valid candidates:"),
    ([TINY, "-s", "1,3,abc"], 2, "comma-separated positive integers such as 1,3,32,32"),
    ([TINY, "-s", "1,3,32"], 1, "Check example_inputs / --input-shape"),
    ([TINY, "-a", "bogus"], 1, "KEY=VALUE"),
    ([TINY, "-a", "nope=1"], 1, "unexpected keyword argument 'nope'"),
    (["resnet18"], 1, "torchvision:<builder>"),
    ([TINY, "-w", "nope.pth"], 1, "weights file 'nope.pth' does not exist"),
    ([TINY, "--mixed-op", "Sum"], 1, "unknown mixed op 'Sum'"),
])
def test_bad_input_one_line_error(args: list[str], code: int, needle: str) -> None:
    r = run("searchify", *args)
    assert r.exit_code == code, r.output
    assert needle in r.output
    if code:
        assert "Traceback" not in r.output
        errors = [ln for ln in r.output.splitlines() if ln.startswith("Error")]
        assert len(errors) == 1, r.output


def test_pattern_matching_nothing(tmp_path: Path) -> None:
    p = tmp_path / "mlp.py"
    p.write_text("from torch import nn\n\ndef build():\n    return nn.Sequential(nn.Flatten(), nn.Linear(12, 4))\n")
    r = run("searchify", str(p), "-p", "conv3x3", "-s", "1,3,2,2")
    assert r.exit_code == 1
    assert "matched nothing" in r.output and "Linear x1" in r.output
    assert len(r.output.strip().splitlines()) == 1


def test_unsaveable_never_reaches_cli(tmp_path: Path) -> None:
    out = tmp_path / "deep" / "s.yaml"
    r = run("searchify", TINY, "-p", "conv5x5", "-c", "NC3,NC5,DW3", "-o", str(out))
    assert r.exit_code == 0, r.output
    assert out.is_file() and "branch_b.0" in r.output


def test_elastic_space_file(tmp_path: Path) -> None:
    out = tmp_path / "space.yaml"
    r = run("searchify", TINY, "-s", "1,3,16,16", "-e", "width=[0.5,1.0]", "-e", "depth=[0,1]", "--out", str(out))
    assert r.exit_code == 0, r.output
    assert "elastic params" in r.output and "slots matching" not in r.output
    recipe, data = read_space(out)
    assert recipe.pattern is None and data["elastic"] == {"width": [0.5, 1.0], "depth": [0, 1]}
    assert set(load_supernet(out).space.describe()) == set(data["params"])
    bad = run("searchify", TINY, "-e", "width")
    assert bad.exit_code != 0 and "--elastic 'width' is not KEY=VALUE" in bad.output


CONTROL_FLOW = '''
import torch
from torch import nn


class Router(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.a, self.b = nn.Conv2d(c, c, 1), nn.Conv2d(c, c, 1)

    def forward(self, x):
        return self.a(x) if x.mean() > 0 else self.b(x)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1, self.router = nn.Conv2d(3, 8, 3, padding=1), Router(8)
        self.c2, self.aux = nn.Conv2d(8, 8, 3, padding=1), nn.Conv2d(8, 8, 3, padding=1)

    def forward(self, x, use_aux=True):
        x = self.router(self.c1(x))
        if use_aux:
            x = x + self.aux(x)
        return self.c2(x).mean((2, 3))
'''


def test_leaf_and_concrete_args_make_control_flow_traceable(tmp_path: Path) -> None:
    """Data-dependent control flow: the error names both flags; --leaf and --concrete trace it, and the space
    file records them so that the supernet is re-created the same way."""
    (tmp_path / "net.py").write_text(CONTROL_FLOW)
    model = f"{tmp_path / 'net.py'}:Net"
    failed = run("searchify", model, "-s", "1,3,8,8")
    assert failed.exit_code != 0 and "--leaf FILE.py:CLASS" in failed.output and "Router" in failed.output
    out = tmp_path / "space.yaml"
    r = run("searchify", model, "-s", "1,3,8,8", "--leaf", f"{tmp_path / 'net.py'}:Router",
            "--concrete", "use_aux=false", "-c", "ORIG,DW3", "--out", str(out))
    assert r.exit_code == 0, r.output
    assert "c1" in r.output and "c2" in r.output and "aux" not in r.output  # use_aux=false: aux is not called
    recipe, data = read_space(out)
    assert data["leaf_modules"] == ["net.py:Router"] and data["concrete_args"] == {"use_aux": False}
    net = load_supernet(out)
    assert set(net.space.describe()) == {"c1", "c2"}
    torch.manual_seed(0)
    x = torch.randn(2, 3, 8, 8)
    torch.testing.assert_close(net.eval()(x), load_supernet(out).eval()(x))
    bad = run("searchify", model, "-s", "1,3,8,8", "--leaf", "torch.nn.functional:relu")
    assert bad.exit_code != 0 and "is not an nn.Module class" in bad.output


SHAPE_BRANCH = '''
from torch import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1, self.c2 = nn.Conv2d(3, 8, 3, padding=1), nn.Conv2d(8, 8, 3, padding=1)

    def forward(self, x):
        if x.shape[-1] != x.shape[-2]:
            raise ValueError("square inputs only")
        return self.c2(self.c1(x)).mean((2, 3))
'''


def test_meta_tracer_from_the_command_line_is_recorded(tmp_path: Path) -> None:
    pytest.importorskip("transformers.utils.fx")
    (tmp_path / "net.py").write_text(SHAPE_BRANCH)
    model = f"{tmp_path / 'net.py'}:Net"
    failed = run("searchify", model, "-s", "1,3,8,8")
    assert failed.exit_code != 0 and "--tracer meta" in failed.output
    out = tmp_path / "space.yaml"
    r = run("searchify", model, "-s", "1,3,8,8", "--tracer", "meta", "-c", "ORIG,DW3", "--out", str(out))
    assert r.exit_code == 0, r.output
    assert read_space(out)[1]["tracer"] == "meta"
    assert set(load_supernet(out).space.describe()) == {"c1", "c2"}
    bad = run("searchify", model, "-s", "1,3,8,8", "--tracer", "jit")
    assert bad.exit_code != 0 and "unknown tracer 'jit'" in bad.output
