"""Constructor passes: lower Slots into mixed ops over candidates, or into fixed ops from an arch."""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence, Union

import torch
import torch.fx as fx
from torch import nn

from ..candidates.mixed import MIXED_OPS
from ..candidates.registry import build_candidate
from ..errors import ConfigError, ShapeError
from ..slot import Slot, SlotSpec
from ..space import Categorical, SearchSpace
from ..supernet import replace_submodule, slots

CandidatesLike = Union[Sequence[str], str, Mapping[str, Sequence[str]], Callable[[SlotSpec], Sequence[str]]]


def candidate_names(candidates: CandidatesLike, spec: SlotSpec) -> list[str]:
    """The candidate names for one slot: a list, "A,B", a per-slot dict, or a function of the spec."""
    if isinstance(candidates, str):
        names = [c.strip() for c in candidates.split(",") if c.strip()]
    elif isinstance(candidates, Mapping):
        if spec.name not in candidates:
            raise ConfigError(f"no candidates given for slot {spec.name!r}; slots given: {list(candidates)[:10]}")
        names = list(candidates[spec.name])
    elif callable(candidates):
        names = list(candidates(spec))
    else:
        names = list(candidates)
    if not names:
        raise ConfigError(f"slot {spec.name!r} got an empty candidate list")
    return names


def check_shape(name: str, module: nn.Module, spec: SlotSpec) -> None:
    """Run ``module`` on a fake input of the slot's shape; ShapeError unless it gives the slot's output shape."""
    if spec.in_shape is None or spec.out_shape is None:
        return
    from torch._subclasses.fake_tensor import FakeTensorMode

    try:
        with FakeTensorMode(allow_non_fake_inputs=True) as mode:
            x = mode.from_tensor(torch.empty(spec.in_shape))
            was = module.training
            module.eval()
            try:
                y = module(x)
            finally:
                module.train(was)
        got = tuple(y.shape)
    except Exception as exc:
        raise ShapeError(f"candidate {name} fails on slot {spec.name!r} (input {tuple(spec.in_shape)}): "
                         f"{type(exc).__name__}: {exc}") from None
    if got != tuple(spec.out_shape):
        raise ShapeError(f"candidate {name} on slot {spec.name!r} gives shape {got}, the slot needs "
                         f"{tuple(spec.out_shape)} (in {tuple(spec.in_shape)}, stride {spec.stride})")


def build_candidates(names: Sequence[str], spec: SlotSpec, check: bool = True) -> dict[str, nn.Module]:
    """Build and shape-check each named candidate for ``spec``."""
    out = {}
    for n in names:
        m = build_candidate(n, spec)
        if check:
            check_shape(n, m, spec)
        out[n] = m
    return out


def construct(
    gm: fx.GraphModule,
    candidates: CandidatesLike,
    mixed_op: str = "Index",
    space: SearchSpace | None = None,
    param_name: Callable[[SlotSpec], str] | None = None,
    check: bool = True,
    mixed_op_args: Mapping[str, Any] | None = None,
) -> SearchSpace:
    """Replace every Slot in ``gm`` with a mixed op over its candidates; params may be shared by name."""
    space = space if space is not None else SearchSpace()
    op_cls = MIXED_OPS.get(mixed_op)
    for path, slot in slots(gm).items():
        spec = slot.spec
        names = candidate_names(candidates, spec)
        pname = param_name(spec) if param_name else path
        param = space.add(Categorical(pname, names))
        if param.choices != names:
            raise ConfigError(f"slots sharing param {pname!r} must have the same candidates: "
                              f"{param.choices} vs {names}")
        op = op_cls(build_candidates(names, spec, check), param, space, name=path, **(mixed_op_args or {}))
        replace_submodule(gm, path, op)
    gm.recompile()
    return space


def construct_fixed(gm: fx.GraphModule, arch: Mapping[str, str], check: bool = True) -> None:
    """Replace every Slot with the single op ``arch[slot path]`` names (a fixed network from a description)."""
    for path, slot in slots(gm).items():
        if path not in arch:
            raise ConfigError(f"arch has no op for slot {path!r}; slots: {list(slots(gm))[:10]}")
        name = arch[path]
        m = build_candidate(name, slot.spec)
        if check:
            check_shape(name, m, slot.spec)
        replace_submodule(gm, path, m)
    gm.recompile()
