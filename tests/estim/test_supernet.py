"""SuperNet estimator: arch-step schedule, per-epoch derived-arch results and alphas, exact resume (also of a
process killed with SIGKILL in the middle of an epoch)."""

from __future__ import annotations

import copy
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

from fxnas.config import build_experiment, load_config
from fxnas.errors import ConfigError
from fxnas.estim.supernet import SuperNet
from fxnas.optim.base import GradientOptimizer


class CountingGradient(GradientOptimizer):
    """Stand-in gradient optimizer: records when it is called, nudges the first candidate's alpha."""

    def __init__(self, space, seed=0):
        super().__init__(space, seed)
        self.calls: list[tuple[int, int]] = []
        self.epochs: list[int] = []

    def step_arch(self, exp, train_batch, valid_batch):
        est = exp.estimators[exp.stage]
        self.calls.append((est.epoch, est.step))
        assert valid_batch[0].shape[1:] == train_batch[0].shape[1:]
        with torch.no_grad():
            for p in self.space.arch_parameters():
                p[-1] += 1.0  # the last candidate wins
        return {"loss": 0.5}

    def on_epoch_end(self, exp, epoch):
        self.epochs.append(epoch)



def config(tmp_path, **changes: Any) -> dict[str, Any]:
    cfg = {
        "name": "s", "seed": 2, "out_root": str(tmp_path), "progress": False,
        "model": {"type": "tiny_net", "width": 6},
        "construct": {"pattern": "conv3x3", "candidates": ["NC3", "DW3", "IDT"], "mixed_op": "SoftmaxSum"},
        "data": {"type": "digits", "size": 8, "channels": 3, "batch_size": 32, "eval_batch_size": 64},
        "trainer": {"type": "Classification", "lr": 0.05, "epochs": 2, "max_steps_per_epoch": 10},
        "optim": {"type": "DARTS"},  # replaced by CountingGradient where a test needs it
        "estim": [{"type": "SuperNet", "arch_update_intv": 3, "arch_update_epoch_start": 1}],
        "export": {"materialize": False},
    }
    cfg.update(changes)
    return cfg


def build(cfg):
    return build_experiment(load_config(copy.deepcopy(cfg)))


def test_arch_steps_follow_the_schedule(tmp_path):
    exp = build(config(tmp_path))
    exp.optimizer = CountingGradient(exp.space)  # a stand-in, not registered: registries stay as shipped
    exp.run()
    assert exp.optimizer.calls == [(1, 3), (1, 6), (1, 9)]  # from epoch 1, every 3rd of 10 steps
    assert exp.optimizer.epochs == [0, 1]
    assert [r.info["epoch"] for r in exp.history] == [1, 2]
    assert exp.history[1].metrics["arch_loss"] == 0.5 and "arch_loss" not in exp.history[0].metrics
    assert set(exp.history[1].arch.values()) == {"IDT"}  # the derived arch follows the alphas


