"""Latency: onnxruntime timing of a whole model, and a per-op latency table whose sum predicts it."""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
import torch.fx as fx
from torch import nn

from ..errors import FxnasError
from ..graph import as_tuple, node_shape, trace
from .onnx_export import export_onnx

# view-like ops cost (almost) nothing and ONNX often folds them away; the table skips them
_FREE_METHODS = {"size", "view", "reshape", "flatten", "contiguous", "dim", "permute", "transpose", "unsqueeze",
                 "squeeze", "expand", "__getitem__"}
_FREE_FUNCS = {"getitem", "getattr", "flatten", "reshape", "permute", "transpose", "unsqueeze", "squeeze"}


def _session(path: str | os.PathLike, threads: int) -> Any:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def _time_session(sess: Any, feeds: dict[str, Any], repeats: int, warmup: int) -> list[float]:
    for _ in range(warmup):
        sess.run(None, feeds)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        sess.run(None, feeds)
        times.append((time.perf_counter() - t0) * 1e3)
    return times


def onnx_latency(model: nn.Module | str | os.PathLike, example_inputs: Any, repeats: int = 30, warmup: int = 5,
                 threads: int = 1) -> dict[str, float]:
    """Median (and p90, min) onnxruntime latency in ms after ``warmup`` runs; a module is exported first."""
    args = as_tuple(example_inputs)
    with tempfile.TemporaryDirectory() as tmp:
        path = model
        if isinstance(model, nn.Module):
            path = export_onnx(model, args, Path(tmp) / "model.onnx", simplify=True, check=False)
        sess = _session(path, threads)
        feeds = {i.name: a.detach().cpu().numpy() for i, a in zip(sess.get_inputs(), args)}
        times = sorted(_time_session(sess, feeds, repeats, warmup))
    return {"median_ms": statistics.median(times), "p90_ms": times[int(0.9 * (len(times) - 1))],
            "min_ms": times[0], "repeats": repeats}


def _is_free(n: fx.Node) -> bool:
    if n.op == "call_method":
        return n.target in _FREE_METHODS
    if n.op == "call_function":
        return getattr(n.target, "__name__", "") in _FREE_FUNCS
    return n.op != "call_module"


def _arg_desc(a: Any) -> str:
    if isinstance(a, fx.Node):
        return "x".join(map(str, node_shape(a) or ("?",)))
    if isinstance(a, (tuple, list)):
        return "[" + ",".join(_arg_desc(x) for x in a) + "]"
    return repr(a)


def op_key(gm: fx.GraphModule, n: fx.Node) -> str:
    """A string naming an op and its configuration: equal keys run the same computation on same shapes."""
    if n.op == "call_module":
        what = repr(gm.get_submodule(n.target)).replace("\n", " ")
    else:
        what = f"{n.op}:{getattr(n.target, '__name__', n.target)}"
    args = ",".join(_arg_desc(a) for a in n.args)
    kwargs = ",".join(f"{k}={_arg_desc(v)}" for k, v in n.kwargs.items())
    return f"{what}({args};{kwargs})"


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


def _fake_input(node: fx.Node) -> torch.Tensor:
    tm = node.meta.get("tensor_meta")
    if tm is None or not hasattr(tm, "shape"):
        raise FxnasError(f"node {node.name} has no tensor shape; per-op latency needs traced shapes")
    if tm.dtype.is_floating_point:
        return torch.randn(tuple(tm.shape), dtype=tm.dtype)
    return torch.zeros(tuple(tm.shape), dtype=tm.dtype)  # indices: zeros are always in range


class LatencyTable:
    """Per-op latencies in ms keyed by ``op_key``; each distinct op is measured once, a network is the sum."""

    def __init__(self, entries: dict[str, float] | None = None, repeats: int = 20, warmup: int = 3,
                 threads: int = 1) -> None:
        self.entries: dict[str, float] = dict(entries or {})
        self.repeats, self.warmup, self.threads = repeats, warmup, threads
        self.measured = 0  # how many ops this table had to time (cache misses)

    def measure(self, gm: fx.GraphModule, n: fx.Node) -> float:
        """onnxruntime median latency (ms) of the single op ``n``."""
        sub, inputs = single_op_module(gm, n)
        args = tuple(_fake_input(a) for a in inputs)
        sub.eval()
        with tempfile.TemporaryDirectory() as tmp:
            path = export_onnx(sub, args, Path(tmp) / "op.onnx", simplify=False, check=False)
            sess = _session(path, self.threads)
            feeds = {i.name: a.numpy() for i, a in zip(sess.get_inputs(), args)}
            times = _time_session(sess, feeds, self.repeats, self.warmup)
        self.measured += 1
        return statistics.median(times)

    def ops(self, module: nn.Module, example_inputs: Any) -> list[tuple[fx.GraphModule, fx.Node, str]]:
        """(graph, node, key) of every op of ``module`` the table prices."""
        gm = module if isinstance(module, fx.GraphModule) and _has_shapes(module) else trace(module, example_inputs)
        gm.eval()
        return [(gm, n, op_key(gm, n)) for n in gm.graph.nodes if not _is_free(n)]

    def predict(self, module: nn.Module, example_inputs: Any) -> float:
        """Predicted latency in ms: the sum of the table's entries over the ops, measuring unknown ones."""
        total = 0.0
        for gm, n, key in self.ops(module, example_inputs):
            if key not in self.entries:
                self.entries[key] = self.measure(gm, n)
            total += self.entries[key]
        return total

    def save(self, path: str | os.PathLike) -> Path:
        """Write the table as JSON."""
        path = Path(path)
        path.write_text(json.dumps({"entries": self.entries, "repeats": self.repeats, "threads": self.threads},
                                   indent=1))
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> LatencyTable:
        """Read a table written by save."""
        d = json.loads(Path(path).read_text())
        return cls(d["entries"], repeats=d.get("repeats", 20), threads=d.get("threads", 1))

    def __len__(self) -> int:
        return len(self.entries)


def _has_shapes(gm: fx.GraphModule) -> bool:
    return all("tensor_meta" in n.meta for n in gm.graph.nodes if n.op in ("placeholder", "call_module"))
