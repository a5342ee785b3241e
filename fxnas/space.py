"""Search-space params (Categorical, Numerical, Tensor), the SearchSpace that owns them, and update events."""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from .errors import ConfigError


class Param:
    """A named search variable; subclasses define its domain."""

    name: str
    value: Any

    def sample(self, rng: random.Random) -> Any:
        """A uniformly random value of the domain."""
        raise NotImplementedError

    def validate(self, value: Any) -> Any:
        """``value`` normalised, or ConfigError naming the valid domain."""
        return value

    def describe(self) -> dict[str, Any]:
        """The param as plain data (for space files)."""
        raise NotImplementedError


class Categorical(Param):
    """A choice among a fixed list (candidate names, widths, kernel sizes...)."""

    def __init__(self, name: str, choices: Sequence[Any], default: Any = None) -> None:
        if not choices:
            raise ConfigError(f"categorical param {name!r} needs at least one choice")
        self.name = name
        self.choices = list(choices)
        self.value = self.choices[0] if default is None else self.validate(default)

    def sample(self, rng: random.Random) -> Any:
        return rng.choice(self.choices)

    def validate(self, value: Any) -> Any:
        if value in self.choices:
            return value
        if isinstance(value, int) and not isinstance(value, bool) and value not in self.choices \
                and 0 <= value < len(self.choices) and all(isinstance(c, str) for c in self.choices):
            return self.choices[value]  # an index into named choices
        raise ConfigError(f"{value!r} is not a valid value for {self.name!r}; valid: {self.choices}")

    def index(self, value: Any = None) -> int:
        """Position of ``value`` (default: the current value) among the choices."""
        return self.choices.index(self.value if value is None else value)

    def __len__(self) -> int:
        return len(self.choices)

    def describe(self) -> dict[str, Any]:
        return {"type": "categorical", "choices": list(self.choices)}

    def __repr__(self) -> str:
        return f"Categorical({self.name!r}, {self.choices})"


class Numerical(Param):
    """A number in [low, high], integer when ``integer`` (sampled log-uniformly when ``log``)."""

    def __init__(self, name: str, low: float, high: float, integer: bool = False, log: bool = False,
                 default: float | None = None) -> None:
        if not low <= high:
            raise ConfigError(f"numerical param {name!r}: low {low} > high {high}")
        self.name, self.low, self.high, self.integer, self.log = name, low, high, integer, log
        self.value = self.validate(low if default is None else default)

    def sample(self, rng: random.Random) -> float:
        if self.integer:
            return rng.randint(int(self.low), int(self.high))
        if self.log:
            return math.exp(rng.uniform(math.log(self.low), math.log(self.high)))
        return rng.uniform(self.low, self.high)

    def validate(self, value: Any) -> Any:
        try:
            v = float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{value!r} is not a number; {self.name!r} takes [{self.low}, {self.high}]") from None
        if not self.low <= v <= self.high:
            raise ConfigError(f"{value!r} is outside [{self.low}, {self.high}] for {self.name!r}")
        return int(round(v)) if self.integer else v

    def describe(self) -> dict[str, Any]:
        return {"type": "numerical", "low": self.low, "high": self.high, "integer": self.integer, "log": self.log}

    def __repr__(self) -> str:
        return f"Numerical({self.name!r}, [{self.low}, {self.high}])"


class TensorParam(Param):
    """A continuous architecture tensor (e.g. DARTS alphas), trained by gradient optimizers."""

    def __init__(self, name: str, shape: Sequence[int], init: Callable[[torch.Tensor], Any] | None = None,
                 scale: float = 1e-3, categorical: str | None = None) -> None:
        self.name = name
        self.categorical = categorical  # the Categorical param these weights score, if any
        data = torch.empty(*shape)
        if init is None:
            data.normal_(0.0, scale)  # DARTS init: 1e-3 * randn
        else:
            init(data)
        self.value = nn.Parameter(data)

    def sample(self, rng: random.Random) -> torch.Tensor:
        return self.value.detach().clone()

    def validate(self, value: Any) -> torch.Tensor:
        t = torch.as_tensor(value, dtype=self.value.dtype)
        if t.shape != self.value.shape:
            raise ConfigError(f"tensor param {self.name!r} has shape {tuple(self.value.shape)}, got {tuple(t.shape)}")
        return t

    def describe(self) -> dict[str, Any]:
        return {"type": "tensor", "shape": list(self.value.shape)}

    def __repr__(self) -> str:
        return f"TensorParam({self.name!r}, {tuple(self.value.shape)})"


@dataclass
class Handler:
    """A callback run when any of ``params`` changes; for one ``target`` only the highest priority runs."""

    params: tuple[str, ...]
    callback: Callable[[Mapping[str, Any]], None]
    target: Any = None
    priority: int = 0
    order: int = field(default=0, compare=False)


