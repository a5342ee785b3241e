"""Space files: a YAML recipe (model source, weights, input shape, pattern, candidates, mixed op, an
``elastic`` section, seed) from which the same supernet is re-created, plus its params for validation on
reload."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.fx as fx
from torch import nn

from .api import build_supernet
from .errors import ConfigError, FxnasError, missing_file
from .modelfile import ModelSource, load_weights, portable_path
from .passes.construct import candidate_names
from .passes.patterns import PATTERNS, Pattern
from .slot import SlotSpec
from .supernet import space_of
from .yamlio import load_yaml

VERSION = 1


def pattern_to_data(pattern: Any) -> str | list[str]:
    """A pattern as registry names; a Python callable or type raises, since a file cannot hold code."""
    if isinstance(pattern, str):
        names = [p.strip() for p in pattern.split(",") if p.strip()]
        for n in names:
            PATTERNS.get(n)  # unknown names fail now, not on reload
        return names[0] if len(names) == 1 else names
    if isinstance(pattern, Pattern) and pattern.name in PATTERNS and PATTERNS.get(pattern.name) is pattern:
        return pattern.name
    if isinstance(pattern, (list, tuple)):
        out: list[str] = []
        for p in pattern:
            d = pattern_to_data(p)
            out += d if isinstance(d, list) else [d]
        return out
    what = getattr(pattern, "__name__", type(pattern).__name__)
    raise ConfigError(
        f"pattern {what!r} is a Python {'type' if isinstance(pattern, type) else 'callable'} and cannot be saved "
        f"in a space file; register it (fxnas.PATTERNS.register(name, fxnas.Pattern(...))) and pass its name. "
        f"Registered patterns: {', '.join(PATTERNS.names())}")


def candidates_to_data(candidates: Any) -> list[str] | dict[str, list[str]]:
    """Candidates as names (a list, or a dict slot → list); a callable raises, since a file cannot hold code."""
    if isinstance(candidates, str):
        return [c.strip() for c in candidates.split(",") if c.strip()]
    if isinstance(candidates, Mapping):
        return {str(k): [str(c) for c in v] for k, v in candidates.items()}
    if isinstance(candidates, (list, tuple)) and all(isinstance(c, str) for c in candidates):
        return list(candidates)
    raise ConfigError(f"candidates {candidates!r} cannot be saved in a space file; give names (a list, or a dict "
                      f"slot → names), not a Python callable")


def _joined(path: str, base: str | os.PathLike) -> str:
    return path if os.path.isabs(path) else os.path.normpath(os.path.join(base, path))


def _ref_path(ref: str, base: str | os.PathLike | None, fix: Any) -> str:
    """``file.py:Name`` with its file path passed through ``fix(path, base)``; other refs as they are."""
    mod, sep, name = ref.rpartition(":")
    return f"{fix(mod, base)}:{name}" if sep and mod.endswith(".py") and base is not None else ref


@dataclass
class SpaceRecipe:
    """Everything needed to rebuild a supernet with a fixed seed: searchify(model, pattern, candidates, ...),
    then elasticize as the ``elastic`` section asks (the section of a config; either part may be absent:
    ``pattern=None`` for an elastic-only space)."""

    source: ModelSource
    input_shape: tuple[int, ...]
    pattern: str | list[str] | None = "conv3x3"
    candidates: list[str] | dict[str, list[str]] | None = field(default_factory=lambda: ["ORIG"])
    mixed_op: str = "Index"
    mixed_op_args: dict[str, Any] = field(default_factory=dict)
    weights: str | None = None
    seed: int = 0
    elastic: dict[str, Any] | None = None
    leaf_modules: list[str] = field(default_factory=list)
    concrete_args: dict[str, Any] = field(default_factory=dict)
    tracer: str | None = None  # a name of fxnas.tracers.TRACERS; None: the default for the model

    def __post_init__(self) -> None:
        from .elastic.config import validate_elastic

        if self.pattern is None and self.elastic is None:
            raise ConfigError("a space needs a pattern (and candidates), an elastic section, or both")
        if self.pattern is not None:
            self.pattern = pattern_to_data(self.pattern)
            self.candidates = candidates_to_data(self.candidates if self.candidates is not None else ["ORIG"])
        else:
            self.candidates = None
        if self.elastic is not None:
            validate_elastic(self.elastic)  # a bad section fails now, not on reload
            self.elastic = dict(self.elastic)
        self.input_shape = tuple(int(d) for d in self.input_shape)
        self.leaf_modules = [str(r) for r in self.leaf_modules]
        self.concrete_args = dict(self.concrete_args)
        if self.tracer is not None:
            from .tracers import TRACERS

            if self.tracer not in TRACERS:
                raise ConfigError(f"unknown tracer {self.tracer!r}; valid tracers: {', '.join(TRACERS.names())}")
        self.leaf_types()  # an unknown class fails now, not on reload

    def leaf_types(self) -> tuple[type, ...]:
        """The classes ``leaf_modules`` names (``torch.nn:LSTM``, ``model.py:Block``)."""
        from .userobj import load_object

        types = tuple(load_object(r) for r in self.leaf_modules)
        bad = [r for r, t in zip(self.leaf_modules, types) if not (isinstance(t, type) and issubclass(t, nn.Module))]
        if bad:
            raise ConfigError(f"leaf module {bad[0]!r} is not an nn.Module class")
        return types

    def example_inputs(self) -> torch.Tensor:
        """Random inputs of ``input_shape`` from a private generator (the global RNG is untouched)."""
        return torch.randn(self.input_shape, generator=torch.Generator().manual_seed(self.seed))

    def build_model(self) -> nn.Module:
        """The model, initialised under ``seed`` and with ``weights`` loaded when given."""
        torch.manual_seed(self.seed)
        model = self.source.build()
        if self.weights is not None:
            load_weights(model, self.weights)
        return model

    def build(self, model: nn.Module | None = None) -> tuple[fx.GraphModule, dict[str, SlotSpec]]:
        """(supernet, slot specs by path); candidate weights are initialised under ``seed``."""
        model = self.build_model() if model is None else model
        specs: dict[str, SlotSpec] = {}
        cands = self.candidates

        def record(spec: SlotSpec) -> list[str]:  # construct asks per slot: note each spec on the way
            specs[spec.name] = spec
            return candidate_names(cands, spec)

        if self.pattern is not None:
            net = build_supernet(model, self.pattern, record, self.example_inputs(), self.mixed_op,
                                 self.mixed_op_args or None, seed=self.seed, leaf_modules=self.leaf_types(),
                                 concrete_args=self.concrete_args or None, tracer=self.tracer)
        else:
            net = model
        if self.elastic is not None:
            from .elastic.config import apply_elastic

            net = apply_elastic(net, self.example_inputs(), self.elastic)
        return net, specs

    def to_dict(self, relative_to: str | os.PathLike | None = None) -> dict[str, Any]:
        """The recipe as plain data; file paths relative to ``relative_to`` (the space file's folder)."""
        weights = self.weights
        if weights is not None and relative_to is not None:
            weights = portable_path(weights, relative_to)
        return {"model": self.source.to_dict(relative_to), "weights": weights, "input_shape": list(self.input_shape),
                "pattern": self.pattern, "candidates": self.candidates, "mixed_op": self.mixed_op,
                "mixed_op_args": dict(self.mixed_op_args), "seed": self.seed, "elastic": self.elastic,
                "leaf_modules": [_ref_path(r, relative_to, portable_path) for r in self.leaf_modules],
                "concrete_args": dict(self.concrete_args), "tracer": self.tracer}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], relative_to: str | os.PathLike | None = None) -> SpaceRecipe:
        """Inverse of to_dict."""
        needed = ("model", "input_shape") + (() if d.get("elastic") is not None else ("pattern", "candidates"))
        missing = [k for k in needed if k not in d]
        if missing:
            raise ConfigError(f"space file lacks {missing}; it needs model, input_shape, and pattern and "
                              f"candidates or an elastic section")
        weights = d.get("weights")
        if weights is not None and relative_to is not None:
            weights = _joined(weights, relative_to)
        return cls(ModelSource.from_dict(d["model"], relative_to), tuple(d["input_shape"]), d.get("pattern"),
                   d.get("candidates"), d.get("mixed_op", "Index"), dict(d.get("mixed_op_args") or {}), weights,
                   int(d.get("seed", 0)), d.get("elastic"),
                   [_ref_path(r, relative_to, _joined) for r in d.get("leaf_modules") or []],
                   dict(d.get("concrete_args") or {}), d.get("tracer"))


