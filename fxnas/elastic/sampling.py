"""Subnets of an elastic space for progressive shrinking: the largest, the smallest and random settings over
the elastic kinds a training stage has unlocked (the others stay at their largest).

Params that are not elastic (op choices of ``searchify``'s mixed ops sharing the space) are sampled
uniformly for every subnet, as single-path (SPOS) training does.
"""

from __future__ import annotations

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


def subnet(space: SearchSpace, kinds: Collection[str], which: str, rng: random.Random) -> dict[str, Any]:
    """A complete arch of ``space``: elastic params of ``kinds`` at their largest / smallest / a uniform
    choice (``which``), other elastic params at their largest, other params uniform."""
    if which not in SUBNET_KINDS:
        raise ConfigError(f"subnet must be one of {SUBNET_KINDS}, got {which!r}")
    elastic = elastic_params(space)
    arch = {k: (p.sample(rng) if k not in elastic else None) for k, p in space.discrete().items()}
    for k, p in elastic.items():
        if p.kind not in kinds or which == "largest":
            arch[k] = p.choices[-1]
        elif which == "smallest":
            arch[k] = p.choices[0]
        else:
            arch[k] = p.sample(rng)
    return arch


def step_subnets(space: SearchSpace, kinds: Collection[str], count: int, sandwich: bool, seed: int,
                 *key: Any) -> list[dict[str, Any]]:
    """The ``count`` subnets one training step runs, drawn from ``random.Random(f"{seed}:{key...}")`` (a
    resumed run draws the same): with ``sandwich`` the largest, the smallest, then random ones; else all
    random. Without unlocked kinds (the full-network stage) only the largest."""
    rng = random.Random(":".join(str(k) for k in (seed, *key)))
    if not kinds:
        return [subnet(space, kinds, "largest", rng)]
    order = ["largest", "smallest"] if sandwich else []
    order += ["random"] * max(0, count - len(order))
    return [subnet(space, kinds, w, rng) for w in order[:count]]


def is_largest(space: SearchSpace, arch: Mapping[str, Any]) -> bool:
    """True when every elastic param of ``arch`` is at its largest choice."""
    return all(arch.get(k) == p.choices[-1] for k, p in elastic_params(space).items())


__all__ = ["STAGES", "SUBNET_KINDS", "is_largest", "step_subnets", "subnet", "unlocked_kinds"]
