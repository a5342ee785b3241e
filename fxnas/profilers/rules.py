"""Cost rules: how one op kind counts MACs and FLOPs, registered in ``COST_RULES`` (users add their own).

A rule claims module types, functions and method names; the counter (``fxnas.profilers.counter``) asks the
rule of each fx node for its MACs and FLOPs. Memory read and written is counted for every node the same way
(bytes of tensor inputs, weights and outputs), so rules only say whether their output is a view (``alias``).

Conventions: a multiply-add is 1 MAC and 2 FLOPs; bias, norm, pooling and elementwise ops cost FLOPs only
(1 per output element; 2 for an eval-mode norm's scale and shift; a pooling window's size per output).
"""

from __future__ import annotations

import math
import operator
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import RegistryError
from ..registry import Registry

COST_RULES = Registry("cost rule")


@dataclass
class OpCall:
    """One executed node as a rule sees it: the module (call_module) or target, and the actual values."""

    target: Any
    module: nn.Module | None
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    out: Any

    def tensors(self) -> list[torch.Tensor]:
        """Tensor arguments, positional then keyword, nested lists flattened."""
        return _tensors(list(self.args) + list(self.kwargs.values()))

    def arg(self, i: int, name: str, default: Any = None) -> Any:
        """Argument ``i`` by position, else by keyword ``name``."""
        if len(self.args) > i:
            return self.args[i]
        return self.kwargs.get(name, default)

    @property
    def out_numel(self) -> int:
        """Elements of the output (all tensors of a tuple output)."""
        return sum(t.numel() for t in _tensors([self.out]))


@dataclass(frozen=True)
class OpCount:
    """MACs and FLOPs of one op."""

    macs: int = 0
    flops: int = 0


def _tensors(values: Iterable[Any]) -> list[torch.Tensor]:
    out: list[torch.Tensor] = []
    for v in values:
        if isinstance(v, torch.Tensor):
            out.append(v)
        elif isinstance(v, (tuple, list)):
            out += _tensors(v)
        elif isinstance(v, dict):
            out += _tensors(v.values())
    return out


class CostRule:
    """Base of every cost rule: what it claims (``modules``, ``functions``, ``methods``) and ``count``.

    ``kind`` labels the op in breakdowns (``macs_by_kind``); ``alias`` says the output is a view of the first
    input (no memory written, free for latency tables). A module rule applies to subclasses too; the most
    derived registered type wins.
    """

    kind: str = "other"
    name: str = ""  # the registry name, set when the rules are indexed
    modules: tuple[type, ...] = ()
    functions: tuple[Callable[..., Any], ...] = ()
    methods: tuple[str, ...] = ()
    alias: bool = False

    def count(self, call: OpCall) -> OpCount:
        """MACs and FLOPs of ``call``."""
        return OpCount()


@COST_RULES.register("conv")
class ConvRule(CostRule):
    """Convolutions: MACs = output elements x (in channels / groups) x kernel size; transposed: per input."""

    kind = "conv"
    modules = (nn.modules.conv._ConvNd,)
    functions = (F.conv1d, F.conv2d, F.conv3d, F.conv_transpose1d, F.conv_transpose2d, F.conv_transpose3d)

    def count(self, call: OpCall) -> OpCount:
        m = call.module
        w = m.weight if m is not None else call.arg(1, "weight")
        bias = m.bias if m is not None else call.arg(2, "bias")
        transposed = isinstance(m, nn.modules.conv._ConvTransposeNd) or call.target in (
            F.conv_transpose1d, F.conv_transpose2d, F.conv_transpose3d)
        x = call.tensors()[0]
        # weight: (cout, cin/groups, *k), transposed (cin, cout/groups, *k)
        macs = (x.numel() if transposed else call.out_numel) * w.shape[1] * math.prod(w.shape[2:])
        return OpCount(macs, 2 * macs + (call.out_numel if bias is not None else 0))


