"""Data-parallel supernet training under ``torchrun``: the process group, the gradient reductions, the data shards.

``fxnas search`` started by ``torchrun --nproc_per_node=N`` finds ``WORLD_SIZE``/``RANK``/``LOCAL_RANK`` in
its environment and joins the process group (gloo on CPU, NCCL on CUDA; the config's ``distributed:
{backend: ...}`` overrides). What each rank does, and why:

* **weights**: after the backward of every weight step the gradients of all weights, together with the float
  buffers (BatchNorm running statistics), go through one all-reduce and are averaged, as
  DistributedDataParallel does. fxnas does not wrap the supernet in torch's DDP: the arch steps call the same
  module for losses whose gradients go to the alphas only (``autograd.grad``), a weight step may backpropagate
  several losses (sandwich rule), and single-path mixed ops leave most weights unused in a step, which DDP
  only tolerates with ``find_unused_parameters=True`` (a graph walk every step). A parameter that got no
  gradient on any rank keeps ``grad=None``, so SGD's momentum and weight decay skip it exactly as in one process.
  The step is skipped on every rank when any rank's loss or gradient is not finite (one flag in the same
  all-reduce), so no rank waits for a collective another one left out.
* **alphas**: their gradients are all-reduced and averaged before the arch optimizer's (Adam's) step on every
  rank. Every rank then applies the same update to the same values and the same Adam state, so the alphas stay
  bitwise identical without a broadcast; the gradient is the mean over all ranks' held-out batches (a larger
  arch batch), where "rank 0 steps and broadcasts" would waste the other ranks' valid shards.
* **sampling**: single-path mixed ops (Index, BinaryGate, GumbelSum) and SPOS paths draw from the seeded global
  RNG or from generators seeded by (seed, epoch, step); every rank is seeded alike and draws the same numbers
  in the same order (its shards have the same batch shapes), so every rank samples the same path.
* **data**: the train loader and the held-out batches of arch steps are sharded (a rank takes every
  ``world_size``-th sample of the epoch's shared permutation, all ranks the same count); evaluations read the
  whole split, and the results recorded are rank 0's (broadcast), so every rank keeps the same history and
  ends with the same best arch.
* **outputs**: only rank 0 writes the run folder; on ``--resume`` every rank loads its checkpoint.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader

from .errors import ConfigError

if TYPE_CHECKING:
    from .optim.base import Optimizer
    from .train.datasets import DataBundle
    from .train.trainer import Trainer

BACKENDS = ("gloo", "nccl")


@dataclass(frozen=True)
class Distributed:
    """This process's place in a data-parallel run: ``rank`` of ``world_size`` (1: not distributed)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None

    @property
    def enabled(self) -> bool:
        """True with more than one process."""
        return self.world_size > 1

    @property
    def writer(self) -> bool:
        """True on the one process that writes the run folder (rank 0)."""
        return self.rank == 0

    # --- collectives ---------------------------------------------------------------------------------
    def average(self, tensors: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """The mean over ranks of each tensor (one all-reduce of them flattened); the tensors as they are
        with one process."""
        if not self.enabled or not tensors:
            return list(tensors)
        flat = torch.cat([t.detach().reshape(-1).float() for t in tensors])
        dist.all_reduce(flat)
        flat /= self.world_size
        out, i = [], 0
        for t in tensors:
            out.append(flat[i:i + t.numel()].view_as(t).to(t.dtype))
            i += t.numel()
        return out

    def sync_step(self, params: Sequence[nn.Parameter], buffers: Sequence[torch.Tensor], finite: bool) -> bool:
        """Average the weights' gradients and the float ``buffers`` over ranks, in place, in one all-reduce;
        True when every rank's step was finite. A parameter no rank computed a gradient for keeps None."""
        if not self.enabled:
            return finite
        dev = params[0].device if params else torch.device("cpu")
        parts = [p.grad.detach().reshape(-1).float() if finite and p.grad is not None
                 else torch.zeros(p.numel(), device=dev) for p in params]
        parts += [b.detach().reshape(-1).float() for b in buffers]
        has = [1.0 if finite and p.grad is not None else 0.0 for p in params]
        parts.append(torch.tensor(has + [1.0 if finite else 0.0], device=dev))
        flat = torch.cat(parts)
        dist.all_reduce(flat)
        flags = flat[-(len(params) + 1):]
        all_finite = bool(flags[-1] == self.world_size)
        i = 0
        with torch.no_grad():
            for k, p in enumerate(params):
                g = flat[i:i + p.numel()]
                i += p.numel()
                if not all_finite or flags[k] == 0:
                    p.grad = None
                else:
                    p.grad = (g / self.world_size).view_as(p).to(p.dtype)
            for b in buffers:
                b.copy_((flat[i:i + b.numel()] / self.world_size).view_as(b))
                i += b.numel()
        return all_finite

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's ``obj`` (picklable), on every rank."""
        if not self.enabled:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def barrier(self) -> None:
        """Wait for every rank."""
        if self.enabled:
            dist.barrier()

    # --- data ----------------------------------------------------------------------------------------
    def shard(self, loader: DataLoader, shuffle: bool | None = None) -> DataLoader:
        """``loader`` yielding this rank's share (an EpochSampler over the same dataset, sharded); ``loader``
        itself with one process. ``shuffle`` defaults to keeping its EpochSampler's, else in order."""
        from .train.sampling import EpochSampler

        if not self.enabled:
            return loader
        old = loader.sampler
        if isinstance(old, EpochSampler):
            sampler = EpochSampler(old.n, old.seed, old.shuffle if shuffle is None else shuffle)
        else:
            sampler = EpochSampler(len(loader.dataset), 0, bool(shuffle))  # type: ignore[arg-type]
        sampler.shard(self.rank, self.world_size)
        return DataLoader(loader.dataset, batch_size=loader.batch_size, sampler=sampler, drop_last=loader.drop_last,
                          num_workers=loader.num_workers, collate_fn=loader.collate_fn)

    def attach(self, data: DataBundle | None, trainer: Trainer | None, optimizer: Optimizer | None) -> None:
        """Make an experiment's components data-parallel: shard the train data and the arch steps' held-out
        batches, average the weights' and (gradient optimizers) the alphas' gradients over the ranks."""
        from .optim.base import GradientOptimizer

        if data is not None:
            data.arch_valid = self.shard(data.arch_split(), shuffle=False)
            data.train = self.shard(data.train)
        if trainer is not None:
            trainer.distributed = self
        if isinstance(optimizer, GradientOptimizer):
            optimizer.distributed = self

    def device(self, device: str) -> str:
        """``device`` for this rank: ``cuda`` becomes ``cuda:<local rank>`` (one GPU per process)."""
        if self.enabled and device == "cuda":
            torch.cuda.set_device(self.local_rank)
            return f"cuda:{self.local_rank}"
        return device


def float_buffers(model: nn.Module) -> list[torch.Tensor]:
    """The floating-point buffers of ``model`` (BatchNorm running statistics), averaged with the gradients."""
    return [b for b in model.buffers() if b.is_floating_point()]


def from_env(settings: Mapping[str, Any] | None = None, device: str = "cpu",
             env: Mapping[str, str] | None = None) -> Distributed:
    """This process's Distributed, from torchrun's environment (``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK``);
    joins the default process group (once) when ``WORLD_SIZE`` > 1. ``settings``: the config's
    ``distributed`` section (``backend``: gloo or nccl; default nccl on CUDA devices, gloo otherwise)."""
    env = os.environ if env is None else env
    settings = dict(settings or {})
    unknown = set(settings) - {"backend"}
    if unknown:
        raise ConfigError(f"distributed: unknown keys {sorted(unknown)}; valid: backend")
    world = int(env.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Distributed()
    backend = settings.get("backend") or ("nccl" if str(device).startswith("cuda") else "gloo")
    if backend not in BACKENDS:
        raise ConfigError(f"distributed.backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if backend == "nccl" and not str(device).startswith("cuda"):
        raise ConfigError(f"distributed.backend nccl needs a CUDA device (device: cuda), got device {device!r}; "
                          f"use gloo on CPU")
    rank, local = int(env["RANK"]), int(env.get("LOCAL_RANK", env["RANK"]))
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
    return Distributed(rank=rank, world_size=world, local_rank=local, backend=backend)


__all__ = ["Distributed", "float_buffers", "from_env"]
