"""fxnas.pool: the executor a parallel section names (local, threads, spawned processes, dask), checked settings."""

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


def test_dask_backend_is_a_loopback_local_cluster():
    pytest.importorskip("dask.distributed", reason="the test extras install dask[distributed]")
    with make_executor({"backend": "dask", "workers": 2}) as ex:
        futures = [ex.submit(math.factorial, n) for n in range(6)]
        assert sorted(f.result() for f in as_completed(futures)) == [1, 1, 2, 6, 24, 120]
        assert ex.client.scheduler_info()["address"].startswith("tcp://127.0.0.1:")
        assert len(ex.worker_pids()) == 2
    assert ex.client.status == "closed" and ex.cluster.status.name == "closed"


def test_dask_and_retry_settings_are_checked():
    assert parallel_settings({"backend": "dask"})["retries"] == 2
    with pytest.raises(ConfigError, match="parallel.retries must be an integer >= 0"):
        parallel_settings({"backend": "dask", "retries": -1})
    with pytest.raises(ConfigError, match="parallel.address is the address of a dask scheduler; it needs backend"):
        parallel_settings({"backend": "process", "address": "tcp://127.0.0.1:8786"})


def test_a_search_refuses_threads_and_unpicklable_evaluations(tmp_path):
    from fxnas.experiment import Experiment
    from fxnas.pool import check_picklable

    with pytest.raises(ConfigError, match="parallel.backend must be one of local, process, dask for a search"):
        Experiment(out_root=tmp_path, parallel={"backend": "thread"})
    with pytest.raises(ConfigError, match="evaluate function '.*<lambda>' cannot be pickled"):
        check_picklable(lambda a, lock=__import__("threading").Lock(): a, "process")
