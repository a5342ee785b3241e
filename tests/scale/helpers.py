"""Evaluate functions and an estimator for the scale-out tests, pickled by value to the dask workers."""

from __future__ import annotations

import os
import signal
import uuid
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fxnas.estim.base import Estimator
from fxnas.optim.base import Result, arch_key


def fake_accuracy(arch: Mapping[str, Any]) -> float:
    """A fixed pseudo-accuracy per arch in [50, 95): a stand-in for the NB201 table."""
    return 50.0 + (zlib.crc32(repr(arch_key(arch)).encode()) % 4500) / 100.0


@dataclass
class Logged:
    """``fn(arch)``, leaving one file per call in ``folder`` (name: the arch's checksum) to count evaluations."""

    fn: Any
    folder: str

    def __call__(self, arch: Mapping[str, Any]) -> Any:
        tag = zlib.crc32(repr(arch_key(arch)).encode())
        (Path(self.folder) / f"{tag}-{uuid.uuid4().hex}").touch()
        return self.fn(arch)

    def calls(self) -> dict[int, int]:
        """Evaluations so far per arch checksum."""
        out: dict[int, int] = {}
        for p in Path(self.folder).iterdir():
            if "-" in p.name:
                tag = int(p.name.split("-")[0])
                out[tag] = out.get(tag, 0) + 1
        return out


@dataclass
class FakeTable:
    """The NB201 lookup of a fake table; the ``kill_at``-th call (across workers) kills its own worker once."""

    folder: str
    kill_at: int = 0

    def __call__(self, arch: Mapping[str, Any]) -> dict[str, float]:
        if self.kill_at:
            calls = Path(self.folder) / "calls"
            with open(calls, "a") as f:
                f.write("x")
            if calls.stat().st_size >= self.kill_at:
                try:  # exactly once, whichever worker gets there
                    os.close(os.open(Path(self.folder) / "killed", os.O_CREAT | os.O_EXCL))
                    os.kill(os.getpid(), signal.SIGKILL)
                except FileExistsError:
                    pass
        return {"cifar10_valid_12ep": fake_accuracy(arch)}


class Lookup(Estimator):
    """A Table-like estimator over any picklable evaluate function."""

    parallel_safe = True

    def __init__(self, fn: Any, budget: int) -> None:
        super().__init__()
        self.fn, self.budget = fn, budget

    def metric_names(self, exp: Any) -> set[str] | None:
        return None

    def run(self, exp: Any) -> list[Result]:
        return exp.evaluate_loop(self.fn, self.budget)


def arch_tag(arch: Mapping[str, Any]) -> int:
    """The checksum Logged names its files by."""
    return zlib.crc32(repr(arch_key(arch)).encode())


@dataclass
class KillOnce:
    """``fn(arch)``, except that the ``kill_at``-th call (across workers) kills its own worker, once."""

    fn: Any
    folder: str
    kill_at: int

    def __call__(self, arch: Mapping[str, Any]) -> Any:
        FakeTable(self.folder, self.kill_at)(arch)  # counts the call, and kills at kill_at
        return self.fn(arch)
