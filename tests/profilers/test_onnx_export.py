"""export_onnx: simplified ONNX that matches torch (checked with onnxruntime); clear errors otherwise."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from conftest import randomize_bn
from torch import nn

import fxnas
from fxnas.modelfile import load_model
from fxnas.profilers import onnx_export
from fxnas.profilers.onnx_export import run_onnx

TINY = fxnas.__file__.replace("__init__.py", "examples/tiny_net.py")


def test_export_matches_torch_and_simplifies(tmp_path: Path) -> None:
    m = randomize_bn(load_model(TINY)).eval()
    x = torch.randn(2, 3, 32, 32)
    raw = fxnas.export_onnx(m, x, tmp_path / "raw.onnx", simplify=False)
    simp = fxnas.export_onnx(m, x, tmp_path / "sub" / "simp.onnx")
    assert simp.is_file()
    n_raw = len(onnx.load(str(raw)).graph.node)
    n_simp = len(onnx.load(str(simp)).graph.node)
    assert n_simp <= n_raw
    with torch.no_grad():
        want = m(x).numpy()
    got = run_onnx(simp, x)[0]
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5 * np.abs(want).max())
    assert m.training is False


def test_materialised_subnet_exports(tmp_path: Path) -> None:
    m = randomize_bn(load_model(TINY)).eval()
    x = torch.randn(1, 3, 32, 32)
    net = fxnas.searchify(m, "conv3x3,dwconv", ["ORIG", "MB3E3", "IDT", "NIL"], example_inputs=x).eval()
    sub = fxnas.materialize(net, net.space.sample(2))
    fxnas.export_onnx(sub, x, tmp_path / "sub.onnx")
    with torch.no_grad():
        np.testing.assert_allclose(run_onnx(tmp_path / "sub.onnx", x)[0], sub(x).numpy(), rtol=1e-4, atol=1e-5)


def test_mismatch_is_reported(tmp_path: Path, monkeypatch) -> None:
    m = nn.Linear(4, 2)
    monkeypatch.setattr(onnx_export, "run_onnx", lambda p, a: [np.zeros((1, 2), np.float32) + 9])
    with pytest.raises(fxnas.FxnasError, match="ONNX output 0 differs from torch"):
        fxnas.export_onnx(m, torch.randn(1, 4), tmp_path / "m.onnx", simplify=False)


def test_export_failure_is_one_line(tmp_path: Path) -> None:
    m = nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(6))  # 5x5 → 6x6: not exportable to ONNX
    with pytest.raises(fxnas.FxnasError) as ei:
        fxnas.export_onnx(m, torch.randn(1, 3, 7, 7), tmp_path / "m.onnx")
    assert "ONNX export of Sequential failed" in str(ei.value) and "\n" not in str(ei.value)
