"""The Retrain estimator (DARTS's "augment" stage, or a fine-tune): train the chosen arch as a standalone subnet.

The subnet is materialised from the supernet (plain torch ops), re-initialised (``from_scratch``; with
``from_scratch: false`` it keeps the supernet's weights, e.g. pretrained ones: a fine-tune) and trained for
``epochs`` with a cosine learning rate by a copy of the experiment's trainer, optionally with label
smoothing, an auxiliary head's loss and DropPath whose rate grows linearly to ``drop_path`` (DARTS:
``drop_path * epoch / epochs``). Each epoch ends with a checkpoint holding the subnet's weights and the
trainer's state, so a killed run resumes at its last epoch. The result carries the trainer's metrics on
``eval_split`` and, when the data has a test split, on it as ``test_*``; the experiment then exports this
subnet (DropPath and auxiliary outputs removed).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

import torch
import torch.fx as fx
from torch import nn

from ..errors import ConfigError
from ..optim.base import Result, arch_key
from ..options import FilePath
from ..passes.materialize import materialize
from ..passes.train_only import (
    add_drop_path,
    has_auxiliary_outputs,
    remove_auxiliary_outputs,
    remove_drop_path,
    set_drop_path,
)
from ..rng import preserved_rng
from ..train.criteria import Auxiliary, CriterionChain, CrossEntropy, LabelSmoothing
from .base import ESTIMATORS, Estimator, SearchContext, require
from .default import load_arch
from .subnet import arch_seed, count_params, reset_weights

if TYPE_CHECKING:
    from ..train.trainer import Trainer


@ESTIMATORS.register("Retrain")
class Retrain(Estimator):
    """Train the chosen arch as a standalone subnet for ``epochs`` (cosine LR) and report its test metrics.

    ``arch``: a mapping, a YAML file (arch_best.yaml), ``best`` or ``derived`` (default: the best result so
    far, else what the optimizer derives). ``from_scratch``: re-initialise the weights (false: start from the
    supernet's, a fine-tune). ``lr`` / ``weight_decay`` override the trainer's. ``label_smoothing``: eps of
    LabelSmoothing in place of CrossEntropy. ``auxiliary``: the weight of an Auxiliary loss on a model that
    returns (logits, aux_logits) (``model: {type: darts, auxiliary: true}``); the exported subnet keeps the
    logits only. ``drop_path``: the final DropPath rate after each searched op (cell spaces). Each epoch is
    evaluated on ``eval_split`` (``eval_steps`` batches, default all), the final subnet on the test split too.
    ``rank``: whether the result competes for the best arch (default: when it is the last stage).
    """

    def __init__(self, epochs: int = 10,
                 arch: Mapping[str, Any] | Literal["best", "derived"] | FilePath | None = None,
                 from_scratch: bool = True, lr: float | None = None, weight_decay: float | None = None,
                 label_smoothing: float = 0.0, auxiliary: float = 0.0, drop_path: float = 0.0,
                 eval_split: str = "valid", eval_steps: int | None = None, rank: bool | None = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        name = type(self).__name__
        if epochs < 0 or not 0.0 <= label_smoothing < 1.0 or auxiliary < 0 or not 0.0 <= drop_path < 1.0:
            raise ConfigError(f"{name} needs epochs >= 0, label_smoothing in [0, 1), auxiliary >= 0 and drop_path "
                              f"in [0, 1); got epochs={epochs}, label_smoothing={label_smoothing}, "
                              f"auxiliary={auxiliary}, drop_path={drop_path}")
        if (lr is not None and lr <= 0) or (weight_decay is not None and weight_decay < 0):
            raise ConfigError(f"{name} needs lr > 0 and weight_decay >= 0, got lr={lr}, weight_decay={weight_decay}")
        self.epochs, self.arch_spec, self.from_scratch = int(epochs), arch, bool(from_scratch)
        self.lr, self.weight_decay = lr, weight_decay
        self.label_smoothing, self.auxiliary = float(label_smoothing), float(auxiliary)
        self.drop_path = float(drop_path)
        self.eval_split, self.eval_steps, self.rank = eval_split, eval_steps, rank
        self.arch: dict[str, Any] | None = None  # the arch being retrained (fixed when the stage starts)
        self.epoch, self.done = 0, False
        self.weights: dict[str, torch.Tensor] | None = None
        self.trainer_state: dict[str, Any] | None = None
        self.train_loss: float | None = None
        self._final: nn.Module | None = None

    # --- progress ---------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """The arch, epochs done, the subnet's weights and its trainer's state (tensors and plain data)."""
        return {"arch": self.arch, "epoch": self.epoch, "done": self.done, "weights": self.weights,
                "trainer": self.trainer_state, "train_loss": self.train_loss}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore state_dict (the subnet is rebuilt from the weights when the stage runs)."""
        self.arch = None if state["arch"] is None else dict(state["arch"])
        self.epoch, self.done = int(state["epoch"]), bool(state["done"])
        self.weights, self.trainer_state = state["weights"], state["trainer"]
        self.train_loss = state["train_loss"]
        self._final = None

    def metric_names(self, exp: SearchContext) -> set[str] | None:
        """The trainer's metrics, ``test_<metric>`` when the data has a test split, ``params`` and ``train_loss``."""
        names = super().metric_names(exp)
        if names is None:
            return None
        test = {f"test_{n}" for n in names} if exp.data is not None and exp.data.test is not None else set()
        return set(names) | test | {"params", "train_loss"}

    # --- the subnet and its trainer -----------------------------------------------------------------
    def choose_arch(self, exp: SearchContext) -> dict[str, Any]:
        """The arch to retrain: ``arch`` as given, else the best result so far, else the optimizer's."""
        if self.arch_spec is not None:
            return load_arch(self.arch_spec, exp)
        return load_arch("best" if exp.best is not None else "derived", exp)

    def build_subnet(self, supernet: fx.GraphModule, arch: Mapping[str, Any]) -> fx.GraphModule:
        """The training subnet of ``arch``: materialised, with DropPath calls when ``drop_path`` > 0."""
        if self.drop_path <= 0:
            return materialize(supernet, arch)
        net, count = add_drop_path(supernet, arch)
        if count == 0:
            raise ConfigError(f"{type(self).__name__}: drop_path has no op to drop: no slot of {dict(arch)} chose a "
                              f"candidate that computes (all are identities or zeros); set drop_path: 0")
        return materialize(net, arch)

    def build_trainer(self, trainer: Trainer) -> Trainer:
        """A fresh copy of the experiment's trainer for this stage: its epochs, cosine LR and criteria."""
        criteria = list(trainer.criteria.criteria)
        if self.label_smoothing > 0:
            if not any(isinstance(c, CrossEntropy) for c in criteria):
                raise ConfigError(f"{type(self).__name__}: label_smoothing replaces CrossEntropy, which "
                                  f"trainer.criteria lacks ({[type(c).__name__ for c in criteria]})")
            criteria = [LabelSmoothing(self.label_smoothing) if isinstance(c, CrossEntropy) else c for c in criteria]
        if self.auxiliary > 0:
            criteria = [c for c in criteria if not isinstance(c, Auxiliary)] + [Auxiliary(self.auxiliary)]
        changes: dict[str, Any] = {"epochs": self.epochs, "scheduler": "cosine", "criteria": CriterionChain(criteria)}
        if self.lr is not None:
            changes["lr"] = self.lr
        if self.weight_decay is not None:
            changes["weight_decay"] = self.weight_decay
        return trainer.clone(**changes)

    def export_copy(self, net: fx.GraphModule) -> fx.GraphModule:
        """The exported form of a training subnet: DropPath and (with ``auxiliary``) auxiliary outputs removed."""
        out = remove_drop_path(copy.deepcopy(net))
        return remove_auxiliary_outputs(out) if self.auxiliary > 0 else out

    # --- the run ----------------------------------------------------------------------------------
    def run(self, exp: SearchContext) -> list[Result]:
        """Train epoch by epoch from the saved progress, then evaluate and record the subnet."""
        who = type(self).__name__
        require(exp, who, "model", "data", "trainer")
        assert exp.model is not None and exp.data is not None and exp.trainer is not None
        if self.done:
            return exp.stage_results()
        if self.arch is None:
            self.arch = self.choose_arch(exp)
        net = self.build_subnet(exp.model, self.arch)  # type: ignore[arg-type]  # a supernet is a GraphModule
        if self.auxiliary > 0 and not has_auxiliary_outputs(net):
            raise ConfigError(f"{who}: auxiliary needs a model returning (logits, aux_logits), e.g. model: "
                              f"{{type: darts, auxiliary: true}}; this one returns one output")
        if self.weights is not None:
            net.load_state_dict(self.weights)
        elif self.from_scratch:
            with preserved_rng():  # the same initial weights for this arch whatever ran before
                torch.manual_seed(arch_seed(exp.seed, self.arch))
                reset_weights(net)
        trainer = self.build_trainer(exp.trainer)
        trainer.configure(net, trainer.steps_for(exp.data.train))
        if self.trainer_state is not None:
            trainer.load_state_dict(self.trainer_state)
        metrics: dict[str, float] = {}
        with exp.track(self.epochs, f"{who} epochs", self.epoch) as bar:
            while self.epoch < self.epochs:
                if self.drop_path > 0:
                    set_drop_path(net, self.drop_path * self.epoch / self.epochs)
                stats = trainer.train_epoch(net, exp.data.train, self.epoch)
                if self.drop_path > 0:
                    set_drop_path(net, 0.0)
                metrics = self.evaluate(exp, trainer, net, self.eval_split, self.eval_steps)
                self.epoch += 1
                self.train_loss = float(stats["loss"])
                self.weights, self.trainer_state = net.state_dict(), trainer.state_dict()
                exp.log(f"{who} epoch {self.epoch}/{self.epochs}: train_loss={self.train_loss:.4g} "
                        + " ".join(f"{k}={v:.4g}" for k, v in metrics.items()), console=False)
                bar.advance()
                bar.note(" ".join(f"{k}={v:.3g}" for k, v in list(metrics.items())[:2]))
                exp.checkpoint()
        final = self.export_copy(net)
        if not metrics:  # no epoch ran here (epochs: 0, or resumed after the last one)
            metrics = self.evaluate(exp, trainer, final, self.eval_split, self.eval_steps)
        if exp.data.test is not None:
            metrics.update({f"test_{k}": v for k, v in self.evaluate(exp, trainer, final, "test").items()})
        metrics["params"] = float(count_params(final))
        if self.train_loss is not None:
            metrics["train_loss"] = self.train_loss
        self._final = final
        rank = self.rank if self.rank is not None else exp.is_last_stage()
        exp.record(Result(dict(self.arch), metrics, {"estimator": who, "epochs": self.epochs, "rank": rank}))
        shown = ", ".join(f"{k}={v:.4g}" for k, v in metrics.items() if k.startswith("test_"))
        if shown:
            exp.log(f"{who}: {shown}")
        self.done = True
        return exp.stage_results()

    @staticmethod
    def evaluate(exp: SearchContext, trainer: Trainer, net: nn.Module, split: str,
                 max_steps: int | None = None) -> dict[str, float]:
        """The trainer's metrics of ``net`` on a data split (global RNGs untouched)."""
        assert exp.data is not None
        with preserved_rng():
            return trainer.evaluate(net, exp.data.split(split), max_steps)

    def final_subnet(self, exp: SearchContext, arch: Mapping[str, Any]) -> nn.Module | None:
        """The retrained subnet when ``arch`` is the arch this stage retrained (rebuilt after a resume)."""
        if not self.done or self.arch is None or arch_key(arch) != arch_key(self.arch):
            return None
        if self._final is None and self.weights is not None and exp.model is not None:
            net = self.build_subnet(exp.model, self.arch)  # type: ignore[arg-type]
            net.load_state_dict(self.weights)
            self._final = self.export_copy(net)
        return self._final

