"""trace(): turn an unmodified nn.Module into an fx GraphModule with shape metadata on every node."""

from __future__ import annotations

import copy
import re
import traceback
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import torch
import torch.fx as fx
from torch import nn
from torch.fx.node import map_aggregate
from torch.fx.passes.shape_prop import _extract_tensor_metadata

from .errors import TraceError
from .leaves import LeafRule, Selects, resolve_leaf_rules

# Module types traced as opaque calls; users extend this per call with ``leaf_modules=``.
DEFAULT_LEAF_TYPES: tuple[type, ...] = ()


class FxnasTracer(fx.Tracer):
    """An fx Tracer that keeps extra module types as leaves and remembers where tracing was."""

    def __init__(self, leaf_types: Iterable[type] = (), leaf_predicate: Callable[[nn.Module, str], bool] | None = None,
                 leaf_rules: Sequence[LeafRule] = (), selects: Selects | None = None):
        rules = tuple(leaf_rules)
        super().__init__(autowrap_functions=tuple(f for r in rules for f in r.autowrap_functions()))
        self.leaf_types = tuple(DEFAULT_LEAF_TYPES) + tuple(leaf_types)
        self.leaf_predicate = leaf_predicate
        self.leaf_rules = rules
        self.selects: Selects = selects or (lambda m: False)
        self.current_path = ""
        self.failed_path: str | None = None  # innermost module whose forward raised during tracing

    def kept_whole(self, m: nn.Module, module_qualified_name: str) -> bool:
        """fxnas's own leaf decision (types, predicate, rules), which other tracers can ask too."""
        if self.leaf_types and isinstance(m, self.leaf_types):
            return True
        if self.leaf_predicate is not None and self.leaf_predicate(m, module_qualified_name):
            return True
        return any(r.is_leaf(m, module_qualified_name, self.selects) for r in self.leaf_rules)

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        return self.kept_whole(m, module_qualified_name) or super().is_leaf_module(m, module_qualified_name)

    def call_module(self, m: nn.Module, forward: Callable[..., Any], args: Any, kwargs: Any) -> Any:
        outer = self.current_path
        self.current_path = self.path_of_module(m)
        try:
            return super().call_module(m, forward, args, kwargs)
        except Exception:
            if self.failed_path is None:  # the exception passes every enclosing module: keep the innermost
                self.failed_path = self.current_path
            raise
        finally:
            self.current_path = outer


def as_tuple(example_inputs: Any) -> tuple[Any, ...]:
    """Normalise example inputs (a tensor, a list or a tuple) to a tuple of positional args."""
    if isinstance(example_inputs, torch.Tensor):
        return (example_inputs,)
    if isinstance(example_inputs, (list, tuple)):
        return tuple(example_inputs)
    raise TraceError(
        f"example_inputs must be a tensor or a tuple of tensors, got {type(example_inputs).__name__}"
    )


def _user_frame(exc: BaseException) -> str:
    """The last traceback frame outside torch and fxnas: the user's line that failed to trace."""
    frames = traceback.extract_tb(exc.__traceback__)
    for fr in reversed(frames):
        f = fr.filename.replace("\\", "/")
        if "/torch/" not in f and "/fxnas/" not in f:
            return f"{fr.filename}:{fr.lineno}: {(fr.line or '').strip()}"
    return "unknown location"


def symbolic_trace(
    model: nn.Module,
    leaf_types: Iterable[type] = (),
    leaf_predicate: Callable[[nn.Module, str], bool] | None = None,
    concrete_args: dict[str, Any] | None = None,
    stack_traces: bool = False,
    leaf_rules: Sequence[LeafRule] = (),
    selects: Selects | None = None,
) -> fx.GraphModule:
    """Trace ``model`` (not a copy) into a GraphModule, raising TraceError with the failing module path.

    With ``stack_traces`` every node keeps the source stack that created it (``node.stack_trace``), so that
    later passes can name the user's line in their errors. ``leaf_rules`` (fxnas.leaves) keep more modules
    whole; ``selects`` is the active pattern's module predicate the rules may consult.
    """
    tracer = FxnasTracer(leaf_types, leaf_predicate, leaf_rules, selects)
    tracer.record_stack_traces = stack_traces
    try:
        graph = tracer.trace(model, concrete_args=concrete_args)
    except Exception as exc:  # fx raises many types; all mean "cannot trace"
        path = tracer.failed_path or tracer.current_path
        where = path or "<root>"
        mod = model.get_submodule(path) if path else model
        raise TraceError(
            f"cannot trace {type(model).__name__}: in module {where!r} ({type(mod).__name__}) at "
            f"{_user_frame(exc)}: {type(exc).__name__}: {exc}. {trace_fixes(model, mod, root=not path)}"
        ) from exc
    if concrete_args:
        _default_concrete(graph, concrete_args)
    name = type(model).__name__
    return fx.GraphModule(tracer.root, graph, name)


