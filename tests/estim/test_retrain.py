"""Retrain: DARTS's augment stage (label smoothing, auxiliary head, DropPath schedule) after a DARTS search,
the exported subnet is the retrained one, fine-tune vs from scratch, resume at the last epoch, bad options."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import torch
import yaml

import fxnas
from fxnas.config import build_experiment, load_config
from fxnas.errors import ConfigError
from fxnas.passes.train_only import drop_path, has_auxiliary_outputs
from fxnas.train import Auxiliary, LabelSmoothing


def build(cfg: dict[str, Any]):
    return build_experiment(load_config(copy.deepcopy(cfg)))


def tiny(tmp_path, **changes: Any) -> dict[str, Any]:
    cfg = {
        "name": "r", "seed": 0, "out_root": str(tmp_path), "progress": False,
        "model": {"type": "tiny_net", "width": 6},
        "construct": {"pattern": "conv3x3", "candidates": ["ORIG", "NC3", "DW3"]},
        "data": {"type": "digits", "size": 8, "channels": 3, "batch_size": 32, "test_fraction": 0.2},
        "trainer": {"type": "Classification", "lr": 0.1, "max_steps_per_epoch": 6},
        "optim": "Random",
        "estim": [{"type": "Retrain", "epochs": 2}],
        "export": {"materialize": False},
    }
    cfg.update(changes)
    return cfg


def augment_config(tmp_path, search: bool) -> dict[str, Any]:
    """DARTS cells with an auxiliary head; with ``search`` a DARTS search comes first, else the arch is the
    space's current one (Index mixed ops)."""
    model = {"type": "darts", "C": 4, "layers": 3, "steps": 2, "multiplier": 2, "auxiliary": True}
    augment = {"type": "Retrain", "epochs": 2, "label_smoothing": 0.1, "auxiliary": 0.4, "drop_path": 0.2}
    if not search:
        model = {**model, "mixed_op": "Index", "candidates": ["SEP3", "MAX3", "IDT"]}  # current: SEP3 everywhere
        return tiny(tmp_path, name="augment", model=model, construct=None,
                    estim=[augment], export={"materialize": True})
    return tiny(tmp_path, name="augment", model=model, construct=None, optim={"type": "DARTS", "derive": "darts_cell"},
                estim=[{"type": "SuperNet", "epochs": 1, "rank": False, "bn_recalibrate": 1}, augment],
                export={"materialize": True, "onnx": True})


def check_augment(exp, tmp_path, rates: list[float]) -> dict[str, Any]:
    est = exp.estimators[-1]
    kinds = [type(c) for c in est.build_trainer(exp.trainer).criteria.criteria]
    assert kinds == [LabelSmoothing, Auxiliary]
    summary = exp.run()
    assert rates == [0.0, 0.0, 0.1, 0.0]  # drop_path * epoch / epochs before each epoch, 0 to evaluate
    result = exp.history[-1]
    assert result.info["estimator"] == "Retrain" and exp.best is result
    assert {"acc", "test_acc", "test_loss", "params", "train_loss"} <= set(result.metrics)
    assert b"fxnas" not in (tmp_path / "augment" / "subnet.pt").read_bytes()  # it loads without fxnas
    sub = torch.load(tmp_path / "augment" / "subnet.pt", weights_only=False).eval()
    assert not has_auxiliary_outputs(sub)
    assert not [n for n in sub.graph.nodes if n.target is drop_path]
    assert not [n for n, m in sub.named_modules() if type(m).__module__.startswith("fxnas.")]
    final = est.final_subnet(exp, result.arch)
    x = exp.data.example_input()
    with torch.no_grad():
        torch.testing.assert_close(sub(x), final.eval()(x))
    assert summary["test_metrics"]["acc"] == pytest.approx(result.metrics["test_acc"])
    return summary


@pytest.fixture
def drop_rates(monkeypatch) -> list[float]:
    """Every rate Retrain gives set_drop_path, in order."""
    import fxnas.estim.retrain as retrain

    rates: list[float] = []
    real = retrain.set_drop_path
    monkeypatch.setattr(retrain, "set_drop_path", lambda net, rate: (rates.append(rate), real(net, rate)))
    return rates


