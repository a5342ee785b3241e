"""The materialize pass: the chosen subnet as a standalone GraphModule of plain torch ops."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import torch.fx as fx
from torch import nn

from ..candidates.mixed import MixedOp
from ..choice import ChoiceModule
from ..errors import FxnasError
from ..supernet import detach_space, iter_modules, mixed_ops, replace_submodule, slots, space_of
from .inline import inline_modules


def _is_fxnas(m: nn.Module) -> bool:
    return type(m).__module__.startswith("fxnas.")


def lower_choices(net: fx.GraphModule) -> None:
    """Replace each mixed op by its chosen candidate (and each unlowered Slot by its original) in place."""
    for path, op in mixed_ops(net).items():
        if path and isinstance(op, MixedOp):
            try:
                net.get_submodule(path)
            except AttributeError:
                continue  # inside an already-replaced parent
            replace_submodule(net, path, op.chosen())
    for path, slot in slots(net).items():
        if slot.original is None:
            raise FxnasError(f"slot {path!r} was never lowered and has no original module")
        replace_submodule(net, path, slot.original)
    for path, choice in list(iter_modules(net, ChoiceModule)):
        if path and _at(net, path) is choice:  # not inside a choice replaced earlier in this round
            replace_submodule(net, path, choice.materialize())


def _at(net: nn.Module, path: str) -> nn.Module | None:
    try:
        return net.get_submodule(path)
    except AttributeError:
        return None


def materialize(supernet: fx.GraphModule, arch: Mapping[str, Any] | None = None) -> fx.GraphModule:
    """A standalone copy of ``supernet`` under ``arch`` (default: the arch its weights imply), no fxnas inside."""
    net = copy.deepcopy(supernet)
    space = space_of(net)
    space.apply(space.derive() if arch is None else arch)
    # nested mixed ops (candidates holding slots) resolve outermost first, so repeat until none remain
    while mixed_ops(net) or slots(net) or any(iter_modules(net, ChoiceModule)):
        lower_choices(net)
    detach_space(net)
    for sub in [m for m in net.modules() if isinstance(m, fx.GraphModule) and m is not net]:
        inline_modules(sub, strict=_is_fxnas)  # graphs nested in the subnet (chosen candidates) too
    inline_modules(net, strict=_is_fxnas)
    leftovers = [n for n, m in net.named_modules() if _is_fxnas(m)]
    if leftovers:
        raise FxnasError(f"materialize left fxnas modules at {leftovers[:5]}; they could not be traced")
    # the graph remembers fxnas's tracer class; pickles would then import fxnas, so use fx's own
    net.graph._tracer_cls = None
    out = fx.GraphModule(net, net.graph, class_name="Subnet")
    out.train(supernet.training)
    return out
