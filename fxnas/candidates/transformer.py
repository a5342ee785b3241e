"""Transformer candidates: MLP hidden widths (``MLP{r}``), low-rank linears (``LR{p}``), head counts (``HEADS{h}``).

Each starts from the slot's original weights where it can, so a pretrained model's subnet starts close to it:

- ``MLP{r}`` on an MLP slot (a module with two linears ``in → hidden → out``, e.g. timm's ``Mlp``) keeps the
  module and sets the hidden width to ``r · in``: a narrower one keeps the hidden units with the largest
  ``|fc1 row| · |fc2 column|`` (in their order), a wider one adds units whose output weights are zero, so it
  computes exactly the original. On a single-linear slot it is a fresh ``Linear → GELU → Linear`` MLP.
- ``LR{p}`` on a linear slot is ``Linear(in, k) → Linear(k, out)`` with rank ``k = p%`` of ``min(in, out)``,
  initialised from the truncated SVD of the original weight (the best rank-k approximation).
- ``HEADS{h}`` on a qkv-attention slot (fused ``qkv`` linear, ``proj`` linear, ``num_heads``: timm's
  ``Attention``) keeps the ``h`` heads whose projection weights are largest; the head size stays.
"""

from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import RegistryError, ShapeError
from ..linear_like import as_linear
from ..slot import SlotSpec
from .registry import CANDIDATES


def _positive(name: str, v: str, low: int = 1, high: int | None = None) -> int:
    n = int(v)
    if n < low or (high is not None and n > high):
        span = f"{low}..{high}" if high is not None else f">= {low}"
        raise RegistryError(f"candidate {name}: {n} is not valid; use a number in {span}")
    return n


def _linear_dims(name: str, spec: SlotSpec) -> tuple[int, int]:
    """(in, out) features of a linear slot, or ShapeError saying which slots the candidate needs."""
    lin = as_linear(spec.original)
    if lin is not None:
        return lin.in_features, lin.out_features
    if spec.in_shape is not None and len(spec.in_shape) == 2 and spec.in_channels and spec.out_channels:
        return spec.in_channels, spec.out_channels
    raise ShapeError(f"candidate {name} needs a linear slot (pattern 'linear'), but slot {spec.name!r} holds "
                     f"{type(spec.original).__name__} with input shape {spec.in_shape}")


def mlp_linears(module: nn.Module | None) -> tuple[nn.Linear, nn.Linear] | None:
    """The (fc1, fc2) of an MLP-shaped module: exactly two linears, fc1.out == fc2.in; else None."""
    if module is None or isinstance(module, nn.Linear):
        return None
    lins = [m for m in module.modules() if isinstance(m, nn.Linear)]
    if len(lins) != 2 or lins[0].out_features != lins[1].in_features:
        return None
    return lins[0], lins[1]


def _replace(root: nn.Module, old: nn.Module, new: nn.Module) -> None:
    for parent in root.modules():
        for key, child in parent.named_children():
            if child is old:
                setattr(parent, key, new)


def _sub_linear(lin: nn.Linear, rows: torch.Tensor | None = None, cols: torch.Tensor | None = None,
                out: int | None = None, inp: int | None = None) -> nn.Linear:
    """A linear with the given output rows / input columns of ``lin``, zero-padded to ``out`` x ``inp``."""
    w = lin.weight.detach()
    b = lin.bias.detach() if lin.bias is not None else None
    if rows is not None:
        w, b = w[rows], (b[rows] if b is not None else None)
    if cols is not None:
        w = w[:, cols]
    out, inp = out or w.shape[0], inp or w.shape[1]
    new = nn.Linear(inp, out, bias=b is not None)
    with torch.no_grad():
        if out > w.shape[0]:  # wider hidden layer: new units start from a fresh init on the way in
            new.weight[w.shape[0]:].copy_(nn.Linear(inp, out - w.shape[0]).weight[:, :inp])
        if inp > w.shape[1]:  # ...and contribute nothing on the way out, so the function is unchanged
            new.weight[:, w.shape[1]:].zero_()
        new.weight[:w.shape[0], :w.shape[1]].copy_(w)
        if b is not None:
            new.bias.zero_()
            new.bias[:b.shape[0]].copy_(b)
    return new


def resize_mlp(module: nn.Module, hidden: int) -> nn.Module:
    """A copy of an MLP-shaped module with ``hidden`` hidden units, its weights carried over (see module doc)."""
    found = mlp_linears(module)
    if found is None:
        raise ShapeError(f"{type(module).__name__} is not an MLP (two linears, in → hidden → out)")
    new = copy.deepcopy(module)
    fc1, fc2 = mlp_linears(new)  # type: ignore[misc]
    h = fc1.out_features
    if hidden <= h:
        score = fc1.weight.detach().norm(dim=1) * fc2.weight.detach().norm(dim=0)
        keep = score.topk(hidden).indices.sort().values
        n1, n2 = _sub_linear(fc1, rows=keep), _sub_linear(fc2, cols=keep)
    else:
        n1, n2 = _sub_linear(fc1, out=hidden), _sub_linear(fc2, inp=hidden)
        keep = None
    for m in list(new.modules()):  # norms over the hidden units follow them (timm Mlp's optional norm)
        if isinstance(m, nn.LayerNorm) and tuple(m.normalized_shape) == (h,):
            ln = nn.LayerNorm(hidden, eps=m.eps, elementwise_affine=m.elementwise_affine)
            if m.elementwise_affine:
                with torch.no_grad():
                    idx = keep if keep is not None else torch.arange(h)
                    ln.weight[:len(idx)].copy_(m.weight[idx])
                    ln.bias[:len(idx)].copy_(m.bias[idx])
            _replace(new, m, ln)
    _replace(new, fc1, n1)
    _replace(new, fc2, n2)
    return new


