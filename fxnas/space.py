"""Search-space params (Categorical, Numerical, Tensor), the SearchSpace that owns them, and update events."""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from .errors import ConfigError
from .registry import Registry

DERIVE_RULES = Registry("derive rule")


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


class SearchSpace:
    """The named params of one supernet: plain data that pickles, shared with the modules that read them.

    A param is shared by every module built for it (a mixed op keeps its Categorical, an elastic conv its
    width); ``apply(arch)`` sets values and those modules read them when they next run. ``derive_rule``
    names how gradient optimizers turn this space's alphas into an arch (a DERIVE_RULES entry).

    Example::

        >>> from fxnas.space import Categorical, Numerical, SearchSpace
        >>> space = SearchSpace()
        >>> op = space.add(Categorical("conv1", ["NC3", "DW3", "IDT"]))
        >>> _ = space.add(Numerical("width", 0.25, 1.0))
        >>> space.apply({"conv1": "DW3"})
        {'conv1': 'DW3'}
        >>> op.value, space.size()
        ('DW3', inf)
        >>> import pickle; pickle.loads(pickle.dumps(space)).current()
        {'conv1': 'DW3', 'width': 0.25}
    """

    def __init__(self, derive_rule: str = "argmax") -> None:
        self.params: dict[str, Param] = {}
        self.derive_rule = derive_rule

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
        """The discrete arch implied by the tensors under this space's ``derive_rule`` (see DERIVE_RULES)."""
        return DERIVE_RULES.get(self.derive_rule)(self)

    def argmax(self) -> dict[str, Any]:
        """The discrete arch implied by the tensors: argmax over each categorical's weights."""
        arch = self.current()
        for t in self.tensors().values():
            owner = getattr(t, "categorical", None)
            if owner is not None and owner in self.params:
                cat = self.params[owner]
                arch[owner] = cat.choices[int(torch.argmax(t.value.detach()).item())]
        return arch

    def apply(self, arch: Mapping[str, Any]) -> dict[str, Any]:
        """Set param values (validated first, so a bad arch changes nothing); returns the applied arch.

        The supernet's modules hold these same Param objects and read their values when they run.
        """
        arch = self.validate(arch)
        for k, v in arch.items():
            self.params[k].value = v
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


@DERIVE_RULES.register("argmax")
def argmax_rule(space: SearchSpace) -> dict[str, Any]:
    """Argmax over each categorical's weights (other params keep their values)."""
    return space.argmax()