@COST_RULES.register("linear")
class LinearRule(CostRule):
    """Fully connected layers: MACs = output elements x in features."""

    kind = "linear"
    modules = (nn.Linear,)
    functions = (F.linear,)

    def count(self, call: OpCall) -> OpCount:
        m = call.module
        w = m.weight if m is not None else call.arg(1, "weight")
        bias = m.bias if m is not None else call.arg(2, "bias")
        macs = call.out_numel * w.shape[-1]
        return OpCount(macs, 2 * macs + (call.out_numel if bias is not None else 0))


@COST_RULES.register("matmul")
class MatmulRule(CostRule):
    """Matrix products: MACs = output elements x the contracted size."""

    kind = "matmul"
    functions = (operator.matmul, torch.matmul, torch.mm, torch.bmm)
    methods = ("matmul", "mm", "bmm", "__matmul__")

    def count(self, call: OpCall) -> OpCount:
        ins = call.tensors()
        macs = call.out_numel * ins[0].shape[-1] if ins else 0
        return OpCount(macs, 2 * macs)


@COST_RULES.register("addmm")
class AddmmRule(CostRule):
    """``torch.addmm``/``baddbmm``: a product of the 2nd and 3rd arguments plus the 1st."""

    kind = "matmul"
    functions = (torch.addmm, torch.baddbmm)
    methods = ("addmm", "baddbmm")

    def count(self, call: OpCall) -> OpCount:
        ins = call.tensors()
        macs = call.out_numel * ins[1].shape[-1] if len(ins) > 1 else 0
        return OpCount(macs, 2 * macs + call.out_numel)


@COST_RULES.register("attention")
class AttentionRule(CostRule):
    """Attention: ``nn.MultiheadAttention`` (projections, scores, weighted sum) and its functional core.

    ``F.scaled_dot_product_attention`` counts the scores and the weighted sum only.
    """

    kind = "attention"
    modules = (nn.MultiheadAttention,)
    functions = (F.scaled_dot_product_attention,)

    def count(self, call: OpCall) -> OpCount:
        q, k, v = call.tensors()[:3]
        if call.module is None:  # (..., L, E) x (..., S, E) -> (..., L, S) -> (..., L, Ev)
            batch = math.prod(q.shape[:-2])
            macs = batch * q.shape[-2] * k.shape[-2] * (q.shape[-1] + v.shape[-1])
            return OpCount(macs, 2 * macs + batch * q.shape[-2] * k.shape[-2])  # + the softmax
        m = call.module
        seq_dim = 1 if m.batch_first else 0
        n_q, n_k = q.shape[seq_dim], k.shape[seq_dim]
        batch = q.numel() // (n_q * q.shape[-1])
        e = m.embed_dim
        proj = batch * (n_q * e * q.shape[-1] + n_k * e * (k.shape[-1] + v.shape[-1]) + n_q * e * e)
        attn = batch * n_q * n_k * 2 * e
        bias = batch * (2 * n_q + 2 * n_k) * e if m.in_proj_bias is not None else 0
        return OpCount(proj + attn, 2 * (proj + attn) + bias + batch * m.num_heads * n_q * n_k)


@COST_RULES.register("batch_norm")
class BatchNormRule(CostRule):
    """Batch norm: 2 FLOPs (scale and shift) per output element, as in eval mode (1 without affine)."""

    kind = "norm"
    modules = (nn.modules.batchnorm._BatchNorm,)
    functions = (F.batch_norm,)

    def count(self, call: OpCall) -> OpCount:
        affine = call.module.affine if call.module is not None else call.arg(3, "weight") is not None
        return OpCount(0, (2 if affine else 1) * call.out_numel)


@COST_RULES.register("norm")
class NormRule(CostRule):
    """Layer/group/instance norm: 5 FLOPs per element with affine parameters, 4 without.

    Their statistics are computed at inference too: mean, variance, normalise, scale, shift.
    """

    kind = "norm"
    modules = (nn.LayerNorm, nn.GroupNorm, nn.modules.instancenorm._InstanceNorm)
    functions = (F.layer_norm, F.group_norm, F.instance_norm)

    def count(self, call: OpCall) -> OpCount:
        m = call.module
        if m is not None:
            affine = bool(getattr(m, "elementwise_affine", getattr(m, "affine", False)))
        else:  # F.instance_norm(input, running_mean, running_var, weight, ...); the others: (input, _, weight)
            affine = call.arg(3 if call.target is F.instance_norm else 2, "weight") is not None
        return OpCount(0, (5 if affine else 4) * call.out_numel)


