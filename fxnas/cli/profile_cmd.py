"""``fxnas profile``: params, MACs, memory and measured latency of a model, a space file's subnet or a search's
result, as a table (``--per-layer`` for every node), optionally writing the ONNX model."""

from __future__ import annotations

from typing import Any

import click

from ..modelfile import parse_kwargs
from .searchify_cmd import ShapeType

EXAMPLE = """\b
Examples:
  fxnas profile torchvision:resnet18 -s 1,3,224,224 -r onnxruntime -r torch --per-layer
  fxnas profile space.yaml --arch exp/demo/arch_best.yaml --onnx subnet.onnx
  fxnas profile exp/demo --no-latency"""


def _num(n: float) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.3f} {unit}"
    return f"{n:g}"


def _bytes(n: float) -> str:
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if abs(n) >= scale:
            return f"{n / scale:.2f} {unit}"
    return f"{int(n)} B"


def summary_table(title: str, stats: dict[str, Any], latencies: list[tuple[str, Any]]) -> Any:
    """The totals and one row per runtime's latency, as a rich Table."""
    from rich.table import Table

    t = Table(title=title)
    t.add_column("metric", style="cyan", no_wrap=True)
    t.add_column("value", style="bold")
    t.add_row("params", f"{stats['params']:,}" + (f" (module: {stats['total_params']:,})"
                                                   if stats["total_params"] != stats["params"] else ""))
    t.add_row("MACs", _num(stats["macs"]))
    t.add_row("FLOPs", _num(stats["flops"]))
    t.add_row("memory read", _bytes(stats["read_bytes"]))
    t.add_row("memory written", _bytes(stats["write_bytes"]))
    t.add_row("activation peak", _bytes(stats["peak_activation_bytes"]))
    t.add_row("input", _bytes(stats["input_bytes"]))
    if stats["uncounted"]:
        t.add_row("ops without a cost rule", ", ".join(stats["uncounted"]))
    for label, timing in latencies:
        t.add_row(f"latency {label}", f"{timing.median_ms:.3f} ms median, {timing.p90_ms:.3f} ms p90, "
                                      f"spread {timing.spread:.1%} ({timing.repeats} runs)")
    return t


def layer_table(counted: Any, op_ms: dict[str, float] | None) -> Any:
    """One row per costed node: kind, output shape, params, MACs, FLOPs, memory (and per-op latency)."""
    from rich.table import Table

    t = Table(title="per layer")
    for col in ("node", "kind", "output", "params", "MACs", "FLOPs", "read", "written"):
        t.add_column(col, overflow="fold")
    if op_ms is not None:
        t.add_column("ms (table)")
    for c in counted.nodes:
        if c.alias and not c.params:
            continue  # views: nothing to show
        row = [c.name, c.kind if c.counted else "other (no rule)",
               "x".join(map(str, c.out_shape)) if c.out_shape else "-", f"{c.params:,}", _num(c.macs),
               _num(c.flops), _bytes(c.read_bytes), _bytes(c.write_bytes)]
        if op_ms is not None:
            row.append(f"{op_ms[c.name]:.4f}" if c.name in op_ms else "-")
        t.add_row(*row)
    return t


@click.command("profile", epilog=EXAMPLE)
@click.argument("target")
@click.option("--arch", "-A", default=None, metavar="FILE",
              help="Arch file (YAML/JSON) choosing the subnet of a space file TARGET.")
@click.option("--input-shape", "-s", type=ShapeType(), default=None,
              help="Input shape, comma-separated (default: the space file's or experiment's; 1,3,224,224 for "
                   "a model).")
@click.option("--arg", "-a", "model_args", multiple=True, metavar="KEY=VALUE",
              help="Keyword argument for the model builder (repeatable).")
@click.option("--weights", "-w", type=click.Path(dir_okay=False), default=None, help="A local state dict.")
@click.option("--runtime", "-r", "runtimes", multiple=True, default=("onnxruntime",), show_default=True,
              help="Runtime to time on (repeatable): onnxruntime, torch, torch_compile.")
