"""Every Python code block of the docs runs: each page's blocks in order, as one script in a fresh process."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = ["docs/CONTRIBUTING.md", "docs/oneshot.md", "docs/training.md"]
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def blocks(page: str) -> list[str]:
    """The ```python blocks of ``page``."""
    return BLOCK.findall((ROOT / page).read_text())


@pytest.mark.parametrize("page", PAGES)
def test_docs_code_blocks_run(page: str, tmp_path) -> None:
    code = blocks(page)
    assert code, f"{page} has no python code blocks"
    script = tmp_path / "page.py"
    script.write_text("\n\n".join(code))
    res = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=600,
                         env={"PATH": "", "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "HOME": str(tmp_path)})
    assert res.returncode == 0, f"{page}: {res.stderr[-3000:]}"
