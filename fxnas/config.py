"""Experiment configs: YAML (+ ``-o key.path=value`` overrides) → validated sections → an Experiment.

Every component is named by its registry name; an unknown section, key or name raises ConfigError with the
closest valid names. Typed sections (``model``, ``optim``, each ``estim`` item, ``trainer``, ``data``) take a
``type`` plus options, given flat or under ``options:``.
"""

from __future__ import annotations

import copy
import difflib
import importlib
import inspect
import pkgutil
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from .errors import ConfigError, RegistryError
from .registry import Registry
from .spaces.registry import SPACES, model_builder  # noqa: F401  (SPACES: spaces register here)
from .yamlio import load_yaml

if TYPE_CHECKING:
    from rich.console import Console
    from torch import nn

    from .routine import Experiment
    from .space import SearchSpace

CONFIG_DIR = Path(__file__).parent / "configs"
PLUGIN_PACKAGES = ("fxnas.candidates", "fxnas.passes", "fxnas.optim", "fxnas.estim", "fxnas.train",
                   "fxnas.spaces", "fxnas.nb201", "fxnas.profilers", "fxnas.hardware")

TOP_KEYS = ("name", "seed", "device", "out_root", "model", "construct", "optim", "estim", "trainer", "data",
            "export", "objectives", "constraints", "parallel", "progress")
SECTION_KEYS = {
    "construct": ("pattern", "candidates", "mixed_op", "mixed_op_args", "share", "check"),
    "export": ("materialize", "onnx", "simplify", "test", "plot", "bn_recalibrate"),
    "parallel": ("backend", "workers", "address", "processes"),
}
DEFAULTS: dict[str, Any] = {
    "seed": 0, "device": "cpu", "out_root": "exp", "construct": None, "trainer": {"type": "Classification"},
    "export": {"materialize": True, "onnx": False, "simplify": True, "test": True, "plot": True,
               "bn_recalibrate": 10},
    "objectives": None, "constraints": [], "parallel": {"backend": "local", "workers": 1}, "progress": True,
}


# --- loading ---------------------------------------------------------------------------------------------
def packaged_configs() -> list[str]:
    """Names of the configs shipped in fxnas/configs (usable as ``-c NAME``)."""
    return sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))


def resolve_config(ref: str | Path) -> Path:
    """The YAML file of ``ref``: a path, or the name of a packaged config."""
    p = Path(ref)
    if p.is_file():
        return p
    named = CONFIG_DIR / f"{ref}.yaml"
    if named.is_file():
        return named
    close = difflib.get_close_matches(str(ref), packaged_configs(), n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise ConfigError(f"config {str(ref)!r} is neither a file nor a packaged config{hint} "
                      f"Packaged configs: {', '.join(packaged_configs())}")


def apply_override(cfg: dict[str, Any], override: str) -> None:
    """Apply ``key.path=value`` in place (value parsed as YAML; list items by index: ``estim.0.epochs=2``)."""
    key, sep, raw = override.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"override {override!r} must look like key.path=value")
    try:
        value = load_yaml(raw)
    except yaml.YAMLError:
        value = raw
    parts = key.strip().split(".")
    node: Any = cfg
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise ConfigError(f"override {key!r}: {'.'.join(parts[:i]) or 'config'} is a list of "
                                  f"{len(node)}; use an index 0..{len(node) - 1}")
            if last:
                node[int(part)] = value
            else:
                node = node[int(part)]
        elif isinstance(node, dict):
            if last:
                node[part] = value
            else:
                if not isinstance(node.get(part), (dict, list)):
                    node[part] = {} if node.get(part) is None else {"type": node[part]}
                node = node[part]
        else:
            raise ConfigError(f"override {key!r}: {'.'.join(parts[:i])} is a value, not a section")


def load_config(ref: str | Path | Mapping[str, Any], overrides: Sequence[str] = (), name: str | None = None,
                out_root: str | None = None) -> dict[str, Any]:
    """Read a config (path, packaged name or mapping), apply overrides, validate; the normalised config."""
    if isinstance(ref, Mapping):
        raw, stem = copy.deepcopy(dict(ref)), "exp"
    else:
        path = resolve_config(ref)
        try:
            raw = load_yaml(path.read_text()) or {}
        except yaml.YAMLError as e:
            raise ConfigError(f"{path} is not valid YAML: {str(e).splitlines()[0]}") from None
        stem = path.stem
    if not isinstance(raw, dict):
        raise ConfigError(f"a config must be a mapping of sections, got {type(raw).__name__}")
    for o in overrides:
        apply_override(raw, o)
    raw.setdefault("name", stem)
    if name:
        raw["name"] = name
    if out_root:
        raw["out_root"] = out_root
    return validate(raw)


