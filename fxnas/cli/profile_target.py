"""What ``fxnas profile`` profiles: a model source, a space file plus an arch, or an experiment folder."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
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
    """Resolve ``target``: an experiment folder (its ``subnet.pt``), a space file (with ``arch``: the arch's
    materialised subnet) or a model source (``model.py[:entry]``, ``torchvision:NAME``)."""
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
    """The subnet of a finished search folder. ``subnet.pt`` is a whole pickled module that ``fxnas search``
    wrote for the user (unpickling runs code): only the user's own experiment folders are read this way."""
    sub = folder / "subnet.pt"
    if not sub.is_file():
        raise ConfigError(f"experiment folder {str(folder)!r} has no subnet.pt; a finished fxnas search writes it "
                          f"(export.materialize: true, the default)")
    try:
        module = torch.load(sub, weights_only=False, map_location="cpu")
    except Exception as exc:  # a pickle from another fxnas/torch version
        raise ConfigError(f"cannot load {str(sub)!r}: {type(exc).__name__}: {exc}") from None
    if not isinstance(module, nn.Module):
        raise ConfigError(f"{str(sub)!r} holds a {type(module).__name__}, not a module")
    shape = input_shape or _onnx_shape(folder / "subnet.onnx") or _config_shape(folder / "config.yaml")
    if shape is None:
        raise ConfigError(f"cannot tell the input shape of {str(folder)!r} (no subnet.onnx, no data section in "
                          f"config.yaml); pass --input-shape")
    return Target(module.eval(), shape, str(folder))


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
