"""Validating an experiment config: every section, key, component name, option and value type is checked.

Each typed section (``model``, ``data``, ``trainer``, ``optim``, every ``estim`` item) names a registry entry
and is checked by that registry (fxnas.registry.Registry.check) against the component's signature and type
hints, so a typo or a wrong type is one line naming the key path, the value and what would be valid. Path
options (type hint FilePath, or ``file.py:name`` references) are made absolute against the config's folder.
"""

from __future__ import annotations

import copy
import re
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..errors import ConfigError, RegistryError
from ..options import Option, closest_hint, is_path_hint, matches, resolve_path, type_name
from ..registry import Registry, spec_parts

TOP_KEYS: dict[str, Any] = {
    "name": str, "seed": int, "device": str, "out_root": str, "threads": int | None, "imports": list[str] | None,
    "model": Any, "construct": Any, "optim": Any, "estim": Any, "trainer": Any, "data": Any, "export": Any,
    "objectives": Any, "constraints": Any, "parallel": Any, "progress": bool, "elastic": Any,
    "distributed": Any,
}
SECTION_KEYS: dict[str, dict[str, Any]] = {
    "construct": {"pattern": str | list[str], "candidates": str | list[str] | dict[str, list[str]],
                  "mixed_op": str, "mixed_op_args": dict[str, Any], "share": typing.Literal["none", "all", "shape"],
                  "check": bool},
    "export": {"materialize": bool, "onnx": bool, "simplify": bool, "test": bool, "plot": bool,
               "bn_recalibrate": int},
    "parallel": {"backend": typing.Literal["local", "process", "dask"], "workers": int, "address": str | None,
                 "processes": bool, "retries": int},
    "distributed": {"backend": typing.Literal["gloo", "nccl"] | None},
}
DEFAULTS: dict[str, Any] = {
    "seed": 0, "device": "cpu", "out_root": "exp", "threads": None, "imports": [], "construct": None,
    "trainer": {"type": "Classification"},
    "export": {"materialize": True, "onnx": False, "simplify": True, "test": True, "plot": True,
               "bn_recalibrate": 10},
    "objectives": None, "constraints": [], "parallel": {"backend": "local", "workers": 1}, "progress": True,
    "elastic": None, "distributed": {"backend": None},
}
# what the build path supplies to each kind (so a config need not, and required options count as given)
MODEL_INJECT = ("num_classes", "input_shape", "in_channels")
OPTIM_INJECT = ("seed", "constraints", "objectives", "metric")

_PY_REF = re.compile(r"^(?P<file>.+\.py)(?::(?P<name>[A-Za-z_]\w*))?$")


def _unknown(where: str, key: str, valid: Sequence[str]) -> ConfigError:
    return ConfigError(f"unknown key {key!r} in {where}{closest_hint(key, list(valid))} Valid keys: "
                       f"{', '.join(valid)}")


def _check_value(where: str, value: Any, hint: Any) -> None:
    if not matches(value, hint):
        raise ConfigError(f"{where} must be {type_name(hint).removeprefix('one of ')}, got {value!r}")


def resolve_ref(value: str, base: Path | None) -> str:
    """A ``file.py`` / ``file.py:name`` reference with its file made absolute against ``base``."""
    m = _PY_REF.match(value)
    if base is None or not m:
        return value
    path = resolve_path(m.group("file"), base)
    return path + (f":{m.group('name')}" if m.group("name") else "")


def _literals(hint: Any) -> set[Any]:
    out: set[Any] = set()
    for h in typing.get_args(hint) or (hint,):
        if typing.get_origin(h) is typing.Literal:
            out |= set(typing.get_args(h))
    return out


def resolve_paths(options: dict[str, Any], accepted: Sequence[Option], base: Path | None) -> None:
    """Make path options (FilePath hints, ``file.py:name`` strings) absolute against ``base``, in place."""
    if base is None:
        return
    hints = {o.name: o.hint for o in accepted}
    for k, v in options.items():
        if not isinstance(v, str):
            continue
        if k in hints and is_path_hint(hints[k]) and v not in _literals(hints[k]):
            options[k] = resolve_path(v, base)
        elif _PY_REF.match(v):
            options[k] = resolve_ref(v, base)


