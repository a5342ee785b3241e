"""What changed between the config a run was checkpointed with and the one it is resumed with."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import ConfigError

VOLATILE = ("name", "out_root", "progress", "imports")  # config keys that may change between a run and its resume
# config keys whose change makes a checkpoint meaningless (other weights, params or stages)
STRUCTURAL = ("model", "construct", "elastic", "data", "optim.type", "estim", "seed")


def config_changes(saved: Any, now: Any, prefix: str = "") -> list[tuple[str, Any, Any]]:
    """(key path, saved value, current value) of every leaf that differs between two configs."""
    if isinstance(saved, Mapping) and isinstance(now, Mapping):
        out = []
        for k in list(saved) + [k for k in now if k not in saved]:
            path = f"{prefix}.{k}" if prefix else str(k)
            if not prefix and k in VOLATILE:
                continue
            out += config_changes(saved.get(k), now.get(k), path)
        return out
    if isinstance(saved, list) and isinstance(now, list) and len(saved) == len(now):
        return [c for i, (a, b) in enumerate(zip(saved, now)) for c in config_changes(a, b, f"{prefix}.{i}")]
    return [] if saved == now else [(prefix, saved, now)]


def _structural(path: str) -> bool:
    return any(path == s or path.startswith(s + ".") for s in STRUCTURAL)


def resume_changes(saved: Mapping[str, Any], now: Mapping[str, Any], where: str) -> str | None:
    """The changed keys as ``key: old -> new; ...`` (None when nothing changed); ConfigError when a structural
    key changed, since the checkpoint would not fit the components the new config builds."""
    changes = config_changes(saved, now)
    if not changes:
        return None
    shown = "; ".join(f"{k}: {a!r} -> {b!r}" for k, a, b in changes[:8])
    hard = [k for k, _, _ in changes if _structural(k)]
    if hard:
        raise ConfigError(f"{where} was checkpointed with another config ({shown}); {', '.join(hard[:5])} cannot "
                          f"change on resume: restore them, or start again with --overwrite")
    return shown