@click.option("--threads", default=1, show_default=True, help="Intra-op threads of every runtime.")
@click.option("--provider", default="CPUExecutionProvider", show_default=True,
              help="onnxruntime execution provider.")
@click.option("--device", default="cpu", show_default=True, help="torch device of the torch runtimes.")
@click.option("--repeats", default=30, show_default=True, help="Timed runs per measurement.")
@click.option("--warmup", default=5, show_default=True, help="Untimed runs first.")
@click.option("--no-latency", is_flag=True, help="Static counts only: time nothing.")
@click.option("--per-layer", is_flag=True, help="A row per node (with per-op latency of the first runtime).")
@click.option("--onnx", "onnx_path", type=click.Path(dir_okay=False), default=None,
              help="Write the model as ONNX (simplified, checked against torch).")
@click.option("--cache", default=None, metavar="PATH",
              help="Latency cache file or folder (default: $FXNAS_CACHE_DIR or ~/.cache/fxnas).")
@click.option("--no-cache", is_flag=True, help="Measure everything again, store nothing.")
def profile(target: str, arch: str | None, input_shape: tuple[int, ...] | None, model_args: tuple[str, ...],
            weights: str | None, runtimes: tuple[str, ...], threads: int, provider: str, device: str, repeats: int,
            warmup: int, no_latency: bool, per_layer: bool, onnx_path: str | None, cache: str | None,
            no_cache: bool) -> None:
    """Profile TARGET: a model (model.py[:entry], torchvision:NAME), a space file with --arch, or an
    experiment folder. Prints params, MACs, FLOPs, memory and the latency on each runtime."""
    import torch
    from rich.console import Console

    from ..profilers.counter import count
    from ..profilers.onnx_export import export_onnx
    from .profile_target import load_target

    tgt = load_target(target, arch, input_shape, parse_kwargs(model_args), weights)
    x = torch.randn(tgt.input_shape, generator=torch.Generator().manual_seed(0))
    counted = count(tgt.module, x)
    latencies, op_ms = [], None
    if not no_latency:
        for i, name in enumerate(runtimes):
            prof = _profiler(name, threads, provider, device, repeats, warmup, None if no_cache else (cache or True))
            latencies.append((f"{name} ({_where(prof)})", prof.measure(tgt.module, x)))
            if per_layer and i == 0:
                op_ms = _per_op(prof, counted)
    console = Console(width=max(120, Console().width))
    shape = "x".join(map(str, tgt.input_shape))
    console.print(summary_table(f"{tgt.label} on {shape}", counted.summary(), latencies))
    if per_layer:
        console.print(layer_table(counted, op_ms))
    if onnx_path:
        export_onnx(tgt.module, x, onnx_path)
        console.print(f"ONNX written to {onnx_path}")


def _profiler(name: str, threads: int, provider: str, device: str, repeats: int, warmup: int, cache: Any) -> Any:
    import inspect

    from ..profilers.latency import LatencyProfiler
    from ..profilers.runtimes import RUNTIMES

    accepted = inspect.signature(RUNTIMES.get(name)).parameters
    given = {"threads": threads, "provider": provider, "device": device}
    options = {k: v for k, v in given.items() if k in accepted}
    return LatencyProfiler(name, cache=cache, repeats=repeats, warmup=warmup, **options)


def _where(prof: Any) -> str:
    rt = prof.runtime
    return f"{rt.device()}, {rt.n_threads} thread{'s' if rt.n_threads > 1 else ''}"


def _per_op(prof: Any, counted: Any) -> dict[str, float]:
    from ..profilers.latency import LatencyTable

    table = LatencyTable(profiler=prof)
    out = {}
    for n, key in table.ops_of(counted):
        out[n.name] = table.measure(counted.gm, n, key, counted.shapes)
    return out
