"""A test plugin (``fxnas search --import tests/kill_plugin.py``) that SIGKILLs its own process at a chosen
point, so the crash tests can stop a real search in training, in evaluation, or half-way through writing.

``FXNAS_TEST_KILL=<point>:<n>`` picks the ``n``-th (1-based) event of ``point``:

- ``train``: a weight step (``Trainer.train_step``) is about to run;
- ``eval``: an evaluation (``Trainer.evaluate``) is about to run;
- ``append``: a history/alphas/log line, of which half is written (no newline);
- ``write``: a whole-file write (YAML/JSON outputs), of which half reaches the temporary file;
- ``checkpoint``: ``checkpoint.pt``, of which half reaches the temporary file.

``FXNAS_TEST_COUNT=<file>`` writes how many events of each point the run had to ``<file>`` (JSON) at exit,
so a test can draw kill points among the events an uninterrupted run has. Without either variable the plugin
changes nothing.
"""

from __future__ import annotations

import atexit
import json
import os
import signal
from pathlib import Path
from typing import Any

import torch

from fxnas import outputs
from fxnas.train.trainer import Trainer

POINT, _, N = os.environ.get("FXNAS_TEST_KILL", "").partition(":")
COUNT_FILE = os.environ.get("FXNAS_TEST_COUNT", "")
COUNTS = {p: 0 for p in ("train", "eval", "append", "write", "checkpoint")}


def _hit(point: str) -> bool:
    COUNTS[point] += 1
    return point == POINT and COUNTS[point] == int(N)


def _write_counts() -> None:
    Path(COUNT_FILE).write_text(json.dumps(COUNTS))


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def _half(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data[: max(1, len(data) // 2)])
        f.flush()
        os.fsync(f.fileno())


def _wrap_call(real: Any, point: str) -> Any:
    """``real`` (a Trainer method), dying first at the chosen event of ``point``."""
    def call(self: Trainer, *args: Any, **kwargs: Any) -> Any:
        if _hit(point):
            _die()
        return real(self, *args, **kwargs)
    return call


def _wrap_append(real: Any) -> Any:
    def append_line(self: outputs.ExperimentFolder, name: str, line: str) -> None:
        if name != "log.txt" and _hit("append"):
            with open(self.path(name), "a") as f:
                f.write(line[: max(1, len(line) // 2)])
            _die()
        real(self, name, line)
    return append_line


def _wrap_write(real: Any) -> Any:
    def atomic_write(path: Path, data: str | bytes) -> None:
        if _hit("write"):
            _half(path.with_name(path.name + ".tmp"), data.encode() if isinstance(data, str) else data)
            _die()
        real(path, data)
    return atomic_write


def _wrap_save(real: Any) -> Any:
    def save(obj: Any, f: Any, *args: Any, **kwargs: Any) -> None:
        real(obj, f, *args, **kwargs)
        if isinstance(f, (str, os.PathLike)) and Path(f).name == "checkpoint.pt.tmp" and _hit("checkpoint"):
            p = Path(f)
            _half(p, p.read_bytes())
            _die()
    return save


if POINT or COUNT_FILE:
    Trainer.train_step = _wrap_call(Trainer.train_step, "train")
    Trainer.evaluate = _wrap_call(Trainer.evaluate, "eval")
    outputs.ExperimentFolder.append_line = _wrap_append(outputs.ExperimentFolder.append_line)
    outputs.atomic_write = _wrap_write(outputs.atomic_write)
    torch.save = _wrap_save(torch.save)
    if COUNT_FILE:
        atexit.register(_write_counts)