def test_augment_with_smoothing_auxiliary_and_drop_path(tmp_path, drop_rates) -> None:
    exp = build(augment_config(tmp_path, search=False))
    check_augment(exp, tmp_path, drop_rates)
    assert exp.history[-1].arch == exp.space.current()


@pytest.mark.slow
def test_darts_search_then_augment(tmp_path, drop_rates) -> None:
    exp = build(augment_config(tmp_path, search=True))
    check_augment(exp, tmp_path, drop_rates)
    assert exp.history[-1].arch == exp.optimizer.best()
    assert (tmp_path / "augment" / "subnet.onnx").exists()


def test_fine_tune_starts_from_the_supernet_weights_and_retrain_from_scratch(tmp_path) -> None:
    exp = build(tiny(tmp_path, name="ft", estim=[{"type": "Retrain", "epochs": 0, "from_scratch": False}]))
    exp.run()
    arch = exp.history[-1].arch
    x = exp.data.example_input()
    want = fxnas.materialize(exp.model, arch).eval()
    ft = exp.estimators[0].final_subnet(exp, arch).eval()
    scratch_exp = build(tiny(tmp_path, name="scratch", estim=[{"type": "Retrain", "epochs": 0}]))
    scratch_exp.run()
    scratch = scratch_exp.estimators[0].final_subnet(scratch_exp, arch).eval()
    with torch.no_grad():
        torch.testing.assert_close(ft(x), want(x))
        assert not torch.allclose(scratch(x), want(x))
    assert exp.estimators[0].final_subnet(exp, {**arch, next(iter(arch)): "NC3"}) is None  # another arch


class Crash(Exception):
    pass


def test_retrain_resumes_at_its_last_epoch(tmp_path) -> None:
    cfg = tiny(tmp_path, name="full", estim=[{"type": "Retrain", "epochs": 3, "drop_path": 0.0}])
    full = build(cfg)
    full.run()
    broken = build({**cfg, "name": "broken"})
    real, writes = broken.checkpoint, []

    def crash_after_second():
        writes.append(real())
        if len(writes) == 2:
            raise Crash
        return writes[-1]

    broken.checkpoint = crash_after_second
    with pytest.raises(Crash):
        broken.run()
    assert broken.estimators[0].epoch == 2
    resumed = build({**cfg, "name": "broken"})
    resumed.run(resume=True)
    assert [(r.arch, r.metrics) for r in resumed.history] == [(r.arch, r.metrics) for r in full.history]
    arch = full.history[-1].arch
    a = full.estimators[0].final_subnet(full, arch).state_dict()
    b = resumed.estimators[0].final_subnet(resumed, arch).state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_arch_from_a_file_and_bad_options(tmp_path) -> None:
    (tmp_path / "arch.yaml").write_text(yaml.safe_dump({"arch": {"conv1": "NC3"}}))
    exp = build(tiny(tmp_path, name="file", estim=[{"type": "Retrain", "epochs": 0,
                                                     "arch": str(tmp_path / "arch.yaml")}]))
    with pytest.raises(Exception, match="conv1"):
        exp.run()  # an arch naming a param this space lacks is refused by the space
    with pytest.raises(ConfigError, match="auxiliary needs a model returning"):
        build(tiny(tmp_path, name="aux", estim=[{"type": "Retrain", "epochs": 1, "auxiliary": 0.4}])).run()
    with pytest.raises(ConfigError, match="drop_path has no op"):
        build(tiny(tmp_path, name="dp", construct={"pattern": "conv3x3", "candidates": ["NIL"]},
                   estim=[{"type": "Retrain", "epochs": 1, "drop_path": 0.2}])).run()
    with pytest.raises(ConfigError, match="label_smoothing replaces CrossEntropy"):
        build(tiny(tmp_path, name="ls", trainer={"type": "Classification", "criteria": ["MSE"]},
                   estim=[{"type": "Retrain", "epochs": 1, "label_smoothing": 0.1}])).run()
    for bad in ({"drop_path": 1.0}, {"label_smoothing": -0.1}, {"epochs": -1}, {"lr": 0.0}):
        with pytest.raises(ConfigError):
            build(tiny(tmp_path, name="bad", estim=[{"type": "Retrain", **bad}]))
