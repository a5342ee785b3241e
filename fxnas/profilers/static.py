"""Static metrics from the fx graph: params, MACs/FLOPs per op kind, activation memory (total and peak)."""

from __future__ import annotations

import math
import operator
from collections import defaultdict
from typing import Any

import torch
import torch.fx as fx
import torch.nn.functional as F
from torch import nn

from ..graph import as_tuple, trace

# FLOP conventions: a multiply-add is 1 MAC and 2 FLOPs; bias, norm, pooling and elementwise ops cost
# FLOPs only (1 per output element, 2 for an eval-mode norm's scale and shift), as fvcore / ptflops count.
_ADD_MUL = {operator.add, operator.iadd, operator.sub, operator.isub, operator.mul, operator.imul,
            operator.truediv, operator.itruediv, torch.add, torch.sub, torch.mul, torch.div}
_ADD_MUL_METHODS = {"add", "add_", "sub", "sub_", "mul", "mul_", "div", "div_"}
_MATMUL = {operator.matmul, torch.matmul, torch.mm, torch.bmm}
_ACT_FUNCS = {F.relu, torch.relu, F.relu6, F.hardswish, F.hardsigmoid, F.silu, F.gelu, torch.sigmoid, F.sigmoid,
              torch.tanh, F.softmax, torch.softmax}
_ACT_METHODS = {"relu", "relu_", "sigmoid", "sigmoid_", "tanh", "softmax"}
_POOL_FUNCS = {F.adaptive_avg_pool2d, F.adaptive_max_pool2d, F.avg_pool2d, F.max_pool2d, torch.mean,
               F.adaptive_avg_pool1d}
_POOL_METHODS = {"mean", "sum", "amax", "max"}


def _numel(v: Any) -> int:
    return v.numel() if isinstance(v, torch.Tensor) else 0


def _bytes(v: Any) -> int:
    if isinstance(v, torch.Tensor):
        return v.numel() * v.element_size()
    if isinstance(v, (tuple, list)):
        return sum(_bytes(x) for x in v)
    if isinstance(v, dict):
        return sum(_bytes(x) for x in v.values())
    return 0


def _tensors(args: Any) -> list[torch.Tensor]:
    out: list[torch.Tensor] = []
    for a in args:
        if isinstance(a, torch.Tensor):
            out.append(a)
        elif isinstance(a, (tuple, list)):
            out += _tensors(a)
    return out


def op_cost(kind: Any, module: nn.Module | None, args: tuple[Any, ...], out: Any) -> tuple[str, int, int]:
    """(kind label, MACs, FLOPs) of one op; ``kind`` is a callable target or a method name."""
    ins = _tensors(args)
    n_out = _numel(out)
    m = module
    if isinstance(m, nn.modules.conv._ConvNd) or kind in (F.conv1d, F.conv2d, F.conv3d):
        # the weight's shape (cout, cin/groups, *k) already accounts for groups
        w = m.weight if m is not None else args[1]
        bias = (m.bias is not None) if m is not None else (len(args) > 2 and args[2] is not None)
        if isinstance(m, nn.modules.conv._ConvTransposeNd):
            macs = _numel(ins[0]) * w.shape[1] * math.prod(w.shape[2:])
        else:
            macs = n_out * w.shape[1] * math.prod(w.shape[2:])  # w: (cout, cin/groups, *k)
        return "conv", macs, 2 * macs + (n_out if bias else 0)
    if isinstance(m, nn.Linear) or kind is F.linear:
        w = m.weight if m is not None else args[1]
        bias = (m.bias is not None) if m is not None else (len(args) > 2 and args[2] is not None)
        macs = n_out * w.shape[1]
        return "linear", macs, 2 * macs + (n_out if bias else 0)
    if kind in _MATMUL or kind in ("matmul", "bmm", "mm"):
        macs = n_out * ins[0].shape[-1] if ins else 0
        return "matmul", macs, 2 * macs
    if isinstance(m, (nn.modules.batchnorm._BatchNorm, nn.LayerNorm, nn.GroupNorm,
                      nn.modules.instancenorm._InstanceNorm)) or kind in (F.batch_norm, F.layer_norm, F.group_norm):
        return "norm", 0, 2 * n_out
    if isinstance(m, (nn.modules.pooling._MaxPoolNd, nn.modules.pooling._AvgPoolNd,
                      nn.modules.pooling._AdaptiveAvgPoolNd, nn.modules.pooling._AdaptiveMaxPoolNd)) \
            or kind in _POOL_FUNCS or kind in _POOL_METHODS:
        if isinstance(m, (nn.modules.pooling._MaxPoolNd, nn.modules.pooling._AvgPoolNd)):
            k = m.kernel_size if isinstance(m.kernel_size, (tuple, list)) else (m.kernel_size,) * (ins[0].dim() - 2)
            return "pool", 0, n_out * math.prod(k)
        return "pool", 0, _numel(ins[0]) if ins else 0  # a reduction reads each input element once
    if kind in _ADD_MUL or kind in _ADD_MUL_METHODS:
        return ("elementwise", 0, n_out) if ins else ("other", 0, 0)
    if kind in _ACT_FUNCS or kind in _ACT_METHODS or (m is not None and type(m).__module__ ==
                                                      "torch.nn.modules.activation"):
        return "activation", 0, n_out
    return "other", 0, 0


