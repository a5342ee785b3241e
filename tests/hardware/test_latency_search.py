"""Done-when checks of hardware-aware search: the latency loss gives a faster arch at comparable accuracy, and
the Pareto search over accuracy and latency writes its front and plot."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from fxnas.config import build_experiment, load_config
from fxnas.profilers.latency import LatencyProfiler


def _run(name: str, out_root: Path, overrides: list[str]) -> tuple[dict, object]:
    cfg = load_config(name, ["export.onnx=false", *overrides], out_root=str(out_root))
    cfg["progress"] = False
    exp = build_experiment(cfg)
    return exp.run(), exp


@pytest.mark.slow
def test_latency_loss_finds_a_faster_arch_at_comparable_accuracy(tmp_path: Path) -> None:
    """proxyless_latency against the same search without its latency loss (``optim.cost=null``): the found
    subnet's measured latency (onnxruntime, 1 thread, median of 100 runs) is lower, its test accuracy within
    3 points; the latency table's figures for both archs are in the message."""
    torch.set_num_threads(1)
    with_loss, exp_a = _run("proxyless_latency", tmp_path, [])
    without, exp_b = _run("proxyless_latency", tmp_path, ["optim.cost=null", "name=no_latency_loss"])
    profiler = LatencyProfiler("onnxruntime", cache=None, repeats=100, warmup=10, threads=1)
    x = torch.randn(1, 3, 16, 16)
    measured = [profiler.value(profiler.measure(torch.load(s["subnet"], weights_only=False).eval(), (x,)))
                for s in (with_loss, without)]
    tree = exp_a.optimizer.cost.tree
    table = [float(tree.evaluate(e.optimizer.best())["latency_ms"]) for e in (exp_a, exp_b)]
    acc = [s["test_metrics"]["acc"] for s in (with_loss, without)]
    figures = (f"with the latency loss: {measured[0]:.4f} ms measured, {table[0]:.4f} ms in the table, "
               f"acc {acc[0]:.2f} %, arch {exp_a.optimizer.best()}; without: {measured[1]:.4f} ms measured, "
               f"{table[1]:.4f} ms in the table, acc {acc[1]:.2f} %, arch {exp_b.optimizer.best()}")
    assert table[0] < table[1] and measured[0] < measured[1], figures
    assert acc[0] >= acc[1] - 3.0, figures


@pytest.mark.slow
def test_pareto_search_over_accuracy_and_latency_writes_its_front_and_plot(tmp_path: Path) -> None:
    summary, exp = _run("pareto_latency", tmp_path, [])
    folder = Path(exp.out_dir)
    front = json.loads((folder / "pareto.json").read_text())
    assert (folder / "pareto.png").stat().st_size > 1000
    points = front["front"] if isinstance(front, dict) else front
    assert points, front
    metrics = [p["metrics"] for p in points]
    assert all("acc" in m and m["latency_ms"] > 0 for m in metrics), metrics
    # a front: no point is at least as good in both and better in one than another
    for a in metrics:
        assert not any(b["acc"] >= a["acc"] and b["latency_ms"] <= a["latency_ms"] and b != a
                       and (b["acc"] > a["acc"] or b["latency_ms"] < a["latency_ms"]) for b in metrics), metrics
