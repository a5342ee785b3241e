"""Every packaged config, at its default length, ends with a sensible result: a floor on its final accuracy.

Trained configs: the exported subnet's test accuracy on digits (10 classes; chance is 10 %). NAS-Bench-201
configs: the found arch's CIFAR-10 test accuracy in the table (the optimum is 94.37 %). The floors sit a few
points under what each config reaches with one torch thread, so that another CPU's rounding still passes
but a search that stops searching (or a subnet exported untrained) does not.
"""

from __future__ import annotations

import pytest

from fxnas.config import build_experiment, load_config, packaged_configs

TEST_ACC_FLOORS = {  # test accuracy (%) of the exported subnet
    "demo": 93.0, "darts": 94.0, "darts2": 94.0, "directgrad": 94.0, "snas": 90.0,
    "proxyless_g": 94.0, "proxyless_r": 94.0, "spos": 91.0, "ofa": 94.0, "elastic_random": 94.0,
    "proxyless_latency": 90.0, "pareto_latency": 85.0,
}
NB201_FLOORS = {  # cifar10_test_200ep (%) of the found arch
    "nb201_random": 93.0, "nb201_grid": 91.5, "nb201_rea": 93.5, "nb201_evolution": 93.5,
    "nb201_smbo": 93.5, "nb201_nsga2": 93.5,
}


def run(name: str, out_root: str) -> dict:
    cfg = load_config(name, ["export.onnx=false"], out_root=out_root)
    cfg["progress"] = False
    return build_experiment(cfg).run()


def test_every_packaged_config_has_a_floor():
    assert sorted({**TEST_ACC_FLOORS, **NB201_FLOORS}) == packaged_configs()


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(TEST_ACC_FLOORS))
def test_trained_config_reaches_its_floor(name, tmp_path):
    summary = run(name, str(tmp_path))
    assert summary["test_metrics"]["acc"] >= TEST_ACC_FLOORS[name], summary


@pytest.mark.slow
@pytest.mark.nb201
@pytest.mark.parametrize("name", sorted(NB201_FLOORS))
def test_nb201_config_finds_a_good_arch(name, tmp_path):
    summary = run(name, str(tmp_path))
    assert summary["metrics"]["cifar10_test_200ep"] >= NB201_FLOORS[name], summary
