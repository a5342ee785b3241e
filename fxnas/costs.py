"""Cost metrics of an arch, counted from its supernet without training or materialising: the one place the
estimators' ``costs: [params, macs]`` option (and constraints such as ``macs <= 2e6``) get their numbers.

``COSTS`` maps a metric name to a *counter builder* ``build(supernet) -> counter``, where ``counter(arch)``
returns a mapping that holds (at least) that metric. Names that one builder serves (``params``, ``macs``,
``flops``) share one counter and one count per arch. A new metric (a latency table, say) registers its
builder::

    @COSTS.register("latency_ms")
    def latency_counter(supernet):
        table = ...                                   # built once per supernet
        return lambda arch: {"latency_ms": table.lookup(arch)}

Example::

    >>> import torch, fxnas
    >>> from fxnas.costs import ArchCosts
    >>> net = fxnas.elasticize(torch.nn.Sequential(torch.nn.Conv2d(3, 16, 3), torch.nn.Conv2d(16, 4, 1)),
    ...                        torch.randn(1, 3, 8, 8), width=(0.5, 1.0))
    >>> ArchCosts(net, ["params", "macs"])({"width.0": 8})
    {'params': 260.0, 'macs': 8928.0}
"""

from __future__ import annotations

import copy
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from torch import nn

from .errors import ConfigError, RegistryError
from .registry import Registry

COSTS = Registry("cost metric", internal=("supernet",))

Arch = Mapping[str, Any]
Counter = Callable[[Arch], Mapping[str, float]]


def is_elastic(supernet: nn.Module) -> bool:
    """True when the supernet holds elastic modules (``fxnas.elasticize``)."""
    from .elastic.base import ElasticModule

    return any(isinstance(m, ElasticModule) for m in supernet.modules())


def weightless_copy(supernet: nn.Module) -> nn.Module:
    """A deep copy of ``supernet`` whose parameters and buffers live on the meta device (shapes, no data):
    cheap to keep, to pickle, and to materialise for counting."""
    memo: dict[int, Any] = {}
    for t in (*supernet.parameters(), *supernet.buffers()):
        m = t.detach().to("meta")
        memo[id(t)] = nn.Parameter(m, requires_grad=t.requires_grad) if isinstance(t, nn.Parameter) else m
    return copy.deepcopy(supernet, memo)


class ElasticCounter:
    """``fxnas.elastic.cost`` on a weightless copy of an elastic supernet (so it pickles light and never
    sees the live supernet's current arch)."""

    def __init__(self, supernet: nn.Module) -> None:
        self.supernet = weightless_copy(supernet)

    def __call__(self, arch: Arch) -> dict[str, float]:
        """``params``, ``macs`` and ``flops`` (= macs) of ``arch``'s subnet."""
        from .elastic.cost import cost

        c = cost(self.supernet, arch)
        return {"params": float(c["params"]), "macs": float(c["macs"]), "flops": float(c["macs"])}


class GraphCounter:
    """``fxnas.objectives.GraphCost`` (mixed-op supernets), with ``macs`` named as well as ``flops``."""

    def __init__(self, supernet: nn.Module) -> None:
        from .objectives import GraphCost

        self.graph_cost = GraphCost(supernet)  # type: ignore[arg-type]  # a supernet is a GraphModule

    def __call__(self, arch: Arch) -> dict[str, float]:
        """``params``, ``macs`` and ``flops`` (the same count) of ``arch``'s subnet."""
        c = self.graph_cost(arch)
        return {"params": c["params"], "macs": c["flops"], "flops": c["flops"]}


def structure_counter(supernet: nn.Module) -> Counter:
    """``params``, ``macs`` and ``flops`` (= macs) of the arch's subnet, counted from the supernet unmaterialised.

    ``macs``: conv/linear multiply-accumulates per sample; fxnas.elastic.cost counts elastic supernets,
    GraphCost the others."""
    return ElasticCounter(supernet) if is_elastic(supernet) else GraphCounter(supernet)


for _name in ("params", "macs", "flops"):
    COSTS.register(_name, obj=structure_counter)


def check_costs(names: Sequence[str], where: str = "costs") -> list[str]:
    """``names`` as a list when each is a registered cost metric, else a ConfigError naming the valid ones."""
    if isinstance(names, str):
        raise ConfigError(f"{where} must be a list of metric names (e.g. [params, macs]), got {names!r}")
    out = []
    for n in names:
        try:
            COSTS.get(n)
        except RegistryError as exc:
            raise ConfigError(f"{where}: {exc}") from None
        if n in out:
            raise ConfigError(f"{where} lists {n!r} twice")
        out.append(n)
    return out


class ArchCosts:
    """``names`` of each arch of ``supernet``: ``ArchCosts(supernet, ["params", "macs"])(arch) -> {...}``.

    Counters are built on the first call (one per builder) and pickle with the object (dask workers).
    """

    def __init__(self, supernet: nn.Module, names: Sequence[str], where: str = "costs") -> None:
        self.names = check_costs(names, where)
        self.supernet: nn.Module | None = supernet
        self.counters: dict[str, Counter] = {}  # builder's registry name -> counter

    def _counter(self, name: str) -> Counter:
        builder = COSTS.get(name)
        for other, counter in self.counters.items():
            if COSTS.get(other) is builder:
                return counter
        if self.supernet is None:
            raise ConfigError(f"cost metric {name!r} needs the supernet, which this copy does not carry")
        self.counters[name] = builder(self.supernet)
        return self.counters[name]

    def build(self) -> ArchCosts:
        """Build every counter now (then the supernet is no longer needed); returns self."""
        for n in self.names:
            self._counter(n)
        return self

    def __call__(self, arch: Arch) -> dict[str, float]:
        """The requested metrics of ``arch``, in the requested order."""
        out: dict[str, float] = {}
        counted: dict[int, Mapping[str, float]] = {}
        for n in self.names:
            counter = self._counter(n)
            if id(counter) not in counted:
                counted[id(counter)] = counter(arch)
            if n not in counted[id(counter)]:
                raise ConfigError(f"cost metric {n!r}: its counter gave {sorted(counted[id(counter)])}, not {n!r}")
            out[n] = float(counted[id(counter)][n])
        return out

    def __getstate__(self) -> dict[str, Any]:
        """The built counters without the live supernet (they hold what they need)."""
        self.build()
        return {**self.__dict__, "supernet": None}


class CostOption:
    """An estimator's ``costs`` option: metric names checked when the estimator is built, counted for archs of
    whatever supernet the estimator runs on (counters built once per supernet)."""

    def __init__(self, names: Sequence[str], where: str = "costs") -> None:
        self.names = check_costs(names, where)
        self.where = where
        self._costs: ArchCosts | None = None
        self._for: weakref.ref[nn.Module] | None = None  # the supernet the counters were built for

    def __call__(self, supernet: nn.Module | None, arch: Arch) -> dict[str, float]:
        """The metrics of ``arch`` (empty when no cost is asked for)."""
        if not self.names:
            return {}
        if supernet is None:
            raise ConfigError(f"{self.where}: cost metrics need a supernet in the experiment")
        if self._costs is None or self._for is None or self._for() is not supernet:
            self._costs, self._for = ArchCosts(supernet, self.names, self.where), weakref.ref(supernet)
        return self._costs(arch)

    def __deepcopy__(self, memo: dict) -> CostOption:
        # a copied estimator counts on its own supernet: the counters are not shared
        return CostOption(self.names, self.where)


__all__ = ["COSTS", "ArchCosts", "CostOption", "ElasticCounter", "GraphCounter", "check_costs", "is_elastic",
           "structure_counter", "weightless_copy"]
