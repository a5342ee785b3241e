"""Helpers shared by the optimizer tests: toy spaces and objectives, a search loop, a resume check."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from fxnas.optim.base import Optimizer, Result
from fxnas.space import Categorical, Numerical, SearchSpace


def toy_space() -> SearchSpace:
    """4 categoricals x 4 choices, an integer in [0, 7] and a float in [0, 1] (mixed types)."""
    s = SearchSpace()
    for i in range(4):
        s.add(Categorical(f"c{i}", ["a", "b", "c", "d"]))
    s.add(Numerical("n", 0, 7, integer=True))
    s.add(Numerical("x", 0.0, 1.0))
    return s


def toy_score(arch: dict[str, Any]) -> dict[str, float]:
    """A smooth objective (max 10 at c*=d, n=7, x=1) plus a cost that trades off against it."""
    acc = sum("abcd".index(arch[f"c{i}"]) for i in range(4)) / 12 * 6 + arch["n"] / 7 * 3 + arch["x"]
    return {"acc": acc, "cost": sum(arch[f"c{i}"] in "cd" for i in range(4)) + arch["n"] / 7}


def run_loop(opt: Optimizer, evaluate: Callable[[dict], dict], rounds: int, batch: int = 1) -> list[dict]:
    """``rounds`` of next(batch) → evaluate → step; returns every proposal in order."""
    seen = []
    for _ in range(rounds):
        archs = opt.next(batch)
        seen += archs
        opt.step([Result(dict(a), evaluate(a)) for a in archs])
    return seen


def assert_deterministic_and_resumable(make: Callable[[int], Optimizer], evaluate: Callable[[dict], dict],
                                       rounds: int = 30, batch: int = 2) -> None:
    """Same seed → same proposals; a JSON-roundtripped state_dict mid-run → the uninterrupted continuation."""
    full = run_loop(make(0), evaluate, rounds, batch)
    assert run_loop(make(0), evaluate, rounds, batch) == full
    assert run_loop(make(1), evaluate, rounds, batch) != full
    first = make(0)
    head = run_loop(first, evaluate, rounds // 2, batch)
    state = json.loads(json.dumps(first.state_dict()))
    resumed = make(123)  # a different seed: everything must come from the state
    resumed.load_state_dict(state)
    tail = run_loop(resumed, evaluate, rounds - rounds // 2, batch)
    assert head + tail == full


@pytest.fixture
def space() -> SearchSpace:
    """A fresh toy space."""
    return toy_space()