def test_alphas_are_written_per_epoch(tmp_path):
    exp = build(config(tmp_path, optim={"type": "DARTS", "lr": 0.01},
                       estim=[{"type": "SuperNet", "epochs": 2}]))
    before = {k: p.value.detach().clone() for k, p in exp.space.tensors().items()}
    exp.run()
    rows = [json.loads(s) for s in (tmp_path / "s" / "alphas.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2]
    assert set(rows[0]["alphas"]) == set(before)
    for name, sm in rows[1]["softmax"].items():
        assert sum(sm) == pytest.approx(1.0, abs=1e-6)
        assert torch.allclose(torch.tensor(rows[1]["alphas"][name]), exp.space[name].value.detach())
    assert any(not torch.equal(before[k], exp.space[k].value.detach()) for k in before)  # DARTS moved them
    assert exp.history[-1].arch == exp.space.derive()


class Killed(RuntimeError):
    pass


def test_binary_gate_search_resumes_mid_epoch_exactly(tmp_path):
    """BinaryGate samples paths from the global torch RNG: resume must restore it at the right point."""
    cfg = config(tmp_path, name="ref", optim={"type": "BinaryGate"},
                 construct={"pattern": "conv3x3", "candidates": ["NC3", "DW3", "IDT"], "mixed_op": "BinaryGate"},
                 estim=[{"type": "SuperNet", "checkpoint_steps": 3, "arch_update_intv": 2}])
    ref = build(cfg)
    ref.run()
    want = [(r.arch, r.metrics) for r in ref.history]
    cfg["name"] = "run"
    exp = build(cfg)
    real, n = exp.optimizer.step_arch, {"calls": 0}

    def dying(*args):
        n["calls"] += 1
        if n["calls"] == 9:  # epoch 2, step 8: after the checkpoint at step 6
            raise Killed
        return real(*args)

    exp.optimizer.step_arch = dying
    with pytest.raises(Killed):
        exp.run()
    again = build(cfg)
    again.run(resume=True)
    assert [(r.arch, r.metrics) for r in again.history] == want
    for k, p in ref.space.tensors().items():
        assert torch.equal(p.value, again.space[k].value), k


def test_bad_options():
    with pytest.raises(ConfigError, match="arch_update_intv"):
        SuperNet(arch_update_intv=0)
    with pytest.raises(ConfigError, match="eval_mode"):
        SuperNet(eval_mode="mixed")


# --- a real kill: SIGKILL a `python -m fxnas search` process after its first mid-epoch checkpoint ----------
KILL_CONFIG = {
    "name": "k", "seed": 4, "progress": False,
    "model": {"type": "tiny_net", "width": 6},
    "construct": {"pattern": "conv3x3", "candidates": ["NC3", "DW3", "IDT"], "mixed_op": "BinaryGate"},
    "data": {"type": "digits", "size": 8, "channels": 3, "batch_size": 32, "eval_batch_size": 64},
    "trainer": {"type": "Classification", "lr": 0.05, "max_steps_per_epoch": 12},
    "optim": {"type": "BinaryGate"},
    "estim": [{"type": "Default", "epochs": 1, "eval_steps": 2},
              {"type": "SuperNet", "epochs": 2, "checkpoint_steps": 4, "bn_recalibrate": 2, "eval_steps": 2}],
    "export": {"materialize": False},
}


def _search(cfg_path: Path, root: Path, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "fxnas", "search", "-c", str(cfg_path), "--out-root", str(root),
                             "--quiet", *extra], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _history(root: Path) -> list[dict]:
    return [json.loads(s) for s in (root / "k" / "history.jsonl").read_text().splitlines()]


def test_killed_search_process_resumes_like_an_uninterrupted_one(tmp_path):
    cfg_path = tmp_path / "k.yaml"
    cfg_path.write_text(yaml.safe_dump(KILL_CONFIG))
    ref = _search(cfg_path, tmp_path / "ref")
    killed = _search(cfg_path, tmp_path / "run")
    meta = tmp_path / "run" / "k" / "checkpoint.json"
    deadline = time.time() + 240
    seen = None
    while time.time() < deadline and killed.poll() is None:
        try:
            m = json.loads(meta.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            m = None
        if m and m["stage"] == 1 and m["estimator"]["step"] > 0:
            killed.send_signal(signal.SIGKILL)  # in the middle of a search epoch
            seen = m
            break
        time.sleep(0.005)
    killed.wait()
    assert seen is not None and killed.returncode == -signal.SIGKILL, killed.stderr.read().decode()[-2000:]
    partial = _history(tmp_path / "run")
    resumed = _search(cfg_path, tmp_path / "run", "--resume")
    out, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err.decode()[-2000:]
    ref.communicate(timeout=300)
    assert ref.returncode == 0
    want = _history(tmp_path / "ref")
    assert len(want) == 3 and len(partial) < 3
    got = _history(tmp_path / "run")
    assert [(r["arch"], r["metrics"]) for r in got] == [(r["arch"], r["metrics"]) for r in want]
    assert b"best architecture" in out
