"""Slot: the placeholder a rewrite pass puts where a matched module was, with what that module needed."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import torch
from torch import nn

from .choice import ChoiceModule
from .linear_like import as_linear


@dataclass
class SlotSpec:
    """What the replaced module needed: channels, stride, kernel, groups, dilation and shapes."""

    in_channels: int | None = None
    out_channels: int | None = None
    stride: int = 1
    kernel_size: int | None = None
    groups: int = 1
    dilation: int = 1
    in_shape: tuple[int, ...] | None = None
    out_shape: tuple[int, ...] | None = None
    original: nn.Module | None = field(default=None, repr=False, compare=False)
    name: str = ""
    bias: bool = False
    inputs: tuple[str, ...] = ()  # graph slots: the original graph's nodes feeding the subgraph
    outputs: tuple[str, ...] = ()  # ... and the nodes it produced

    def with_(self, **changes: Any) -> SlotSpec:
        """A copy with some fields changed (e.g. a cell edge with a different stride)."""
        return replace(self, **changes)

    @property
    def spatial_out(self) -> tuple[int, ...]:
        """Output spatial size (H, W), or () for non-spatial slots."""
        return tuple(self.out_shape[2:]) if self.out_shape and len(self.out_shape) > 2 else ()

    def describe(self) -> dict[str, Any]:
        """The spec as plain data (for tables and space files), without the original module."""
        return {
            "in_channels": self.in_channels,
            "out_channels": self.out_channels,
            "stride": self.stride,
            "kernel_size": self.kernel_size,
            "groups": self.groups,
            "dilation": self.dilation,
            "in_shape": list(self.in_shape) if self.in_shape else None,
            "out_shape": list(self.out_shape) if self.out_shape else None,
            "original": type(self.original).__name__ if self.original is not None else None,
            **({"inputs": list(self.inputs), "outputs": list(self.outputs)} if self.inputs else {}),
        }


def _pair0(v: Any) -> int:
    return int(v[0]) if isinstance(v, (tuple, list)) else int(v)


def spec_from_module(
    module: nn.Module, in_shape: tuple[int, ...] | None, out_shape: tuple[int, ...] | None, name: str = ""
) -> SlotSpec:
    """Read a SlotSpec off a module and the shapes around it (convs, linears, or any module by shape)."""
    cin = in_shape[1] if in_shape and len(in_shape) > 1 else None
    cout = out_shape[1] if out_shape and len(out_shape) > 1 else None
    lin = as_linear(module)
    if lin is not None:
        cin, cout = lin.in_features, lin.out_features
    spec = SlotSpec(in_channels=cin, out_channels=cout, in_shape=in_shape, out_shape=out_shape,
                    original=module, name=name)
    if isinstance(module, nn.modules.conv._ConvNd):
        spec.in_channels, spec.out_channels = module.in_channels, module.out_channels
        spec.stride = _pair0(module.stride)
        spec.kernel_size = _pair0(module.kernel_size)
        spec.groups = module.groups
        spec.dilation = _pair0(module.dilation)
        spec.bias = module.bias is not None
    elif lin is not None:
        spec.bias = lin.bias is not None
    elif in_shape and out_shape and len(in_shape) == 4 and len(out_shape) == 4 and out_shape[2]:
        spec.stride = max(1, in_shape[2] // out_shape[2])
    return spec


class Slot(ChoiceModule):
    """A placeholder for a searchable position; runs its original module until a constructor lowers it.

    Example::

        >>> import torch, fxnas
        >>> from torch import nn
        >>> gm = fxnas.trace(nn.Sequential(nn.Conv2d(3, 8, 3, padding=1)), torch.randn(1, 3, 8, 8))
        >>> _ = fxnas.rewrite(gm, "conv3x3")
        >>> spec = fxnas.slots(gm)["0"].spec
        >>> (spec.in_channels, spec.out_channels, spec.kernel_size, spec.stride, spec.out_shape)
        (3, 8, 3, 1, (1, 8, 8, 8))
    """

    def __init__(self, spec: SlotSpec) -> None:
        super().__init__()
        self.spec = spec
        self.original = spec.original

    def forward(self, *args: torch.Tensor, **kwargs: Any) -> Any:
        if self.original is None:
            raise RuntimeError(f"slot {self.spec.name!r} has no original module; lower it with a constructor")
        return self.original(*args, **kwargs)

    def materialize(self) -> nn.Module:
        """The original module (a slot no constructor lowered stands for what it replaced)."""
        if self.original is None:
            raise ValueError(f"slot {self.spec.name!r} was never lowered and has no original module")
        return self.original

    def extra_repr(self) -> str:
        s = self.spec
        return (f"{s.name!r}, in={s.in_shape}, out={s.out_shape}, stride={s.stride}, "
                f"kernel={s.kernel_size}, groups={s.groups}")
