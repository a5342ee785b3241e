"""Training criteria: a task loss followed by extra terms, applied in order as a CriterionChain.

Each criterion is called as ``crit(loss, output, target, inputs, model) -> Tensor``: ``loss`` is what the
previous criteria produced (None for the first). Task losses (CrossEntropy, LabelSmoothing, MSE) add their
value to it; extra terms (Auxiliary, Distillation) add a weighted term. A criterion may also mix the training
batch before the forward (``Criterion.mix_batch``, MixUp): the chain then gives every criterion the mixed
inputs and soft targets (class probabilities, or mixed values for regression), which the task losses accept.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from ..options import FilePath
from ..registry import Registry

CRITERIA = Registry("criterion")


def main_output(output: Any) -> torch.Tensor:
    """The main prediction of a model output: the first item of a (logits, aux_logits) tuple, else itself."""
    if isinstance(output, (tuple, list)):
        return output[0]
    return output


def _add(loss: torch.Tensor | None, term: torch.Tensor) -> torch.Tensor:
    return term if loss is None else loss + term


def soft_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """T^2 x KL(softmax(teacher / T) || softmax(student / T)), averaged over the batch (Hinton et al.); the
    teacher's logits carry no gradient."""
    T = float(temperature)
    return F.kl_div(F.log_softmax(student_logits / T, -1), F.log_softmax(teacher_logits.detach() / T, -1),
                    reduction="batchmean", log_target=True) * (T * T)


TargetFn = Callable[[Any], torch.Tensor]  # model output -> the targets the criteria see


class Criterion:
    """One loss term; ``task`` criteria define the loss an evaluation reports.

    ``mix_batch(inputs, target)`` may return ``(mixed inputs, fn)``: the chain's training loss then runs the
    model on the mixed inputs and gives every criterion ``fn(output)`` as the targets (MixUp); the default
    (None) leaves the batch alone. Evaluation never mixes. ``adds_term`` is False for a criterion that only
    mixes (a chain needs at least one that adds a loss term).
    """

    task = False
    adds_term = True

    def __call__(self, loss: torch.Tensor | None, output: Any, target: torch.Tensor, inputs: Any = None,
                 model: nn.Module | None = None) -> torch.Tensor:
        """``loss`` plus this criterion's term."""
        raise NotImplementedError

    def mix_batch(self, inputs: Any, target: torch.Tensor) -> tuple[Any, TargetFn] | None:
        """(mixed inputs, output -> targets) for a training batch, or None to leave it alone (the default)."""
        return None

    def __repr__(self) -> str:
        opts = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not isinstance(v, nn.Module))
        return f"{type(self).__name__}({opts})"


@CRITERIA.register("CrossEntropy")
class CrossEntropy(Criterion):
    """Cross-entropy on the main logits (class-index targets)."""

    task = True

    def __call__(self, loss, output, target, inputs=None, model=None):  # noqa: D102
        return _add(loss, F.cross_entropy(main_output(output), target))


@CRITERIA.register("LabelSmoothing")
class LabelSmoothing(Criterion):
    """Cross-entropy against targets smoothed by ``eps`` (mass spread evenly over all classes)."""

    task = True

    def __init__(self, eps: float = 0.1) -> None:
        if not 0.0 <= eps < 1.0:
            raise ConfigError(f"LabelSmoothing eps must be in [0, 1), got {eps}")
        self.eps = float(eps)

    def __call__(self, loss, output, target, inputs=None, model=None):  # noqa: D102
        logits = main_output(output)
        logp = F.log_softmax(logits, dim=-1)
        if target.dim() == logits.dim():  # soft targets (class probabilities, e.g. from MixUp): smooth them
            nll = -(target.to(logp.dtype) * logp).sum(-1)
        else:
            nll = -logp.gather(-1, target.unsqueeze(-1)).squeeze(-1)
        smooth = -logp.mean(dim=-1)
        return _add(loss, ((1.0 - self.eps) * nll + self.eps * smooth).mean())


