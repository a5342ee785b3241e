"""Subnets of an elastic space for progressive shrinking: the largest, the smallest and random settings over
the elastic kinds a training stage has unlocked (the others stay at their largest).

Params that are not elastic (op choices of ``searchify``'s mixed ops sharing the space) are sampled
uniformly for every subnet, as single-path (SPOS) training does.
"""

from __future__ import annotations

import math
import random
from collections.abc import Collection, Mapping
from typing import Any

from ..errors import ConfigError
from ..space import SearchSpace
from .params import KINDS as ELASTIC_KINDS
from .params import elastic_params

# Once-for-All's order: "full" trains the largest network only, then each stage unlocks one elastic kind
STAGES = ("full", "kernel", "depth", "width")
SUBNET_KINDS = ("largest", "smallest", "random")


def unlocked_kinds(stages: list[str], upto: int) -> set[str]:
    """The elastic kinds that vary in stage ``upto`` of ``stages``: those of it and of every stage before."""
    return {s for s in stages[: upto + 1] if s in ELASTIC_KINDS}


def allowed(choices: tuple[Any, ...] | list[Any], fraction: float) -> list[Any]:
    """The largest ``fraction`` of ``choices`` (sorted smallest first), at least two of them when there are:
    OFA's phases, e.g. depth {4, 3} before {4, 3, 2}."""
    n = len(choices)
    keep = max(min(2, n), math.ceil(n * fraction - 1e-9))
    return list(choices[n - keep:])


def subnet(space: SearchSpace, kinds: Collection[str], which: str, rng: random.Random,
           fractions: Mapping[str, float] | None = None) -> dict[str, Any]:
    """A complete arch of ``space``: elastic params of ``kinds`` at their largest / smallest / a uniform
    choice (``which``), other elastic params at their largest, other params uniform. ``fractions`` limits a
    kind to the largest part of its choices (``{"depth": 0.5}``: the larger half; default: all)."""
    if which not in SUBNET_KINDS:
        raise ConfigError(f"subnet must be one of {SUBNET_KINDS}, got {which!r}")
    fractions = fractions or {}
    elastic = elastic_params(space)
    arch = {k: (p.sample(rng) if k not in elastic else None) for k, p in space.discrete().items()}
    for k, p in elastic.items():
        choices = allowed(p.choices, fractions.get(p.kind, 1.0))
        if p.kind not in kinds or which == "largest":
            arch[k] = choices[-1]
        elif which == "smallest":
            arch[k] = choices[0]
        else:
            arch[k] = rng.choice(choices)
    return arch


def step_subnets(space: SearchSpace, kinds: Collection[str], count: int, sandwich: bool, seed: int,
                 *key: Any, fractions: Mapping[str, float] | None = None) -> list[dict[str, Any]]:
    """The ``count`` subnets one training step runs, drawn from ``random.Random(f"{seed}:{key...}")`` (a
    resumed run draws the same): with ``sandwich`` the largest, the smallest, then random ones; else all
    random. Without unlocked kinds (the full-network stage) only the largest. ``fractions``: see ``subnet``."""
    rng = random.Random(":".join(str(k) for k in (seed, *key)))
    if not kinds:
        return [subnet(space, kinds, "largest", rng)]
    order = ["largest", "smallest"] if sandwich else []
    order += ["random"] * max(0, count - len(order))
    return [subnet(space, kinds, w, rng, fractions) for w in order[:count]]


def is_largest(space: SearchSpace, arch: Mapping[str, Any]) -> bool:
    """True when every elastic param of ``arch`` is at its largest choice."""
    return all(arch.get(k) == p.choices[-1] for k, p in elastic_params(space).items())


__all__ = ["STAGES", "SUBNET_KINDS", "allowed", "is_largest", "step_subnets", "subnet", "unlocked_kinds"]
