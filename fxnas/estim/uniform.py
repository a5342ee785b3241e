"""The Uniform estimator (SPOS, Guo et al. 2020): train the supernet on uniformly sampled paths, then search it.

Search evaluates each candidate with the shared weights: apply the arch, re-estimate BatchNorm statistics on a
few fixed train batches, evaluate on the valid split, then put the BN statistics and the previous arch back,
so evaluating never changes the supernet.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import torch.fx as fx

from ..costs import CostOption, CostSpec
from ..errors import ConfigError
from ..optim.base import Result
from ..rng import preserved_rng
from ..supernet import mixed_ops, space_of
from ..train.bn import bn_state, load_bn_state, recalibrate_bn
from ..train.sampling import fixed_batches
from .base import ESTIMATORS, SearchContext
from .default import Default
from .subnet import check_discrete, subnet_params

if TYPE_CHECKING:
    from torch.utils.data import DataLoader

    from ..space import SearchSpace
    from ..train.trainer import Trainer


def check_single_path(supernet: fx.GraphModule, who: str) -> None:
    """ConfigError when a mixed op weighs all candidates (e.g. SoftmaxSum): paths cannot be sampled."""
    bad = [p for p, op in mixed_ops(supernet).items() if not op.single_path]
    if bad:
        raise ConfigError(f"{who} trains one path at a time and needs single-path mixed ops "
                          f"(searchify(..., mixed_op='Index')); {bad[:3]} weigh every candidate")


def sample_path(space: SearchSpace, seed: int, *key: Any, pool: Sequence[Mapping[str, Any]] | None = None
                ) -> dict[str, Any]:
    """The SPOS path for ``key`` (e.g. epoch, step): uniform over ``space`` (or a choice from ``pool`` when
    given), drawn from ``random.Random(f"{seed}:{key...}")`` so that a resumed run samples the same paths."""
    rng = random.Random(":".join(str(k) for k in (seed, *key)))
    return dict(rng.choice(pool)) if pool else space.sample(rng)


def evaluate_shared(supernet: fx.GraphModule, arch: Mapping[str, Any], trainer: Trainer, valid: DataLoader,
                    bn_batches: Sequence[Any] | DataLoader, bn_steps: int | None = None,
                    eval_steps: int | None = None, params: bool = True) -> dict[str, float]:
    """Metrics of ``arch`` with the supernet's weights, after BN recalibration on ``bn_batches``.

    The supernet's BN statistics and current arch are restored afterwards; weights are never written.
    ``params`` adds the parameter count of the materialised subnet.
    """
    space = space_of(supernet)
    previous = space.current()
    saved = bn_state(supernet)
    try:
        space.apply(arch)
        with preserved_rng():
            steps = bn_steps if bn_steps is not None else len(bn_batches)
            if steps:  # the trainer's step_fn, when it has one, is how the model is fed (BN sees those inputs)
                recalibrate_bn(supernet, bn_batches, steps, device=trainer.device, forward_fn=trainer.step_fn)
            metrics = trainer.evaluate(supernet, valid, eval_steps)
    finally:
        load_bn_state(supernet, saved)
        space.apply(previous)
    if params:
        metrics["params"] = float(subnet_params(supernet, arch))
    return metrics


def evaluate_shared_in(est: Any, exp: SearchContext, arch: Mapping[str, Any]) -> dict[str, float]:
    """evaluate_shared with an estimator's options (``bn_steps``, ``eval_split``, ``eval_steps``, ``params``,
    ``costs``); the BN batches are drawn once per estimator so every arch is recalibrated on the same data."""
    assert exp.data is not None and exp.trainer is not None and exp.model is not None
    if est._bn_batches is None:
        est._bn_batches = fixed_batches(exp.data.train, est.bn_steps)
    metrics = evaluate_shared(exp.model, arch, exp.trainer, exp.data.split(est.eval_split),  # type: ignore[arg-type]
                              est._bn_batches, None, est.eval_steps, est.params)
    metrics.update(est.cost_metrics(exp.model, arch))
    return metrics


@ESTIMATORS.register("Uniform")
class Uniform(Default):
    """SPOS: ``epochs`` of uniform single-path supernet training, then ``budget`` arch evaluations.

    Each candidate is applied, its BN statistics recalibrated on ``bn_steps`` fixed train batches, and
    evaluated on the valid split (``eval_steps`` batches at most); BN stats are restored afterwards.
    ``batch_size`` archs are proposed per optimizer round. ``costs`` (e.g. ``[params, macs]``, see
    fxnas.costs) are counted for each arch from the supernet, without materialising.
    """

    def __init__(self, epochs: int | None = None, budget: int = 20, batch_size: int = 1, bn_steps: int = 10,
                 eval_steps: int | None = None, params: bool = True, costs: Sequence[CostSpec] = (),
                 **kwargs: Any) -> None:
        super().__init__(epochs=epochs, eval_steps=eval_steps, **kwargs)
        if budget < 1 or batch_size < 1 or bn_steps < 0:
            raise ConfigError(f"Uniform needs budget >= 1, batch_size >= 1, bn_steps >= 0; got budget={budget}, "
                              f"batch_size={batch_size}, bn_steps={bn_steps}")
        self.budget, self.batch_size, self.bn_steps, self.params = int(budget), int(batch_size), int(bn_steps), params
        self.cost_metrics = CostOption(costs, "Uniform costs")
        self._bn_batches: list[Any] | None = None
        self.train_stats: list[dict[str, float]] = []  # per supernet epoch

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "train_stats": list(self.train_stats)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.train_stats = list(state.get("train_stats", []))

    # --- training phase (Default's resumable epoch loop) --------------------------------------------
    def start(self, exp: SearchContext) -> None:
        check_discrete(exp, "Uniform")
        assert exp.model is not None
        check_single_path(exp.model, "Uniform")
        super().start(exp)

    def before_step(self, exp: SearchContext, batch: Any) -> None:
        """Train a uniformly random path this step, seeded by (seed, epoch, step)."""
        space = space_of(exp.model)
        space.apply(sample_path(space, exp.seed, self.epoch, self.step))

    def finish_epoch(self, exp: SearchContext) -> Result:
        """Record the epoch's training loss, marked unranked (a random path must not compete with the search)."""
        metrics = {f"train_{k}": s / max(c, 1) for k, (s, c) in self.sums.items()}
        self.train_stats.append(metrics)
        info = {"epoch": self.epoch + 1, "estimator": "Uniform", "phase": "supernet", "rank": False}
        result = exp.record(Result(space_of(exp.model).current(), metrics, info))
        self.epoch, self.step, self.sums = self.epoch + 1, 0, {}
        exp.checkpoint()
        return result

    def metric_names(self, exp: SearchContext) -> set[str] | None:
        """The trainer's metrics plus ``params`` (when counted), the ``costs`` and the supernet phase's
        ``train_loss``."""
        names = super().metric_names(exp)
        return None if names is None else names | {"train_loss", *self.cost_metrics.names} | (
            {"params"} if self.params else set())

    # --- search phase ---------------------------------------------------------------------------------
    def evaluate_arch(self, exp: SearchContext, arch: Mapping[str, Any]) -> dict[str, float]:
        """Shared-weight metrics of ``arch`` (BN recalibrated, supernet restored)."""
        return evaluate_shared_in(self, exp, arch)

    def run(self, exp: SearchContext) -> list[Result]:
        """Train the supernet (skipped when already done), then search it with the experiment's optimizer."""
        check_discrete(exp, "Uniform")
        super().run(exp)
        return exp.evaluate_loop(lambda a: self.evaluate_arch(exp, a), self.budget, self.batch_size)
