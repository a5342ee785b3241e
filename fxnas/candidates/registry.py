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
    return CANDIDATES.get(name)(spec)


_LAYOUTS = {1: "3-D NCL", 2: "4-D NCHW", 3: "5-D NCDHW"}


def require_conv_spec(name: str, spec: SlotSpec, dims: tuple[int, ...] = (2,)) -> tuple[int, int, int]:
    """(in, out, stride) of a slot with ``dims`` spatial dims, or ShapeError saying what the candidate needs."""
    nd = len(spec.in_shape) - 2 if spec.in_shape is not None else None
    if nd not in dims or spec.in_channels is None or spec.out_channels is None:
        need = " or ".join(_LAYOUTS[d] for d in dims)
        raise ShapeError(
            f"candidate {name} needs a {need} slot, but slot {spec.name!r} has input shape {spec.in_shape}; "
            f"use shape-agnostic candidates (ORIG, IDT, NIL) or a conv pattern")
    return spec.in_channels, spec.out_channels, spec.stride


def conv_dims(spec: SlotSpec) -> int:
    """Spatial dimensions of a conv slot (1 for NCL, 2 for NCHW)."""
    return len(spec.in_shape) - 2 if spec.in_shape is not None else 2


def odd_kernel(name: str, k: str | int) -> int:
    """The kernel size in a candidate name (``NC3``: 3), refused unless odd in 1..13 ('same' padding needs odd)."""
    v = int(k)
    if v < 1 or v > 13 or v % 2 == 0:
        raise RegistryError(f"candidate {name}: kernel size {v} is not valid; use an odd kernel in 1..13 "
                            f"(e.g. {name.replace(str(k), '3', 1)})")
    return v


def expansion(name: str, e: str | int) -> int:
    """The expansion ratio in a candidate name (``MB3E6``: 6), refused below 1."""
    v = int(e)
    if v < 1:
        raise RegistryError(f"candidate {name}: expansion ratio {v} is not valid; use E1 or more (e.g. MB3E6)")
    return v
