"""fxnas.async_loop: evaluations in flight on an executor, retries, failures, the journal and resume."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from fxnas.async_loop import AsyncLoop, Journal, new_loop_state
from fxnas.errors import ConfigError
from fxnas.optim.base import Result, arch_key
from fxnas.optim.discrete import Random
from fxnas.space import Categorical, SearchSpace


def space() -> SearchSpace:
    s = SearchSpace()
    s.add(Categorical("a", list(range(6))))
    s.add(Categorical("b", list(range(6))))
    return s


class Eval:
    """a + b, after an optional delay; archs in ``flaky`` raise on their first ``fails`` calls."""

    def __init__(self, flaky=(), fails=1, delay=0.0, config_error=False):
        self.flaky, self.fails, self.delay, self.config_error = set(flaky), fails, delay, config_error
        self.calls: list[tuple] = []
        self.running = self.peak = 0
        self.lock = threading.Lock()

    def __call__(self, arch):
        k = (arch["a"], arch["b"])
        with self.lock:
            self.calls.append(k)
            self.running += 1
            self.peak = max(self.peak, self.running)
            n = self.calls.count(k)
        try:
            time.sleep(self.delay)
            if self.config_error:
                raise ConfigError("bad option")
            if k in self.flaky and n <= self.fails:
                raise RuntimeError(f"lost {k}")
            return {"acc": float(arch["a"] + arch["b"])}
        finally:
            with self.lock:
                self.running -= 1


def run_loop(fn, tmp_path, budget=10, workers=3, retries=2, state=None, recorded=None):
    opt = Random(space(), seed=0, metric="acc")
    state = new_loop_state() if state is None else state
    recorded = [] if recorded is None else recorded
    loop = AsyncLoop(opt, lambda: ThreadPoolExecutor(workers), fn, budget, workers, retries, {}, state,
                     Journal(tmp_path / "evaluations.jsonl"), 0, lambda r: recorded.append(r) or r)
    loop.run()
    return opt, state, recorded


def test_keeps_workers_in_flight_and_feeds_every_result_back(tmp_path):
    fn = Eval(delay=0.02)
    opt, state, recorded = run_loop(fn, tmp_path, budget=12, workers=3)
    assert len(recorded) == 12 == state["evaluated"] and len({arch_key(r.arch) for r in recorded}) == 12
    assert fn.peak == 3  # three in flight, never more
    assert [r.info["sid"] for r in sorted(recorded, key=lambda r: r.info["sid"])] == list(range(12))
    assert len(opt.history) == 12 and all(r.metrics["acc"] == r.arch["a"] + r.arch["b"] for r in recorded)
    assert state["pending"] == {} and state["retries"] == 0


def test_raising_evaluations_are_retried_then_recorded_as_failed(tmp_path):
    first = [(a, b) for a in range(6) for b in range(6)]  # every arch is flaky once; two always fail
    fn = Eval(flaky=first, fails=1)
    opt, state, recorded = run_loop(fn, tmp_path, budget=8, workers=2, retries=1)
    assert len(recorded) == 8 and not any(r.failed for r in recorded)
    assert state["retries"] == 8 and all(r.info["attempts"] == 2 for r in recorded)
    fn = Eval(flaky=first, fails=5)
    (tmp_path / "again").mkdir()
    _, state, recorded = run_loop(fn, tmp_path / "again", budget=4, workers=2, retries=2)
    assert len(recorded) == 4 and all(r.failed and "RuntimeError: lost" in r.failed for r in recorded)
    assert all(r.info["attempts"] == 3 and "after 3 attempts" in r.failed for r in recorded)
    assert state["retries"] == 8 and state["failed"] == 4


def test_a_config_error_ends_the_search(tmp_path):
    with pytest.raises(ConfigError, match="bad option"):
        run_loop(Eval(config_error=True), tmp_path, budget=3)


def test_resume_resubmits_only_what_never_finished(tmp_path):
    """A scheduler crash left submissions 0..2 pending; 1 finished after the checkpoint (it is journaled)."""
    journal = Journal(tmp_path / "evaluations.jsonl")
    archs = [{"a": 0, "b": 1}, {"a": 2, "b": 3}, {"a": 4, "b": 5}]
    journal.append(0, 1, Result(archs[1], {"acc": 5.0}, {"sid": 1, "attempts": 1}))
    with open(journal.path, "a") as f:
        f.write('{"stage": 0, "sid": 2, "res')  # a torn line: the crash hit that write
    state = {**new_loop_state(), "next_sid": 3, "proposed": 3,
             "pending": {str(i): {"arch": a, "attempts": 0} for i, a in enumerate(archs)}}
    fn = Eval()
    opt, state, recorded = run_loop(fn, tmp_path, budget=5, workers=3, state=state)
    assert sorted(fn.calls[:2]) == [(0, 1), (4, 5)]
    assert (2, 3) not in fn.calls and len(fn.calls) == 4  # 0 and 2 re-submitted, 1 taken from the journal
    assert recorded[0].arch == archs[1] and recorded[0].info["sid"] == 1
    assert sorted(r.info["sid"] for r in recorded) == [0, 1, 2, 3, 4] and state["evaluated"] == 5
