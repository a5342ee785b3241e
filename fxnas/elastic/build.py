"""elasticize(): an unmodified model (or a searchify supernet) -> an elastic supernet over width/kernel/depth."""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from typing import Any

import torch.fx as fx
from torch import nn

from ..errors import ConfigError
from ..space import SearchSpace
from ..supernet import attach_space, replace_submodule
from .base import ElasticModule
from .channels import analyse, trace_for_analysis
from .conv import ElasticConv, ElasticLinear
from .depth import add_depth
from .groups import ChannelGroups, Group
from .importance import reorder
from .norms import ElasticBatchNorm, ElasticGroupNorm, ElasticLayerNorm
from .params import ElasticParam, WidthLike, kernel_choices, width_choices
from .rules import RuleSet
from .split import ElasticSplit

# module types that have an elastic version; a group through any other module keeps its width
ELASTIC_TYPES: tuple[type, ...] = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear, nn.modules.batchnorm._BatchNorm,
                                   nn.LayerNorm, nn.GroupNorm)

KernelLayers = str | Callable[[str, nn.Module], bool]


def elasticize(
    model: nn.Module,
    example_inputs: Any,
    width: WidthLike | None = None,
    kernel: Sequence[int] | None = None,
    depth: Sequence[int] | None = None,
    groups: Any = None,
    *,
    divisor: int = 8,
    importance: str | None = "l1",
    kernel_layers: KernelLayers = "depthwise",
    rules: RuleSet | None = None,
    leaf_modules: Sequence[type] = (),
) -> fx.GraphModule:
    """An elastic supernet of ``model``: a GraphModule carrying ``.space`` whose params set, per setting,
    the channels each coupled group keeps, the kernel size of convs, and how many blocks of a stage run.

    - ``width``: ratios in (0, 1] (floats) or channel counts (ints) rounded to ``divisor``, or a callable
      ``group -> counts``; applied to the groups ``groups`` picks (None: every group that may shrink; a
      predicate on :class:`Group`; layer paths; ``"expansion"``: the hidden channels of inverted residuals).
      Channels are ranked once by ``importance`` (``"l1"``, ``"bn"``, None) so that the kept come first.
    - ``kernel``: kernel sizes; convs ``kernel_layers`` picks (``"depthwise"``, ``"all"`` or a predicate on
      ``(path, module)``) with odd square kernels and same padding run centre crops of their kernel.
    - ``depth``: how many trailing blocks of a stage may be skipped (e.g. ``(0, 1, 2)``); a stage is a chain
      of residual blocks whose shortcut is an identity.

    A group keeps its width when a layer it runs through has no elastic version (convs, linears, batch,
    layer and group norms have one; parameter-free ops that pass channels need none). ``cost`` counts MACs
    per sample at the size of ``example_inputs``.

    ``model`` may be a supernet from ``fxnas.searchify``: its mixed ops' candidates become elastic too and
    its params stay in the one space. The model itself is not changed.
    """
    _check(width, kernel, depth, divisor, kernel_layers)
    if any(isinstance(m, ElasticModule) for m in model.modules()):
        raise ConfigError("the model is elastic already; elasticize the original model (or a searchify supernet)")
    net = copy.deepcopy(model)
    space = net.space if isinstance(getattr(net, "space", None), SearchSpace) else SearchSpace()
    gm = trace_for_analysis(net, example_inputs, leaf_modules)
    found = analyse(gm, rules, leaf_modules)
    widths: dict[Group, ElasticParam] = {}
    if width is not None:
        for g in found.select(groups):
            if not all(_can_shrink(gm.get_submodule(m.path), m.role) for m in g.members):
                continue
            choices = width_choices(g, width, divisor)
            if len(choices) > 1:
                widths[g] = space.add(ElasticParam(f"width.{g.name}", choices, "width"))  # type: ignore[assignment]
        reorder(gm, list(widths), importance)
    kernels = _kernel_params(gm, found, kernel, kernel_layers, space) if kernel is not None else {}
    _wrap_layers(gm, found, widths, kernels)
    _rewrite_splits(found, widths)
    if depth is not None:
        add_depth(gm, depth, space)
    gm.recompile()
    return attach_space(gm, space)


def _can_shrink(mod: nn.Module, role: str) -> bool:
    """A layer has an elastic version, or channels pass through it and it holds no per-channel state."""
    if isinstance(mod, ELASTIC_TYPES):
        return True
    return role == "through" and not any(True for _ in mod.parameters()) and not any(True for _ in mod.buffers())


