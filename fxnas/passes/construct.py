"""Constructor passes: lower Slots into mixed ops over candidates, or into fixed ops from an arch."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
import torch.fx as fx
from torch import nn

from ..candidates.registry import build_candidate
from ..compat import fake_tensor_mode, own_tensors
from ..errors import ConfigError, ShapeError
from ..mixed.base import MIXED_OPS
from ..slot import Slot, SlotSpec
from ..space import Categorical, SearchSpace
from ..supernet import replace_submodule, slots

CandidatesLike = Sequence[str] | str | Mapping[str, Sequence[str]] | Callable[[SlotSpec], Sequence[str]]


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
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ConfigError(f"slot {spec.name!r}: candidates list {', '.join(dup)} more than once; each candidate is "
                          f"one choice (a duplicate would double the space without a new arch)")
    return names


def _meta_output_shape(module: nn.Module, in_shape: Sequence[int]) -> tuple[int, ...]:
    """Output shape on the meta device: weights are swapped for meta tensors (no copy, no compute) and restored."""
    saved = []
    try:
        for mod in module.modules():
            for store, k, v in own_tensors(mod):
                if v is not None:
                    saved.append((store, k, v))
                    meta = torch.empty_like(v, device="meta")
                    store[k] = nn.Parameter(meta, v.requires_grad) if isinstance(v, nn.Parameter) else meta
        with torch.no_grad():
            return tuple(module(torch.empty(tuple(in_shape), device="meta")).shape)
    finally:
        for store, k, v in saved:
            store[k] = v


def _fake_output_shape(module: nn.Module, in_shape: Sequence[int]) -> tuple[int, ...]:
    with fake_tensor_mode() as mode:
        return tuple(module(mode.from_tensor(torch.empty(tuple(in_shape)))).shape)


def check_shape(name: str, module: nn.Module, spec: SlotSpec) -> None:
    """Run ``module`` on a fake input of the slot's shape; ShapeError unless it gives the slot's output shape."""
    if spec.in_shape is None or spec.out_shape is None:
        return
    was = module.training
    module.eval()
    try:
        try:  # meta tensors are ~5x faster than FakeTensorMode (whose batch norm is a Python decomposition)
            got = _meta_output_shape(module, spec.in_shape)
        except Exception:  # e.g. a forward that makes CPU tensors: FakeTensorMode handles those
            got = _fake_output_shape(module, spec.in_shape)
    except Exception as exc:
        raise ShapeError(f"candidate {name} fails on slot {spec.name!r} (input {tuple(spec.in_shape)}): "
                         f"{type(exc).__name__}: {exc}") from None
    finally:
        module.train(was)
    if got != tuple(spec.out_shape):
        raise ShapeError(f"candidate {name} on slot {spec.name!r} gives shape {got}, the slot needs "
                         f"{tuple(spec.out_shape)} (in {tuple(spec.in_shape)}, stride {spec.stride})")


def build_candidates(names: Sequence[str], spec: SlotSpec, check: bool = True,
                     checked: set[tuple[Any, ...]] | None = None) -> dict[str, nn.Module]:
    """Build and shape-check each named candidate for ``spec``.

    ``checked`` (shared across the slots of one construct) holds the candidates that passed, keyed by their
    structure (the module's repr: every layer and its hyperparameters) and the slot's shapes: a model repeats
    a few slot shapes many times (EfficientNet-B7: 55 depthwise slots), and a shape check on the meta device
    costs milliseconds per candidate, so each distinct one is checked once.
    """
    out = {}
    for n in names:
        m = build_candidate(n, spec)
        if check:
            key = (n, repr(m), _shape(spec.in_shape), _shape(spec.out_shape))
            if checked is None or key not in checked:
                check_shape(n, m, spec)
                if checked is not None:
                    checked.add(key)
        out[n] = m
    return out


def _shape(shape: Sequence[int] | None) -> tuple[int, ...] | None:
    return None if shape is None else tuple(shape)


def construct(
    gm: fx.GraphModule,
    candidates: CandidatesLike,
    mixed_op: str = "Index",
    space: SearchSpace | None = None,
    param_name: Callable[[SlotSpec], str] | None = None,
    check: bool = True,
    mixed_op_args: Mapping[str, Any] | None = None,
) -> SearchSpace:
    """Replace every Slot in ``gm`` with a mixed op over its candidates; params may be shared by name.

    ``mixed_op`` names a MIXED_OPS entry and ``mixed_op_args`` its options (checked before any slot is built).
    """
    space = space if space is not None else SearchSpace()
    op_spec = {"type": mixed_op, **(mixed_op_args or {})}
    internal = {k: None for k in MIXED_OPS.internal}
    MIXED_OPS.check(op_spec, where="construct.mixed_op", inject=internal)
    inner: dict[int, str] = {}  # id(slot inside a built candidate) -> "<outer param>.<candidate>.<path>"
    checked: set[tuple[Any, ...]] = set()  # candidates whose shape check passed (see build_candidates)
    for _ in range(MAX_NESTING):  # candidates may hold slots (hierarchical spaces): lower them in turn
        pending = {p: s for p, s in slots(gm).items() if _still_at(gm, p, s)}
        if not pending:
            break
        for path, slot in pending.items():
            if not _still_at(gm, path, slot):
                continue  # inside a slot lowered earlier in this round
            spec = slot.spec
            own = getattr(slot, "choices", None)  # inner slots carry their own candidate names
            names = list(own) if own else candidate_names(candidates, spec)
            pname = inner.get(id(slot)) or (param_name(spec) if param_name else path)
            param = space.add(Categorical(pname, names))
            if param.choices != names:
                raise ConfigError(f"slots sharing param {pname!r} must have the same candidates: "
                                  f"{param.choices} vs {names}")
            built = build_candidates(names, spec, check, checked)
            for cname, cand in built.items():
                for sub, s in slots(cand).items():
                    inner[id(s)] = f"{pname}.{cname}.{sub}"
            op = MIXED_OPS.build(op_spec, where="construct.mixed_op",
                                 inject={"candidates": built, "param": param, "space": space, "name": path})
            replace_submodule(gm, path, op)
    else:
        raise ConfigError(f"slots nested deeper than {MAX_NESTING} levels; does a candidate contain itself?")
    gm.recompile()
    return space


MAX_NESTING = 8


def _still_at(gm: nn.Module, path: str, slot: Slot) -> bool:
    try:
        return gm.get_submodule(path) is slot
    except AttributeError:
        return False


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
