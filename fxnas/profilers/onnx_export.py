"""export_onnx(): torch → ONNX (simplified with onnxsim), checked against torch with onnxruntime.

The exporters are tried in order until one succeeds: the TorchScript exporter (fast, the most mature), the
dynamo exporter (``torch.export``: handles Python the TorchScript tracer cannot), then the TorchScript exporter
again with every ``scaled_dot_product_attention`` and RMS-norm call of an fx graph rewritten to its math form
(:data:`MATH_FORMS`; ``attention="math"``). An exporter whose file onnxruntime cannot run counts as failed.
Which one produced the file is returned (:class:`OnnxExport`) and written into the file's metadata
(``fxnas.exporter``, ``fxnas.attention``, ``fxnas.simplified``; read back with :func:`onnx_exporter`). onnxsim's
simplification is kept only when onnxruntime runs it on the example inputs; otherwise the file is written as
exported, and ``fallbacks`` says why.

The check compares onnxruntime's output with a float64 run of the module: float32 noise grows with depth, so
a fixed tolerance either misses real errors on small nets or rejects correct files of deep ones. The ONNX file
passes when its error against float64 is within ``noise_factor`` times torch float32's own error (plus a floor
of ``atol`` times the output scale), or when it matches torch float32 within ``rtol``/``atol`` outright.
"""

from __future__ import annotations

import copy
import math
import os
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import fx, nn
from torch.utils import _pytree as pytree

from ..errors import FxnasError
from ..graph import as_tuple

EXPORTERS = ("auto", "torchscript", "dynamo")
_META = "fxnas."


@dataclass(frozen=True)
class OnnxExport:
    """What :func:`export` wrote and how: exporter, attention path, and the check's error and tolerance."""

    path: Path
    exporter: str  # "torchscript" or "dynamo"
    attention: str  # "native" or "math" (scaled_dot_product_attention rewritten to matmul-softmax-matmul)
    opset: int
    dynamic_batch: bool
    reference: str | None = None  # "float64" or "float32" (the module would not run in float64); None: no check
    max_error: float | None = None  # max |onnx - reference| over all outputs
    tolerance: float | None = None  # the largest error the check accepted
    fallbacks: tuple[str, ...] = ()  # why earlier exporters (or onnxsim's output) were not used, one line each
    simplified: bool = False  # the file is onnxsim's simplification


def run_onnx(path: str | os.PathLike | bytes, example_inputs: Any) -> list[np.ndarray]:
    """Run an ONNX file (or a serialised model) with onnxruntime on CPU."""
    import onnxruntime as ort

    sess = ort.InferenceSession(path if isinstance(path, bytes) else str(path), providers=["CPUExecutionProvider"])
    feeds = {i.name: a.detach().cpu().numpy() for i, a in zip(sess.get_inputs(), as_tuple(example_inputs))}
    return sess.run(None, feeds)


def onnx_exporter(path: str | os.PathLike) -> dict[str, str]:
    """The ``fxnas.*`` metadata :func:`export` wrote into an ONNX file (exporter, attention, opset)."""
    import onnx

    props = onnx.load(str(path), load_external_data=False).metadata_props
    return {p.key[len(_META):]: p.value for p in props if p.key.startswith(_META)}


def math_sdpa(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, attn_mask: torch.Tensor | None = None,
              dropout_p: float = 0.0, is_causal: Any = False, scale: float | None = None,
              enable_gqa: bool = False) -> torch.Tensor:
    """``F.scaled_dot_product_attention`` written out (softmax(q kᵀ · scale + mask) v), in eval mode.

    Every exporter lowers these ops; ``is_causal`` may arrive as a 0-d tensor from a traced graph.
    """
    scale = 1.0 / math.sqrt(query.size(-1)) if scale is None else scale
    if enable_gqa and key.size(-3) != query.size(-3):
        rep = query.size(-3) // key.size(-3)
        key, value = key.repeat_interleave(rep, -3), value.repeat_interleave(rep, -3)
    scores = query @ key.transpose(-2, -1) * scale
    if bool(is_causal):
        causal = torch.ones(query.size(-2), key.size(-2), dtype=torch.bool, device=query.device).tril()
        scores = scores.masked_fill(~causal, float("-inf"))
    if attn_mask is not None:
        scores = scores.masked_fill(~attn_mask, float("-inf")) if attn_mask.dtype == torch.bool \
            else scores + attn_mask
    return scores.softmax(-1) @ value