def component(registry: Registry, spec: Any, where: str, base: Path | None,
              given: Sequence[str] = ()) -> dict[str, Any]:
    """``{type, options}`` of a section, checked by ``registry`` (names, options, types) with paths resolved."""
    if spec is None:
        raise ConfigError(f"{where} needs a 'type' (e.g. {where}: {{type: NAME, option: value}})")
    name, obj, opts = registry.check(spec, where=where, inject={k: None for k in given})
    from ..options import options_of

    resolve_paths(opts, options_of(obj, registry.internal)[0], base)
    if isinstance(opts.get("mixed_op"), str):  # a named space's mixed op is checked where the config names it
        from ..mixed.base import MIXED_OPS

        MIXED_OPS.resolve(opts["mixed_op"], f"{where}.mixed_op")
    return {"type": name, "options": opts}


def typed(where: str, value: Any) -> dict[str, Any]:
    """``{type, options}`` from ``"Name"``, ``{type: Name, k: v}`` or ``{type: Name, options: {...}}``."""
    name, opts = spec_parts(value, where)
    return {"type": name, "options": opts}


def _model(spec: Any, base: Path | None) -> dict[str, Any]:
    """The model section: a SPACES name, torchvision:NAME, file.py[:fn] or package.module:fn, plus ``weights``
    (a local state dict loaded into the built model before it is searchified: pretrained starts)."""
    from ..options import check_options, options_of
    from ..spaces.registry import model_builder

    m = typed("model", spec)
    m["type"] = resolve_ref(m["type"], base)
    try:
        fn = model_builder(m["type"])
    except RegistryError as exc:
        raise ConfigError(f"model.type: {exc}") from None
    takes_weights = "weights" in {o.name for o in options_of(fn)[0]}  # a builder's own option stays its own
    weights = None if takes_weights else m["options"].pop("weights", None)
    if weights is not None:
        if not isinstance(weights, str):
            raise ConfigError(f"model.weights must be the path of a state dict file, got {weights!r}")
        weights = resolve_path(weights, base)
        if not Path(weights).is_file():
            raise ConfigError(f"model.weights: {weights!r} is not a file; give a state dict saved with "
                              f"torch.save(model.state_dict(), path)")
    opts = check_options("model", m["type"], fn, m["options"], given=MODEL_INJECT)
    resolve_paths(m["options"], opts, base)
    if weights is not None:
        m["weights"] = weights
    return m


def _construct(con: Mapping[str, Any]) -> dict[str, Any]:
    from ..candidates.registry import CANDIDATES
    from ..mixed.base import MIXED_OPS
    from ..passes.patterns import PATTERNS

    for req in ("pattern", "candidates"):
        if req not in con:
            raise ConfigError(f"construct needs {req!r} (e.g. construct: {{pattern: conv3x3, candidates: [NC3, DW3]}})")
    con = {"mixed_op": "Index", "mixed_op_args": {}, "share": "none", "check": True, **con}
    MIXED_OPS.check({"type": con["mixed_op"], **(con["mixed_op_args"] or {})}, where="construct.mixed_op",
                    inject={k: None for k in MIXED_OPS.internal})
    pats = con["pattern"].split(",") if isinstance(con["pattern"], str) else list(con["pattern"])
    for p in pats:
        PATTERNS.resolve(p.strip(), "construct.pattern")
    cands = con["candidates"]
    groups = {"": cands.split(",")} if isinstance(cands, str) else \
        {f".{k}": list(v) for k, v in cands.items()} if isinstance(cands, Mapping) else {"": list(cands)}
    for key, names in groups.items():
        names = [str(c).strip() for c in names]
        dup = sorted({c for c in names if names.count(c) > 1})
        if dup:
            raise ConfigError(f"construct.candidates{key} lists {', '.join(dup)} more than once; each candidate "
                              f"is one choice (a duplicate would double the space without a new arch)")
        for c in names:
            try:
                CANDIDATES.get(c)  # a family's factory checks its numbers (MB3E0, NC0 are refused here)
            except RegistryError as exc:
                raise ConfigError(f"construct.candidates{key}: {exc}") from None
    return con


def _device(device: str) -> str:
    import torch

    if device in ("cpu", "auto"):
        return device
    if re.fullmatch(r"cuda(:\d+)?", device):
        if not torch.cuda.is_available():
            raise ConfigError(f"device {device!r}: no CUDA device is available here (torch.cuda.is_available() "
                              f"is False); use device: cpu, or auto to take a GPU when there is one")
        return device
    if device == "mps":
        return device
    raise ConfigError(f"device must be cpu, cuda, cuda:N, mps or auto, got {device!r}")


