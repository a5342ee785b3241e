"""Reproducibility helpers: global RNG state capture/restore, seeding, the torch thread count, and JSON-safe
values for checkpoints."""

from __future__ import annotations

import contextlib
import math
import random
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import torch

from .errors import ConfigError


def seed_everything(seed: int) -> None:
    """Seed python's, numpy's and torch's global generators."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def set_threads(threads: int) -> None:
    """Run torch's CPU ops on ``threads`` intra-op threads.

    A CPU reduction (a mean, a matmul's or a depthwise conv's weight gradient over the batch) splits its sum
    over the threads, so its last bits depend on their number; a search amplifies those bits into other
    sampled paths and another arch. A fixed count makes a run's result independent of the machine's default
    (its core count, OMP_NUM_THREADS).
    """
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ConfigError(f"threads must be a positive integer (torch's CPU threads), got {threads!r}")
    torch.set_num_threads(threads)


def rng_state() -> dict[str, Any]:
    """The global RNG states (python, numpy, torch CPU and, whenever CUDA is available, every CUDA device).

    Tensors, tuples and numbers only, so a checkpoint holding them loads with ``torch.load(weights_only=True)``.
    """
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    numpy_state = (kind, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(cached))
    state = {"python": random.getstate(), "numpy": numpy_state, "torch": torch.get_rng_state()}
    # not only once initialised: CUDA seeds queued by torch.manual_seed before init would otherwise escape
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: Mapping[str, Any]) -> None:
    """Restore what rng_state() returned."""
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    keys = keys.numpy() if isinstance(keys, torch.Tensor) else np.asarray(keys)
    np.random.set_state((kind, keys.astype(np.uint32), int(pos), int(has_gauss), float(cached)))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


@contextlib.contextmanager
def preserved_rng() -> Iterator[None]:
    """Run a block without moving the global RNGs: python, numpy, torch CPU and CUDA (unlike
    ``torch.random.fork_rng(devices=[])``, which forks the CPU generator only)."""
    state = rng_state()
    try:
        yield
    finally:
        set_rng_state(state)


def jsonable(x: Any) -> Any:
    """``x`` as plain JSON/YAML data (tensors and numpy values become lists and numbers)."""
    if isinstance(x, Mapping):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [jsonable(v) for v in x]
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().tolist()
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, float) and not math.isfinite(x):
        return str(x)
    if x is None or isinstance(x, (str, int, float, bool)):
        return x
    return str(x)
