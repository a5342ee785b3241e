"""Rebuilding a search's exported subnet from its experiment folder without unpickling anything.

The folder holds plain data (``config.yaml``, ``arch_best.yaml``) and the subnet's weights as a state dict
(``subnet_state.pt``, read with ``torch.load(weights_only=True)``). The network is rebuilt from the config the
same way the search built it (the model builder, then ``construct``/``elastic``), cut to the best arch by
``materialize``, and given the saved weights. ``subnet.pt`` (a whole pickled module) is never loaded here: a
crafted file could run code when unpickled, and a folder may come from someone else.
"""

from __future__ import annotations

import os
import pickle
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import ConfigError
from ..yamlio import load_yaml

STATE_FILE = "subnet_state.pt"


@dataclass
class RunSubnet:
    """A search's exported subnet (eval mode, saved weights loaded), its input shape and best arch."""

    module: nn.Module
    input_shape: tuple[int, ...]
    arch: dict[str, Any]
    label: str


def _read_config(folder: Path) -> dict[str, Any]:
    path = folder / "config.yaml"
    if not path.is_file():
        raise ConfigError(f"{str(folder)!r} is not an experiment folder (no config.yaml); fxnas search writes one "
                          f"to <out_root>/<name>/")
    from ..config import load_config

    raw = load_yaml(path.read_text())
    if not isinstance(raw, dict):
        raise ConfigError(f"{str(path)!r} does not hold an experiment config (a mapping)")
    # the saved config is validated already; loading it again resolves defaults and user imports
    return load_config(raw)


def load_state(path: Path) -> dict[str, torch.Tensor]:
    """A state dict read with ``weights_only=True``; ConfigError when the file is missing, holds code or is
    truncated."""
    if not path.is_file():
        raise ConfigError(f"{str(path)!r} does not exist; a search exports it with its best subnet "
                          f"(export.materialize: true, the default)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise ConfigError(f"{str(path)!r} holds Python objects beyond tensors, which could run code when loaded, "
                          f"so it is refused") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError) as exc:
        raise ConfigError(f"{str(path)!r} is truncated or not a state dict ({type(exc).__name__})") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ConfigError(f"{str(path)!r} is not a state dict (a mapping of names to tensors)")
    return state


def subnet_from_run(folder: str | os.PathLike) -> RunSubnet:
    """The best subnet of the finished search in ``folder``, rebuilt from plain files (see the module doc)."""
    from ..arch import read_arch
    from ..config.build import build_model
    from ..passes.materialize import materialize
    from ..rng import seed_everything
    from ..train.datasets import DATASETS

    folder = Path(folder)
    if not folder.is_dir():
        raise ConfigError(f"experiment folder {str(folder)!r} does not exist")
    cfg = _read_config(folder)
    state = load_state(folder / STATE_FILE)
    seed_everything(int(cfg["seed"]))
    data = None if cfg["data"] is None else DATASETS.build(cfg["data"], where="data", inject={"seed": cfg["seed"]})
    model, space = build_model(cfg["model"], cfg["construct"], data, cfg.get("elastic"))
    if model is None or space is None:
        raise ConfigError(f"the config of {str(folder)!r} builds no network (a table benchmark has no subnet)")
    arch = read_arch(folder / "arch_best.yaml", space)
    sub = materialize(model, {**space.current(), **arch})
    missing, unexpected = _key_diff(sub.state_dict(), state)
    if missing or unexpected:
        raise ConfigError(f"{str(folder / STATE_FILE)!r} does not fit the subnet rebuilt from config.yaml and "
                          f"arch_best.yaml (missing {missing[:3]}, unexpected {unexpected[:3]}); did the model file "
                          f"or fxnas change since the search?")
    sub.load_state_dict(state)
    shape = (1, *tuple(data.input_shape)[1:]) if data is not None else None
    if shape is None:
        raise ConfigError(f"the config of {str(folder)!r} has no data section, so the input shape is unknown")
    return RunSubnet(sub.eval(), shape, dict(arch), str(folder))


def _key_diff(have: dict[str, Any], got: dict[str, Any]) -> tuple[list[str], list[str]]:
    return sorted(set(have) - set(got)), sorted(set(got) - set(have))
