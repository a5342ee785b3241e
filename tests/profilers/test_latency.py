"""Latency: onnxruntime medians, and a per-op table whose prediction is the sum of its measured ops."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

import fxnas
from fxnas.modelfile import load_model
from fxnas.profilers.latency import LatencyTable, onnx_latency, single_op_module

TINY = fxnas.__file__.replace("__init__.py", "examples/tiny_net.py")


def test_onnx_latency_module_and_file(tmp_path: Path) -> None:
    m = load_model(TINY).eval()
    x = torch.randn(1, 3, 32, 32)
    r = onnx_latency(m, x, repeats=5, warmup=1)
    assert 0 < r["min_ms"] <= r["median_ms"] <= r["p90_ms"] and r["repeats"] == 5
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
