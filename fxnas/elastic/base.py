"""The base of elastic modules: they read their params' values when they run and know their cost."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import torch
from torch import nn

from ..choice import ChoiceModule
from ..space import Param


class ElasticModule(ChoiceModule):
    """An op whose size follows search-space params; ``cost`` gives what its materialised op would cost."""

    def __init__(self) -> None:
        super().__init__()
        self.space_params: dict[str, Param] = {}  # the shared Param objects this op reads

    def use(self, *params: Param) -> None:
        """Read these params (kept by reference: ``space.apply`` changes what this op computes)."""
        for p in params:
            self.space_params[p.name] = p

    def values(self) -> dict[str, Any]:
        """The current value of every param this op reads."""
        return {k: p.value for k, p in self.space_params.items()}

    def cost(self, values: Mapping[str, Any]) -> tuple[int, int]:
        """(parameters, multiply-accumulates per sample) of the materialised op at ``values``."""
        raise NotImplementedError

    def active_children(self, values: Mapping[str, Any]) -> Iterable[nn.Module]:
        """Submodules that run (and cost) at ``values``, besides this op itself."""
        return ()


def take(t: torch.Tensor | None, dim: int, ranges: list[tuple[int, int]]) -> torch.Tensor | None:
    """The kept ``ranges`` of ``t`` along ``dim``: a view when they are one range, else a concatenation."""
    if t is None:
        return None
    if len(ranges) == 1:
        lo, hi = ranges[0]
        return t if lo == 0 and hi == t.shape[dim] else t.narrow(dim, lo, hi - lo)
    return torch.cat([t.narrow(dim, lo, hi - lo) for lo, hi in ranges], dim)


def put(t: torch.Tensor, dim: int, ranges: list[tuple[int, int]], src: torch.Tensor) -> None:
    """Write ``src`` (as ``take`` gave it) back into ``ranges`` of ``t`` (for buffers updated on a copy)."""
    pos = 0
    for lo, hi in ranges:
        t.narrow(dim, lo, hi - lo).copy_(src.narrow(dim, pos, hi - lo))
        pos += hi - lo
