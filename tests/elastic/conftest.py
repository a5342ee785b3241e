"""Helpers of the elastic tests: build an elastic supernet of a model and check a setting end to end."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from conftest import assert_close, randomize_bn
from torch import nn

import fxnas
from fxnas.elastic import cost


def fxnas_modules(m: nn.Module) -> list[str]:
    """Paths of modules defined by fxnas."""
    return [n for n, mod in m.named_modules() if type(mod).__module__.startswith("fxnas")]


def prepared(model: nn.Module, seed: int = 0) -> nn.Module:
    """``model`` in eval mode with random BatchNorm statistics (outputs far from zero)."""
    return randomize_bn(model, seed).eval()


def check_setting(net: torch.fx.GraphModule, x: torch.Tensor, arch: dict[str, Any],
                  onnx_dir: Path | None = None) -> nn.Module:
    """Materialise ``arch``: plain torch, equal to the supernet at ``arch``, costed as the space predicts,
    and (with ``onnx_dir``) exported to ONNX that matches torch. Returns the subnet."""
    sub = fxnas.materialize(net, arch).eval()
    assert not fxnas_modules(sub)
    before = net.space.current()
    net.space.apply(arch)
    with torch.no_grad():
        want = net(x)
        assert float(want.abs().max()) > 1e-3
        assert_close(sub(x), want)
    predicted = cost(net, arch)
    net.space.apply(before)
    assert predicted["params"] == sum(p.numel() for p in sub.parameters())
    assert predicted["macs"] == fxnas.profile(sub, x[:1])["macs"]
    if onnx_dir is not None:
        fxnas.export_onnx(sub, x, onnx_dir / "subnet.onnx")  # raises when onnxruntime disagrees with torch
    return sub
