"""Each shim of fxnas.compat still reaches the torch internal it stands for."""

from __future__ import annotations

import copy
import pickle

import torch
import torch.fx as fx
from torch import nn

from fxnas import compat


def test_preserved_attributes_survive_deepcopy():
    gm = fx.symbolic_trace(nn.Linear(2, 2))
    marker = object()
    gm.meta.setdefault(compat.PRESERVED_ATTRIBUTES_KEY, {})["tag"] = marker
    assert copy.deepcopy(gm).tag is not None


def test_module_bases():
    convs = (nn.Conv1d(1, 1, 1), nn.Conv2d(1, 1, 1), nn.ConvTranspose2d(1, 1, 1))
    assert all(isinstance(m, compat.ConvNd) for m in convs)
    assert isinstance(nn.BatchNorm2d(2), compat.BatchNormBase)
    assert not isinstance(nn.LayerNorm(2), compat.BatchNormBase)


def test_fake_tensor_mode_infers_shapes_of_real_modules():
    with compat.fake_tensor_mode() as mode:
        y = nn.Conv2d(3, 5, 3, 2, 1)(mode.from_tensor(torch.empty(1, 3, 8, 8)))
    assert tuple(y.shape) == (1, 5, 4, 4)


def test_own_tensors_swaps_in_place():
    m = nn.BatchNorm1d(3)
    names = {k for _, k, _ in compat.own_tensors(m)}
    assert {"weight", "bias", "running_mean", "running_var"} <= names
    for store, k, _ in compat.own_tensors(m):
        if k == "running_mean":
            store[k] = torch.ones(3)
    assert torch.equal(m.running_mean, torch.ones(3))


def test_forget_tracer_class_keeps_pickles_free_of_the_tracer():
    class MyTracer(fx.Tracer):
        pass

    gm = fx.GraphModule(nn.Linear(2, 2), MyTracer().trace(nn.Linear(2, 2)))
    compat.forget_tracer_class(gm.graph)
    assert gm.graph._tracer_cls is None
    assert b"MyTracer" not in pickle.dumps(gm)


def test_optuna_trial_id_reaches_a_running_trial():
    import optuna

    study = optuna.create_study()
    first, second = study.ask(), study.ask()
    frozen = study.trials[1]
    trial = optuna.Trial(study, compat.optuna_trial_id(frozen))
    trial.report(0.5, 3)
    assert study.trials[1].intermediate_values == {3: 0.5} and study.trials[0].intermediate_values == {}
    assert compat.optuna_trial_id(second) == compat.optuna_trial_id(frozen) != compat.optuna_trial_id(first)
