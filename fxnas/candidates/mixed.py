"""Mixed operators: one module per slot that runs or weighs its candidates as the search dictates."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..registry import Registry
from ..space import Categorical, SearchSpace, TensorParam

MIXED_OPS = Registry("mixed op")


class MixedOp(nn.Module):
    """Base mixed op: candidates keyed by name, driven by one Categorical param of the space."""

    uses_alpha = False  # True: the op owns a TensorParam "<param>.alpha" trained by gradient optimizers
    fixed = False  # set by fixed_arch(): run only the applied arch's candidate, whatever the op's own rule

    def __init__(self, candidates: Mapping[str, nn.Module], param: Categorical, space: SearchSpace,
                 name: str = "") -> None:
        super().__init__()
        self.candidates = nn.ModuleDict(dict(candidates))
        self.names = list(self.candidates.keys())
        self.param = param
        self.slot_name = name
        self.index = self.names.index(param.value)
        self.alpha_param: TensorParam | None = None
        if self.uses_alpha:
            alpha = TensorParam(f"{param.name}.alpha", (len(self.names),), categorical=param.name)
            self.alpha_param = space.add(alpha)  # type: ignore[assignment]
        space.on(param.name, self._on_update, target=self)

    def _on_update(self, values: Mapping[str, Any]) -> None:
        self.index = self.names.index(values[self.param.name])

    @property
    def alpha(self) -> torch.Tensor:
        """The architecture weights of this op (a Parameter owned by the space)."""
        if self.alpha_param is None:
            raise AttributeError(f"{type(self).__name__} has no architecture weights")
        return self.alpha_param.value

    def chosen(self) -> nn.Module:
        """The candidate the current arch selects."""
        return self.candidates[self.names[self.index]]

    def materialize(self) -> nn.Module:
        """The plain module of the current choice: the candidate the applied arch selects."""
        return self.chosen()

    def forward_chosen(self, *args: Any, **kwargs: Any) -> Any:
        """Run only the candidate the current arch selects."""
        return self.chosen()(*args, **kwargs)

    def chosen_name(self) -> str:
        """Name of the candidate the current arch selects."""
        return self.names[self.index]

    def extra_repr(self) -> str:
        return f"param={self.param.name!r}, chosen={self.chosen_name()}"


def weighted_sum(w: torch.Tensor, ops: Iterable[nn.Module], args: tuple, kwargs: Mapping[str, Any]) -> Any:
    """sum_i w[i] * ops[i](*args, **kwargs): every candidate runs (DARTS, SNAS)."""
    out = None
    for i, op in enumerate(ops):
        y = w[i] * op(*args, **kwargs)
        out = y if out is None else out + y
    return out


@MIXED_OPS.register("Index")
class IndexMixedOp(MixedOp):
    """SPOS / discrete search: runs only the selected candidate."""

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return self.candidates[self.names[self.index]](*args, **kwargs)


@MIXED_OPS.register("SoftmaxSum")
class SoftmaxSumMixedOp(MixedOp):
    """DARTS: the softmax(alpha)-weighted sum of every candidate's output."""

    uses_alpha = True

    def weights(self) -> torch.Tensor:
        """softmax(alpha) over the candidates."""
        return F.softmax(self.alpha, dim=-1)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        if self.fixed:
            return self.forward_chosen(*args, **kwargs)
        return weighted_sum(self.weights(), self.candidates.values(), args, kwargs)


@contextlib.contextmanager
def fixed_arch(model: nn.Module) -> Iterator[None]:
    """Within the block every mixed op of ``model`` runs only the candidate of the applied arch."""
    ops = [m for m in model.modules() if isinstance(m, MixedOp)]
    old = [m.fixed for m in ops]
    for m in ops:
        m.fixed = True
    try:
        yield
    finally:
        for m, f in zip(ops, old):
            m.fixed = f
