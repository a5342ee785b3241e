"""searchify(): trace → rewrite → construct, the one-call way to make a supernet; build_supernet(): the one
function the config path (``fxnas search``) and space files (``fxnas searchify --out``) build supernets with."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
import torch.fx as fx
from torch import nn

from .errors import ConfigError
from .graph import trace
from .passes.construct import CandidatesLike, construct
from .passes.patterns import PatternLike, resolve_pattern
from .passes.rewrite import rewrite
from .slot import SlotSpec
from .supernet import attach_space


def searchify(
    model: nn.Module,
    pattern: PatternLike = "conv3x3",
    candidates: CandidatesLike = ("ORIG",),
    example_inputs: Any = None,
    mixed_op: str = "Index",
    param_name: Callable[[SlotSpec], str] | None = None,
    leaf_modules: Sequence[type] = (),
    mixed_op_args: Mapping[str, Any] | None = None,
    check: bool = True,
    concrete_args: Mapping[str, Any] | None = None,
    tracer: str | None = None,
) -> fx.GraphModule:
    """Turn an unmodified model into a supernet: every ``pattern`` match becomes a mixed op over ``candidates``.

    ``leaf_modules``, ``concrete_args`` (values for forward arguments that steer control flow) and ``tracer``
    go to ``fxnas.trace``."""
    if example_inputs is None:
        raise ValueError("searchify needs example_inputs (e.g. torch.randn(1, 3, 32, 32)) to read slot shapes")
    pat = resolve_pattern(pattern)
    gm = trace(model, example_inputs, leaf_modules=tuple(leaf_modules) + tuple(pat.leaf_types),
               leaf_predicate=pat.keeps_whole, selects=pat.selects,
               concrete_args=dict(concrete_args) if concrete_args else None, tracer=tracer)
    rewrite(gm, pat)
    space = construct(gm, candidates, mixed_op=mixed_op, param_name=param_name, check=check,
                      mixed_op_args=mixed_op_args)
    return attach_space(gm, space)


SHARING: dict[str, Callable[[SlotSpec], str] | None] = {
    "none": None,
    "all": lambda s: "shared",
    "shape": lambda s: f"c{s.in_channels}-{s.out_channels}-s{s.stride}",
}
"""How slots share params: none (one param per slot), all (one for every slot), shape (per in/out/stride)."""


def build_supernet(model: nn.Module, pattern: PatternLike, candidates: CandidatesLike, example_inputs: Any,
                   mixed_op: str = "Index", mixed_op_args: Mapping[str, Any] | None = None, share: str = "none",
                   check: bool = True, seed: int | None = None,
                   leaf_modules: Sequence[type] = (), concrete_args: Mapping[str, Any] | None = None,
                   tracer: str | None = None) -> fx.GraphModule:
    """searchify with the conventions every fxnas command shares: traced in eval mode (a trace must not
    update BatchNorm statistics, and batch-1 inputs are fine), the model's mode restored, candidate weights
    initialised under ``seed`` when given, params shared by ``share`` (see SHARING)."""
    if share not in SHARING:
        raise ConfigError(f"share must be one of {', '.join(SHARING)}, got {share!r}")
    if seed is not None:
        torch.manual_seed(seed)
    was = model.training
    model.eval()
    try:
        net = searchify(model, pattern=pattern, candidates=candidates, example_inputs=example_inputs,
                        mixed_op=mixed_op, param_name=SHARING[share], leaf_modules=leaf_modules,
                        mixed_op_args=mixed_op_args, check=check, concrete_args=concrete_args, tracer=tracer)
    finally:
        model.train(was)
    net.train(was)
    return net
