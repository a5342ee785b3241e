"""Hugging Face's fx tracer (``transformers.utils.fx.HFTracer``), driven so that it traces current models.

Used by the ``hf`` tracer (Hugging Face models) and the ``meta`` tracer (any module, traced at its example
inputs). ``transformers.utils.fx.symbolic_trace`` fails on what recent transformers 4.x models do:

- attention masks built with ``torch.vmap`` (``masking_utils.sdpa_mask``: GPT-2, Llama and every model on
  ``create_causal_mask``), which cannot vmap over proxies. While tracing, the ``sdpa`` and ``eager`` mask
  builders are swapped (on a local mapping, restored afterwards) for ones that compute the same mask by
  broadcasting index tensors; the graph then holds plain ``arange``/compare ops, which also export to ONNX.
- ``(*x.shape[:-1], -1, d)`` (GPT-2's attention): fx proxies cannot be unpacked. The tracer here makes proxies
  whose value has a known length (HFTracer records it) iterate element by element.
- leaves fxnas keeps whole (Hugging Face's ``Conv1D`` under the ``linear`` pattern) get their output's shape by
  a call on meta tensors, weights included (HFTracer runs them with the real weights on meta inputs).
- a ``forward`` behind a decorator such as ``@can_return_tuple`` (ViT) is, to fx, a ``(self, *args, **kwargs)``
  function: the inputs cannot be named and ``kwargs`` arrives as ``None``. Here the traced copy's class gets a
  ``forward`` with the decorated one's named parameters that calls it, and only named parameters are fixed.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import torch
import torch.fx as fx
from torch import nn


def broadcast_sdpa_mask(batch_size: int, cache_position: torch.Tensor, kv_length: int, kv_offset: int = 0,
                        mask_function: Any = None, attention_mask: torch.Tensor | None = None,
                        **_: Any) -> torch.Tensor:
    """transformers' boolean ``(batch, 1, q, kv)`` mask (True: attend), by broadcasting instead of vmap."""
    from transformers import masking_utils as mu

    mask_function = mask_function or mu.causal_mask_function
    padding = mu.prepare_padding_mask(attention_mask, kv_length, kv_offset)
    if padding is not None:
        mask_function = mu.and_masks(mask_function, mu.padding_mask_function(padding))
    device = cache_position.device
    kv = torch.arange(kv_length, device=device) + kv_offset
    b = torch.arange(batch_size, device=device)
    h = torch.zeros(1, dtype=torch.long, device=device)
    mask = mask_function(b[:, None, None, None], h[None, :, None, None], cache_position[None, None, :, None],
                         kv[None, None, None, :])
    return mask.expand(batch_size, 1, cache_position.shape[0], kv_length)


def broadcast_eager_mask(*args: Any, dtype: torch.dtype = torch.float32, **kwargs: Any) -> torch.Tensor:
    """transformers' additive float mask (0: attend, the dtype's min: masked), from ``broadcast_sdpa_mask``."""
    mask = broadcast_sdpa_mask(*args, **kwargs)
    return torch.where(mask, torch.tensor(0.0, device=mask.device, dtype=dtype), torch.finfo(dtype).min)


@contextlib.contextmanager
def traceable_masks() -> Iterator[None]:
    """Within the block, transformers' shared mask interface builds masks without vmap (a no-op for a
    transformers without ``masking_utils``)."""
    try:
        from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS as masks
    except ImportError:
        yield
        return
    local = masks._local_mapping  # the interface's own per-instance override map
    saved = dict(local)
    local.update({"sdpa": broadcast_sdpa_mask, "eager": broadcast_eager_mask})
    try:
        yield
    finally:
        local.clear()
        local.update(saved)


def fixed_args(model: nn.Module, inputs: Sequence[str], concrete: Mapping[str, Any] | None) -> dict[str, Any]:
    """Every ``forward`` parameter that is not an input, fixed to its default (``concrete`` wins); ``**kwargs``
    to an empty dict (fx's key for it is ``"**kwargs"``)."""
    sig = inspect.signature(model.forward)
    out: dict[str, Any] = {}
    for p in sig.parameters.values():
        if p.kind == p.VAR_KEYWORD:
            out[f"**{p.name}"] = {}
        elif p.name not in inputs and p.kind != p.VAR_POSITIONAL and p.default is not p.empty:
            out[p.name] = p.default
    out.update(concrete or {})
    return out


