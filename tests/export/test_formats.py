"""Every export format: the file loads back (without fxnas for state_dict) and matches the subnet numerically."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import fxnas
from fxnas.errors import FxnasError
from fxnas.export import EXPORT_FORMATS
from fxnas.export.source import module_source
from fxnas.modelfile import load_model

TINY = str(Path(fxnas.__file__).parent / "examples" / "tiny_net.py")


@pytest.fixture(scope="module")
def subnet(rand_bn_module):
    """A materialised subnet of tiny_net with random BN statistics (outputs far from zero)."""
    net = fxnas.searchify(load_model(TINY, {"width": 8}), "conv3x3", ["NC3", "DW3", "MB3E6", "IDT"],
                          torch.randn(1, 3, 16, 16))
    arch = {k: v for k, v in zip(net.space.params, ["DW3", "MB3E6", "NC3", "IDT", "DW3", "NC3"])}
    return rand_bn_module(fxnas.materialize(net, {**net.space.current(), **arch})).eval()


@pytest.fixture(scope="module")
def rand_bn_module():
    from conftest import randomize_bn

    return randomize_bn


def _reference_load(fmt: str, path: Path):
    """Load the file the way a user would, independently of the format's own loader."""
    if fmt == "pt2":
        return torch.export.load(path).module()
    if fmt == "torchscript":
        return torch.jit.load(str(path))
    if fmt == "onnx":
        import onnxruntime as ort

        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return lambda x: torch.from_numpy(sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[0])
    ns: dict = {}
    exec(compile(path.with_suffix(".py").read_text(), str(path.with_suffix(".py")), "exec"), ns)
    net = ns["Subnet"]().eval()
    net.load_state_dict(torch.load(path, weights_only=True))
    return net


@pytest.mark.parametrize("fmt", ["pt2", "torchscript", "state_dict", "onnx"])
def test_export_matches_the_subnet(fmt: str, subnet, tmp_path: Path) -> None:
    exporter = EXPORT_FORMATS.build(fmt)
    path = tmp_path / f"sub{exporter.suffix}"
    files = exporter.export(subnet, torch.randn(1, 3, 16, 16), path)
    assert all(f.is_file() for f in files) and path in files
    x = torch.randn(3, 3, 16, 16) if fmt != "onnx" else torch.randn(1, 3, 16, 16)  # onnx: the traced batch
    with torch.no_grad():
        want, got = subnet(x), _reference_load(fmt, path)(x)
    scale = float(want.abs().max())
    assert scale > 0.1
    np.testing.assert_allclose(got.detach().numpy(), want.numpy(), rtol=1e-3, atol=1e-5 * scale)


def test_standalone_source_names_only_torch(subnet) -> None:
    src, state = module_source(subnet)
    assert "fxnas" not in src.split("\n", 1)[1]  # the header comment aside
    assert "nn.Conv2d(" in src and "class Subnet(nn.Module)" in src
    assert sum(v.numel() for v in state.values() if v.is_floating_point()) >= \
        sum(p.numel() for p in subnet.parameters())


def test_a_wrong_export_is_caught(subnet, tmp_path: Path) -> None:
    class Broken(type(EXPORT_FORMATS.build("torchscript"))):
        def load(self, path):
            inner = super().load(path)
            return lambda x: inner(x) + 1e-2

    with pytest.raises(FxnasError, match="differs from the subnet"):
        Broken().export(subnet, torch.randn(1, 3, 16, 16), tmp_path / "s.ts")
    with pytest.raises(FxnasError, match=r"\.pt2 file"):
        EXPORT_FORMATS.build("pt2").export(subnet, torch.randn(1, 3, 16, 16), tmp_path / "s.bin")
