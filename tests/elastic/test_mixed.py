"""An elastic supernet over a searchify supernet: op choices and elastic width/kernel/depth in one space."""

from __future__ import annotations

import pytest
import torch
import torchvision
from conftest import assert_close, randomize_bn

import fxnas
from fxnas.elastic import ElasticParam, elastic_params, elasticize, largest
from fxnas.modelfile import load_model
from fxnas.space import Categorical
from fxnas.supernet import mixed_ops

from .conftest import check_setting, prepared

TINY = fxnas.__file__.replace("__init__.py", "examples/tiny_net.py")


def _searchified(model: torch.nn.Module, candidates: list[str], x: torch.Tensor) -> torch.fx.GraphModule:
    sup = fxnas.searchify(model, "conv3x3", candidates, example_inputs=x)
    for op in mixed_ops(sup).values():  # new candidates get random BN statistics too; ORIG keeps the model's
        for name, cand in op.candidates.items():
            if name != "ORIG":
                randomize_bn(cand, seed=1)
    return sup.eval()


@pytest.mark.parametrize("name, candidates", [("tiny", ["ORIG", "MB3E3", "DW5", "IDT"]),
                                              ("resnet18", ["ORIG", "DW3"])])
def test_op_choice_and_elastic_width_share_one_space(name: str, candidates: list[str], tmp_path) -> None:
    model = prepared(load_model(TINY) if name == "tiny" else torchvision.models.resnet18(num_classes=10))
    x = torch.randn(2, 3, 32 if name == "tiny" else 16, 32 if name == "tiny" else 16)
    sup = _searchified(model, candidates, x)
    net = elasticize(sup, x, width=(0.5, 0.75, 1.0), kernel=(3, 5), depth=(0, 1), divisor=4).eval()
    ops = {k for k, p in net.space.items() if not isinstance(p, ElasticParam) and isinstance(p, Categorical)}
    assert ops == set(sup.space.discrete())  # searchify's params stay, next to the elastic ones
    assert elastic_params(net, "width") and all(len(mixed_ops(net)[p].candidates) == len(candidates)
                                                for p in mixed_ops(net) if p)
    orig = {**largest(net), **{k: "ORIG" for k in ops}}
    net.space.apply(orig)
    with torch.no_grad():
        assert_close(net(x), model(x))
    check_setting(net, x, orig)
    for seed in range(2):
        arch = net.space.sample(seed)
        check_setting(net, x, arch, onnx_dir=tmp_path if seed == 0 and name == "tiny" else None)
    # a candidate's own layers became elastic: the MB block's hidden width follows the slot's input group
    if name == "tiny":
        inner = [p for p in elastic_params(net, "width") if ".candidates.MB3E3." in p]
        assert inner, "the MB3E3 candidates' expansions should be elastic groups"
