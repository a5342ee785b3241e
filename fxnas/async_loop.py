"""The asynchronous discrete search loop: N evaluations in flight, results fed back as they finish.

``discrete_loop`` (fxnas.loop) proposes a batch, waits for all of it, steps the optimizer: the in-process
default, whose results are reproducible bit for bit. ``async_loop`` keeps ``workers`` evaluations running on
an executor (fxnas.pool: spawned processes or dask workers) and tells the optimizer each result the moment it
arrives, asking it for one new arch per freed worker, so a slow evaluation never idles the others.

Fault handling: an evaluation that raises, or whose worker dies (dask ``KilledWorker``, a broken process
pool), is re-submitted up to ``retries`` times, then recorded as failed (``Result.failure``) and the search
goes on. An FxnasError (a ConfigError...) raised by an evaluation is bad input, not bad luck: it ends
the search.

Consistency on disk: each finished result is appended to a journal (``evaluations.jsonl``, one JSON line per
result keyed by stage and submission id, flushed and fsynced before anything else sees it). The loop state
(``state``: counters, the submission id counter and the archs submitted but unfinished) is checkpointed by
``on_change`` after every proposal round, before submitting, and after every result. A resumed run (the
scheduler side crashed) takes the unfinished submissions from the checkpoint, picks up from the journal the
ones that finished after it, and re-submits only those that never finished.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, BrokenExecutor, Executor, Future, wait
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import ConfigError, FxnasError
from .optim.base import Optimizer, Result, arch_key
from .pool import check_picklable, make_executor
from .rng import jsonable

if TYPE_CHECKING:
    from .experiment import Experiment
    from .loop import Guarded


class Journal:
    """Append-only record of finished evaluations (``evaluations.jsonl``): one fsynced line per result."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def append(self, stage: int, sid: int, result: Result) -> None:
        """Record the result of submission ``sid`` of ``stage`` durably (a crash later cannot lose it)."""
        line = json.dumps(jsonable({"stage": stage, "sid": sid, "result": result.to_dict()})) + "\n"
        with open(self.path, "a") as f:
            f.write(line)
            f.flush()
            os.fsync(f.fileno())

    def results(self, stage: int) -> dict[int, Result]:
        """The recorded results of ``stage`` by submission id (a torn last line, from a crash, is ignored)."""
        out: dict[int, Result] = {}
        if not self.path.exists():
            return out
        for line in self.path.read_text().splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue  # only the last line can be torn: the writer died inside that write
            if row.get("stage") == stage:
                out[int(row["sid"])] = Result.from_dict(row["result"])
        return out


def new_loop_state() -> dict[str, Any]:
    """The plain-data state of a fresh loop (kept in the experiment's checkpoint)."""
    return {"evaluated": 0, "proposed": 0, "next_sid": 0, "pending": {}, "retries": 0, "failed": 0}


