"""Runtimes: timing statistics, onnxruntime / torch eager / torch.compile, thread settings, bad options."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from fxnas.errors import ConfigError, RegistryError
from fxnas.profilers.runtimes import RUNTIMES, OnnxRuntime, Timing, TorchCompile, TorchEager, build_runtime


def test_timing_statistics() -> None:
    t = Timing.from_samples([5.0, 1.0, 2.0, 3.0, 4.0, 100.0, 6.0, 7.0, 8.0, 9.0, 10.0], warmup=2)
    assert (t.median_ms, t.min_ms, t.max_ms, t.p90_ms, t.repeats, t.warmup) == (6.0, 1.0, 100.0, 10.0, 11, 2)
    assert t.spread_ms == pytest.approx(8.5 - 3.5) and t.spread == pytest.approx(5.0 / 6.0)
    assert Timing.from_dict(t.to_dict()) == t
    with pytest.raises(ConfigError, match="at least one"):
        Timing.from_samples([], 0)


NET = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 8 * 8, 4))
X = torch.randn(1, 3, 8, 8)


@pytest.mark.parametrize("runtime", [OnnxRuntime(threads=1), TorchEager(threads=1),
                                     TorchCompile(threads=1, backend="eager")])
def test_each_runtime_times_a_module(runtime) -> None:
    before = torch.get_num_threads()
    t = runtime.measure(NET, X, repeats=4, warmup=1)
    assert t.repeats == 4 and 0 < t.min_ms <= t.median_ms <= t.p90_ms <= t.max_ms
    assert torch.get_num_threads() == before and NET.training  # the caller's module and settings stay
    assert "threads=1" in runtime.key()


def test_runtime_keys_name_what_changes_a_latency() -> None:
    keys = {OnnxRuntime(threads=1).key(), OnnxRuntime(threads=2).key(), OnnxRuntime(opset=17).key(),
            TorchEager().key(), TorchEager(threads=2).key(), TorchCompile(backend="eager").key(), TorchCompile().key()}
    assert len(keys) == 7
    assert "CPUExecutionProvider" in OnnxRuntime().key() and torch.__version__ in TorchEager().key()


def test_flush_is_untimed_and_keys_differ() -> None:
    warm = TorchEager().measure(NET, X, repeats=3, warmup=0)
    cold = TorchEager().measure(NET, X, repeats=3, warmup=0, flush_mb=8)
    assert cold.median_ms < 50 * max(warm.median_ms, 0.01)  # writing 8 MiB takes ms; it is outside the timing
    with pytest.raises(ConfigError, match="flush_mb >= 0"):
        TorchEager().measure(NET, X, flush_mb=-1)


def test_bad_runtime_options() -> None:
    with pytest.raises(ConfigError, match="no execution provider 'NoSuchExecutionProvider'.*CPUExecutionProvider"):
        OnnxRuntime(provider="NoSuchExecutionProvider")
    with pytest.raises(ConfigError, match="threads must be an integer >= 1"):
        TorchEager(threads=0)
    with pytest.raises(ConfigError, match="unknown torch device"):
        TorchEager(device="tpu7")
    with pytest.raises(ConfigError, match="bad options.*valid"):
        build_runtime("torch", provider="CPU")
    with pytest.raises(RegistryError, match="did you mean onnxruntime"):
        build_runtime("onnxruntim")
    with pytest.raises(ConfigError, match="times modules, not files"):
        TorchEager().prepare("model.onnx", X)
    assert sorted(RUNTIMES.names()) == ["onnxruntime", "torch", "torch_compile"]


@pytest.mark.slow
def test_torch_compile_inductor() -> None:
    t = TorchCompile(threads=1).measure(NET, X, repeats=5, warmup=1)  # compiles C++ kernels: minutes on 2 cores
    assert t.median_ms > 0
