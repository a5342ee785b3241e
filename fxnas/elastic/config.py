"""A config's ``elastic`` section: what ``fxnas.elasticize`` makes elastic, checked with key paths, and
applied to the model (after ``construct`` when there is one).

```yaml
elastic:
  width: [0.5, 0.75, 1.0]   # ratios of each group's channels (floats), or channel counts (ints)
  kernel: [3, 5]            # kernel sizes (centre crops of the largest)
  depth: [0, 1]             # how many trailing blocks of a stage may be skipped
  groups: all               # all | expansion | [layer paths]: the groups that get a width param
  kernel_layers: depthwise  # depthwise | all: the convs that get a kernel param
  divisor: 8                # channel counts are rounded to multiples of this
  importance: l1            # l1 | bn | null: how channels are ranked before the kept ones come first
```
"""

from __future__ import annotations

import typing
from collections.abc import Mapping
from typing import Any

import torch.fx as fx
from torch import nn

from ..errors import ConfigError
from ..options import closest_hint, matches, type_name

ELASTIC_KEYS: dict[str, Any] = {
    "width": list[float] | None, "kernel": list[int] | None, "depth": list[int] | None,
    "groups": str | list[str], "kernel_layers": typing.Literal["depthwise", "all"], "divisor": int,
    "importance": typing.Literal["l1", "bn"] | None,
}
ELASTIC_DEFAULTS: dict[str, Any] = {"width": None, "kernel": None, "depth": None, "groups": "all",
                                    "kernel_layers": "depthwise", "divisor": 8, "importance": "l1"}
DIMENSIONS = ("width", "kernel", "depth")


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def validate_elastic(section: Any, where: str = "elastic") -> dict[str, Any]:
    """The section with defaults filled in; ConfigError naming the key path of what is wrong."""
    if not isinstance(section, Mapping):
        raise ConfigError(f"{where} must be a mapping of {', '.join(ELASTIC_KEYS)} (e.g. {where}: "
                          f"{{width: [0.5, 1.0], depth: [0, 1]}}), got {section!r}")
    for k, v in section.items():
        if k not in ELASTIC_KEYS:
            raise ConfigError(f"unknown key {k!r} in {where}{closest_hint(str(k), list(ELASTIC_KEYS))} Valid keys: "
                              f"{', '.join(ELASTIC_KEYS)}")
        if not matches(v, ELASTIC_KEYS[k]):
            raise ConfigError(f"{where}.{k} must be {type_name(ELASTIC_KEYS[k]).removeprefix('one of ')}, got {v!r}")
    cfg = {**ELASTIC_DEFAULTS, **section}
    if all(cfg[d] is None for d in DIMENSIONS):
        raise ConfigError(f"{where} needs at least one of width, kernel, depth (e.g. {where}: {{width: [0.5, 1.0]}})")
    for d in DIMENSIONS:
        if cfg[d] is not None and not cfg[d]:
            raise ConfigError(f"{where}.{d} must list at least one value, got []")
    width = cfg["width"]
    if width is not None:
        bad = [w for w in width if not _number(w) or w <= 0 or (isinstance(w, float) and w > 1)]
        if bad:
            raise ConfigError(f"{where}.width: {bad[0]!r} is neither a ratio in (0, 1] nor a positive channel count")
        if any(isinstance(w, float) for w in width) and any(isinstance(w, int) for w in width):
            raise ConfigError(f"{where}.width {width} mixes ratios (floats) and channel counts (integers); write "
                              f"the full width as 1.0 (e.g. [0.5, 0.75, 1.0]), or give counts only")
    if cfg["kernel"] is not None and any(k < 1 or k % 2 == 0 for k in cfg["kernel"]):
        raise ConfigError(f"{where}.kernel must list positive odd kernel sizes (e.g. [3, 5, 7]), got {cfg['kernel']}")
    if cfg["depth"] is not None and any(d < 0 for d in cfg["depth"]):
        raise ConfigError(f"{where}.depth lists how many trailing blocks of a stage may be skipped (integers >= 0, "
                          f"e.g. [0, 1, 2]), got {cfg['depth']}")
    if cfg["divisor"] < 1:
        raise ConfigError(f"{where}.divisor must be >= 1, got {cfg['divisor']}")
    groups = cfg["groups"]
    if isinstance(groups, str) and groups not in ("all", "expansion"):
        raise ConfigError(f"{where}.groups must be all, expansion or a list of layer paths, got {groups!r}")
    if isinstance(groups, list) and not groups:
        raise ConfigError(f"{where}.groups lists no layer; give layer paths, or all / expansion")
    return cfg


def apply_elastic(model: nn.Module, example_inputs: Any, section: Mapping[str, Any],
                  where: str = "elastic") -> fx.GraphModule:
    """``fxnas.elasticize`` of ``model`` as a validated section asks (traced in eval mode, so that tracing
    does not update BatchNorm statistics; the mode is restored)."""
    from .build import elasticize
    from .params import elastic_params

    cfg = validate_elastic(section, where)
    groups = None if cfg["groups"] == "all" else cfg["groups"]
    was = model.training
    model.eval()
    try:
        net = elasticize(model, example_inputs, width=cfg["width"], kernel=cfg["kernel"], depth=cfg["depth"],
                         groups=groups, divisor=cfg["divisor"], importance=cfg["importance"],
                         kernel_layers=cfg["kernel_layers"])
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    finally:
        model.train(was)
    if not elastic_params(net):
        raise ConfigError(f"{where}: nothing of {type(model).__name__} became elastic with "
                          f"{ {d: cfg[d] for d in DIMENSIONS if cfg[d] is not None} } (no group may shrink, no conv "
                          f"takes those kernels, no stage has a skippable block)")
    return net.train(was)


__all__ = ["ELASTIC_DEFAULTS", "ELASTIC_KEYS", "apply_elastic", "validate_elastic"]
