"""The SubNet estimator: materialise each proposed arch, train it from scratch, evaluate it on the valid split."""

from __future__ import annotations

import copy
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
import torch.fx as fx
from torch import nn

from ..costs import CostOption, CostSpec
from ..errors import ConfigError
from ..optim.base import Result, arch_key
from ..optim.discrete import DiscreteOptimizer
from ..passes.materialize import materialize
from ..rng import preserved_rng
from ..supernet import attach_space, mixed_ops, space_of
from ..train.bn import recalibrate_bn
from ..train.sampling import fixed_batches
from .base import ESTIMATORS, Estimator, SearchContext, require

if TYPE_CHECKING:
    from ..train.datasets import DataBundle
    from ..train.trainer import Trainer


def arch_seed(seed: int, arch: Mapping[str, Any]) -> int:
    """A seed fixed by (seed, arch): an arch trains the same whatever the evaluation order (resume, workers)."""
    return (int(seed) * 1_000_003 + zlib.crc32(repr(arch_key(arch)).encode())) % (2**31)


def count_params(module: nn.Module) -> int:
    """Number of parameters of ``module``."""
    return sum(p.numel() for p in module.parameters())


def reset_weights(module: nn.Module) -> None:
    """Re-initialise every submodule that has ``reset_parameters`` (convs, linears, norms...)."""
    for m in module.modules():  # BatchNorms' reset_parameters also resets their running statistics
        if m is not module and callable(getattr(m, "reset_parameters", None)):
            m.reset_parameters()


def subnet_params(supernet: fx.GraphModule, arch: Mapping[str, Any]) -> int:
    """Parameters of the materialised subnet of ``arch``, counted on a weightless (meta) copy: no weight is copied."""
    # deepcopy takes the memo's meta tensors for the supernet's own, so materialize works on shapes only
    memo: dict[int, Any] = {id(t): _meta(t) for t in (*supernet.parameters(), *supernet.buffers())}
    return count_params(materialize(copy.deepcopy(supernet, memo), arch))


def _meta(t: torch.Tensor) -> torch.Tensor:
    m = t.detach().to("meta")
    return nn.Parameter(m, requires_grad=t.requires_grad) if isinstance(t, nn.Parameter) else m


def single_path(supernet: nn.Module) -> bool:
    """True when applying an arch makes the supernet run exactly that subnet (no mixed op weighs candidates)."""
    return all(op.single_path for op in mixed_ops(supernet).values())


def fit_subnet(supernet: fx.GraphModule, arch: Mapping[str, Any], data: DataBundle, trainer: Trainer,
               epochs: int | None = None, seed: int = 0, from_scratch: bool = True,
               eval_split: str = "valid", eval_steps: int | None = None,
               bn_steps: int = 0) -> tuple[dict[str, float], nn.Module]:
    """(metrics, trained module) of ``arch`` trained with a fresh copy of ``trainer`` for ``epochs``.

    The module is a copy of the supernet with ``arch`` applied when the supernet is single-path (so its
    weights can go back into the supernet), else the materialised subnet. The supernet is untouched; weights
    are re-initialised (``from_scratch``) under a seed fixed by (seed, arch); global RNGs are left as they were.
    ``bn_steps`` > 0 re-estimates BN statistics on that many fixed train batches before evaluating (after a
    short training the running averages lag behind the weights; the exported subnet is recalibrated too).
    Metrics: the trainer's (acc/loss or neg_mse/...), plus ``params`` (of the materialised subnet) and
    ``train_loss``.
    """
    loader = data.split(eval_split)
    with preserved_rng():  # python, numpy, torch CPU and CUDA: the manual_seed below reseeds them all
        torch.manual_seed(arch_seed(seed, arch))
        if single_path(supernet):  # a supernet copy, whose weights can go back into the supernet (keep_best)
            net: nn.Module = copy.deepcopy(supernet)
            space_of(net).apply(arch)
            n_params = subnet_params(supernet, arch)
        else:  # materialize returns a copy already
            net = materialize(supernet, arch)
            n_params = count_params(net)
        if from_scratch:
            reset_weights(net)
        t = trainer.clone(**({} if epochs is None else {"epochs": int(epochs)}))
        stats = t.fit(net, data.train) if t.epochs > 0 else []
        if bn_steps:
            recalibrate_bn(net, fixed_batches(data.train, bn_steps), bn_steps, device=t.device,
                           forward_fn=t.step_fn)
        metrics = t.evaluate(net, loader, eval_steps)
    metrics["params"] = float(n_params)
    if stats:
        metrics["train_loss"] = stats[-1]["loss"]
    return metrics, net


