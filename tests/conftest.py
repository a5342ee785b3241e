"""Shared fixtures: seeded randomness, BatchNorm statistics that make outputs non-trivial, helpers."""

from __future__ import annotations

import os
from typing import Any

import pytest
import torch
from torch import nn

# two shared cores: keep each test process single-threaded
torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1") or 1))


def randomize_bn(model: nn.Module, seed: int = 0) -> nn.Module:
    """Give every BatchNorm random statistics and affine params, in place, so eval outputs are far from zero."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                n = m.num_features
                if m.running_mean is not None:
                    m.running_mean.copy_(torch.randn(n, generator=g) * 0.1)
                    m.running_var.copy_(torch.rand(n, generator=g) * 0.5 + 0.75)
                if m.affine:
                    m.weight.copy_(torch.rand(n, generator=g) * 0.5 + 0.75)
                    m.bias.copy_(torch.randn(n, generator=g) * 0.1)
    return model


def assert_close(got: Any, want: Any, rtol: float = 1e-4, atol_scale: float = 1e-5) -> None:
    """Assert two tensors (or tuples of them) agree, with atol relative to the largest reference magnitude."""
    if isinstance(want, (tuple, list)):
        assert isinstance(got, (tuple, list)) and len(got) == len(want)
        for g, w in zip(got, want):
            assert_close(g, w, rtol, atol_scale)
        return
    if isinstance(want, dict):  # e.g. torchvision's GoogLeNetOutputs-like dict outputs
        assert set(got) == set(want)
        for k in want:
            assert_close(got[k], want[k], rtol, atol_scale)
        return
    assert got.shape == want.shape, (got.shape, want.shape)
    scale = max(float(want.detach().abs().max()), 1e-6)
    torch.testing.assert_close(got, want, rtol=rtol, atol=atol_scale * scale)


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Tests marked ``nb201`` need the NAS-Bench-201 tables, which live outside the repository."""
    if item.get_closest_marker("nb201") is not None:
        from fxnas.errors import FxnasError
        from fxnas.spaces.nb201.table import table_dir

        try:
            table_dir()
        except FxnasError as exc:
            pytest.skip(f"NAS-Bench-201 tables not found ({exc}); set FXNAS_NB201_DIR")


@pytest.fixture
def rand_bn():
    """The randomize_bn helper as a fixture."""
    return randomize_bn


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


# two short finished searches on tiny_net / digits, shared by the export, profile and report tests
_RUN_BASE: dict[str, Any] = {
    "seed": 0, "threads": 1,
    "model": {"type": "tiny_net", "width": 8},
    "construct": {"pattern": "conv3x3", "candidates": ["NC3", "DW3", "IDT"]},
    "data": {"type": "digits", "size": 16, "channels": 3, "batch_size": 32, "eval_batch_size": 64},
}
FINISHED_RUNS: dict[str, dict[str, Any]] = {
    # a gradient method (alphas.jsonl: the BinaryGate alphas per epoch)
    "grad": {**_RUN_BASE, "construct": {**_RUN_BASE["construct"], "mixed_op": "BinaryGate"},
             "trainer": {"type": "Classification", "lr": 0.1, "max_steps_per_epoch": 4},
             "optim": {"type": "BinaryGate", "lr": 0.05},
             "estim": [{"type": "Default", "epochs": 1}, {"type": "SuperNet", "epochs": 3}],
             "export": {"onnx": False, "bn_recalibrate": 2}},
    # a two-objective discrete search (pareto.json)
    "pareto": {**_RUN_BASE, "objectives": ["max:acc", "min:params"], "optim": {"type": "Random"},
               "trainer": {"type": "Classification", "lr": 0.1, "epochs": 1, "max_steps_per_epoch": 2},
               "estim": [{"type": "SubNet", "budget": 5, "costs": ["params", "macs"]}],
               "export": {"onnx": False}},
}


@pytest.fixture(scope="session")
def finished_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """{"grad": folder, "pareto": folder}: the outputs of the two FINISHED_RUNS searches (run once per session)."""
    from fxnas.config import build_experiment, load_config
    from fxnas.console import make_console

    root = tmp_path_factory.mktemp("runs")
    out = {}
    for name, cfg in FINISHED_RUNS.items():
        exp = build_experiment(load_config(cfg, name=name, out_root=str(root)),
                               console=make_console(stderr=True, quiet=True), progress=False)
        exp.run()
        out[name] = root / name
    return out