@CRITERIA.register("MSE")
class MSE(Criterion):
    """Mean squared error (regression); (N, 1) outputs meet (N,) targets."""

    task = True

    def __call__(self, loss, output, target, inputs=None, model=None):  # noqa: D102
        pred = main_output(output)
        target = target.to(pred.dtype)
        if pred.dim() == target.dim() + 1 and pred.shape[-1] == 1:
            pred = pred.squeeze(-1)
        if pred.shape != target.shape:
            raise ConfigError(f"MSE: prediction shape {tuple(pred.shape)} does not match target "
                              f"shape {tuple(target.shape)}")
        return _add(loss, F.mse_loss(pred, target))


@CRITERIA.register("Auxiliary")
class Auxiliary(Criterion):
    """``weight`` x cross-entropy of the auxiliary head, for models returning (logits, aux_logits)."""

    def __init__(self, weight: float = 0.4) -> None:
        self.weight = float(weight)

    def __call__(self, loss, output, target, inputs=None, model=None):  # noqa: D102
        if not isinstance(output, (tuple, list)) or len(output) < 2:
            return _add(loss, torch.zeros((), device=target.device)) if loss is None else loss  # eval: no aux head
        return _add(loss, self.weight * F.cross_entropy(output[1], target))


def load_module(ref: str | nn.Module, weights: str | None = None) -> nn.Module:
    """A teacher model without unpickling code: a module; a TorchScript file (``.ts``/``.pt``); a
    ``torch.export`` program (``.pt2``); or a ``file.py:fn`` builder whose ``weights`` (a state dict) are loaded
    with ``torch.load(weights_only=True)``."""
    if isinstance(ref, nn.Module):
        model = ref
    elif isinstance(ref, str) and ref.endswith(".pt2"):
        if not os.path.exists(ref):
            raise ConfigError(f"teacher program {ref!r} does not exist")
        try:
            model = torch.export.load(ref).module()
        except Exception as exc:
            raise ConfigError(f"teacher {ref!r} is not a torch.export program ({type(exc).__name__}: {exc})") from None
    elif isinstance(ref, str) and ref.endswith((".pt", ".pth", ".ts")):
        if not os.path.exists(ref):
            raise ConfigError(f"teacher file {ref!r} does not exist")
        try:
            model = torch.jit.load(ref, map_location="cpu")
        except (RuntimeError, ValueError):
            raise ConfigError(f"teacher {ref!r} is not a TorchScript file; a pickled module is not loaded (it could "
                              f"run code): save the teacher with torch.jit.save / torch.export.save, or give "
                              f"'file.py:fn' building it plus weights: its state dict") from None
    elif isinstance(ref, str) and ":" in ref:
        from ..userobj import load_object

        obj = load_object(ref)
        model = obj() if not isinstance(obj, nn.Module) else obj
        if not isinstance(model, nn.Module):
            raise ConfigError(f"{ref} built a {type(model).__name__}, not an nn.Module")
    else:
        raise ConfigError(f"teacher must be an nn.Module, a TorchScript .pt/.ts file, a torch.export .pt2 file or "
                          f"'file.py:fn'; got {ref!r}")
    if weights is not None:
        from ..modelfile import load_weights

        load_weights(model, weights)
    return model