def train_subnet(supernet: fx.GraphModule, arch: Mapping[str, Any], data: DataBundle, trainer: Trainer,
                 epochs: int | None = None, seed: int = 0, from_scratch: bool = True,
                 eval_split: str = "valid", eval_steps: int | None = None, bn_steps: int = 0) -> dict[str, float]:
    """Metrics of ``arch`` trained from scratch (see fit_subnet); the supernet is untouched."""
    return fit_subnet(supernet, arch, data, trainer, epochs, seed, from_scratch, eval_split, eval_steps,
                      bn_steps)[0]


@dataclass
class SubnetEvaluation:
    """The picklable evaluate function of SubNet on workers: a copy of the supernet, the data and the trainer.

    Training is fixed by (seed, arch) (``arch_seed``), so an arch gets the same metrics on any worker, in any
    order, as in this process.
    """

    supernet: fx.GraphModule
    data: DataBundle
    trainer: Trainer
    epochs: int | None
    seed: int
    from_scratch: bool
    eval_split: str
    eval_steps: int | None
    bn_steps: int
    costs: CostOption

    def __getstate__(self) -> dict[str, Any]:
        # a GraphModule rebuilt from a pickle keeps .space but not the meta entry that makes it survive the
        # deepcopy fit_subnet takes: attach it again
        return {**self.__dict__, "space": space_of(self.supernet)}

    def __setstate__(self, state: dict[str, Any]) -> None:
        space = state.pop("space")
        self.__dict__.update(state)
        attach_space(self.supernet, space)

    def __call__(self, arch: Mapping[str, Any]) -> dict[str, float]:
        """Train ``arch`` from scratch; its metrics and costs."""
        metrics, _ = fit_subnet(self.supernet, arch, self.data, self.trainer, self.epochs, self.seed,
                                self.from_scratch, self.eval_split, self.eval_steps, self.bn_steps)
        metrics.update(self.costs(self.supernet, arch))
        return metrics


