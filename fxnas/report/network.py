"""The network side of a report: the slot table (from the config's model and construct pattern) and the
exported subnet's static profile."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any


def slot_rows(config: Mapping[str, Any], chosen: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One row per searchable param: its slot's shapes, stride, candidates and the chosen value.

    For a ``construct`` config the model is traced and rewritten by its pattern (no candidates built) to read
    each slot's spec; elastic and predefined spaces list their params without shapes.
    """
    from ..config import load_config
    from ..config.build import build_model
    from ..rng import seed_everything
    from ..train.datasets import DATASETS

    cfg = load_config(dict(config))
    seed_everything(int(cfg["seed"]))
    data = None if cfg["data"] is None else DATASETS.build(cfg["data"], where="data", inject={"seed": cfg["seed"]})
    _, space = build_model(cfg["model"], cfg["construct"], data, cfg.get("elastic"))
    specs: dict[str, Any] = {}
    if cfg["construct"] is not None and data is not None:
        specs = _slot_specs(cfg, data)
    rows = []
    for name, param in (space.params if space is not None else {}).items():
        if not getattr(param, "choices", None):
            continue  # a tensor param (a gradient method's alphas) is plotted, not tabled
        spec = specs.get(name)
        d = spec.describe() if spec is not None else {}
        rows.append({"name": name, "in_shape": d.get("in_shape"), "out_shape": d.get("out_shape"),
                     "stride": d.get("stride"), "candidates": list(param.choices),
                     "chosen": chosen.get(name)})
    return rows


def _slot_specs(cfg: Mapping[str, Any], data: Any) -> dict[str, Any]:
    from ..config.build import data_inject
    from ..graph import trace
    from ..options import call_with
    from ..passes.patterns import resolve_pattern
    from ..passes.rewrite import rewrite
    from ..spaces.registry import model_builder
    from ..supernet import slots

    model = call_with(model_builder(cfg["model"]["type"]), cfg["model"]["options"], data_inject(data)).eval()
    pat = resolve_pattern(cfg["construct"]["pattern"])
    gm = trace(model, data.example_input(), leaf_modules=tuple(pat.leaf_types))
    rewrite(gm, pat)
    return {path: s.spec for path, s in slots(gm).items()}


def profile_subnet(folder: Path) -> dict[str, Any]:
    """Params, MACs, FLOPs and activation peak of the run's exported subnet (rebuilt by subnet_from_run)."""
    import torch

    from ..export.run import subnet_from_run
    from ..profilers.counter import count

    run = subnet_from_run(folder)
    stats = count(run.module, torch.zeros(run.input_shape)).summary()
    return {"input shape": "x".join(map(str, run.input_shape)), "params": stats["params"], "MACs": stats["macs"],
            "FLOPs": stats["flops"], "activation peak (bytes)": stats["peak_activation_bytes"]}
