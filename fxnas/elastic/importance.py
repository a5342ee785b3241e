"""Channel importance and the one-time reordering that puts each group's most important channels first.

The same permutation is applied to every member of a group (producers' output rows, pass-through layers'
per-channel tensors, consumers' input columns), so the network computes exactly what it did; afterwards
keeping the first ``k`` channels keeps the ``k`` most important ones.
"""

from __future__ import annotations

import torch
import torch.fx as fx
from torch import nn

from ..errors import ConfigError
from .groups import Group, Member

IMPORTANCE = ("l1", "bn", None)


def _input_l1(mod: nn.Module, inner: int) -> torch.Tensor:
    """L1 norm of a consumer's weights per input channel (of the full input)."""
    w = mod.weight.detach().abs()
    if isinstance(mod, nn.modules.conv._ConvNd):
        per = w.flatten(2).sum(2)  # (out, in / groups)
        g = mod.groups
        return per.reshape(g, per.shape[0] // g, per.shape[1]).sum(1).flatten()  # channel gi * in_g + j
    return w.sum(0).reshape(-1, inner).sum(1)


def importance(gm: fx.GraphModule, group: Group, how: str = "l1") -> torch.Tensor:
    """One score per channel of ``group``: L1 of the consumers' weights (``"l1"``, as OFA), or |gamma| of
    its BatchNorms (``"bn"``); a group without consumers (or norms) is scored by its producers' rows."""
    n = group.size
    score = torch.zeros(n)
    if how == "bn":
        for m in group.through:
            mod = gm.get_submodule(m.path)
            if isinstance(mod, nn.modules.batchnorm._BatchNorm) and mod.weight is not None:
                for o in m.offsets:
                    score += mod.weight.detach().abs()[o:o + n].cpu()
        if score.any():
            return score
    for m in group.consumers:
        vec = _input_l1(gm.get_submodule(m.path), m.inner).cpu()
        for o in m.offsets:
            score += vec[o:o + n]
    if not group.consumers:
        for m in group.producers:
            rows = gm.get_submodule(m.path).weight.detach().abs().flatten(1).sum(1).cpu()
            for o in m.offsets:
                score += rows[o:o + n]
    return score


def _permute(t: torch.Tensor | None, dim: int, start: int, n: int, perm: torch.Tensor, inner: int = 1) -> None:
    if t is None:
        return
    with torch.no_grad():
        part = t.narrow(dim, start * inner, n * inner)
        moved = part.unflatten(dim, (n, inner)).index_select(dim, perm.to(t.device)).flatten(dim, dim + 1)
        part.copy_(moved)


_PER_CHANNEL = ("weight", "bias", "running_mean", "running_var")


def _apply(mod: nn.Module, m: Member, n: int, perm: torch.Tensor) -> None:
    if m.role == "out":
        for o in m.offsets:
            _permute(mod.weight, 0, o, n, perm)
            _permute(getattr(mod, "bias", None), 0, o, n, perm)
    elif m.role == "through":
        for o in m.offsets:
            for name in _PER_CHANNEL:
                t = getattr(mod, name, None)
                if isinstance(t, torch.Tensor):
                    _permute(t, 0, o, n, perm, m.inner)
    elif isinstance(mod, nn.modules.conv._ConvNd):
        width = mod.in_channels // mod.groups
        for o in sorted({o % width for o in m.offsets}):  # every group's columns hold the same channels
            _permute(mod.weight, 1, o, n, perm)
    else:
        for o in m.offsets:
            _permute(mod.weight, 1, o, n, perm, m.inner)


def reorder(gm: fx.GraphModule, groups: list[Group], how: str | None = "l1") -> None:
    """Permute each group's channels in place so that the most important come first (function unchanged)."""
    if how not in IMPORTANCE:
        raise ConfigError(f"importance must be one of {IMPORTANCE}, got {how!r}")
    if how is None:
        return
    for g in groups:
        perm = torch.argsort(importance(gm, g, how), descending=True, stable=True)
        for m in g.members:
            _apply(gm.get_submodule(m.path), m, g.size, perm)
