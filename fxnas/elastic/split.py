"""Elastic split: a split or chunk of the channel axis whose piece sizes follow the widths."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from .base import ElasticModule
from .layout import Channels


class ElasticSplit(ElasticModule):
    """``torch.split`` of the channel axis into pieces of the kept sizes of each piece's channels."""

    def __init__(self, dim: int, pieces: list[Channels]) -> None:
        super().__init__()
        self.dim, self.pieces = dim, pieces

    def sizes(self, values: Mapping[str, Any]) -> list[int]:
        """Piece sizes along the axis at ``values``."""
        return [p.count(values) * p.inner for p in self.pieces]

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return torch.split(x, self.sizes(self.values()), self.dim)

    def materialize(self) -> nn.Module:
        """A split with the current sizes as constants (inlined into the subnet's graph)."""
        return FixedSplit(self.sizes(self.values()), self.dim)

    def cost(self, values: Mapping[str, Any]) -> tuple[int, int]:
        return 0, 0


class FixedSplit(nn.Module):
    """``torch.split(x, sizes, dim)`` with constant sizes; traced into plain graph ops by materialize."""

    def __init__(self, sizes: list[int], dim: int) -> None:
        super().__init__()
        self.sizes, self.dim = list(sizes), dim

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return torch.split(x, self.sizes, self.dim)
