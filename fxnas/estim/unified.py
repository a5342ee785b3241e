"""The Unified estimator (CARS style): alternate supernet training on the optimizer's population and evaluations.

Each round trains the shared weights for ``train_steps`` steps, every step on one path drawn from the
optimizer's current population (``optimizer.population`` when it has one, else the best archs evaluated so far;
uniform paths before any), then evaluates ``batch_size`` new proposals with the shared weights (BN
recalibrated, supernet restored) and feeds them back to the optimizer.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from ..costs import CostOption, CostSpec
from ..errors import ConfigError
from ..optim.base import Result
from ..optim.discrete import DiscreteOptimizer
from ..rng import preserved_rng
from ..supernet import space_of
from .base import ESTIMATORS, Estimator, SearchContext
from .subnet import check_discrete
from .uniform import check_single_path, evaluate_shared_in, sample_path


@ESTIMATORS.register("Unified")
class Unified(Estimator):
    """CARS-style search: ``warmup_epochs`` of uniform paths, then ``rounds`` of (train on population, evaluate).

    Options: ``train_steps`` weight steps per round, ``batch_size`` archs evaluated per round, ``bn_steps``
    train batches for BN recalibration, ``eval_steps`` valid batches per evaluation (None: all), ``costs``
    metrics counted from the supernet for each arch (fxnas.costs).
    """

    def __init__(self, rounds: int = 5, train_steps: int = 20, batch_size: int = 4, warmup_epochs: int = 0,
                 bn_steps: int = 10, eval_steps: int | None = None, eval_split: str = "valid", params: bool = True,
                 costs: Sequence[CostSpec] = (), **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if rounds < 1 or train_steps < 0 or batch_size < 1 or warmup_epochs < 0 or bn_steps < 0:
            raise ConfigError(f"Unified needs rounds >= 1, batch_size >= 1 and train_steps, warmup_epochs, "
                              f"bn_steps >= 0; got rounds={rounds}, train_steps={train_steps}, "
                              f"batch_size={batch_size}, warmup_epochs={warmup_epochs}, bn_steps={bn_steps}")
        self.rounds, self.train_steps, self.batch_size = int(rounds), int(train_steps), int(batch_size)
        self.warmup_epochs, self.bn_steps, self.eval_steps = int(warmup_epochs), int(bn_steps), eval_steps
        self.eval_split, self.params = eval_split, params
        self.cost_metrics = CostOption(costs, "Unified costs")
        self.round, self.gstep, self.phase = 0, 0, "train"
        self._bn_batches: list[Any] | None = None
        self._spe = 0  # steps per epoch, fixed when run() starts
        self.train_stats: list[dict[str, float]] = []

    def state_dict(self) -> dict[str, Any]:
        return {"round": self.round, "gstep": self.gstep, "phase": self.phase, "train_stats": list(self.train_stats)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.round, self.gstep, self.phase = int(state["round"]), int(state["gstep"]), str(state["phase"])
        self.train_stats = list(state.get("train_stats", []))

    # --- pieces -------------------------------------------------------------------------------------
    def population(self, exp: SearchContext) -> list[dict[str, Any]]:
        """Archs to train on: the optimizer's population, else the best ``batch_size`` results of this stage."""
        assert isinstance(exp.optimizer, DiscreteOptimizer)
        pop = exp.optimizer.current_population()
        if pop:
            return pop
        done = [r for r in exp.history if r.info.get("stage") == exp.stage and r.info.get("loop")]
        done.sort(key=exp.score, reverse=True)
        return [dict(r.arch) for r in done[: self.batch_size]]

    def train(self, exp: SearchContext, steps: int, pool: list[dict[str, Any]]) -> float:
        """``steps`` weight steps from global step ``gstep``, each on a path from ``pool`` (uniform if empty)."""
        data, trainer, model, space = exp.data, exp.trainer, exp.model, exp.space
        assert data is not None and trainer is not None and model is not None and space is not None
        spe = self._spe or trainer.steps_for(data.train)
        end, total, n = self.gstep + steps, 0.0, 0
        model.train()
        while self.gstep < end:
            epoch, pos = divmod(self.gstep, spe)
            data.set_epoch(epoch, skip_batches=pos)
            with preserved_rng():  # iterator creation draws a seed; keep resumed runs identical
                batches = iter(data.train)
            before = self.gstep
            for batch in batches:  # each step's path is seeded by the global step: resume replays it
                space.apply(sample_path(space, exp.seed, "unified", self.gstep, pool=pool))
                total += trainer.train_step(model, batch)["loss"]
                n += 1
                self.gstep += 1
                if self.gstep >= end or self.gstep % spe == 0:
                    break
            if self.gstep == before:
                raise ConfigError("the train loader yielded no batches")
        return total / max(n, 1)

    def metric_names(self, exp: SearchContext) -> set[str] | None:
        """The trainer's metrics plus ``params`` (when counted), the ``costs`` and the training rounds'
        ``train_loss``."""
        names = super().metric_names(exp)
        return None if names is None else names | {"train_loss", *self.cost_metrics.names} | (
            {"params"} if self.params else set())

    def evaluate_arch(self, exp: SearchContext, arch: Mapping[str, Any]) -> dict[str, float]:
        """Shared-weight metrics of ``arch`` (BN recalibrated, supernet restored)."""
        return evaluate_shared_in(self, exp, arch)

    def _note(self, exp: SearchContext, loss: float, phase: str) -> None:
        self.train_stats.append({"round": self.round, "step": self.gstep, "train_loss": loss})
        info = {"estimator": "Unified", "phase": phase, "round": self.round, "step": self.gstep, "rank": False}
        exp.record(Result(space_of(exp.model).current(), {"train_loss": loss}, info))

    # --- the loop -----------------------------------------------------------------------------------
    def run(self, exp: SearchContext) -> list[Result]:
        """Warm up, then alternate training and evaluation rounds (resumable at phase boundaries)."""
        check_discrete(exp, "Unified")
        assert exp.model is not None and exp.trainer is not None and exp.data is not None
        check_single_path(exp.model, "Unified")
        # once per run, a full epoch: every step's (epoch, position) is derived from it
        spe = self._spe = exp.trainer.steps_for(exp.data.train)
        warm = self.warmup_epochs * spe
        exp.configure_trainer(max(1, math.ceil((warm + self.rounds * self.train_steps) / spe)))
        while self.gstep < warm:  # uniform-path warm-up, one checkpoint per epoch
            loss = self.train(exp, min(spe, warm - self.gstep), [])
            self._note(exp, loss, "warmup")
            exp.checkpoint()
        fn = lambda arch: self.evaluate_arch(exp, arch)  # noqa: E731
        with exp.track(self.rounds, "Unified rounds", self.round) as bar:
            while self.round < self.rounds:
                if self.phase == "train":
                    if self.train_steps:
                        self._note(exp, self.train(exp, self.train_steps, self.population(exp)), "train")
                    self.phase = "eval"
                    exp.checkpoint()
                exp.evaluate_loop(fn, (self.round + 1) * self.batch_size, self.batch_size)
                self.round, self.phase = self.round + 1, "train"
                exp.checkpoint()
                bar.advance()
        return [r for r in exp.history if r.info.get("stage") == exp.stage and r.info.get("loop")]