def _window(k: Any, dims: int) -> int:
    return math.prod(k) if isinstance(k, (tuple, list)) else int(k) ** dims


@COST_RULES.register("pool")
class PoolRule(CostRule):
    """Windowed pooling: the window's size per output element."""

    kind = "pool"
    modules = (nn.modules.pooling._MaxPoolNd, nn.modules.pooling._AvgPoolNd)
    functions = (F.max_pool1d, F.max_pool2d, F.max_pool3d, F.avg_pool1d, F.avg_pool2d, F.avg_pool3d)

    def count(self, call: OpCall) -> OpCount:
        x = call.tensors()[0]
        k = call.module.kernel_size if call.module is not None else call.arg(1, "kernel_size")
        return OpCount(0, call.out_numel * _window(k, max(x.dim() - 2, 1)))


@COST_RULES.register("adaptive_pool")
class AdaptivePoolRule(CostRule):
    """Adaptive pooling: one FLOP per input element read."""

    kind = "reduce"
    modules = (nn.modules.pooling._AdaptiveAvgPoolNd, nn.modules.pooling._AdaptiveMaxPoolNd)
    functions = (F.adaptive_avg_pool1d, F.adaptive_avg_pool2d, F.adaptive_avg_pool3d, F.adaptive_max_pool1d,
                 F.adaptive_max_pool2d, F.adaptive_max_pool3d)

    def count(self, call: OpCall) -> OpCount:
        ins = call.tensors()
        return OpCount(0, ins[0].numel() if ins else 0)


@COST_RULES.register("reduce")
class ReduceRule(AdaptivePoolRule):
    """Reductions (mean, sum, max...): one FLOP per input element read."""

    modules = ()
    functions = (torch.mean, torch.sum, torch.amax, torch.amin)
    methods = ("mean", "sum", "amax", "amin", "max", "min")


@COST_RULES.register("elementwise")
class ElementwiseRule(CostRule):
    """Arithmetic on tensors: one FLOP per output element (scalar arithmetic costs nothing)."""

    kind = "elementwise"
    functions = (operator.add, operator.iadd, operator.sub, operator.isub, operator.mul, operator.imul,
                 operator.truediv, operator.itruediv, operator.neg, torch.add, torch.sub, torch.mul, torch.div,
                 torch.neg, torch.pow, torch.sqrt, torch.exp, torch.clamp, operator.floordiv, operator.mod,
                 operator.eq, operator.ne, operator.lt, operator.le, operator.gt, operator.ge)
    methods = ("add", "add_", "sub", "sub_", "mul", "mul_", "div", "div_", "neg", "pow", "sqrt", "exp",
               "clamp", "clamp_")

    def count(self, call: OpCall) -> OpCount:
        return OpCount(0, call.out_numel if call.tensors() else 0)


def _activation_modules() -> tuple[type, ...]:
    acts = nn.modules.activation
    return tuple(c for c in vars(acts).values() if isinstance(c, type) and issubclass(c, nn.Module)
                 and c.__module__ == acts.__name__ and c is not nn.MultiheadAttention)


@COST_RULES.register("activation")
class ActivationRule(CostRule):
    """Activations (every ``torch.nn`` activation module and their functions): one FLOP per output element."""

    kind = "activation"
    modules = _activation_modules()
    functions = (F.relu, torch.relu, F.relu_, F.relu6, F.hardswish, F.hardsigmoid, F.silu, F.gelu, F.elu,
                 F.leaky_relu, F.mish, F.softplus, F.hardtanh, torch.sigmoid, F.sigmoid, torch.tanh, F.tanh,
                 F.softmax, torch.softmax, F.log_softmax)
    methods = ("relu", "relu_", "sigmoid", "sigmoid_", "tanh", "tanh_", "softmax", "log_softmax")

    def count(self, call: OpCall) -> OpCount:
        return OpCount(0, call.out_numel)


