"""Transformer candidates: MLP{r} widths, LR{p} low-rank linears and HEADS{h} head counts, from the original weights."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

import fxnas
from fxnas.candidates.registry import build_candidate
from fxnas.candidates.transformer import LowRankLinear
from fxnas.errors import RegistryError, ShapeError
from fxnas.slot import SlotSpec

timm = pytest.importorskip("timm")
from timm.layers import Attention, Mlp  # noqa: E402


def vit() -> tuple[nn.Module, torch.Tensor]:
    torch.manual_seed(0)
    m = timm.create_model("vit_tiny_patch16_224", pretrained=False, num_classes=10, img_size=32, patch_size=8,
                          embed_dim=32, depth=2, num_heads=4).eval()
    with torch.no_grad():  # timm zero-initialises the head; random weights keep the outputs informative
        m.head.weight.normal_(0, 0.2)
    return m, torch.randn(2, 3, 32, 32)


def spec_of(module: nn.Module, in_shape: tuple[int, ...], out_shape: tuple[int, ...]) -> SlotSpec:
    return SlotSpec(in_shape[-1], out_shape[-1], in_shape=in_shape, out_shape=out_shape, original=module, name="s")


def test_mlp_at_its_own_or_a_wider_ratio_computes_the_original() -> None:
    torch.manual_seed(0)
    mlp, x = Mlp(16, 64).eval(), torch.randn(2, 5, 16)
    spec = spec_of(mlp, (2, 5, 16), (2, 5, 16))
    for name, hidden in (("MLP4", 64), ("MLP6", 96)):
        cand = build_candidate(name, spec).eval()
        assert cand.fc1.out_features == hidden and cand.fc2.in_features == hidden
        torch.testing.assert_close(cand(x), mlp(x), rtol=1e-5, atol=1e-6)
    narrow = build_candidate("MLP2", spec).eval()
    assert narrow.fc1.out_features == 32 and sum(p.numel() for p in narrow.parameters()) < sum(
        p.numel() for p in mlp.parameters())
    kept = [i for i in range(64) if any(torch.equal(mlp.fc1.weight[i], r) for r in narrow.fc1.weight)]
    assert len(kept) == 32  # its hidden units are 32 of the original ones, weights unchanged
    err2 = (narrow(x) - mlp(x)).norm()
    rand = (Mlp(16, 32).eval()(x) - mlp(x)).norm()
    assert err2 < rand  # the kept units start closer to the original than a fresh MLP of that width


def test_low_rank_is_the_truncated_svd() -> None:
    torch.manual_seed(0)
    lin = nn.Linear(24, 16)
    spec = spec_of(lin, (3, 7, 24), (3, 7, 16))
    x = torch.randn(3, 7, 24)
    full = build_candidate("LR100", spec)
    assert isinstance(full, LowRankLinear) and full[0].out_features == 16
    torch.testing.assert_close(full(x), lin(x), rtol=1e-5, atol=1e-5)
    lr = build_candidate("LR25", spec)
    assert lr[0].out_features == 4
    w_k = lr[1].weight @ lr[0].weight
    s = torch.linalg.svdvals(lin.weight.detach())
    torch.testing.assert_close(torch.linalg.matrix_norm(lin.weight - w_k, ord=2), s[4], rtol=1e-4, atol=1e-5)
    assert sum(p.numel() for p in lr.parameters()) < sum(p.numel() for p in lin.parameters())


def test_heads_keep_head_size_and_all_heads_compute_the_original() -> None:
    torch.manual_seed(0)
    attn, x = Attention(32, num_heads=4).eval(), torch.randn(2, 6, 32)
    spec = spec_of(attn, (2, 6, 32), (2, 6, 32))
    torch.testing.assert_close(build_candidate("HEADS4", spec).eval()(x), attn(x), rtol=1e-5, atol=1e-6)
    two = build_candidate("HEADS2", spec).eval()
    assert two.qkv.out_features == 3 * 16 and two.proj.in_features == 16 and two(x).shape == (2, 6, 32)
    with pytest.raises(ShapeError, match="has 4 heads; use HEADS1..HEADS4"):
        build_candidate("HEADS5", spec)
    with pytest.raises(ShapeError, match="needs an attention slot"):
        build_candidate("HEADS2", spec_of(nn.Linear(32, 32), (2, 6, 32), (2, 6, 32)))


def test_bad_names_and_slots_are_refused() -> None:
    with pytest.raises(RegistryError, match="MLP0: 0 is not valid"):
        build_candidate("MLP0", spec_of(Mlp(4, 8), (1, 4), (1, 4)))
    with pytest.raises(RegistryError, match="LR101"):
        build_candidate("LR101", spec_of(nn.Linear(4, 4), (1, 4), (1, 4)))
    conv = SlotSpec(3, 8, 1, 3, in_shape=(1, 3, 8, 8), out_shape=(1, 8, 8, 8), original=nn.Conv2d(3, 8, 3, 1, 1))
    with pytest.raises(ShapeError, match="needs a linear slot"):
        build_candidate("LR50", conv)


def test_vit_supernet_over_mlps_heads_and_linears_materialises_and_exports(tmp_path: Path) -> None:
    model, x = vit()
    with torch.no_grad():
        want = model(x)

    def cands(spec: SlotSpec) -> list[str]:
        if isinstance(spec.original, Mlp):
            return ["ORIG", "MLP2", "MLP4", "MLP6"]
        if isinstance(spec.original, Attention):
            return ["ORIG", "HEADS2", "HEADS4"]
        return ["ORIG", "LR50", "LR100", "IDT"]

    net = fxnas.searchify(model, [Mlp, Attention, "linear"], cands, example_inputs=x).eval()
    assert len(net.space) == 2 + 2 + 1  # 2 MLPs, 2 attentions (their linears inside them), the head

    def pick(mlp: str, attn: str, lin: str) -> dict[str, str]:
        return {k: (mlp if "mlp" in k else attn if "attn" in k else lin) for k in net.space}

    sub = fxnas.materialize(net, pick("MLP4", "HEADS4", "LR100")).eval()
    with torch.no_grad():
        torch.testing.assert_close(sub(x), want, rtol=1e-4, atol=1e-4)  # weights carried over: same function
    arch = pick("MLP2", "HEADS2", "LR50")
    net.space.apply(arch)
    sub = fxnas.materialize(net, arch).eval()
    assert not [n for n, m in sub.named_modules() if type(m).__module__.startswith("fxnas.mixed")]
    with torch.no_grad():
        torch.testing.assert_close(sub(x), net(x), rtol=1e-5, atol=1e-5)
        assert not torch.allclose(sub(x), want, atol=1e-3)  # a real change of the network
    assert fxnas.profilers.onnx_export.export(sub, x, tmp_path / "vit.onnx").max_error < 1e-4  # ONNX ≈ torch


def test_identity_on_a_token_linear_acts_on_the_last_dim() -> None:
    """Regression: IDT on a ViT linear ((N, tokens, C) input) was a Conv1d over the token axis."""
    x = torch.randn(2, 17, 32)
    proj = build_candidate("IDT", spec_of(nn.Linear(32, 96), (2, 17, 32), (2, 17, 96)))
    assert isinstance(proj, nn.Linear) and proj(x).shape == (2, 17, 96)
    same = build_candidate("IDT", spec_of(nn.Linear(32, 32), (2, 17, 32), (2, 17, 32)))
    assert isinstance(same, nn.Identity)