@CRITERIA.register("Distillation")
class Distillation(Criterion):
    """Knowledge distillation: adds ``weight`` x T^2 x KL(teacher/T || student/T) (Hinton et al.).

    With ``ratio`` r the loss becomes ``(1 - r) x loss + r x T^2 x KL`` instead (ModularNAS's
    KnowledgeDistillLoss with ``kd_ratio`` r; its soft-target cross-entropy is this KL at T = 1 plus the
    teacher's entropy, a constant).
    """

    def __init__(self, teacher: FilePath | nn.Module, temperature: float = 4.0, weight: float = 1.0,
                 weights: FilePath | None = None, ratio: float | None = None) -> None:
        if temperature <= 0:
            raise ConfigError(f"Distillation temperature must be > 0, got {temperature}")
        if ratio is not None and not 0.0 <= ratio <= 1.0:
            raise ConfigError(f"Distillation ratio must be in [0, 1] (the teacher's share of the loss), got {ratio}")
        self.ratio = None if ratio is None else float(ratio)
        self.teacher = load_module(teacher, weights)
        try:
            self.teacher.eval()
        except NotImplementedError:  # a torch.export program runs as exported; it has no train/eval switch
            pass
        for p in self.teacher.parameters():
            p.requires_grad_(False)
        self.temperature, self.weight = float(temperature), float(weight)

    def __call__(self, loss, output, target, inputs=None, model=None):  # noqa: D102
        if inputs is None:
            raise ConfigError("Distillation needs the batch inputs to run its teacher")
        logits = main_output(output)
        dev = logits.device
        if next(iter(self.teacher.parameters()), torch.empty(0)).device != dev:
            self.teacher.to(dev)
        with torch.no_grad():
            t_logits = main_output(self.teacher(inputs))
        kd = soft_kl(logits, t_logits, self.temperature)
        if self.ratio is not None:
            return self.ratio * kd if loss is None else (1.0 - self.ratio) * loss + self.ratio * kd
        return _add(loss, self.weight * kd)

    def __deepcopy__(self, memo: dict) -> Distillation:
        # the teacher is frozen and shared: copying a trainer config must not copy the teacher's weights
        new = copy.copy(self)
        memo[id(self)] = new
        return new


CriterionSpec = Any  # a Criterion, a name, {"type": name, "options": {...}}, or a list of those


class CriterionChain:
    """Criteria applied in order (task loss first, then extra terms) to give the training loss."""

    def __init__(self, criteria: Sequence[Criterion]) -> None:
        if not criteria:
            raise ConfigError("a criterion chain needs at least one criterion (e.g. CrossEntropy)")
        if not any(c.adds_term for c in criteria):
            raise ConfigError(f"criteria {[type(c).__name__ for c in criteria]} add no loss term; add a task loss "
                              f"(e.g. CrossEntropy) to the chain")
        self.criteria = list(criteria)

    def training_loss(self, model: nn.Module, inputs: Any, target: torch.Tensor) -> torch.Tensor:
        """The training loss of one batch: the model's forward and the chain, on the batch as the criteria
        mix it (``Criterion.mix_batch``; at most the first criterion that mixes does)."""
        for c in self.criteria:
            mixed = c.mix_batch(inputs, target)
            if mixed is not None:
                inputs, targets_for = mixed
                output = model(inputs)
                return self(output, targets_for(output), inputs, model)
        return self(model(inputs), target, inputs, model)

    def __call__(self, output: Any, target: torch.Tensor, inputs: Any = None,
                 model: nn.Module | None = None) -> torch.Tensor:
        """The total loss of ``output`` on ``target``."""
        loss = None
        for c in self.criteria:
            loss = c(loss, output, target, inputs, model)
        assert loss is not None
        return loss

    def task_loss(self, output: Any, target: torch.Tensor) -> torch.Tensor:
        """The loss of the task criteria only (what evaluation reports)."""
        loss = None
        for c in self.criteria:
            if c.task:
                loss = c(loss, output, target)
        if loss is None:
            loss = self.criteria[0](None, output, target)
        return loss

    def __repr__(self) -> str:
        return f"CriterionChain({self.criteria})"


def build_criterion(spec: CriterionSpec, where: str = "criteria") -> Criterion:
    """One criterion from a Criterion or a CRITERIA spec (a name, ``{type, options}`` or ``{type, **options}``)."""
    if isinstance(spec, Criterion):
        return spec
    return CRITERIA.build(spec, where=where)


def build_criteria(spec: CriterionSpec = None, default: str = "CrossEntropy") -> CriterionChain:
    """A CriterionChain from None (the ``default`` task loss), one spec, a list of specs, or a chain."""
    if isinstance(spec, CriterionChain):
        return spec
    if spec is None:
        return CriterionChain([build_criterion(default)])
    if isinstance(spec, (list, tuple)):
        return CriterionChain([build_criterion(s, f"criteria.{i}") for i, s in enumerate(spec)])
    return CriterionChain([build_criterion(spec)])
