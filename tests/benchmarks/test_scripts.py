"""Each benchmark script runs end to end with its smallest flags (so the scripts cannot rot).

The scripts are imported and their ``main(argv)`` called in this process (one torch import for all); the
figures are not judged here, only that each script measures and returns them (and, for the DARTS step,
that fxnas's alphas equal the hand-written loop's, which the script asserts).
"""

from __future__ import annotations

import importlib
import math
import sys
from pathlib import Path

import pytest
import torch

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture()
def scripts(monkeypatch: pytest.MonkeyPatch):
    """Import a benchmark script by name (benchmarks/ on sys.path, torch's thread count restored after)."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    threads = torch.get_num_threads()
    yield lambda name: importlib.import_module(name)
    torch.set_num_threads(threads)
    for name in [m for m in sys.modules if m.startswith("_bench") or m.startswith("_darts6")]:
        sys.modules.pop(name, None)


def _finite(out: dict) -> bool:
    return bool(out) and all(math.isfinite(v) and v > 0 for v in out.values())


def test_subnet_vs_handwritten(scripts) -> None:
    out = scripts("subnet_vs_handwritten").main(["--size", "32", "--batch", "2", "--rounds", "2", "--reps", "1"])
    assert set(out) == {"forward", "train"} and _finite(out)


def test_supernet_overhead(scripts) -> None:
    out = scripts("supernet_overhead").main(["--batch", "2", "--size", "16", "--rounds", "2", "--reps", "1",
                                             "--archs", "1"])
    assert set(out) == {"index", "binary_gate", "softmax_sum"} and _finite(out)


def test_darts_step(scripts) -> None:
    out = scripts("darts_step").main(["--batch", "2", "--size", "16", "--rounds", "2", "--check-steps", "2",
                                      "--no-compile"])
    assert set(out) == {"fxnas"} and _finite(out)


def test_trace_time(scripts) -> None:
    out = scripts("trace_time").main(["--models", "resnet18", "--size", "32", "--repeats", "1"])
    assert set(out) == {"resnet18"} and all(v > 0 for v in out["resnet18"])


@pytest.mark.nb201
def test_optimizer_overhead(scripts) -> None:
    out = scripts("optimizer_overhead").main(["--budget", "12", "--seeds", "1"])
    assert set(out) == {"RegularizedEvolution", "ModelBased", "NSGA2"} and _finite(out)
