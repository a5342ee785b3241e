"""Cost metrics of an arch, counted from its supernet without training or materialising: the one place the
estimators' ``costs: [params, macs]`` option (and constraints such as ``macs <= 2e6``) get their numbers.

``COSTS`` maps a metric name to a *counter builder* ``build(supernet) -> counter``, where ``counter(arch)``
returns a mapping that holds (at least) that metric. A cost is named (``macs``) or given with options
(``{type: latency_ms, source: measured}``), checked and built by ``COSTS.build`` like every component. Names
that one builder serves with the same options (``params``, ``macs``, ``flops``) share one counter and one count
per arch. ``latency_ms`` (``fxnas.hardware.latency_cost``) is measured on a runtime or predicted by the
latency table or an XGBoost predictor. A new metric registers its builder::

    @COSTS.register("energy_mj")
    def energy_counter(supernet, table: str = "energy.json"):
        lut = ...                                     # built once per supernet
        return lambda arch: {"energy_mj": lut.lookup(arch)}

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

from .errors import ConfigError
from .registry import Registry

COSTS = Registry("cost metric", internal=("supernet",))

Arch = Mapping[str, Any]
Counter = Callable[[Arch], Mapping[str, float]]
CostSpec = str | Mapping[str, Any]  # a metric name, or {type: NAME, option: value}


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


def memory_counter(supernet: nn.Module) -> Counter:
    """``read_bytes``, ``write_bytes`` (memory traffic per sample) and ``profile_flops`` (the static profile's
    FLOPs: 2 per MAC plus the other ops) of the arch's subnet, from a mixed-op supernet's cost tree."""
    if is_elastic(supernet):
        raise ConfigError("read_bytes, write_bytes and profile_flops are counted on mixed-op supernets; an "
                          "elastic supernet gives params, macs, flops and latency_ms")
    from .profilers.graph_cost import GraphCost

    return GraphCost(supernet)  # type: ignore[arg-type]  # a supernet is a GraphModule


for _name in ("read_bytes", "write_bytes", "profile_flops"):
    COSTS.register(_name, obj=memory_counter)


def cost_specs(specs: Sequence[CostSpec], where: str = "costs") -> dict[str, dict[str, Any]]:
    """``{metric name: options}`` of a ``costs`` list, each entry checked against its builder's options
    (``Registry.check``); a ConfigError naming what was wrong and the valid names or options."""
    if isinstance(specs, (str, Mapping)):
        raise ConfigError(f"{where} must be a list of metric names or {{type: NAME, ...}} specs "
                          f"(e.g. [params, macs, {{type: latency_ms, source: measured}}]), got {specs!r}")
    out: dict[str, dict[str, Any]] = {}
    for i, spec in enumerate(specs):
        if isinstance(spec, Mapping) and spec.get("type") in ("static", "latency"):  # earlier metric providers
            raise ConfigError(f"{where}[{i}]: the {spec['type']!r} metric provider is now cost metrics: name them "
                              f"(params, macs, read_bytes...) or give {{type: latency_ms, source: ...}}")
        name, _, opts = COSTS.check(spec, f"{where}[{i}]")  # an unknown name: UnknownComponentError
        if name in out:
            raise ConfigError(f"{where} lists {name!r} twice")
        out[name] = opts
    return out


def check_costs(specs: Sequence[CostSpec], where: str = "costs") -> list[str]:
    """The metric names of a ``costs`` list when each entry is a registered cost metric with valid options,
    else a ConfigError naming the valid ones."""
    return list(cost_specs(specs, where))


class ArchCosts:
    """``names`` of each arch of ``supernet``: ``ArchCosts(supernet, ["params", "macs"])(arch) -> {...}``.

    Counters are built on the first call (one per builder) and pickle with the object (dask workers).
    """

    def __init__(self, supernet: nn.Module, names: Sequence[CostSpec], where: str = "costs") -> None:
        self.specs = cost_specs(names, where)
        self.names = list(self.specs)
        self.where = where
        self.supernet: nn.Module | None = supernet
        self.counters: dict[str, Counter] = {}  # metric name -> counter (shared by names of one builder)

    def _counter(self, name: str) -> Counter:
        builder, opts = COSTS.get(name), self.specs[name]
        for other, counter in self.counters.items():
            if COSTS.get(other) is builder and self.specs[other] == opts:
                return counter
        if self.supernet is None:
            raise ConfigError(f"cost metric {name!r} needs the supernet, which this copy does not carry")
        self.counters[name] = COSTS.build({"type": name, **opts}, f"{self.where}.{name}",
                                          inject={"supernet": self.supernet})
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

    def __init__(self, names: Sequence[CostSpec], where: str = "costs") -> None:
        self.specs = list(names) if not isinstance(names, (str, Mapping)) else names
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
            self._costs, self._for = ArchCosts(supernet, self.specs, self.where), weakref.ref(supernet)
        return self._costs(arch)

    def __deepcopy__(self, memo: dict) -> CostOption:
        # a copied estimator counts on its own supernet: the counters are not shared
        return CostOption(self.specs, self.where)


__all__ = ["COSTS", "ArchCosts", "CostOption", "CostSpec", "ElasticCounter", "GraphCounter", "check_costs",
           "cost_specs", "is_elastic", "memory_counter", "structure_counter", "weightless_copy"]
