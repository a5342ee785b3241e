"""A NaN or divergent candidate is recorded as failed and the search goes on; a diverging supernet stops,
resumable, with a one-line message."""

from __future__ import annotations

import json

import pytest
import torch
import yaml
from click.testing import CliRunner
from torch import nn

from fxnas.candidates import CANDIDATES
from fxnas.cli.search_cmd import search
from fxnas.config import build_experiment, load_config
from fxnas.errors import DivergedError
from fxnas.optim import Result
from fxnas.train import TRAINERS


class NaNConv(nn.Module):
    """A conv whose output is NaN: every loss through it is NaN."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, stride, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x) * float("nan")


@pytest.fixture
def nan_candidate():
    with CANDIDATES.scoped():
        CANDIDATES.register("NANCONV", lambda spec: NaNConv(spec.in_channels, spec.out_channels, spec.stride))
        yield


def cfg(tmp_path, **changes):
    c = {"name": "f", "progress": False, "out_root": str(tmp_path),
         "model": {"type": "tiny_net", "width": 4},
         "construct": {"pattern": "conv3x3", "candidates": ["NANCONV", "NC3"], "share": "all"},
         "data": {"type": "digits", "size": 8, "channels": 3}, "trainer": {"max_steps_per_epoch": 3},
         "optim": {"type": "Grid"}, "estim": [{"type": "SubNet", "budget": 2, "epochs": 1, "bn_steps": 1}],
         "export": {"test": False}}
    c.update(changes)
    return c


def history(tmp_path) -> list[dict]:
    return [json.loads(s) for s in (tmp_path / "f" / "history.jsonl").read_text().splitlines()]


def test_a_nan_candidate_is_recorded_failed_and_the_search_goes_on(tmp_path, nan_candidate):
    summary = build_experiment(load_config(cfg(tmp_path))).run()
    rows = history(tmp_path)
    assert [r["arch"]["shared"] for r in rows] == ["NANCONV", "NC3"]  # grid order: the NaN arch came first
    assert "failed" in rows[0]["info"] and "nan" in rows[0]["info"]["failed"] and rows[0]["metrics"] == {}
    assert "failed" not in rows[1]["info"]
    assert summary["arch"] == {"shared": "NC3"} and summary["failed"] == 1  # the failure ranks last


def test_a_diverged_candidate_training_is_a_failure_with_its_reason(tmp_path, nan_candidate):
    c = cfg(tmp_path, trainer={"max_steps_per_epoch": 3, "max_diverged_steps": 2})
    exp = build_experiment(load_config(c))
    exp.run()
    rows = history(tmp_path)
    assert rows[0]["info"]["failed"].startswith("DivergedError: training diverged: 2 steps in a row")
    # the optimizer was told: its history holds the failure, scored below everything
    failed = [r for r in exp.optimizer.history if r.failed]
    assert len(failed) == 1 and exp.optimizer.score(failed[0]) == float("-inf")


def test_resume_does_not_replay_a_failed_candidate(tmp_path, nan_candidate):
    c = cfg(tmp_path, estim=[{"type": "SubNet", "budget": 2, "epochs": 1, "bn_steps": 1}])
    exp = build_experiment(load_config(c))
    exp.run()
    again = build_experiment(load_config(c))
    calls = []
    est = again.estimators[0]
    real = est.evaluate_arch
    est.evaluate_arch = lambda e, a: calls.append(a) or real(e, a)
    again.resumed = again.resume()
    again.stage = 0  # replay the stage: the cached results (the failure too) are not evaluated again
    est.run(again)
    assert calls == []


def test_a_nan_validation_metric_never_becomes_the_best(tmp_path):
    from fxnas.experiment import Experiment

    exp = Experiment(name="m", out_root=tmp_path, progress=False, objectives=["acc"])
    exp.record(Result({"a": 1}, {"acc": float("nan")}))
    exp.record(Result({"a": 2}, {"acc": 10.0}))
    assert exp.best.arch == {"a": 2} and exp.history[0].failed == "metric acc is nan"


def test_diverging_supernet_steps_are_skipped_counted_and_stop_the_run_resumably(tmp_path):
    trainer = TRAINERS.build("Classification", max_diverged_steps=3)
    model = nn.Linear(2, 2)
    trainer.configure(model, 10)
    before = model.weight.detach().clone()
    bad = (torch.tensor([[float("inf"), 0.0]]), torch.tensor([0]))
    assert trainer.train_step(model, bad) == {"diverged": 1.0}
    assert torch.equal(model.weight, before)  # a skipped step does not touch the weights
    assert "loss" in trainer.train_step(model, (torch.ones(1, 2), torch.tensor([0])))  # a good step resets the count
    trainer.train_step(model, bad), trainer.train_step(model, bad)
    with pytest.raises(DivergedError, match="3 steps in a row"):
        trainer.train_step(model, bad)
    # from the CLI: one line, a checkpoint left to resume from
    c = cfg(tmp_path, construct={"pattern": "conv3x3", "candidates": ["NC3", "DW3"], "mixed_op": "SoftmaxSum"},
            optim={"type": "DARTS"}, trainer={"lr": 1e12, "max_diverged_steps": 2, "max_steps_per_epoch": 20},
            estim=[{"type": "SuperNet", "epochs": 2}])
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(c))
    res = CliRunner().invoke(search, ["-c", str(path), "--quiet"])
    assert res.exit_code == 2 and "Traceback" not in res.output
    assert "training diverged: 2 steps in a row" in res.stderr and len(res.stderr.strip().splitlines()) == 1
    assert (tmp_path / "f" / "checkpoint.pt").exists()
    resumed = CliRunner().invoke(search, ["-c", str(path), "--quiet", "--resume",
                                          "-o", "trainer.max_diverged_steps=100000"])  # skips, then ends
    assert resumed.exit_code == 2  # weights blown up by lr 1e12: every further epoch fails, and says so
    assert "every result of the search failed" in resumed.stderr and "is nan" in resumed.stderr
    log = (tmp_path / "f" / "log.txt").read_text()
    assert "resumed f at stage 0" in log and "resuming with config changes: trainer.options.max_diverged_steps" in log
