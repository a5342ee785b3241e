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


# --- order, fixed weight steps, start hook, discrete optimizers ---------------------------------------------
def _log_weight_steps(exp, log: list) -> None:
    """Wrap the trainer's train_step: log ("w", first label of the batch, step) for each weight step."""
    real = exp.trainer.train_step

    def train_step(model, batch):
        log.append(("w", batch[1][:8].tolist(), exp.estimators[exp.stage].step))
        return real(model, batch)

    exp.trainer.train_step = train_step


def test_arch_step_comes_before_the_weight_step_on_the_same_batch(tmp_path):
    """DARTS's order: alpha is updated on a train batch before the weights see it (so the unrolled virtual
    step starts from weights and momentum not yet trained on that batch)."""
    exp = build(config(tmp_path, estim=[{"type": "SuperNet", "epochs": 1, "arch_update_intv": 1}]))
    log: list = []
    _log_weight_steps(exp, log)
    real = exp.optimizer.step_arch

    def step_arch(e, train_batch, valid_batch):
        # the weights are those of before this batch's weight step: the momentum buffer has seen fewer steps
        log.append(("a", train_batch[1][:8].tolist(), e.estimators[e.stage].step))
        return real(e, train_batch, valid_batch)

    exp.optimizer.step_arch = step_arch
    exp.run()
    arch = [i for i, entry in enumerate(log) if entry[0] == "a"]
    assert len(arch) == 9  # one per weight step after the first (10 steps, arch_update_intv 1)
    for i in arch:
        assert log[i + 1][0] == "w" and log[i + 1][1:] == log[i][1:]  # then the weight step, same batch and step


def test_unrolled_darts_virtual_step_uses_weights_before_the_weight_step(tmp_path):
    """Unrolled DARTS: the virtual step w' starts from the weights that the weight step on the same train batch
    then updates (not from weights already trained on it)."""
    exp = build(config(tmp_path, optim={"type": "DARTS", "unrolled": True},
                       estim=[{"type": "SuperNet", "epochs": 1, "arch_update_intv": 1}]))
    seen: list = []
    w = next(p for p in exp.model.parameters() if p.requires_grad)
    real_unrolled, real_step = exp.optimizer._unrolled, exp.trainer.train_step

    def unrolled(e, train_batch, valid_batch):
        seen.append(("a", train_batch[1].tolist(), w.detach().clone()))
        return real_unrolled(e, train_batch, valid_batch)

    def train_step(model, batch):
        seen.append(("w", batch[1].tolist(), w.detach().clone()))
        return real_step(model, batch)

    exp.optimizer._unrolled, exp.trainer.train_step = unrolled, train_step
    exp.run()
    pairs = [(seen[i], seen[i + 1]) for i in range(len(seen) - 1) if seen[i][0] == "a"]
    assert len(pairs) == 9
    for (_, virtual_batch, virtual_w), (kind, batch, weights) in pairs:
        assert kind == "w" and virtual_batch == batch and torch.equal(virtual_w, weights)