def math_rms_norm(x: torch.Tensor, normalized_shape: Any, weight: torch.Tensor | None = None,
                  eps: float | None = None) -> torch.Tensor:
    """``F.rms_norm`` written out (x / sqrt(mean(x²) + eps) · weight): opset 18 has no RMSNormalization."""
    n = 1 if isinstance(normalized_shape, int) else len(normalized_shape)
    eps = torch.finfo(x.dtype).eps if eps is None else eps
    y = x * torch.rsqrt(x.pow(2).mean(dim=tuple(range(-n, 0)), keepdim=True) + eps)
    return y if weight is None else y * weight


# functions with no ONNX lowering in some exporter or opset, and their math forms
MATH_FORMS: dict[Any, Callable[..., torch.Tensor]] = {
    F.scaled_dot_product_attention: math_sdpa, torch._C._nn.scaled_dot_product_attention: math_sdpa,
    F.rms_norm: math_rms_norm, torch.rms_norm: math_rms_norm,
}


def fold_unfed_inputs(module: nn.Module, n_inputs: int) -> nn.Module:
    """A GraphModule with its placeholders past the first ``n_inputs`` folded to their defaults (a copy).

    A traced ``forward(x, attn_mask=None, is_causal=False)`` keeps its flags as graph inputs; exported as they
    are, the TorchScript exporter passes them on as tensors (``is_causal must be bool, not Tensor``).
    """
    if not isinstance(module, fx.GraphModule):
        return module
    holders = [n for n in module.graph.nodes if n.op == "placeholder"]
    if len(holders) <= n_inputs:
        return module
    graph = copy.deepcopy(module.graph)
    for node in [n for n in graph.nodes if n.op == "placeholder"][n_inputs:]:
        if not node.args:
            raise FxnasError(f"input {node.name!r} of {type(module).__name__} has no default and no example "
                             f"input; pass {len(holders)} example inputs")
        default = node.args[0]
        for user in list(node.users):
            user.args = fx.node.map_arg(user.args, lambda a, n=node, d=default: d if a is n else a)
            user.kwargs = fx.node.map_arg(user.kwargs, lambda a, n=node, d=default: d if a is n else a)
        graph.erase_node(node)
    return fx.GraphModule(module, graph, class_name=type(module).__name__)


def math_attention(module: nn.Module) -> tuple[nn.Module, int]:
    """A copy of ``module`` whose fx graphs call the math forms of :data:`MATH_FORMS` (attention, RMS norm) and
    whose ``nn.RMSNorm`` calls are written out too; and how many calls changed."""
    module = copy.deepcopy(module)
    changed = 0
    for sub in module.modules():
        if isinstance(sub, fx.GraphModule):
            for node in list(sub.graph.nodes):
                if node.op == "call_function" and node.target in MATH_FORMS:
                    node.target = MATH_FORMS[node.target]
                    changed += 1
                elif node.op == "call_module" and isinstance(norm := sub.get_submodule(node.target), nn.RMSNorm):
                    with sub.graph.inserting_before(node):
                        w = sub.graph.get_attr(f"{node.target}.weight") if norm.weight is not None else None
                        new = sub.graph.call_function(math_rms_norm, (node.args[0], tuple(norm.normalized_shape),
                                                                      w, norm.eps))
                    node.replace_all_uses_with(new)
                    sub.graph.erase_node(node)
                    changed += 1
            sub.recompile()
    return module, changed


_OP = re.compile(r"(?:aten|prim|onnx|torchvision|[a-z_]+)::[A-Za-z_][\w.]*")


def _first_line(exc: BaseException) -> str:
    """The exception's first line with the op it names (torch appends whole graphs to export errors)."""
    text = str(exc).strip()
    first = text.splitlines()[0] if text else ""
    ops = sorted(set(_OP.findall(text)) - set(_OP.findall(first)))
    hint = f" (op {', '.join(ops[:3])})" if ops else ""
    return f"{type(exc).__name__}: {first}{hint}"


def _torchscript(module: nn.Module, args: tuple, path: Path, opset: int, n_out: int, dynamic: bool) -> None:
    inputs = [f"input{i}" for i in range(len(args))]
    outputs = [f"output{i}" for i in range(n_out)]
    axes = {n: {0: "batch"} for n in inputs + outputs} if dynamic else None
    torch.onnx.export(module, args, str(path), dynamo=False, opset_version=opset, input_names=inputs,
                      output_names=outputs, dynamic_axes=axes, do_constant_folding=True)