@ESTIMATORS.register("SubNet")
class SubNet(Estimator):
    """Discrete search by training every proposed arch from scratch: ``budget`` archs, ``batch_size`` per round.

    ``epochs`` (default: the trainer's) epochs per arch with a fresh copy of the experiment's trainer config.
    ``bn_steps`` train batches re-estimate BN statistics before each evaluation (0: off).
    Afterwards the supernet holds the best arch's trained weights (``keep_best``), so the experiment's
    exported subnet and its test metrics are those of the trained arch. ``keep_best`` needs a single-path
    (Index) supernet; with mixed ops that weigh candidates (SoftmaxSum, GumbelSum, BinaryGate) set it false.
    ``costs`` (e.g. ``[params, macs]``, see fxnas.costs) are counted for each arch from the supernet.
    With ``parallel.backend`` process or dask the archs train on the workers (``SubnetEvaluation``); the best
    arch is then trained once more here for ``keep_best`` (deterministic per (seed, arch): the same weights).
    """

    parallel_safe = True

    def __init__(self, epochs: int | None = None, budget: int = 10, batch_size: int = 1, from_scratch: bool = True,
                 eval_split: str = "valid", eval_steps: int | None = None, keep_best: bool = True,
                 bn_steps: int = 10, costs: Sequence[CostSpec] = (), **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if budget < 1 or batch_size < 1 or bn_steps < 0 or (epochs is not None and epochs < 0):
            raise ConfigError(f"SubNet needs budget >= 1, batch_size >= 1, bn_steps >= 0 and epochs >= 0; got "
                              f"budget={budget}, batch_size={batch_size}, bn_steps={bn_steps}, epochs={epochs}")
        self.epochs, self.budget, self.batch_size = epochs, int(budget), int(batch_size)
        self.from_scratch, self.eval_split, self.eval_steps = from_scratch, eval_split, eval_steps
        self.keep_best, self.bn_steps = keep_best, int(bn_steps)
        self.cost_metrics = CostOption(costs, "SubNet costs")
        self._best: tuple[float, tuple, dict[str, torch.Tensor]] | None = None  # (score, arch key, weights)

    def check_keep_best(self, exp: SearchContext) -> None:
        """ConfigError unless the supernet is single-path: only then can a trained arch's weights go back into it."""
        assert exp.model is not None
        if not single_path(exp.model):
            bad = sorted({type(op).__name__ for op in mixed_ops(exp.model).values() if not op.single_path})
            raise ConfigError(f"SubNet keep_best needs a single-path supernet (construct mixed_op: Index), so that "
                              f"the best arch's trained weights can be put back into it; this one has {bad}. "
                              f"Use mixed_op: Index, or keep_best: false (the exported subnet then keeps the "
                              f"supernet's own weights)")

    def metric_names(self, exp: SearchContext) -> set[str] | None:
        """The trainer's metrics plus ``params``, ``train_loss`` and the ``costs``."""
        names = super().metric_names(exp)
        return None if names is None else names | {"params", "train_loss", *self.cost_metrics.names}

    def _fit(self, exp: SearchContext, arch: Mapping[str, Any]) -> tuple[dict[str, float], nn.Module]:
        assert exp.model is not None and exp.data is not None and exp.trainer is not None
        return fit_subnet(exp.model, arch, exp.data, exp.trainer, self.epochs, exp.seed, self.from_scratch,
                          self.eval_split, self.eval_steps, self.bn_steps)

    def evaluate_arch(self, exp: SearchContext, arch: Mapping[str, Any]) -> dict[str, float]:
        """Train ``arch`` from scratch and return its metrics (keeping the weights of the best so far)."""
        metrics, net = self._fit(exp, arch)
        metrics.update(self.cost_metrics(exp.model, arch))
        if self.keep_best:
            try:
                score = exp.score(Result(dict(arch), metrics))
            except ConfigError:  # no objective metric in these metrics: nothing to rank
                return metrics
            if self._best is None or score > self._best[0]:
                self._best = (score, arch_key(arch), {k: v.detach().clone() for k, v in net.state_dict().items()})
        return metrics

    def evaluator(self, exp: SearchContext) -> SubnetEvaluation:
        """The picklable evaluate function for workers (nothing of ``exp`` but its supernet, data, trainer)."""
        assert exp.model is not None and exp.data is not None and exp.trainer is not None
        return SubnetEvaluation(exp.model, exp.data, exp.trainer, self.epochs, exp.seed, self.from_scratch,
                                self.eval_split, self.eval_steps, self.bn_steps, self.cost_metrics)

    def load_best(self, exp: SearchContext, results: list[Result]) -> None:
        """Put the trained weights of the best of ``results`` into the supernet (retrained when not kept)."""
        if not results or exp.model is None:
            return
        self.check_keep_best(exp)
        best = max(results, key=exp.score)
        if self._best is not None and self._best[1] == arch_key(best.arch):
            state = self._best[2]
        else:  # e.g. found before a resume: training is deterministic per (seed, arch), so retrain it
            state = self._fit(exp, best.arch)[1].state_dict()
        exp.model.load_state_dict(state)
        space_of(exp.model).apply(best.arch)
        exp.log(f"SubNet: the supernet now holds the trained weights of {best.arch}")

    def run(self, exp: SearchContext) -> list[Result]:
        """Propose → train from scratch → step, for ``budget`` archs (resumable through exp.evaluate_loop)."""
        check_discrete(exp, "SubNet")
        if self.keep_best:
            self.check_keep_best(exp)
        results = exp.evaluate_loop(self.evaluator(exp) if exp.parallel["backend"] != "local" else
                                    (lambda arch: self.evaluate_arch(exp, arch)), self.budget, self.batch_size)
        if self.keep_best:
            self.load_best(exp, results)
        self._best = None
        return results


def check_discrete(exp: SearchContext, who: str) -> None:
    """ConfigError unless ``exp`` has a supernet, data, a trainer and a discrete optimizer."""
    require(exp, who, "model", "data", "trainer", "optimizer")
    if not isinstance(exp.optimizer, DiscreteOptimizer):
        raise ConfigError(f"{who} needs a discrete optimizer (Random, Evolution, ...), got gradient optimizer "
                          f"{type(exp.optimizer).__name__}; use the SuperNet estimator for gradient methods")
