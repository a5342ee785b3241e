"""Searches on a dask LocalCluster of two worker processes (loopback) while a worker is killed mid-run."""

from __future__ import annotations

import json
import os
import signal
import threading
import time

import pytest

dd = pytest.importorskip("dask.distributed", reason="the test extras install dask[distributed]")

import cloudpickle  # noqa: E402  (installed with dask)
import dask  # noqa: E402
import torch  # noqa: E402

import fxnas  # noqa: E402
from fxnas.estim.subnet import SubNet, train_subnet  # noqa: E402
from fxnas.experiment import Experiment  # noqa: E402
from fxnas.optim import arch_key  # noqa: E402
from fxnas.optim.discrete import Random  # noqa: E402
from fxnas.optim.evolution import RegularizedEvolution  # noqa: E402
from fxnas.spaces.nb201 import nb201_space  # noqa: E402
from fxnas.train import DATASETS, Trainer  # noqa: E402

from . import helpers  # noqa: E402
from .helpers import FakeTable, KillOnce, Logged, Lookup, arch_tag, fake_accuracy  # noqa: E402

cloudpickle.register_pickle_by_value(helpers)  # the workers cannot import the tests


@pytest.fixture(scope="module")
def cluster():
    """Two single-threaded worker processes on 127.0.0.1; a dead worker's task fails at once (KilledWorker)."""
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        c = dd.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                            dashboard_address=None)
    with dd.Client(c) as client:
        yield c, client
    c.close()


def lines(path) -> list[dict]:
    return [json.loads(s) for s in path.read_text().splitlines()]


def check_consistent(exp: Experiment, budget: int) -> list[dict]:
    """history.jsonl, the journal and the in-memory history hold the same ``budget`` distinct results."""
    hist = lines(exp.out_dir / "history.jsonl")
    journal = lines(exp.out_dir / "evaluations.jsonl")
    assert len(hist) == budget == len(journal) == len(exp.history)
    assert len({arch_key(h["arch"]) for h in hist}) == budget
    assert sorted(h["info"]["sid"] for h in hist) == sorted(j["sid"] for j in journal) == list(range(budget))
    assert {j["sid"]: j["result"]["metrics"] for j in journal} == {h["info"]["sid"]: h["metrics"] for h in hist}
    assert exp.loop_state["0"]["pending"] == {}
    return hist


def fake_table_exp(tmp_path, address, fn, budget=16, name="nb201"):
    opt = RegularizedEvolution(nb201_space(), seed=0, population=6, sample=3)
    return Experiment(space=nb201_space(), optimizer=opt, estimators=[Lookup(fn, budget)], out_root=tmp_path,
                      name=name, objectives=["cifar10_valid_12ep"], progress=False, export={"materialize": False},
                      parallel={"backend": "dask", "address": address, "workers": 2, "retries": 2})


def test_fake_table_search_survives_a_killed_worker(cluster, tmp_path):
    c, client = cluster
    pids = set(client.run(os.getpid).values())
    exp = fake_table_exp(tmp_path, c.scheduler_address, FakeTable(str(tmp_path), kill_at=5))
    summary = exp.run()
    assert (tmp_path / "killed").exists()  # the fifth evaluation took its worker down
    hist = check_consistent(exp, 16)
    assert [h["info"]["attempts"] for h in hist].count(2) == 1 and exp.loop_state["0"]["retries"] == 1
    assert all(h["metrics"]["cifar10_valid_12ep"] == fake_accuracy(h["arch"]) for h in hist)
    assert not any(h["info"].get("failed") for h in hist)
    assert summary["metrics"]["cifar10_valid_12ep"] == max(fake_accuracy(h["arch"]) for h in hist)
    client.wait_for_workers(2, timeout=60)  # the nanny replaced the dead worker
    assert len(set(client.run(os.getpid).values()) - pids) == 1


class Crash(Exception):
    """The scheduler side dies (raised inside record, after the journal line, before the checkpoint)."""