def _dynamo(module: nn.Module, args: tuple, path: Path, opset: int, n_out: int, dynamic: bool) -> None:
    shapes = tuple({0: torch.export.Dim("batch")} for _ in args) if dynamic else None
    torch.onnx.export(module, args, str(path), dynamo=True, opset_version=opset, dynamic_shapes=shapes,
                      input_names=[f"input{i}" for i in range(len(args))], verbose=False, report=False,
                      external_data=False)


_RUNNERS: dict[str, Callable[..., None]] = {"torchscript": _torchscript, "dynamo": _dynamo}


def _float64_run(module: nn.Module, args: tuple) -> list[np.ndarray] | None:
    """Outputs of a float64 copy of ``module`` (None when it does not run in float64)."""
    try:
        m64 = copy.deepcopy(module).double()
        a64 = tuple(a.double() if torch.is_floating_point(a) else a for a in args)
        with torch.no_grad():
            return [t.detach().cpu().numpy() for t in _tensor_leaves(m64(*a64))]
    except Exception:  # a dtype-specialised op (quantised, a float32 constant): fall back to float32 checks
        return None


def _tensor_leaves(out: Any) -> list[torch.Tensor]:
    """Tensors of a (nested) output in the order exporters flatten them: dicts, tuples, lists, dataclasses."""
    return [t for t in pytree.tree_leaves(out) if isinstance(t, torch.Tensor)]


def _check(outs: list[np.ndarray], exp: list[torch.Tensor], ref: list[np.ndarray] | None, rtol: float,
           atol: float, noise_factor: float) -> tuple[float, float]:
    """(max error, tolerance) over all outputs; raises naming the first output out of tolerance."""
    if len(outs) != len(exp):
        raise FxnasError(f"ONNX model has {len(outs)} outputs where torch returns {len(exp)} tensors")
    worst, tol_used = 0.0, 0.0
    for i, (o, e) in enumerate(zip(outs, exp)):
        e = e.detach().cpu().numpy()
        if o.shape != e.shape:
            raise FxnasError(f"ONNX output {i} differs from torch: shapes {o.shape} vs {e.shape}")
        if not np.issubdtype(e.dtype, np.floating):
            if not np.array_equal(o, e):
                raise FxnasError(f"ONNX output {i} differs from torch: {int((o != e).sum())} of {e.size} "
                                 f"{e.dtype} values differ")
            continue
        scale = max(float(np.abs(e).max()) if e.size else 0.0, 1e-12)
        floor = atol * scale
        if ref is not None:
            r = ref[i].astype(np.float64)
            err = float(np.abs(o.astype(np.float64) - r).max()) if e.size else 0.0
            tol = noise_factor * float(np.abs(e.astype(np.float64) - r).max() if e.size else 0.0) + floor
            ok = err <= tol or np.allclose(o, e, rtol=rtol, atol=floor)
        else:
            err = float(np.abs(o - e).max()) if e.size else 0.0
            tol = floor + rtol * scale
            ok = np.allclose(o, e, rtol=rtol, atol=floor)
        if not ok:
            what = "float64 reference" if ref is not None else "torch"
            raise FxnasError(f"ONNX output {i} differs from torch: max abs error {err:.3g} against the {what}, "
                             f"tolerance {tol:.3g} (max |torch| {scale:.3g})")
        worst, tol_used = max(worst, err), max(tol_used, tol)
    return worst, tol_used


def _simplified(model: Any, path: Path, args: tuple[Any, ...],
                fallbacks: list[str]) -> tuple[Any, bool, list[np.ndarray] | None]:
    """(model, simplified, onnxruntime's outputs on ``args`` or None where not run).

    onnxsim's simplification when onnxsim succeeds and onnxruntime runs its result, else ``model`` as exported:
    onnxsim can fold a Reshape into one onnxruntime's shape inference rejects (timm's cpubone), or fail on a
    graph it rewrote itself (timm's hieradet)."""
    from onnxsim import simplify as onnxsim_simplify

    try:
        small, ok = onnxsim_simplify(model)
    except Exception as exc:  # onnxsim's own failure (timm's hieradet: it cannot sort the graph it made)
        fallbacks.append(f"onnxsim: {_first_line(exc)}; the file is written unsimplified")
        return model, False, None
    if not ok:
        raise FxnasError(f"onnxsim could not validate the simplified model of {path}")
    if small.ByteSize() >= 2**31:  # over protobuf's in-memory limit: onnxsim checked it, trust that
        return small, True, None
    try:
        outs = run_onnx(small.SerializeToString(), args)
    except Exception as exc:
        fallbacks.append(f"onnxsim: onnxruntime rejects the simplified file ({_first_line(exc)}); "
                         f"the file is written unsimplified")
        return model, False, None
    return small, True, outs


