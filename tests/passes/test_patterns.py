"""Patterns: registered names, module types, module predicates, graph callables, unions; clear errors."""

from __future__ import annotations

import pytest
import torch
import torch.fx as fx
import torchvision
from torch import nn

import fxnas
from fxnas.errors import PatternError
from fxnas.modelfile import load_model
from fxnas.passes.patterns import resolve_pattern

TINY = fxnas.__file__.replace("__init__.py", "examples/tiny_net.py")


def matches(pattern, model=None, shape=(1, 3, 32, 32)) -> list[str]:
    model = model if model is not None else load_model(TINY)
    pat = resolve_pattern(pattern)
    gm = fxnas.trace(model, torch.randn(shape), leaf_modules=pat.leaf_types, leaf_predicate=pat.keeps_whole,
                     selects=pat.selects)
    return [n.target for n in gm.graph.nodes if pat.matches(gm, n)]


@pytest.mark.parametrize("name, expected", [
    ("conv3x3", ["stem.0", "res1.conv1", "res1.conv2", "res2.conv1", "res2.conv2", "branch_a.0"]),
    ("conv5x5", ["branch_b.0"]),
    ("dwconv", ["dw.dw"]),
    ("pwconv", ["res2.short.0", "dw.pw", "dw.se.fc1", "dw.se.fc2"]),
    ("linear", ["head"]),
])
def test_named_patterns(name: str, expected: list[str]) -> None:
    assert matches(name) == expected


def test_conv_is_every_standard_conv() -> None:
    got = matches("conv")
    assert len(got) == 11 and "dw.dw" not in got and "res2.short.0" in got


def test_union_by_comma_and_list() -> None:
    assert matches("dwconv,linear") == ["dw.dw", "head"]
    assert matches(["conv5x5", "dwconv"]) == ["branch_b.0", "dw.dw"]


def test_module_type_and_predicate() -> None:
    assert matches(nn.Linear) == ["head"]
    assert matches(lambda m: isinstance(m, nn.Conv2d) and m.stride == (2, 2)) == ["res2.conv1", "res2.short.0"]


def test_graph_callable_sees_users() -> None:
    def feeds_cat(gm: fx.GraphModule, node: fx.Node) -> bool:  # a pattern on the graph, not just the module
        return any(u.target is torch.cat for u in node.users)

    assert matches(feeds_cat) == ["branch_a.2", "branch_b.2"]


def test_block_patterns_keep_blocks_as_leaves() -> None:
    rn = torchvision.models.resnet18(num_classes=4)
    assert matches("resnet_block", rn) == [f"layer{i}.{j}" for i in range(1, 5) for j in range(2)]
    mb = torchvision.models.mobilenet_v3_small(num_classes=4)
    got = matches("inverted_residual", mb.eval(), (1, 3, 64, 64))
    assert got == [f"features.{i}" for i in range(1, 12)]


def test_errors() -> None:
    with pytest.raises(PatternError, match="unknown pattern 'conv4x4'.*Valid patterns: attention, conv, conv1d"):
        resolve_pattern("conv4x4")
    with pytest.raises(PatternError, match="pattern must be a name"):
        resolve_pattern(3)
    p = resolve_pattern("linear")
    assert resolve_pattern(p) is p and p.doc
