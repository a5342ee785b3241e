"""``fxnas searchify``: turn a model file into a supernet, show its slots and write a space file."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click

from ..candidates.registry import CANDIDATES
from ..console import make_console
from ..errors import FxnasError
from ..mixed.base import MIXED_OPS
from ..modelfile import parse_kwargs, parse_shape, parse_source
from ..outputs import check_writable
from ..passes.patterns import PATTERNS
from ..spacefile import SpaceRecipe, write_space
from ..supernet import space_of
from ..tracers import TRACERS
from .common import RegistryOption, epilog, import_option


class ShapeType(click.ParamType):
    """A click type for ``1,3,32,32``; anything else is a usage error naming the expected form."""

    name = "shape"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> tuple[int, ...]:
        if isinstance(value, tuple):
            return value
        try:
            return parse_shape(value)
        except FxnasError as exc:
            self.fail(str(exc), param, ctx)


def _fmt_shape(shape: Any) -> str:
    return "x".join(str(d) for d in shape) if shape else "-"


def slot_table(net: Any, specs: dict[str, Any], title: str) -> Any:
    """A rich Table of the slots: name, original op, in/out shape, stride, candidates."""
    from rich.table import Table

    space = space_of(net)
    table = Table(title=title)
    for col in ("slot", "original", "in", "out", "stride", "candidates"):
        table.add_column(col, overflow="fold")
    for name, spec in specs.items():
        d = spec.describe()
        cands = ",".join(space[name].choices) if name in space else "-"
        table.add_row(name, d["original"] or "-", _fmt_shape(d["in_shape"]), _fmt_shape(d["out_shape"]),
                      str(d["stride"]), cands)
    return table


def elastic_table(net: Any) -> Any:
    """A rich Table of the elastic params: name, kind, choices."""
    from rich.table import Table

    from ..elastic.params import elastic_params

    table = Table(title=f"{len(elastic_params(net))} elastic params")
    for col in ("param", "choices"):
        table.add_column(col, overflow="fold")
    for name, p in elastic_params(net).items():
        table.add_row(name, ",".join(str(c) for c in p.choices))
    return table


@click.command("searchify", epilog=epilog(
    "fxnas searchify torchvision:resnet18 -a num_classes=10 -p conv3x3 -c ORIG,MB3E6,DW5 --out space.yaml"))
@import_option
@click.argument("model")
@click.option("--pattern", "-p", default=None, cls=RegistryOption, registry=PATTERNS,
              help="Pattern name(s), comma-separated (default: conv3x3; none with --elastic alone).")
@click.option("--candidates", "-c", default=None, cls=RegistryOption, registry=CANDIDATES,
              help="Comma-separated candidate names (default: ORIG).")
@click.option("--input-shape", "-s", type=ShapeType(), default="1,3,32,32", show_default=True,
              help="Example input shape, comma-separated.")
@click.option("--weights", "-w", type=click.Path(dir_okay=False), default=None,
              help="A local state dict (.pth) loaded into the model first.")
@click.option("--arg", "-a", "model_args", multiple=True, metavar="KEY=VALUE",
              help="Keyword argument for the model builder (repeatable), e.g. num_classes=10.")
@click.option("--mixed-op", default="Index", show_default=True, cls=RegistryOption, registry=MIXED_OPS,
              help="The mixed op every slot is lowered into.")
@click.option("--seed", default=0, show_default=True, help="Seed for model and candidate initialisation.")
@click.option("--elastic", "-e", "elastic_args", multiple=True, metavar="KEY=VALUE",
              help="Make the model elastic too (repeatable; keys of a config's elastic section, YAML values), "
                   "e.g. -e 'width=[0.5,1.0]' -e 'depth=[0,1]'.")
@click.option("--leaf", "leaves", multiple=True, metavar="FILE.py:CLASS|MODULE:CLASS",
              help="Trace this module class as one opaque call (repeatable), e.g. for code with data-dependent "
                   "control flow: --leaf model.py:Router or --leaf torch.nn:LSTM.")
@click.option("--concrete", "concrete", multiple=True, metavar="ARG=VALUE",
              help="A fixed value for a forward argument that steers control flow (repeatable, YAML value), "
                   "e.g. --concrete use_aux=false.")
@click.option("--tracer", default=None, cls=RegistryOption, registry=TRACERS,
              help="How the model becomes a graph (default: hf for Hugging Face models, else fx); meta decides "
                   "shape-dependent Python at --input-shape.")
@click.option("--out", "-o", type=click.Path(dir_okay=False), default=None,
              help="Write a space file (YAML) from which the same supernet is re-created.")
def searchify(imports: tuple[str, ...], model: str, pattern: str | None, candidates: str | None,
              input_shape: tuple[int, ...], weights: str | None, model_args: tuple[str, ...], mixed_op: str,
              seed: int, elastic_args: tuple[str, ...], leaves: tuple[str, ...], concrete: tuple[str, ...],
              tracer: str | None, out: str | None) -> None:
    """Find the slots PATTERN matches in MODEL (model.py, model.py:build or torchvision:resnet18).

    With --elastic, the model's width, kernel or depth become elastic too (alone: without --pattern, no
    slots). The space file written with --out is a model source of `fxnas search`
    (model: {type: space_file, path: ...}).
    """
    if out:  # before the work: a folder that cannot take the file is reported now, not after the build
        check_writable(Path(out).resolve().parent)
    source = parse_source(model, parse_kwargs(model_args))
    elastic = parse_kwargs(elastic_args, what="--elastic") if elastic_args else None
    if pattern is None and (elastic is None or candidates is not None):
        pattern = "conv3x3"
    recipe = SpaceRecipe(source, input_shape, pattern, candidates or "ORIG", mixed_op, weights=weights, seed=seed,
                         elastic=elastic, leaf_modules=list(leaves),
                         concrete_args=parse_kwargs(concrete, what="--concrete"), tracer=tracer)
    t0 = time.perf_counter()
    net, specs = recipe.build()
    secs = time.perf_counter() - t0
    space = space_of(net)
    console = make_console(min_width=120)  # the slot table needs its columns
    if pattern is not None:
        console.print(slot_table(net, specs, f"{source.spec()}: {len(specs)} slots matching {pattern!r}"))
    if elastic is not None:
        console.print(elastic_table(net))
    n_params = sum(p.numel() for p in net.parameters())
    console.print(f"space size: {space.size():.6g} archs over {len(space.discrete())} params; "
                  f"supernet params: {n_params:,}; built in {secs:.2f}s")
    if out:
        write_space(out, recipe, net, specs)
        console.print(f"space file written to {out}")
