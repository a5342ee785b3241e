"""fxnas.pool: the executor a parallel section names (local, threads, spawned processes), checked settings."""

from __future__ import annotations

import math
from concurrent.futures import as_completed

import pytest

from fxnas.errors import ConfigError
from fxnas.pool import InlineExecutor, make_executor, parallel_settings


@pytest.mark.parametrize("backend", ["local", "thread", "process"])
def test_each_backend_runs_submitted_calls(backend):
    with make_executor({"backend": backend, "workers": 2}) as ex:
        futures = [ex.submit(math.factorial, n) for n in range(6)]
        assert sorted(f.result() for f in as_completed(futures)) == [1, 1, 2, 6, 24, 120]


def test_inline_executor_keeps_exceptions_in_the_future():
    fut = InlineExecutor().submit(math.sqrt, -1)
    assert fut.done() and isinstance(fut.exception(), ValueError)


def test_settings_are_checked():
    assert parallel_settings({"backend": "local", "workers": 4})["workers"] == 1
    with pytest.raises(ConfigError, match="parallel.workers must be an integer >= 1"):
        parallel_settings({"backend": "thread", "workers": 0})
    with pytest.raises(ConfigError, match="parallel has no key 'worker'"):
        parallel_settings({"worker": 2})
