"""Where evaluations, tuning trials and pipeline steps run: the one function that chooses an executor.

Callers submit picklable callables to a ``concurrent.futures.Executor`` (``submit`` and the futures it
returns; ``wait``/``as_completed`` collect results as they finish). ``make_executor`` is the only place that
picks one, from the ``parallel:`` section of a search, tune or pipeline config::

    parallel: {backend: local}                  # in this process, one call at a time (the default)
    parallel: {backend: thread, workers: 4}     # threads of this process (the callables share its memory)
    parallel: {backend: process, workers: 4}    # fresh worker processes (spawned: safe with torch threads)
    parallel: {backend: dask, workers: 4}       # a dask LocalCluster of 4 worker processes on 127.0.0.1
    parallel: {backend: dask, address: tcp://host:8786}   # the workers of a running dask scheduler

``retries`` (default 2) is how many times the discrete search loop re-submits an evaluation that raised or
whose worker died, before recording it as failed (fxnas.async_loop).

Example::

    >>> from fxnas.pool import make_executor
    >>> with make_executor({"backend": "local"}) as ex:
    ...     ex.submit(pow, 2, 10).result()
    1024
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Mapping
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from typing import Any, Literal

from .errors import ConfigError

Backend = Literal["local", "thread", "process", "dask"]
BACKENDS = ("local", "thread", "process", "dask")
PARALLEL_KEYS: dict[str, Any] = {"backend": Backend, "workers": int, "address": str | None, "processes": bool,
                                 "retries": int}
PARALLEL_DEFAULTS: dict[str, Any] = {"backend": "local", "workers": 1, "address": None, "processes": True,
                                     "retries": 2}


class InlineExecutor(Executor):
    """Runs each submitted call at once, in the calling thread; its future is done when ``submit`` returns."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        """Call ``fn(*args, **kwargs)`` now; its result (or exception) is in the returned future."""
        fut: Future = Future()
        try:
            fut.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # the caller sees it through fut.result(), as with any executor
            fut.set_exception(exc)
        return fut


class DaskExecutor(Executor):
    """A dask ``Client`` as a concurrent.futures Executor; it closes the client (and the cluster it made).

    Without ``address`` it starts a LocalCluster of ``workers`` single-threaded workers bound to 127.0.0.1,
    with the scheduler's own re-running of tasks lost with a dead worker turned off (allowed-failures 0):
    a worker death then reaches the caller as a ``KilledWorker`` error, so the search loop's ``retries`` is
    the one retry policy and every retry is counted. A remote scheduler keeps its own setting, applied
    before the loop's retries.
    """

    def __init__(self, workers: int = 1, address: str | None = None, processes: bool = True) -> None:
        try:
            import dask
            from dask.distributed import Client, LocalCluster
        except ImportError:
            raise ConfigError("parallel.backend 'dask' needs dask: pip install 'dask[distributed]'") from None
        self.cluster: Any = None
        if address:
            self.client = Client(address)
        else:
            with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
                # worker processes listen on loopback only; threads (processes=False) talk in-process (inproc://)
                where = {"host": "127.0.0.1"} if processes else {}
                self.cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=processes,
                                            dashboard_address=None, **where)
            self.client = Client(self.cluster)
        self._executor = self.client.get_executor(pure=False)

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        """Run ``fn(*args, **kwargs)`` on a dask worker; a concurrent.futures Future of its result."""
        return self._executor.submit(fn, *args, **kwargs)

    def worker_pids(self) -> dict[str, int]:
        """The process id of each worker (by address), e.g. to watch or stop one."""
        import os

        return dict(self.client.run(os.getpid))

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Close the client, and the LocalCluster when this executor started it."""
        self._executor.shutdown(wait=wait)
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()


def parallel_settings(parallel: Mapping[str, Any] | None) -> dict[str, Any]:
    """``parallel`` with defaults filled in and checked: backend in BACKENDS, workers >= 1 (1 for local)."""
    cfg = {**PARALLEL_DEFAULTS, **dict(parallel or {})}
    unknown = sorted(set(cfg) - set(PARALLEL_KEYS))
    if unknown:
        raise ConfigError(f"parallel has no key {unknown[0]!r}; valid keys: {', '.join(PARALLEL_KEYS)}")
    if cfg["backend"] not in BACKENDS:
        raise ConfigError(f"parallel.backend must be one of {', '.join(BACKENDS)}, got {cfg['backend']!r}")
    for key, low in (("workers", 1), ("retries", 0)):
        v = cfg[key]
        if not isinstance(v, int) or isinstance(v, bool) or v < low:
            raise ConfigError(f"parallel.{key} must be an integer >= {low}, got {v!r}")
    if cfg["address"] is not None and cfg["backend"] != "dask":
        raise ConfigError(f"parallel.address is the address of a dask scheduler; it needs backend: dask, "
                          f"got backend {cfg['backend']!r}")
    if cfg["backend"] == "local":
        cfg["workers"] = 1
    return cfg


def make_executor(parallel: Mapping[str, Any] | None = None) -> Executor:
    """The executor ``parallel`` names (see the module docstring); use it as a context manager."""
    cfg = parallel_settings(parallel)
    if cfg["backend"] == "thread":
        return ThreadPoolExecutor(max_workers=cfg["workers"], thread_name_prefix="fxnas")
    if cfg["backend"] == "process":
        # spawn, not fork: a forked child of a process that ran torch can deadlock on its thread pools
        return ProcessPoolExecutor(max_workers=cfg["workers"], mp_context=multiprocessing.get_context("spawn"))
    if cfg["backend"] == "dask":
        return DaskExecutor(cfg["workers"], cfg["address"], bool(cfg["processes"]))
    return InlineExecutor()


def check_picklable(fn: Any, backend: str) -> None:
    """ConfigError when ``fn`` cannot be pickled for the workers of ``backend`` (process or dask)."""
    try:  # dask pickles with cloudpickle as a fallback; so does the check
        from distributed.protocol.pickle import dumps
    except ImportError:
        from pickle import dumps
    try:
        dumps(fn)
    except Exception as exc:
        first = str(exc).splitlines()[0] if str(exc) else ""
        name = getattr(fn, "__qualname__", type(fn).__name__)
        raise ConfigError(f"parallel.backend {backend}: the evaluate function {name!r} cannot be pickled for the "
                          f"workers ({type(exc).__name__}: {first}); evaluate functions must be top-level "
                          f"callables holding plain data; use backend: local") from exc
