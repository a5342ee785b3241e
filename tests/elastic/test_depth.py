"""Elastic depth: residual blocks and stages found from the graph; skipped blocks cost nothing."""

from __future__ import annotations

import torch
import torchvision
from conftest import assert_close

import fxnas
from fxnas.elastic import ElasticResidual, cost, elastic_params, elasticize, largest, residual_blocks, stages
from fxnas.elastic.channels import trace_for_analysis

from .conftest import check_setting, prepared
from .user_models import SENet


def _stage_heads(model: torch.nn.Module) -> list[list[str]]:
    gm = trace_for_analysis(model, torch.randn(1, 3, 32, 32))
    return [[b.prefix for b in chain] for chain in stages(residual_blocks(gm))]


def test_resnet18_stages_are_its_identity_blocks() -> None:
    assert _stage_heads(torchvision.models.resnet18()) == [["layer1.0", "layer1.1"], ["layer2.1"], ["layer3.1"],
                                                            ["layer4.1"]]


def test_mobilenet_v2_stages_skip_strided_and_widening_blocks() -> None:
    heads = _stage_heads(torchvision.models.mobilenet_v2())
    assert heads == [["features.3.conv"], ["features.5.conv", "features.6.conv"],
                     ["features.8.conv", "features.9.conv", "features.10.conv"],
                     ["features.12.conv", "features.13.conv"], ["features.15.conv", "features.16.conv"]]


def test_skipping_trailing_blocks_of_a_stage() -> None:
    model = prepared(SENet())
    x = torch.randn(2, 3, 32, 32)
    net = elasticize(model, x, depth=(0, 1, 2)).eval()
    assert {k: p.choices for k, p in elastic_params(net, "depth").items()} == {"depth.blocks.0": [1, 2, 3],
                                                                             "depth.more.0": [0, 1, 2]}
    blocks = [m for m in net.modules() if isinstance(m, ElasticResidual)]
    assert [b.position for b in blocks] == [0, 1, 2, 0, 1]
    full = cost(net, largest(net))
    arch = {**largest(net), "depth.blocks.0": 1}
    sub = check_setting(net, x, arch)
    assert not any("blocks.1" in n or "blocks.2" in n for n, _ in sub.named_modules())
    skipped = sum(p.numel() for n, p in model.named_parameters() if n.startswith(("blocks.1.", "blocks.2.")))
    assert cost(net, arch)["params"] == full["params"] - skipped
    # a skipped block passes its input on: the subnet equals the model with those blocks removed
    ref = prepared(SENet())
    ref.load_state_dict(model.state_dict())
    ref.blocks = ref.blocks[:1]
    with torch.no_grad():
        assert_close(sub(x), ref(x), rtol=1e-4)


def test_depth_zero_removes_a_whole_stage() -> None:
    model = prepared(torchvision.models.resnet18(num_classes=10))
    x = torch.randn(2, 3, 32, 32)
    net = elasticize(model, x, depth=(0, 1, 2)).eval()
    sub = check_setting(net, x, {**largest(net), "depth.layer1.0": 0})
    # only the blocks' trailing ReLUs stay (on the stage input, which a ReLU made non-negative already)
    assert {type(m).__name__ for n, m in sub.named_modules() if n.startswith("layer1.") and not any(m.children())} \
        == {"ReLU"}
    assert fxnas.profile(sub, x[:1])["macs"] < fxnas.profile(model, x[:1])["macs"]
