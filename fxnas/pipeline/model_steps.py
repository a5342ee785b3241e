"""Steps on a trained model: Export (ONNX, checked against torch) and Profile (params, MACs, latency)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..options import FilePath
from .step import PIPELINE_STEPS, Step, StepRun


def load_module(path: str) -> Any:
    """A whole module saved with ``torch.save(module)`` by an earlier step (Retrain's model.pt, Search's
    subnet.pt). Unpickling runs code, so a pipeline reads only the files its own steps wrote."""
    import torch

    if not Path(path).is_file():
        raise ConfigError(f"model file {path!r} does not exist")
    return torch.load(path, map_location="cpu", weights_only=False)


def example_input(input_shape: list[int], seed: int = 0) -> Any:
    """A fixed random input of ``input_shape``."""
    import torch

    if not input_shape or not all(isinstance(d, int) and d > 0 for d in input_shape):
        raise ConfigError(f"input_shape must be positive integers (e.g. [1, 3, 16, 16]), got {input_shape!r}")
    return torch.randn(*input_shape, generator=torch.Generator().manual_seed(seed))


@PIPELINE_STEPS.register("Export")
class Export(Step):
    """Export a saved module to ONNX (simplified with onnxsim; onnxruntime's output checked against torch's).

    Outputs: ``onnx`` (model.onnx), ``input_shape``.
    """

    outputs = ("onnx", "input_shape")

    def __init__(self, model: FilePath, input_shape: list[int], simplify: bool = True) -> None:
        self.model, self.input_shape, self.simplify = str(model), list(input_shape), simplify

    def run(self, ctx: StepRun) -> dict[str, Any]:
        """Write ``model.onnx`` in the step folder."""
        from ..profilers.onnx_export import export_onnx

        path = export_onnx(load_module(self.model), example_input(self.input_shape), ctx.workdir / "model.onnx",
                           simplify=self.simplify)
        return {"onnx": str(Path(path).resolve()), "input_shape": self.input_shape}


@PIPELINE_STEPS.register("Profile")
class Profile(Step):
    """Profile a saved module (params, MACs, FLOPs, activation memory) and, given ``onnx``, its onnxruntime
    latency (median of ``repeats`` runs). Outputs those numbers and ``report`` (profile.json)."""

    outputs = ("params", "macs", "flops", "peak_activation_bytes", "latency_ms", "report")

    def __init__(self, model: FilePath, input_shape: list[int], onnx: FilePath | None = None, repeats: int = 20,
                 threads: int = 1) -> None:
        if repeats < 1:
            raise ConfigError(f"Profile: repeats must be >= 1, got {repeats}")
        self.model, self.input_shape = str(model), list(input_shape)
        self.onnx, self.repeats, self.threads = (str(onnx) if onnx else None), int(repeats), int(threads)

    def run(self, ctx: StepRun) -> dict[str, Any]:
        """Measure; write profile.json."""
        import json

        from ..profilers.latency import onnx_latency
        from ..profilers.static import profile

        x = example_input(self.input_shape)
        p = profile(load_module(self.model).eval(), x)
        out: dict[str, Any] = {k: int(p[k]) for k in ("params", "macs", "flops", "peak_activation_bytes")}
        out["latency_ms"] = None
        if self.onnx:
            timing = onnx_latency(self.onnx, x, repeats=self.repeats, threads=self.threads)
            out["latency_ms"] = float(timing["median_ms"])
        report = ctx.workdir / "profile.json"
        report.write_text(json.dumps(out, indent=1))
        return {**out, "report": str(report.resolve())}
