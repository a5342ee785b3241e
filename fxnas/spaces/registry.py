"""SPACES: named models and search spaces for a config's ``model.type``, and how a model reference resolves.

A builder may return a plain model (an experiment's ``construct`` section makes the supernet), a supernet, or
just a SearchSpace (table lookups). Modules that define spaces register them here (``SPACES.register``).
"""

from __future__ import annotations

import difflib
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


def model_builder(ref: str) -> Callable[..., Any]:
    """The callable ``model.type`` names: torchvision:NAME, file.py[:fn], package.module:fn, or a SPACES name."""
    from ..train.data import load_object

    if ref.startswith("torchvision:"):
        import torchvision

        arch = ref.split(":", 1)[1]
        names = torchvision.models.list_models()
        if arch not in names:
            close = difflib.get_close_matches(arch, names, n=3, cutoff=0.5)
            raise ConfigError(f"model.type: torchvision has no model {arch!r}"
                              + (f"; did you mean {', '.join(close)}?" if close else ""))
        builder = torchvision.models.get_model_builder(arch)

        def tv(num_classes: int = 1000, **kwargs: Any) -> Any:
            return builder(num_classes=num_classes, **kwargs)

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
