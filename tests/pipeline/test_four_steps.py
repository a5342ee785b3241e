"""search -> retrain the best arch from scratch -> export ONNX -> profile, end to end; a rerun skips them all
(tests/pipeline/test_runner.py checks what reruns when an input changes)."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
import torch
import yaml

from fxnas.pipeline import load_pipeline, run_pipeline

EXPERIMENT = {
    "name": "s", "progress": False,
    "model": {"type": "tiny_net", "width": 4},
    "construct": {"pattern": "conv3x3", "candidates": ["NC3", "DW3"], "mixed_op": "Index"},
    "data": {"type": "digits", "size": 8, "channels": 3, "batch_size": 32},
    "trainer": {"type": "Classification", "lr": 0.1, "max_steps_per_epoch": 4},
    "optim": "Random", "estim": [{"type": "SubNet", "budget": 2, "epochs": 1}], "export": {"materialize": False},
}
PIPELINE = {
    "name": "nas", "progress": False, "params": {"epochs": 1},
    "steps": {
        "search": {"type": "Search", "config": "exp.yaml"},
        "retrain": {"type": "Retrain", "config": "exp.yaml",
                    "inputs": {"arch": "search.arch", "epochs": "params.epochs"}},
        "export": {"type": "Export", "inputs": {"model": "retrain.model", "input_shape": "retrain.input_shape"}},
        "profile": {"type": "Profile", "repeats": 3,
                    "inputs": {"model": "retrain.model", "onnx": "export.onnx", "input_shape": "retrain.input_shape"}},
    },
}


@pytest.fixture
def pipeline_file(tmp_path):
    (tmp_path / "exp.yaml").write_text(yaml.safe_dump(EXPERIMENT))
    path = tmp_path / "pipe.yaml"
    path.write_text(yaml.safe_dump({**PIPELINE, "out_root": str(tmp_path / "out")}))
    return path


def test_search_retrain_export_profile_then_a_rerun_skips_them(pipeline_file, tmp_path):
    report = run_pipeline(load_pipeline(pipeline_file))
    assert {n: s["status"] for n, s in report.items()} == dict.fromkeys(PIPELINE["steps"], "done")
    out = {n: s["outputs"] for n, s in report.items()}
    assert out["retrain"]["arch"] == out["search"]["arch"]
    assert set(out["search"]["arch"].values()) <= {"NC3", "DW3"}
    model = torch.load(out["retrain"]["model"], weights_only=False).eval()
    assert not [m for m in model.modules() if type(m).__module__.startswith("fxnas.")]  # materialised
    assert out["profile"]["params"] == sum(p.numel() for p in model.parameters())
    assert out["profile"]["latency_ms"] > 0
    x = torch.randn(out["retrain"]["input_shape"])
    sess = ort.InferenceSession(out["export"]["onnx"])
    (got,) = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})
    with torch.no_grad():
        np.testing.assert_allclose(got, model(x).numpy(), rtol=1e-4, atol=1e-5)
    assert 0 <= out["retrain"]["metrics"]["acc"] <= 100
    stamp = (tmp_path / "out" / "nas" / "retrain" / "model.pt").stat().st_mtime_ns

    again = run_pipeline(load_pipeline(pipeline_file))
    assert {s["status"] for s in again.values()} == {"skipped"}
    assert {n: s["outputs"] for n, s in again.items()} == out
    assert (tmp_path / "out" / "nas" / "retrain" / "model.pt").stat().st_mtime_ns == stamp

