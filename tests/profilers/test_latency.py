"""Latency: onnxruntime timings, the per-op table, the disk cache (a second run times nothing), candidate timings
at their slots, latency trees."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

import fxnas
from fxnas.errors import ConfigError
from fxnas.modelfile import load_model
from fxnas.profilers.latency import LatencyProfiler, LatencyTable, latency_tree, onnx_latency, single_op_module
from fxnas.profilers.runtimes import Runtime
from fxnas.profilers.tree import arch_weights

TINY = fxnas.__file__.replace("__init__.py", "examples/tiny_net.py")


def test_onnx_latency_module_and_file(tmp_path: Path) -> None:
    m = load_model(TINY).eval()
    x = torch.randn(1, 3, 32, 32)
    r = onnx_latency(m, x, repeats=5, warmup=1)
    assert 0 < r["min_ms"] <= r["median_ms"] <= r["p90_ms"] <= r["max_ms"] and r["repeats"] == 5
    assert r["spread_ms"] >= 0
    path = fxnas.export_onnx(m, x, tmp_path / "m.onnx")
    assert onnx_latency(path, x, repeats=3, warmup=1)["median_ms"] > 0


def test_table_measures_each_op_once_and_sums(tmp_path: Path) -> None:
    m = load_model(TINY).eval()
    x = torch.randn(1, 3, 32, 32)
    table = LatencyTable(repeats=3, warmup=1)
    pred = table.predict(m, x)
    ops = table.ops(m, x)
    keys = [k for _, _, k in ops]
    assert table.measured == len(set(keys)) == len(table)
    assert len(set(keys)) < len(keys)  # res1's two 3x3 convs share a key: measured once
    assert pred == pytest.approx(sum(table.entries[k] for k in keys))
    assert table.predict(m, x) == pytest.approx(pred) and table.measured == len(table)  # all cached
    other = LatencyTable.load(table.save(tmp_path / "t.json"))
    assert other.entries == table.entries and other.predict(m, x) == pytest.approx(pred) and other.measured == 0
    # a different input size is a different op
    table.predict(m, torch.randn(1, 3, 16, 16))
    assert table.measured > len(set(keys))


def test_single_op_module_runs_the_op() -> None:
    m = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU())
    gm = fxnas.trace(m, torch.randn(1, 3, 8, 8))
    node = next(n for n in gm.graph.nodes if n.op == "call_module" and n.target == "0")
    sub, inputs = single_op_module(gm, node)
    x = torch.randn(1, 3, 8, 8)
    assert len(inputs) == 1 and inputs[0].op == "placeholder"
    torch.testing.assert_close(sub(x), m[0](x))


def _supernet(mixed_op: str = "Index") -> nn.Module:
    torch.manual_seed(0)
    return fxnas.searchify(load_model(TINY), "conv3x3", ["NC3", "DW3", "IDT"], torch.randn(2, 3, 16, 16),
                           mixed_op=mixed_op)


def test_a_second_run_on_the_same_machine_times_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sn = _supernet()
    cache = tmp_path / "latency.sqlite"
    first = LatencyProfiler("onnxruntime", cache=cache, repeats=2, warmup=0)
    tree, cands = latency_tree(sn, first), first.candidates(sn)
    assert first.measured > 0
    real = Runtime.measure

    def no_timing(*a, **k):
        raise AssertionError("timed again")

    monkeypatch.setattr(Runtime, "measure", no_timing)
    second = LatencyProfiler("onnxruntime", cache=cache, repeats=2, warmup=0)  # a new process would do this
    tree2, cands2 = latency_tree(sn, second), second.candidates(sn)
    assert second.measured == 0 and tree2 == tree and cands2 == cands
    arch = sn.space.sample(1)
    assert tree2.evaluate(arch) == tree.evaluate(arch)
    with pytest.raises(AssertionError, match="timed again"):  # another runtime setting is not in the cache
        latency_tree(sn, LatencyProfiler("onnxruntime", cache=cache, repeats=2, warmup=0, threads=2))
    monkeypatch.setattr(Runtime, "measure", real)


def test_candidates_are_timed_at_their_slot_inputs(monkeypatch: pytest.MonkeyPatch) -> None:
    sn = _supernet()
    seen: list[tuple[str, tuple[int, ...]]] = []
    real = Runtime.measure

    def spy(self, module, example_inputs, *a, **k):
        seen.append((type(module).__name__, tuple(example_inputs[0].shape)))
        return real(self, module, example_inputs, *a, **k)

    monkeypatch.setattr(Runtime, "measure", spy)
    prof = LatencyProfiler("torch", repeats=2, warmup=0)
    cands = prof.candidates(sn)
    assert set(cands) == set(sn.space.discrete())
    assert all(set(v) == {"NC3", "DW3", "IDT"} for v in cands.values())
    shapes = {s for _, s in seen}
    assert all(s[0] == 1 for s in shapes) and (1, 3, 16, 16) in shapes  # batch 1, the stem slot sees the input
    assert len(seen) == prof.measured < 3 * len(cands)  # equal options at equal shapes are timed once


def test_latency_tree_expectation_moves_with_the_alphas() -> None:
    sn = _supernet("SoftmaxSum")
    tree = latency_tree(sn, LatencyProfiler("torch", repeats=3, warmup=1))
    e = tree.expected(arch_weights(sn.space), "latency_ms")
    alphas = sn.space.arch_parameters()
    grads = torch.autograd.grad(e, alphas)
    with torch.no_grad():
        for a, g in zip(alphas, grads):
            a -= 50.0 * g / (g.norm() + 1e-12)
    assert float(tree.expected(arch_weights(sn.space), "latency_ms").detach()) < float(e.detach())
    cheapest = {t.param: min(t.options, key=lambda k: t.options[k].fixed["latency_ms"]) for t in tree.terms}
    assert tree.evaluate(cheapest)["latency_ms"] <= float(e.detach())


def test_profiler_options_are_checked() -> None:
    with pytest.raises(ConfigError, match="statistic must be one of"):
        LatencyProfiler(statistic="mean")
    p = LatencyProfiler(flush_mb=32)
    assert p.runtime_key().endswith("/flush=32MiB") and LatencyProfiler().runtime_key() == p.runtime.key()