class AsyncLoop:
    """One run of the asynchronous loop (see the module docstring); ``run()`` returns when it is done.

    ``make_executor`` builds the executor (called again when a process pool breaks); ``fn`` is the picklable
    evaluate function (arch -> Result, e.g. ``loop.Guarded``); ``cache`` maps arch keys to results already
    known (re-proposals are answered from it); ``on_result`` records a result (returns it, maybe amended).
    """

    def __init__(self, optimizer: Optimizer, make_executor: Callable[[], Executor], fn: Callable[[dict], Any],
                 budget: int, workers: int, retries: int, cache: dict[tuple, Result], state: dict[str, Any],
                 journal: Journal, stage: int = 0, on_result: Callable[[Result], Result] = lambda r: r,
                 on_change: Callable[[], Any] = lambda: None) -> None:
        self.optimizer, self.make_executor, self.fn = optimizer, make_executor, fn
        self.budget, self.workers, self.retries = int(budget), max(1, int(workers)), int(retries)
        self.cache, self.state, self.journal, self.stage = cache, state, journal, stage
        self.on_result, self.on_change = on_result, on_change
        for k, v in new_loop_state().items():
            state.setdefault(k, v)
        state["pending"] = {int(s): dict(p) for s, p in state["pending"].items()}  # JSON keys come back as str
        self.inflight: dict[Future, tuple[int, int]] = {}  # future -> (sid, executor generation)
        self.twins: dict[tuple, int] = {}  # re-proposals of an arch still in flight (allow_repeat optimizers)
        self.generation = 0
        self.executor: Executor | None = None

    # --- submissions ------------------------------------------------------------------------------------
    def submit(self, sid: int) -> None:
        """Send submission ``sid`` to the executor."""
        assert self.executor is not None
        self.inflight[self.executor.submit(self.fn, self.state["pending"][sid]["arch"])] = (sid, self.generation)

    def propose(self) -> bool:
        """Ask the optimizer for archs to fill the free workers; False when it has none left to give."""
        st = self.state
        max_proposals = 10 * self.budget + 100  # an optimizer that only repeats itself must still stop
        free = min(self.workers - len(st["pending"]), self.budget - st["evaluated"] - len(st["pending"]))
        if free <= 0 or st["proposed"] >= max_proposals:
            return free <= 0
        archs = self.optimizer.next(free)
        if not archs:
            return False
        st["proposed"] += len(archs)
        known, new = [], []
        running = {arch_key(p["arch"]) for p in st["pending"].values()}
        for a in archs:
            k = arch_key(a)
            if k in self.cache:
                known.append(self.cache[k])
            elif k in running:
                self.twins[k] = self.twins.get(k, 0) + 1
            else:
                sid, st["next_sid"] = st["next_sid"], st["next_sid"] + 1
                st["pending"][sid] = {"arch": dict(a), "attempts": 0}
                running.add(k)
                new.append(sid)
        if known:
            self.optimizer.step(known)
        self.on_change()  # the proposals are on disk before any worker sees them
        for sid in new:
            self.submit(sid)
        return True

    # --- results ----------------------------------------------------------------------------------------
    def deliver(self, sid: int, result: Result, journaled: bool = False) -> None:
        """Record the result of ``sid``: journal, history (on_result), optimizer, counters."""
        if not journaled:
            result.info.update(sid=sid, attempts=self.state["pending"][sid]["attempts"] + 1)
            self.journal.append(self.stage, sid, result)
        del self.state["pending"][sid]
        k = arch_key(result.arch)
        self.cache[k] = self.on_result(result)
        self.state["evaluated"] += 1
        self.state["failed"] += bool(result.failed)
        self.optimizer.step([self.cache[k]] * (1 + self.twins.pop(k, 0)))

    def collect(self, fut: Future, sid: int, gen: int) -> None:
        """Deliver a finished future, or re-submit it (retries left), or record it as failed."""
        p = self.state["pending"][sid]
        try:
            out = fut.result()
        except FxnasError:  # bad input (a ConfigError, a wrong model...): the same on every attempt
            raise
        except Exception as exc:  # the evaluation raised, or its worker died
            if isinstance(exc, BrokenExecutor) and gen == self.generation:
                self.restart()  # a dead worker breaks the whole process pool: start a new one
            if p["attempts"] < self.retries:
                p["attempts"] += 1
                self.state["retries"] += 1
                self.submit(sid)
                return
            reason = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}".rstrip(": ")
            out = Result.failure(p["arch"], f"{reason} (after {p['attempts'] + 1} attempts)")
        r = out if isinstance(out, Result) else Result(dict(p["arch"]), {m: float(v) for m, v in out.items()})
        self.deliver(sid, r)

    def restart(self) -> None:
        """Replace a broken executor; what it still held fails with BrokenExecutor and is re-submitted."""
        assert self.executor is not None
        self.executor.shutdown(wait=False, cancel_futures=True)
        self.executor = self.make_executor()
        self.generation += 1

    # --- the loop ---------------------------------------------------------------------------------------
    def recover(self) -> None:
        """Take from the journal what finished after the checkpoint; re-submit what never finished."""
        done = self.journal.results(self.stage)
        for sid in sorted(self.state["pending"]):
            if sid in done:
                self.deliver(sid, done[sid], journaled=True)
        if done:
            self.on_change()
        for sid in sorted(self.state["pending"]):
            self.submit(sid)

    def run(self) -> None:
        """Run until ``budget`` archs are evaluated or the optimizer proposes none; close the executor."""
        self.executor = self.make_executor()
        try:
            self.recover()
            more = True
            while True:
                while more and len(self.state["pending"]) < self.workers and \
                        self.state["evaluated"] + len(self.state["pending"]) < self.budget:
                    more = self.propose()
                    if self.state["proposed"] >= 10 * self.budget + 100:
                        more = False
                if not self.inflight:
                    break
                done, _ = wait(list(self.inflight), return_when=FIRST_COMPLETED)
                for fut in done:
                    sid, gen = self.inflight.pop(fut)
                    self.collect(fut, sid, gen)
                self.on_change()
        finally:
            self.executor.shutdown(wait=True, cancel_futures=True)


def evaluate_on_workers(exp: Experiment, fn: Guarded, budget: int) -> list[Result]:
    """``exp.evaluate_loop`` on the parallel executor: ``workers`` evaluations in flight, each result recorded
    in ``exp`` as it arrives (only estimators whose evaluations run elsewhere: ``parallel_safe``)."""
    assert exp.optimizer is not None
    est = exp.estimators[exp.stage] if exp.stage < len(exp.estimators) else None
    backend = exp.parallel["backend"]
    if est is not None and not est.parallel_safe:
        # the others train/evaluate the one supernet of this process (space.apply, BN recalibration, global
        # RNG): their evaluations cannot run elsewhere
        raise ConfigError(f"parallel.backend {backend} supports the Table and SubNet estimators (stage "
                          f"{exp.stage + 1} runs {type(est).__name__}, which evaluates on the one supernet "
                          f"of this process); use backend: local")
    check_picklable(fn.fn, backend)
    st = exp.loop_state.setdefault(str(exp.stage), {})
    cache = {arch_key(r.arch): r for r in exp.stage_results(loop_only=True)}
    with exp.track(budget, f"{type(exp.optimizer).__name__} evaluations", st.get("evaluated", 0)) as bar:
        def record(r: Result) -> Result:
            r.info.update(stage=exp.stage, loop=True, index=st["evaluated"])
            bar.advance()
            if r.failed and r.info.get("attempts", 1) > 1:
                exp.log(f"evaluation {r.info.get('sid')} failed after {r.info['attempts']} attempts: "
                         f"{r.failed}", style="yellow")
            return exp.record(r)

        AsyncLoop(exp.optimizer, lambda: make_executor(exp.parallel), fn, budget, exp.parallel["workers"],
                  exp.parallel["retries"], cache, st, Journal(exp.path("evaluations.jsonl")), exp.stage,
                  record, exp.checkpoint).run()
    if st.get("retries"):
        exp.log(f"{st['retries']} evaluations were re-submitted (an error or a lost worker)")
    return exp.stage_results(loop_only=True)
