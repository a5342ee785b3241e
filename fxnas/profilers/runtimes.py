"""Runtimes a latency is measured on (``RUNTIMES``): onnxruntime, torch eager, torch.compile; and ``Timing``.

A runtime prepares a module for repeated runs and names itself by everything that changes its speed
(``key()``: versions, execution provider or device, threads), which is part of every cache key.
"""

from __future__ import annotations

import contextlib
import copy
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import ConfigError, FxnasError
from ..graph import as_tuple
from ..registry import Registry

RUNTIMES = Registry("runtime")


@dataclass(frozen=True)
class Timing:
    """Latency statistics in ms over ``repeats`` timed runs after ``warmup`` untimed ones.

    ``spread_ms`` is the interquartile range; ``spread`` the same relative to the median.
    """

    median_ms: float
    p90_ms: float
    min_ms: float
    max_ms: float
    spread_ms: float
    repeats: int
    warmup: int

    @classmethod
    def from_samples(cls, samples_ms: list[float], warmup: int) -> Timing:
        """Statistics of the timed runs ``samples_ms``."""
        if not samples_ms:
            raise ConfigError("a timing needs at least one repeat")
        s = sorted(samples_ms)
        q = statistics.quantiles(s, n=4, method="inclusive") if len(s) > 1 else [s[0]] * 3
        return cls(statistics.median(s), s[round(0.9 * (len(s) - 1))], s[0], s[-1], q[2] - q[0], len(s), warmup)

    @property
    def spread(self) -> float:
        """Interquartile range over the median."""
        return self.spread_ms / self.median_ms if self.median_ms > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        """Plain data (cache rows, JSON)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Timing:
        """Inverse of to_dict."""
        return cls(**{k: d[k] for k in cls.__dataclass_fields__})


class CacheFlusher:
    """Writes a buffer of ``mb`` MiB, evicting the CPU caches (a buffer larger than the last-level cache)."""

    def __init__(self, mb: float) -> None:
        import numpy as np

        self.buf = np.zeros(int(mb * 2**20), dtype=np.uint8)
        self.i = 0

    def __call__(self) -> None:
        self.i = (self.i + 1) % 251
        self.buf.fill(self.i)


def time_runs(run: Callable[[], Any], repeats: int, warmup: int, sync: Callable[[], None] | None = None,
              before: Callable[[], None] | None = None) -> list[float]:
    """Milliseconds of each of ``repeats`` calls of ``run`` after ``warmup`` untimed ones; ``before`` runs
    (untimed) ahead of each timed call."""
    for _ in range(warmup):
        run()
    if sync is not None:
        sync()
    samples = []
    for _ in range(repeats):
        if before is not None:
            before()
        t0 = time.perf_counter()
        run()
        if sync is not None:
            sync()
        samples.append((time.perf_counter() - t0) * 1e3)
    return samples


class Runtime:
    """Base of the runtimes: ``prepare`` returns a zero-argument callable that runs the module once."""

    name = "runtime"
    n_threads = 1

    def key(self) -> str:
        """Everything about this runtime that changes a latency (part of each cache key)."""
        raise NotImplementedError

    def device(self) -> str:
        """``cpu`` or the accelerator measured on (part of the machine key)."""
        return "cpu"

    def prepare(self, module: nn.Module | str | os.PathLike, example_inputs: Any) -> Callable[[], Any]:
        """A callable that runs ``module`` on ``example_inputs`` once."""
        raise NotImplementedError

    def sync(self) -> None:
        """Wait for queued work (accelerators)."""

    @contextlib.contextmanager
    def threads(self) -> Iterator[None]:
        """Within the block, the runtime uses its configured thread count."""
        yield

    def measure(self, module: nn.Module | str | os.PathLike, example_inputs: Any, repeats: int = 30,
                warmup: int = 5, flush_mb: float = 0.0) -> Timing:
        """Time ``module`` on ``example_inputs``; with ``flush_mb``, the CPU caches are evicted before each
        timed run (a part measured alone then pays for loading its weights, as it does inside a network
        whose weights exceed the caches)."""
        if int(repeats) < 1 or int(warmup) < 0 or not flush_mb >= 0:
            raise ConfigError(f"latency needs repeats >= 1, warmup >= 0 and flush_mb >= 0, got {repeats}, "
                              f"{warmup}, {flush_mb}")
        run = self.prepare(module, example_inputs)
        flush = CacheFlusher(flush_mb) if flush_mb else None
        with self.threads():
            samples = time_runs(run, int(repeats), int(warmup), self.sync, flush)
        return Timing.from_samples(samples, int(warmup))


def _threads(n: Any) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ConfigError(f"threads must be an integer >= 1, got {n!r}")
    return n


@RUNTIMES.register("onnxruntime")
class OnnxRuntime(Runtime):
    """onnxruntime on an execution provider with ``threads`` intra-op threads, every graph optimisation on.

    ``provider`` is any of ``onnxruntime.get_available_providers()`` (``CPUExecutionProvider``,
    ``CUDAExecutionProvider``...). A module is exported with ``fxnas.export_onnx`` (opset ``opset``) first,
    simplified with onnxsim only when ``simplify`` (the session's own optimisations fold constants and fuse
    conv/norm/activation already, and onnxsim costs seconds per model).
    """

    name = "onnxruntime"

    def __init__(self, provider: str = "CPUExecutionProvider", threads: int = 1, opset: int = 18,
                 simplify: bool = False) -> None:
        import onnxruntime as ort

        available = ort.get_available_providers()
        if provider not in available:
            raise ConfigError(f"onnxruntime has no execution provider {provider!r} here; available: {available}")
        self.provider, self.n_threads, self.opset, self.simplify = provider, _threads(threads), int(opset), simplify
        self.version = ort.__version__

    def key(self) -> str:
        simplified = "/onnxsim" if self.simplify else ""
        return f"onnxruntime-{self.version}/{self.provider}/threads={self.n_threads}/opset={self.opset}{simplified}"

    def device(self) -> str:
        return "cpu" if self.provider == "CPUExecutionProvider" else self.provider

    def session(self, path: str | os.PathLike) -> Any:
        """An InferenceSession of ``path`` with this runtime's provider and threads."""
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = self.n_threads
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.log_severity_level = 3
        return ort.InferenceSession(str(path), opts, providers=[self.provider])

    def prepare(self, module: nn.Module | str | os.PathLike, example_inputs: Any) -> Callable[[], Any]:
        from .onnx_export import export_onnx

        args = as_tuple(example_inputs)
        with tempfile.TemporaryDirectory() as tmp:
            path = module
            if isinstance(module, nn.Module):
                path = export_onnx(module, args, Path(tmp) / "model.onnx", simplify=self.simplify, check=False,
                                   opset=self.opset)
            sess = self.session(path)  # the session holds the model: the file can go
        feeds = {i.name: a.detach().cpu().numpy() for i, a in zip(sess.get_inputs(), args)}
        return lambda: sess.run(None, feeds)