# --- validation ------------------------------------------------------------------------------------------
def _unknown(where: str, key: str, valid: Sequence[str]) -> ConfigError:
    close = difflib.get_close_matches(key, list(valid), n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    return ConfigError(f"unknown key {key!r} in {where}{hint} Valid keys: {', '.join(valid)}")


def typed(where: str, value: Any) -> dict[str, Any]:
    """``{type, options}`` from ``"Name"``, ``{type: Name, k: v}`` or ``{type: Name, options: {...}}``."""
    if isinstance(value, str):
        return {"type": value, "options": {}}
    if not isinstance(value, Mapping) or "type" not in value:
        raise ConfigError(f"{where} needs a 'type' (e.g. {where}: {{type: NAME, option: value}}), got {value!r}")
    opts = dict(value.get("options") or {})
    opts.update({k: v for k, v in value.items() if k not in ("type", "options")})
    return {"type": str(value["type"]), "options": opts}


def _get(registry: Registry, where: str, name: str) -> Any:
    try:
        return registry.get(name)
    except RegistryError as e:
        raise ConfigError(f"{where}: {e}") from None


_STRICT_BASES = ("Estimator", "Optimizer")  # their **kwargs only exist to reject unknown options


def accepted_options(fn: Any) -> tuple[list[str], bool]:
    """(option names, accepts any) of a function, or of a class through its chain of __init__ methods."""
    chain = [(c.__dict__["__init__"], c.__name__) for c in fn.__mro__ if "__init__" in c.__dict__] \
        if inspect.isclass(fn) else [(fn, "")]
    names: list[str] = []
    for init, owner in chain:
        try:
            params = list(inspect.signature(init).parameters.values())
        except (TypeError, ValueError):
            return names, True
        names += [p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
                  and p.name not in ("self", "space") and p.name not in names]
        if owner in _STRICT_BASES or not any(p.kind == p.VAR_KEYWORD for p in params):
            return names, False
    return names, True


def check_options(where: str, name: str, fn: Any, options: Mapping[str, Any]) -> None:
    """ConfigError for an option ``fn`` does not take, naming the closest valid ones."""
    names, anything = accepted_options(fn)
    if anything:
        return
    for k in options:
        if k not in names:
            close = difflib.get_close_matches(k, names, n=3, cutoff=0.5)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise ConfigError(f"{where}: {name} has no option {k!r}{hint} Valid options: {', '.join(names)}")


def validate(raw: Mapping[str, Any]) -> dict[str, Any]:
    """Check every section, key and component name; the config with defaults filled in."""
    load_components()
    from .candidates import CANDIDATES, MIXED_OPS
    from .estim.base import ESTIMATORS
    from .optim.base import OPTIMIZERS
    from .train.data import DATASETS
    from .train.trainer import TRAINERS

    for k in raw:
        if k not in TOP_KEYS:
            raise _unknown("the config", k, TOP_KEYS)
    for req in ("model", "optim", "estim"):
        if raw.get(req) is None:
            raise ConfigError(f"the config needs a {req!r} section")
    cfg = {**copy.deepcopy(DEFAULTS), **copy.deepcopy(dict(raw))}
    if not isinstance(cfg["name"], str) or not cfg["name"] or "/" in cfg["name"]:
        raise ConfigError(f"name must be a non-empty folder name, got {cfg['name']!r}")
    if not isinstance(cfg["seed"], int):
        raise ConfigError(f"seed must be an integer, got {cfg['seed']!r}")
    for sec, keys in SECTION_KEYS.items():
        if cfg[sec] is None:
            continue
        if not isinstance(cfg[sec], Mapping):
            raise ConfigError(f"{sec} must be a mapping of {', '.join(keys)}")
        for k in cfg[sec]:
            if k not in keys:
                raise _unknown(sec, k, keys)
        if sec != "construct":
            cfg[sec] = {**DEFAULTS[sec], **cfg[sec]}
    cfg["model"] = typed("model", cfg["model"])
    if cfg.get("data") is not None:  # table lookups (NAS-Bench-201) need no data
        cfg["data"] = typed("data", cfg["data"])
        check_options("data", cfg["data"]["type"], _get(DATASETS, "data.type", cfg["data"]["type"]),
                      cfg["data"]["options"])
    else:
        cfg["data"] = None
    cfg["trainer"] = typed("trainer", cfg["trainer"])
    check_options("trainer", cfg["trainer"]["type"], _get(TRAINERS, "trainer.type", cfg["trainer"]["type"]),
                  cfg["trainer"]["options"])
    cfg["optim"] = typed("optim", cfg["optim"])
    check_options("optim", cfg["optim"]["type"], _get(OPTIMIZERS, "optim.type", cfg["optim"]["type"]),
                  cfg["optim"]["options"])
    estim = cfg["estim"] if isinstance(cfg["estim"], list) else [cfg["estim"]]
    if not estim:
        raise ConfigError("estim needs at least one estimator, e.g. estim: [{type: SuperNet}]")
    cfg["estim"] = [typed(f"estim.{i}", e) for i, e in enumerate(estim)]
    for i, e in enumerate(cfg["estim"]):
        check_options(f"estim.{i}", e["type"], _get(ESTIMATORS, f"estim.{i}.type", e["type"]), e["options"])
    con = cfg["construct"]
    if con is not None:
        for req in ("pattern", "candidates"):
            if req not in con:
                raise ConfigError(f"construct needs {req!r}")
        cfg["construct"] = con = {"mixed_op": "Index", "mixed_op_args": {}, "share": "none", "check": True, **con}
        _get(MIXED_OPS, "construct.mixed_op", con["mixed_op"])
        if con["share"] not in ("none", "all", "shape"):
            raise ConfigError(f"construct.share must be none, all or shape, got {con['share']!r}")
        cands = con["candidates"]
        flat = cands.split(",") if isinstance(cands, str) else \
            [c for v in cands.values() for c in v] if isinstance(cands, Mapping) else list(cands)
        for c in flat:
            _get(CANDIDATES, "construct.candidates", str(c).strip())
    from .objectives import parse_constraint, parse_objective

    for key, parse in (("objectives", parse_objective), ("constraints", parse_constraint)):
        if isinstance(cfg[key], (str, Mapping)):
            cfg[key] = [cfg[key]]
        for item in cfg[key] or []:
            parse(item)  # raises ConfigError naming the accepted forms
    if cfg["parallel"]["backend"] not in ("local", "dask"):
        raise ConfigError(f"parallel.backend must be local or dask, got {cfg['parallel']['backend']!r}")
    if cfg["device"] not in ("cpu", "auto") and not str(cfg["device"]).startswith(("cuda", "mps")):
        raise ConfigError(f"device must be cpu, cuda, cuda:N or auto, got {cfg['device']!r}")
    return cfg


# --- components ------------------------------------------------------------------------------------------
def load_components() -> None:
    """Import every module of the component packages so that their registries are filled."""
    for pkg_name in PLUGIN_PACKAGES:
        try:
            pkg = importlib.import_module(pkg_name)
        except ModuleNotFoundError as e:
            if e.name == pkg_name:
                continue  # an optional package that is not there
            raise
        for info in pkgutil.iter_modules(getattr(pkg, "__path__", [])):
            importlib.import_module(f"{pkg_name}.{info.name}")


def registries() -> dict[str, Registry]:
    """Every registry of the loaded fxnas modules, by kind."""
    load_components()
    found: dict[str, Registry] = {}
    for mod_name, mod in sorted(sys.modules.items()):
        if mod_name.startswith("fxnas") and mod is not None:
            for v in list(vars(mod).values()):
                if isinstance(v, Registry):
                    found.setdefault(v.kind, v)
    return dict(sorted(found.items()))


def _doc(obj: Any) -> str:
    doc = getattr(obj, "doc", None) if not callable(obj) else None
    doc = doc or inspect.getdoc(obj) or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""


def components_markdown() -> str:
    """A markdown list of every registered component per kind (the generated part of docs/experiments.md)."""
    out = []
    for kind, reg in registries().items():
        out.append(f"### {kind}\n")
        families = {ex: (rx, factory) for rx, factory, ex in getattr(reg, "_families", [])}
        for name in reg.names():
            if name in families:  # a family: show its name pattern and what the factory builds
                rx, factory = families[name]
                doc = f"family `{rx.pattern}`" + (f": {_doc(factory)}" if _doc(factory) else "")
            else:
                doc = _doc(reg.get(name))
            out.append(f"- `{name}`" + (f" — {doc}" if doc else ""))
        out.append("")
    return "\n".join(out)


DOC_START, DOC_END = "<!-- components:start -->", "<!-- components:end -->"


def write_components_doc(path: str | Path) -> None:
    """Regenerate the component list between the markers of ``path`` (docs/experiments.md)."""
    p = Path(path)
    text = p.read_text()
    head, _, rest = text.partition(DOC_START)
    _, _, tail = rest.partition(DOC_END)
    p.write_text(f"{head}{DOC_START}\n{components_markdown()}\n{DOC_END}{tail}")


# --- building --------------------------------------------------------------------------------------------
def _call(fn: Callable[..., Any], options: Mapping[str, Any], inject: Mapping[str, Any]) -> Any:
    """``fn(**options)`` plus each injected value the function takes and the options leave out."""
    names, anything = accepted_options(fn)
    extra = {k: v for k, v in inject.items() if k not in options and (k in names)}
    return fn(**options, **extra)


def build_model(model_cfg: Mapping[str, Any], construct: Mapping[str, Any] | None,
                data: Any) -> tuple[nn.Module | None, SearchSpace | None]:
    """(supernet, space): the model built and, unless it is a space already, searchified by ``construct``."""
    from .api import searchify
    from .space import SearchSpace

    inject = {} if data is None else {"num_classes": data.num_classes, "input_shape": tuple(data.input_shape),
                                      "in_channels": int(data.input_shape[1])}
    fn = model_builder(model_cfg["type"])
    check_options("model", model_cfg["type"], fn, model_cfg["options"])
    obj = _call(fn, model_cfg["options"], inject)
    if isinstance(obj, SearchSpace):
        return None, obj
    if isinstance(getattr(obj, "space", None), SearchSpace):
        if construct is not None:
            raise ConfigError(f"model {model_cfg['type']!r} is a search space already; remove the construct section")
        return obj, obj.space
    if construct is None:
        raise ConfigError(f"model {model_cfg['type']!r} has no search space; add a construct section "
                          f"(pattern, candidates, mixed_op)")
    if data is None:
        raise ConfigError("construct needs data (its input shape traces the model)")
    share = {"none": None, "all": lambda s: "shared",
             "shape": lambda s: f"c{s.in_channels}-{s.out_channels}-s{s.stride}"}[construct["share"]]
    was = obj.training
    obj.eval()  # tracing runs the model once: no BN statistics updates, batch-1 inputs are fine
    net = searchify(obj, pattern=construct["pattern"], candidates=construct["candidates"],
                    example_inputs=data.example_input(), mixed_op=construct["mixed_op"], param_name=share,
                    mixed_op_args=construct["mixed_op_args"], check=construct["check"])
    net.train(was)
    return net, net.space


def build_experiment(cfg: Mapping[str, Any], console: Console | None = None,
                     progress: bool | None = None) -> Experiment:
    """Every component of a validated config, owned by a new Experiment (seeded before anything is built)."""
    import torch

    from .estim.base import ESTIMATORS
    from .optim.base import OPTIMIZERS
    from .rng import seed_everything
    from .routine import Experiment
    from .train.data import DATASETS
    from .train.trainer import TRAINERS

    seed = int(cfg["seed"])
    seed_everything(seed)
    device = cfg["device"]
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    data = None if cfg["data"] is None else \
        _call(DATASETS.get(cfg["data"]["type"]), cfg["data"]["options"], {"seed": seed})
    model, space = build_model(cfg["model"], cfg["construct"], data)
    trainer = _call(TRAINERS.get(cfg["trainer"]["type"]), cfg["trainer"]["options"], {"device": device})
    # default objective: the trainer's metric; without data (table lookups) each result's first metric
    objectives = cfg["objectives"] or [getattr(trainer, "metric", None) if data is not None else None]
    first = objectives[0]
    inject: dict[str, Any] = {"seed": seed, "constraints": cfg["constraints"], "objectives": objectives}
    if isinstance(first, str) and ":" not in first:
        inject["metric"] = first
    opt_cls = OPTIMIZERS.get(cfg["optim"]["type"])
    names, _ = accepted_options(opt_cls)
    opt_inject = {k: v for k, v in inject.items() if k not in cfg["optim"]["options"] and k in names}
    optimizer = opt_cls(space, **cfg["optim"]["options"], **opt_inject)
    estimators = [ESTIMATORS.get(e["type"])(**e["options"]) for e in cfg["estim"]]
    return Experiment(model, space, data, trainer, optimizer, estimators, name=cfg["name"],
                      out_root=cfg["out_root"], seed=seed, objectives=objectives, constraints=cfg["constraints"],
                      device=device, export=cfg["export"], parallel=cfg["parallel"], config=cfg, console=console,
                      progress=cfg["progress"] if progress is None else progress)
