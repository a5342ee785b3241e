"""SPACES: named models and search spaces for a config's ``model.type``, and how a model reference resolves.

A builder may return a plain model (an experiment's ``construct`` section makes the supernet), a supernet, or
just a SearchSpace (table lookups). Modules that define spaces register them here (``@SPACES.register``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from torch import nn

from ..errors import ConfigError
from ..options import FilePath
from ..registry import Registry

SPACES = Registry("space")


@SPACES.register("tiny_net")
def tiny_net(num_classes: int = 10, width: int = 16) -> nn.Module:
    """fxnas/examples/tiny_net.py: a small residual CNN (3-channel input)."""
    from ..examples.tiny_net import build

    return build(num_classes, width)


@SPACES.register("space_file")
def space_file(path: FilePath, validate: bool = True, input_shape: Sequence[int] | None = None) -> nn.Module:
    """The supernet a space file describes (written by ``fxnas searchify --out space.yaml``).

    With a config's data, its input shape must be the one the space was traced with (batch size aside).
    """
    from ..spacefile import load_supernet, read_space

    recipe, _ = read_space(path)
    if input_shape is not None and tuple(input_shape)[1:] != tuple(recipe.input_shape)[1:]:
        raise ConfigError(f"space file {path!r} was traced on inputs {tuple(recipe.input_shape)}, but the data "
                          f"gives {tuple(input_shape)}; make the data match or searchify again with "
                          f"--input-shape {','.join(str(d) for d in input_shape)}")
    return load_supernet(path, validate=validate)


def model_builder(ref: str) -> Callable[..., Any]:
    """The callable ``model.type`` names: torchvision:NAME, file.py[:fn] (without ``:fn``: the file's only
    function, else its only nn.Module class), package.module:fn, or a SPACES name."""
    from ..userobj import load_object

    if ref.startswith("torchvision:"):
        from ..modelfile import TORCHVISION_PREFIX, build_torchvision

        arch = ref[len(TORCHVISION_PREFIX):]

        def tv(num_classes: int = 1000, **kwargs: Any) -> Any:
            # modelfile's builder: classification models only, weights= refused (it would download)
            return build_torchvision(arch, {"num_classes": num_classes, **kwargs})

        tv.__doc__ = f"torchvision {arch}"
        return tv
    if ref.endswith(".py"):
        # the CLI's discovery: the file's only function, else its only nn.Module class
        from ..modelfile import find_entry, import_model_file

        if not Path(ref).is_file():
            raise ConfigError(f"model.type: python file {ref!r} does not exist")
        return find_entry(import_model_file(ref), None)[1]
    if ":" in ref:
        fn = load_object(ref)
        if not callable(fn):
            raise ConfigError(f"model.type {ref!r} is not callable")
        return fn
    return SPACES.resolve(ref, "model.type")[1]