@CANDIDATES.register_family(r"MLP(\d+)", "MLP4")
def _mlp(r: str):
    """MLP{r}: an MLP slot's hidden width set to r x its input width, the original weights sliced or padded."""
    ratio = _positive(f"MLP{r}", r, 1, 16)

    def build(spec: SlotSpec) -> nn.Module:
        found = mlp_linears(spec.original)
        if found is not None:
            return resize_mlp(spec.original, ratio * found[0].in_features)  # type: ignore[arg-type]
        cin, cout = _linear_dims(f"MLP{r}", spec)
        return nn.Sequential(nn.Linear(cin, ratio * cin), nn.GELU(), nn.Linear(ratio * cin, cout))

    return build


class LowRankLinear(nn.Sequential):
    """``Linear(in, k, bias=False) → Linear(k, out)``: a rank-k linear with (in + out)·k weights."""

    def __init__(self, in_features: int, out_features: int, rank: int, bias: bool = True) -> None:
        super().__init__(nn.Linear(in_features, rank, bias=False), nn.Linear(rank, out_features, bias=bias))

    @classmethod
    def from_linear(cls, lin: nn.Linear, rank: int) -> LowRankLinear:
        """The best rank-``rank`` approximation of ``lin`` (truncated SVD, singular values split evenly)."""
        new = cls(lin.in_features, lin.out_features, rank, lin.bias is not None)
        u, s, vh = torch.linalg.svd(lin.weight.detach().double(), full_matrices=False)
        root = s[:rank].sqrt()
        with torch.no_grad():
            new[0].weight.copy_(root[:, None] * vh[:rank])
            new[1].weight.copy_(u[:, :rank] * root[None, :])
            if lin.bias is not None:
                new[1].bias.copy_(lin.bias)
        return new


@CANDIDATES.register_family(r"LR(\d+)", "LR25")
def _low_rank(p: str):
    """LR{p}: a linear factorised to rank p% of min(in, out), from the truncated SVD of its weight."""
    pct = _positive(f"LR{p}", p, 1, 100)

    def build(spec: SlotSpec) -> nn.Module:
        cin, cout = _linear_dims(f"LR{p}", spec)
        rank = max(1, round(pct / 100 * min(cin, cout)))
        lin = as_linear(spec.original)
        if lin is not None:
            return LowRankLinear.from_linear(lin, rank)
        return LowRankLinear(cin, cout, rank, bias=spec.bias)

    return build


class HeadAttention(nn.Module):
    """Multi-head self-attention on ``(N, L, C)`` with ``heads`` heads of ``head_dim``: q, k, v in one linear."""

    def __init__(self, qkv: nn.Linear, proj: nn.Linear, heads: int, head_dim: int) -> None:
        super().__init__()
        self.qkv, self.proj, self.heads, self.head_dim = qkv, proj, heads, head_dim

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor | None = None, is_causal: bool = False) -> torch.Tensor:
        b, n, _ = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4).unbind(0)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, is_causal=is_causal)
        return self.proj(y.transpose(1, 2).reshape(b, n, self.heads * self.head_dim))


def qkv_attention(module: nn.Module | None) -> tuple[nn.Linear, nn.Linear, int] | None:
    """(qkv, proj, heads) of a plain fused-qkv attention module (timm ``Attention`` without norms), else None."""
    if module is None:
        return None
    kids = dict(module.named_children())
    qkv, proj, heads = kids.get("qkv"), kids.get("proj"), getattr(module, "num_heads", None)
    if not (isinstance(qkv, nn.Linear) and isinstance(proj, nn.Linear) and isinstance(heads, int)):
        return None
    extra = [n for n, m in kids.items() if n not in ("qkv", "proj") and not isinstance(m, (nn.Identity, nn.Dropout))]
    if extra or qkv.out_features != 3 * proj.in_features or proj.in_features % heads:
        return None  # norms, gates or a layout HeadAttention does not compute: no weights to carry over
    return qkv, proj, heads


@CANDIDATES.register_family(r"HEADS(\d+)", "HEADS2")
def _heads(h: str):
    """HEADS{h}: fused-qkv self-attention keeping h of its heads (the largest projections), head size kept."""
    want = _positive(f"HEADS{h}", h)

    def build(spec: SlotSpec) -> nn.Module:
        found = qkv_attention(spec.original)
        if found is None:
            raise ShapeError(f"candidate HEADS{h} needs an attention slot with a fused qkv linear, a proj linear and "
                             f"num_heads (e.g. timm.layers.Attention), but slot {spec.name!r} holds "
                             f"{type(spec.original).__name__}")
        qkv, proj, heads = found
        if want > heads:
            raise ShapeError(f"candidate HEADS{h}: slot {spec.name!r} has {heads} heads; use HEADS1..HEADS{heads}")
        d = proj.in_features // heads
        if not math.isclose(getattr(spec.original, "scale", d ** -0.5), d ** -0.5):  # timm's Attention has .scale
            raise ShapeError(f"candidate HEADS{h}: slot {spec.name!r} scales attention by other than head_dim^-0.5")
        score = proj.weight.detach().reshape(proj.out_features, heads, d).norm(dim=(0, 2))
        keep = score.topk(want).indices.sort().values
        cols = (keep[:, None] * d + torch.arange(d)).reshape(-1)  # the columns of the kept heads
        rows = torch.cat([cols + i * proj.in_features for i in range(3)])  # their q, k and v rows
        return HeadAttention(_sub_linear(qkv, rows=rows), _sub_linear(proj, cols=cols), want, d)

    return build
