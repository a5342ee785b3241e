"""``profile``: params, MACs/FLOPs by op kind and memory of a module, from the static counter's totals."""

from __future__ import annotations

from typing import Any

from torch import nn

from ..registry import Registry
from .counter import count
from .rules import COST_RULES


def profile(module: nn.Module, example_inputs: Any, rules: Registry = COST_RULES) -> dict[str, Any]:
    """params, MACs, FLOPs (total and by op kind), memory read/written and activation bytes of ``module``.

    ``params`` counts the parameters the traced graph uses (a supernet: the current arch's), ``total_params``
    all of the module's; ``uncounted`` lists ops no cost rule claims. ``fxnas.profilers.counter.count`` gives
    the same per node.
    """
    return count(module, example_inputs, rules).summary()