def trace_fixes(model: nn.Module, failed: nn.Module, root: bool = False) -> str:
    """What a user can do about a failed trace, most specific first. When the root itself branches on data,
    making it a leaf would leave nothing to search: move that code into a submodule instead."""
    leaf = (f"mark that module as a leaf (trace(..., leaf_modules=[{type(failed).__name__}]) or a rule in "
            f"fxnas.leaves.LEAF_RULES)") if not root else (
        "move the data-dependent code into a submodule and mark that a leaf")
    fixes = [leaf, "pass concrete_args={name: value} for forward arguments that steer control flow",
             "trace with tracer='meta' when the branch reads shapes (decided at the example inputs' shapes; "
             "needs transformers<5)"]
    flags = ("--leaf FILE.py:CLASS", "--concrete NAME=VALUE", "--tracer meta")
    fixes = [f"{f} (fxnas searchify: {flag})" for f, flag in zip(fixes, flags)]
    if root:
        fixes[:2] = fixes[1::-1]
    from .tracers import hf_fx_module, is_pretrained_model

    if is_pretrained_model(model) and hf_fx_module() is not None:
        fixes.insert(0, "use tracer='hf' (Hugging Face's own fx tracer)")
    elif is_pretrained_model(model):
        fixes.append("install transformers<5, whose fx tracer (tracer='hf') handles Hugging Face models")
    return "Fix: " + "; or ".join(fixes) + "."


def _default_concrete(graph: fx.Graph, concrete_args: dict[str, Any]) -> None:
    """Make each concrete arg's placeholder default to its traced value, so ``gm(x)`` passes fx's guard."""
    for node in graph.nodes:
        if node.op != "placeholder":
            continue
        base = re.sub(r"_\d+$", "", str(node.target))  # fx renames specialised args (double -> double_1)
        key = node.target if node.target in concrete_args else base
        if key in concrete_args and isinstance(concrete_args[key], (bool, int, float, str, type(None))):
            node.args = (concrete_args[key],)


class _ShapeRecorder(fx.Interpreter):
    """ShapeProp without its stderr traceback: records ``tensor_meta`` and names the node that failed."""

    def run_node(self, n: fx.Node) -> Any:
        try:
            result = super().run_node(n)
        except Exception as exc:
            where = f"node {n.name!r}" + (f" (module {n.target!r})" if n.op == "call_module" else "")
            raise _NodeError(where, exc) from exc

        found = False

        def meta(obj: Any) -> Any:
            nonlocal found
            if isinstance(obj, torch.Tensor):
                found = True
                return _extract_tensor_metadata(obj)
            return obj

        value = map_aggregate(result, meta)
        if found:  # as ShapeProp: only nodes producing tensors get tensor_meta
            n.meta["tensor_meta"] = value
        n.meta["type"] = type(result)
        return result


class _NodeError(Exception):
    def __init__(self, where: str, exc: BaseException) -> None:
        super().__init__(where)
        self.where, self.exc = where, exc


def propagate_shapes(gm: fx.GraphModule, example_inputs: Any) -> fx.GraphModule:
    """Run the graph once on ``example_inputs`` and store ``tensor_meta`` on every node."""
    args = as_tuple(example_inputs)
    was_training = gm.training
    gm.eval()
    try:
        with torch.no_grad():
            _ShapeRecorder(gm).run(*args)
    except _NodeError as err:
        shapes = [tuple(a.shape) for a in args if isinstance(a, torch.Tensor)]
        first = (str(err.exc).strip().splitlines() or [""])[0]
        raise TraceError(
            f"running the traced graph on inputs of shape {shapes} failed at {err.where}: "
            f"{type(err.exc).__name__}: {first}. Check example_inputs / --input-shape match what the model expects."
        ) from err.exc
    finally:
        gm.train(was_training)
    return gm


def trace(
    model: nn.Module,
    example_inputs: Any,
    leaf_modules: Sequence[type] = (),
    leaf_predicate: Callable[[nn.Module, str], bool] | None = None,
    concrete_args: dict[str, Any] | None = None,
    stack_traces: bool = False,
    *,
    leaf_rules: Sequence[str | LeafRule] | None = None,
    selects: Selects | None = None,
    tracer: str | Callable[..., fx.GraphModule] | None = None,
) -> fx.GraphModule:
    """Trace a deep copy of ``model`` and annotate every node with its output shape (``node.meta``).

    ``leaf_rules`` names the rules of ``fxnas.leaves.LEAF_RULES`` to apply (None: all of them); ``selects``
    is the module predicate of the pattern the trace is for (layer subclasses it selects stay whole).
    ``tracer`` is a name in ``fxnas.tracers.TRACERS`` (``fx``, ``hf``) or ``fn(model, TraceRequest)``; None
    picks Hugging Face's tracer for a ``PreTrainedModel`` when transformers ships one, else ``fx``.
    """
    from .tracers import TraceRequest, check_traced, resolve_tracer

    if not isinstance(model, nn.Module):
        raise TraceError(f"trace() needs an nn.Module, got {type(model).__name__}")
    fn = resolve_tracer(tracer, model)
    req = TraceRequest(as_tuple(example_inputs), tuple(leaf_modules), leaf_predicate, concrete_args, stack_traces,
                       resolve_leaf_rules(leaf_rules), selects)
    gm = check_traced(fn(copy.deepcopy(model), req), fn)
    gm.train(model.training)
    return propagate_shapes(gm, example_inputs)


def node_shape(node: fx.Node) -> tuple[int, ...] | None:
    """The output shape ShapeProp recorded on ``node``, or None for non-tensor values."""
    tm = node.meta.get("tensor_meta")
    if tm is None or not hasattr(tm, "shape"):
        return None
    return tuple(tm.shape)


def input_shape(node: fx.Node) -> tuple[int, ...] | None:
    """Shape of the first tensor argument of ``node``."""
    for a in node.args:
        if isinstance(a, fx.Node):
            return node_shape(a)
    return None