def _check(width: Any, kernel: Any, depth: Any, divisor: int, kernel_layers: Any) -> None:
    if width is not None and not callable(width) and (isinstance(width, (str, bytes)) or not isinstance(
            width, Sequence) or not width):
        raise ConfigError(f"width must be a non-empty list of ratios/counts or a callable, got {width!r}")
    for name, v in (("kernel", kernel), ("depth", depth)):
        if v is not None and (not isinstance(v, Sequence) or isinstance(v, str) or not v
                              or not all(isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in v)):
            raise ConfigError(f"{name} must be a non-empty list of non-negative integers, got {v!r}")
    if not isinstance(divisor, int) or divisor < 1:
        raise ConfigError(f"divisor must be a positive integer, got {divisor!r}")
    if not callable(kernel_layers) and kernel_layers not in ("depthwise", "all"):
        raise ConfigError(f"kernel_layers must be 'depthwise', 'all' or a predicate, got {kernel_layers!r}")


def _kernel_params(gm: fx.GraphModule, found: ChannelGroups, kernel: Sequence[int], layers: KernelLayers,
                   space: SearchSpace) -> dict[str, ElasticParam]:
    out: dict[str, ElasticParam] = {}
    paths = dict.fromkeys(path for path, _ in found.layers)
    for path in paths:
        mod = gm.get_submodule(path)
        if not isinstance(mod, nn.modules.conv._ConvNd) or isinstance(mod, nn.modules.conv._ConvTransposeNd):
            continue
        depthwise = mod.groups > 1 and mod.groups == mod.in_channels == mod.out_channels
        if layers == "depthwise" and not depthwise:
            continue
        if callable(layers) and not layers(path, mod):
            continue
        k = mod.kernel_size[0]
        same = isinstance(mod.padding, str) and mod.padding == "same" or mod.padding == tuple(
            d * (k - 1) // 2 for d in mod.dilation)
        if len(set(mod.kernel_size)) != 1 or k % 2 == 0 or not same:
            continue
        choices = kernel_choices(k, kernel)
        if len(choices) > 1:
            out[path] = space.add(ElasticParam(f"kernel.{path}", choices, "kernel"))  # type: ignore[assignment]
    return out


def _wrap_layers(gm: fx.GraphModule, found: ChannelGroups, widths: dict[Group, ElasticParam],
                 kernels: dict[str, ElasticParam]) -> None:
    names = {g: p.name for g, p in widths.items()}
    by_name = {p.name: p for p in widths.values()}
    for path in dict.fromkeys(path for path, _ in found.layers):
        mod = gm.get_submodule(path)
        inp, out = found.layers.get((path, "in")), found.layers.get((path, "out"))
        if not isinstance(mod, ELASTIC_TYPES) or inp is None or out is None:
            continue
        cin = inp.to_channels(names)
        new: ElasticModule
        if isinstance(mod, nn.modules.conv._ConvNd):
            depthwise = mod.groups > 1 and mod.groups == mod.in_channels == mod.out_channels
            new = ElasticConv(mod, cin, out.to_channels(names), depthwise, out.positions, kernels.get(path))
            cout = new.out
        elif isinstance(mod, nn.Linear):
            new = ElasticLinear(mod, cin, out.to_channels(names), out.positions)
            cout = new.out
        elif isinstance(mod, nn.modules.batchnorm._BatchNorm):
            new, cout = ElasticBatchNorm(mod, cin), cin
        elif isinstance(mod, nn.LayerNorm):
            new, cout = ElasticLayerNorm(mod, cin), cin
        else:
            new, cout = ElasticGroupNorm(mod, cin), cin
        new.use(*(by_name[n] for n in sorted(cin.params() | cout.params())))
        replace_submodule(gm, path, new)


def _rewrite_splits(found: ChannelGroups, widths: dict[Group, ElasticParam]) -> None:
    names = {g: p.name for g, p in widths.items()}
    by_name = {p.name: p for p in widths.values()}
    for i, site in enumerate(found.splits):
        pieces = [lc.to_channels(names) for lc in site.pieces]
        if not any(p.is_elastic() for p in pieces):
            continue
        mod = ElasticSplit(site.dim, pieces)
        mod.use(*(by_name[n] for p in pieces for n in sorted(p.params())))
        name = f"elastic_split_{i}"
        site.gm.add_submodule(name, mod)
        with site.gm.graph.inserting_before(site.node):
            new = site.gm.graph.call_module(name, (site.node.args[0],))
        new.meta = dict(site.node.meta)
        site.node.replace_all_uses_with(new)
        site.gm.graph.erase_node(site.node)
        site.gm.recompile()
