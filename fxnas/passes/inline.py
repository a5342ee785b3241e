"""Inline pass: replace calls to non-torch modules by the traced ops of their forward."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.fx as fx
from torch import nn

from ..supernet import replace_submodule


def _is_torch_module(m: nn.Module) -> bool:
    mod = type(m).__module__
    return mod.startswith("torch.nn") or mod.startswith("torch.ao.nn") or isinstance(m, fx.GraphModule) \
        and type(m).__module__.startswith("torch.fx")


def default_should_inline(m: nn.Module) -> bool:
    """Inline every module whose class is not a torch one (fxnas candidates, user or torchvision blocks)."""
    return not _is_torch_module(m) or isinstance(m, nn.Sequential)


def _container_from(sub: fx.GraphModule) -> nn.Module:
    box = nn.Module()
    for k, v in sub.named_children():
        box.add_module(k, v)
    for k, v in sub.named_parameters(recurse=False):
        box.register_parameter(k, v)
    for k, v in sub.named_buffers(recurse=False):
        box.register_buffer(k, v)
    for k, v in vars(sub).items():  # get_attr targets that are plain tensor attributes
        if isinstance(v, torch.Tensor) and not hasattr(box, k):
            box.register_buffer(k, v)
    return box


def inline_modules(gm: fx.GraphModule, should_inline: Callable[[nn.Module], bool] = default_should_inline,
                   strict: Callable[[nn.Module], bool] = lambda m: True) -> fx.GraphModule:
    """Inline matching call_module nodes (recursively) in place; modules ``strict`` rejects may stay on failure.

    A module called more than once (a positional encoding shared by blocks) is traced once and inlined at every
    call, so that its weights stay shared.
    """
    changed = True
    while changed:
        changed = False
        inlined: set[fx.Node] = set()
        for node in list(gm.graph.nodes):
            if node.op != "call_module" or node in inlined:
                continue  # (an earlier call of the same module inlined this one too)
            mod = gm.get_submodule(node.target)
            if not should_inline(mod):
                continue
            try:
                sub = fx.GraphModule(mod, fx.Tracer().trace(mod))
            except Exception:
                if strict(mod):
                    raise
                continue
            calls = [n for n in gm.graph.nodes if n.op == "call_module" and n.target == node.target]
            for call in calls:
                _splice(gm, call, sub)
            inlined.update(calls)
            replace_submodule(gm, node.target, _container_from(sub))
            changed = True
    gm.graph.lint()
    gm.recompile()
    return gm


def _splice(gm: fx.GraphModule, node: fx.Node, sub: fx.GraphModule) -> None:
    prefix = node.target
    placeholders = [n for n in sub.graph.nodes if n.op == "placeholder"]
    val_map: dict[fx.Node, object] = {}
    for i, ph in enumerate(placeholders):
        if i < len(node.args):
            val_map[ph] = node.args[i]
        elif ph.name in node.kwargs:
            val_map[ph] = node.kwargs[ph.name]
        elif ph.target in node.kwargs:
            val_map[ph] = node.kwargs[ph.target]
        else:
            val_map[ph] = ph.args[0] if ph.args else None  # default value
    before = set(gm.graph.nodes)
    with gm.graph.inserting_before(node):
        out = gm.graph.graph_copy(sub.graph, val_map)
    for n in gm.graph.nodes:
        if n not in before and n.op in ("call_module", "get_attr"):
            n.target = f"{prefix}.{n.target}"
    node.replace_all_uses_with(out)
    gm.graph.erase_node(node)
