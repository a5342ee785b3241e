"""Tracers: the fx default, user callables, Hugging Face's tracer where transformers ships it, clear errors."""

from __future__ import annotations

import pytest
import torch
import torch.fx as fx
from torch import nn

import fxnas
from fxnas.errors import TraceError
from fxnas.tracers import TRACERS, TraceRequest, hf_fx_module, resolve_tracer


class Flagged(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Linear(4, 4), nn.Linear(4, 2)

    def forward(self, x: torch.Tensor, twice: bool = False) -> torch.Tensor:
        h = self.a(x)
        if twice:  # a flag steering control flow: fx needs it concrete
            h = self.a(h)
        return self.b(h)


def test_named_and_callable_tracers() -> None:
    x = torch.randn(2, 4)
    seen: list[TraceRequest] = []

    def mine(model: nn.Module, req: TraceRequest) -> fx.GraphModule:
        seen.append(req)
        return TRACERS.get("fx")(model, req)

    gm = fxnas.trace(Flagged(), x, concrete_args={"twice": True}, tracer=mine)
    assert seen and seen[0].concrete_args == {"twice": True} and len(seen[0].example_inputs) == 1
    assert [n.target for n in gm.graph.nodes if n.op == "call_module"] == ["a", "a", "b"]
    assert resolve_tracer(None, Flagged()) is TRACERS.get("fx")
    with pytest.raises(TraceError, match="unknown tracer 'jit'; valid tracers: fx, hf"):
        fxnas.trace(Flagged(), x, tracer="jit")
    with pytest.raises(TraceError, match="returned int, not a torch.fx.GraphModule"):
        fxnas.trace(Flagged(), x, tracer=lambda m, r: 3)


def _bert() -> nn.Module:
    transformers = pytest.importorskip("transformers")
    cfg = transformers.BertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                                  vocab_size=100, max_position_embeddings=32)
    return transformers.BertModel(cfg).eval()


@pytest.mark.slow
def test_hf_model_trace_error_names_place_line_and_options() -> None:
    model, ids = _bert(), torch.randint(0, 100, (1, 8))
    if hf_fx_module() is not None:  # transformers < 5: Hugging Face's tracer is picked for a PreTrainedModel
        net = fxnas.searchify(model, "linear", ["ORIG"], example_inputs=ids)
        assert len(fxnas.mixed_ops(net)) == 2 * 6 + 1  # q, k, v, out, up, down per layer, and the pooler
        return
    with pytest.raises(TraceError) as err:
        fxnas.trace(model, ids, tracer="fx")
    msg = str(err.value)
    assert "in module '<root>' (BertModel)" in msg and ".py:" in msg and "concrete_args" in msg
    assert "tracer='hf'" in msg
    with pytest.raises(TraceError, match="tracer='hf' needs transformers.utils.fx"):
        fxnas.trace(model, ids, tracer="hf")


class OptionalMask(nn.Module):
    """timm's Hiera: ``if mask is not None`` on an optional input the example does not feed."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None, scale: bool = False) -> torch.Tensor:
        if mask is not None:
            x = x * mask
        y = self.lin(x)
        return y * 2 if scale else y


class ShapeBranch(nn.Module):
    """timm's Gemma4 ViT: a branch on the input's rank, which plain fx cannot decide."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[-1] != x.shape[-2]:
            return x
        return self.conv(x).flatten(1)


def test_unfed_optional_inputs_and_flags_fold_to_their_defaults() -> None:
    m, x = OptionalMask().eval(), torch.randn(2, 4)
    gm = fxnas.trace(m, x)
    assert [n.target for n in gm.graph.nodes if n.op == "call_function" and "mul" in str(n.target)] == []
    torch.testing.assert_close(gm(x), m(x))
    gm = fxnas.trace(m, x, concrete_args={"scale": True})  # an explicit value wins over the default
    torch.testing.assert_close(gm(x), m(x, scale=True))


def test_meta_tracer_decides_shape_branches_at_the_example_shape() -> None:
    if hf_fx_module() is None:
        pytest.skip("the meta tracer needs transformers.utils.fx (transformers<5)")
    m, x = ShapeBranch().eval(), torch.randn(1, 3, 6, 6)
    with pytest.raises(TraceError, match="tracer='meta'"):
        fxnas.trace(m, x)
    gm = fxnas.trace(m, x, tracer="meta")
    torch.testing.assert_close(gm(x), m(x))
    net = fxnas.searchify(m, "conv", ["ORIG", "DW3"], example_inputs=x, tracer="meta")
    assert list(net.space) == ["conv"]
