"""Measured latency: whole models, each candidate at its slot's shape, and a per-op table whose sum predicts.

* ``LatencyProfiler(runtime, cache)``: times modules on a runtime (``fxnas.profilers.runtimes``), each
  structure and input shape once per machine (``fxnas.profilers.cache``); ``candidates(supernet)`` times
  every option of every choice module on the inputs it receives in the supernet.
* ``LatencyTable``: per-op latencies of the static counter's nodes (views are free); a network's prediction
  is their sum.
* ``LatencyCost`` / ``latency_tree(supernet)``: the supernet's latency as a cost tree (fixed ops from the
  table, options measured whole), for exact per-arch sums and the differentiable expected latency.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import torch
import torch.fx as fx
from torch import nn

from ..errors import ConfigError, FxnasError
from ..graph import as_tuple, node_shape
from ..supernet import space_of
from .cache import LatencyCache, open_cache
from .counter import GraphCount, NodeCost, count
from .keys import input_signature, structure_key
from .runtimes import Runtime, Timing, build_runtime
from .tree import CostTree, LevelCost, build_cost_tree, choice_options, choice_sites, is_choice

STATISTICS = {"median": "median_ms", "min": "min_ms", "p90": "p90_ms"}


def onnx_latency(model: nn.Module | str | os.PathLike, example_inputs: Any, repeats: int = 30, warmup: int = 5,
                 threads: int = 1, provider: str = "CPUExecutionProvider") -> dict[str, float]:
    """onnxruntime latency of a module (exported first) or an ONNX file: median, p90, min, max, spread (ms)."""
    from .runtimes import OnnxRuntime

    return OnnxRuntime(provider, threads).measure(model, example_inputs, repeats, warmup).to_dict()


class LatencyProfiler:
    """Times modules on one runtime, each (structure, input shapes) once per machine when a cache is given.

    ``runtime`` is a registry name (``onnxruntime``, ``torch``, ``torch_compile``) with ``runtime_options``
    (e.g. ``threads=1``, ``provider=...``, ``device=...``) or a Runtime; ``cache`` is a LatencyCache, a path,
    ``True`` (the default cache file) or None (measure every time). ``statistic`` (``median``, ``min`` or
    ``p90``) is the figure tables and trees use from each timing; ``flush_mb`` evicts the CPU caches before
    each timed run (see ``Runtime.measure``). ``measured`` counts actual timings.
    """

    def __init__(self, runtime: str | Runtime = "onnxruntime", cache: Any = None, repeats: int = 30,
                 warmup: int = 5, statistic: str = "median", flush_mb: float = 0.0, **runtime_options: Any) -> None:
        if statistic not in STATISTICS:
            raise ConfigError(f"latency statistic must be one of {list(STATISTICS)}, got {statistic!r}")
        self.statistic, self.flush_mb = statistic, float(flush_mb)
        self.runtime = build_runtime(runtime, **runtime_options)
        self.cache: LatencyCache | None = open_cache(cache)
        self.repeats, self.warmup = int(repeats), int(warmup)
        self.measured = 0
        self._memo: dict[str, Timing] = {}

    def runtime_key(self) -> str:
        """The runtime's key plus how it is timed when that changes the figures (cache flushing)."""
        rt = self.runtime.key()
        return f"{rt}/flush={self.flush_mb:g}MiB" if self.flush_mb else rt

    def value(self, timing: Timing) -> float:
        """The figure (ms) of ``timing`` this profiler reports: its ``statistic``."""
        return float(getattr(timing, STATISTICS[self.statistic]))

    def key(self, module: nn.Module | str | os.PathLike, example_inputs: Any) -> str:
        """The op key of ``module`` on ``example_inputs`` (structure and shapes; an ONNX file: its hash)."""
        args = as_tuple(example_inputs)
        if isinstance(module, nn.Module):
            return structure_key(module, args)
        digest = hashlib.sha1(Path(module).read_bytes()).hexdigest()[:16]
        return f"onnx:{digest}@{input_signature(args)}"

    def measure(self, module: nn.Module | str | os.PathLike, example_inputs: Any, key: str | None = None) -> Timing:
        """The timing of ``module`` on ``example_inputs`` (from the cache when measured before)."""
        key = key or self.key(module, example_inputs)
        if key in self._memo:
            return self._memo[key]
        rt, dev = self.runtime_key(), self.runtime.device()
        timing = self.cache.get(rt, key, dev) if self.cache is not None else None
        if timing is None:
            timing = self.runtime.measure(module, example_inputs, self.repeats, self.warmup, self.flush_mb)
            self.measured += 1
            if self.cache is not None:
                self.cache.put(rt, key, timing, dev)
        self._memo[key] = timing
        return timing

    def candidates(self, supernet: fx.GraphModule, example_inputs: Any = None) -> dict[str, dict[Any, Timing]]:
        """``{choice module path: {option: Timing}}``: every option timed on the inputs its choice module gets
        in the supernet (default: batch 1 of the traced input shapes). Options holding inner choices are left
        out (``latency_tree`` prices those from the per-op table)."""
        space = space_of(supernet)
        modes = [(m, m.training) for m in supernet.modules()]
        try:
            sites = choice_sites(supernet, example_inputs).sites
            out: dict[str, dict[Any, Timing]] = {}
            for site in sites:
                opts = choice_options(site.module, space)  # type: ignore[arg-type]
                out[site.path] = {v: self.measure(m, _fresh(site.args)) for v, m in opts.items()
                                  if not any(is_choice(x) for x in m.modules())}
            return out
        finally:
            for m, was in modes:
                m.training = was


