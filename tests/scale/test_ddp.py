"""Data-parallel supernet training under torchrun: 2 gloo processes on CPU run a tiny DARTS search."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from fxnas.distributed import Distributed, from_env
from fxnas.errors import ConfigError
from fxnas.train.sampling import EpochSampler

ROOT = Path(__file__).resolve().parents[2]
WORKER = Path(__file__).with_name("ddp_worker.py")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def darts_config(out_root: Path, epochs: int = 1, mixed_op: str = "SoftmaxSum", optim: str = "DARTS") -> dict:
    return {
        "name": "ddp", "seed": 3, "out_root": str(out_root), "progress": False, "threads": 1,
        "model": {"type": "tiny_net", "width": 4},
        "construct": {"pattern": "conv3x3", "candidates": ["NC3", "DW3", "NC5"], "mixed_op": mixed_op},
        "data": {"type": "digits", "size": 8, "channels": 3, "batch_size": 16, "eval_batch_size": 64},
        "trainer": {"type": "Classification", "epochs": epochs, "lr": 0.05, "max_steps_per_epoch": 3},
        "optim": {"type": optim, "lr": 0.05},
        "estim": [{"type": "SuperNet", "bn_recalibrate": 2}],
        "export": {"test": False},
    }


def torchrun(tmp: Path, cfg: dict | None, dump: Path, *extra: str, script: Path = WORKER) -> None:
    """Run ``script`` (by default a search of ``cfg``) in 2 processes under torchrun, on loopback."""
    args = [str(dump)]
    if cfg is not None:
        path = tmp / "cfg.yaml"
        path.write_text(yaml.safe_dump(cfg))
        args.insert(0, str(path))
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
           "OMP_NUM_THREADS": "1"}
    for k in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(k, None)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_addr=127.0.0.1",
           f"--master_port={free_port()}", str(script), *args, *extra]
    run = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, cwd=tmp)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-5000:]


def ranks(dump: Path, n: int = 2) -> list[dict]:
    return [torch.load(dump / f"rank{r}.pt", weights_only=False) for r in range(n)]


def assert_same(a: dict, b: dict, alphas: bool = True) -> None:
    assert a["alphas"].keys() == b["alphas"].keys() and (a["alphas"] or not alphas)
    for name in a["alphas"]:
        assert torch.equal(a["alphas"][name], b["alphas"][name]), name
    for name in a["weights"]:
        assert torch.equal(a["weights"][name], b["weights"][name]), name
    assert a["derived"] == b["derived"] and a["best"] == b["best"]
    assert a["history"] == b["history"]  # rank 0's results, info and all, on every rank


def test_two_rank_darts_ends_with_identical_alphas_and_one_run_folder(tmp_path):
    out = tmp_path / "exp"
    torchrun(tmp_path, darts_config(out), tmp_path / "dump")
    r0, r1 = ranks(tmp_path / "dump")
    assert (r0["rank"], r1["rank"], r0["world"]) == (0, 1, 2)
    assert_same(r0, r1)
    # the arch steps moved the alphas off their initial values: the check above compares trained alphas
    assert any(v.abs().max() > 1e-3 for v in r0["alphas"].values())
    # each rank holds its own half of the train split, and runs the same number of steps
    assert len(r0["shard"]) == len(r1["shard"]) > 0 and not set(r0["shard"]) & set(r1["shard"])
    assert r0["steps"] == r1["steps"] == 3
    assert [p.name for p in out.iterdir()] == ["ddp"]
    folder = out / "ddp"
    lines = (folder / "history.jsonl").read_text().splitlines()
    assert len(lines) == len(r0["history"]) == 1  # written once, by rank 0
    assert json.loads(lines[0])["arch"] == r0["best"]
    assert json.loads(lines[0])["info"] == r0["history"][0]["info"] and "epoch" in r0["history"][0]["info"]
    assert yaml.safe_load((folder / "arch_best.yaml").read_text())["arch"] == r0["best"]
    assert sum("stage 1/1" in line for line in (folder / "log.txt").read_text().splitlines()) == 1
    ck = torch.load(folder / "checkpoint.pt", weights_only=True)
    for name, v in r0["alphas"].items():
        assert torch.equal(ck["optimizer"]["alphas"][name], v)


@pytest.mark.slow
def test_two_rank_run_stopped_mid_epoch_resumes_to_the_uninterrupted_result(tmp_path):
    cfg = {**darts_config(tmp_path / "full", epochs=2)}
    cfg["estim"] = [{"type": "SuperNet", "bn_recalibrate": 2, "checkpoint_steps": 2}]
    torchrun(tmp_path, cfg, tmp_path / "full_dump")
    cfg["out_root"] = str(tmp_path / "cut")
    torchrun(tmp_path, cfg, tmp_path / "none", "--stop-after", "1")  # after step 2 of epoch 1
    assert not (tmp_path / "none").exists()
    assert not (tmp_path / "cut" / "ddp" / "history.jsonl").exists()
    torchrun(tmp_path, cfg, tmp_path / "cut_dump", "--resume")
    full, cut = ranks(tmp_path / "full_dump"), ranks(tmp_path / "cut_dump")
    assert_same(*cut)
    assert_same(full[0], cut[0])
    assert len((tmp_path / "cut" / "ddp" / "history.jsonl").read_text().splitlines()) == 2


@pytest.mark.slow
@pytest.mark.parametrize("mixed_op,optim", [("BinaryGate", "BinaryGate"), ("GumbelSum", "GumbelAnnealing")])
def test_two_rank_single_path_ops_sample_the_same_path(tmp_path, mixed_op, optim):
    torchrun(tmp_path, darts_config(tmp_path / "exp", epochs=2, mixed_op=mixed_op, optim=optim), tmp_path / "dump")
    assert_same(*ranks(tmp_path / "dump"))


@pytest.mark.slow
def test_two_rank_spos_trains_the_same_paths_and_evolves_the_same_archs(tmp_path):
    cfg = darts_config(tmp_path / "exp", mixed_op="Index", optim="Evolution")
    cfg["optim"] = {"type": "Evolution"}
    cfg["estim"] = [{"type": "Uniform", "budget": 6, "batch_size": 3, "bn_steps": 2}]
    torchrun(tmp_path, cfg, tmp_path / "dump")
    r0, r1 = ranks(tmp_path / "dump")
    assert_same(r0, r1, alphas=False)
    assert [h["arch"] for h in r0["history"]] == [h["arch"] for h in r1["history"]] and len(r0["history"]) >= 6


@pytest.mark.slow
def test_sync_step_averages_like_ddp_and_skips_a_step_every_rank_when_one_is_not_finite(tmp_path):
    torchrun(tmp_path, None, tmp_path, script=Path(__file__).with_name("ddp_sync.py"))
    got = ranks(tmp_path)
    for r in got:
        assert r["ok"] is True
        assert torch.equal(r["used"], torch.full((3,), 2.0))  # (4 + nothing) / 2: an unused path counts as zero
        assert torch.equal(r["shared"], torch.full((3,), 1.5))
        assert r["unused"] is None  # no rank computed it: SGD skips it, as in one process
        assert torch.equal(r["buffer"], torch.full((2,), 5.0))
        assert r["ok_nan"] is False and r["shared_nan"] is None
        assert torch.equal(r["avg"][0], torch.tensor([0.5])) and torch.equal(r["avg"][1], torch.ones(2, 2))
        assert r["obj"] == {"rank": 0}


def test_sharded_sampler_splits_each_epoch_evenly_and_disjointly():
    shards = []
    for r in range(3):
        s = EpochSampler(10, seed=1)
        s.shard(r, 3)
        s.set_epoch(4)
        shards.append(list(s))
    assert all(len(x) == 3 for x in shards)
    assert len(set(sum(shards, []))) == 9
    whole = EpochSampler(10, seed=1)
    whole.set_epoch(4)
    assert sum(zip(*shards), ()) == tuple(list(whole)[:9])
    with pytest.raises(ConfigError, match="rank < replicas"):
        EpochSampler(10).shard(3, 3)


def test_without_torchrun_the_run_is_one_process():
    d = from_env({}, "cpu", env={})
    assert d == Distributed() and not d.enabled and d.writer
    t = [torch.ones(2)]
    assert d.average(t)[0] is t[0]
    with pytest.raises(ConfigError, match="unknown keys"):
        from_env({"backnd": "gloo"}, "cpu", env={})
    with pytest.raises(ConfigError, match="nccl needs a CUDA device"):
        from_env({"backend": "nccl"}, "cpu", env={"WORLD_SIZE": "2", "RANK": "0"})
