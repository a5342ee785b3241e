"""The asynchronous loop on a spawned process pool: a worker that dies breaks the pool, which is replaced."""

from __future__ import annotations

import pytest

from fxnas.async_loop import AsyncLoop, Journal, new_loop_state
from fxnas.loop import Guarded
from fxnas.optim.evolution import RegularizedEvolution
from fxnas.pool import make_executor
from fxnas.spaces.nb201 import nb201_space

from .helpers import FakeTable, fake_accuracy


@pytest.mark.slow  # about 50 s on two busy cores: two pools of spawned workers import torch
def test_a_killed_process_worker_is_retried_on_a_new_pool(tmp_path):
    opt = RegularizedEvolution(nb201_space(), seed=0, population=4, sample=2, metric="cifar10_valid_12ep")
    state, got = new_loop_state(), []
    loop = AsyncLoop(opt, lambda: make_executor({"backend": "process", "workers": 2}),
                     Guarded(FakeTable(str(tmp_path), kill_at=3)), 8, 2, 2, {}, state,
                     Journal(tmp_path / "evaluations.jsonl"), 0, lambda r: got.append(r) or r)
    loop.run()
    assert (tmp_path / "killed").exists() and loop.generation == 1  # one broken pool, one replacement
    assert len(got) == 8 and not any(r.failed for r in got)
    assert all(r.metrics["cifar10_valid_12ep"] == fake_accuracy(r.arch) for r in got)
    # the pool breaks for every call it held: each is re-submitted once, and counted
    assert 1 <= state["retries"] <= 2 and state["retries"] == sum(r.info["attempts"] - 1 for r in got)
