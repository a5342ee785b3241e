"""Structural keys: equal keys mean the same computation on the same input shapes (weights' values aside)."""

from __future__ import annotations

import hashlib
from typing import Any

import torch
import torch.fx as fx
from torch import nn

_PLAIN = (bool, int, float, str, type(None))


def _plain(v: Any) -> bool:
    if isinstance(v, (tuple, list)):
        return all(_plain(x) for x in v)
    return isinstance(v, _PLAIN)


def module_signature(module: nn.Module) -> str:
    """Every submodule's type, plain attributes (which steer ``forward``, e.g. a stride or a residual flag,
    even when ``repr`` leaves them out), parameter/buffer shapes and a GraphModule's code, as one string."""
    parts = []
    for name, m in module.named_modules():
        attrs = sorted((k, repr(v)) for k, v in vars(m).items() if not k.startswith("_") and _plain(v))
        tensors = [(k, tuple(t.shape), str(t.dtype)) for k, t in
                   list(m._parameters.items()) + list(m._buffers.items()) if t is not None]
        parts.append(f"{name}:{type(m).__module__}.{type(m).__qualname__}{attrs}{tensors}")
        if isinstance(m, fx.GraphModule):  # its forward is its graph: functional ops are in the code only
            parts.append(m.code)
    return "\n".join(parts)


def input_signature(args: Any) -> str:
    """Shapes and dtypes of tensor inputs (``1x3x32x32``), reprs of the rest."""
    if isinstance(args, torch.Tensor):
        return "x".join(map(str, args.shape)) + ("" if args.dtype == torch.float32 else f":{args.dtype}")
    if isinstance(args, (tuple, list)):
        return "(" + ",".join(input_signature(a) for a in args) + ")"
    return repr(args)


def structure_key(module: nn.Module, args: Any) -> str:
    """``<module type>:<hash of its signature>@<input shapes>``: a short key for caches and tables."""
    digest = hashlib.sha1(module_signature(module).encode()).hexdigest()[:16]
    return f"{type(module).__qualname__}:{digest}@{input_signature(args)}"
