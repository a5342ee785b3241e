"""trace(): turn an unmodified nn.Module into an fx GraphModule with shape metadata on every node."""

from __future__ import annotations

import copy
import traceback
from typing import Any, Callable, Iterable, Sequence

import torch
import torch.fx as fx
from torch import nn
from torch.fx.passes.shape_prop import ShapeProp

from .errors import TraceError

# Module types traced as opaque calls; users extend this per call with ``leaf_modules=``.
DEFAULT_LEAF_TYPES: tuple[type, ...] = ()


class FxnasTracer(fx.Tracer):
    """An fx Tracer that keeps extra module types as leaves and remembers where tracing was."""

    def __init__(self, leaf_types: Iterable[type] = (), leaf_predicate: Callable[[nn.Module, str], bool] | None = None):
        super().__init__()
        self.leaf_types = tuple(DEFAULT_LEAF_TYPES) + tuple(leaf_types)
        self.leaf_predicate = leaf_predicate
        self.current_path = ""

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        if self.leaf_types and isinstance(m, self.leaf_types):
            return True
        if self.leaf_predicate is not None and self.leaf_predicate(m, module_qualified_name):
            return True
        return super().is_leaf_module(m, module_qualified_name)

    def call_module(self, m: nn.Module, forward: Callable[..., Any], args: Any, kwargs: Any) -> Any:
        outer = self.current_path
        self.current_path = self.path_of_module(m)
        try:
            return super().call_module(m, forward, args, kwargs)
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
) -> fx.GraphModule:
    """Trace ``model`` (not a copy) into a GraphModule, raising TraceError with the failing module path."""
    tracer = FxnasTracer(leaf_types, leaf_predicate)
    try:
        graph = tracer.trace(model, concrete_args=concrete_args)
    except Exception as exc:  # fx raises many types; all mean "cannot trace"
        where = tracer.current_path or "<root>"
        mod = model.get_submodule(tracer.current_path) if tracer.current_path else model
        raise TraceError(
            f"cannot trace {type(model).__name__}: in module {where!r} ({type(mod).__name__}) at "
            f"{_user_frame(exc)}: {type(exc).__name__}: {exc}. Fix: mark that module as a leaf "
            f"(trace(..., leaf_modules=[{type(mod).__name__}])), or pass concrete_args for "
            f"arguments that steer control flow."
        ) from exc
    name = type(model).__name__
    return fx.GraphModule(tracer.root, graph, name)


def propagate_shapes(gm: fx.GraphModule, example_inputs: Any) -> fx.GraphModule:
    """Run the graph once on ``example_inputs`` and store ``tensor_meta`` on every node."""
    args = as_tuple(example_inputs)
    was_training = gm.training
    gm.eval()
    try:
        with torch.no_grad():
            ShapeProp(gm).propagate(*args)
    except Exception as exc:
        shapes = [tuple(a.shape) for a in args if isinstance(a, torch.Tensor)]
        raise TraceError(
            f"running the traced graph on inputs of shape {shapes} failed: {type(exc).__name__}: {exc}. "
            f"Check example_inputs / --input-shape match what the model expects."
        ) from exc
    finally:
        gm.train(was_training)
    return gm


def trace(
    model: nn.Module,
    example_inputs: Any,
    leaf_modules: Sequence[type] = (),
    leaf_predicate: Callable[[nn.Module, str], bool] | None = None,
    concrete_args: dict[str, Any] | None = None,
) -> fx.GraphModule:
    """Trace a deep copy of ``model`` and annotate every node with its output shape (``node.meta``)."""
    if not isinstance(model, nn.Module):
        raise TraceError(f"trace() needs an nn.Module, got {type(model).__name__}")
    gm = symbolic_trace(copy.deepcopy(model), leaf_modules, leaf_predicate, concrete_args)
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
