"""Where tuning trials and pipeline steps run: the one function that chooses an executor.

Tuning and pipelines submit picklable callables to a ``concurrent.futures.Executor`` (``submit`` and the
futures it returns; ``wait``/``as_completed`` collect results as they finish). ``make_executor`` is the only
place that picks one, from the ``parallel:`` section of a tune or pipeline config::

    parallel: {backend: local}                  # in this process, one call at a time (the default)
    parallel: {backend: thread, workers: 4}     # threads of this process (the callables share its memory)
    parallel: {backend: process, workers: 4}    # fresh worker processes (spawned: safe with torch threads)

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

Backend = Literal["local", "thread", "process"]
BACKENDS = ("local", "thread", "process")
PARALLEL_KEYS: dict[str, Any] = {"backend": Literal["local", "thread", "process"], "workers": int}
PARALLEL_DEFAULTS: dict[str, Any] = {"backend": "local", "workers": 1}


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


def parallel_settings(parallel: Mapping[str, Any] | None) -> dict[str, Any]:
    """``parallel`` with defaults filled in and checked: backend in BACKENDS, workers >= 1 (1 for local)."""
    cfg = {**PARALLEL_DEFAULTS, **dict(parallel or {})}
    unknown = sorted(set(cfg) - set(PARALLEL_KEYS))
    if unknown:
        raise ConfigError(f"parallel has no key {unknown[0]!r}; valid keys: {', '.join(PARALLEL_KEYS)}")
    if cfg["backend"] not in BACKENDS:
        raise ConfigError(f"parallel.backend must be one of {', '.join(BACKENDS)}, got {cfg['backend']!r}")
    if not isinstance(cfg["workers"], int) or isinstance(cfg["workers"], bool) or cfg["workers"] < 1:
        raise ConfigError(f"parallel.workers must be an integer >= 1, got {cfg['workers']!r}")
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
    return InlineExecutor()
