"""Helpers on a supernet: a GraphModule that carries its SearchSpace as ``.space``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import torch.fx as fx
from torch import nn

from .compat import PRESERVED_ATTRIBUTES_KEY
from .errors import FxnasError
from .slot import Slot
from .space import SearchSpace

if TYPE_CHECKING:
    from .mixed.base import MixedOp


def attach_space(gm: fx.GraphModule, space: SearchSpace) -> fx.GraphModule:
    """Set ``gm.space`` so that it survives deepcopy (fx keeps user attributes listed in ``meta``)."""
    gm.space = space
    gm.meta.setdefault(PRESERVED_ATTRIBUTES_KEY, {})["space"] = space
    return gm


def detach_space(gm: fx.GraphModule) -> None:
    """Remove ``gm.space`` (a materialised subnet carries no search machinery)."""
    gm.meta.get(PRESERVED_ATTRIBUTES_KEY, {}).pop("space", None)
    if not gm.meta.get(PRESERVED_ATTRIBUTES_KEY, True):
        gm.meta.pop(PRESERVED_ATTRIBUTES_KEY)
    if "space" in gm.__dict__:
        del gm.__dict__["space"]


def space_of(gm: nn.Module) -> SearchSpace:
    """The SearchSpace of a supernet, or a clear error when ``gm`` is not one."""
    space = getattr(gm, "space", None)
    if not isinstance(space, SearchSpace):
        raise FxnasError(f"{type(gm).__name__} is not a supernet (no .space); build one with fxnas.searchify")
    return space


def replace_submodule(root: nn.Module, path: str, new: nn.Module) -> None:
    """Put ``new`` at dotted ``path`` inside ``root``."""
    parent_path, _, attr = path.rpartition(".")
    parent = root.get_submodule(parent_path) if parent_path else root
    setattr(parent, attr, new)


def iter_modules(gm: nn.Module, kind: type) -> Iterator[tuple[str, nn.Module]]:
    """(path, module) of every submodule that is an instance of ``kind``, outermost first."""
    for name, m in gm.named_modules():
        if isinstance(m, kind):
            yield name, m


def slots(gm: nn.Module) -> dict[str, Slot]:
    """Every Slot in ``gm`` by path."""
    return dict(iter_modules(gm, Slot))


def mixed_ops(gm: nn.Module) -> dict[str, MixedOp]:
    """Every MixedOp in ``gm`` by path."""
    from .mixed.base import MixedOp

    return dict(iter_modules(gm, MixedOp))
