"""What a report shows, read from an experiment folder: plain files only (JSON, YAML, weights_only tensors).

A run in progress has no ``summary.json`` yet (the search writes it last), and may have half a line at the end
of a JSONL log; both are expected, not errors.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..yamlio import load_yaml


@dataclass
class RunData:
    """The contents of one experiment folder, as plain data."""

    folder: Path
    config: dict[str, Any]
    history: list[dict[str, Any]]
    alphas: list[dict[str, Any]]
    best: dict[str, Any] | None
    pareto: dict[str, Any] | None
    summary: dict[str, Any] | None
    slots: list[dict[str, Any]] = field(default_factory=list)
    profile: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def finished(self) -> bool:
        """True once the search wrote summary.json (its last file)."""
        return self.summary is not None

    @property
    def objective(self) -> tuple[str, str]:
        """(metric, "max"|"min") of the first objective (the search signal)."""
        from ..objectives import parse_objective

        objs = self.config.get("objectives") or []
        if objs:
            o = parse_objective(objs[0])
            return o.metric, o.mode
        metrics = [k for r in self.history for k in r.get("metrics", {})]
        return (metrics[0] if metrics else "acc"), "max"


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """The records of a JSONL log; a last line being written (not yet valid JSON) is left out."""
    if not path.is_file():
        return []
    rows = []
    lines = path.read_text().splitlines()
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            if i == len(lines) - 1:
                break  # being appended right now
            raise ConfigError(f"{str(path)!r} line {i + 1} is not JSON") from None
    return rows


def _json(path: Path) -> Any:
    return json.loads(path.read_text()) if path.is_file() else None


def read_run(folder: str | os.PathLike, profile: bool = True) -> RunData:
    """Everything ``fxnas report`` shows about the run in ``folder``; with ``profile``, the exported subnet's
    static counts and the slot table (both rebuild the network from config.yaml)."""
    folder = Path(folder)
    cfg_path = folder / "config.yaml"
    if not cfg_path.is_file():
        raise ConfigError(f"{str(folder)!r} is not an experiment folder (no config.yaml); fxnas search writes "
                          f"one to <out_root>/<name>/ when it starts")
    best_path = folder / "arch_best.yaml"
    run = RunData(folder=folder, config=load_yaml(cfg_path.read_text()) or {},
                  history=read_jsonl(folder / "history.jsonl"), alphas=read_jsonl(folder / "alphas.jsonl"),
                  best=load_yaml(best_path.read_text()) if best_path.is_file() else None,
                  pareto=_json(folder / "pareto.json"), summary=_json(folder / "summary.json"))
    if profile:
        _add_network(run)
    return run


def _add_network(run: RunData) -> None:
    """The slot table and, for a finished run with exported weights, the subnet's profile."""
    from .network import profile_subnet, slot_rows

    try:
        run.slots = slot_rows(run.config, (run.best or {}).get("arch", {}))
    except Exception as exc:  # the report still shows the logs when the model cannot be rebuilt here
        run.notes.append(f"slot table unavailable: {type(exc).__name__}: {' '.join(str(exc).split())[:200]}")
    if run.finished and (run.folder / "subnet_state.pt").is_file():
        try:
            run.profile = profile_subnet(run.folder)
        except Exception as exc:
            run.notes.append(f"profile unavailable: {type(exc).__name__}: {' '.join(str(exc).split())[:200]}")
    metrics = (run.best or {}).get("metrics", {})
    lat = {k: v for k, v in metrics.items() if "latency" in k}
    if lat:
        run.profile = {**(run.profile or {}), **{f"{k} (recorded)": v for k, v in lat.items()}}