@COST_RULES.register("resize")
class ResizeRule(CostRule):
    """Interpolation: 1 FLOP per output element for nearest, 4 for (bi)linear and others."""

    kind = "resize"
    modules = (nn.Upsample,)
    functions = (F.interpolate,)

    def count(self, call: OpCall) -> OpCount:
        mode = call.module.mode if call.module is not None else call.arg(3, "mode", "nearest")
        return OpCount(0, call.out_numel * (1 if mode == "nearest" else 4))


@COST_RULES.register("copy")
class CopyRule(CostRule):
    """Data movement (concatenation, padding, copies, embedding lookups): memory only, no arithmetic."""

    kind = "copy"
    modules = (nn.Embedding, nn.ZeroPad2d, nn.ConstantPad2d, nn.ReflectionPad2d, nn.ChannelShuffle)
    functions = (torch.cat, torch.stack, torch.concat, F.pad, F.embedding, torch.clone, torch.zeros_like,
                 torch.channel_shuffle, torch.roll)
    methods = ("contiguous", "clone", "repeat", "new_zeros", "to", "float", "type_as", "roll")


@COST_RULES.register("view")
class ViewRule(CostRule):
    """Views and shape queries: no arithmetic and no memory written (the output shares the input's)."""

    kind = "view"
    alias = True
    modules = (nn.Flatten, nn.Unflatten, nn.Identity, nn.modules.dropout._DropoutNd)
    functions = (torch.flatten, torch.reshape, torch.permute, torch.transpose, torch.unsqueeze, torch.squeeze,
                 torch.chunk, torch.split, torch.narrow, operator.getitem, getattr, F.dropout,
                 torch.Tensor.size, torch.Tensor.dim, torch._assert)
    methods = ("size", "dim", "view", "reshape", "flatten", "permute", "transpose", "unsqueeze", "squeeze",
               "expand", "expand_as", "view_as", "chunk", "split", "narrow", "unbind", "t", "__getitem__",
               "unflatten", "detach")


@COST_RULES.register("stochastic_depth")
class StochasticDepthRule(CostRule):
    """torchvision's stochastic depth: the identity in eval mode."""

    kind = "view"
    alias = True

    @property
    def functions(self) -> tuple[Callable[..., Any], ...]:  # type: ignore[override]
        ops = sys.modules.get("torchvision.ops")  # a model calling it has imported it; importing costs seconds
        return (ops.stochastic_depth,) if ops is not None else ()


@dataclass
class RuleIndex:
    """The rules of a registry by what they claim, for fast lookup per node."""

    by_type: dict[type, CostRule]
    by_function: dict[Any, CostRule]
    by_method: dict[str, CostRule]

    def rule_for(self, op: str, target: Any, module: nn.Module | None) -> CostRule | None:
        """The rule of a call_module / call_function / call_method node, or None when no rule claims it."""
        if op == "call_module":
            for t in type(module).__mro__:
                if t in self.by_type:
                    return self.by_type[t]
            return None
        if op == "call_method":
            return self.by_method.get(target)
        try:
            return self.by_function.get(target)
        except TypeError:  # an unhashable target
            return None


def build_index(rules: Registry = COST_RULES) -> RuleIndex:
    """Index every rule of ``rules``; two rules claiming the same type, function or method raise."""
    by: tuple[dict[Any, CostRule], dict[Any, CostRule], dict[Any, CostRule]] = ({}, {}, {})
    owner: dict[tuple[int, Any], str] = {}
    for name in rules:
        rule = rules.get(name)
        rule = rule() if isinstance(rule, type) else rule
        if not isinstance(rule, CostRule):
            raise RegistryError(f"cost rule {name!r} is a {type(rule).__name__}; register a CostRule subclass")
        rule.name = name
        for slot, claims in enumerate((rule.modules, rule.functions, rule.methods)):
            for c in claims:
                if (slot, c) in owner and owner[(slot, c)] != name:
                    what = getattr(c, "__name__", c)
                    raise RegistryError(f"cost rules {owner[(slot, c)]!r} and {name!r} both claim {what!r}; "
                                        f"claim a subclass or another function instead")
                owner[(slot, c)] = name
                by[slot][c] = rule
    return RuleIndex(*by)