def describe_slots(specs: Mapping[str, SlotSpec], net: fx.GraphModule) -> dict[str, dict[str, Any]]:
    """Per slot: its spec as plain data plus the candidates of its param."""
    space = space_of(net)
    out = {}
    for name, spec in specs.items():
        d = spec.describe()
        d["candidates"] = list(space[name].choices) if name in space else None
        out[name] = d
    return out


def write_space(path: str | os.PathLike, recipe: SpaceRecipe, net: fx.GraphModule | None = None,
                specs: Mapping[str, SlotSpec] | None = None) -> Path:
    """Write a space file for ``recipe`` (building the supernet when ``net`` is not given)."""
    import yaml

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if net is None or specs is None:
        net, specs = recipe.build()
    space = space_of(net)
    data = {"version": VERSION, **recipe.to_dict(relative_to=path.parent.resolve()), "size": space.size(),
            "params": space.describe(), "slots": describe_slots(specs, net)}
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def read_space(path: str | os.PathLike) -> tuple[SpaceRecipe, dict[str, Any]]:
    """(recipe, the whole file as data) from a space file."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise missing_file("space file", path)
    try:
        data = load_yaml(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"space file {str(path)!r} is not valid YAML: {exc}") from exc
    if not isinstance(data, Mapping) or data.get("version") != VERSION:
        raise ConfigError(f"{str(path)!r} is not an fxnas space file (version {VERSION})")
    return SpaceRecipe.from_dict(data, relative_to=path.parent.resolve()), dict(data)


def load_supernet(path: str | os.PathLike, validate: bool = True) -> fx.GraphModule:
    """Re-create the supernet a space file describes; with ``validate``, its params must equal the saved ones."""
    recipe, data = read_space(path)
    net, _ = recipe.build()
    if validate and "params" in data:
        got, want = space_of(net).describe(), data["params"]
        if got != want:
            diff = sorted(set(got) ^ set(want)) or [k for k in want if got.get(k) != want[k]]
            raise FxnasError(f"the supernet rebuilt from {str(path)!r} has other params than the file records "
                             f"(first differences: {diff[:5]}); did the model file or fxnas change?")
    return net
