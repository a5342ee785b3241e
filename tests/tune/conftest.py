"""Scripts the tuning tests run as external commands (plain Python, no torch: they start fast)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import optuna
import pytest

optuna.logging.set_verbosity(optuna.logging.WARNING)

BOWL = textwrap.dedent('''
    """-(x - 0.3)^2 - (y - 0.7)^2, with a report per step; fails for x > fail_above; sleeps per step."""
    import argparse, json, time
    p = argparse.ArgumentParser()
    p.add_argument("--x", type=float, required=True)
    p.add_argument("--y", type=float, default=0.7)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--sleep", type=float, default=0.0)
    p.add_argument("--fail_above", type=float, default=2.0)
    p.add_argument("--progress", default=None)
    a = p.parse_args()
    if a.x > a.fail_above:
        raise SystemExit("x too large")
    value = -(a.x - 0.3) ** 2 - (a.y - 0.7) ** 2
    for s in range(a.steps):
        if a.progress:
            open(a.progress, "a").write(f"{s}\\n")
        print(json.dumps({"step": s, "value": value * (a.steps - s)}), flush=True)
        time.sleep(a.sleep)
    print(value)
''')


@pytest.fixture
def bowl(tmp_path: Path) -> Path:
    """The bowl script, in tmp_path."""
    path = tmp_path / "bowl.py"
    path.write_text(BOWL)
    return path
