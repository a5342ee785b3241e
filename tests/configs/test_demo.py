"""The packaged demo: it fixes its torch thread count, so its result is the same whatever the machine's."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from fxnas.config import load_config
from fxnas.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
# the demo's three stages, one short epoch each: enough steps for thread-split sums to show in the losses
SHORT = ["-o", "estim.0.epochs=1", "-o", "estim.1.epochs=1", "-o", "estim.2.epochs=1",
         "-o", "trainer.max_steps_per_epoch=4", "-o", "export.onnx=false", "-o", "export.test=false"]


def _env(threads: int) -> dict[str, str]:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    return env


def test_the_demo_result_does_not_depend_on_the_thread_count(tmp_path):
    # the premise: the environment sets torch's default thread count
    got = subprocess.run([sys.executable, "-c", "import torch; print(torch.get_num_threads())"],
                         env=_env(2), capture_output=True, text=True, check=True)
    assert got.stdout.strip() == "2"
    runs = {t: subprocess.Popen([sys.executable, "-m", "fxnas", "search", "-c", "demo", "--quiet",
                                 "--out-root", str(tmp_path / f"t{t}"), *SHORT],
                                env=_env(t), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for t in (1, 2)}
    for proc in runs.values():
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err
    history = [(tmp_path / f"t{t}" / "demo" / "history.jsonl").read_text() for t in (1, 2)]
    assert len(history[0].splitlines()) == 3
    assert history[0] == history[1]  # every metric to the last bit, every arch
    best = [(tmp_path / f"t{t}" / "demo" / "arch_best.yaml").read_text() for t in (1, 2)]
    assert best[0] == best[1]


def test_the_demo_sets_its_thread_count():
    assert load_config("demo")["threads"] == 1
    assert load_config("demo", ["threads=null"])["threads"] is None


@pytest.mark.parametrize("value", ["0", "-2", "two", "true", "1.5"])
def test_bad_thread_counts_are_one_line_errors(value):
    with pytest.raises(ConfigError, match=r"threads must be a positive integer or null .* got"):
        load_config("demo", [f"threads={value}"])
