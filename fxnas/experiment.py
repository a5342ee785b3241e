"""The Experiment: owns every component of a search run, runs the estimator chain, records, checkpoints.

One loop serves one-shot and discrete search (as in ModularNAS): the optimizer proposes, ``space.apply``
transforms the supernet, estimators train/evaluate, results go back to the optimizer. An Experiment is the
``SearchContext`` estimators run in (fxnas.estim.base); its files live in an ExperimentFolder
(fxnas.outputs), its console output in a Display (fxnas.progress).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from rich.console import Console

from .async_loop import evaluate_on_workers
from .distributed import Distributed
from .errors import ConfigError, DivergedError
from .loop import Guarded, discrete_loop
from .objectives import (
    Constraint,
    Objective,
    pareto_front,
    parse_constraint,
    parse_objective,
    result_score,
    write_pareto,
)
from .optim.base import Result, arch_key
from .outputs import ExperimentFolder, ReaderFolder
from .pool import parallel_settings
from .progress import Display, Tracker
from .rng import jsonable, preserved_rng, rng_state, seed_everything, set_rng_state
from .supernet import space_of

if TYPE_CHECKING:
    from torch import nn

    from .estim.base import Estimator
    from .optim.base import Optimizer
    from .space import SearchSpace
    from .train.datasets import DataBundle
    from .train.trainer import Trainer

EvaluateFn = Callable[[dict], "Mapping[str, float] | Result"]
# threads are left out: evaluations that train share this process's torch state and global RNGs
EVALUATION_BACKENDS = ("local", "process", "dask")


def _brief(state: Any) -> Any:
    """``state`` as JSON data for the checkpoint summary, each tensor shown by its shape (weights stay in .pt)."""
    if isinstance(state, torch.Tensor):
        return f"tensor{list(state.shape)}"
    if isinstance(state, Mapping):
        return {str(k): _brief(v) for k, v in state.items()}
    if isinstance(state, (list, tuple)):
        return [_brief(v) for v in state]
    return jsonable(state)


class Experiment:
    """A search run: owns the supernet, space, data, trainer, optimizer, estimator chain and its output folder."""

    def __init__(self, model: nn.Module | None = None, space: SearchSpace | None = None,
                 data: DataBundle | None = None, trainer: Trainer | None = None, optimizer: Optimizer | None = None,
                 estimators: Sequence[Estimator] = (), *, name: str = "exp", out_root: str | os.PathLike = "exp",
                 seed: int = 0, objectives: Sequence[Any] | None = None, constraints: Sequence[Any] = (),
                 device: str = "cpu", export: Mapping[str, Any] | None = None,
                 parallel: Mapping[str, Any] | None = None, config: Mapping[str, Any] | None = None,
                 console: Console | None = None, progress: bool = True,
                 distributed: Distributed | None = None) -> None:
        self.name, self.seed, self.config = name, int(seed), dict(config or {})
        self.distributed = distributed or Distributed()
        folder = ExperimentFolder if self.distributed.writer else ReaderFolder  # rank 0 writes the outputs
        self.folder = folder(Path(out_root) / name)
        self.out_dir = self.folder.out_dir
        self.device = torch.device(device)
        self.model = model
        self.space = space if space is not None else (space_of(model) if model is not None else None)
        if model is not None:
            model.to(self.device)
        if self.space is not None:
            self.space.to(self.device)
        self.data, self.trainer, self.optimizer = data, trainer, optimizer
        self.estimators = list(estimators)
        objs = list(objectives) if objectives else [trainer.metric if trainer is not None else None]
        self.objectives: list[Objective] = [parse_objective(o) for o in objs]
        self.constraints: list[Constraint] = [parse_constraint(c) for c in constraints]
        self.export = dict(export or {})
        self.parallel = parallel_settings(parallel)
        if self.parallel["backend"] not in EVALUATION_BACKENDS:
            raise ConfigError(f"parallel.backend must be one of {', '.join(EVALUATION_BACKENDS)} for a search, "
                              f"got {self.parallel['backend']!r}")
        if not self.distributed.writer:  # rank 0 speaks for the run
            console, progress = Console(quiet=True), False
        self.display = Display(console, progress)
        if self.distributed.enabled:
            if self.parallel["backend"] != "local":
                raise ConfigError(f"a data-parallel (torchrun) run evaluates with parallel.backend local, got "
                                  f"{self.parallel['backend']!r}")
            self.distributed.attach(data, trainer, optimizer)
        self.history: list[Result] = []
        self.best: Result | None = None
        self.stage = 0  # index of the estimator running now
        self.loop_state: dict[str, dict[str, Any]] = {}  # evaluate_loop progress per stage (async: + pending)
        self.trainer_stage = -1  # the stage the trainer was configured for
        self.alpha_lines = 0
        self.resumed = False

    # --- output -----------------------------------------------------------------------------------------
    def path(self, name: str) -> Path:
        """``out_dir / name`` (the folder is created)."""
        return self.folder.path(name)

    def log(self, msg: str, style: str | None = None, console: bool = True) -> None:
        """Append ``msg`` to log.txt and (unless ``console`` is False) print it on the console."""
        import time

        self.folder.append_line("log.txt", f"{time.strftime('%Y-%m-%d %H:%M:%S')} {msg}")
        if console:
            self.display.print(msg, style=style)

    def track(self, total: int, description: str, completed: int = 0) -> AbstractContextManager[Tracker]:
        """A progress bar with ETA for ``total`` units of work (nested bars share one display)."""
        return self.display.track(total, description, completed)

    # --- results ----------------------------------------------------------------------------------------
    def is_last_stage(self) -> bool:
        """True while the last estimator of the chain runs."""
        return self.stage == len(self.estimators) - 1

    def stage_results(self, loop_only: bool = False) -> list[Result]:
        """The results recorded by the running stage (only its discrete loop's with ``loop_only``)."""
        return [r for r in self.history if r.info.get("stage") == self.stage and (r.info.get("loop") or not loop_only)]

    def score(self, result: Result) -> float:
        """How good ``result`` is on the first objective (higher is better; infeasible and failed rank last)."""
        return result_score(result, self.objectives[0], self.constraints)

    def record(self, result: Result) -> Result:
        """Append ``result`` to the history (history.jsonl); keep the best and write arch_best.yaml.

        A result with a non-finite metric is recorded as failed (with the reason) and never becomes the best.
        """
        result.info.setdefault("stage", self.stage)
        if self.distributed.enabled:  # every rank keeps rank 0's results, so all rank (and pick) alike
            arch, metrics, info = self.distributed.broadcast((result.arch, result.metrics, result.info))
            if not self.distributed.writer:  # in place: the optimizer steps on these very objects
                result.arch, result.metrics = arch, metrics
                result.info.clear()
                result.info.update(info)
        bad = [k for k, v in result.metrics.items() if isinstance(v, float) and not math.isfinite(v)]
        if bad and not result.failed:
            result.info.update(failed=f"metric {bad[0]} is {result.metrics[bad[0]]}", rank=False)
        self.history.append(result)
        self.folder.append_json("history.jsonl", result.to_dict())
        try:  # results marked rank=False (warm-up, failed) or without the objective's metric never become the best
            better = result.info.get("rank", True) is not False and (
                self.best is None or self.score(result) > self.score(self.best))
        except ConfigError:
            better = False
        if better:
            self.best = result
            self.write_best()
        shown = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in result.metrics.items())
        if result.failed:
            shown = f"failed: {result.failed}" + (f" ({shown})" if shown else "")
        # per-epoch results, failures and new bests go to the console; every result goes to log.txt
        self.log(f"[{len(self.history)}] {shown}" + (" (best)" if better else ""),
                 style="yellow" if result.failed else None,
                 console=better or "epoch" in result.info or bool(result.failed))
        return result

    def write_best(self) -> None:
        """Write the best arch and its metrics to arch_best.yaml."""
        if self.best is not None:
            self.folder.write_yaml("arch_best.yaml", {"arch": self.best.arch, "metrics": self.best.metrics,
                                                      "info": self.best.info})

    def record_alphas(self, epoch: int) -> None:
        """Append the TensorParam values (and their softmax) of this epoch to alphas.jsonl."""
        if self.space is None or not self.space.tensors():
            return
        row: dict[str, Any] = {"epoch": epoch, "alphas": {}, "softmax": {}}
        for name, p in self.space.tensors().items():
            v = p.value.detach().float().cpu()
            row["alphas"][name] = v.tolist()
            row["softmax"][name] = torch.softmax(v.flatten(), 0).view_as(v).tolist()
        self.folder.append_json("alphas.jsonl", row)
        self.alpha_lines += 1

    # --- training helpers for estimators ----------------------------------------------------------------
    def configure_trainer(self, epochs: int | None = None) -> None:
        """Build the trainer's optimizer for the current stage (once per stage; a resumed stage keeps its state)."""
        if self.trainer is None or self.model is None or self.data is None:
            raise ConfigError("this estimator needs a model, data and a trainer in the experiment")
        if self.trainer_stage != self.stage or self.trainer.optimizer is None:
            self.trainer.configure(self.model, self.trainer.steps_for(self.data.train), epochs=epochs)
            self.trainer_stage = self.stage

    def evaluate(self, model: nn.Module | None = None, split: str = "valid",
                 max_steps: int | None = None) -> dict[str, float]:
        """The trainer's metrics of ``model`` (default: the supernet as it stands) on a data split."""
        if self.trainer is None or self.data is None:
            raise ConfigError("evaluation needs data and a trainer in the experiment")
        loader = self.data.split(split)
        target = self.model if model is None else model
        if target is None:
            raise ConfigError("evaluation needs a model")
        with preserved_rng():  # evaluating must not change what training draws next
            return self.trainer.evaluate(target, loader, max_steps)

    # --- discrete loop ----------------------------------------------------------------------------------
    def evaluate_loop(self, evaluate_fn: EvaluateFn, budget: int, batch_size: int = 1) -> list[Result]:
        """``while budget: archs = optimizer.next(b); metrics = evaluate_fn(arch); optimizer.step(results)``.

        Archs already evaluated in this stage are not evaluated again (their cached result goes back to the
        optimizer); an evaluation that diverges or gives a non-finite metric is recorded as failed and the
        search goes on; the loop checkpoints after each batch and resumes where a killed run stopped.
        """
        if self.optimizer is None:
            raise ConfigError("evaluate_loop needs an optimizer")
        if self.parallel["backend"] != "local":
            return evaluate_on_workers(self, Guarded(evaluate_fn), budget)
        st = self.loop_state.setdefault(str(self.stage), {"evaluated": 0, "proposed": 0})
        cache = {arch_key(r.arch): r for r in self.stage_results(loop_only=True)}
        guarded = Guarded(evaluate_fn)
        with self.track(budget, f"{type(self.optimizer).__name__} evaluations", st["evaluated"]) as bar:
            def record(r: Result) -> Result:
                r.info.update(stage=self.stage, loop=True, index=st["evaluated"])
                bar.advance()
                return self.record(r)

            discrete_loop(self.optimizer, lambda archs: [guarded(a) for a in archs], budget, batch_size,
                          cache, st, record, self.checkpoint)
        return self.stage_results(loop_only=True)

    # --- checkpoints ------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Everything a resumed run needs (tensors and plain data only): weights, space, optimizer, trainer,
        estimators, RNGs, history."""
        return {
            "version": 2, "stage": self.stage, "trainer_stage": self.trainer_stage,
            "model": self.model.state_dict() if self.model is not None else None,
            "space": self.space.state_dict() if self.space is not None else None,
            "optimizer": self.optimizer.state_dict() if self.optimizer is not None else None,
            "trainer": self.trainer.state_dict() if self.trainer is not None else None,
            "estimators": [e.state_dict() for e in self.estimators],
            "loop_state": self.loop_state, "rng": rng_state(),
            "history": [jsonable(r.to_dict()) for r in self.history],
            "best": self.history.index(self.best) if self.best is not None else None,
            "alpha_lines": self.alpha_lines, "config": jsonable(self.config),
        }

    def checkpoint(self) -> Path:
        """Write checkpoint.pt and its checkpoint.json summary, each atomically."""
        if not self.distributed.writer:
            return self.folder.checkpoint_path  # rank 0's checkpoint holds the one state of every rank
        est = self.estimators[self.stage].state_dict() if self.stage < len(self.estimators) else {}
        return self.folder.save_checkpoint(self.state_dict(), {"stage": self.stage, "estimator": _brief(est),
                                                               "results": len(self.history)})

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore what state_dict() saved (components are built fresh first, from the same config)."""
        if self.model is not None and state["model"] is not None:
            self.model.load_state_dict(state["model"])
        if self.space is not None and state["space"] is not None:
            self.space.load_state_dict(state["space"])
        if self.optimizer is not None and state["optimizer"] is not None:
            self.optimizer.load_state_dict(state["optimizer"])
        self.stage, self.trainer_stage = int(state["stage"]), int(state["trainer_stage"])
        if self.trainer is not None and state["trainer"] is not None and self.trainer_stage == self.stage:
            self.trainer.load_state_dict(state["trainer"])  # applied when the stage configures the trainer
        for est, s in zip(self.estimators, state["estimators"]):
            est.load_state_dict(s)
        self.loop_state = {k: dict(v) for k, v in state["loop_state"].items()}
        self.history = [Result.from_dict(d) for d in state["history"]]
        self.best = self.history[state["best"]] if state["best"] is not None else None
        self.alpha_lines = int(state["alpha_lines"])
        set_rng_state(state["rng"])

    def check_resume_config(self, saved: Mapping[str, Any]) -> None:
        """ConfigError when the config changed where the checkpoint no longer fits; a warning naming the
        other changed keys."""
        from .config.changes import resume_changes

        if self.config and saved:
            warning = resume_changes(saved, jsonable(self.config), str(self.out_dir))
            if warning:
                self.log(f"warning: resuming with config changes: {warning}", style="yellow")

    def resume(self) -> bool:
        """Load checkpoint.pt when there is one (the output files are cut back to it); False when none."""
        state = self.folder.load_checkpoint()
        if state is None:
            return False
        self.check_resume_config(state.get("config", {}))
        self.load_state_dict(state)
        if self.optimizer is not None:
            self.optimizer.on_resume(self)  # e.g. re-applies temperatures kept on the ops
        self.folder.cut_back(len(self.history), self.alpha_lines)
        self.write_best()
        self.resumed = True
        return True

    # --- the run ----------------------------------------------------------------------------------------
    def check_metrics(self) -> None:
        """ConfigError, before anything runs, when an objective or constraint names a metric no estimator
        of the chain produces (with the closest names)."""
        from .options import closest_hint

        produced: set[str] = set()
        for est in self.estimators:
            names = est.metric_names(self)
            if names is None:
                return  # a user evaluation function: its metrics are known only once it runs
            produced |= set(names)
        wanted = [("objective", o.metric) for o in self.objectives if o.metric is not None]
        wanted += [("constraint", c.metric) for c in self.constraints]
        for what, m in wanted:
            if m not in produced:
                raise ConfigError(f"{what} metric {m!r} is not produced by this experiment"
                                  f"{closest_hint(m, sorted(produced))} Metrics: {', '.join(sorted(produced))}")

    def start_fresh(self, overwrite: bool) -> None:
        """Refuse to replace a checkpointed run unless ``overwrite``; then clear the folder and seed."""
        when = self.folder.checkpoint_time()
        if when is not None and not overwrite:
            raise ConfigError(f"{self.out_dir} has a checkpoint from {when}: use --resume to continue or "
                              f"--overwrite to start again")
        self.folder.clear()
        seed_everything(self.seed)

    def run(self, resume: bool = False, overwrite: bool = False) -> dict[str, Any]:
        """Run the estimator chain (continuing from checkpoint.pt when ``resume``); the best arch + metrics.

        A run whose training diverges stops with DivergedError after a checkpoint; ``resume`` continues it.
        """
        if not self.estimators:
            raise ConfigError("the experiment has no estimators (estim: [{type: ...}])")
        self.folder.check()
        self.check_metrics()
        if resume and self.resume():
            self.log(f"resumed {self.name} at stage {self.stage} with {len(self.history)} results")
        else:
            self.start_fresh(overwrite)
            if resume:
                self.log(f"no checkpoint in {self.out_dir}; starting afresh")
        if self.config:
            self.folder.write_yaml("config.yaml", self.config)
        self.distributed.barrier()  # no rank trains before every rank has resumed (or rank 0 cleared the folder)
        try:
            while self.stage < len(self.estimators):
                est = self.estimators[self.stage]
                self.log(f"stage {self.stage + 1}/{len(self.estimators)}: {type(est).__name__}")
                est.run(self)
                self.stage += 1
                self.checkpoint()
            return self.finish()
        except DivergedError as exc:
            self.checkpoint()
            self.log(f"stopped: {exc}", style="red")
            raise

    def finish(self) -> dict[str, Any]:
        """Write the Pareto front (several objectives) and the exported subnet; the summary of the run."""
        failed = [r for r in self.history if r.failed]
        if self.best is None and failed:
            raise ConfigError(f"every result of the search failed ({len(failed)} of {len(self.history)}; the last: "
                              f"{failed[-1].failed}); see {self.out_dir / 'history.jsonl'}")
        if self.best is None:
            raise ConfigError("the search recorded no result with the objective metric "
                              f"{self.objectives[0].name()!r}; check the estimators and objectives")
        summary: dict[str, Any] = {"arch": dict(self.best.arch), "metrics": dict(self.best.metrics),
                                   "out_dir": str(self.out_dir), "results": len(self.history),
                                   "failed": sum(1 for r in self.history if r.failed)}
        if not self.distributed.writer:  # rank 0 writes the front and the exported subnet
            return summary
        if len(self.objectives) > 1:
            ranked = [r for r in self.history if not r.failed and all(o.metric in r.metrics for o in self.objectives)]
            front = pareto_front(ranked, self.objectives, self.constraints)
            write_pareto(self.out_dir, front, self.objectives, ranked, plot=bool(self.export.get("plot", True)))
            summary["pareto"] = len(front)
        if self.model is not None and self.export.get("materialize", True):
            from .export.best import export_best

            summary.update(export_best(self))
        self.log(f"best arch: {self.best.arch}")
        self.folder.write_json("summary.json", summary)  # written last: its presence marks a finished run
        return summary
