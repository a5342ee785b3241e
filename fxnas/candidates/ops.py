"""Basic candidates: conv-bn-relu (NC), depthwise-separable (DW), identity (IDT), zero (NIL), original (ORIG)."""

from __future__ import annotations

import copy

import torch
from torch import nn

from ..linear_like import is_linear_like
from ..slot import SlotSpec
from .registry import CANDIDATES, conv_dims, odd_kernel, require_conv_spec

CONV = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
BATCHNORM = {1: nn.BatchNorm1d, 2: nn.BatchNorm2d, 3: nn.BatchNorm3d}
GENERIC_DIMS = (1, 2, 3)  # spatial dims the NC / DW / MB / IDT candidates support


def conv_bn(cin: int, cout: int, k: int, stride: int = 1, groups: int = 1, dilation: int = 1,
            act: type[nn.Module] | None = nn.ReLU, dim: int = 2) -> nn.Sequential:
    """Conv (same padding, no bias) + BatchNorm (+ activation) over ``dim`` spatial dims, as plain torch modules."""
    layers: list[nn.Module] = [
        CONV[dim](cin, cout, k, stride, padding=dilation * (k // 2), dilation=dilation, groups=groups, bias=False),
        BATCHNORM[dim](cout),
    ]
    if act is not None:
        layers.append(act())
    return nn.Sequential(*layers)


def relu_conv_bn(cin: int, cout: int, k: int = 1, stride: int = 1) -> nn.Sequential:
    """ReLU → Conv kxk (same padding, no bias) → BatchNorm: DARTS preprocessing, NB201's ``nor_conv_kxk``."""
    return nn.Sequential(nn.ReLU(inplace=False), nn.Conv2d(cin, cout, k, stride, k // 2, bias=False),
                         nn.BatchNorm2d(cout))


@CANDIDATES.register_family(r"NC(\d+)", "NC3")
def _nc(k: str):
    odd_kernel(f"NC{k}", k)

    def build(spec: SlotSpec) -> nn.Module:
        cin, cout, s = require_conv_spec(f"NC{k}", spec, GENERIC_DIMS)
        return conv_bn(cin, cout, int(k), s, dim=conv_dims(spec))

    return build


@CANDIDATES.register_family(r"DW(\d+)", "DW3")
def _dw(k: str):
    odd_kernel(f"DW{k}", k)

    def build(spec: SlotSpec) -> nn.Module:
        cin, cout, s = require_conv_spec(f"DW{k}", spec, GENERIC_DIMS)
        d = conv_dims(spec)
        return nn.Sequential(conv_bn(cin, cin, int(k), s, groups=cin, dim=d), conv_bn(cin, cout, 1, act=None, dim=d))

    return build


class Zero(nn.Module):
    """Zeros of the slot's output shape (batch taken from the input): the NIL candidate."""

    def __init__(self, out_shape: tuple[int, ...]) -> None:
        super().__init__()
        self.tail = tuple(int(d) for d in out_shape[1:])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.new_zeros((x.shape[0],) + self.tail)


@CANDIDATES.register("NIL")
def nil(spec: SlotSpec) -> nn.Module:
    """Zeros of the output shape."""
    if spec.out_shape is None:
        raise ValueError(f"NIL needs the output shape of slot {spec.name!r}; trace with example inputs")
    return Zero(spec.out_shape)


@CANDIDATES.register("IDT")
def identity(spec: SlotSpec) -> nn.Module:
    """Identity when shapes allow, else a strided 1x1 projection (or a Linear on the last dim for linear slots).

    A linear slot (an ``nn.Linear`` of any input rank, or any 2-D slot) acts on the last dim, so its projection
    is a Linear there too: a ViT's ``(N, tokens, C)`` input keeps its token axis.
    """
    if spec.in_shape == spec.out_shape:
        return nn.Identity()
    if is_linear_like(spec.original) or (spec.in_shape is not None and len(spec.in_shape) == 2):
        return nn.Linear(spec.in_channels, spec.out_channels, bias=False)
    cin, cout, s = require_conv_spec("IDT", spec, GENERIC_DIMS)
    return conv_bn(cin, cout, 1, s, act=None, dim=conv_dims(spec))


@CANDIDATES.register("ORIG")
def original(spec: SlotSpec) -> nn.Module:
    """The original module with its weights (a copy)."""
    if spec.original is None:
        raise ValueError(f"slot {spec.name!r} has no original module for ORIG")
    return copy.deepcopy(spec.original)
