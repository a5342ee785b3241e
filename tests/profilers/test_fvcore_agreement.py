"""The static counter agrees with fvcore on a torchvision zoo subset where the two count the same thing.

fvcore counts one "flop" per multiply-accumulate for conv/linear/matmul, 2 (eval, affine) per batch-norm
element, 5 per layer-norm element with affine parameters, one per adaptive-pooling input element, and skips
elementwise ops, activations, max pooling and ``scaled_dot_product_attention``. Per kind, the counts must agree
within 1 %; ViT's attention scores (which fvcore skips) are computed by hand.
"""

from __future__ import annotations

import logging

import pytest
import torch
import torchvision

from fxnas.profilers.counter import count

fvcore = pytest.importorskip("fvcore.nn")

# name -> builder kwargs, input side
ZOO = {
    "resnet18": ({}, 64), "mobilenet_v2": ({}, 64), "mobilenet_v3_small": ({}, 64), "efficientnet_b0": ({}, 64),
    "squeezenet1_0": ({}, 64), "shufflenet_v2_x0_5": ({}, 64), "mnasnet0_5": ({}, 64),
    "regnet_x_400mf": ({}, 64), "googlenet": ({"aux_logits": False, "init_weights": False}, 64),
    "densenet121": ({}, 64), "convnext_tiny": ({}, 64), "vit_b_16": ({"image_size": 32}, 32),
}
SLOW = {"densenet121", "convnext_tiny"}


def _compare(name: str) -> None:
    kwargs, side = ZOO[name]
    torch.manual_seed(0)
    model = getattr(torchvision.models, name)(**kwargs).eval()
    x = torch.randn(1, 3, side, side)
    r = count(model, x)
    logging.disable(logging.WARNING)  # fvcore warns about every op it skips
    try:
        fa = fvcore.FlopCountAnalysis(model, x)
        fa.unsupported_ops_warnings(False)
        fa.uncalled_modules_warnings(False)
        theirs = dict(fa.by_operator())
        params = fvcore.parameter_count(model)[""]
    finally:
        logging.disable(logging.NOTSET)
    ours = {
        "conv": sum(c.macs for c in r.nodes if c.kind == "conv"),
        "linear": sum(c.macs for c in r.nodes if c.kind in ("linear", "matmul", "attention")),
        "norm": sum(c.flops for c in r.nodes if c.kind == "norm"),
        "adaptive_avg_pool2d": sum(c.flops for c in r.nodes if c.rule == "adaptive_pool"),
    }
    if name == "vit_b_16":  # fvcore skips scaled_dot_product_attention: the scores and weighted sums
        n, e, layers = 5, 768, 12  # 4 patches + the class token
        ours["linear"] -= layers * n * n * 2 * e
    theirs_linear = theirs.get("linear", 0) + theirs.get("addmm", 0) + theirs.get("matmul", 0)
    assert ours["conv"] == pytest.approx(theirs.get("conv", 0), rel=0.01), name
    assert ours["linear"] == pytest.approx(theirs_linear, rel=0.01), name
    theirs_norm = theirs.get("batch_norm", 0) + theirs.get("layer_norm", 0) + theirs.get("group_norm", 0)
    assert ours["norm"] == pytest.approx(theirs_norm, rel=0.01), name
    if "adaptive_avg_pool2d" in theirs:
        assert ours["adaptive_avg_pool2d"] == pytest.approx(theirs["adaptive_avg_pool2d"], rel=0.01), name
    assert r.total()["params"] == params, name
    assert r.uncounted() == [], name


@pytest.mark.parametrize("name", [n for n in ZOO if n not in SLOW])
def test_agrees_with_fvcore(name: str) -> None:
    _compare(name)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(SLOW))
def test_agrees_with_fvcore_larger_models(name: str) -> None:
    _compare(name)
