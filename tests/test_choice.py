"""The ChoiceModule contract: materialize() replaces every one, outermost first, with its plain module."""

from __future__ import annotations

import torch
from torch import nn

import fxnas
from fxnas.choice import ChoiceModule
from fxnas.space import Categorical, SearchSpace


class Scale(ChoiceModule):
    """Multiplies by the current value of a param; materialises to a fixed 1x1 conv."""

    def __init__(self, param: Categorical) -> None:
        super().__init__()
        self.param = param

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.param.value

    def materialize(self) -> nn.Module:
        conv = nn.Conv2d(1, 1, 1, bias=False)
        with torch.no_grad():
            conv.weight.fill_(self.param.value)
        return conv


class Host(nn.Module):
    def __init__(self, param: Categorical) -> None:
        super().__init__()
        self.scale = Scale(param)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale(x) + 1


def test_materialize_lowers_choice_modules() -> None:
    space = SearchSpace()
    param = space.add(Categorical("k", [2.0, 3.0]))
    gm = torch.fx.GraphModule(Host(param), _leaf_graph())  # Scale called as one op, as a pass would leave it
    fxnas.attach_space(gm, space)
    sub = fxnas.materialize(gm, {"k": 3.0})
    assert isinstance(sub.get_submodule("scale"), nn.Conv2d) and param.value == 2.0
    x = torch.ones(1, 1, 2, 2)
    assert torch.equal(sub(x), torch.full((1, 1, 2, 2), 4.0))


def _leaf_graph() -> torch.fx.Graph:
    g = torch.fx.Graph()
    x = g.placeholder("x")
    y = g.call_module("scale", (x,))
    g.output(g.call_function(torch.add, (y, 1)))
    return g
