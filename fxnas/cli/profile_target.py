"""What ``fxnas profile`` profiles: a model source, a space file plus an arch, or an experiment folder."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from ..errors import ConfigError
from ..yamlio import load_yaml

DEFAULT_SHAPE = (1, 3, 224, 224)


@dataclass
class Target:
    """A plain module to profile, the input shape to profile it at, and what it came from."""

    module: nn.Module
    input_shape: tuple[int, ...]
    label: str


def load_target(target: str, arch: str | None, input_shape: tuple[int, ...] | None,
                model_args: dict[str, Any], weights: str | None) -> Target:
    """Resolve ``target``: an experiment folder (its best subnet, see ``subnet_from_run``), a space file
    (with ``arch``: the arch's materialised subnet) or a model source (``model.py[:entry]``,
    ``torchvision:NAME``)."""
    p = Path(target)
    if arch is not None and not (p.is_file() and p.suffix in (".yaml", ".yml")):
        raise ConfigError(f"--arch goes with a space file (space.yaml written by fxnas searchify --out); "
                          f"{target!r} is not one")
    if p.is_dir():
        return _experiment(p, input_shape)
    if p.is_file() and p.suffix in (".yaml", ".yml"):
        return _space(p, arch, input_shape)
    from ..modelfile import load_model

    model = load_model(target, model_args, weights)
    return Target(model.eval(), input_shape or DEFAULT_SHAPE, target)


def _experiment(folder: Path, input_shape: tuple[int, ...] | None) -> Target:
    """The search's best subnet, rebuilt from the folder's plain files (its weights read with weights_only)."""
    from ..export.run import subnet_from_run

    run = subnet_from_run(folder)
    return Target(run.module, input_shape or run.input_shape, str(folder))


def _onnx_shape(path: Path) -> tuple[int, ...] | None:
    if not path.is_file():
        return None
    import onnx

    dims = onnx.load(str(path), load_external_data=False).graph.input[0].type.tensor_type.shape.dim
    shape = tuple(d.dim_value for d in dims)
    return shape if shape and all(d > 0 for d in shape) else None


def _config_shape(path: Path) -> tuple[int, ...] | None:
    """The example input shape of the experiment's dataset, built from its config (batch 1)."""
    if not path.is_file():
        return None
    data = (load_yaml(path.read_text()) or {}).get("data")
    if not isinstance(data, dict) or "type" not in data:
        return None
    from ..train.datasets import DATASETS

    bundle = DATASETS.build(data, where="data")
    return (1, *tuple(bundle.input_shape)[1:])


def _space(path: Path, arch: str | None, input_shape: tuple[int, ...] | None) -> Target:
    from ..arch import read_arch
    from ..passes.materialize import materialize
    from ..spacefile import load_supernet, read_space

    if arch is None:
        raise ConfigError(f"{str(path)!r} is a space file; name the subnet to profile with --arch arch.yaml "
                          f"(an arch file, or an experiment's arch_best.yaml)")
    recipe, _ = read_space(path)
    net = load_supernet(path)
    chosen = read_arch(arch, net.space)
    sub = materialize(net, {**net.space.current(), **chosen})
    return Target(sub.eval(), input_shape or (1, *recipe.input_shape[1:]), f"{path} @ {arch}")
