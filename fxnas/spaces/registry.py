"""SPACES: named models and search spaces for a config's ``model.type``, and how a model reference resolves.

A builder may return a plain model (an experiment's ``construct`` section makes the supernet), a supernet, or
just a SearchSpace (table lookups). Modules that define spaces register them here (``SPACES.register``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..errors import ConfigError, RegistryError
from ..registry import Registry

SPACES = Registry("space")


def _lazy_space(ref: str, doc: str) -> Callable[..., Any]:
    """A SPACES entry that imports ``module:fn`` only when used (those modules are optional)."""

    def build(**kwargs: Any) -> Any:
        from ..train.data import load_object

        return load_object(ref)(**kwargs)

    build.__doc__ = doc
    build.lazy_ref = ref  # type: ignore[attr-defined]  # model_builder resolves it (to see its signature)
    return build


SPACES.register("darts", _lazy_space("fxnas.spaces.darts:darts_supernet",
                                     "the DARTS cell search space (fxnas.spaces.darts.darts_supernet)"))
SPACES.register("tiny_net", _lazy_space("fxnas.examples.tiny_net:build",
                                        "fxnas/examples/tiny_net.py: a small residual CNN (3-channel input)"))
SPACES.register("nb201", _lazy_space("fxnas.nb201.model:build_nb201",
                                     "NAS-Bench-201: the 6 edge params for table lookups, or the cell network "
                                     "with supernet: true (fxnas.nb201.model.build_nb201)"))


def model_builder(ref: str) -> Callable[..., Any]:
    """The callable ``model.type`` names: torchvision:NAME, file.py[:fn], package.module:fn, or a SPACES name."""
    from ..train.data import load_object

    if ref.startswith("torchvision:"):
        from ..modelfile import TORCHVISION_PREFIX, _build_torchvision

        arch = ref[len(TORCHVISION_PREFIX):]

        def tv(num_classes: int = 1000, **kwargs: Any) -> Any:
            # modelfile's builder: classification models only, weights= refused (it would download)
            return _build_torchvision(arch, {"num_classes": num_classes, **kwargs})

        tv.__doc__ = f"torchvision {arch}"
        return tv
    if ref.endswith(".py"):
        ref = f"{ref}:build"
    if ":" in ref:
        fn = load_object(ref)
        if not callable(fn):
            raise ConfigError(f"model.type {ref!r} is not callable")
        return fn
    try:
        fn = SPACES.get(ref)
    except RegistryError as e:
        raise ConfigError(f"model.type: {e}") from None
    lazy = getattr(fn, "lazy_ref", None)
    return load_object(lazy) if lazy else fn
