"""The default trainers: SGD + cosine schedule over a model's weights, with criteria chains and hooks.

Architecture TensorParams live in ``model.space`` (not registered in the module), so
``model.parameters()`` — what the trainer optimises — holds the weights only.
"""

from __future__ import annotations

import copy
import math
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from ..distributed import Distributed, float_buffers
from ..errors import ConfigError, DivergedError
from ..registry import Registry
from ..userobj import resolve_callable
from .criteria import CriterionChain, CriterionSpec, build_criteria, main_output
from .sampling import epoch_batches, set_epoch

TRAINERS = Registry("trainer")

StepFn = Callable[[nn.Module, Any], torch.Tensor]
EvalFn = Callable[[nn.Module, DataLoader], Mapping[str, float]]


def to_device(batch: Any, device: torch.device | str) -> Any:
    """``batch`` (tensors, or tuples/lists/dicts of them) moved to ``device``."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, (tuple, list)):
        return type(batch)(to_device(b, device) for b in batch)
    if isinstance(batch, Mapping):
        return {k: to_device(v, device) for k, v in batch.items()}
    return batch


@TRAINERS.register("Classification")
class Trainer:
    """Trains a model's weights with SGD; ``evaluate`` reports {"acc": percent, "loss": mean}.

    ``step_fn(model, batch) -> loss`` replaces the default ``criteria(model(x), y)`` (non-image models);
    ``eval_fn(model, loader) -> metrics`` replaces the default evaluation. Both may be ``file.py:fn`` strings.
    A step whose loss or gradient is not finite is skipped (the weights are not touched) and counted as
    ``diverged``; after ``max_diverged_steps`` such steps in a row training stops with DivergedError.
    """

    metric = "acc"  # the metric estimators and optimizers maximise
    default_criterion = "CrossEntropy"

    def __init__(self, epochs: int = 1, lr: float = 0.025, momentum: float = 0.9, weight_decay: float = 3e-4,
                 nesterov: bool = False, scheduler: str = "cosine", grad_clip: float | None = 5.0,
                 criteria: CriterionSpec = None, device: str | torch.device = "cpu",
                 step_fn: StepFn | str | None = None, eval_fn: EvalFn | str | None = None,
                 max_steps_per_epoch: int | None = None, lr_min: float = 0.0, max_diverged_steps: int = 10) -> None:
        if scheduler not in ("cosine", "none"):
            raise ConfigError(f"scheduler must be 'cosine' or 'none', got {scheduler!r}")
        if epochs < 0 or lr <= 0 or max_diverged_steps < 1:
            raise ConfigError(f"trainer needs epochs >= 0, lr > 0 and max_diverged_steps >= 1, got epochs={epochs}, "
                              f"lr={lr}, max_diverged_steps={max_diverged_steps}")
        self.options = dict(epochs=epochs, lr=lr, momentum=momentum, weight_decay=weight_decay, nesterov=nesterov,
                            scheduler=scheduler, grad_clip=grad_clip, criteria=criteria, device=device,
                            step_fn=step_fn, eval_fn=eval_fn, max_steps_per_epoch=max_steps_per_epoch,
                            lr_min=lr_min, max_diverged_steps=max_diverged_steps)
        self.epochs, self.lr, self.lr_min = int(epochs), float(lr), float(lr_min)
        self.momentum, self.weight_decay, self.nesterov = momentum, weight_decay, nesterov
        self.scheduler_name, self.grad_clip = scheduler, grad_clip
        self.criteria: CriterionChain = build_criteria(criteria, self.default_criterion)
        self.device = torch.device(device)
        self.step_fn = resolve_callable(step_fn)
        self.eval_fn = resolve_callable(eval_fn)
        self.max_steps_per_epoch = max_steps_per_epoch
        self.max_diverged_steps = int(max_diverged_steps)
        self.diverged_in_a_row = 0
        self.optimizer: torch.optim.Optimizer | None = None
        self.scheduler: torch.optim.lr_scheduler.LRScheduler | None = None
        self.steps_per_epoch = 0
        self._pending_state: dict[str, Any] | None = None
        # data-parallel runs (fxnas.distributed): gradients and BN statistics averaged over ranks after backward
        self.distributed = Distributed()

    # --- setup --------------------------------------------------------------------------------------
    def clone(self, **changes: Any) -> Trainer:
        """A fresh, unconfigured trainer with the same options (some changed)."""
        opts = {**self.options, **changes}
        opts["criteria"] = self.criteria if "criteria" not in changes else changes["criteria"]
        new = type(self)(**opts)
        new.distributed = self.distributed  # a subnet retrained in a data-parallel run trains data-parallel too
        return new

    def steps_for(self, loader: DataLoader) -> int:
        """Steps one full epoch over ``loader`` takes (capped by max_steps_per_epoch; a pending skip ignored)."""
        n = epoch_batches(loader)
        return min(n, self.max_steps_per_epoch) if self.max_steps_per_epoch else n

    def configure(self, model: nn.Module, steps_per_epoch: int, params: Iterable[nn.Parameter] | None = None,
                  epochs: int | None = None, lr: float | None = None) -> None:
        """Build ``.optimizer`` (SGD over ``model.parameters()``) and ``.scheduler`` (cosine per step over
        ``epochs``, default the trainer's), starting from ``lr`` (default: the trainer's)."""
        model.to(self.device)
        weights = [p for p in (model.parameters() if params is None else params) if p.requires_grad]
        if not weights:
            raise ConfigError(f"{type(model).__name__} has no trainable parameters")
        if lr is not None and not lr > 0:
            raise ConfigError(f"the learning rate must be > 0, got {lr}")
        self.optimizer = torch.optim.SGD(weights, lr=self.lr if lr is None else float(lr), momentum=self.momentum,
                                         weight_decay=self.weight_decay, nesterov=self.nesterov)
        self.steps_per_epoch = max(1, int(steps_per_epoch))
        total = max(1, self.steps_per_epoch * (self.epochs if epochs is None else epochs))
        if self.scheduler_name == "cosine":
            self.scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(self.optimizer, T_max=total,
                                                                        eta_min=self.lr_min)
        else:
            self.scheduler = None
        if self._pending_state is not None:
            state, self._pending_state = self._pending_state, None
            self.load_state_dict(state)

    # --- training -----------------------------------------------------------------------------------
    def loss(self, model: nn.Module, batch: Any) -> torch.Tensor:
        """The training loss of one batch (moved to the device): step_fn, or the criteria's
        ``training_loss(model, x, y)`` (criteria(model(x), y), on the batch as a MixUp criterion mixes it)."""
        batch = to_device(batch, self.device)
        if self.step_fn is not None:
            return self.step_fn(model, batch)
        x, y = batch[0], batch[1]
        return self.criteria.training_loss(model, x, y)

    def train_step(self, model: nn.Module, batch: Any,
                   losses: Sequence[Callable[[nn.Module, Any], torch.Tensor]] | None = None) -> dict[str, float]:
        """One SGD step: zero_grad, loss, backward, clip, step (and scheduler step); returns {"loss"}.

        ``losses`` (default: ``[self.loss]``) are loss functions ``fn(model, batch)`` whose gradients add up
        in this one step, each backpropagated as soon as it is computed (several subnets of an elastic
        supernet trained per step, as in Once-for-All); the reported loss is their mean. The batch is on
        the trainer's device when they get it.
        A non-finite loss or gradient skips the step and returns {"diverged": 1.0}; the scheduler still moves
        on, so a skipped step costs one step of the schedule. In a data-parallel run the gradients and
        BatchNorm statistics are averaged over the ranks after backward, and a rank's non-finite step skips
        the step on every rank.
        """
        if self.optimizer is None:
            raise ConfigError("call trainer.configure(model, steps_per_epoch) before train_step")
        self.optimizer.zero_grad(set_to_none=True)
        batch = to_device(batch, self.device)
        fns = list(losses) if losses is not None else [self.loss]
        finite, total = True, 0.0
        for fn in fns:
            loss = fn(model, batch)
            finite = bool(torch.isfinite(loss))
            if not finite:
                break
            loss.backward()
            total += float(loss.detach())
        params = [p for g in self.optimizer.param_groups for p in g["params"]]
        if self.distributed.enabled:  # every rank takes part, a rank whose loss was not finite too
            finite = self.distributed.sync_step(params, float_buffers(model), finite)
        if finite:
            if self.grad_clip:
                norm = nn.utils.clip_grad_norm_(params, self.grad_clip)
            else:
                grads = [p.grad.detach().norm() for p in params if p.grad is not None]
                norm = torch.norm(torch.stack(grads)) if grads else torch.zeros(())
            finite = bool(torch.isfinite(norm))
        if finite:
            self.optimizer.step()
        else:
            self.optimizer.zero_grad(set_to_none=True)
        if self.scheduler is not None:
            with warnings.catch_warnings():  # a skipped step still moves the schedule on, on purpose
                warnings.filterwarnings("ignore", message=r"Detected call of `lr_scheduler\.step\(\)`")
                self.scheduler.step()
        if finite:
            self.diverged_in_a_row = 0
            return {"loss": total / max(1, len(fns))}
        self.diverged_in_a_row += 1
        if self.diverged_in_a_row >= self.max_diverged_steps:
            self.diverged_in_a_row = 0
            raise DivergedError(f"training diverged: {self.max_diverged_steps} steps in a row had a non-finite loss "
                                f"or gradient (last loss {float(loss.detach())}, lr {self.current_lr():.3g}); "
                                f"lower the learning rate (trainer.lr) or raise trainer.max_diverged_steps")
        return {"diverged": 1.0}

    def train_epoch(self, model: nn.Module, loader: DataLoader, epoch: int,
                    before_step: Callable[[int, Any], None] | None = None) -> dict[str, float]:
        """Train one epoch (order fixed by ``epoch``); ``before_step(step, batch)`` runs before each step."""
        if self.optimizer is None:
            self.configure(model, self.steps_for(loader))
        set_epoch(loader, epoch)
        model.train()
        limit = self.steps_for(loader)
        total, n = 0.0, 0
        for i, batch in enumerate(loader):
            if i >= limit:
                break
            if before_step is not None:
                before_step(i, batch)
            out = self.train_step(model, batch)
            if "loss" in out:
                total += out["loss"]
                n += 1
        return {"loss": total / n if n else math.nan, "steps": float(n), "lr": self.current_lr()}

    def fit(self, model: nn.Module, loader: DataLoader, epochs: int | None = None,
            start_epoch: int = 0) -> list[dict[str, float]]:
        """Train for ``epochs`` (default: the trainer's) epochs; per-epoch stats."""
        n = self.epochs if epochs is None else epochs
        if self.optimizer is None:
            self.configure(model, self.steps_for(loader), epochs=n)
        return [self.train_epoch(model, loader, e) for e in range(start_epoch, n)]

    def metric_names(self) -> set[str] | None:
        """The metrics ``evaluate`` reports (None with a user eval_fn: known only once it runs)."""
        return None if self.eval_fn is not None else {"acc", "loss"}

    def current_lr(self) -> float:
        """The learning rate of the next step."""
        return float(self.optimizer.param_groups[0]["lr"]) if self.optimizer is not None else self.lr

    # --- evaluation ---------------------------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self, model: nn.Module, loader: DataLoader, max_steps: int | None = None) -> dict[str, float]:
        """Metrics of ``model`` on ``loader`` in eval mode (eval_fn when given); the mode is restored."""
        was = model.training
        model.eval()
        try:
            if self.eval_fn is not None:
                return {k: float(v) for k, v in self.eval_fn(model, loader).items()}
            return self._evaluate(model, loader, max_steps)
        finally:
            model.train(was)

    def _evaluate(self, model: nn.Module, loader: DataLoader, max_steps: int | None) -> dict[str, float]:
        correct, loss_sum, n = 0, 0.0, 0
        for i, batch in enumerate(loader):
            if max_steps is not None and i >= max_steps:
                break
            x, y = to_device(batch, self.device)[:2]
            out = model(x)
            k = len(y)
            loss_sum += float(self.criteria.task_loss(out, y)) * k
            correct += int((main_output(out).argmax(-1) == y).sum())
            n += k
        if n == 0:
            raise ConfigError("evaluation loader yielded no samples")
        return {"acc": 100.0 * correct / n, "loss": loss_sum / n}

    # --- state --------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Optimizer and scheduler state, for checkpoints (a state loaded before configure() is kept as is)."""
        if self.optimizer is None and self._pending_state is not None:
            return dict(self._pending_state)  # a checkpoint taken before configure() must not drop it
        return {"optimizer": self.optimizer.state_dict() if self.optimizer is not None else None,
                "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
                "diverged_in_a_row": self.diverged_in_a_row}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore state_dict; before configure() it is kept and applied when configure() runs."""
        if self.optimizer is None:
            self._pending_state = dict(state)
            return
        if state.get("optimizer") is not None:
            self.optimizer.load_state_dict(state["optimizer"])
        if state.get("scheduler") is not None and self.scheduler is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        self.diverged_in_a_row = int(state.get("diverged_in_a_row", 0))

    def __repr__(self) -> str:
        opts = {k: v for k, v in self.options.items() if v is not None and k not in ("criteria",)}
        return f"{type(self).__name__}({opts}, criteria={self.criteria})"

    def __deepcopy__(self, memo: dict) -> Trainer:
        # a copy is a fresh trainer with the same config; optimizer state belongs to the model it was built for
        new = self.clone(criteria=copy.deepcopy(self.criteria, memo))
        memo[id(self)] = new
        return new


Classification = Trainer


@TRAINERS.register("Regression")
class Regression(Trainer):
    """A trainer for regression (MSE by default); ``evaluate`` reports {"neg_mse", "mse", "loss"}."""

    metric = "neg_mse"
    default_criterion = "MSE"

    def metric_names(self) -> set[str] | None:
        """neg_mse, mse, loss, rmse (None with a user eval_fn)."""
        return None if self.eval_fn is not None else {"neg_mse", "mse", "loss", "rmse"}

    def _evaluate(self, model: nn.Module, loader: DataLoader, max_steps: int | None) -> dict[str, float]:
        se, n = 0.0, 0
        for i, batch in enumerate(loader):
            if max_steps is not None and i >= max_steps:
                break
            x, y = to_device(batch, self.device)[:2]
            pred = main_output(model(x))
            if pred.dim() == y.dim() + 1 and pred.shape[-1] == 1:
                pred = pred.squeeze(-1)
            se += float(((pred - y.to(pred.dtype)) ** 2).sum())
            n += y.numel()
        if n == 0:
            raise ConfigError("evaluation loader yielded no samples")
        mse = se / n
        return {"neg_mse": -mse, "mse": mse, "loss": mse, "rmse": math.sqrt(mse)}
