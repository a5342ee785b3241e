"""Patterns: which modules of a traced graph a rewrite pass turns into slots."""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.fx as fx
import torch.nn.functional as F
from torch import nn

from ..errors import PatternError
from ..linear_like import is_linear_like
from ..registry import Registry
from .blocks import is_inverted_residual, is_residual_block
from .subgraphs import AttentionPattern, FunctionalPattern, GraphPattern, act, chain, conv, linear, norm, norm_act

PATTERNS = Registry("pattern")


@dataclass
class Pattern:
    """A module-level pattern: a predicate on (module, node), plus module types to keep as trace leaves."""

    name: str
    predicate: Callable[[nn.Module, fx.Node], bool]
    leaf_types: tuple[type, ...] = field(default=())
    doc: str = ""
    whole: bool = False  # keep every module it selects as one trace leaf (block patterns)

    def selects(self, module: nn.Module) -> bool:
        """True when this pattern wants ``module`` (asked at trace time, before a graph exists)."""
        return isinstance(module, self.leaf_types) or bool(self.predicate(module, None))  # type: ignore[arg-type]

    def keeps_whole(self, module: nn.Module, qualname: str) -> bool:
        """The tracer's leaf predicate for this pattern: block patterns keep the blocks they select whole."""
        return self.whole and self.selects(module)

    def matches(self, gm: fx.GraphModule, node: fx.Node) -> bool:
        """True when ``node`` calls a module this pattern selects."""
        if node.op != "call_module":
            return False
        return bool(self.predicate(gm.get_submodule(node.target), node))


PatternLike = str | type | Pattern | GraphPattern | Callable[..., bool]


def _conv(m: nn.Module) -> bool:
    return isinstance(m, nn.Conv2d)


def _k(m: nn.Module) -> tuple[int, ...]:
    """The whole kernel (a 3x1 conv is not a 3x3 one)."""
    return tuple(m.kernel_size)


def register_pattern(name: str, doc: str, leaf_types: tuple[type, ...] = (), whole: bool = False) -> Callable[..., Any]:
    """Decorator registering ``fn(module) -> bool`` as a named Pattern (``whole``: keep matches as leaves)."""

    def deco(fn: Callable[[nn.Module], bool]) -> Callable[[nn.Module], bool]:
        PATTERNS.register(name, Pattern(name, lambda m, n: fn(m), leaf_types, doc, whole))
        return fn

    return deco


@register_pattern("conv", "any standard conv (groups == 1)")
def _any_conv(m: nn.Module) -> bool:
    return _conv(m) and m.groups == 1


@register_pattern("conv3x3", "3x3 standard convs (groups == 1)")
def _conv3(m: nn.Module) -> bool:
    return _conv(m) and m.groups == 1 and _k(m) == (3, 3)


@register_pattern("conv5x5", "5x5 standard convs (groups == 1)")
def _conv5(m: nn.Module) -> bool:
    return _conv(m) and m.groups == 1 and _k(m) == (5, 5)


@register_pattern("dwconv", "depthwise convs (groups == in_channels > 1)")
def _dw(m: nn.Module) -> bool:
    return _conv(m) and m.groups > 1 and m.groups == m.in_channels


@register_pattern("pwconv", "pointwise 1x1 convs (groups == 1)")
def _pw(m: nn.Module) -> bool:
    return _conv(m) and m.groups == 1 and _k(m) == (1, 1)


@register_pattern("conv1d", "1-D standard convs (nn.Conv1d, groups == 1), for sequence and signal models")
def _conv1d(m: nn.Module) -> bool:
    return isinstance(m, nn.Conv1d) and m.groups == 1


@register_pattern("dwconv1d", "1-D depthwise convs (nn.Conv1d, groups == in_channels > 1)")
def _dw1d(m: nn.Module) -> bool:
    return isinstance(m, nn.Conv1d) and m.groups > 1 and m.groups == m.in_channels


@register_pattern("linear", "nn.Linear layers, and layers computing one (Hugging Face's Conv1D)")
def _linear(m: nn.Module) -> bool:
    return is_linear_like(m)


