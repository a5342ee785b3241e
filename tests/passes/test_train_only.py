"""DropPath calls after searched ops (rate from a buffer, whole samples dropped, survive materialize, removed
for export) and auxiliary outputs removed (DARTS's auxiliary head gone, logits unchanged)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import fxnas
from fxnas.passes.train_only import (
    RATE,
    add_drop_path,
    drop_path,
    has_auxiliary_outputs,
    remove_auxiliary_outputs,
    remove_drop_path,
    set_drop_path,
)
from fxnas.spaces.darts import AuxiliaryHead, darts_supernet


class TwoSlots(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(3, 4, 3, padding=1)
        self.b = nn.Conv2d(4, 4, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.b(self.a(x))


def _calls(gm) -> int:
    return sum(1 for n in gm.graph.nodes if n.op == "call_function" and n.target is drop_path)


def test_drop_path_zeroes_whole_samples_and_scales_the_rest() -> None:
    torch.manual_seed(0)
    x = torch.rand(400, 3, 2) + 1.0
    y = drop_path(x, torch.tensor(0.25))
    kept = y.flatten(1).ne(0).all(1)
    assert (y.flatten(1)[~kept] == 0).all()
    torch.testing.assert_close(y[kept], x[kept] / 0.75)
    assert 0.65 < kept.float().mean() < 0.85
    assert drop_path(x, torch.tensor(0.0)) is x


def test_drop_path_follows_the_searched_ops_through_materialize_and_out() -> None:
    torch.manual_seed(0)
    x = torch.randn(8, 3, 6, 6)
    sn = fxnas.searchify(TwoSlots(), "conv3x3", ["NC3", "IDT"], x)
    arch = {"a": "NC3", "b": "IDT"}
    net, count = add_drop_path(sn, arch)
    assert count == 1  # the identity is not dropped
    assert RATE not in dict(sn.named_buffers())  # the supernet itself is untouched
    sub = fxnas.materialize(net, arch)
    assert _calls(sub) == 1
    want = fxnas.materialize(sn, arch)
    sub.train(), want.train()
    torch.testing.assert_close(sub(x), want(x))  # rate 0: the same function
    set_drop_path(sub, 0.5)
    torch.manual_seed(1)
    out = sub(x)
    dropped = out.flatten(1).abs().sum(1) == 0
    assert 0 < int(dropped.sum()) < 8
    plain = remove_drop_path(sub)
    assert _calls(plain) == 0 and RATE not in dict(plain.named_buffers())
    want.load_state_dict(plain.state_dict())  # the same parameters and buffers (BN saw other batches above)
    plain.eval(), want.eval()
    torch.testing.assert_close(plain(x), want(x))


def test_auxiliary_outputs_are_removed_with_their_head(tmp_path) -> None:
    torch.manual_seed(0)
    sn = darts_supernet(C=4, layers=3, steps=2, multiplier=2, input_shape=(1, 3, 16, 16), mixed_op="Index",
                        auxiliary=True)
    x = torch.randn(2, 3, 16, 16)
    sub = fxnas.materialize(sn, sn.space.current()).eval()
    assert has_auxiliary_outputs(sub)
    with torch.no_grad():
        logits, aux = sub(x)
    assert aux.shape == logits.shape == (2, 10)
    assert any(isinstance(m, nn.Linear) and m.in_features == 768 for m in sub.modules())
    remove_auxiliary_outputs(sub)
    assert not has_auxiliary_outputs(sub)
    assert not any(isinstance(m, nn.Linear) and m.in_features == 768 for m in sub.modules())
    with torch.no_grad():
        torch.testing.assert_close(sub(x), logits)
    fxnas.export_onnx(sub, x, tmp_path / "sub.onnx")


def test_darts_network_without_auxiliary_returns_logits_only() -> None:
    sn = darts_supernet(C=4, layers=3, steps=2, multiplier=2, input_shape=(1, 3, 8, 8), mixed_op="Index")
    assert not has_auxiliary_outputs(sn)
    assert not any(isinstance(m, AuxiliaryHead) for m in sn.modules())
    with pytest.raises(AttributeError):
        sn.get_submodule("auxiliary_head")
