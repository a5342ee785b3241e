"""Layers that compute a linear map without being an ``nn.Linear``: Hugging Face's ``Conv1D`` (GPT-2, its
weight stored ``(in, out)``). The ``linear`` pattern matches them, the trace keeps them whole when selected, and
linear candidates (``LR{p}``, ``IDT``) read them through :func:`as_linear`.
"""

from __future__ import annotations

import torch
from torch import nn


def is_transposed_linear(module: nn.Module | None) -> bool:
    """True for Hugging Face's ``Conv1D``: ``x @ weight + bias`` with ``weight`` of shape ``(in, out)``."""
    if not isinstance(module, nn.Module):
        return False
    cls = type(module)
    w = module._parameters.get("weight")  # not getattr: under a tracer that proxies parameters it is a Proxy
    return cls.__name__ == "Conv1D" and cls.__module__.startswith("transformers.") and w is not None and w.dim() == 2


def is_linear_like(module: nn.Module | None) -> bool:
    """An ``nn.Linear`` (subclasses included) or a layer computing one (see the module docstring); False for
    None (a slot without an original)."""
    return isinstance(module, nn.Linear) or is_transposed_linear(module)


def as_linear(module: nn.Module | None) -> nn.Linear | None:
    """An ``nn.Linear`` computing what ``module`` computes: the module itself for a Linear, a copy of the weights
    for a transposed one, None for anything else (None included)."""
    if isinstance(module, nn.Linear):
        return module
    if not is_transposed_linear(module):
        return None
    w = module.weight.detach()
    bias = getattr(module, "bias", None)
    lin = nn.Linear(w.shape[0], w.shape[1], bias=bias is not None, device=w.device, dtype=w.dtype)
    with torch.no_grad():
        lin.weight.copy_(w.t())
        if bias is not None:
            lin.bias.copy_(bias.detach())
    return lin


__all__ = ["as_linear", "is_linear_like", "is_transposed_linear"]
