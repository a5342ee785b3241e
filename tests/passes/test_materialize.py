"""materialize(): the chosen subnet as plain torch ops; equal to the supernet, the original, and fxnas-free."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
import torchvision
from conftest import assert_close, randomize_bn

import fxnas
from fxnas.modelfile import load_model
from fxnas.supernet import mixed_ops

TINY = fxnas.__file__.replace("__init__.py", "examples/tiny_net.py")
X = torch.randn(2, 3, 32, 32)


def fxnas_modules(m: torch.nn.Module) -> list[str]:
    return [n for n, mod in m.named_modules() if type(mod).__module__.startswith("fxnas")]


@pytest.fixture(scope="module")
def tiny_supernet():
    torch.manual_seed(0)
    m = randomize_bn(load_model(TINY)).eval()
    convs = ["ORIG", "MB3E3", "DW5", "IDT", "NIL"]
    net = fxnas.searchify(m, "conv3x3,dwconv,linear", lambda s: convs if len(s.in_shape) == 4 else ["ORIG", "IDT"],
                          example_inputs=X)
    for op in mixed_ops(net).values():  # new candidates get random BN statistics too; ORIG keeps the model's
        for name, cand in op.candidates.items():
            if name != "ORIG":
                randomize_bn(cand, seed=1)
    return m, net.eval()


def test_all_orig_equals_original(tiny_supernet) -> None:
    m, net = tiny_supernet
    sub = fxnas.materialize(net, {k: "ORIG" for k in net.space.discrete()})
    assert not fxnas_modules(sub) and not hasattr(sub, "space")
    with torch.no_grad():
        assert_close(sub(X), m(X))
    assert sum(p.numel() for p in sub.parameters()) == sum(p.numel() for p in m.parameters())


@pytest.mark.parametrize("seed", range(4))
def test_sampled_arch_equals_supernet(tiny_supernet, seed: int) -> None:
    _, net = tiny_supernet
    arch = net.space.sample(seed)
    before = net.space.current()
    sub = fxnas.materialize(net, arch)
    assert net.space.current() == before  # the supernet is left as it was
    assert not fxnas_modules(sub)
    assert sum(p.numel() for p in sub.parameters()) < sum(p.numel() for p in net.parameters())
    net.space.apply(arch)
    with torch.no_grad():
        want = net(X)
        assert float(want.abs().max()) > 1e-3
        assert_close(sub.eval()(X), want)
    net.space.apply(before)


def test_default_arch_is_derived() -> None:
    torch.manual_seed(0)
    m = randomize_bn(load_model(TINY)).eval()
    net = fxnas.searchify(m, "dwconv", ["ORIG", "DW3"], mixed_op="SoftmaxSum", example_inputs=X).eval()
    with torch.no_grad():
        net.space["dw.dw.alpha"].value.copy_(torch.tensor([-1.0, 1.0]))
    sub = fxnas.materialize(net)
    assert not fxnas_modules(sub)
    ref = fxnas.materialize(net, {"dw.dw": "DW3"})
    with torch.no_grad():
        assert_close(sub(X), ref(X))


def test_resnet_block_pattern_end_to_end() -> None:
    m = randomize_bn(torchvision.models.resnet18(num_classes=10)).eval()
    x = torch.randn(1, 3, 32, 32)
    net = fxnas.searchify(m, "resnet_block", ["ORIG", "IDT"], example_inputs=x).eval()
    assert list(net.space) == [f"layer{i}.{j}" for i in range(1, 5) for j in range(2)]
    with torch.no_grad():
        assert_close(fxnas.materialize(net, {k: "ORIG" for k in net.space})(x), m(x))
        arch = {k: ("IDT" if k.endswith(".1") or k == "layer3.0" else "ORIG") for k in net.space}
        net.space.apply(arch)
        sub = fxnas.materialize(net, arch)
        assert_close(sub(x), net(x))
    assert not fxnas_modules(sub)
    n_sub = sum(p.numel() for p in sub.parameters())
    assert n_sub < sum(p.numel() for p in m.parameters())


def test_inverted_residual_pattern_end_to_end() -> None:
    m = randomize_bn(torchvision.models.mobilenet_v2(num_classes=10)).eval()
    x = torch.randn(1, 3, 64, 64)
    net = fxnas.searchify(m, "inverted_residual", ["ORIG", "IDT", "MB3E3"], example_inputs=x).eval()
    assert len(net.space) == 17
    with torch.no_grad():
        assert_close(fxnas.materialize(net, {k: "ORIG" for k in net.space})(x), m(x))
        arch = net.space.sample(5)
        net.space.apply(arch)
        assert_close(fxnas.materialize(net, arch)(x), net(x))


def test_nested_supernet_copy_is_independent(tiny_supernet) -> None:
    _, net = tiny_supernet
    other = copy.deepcopy(net)
    other.space.apply({"stem.0": "IDT"})
    assert net.space["stem.0"].value == "ORIG" and mixed_ops(other)["stem.0"].chosen_name() == "IDT"


def test_materialised_module_loads_without_fxnas(tiny_supernet, tmp_path: Path) -> None:
    _, net = tiny_supernet
    arch = net.space.sample(7)
    sub = fxnas.materialize(net, arch).eval()
    torch.save(sub, tmp_path / "subnet.pt")
    torch.save(X, tmp_path / "x.pt")
    with torch.no_grad():
        torch.save(sub(X), tmp_path / "y.pt")
    assert b"fxnas" not in (tmp_path / "subnet.pt").read_bytes()
    child = textwrap.dedent("""
        import sys
        sys.modules["fxnas"] = None  # any import of fxnas now raises ImportError
        import torch
        d = sys.argv[1]
        sub = torch.load(d + "/subnet.pt", weights_only=False)
        x, y = torch.load(d + "/x.pt"), torch.load(d + "/y.pt")
        with torch.no_grad():
            torch.testing.assert_close(sub(x), y)
        assert not [m for m in sys.modules if m.startswith("fxnas") and sys.modules[m] is not None]
        print("OK", type(sub).__name__)
    """)
    repo = str(Path(fxnas.__file__).resolve().parent.parent)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    r = subprocess.run([sys.executable, "-I", "-c", child, str(tmp_path)], capture_output=True, text=True,
                       cwd=tmp_path, env=env, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "OK" in r.stdout
    assert repo not in r.stdout


def test_materialize_needs_a_supernet() -> None:
    with pytest.raises(fxnas.FxnasError, match="not a supernet"):
        fxnas.materialize(fxnas.trace(load_model(TINY), X))


class SharedPosEnc(torch.nn.Module):
    """One conv called by two blocks (CoaT's shared positional convs), and a conv whose weight's dtype the forward
    reads (XCiT's Fourier positional encoding)."""

    def __init__(self) -> None:
        super().__init__()
        self.shared = torch.nn.Conv2d(8, 8, 3, padding=1, groups=8)
        self.proj = torch.nn.Conv2d(8, 8, 1)
        self.head = torch.nn.Conv2d(8, 4, 1)

    def forward(self, x):
        x = x + self.shared(x)
        x = x.to(self.proj.weight.dtype)
        x = self.proj(x) + self.shared(x)
        return self.head(x)


@pytest.mark.parametrize("pick", ["ORIG", "other"])
def test_shared_module_and_weight_metadata_reads(pick: str) -> None:
    torch.manual_seed(0)
    model, x = SharedPosEnc().eval(), torch.randn(1, 8, 6, 6)
    net = fxnas.searchify(model, "conv,dwconv", lambda s: ["ORIG", "DW5" if s.groups > 1 else "IDT"],
                          example_inputs=x).eval()
    assert set(net.space) == {"shared", "proj", "head"}
    arch = {k: "ORIG" if pick == "ORIG" else net.space[k].choices[1] for k in net.space}
    net.space.apply(arch)
    sub = fxnas.materialize(net, arch).eval()
    with torch.no_grad():
        assert_close(sub(x), net(x))
        if pick == "ORIG":
            assert_close(sub(x), model(x))
    assert sub.double()(x.double()).dtype == torch.float64  # the dtype read follows .to() as the weight did
