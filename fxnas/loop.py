"""The discrete search loop (propose → evaluate → step) and its optional dask map."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .errors import ConfigError, DivergedError
from .optim.base import Optimizer, Result, arch_key


@dataclass
class Guarded:
    """An evaluate function whose failures become failed Results instead of ending the search.

    A training that diverges (DivergedError, FloatingPointError) or a non-finite metric makes the arch a
    failed result (``Result.failure``) with the reason; other errors are bugs or bad config and propagate.
    Plain data around a picklable function, so dask can ship it to workers.
    """

    fn: Callable[[dict], Mapping[str, float] | Result]

    def __call__(self, arch: dict) -> Result:
        try:
            out = self.fn(arch)
        except (DivergedError, FloatingPointError) as exc:
            return Result.failure(arch, f"{type(exc).__name__}: {exc}")
        r = out if isinstance(out, Result) else Result(dict(arch), {m: float(v) for m, v in out.items()})
        bad = [k for k, v in r.metrics.items() if not math.isfinite(v)]
        if bad and not r.failed:
            return Result.failure(arch, f"metric {bad[0]} is {r.metrics[bad[0]]}", r.info)
        return r


def _unpicklable(fn: Any, exc: BaseException) -> str:
    """The ConfigError message for an evaluate function dask cannot serialise."""
    first = str(exc).splitlines()[0] if str(exc) else ""
    return (f"parallel.backend dask: the evaluate function {getattr(fn, '__qualname__', type(fn).__name__)!r} "
            f"cannot be pickled for the dask workers ({type(exc).__name__}: {first}); evaluate functions must "
            f"be top-level callables holding plain data; use backend: local")


def discrete_loop(optimizer: Optimizer, evaluate_many: Callable[[list[dict]], list[Any]], budget: int,
                  batch_size: int, cache: dict[tuple, Result], counts: dict[str, int],
                  on_result: Callable[[Result], Result] = lambda r: r,
                  on_batch: Callable[[], Any] = lambda: None) -> None:
    """The one propose → evaluate → step loop (Experiment.evaluate_loop; Table.search without its files).

    Stops after ``budget`` distinct archs, when the optimizer proposes none, or after ``10 * budget + 100``
    proposals. Archs in ``cache`` (arch_key → Result) are not evaluated again; ``counts`` ({evaluated,
    proposed}) is updated in place so a checkpoint taken in ``on_batch`` can resume the loop.
    """
    max_proposals = 10 * budget + 100  # an optimizer that only repeats itself must still stop
    while counts["evaluated"] < budget and counts["proposed"] < max_proposals:
        archs = optimizer.next(min(batch_size, budget - counts["evaluated"]))
        if not archs:
            break  # the space is exhausted
        counts["proposed"] += len(archs)
        new: dict[tuple, dict] = {}
        for a in archs:
            k = arch_key(a)
            if k not in cache and k not in new:
                new[k] = dict(a)
        for (k, a), out in zip(new.items(), evaluate_many(list(new.values()))):
            r = out if isinstance(out, Result) else Result(dict(a), {m: float(v) for m, v in out.items()})
            cache[k] = on_result(r)
            counts["evaluated"] += 1
        optimizer.step([cache[arch_key(a)] for a in archs])
        on_batch()


def dask_client(parallel: dict[str, Any]) -> Any:
    """A dask Client for ``parallel`` (its ``address``, else a LocalCluster of ``workers``)."""
    try:
        from dask.distributed import Client
    except ImportError:
        raise ConfigError("parallel.backend 'dask' needs dask: pip install 'dask[distributed]'") from None
    addr = parallel.get("address")
    return Client(addr) if addr else Client(n_workers=int(parallel.get("workers", 1)), threads_per_worker=1,
                                            processes=bool(parallel.get("processes", True)))


def dask_map(client: Any, fn: Callable[[dict], Any], archs: list[dict]) -> list[Any]:
    """fn over archs on ``client``; an evaluate function dask cannot pickle is a ConfigError, not a traceback."""
    try:  # dask pickles every task, threads or processes alike
        from distributed.protocol.pickle import dumps  # pickle, falling back to cloudpickle, as dask does
    except ImportError:  # a stand-in client without distributed
        from pickle import dumps
    try:
        dumps(fn)
    except Exception as exc:
        raise ConfigError(_unpicklable(fn, exc)) from exc
    return client.gather(client.map(fn, archs, pure=False))