def _fresh(args: tuple[Any, ...]) -> tuple[Any, ...]:
    """Random tensors of the shapes of ``args`` (the counter's zeros could hit fast paths)."""
    return tuple(torch.randn(a.shape, dtype=a.dtype, device=a.device) if isinstance(a, torch.Tensor)
                 and a.dtype.is_floating_point else a for a in args)


# --- per-op table --------------------------------------------------------------------------------------
def single_op_module(gm: fx.GraphModule, n: fx.Node) -> tuple[fx.GraphModule, list[fx.Node]]:
    """A GraphModule running only ``n`` (its node inputs become placeholders) and those input nodes."""
    g = fx.Graph()
    env: dict[fx.Node, fx.Node] = {}
    inputs: list[fx.Node] = []
    owners: dict[str, Any] = {}
    for a in n.all_input_nodes:
        if a.op == "get_attr":  # constants such as weights of a functional op travel with the op
            env[a] = g.get_attr(a.target)
            v = gm
            for part in a.target.split("."):
                v = getattr(v, part)
            owners[a.target] = v
        else:
            env[a] = g.placeholder(f"in{len(inputs)}")
            inputs.append(a)
    if n.op == "call_module":
        owners[n.target] = gm.get_submodule(n.target)
    g.output(g.node_copy(n, lambda x: env[x]))
    return fx.GraphModule(owners, g), inputs


