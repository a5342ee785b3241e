"""Tracers: how ``trace(..., tracer=...)`` turns a model into an fx graph. ``fx`` is torch.fx with fxnas's
leaf rules; ``hf`` is Hugging Face's own fx tracer (``transformers.utils.fx``) for ``PreTrainedModel``s, chosen
automatically for them when transformers ships it; a callable ``fn(model, request) -> GraphModule`` is a user's.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch.fx as fx
from torch import nn

from .errors import TraceError
from .leaves import LeafRule, Selects
from .registry import Registry

TRACERS = Registry("tracer")


@dataclass
class TraceRequest:
    """What a tracer is asked for: the leaves to keep, concrete args, stack traces, the example inputs."""

    example_inputs: tuple[Any, ...]
    leaf_types: tuple[type, ...] = ()
    leaf_predicate: Callable[[nn.Module, str], bool] | None = None
    concrete_args: dict[str, Any] | None = None
    stack_traces: bool = False
    leaf_rules: Sequence[LeafRule] = field(default_factory=tuple)
    selects: Selects | None = None


Tracer = Callable[[nn.Module, TraceRequest], fx.GraphModule]


def unfed_defaults(model: nn.Module, n_inputs: int, concrete: dict[str, Any] | None) -> dict[str, Any]:
    """``concrete`` plus every ``forward`` parameter past the ``n_inputs`` fed ones whose default is None or a
    bool (an optional mask, a flag): fixed to that default, as the eager call with the example inputs runs.

    Left free, fx would trace the ``mask is not None`` branch with a proxy standing for a mask no one passes
    (timm's Hiera), or fail on ``if flag:``.
    """
    out = dict(concrete or {})
    try:
        params = list(inspect.signature(model.forward).parameters.values())
    except (TypeError, ValueError):
        return out
    for p in params[n_inputs:]:
        if p.name not in out and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) \
                and (p.default is None or isinstance(p.default, bool)):
            out[p.name] = p.default
    return out


@TRACERS.register("fx")
def fx_tracer(model: nn.Module, req: TraceRequest) -> fx.GraphModule:
    """torch.fx's symbolic tracing with fxnas's leaf rules (the default); unfed optional arguments fixed."""
    from .graph import symbolic_trace

    concrete = unfed_defaults(model, len(req.example_inputs), req.concrete_args)
    return symbolic_trace(model, req.leaf_types, req.leaf_predicate, concrete or None, req.stack_traces,
                          req.leaf_rules, req.selects)


def hf_fx_module() -> Any | None:
    """``transformers.utils.fx`` when the installed transformers ships it (it was removed in transformers 5)."""
    try:
        from transformers.utils import fx as hf_fx
    except ImportError:
        return None
    return hf_fx


def is_pretrained_model(model: nn.Module) -> bool:
    """True for a Hugging Face ``PreTrainedModel`` (without importing transformers when it is not loaded)."""
    return any(c.__module__.startswith("transformers.") and c.__name__ == "PreTrainedModel"
               for c in type(model).__mro__)


def _hf_trace(model: nn.Module, req: TraceRequest, name: str) -> fx.GraphModule:
    hf_fx = hf_fx_module()
    if hf_fx is None:
        try:
            import transformers

            have = f"transformers {transformers.__version__} does not ship it (removed in 5.0)"
        except ImportError:
            have = "transformers is not installed"
        raise TraceError(
            f"tracer={name!r} needs Hugging Face's fx tracer, transformers.utils.fx, and {have}; install "
            f"transformers<5, or trace with tracer='fx' and concrete_args for the forward flags")
    # the example inputs are positional: they name forward's leading parameters (input_ids, pixel_values...)
    fixed = set(req.concrete_args or {})
    params = [p.name for p in inspect.signature(model.forward).parameters.values()
              if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.name not in fixed]
    inputs = params[:len(req.example_inputs)]
    from .graph import FxnasTracer
    from .hf_fx import hf_symbolic_trace

    leaves = FxnasTracer(req.leaf_types, req.leaf_predicate, req.leaf_rules, req.selects)
    autowrap = tuple(f for r in req.leaf_rules for f in r.autowrap_functions())
    try:
        return hf_symbolic_trace(hf_fx, model, dict(zip(inputs, req.example_inputs)), req.concrete_args,
                                 leaves.kept_whole, autowrap)
    except Exception as exc:  # HF raises many types; all mean "cannot trace"
        raise TraceError(f"tracer {name!r} (Hugging Face's HFTracer) failed on {type(model).__name__} with inputs "
                         f"{inputs}: {type(exc).__name__}: {exc}") from exc


@TRACERS.register("hf")
def hf_tracer(model: nn.Module, req: TraceRequest) -> fx.GraphModule:
    """Hugging Face's HFTracer, inputs named after the examples; masks built without vmap (``fxnas.hf_fx``)."""
    return _hf_trace(model, req, "hf")


@TRACERS.register("meta")
def meta_tracer(model: nn.Module, req: TraceRequest) -> fx.GraphModule:
    """HFTracer on any module: shape-dependent Python is decided at the example inputs' shapes.

    Every traced value carries a meta tensor of its shape, so ``if x.ndim != 4`` or ``if H == W`` take the
    branch the example takes; the graph is specialised to those shapes, as an export at fixed shapes is."""
    return _hf_trace(model, req, "meta")


def resolve_tracer(tracer: str | Tracer | None, model: nn.Module) -> Tracer:
    """A tracer by name or callable; None picks ``hf`` for a PreTrainedModel when available, else ``fx``."""
    if tracer is None:
        return TRACERS.get("hf" if is_pretrained_model(model) and hf_fx_module() is not None else "fx")
    if isinstance(tracer, str):
        if tracer not in TRACERS:
            raise TraceError(f"unknown tracer {tracer!r}; valid tracers: {', '.join(TRACERS.names())}, "
                             f"or a callable fn(model, TraceRequest) -> GraphModule")
        return TRACERS.get(tracer)
    if callable(tracer):
        return tracer
    raise TraceError(f"tracer must be a name ({', '.join(TRACERS.names())}) or a callable, got {type(tracer).__name__}")


def check_traced(gm: Any, tracer: Any) -> fx.GraphModule:
    """A tracer must return a GraphModule; say which one did not."""
    if not isinstance(gm, fx.GraphModule):
        raise TraceError(f"tracer {getattr(tracer, '__name__', tracer)!r} returned {type(gm).__name__}, "
                         f"not a torch.fx.GraphModule")
    return gm


__all__ = ["TRACERS", "TraceRequest", "Tracer", "check_traced", "fx_tracer", "hf_tracer", "is_pretrained_model",
           "meta_tracer", "resolve_tracer", "unfed_defaults"]
