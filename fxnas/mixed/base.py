"""MixedOp: the lowering target of the constructor pass, and the helpers every mixed op shares."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import torch
from torch import nn

from ..choice import ChoiceModule
from ..registry import Registry
from ..space import Categorical, SearchSpace, TensorParam

MIXED_OPS = Registry("mixed op", internal=("candidates", "param", "space", "name"))


class MixedOp(ChoiceModule):
    """A slot lowered into a choice among its candidates, driven by one Categorical param of the space.

    The constructor pass builds each op as ``MIXED_OPS.build(name, candidates=..., param=..., space=...,
    name=slot path, **mixed_op_args)``. What the rest of fxnas calls on a mixed op — the contract a new one
    implements (override what differs)::

        forward(*args)                  run the candidates as the op's rule says; under fixed_arch() only the
                                        chosen one (``self.fixed``)
          chosen()                      the candidate the applied arch selects (``param.value``)
        single_path: bool               True when applying an arch makes forward run exactly that candidate
        has_alpha: bool                 True when the op owns a TensorParam ``<param>.alpha`` (gradient methods)
        before_arch_step(ctx)           an arch optimizer is about to update the alphas (ctx: one dict shared
                                        by every op of the model for this step)
        after_arch_step(ctx) -> stats   the alphas were updated; scalars to log (summed over ops)
        set_temperature(t) -> bool      a sampling temperature from a schedule; False when the op has none
        materialize() -> nn.Module      the chosen candidate (ChoiceModule)

    Example::

        >>> import torch, fxnas
        >>> from torch import nn
        >>> net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU())
        >>> sn = fxnas.searchify(net, "conv3x3", ["NC3", "DW3"], torch.randn(1, 3, 8, 8), mixed_op="SoftmaxSum")
        >>> op = fxnas.mixed_ops(sn)["0"]
        >>> (op.single_path, op.has_alpha, op.alpha.shape)
        (False, True, torch.Size([2]))
        >>> _ = sn.space.apply({"0": "DW3"}); op.chosen_name()
        'DW3'
    """

    single_path = True
    has_alpha = False
    fixed = False  # set by fixed_arch(): run only the applied arch's candidate, whatever the op's own rule

    def __init__(self, candidates: Mapping[str, nn.Module], param: Categorical, space: SearchSpace,
                 name: str = "") -> None:
        super().__init__()
        self.candidates = nn.ModuleDict(dict(candidates))
        self.names = list(self.candidates.keys())
        if list(param.choices) != self.names:
            raise ValueError(f"mixed op {name!r}: candidates {self.names} differ from param {param.name!r}'s "
                             f"choices {param.choices}")
        self.param = param
        self.slot_name = name
        self.alpha_param: TensorParam | None = None
        if self.has_alpha:
            alpha = TensorParam(f"{param.name}.alpha", (len(self.names),), categorical=param.name)
            self.alpha_param = space.add(alpha)  # type: ignore[assignment]  # add returns the param it keeps

    @property
    def index(self) -> int:
        """Position of the applied arch's candidate."""
        return self.names.index(self.param.value)

    @property
    def alpha(self) -> torch.Tensor:
        """The architecture weights of this op (a Parameter owned by the space)."""
        if self.alpha_param is None:
            raise AttributeError(f"{type(self).__name__} has no architecture weights")
        return self.alpha_param.value

    def chosen(self) -> nn.Module:
        """The candidate the current arch selects."""
        return self.candidates[self.param.value]

    def chosen_name(self) -> str:
        """Name of the candidate the current arch selects."""
        return str(self.param.value)

    def forward_chosen(self, *args: Any, **kwargs: Any) -> Any:
        """Run only the candidate the current arch selects."""
        return self.chosen()(*args, **kwargs)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """Run the chosen candidate (subclasses weigh or sample candidates instead)."""
        return self.forward_chosen(*args, **kwargs)

    # --- hooks of gradient optimizers -------------------------------------------------------------------
    def before_arch_step(self, ctx: dict[str, Any]) -> None:
        """An arch optimizer is about to update the alphas."""

    def after_arch_step(self, ctx: dict[str, Any]) -> Mapping[str, float]:
        """The alphas were updated; scalars to log."""
        return {}

    def set_temperature(self, temperature: float) -> bool:
        """Take a sampling temperature; True when the op uses one."""
        return False

    def materialize(self) -> nn.Module:
        """The chosen candidate."""
        return self.chosen()

    def extra_repr(self) -> str:
        return f"param={self.param.name!r}, chosen={self.chosen_name()}"


def weighted_sum(w: torch.Tensor, ops: Iterable[nn.Module], args: tuple, kwargs: Mapping[str, Any]) -> Any:
    """sum_i w[i] * ops[i](*args, **kwargs): every candidate runs (DARTS, SNAS)."""
    out = None
    for i, op in enumerate(ops):
        y = w[i] * op(*args, **kwargs)
        out = y if out is None else out + y
    return out


def model_mixed_ops(model: nn.Module) -> list[MixedOp]:
    """Every MixedOp of ``model`` (each once)."""
    return [m for m in model.modules() if isinstance(m, MixedOp)]


@contextlib.contextmanager
def fixed_arch(model: nn.Module) -> Iterator[None]:
    """Within the block every mixed op of ``model`` runs only the candidate of the applied arch."""
    ops = model_mixed_ops(model)
    old = [m.fixed for m in ops]
    for m in ops:
        m.fixed = True
    try:
        yield
    finally:
        for m, f in zip(ops, old):
            m.fixed = f


@contextlib.contextmanager
def arch_step(model: nn.Module) -> Iterator[dict[str, float]]:
    """Wrap one update of the alphas: every op's ``before_arch_step``, the update, every ``after_arch_step``.

    Yields a dict that receives the ops' scalars (summed) once the block ends.
    """
    ops = model_mixed_ops(model)
    ctx: dict[str, Any] = {}
    for op in ops:
        op.before_arch_step(ctx)
    stats: dict[str, float] = {}
    yield stats
    for op in ops:
        for k, v in op.after_arch_step(ctx).items():
            stats[k] = stats.get(k, 0.0) + float(v)


def set_temperature(model: nn.Module, temperature: float) -> int:
    """Set ``temperature`` on every mixed op of ``model`` that samples with one; how many took it."""
    return sum(op.set_temperature(temperature) for op in model_mixed_ops(model))
