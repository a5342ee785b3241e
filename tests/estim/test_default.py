"""Default estimator: trains under the current/fixed arch, records per epoch, resumes mid-epoch exactly."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import torch
import yaml

from fxnas.config import build_experiment, load_config
from fxnas.errors import ConfigError
from fxnas.estim.default import Default, load_arch


def config(tmp_path, **changes: Any) -> dict[str, Any]:
    cfg = {
        "name": "d", "seed": 1, "out_root": str(tmp_path), "progress": False,
        "model": {"type": "tiny_net", "width": 6},
        "construct": {"pattern": "conv3x3", "candidates": ["ORIG", "NC3", "DW3"]},
        "data": {"type": "digits", "size": 8, "channels": 3, "batch_size": 32, "eval_batch_size": 128},
        "trainer": {"type": "Classification", "lr": 0.1, "epochs": 2},
        "optim": {"type": "Random"},
        "estim": [{"type": "Default"}],
        "export": {"materialize": False},
    }
    cfg.update(changes)
    return cfg


def build(cfg: dict[str, Any]):
    return build_experiment(load_config(copy.deepcopy(cfg)))


def test_default_trains_and_records_each_epoch(tmp_path):
    exp = build(config(tmp_path))
    summary = exp.run()
    assert [r.info["epoch"] for r in exp.history] == [1, 2]
    accs = [r.metrics["acc"] for r in exp.history]
    assert accs[-1] > 40.0  # chance is 10%
    assert exp.history[1].metrics["train_loss"] < exp.history[0].metrics["train_loss"]
    assert summary["metrics"]["acc"] == max(accs)
    assert all(r.arch == exp.space.current() for r in exp.history)
    assert (tmp_path / "d" / "checkpoint.pt").exists()


class Killed(RuntimeError):
    pass


def test_default_resumes_mid_epoch_exactly(tmp_path):
    cfg = config(tmp_path, name="ref", estim=[{"type": "Default", "checkpoint_steps": 4}])
    ref = build(cfg)
    ref.run()
    want = [r.metrics for r in ref.history]
    ref_weights = {k: v.clone() for k, v in ref.model.state_dict().items()}

    cfg["name"] = "run"
    exp = build(cfg)
    real_step, n = exp.trainer.train_step, {"steps": 0}

    def dying_step(model, batch):
        n["steps"] += 1
        if n["steps"] == 34 + 6:  # second epoch (34 steps each), between checkpoints at 4 and 8
            raise Killed
        return real_step(model, batch)

    exp.trainer.train_step = dying_step
    with pytest.raises(Killed):
        exp.run()
    assert len(exp.history) == 1
    again = build(cfg)
    again.run(resume=True)
    assert [r.metrics for r in again.history] == want  # exactly, not approximately
    for k, v in again.model.state_dict().items():
        assert torch.equal(v, ref_weights[k]), k


def test_default_resumed_in_the_first_epoch_trains_the_next_epoch_whole(tmp_path):
    # the skip of the resumed epoch must not shorten the epoch after it
    cfg = config(tmp_path, name="ref", estim=[{"type": "Default", "checkpoint_steps": 4}])
    ref = build(cfg)
    ref_steps = {"n": 0}
    real_ref = ref.trainer.train_step

    def counting(model, batch):
        ref_steps["n"] += 1
        return real_ref(model, batch)

    ref.trainer.train_step = counting
    ref.run()
    want = [r.metrics for r in ref.history]
    assert ref_steps["n"] == 2 * 34

    cfg["name"] = "run"
    exp = build(cfg)
    real_step, n = exp.trainer.train_step, {"steps": 0}

    def dying_step(model, batch):
        n["steps"] += 1
        if n["steps"] == 6:  # first epoch of two, after the checkpoint at step 4
            raise Killed
        return real_step(model, batch)

    exp.trainer.train_step = dying_step
    with pytest.raises(Killed):
        exp.run()
    assert exp.history == []
    again = build(cfg)
    real_again, done = again.trainer.train_step, {"n": 0}

    def count_again(model, batch):
        done["n"] += 1
        return real_again(model, batch)

    again.trainer.train_step = count_again
    again.run(resume=True)
    assert done["n"] == 2 * 34 - 4  # the 4 steps before the checkpoint are not repeated, nothing else is skipped
    assert [r.metrics for r in again.history] == want  # exactly, not approximately
    for k, v in again.model.state_dict().items():
        assert torch.equal(v, ref.model.state_dict()[k]), k


def test_default_on_a_gradient_supernet_records_the_derived_arch(tmp_path):
    cfg = config(tmp_path, optim={"type": "DARTS"}, estim=[{"type": "Default", "epochs": 1}],
                 construct={"pattern": "conv3x3", "candidates": ["NC3", "DW3", "IDT"], "mixed_op": "SoftmaxSum"},
                 trainer={"type": "Classification", "lr": 0.1, "epochs": 1, "max_steps_per_epoch": 2})
    exp = build(cfg)
    with torch.no_grad():
        for p in exp.space.arch_parameters():
            p[-1] += 1.0  # the alphas favour the last candidate; space.current() still says the first
    assert set(exp.space.current().values()) != {"IDT"}
    exp.run()
    assert exp.history[0].arch == exp.optimizer.best() and set(exp.history[0].arch.values()) == {"IDT"}
    # with a fixed arch the supernet runs that path: that arch is recorded
    fixed = {k: "DW3" for k in exp.space.current()}
    cfg["estim"] = [{"type": "Default", "epochs": 1, "arch": fixed}]
    cfg["name"] = "fixed"
    exp2 = build(cfg)
    exp2.run()
    assert exp2.history[0].arch == fixed


def test_fixed_arch_is_applied(tmp_path):
    arch = {"stem.0": "DW3", "res1.conv1": "NC3"}
    exp = build(config(tmp_path, estim=[{"type": "Default", "epochs": 1, "arch": arch}]))
    exp.run()
    assert exp.history[0].arch["stem.0"] == "DW3" and exp.history[0].arch["res1.conv1"] == "NC3"


def test_load_arch_from_yaml_files(tmp_path):
    (tmp_path / "a.yaml").write_text(yaml.safe_dump({"arch": {"x": "NC3"}, "metrics": {"acc": 1.0}}))
    (tmp_path / "b.yaml").write_text(yaml.safe_dump({"x": "DW3"}))
    assert load_arch(str(tmp_path / "a.yaml")) == {"x": "NC3"}
    assert load_arch(str(tmp_path / "b.yaml")) == {"x": "DW3"}
    with pytest.raises(ConfigError, match="does not exist"):
        load_arch(str(tmp_path / "missing.yaml"))


def test_unknown_param_in_arch_is_a_config_error(tmp_path):
    exp = build(config(tmp_path, estim=[{"type": "Default", "epochs": 1, "arch": {"nope": "NC3"}}]))
    with pytest.raises(ConfigError, match="no param 'nope'"):
        exp.run()


def test_warmup_stage_does_not_rank(tmp_path):
    exp = build(config(tmp_path, estim=[{"type": "Default", "epochs": 1}, {"type": "Default", "epochs": 1}]))
    exp.run()
    assert [r.info["rank"] for r in exp.history] == [False, True]
    assert exp.best is exp.history[1]


def test_bad_options():
    with pytest.raises(ConfigError, match="epochs"):
        Default(epochs=-1)
    with pytest.raises(ConfigError, match="unknown options"):
        Default(epoch=1)


def test_resuming_with_a_changed_config_warns(tmp_path):
    cfg = config(tmp_path, trainer={"type": "Classification", "lr": 0.1, "epochs": 1, "max_steps_per_epoch": 3})
    build(cfg).run()
    cfg["trainer"]["lr"] = 0.2
    again = build(cfg)
    again.run(resume=True)
    assert "resuming with config changes: trainer.options.lr: 0.1 -> 0.2" in (tmp_path / "d" / "log.txt").read_text()
