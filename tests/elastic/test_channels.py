"""Coupled-channel analysis: groups agree with Torch-Pruning, read well, and unknown ops fail loudly."""

from __future__ import annotations

import networkx as nx
import pytest
import torch
import torchvision
from torch import nn

import fxnas
from fxnas.elastic import CHANNEL_RULES, ChannelRuleError, channel_groups
from fxnas.modelfile import load_model

from .user_models import SplitNet

TINY = fxnas.__file__.replace("__init__.py", "examples/tiny_net.py")
# Torch-Pruning 1.x group counts with root types Conv2d and Linear, nothing ignored, input 1x3x224x224
TP_COUNTS = {"resnet18": 13, "mobilenet_v2": 26, "resnet50": 38, "mobilenet_v3_large": 31, "efficientnet_b0": 41}


def _tp_groups(model: nn.Module, x: torch.Tensor) -> set[frozenset[tuple[str, str]]]:
    """Torch-Pruning's groups as sets of (layer path, "in" | "out")."""
    tp = pytest.importorskip("torch_pruning")
    dg = tp.DependencyGraph().build_dependency(model, example_inputs=x)
    names = {m: n for n, m in model.named_modules()}
    groups = dg.get_all_groups(ignored_layers=[], root_module_types=[nn.Conv2d, nn.Linear])
    return {frozenset((names[d.target.module], "in" if "in_channels" in d.handler.__name__ else "out")
                      for d, _ in g if d.target.module in names) for g in groups}


@pytest.mark.parametrize("name", [pytest.param(n, marks=[pytest.mark.slow] if n == "resnet50" else [])
                                  for n in TP_COUNTS])
def test_groups_agree_with_torch_pruning(name: str) -> None:
    model = getattr(torchvision.models, name)().eval()
    x = torch.randn(1, 3, 224, 224)
    groups = channel_groups(model, x)
    assert len(groups) == TP_COUNTS[name]
    # Torch-Pruning counts out-channel pruning for norms and depthwise convs: ours are "through"
    ours = {frozenset((m.path, "in" if m.role == "in" else "out") for m in g.members) for g in groups}
    assert ours == _tp_groups(model, x)


def test_details_and_graph_name_producers_consumers_and_offsets() -> None:
    groups = channel_groups(SplitNet().eval(), torch.randn(1, 3, 16, 16))
    halves = [g for g in groups if g.name.startswith("stem[")]
    assert [g.name for g in halves] == ["stem[0:16]", "stem[16:32]"]  # the split cuts the stem's output
    right = groups["stem[16:32]"].details()
    assert "produced by  stem (Conv2d) out[16:32]" in right and "consumed by  b (Conv2d) in[0:16]" in right
    cat = groups["a"]  # a and b concatenated, tied by the 2-group conv and its GroupNorm
    assert {m.path for m in cat.producers} == {"a", "b", "g"}
    assert next(m for m in cat.consumers if m.path == "g").offsets == [0, 16]
    glu = groups["expand[0:24]"]  # chunk + gated multiply: both halves shrink together
    assert next(m for m in glu.producers).offsets == [0, 24]
    assert "consumed by  fc1 (Linear) in[0:24] x4 features each" in glu.details()
    head = groups["fc2"]
    assert not head.elastic and "model output" in head.details()
    g = groups.graph
    assert g.nodes[("group", "fc1")]["size"] == 32
    assert g.edges[("group", "fc1"), ("layer", "ln")]["role"] == "through"
    assert {n for n in nx.node_connected_component(g, ("layer", "fc1"))} >= {("group", "fc1"), ("group", "fc2")}


def test_tiny_net_squeeze_excite_and_concat() -> None:
    groups = channel_groups(load_model(TINY).eval(), torch.randn(1, 3, 32, 32))
    a = groups["branch_a.0"]
    # the concat's first half runs through the depthwise block and its squeeze-excite multiply
    assert {m.path for m in a.producers} == {"branch_a.0", "dw.pw", "dw.se.fc2"}
    assert next(m for m in a.consumers if m.path == "head").offsets == [0]
    assert next(m for m in groups["branch_b.0"].consumers if m.path == "head").offsets == [16]


class Mystery(nn.Module):
    """A user op traced as a leaf, with no channel rule."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flip(1)


class WithMystery(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3)
        self.odd = Mystery()
        self.head = nn.Conv2d(8, 4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.odd(self.conv(x)))


def test_op_without_rule_names_the_op_and_its_line() -> None:
    with pytest.raises(ChannelRuleError) as err:
        channel_groups(WithMystery(), torch.randn(1, 3, 8, 8), leaf_modules=[Mystery])
    msg = str(err.value)
    assert "module 'odd' (Mystery)" in msg and "test_channels.py" in msg and "self.odd(self.conv(x))" in msg
    assert "\n" not in msg


def test_function_without_rule_fails_loudly() -> None:
    class Flip(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 8, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.flip(self.conv(x), [1])

    with pytest.raises(ChannelRuleError, match=r"function torch\.flip at .*test_channels\.py:\d+: return torch\.flip"):
        channel_groups(Flip(), torch.randn(1, 3, 8, 8))


def test_scoped_rules_extend_one_call_only() -> None:
    rules = CHANNEL_RULES.child()
    rules.register("Mystery", obj=lambda ctx: ctx.through(ctx.channels(0, dim=1)))
    groups = channel_groups(WithMystery(), torch.randn(1, 3, 8, 8), rules=rules, leaf_modules=[Mystery])
    assert groups["conv"].consumers[0].path == "head" and "Conv2d" in rules
    assert "Mystery" not in CHANNEL_RULES


def test_literal_reshape_fixes_the_width() -> None:
    class Head(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv, self.fc = nn.Conv2d(3, 8, 3), nn.Linear(8, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(self.conv(x).mean((2, 3)).view(-1, 8))

    group = channel_groups(Head(), torch.randn(2, 3, 8, 8))["conv"]
    assert not group.elastic and "literal size 8" in group.pinned[0]
