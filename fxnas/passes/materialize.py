"""The materialize pass: the chosen subnet as a standalone GraphModule of plain torch ops."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import torch.fx as fx
from torch import nn

from ..choice import ChoiceModule
from ..compat import forget_tracer_class
from ..errors import FxnasError
from ..supernet import detach_space, iter_modules, replace_submodule, space_of
from .inline import inline_modules


def _is_fxnas(m: nn.Module) -> bool:
    return type(m).__module__.startswith("fxnas.")


def lower_choices(net: nn.Module) -> int:
    """Replace each outermost ChoiceModule by what its ``materialize()`` gives, in place; how many."""
    done: list[str] = []
    for path, choice in list(iter_modules(net, ChoiceModule)):
        if not path or any(path.startswith(d + ".") for d in done):
            continue  # the root, or inside a choice replaced in this round (its own inner choices come next)
        try:
            new = choice.materialize()
        except ValueError as exc:
            raise FxnasError(f"{path}: {exc}") from None
        replace_submodule(net, path, new)
        done.append(path)
    return len(done)


def materialize(supernet: fx.GraphModule, arch: Mapping[str, Any] | None = None) -> fx.GraphModule:
    """A standalone copy of ``supernet`` under ``arch`` (default: the arch its weights imply), no fxnas inside."""
    net = copy.deepcopy(supernet)
    space = space_of(net)
    space.apply(space.derive() if arch is None else arch)
    # nested choices (candidates holding slots) resolve outermost first, so repeat until none remain
    while lower_choices(net):
        pass
    detach_space(net)
    for sub in [m for m in net.modules() if isinstance(m, fx.GraphModule) and m is not net]:
        inline_modules(sub, strict=_is_fxnas)  # graphs nested in the subnet (chosen candidates) too
    inline_modules(net, strict=_is_fxnas)
    leftovers = [n for n, m in net.named_modules() if _is_fxnas(m)]
    if leftovers:
        raise FxnasError(f"materialize left fxnas modules at {leftovers[:5]}; they could not be traced")
    # the graph remembers fxnas's tracer class; pickles would then import fxnas, so use fx's own
    forget_tracer_class(net.graph)
    out = fx.GraphModule(net, net.graph, class_name="Subnet")
    out.train(supernet.training)
    return out
