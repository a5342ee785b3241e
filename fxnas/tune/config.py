"""Tune configs: YAML (+ ``-o key.path=value`` overrides) validated through the registries, then a Tuner.

A tune config::

    name: lr_tune                      # the output folder <out_root>/<name>/
    target: {type: Experiment, config: exp.yaml}        # a TUNE_TARGETS entry (or Command)
    space: {trainer.lr: {low: 0.001, high: 0.5, log: true}}
    optim: {type: Optuna, sampler: TPE}                 # any OPTIMIZERS entry that proposes archs
    objectives: [acc]                  # as in experiments: acc, max:acc, min:loss (several: a Pareto search)
    budget: 20                         # trials this worker evaluates
    parallel: {backend: local, workers: 1}              # trials in flight at once (fxnas.pool)

Every key, component name, option and value type is checked with its key path, as experiment configs are.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError
from ..options import closest_hint, matches, type_name
from ..pool import parallel_settings
from .space import tune_space

if TYPE_CHECKING:
    from rich.console import Console

    from .runner import Tuner

TUNE_KEYS: dict[str, Any] = {
    "name": str, "seed": int, "out_root": str, "imports": list[str] | None, "target": Any, "space": Any,
    "optim": Any, "objectives": Any, "constraints": Any, "budget": int, "parallel": Any, "progress": bool,
}
TUNE_DEFAULTS: dict[str, Any] = {
    "seed": 0, "out_root": "tune", "imports": [], "optim": {"type": "Optuna"}, "objectives": None,
    "constraints": [], "budget": 20, "parallel": {"backend": "local", "workers": 1}, "progress": True,
}
OPTIM_INJECT = ("seed", "constraints", "objectives", "metric", "out_dir")


def validate_tune(raw: Mapping[str, Any], base: Path | None = None) -> dict[str, Any]:
    """Check every key, component, option and value type of a tune config; the config with defaults filled in."""
    from ..config.schema import component
    from ..objectives import parse_constraint, parse_objective
    from ..optim.base import OPTIMIZERS
    from .target import TUNE_TARGETS

    for k in raw:
        if k not in TUNE_KEYS:
            raise ConfigError(f"unknown key {k!r} in the tune config{closest_hint(k, list(TUNE_KEYS))} Valid keys: "
                              f"{', '.join(TUNE_KEYS)}")
    for req in ("target", "space"):
        if raw.get(req) is None:
            raise ConfigError(f"the tune config needs a {req!r} section")
    cfg = {**copy.deepcopy(TUNE_DEFAULTS), **copy.deepcopy(dict(raw))}
    for k, hint in TUNE_KEYS.items():
        if hint is not Any and k in raw and not matches(cfg[k], hint):
            raise ConfigError(f"{k} must be {type_name(hint).removeprefix('one of ')}, got {cfg[k]!r}")
    if not cfg["name"] or "/" in cfg["name"]:
        raise ConfigError(f"name must be a non-empty folder name, got {cfg['name']!r}")
    if cfg["budget"] < 1:
        raise ConfigError(f"budget must be >= 1 (trials to evaluate), got {cfg['budget']}")
    tune_space(cfg["space"])  # raises naming the bad param
    cfg["target"] = component(TUNE_TARGETS, cfg["target"], "target", base)
    cfg["optim"] = component(OPTIMIZERS, cfg["optim"], "optim", base, OPTIM_INJECT)
    cfg["parallel"] = parallel_settings(cfg["parallel"] if isinstance(cfg["parallel"], Mapping) else
                                        {"backend": cfg["parallel"]})
    for key, parse in (("objectives", parse_objective), ("constraints", parse_constraint)):
        if isinstance(cfg[key], (str, Mapping)):
            cfg[key] = [cfg[key]]
        for item in cfg[key] or []:
            parse(item)
    cfg["base_dir"] = str(base) if base is not None else None
    return cfg


def load_tune_config(ref: str | Path | Mapping[str, Any], overrides: Sequence[str] = (), name: str | None = None,
                     out_root: str | None = None, imports: Sequence[str] = ()) -> dict[str, Any]:
    """Read a tune config (a YAML path or a mapping), apply overrides, import user modules, validate.

    Relative paths (experiment configs, a command's folder, imports) resolve against the file's folder; in
    a mapping, against the working directory.
    """
    from ..config.load import apply_override, read_yaml_file
    from ..userobj import import_modules

    if isinstance(ref, Mapping):
        raw, stem, base = copy.deepcopy(dict(ref)), "tune", None
    else:
        path = Path(ref)
        if not path.is_file():
            raise ConfigError(f"tune config {str(ref)!r} is not a file (looked at {path.resolve()})")
        raw, stem, base = read_yaml_file(path) or {}, path.stem, path.resolve().parent
    if not isinstance(raw, dict):
        raise ConfigError(f"a tune config must be a mapping of sections, got {type(raw).__name__}")
    raw.pop("base_dir", None)  # what validation adds; a saved config.yaml loads again
    for o in overrides:
        apply_override(raw, o)
    raw.setdefault("name", stem)
    if name:
        raw["name"] = name
    if out_root:
        raw["out_root"] = out_root
    own = raw.get("imports") or []
    import_modules([own] if isinstance(own, str) else list(own), base)
    import_modules(list(imports), None)
    return validate_tune(raw, base)


def build_tuner(cfg: Mapping[str, Any], console: Console | None = None, progress: bool | None = None) -> Tuner:
    """A Tuner from a validated tune config: the space, the target (checked against it), the optimizer."""
    from ..objectives import parse_objective
    from ..optim.base import OPTIMIZERS
    from .runner import Tuner
    from .target import TUNE_TARGETS

    space = tune_space(cfg["space"])
    target = TUNE_TARGETS.build(cfg["target"], where="target", inject={"base_dir": cfg.get("base_dir")})
    target.check(space)
    objectives = cfg["objectives"] or [target.default_metric]
    out_dir = Path(cfg["out_root"]) / cfg["name"]
    inject: dict[str, Any] = {"space": space, "seed": int(cfg["seed"]), "constraints": cfg["constraints"],
                              "objectives": objectives, "out_dir": str(out_dir)}
    first = parse_objective(objectives[0])
    if first.metric is not None:  # the optimizer ranks by the first objective, its mode included
        inject["metric"] = {"metric": first.metric, "mode": first.mode}
    optimizer = OPTIMIZERS.build(cfg["optim"], where="optim", inject=inject)
    return Tuner(space, target, optimizer, name=cfg["name"], out_root=cfg["out_root"], budget=int(cfg["budget"]),
                 objectives=objectives, constraints=cfg["constraints"], parallel=cfg["parallel"],
                 config=cfg, console=console, progress=cfg["progress"] if progress is None else progress)
