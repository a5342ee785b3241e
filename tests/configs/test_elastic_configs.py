"""The packaged elastic configs: ofa (train -> progressive shrinking -> search under a MACs constraint ->
export) and elastic_random (the ModularNAS paper's Setup C: random search over elastic depth and width)."""

from __future__ import annotations

import pytest
import torch

from fxnas.config import build_experiment, load_config
from fxnas.elastic import cost, largest
from fxnas.profilers.onnx_export import run_onnx

SHORT_OFA = ["trainer.max_steps_per_epoch=3", "estim.0.epochs=1", "estim.0.budget=4", "estim.0.batch_size=2",
             "estim.0.bn_steps=2", "estim.0.eval_steps=2", "export.bn_recalibrate=2"]


def run(name: str, overrides: list[str], tmp_path) -> tuple[dict, object]:
    cfg = load_config(name, overrides, out_root=str(tmp_path))
    cfg["progress"] = False
    exp = build_experiment(cfg)
    return exp.run(), exp


def check_found_subnet(summary: dict, exp, tmp_path, name: str) -> torch.nn.Module:
    """The exported subnet is the found setting, physically smaller than the full network (fewer parameters
    and MACs than the largest setting), and its ONNX file computes what it computes."""
    full = cost(exp.model, largest(exp.model))
    found = cost(exp.model, summary["arch"])
    assert found["macs"] < full["macs"] and found["params"] < full["params"]
    sub = torch.load(tmp_path / name / "subnet.pt", weights_only=False).eval()
    assert sum(p.numel() for p in sub.parameters()) == found["params"] < full["params"]
    x = torch.randn(*exp.data.input_shape)  # the export's shape (batch 1), other values
    with torch.no_grad():
        want = sub(x)
    got = torch.from_numpy(run_onnx(tmp_path / name / "subnet.onnx", x)[0])
    torch.testing.assert_close(got, want, rtol=1e-3, atol=1e-4 * float(want.abs().max()))
    return sub


def test_ofa_runs_end_to_end_at_small_scale(tmp_path) -> None:
    """Every stage of progressive shrinking runs, the evolution's best meets the MACs constraint, and the
    exported subnet (subnet.pt, subnet.onnx) is smaller than the full net."""
    summary, exp = run("ofa", SHORT_OFA, tmp_path)
    phases = [r.info["phase"] for r in exp.history if "phase" in r.info]
    assert list(dict.fromkeys(phases)) == ["full", "kernel", "depth", "width"]
    assert summary["metrics"]["macs"] <= 6e5 and "test_metrics" in summary
    check_found_subnet(summary, exp, tmp_path, "ofa")


@pytest.mark.slow
def test_ofa_at_its_default_length(tmp_path) -> None:
    """The packaged length: the found subnet keeps at least 90 % test accuracy on digits under the constraint
    (the full network reaches about 98 %)."""
    summary, exp = run("ofa", [], tmp_path)
    assert summary["metrics"]["macs"] <= 6e5
    assert summary["test_metrics"]["acc"] >= 90.0
    check_found_subnet(summary, exp, tmp_path, "ofa")


@pytest.mark.slow
def test_elastic_random_at_its_default_length(tmp_path) -> None:
    """Setup C: random depth/width settings trained from scratch; the best reaches 90 % test accuracy."""
    summary, exp = run("elastic_random", ["export.onnx=true"], tmp_path)
    assert summary["results"] == 8
    assert {"macs", "params"} <= set(summary["metrics"]) and summary["test_metrics"]["acc"] >= 90.0
    assert set(summary["arch"]) == set(exp.space.discrete())
    assert {k.split(".")[0] for k in summary["arch"]} == {"width", "depth"}