@RUNTIMES.register("torch")
class TorchEager(Runtime):
    """torch eager mode under ``inference_mode`` on ``device`` with ``threads`` intra-op threads (CPU)."""

    name = "torch"

    def __init__(self, device: str = "cpu", threads: int = 1) -> None:
        try:
            self.dev = torch.device(device)
        except (RuntimeError, TypeError):
            raise ConfigError(f"unknown torch device {device!r}; e.g. cpu, cuda, cuda:1") from None
        if self.dev.type == "cuda" and not torch.cuda.is_available():
            raise ConfigError("torch runtime on cuda asked for, but CUDA is not available here")
        self.n_threads = _threads(threads)

    def mode(self) -> str:
        """How modules run: ``eager``."""
        return "eager"

    def key(self) -> str:
        return f"torch-{torch.__version__}/{self.mode()}/{self.dev}/threads={self.n_threads}"

    def device(self) -> str:
        if self.dev.type == "cuda":
            return torch.cuda.get_device_name(self.dev)
        return str(self.dev)

    def sync(self) -> None:
        if self.dev.type == "cuda":
            torch.cuda.synchronize(self.dev)

    @contextlib.contextmanager
    def threads(self) -> Iterator[None]:
        before = torch.get_num_threads()
        torch.set_num_threads(self.n_threads)
        try:
            yield
        finally:
            torch.set_num_threads(before)

    def compile(self, module: nn.Module) -> Callable[..., Any]:
        """The callable that runs ``module`` (eager: the module itself)."""
        return module

    def prepare(self, module: nn.Module | str | os.PathLike, example_inputs: Any) -> Callable[[], Any]:
        if not isinstance(module, nn.Module):
            raise ConfigError(f"the {self.name} runtime times modules, not files ({module!r})")
        m = copy.deepcopy(module).eval().to(self.dev)  # the caller's module keeps its device and mode
        args = tuple(a.to(self.dev) if isinstance(a, torch.Tensor) else a for a in as_tuple(example_inputs))
        fn = self.compile(m)

        def run() -> Any:
            with torch.inference_mode():
                return fn(*args)

        return run


@RUNTIMES.register("torch_compile")
class TorchCompile(TorchEager):
    """``torch.compile`` (``backend``, ``mode``) on top of the torch runtime; compiled once in ``prepare``.

    Where compilation does not work (no C++ compiler for inductor, an op it cannot lower) ``prepare`` raises
    an FxnasError naming the first line of the reason.
    """

    name = "torch_compile"

    def __init__(self, device: str = "cpu", threads: int = 1, backend: str = "inductor", mode: str | None = None
                 ) -> None:
        super().__init__(device, threads)
        self.backend, self.compile_mode = backend, mode

    def mode(self) -> str:
        return f"compile-{self.backend}-{self.compile_mode or 'default'}"

    def compile(self, module: nn.Module) -> Callable[..., Any]:
        return torch.compile(module, backend=self.backend, mode=self.compile_mode, dynamic=False)

    def prepare(self, module: nn.Module | str | os.PathLike, example_inputs: Any) -> Callable[[], Any]:
        run = super().prepare(module, example_inputs)
        try:
            with self.threads():
                run()  # compiles
        except Exception as exc:
            first = (str(exc).strip().splitlines() or [""])[0]
            raise FxnasError(f"torch.compile ({self.backend}) does not work here for {type(module).__name__}: "
                             f"{type(exc).__name__}: {first}") from exc
        return run


def build_runtime(runtime: str | Runtime, **options: Any) -> Runtime:
    """A Runtime from its registry name and options (or the given instance, then without options)."""
    if isinstance(runtime, Runtime):
        if options:
            raise ConfigError(f"runtime options {sorted(options)} given with a ready {type(runtime).__name__}")
        return runtime
    cls = RUNTIMES.get(runtime)
    try:
        return cls(**options)
    except TypeError as exc:
        import inspect

        valid = [p for p in inspect.signature(cls).parameters]
        raise ConfigError(f"runtime {runtime!r} got bad options {sorted(options)}: {exc}; valid: {valid}") from None