def test_reinforce_weight_steps_train_only_the_sampled_arch(tmp_path):
    """REINFORCE on BinaryGate ops: the weight steps run fixed_arch on the last sampled arch (not two gated
    paths), so they train archs drawn from the policy; warm-up epochs train uniformly random paths."""
    cfg = config(tmp_path, optim={"type": "REINFORCE", "reward": "acc"},
                 construct={"pattern": "conv3x3", "candidates": ["NC3", "DW3", "IDT"], "mixed_op": "BinaryGate"},
                 estim=[{"type": "SuperNet", "arch_update_intv": 2, "arch_update_epoch_start": 1}])
    exp = build(cfg)
    ops = list(fxnas_mixed_ops(exp.model).values())
    assert ops and exp.optimizer.fixed_weight_steps
    runs: list = []
    for op in ops:
        for name, cand in op.candidates.items():
            cand.register_forward_hook(lambda m, i, o, op=op, name=name: runs.append((op, name)))
    sampled: list = []
    real = exp.optimizer.step_arch

    def step_arch(e, train_batch, valid_batch):
        out = real(e, train_batch, valid_batch)
        sampled.append(dict(e.space.current()))
        return out

    steps: list = []
    real_step = exp.trainer.train_step

    def train_step(model, batch):
        runs.clear()
        out = real_step(model, batch)
        est = exp.estimators[exp.stage]
        steps.append((est.epoch, dict(exp.space.current()), list(runs), [op.fixed for op in ops]))
        return out

    exp.optimizer.step_arch = step_arch
    exp.trainer.train_step = train_step
    exp.run()
    assert len(sampled) == 4 and len(steps) == 20  # arch steps before weight steps 2, 4, 6, 8 of epoch 1
    for _, arch, ran, fixed in steps:
        assert all(fixed)
        assert sorted((id(op), name) for op, name in ran) == sorted((id(op), arch[op.param.name]) for op in ops)
    assert len({tuple(sorted(a.items())) for e, a, _, _ in steps if e == 0}) > 1  # warm-up: random paths
    searched = [a for e, a, _, _ in steps if e == 1]
    assert searched[3] == searched[2] == sampled[0]  # the sampled arch stays applied until the next arch step
    assert not any(op.fixed for op in ops)  # fixed mode ends with the stage


def fxnas_mixed_ops(model):
    from fxnas.supernet import mixed_ops

    return mixed_ops(model)


def test_gumbel_temperature_reaches_the_ops_before_the_first_weight_step(tmp_path):
    cfg = config(tmp_path, optim={"type": "GumbelAnnealing", "temperature": 0.3, "anneal_rate": 0.5},
                 construct={"pattern": "conv3x3", "candidates": ["NC3", "DW3", "IDT"], "mixed_op": "GumbelSum"})
    exp = build(cfg)  # arch updates start at epoch 1: epoch 0 is all weight steps
    ops = list(fxnas_mixed_ops(exp.model).values())
    temps: list = []
    ops[0].register_forward_pre_hook(lambda m, i: temps.append(m.temperature) if m.training else None)
    exp.run()
    assert temps[:10] == pytest.approx([0.3] * 10)  # the warm-up epoch runs at optim.temperature, not 1.0
    assert temps[-1] == pytest.approx(0.15)  # annealed after epoch 0


def test_discrete_optimizer_results_are_not_ranked(tmp_path):
    """SPOS-style SuperNet training with a discrete optimizer: its per-epoch arch is the last random path, so
    it never becomes the best arch; the paths are sample_path's."""
    from fxnas.estim.uniform import sample_path

    cfg = config(tmp_path, optim={"type": "Random"},
                 construct={"pattern": "conv3x3", "candidates": ["NC3", "DW3", "IDT"], "mixed_op": "Index"},
                 estim=[{"type": "SuperNet", "epochs": 1},
                        {"type": "Uniform", "epochs": 0, "budget": 2, "bn_steps": 1, "eval_steps": 1}])
    exp = build(cfg)
    paths: list = []
    real_step = exp.trainer.train_step

    def train_step(model, batch):
        est = exp.estimators[exp.stage]
        paths.append((dict(exp.space.current()), sample_path(exp.space, exp.seed, est.epoch, est.step)))
        return real_step(model, batch)

    exp.trainer.train_step = train_step
    exp.run()
    assert len(paths) == 10 and all(a == b for a, b in paths) and len({str(a) for a, _ in paths}) > 1
    supernet = [r for r in exp.history if r.info["stage"] == 0]
    assert len(supernet) == 1 and supernet[0].info["rank"] is False
    assert exp.best is not None and exp.best.info["stage"] == 1  # the Uniform search's result
    assert SuperNet(rank=True).rank is True  # an explicit rank is kept


def test_since_arch_is_checkpointed(tmp_path):
    est = SuperNet(arch_update_intv=4)
    est.since_arch = 3
    again = SuperNet(arch_update_intv=4)
    again.load_state_dict(est.state_dict())
    assert again.since_arch == 3
