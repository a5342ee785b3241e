"""elasticize(): any sampled width/kernel/depth setting materialises to a plain net equal to the supernet."""

from __future__ import annotations

import pytest
import torch
import torchvision
from conftest import assert_close
from torch import nn

import fxnas
from fxnas.elastic import ElasticConv, ElasticModule, elastic_params, elasticize, largest, smallest
from fxnas.errors import ConfigError
from fxnas.modelfile import load_model

from .conftest import check_setting, prepared
from .user_models import SENet, SplitNet

TINY = fxnas.__file__.replace("__init__.py", "examples/tiny_net.py")
USER = {"split": SplitNet, "se": SENet, "tiny": lambda: load_model(TINY)}
TORCHVISION = ["resnet18", "mobilenet_v2", "resnet50", "efficientnet_b0", "mobilenet_v3_large"]
SLOW = {"resnet50", "efficientnet_b0", "mobilenet_v3_large"}
SETTING = {"width": (0.25, 0.5, 0.75, 1.0), "kernel": (3, 5, 7), "depth": (0, 1, 2)}


def _model(name: str) -> nn.Module:
    if name in USER:
        return prepared(USER[name]())
    return prepared(getattr(torchvision.models, name)(num_classes=10))


def _cases(slow: set[str]) -> list:
    out = [pytest.param(n, id=n) for n in USER]
    out += [pytest.param(n, id=n, marks=[pytest.mark.slow] if n in slow else []) for n in TORCHVISION]
    return out


@pytest.mark.parametrize("name", _cases(SLOW))
def test_settings_materialise_to_the_supernet(name: str) -> None:
    model = _model(name)
    x = torch.randn(2, 3, 32, 32)
    net = elasticize(model, x, divisor=4, **SETTING).eval()
    kinds = {p.kind for p in elastic_params(net).values()}
    assert {"width", "depth"} <= kinds
    net.space.apply(largest(net))
    with torch.no_grad():
        assert_close(net(x), model(x))  # reordered channels, full width: the original function
    full = check_setting(net, x, largest(net))
    assert sum(p.numel() for p in full.parameters()) == sum(p.numel() for p in model.parameters())
    small = check_setting(net, x, smallest(net))
    assert sum(p.numel() for p in small.parameters()) < sum(p.numel() for p in model.parameters()) / 2
    for seed in range(2):
        check_setting(net, x, net.space.sample(seed))


@pytest.mark.parametrize("name", _cases(SLOW | {"resnet18"}))  # onnxsim takes seconds per torchvision model
def test_materialised_subnet_exports_to_onnx(name: str, tmp_path) -> None:
    x = torch.randn(2, 3, 32, 32)
    net = elasticize(_model(name), x, divisor=4, **SETTING).eval()
    check_setting(net, x, net.space.sample(7), onnx_dir=tmp_path)


def test_kernel_elastic_on_depthwise_convs_only_by_default() -> None:
    net = elasticize(prepared(SENet()), torch.randn(2, 3, 32, 32), kernel=(3, 5, 7))
    kernels = elastic_params(net, "kernel")
    assert set(kernels) == {f"kernel.blocks.{i}.dw.0" for i in range(3)}  # the 5x5 depthwise convs
    assert all(p.choices == [3, 5] for p in kernels.values())
    allk = elasticize(prepared(SplitNet()), torch.randn(2, 3, 16, 16), kernel=(3,), kernel_layers="all")
    assert set(elastic_params(allk, "kernel")) == {"kernel.b", "kernel.dw"}  # the same-padded 5x5 convs


def test_width_choices_ratios_counts_and_groups() -> None:
    x = torch.randn(2, 3, 32, 32)
    model = prepared(SENet())
    ratios = elastic_params(elasticize(model, x, width=(0.5, 1.0)), "width")
    assert ratios["width.blocks.0.expand.0"].choices == [32, 64]
    counts = elastic_params(elasticize(model, x, width=[20, 1000]), "width")
    assert counts["width.blocks.0.expand.0"].choices == [24, 64]  # rounded to 8, capped at the group size
    exp = elastic_params(elasticize(model, x, width=(0.5, 1.0), groups="expansion"), "width")
    assert set(exp) == {f"width.{b}.expand.0" for b in ("blocks.0", "blocks.1", "blocks.2", "down", "more.0",
                                                          "more.1")}
    picked = elastic_params(elasticize(model, x, width=(0.5, 1.0), groups=["down.project.0"]), "width")
    assert set(picked) == {"width.down.project.0"}
    pred = elastic_params(elasticize(model, x, width=(0.5, 1.0), groups=lambda g: g.size == 16), "width")
    assert set(pred) == {"width.stem.0", "width.blocks.0.se1", "width.blocks.1.se1", "width.blocks.2.se1",
                         "width.down.se1"}