class _Counter(fx.Interpreter):
    """Runs the graph and tallies each node's cost and output size."""

    def __init__(self, gm: fx.GraphModule) -> None:
        super().__init__(gm)
        self.macs: dict[str, int] = defaultdict(int)
        self.flops: dict[str, int] = defaultdict(int)
        self.out_bytes: dict[fx.Node, int] = {}

    def run_node(self, n: fx.Node) -> Any:
        out = super().run_node(n)
        if n.op in ("call_module", "call_function", "call_method"):
            args, _ = self.fetch_args_kwargs_from_env(n)
            mod = self.module.get_submodule(n.target) if n.op == "call_module" else None
            label, macs, flops = op_cost(n.target, mod, args, out)
            self.macs[label] += macs
            self.flops[label] += flops
            self.out_bytes[n] = _bytes(out)
        return out


def _peak(gm: fx.GraphModule, sizes: dict[fx.Node, int]) -> int:
    """Peak bytes of live node outputs when the graph runs in order and frees values after their last use."""
    last_use: dict[fx.Node, fx.Node] = {}
    for n in gm.graph.nodes:
        for a in n.all_input_nodes:
            last_use[a] = n
    frees: dict[fx.Node, list[fx.Node]] = defaultdict(list)
    for v, n in last_use.items():
        frees[n].append(v)
    live = peak = 0
    for n in gm.graph.nodes:
        live += sizes.get(n, 0)
        peak = max(peak, live)
        for v in frees[n]:
            live -= sizes.get(v, 0)
    return peak


def used_parameters(gm: fx.GraphModule) -> list[torch.Tensor]:
    """The distinct parameters the graph's nodes use (a supernet's unchosen candidates are left out)."""
    seen: dict[int, torch.Tensor] = {}
    for n in gm.graph.nodes:
        if n.op == "call_module":
            for p in gm.get_submodule(n.target).parameters():
                seen[id(p)] = p
        elif n.op == "get_attr":
            v = gm
            for part in n.target.split("."):
                v = getattr(v, part)
            if isinstance(v, nn.Parameter):
                seen[id(v)] = v
    return list(seen.values())


def profile(module: nn.Module, example_inputs: Any) -> dict[str, Any]:
    """params, MACs, FLOPs (total and by op kind) and activation bytes of ``module`` on ``example_inputs``."""
    args = as_tuple(example_inputs)
    gm = trace(module, args)  # a fresh copy traced through custom modules; mixed ops follow the current arch
    gm.eval()
    counter = _Counter(gm)
    with torch.no_grad():
        counter.run(*args)
    params = used_parameters(gm)
    return {
        "params": sum(p.numel() for p in params),
        "total_params": sum(p.numel() for p in module.parameters()),
        "macs": sum(counter.macs.values()),
        "flops": sum(counter.flops.values()),
        "macs_by_kind": {k: v for k, v in counter.macs.items() if v},
        "flops_by_kind": {k: v for k, v in counter.flops.items() if v},
        "activation_bytes": sum(counter.out_bytes.values()),
        "peak_activation_bytes": _peak(gm, counter.out_bytes),
        "input_bytes": sum(_bytes(a) for a in args),
    }