def export(
    module: nn.Module,
    example_inputs: Any,
    path: str | os.PathLike,
    simplify: bool = True,
    check: bool = True,
    rtol: float = 1e-3,
    atol: float = 1e-5,
    opset: int = 18,
    dynamic_batch: bool = False,
    exporter: str = "auto",
    noise_factor: float = 10.0,
) -> OnnxExport:
    """Export ``module`` in eval mode to ``path`` and return how (:class:`OnnxExport`); see the module doc.

    ``exporter``: ``"auto"`` (TorchScript, then dynamo, then the math attention path), ``"torchscript"`` or
    ``"dynamo"`` (that one only). ``dynamic_batch`` names dim 0 of every input and output ``batch``.
    """
    import onnx

    if exporter not in EXPORTERS:
        raise FxnasError(f"unknown ONNX exporter {exporter!r}; use one of {', '.join(EXPORTERS)}")
    args = as_tuple(example_inputs)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    was = module.training
    module.eval()
    try:
        with torch.no_grad():
            expected = _tensor_leaves(module(*args))
        ref = _float64_run(module, args) if check else None
        target = fold_unfed_inputs(module, len(args))
        plan = [("torchscript", "native"), ("dynamo", "native"), ("torchscript", "math")] if exporter == "auto" \
            else [(exporter, "native")]
        fallbacks: list[str] = []
        for name, attention in plan:
            m = target
            if attention == "math":
                m, changed = math_attention(target)
                if not changed:
                    continue
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    # exported with autograd on: under no_grad, nn.MultiheadAttention takes its fused fast
                    # path, aten::_native_multi_head_attention, which has no ONNX symbolic
                    _RUNNERS[name](m, args, path, opset, len(expected), dynamic_batch)
                outs = run_onnx(path, args)  # an exporter can write a file onnxruntime rejects: try the next
                break
            except Exception as exc:
                fallbacks.append(f"{name}/{attention}: {_first_line(exc)}")
        else:
            raise FxnasError(f"ONNX export of {type(module).__name__} failed: {fallbacks[0].split(': ', 1)[1]}"
                             + (f" (also tried {', '.join(f.split(':')[0] for f in fallbacks[1:])})"
                                if len(fallbacks) > 1 else ""))
    finally:
        module.train(was)
    model = onnx.load(str(path))
    simplified = False
    if simplify:  # outs: onnxruntime's outputs for the graph written below (the metadata does not change them)
        model, simplified, small_outs = _simplified(model, path, args, fallbacks)
        if simplified:
            outs = small_outs
    for k, v in {"exporter": name, "attention": attention, "opset": str(opset),
                 "simplified": str(simplified).lower()}.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = _META + k, v
    onnx.save(model, str(path))
    err = tol = None
    if check:
        err, tol = _check(run_onnx(path, args) if outs is None else outs, expected, ref, rtol, atol, noise_factor)
    return OnnxExport(path, name, attention, opset, dynamic_batch, None if not check else
                      ("float64" if ref is not None else "float32"), err, tol, tuple(fallbacks), simplified)


def export_onnx(module: nn.Module, example_inputs: Any, path: str | os.PathLike, simplify: bool = True,
                check: bool = True, rtol: float = 1e-3, atol: float = 1e-5, opset: int = 18,
                dynamic_batch: bool = False, exporter: str = "auto") -> Path:
    """Export ``module`` in eval mode to ``path``; with ``check``, assert ONNX output ≈ torch (see :func:`export`).

    Example::

        >>> import tempfile, torch, fxnas
        >>> from torch import nn
        >>> with tempfile.TemporaryDirectory() as d:
        ...     p = fxnas.export_onnx(nn.Linear(4, 2), torch.randn(1, 4), d + "/m.onnx")
        ...     fxnas.profilers.onnx_export.onnx_exporter(p)["exporter"]
        'torchscript'
    """
    return export(module, example_inputs, path, simplify, check, rtol, atol, opset, dynamic_batch, exporter).path
