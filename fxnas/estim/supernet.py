"""The SuperNet estimator: one-shot search, an architecture step before the weight step of an iteration.

With a gradient optimizer (DARTS, ProxylessNAS, SNAS...) it drives the GradientOptimizer contract: once every
``arch_update_intv`` weight steps (counted from epoch ``arch_update_epoch_start`` on) ``step_arch(ctx,
train_batch, valid_batch)`` before the next weight step, on that step's train batch (DARTS's order: alpha
first, then w); ``on_epoch_end(ctx, epoch)`` after each epoch; ``on_start(ctx)`` as the stage begins; weight
steps under ``fixed_arch`` when the optimizer declares ``fixed_weight_steps`` (REINFORCE). With a discrete
optimizer each weight step samples a uniformly random path (as in SPOS). Each epoch the derived arch is
evaluated and recorded.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError
from ..optim.base import GradientOptimizer
from ..rng import preserved_rng
from .base import ESTIMATORS, SearchContext
from .default import Default
from .uniform import sample_path

if TYPE_CHECKING:
    from ..optim.base import Result


@ESTIMATORS.register("SuperNet")
class SuperNet(Default):
    """Alternate arch and weight steps on the supernet; evaluate the derived arch on ``eval_split`` each epoch.

    ``eval_mode``: ``derived`` evaluates the materialised subnet of the derived arch, ``supernet`` the
    supernet as it stands (faster; for mixed ops that sum their candidates it is not the derived arch).
    ``bn_recalibrate``: train batches that re-estimate the derived subnet's BatchNorm statistics before it is
    evaluated (its ops saw mixed inputs in the supernet). ``rank`` (whether its results compete for the best
    arch) defaults to true with a gradient optimizer and false with a discrete one, whose "derived" arch is
    only the last random training path: to search a SPOS supernet use the Uniform estimator.
    With ``fixed_weight_steps``, epochs before ``arch_update_epoch_start`` train uniformly random paths.
    """

    def __init__(self, arch_update_intv: int = 1, arch_update_epoch_start: int = 0, eval_mode: str = "derived",
                 bn_recalibrate: int = 10, rank: bool | None = None, **kwargs: Any) -> None:
        super().__init__(rank=rank, **kwargs)
        if arch_update_intv < 1:
            raise ConfigError(f"SuperNet: arch_update_intv must be >= 1, got {arch_update_intv}")
        if eval_mode not in ("derived", "supernet"):
            raise ConfigError(f"SuperNet: eval_mode must be 'derived' or 'supernet', got {eval_mode!r}")
        self.arch_update_intv, self.arch_update_epoch_start = int(arch_update_intv), int(arch_update_epoch_start)
        self.eval_mode, self.bn_recalibrate = eval_mode, int(bn_recalibrate)
        self.valid_pos = 0  # valid batches drawn in the current pass over the valid split
        self.since_arch = 0  # weight steps since the last arch step (or the start of arch updates)
        self._valid_iter: Any = None
        self._arch_out: dict[str, float] = {}

    def state_dict(self) -> dict[str, Any]:
        """Default's progress plus the position in the valid split and the weight steps since the last arch step."""
        return {**super().state_dict(), "valid_pos": self.valid_pos, "since_arch": self.since_arch}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore state_dict (the valid iterator is rebuilt at the saved position when next needed)."""
        super().load_state_dict(state)
        self.valid_pos, self._valid_iter = int(state.get("valid_pos", 0)), None
        self.since_arch = int(state.get("since_arch", 0))

    def run(self, exp: SearchContext) -> list[Result]:
        """Default's epoch loop; ``rank`` unset ranks the results of gradient searches only."""
        if self.rank is None:
            self.rank = self.gradient(exp)
        return super().run(exp)

    def start(self, exp: SearchContext) -> None:
        """Check that there is something to search, apply ``arch`` if given, run the optimizer's ``on_start``."""
        if exp.optimizer is None or exp.space is None:
            raise ConfigError("SuperNet needs an optimizer and a supernet with a search space")
        super().start(exp)
        exp.optimizer.on_start(exp)  # e.g. GumbelAnnealing sets its temperature before the first weight step

    def gradient(self, exp: SearchContext) -> bool:
        """True when the experiment's optimizer trains TensorParams."""
        return isinstance(exp.optimizer, GradientOptimizer)

    def fixed_weight_steps(self, exp: SearchContext) -> bool:
        """True when the optimizer wants the weight steps to train only the applied arch (REINFORCE)."""
        return isinstance(exp.optimizer, GradientOptimizer) and exp.optimizer.fixed_weight_steps

    def path_mode(self, exp: SearchContext) -> contextlib.AbstractContextManager[Any]:
        """``fixed_arch`` when ``arch`` is given or the optimizer asks for fixed weight steps."""
        if self.arch is None and exp.model is not None and self.fixed_weight_steps(exp):
            from ..mixed.base import fixed_arch

            return fixed_arch(exp.model)
        return super().path_mode(exp)

    def next_valid(self, exp: SearchContext) -> Any:
        """The next held-out batch, cycling over the valid split (position kept for resume)."""
        assert exp.data is not None
        loader = exp.data.arch_split()
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

    def updating_arch(self) -> bool:
        """True from epoch ``arch_update_epoch_start`` on."""
        return self.epoch >= self.arch_update_epoch_start

    def before_step(self, exp: SearchContext, batch: Any) -> None:
        """An arch step when ``arch_update_intv`` weight steps ran since the last one (DARTS: alpha before w, so
        the unrolled virtual step starts from weights not yet trained on this batch); discrete optimizers, and
        fixed weight steps before arch updates begin, train a uniformly random path."""
        self._arch_out = {}
        opt, space = exp.optimizer, exp.space
        assert space is not None
        if not isinstance(opt, GradientOptimizer) or (not self.updating_arch() and opt.fixed_weight_steps):
            # seeded by (seed, epoch, step) so that a resumed run replays the same paths
            space.apply(sample_path(space, exp.seed, self.epoch, self.step))
            return
        if not self.updating_arch() or self.since_arch < self.arch_update_intv:
            return
        self.since_arch = 0
        out = opt.step_arch(exp, batch, self.next_valid(exp)) or {}  # type: ignore[arg-type]  # ctx has a model
        self._arch_out = {k if k.startswith("arch_") else f"arch_{k}": float(v) for k, v in out.items()}

    def after_step(self, exp: SearchContext, batch: Any) -> dict[str, float]:
        """Count the weight step towards the next arch step; the arch step's scalars, when one ran."""
        if self.gradient(exp) and self.updating_arch():
            self.since_arch += 1
        out, self._arch_out = self._arch_out, {}
        return out

    def eval_model(self, exp: SearchContext) -> tuple[dict[str, Any], Any]:
        """The derived arch and the module that computes it (materialised, BN recalibrated)."""
        assert exp.optimizer is not None and exp.space is not None and exp.data is not None
        arch = exp.optimizer.best()
        if self.eval_mode == "supernet":
            exp.space.apply(arch)
            return arch, exp.model
        from ..passes.materialize import materialize
        from ..train.bn import recalibrate_bn

        net = materialize(exp.model, arch)  # type: ignore[arg-type]  # the supernet is a GraphModule
        if self.bn_recalibrate:
            exp.data.set_epoch(self.epoch)  # the order is reset before each epoch
            with preserved_rng():
                recalibrate_bn(net, exp.data.train, self.bn_recalibrate, exp.device)
        return arch, net

    def end_epoch(self, exp: SearchContext, epoch: int) -> None:
        """The optimizer's per-epoch schedule (e.g. temperature annealing)."""
        if isinstance(exp.optimizer, GradientOptimizer):
            exp.optimizer.on_epoch_end(exp, epoch)  # type: ignore[arg-type]  # ctx has a model and trainer
