"""Export formats: a subnet written as a file that runs without fxnas, each checked against the subnet.

Every format writes ``path``, loads what it wrote back the way a user would (``torch.export.load``,
``torch.jit.load``, the generated source plus ``torch.load(weights_only=True)``, onnxruntime) and compares its
output with the subnet's on the example input (FxnasError beyond ``rtol``/``atol`` times the output's scale).
"""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import FxnasError
from ..registry import Registry

EXPORT_FORMATS = Registry("export format")

Runner = Callable[[torch.Tensor], Any]


def max_error(got: Any, want: torch.Tensor) -> tuple[float, float]:
    """(max abs difference, max abs of ``want``) of two outputs (tensors or arrays of the same shape)."""
    g = got.detach().cpu().numpy() if isinstance(got, torch.Tensor) else np.asarray(got)
    w = want.detach().cpu().numpy()
    if g.shape != w.shape:
        raise FxnasError(f"the exported model's output has shape {g.shape}, the subnet's {w.shape}")
    return float(np.abs(g - w).max()), float(np.abs(w).max())


class ExportFormat(ABC):
    """Writes a module to a file and loads it back as a function of the input."""

    suffix: str = ""

    def __init__(self, rtol: float = 1e-4, atol: float = 1e-5) -> None:
        self.rtol, self.atol = rtol, atol

    @abstractmethod
    def write(self, module: nn.Module, example: torch.Tensor, path: Path) -> list[Path]:
        """Write ``module`` (eval mode) to ``path`` (and companion files); every file written."""

    @abstractmethod
    def load(self, path: Path) -> Runner:
        """The exported model at ``path`` as a function of the input tensor."""

    def export(self, module: nn.Module, example: torch.Tensor, path: str | os.PathLike) -> list[Path]:
        """Write, load back and check against ``module``; every file written."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        module = module.eval()
        with torch.no_grad():
            want = module(example)
        files = self.write(module, example, path)
        with torch.no_grad():
            got = self.load(path)(example)
        err, scale = max_error(got, want)
        if err > self.atol * max(scale, 1e-12) + self.rtol * scale:
            raise FxnasError(f"the {type(self).__name__} export of {path} differs from the subnet: max abs error "
                             f"{err:.3g} (max |output| {scale:.3g})")
        return files


@EXPORT_FORMATS.register("pt2")
class TorchExport(ExportFormat):
    """A ``torch.export`` program (``.pt2``, any batch size): ``torch.export.load(path).module()(x)``."""

    suffix = ".pt2"

    def write(self, module: nn.Module, example: torch.Tensor, path: Path) -> list[Path]:
        """``torch.export.export`` then ``torch.export.save``."""
        if path.suffix != self.suffix:  # torch.export.load reads only files named *.pt2
            raise FxnasError(f"a torch.export program must be written to a .pt2 file, not {str(path)!r}")
        # a dynamic batch dimension (traced at batch 2: torch.export specialises a size of 1)
        batch = torch.export.Dim("batch", min=1, max=1 << 16)
        traced_on = example.expand(2, *example.shape[1:]).contiguous() if example.shape[0] == 1 else example
        try:
            program = torch.export.export(module, (traced_on,), dynamic_shapes=({0: batch},))
        except Exception as exc:
            raise FxnasError(f"torch.export failed: {type(exc).__name__}: {' '.join(str(exc).split())[:200]}") \
                from exc
        torch.export.save(program, path)
        return [path]

    def load(self, path: Path) -> Runner:
        """The saved program's module."""
        return torch.export.load(path).module()


@EXPORT_FORMATS.register("torchscript")
class TorchScript(ExportFormat):
    """A TorchScript module traced on the example input (``.ts``): ``torch.jit.load(path)(x)``."""

    suffix = ".ts"

    def write(self, module: nn.Module, example: torch.Tensor, path: Path) -> list[Path]:
        """``torch.jit.trace`` (the subnet has no data-dependent control flow: it was traced by fx) then save."""
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # TorchScript's deprecation notice: the format is what was asked for
            traced = torch.jit.trace(module, (example,), check_trace=False)
        torch.jit.save(traced, str(path))
        return [path]

    def load(self, path: Path) -> Runner:
        """``torch.jit.load``."""
        return torch.jit.load(str(path), map_location="cpu")


@EXPORT_FORMATS.register("state_dict")
class StateDictSource(ExportFormat):
    """The weights (``.pt``, a state dict) beside generated model source (``.py``, a torch-only ``nn.Module``
    class ``Subnet``): ``Subnet().load_state_dict(torch.load(path, weights_only=True))``."""

    suffix = ".pt"

    def write(self, module: nn.Module, example: torch.Tensor, path: Path) -> list[Path]:
        """The source from ``module_source`` and its state dict."""
        from .source import module_source

        src, state = module_source(module)
        py = path.with_suffix(".py")
        py.write_text(src)
        torch.save(state, path)
        return [path, py]

    def load(self, path: Path) -> Runner:
        """Run the generated class in a fresh interpreter without fxnas (the file must stand alone)."""
        return _StandaloneRunner(path)


class _StandaloneRunner:
    """Runs ``<path>.py``'s Subnet with ``path``'s weights in a child Python that has not imported fxnas."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        inp, out = self.path.with_suffix(".input.pt"), self.path.with_suffix(".output.pt")
        torch.save(x, inp)
        code = (f"import runpy, sys, torch\n"
                f"ns = runpy.run_path({str(self.path.with_suffix('.py'))!r})\n"
                f"assert not any(m.split('.')[0] == 'fxnas' for m in sys.modules), 'fxnas was imported'\n"
                f"net = ns['Subnet']().eval()\n"
                f"net.load_state_dict(torch.load({str(self.path)!r}, weights_only=True))\n"
                f"with torch.no_grad():\n"
                f"    torch.save(net(torch.load({str(inp)!r}, weights_only=True)), {str(out)!r})\n")
        env = {**os.environ, "PYTHONPATH": "", "OMP_NUM_THREADS": "1"}
        try:
            r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                               cwd=str(self.path.parent), timeout=300)
            if r.returncode != 0:
                last = (r.stderr.strip().splitlines() or ["?"])[-1]
                raise FxnasError(f"the generated {self.path.with_suffix('.py')} does not run with plain torch: {last}")
            return torch.load(out, weights_only=True)
        finally:
            inp.unlink(missing_ok=True)
            out.unlink(missing_ok=True)


@EXPORT_FORMATS.register("onnx")
class Onnx(ExportFormat):
    """ONNX (``.onnx``, simplified with onnxsim), run with onnxruntime."""

    suffix = ".onnx"

    def __init__(self, rtol: float = 1e-3, atol: float = 1e-5, simplify: bool = True, opset: int = 18) -> None:
        super().__init__(rtol, atol)
        self.simplify, self.opset = simplify, opset

    def write(self, module: nn.Module, example: torch.Tensor, path: Path) -> list[Path]:
        """``export_onnx`` (its own check is the one ``export`` repeats)."""
        from ..profilers.onnx_export import export_onnx

        export_onnx(module, example, path, simplify=self.simplify, check=False, opset=self.opset)
        return [path]

    def load(self, path: Path) -> Runner:
        """An onnxruntime session on CPU."""
        from ..profilers.onnx_export import run_onnx

        return lambda x: run_onnx(path, x)[0]
