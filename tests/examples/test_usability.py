"""The usability setups in examples/usability run (shortened) and the README's lines-of-code table is what the
counting script prints."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from fxnas.config import build_experiment, load_config

ROOT = Path(__file__).resolve().parents[2]
FOLDER = ROOT / "examples" / "usability"
SHORT = ["trainer.max_steps_per_epoch=3", "export.onnx=false", "progress=false"]
SHORTER = {"setup_a.yaml": ["estim.0.budget=2", "trainer.epochs=1"],
           "setup_b.yaml": ["estim.1.epochs=1", "estim.2.epochs=1"],
           "setup_c.yaml": ["estim.0.budget=2", "trainer.epochs=1"]}


def count_loc():
    spec = importlib.util.spec_from_file_location("count_loc", FOLDER / "count_loc.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n != "setup_c.yaml" else n
                                  for n in sorted(SHORTER)])
def test_setup_runs_on_the_unedited_model(name, tmp_path):
    cfg = load_config(str(FOLDER / name), SHORT + SHORTER[name], out_root=str(tmp_path))
    summary = build_experiment(cfg).run()
    assert summary["arch"], summary
    assert 0.0 <= summary["test_metrics"]["acc"] <= 100.0
    assert (tmp_path / cfg["name"] / "subnet.pt").is_file()


def test_readme_table_is_the_scripts():
    mod = count_loc()
    table = mod.markdown(mod.table())
    assert table in (ROOT / "README.md").read_text(), "rerun examples/usability/count_loc.py into the README"


def test_no_python_beyond_the_model():
    mod = count_loc()
    assert mod.python_lines() == 0
    assert all(space >= 1 for _, _, _, space, _, _ in mod.table())
