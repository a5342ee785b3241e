"""The SuperNet estimator: one-shot search, alternating weight steps and architecture steps.

With a gradient optimizer (DARTS, ProxylessNAS, SNAS...) every ``arch_update_intv`` weight steps it calls
``optimizer.step_arch(exp, train_batch, valid_batch)`` (from epoch ``arch_update_epoch_start`` on) and after
each epoch ``optimizer.on_epoch_end(exp, epoch)``. With a discrete optimizer each weight step samples a
uniformly random path (as in SPOS). Each epoch the derived arch is evaluated and recorded.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError
from ..rng import preserved_rng
from .base import ESTIMATORS
from .default import Default

if TYPE_CHECKING:
    from ..routine import Experiment


@ESTIMATORS.register("SuperNet")
class SuperNet(Default):
    """Alternate weight and arch steps on the supernet; evaluate the derived arch on ``eval_split`` each epoch.

    ``eval_mode``: ``derived`` evaluates the materialised subnet of the derived arch, ``supernet`` the
    supernet as it stands (faster; for mixed ops that sum their candidates it is not the derived arch).
    ``bn_recalibrate``: train batches that re-estimate the derived subnet's BatchNorm statistics before it is
    evaluated (its ops saw mixed inputs in the supernet). Its results rank for the best arch by default.
    """

    def __init__(self, arch_update_intv: int = 1, arch_update_epoch_start: int = 0, eval_mode: str = "derived",
                 bn_recalibrate: int = 10, rank: bool | None = True, **kwargs: Any) -> None:
        super().__init__(rank=rank, **kwargs)
        if arch_update_intv < 1:
            raise ConfigError(f"SuperNet: arch_update_intv must be >= 1, got {arch_update_intv}")
        if eval_mode not in ("derived", "supernet"):
            raise ConfigError(f"SuperNet: eval_mode must be 'derived' or 'supernet', got {eval_mode!r}")
        self.arch_update_intv, self.arch_update_epoch_start = int(arch_update_intv), int(arch_update_epoch_start)
        self.eval_mode, self.bn_recalibrate = eval_mode, int(bn_recalibrate)
        self.valid_pos = 0  # valid batches drawn in the current pass over the valid split
        self._valid_iter: Any = None

    def state_dict(self) -> dict[str, Any]:
        """Default's progress plus the position in the valid split."""
        return {**super().state_dict(), "valid_pos": self.valid_pos}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore state_dict (the valid iterator is rebuilt at the saved position when next needed)."""
        super().load_state_dict(state)
        self.valid_pos, self._valid_iter = int(state.get("valid_pos", 0)), None

    def start(self, exp: Experiment) -> None:
        """Check that there is something to search, then apply ``arch`` if given."""
        if exp.optimizer is None or exp.space is None:
            raise ConfigError("SuperNet needs an optimizer and a supernet with a search space")
        super().start(exp)

    def gradient(self, exp: Experiment) -> bool:
        """True when the experiment's optimizer trains TensorParams."""
        return bool(getattr(exp.optimizer, "gradient", False))

    def next_valid(self, exp: Experiment) -> Any:
        """The next held-out batch, cycling over the valid split (position kept for resume)."""
        loader = exp.data.valid  # type: ignore[union-attr]
        if self._valid_iter is None:
            with preserved_rng():
                self._valid_iter = iter(loader)
                for _ in range(self.valid_pos):  # a resumed run skips what was drawn before the checkpoint
                    next(self._valid_iter)
        try:
            batch = next(self._valid_iter)
        except StopIteration:
            with preserved_rng():
                self._valid_iter = iter(loader)
            self.valid_pos = 0
            batch = next(self._valid_iter)
        self.valid_pos += 1
        return batch

    def before_step(self, exp: Experiment, batch: Any) -> None:
        """Discrete optimizers: train a uniformly random path this step."""
        if not self.gradient(exp):  # uniform path sampling, seeded by (seed, epoch, step) so resume replays it
            rng = random.Random(f"{exp.seed}:{self.epoch}:{self.step}")
            exp.space.apply(exp.space.sample(rng))  # type: ignore[union-attr]

    def after_step(self, exp: Experiment, batch: Any) -> dict[str, float]:
        """Every ``arch_update_intv`` steps (from ``arch_update_epoch_start``): one arch step."""
        if not self.gradient(exp) or self.epoch < self.arch_update_epoch_start:
            return {}
        if self.step % self.arch_update_intv:
            return {}
        out = exp.optimizer.step_arch(exp, batch, self.next_valid(exp)) or {}  # type: ignore[union-attr]
        return {k if k.startswith("arch_") else f"arch_{k}": float(v) for k, v in out.items()}

    def eval_model(self, exp: Experiment) -> tuple[dict[str, Any], Any]:
        """The derived arch and the module that computes it (materialised, BN recalibrated)."""
        arch = exp.optimizer.best()  # type: ignore[union-attr]
        if self.eval_mode == "supernet":
            exp.space.apply(arch)  # type: ignore[union-attr]
            return arch, exp.model
        from ..passes.materialize import materialize
        from ..train.bn import recalibrate_bn

        net = materialize(exp.model, arch)  # type: ignore[arg-type]
        if self.bn_recalibrate:
            exp.data.set_epoch(self.epoch)  # type: ignore[union-attr]  # the order is reset before each epoch
            with preserved_rng():
                recalibrate_bn(net, exp.data.train, self.bn_recalibrate, exp.device)  # type: ignore[union-attr]
        return arch, net

    def end_epoch(self, exp: Experiment, epoch: int) -> None:
        """The optimizer's per-epoch schedule (e.g. temperature annealing)."""
        if self.gradient(exp):
            exp.optimizer.on_epoch_end(exp, epoch)  # type: ignore[union-attr]
