"""Elastic convolutions (width and kernel) and linears: sliced weight views, no masks."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .base import ElasticModule, take
from .layout import Channels
from .params import ElasticParam

_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}


def reset_like_torch(weight: torch.Tensor, bias: torch.Tensor | None) -> None:
    """Initialise a full conv/linear weight and bias as ``nn.Conv*``/``nn.Linear.reset_parameters`` do."""
    nn.init.kaiming_uniform_(weight, a=math.sqrt(5))
    if bias is not None:
        fan_in = weight[0].numel()
        bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0.0
        nn.init.uniform_(bias, -bound, bound)


def sub_kernel(weight: torch.Tensor, k: int, sizes: list[int], transforms: nn.ParameterDict) -> torch.Tensor:
    """The ``k``-sized kernel of ``weight`` as in Once-for-All: the centre crop of each larger size in turn,
    mapped through that step's learned ``k*k x k*k`` transformation (identity at the start)."""
    cur = weight
    for src, dst in zip(reversed(sizes[1:]), reversed(sizes[:-1])):
        if src <= k:
            break
        s = (src - dst) // 2
        crop = cur[(...,) + (slice(s, s + dst),) * (weight.dim() - 2)]
        flat = crop.reshape(-1, dst ** (weight.dim() - 2))
        cur = F.linear(flat, transforms[f"{src}to{dst}"]).reshape(crop.shape)
    return cur


class ElasticConv(ElasticModule):
    """A conv whose input/output channels follow width params and whose kernel may follow a kernel param.

    ``depthwise`` convs pass their channels through (groups = channels kept). Grouped convs keep their
    group count; each group keeps the same channels (the analysis ties the groups together).
    """

    def __init__(self, conv: nn.modules.conv._ConvNd, inp: Channels, out: Channels, depthwise: bool,
                 positions: int, kernel: ElasticParam | None = None) -> None:
        super().__init__()
        self.conv_type = type(conv)
        self.weight = conv.weight
        self.bias = conv.bias
        self.nd = conv.weight.dim() - 2
        self.stride, self.dilation, self.groups = conv.stride, conv.dilation, conv.groups
        self.padding, self.padding_mode = conv.padding, conv.padding_mode
        self.inp, self.out, self.depthwise, self.positions = inp, out, depthwise, positions
        self.inp_group = inp if depthwise or conv.groups == 1 else inp.chunk(conv.groups)
        self.max_kernel = conv.kernel_size[0]
        self.kernel_param = kernel
        self.kernel_sizes = list(kernel.choices) if kernel is not None else [self.max_kernel]
        if kernel is not None:
            self.transforms = nn.ParameterDict({
                f"{a}to{b}": nn.Parameter(torch.eye(b ** self.nd, device=conv.weight.device,
                                                    dtype=conv.weight.dtype))
                for a, b in zip(self.kernel_sizes[1:], self.kernel_sizes[:-1])})
            self.use(kernel)
        self.train(conv.training)

    def kernel_size(self, values: Mapping[str, Any]) -> int:
        """The kernel size at ``values``."""
        return int(values[self.kernel_param.name]) if self.kernel_param is not None else self.max_kernel

    def _pad(self, k: int) -> Any:
        if self.kernel_param is None or isinstance(self.padding, str):
            return self.padding
        return tuple(d * (k - 1) // 2 for d in self.dilation)

    def active_weight(self, values: Mapping[str, Any]) -> tuple[torch.Tensor, torch.Tensor | None, int, int]:
        """(weight, bias, groups, kernel size) at ``values``."""
        orows = self.out.ranges(values)
        w = take(self.weight, 0, orows)
        if not self.depthwise:
            w = take(w, 1, self.inp_group.ranges(values))
        k = self.kernel_size(values)
        if k != self.max_kernel:
            w = sub_kernel(w, k, self.kernel_sizes, self.transforms)
        groups = w.shape[0] if self.depthwise else self.groups
        return w, take(self.bias, 0, orows), groups, k

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w, b, groups, k = self.active_weight(self.values())
        pad = self._pad(k)
        if self.padding_mode != "zeros":
            x = F.pad(x, [p for p in reversed(pad) for _ in range(2)], mode=self.padding_mode)
            pad = 0
        return _CONV[self.nd](x, w, b, self.stride, pad, self.dilation, groups)

    def materialize(self) -> nn.Module:
        """A plain conv of the kept channels and kernel, weights copied."""
        with torch.no_grad():
            w, b, groups, k = self.active_weight(self.values())
            conv = self.conv_type(w.shape[1] * groups, w.shape[0], k, self.stride, self._pad(k), self.dilation,
                                  groups, b is not None, self.padding_mode, device=w.device, dtype=w.dtype)
            conv.weight.copy_(w)
            if b is not None:
                conv.bias.copy_(b)
        return conv.train(self.training)

    def reset_parameters(self) -> None:
        """Fresh weights as the original conv's ``reset_parameters`` gives, kernel transforms back to identity."""
        reset_like_torch(self.weight, self.bias)
        if self.kernel_param is not None:
            with torch.no_grad():
                for t in self.transforms.values():
                    t.copy_(torch.eye(t.shape[0], device=t.device, dtype=t.dtype))

    def cost(self, values: Mapping[str, Any]) -> tuple[int, int]:
        cout = self.out.count(values)
        cin = 1 if self.depthwise else self.inp_group.count(values)
        per_out = cin * self.kernel_size(values) ** self.nd
        params = cout * per_out + (cout if self.bias is not None else 0)
        return params, self.positions * cout * per_out

    def extra_repr(self) -> str:
        kern = f", kernel={self.kernel_sizes}" if self.kernel_param is not None else ""
        return f"{self.conv_type.__name__}({self.inp.full}->{self.out.full}{kern}, depthwise={self.depthwise})"


class ElasticLinear(ElasticModule):
    """A linear whose input features and output features follow width params."""

    def __init__(self, linear: nn.Linear, inp: Channels, out: Channels, positions: int) -> None:
        super().__init__()
        self.weight, self.bias = linear.weight, linear.bias
        self.inp, self.out, self.positions = inp, out, positions
        self.train(linear.training)

    def active_weight(self, values: Mapping[str, Any]) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(weight, bias) at ``values``."""
        rows = self.out.ranges(values)
        return take(take(self.weight, 0, rows), 1, self.inp.ranges(values)), take(self.bias, 0, rows)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w, b = self.active_weight(self.values())
        return F.linear(x, w, b)

    def materialize(self) -> nn.Module:
        """A plain linear of the kept features, weights copied."""
        with torch.no_grad():
            w, b = self.active_weight(self.values())
            lin = nn.Linear(w.shape[1], w.shape[0], b is not None, device=w.device, dtype=w.dtype)
            lin.weight.copy_(w)
            if b is not None:
                lin.bias.copy_(b)
        return lin.train(self.training)

    def reset_parameters(self) -> None:
        """Fresh weights as ``nn.Linear.reset_parameters`` gives."""
        reset_like_torch(self.weight, self.bias)

    def cost(self, values: Mapping[str, Any]) -> tuple[int, int]:
        fin, fout = self.inp.count(values) * self.inp.inner, self.out.count(values)
        return fout * fin + (fout if self.bias is not None else 0), self.positions * fout * fin

    def extra_repr(self) -> str:
        return f"{self.inp.full * self.inp.inner}->{self.out.full}"
