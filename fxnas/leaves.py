"""Leaf rules: which modules the tracer keeps as opaque ``call_module`` nodes instead of tracing through.

fx traces through every module that is not a torch.nn built-in, so a conv subclass with its own ``forward``
(timm ``Conv2dSame``, EfficientNet's ``Conv2dStaticSamePadding``, weight-standardised ``StdConv2d``) leaves
no ``call_module`` node a pattern could match, and one whose ``forward`` computes padding from the input size
cannot be traced at all. A leaf rule answers "keep this module whole?"; the tracer asks every rule in
``LEAF_RULES`` (users register their own) and fx's default last.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from torch import nn

from .errors import PatternError
from .linear_like import is_transposed_linear
from .registry import Registry

LEAF_RULES = Registry("leaf rule")

Selects = Callable[[nn.Module], bool]
"""The active pattern's module predicate: a leaf rule may keep a module only when the pattern wants it."""

# Layers patterns match by base class; a subclass of one of these with its own forward is still that layer.
LAYER_BASES: tuple[type, ...] = (
    nn.modules.conv._ConvNd, nn.Linear, nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm,
)


class LeafRule:
    """Base of leaf rules: ``is_leaf`` decides per module; ``autowrap_functions`` are kept as opaque calls."""

    def is_leaf(self, module: nn.Module, qualname: str, selects: Selects) -> bool:
        """True to keep ``module`` (at ``qualname``) as one ``call_module`` node."""
        raise NotImplementedError

    def autowrap_functions(self) -> tuple[Callable[..., Any], ...]:
        """Free functions fx should record as calls instead of tracing into (e.g. shape-dependent padding)."""
        return ()


def own_forward_base(module: nn.Module) -> type | None:
    """The torch layer ``module`` subclasses while overriding its ``forward`` (None for the layers themselves)."""
    cls = type(module)
    if cls.__module__.startswith("torch.nn"):
        return None
    for base in cls.__mro__[1:]:
        if base.__module__.startswith("torch.nn") and issubclass(base, LAYER_BASES):
            return base if cls.forward is not base.forward else None
    return None


@LEAF_RULES.register("layer_subclass")
class LayerSubclass(LeafRule):
    """Subclasses of conv/linear/norm layers with their own forward, kept whole when the pattern selects them."""

    def is_leaf(self, module: nn.Module, qualname: str, selects: Selects) -> bool:
        return own_forward_base(module) is not None and bool(selects(module))


@LEAF_RULES.register("linear_like")
class LinearLike(LeafRule):
    """Linear maps that are not an nn.Linear (Hugging Face's ``Conv1D``), kept whole when the pattern selects them.

    See ``fxnas.linear_like``."""

    def is_leaf(self, module: nn.Module, qualname: str, selects: Selects) -> bool:
        return is_transposed_linear(module) and bool(selects(module))


@LEAF_RULES.register("timm")
class TimmNotrace(LeafRule):
    """timm's own not-trace registry (``register_notrace_module`` / ``register_notrace_function``), if installed."""

    def __init__(self) -> None:
        self._modules: tuple[type, ...] = ()
        self._functions: tuple[Callable[..., Any], ...] = ()
        if "timm" not in sys.modules:  # a model built from timm's layers has imported it; don't pay the import
            return
        try:
            from timm.layers import _fx
        except ImportError:  # an old timm without the registry: the rule keeps nothing
            return
        self._modules = tuple(_fx.get_notrace_modules())
        self._functions = tuple(_fx.get_notrace_functions())

    def is_leaf(self, module: nn.Module, qualname: str, selects: Selects) -> bool:
        return bool(self._modules) and type(module) in self._modules

    def autowrap_functions(self) -> tuple[Callable[..., Any], ...]:
        return self._functions


LeafRuleLike = str | LeafRule


def resolve_leaf_rules(rules: Iterable[LeafRuleLike] | None) -> list[LeafRule]:
    """Leaf rules by name or instance; None means every registered rule (in name order)."""
    names: Sequence[LeafRuleLike] = LEAF_RULES.names() if rules is None else list(rules)
    out: list[LeafRule] = []
    for r in names:
        if isinstance(r, LeafRule):
            out.append(r)
            continue
        if not isinstance(r, str) or r not in LEAF_RULES:
            raise PatternError(f"leaf rule {r!r} is unknown: use a LeafRule or one of {', '.join(LEAF_RULES.names())}")
        out.append(LEAF_RULES.get(r)())
    return out


__all__ = ["LAYER_BASES", "LEAF_RULES", "LayerSubclass", "LeafRule", "LinearLike", "TimmNotrace", "own_forward_base",
           "resolve_leaf_rules"]
