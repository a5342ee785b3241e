"""export_onnx(): torch → ONNX (simplified with onnxsim), checked against torch with onnxruntime."""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import FxnasError
from ..graph import as_tuple


def run_onnx(path: str | os.PathLike, example_inputs: Any) -> list[np.ndarray]:
    """Run an ONNX file with onnxruntime on CPU."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feeds = {i.name: a.detach().cpu().numpy() for i, a in zip(sess.get_inputs(), as_tuple(example_inputs))}
    return sess.run(None, feeds)


def export_onnx(
    module: nn.Module,
    example_inputs: Any,
    path: str | os.PathLike,
    simplify: bool = True,
    check: bool = True,
    rtol: float = 1e-3,
    atol: float = 1e-5,
    opset: int = 18,
) -> Path:
    """Export ``module`` in eval mode to ``path``; with ``check``, assert ONNX output ≈ torch output."""
    import onnx

    args = as_tuple(example_inputs)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    was = module.training
    module.eval()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # exported with autograd on: under no_grad, nn.MultiheadAttention takes its fused fast path,
            # aten::_native_multi_head_attention, which has no ONNX symbolic
            try:
                torch.onnx.export(module, args, str(path), dynamo=False, opset_version=opset,
                                  input_names=[f"input{i}" for i in range(len(args))], do_constant_folding=True)
            except Exception as exc:  # torch appends the whole TorchScript graph; keep the first line
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
                raise FxnasError(f"ONNX export of {type(module).__name__} failed: {type(exc).__name__}: "
                                 f"{first}") from exc
            with torch.no_grad():
                expected = module(*args)
    finally:
        module.train(was)
    if simplify:
        from onnxsim import simplify as onnxsim_simplify

        model, ok = onnxsim_simplify(onnx.load(str(path)))
        if not ok:
            raise FxnasError(f"onnxsim could not validate the simplified model of {path}")
        onnx.save(model, str(path))
    if check:
        outs = run_onnx(path, args)
        exp = [expected] if isinstance(expected, torch.Tensor) else list(expected)
        for i, (o, e) in enumerate(zip(outs, exp)):
            e = e.detach().cpu().numpy()
            scale = max(float(np.abs(e).max()), 1e-12)
            if o.shape != e.shape or not np.allclose(o, e, rtol=rtol, atol=atol * scale):
                err = float(np.abs(o - e).max()) if o.shape == e.shape else float("nan")
                raise FxnasError(f"ONNX output {i} differs from torch: shapes {o.shape} vs {e.shape}, "
                                 f"max abs error {err:.3g} (max |torch| {scale:.3g})")
    return path
