"""Gradient (one-shot) optimizers of the space's alphas: DARTS, BinaryGate, GumbelAnnealing, REINFORCE, DirectGrad.

Each implements the GradientOptimizer contract (see its docstring for the call hierarchy). They use only
``ctx.model`` (the supernet), ``ctx.trainer`` (``loss(model, batch)``; ``evaluate`` and ``metric`` for
REINFORCE's reward; the weight ``optimizer`` for unrolled DARTS) and ``ctx.space``. Mixed ops take part
through their own hooks (``MixedOp.before_arch_step`` / ``after_arch_step`` / ``set_temperature``), so no
optimizer here knows a concrete mixed op.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from ..errors import ConfigError
from ..mixed.base import arch_step, fixed_arch, set_temperature
from ..space import DERIVE_RULES, Categorical, SearchSpace, TensorParam
from .base import OPTIMIZERS, ArchStepContext, GradientOptimizer
from .cost import cost_from_config

DARTS_ADAM = {"lr": 3e-4, "betas": (0.5, 0.999), "weight_decay": 1e-3, "eps": 1e-8}
ArchGradient = tuple[torch.Tensor, list[torch.Tensor]]  # (arch loss, its gradient per alpha)
PROXYLESS_ADAM = {"lr": 6e-3, "betas": (0.0, 0.999), "weight_decay": 0.0, "eps": 1e-8}


class AlphaOptimizer(GradientOptimizer):
    """Adam over the space's TensorParams; subclasses say which loss gives the arch gradient."""

    adam_defaults: Mapping[str, Any] = DARTS_ADAM

    def __init__(self, space: SearchSpace, seed: int | None = 0, lr: float | None = None,
                 betas: Sequence[float] | None = None, weight_decay: float | None = None, eps: float | None = None,
                 derive: str | None = None, cost: Mapping[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(space, seed, **kwargs)
        if derive is not None and derive not in DERIVE_RULES:
            raise ConfigError(f"{type(self).__name__}: derive must be one of {DERIVE_RULES.names()}, got {derive!r}")
        self.derive = derive
        self.cost = cost_from_config(cost)
        d = self.adam_defaults
        self.adam_options = {"lr": float(d["lr"] if lr is None else lr),
                             "betas": tuple(float(b) for b in (d["betas"] if betas is None else betas)),
                             "weight_decay": float(d["weight_decay"] if weight_decay is None else weight_decay),
                             "eps": float(d["eps"] if eps is None else eps)}
        self._prepare_space()
        self.names = list(space.tensors())
        self.params = [space.tensors()[n].value for n in self.names]
        if not self.params:
            raise ConfigError(f"{type(self).__name__} needs architecture weights (TensorParams) in the space; "
                              f"construct with a gradient mixed op: SoftmaxSum, BinaryGate, BinaryGateUniform, "
                              f"GumbelSum")
        self.adam = torch.optim.Adam(self.params, **self.adam_options)
        self.arch_steps = 0

    def _prepare_space(self) -> None:
        """Hook: add TensorParams the optimizer needs before Adam is built."""

    def best(self) -> dict[str, Any]:
        """The arch the alphas imply, by the ``derive`` rule (default: the space's own, e.g. argmax)."""
        return self.space.derive() if self.derive is None else DERIVE_RULES.get(self.derive)(self.space)

    def next(self, n: int = 1) -> list[dict[str, Any]]:
        return [self.best()]

    # --- gradients ----------------------------------------------------------------------------------
    def _grads(self, loss: torch.Tensor) -> list[torch.Tensor]:
        """d loss / d alphas only (weights' .grad stay untouched); unused alphas get zeros."""
        got = torch.autograd.grad(loss, self.params, allow_unused=True)
        return [torch.zeros_like(p) if g is None else g for p, g in zip(self.params, got)]

    def _apply(self, grads: Sequence[torch.Tensor]) -> None:
        # data-parallel: the same averaged gradient on every rank keeps the alphas and Adam's state identical
        grads = self.distributed.average(list(grads))
        for p, g in zip(self.params, grads):
            p.grad = g.detach().to(p.dtype)
        self.adam.step()
        for p in self.params:
            p.grad = None
        self.arch_steps += 1

    @staticmethod
    def _loss(exp: ArchStepContext, batch: Any) -> torch.Tensor:
        was = exp.model.training
        exp.model.train()  # arch steps use batch statistics, as the weight steps do
        try:
            return exp.trainer.loss(exp.model, batch)
        finally:
            exp.model.train(was)

    def step_arch(self, exp: ArchStepContext, train_batch: Any, valid_batch: Any) -> dict[str, float]:
        """One Adam step on the alphas along the gradient of ``arch_loss`` (+ the expected-cost term), between
        the mixed ops' ``before_arch_step`` and ``after_arch_step`` hooks (BinaryGate's rescale)."""
        with arch_step(exp.model) as op_stats:
            loss, grads = self.arch_gradient(exp, train_batch, valid_batch)
            stats = {"arch_loss": float(loss.detach())}
            self._apply(self._with_cost(exp, loss, grads, stats))
        stats.update(op_stats)
        return stats

    def _with_cost(self, exp: ArchStepContext, loss: torch.Tensor, grads: list[torch.Tensor],
                   stats: dict[str, float]) -> list[torch.Tensor]:
        """``grads`` with the ``cost`` option's hardware term (ProxylessNAS's expected-cost or -latency loss)."""
        if self.cost is None:
            return grads
        out, expected = self.cost.gradients(exp.model, self.space, loss, grads, self.params)
        stats[f"arch_{self.cost.metric}"] = expected
        return out

    def arch_gradient(self, exp: ArchStepContext, train_batch: Any, valid_batch: Any) -> ArchGradient:
        """(loss, gradient of the alphas) of one step; the default is the first-order one on the valid batch."""
        loss = self._loss(exp, valid_batch)
        return loss, self._grads(loss)

    # --- state --------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """RNG, Adam state, alpha values and step count."""
        return {**super().state_dict(), "adam": self.adam.state_dict(), "arch_steps": self.arch_steps,
                "alphas": {n: p.detach().cpu().clone() for n, p in zip(self.names, self.params)}}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore state_dict (alphas in place, so the supernet keeps sharing them)."""
        super().load_state_dict(state)
        with torch.no_grad():
            for n, p in zip(self.names, self.params):
                if n in state.get("alphas", {}):
                    p.copy_(torch.as_tensor(state["alphas"][n]).to(p.device))
        self.adam.load_state_dict(state["adam"])
        self.arch_steps = int(state.get("arch_steps", 0))


@OPTIMIZERS.register("DARTS")
class DARTS(AlphaOptimizer):
    """DARTS: Adam on alphas along d L_valid / d alpha (first order) or its unrolled second-order estimate.

    ``unrolled=True``: w' = w - xi * (grad_w L_train + momentum buffer + weight decay), then
    grad = d L_valid(w', a)/da - xi * (d L_train(w+, a)/da - d L_train(w-, a)/da) / (2 eps), with
    w± = w ± eps * d L_valid(w', a)/dw', eps = r / ||d L_valid / dw'|| (DARTS's finite-difference
    Hessian-vector product). ``xi`` defaults to the weight optimizer's current lr. ``one_level=True``
    uses the train batch for the arch loss too.
    """

    def __init__(self, space: SearchSpace, seed: int | None = 0, unrolled: bool = False, one_level: bool = False,
                 xi: float | None = None, r: float = 1e-2, **kwargs: Any) -> None:
        super().__init__(space, seed, **kwargs)
        self.unrolled, self.one_level, self.xi, self.r = bool(unrolled), bool(one_level), xi, float(r)

    def arch_gradient(self, exp: ArchStepContext, train_batch: Any, valid_batch: Any) -> ArchGradient:
        batch = train_batch if self.one_level else valid_batch
        if not self.unrolled:
            loss = self._loss(exp, batch)
            return loss, self._grads(loss)
        return self._unrolled(exp, train_batch, batch)

    def _unrolled(self, exp: ArchStepContext, train_batch: Any, valid_batch: Any) -> ArchGradient:
        model: nn.Module = exp.model
        weights = [p for p in model.parameters() if p.requires_grad]
        wopt = exp.trainer.optimizer
        groups = {id(p): g for g in (wopt.param_groups if wopt is not None else []) for p in g["params"]}
        eta = self.xi if self.xi is not None else _lr(wopt)
        saved = [w.detach().clone() for w in weights]
        buffers = [b.detach().clone() for b in model.buffers()]  # the extra forwards must not move BN stats
        try:
            # virtual step w' = w - eta * (g + wd * w + momentum * buf), as the weight optimizer would take
            g_train = _grads_or_zero(self._loss(exp, train_batch), weights)
            with torch.no_grad():
                for w, g in zip(weights, g_train):
                    group = groups.get(id(w), {})
                    d = g + float(group.get("weight_decay", 0.0)) * w
                    buf = wopt.state.get(w, {}).get("momentum_buffer") if wopt is not None else None
                    if buf is not None:
                        d = d + float(group.get("momentum", 0.0)) * buf
                    w.sub_(eta * d)
            loss = self._loss(exp, valid_batch)
            got = _grads_or_zero(loss, self.params + weights)
            d_alpha, d_w = got[:len(self.params)], got[len(self.params):]
            # finite-difference Hessian-vector product around the real weights w
            norm = torch.sqrt(sum((v.detach() ** 2).sum() for v in d_w)) if d_w else torch.tensor(0.0)
            if float(norm) > 0:
                eps = self.r / float(norm)
                grads_pm = []
                for sign in (1.0, -1.0):
                    with torch.no_grad():
                        for w, s, v in zip(weights, saved, d_w):
                            w.copy_(s + sign * eps * v)
                    grads_pm.append(self._grads(self._loss(exp, train_batch)))
                d_alpha = [da - eta * (gp - gn) / (2 * eps) for da, gp, gn in zip(d_alpha, *grads_pm)]
        finally:
            with torch.no_grad():
                for w, s in zip(weights, saved):
                    w.copy_(s)
                for b, s in zip(model.buffers(), buffers):
                    b.copy_(s)
        return loss, d_alpha


def _lr(wopt: Any) -> float:
    if wopt is None:
        raise ConfigError("unrolled DARTS needs exp.trainer.optimizer (or the xi option)")
    return float(wopt.param_groups[0]["lr"])


def _grads_or_zero(loss: torch.Tensor, params: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    got = torch.autograd.grad(loss, list(params), allow_unused=True)
    return [torch.zeros_like(p) if g is None else g.detach() for p, g in zip(params, got)]


OPTIMIZERS.alias("DirectGrad", "DARTS", one_level=True,
                 doc="One-level first-order DARTS: alphas follow the training-batch gradient, as the weights do.")
OPTIMIZERS.alias("DirectGradBiLevel", "DARTS",
                 doc="Bi-level first-order DARTS: alphas follow the gradient on the held-out (valid) batch.")


@OPTIMIZERS.register("BinaryGate")
class BinaryGate(AlphaOptimizer):
    """ProxylessNAS gradient (Proxyless-G): Adam on alphas with the two-path binary-gate gradient on the valid
    batch; the BinaryGate mixed ops rescale their alphas after each step (use mixed_op BinaryGate)."""

    adam_defaults = PROXYLESS_ADAM
    default_mixed_op = "BinaryGate"


@OPTIMIZERS.register("GumbelAnnealing")
class GumbelAnnealing(AlphaOptimizer):
    """SNAS: alphas trained through GumbelSum weights; temperature = max(min_temperature,
    temperature * anneal_rate ** epoch), set on every GumbelSum op. One-level (train batch) by default."""

    default_mixed_op = "GumbelSum"

    def __init__(self, space: SearchSpace, seed: int | None = 0, temperature: float = 1.0,
                 min_temperature: float = 0.03, anneal_rate: float = 0.97, one_level: bool = True,
                 **kwargs: Any) -> None:
        super().__init__(space, seed, **kwargs)
        if not 0 < min_temperature <= temperature or not 0 < anneal_rate <= 1:
            raise ConfigError("GumbelAnnealing needs 0 < min_temperature <= temperature and 0 < anneal_rate <= 1")
        self.temperature0, self.min_temperature = float(temperature), float(min_temperature)
        self.anneal_rate, self.one_level = float(anneal_rate), bool(one_level)
        self.epoch, self.started = 0, False

    @property
    def temperature(self) -> float:
        """The temperature of the current epoch."""
        return max(self.min_temperature, self.temperature0 * self.anneal_rate ** self.epoch)

    def set_temperature(self, model: nn.Module) -> int:
        """Give the current temperature to every mixed op of ``model`` that samples with one; how many."""
        return set_temperature(model, self.temperature)

    def arch_gradient(self, exp: ArchStepContext, train_batch: Any, valid_batch: Any) -> ArchGradient:
        self.set_temperature(exp.model)
        loss = self._loss(exp, train_batch if self.one_level else valid_batch)
        return loss, self._grads(loss)

    def on_epoch_end(self, exp: ArchStepContext, epoch: int) -> None:
        self.epoch = epoch + 1
        self.set_temperature(exp.model)

    def on_start(self, exp: ArchStepContext) -> None:
        """The search begins: its weight steps run at this optimizer's temperature, not the ops' initial one."""
        self.started = True
        self.set_temperature(exp.model)

    def on_resume(self, exp: ArchStepContext) -> None:
        """The temperature lives on the ops, not in a checkpoint: set it again after a resume (not before the
        search has started: a warm-up stage before it runs at the ops' own temperature, as it did first)."""
        if self.started or self.epoch:
            self.set_temperature(exp.model)

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "epoch": self.epoch, "started": self.started}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        super().load_state_dict(state)
        self.epoch, self.started = int(state.get("epoch", 0)), bool(state.get("started", True))


@OPTIMIZERS.register("REINFORCE")
class REINFORCE(AlphaOptimizer):
    """ProxylessNAS-R: sample an arch from softmax(alpha) per categorical, reward it on the valid batch
    (``reward``: "acc" = ``exp.trainer.metric`` from ``exp.trainer.evaluate``, or "neg_loss"), policy gradient
    with a moving-average baseline. Works with Index (alphas are added to the space) or BinaryGate ops. The
    sampled arch stays applied and the SuperNet estimator's weight steps run only its path
    (``fixed_weight_steps``), so they train archs drawn from the policy."""

    adam_defaults = PROXYLESS_ADAM
    default_mixed_op = "Index"
    fixed_weight_steps = True  # the SuperNet estimator trains the weights under fixed_arch(exp.model)

    def __init__(self, space: SearchSpace, seed: int | None = 0, reward: str = "acc", baseline_decay: float = 0.99,
                 samples: int = 1, **kwargs: Any) -> None:
        if reward not in ("acc", "neg_loss"):
            raise ConfigError(f"REINFORCE reward must be 'acc' or 'neg_loss', got {reward!r}")
        if kwargs.get("cost") is not None:
            raise ConfigError("REINFORCE takes no cost option (its reward is a metric); use BinaryGate or DARTS")
        super().__init__(space, seed, **kwargs)
        self.reward, self.baseline_decay, self.samples = reward, float(baseline_decay), max(1, int(samples))
        self.baseline: float | None = None
        self.gen = torch.Generator().manual_seed(0 if seed is None else int(seed))
        self.policy = {t.categorical: n for n, t in self.space.tensors().items()
                       if t.categorical in self.space and isinstance(self.space[t.categorical], Categorical)}

    def _prepare_space(self) -> None:
        have = {t.categorical for t in self.space.tensors().values()}
        for name, p in list(self.space.discrete().items()):
            if isinstance(p, Categorical) and name not in have:
                self.space.add(TensorParam(f"{name}.alpha", (len(p.choices),), categorical=name))

    def _reward(self, exp: ArchStepContext, batch: Any) -> float:
        """The reward of the applied arch on ``batch``, computed by the trainer (so step_fn, eval_fn and
        Regression work), with batch statistics as in the weight steps."""
        if self.reward == "neg_loss":
            return -float(exp.trainer.loss(exp.model, batch))
        metric = getattr(exp.trainer, "metric", "acc")
        metrics = exp.trainer.evaluate(_BatchStats(exp.model), [batch])
        if metric not in metrics:
            raise ConfigError(f"REINFORCE reward 'acc' reads the trainer's metric {metric!r}, but its evaluation "
                              f"gave {sorted(metrics)}; use reward: neg_loss")
        return float(metrics[metric])

    def step_arch(self, exp: ArchStepContext, train_batch: Any, valid_batch: Any) -> dict[str, float]:
        grads = {n: torch.zeros_like(self.space[n].value) for n in self.policy.values()}
        rewards = []
        model = exp.model
        was = model.training
        model.train()
        try:
            for _ in range(self.samples):
                arch, picks = {}, {}
                for cat, tname in self.policy.items():
                    probs = torch.softmax(self.space[tname].value.detach().float().cpu(), -1)
                    k = int(torch.multinomial(probs, 1, generator=self.gen))
                    arch[cat], picks[tname] = self.space[cat].choices[k], (k, probs)
                self.space.apply(arch)
                with torch.no_grad(), fixed_arch(model):
                    r = self._reward(exp, valid_batch)
                rewards.append(r)
                adv = 0.0 if self.baseline is None else r - self.baseline
                for tname, (k, probs) in picks.items():
                    onehot = torch.zeros_like(probs)
                    onehot[k] = 1.0
                    # ascend adv * d log pi / d alpha  ==  descend -adv * (onehot - p)
                    grads[tname] -= (adv * (onehot - probs) / self.samples).to(grads[tname].device)
        finally:
            model.train(was)
        mean_r = sum(rewards) / len(rewards)
        self.baseline = mean_r if self.baseline is None else \
            self.baseline_decay * self.baseline + (1 - self.baseline_decay) * mean_r
        self._apply([grads.get(n, torch.zeros_like(p)) for n, p in zip(self.names, self.params)])
        return {"reward": mean_r, "baseline": float(self.baseline)}

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "baseline": self.baseline, "gen": self.gen.get_state()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        super().load_state_dict(state)
        self.baseline = state.get("baseline")
        if "gen" in state:
            self.gen.set_state(torch.as_tensor(state["gen"], dtype=torch.uint8))


class _BatchStats(nn.Module):
    """``model`` as the trainer's evaluate sees it: its eval() does not reach the model, which keeps its mode
    (train: BatchNorm uses batch statistics, as the weight steps and ProxylessNAS's reward do)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def train(self, mode: bool = True) -> _BatchStats:
        return self

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return self.model(*args, **kwargs)


__all__ = ["DARTS", "AlphaOptimizer", "BinaryGate", "GumbelAnnealing", "REINFORCE"]