def named_forward(model: nn.Module) -> None:
    """Give ``model`` (a copy about to be traced) a ``forward`` whose code names the parameters its decorated
    ``forward`` takes, calling it with them: fx reads a function's code, not its ``__wrapped__`` signature."""
    cls = type(model)
    code = cls.forward.__code__
    if not (code.co_flags & inspect.CO_VARARGS and code.co_argcount <= 1):
        return
    params = [p for p in inspect.signature(cls.forward).parameters.values()
              if p.name != "self" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    names = [p.name for p in params]
    src = (f"def forward(self, {', '.join(f'{n}=_d[{n!r}]' for n in names)}):\n"
           f"    return _f(self, {', '.join(f'{n}={n}' for n in names)})\n")
    scope: dict[str, Any] = {"_f": cls.forward, "_d": {p.name: None if p.default is p.empty else p.default
                                                        for p in params}}
    exec(compile(src, f"<fxnas named forward of {cls.__name__}>", "exec"), scope)
    model.__class__ = type(cls.__name__, (cls,), {"forward": scope["forward"], "__module__": cls.__module__})


def _tracer_class(hf_fx: Any, leaf: Callable[[nn.Module, str], bool]) -> type:
    """HFTracer whose proxies unpack when their recorded value has a length (shapes and their slices), keeping
    whole the modules ``leaf`` names (fxnas's leaf rules) besides its own."""

    class SizedProxy(hf_fx.HFProxy):
        def __iter__(self) -> Iterator[Any]:
            meta = getattr(self, "_metadata", None)
            if isinstance(meta, (tuple, list, torch.Size)):
                return iter([self[i] for i in range(len(meta))])
            return super().__iter__()

    class Tracer(hf_fx.HFTracer):
        def proxy(self, node: fx.Node) -> fx.Proxy:
            return SizedProxy(node, self)

        def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
            return leaf(m, module_qualified_name) or super().is_leaf_module(m, module_qualified_name)

        def create_proxy(self, kind: str, target: Any, args: Any, kwargs: Any, *rest: Any, **kw: Any) -> Any:
            rv = super().create_proxy(kind, target, args, kwargs, *rest, **kw)
            if kind == "call_module" and getattr(rv, "_metadata", None) is None:
                mod = self.root.get_submodule(target)
                if leaf(mod, target):  # HF runs leaves on meta inputs with real weights: a device clash
                    rv.install_metadata(self._meta_call(mod, args, kwargs))
            return rv

        def _meta_call(self, mod: nn.Module, args: Any, kwargs: Any) -> Any:
            metas = {k: v.to("meta") for k, v in [*mod.named_parameters(), *mod.named_buffers()]}
            self._disable_module_getattr = self._disable_call_module = True
            try:
                return torch.func.functional_call(mod, metas, fx.node.map_aggregate(args, hf_fx._proxies_to_metas),
                                                  fx.node.map_aggregate(kwargs, hf_fx._proxies_to_metas))
            except Exception:  # as HF does: no metadata, so only shape-dependent code downstream fails
                return None
            finally:
                self._disable_module_getattr = self._disable_call_module = False

    return Tracer


def hf_symbolic_trace(hf_fx: Any, model: nn.Module, inputs: Mapping[str, Any],
                      concrete: Mapping[str, Any] | None = None,
                      leaf: Callable[[nn.Module, str], bool] = lambda m, name: False,
                      autowrap: tuple[Callable[..., Any], ...] = ()) -> fx.GraphModule:
    """What ``transformers.utils.fx.symbolic_trace(model, input_names=list(inputs))`` does, with the fixes above.

    ``inputs`` maps forward's input names to example values. For a class on HF's list of supported models,
    HFTracer makes its own dummy inputs (batch and length at least 2, so that batch-1 special cases such as
    packed-sequence masks stay out of the graph); any other ``PreTrainedModel`` (Whisper's encoder) is traced
    at the examples, which are then its dummy inputs.
    """
    cls = type(model)
    named_forward(model)
    config = getattr(model, "config", None)
    if "past_key_values" not in inputs and getattr(config, "use_cache", False):
        config.use_cache = False  # (symbolic_trace does the same: a cache would be a graph output)
    with traceable_masks():
        dummy = None if hf_fx.is_model_supported(model) else dict(inputs)
        tracer = _tracer_class(hf_fx, leaf)(autowrap_functions=autowrap)
        graph = tracer.trace(model, concrete_args=fixed_args(model, list(inputs), concrete), dummy_inputs=dummy,
                             complete_concrete_args_with_inputs_not_in_dummy_inputs=False)
    if isinstance(graph._codegen, fx.graph._PyTreeCodeGen):  # a dict concrete arg (``**kwargs``) made fx
        graph._codegen = fx.graph.CodeGen()  # flatten every forward argument; HF removed all but the inputs
    traced = fx.GraphModule(model, graph)
    if config is not None:  # what HF's symbolic_trace sets on a PreTrainedModel's graph
        traced.config = config
        traced.class_for_deserialization = cls
        traced.device = model.device
    return traced
