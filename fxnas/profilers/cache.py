"""The on-disk latency cache: timings keyed by machine, runtime and op (structure + input shapes).

One SQLite file (safe with several processes writing); by default ``$FXNAS_CACHE_DIR/latency.sqlite``, else
``$XDG_CACHE_HOME/fxnas/latency.sqlite``, else ``~/.cache/fxnas/latency.sqlite``. A second run on the same
machine with the same runtime finds every op it measured before and times nothing.
"""

from __future__ import annotations

import functools
import json
import os
import platform
import sqlite3
import time
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from .runtimes import Timing

ENV_VAR = "FXNAS_CACHE_DIR"
_SCHEMA = ("CREATE TABLE IF NOT EXISTS timings (machine TEXT, runtime TEXT, op TEXT, timing TEXT, created REAL, "
           "PRIMARY KEY (machine, runtime, op))")


def default_cache_path() -> Path:
    """Where the latency cache lives unless one is named."""
    root = os.environ.get(ENV_VAR)
    if root:
        return Path(root) / "latency.sqlite"
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".cache"
    return base / "fxnas" / "latency.sqlite"


@functools.lru_cache(maxsize=1)
def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown-cpu"


def machine_key(device: str = "cpu") -> str:
    """The machine a timing belongs to: OS, architecture, CPU model and logical CPU count (and the device
    measured on, when not the CPU). Hostnames are left out: the same hardware shares its timings."""
    key = f"{platform.system()}-{platform.machine()}/{_cpu_model()}/{os.cpu_count()}cpu"
    return key if device == "cpu" else f"{key}/{device}"


class LatencyCache:
    """Timings on disk, looked up by ``(runtime key, op key)`` for this machine."""

    def __init__(self, path: str | os.PathLike | None = None, machine: str | None = None) -> None:
        self.path = Path(path) if path is not None else default_cache_path()
        if self.path.exists() and self.path.is_dir():
            self.path = self.path / "latency.sqlite"
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._run(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise ConfigError(f"cannot open the latency cache {str(self.path)!r}: {exc}; name a writable file "
                              f"or folder (or set ${ENV_VAR})") from None
        self.machine = machine

    def _run(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Run one statement in its own transaction (committed) and connection (closed)."""
        con = sqlite3.connect(self.path, timeout=60)  # waits for another process's write
        try:
            with con:
                return con.execute(sql, args).fetchall()
        finally:
            con.close()

    def _machine(self, device: str) -> str:
        return self.machine if self.machine is not None else machine_key(device)

    def get(self, runtime: str, op: str, device: str = "cpu") -> Timing | None:
        """The cached timing of ``op`` on ``runtime`` here, or None."""
        rows = self._run("SELECT timing FROM timings WHERE machine=? AND runtime=? AND op=?",
                         (self._machine(device), runtime, op))
        return Timing.from_dict(json.loads(rows[0][0])) if rows else None

    def put(self, runtime: str, op: str, timing: Timing, device: str = "cpu") -> None:
        """Store (or replace) the timing of ``op`` on ``runtime`` here."""
        self._run("INSERT OR REPLACE INTO timings VALUES (?, ?, ?, ?, ?)",
                  (self._machine(device), runtime, op, json.dumps(timing.to_dict()), time.time()))

    def entries(self, runtime: str | None = None) -> dict[tuple[str, str, str], Timing]:
        """Every stored timing by ``(machine, runtime, op)`` (of one runtime when given)."""
        q, args = "SELECT machine, runtime, op, timing FROM timings", ()
        if runtime is not None:
            q, args = q + " WHERE runtime=?", (runtime,)
        rows = self._run(q, args)
        return {(m, r, o): Timing.from_dict(json.loads(t)) for m, r, o, t in rows}

    def __len__(self) -> int:
        return int(self._run("SELECT COUNT(*) FROM timings")[0][0])

    def __repr__(self) -> str:
        return f"LatencyCache({str(self.path)!r}, {len(self)} timings)"


def open_cache(cache: Any) -> LatencyCache | None:
    """A LatencyCache from ``True`` (the default file), a path, a LatencyCache, or None/False (no cache)."""
    if cache is None or cache is False:
        return None
    if cache is True:
        return LatencyCache()
    if isinstance(cache, LatencyCache):
        return cache
    if isinstance(cache, (str, os.PathLike)):
        return LatencyCache(cache)
    raise ConfigError(f"cache must be True, False, a path or a LatencyCache, got {type(cache).__name__}")
