"""Elastic kernel: centre crops of the largest kernel through learned transformation matrices (OFA)."""

from __future__ import annotations

import torch
from torch import nn

from fxnas.elastic import ElasticConv, elastic_params, elasticize, largest
from fxnas.elastic.conv import sub_kernel

from .conftest import check_setting, prepared


def test_identity_transforms_give_the_centre_crop() -> None:
    w = torch.randn(4, 1, 7, 7)
    eye = nn.ParameterDict({"7to5": nn.Parameter(torch.eye(25)), "5to3": nn.Parameter(torch.eye(9))})
    assert torch.equal(sub_kernel(w, 3, [3, 5, 7], eye), w[..., 2:5, 2:5])
    assert torch.equal(sub_kernel(w, 5, [3, 5, 7], eye), w[..., 1:6, 1:6])
    assert sub_kernel(w, 7, [3, 5, 7], eye) is w


class StridedDW(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.pw = nn.Conv2d(3, 16, 1)
        self.bn = nn.BatchNorm2d(16)
        self.dw = nn.Conv2d(16, 16, 7, stride=2, padding=3, groups=16)
        self.valid = nn.Conv2d(16, 16, 3, groups=16)  # no padding: cropping would change the output size
        self.head = nn.Conv2d(16, 4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.valid(self.dw(torch.relu(self.bn(self.pw(x))))))


def test_learned_transforms_materialise_to_a_smaller_conv() -> None:
    x = torch.randn(2, 3, 16, 16)
    net = elasticize(prepared(StridedDW()), x, width=(0.5, 1.0), kernel=(3, 5, 7), divisor=4).eval()
    assert {k: p.choices for k, p in elastic_params(net, "kernel").items()} == {"kernel.dw": [3, 5, 7]}
    dw = net.get_submodule("dw")
    assert isinstance(dw, ElasticConv)
    with torch.no_grad():
        for m in dw.transforms.values():
            m.add_(torch.randn_like(m) * 0.1)  # as if trained: no longer a plain crop
    arch = {**largest(net), "kernel.dw": 3, "width.pw": 8}
    sub = check_setting(net, x, arch)
    conv = sub.get_submodule("dw")
    assert conv.kernel_size == (3, 3) and conv.padding == (1, 1) and conv.weight.shape == (8, 1, 3, 3)
    crop = dw.weight[:8, :, 2:5, 2:5]
    assert not torch.allclose(conv.weight, crop)
