"""searchify(): trace → rewrite → construct, the one-call way to make a supernet."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch.fx as fx
from torch import nn

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
) -> fx.GraphModule:
    """Turn an unmodified model into a supernet: every ``pattern`` match becomes a mixed op over ``candidates``."""
    if example_inputs is None:
        raise ValueError("searchify needs example_inputs (e.g. torch.randn(1, 3, 32, 32)) to read slot shapes")
    pat = resolve_pattern(pattern)
    gm = trace(model, example_inputs, leaf_modules=tuple(leaf_modules) + tuple(pat.leaf_types))
    rewrite(gm, pat)
    space = construct(gm, candidates, mixed_op=mixed_op, param_name=param_name, check=check,
                      mixed_op_args=mixed_op_args)
    return attach_space(gm, space)
