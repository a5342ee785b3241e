"""``fxnas export``: a searched architecture as a standalone model file (pt2, torchscript, state_dict, onnx)."""

from __future__ import annotations

from pathlib import Path

import click

from .common import RegistryOption
from .searchify_cmd import ShapeType

EXAMPLE = """\b
Examples:
  fxnas export exp/demo -f pt2 -o demo.pt2
  fxnas export space.yaml --arch arch.yaml -f state_dict -o subnet.pt -s 1,3,32,32"""


def _formats() -> object:
    from ..export.formats import EXPORT_FORMATS

    return EXPORT_FORMATS


@click.command("export", epilog=EXAMPLE)
@click.argument("source")
@click.option("--arch", "-A", default=None, metavar="FILE",
              help="Arch file choosing the subnet of a space file SOURCE (an experiment folder uses its "
                   "arch_best.yaml).")
@click.option("--format", "-f", "fmt", default="pt2", show_default=True, cls=RegistryOption, registry=_formats(),
              help="Output format.")
@click.option("--out", "-o", type=click.Path(dir_okay=False), default=None,
              help="Output file (default: subnet<suffix of the format> in the working folder).")
@click.option("--input-shape", "-s", type=ShapeType(), default=None,
              help="Example input shape (default: the experiment's data or the space file's).")
@click.option("--weights", "-w", type=click.Path(dir_okay=False), default=None,
              help="A state dict of the subnet to load first (read with weights_only=True).")
def export(source: str, arch: str | None, fmt: str, out: str | None, input_shape: tuple[int, ...] | None,
           weights: str | None) -> None:
    """Export SOURCE's subnet, an experiment folder (its best arch, with the weights the search exported) or a
    space file with --arch, as a model file that runs without fxnas; the file is loaded back and its output
    checked against the subnet's."""
    import torch

    from ..errors import ConfigError
    from ..export.formats import EXPORT_FORMATS
    from ..export.run import load_state
    from .profile_target import load_target

    if not Path(source).is_dir() and Path(source).suffix not in (".yaml", ".yml"):
        raise ConfigError(f"SOURCE {source!r} is neither an experiment folder nor a space file (.yaml)")
    exporter = EXPORT_FORMATS.build(fmt, where="--format")
    tgt = load_target(source, arch, input_shape, {}, None)
    if weights is not None:
        tgt.module.load_state_dict(load_state(Path(weights)))
    path = Path(out) if out else Path(f"subnet{exporter.suffix}")
    x = torch.randn(tgt.input_shape, generator=torch.Generator().manual_seed(0))
    files = exporter.export(tgt.module, x, path)
    click.echo(f"{fmt} export of {tgt.label} (input {'x'.join(map(str, tgt.input_shape))}), checked against "
               f"the subnet: {', '.join(map(str, files))}")
