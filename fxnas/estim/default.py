"""The Default estimator: train the weights for N epochs under the current (or a fixed) arch, evaluate, record.

Its epoch loop is the one every training estimator shares: data order fixed per epoch (seed + epoch),
checkpoints every ``checkpoint_steps`` steps and at each epoch end, so a killed run resumes mid-epoch and
replays exactly what an uninterrupted run would have done.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any, Literal

from ..arch import read_arch
from ..errors import ConfigError
from ..optim.base import GradientOptimizer, Result
from ..options import FilePath
from ..rng import preserved_rng
from .base import ESTIMATORS, Estimator, SearchContext


def load_arch(arch: Mapping[str, Any] | str, exp: SearchContext | None = None) -> dict[str, Any]:
    """An arch from a mapping, a YAML file (a plain mapping, or arch_best.yaml's ``arch:`` entry), or
    ``best`` (the experiment's best so far) / ``derived`` (what its optimizer derives now)."""
    if isinstance(arch, Mapping):
        return dict(arch)
    if arch in ("best", "derived") and exp is not None:
        if arch == "best" and exp.best is not None:
            return dict(exp.best.arch)
        if exp.optimizer is None:
            raise ConfigError(f"arch: {arch} needs an optimizer or an earlier result in the experiment")
        return dict(exp.optimizer.best())
    return read_arch(arch)


@ESTIMATORS.register("Default")
class Default(Estimator):
    """Train the model's weights for ``epochs`` epochs (default: the trainer's) under the current or a fixed arch.

    After each epoch the model is evaluated on ``eval_split`` and the result recorded. ``arch`` (a mapping, a
    YAML file, ``best`` or ``derived``) is applied first when given, and then only its path runs (gradient
    mixed ops fixed to it): training the chosen subnet inside the supernet, so that the exported subnet has
    these weights. ``checkpoint_steps`` > 0 also checkpoints inside epochs.
    ``rank``: whether its results compete for the best arch (default: only when it is the last stage, so a
    warm-up stage before a search does not).
    """

    def __init__(self, epochs: int | None = None,
                 arch: Mapping[str, Any] | Literal["best", "derived"] | FilePath | None = None,
                 checkpoint_steps: int = 0, eval_split: str = "valid", eval_steps: int | None = None,
                 rank: bool | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if epochs is not None and epochs < 0:
            raise ConfigError(f"{type(self).__name__}: epochs must be >= 0, got {epochs}")
        if checkpoint_steps < 0:
            raise ConfigError(f"{type(self).__name__}: checkpoint_steps must be >= 0, got {checkpoint_steps}")
        self.epochs, self.arch = epochs, arch
        self.checkpoint_steps, self.eval_split, self.eval_steps = int(checkpoint_steps), eval_split, eval_steps
        self.rank = rank
        self.epoch, self.step, self.sums, self.done = 0, 0, {}, False

    # --- progress ---------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Epoch, step within it, running sums of the step scalars, done."""
        return {"epoch": self.epoch, "step": self.step, "sums": dict(self.sums), "done": self.done}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore state_dict."""
        self.epoch, self.step = int(state["epoch"]), int(state["step"])
        self.sums, self.done = dict(state["sums"]), bool(state["done"])

    def total_epochs(self, exp: SearchContext) -> int:
        """Epochs this stage trains."""
        if self.epochs is not None:
            return int(self.epochs)
        if exp.trainer is None:
            raise ConfigError(f"{type(self).__name__} needs a trainer in the experiment")
        return int(exp.trainer.epochs)

    # --- hooks subclasses override ----------------------------------------------------------------
    def start(self, exp: SearchContext) -> None:
        """Once, when the stage begins afresh (not on resume)."""
        if self.arch is not None:
            if exp.space is None:
                raise ConfigError(f"{type(self).__name__}: arch given but the experiment has no search space")
            exp.space.apply(load_arch(self.arch, exp))

    def before_step(self, exp: SearchContext, batch: Any) -> None:
        """Before each weight step."""

    def weight_step(self, exp: SearchContext, batch: Any) -> dict[str, float]:
        """One weight step on ``batch`` (the trainer's, on the current arch); its scalars."""
        assert exp.trainer is not None and exp.model is not None
        return dict(exp.trainer.train_step(exp.model, batch))

    def after_step(self, exp: SearchContext, batch: Any) -> dict[str, float]:
        """After each weight step (``self.step`` already counts it); scalars to average over the epoch."""
        return {}

    def eval_model(self, exp: SearchContext) -> tuple[dict[str, Any], Any]:
        """(arch, module) to evaluate at an epoch end: the model as it stands, recorded as the arch it computes.

        Without a fixed ``arch``, a gradient supernet computes its alphas' arch (BinaryGate's argmax in eval
        mode) or their mixture (SoftmaxSum/GumbelSum), not ``space.current()``: the optimizer's derived arch
        is what describes it.
        """
        if exp.space is None:
            return {}, exp.model
        if self.arch is None and isinstance(exp.optimizer, GradientOptimizer):
            return dict(exp.optimizer.best()), exp.model
        return exp.space.current(), exp.model

    def end_epoch(self, exp: SearchContext, epoch: int) -> None:
        """After the epoch's result is recorded."""

    def path_mode(self, exp: SearchContext) -> contextlib.AbstractContextManager[Any]:
        """With ``arch`` given, gradient mixed ops run only the applied arch's candidate."""
        if self.arch is None or exp.model is None:
            return contextlib.nullcontext()
        from ..mixed.base import fixed_arch

        return fixed_arch(exp.model)

    # --- the loop ---------------------------------------------------------------------------------
    def run(self, exp: SearchContext) -> list[Result]:
        """Train and evaluate epoch by epoch, resuming from this estimator's saved progress."""
        if not self.done:
            epochs = self.total_epochs(exp)
            fresh = self.epoch == 0 and self.step == 0
            exp.configure_trainer(epochs)
            if fresh:
                self.start(exp)
            with self.path_mode(exp), exp.track(epochs, f"{type(self).__name__} epochs", self.epoch) as bar:
                while self.epoch < epochs:
                    self.train_epoch(exp)
                    result = self.finish_epoch(exp)
                    bar.advance()
                    bar.note(_short(result.metrics))
            self.done = True
        return [r for r in exp.history if r.info.get("stage") == exp.stage]

    def train_epoch(self, exp: SearchContext) -> None:
        """Weight steps from ``self.step`` to the end of epoch ``self.epoch``, checkpointing on the way."""
        data, trainer, model = exp.data, exp.trainer, exp.model
        assert data is not None and trainer is not None and model is not None
        n = trainer.steps_for(data.train)  # a full epoch: the skip below covers this (resumed) pass only
        data.set_epoch(self.epoch, skip_batches=self.step)
        with preserved_rng():  # creating the iterator draws a seed; a resumed run must not draw it twice
            batches = iter(data.train)
        model.train()
        with exp.track(n, f"epoch {self.epoch + 1}", self.step) as bar:
            while self.step < n:
                try:
                    batch = next(batches)
                except StopIteration:
                    break
                self.before_step(exp, batch)
                out = self.weight_step(exp, batch)
                self.step += 1
                out.update(self.after_step(exp, batch))
                for k, v in out.items():
                    s, c = self.sums.get(k, (0.0, 0))
                    self.sums[k] = (s + float(v), c + 1)
                bar.advance()
                if self.checkpoint_steps and self.step % self.checkpoint_steps == 0 and self.step < n:
                    exp.checkpoint()

    def finish_epoch(self, exp: SearchContext) -> Result:
        """Evaluate, record the epoch's result and alphas, run end-of-epoch hooks, checkpoint."""
        arch, module = self.eval_model(exp)
        metrics = exp.evaluate(module, self.eval_split, self.eval_steps)
        metrics.update({k if k.startswith("arch_") else f"train_{k}": s / max(c, 1)
                        for k, (s, c) in self.sums.items()})
        rank = self.rank if self.rank is not None else exp.is_last_stage()
        info = {"epoch": self.epoch + 1, "estimator": type(self).__name__, "stage": exp.stage, "rank": rank}
        result = exp.record(Result(dict(arch), metrics, info))
        exp.record_alphas(self.epoch + 1)
        self.end_epoch(exp, self.epoch)
        self.epoch, self.step, self.sums = self.epoch + 1, 0, {}
        exp.checkpoint()
        return result


def _short(metrics: Mapping[str, Any]) -> str:
    return " ".join(f"{k}={v:.3g}" for k, v in list(metrics.items())[:3] if isinstance(v, (int, float)))
