"""Elastic params (width, kernel, depth) and the helpers that pick their choices and extreme settings."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from torch import nn

from ..errors import ConfigError
from ..space import Categorical, SearchSpace
from ..supernet import space_of

KINDS = ("width", "kernel", "depth")


class ElasticParam(Categorical):
    """A Categorical over sizes of one elastic dimension: channel counts, kernel sizes or blocks that run.

    Choices are ascending integers and the default is the largest, so a fresh supernet computes what the
    original model computes.
    """

    def __init__(self, name: str, choices: Sequence[int], kind: str) -> None:
        if kind not in KINDS:
            raise ConfigError(f"elastic param kind must be one of {KINDS}, got {kind!r}")
        values = sorted({int(c) for c in choices})
        super().__init__(name, values, default=values[-1])
        self.kind = kind

    def __repr__(self) -> str:
        return f"ElasticParam({self.name!r}, {self.kind}, {self.choices})"


def make_divisible(v: float, divisor: int) -> int:
    """``v`` rounded to the nearest multiple of ``divisor`` (at least ``divisor``, never below 90 % of ``v``)."""
    out = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return out + divisor if out < 0.9 * v else out


WidthLike = Sequence[float | int] | Callable[[Any], Sequence[int]]


def width_choices(group: Any, width: WidthLike, divisor: int) -> list[int]:
    """Channel counts a group may keep: ratios (floats) of its size or counts (ints), rounded to ``divisor``;
    a callable gets the group and returns counts as they are. Counts are capped at the group's size."""
    size = group.size
    if callable(width):
        counts = [int(c) for c in width(group)]
    else:
        counts = []
        for w in width:
            if isinstance(w, bool) or not isinstance(w, (int, float)) or w <= 0:
                raise ConfigError(f"width choices are ratios in (0, 1] or channel counts, got {w!r}")
            if isinstance(w, float) and w > 1:
                raise ConfigError(f"width ratio {w} is above 1; give ratios in (0, 1] or integer channel counts")
            counts.append(size if w == 1.0 and isinstance(w, float) else
                          make_divisible(w * size if isinstance(w, float) else w, divisor))
    if any(c < 1 for c in counts):
        raise ConfigError(f"group {group.name!r}: channel counts must be positive, got {counts}")
    return sorted({min(c, size) for c in counts})


def kernel_choices(size: int, kernel: Sequence[int]) -> list[int]:
    """Kernel sizes a conv of kernel ``size`` may run: those of ``kernel`` up to ``size`` with its parity, and
    ``size`` itself (the largest setting is the original conv)."""
    for k in kernel:
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ConfigError(f"kernel choices are positive odd integers, got {k!r}")
    return sorted({k for k in kernel if k <= size and k % 2 == size % 2} | {size})


def _space(target: nn.Module | SearchSpace) -> SearchSpace:
    return target if isinstance(target, SearchSpace) else space_of(target)


def elastic_params(target: nn.Module | SearchSpace, kind: str | None = None) -> dict[str, ElasticParam]:
    """The elastic params of a supernet (or space), optionally of one kind."""
    return {k: p for k, p in _space(target).items()
            if isinstance(p, ElasticParam) and (kind is None or p.kind == kind)}


def largest(target: nn.Module | SearchSpace) -> dict[str, Any]:
    """The arch with every elastic param at its largest choice (other params keep their current value)."""
    space = _space(target)
    return {**space.current(), **{k: p.choices[-1] for k, p in elastic_params(space).items()}}


def smallest(target: nn.Module | SearchSpace) -> dict[str, Any]:
    """The arch with every elastic param at its smallest choice (other params keep their current value)."""
    space = _space(target)
    return {**space.current(), **{k: p.choices[0] for k, p in elastic_params(space).items()}}