class SearchSpace:
    """Named params of one supernet plus the handlers that apply their values to it."""

    def __init__(self) -> None:
        self.params: dict[str, Param] = {}
        self.handlers: list[Handler] = []

    # --- params -------------------------------------------------------------------------------------
    def add(self, param: Param) -> Param:
        """Add ``param``; a param of the same name and domain is shared (returned instead)."""
        old = self.params.get(param.name)
        if old is not None:
            if old.describe() != param.describe():
                raise ConfigError(
                    f"param {param.name!r} is declared twice with different domains: "
                    f"{old.describe()} vs {param.describe()}")
            return old
        self.params[param.name] = param
        return param

    def __getitem__(self, name: str) -> Param:
        try:
            return self.params[name]
        except KeyError:
            raise ConfigError(f"no param {name!r} in this space; params: {list(self.params)[:20]}") from None

    def __contains__(self, name: object) -> bool:
        return name in self.params

    def __iter__(self) -> Iterator[str]:
        return iter(self.params)

    def __len__(self) -> int:
        return len(self.params)

    def items(self) -> Iterable[tuple[str, Param]]:
        """(name, param) pairs."""
        return self.params.items()

    def discrete(self) -> dict[str, Param]:
        """The Categorical and Numerical params: those an arch assigns."""
        return {k: p for k, p in self.params.items() if not isinstance(p, TensorParam)}

    def tensors(self) -> dict[str, TensorParam]:
        """The TensorParams (architecture weights of gradient methods)."""
        return {k: p for k, p in self.params.items() if isinstance(p, TensorParam)}

    def arch_parameters(self) -> list[nn.Parameter]:
        """Every TensorParam's nn.Parameter, for an arch optimizer."""
        return [p.value for p in self.tensors().values()]

    def size(self) -> float:
        """Number of discrete archs (inf when a Numerical param is continuous)."""
        n = 1.0
        for p in self.discrete().values():
            if isinstance(p, Categorical):
                n *= len(p.choices)
            elif p.integer:
                n *= int(p.high) - int(p.low) + 1
            else:
                return math.inf
        return n

    # --- archs --------------------------------------------------------------------------------------
    def current(self) -> dict[str, Any]:
        """The arch the space holds now."""
        return {k: p.value for k, p in self.discrete().items()}

    def sample(self, rng: random.Random | int | None = None) -> dict[str, Any]:
        """A uniformly random arch (not applied)."""
        r = rng if isinstance(rng, random.Random) else random.Random(rng)
        return {k: p.sample(r) for k, p in self.discrete().items()}

    def validate(self, arch: Mapping[str, Any], complete: bool = False) -> dict[str, Any]:
        """``arch`` normalised; unknown names or invalid values raise ConfigError."""
        out = {}
        for k, v in arch.items():
            out[k] = self[k].validate(v)
        if complete:
            missing = [k for k in self.discrete() if k not in out]
            if missing:
                raise ConfigError(f"arch is missing params {missing[:10]}")
        return out

    def derive(self) -> dict[str, Any]:
        """The discrete arch implied by the tensors (argmax over each categorical's weights)."""
        arch = self.current()
        for t in self.tensors().values():
            owner = getattr(t, "categorical", None)
            if owner is not None and owner in self.params:
                cat = self.params[owner]
                arch[owner] = cat.choices[int(torch.argmax(t.value.detach()).item())]
        return arch

    # --- events -------------------------------------------------------------------------------------
    def on(self, params: str | Sequence[str], callback: Callable[[Mapping[str, Any]], None],
           target: Any = None, priority: int | None = None) -> Handler:
        """Subscribe ``callback(values)`` to changes of ``params``; more params means higher priority."""
        names = (params,) if isinstance(params, str) else tuple(params)
        for n in names:
            self[n]
        h = Handler(names, callback, target, len(names) if priority is None else priority, len(self.handlers))
        self.handlers.append(h)
        return h

    def apply(self, arch: Mapping[str, Any]) -> dict[str, Any]:
        """Set param values and emit update events to the handlers; returns the applied (validated) arch."""
        arch = self.validate(arch)
        for k, v in arch.items():
            self.params[k].value = v
        changed = set(arch)
        fired = [h for h in self.handlers if changed.intersection(h.params)]
        fired.sort(key=lambda h: (-h.priority, h.order))
        done_targets: set[int] = set()
        for h in fired:
            if h.target is not None:
                if id(h.target) in done_targets:
                    continue
                done_targets.add(id(h.target))
            h.callback({n: self.params[n].value for n in h.params})
        return arch

    # --- state --------------------------------------------------------------------------------------
    def to(self, device: torch.device | str) -> SearchSpace:
        """Move tensor params to ``device`` in place (keeping their identity as Parameters)."""
        for t in self.tensors().values():
            t.value.data = t.value.data.to(device)
        return self

    def state_dict(self) -> dict[str, Any]:
        """Values of every param (tensors cloned), for checkpoints."""
        return {k: (p.value.detach().clone() if isinstance(p, TensorParam) else p.value)
                for k, p in self.params.items()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore values saved by state_dict (tensors in place, discrete via apply)."""
        for k, v in state.items():
            p = self[k]
            if isinstance(p, TensorParam):
                with torch.no_grad():
                    p.value.copy_(v)
        self.apply({k: v for k, v in state.items() if not isinstance(self.params[k], TensorParam)})

    def describe(self) -> dict[str, Any]:
        """Every param as plain data."""
        return {k: p.describe() for k, p in self.params.items()}

    def __repr__(self) -> str:
        return f"SearchSpace({len(self.params)} params, size={self.size():.3g})"
