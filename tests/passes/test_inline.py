"""The inline pass: calls to non-torch modules become the traced ops of their forward, same results."""

from __future__ import annotations

import pytest
import torch
from conftest import randomize_bn
from torch import nn

import fxnas
from fxnas.modelfile import import_model_file
from fxnas.passes.inline import default_should_inline, inline_modules

TINY = fxnas.__file__.replace("__init__.py", "examples/tiny_net.py")


class Untraceable(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * 2 if x.sum() > 0 else x


def test_inline_user_blocks() -> None:
    mod = import_model_file(TINY)
    m = randomize_bn(mod.build()).eval()
    x = torch.randn(2, 3, 16, 16)
    gm = fxnas.trace(m, x, leaf_modules=[mod.ResBlock, mod.DWBlock])
    called = [n.target for n in gm.graph.nodes if n.op == "call_module"]
    assert "res1" in called and "dw" in called
    inline_modules(gm)
    called = [n.target for n in gm.graph.nodes if n.op == "call_module"]
    assert "res1" not in called and "res1.conv1" in called and "dw.se.fc1" in called
    assert all(not default_should_inline(gm.get_submodule(t)) for t in called)
    torch.testing.assert_close(gm(x), m(x))
    # weights keep their paths, so state dicts stay compatible
    assert set(gm.state_dict()) == set(m.state_dict())


def test_untraceable_module_left_when_not_strict() -> None:
    root = nn.Sequential(nn.Linear(3, 3), Untraceable())
    gm = fxnas.trace(root, torch.randn(1, 3), leaf_modules=[Untraceable])
    inline_modules(gm, strict=lambda m: False)
    assert any(isinstance(gm.get_submodule(n.target), Untraceable)
               for n in gm.graph.nodes if n.op == "call_module")
    with pytest.raises(torch.fx.proxy.TraceError, match="control flow"):  # strict by default: fx's error surfaces
        inline_modules(gm)
