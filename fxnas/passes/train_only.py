"""Training-only parts of a subnet: DropPath after each searched op, and removing auxiliary outputs.

DropPath (FractalNet / DARTS's augment stage, ModularNAS's DropPath constructor) zeroes a searched op's output
for whole samples with probability ``rate`` and scales the rest by ``1 / (1 - rate)``. ``add_drop_path`` puts
one call after every mixed op of a supernet whose chosen candidate computes something (not an identity or a
zero op), reading the rate from one buffer, so a trainer can change it per epoch; ``materialize`` keeps the
calls (they are plain function calls, not modules) and ``remove_drop_path`` takes them out again before the
subnet is exported. It is meant for cell spaces, where each slot is an edge summed into a node (DARTS): on a
chain of convs a dropped op would drop the whole feature map.

``remove_auxiliary_outputs`` keeps the first output of a model that returns ``(logits, aux_logits, ...)`` and
deletes what only the others needed (an auxiliary head).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import torch
import torch.fx as fx
from torch import nn

from ..supernet import mixed_ops, space_of

RATE = "drop_path_rate"  # the buffer holding the rate


def drop_path(x: torch.Tensor, rate: torch.Tensor) -> torch.Tensor:
    """``x`` with each sample zeroed with probability ``rate`` and the others scaled by ``1 / (1 - rate)``;
    unchanged while the rate is 0 (evaluation)."""
    p = float(rate)
    if p <= 0.0:
        return x
    keep = 1.0 - p
    mask = torch.empty((x.shape[0],) + (1,) * (x.dim() - 1), dtype=x.dtype, device=x.device).bernoulli_(keep)
    return x * mask / keep


def _computes(candidate: nn.Module) -> bool:
    from ..candidates.ops import Zero

    return not isinstance(candidate, (nn.Identity, Zero))


def add_drop_path(supernet: fx.GraphModule, arch: Mapping[str, Any]) -> tuple[fx.GraphModule, int]:
    """(a copy of ``supernet`` with ``arch`` applied and a drop_path call after every mixed op whose chosen
    candidate computes something, how many calls); the rate starts at 0 (see set_drop_path)."""
    net = copy.deepcopy(supernet)
    space_of(net).apply(arch)
    ops = mixed_ops(net)
    net.register_buffer(RATE, torch.zeros(()))
    graph = net.graph
    first = next(n for n in graph.nodes if n.op != "placeholder")
    with graph.inserting_before(first):
        rate = graph.get_attr(RATE)
    count = 0
    for node in list(graph.nodes):
        if node.op == "call_module" and node.target in ops and _computes(ops[node.target].chosen()):
            with graph.inserting_after(node):
                dropped = graph.call_function(drop_path, (node, rate))
            node.replace_all_uses_with(dropped, delete_user_cb=lambda user, new=dropped: user is not new)
            count += 1
    graph.lint()
    net.recompile()
    return net, count


def set_drop_path(net: nn.Module, rate: float) -> None:
    """Set the drop-path rate of a module made by add_drop_path (0 turns it off)."""
    net.get_buffer(RATE).fill_(float(rate))


def remove_drop_path(gm: fx.GraphModule) -> fx.GraphModule:
    """Take every drop_path call (and the rate buffer) out of ``gm``, in place."""
    for node in list(gm.graph.nodes):
        if node.op == "call_function" and node.target is drop_path:
            node.replace_all_uses_with(node.args[0])
            gm.graph.erase_node(node)
    for node in list(gm.graph.nodes):
        if node.op == "get_attr" and node.target == RATE and not node.users:
            gm.graph.erase_node(node)
    if RATE in gm._buffers:
        del gm._buffers[RATE]
    gm.graph.lint()
    gm.recompile()
    return gm


def has_auxiliary_outputs(gm: fx.GraphModule) -> bool:
    """True when ``gm`` returns a tuple or list (logits first, then auxiliary outputs)."""
    out = next(n for n in gm.graph.nodes if n.op == "output")
    return isinstance(out.args[0], (tuple, list))


def remove_auxiliary_outputs(gm: fx.GraphModule) -> fx.GraphModule:
    """Keep only the first output of ``gm`` and delete the ops and modules the others alone used, in place."""
    out = next(n for n in gm.graph.nodes if n.op == "output")
    if isinstance(out.args[0], (tuple, list)):
        out.args = (out.args[0][0],)
        gm.graph.eliminate_dead_code()
        gm.delete_all_unused_submodules()
        gm.graph.lint()
        gm.recompile()
    return gm