def _fake(shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
    if dtype.is_floating_point:
        return torch.randn(shape, dtype=dtype)
    return torch.zeros(shape, dtype=dtype)  # indices: zeros are always in range


def _node_input(node: fx.Node, shapes: dict[str, tuple[tuple[int, ...], torch.dtype]] | None) -> torch.Tensor:
    if shapes is not None and node.name in shapes:
        return _fake(*shapes[node.name])
    tm = node.meta.get("tensor_meta")
    if tm is None or not hasattr(tm, "shape"):
        raise FxnasError(f"node {node.name} has no tensor shape; per-op latency needs traced shapes")
    return _fake(tuple(tm.shape), tm.dtype)


def priced(c: NodeCost) -> bool:
    """Whether a per-op table prices this node (views and shape queries are free)."""
    return c.op in ("call_module", "call_function", "call_method") and not c.alias


def node_key(gm: fx.GraphModule, n: fx.Node, c: NodeCost) -> str:
    """A string naming a node's op, configuration and argument shapes: equal keys, equal computation."""
    if n.op == "call_module":
        what = structure_key(gm.get_submodule(n.target), ())
    else:
        what = f"{n.op}:{c.target}"
    return f"{what}({c.args})"


def op_key(gm: fx.GraphModule, n: fx.Node) -> str:
    """The key of node ``n`` of a traced (shape-annotated) graph, without counting it."""
    args = ",".join("x".join(map(str, node_shape(a) or ("?",))) if isinstance(a, fx.Node) else repr(a)
                    for a in n.args)
    what = structure_key(gm.get_submodule(n.target), ()) if n.op == "call_module" else \
        f"{n.op}:{getattr(n.target, '__name__', n.target)}"
    return f"{what}({args})"


class LatencyTable:
    """Per-op latencies in ms keyed by ``node_key``; each distinct op is measured once, a network is the sum.

    Ops are timed with ``profiler`` (default: onnxruntime, ``threads`` threads, no disk cache); ``measured``
    counts the ops this table had to time.
    """

    def __init__(self, entries: dict[str, float] | None = None, repeats: int = 20, warmup: int = 3,
                 threads: int = 1, profiler: LatencyProfiler | None = None) -> None:
        self.entries: dict[str, float] = dict(entries or {})
        self.profiler = profiler if profiler is not None else LatencyProfiler(
            "onnxruntime", repeats=repeats, warmup=warmup, threads=threads)
        self.repeats, self.warmup, self.threads = repeats, warmup, threads
        self.measured = 0

    def measure(self, gm: fx.GraphModule, n: fx.Node, key: str | None = None,
                shapes: dict[str, tuple[tuple[int, ...], torch.dtype]] | None = None) -> float:
        """Latency (ms, the profiler's statistic) of the single op ``n`` on random inputs of its input shapes."""
        sub, inputs = single_op_module(gm, n)
        sub.eval()
        before = self.profiler.measured
        t = self.profiler.measure(sub, tuple(_node_input(a, shapes) for a in inputs), key=key)
        self.measured += self.profiler.measured - before
        return self.profiler.value(t)

    def ops_of(self, counted: GraphCount) -> list[tuple[fx.Node, str]]:
        """(node, key) of every op of a counted graph the table prices."""
        nodes = {n.name: n for n in counted.gm.graph.nodes}
        return [(nodes[c.name], node_key(counted.gm, nodes[c.name], c)) for c in counted.nodes if priced(c)]

    def ops(self, module: nn.Module, example_inputs: Any) -> list[tuple[fx.GraphModule, fx.Node, str]]:
        """(graph, node, key) of every op of ``module`` the table prices."""
        counted = count(module, example_inputs)
        return [(counted.gm, n, k) for n, k in self.ops_of(counted)]

    def price(self, counted: GraphCount) -> float:
        """The sum of the entries of a counted graph's ops, measuring unknown ones."""
        total = 0.0
        for n, key in self.ops_of(counted):
            if key not in self.entries:
                self.entries[key] = self.measure(counted.gm, n, key, counted.shapes)
            total += self.entries[key]
        return total

    def predict(self, module: nn.Module, example_inputs: Any) -> float:
        """Predicted latency in ms: the sum of the table's entries over the ops, measuring unknown ones."""
        return self.price(count(module, example_inputs))

    def save(self, path: str | os.PathLike) -> Path:
        """Write the table as JSON."""
        path = Path(path)
        path.write_text(json.dumps({"entries": self.entries, "repeats": self.repeats, "threads": self.threads},
                                   indent=1))
        return path

    @classmethod
    def load(cls, path: str | os.PathLike, profiler: LatencyProfiler | None = None) -> LatencyTable:
        """Read a table written by save."""
        d = json.loads(Path(path).read_text())
        return cls(d["entries"], repeats=d.get("repeats", 20), threads=d.get("threads", 1), profiler=profiler)

    def __len__(self) -> int:
        return len(self.entries)


# --- latency as a cost tree ----------------------------------------------------------------------------
class LatencyCost(LevelCost):
    """Prices cost-tree levels in ms: fixed ops from a per-op table, options without inner choices measured
    whole at their inputs (one session per option: ProxylessNAS's per-block lookup table)."""

    metrics = ("latency_ms",)

    def __init__(self, profiler: LatencyProfiler, table: LatencyTable | None = None) -> None:
        self.profiler = profiler
        self.table = table if table is not None else LatencyTable(profiler=profiler)

    def level(self, counted: GraphCount) -> dict[str, float]:
        return {"latency_ms": self.table.price(counted)}

    def leaf(self, module: nn.Module, args: tuple[Any, ...]) -> dict[str, float] | None:
        return {"latency_ms": self.profiler.value(self.profiler.measure(module, _fresh(args)))}


def latency_tree(supernet: fx.GraphModule, profiler: LatencyProfiler | None = None,
                 table: LatencyTable | None = None, example_inputs: Any = None) -> CostTree:
    """The supernet's latency (``latency_ms``) as a cost tree: ``tree.evaluate(arch)`` is the table's
    prediction of a subnet, ``tree.expected(arch_weights(space), "latency_ms")`` the differentiable one."""
    profiler = profiler if profiler is not None else LatencyProfiler()
    return build_cost_tree(supernet, example_inputs, LatencyCost(profiler, table))
