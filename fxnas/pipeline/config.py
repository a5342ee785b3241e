"""Pipeline configs: named steps, their options, and the inputs they take from other steps' outputs.

A pipeline::

    name: nas                                   # the output folder <out_root>/<name>/
    params: {epochs: 2}                         # values any step may take: inputs: {epochs: params.epochs}
    parallel: {backend: thread, workers: 2}     # independent steps run at the same time (fxnas.pool)
    steps:
      search:  {type: Search, config: exp.yaml}
      retrain: {type: Retrain, config: exp.yaml, inputs: {arch: search.arch, epochs: params.epochs}}
      export:  {type: Export, inputs: {model: retrain.model, input_shape: retrain.input_shape}}
      profile: {type: Profile, after: [export], inputs: {model: retrain.model, input_shape: retrain.input_shape}}

``inputs`` maps an option of the step to ``STEP.OUTPUT`` (deeper keys with more dots:
``search.metrics.acc``; a bare ``STEP``: all its outputs as a mapping); ``after`` adds order without passing
values. Every step type, option, value type
and reference is checked before anything runs, each error naming its key path.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..options import closest_hint, matches, type_name
from ..pool import parallel_settings

PIPELINE_KEYS: dict[str, Any] = {"name": str, "out_root": str, "imports": list[str] | None, "params": dict[str, Any],
                                 "parallel": Any, "steps": Any, "progress": bool}
PIPELINE_DEFAULTS: dict[str, Any] = {"out_root": "pipelines", "imports": [], "params": {},
                                     "parallel": {"backend": "local", "workers": 1}, "progress": True}
STEP_KEYS = ("inputs", "after")
PARAMS = "params"  # the pseudo-step whose outputs are the pipeline's params


def split_ref(ref: Any, where: str) -> tuple[str, list[str]]:
    """(step, [key, ...]) of ``STEP.KEY[.KEY...]``; a bare ``STEP`` means all its outputs (a mapping)."""
    if not isinstance(ref, str) or not ref or any(not part for part in ref.split(".")):
        raise ConfigError(f"{where} must name an output as STEP.OUTPUT (e.g. search.arch) or a whole step, "
                          f"got {ref!r}")
    step, *keys = ref.split(".")
    return step, keys


def _step(name: str, spec: Any, names: Sequence[str], base: Path | None) -> dict[str, Any]:
    from ..config.schema import component
    from .step import PIPELINE_STEPS

    where = f"steps.{name}"
    if not isinstance(spec, Mapping) or "type" not in spec:
        raise ConfigError(f"{where} needs a 'type' (e.g. {where}: {{type: Search, config: exp.yaml}}); step types: "
                          f"{', '.join(PIPELINE_STEPS.names())}")
    inputs = spec.get("inputs") or {}
    after = spec.get("after") or []
    if not isinstance(inputs, Mapping):
        raise ConfigError(f"{where}.inputs must map option names to STEP.OUTPUT, got {inputs!r}")
    if isinstance(after, str):
        after = [after]
    if not isinstance(after, list):
        raise ConfigError(f"{where}.after must be a list of step names, got {after!r}")
    rest = {k: v for k, v in spec.items() if k not in STEP_KEYS}
    checked = component(PIPELINE_STEPS, rest, where, base, given=list(inputs))
    both = sorted(set(inputs) & set(checked["options"]))
    if both:
        raise ConfigError(f"{where}: option {both[0]!r} is set and also taken from inputs; keep one")
    valid = [o.name for o in PIPELINE_STEPS.options(checked["type"])]
    for opt, ref in inputs.items():
        if opt not in valid:
            raise ConfigError(f"{where}.inputs: {checked['type']} has no option {opt!r}{closest_hint(opt, valid)} "
                              f"Options: {', '.join(valid)}")
        step, _ = split_ref(ref, f"{where}.inputs.{opt}")
        if step != PARAMS and step not in names:
            raise ConfigError(f"{where}.inputs.{opt}: no step {step!r}{closest_hint(step, list(names))} Steps: "
                              f"{', '.join(names)}")
        if step == name:
            raise ConfigError(f"{where}.inputs.{opt}: a step cannot take its own output")
    for dep in after:
        if dep not in names:
            raise ConfigError(f"{where}.after: no step {dep!r}{closest_hint(str(dep), list(names))} Steps: "
                              f"{', '.join(names)}")
    return {**checked, "inputs": dict(inputs), "after": list(after)}


def _check_outputs(steps: Mapping[str, Any], params: Mapping[str, Any]) -> None:
    """An input naming an output its step does not declare is refused now, not after the earlier steps ran."""
    from .step import PIPELINE_STEPS

    for name, s in steps.items():
        for opt, ref in s["inputs"].items():
            step, keys = split_ref(ref, "")
            declared = list(params) if step == PARAMS else PIPELINE_STEPS.get(steps[step]["type"]).outputs
            if keys and declared is not None and keys[0] not in declared:
                what = "params" if step == PARAMS else f"{steps[step]['type']} ({step})"
                raise ConfigError(f"steps.{name}.inputs.{opt}: {what} has no output {keys[0]!r}"
                                  f"{closest_hint(keys[0], list(declared))} Outputs: {', '.join(declared)}")


def validate_pipeline(raw: Mapping[str, Any], base: Path | None = None) -> dict[str, Any]:
    """Check the pipeline's keys, every step (type, options, inputs, after) and the graph (no cycle)."""
    from .graph import step_graph

    for k in raw:
        if k not in PIPELINE_KEYS:
            raise ConfigError(f"unknown key {k!r} in the pipeline{closest_hint(k, list(PIPELINE_KEYS))} Valid keys: "
                              f"{', '.join(PIPELINE_KEYS)}")
    cfg = {**copy.deepcopy(PIPELINE_DEFAULTS), **copy.deepcopy(dict(raw))}
    for k, hint in PIPELINE_KEYS.items():
        if hint is not Any and k in raw and not matches(cfg[k], hint):
            raise ConfigError(f"{k} must be {type_name(hint).removeprefix('one of ')}, got {cfg[k]!r}")
    if not cfg.get("name") or "/" in cfg["name"]:
        raise ConfigError(f"name must be a non-empty folder name, got {cfg.get('name')!r}")
    steps = cfg.get("steps")
    if not isinstance(steps, Mapping) or not steps:
        raise ConfigError("the pipeline needs steps: a mapping of step name -> {type: STEP, ...}")
    names = [str(n) for n in steps]
    for n in names:
        if n == PARAMS or not n or "." in n or "/" in n:
            raise ConfigError(f"steps: {n!r} cannot name a step (no dots or slashes; {PARAMS!r} is the params)")
    cfg["steps"] = {str(n): _step(str(n), s, names, base) for n, s in steps.items()}
    _check_outputs(cfg["steps"], cfg["params"])
    cfg["parallel"] = parallel_settings(cfg["parallel"] if isinstance(cfg["parallel"], Mapping) else
                                        {"backend": cfg["parallel"]})
    step_graph(cfg["steps"])  # raises naming a cycle
    cfg["base_dir"] = str(base) if base is not None else None
    return cfg


