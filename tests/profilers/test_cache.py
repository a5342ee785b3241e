"""The latency cache: keyed by machine, runtime and op; shared between processes through one file."""

from __future__ import annotations

from pathlib import Path

import pytest

from fxnas.errors import ConfigError
from fxnas.profilers.cache import ENV_VAR, LatencyCache, default_cache_path, machine_key, open_cache
from fxnas.profilers.runtimes import Timing

T = Timing(1.0, 2.0, 0.5, 3.0, 0.25, 10, 2)


def test_get_put_by_machine_runtime_and_op(tmp_path: Path) -> None:
    c = LatencyCache(tmp_path / "c.sqlite")
    assert c.get("rt", "op") is None and len(c) == 0
    c.put("rt", "op", T)
    assert c.get("rt", "op") == T and c.get("rt2", "op") is None and c.get("rt", "op2") is None
    assert c.get("rt", "op", device="cuda-gpu") is None  # another device is another machine
    other = LatencyCache(tmp_path / "c.sqlite", machine="another machine")
    assert other.get("rt", "op") is None and len(other) == 1
    again = LatencyCache(tmp_path)  # a folder names its latency.sqlite; a new instance reads the same file
    assert isinstance(again, LatencyCache) and LatencyCache(tmp_path / "c.sqlite").get("rt", "op") == T
    assert list(c.entries("rt")) == [(machine_key(), "rt", "op")]


def test_machine_key_and_default_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert "cpu" in machine_key() and machine_key("NVIDIA H200").endswith("/NVIDIA H200")
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "x"))
    assert default_cache_path() == tmp_path / "x" / "latency.sqlite"
    assert open_cache(True).path == tmp_path / "x" / "latency.sqlite"
    assert open_cache(None) is None and open_cache(False) is None


def test_unwritable_cache_is_a_one_line_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(ConfigError, match="cannot open the latency cache"):
        LatencyCache(blocker / "sub" / "latency.sqlite")
    with pytest.raises(ConfigError, match="cache must be"):
        open_cache(3)
