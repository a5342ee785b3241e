"""The candidate registry: every candidate op is built from a SlotSpec alone."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from ..errors import RegistryError, ShapeError
from ..registry import Registry
from ..slot import SlotSpec

CANDIDATES = Registry("candidate")

Builder = Callable[[SlotSpec], nn.Module]


def build_candidate(name: str, spec: SlotSpec) -> nn.Module:
    """Build candidate ``name`` for ``spec``; an unknown name raises with the valid names."""
    try:
        builder = CANDIDATES.get(name)
    except RegistryError:
        raise
    return builder(spec)


def require_conv_spec(name: str, spec: SlotSpec) -> tuple[int, int, int]:
    """(in, out, stride) of a 4-D (NCHW) slot, or ShapeError saying the candidate needs one."""
    if spec.in_shape is None or len(spec.in_shape) != 4 or spec.in_channels is None or spec.out_channels is None:
        raise ShapeError(
            f"candidate {name} needs a 4-D NCHW slot, but slot {spec.name!r} has input shape {spec.in_shape}; "
            f"use shape-agnostic candidates (ORIG, IDT, NIL) or a conv pattern")
    return spec.in_channels, spec.out_channels, spec.stride
