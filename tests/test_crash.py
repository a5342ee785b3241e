"""Crash safety: a search process SIGKILLed at random points (in training, in evaluation, half-way through
writing a history line, an output file or the checkpoint) and resumed with ``--resume`` ends with the same
history as an uninterrupted run. The kill points come from tests/kill_plugin.py, loaded with ``--import``.

Every case here is slow; the default suite kills and resumes a search process in tests/estim/test_supernet.py.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

PLUGIN = Path(__file__).with_name("kill_plugin.py")
ROOT = Path(__file__).resolve().parents[1]

BASE = {
    "seed": 3, "progress": False,
    "model": {"type": "tiny_net", "width": 6},
    "data": {"type": "digits", "size": 8, "channels": 3, "batch_size": 32, "eval_batch_size": 64},
    "export": {"materialize": False},
}
DISCRETE = {**BASE, "name": "d",
            "construct": {"pattern": "conv3x3", "candidates": ["NC3", "DW3", "IDT"]},
            "trainer": {"type": "Classification", "lr": 0.05, "epochs": 1, "max_steps_per_epoch": 4},
            "optim": {"type": "RegularizedEvolution", "population": 2, "sample": 2},
            "estim": [{"type": "SubNet", "budget": 4, "batch_size": 1}]}
SUPERNET = {**BASE, "name": "s",
            "construct": {"pattern": "conv3x3", "candidates": ["NC3", "DW3", "IDT"], "mixed_op": "SoftmaxSum"},
            "trainer": {"type": "Classification", "lr": 0.05, "max_steps_per_epoch": 8},
            "optim": {"type": "DARTS"},
            "estim": [{"type": "SuperNet", "epochs": 2, "checkpoint_steps": 3, "eval_steps": 2}]}
POINTS = ("train", "eval", "append", "write", "checkpoint")


def _search(cfg: Path, root: Path, kill: str | None = None, *extra: str, count: Path | None = None
            ) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    env.pop("FXNAS_TEST_KILL", None)
    env.pop("FXNAS_TEST_COUNT", None)
    if kill:
        env["FXNAS_TEST_KILL"] = kill
    if count:
        env["FXNAS_TEST_COUNT"] = str(count)
    return subprocess.run([sys.executable, "-m", "fxnas", "search", "-c", str(cfg), "--out-root", str(root),
                           "--quiet", "--import", str(PLUGIN), *extra], env=env, capture_output=True, timeout=300)


def _history(folder: Path) -> list[dict]:
    return [json.loads(s) for s in (folder / "history.jsonl").read_text().splitlines()]


def _same(got: list[dict], want: list[dict]) -> None:
    assert [r["arch"] for r in got] == [r["arch"] for r in want]
    for g, w in zip(got, want):
        assert set(g["metrics"]) == set(w["metrics"])
        for k, v in w["metrics"].items():
            assert g["metrics"][k] == pytest.approx(v, rel=1e-6, abs=1e-9), k


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict[str, tuple[Path, list[dict], dict[str, int]]]:
    """Uninterrupted runs of each config, once per module (made on first use): (config file, history,
    events per kill point)."""
    root = tmp_path_factory.mktemp("reference")
    out: dict[str, tuple[Path, list[dict], dict[str, int]]] = {}

    class Runs(dict):
        def __missing__(self, name: str) -> tuple[Path, list[dict], dict[str, int]]:
            cfg = {"d": DISCRETE, "s": SUPERNET}[name]
            path = root / f"{name}.yaml"
            path.write_text(yaml.safe_dump(cfg))
            done = _search(path, root / "out", count=root / f"{name}.json")
            assert done.returncode == 0, done.stderr.decode()[-2000:]
            self[name] = (path, _history(root / "out" / name), json.loads((root / f"{name}.json").read_text()))
            return self[name]

    return Runs(out)


def _kill_and_resume(reference, name: str, kill: str, tmp_path: Path) -> None:
    cfg, want, _ = reference[name]
    killed = _search(cfg, tmp_path, kill)
    assert killed.returncode == -signal.SIGKILL, (kill, killed.returncode, killed.stderr.decode()[-2000:])
    folder = tmp_path / name
    # a kill while appending leaves half a line at the end (resume cuts the log back to the checkpoint)
    text = (folder / "history.jsonl").read_text() if (folder / "history.jsonl").exists() else ""
    assert text.count("\n") <= len(want)
    if kill.startswith("append"):
        assert text and not text.endswith("\n"), "the kill was meant to leave half a history line"
    resumed = _search(cfg, tmp_path, None, "--resume")
    assert resumed.returncode == 0, (kill, resumed.stderr.decode()[-2000:])
    _same(_history(folder), want)
    best = yaml.safe_load((folder / "arch_best.yaml").read_text())
    assert best["arch"] in [r["arch"] for r in want]


def _kill_at(reference, name: str, point: str, seed: int) -> str:
    """``point:n``, ``n`` drawn with ``seed`` among the events of ``point`` an uninterrupted run has."""
    n = reference[name][2][point]
    assert n > 0, f"the {name} run has no {point} event"
    return f"{point}:{random.Random(f'{name}{point}{seed}').randint(1, n)}"


@pytest.mark.slow  # the default suite's crash case: tests/estim/test_supernet.py (a killed search process)
def test_discrete_search_killed_mid_training_resumes_to_the_same_history(reference, tmp_path) -> None:
    _kill_and_resume(reference, "d", _kill_at(reference, "d", "train", 0), tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("point", POINTS)
def test_discrete_search_killed_anywhere_resumes_to_the_same_history(reference, point, seed, tmp_path) -> None:
    _kill_and_resume(reference, "d", _kill_at(reference, "d", point, seed), tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("point", POINTS)
def test_supernet_search_killed_anywhere_resumes_to_the_same_history(reference, point, seed, tmp_path) -> None:
    _kill_and_resume(reference, "s", _kill_at(reference, "s", point, seed), tmp_path)
