"""The search routine: an Experiment owns every component, runs the estimator chain, records, checkpoints.

One loop serves one-shot and discrete search (as in ModularNAS): the optimizer proposes, ``space.apply``
transforms the supernet through update events, estimators train/evaluate, results go back to the optimizer.
Everything an experiment writes lives in ``<out_root>/<name>/``: ``log.txt``, ``history.jsonl``,
``arch_best.yaml``, ``alphas.jsonl`` (spaces with TensorParams), ``checkpoint.pt`` (+ ``checkpoint.json``).
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import yaml
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from .console import make_console
from .errors import ConfigError
from .loop import dask_client, dask_map, discrete_loop
from .objectives import pareto_front, parse_constraint, parse_objective, scalar_score, write_pareto
from .optim.base import Result, arch_key
from .rng import jsonable, preserved_rng, rng_state, seed_everything, set_rng_state
from .supernet import space_of

if TYPE_CHECKING:
    from torch import nn

    from .estim.base import Estimator
    from .optim.base import Optimizer
    from .space import SearchSpace
    from .train.data import DataBundle
    from .train.trainer import Trainer

EvaluateFn = Callable[[dict], "Mapping[str, float] | Result"]


def _truncate_lines(path: Path, n: int) -> None:
    """Keep the first ``n`` lines of ``path`` (a killed run may have written past its last checkpoint)."""
    if not path.exists():
        return
    lines = path.read_text().splitlines(keepends=True)[:n]
    path.write_text("".join(lines))


_VOLATILE = ("name", "out_root", "progress")  # config keys that may change between a run and its resume
_OUTPUTS = ("log.txt", "history.jsonl", "alphas.jsonl", "arch_best.yaml", "checkpoint.pt", "checkpoint.json",
            "config.yaml", "subnet.pt", "subnet.onnx", "pareto.json", "pareto.png")


class Tracker:
    """One progress bar of an experiment (a no-op when progress is off)."""

    def __init__(self, progress: Progress | None, task: Any) -> None:
        self._progress, self._task = progress, task

    def advance(self, n: float = 1) -> None:
        """Move the bar ``n`` steps on."""
        if self._progress is not None:
            self._progress.advance(self._task, n)

    def note(self, text: str) -> None:
        """Show ``text`` next to the bar (latest metrics)."""
        if self._progress is not None:
            self._progress.update(self._task, info=text)


class Experiment:
    """A search run: owns the supernet, space, data, trainer, optimizer, estimator chain and its output folder."""

    def __init__(self, model: nn.Module | None = None, space: SearchSpace | None = None,
                 data: DataBundle | None = None, trainer: Trainer | None = None, optimizer: Optimizer | None = None,
                 estimators: Sequence[Estimator] = (), *, name: str = "exp", out_root: str | os.PathLike = "exp",
                 seed: int = 0, objectives: Sequence[Any] | None = None, constraints: Sequence[Any] = (),
                 device: str = "cpu", export: Mapping[str, Any] | None = None,
                 parallel: Mapping[str, Any] | None = None, config: Mapping[str, Any] | None = None,
                 console: Console | None = None, progress: bool = True) -> None:
        self.name, self.seed, self.config = name, int(seed), dict(config or {})
        self.out_dir = Path(out_root) / name
        self.device = torch.device(device)
        self.model = model
        self.space = space if space is not None else (space_of(model) if model is not None else None)
        if model is not None:
            model.to(self.device)
        if self.space is not None:
            self.space.to(self.device)
        self.data, self.trainer, self.optimizer = data, trainer, optimizer
        self.estimators = list(estimators)
        default_metric = getattr(trainer, "metric", None)
        objs = list(objectives) if objectives else [default_metric]
        self.objectives = [parse_objective(o) for o in objs]
        self.constraints = [parse_constraint(c) for c in constraints]
        self.export = dict(export or {})
        self.parallel = {"backend": "local", "workers": 1, **(parallel or {})}
        if self.parallel["backend"] not in ("local", "dask"):
            raise ConfigError(f"parallel.backend must be 'local' or 'dask', got {self.parallel['backend']!r}")
        self.console = console or make_console(stderr=True)
        self.show_progress = progress
        self.history: list[Result] = []
        self.best: Result | None = None
        self.stage = 0  # index of the estimator running now
        self.loop_state: dict[str, dict[str, int]] = {}  # evaluate_loop progress per stage
        self.trainer_stage = -1  # the stage the trainer was configured for
        self.alpha_lines = 0
        self.resumed = False
        self._progress: Progress | None = None
        self._client: Any = None

    # --- output -----------------------------------------------------------------------------------
    def path(self, name: str) -> Path:
        """``out_dir / name`` (the folder is created)."""
        self.out_dir.mkdir(parents=True, exist_ok=True)
        return self.out_dir / name

    def log(self, msg: str, style: str | None = None, console: bool = True) -> None:
        """Append ``msg`` to log.txt and (unless ``console`` is False) print it on the console."""
        with open(self.path("log.txt"), "a") as f:
            f.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {msg}\n")
        if console:
            target = self._progress.console if self._progress is not None else self.console
            target.print(msg, style=style, highlight=False, markup=False)

    @contextlib.contextmanager
    def track(self, total: int, description: str, completed: int = 0) -> Iterator[Tracker]:
        """A progress bar with ETA for ``total`` units of work (nested bars share one display)."""
        if not self.show_progress or not self.console.is_terminal:  # a bar in a pipe or file is only noise
            yield Tracker(None, None)
            return
        owner = self._progress is None
        if owner:
            self._progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                      TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
                                      TextColumn("{task.fields[info]}"), console=self.console, transient=True)
            self._progress.start()
        progress = self._progress
        task = progress.add_task(description, total=total, completed=completed, info="")
        try:
            yield Tracker(progress, task)
        finally:
            progress.remove_task(task)
            if owner:
                progress.stop()
                self._progress = None

    def score(self, result: Result) -> float:
        """How good ``result`` is on the first objective (higher is better; infeasible results rank last)."""
        return scalar_score(result.metrics, self.objectives[0], self.constraints)

    def record(self, result: Result) -> Result:
        """Append ``result`` to the history (history.jsonl); keep the best and write arch_best.yaml."""
        result.info.setdefault("stage", self.stage)
        self.history.append(result)
        with open(self.path("history.jsonl"), "a") as f:
            f.write(json.dumps(jsonable(result.to_dict())) + "\n")
        try:  # results marked rank=False (warm-up) or without the objective's metric never become the best
            better = result.info.get("rank", True) is not False and (
                self.best is None or self.score(result) > self.score(self.best))
        except ConfigError:
            better = False
        if better:
            self.best = result
            self.write_best()
        shown = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in result.metrics.items())
        # per-epoch results and new bests go to the console; every result goes to log.txt
        self.log(f"[{len(self.history)}] {shown}" + (" (best)" if better else ""),
                 console=better or "epoch" in result.info)
        return result

    def write_best(self) -> None:
        """Write the best arch and its metrics to arch_best.yaml."""
        if self.best is not None:
            data = jsonable({"arch": self.best.arch, "metrics": self.best.metrics, "info": self.best.info})
            self.path("arch_best.yaml").write_text(yaml.safe_dump(data, sort_keys=False))

    def record_alphas(self, epoch: int) -> None:
        """Append the TensorParam values (and their softmax) of this epoch to alphas.jsonl."""
        if self.space is None or not self.space.tensors():
            return
        row: dict[str, Any] = {"epoch": epoch, "alphas": {}, "softmax": {}}
        for name, p in self.space.tensors().items():
            v = p.value.detach().float().cpu()
            row["alphas"][name] = v.tolist()
            row["softmax"][name] = torch.softmax(v.flatten(), 0).view_as(v).tolist()
        with open(self.path("alphas.jsonl"), "a") as f:
            f.write(json.dumps(row) + "\n")
        self.alpha_lines += 1

    # --- training helpers for estimators ----------------------------------------------------------
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
        loader = getattr(self.data, split)
        if loader is None:
            raise ConfigError(f"the data has no {split!r} split")
        with preserved_rng():  # evaluating must not change what training draws next
            return self.trainer.evaluate(self.model if model is None else model, loader, max_steps)

    # --- discrete loop ----------------------------------------------------------------------------
    def evaluate_loop(self, evaluate_fn: EvaluateFn, budget: int, batch_size: int = 1) -> list[Result]:
        """``while budget: archs = optimizer.next(b); metrics = evaluate_fn(arch); optimizer.step(results)``.

        Archs already evaluated in this stage are not evaluated again (their cached result goes back to the
        optimizer); the loop checkpoints after each batch and resumes where a killed run stopped.
        """
        if self.optimizer is None:
            raise ConfigError("evaluate_loop needs an optimizer")
        st = self.loop_state.setdefault(str(self.stage), {"evaluated": 0, "proposed": 0})
        mine = [r for r in self.history if r.info.get("stage") == self.stage and r.info.get("loop")]
        cache = {arch_key(r.arch): r for r in mine}
        with self.track(budget, f"{type(self.optimizer).__name__} evaluations", st["evaluated"]) as bar:
            def record(r: Result) -> Result:
                r.info.update(stage=self.stage, loop=True, index=st["evaluated"])
                bar.advance()
                return self.record(r)

            discrete_loop(self.optimizer, lambda archs: self._map(evaluate_fn, archs), budget, batch_size,
                          cache, st, record, self.checkpoint)
        return [r for r in self.history if r.info.get("stage") == self.stage and r.info.get("loop")]

    def _map(self, fn: EvaluateFn, archs: list[dict]) -> list[Any]:
        """Evaluate ``archs`` sequentially, or on a dask cluster when parallel.backend is dask."""
        if not archs:
            return []
        if self.parallel["backend"] == "local":
            return [fn(a) for a in archs]
        est = self.estimators[self.stage] if self.stage < len(self.estimators) else None
        if est is not None and not getattr(est, "parallel_safe", False):
            # the others train/evaluate the one supernet of this process (space.apply, BN recalibration, global
            # RNG): pickled they fail, threaded they race and give wrong metrics
            raise ConfigError(f"parallel.backend dask supports Table only (stage {self.stage + 1} runs "
                              f"{type(est).__name__}); SubNet/Uniform/Unified evaluate on one supernet in this "
                              f"process; use backend: local")
        if self._client is None:
            self._client = dask_client(self.parallel)
        return dask_map(self._client, fn, archs)

    # --- checkpoints ------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Everything a resumed run needs: weights, space, optimizer, trainer, estimators, RNGs, history."""
        return {
            "version": 1, "stage": self.stage, "trainer_stage": self.trainer_stage,
            "model": self.model.state_dict() if self.model is not None else None,
            "space": self.space.state_dict() if self.space is not None else None,
            "optimizer": self.optimizer.state_dict() if self.optimizer is not None else None,
            "trainer": self.trainer.state_dict() if self.trainer is not None else None,
            "estimators": [e.state_dict() for e in self.estimators],
            "loop_state": self.loop_state, "rng": rng_state(),
            "history": [r.to_dict() for r in self.history],
            "best": self.history.index(self.best) if self.best is not None else None,
            "alpha_lines": self.alpha_lines, "config": jsonable(self.config),
        }

    def checkpoint(self) -> Path:
        """Write checkpoint.pt atomically (temp file + rename) plus a small checkpoint.json summary."""
        path = self.path("checkpoint.pt")
        tmp = path.with_name(path.name + ".tmp")
        torch.save(self.state_dict(), tmp)
        os.replace(tmp, path)
        est = self.estimators[self.stage].state_dict() if self.stage < len(self.estimators) else {}
        meta = {"stage": self.stage, "estimator": jsonable(est), "results": len(self.history), "time": time.time()}
        tmpj = self.path("checkpoint.json.tmp")
        tmpj.write_text(json.dumps(meta))
        os.replace(tmpj, self.path("checkpoint.json"))
        return path

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

    def resume(self) -> bool:
        """Load checkpoint.pt when there is one (the output files are cut back to it); False when none."""
        path = self.out_dir / "checkpoint.pt"
        if not path.exists():
            return False
        # RNG states must stay CPU tensors; weights and optimizer states move to their params' devices on load
        state = torch.load(path, map_location="cpu", weights_only=False)
        saved = {k: v for k, v in state.get("config", {}).items() if k not in _VOLATILE}
        now = {k: v for k, v in jsonable(self.config).items() if k not in _VOLATILE}
        if self.config and saved and saved != now:
            changed = sorted(k for k in set(saved) | set(now) if saved.get(k) != now.get(k))
            self.log(f"warning: resuming with a config that differs from the checkpoint's in {changed}",
                     style="yellow")
        self.load_state_dict(state)
        hook = getattr(self.optimizer, "on_resume", None)
        if callable(hook):  # lets an optimizer re-apply state kept outside itself (e.g. temperatures on ops)
            hook(self)
        _truncate_lines(self.out_dir / "history.jsonl", len(self.history))
        _truncate_lines(self.out_dir / "alphas.jsonl", self.alpha_lines)
        self.write_best()
        self.resumed = True
        return True

    # --- the run ----------------------------------------------------------------------------------
    def run(self, resume: bool = False) -> dict[str, Any]:
        """Run the estimator chain (continuing from checkpoint.pt when ``resume``); the best arch + metrics."""
        if not self.estimators:
            raise ConfigError("the experiment has no estimators (estim: [{type: ...}])")
        if resume and self.resume():
            self.log(f"resumed {self.name} at stage {self.stage} with {len(self.history)} results")
        else:
            for f in _OUTPUTS:  # a fresh run replaces what an earlier run of this name left
                (self.out_dir / f).unlink(missing_ok=True)
            if resume:
                self.log(f"no checkpoint in {self.out_dir}; starting afresh")
            seed_everything(self.seed)
        if self.config:
            self.path("config.yaml").write_text(yaml.safe_dump(jsonable(self.config), sort_keys=False))
        try:
            while self.stage < len(self.estimators):
                est = self.estimators[self.stage]
                self.log(f"stage {self.stage + 1}/{len(self.estimators)}: {type(est).__name__}")
                est.run(self)
                self.stage += 1
                self.checkpoint()
            return self.finish()
        finally:
            if self._client is not None:
                self._client.close()
                self._client = None

    def finish(self) -> dict[str, Any]:
        """Write the Pareto front (several objectives) and the exported subnet; the summary of the run."""
        if self.best is None:
            raise ConfigError("the search recorded no result with the objective metric "
                              f"{self.objectives[0].name()!r}; check the estimators and objectives")
        summary: dict[str, Any] = {"arch": dict(self.best.arch), "metrics": dict(self.best.metrics),
                                   "out_dir": str(self.out_dir), "results": len(self.history)}
        if len(self.objectives) > 1:
            ranked = [r for r in self.history if all(o.metric in r.metrics for o in self.objectives)]
            front = pareto_front(ranked, self.objectives, self.constraints)
            write_pareto(self.out_dir, front, self.objectives, ranked, plot=bool(self.export.get("plot", True)))
            summary["pareto"] = len(front)
        if self.model is not None and self.export.get("materialize", True):
            summary.update(self.export_best())
        self.log(f"best arch: {self.best.arch}")
        return summary

    def export_best(self) -> dict[str, Any]:
        """Materialise the best arch (subnet.pt, BN recalibrated), evaluate it on the test split, export ONNX."""
        from .passes.materialize import materialize

        out: dict[str, Any] = {}
        net = materialize(self.model, self.best.arch)  # type: ignore[arg-type,union-attr]
        steps = int(self.export.get("bn_recalibrate", 10))
        if steps and self.data is not None:  # shared weights: the subnet's BN saw other paths' inputs
            from .train.bn import recalibrate_bn

            self.data.set_epoch(0)
            with preserved_rng():
                recalibrate_bn(net, self.data.train, steps, self.device)
        torch.save(net, self.path("subnet.pt"))
        out["subnet"] = str(self.out_dir / "subnet.pt")
        if self.export.get("test", True) and self.data is not None and self.data.test is not None \
                and self.trainer is not None:
            test = self.evaluate(net, "test")
            out["test_metrics"] = test
            self.log(f"best arch on test: {test}")
        if self.export.get("onnx", False) and self.data is not None:
            from .profilers.onnx_export import export_onnx

            x = self.data.example_input().to(self.device)
            export_onnx(net.eval(), x, self.path("subnet.onnx"), simplify=bool(self.export.get("simplify", True)))
            out["onnx"] = str(self.out_dir / "subnet.onnx")
        return out
