"""The ProgressiveShrinking estimator (Once-for-All, Cai et al. 2020): train the full elastic network, then
let its kernels, depths and widths shrink stage by stage, then search it with the shared weights.

Stages run in the order given (default ``full, kernel, depth, width``). The ``full`` stage trains the largest
setting only; each later stage unlocks one elastic kind, and every weight step trains ``subnets`` settings
over the kinds unlocked so far (the others at their largest): with ``sandwich`` the largest, the smallest and
random ones (BigNAS's sandwich rule), else random ones, their gradients summed in one step. With ``distill``
the largest setting's outputs in the same step are the soft targets of the others (in-place distillation).
Each stage restarts the trainer's cosine schedule (at the stage's ``lr``). With ``phases: {depth: 2, width: 2}``
a stage is split into phases that widen its kind's range from the largest choices down, as OFA trains depth
{4, 3} before {4, 3, 2} and expansion {6, 4} before {6, 4, 3}: phase j of n allows the largest j/n of each
param's choices (at least two). At each epoch end the largest and
the smallest setting of the stage are evaluated after BatchNorm recalibration; then ``budget`` archs proposed
by the experiment's optimizer are evaluated the same way (with their ``costs``), so a config searches the
trained network under a constraint such as ``macs <= 2e6``.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import torch
from torch import nn

from ..costs import CostOption, CostSpec
from ..elastic.params import elastic_params
from ..elastic.sampling import STAGES, is_largest, step_subnets, subnet, unlocked_kinds
from ..errors import ConfigError
from ..optim.base import Result
from ..train.criteria import main_output, soft_kl
from .base import ESTIMATORS, SearchContext, check_space_kind, require
from .default import Default
from .subnet import check_discrete
from .uniform import check_single_path, evaluate_shared_in

Stage = Literal["full", "kernel", "depth", "width"]
LossFn = Callable[[nn.Module, Any], torch.Tensor]


def _per_stage(name: str, value: Any, stages: Sequence[str], check: Callable[[Any], bool],
               what: str) -> dict[str, Any]:
    """``{stage: value}`` from one value for every stage or a mapping of some; ConfigError naming the key."""
    given = dict(value) if isinstance(value, Mapping) else ({s: value for s in stages} if value is not None else {})
    for k, v in given.items():
        if k not in stages:
            raise ConfigError(f"ProgressiveShrinking {name}: {k!r} is not one of its stages {list(stages)}")
        if not check(v):
            raise ConfigError(f"ProgressiveShrinking {name}.{k} must be {what}, got {v!r}")
    return given


@ESTIMATORS.register("ProgressiveShrinking")
class ProgressiveShrinking(Default):
    """Once-for-All progressive shrinking of an elastic supernet, then a shared-weight search of ``budget`` archs.

    ``stages``: full -> kernel -> depth -> width by default (see the module docstring).

    ``epochs``: per stage, one number or ``{stage: n}`` (default: the trainer's); ``lr``: the learning rate each
    stage's cosine schedule starts from, one number or ``{stage: lr}`` (default: the trainer's). ``subnets``
    settings per weight step (``sandwich``: the largest and the smallest among them), ``distill`` with
    ``kd_weight`` x T^2 KL at temperature ``kd_temperature``. ``phases``: per stage, how many phases its
    epochs are split into (the range of its kind widening from the largest choices down). ``bn_steps``
    fixed train batches recalibrate BatchNorm before each evaluation on ``eval_split`` (``eval_steps`` batches
    at most). ``costs`` are counted for each evaluated arch (fxnas.costs). A stage whose elastic kind the
    space lacks is skipped.
    """

    space_kind = "elastic"

    def __init__(self, stages: Sequence[Stage] = STAGES, epochs: int | Mapping[str, int] | None = None,
                 lr: float | Mapping[str, float] | None = None, phases: int | Mapping[str, int] | None = None,
                 subnets: int = 4, sandwich: bool = True,
                 distill: bool = False, kd_weight: float = 1.0, kd_temperature: float = 1.0, bn_steps: int = 10,
                 eval_split: str = "valid", eval_steps: int | None = None, budget: int = 20, batch_size: int = 1,
                 costs: Sequence[CostSpec] = ("params", "macs"), checkpoint_steps: int = 0) -> None:
        super().__init__(epochs=None, checkpoint_steps=checkpoint_steps, eval_split=eval_split,
                         eval_steps=eval_steps)
        stages = list(stages)
        if not stages or len(set(stages)) != len(stages) or any(s not in STAGES for s in stages) \
                or ("full" in stages and stages[0] != "full"):
            raise ConfigError(f"ProgressiveShrinking stages must be distinct names of {list(STAGES)} with 'full' "
                              f"first when present, got {stages}")
        if subnets < 1 or (sandwich and subnets < 2):
            raise ConfigError(f"ProgressiveShrinking subnets must be >= 1 (>= 2 with sandwich: the largest and the "
                              f"smallest), got {subnets}")
        if budget < 0 or batch_size < 1 or bn_steps < 0 or kd_weight < 0 or kd_temperature <= 0:
            raise ConfigError(f"ProgressiveShrinking needs budget >= 0, batch_size >= 1, bn_steps >= 0, kd_weight "
                              f">= 0 and kd_temperature > 0; got budget={budget}, batch_size={batch_size}, "
                              f"bn_steps={bn_steps}, kd_weight={kd_weight}, kd_temperature={kd_temperature}")
        self.stages = stages
        self.stage_epochs = _per_stage("epochs", epochs, stages, lambda v: isinstance(v, int) and v >= 0,
                                       "an integer >= 0")
        self.stage_lr = _per_stage("lr", lr, stages, lambda v: isinstance(v, (int, float)) and v > 0, "a number > 0")
        self.stage_phases = _per_stage("phases", phases, stages, lambda v: isinstance(v, int) and v >= 1,
                                       "an integer >= 1")
        self.subnets, self.sandwich = int(subnets), bool(sandwich)
        self.distill, self.kd_weight, self.kd_temperature = bool(distill), float(kd_weight), float(kd_temperature)
        self.bn_steps, self.budget, self.batch_size = int(bn_steps), int(budget), int(batch_size)
        self.params = False  # evaluate_shared_in's materialised count; the costs count params when asked
        self.cost_metrics = CostOption(costs, "ProgressiveShrinking costs")
        self._bn_batches: list[Any] | None = None

    # --- the plan ---------------------------------------------------------------------------------
    def plan(self, exp: SearchContext) -> list[tuple[str, int]]:
        """(stage, epochs) of every stage that runs: stages of a kind the space lacks, or of 0 epochs, drop."""
        assert exp.space is not None
        kinds = {p.kind for p in elastic_params(exp.space).values()}
        out = []
        for s in self.stages:
            n = self.stage_epochs.get(s)
            if n is None:
                if exp.trainer is None:
                    raise ConfigError("ProgressiveShrinking needs a trainer in the experiment")
                n = int(exp.trainer.epochs)
            if n > 0 and (s == "full" or s in kinds):
                out.append((s, int(n)))
        return out

    def total_epochs(self, exp: SearchContext) -> int:
        """Epochs of every stage together."""
        return sum(n for _, n in self.plan(exp))

    def stage_at(self, exp: SearchContext, epoch: int) -> tuple[int, str, int, int]:
        """(position in the plan, stage, its first epoch, its epochs) of ``epoch``."""
        first = 0
        plan = self.plan(exp)
        for i, (name, n) in enumerate(plan):
            if epoch < first + n:
                return i, name, first, n
            first += n
        raise ConfigError(f"epoch {epoch} is past the {first} epochs of ProgressiveShrinking")

    def kinds(self, exp: SearchContext, epoch: int) -> set[str]:
        """The elastic kinds that vary at ``epoch``."""
        i = self.stage_at(exp, epoch)[0]
        return unlocked_kinds([s for s, _ in self.plan(exp)], i)

    def fractions(self, exp: SearchContext, epoch: int) -> dict[str, float]:
        """``{kind: fraction}`` of the running stage's kind at ``epoch``: phase j of n allows j/n of its choices."""
        _, name, first, n = self.stage_at(exp, epoch)
        phases = min(self.stage_phases.get(name, 1), n)
        if phases <= 1:
            return {}
        return {name: ((epoch - first) * phases // n + 1) / phases}

    # --- training ---------------------------------------------------------------------------------
    def train_epoch(self, exp: SearchContext) -> None:
        """A stage's first epoch (re)starts the trainer's schedule for the stage, then Default's epoch loop."""
        i, name, first, n = self.stage_at(exp, self.epoch)
        if self.epoch == first and self.step == 0:
            assert exp.trainer is not None and exp.model is not None and exp.data is not None
            exp.trainer.configure(exp.model, exp.trainer.steps_for(exp.data.train), epochs=n,
                                  lr=self.stage_lr.get(name))
            varying = sorted(self.kinds(exp, self.epoch)) or ["nothing: the largest setting"]
            phases = min(self.stage_phases.get(name, 1), n)
            exp.log(f"ProgressiveShrinking stage {i + 1}/{len(self.plan(exp))}: {name} ({n} epochs"
                    f"{f' in {phases} phases' if phases > 1 else ''}; {', '.join(varying)} varying)")
        super().train_epoch(exp)

    def weight_step(self, exp: SearchContext, batch: Any) -> dict[str, float]:
        """One step over the settings this step draws (seeded by seed, epoch and step), gradients summed."""
        assert exp.trainer is not None and exp.model is not None and exp.space is not None
        space = exp.space
        kinds = self.kinds(exp, self.epoch)
        archs = step_subnets(space, kinds, self.subnets, self.sandwich, exp.seed, "ps", self.epoch, self.step,
                             fractions=self.fractions(exp, self.epoch))
        before = space.current()
        try:
            return dict(exp.trainer.train_step(exp.model, batch, self.losses(exp, archs, bool(kinds))))
        finally:
            space.apply(before)

    def losses(self, exp: SearchContext, archs: list[dict[str, Any]], shrinking: bool) -> list[LossFn]:
        """One loss function per setting; with ``distill`` (in a shrinking stage) the largest setting's logits
        are the others' soft targets (run first, without gradient, when the step does not train it)."""
        trainer, space = exp.trainer, exp.space
        assert trainer is not None and space is not None
        if not (self.distill and shrinking):
            def plain(arch: dict[str, Any]) -> LossFn:
                def fn(model: nn.Module, batch: Any) -> torch.Tensor:
                    space.apply(arch)
                    return trainer.loss(model, batch)
                return fn
            return [plain(a) for a in archs]
        teacher: dict[str, torch.Tensor] = {}

        def distilled(arch: dict[str, Any], first: bool) -> LossFn:
            def fn(model: nn.Module, batch: Any) -> torch.Tensor:
                x, y = batch[0], batch[1]
                if first and not is_largest(space, arch):  # the step does not train the largest: run it for KD
                    space.apply({**arch, **{k: p.choices[-1] for k, p in elastic_params(space).items()}})
                    with torch.no_grad():
                        teacher["logits"] = main_output(model(x)).detach()
                space.apply(arch)
                out = model(x)
                loss = trainer.criteria(out, y, x, model)
                if is_largest(space, arch) and "logits" not in teacher:
                    teacher["logits"] = main_output(out).detach()
                    return loss
                return loss + self.kd_weight * soft_kl(main_output(out), teacher["logits"], self.kd_temperature)
            return fn

        return [distilled(a, i == 0) for i, a in enumerate(archs)]

    # --- evaluation -------------------------------------------------------------------------------
    def evaluate_arch(self, exp: SearchContext, arch: Mapping[str, Any]) -> dict[str, float]:
        """Shared-weight metrics of ``arch`` after BN recalibration (supernet restored), plus its costs."""
        return evaluate_shared_in(self, exp, arch)

    def finish_epoch(self, exp: SearchContext) -> Result:
        """Evaluate and record the stage's largest and (once shrinking) smallest settings, then checkpoint."""
        assert exp.space is not None
        _, name, _, _ = self.stage_at(exp, self.epoch)
        kinds = self.kinds(exp, self.epoch)
        train = {k if k.startswith("arch_") else f"train_{k}": s / max(c, 1) for k, (s, c) in self.sums.items()}
        rank = False if self.budget else exp.is_last_stage()
        rng = random.Random(f"{exp.seed}:ps-eval:{self.epoch}")
        recorded = []
        for which in ("largest", "smallest") if kinds else ("largest",):
            arch = subnet(exp.space, kinds, which, rng, self.fractions(exp, self.epoch))
            metrics = {**self.evaluate_arch(exp, arch), **train}
            info = {"epoch": self.epoch + 1, "estimator": "ProgressiveShrinking", "stage": exp.stage,
                    "phase": name, "subnet": which, "rank": rank}
            recorded.append(exp.record(Result(arch, metrics, info)))
        self.epoch, self.step, self.sums = self.epoch + 1, 0, {}
        exp.checkpoint()
        return recorded[0]

    def metric_names(self, exp: SearchContext) -> set[str] | None:
        """The trainer's metrics, ``train_loss`` and the ``costs``."""
        names = super().metric_names(exp)
        return None if names is None else names | {"train_loss", *self.cost_metrics.names}

    # --- the run ----------------------------------------------------------------------------------
    def check(self, exp: SearchContext) -> None:
        """ConfigError unless the experiment has what this estimator needs (an elastic single-path supernet,
        data, a trainer; a discrete optimizer when it searches; the default loss when it distils)."""
        require(exp, "ProgressiveShrinking", "model", "data", "trainer")
        check_space_kind(self, exp)
        assert exp.model is not None and exp.trainer is not None
        check_single_path(exp.model, "ProgressiveShrinking")
        if self.budget:
            check_discrete(exp, "ProgressiveShrinking")
        if self.distill and exp.trainer.step_fn is not None:
            raise ConfigError("ProgressiveShrinking distill needs the trainer's own loss (criteria on model(x)); "
                              "the trainer has a step_fn: set distill: false")

    def run(self, exp: SearchContext) -> list[Result]:
        """Train stage by stage (resumable inside an epoch), then search ``budget`` archs."""
        self.check(exp)
        super().run(exp)
        if self.budget:
            exp.evaluate_loop(lambda a: self.evaluate_arch(exp, a), self.budget, self.batch_size)
        return [r for r in exp.history if r.info.get("stage") == exp.stage]


__all__ = ["ProgressiveShrinking"]