def validate(raw: Mapping[str, Any], base: Path | None = None) -> dict[str, Any]:
    """Check every section, key, component name, option and value type; the config with defaults filled in.

    ``base`` is the config file's folder: relative paths in options resolve against it.
    """
    from ..estim.base import ESTIMATORS
    from ..objectives import parse_constraint, parse_objective
    from ..optim.base import OPTIMIZERS
    from ..train.criteria import CRITERIA
    from ..train.datasets import DATASETS
    from ..train.trainer import TRAINERS

    if "metrics" in raw:  # the metric providers' section of earlier versions
        raise ConfigError("the 'metrics' section is gone: costs of an arch (params, macs, latency_ms...) are an "
                          "estimator's costs option, e.g. estim: [{type: Uniform, costs: [macs, {type: latency_ms, "
                          "source: measured}]}]; objectives and constraints name them (latency_ms <= 5)")
    for k in raw:
        if k not in TOP_KEYS:
            raise _unknown("the config", k, list(TOP_KEYS))
    for req in ("model", "optim", "estim"):
        if raw.get(req) is None:
            raise ConfigError(f"the config needs a {req!r} section")
    cfg = {**copy.deepcopy(DEFAULTS), **copy.deepcopy(dict(raw))}
    threads = cfg["threads"]
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise ConfigError(f"threads must be a positive integer or null (torch's CPU threads for the run), "
                          f"got {threads!r}")
    for k, hint in TOP_KEYS.items():
        if hint is not Any and k in raw:
            _check_value(k, cfg[k], hint)
    if not cfg["name"] or "/" in cfg["name"]:
        raise ConfigError(f"name must be a non-empty folder name, got {cfg['name']!r}")
    for sec, keys in SECTION_KEYS.items():
        if cfg[sec] is None:
            continue
        if not isinstance(cfg[sec], Mapping):
            raise ConfigError(f"{sec} must be a mapping of {', '.join(keys)}")
        for k, v in cfg[sec].items():
            if k not in keys:
                raise _unknown(sec, k, list(keys))
            _check_value(f"{sec}.{k}", v, keys[k])
        if sec != "construct":
            cfg[sec] = {**DEFAULTS[sec], **cfg[sec]}
    cfg["device"] = _device(cfg["device"])
    cfg["model"] = _model(cfg["model"], base)
    cfg["data"] = None if cfg.get("data") is None else component(DATASETS, cfg["data"], "data", base, ["seed"])
    if isinstance(cfg["trainer"], Mapping) and "type" not in cfg["trainer"]:
        cfg["trainer"] = {"type": DEFAULTS["trainer"]["type"], **cfg["trainer"]}  # options of the default trainer
    cfg["trainer"] = component(TRAINERS, cfg["trainer"], "trainer", base, ["device"])
    crit = cfg["trainer"]["options"].get("criteria")
    if crit is not None:
        items = crit if isinstance(crit, list) else [crit]
        checked = [component(CRITERIA, c, f"trainer.criteria.{i}", base) for i, c in enumerate(items)]
        cfg["trainer"]["options"]["criteria"] = checked if isinstance(crit, list) else checked[0]
    cfg["optim"] = component(OPTIMIZERS, cfg["optim"], "optim", base, OPTIM_INJECT)
    estim = cfg["estim"] if isinstance(cfg["estim"], list) else [cfg["estim"]]
    if not estim:
        raise ConfigError("estim needs at least one estimator, e.g. estim: [{type: SuperNet}]")
    cfg["estim"] = [component(ESTIMATORS, e, f"estim.{i}", base) for i, e in enumerate(estim)]
    if cfg["construct"] is not None:
        cfg["construct"] = _construct(cfg["construct"])
    if cfg["elastic"] is not None:
        from ..elastic.config import validate_elastic

        cfg["elastic"] = validate_elastic(cfg["elastic"])
    for key, parse in (("objectives", parse_objective), ("constraints", parse_constraint)):
        if isinstance(cfg[key], (str, Mapping)):
            cfg[key] = [cfg[key]]
        for item in cfg[key] or []:
            parse(item)  # raises ConfigError naming the accepted forms
    cfg["imports"] = [resolve_ref(i, base) if isinstance(i, str) else i for i in (cfg["imports"] or [])]
    return cfg
