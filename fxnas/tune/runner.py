"""The Tuner: proposes param values with an optimizer, evaluates them on a target, N trials in flight.

Results come back as they finish and go to the optimizer at once (no lockstep batches). The run folder
``<out_root>/<name>/`` holds ``config.yaml``, ``history.jsonl`` (one line per finished trial), ``best.yaml``,
``log.txt``, ``checkpoint.pt`` (after every result: optimizer, history, trials in flight), one folder per
trial under ``trials/`` and, with the Optuna optimizer, its ``optuna.db``. ``run(resume=True)`` continues a
killed run: finished trials are kept and the trials that were in flight run again.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, wait
from pathlib import Path
from typing import Any

from rich.console import Console

from ..errors import ConfigError
from ..objectives import Objective, parse_constraint, parse_objective, result_score
from ..optim.base import Optimizer, Result
from ..outputs import ExperimentFolder
from ..pool import make_executor, parallel_settings
from ..progress import Display
from ..rng import jsonable
from ..space import SearchSpace
from .target import TrialRun, TuneTarget, run_trial

TUNE_OUTPUTS = ("log.txt", "history.jsonl", "best.yaml", "checkpoint.pt", "checkpoint.json", "config.yaml",
                "optuna.db")


class Tuner:
    """A tuning run: a space of params, a target that evaluates them, an optimizer that proposes them."""

    def __init__(self, space: SearchSpace, target: TuneTarget, optimizer: Optimizer, *, name: str = "tune",
                 out_root: str | os.PathLike = "tune", budget: int = 20, objectives: Sequence[Any] | None = None,
                 constraints: Sequence[Any] = (), parallel: Mapping[str, Any] | None = None,
                 config: Mapping[str, Any] | None = None, console: Console | None = None,
                 progress: bool = True) -> None:
        self.space, self.target, self.optimizer = space, target, optimizer
        self.name, self.budget = name, int(budget)
        self.folder = ExperimentFolder(Path(out_root) / name)
        self.out_dir = self.folder.out_dir
        self.objectives: list[Objective] = [parse_objective(o) for o in (objectives or [target.default_metric])]
        self.constraints = [parse_constraint(c) for c in constraints]
        self.parallel = parallel_settings(parallel)
        self.config = dict(config or {})
        self.display = Display(console, progress)
        self.history: list[Result] = []
        self.best: Result | None = None
        self.pending: dict[int, dict[str, Any]] = {}  # trial number -> params, submitted and not finished
        self.next_number = 0

    # --- records ----------------------------------------------------------------------------------------
    def score(self, r: Result) -> float:
        """How good a result is on the first objective (failed and pruned trials rank last)."""
        return result_score(r, self.objectives[0], self.constraints)

    def log(self, msg: str, style: str | None = None, console: bool = True) -> None:
        """Append ``msg`` to log.txt and print it unless ``console`` is False."""
        import time

        self.folder.append_line("log.txt", f"{time.strftime('%Y-%m-%d %H:%M:%S')} {msg}")
        if console:
            self.display.print(msg, style=style)

    def record(self, r: Result) -> None:
        """Append a finished trial to history.jsonl; keep the best (best.yaml)."""
        self.history.append(r)
        self.folder.append_json("history.jsonl", r.to_dict())
        try:
            better = not r.failed and (self.best is None or self.score(r) > self.score(self.best))
        except ConfigError:  # the result lacks the objective's metric
            better = False
        if better:
            self.best = r
            self.folder.write_yaml("best.yaml", {"params": r.arch, "metrics": r.metrics, "trial": r.info["trial"]})
        shown = ", ".join(f"{k}={_fmt(v)}" for k, v in {**r.arch, **r.metrics}.items())
        if r.failed:
            shown = f"{'pruned' if r.info.get('pruned') else 'failed'}: {r.failed} ({shown})"
        self.log(f"[trial {r.info['trial']}] {shown}" + (" (best)" if better else ""),
                 style="yellow" if r.failed and not r.info.get("pruned") else None)

    # --- checkpoints ------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Everything a resumed run needs: optimizer, finished trials, trials in flight (plain data)."""
        return {"version": 1, "optimizer": self.optimizer.state_dict(),
                "history": [jsonable(r.to_dict()) for r in self.history],
                "best": self.history.index(self.best) if self.best is not None else None,
                "pending": [[n, jsonable(p)] for n, p in sorted(self.pending.items())],
                "next_number": self.next_number, "config": jsonable(self.config)}

    def checkpoint(self) -> None:
        """Write checkpoint.pt (atomically) and its summary."""
        self.folder.save_checkpoint(self.state_dict(), {"trials": len(self.history), "in_flight": len(self.pending)})

    def resume(self) -> bool:
        """Load checkpoint.pt (history.jsonl cut back to it); False when there is none."""
        state = self.folder.load_checkpoint()
        if state is None:
            return False
        self.optimizer.load_state_dict(state["optimizer"])
        self.optimizer.on_resume(self)
        self.history = [Result.from_dict(d) for d in state["history"]]
        self.best = self.history[state["best"]] if state["best"] is not None else None
        self.pending = {int(n): dict(p) for n, p in state["pending"]}
        self.next_number = int(state["next_number"])
        self.folder.cut_back(len(self.history), 0)
        return True

    def start_fresh(self, overwrite: bool) -> None:
        """Refuse to replace a checkpointed run unless ``overwrite``; then clear what an earlier run left."""
        when = self.folder.checkpoint_time()
        if when is not None and not overwrite:
            raise ConfigError(f"{self.out_dir} has a checkpoint from {when}: use --resume to continue or "
                              f"--overwrite to start again")
        for f in TUNE_OUTPUTS:
            (self.out_dir / f).unlink(missing_ok=True)
        shutil.rmtree(self.out_dir / "trials", ignore_errors=True)

    # --- the run ----------------------------------------------------------------------------------------
    def _submit(self, ex: Any, number: int, params: dict[str, Any]) -> Future:
        trial = TrialRun(number, (self.out_dir / "trials" / str(number)).resolve(), self.optimizer.pruner(params))
        return ex.submit(run_trial, self.target, params, trial)

    def run(self, resume: bool = False, overwrite: bool = False) -> dict[str, Any]:
        """Evaluate ``budget`` trials, ``parallel.workers`` at a time; the best params and their metrics."""
        self.folder.check()
        if resume and self.resume():
            self.log(f"resumed {self.name} with {len(self.history)} trials done, {len(self.pending)} to rerun")
        else:
            self.start_fresh(overwrite)
            self.optimizer.on_start(self)
        self.folder.write_yaml("config.yaml", {k: v for k, v in self.config.items() if k != "base_dir"})
        workers = self.parallel["workers"]
        in_flight: dict[Future, int] = {}
        with make_executor(self.parallel) as ex, self.display.track(self.budget, "trials", len(self.history)) as bar:
            for number, params in sorted(self.pending.items()):  # what a killed run left unfinished
                in_flight[self._submit(ex, number, params)] = number
            exhausted = False
            while True:
                while not exhausted and len(in_flight) < workers and len(self.history) + len(in_flight) < self.budget:
                    proposed = self.optimizer.next(1)
                    if not proposed:
                        exhausted = True
                        break
                    number, self.next_number = self.next_number, self.next_number + 1
                    self.pending[number] = dict(proposed[0])
                    in_flight[self._submit(ex, number, self.pending[number])] = number
                if not in_flight:
                    break
                done, _ = wait(list(in_flight), return_when=FIRST_COMPLETED)
                for fut in sorted(done, key=lambda f: in_flight[f]):
                    number = in_flight.pop(fut)
                    params = self.pending.pop(number)
                    try:
                        r = fut.result()
                    except Exception as exc:  # the worker itself died (a killed process): the trial failed
                        r = Result.failure(params, f"worker lost: {type(exc).__name__}: {exc}", {"trial": number})
                    self.record(r)
                    self.optimizer.step([r])
                    self.checkpoint()
                    bar.advance()
        return self.finish()

    def finish(self) -> dict[str, Any]:
        """The summary: best params and metrics, trial counts; ConfigError when every trial failed."""
        if self.best is None:
            failed = [r for r in self.history if r.failed]
            last = f" (the last: {failed[-1].failed})" if failed else ""
            raise ConfigError(f"no trial of {self.name} gave the objective metric {self.objectives[0].name()!r}"
                              f"{last}; see {self.out_dir / 'history.jsonl'}")
        pruned = sum(1 for r in self.history if r.info.get("pruned"))
        summary = {"params": dict(self.best.arch), "metrics": dict(self.best.metrics), "trial": self.best.info["trial"],
                   "trials": len(self.history), "failed": sum(1 for r in self.history if r.failed) - pruned,
                   "pruned": pruned, "out_dir": str(self.out_dir)}
        shown = ", ".join(f"{k}={_fmt(v)}" for k, v in summary["metrics"].items())
        self.log(f"best params: {summary['params']} ({shown})")
        return summary


def _fmt(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)