@register_pattern("resnet_block", "residual blocks by structure: a shortcut added to a stack of 2+ convs",
                  whole=True)
def _resnet_block(m: nn.Module) -> bool:
    return is_residual_block(m)


@register_pattern("inverted_residual", "inverted-residual blocks by structure: [expand] -> depthwise -> project",
                  whole=True)
def _inverted_residual(m: nn.Module) -> bool:
    return is_inverted_residual(m)


PATTERNS.register("conv_bn_act", GraphPattern("conv_bn_act", (chain([conv, norm, act]), chain([conv, norm_act])),
                                               "conv -> norm -> activation, as modules or functional calls"))
PATTERNS.register("mlp", GraphPattern("mlp", (chain([linear, act, linear]),),
                                      "transformer MLPs: linear -> activation -> linear (dropout between)"))
PATTERNS.register("attention", AttentionPattern("attention", (), "self-attention blocks: q/k/v linears -> "
                                                                "SDPA or softmax(matmul) -> output linear"))
PATTERNS.register("fconv", FunctionalPattern("fconv", {F.conv1d, F.conv2d, F.conv3d},
                                             "functional convs (F.conv1d/2d/3d) with their weights"))
PATTERNS.register("flinear", FunctionalPattern("flinear", {F.linear}, "functional linears (F.linear) with weights"))
PATTERNS.register("matmul", FunctionalPattern("matmul", {torch.matmul, operator.matmul},
                                              "torch.matmul / @ calls (with a weight operand when there is one)"))

AnyPattern = Pattern | GraphPattern


def resolve_pattern(pattern: PatternLike | list[PatternLike]) -> AnyPattern:
    """Turn a name, module type, predicate or Pattern (or a list: any of them) into a Pattern."""
    if isinstance(pattern, (Pattern, GraphPattern)):
        return pattern
    if isinstance(pattern, (list, tuple)):
        parts = [resolve_pattern(p) for p in pattern]
        graph = [p.name for p in parts if isinstance(p, GraphPattern)]
        if graph and len(parts) > 1:
            raise PatternError(f"graph patterns ({', '.join(graph)}) cannot be combined with other patterns; "
                               f"rewrite with one, then the other (rewrite(gm, a); rewrite(gm, b))")
        if graph:
            return parts[0]
        leaves = tuple(t for p in parts for t in p.leaf_types)
        union = Pattern("|".join(p.name for p in parts), lambda m, n: any(p.predicate(m, n) for p in parts), leaves)
        union.keeps_whole = lambda m, q: any(p.keeps_whole(m, q) for p in parts)  # type: ignore[method-assign]
        return union
    if isinstance(pattern, str):
        if "," in pattern:
            return resolve_pattern([p.strip() for p in pattern.split(",") if p.strip()])
        try:
            return PATTERNS.get(pattern)
        except KeyError as e:
            raise PatternError(str(e)) from None
    if isinstance(pattern, type) and issubclass(pattern, nn.Module):
        return Pattern(pattern.__name__, lambda m, n: isinstance(m, pattern), (pattern,))
    if callable(pattern):
        return _callable_pattern(pattern)
    raise PatternError(
        f"pattern must be a name ({', '.join(PATTERNS.names())}), an nn.Module type, a predicate on a "
        f"module, or a callable on (GraphModule, Node); got {type(pattern).__name__}")


def _callable_pattern(fn: Callable[..., bool]) -> Pattern:
    import inspect

    try:
        positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        n_args = len([p for p in inspect.signature(fn).parameters.values()
                      if p.default is inspect.Parameter.empty and p.kind in positional])
    except (TypeError, ValueError):
        n_args = 1
    name = getattr(fn, "__name__", "predicate")
    if n_args >= 2:  # fn(gm, node): the pattern sees the graph
        pat = Pattern(name, lambda m, n: False)
        pat.matches = lambda gm, node: node.op == "call_module" and bool(fn(gm, node))  # type: ignore[method-assign]
        return pat
    return Pattern(name, lambda m, n: bool(fn(m)))
