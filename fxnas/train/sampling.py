"""Deterministic data order: an epoch-seeded sampler and the helpers that set, skip and replay epochs.

Every train loader uses an :class:`EpochSampler` whose permutation is drawn from
``torch.Generator().manual_seed(seed + epoch)``. Call ``bundle.set_epoch(epoch)`` (or
``set_epoch(loader, epoch)``) before iterating an epoch, so that a run resumed at epoch ``e`` replays exactly
the order an uninterrupted run saw; ``set_epoch(epoch, skip_batches=k)`` also skips the first ``k`` batches of
the next pass only (resuming in the middle of an epoch); later passes are full epochs again.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sized
from typing import Any

import torch
from torch.utils.data import DataLoader, Sampler

from ..errors import ConfigError
from ..rng import preserved_rng


class EpochSampler(Sampler[int]):
    """Indices of a dataset, shuffled by a generator seeded with ``seed + epoch`` (or in order).

    ``shard(rank, replicas)`` makes it yield one replica's share, as DistributedSampler does: the epoch's
    permutation (the same on every replica, it depends on the seed and epoch only) cut to a multiple of
    ``replicas`` and strided from ``rank``, so every replica gets ``n // replicas`` samples and runs the same
    number of steps (a data-parallel step waits for all of them).
    """

    def __init__(self, data: Sized | int, seed: int = 0, shuffle: bool = True) -> None:
        self.n = data if isinstance(data, int) else len(data)
        self.seed, self.shuffle = seed, shuffle
        self.epoch, self.skip = 0, 0
        self.rank, self.replicas = 0, 1

    def shard(self, rank: int, replicas: int) -> None:
        """Yield only replica ``rank``'s share of each epoch (of ``replicas``)."""
        if not 0 <= rank < replicas or replicas > max(1, self.n):
            raise ConfigError(f"EpochSampler.shard: need 0 <= rank < replicas <= {self.n} samples, got rank={rank}, "
                             f"replicas={replicas}")
        self.rank, self.replicas = int(rank), int(replicas)

    @property
    def size(self) -> int:
        """Samples of one full pass of this replica."""
        return self.n // self.replicas if self.replicas > 1 else self.n

    def set_epoch(self, epoch: int, skip: int = 0) -> None:
        """Use the order of ``epoch``; the next pass only leaves out its first ``skip`` samples (mid-epoch resume)."""
        self.epoch, self.skip = int(epoch), int(skip)

    def order(self) -> list[int]:
        """The index order of the current epoch (this replica's share of it when sharded)."""
        if not self.shuffle:
            full = list(range(self.n))
        else:
            g = torch.Generator().manual_seed(self.seed + self.epoch)
            full = torch.randperm(self.n, generator=g).tolist()
        if self.replicas == 1:
            return full
        return full[:self.size * self.replicas][self.rank::self.replicas]

    def __iter__(self) -> Iterator[int]:
        # a skip belongs to the resumed pass alone: left set, it would shorten every later epoch
        skip, self.skip = self.skip, 0
        return iter(self.order()[skip:])

    def __len__(self) -> int:
        """Samples the next pass yields (a pending skip left out); epoch_batches gives the full epoch."""
        return max(0, self.size - self.skip)


def epoch_batches(loader: DataLoader) -> int:
    """Batches in one full epoch of ``loader``: a pending mid-epoch skip (set_epoch) is not subtracted."""
    sampler, bs = loader.sampler, loader.batch_size
    if isinstance(sampler, EpochSampler) and bs:
        return sampler.size // bs if loader.drop_last else math.ceil(sampler.size / bs)
    return len(loader)


def set_epoch(loader: DataLoader, epoch: int, skip_batches: int = 0) -> None:
    """Set the epoch (and batches to skip) of ``loader``'s sampler when it has ``set_epoch``."""
    sampler = loader.sampler
    if hasattr(sampler, "set_epoch"):
        bs = loader.batch_size or 1
        try:
            sampler.set_epoch(epoch, skip=skip_batches * bs)
        except TypeError:  # samplers such as DistributedSampler take only the epoch
            sampler.set_epoch(epoch)


def fixed_batches(loader: DataLoader, n: int, epoch: int = 0) -> list[Any]:
    """The first ``n`` batches of ``loader``'s order for ``epoch``, without moving the global RNGs."""
    set_epoch(loader, epoch)
    out = []
    with preserved_rng():  # creating the iterator draws a seed from the global RNG
        for i, b in enumerate(loader):
            if i >= n:
                break
            out.append(b)
    return out