def test_resume_after_a_scheduler_crash_resubmits_only_unfinished(cluster, tmp_path):
    c, _ = cluster
    (tmp_path / "calls").mkdir()
    fn = Logged(FakeTable(str(tmp_path)), str(tmp_path / "calls"))
    broken = fake_table_exp(tmp_path, c.scheduler_address, fn, budget=12)
    real, n = broken.record, []

    def record(r):
        n.append(r)
        if len(n) == 6:
            raise Crash
        return real(r)

    broken.record = record
    with pytest.raises(Crash):
        broken.run()
    journal = lines(broken.out_dir / "evaluations.jsonl")
    assert len(journal) == 6  # five recorded and checkpointed, the sixth only journaled
    resumed = fake_table_exp(tmp_path, c.scheduler_address, fn, budget=12)
    resumed.run(resume=True)
    hist = check_consistent(resumed, 12)
    calls = fn.calls()
    assert all(calls[arch_tag(j["result"]["arch"])] == 1 for j in journal)  # finished: never evaluated again
    assert {h["info"]["sid"]: h["arch"] for h in hist if h["info"]["sid"] in {j["sid"] for j in journal}} == \
        {j["sid"]: j["result"]["arch"] for j in journal}


class CNN(torch.nn.Module):
    """Two 3x3 convs (the search slots) and a linear head, for 16x16 digits."""

    def __init__(self) -> None:
        super().__init__()
        self.c1, self.b1 = torch.nn.Conv2d(1, 8, 3, padding=1, bias=False), torch.nn.BatchNorm2d(8)
        self.c2, self.b2 = torch.nn.Conv2d(8, 8, 3, padding=1, bias=False), torch.nn.BatchNorm2d(8)
        self.fc = torch.nn.Linear(8, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.nn.functional.max_pool2d(torch.relu(self.b1(self.c1(x))), 2)
        return self.fc(torch.relu(self.b2(self.c2(x))).mean((2, 3)))


@pytest.mark.slow  # about 2 minutes on two busy cores: six trainings in worker processes
def test_subnet_search_on_digits_survives_a_killed_worker(cluster, tmp_path):
    c, client = cluster
    torch.manual_seed(0)
    net = fxnas.searchify(CNN(), pattern="conv3x3", candidates=["ORIG", "NC3", "IDT"],
                          example_inputs=torch.randn(1, 1, 16, 16))
    digits = DATASETS.build("digits", size=16, batch_size=64, seed=0)
    exp = Experiment(net, data=digits, trainer=Trainer(epochs=1, lr=0.1),
                     optimizer=Random(net.space, seed=0, metric="acc"),
                     estimators=[SubNet(epochs=2, budget=6, bn_steps=0)], out_root=tmp_path, name="subnet",
                     progress=False, export={"materialize": False},
                     parallel={"backend": "dask", "address": c.scheduler_address, "workers": 2, "retries": 2})
    victim = next(iter(client.run(os.getpid).values()))

    def kill_when_under_way():  # a worker dies in the middle of the search, while both are training
        deadline = time.time() + 120
        while len(exp.history) < 2 and time.time() < deadline:
            time.sleep(0.05)
        os.kill(victim, signal.SIGKILL)

    killer = threading.Thread(target=kill_when_under_way)
    killer.start()
    exp.run()
    killer.join()
    hist = check_consistent(exp, 6)
    assert not any(h["info"].get("failed") for h in hist)
    assert exp.loop_state["0"]["retries"] == sum(h["info"]["attempts"] - 1 for h in hist)
    best = exp.best
    assert best is not None and best.metrics["acc"] == max(h["metrics"]["acc"] for h in hist)
    # training is fixed by (seed, arch): the worker's metrics are those of a training in this process
    here = train_subnet(net, best.arch, digits, Trainer(epochs=1, lr=0.1), epochs=2, seed=0)
    assert here["acc"] == pytest.approx(best.metrics["acc"], abs=1e-6)
    assert net.space.current() == best.arch  # keep_best: the supernet holds the best arch
    client.wait_for_workers(2, timeout=60)
    assert victim not in client.run(os.getpid).values()  # the victim did die; the nanny replaced it


@pytest.mark.nb201
def test_nb201_table_search_survives_a_killed_worker(cluster, tmp_path):
    from fxnas.estim.table import Table

    c, _ = cluster
    table = Table(costs=["params"])
    exp = fake_table_exp(tmp_path, c.scheduler_address, KillOnce(table.evaluator(), str(tmp_path), 4), budget=12)
    exp.run()
    assert (tmp_path / "killed").exists()
    hist = check_consistent(exp, 12)
    assert all(h["metrics"] == table.evaluate(h["arch"]) for h in hist)
    assert exp.loop_state["0"]["retries"] == 1 and not any(h["info"].get("failed") for h in hist)
