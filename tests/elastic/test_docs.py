"""docs/elastic.md: its Python blocks run in order in one session."""

from __future__ import annotations

import re
from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / "docs" / "elastic.md"


def test_elastic_doc_blocks_run() -> None:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    assert len(blocks) >= 6
    env: dict = {"__name__": "elastic_doc"}
    for block in blocks:
        exec(compile(block, str(DOC), "exec"), env)  # noqa: S102 (the docs' own examples)
    assert env["predicted"]["params"] == sum(p.numel() for p in env["sub"].parameters())
