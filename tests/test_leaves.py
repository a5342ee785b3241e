"""Leaf rules: layer subclasses with their own forward stay whole when a pattern selects them; timm's
not-trace registry is honoured; third-party models from pip packages become search spaces."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import fxnas
from fxnas.errors import PatternError
from fxnas.leaves import LEAF_RULES, LeafRule, own_forward_base, resolve_leaf_rules
from fxnas.passes.materialize import materialize


class SamePadConv(nn.Conv2d):
    """A conv subclass whose forward pads from the input size (fx cannot trace the int() of a Proxy)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pad = max(0, int(x.shape[-1]) % 2)
        return F.conv2d(F.pad(x, (pad, pad, pad, pad)), self.weight, self.bias, self.stride, 0, 1, self.groups)


class StdConv(nn.Conv2d):
    """Weight-standardised conv (traceable, but fx would leave only its F.conv2d call)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight
        w = (w - w.mean(dim=(1, 2, 3), keepdim=True)) / (w.std(dim=(1, 2, 3), keepdim=True) + 1e-5)
        return F.conv2d(x, w, self.bias, self.stride, self.padding)


def _net() -> nn.Module:
    return nn.Sequential(StdConv(3, 8, 3), nn.ReLU(), SamePadConv(8, 8, 3, groups=8), nn.Conv2d(8, 4, 1)).eval()


def _all_orig_equal(model: nn.Module, net: torch.nn.Module, x: torch.Tensor) -> None:
    sub = materialize(net, {})
    with torch.no_grad():
        torch.testing.assert_close(sub(x), model(x), rtol=1e-5, atol=1e-5)


def test_own_forward_base() -> None:
    assert own_forward_base(SamePadConv(3, 3, 3)) is nn.Conv2d
    assert own_forward_base(nn.Conv2d(3, 3, 3)) is None

    class NoForward(nn.Linear):  # a subclass that keeps Linear.forward is traced as the layer it is
        pass

    assert own_forward_base(NoForward(2, 2)) is None


def test_selected_subclasses_become_leaves_and_match_their_base_patterns() -> None:
    model, x = _net(), torch.randn(1, 3, 9, 9)
    net = fxnas.searchify(model, pattern="dwconv", example_inputs=x)
    assert list(fxnas.mixed_ops(net)) == ["2"]
    _all_orig_equal(model, net, x)
    net = fxnas.searchify(model, pattern="conv3x3,dwconv", example_inputs=x)
    assert list(fxnas.mixed_ops(net)) == ["0", "2"]
    _all_orig_equal(model, net, x)
    # a subclass no pattern selects is traced through; when that fails, the error says what would help
    with pytest.raises(fxnas.errors.TraceError, match=r"module '2' \(SamePadConv\).*int\(x.shape.*leaf_modules"):
        fxnas.searchify(model, pattern="conv3x3", example_inputs=x)


def test_unselected_subclass_is_traced_through_and_rules_can_be_turned_off() -> None:
    class Scaled(nn.Linear):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return super().forward(x) * 2

    model = nn.Sequential(Scaled(4, 4), nn.Conv1d(1, 1, 1))
    gm = fxnas.trace(model, torch.randn(1, 1, 4))  # no pattern: traced through, nothing kept
    assert "0" not in {n.target for n in gm.graph.nodes if n.op == "call_module"}
    gm = fxnas.trace(model, torch.randn(1, 1, 4), selects=lambda m: isinstance(m, nn.Linear))
    assert "0" in {n.target for n in gm.graph.nodes if n.op == "call_module"}
    gm = fxnas.trace(model, torch.randn(1, 1, 4), selects=lambda m: True, leaf_rules=[])
    assert "0" not in {n.target for n in gm.graph.nodes if n.op == "call_module"}


def test_user_leaf_rule_and_bad_name() -> None:
    class KeepSequential(LeafRule):
        def is_leaf(self, module, qualname, selects):
            return qualname == "1"

    model = nn.Sequential(nn.Linear(2, 2), nn.Sequential(nn.Linear(2, 2), nn.ReLU()))
    gm = fxnas.trace(model, torch.randn(1, 2), leaf_rules=[KeepSequential()])
    assert [n.target for n in gm.graph.nodes if n.op == "call_module"] == ["0", "1"]
    with LEAF_RULES.scoped():
        LEAF_RULES.register("keep_seq", KeepSequential)
        assert any(isinstance(r, KeepSequential) for r in resolve_leaf_rules(None))
    with pytest.raises(PatternError, match="leaf rule 'nope' is unknown.*layer_subclass, linear_like, timm"):
        resolve_leaf_rules(["nope"])


def test_efficientnet_lite_dwconv_from_its_pip_package() -> None:
    lite = pytest.importorskip("efficientnet_lite_pytorch")
    model, x = lite.EfficientNet.from_name("efficientnet-lite0").eval(), torch.randn(1, 3, 64, 64)
    n_dw = sum(1 for m in model.modules() if isinstance(m, nn.Conv2d) and m.groups == m.in_channels > 1)
    net = fxnas.searchify(model, pattern="dwconv", example_inputs=x)
    assert len(fxnas.mixed_ops(net)) == n_dw == 16
    _all_orig_equal(model, net, x)


def test_timm_same_padding_model_traces() -> None:
    timm = pytest.importorskip("timm")
    model, x = timm.create_model("tf_efficientnet_b0", pretrained=False).eval(), torch.randn(1, 3, 64, 64)
    gm = fxnas.trace(model, x)  # Conv2dSame pads with math.ceil on the input size: kept whole by timm's rule
    with torch.no_grad():
        torch.testing.assert_close(gm(x), model(x))
    net = fxnas.searchify(model, pattern="dwconv", example_inputs=x)
    n_dw = sum(1 for m in model.modules() if isinstance(m, nn.Conv2d) and m.groups == m.in_channels > 1)
    assert len(fxnas.mixed_ops(net)) == n_dw
    _all_orig_equal(model, net, x)


@pytest.mark.slow
def test_timm_inception_conv3x3_compares_the_whole_kernel() -> None:
    timm = pytest.importorskip("timm")
    model, x = timm.create_model("inception_v3", pretrained=False).eval(), torch.randn(1, 3, 75, 75)
    net = fxnas.searchify(model, pattern="conv3x3", example_inputs=x)
    assert len(fxnas.mixed_ops(net)) == 17  # its (3, 1) and (1, 3) convs are not 3x3
    _all_orig_equal(model, net, x)