@pytest.mark.parametrize("kwargs, match", [
    ({"width": (1.5,)}, "ratio 1.5 is above 1"),
    ({"width": "half"}, "width must be"),
    ({"kernel": (3.0,)}, "kernel must be"),
    ({"width": (0.5, 1.0), "groups": ["head"]}, "cannot shrink: model output"),
    ({"width": (0.5, 1.0), "groups": ["nope"]}, "'nope' produces no channel group"),
    ({"importance": "l2", "width": (0.5, 1.0)}, "importance must be one of"),
])
def test_bad_arguments_give_one_line_errors(kwargs: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match) as err:
        elasticize(SENet(), torch.randn(1, 3, 16, 16), **kwargs)
    assert "\n" not in str(err.value)


def test_an_elastic_supernet_is_not_elasticized_again() -> None:
    net = elasticize(SENet(), torch.randn(1, 3, 16, 16), width=(0.5, 1.0))
    with pytest.raises(ConfigError, match="elastic already"):
        elasticize(net, torch.randn(1, 3, 16, 16), width=(0.5, 1.0))


def test_kept_channels_are_the_most_important_and_weights_are_views() -> None:
    model = prepared(SENet())
    net = elasticize(model, torch.randn(2, 3, 32, 32), width=(0.5, 1.0))
    conv = net.get_submodule("blocks.1.project.0")
    assert isinstance(conv, ElasticConv)
    # the expansion's consumers are the projection and the squeeze: their input-channel L1 now descends
    l1 = sum(net.get_submodule(f"blocks.1.{c}").weight.detach().abs().sum((0, 2, 3)) for c in ("project.0", "se1"))
    assert torch.all(l1[:-1] >= l1[1:])
    net.space.apply({"width.blocks.1.expand.0": 32})
    w, *_ = conv.active_weight(conv.values())
    assert w.shape[1] == 32 and w.data_ptr() == conv.weight.data_ptr()  # a view of the full weight


def test_supernet_trains_at_a_setting() -> None:
    net = elasticize(SENet(), torch.randn(4, 3, 16, 16), width=(0.5, 1.0), kernel=(3, 5), depth=(0, 1)).train()
    net.space.apply(smallest(net))
    bn = net.get_submodule("blocks.0.branch.expand.1")
    before = bn.running_mean.clone()
    net(torch.randn(4, 3, 16, 16)).sum().backward()
    kept = net.space["width.blocks.0.expand.0"].value
    assert not torch.equal(bn.running_mean[:kept], before[:kept])
    assert torch.equal(bn.running_mean[kept:], before[kept:])  # statistics of dropped channels untouched
    dw = net.get_submodule("blocks.0.branch.dw.0")
    assert dw.transforms["5to3"].grad is not None and dw.weight.grad[kept:].abs().sum() == 0
    assert all(isinstance(m, ElasticModule) for m in (bn, dw))


class Roll(nn.Module):
    """A parameter-free user op that moves pixels, traced as a leaf."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.roll(x, 1, dims=3)


class Scaled(nn.Module):
    """A user op with a per-channel parameter and no elastic version."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.s = nn.Parameter(torch.rand(c) + 0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.s.view(1, -1, 1, 1)


class UserOps(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.c1, self.roll, self.c2 = nn.Conv2d(3, 16, 3), Roll(), nn.Conv2d(16, 16, 3)
        self.scaled, self.head = Scaled(16), nn.Conv2d(16, 4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.scaled(self.c2(self.roll(self.c1(x)))))


def test_user_leaf_ops_with_rules() -> None:
    from fxnas.elastic import CHANNEL_RULES

    rules = CHANNEL_RULES.child()
    rules.register("Roll", obj=lambda ctx: ctx.through(ctx.channels(0, dim=1)))
    rules.register("Scaled", obj=lambda ctx: ctx.through(ctx.channels(0, dim=1)))
    x = torch.randn(2, 3, 12, 12)
    net = elasticize(UserOps(), x, width=(0.5, 1.0), rules=rules, leaf_modules=[Roll, Scaled]).eval()
    # Roll holds nothing per channel: its group shrinks; Scaled's parameter has no elastic version
    assert set(elastic_params(net, "width")) == {"width.c1"}
    check_setting(net, x, smallest(net))