def load_pipeline(ref: str | Path | Mapping[str, Any], overrides: Sequence[str] = (),
                  params: Mapping[str, Any] | None = None, name: str | None = None, out_root: str | None = None,
                  imports: Sequence[str] = ()) -> dict[str, Any]:
    """Read a pipeline (a YAML path or a mapping), apply overrides and ``params``, import user modules,
    validate. Relative paths resolve against the file's folder (a mapping's: the working directory)."""
    from ..config.load import apply_override, read_yaml_file
    from ..userobj import import_modules

    if isinstance(ref, Mapping):
        raw, stem, base = copy.deepcopy(dict(ref)), "pipeline", None
    else:
        path = Path(ref)
        if not path.is_file():
            raise ConfigError(f"pipeline {str(ref)!r} is not a file (looked at {path.resolve()})")
        raw, stem, base = read_yaml_file(path) or {}, path.stem, path.resolve().parent
    if not isinstance(raw, dict):
        raise ConfigError(f"a pipeline must be a mapping of sections, got {type(raw).__name__}")
    for o in overrides:
        apply_override(raw, o)
    if params:
        raw["params"] = {**(raw.get("params") or {}), **dict(params)}
    raw.setdefault("name", stem)
    if name:
        raw["name"] = name
    if out_root:
        raw["out_root"] = out_root
    own = raw.get("imports") or []
    own = [own] if isinstance(own, str) else list(own)
    import_modules(own, base)
    import_modules(list(imports), None)
    from ..config.schema import resolve_ref

    raw["imports"] = [resolve_ref(i, base) if isinstance(i, str) else i for i in own] + list(imports)
    return validate_pipeline(raw, base)
