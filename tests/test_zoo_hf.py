"""The Hugging Face zoo: BERT, GPT-2 and ViT built from small configs (random weights), searched with the
``linear`` pattern: trace ≡ eager, the pattern finds every nn.Linear the forward calls, all-ORIG ≡ model,
a sampled subnet ≡ the supernet, ONNX ≡ torch.

Plain ``torch.fx`` cannot trace transformers' argument handling; fxnas.trace picks Hugging Face's own fx tracer
(transformers < 5) for a PreTrainedModel. BERT passes every stage; GPT-2 and ViT fail inside that tracer (strict
xfails: a transformers that fixes them turns these red, to be promoted).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from conftest import assert_close
from torch import nn

import fxnas
from fxnas.slot import SlotSpec

transformers = pytest.importorskip("transformers")

# Hugging Face's own fx tracer (transformers 4.57) traces BERT; GPT-2's mask builder vmaps over proxies and
# ViT's output decorator pops from kwargs the tracer leaves None: both fail inside transformers
HF_TRACER_FAILS = {"gpt2": "transformers' fx tracer: vmap over proxies in GPT-2's causal mask builder",
                   "vit": "transformers' fx tracer: ViT's can_return_tuple pops from kwargs the tracer sets to None"}


def bert() -> tuple[nn.Module, torch.Tensor]:
    cfg = transformers.BertConfig(vocab_size=64, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                  intermediate_size=64, max_position_embeddings=32)
    return transformers.BertModel(cfg), torch.randint(0, 64, (1, 12))


def gpt2() -> tuple[nn.Module, torch.Tensor]:
    cfg = transformers.GPT2Config(vocab_size=64, n_embd=32, n_layer=2, n_head=4, n_positions=32)
    return transformers.GPT2Model(cfg), torch.randint(0, 64, (1, 12))


def vit() -> tuple[nn.Module, torch.Tensor]:
    cfg = transformers.ViTConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
                                 image_size=32, patch_size=8, num_labels=10)
    return transformers.ViTForImageClassification(cfg), torch.randn(1, 3, 32, 32)


MODELS = {"bert": bert, "gpt2": gpt2, "vit": vit}


def candidates(spec: SlotSpec) -> list[str]:
    """ORIG and a low-rank factorisation of every linear."""
    return ["ORIG", "LR50"]


def first_tensor(out) -> torch.Tensor:
    """The main output: the tensor itself, a ModelOutput's first field, or (the traced graph's) dict's first."""
    if isinstance(out, torch.Tensor):
        return out
    if isinstance(out, dict):
        return next(iter(out.values()))
    return out[0]


@pytest.fixture(scope="module", params=[
    pytest.param(name, marks=pytest.mark.xfail(strict=True, reason=HF_TRACER_FAILS[name]))
    if name in HF_TRACER_FAILS else name for name in MODELS])
def case(request) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    model, x = MODELS[request.param]()
    model.eval()
    with torch.no_grad():
        y = first_tensor(model(x))
    return model, x, y


def test_trace_equals_eager(case) -> None:
    model, x, y = case
    gm = fxnas.trace(model, x)
    with torch.no_grad():
        assert_close(first_tensor(gm(x)), y)


def test_linear_pattern_finds_every_called_linear(case) -> None:
    model, x, _ = case
    names = {id(m): n for n, m in model.named_modules()}
    called: set[str] = set()
    hooks = [m.register_forward_pre_hook(lambda mod, _a: called.add(names[id(mod)]) and None)
             for m in model.modules() if isinstance(m, nn.Linear)]
    with torch.no_grad():
        model(x)
    for h in hooks:
        h.remove()
    gm = fxnas.trace(model, x)
    assert set(fxnas.rewrite(gm, "linear")) == called


def test_all_orig_sampled_and_onnx(case, tmp_path: Path) -> None:
    model, x, y = case
    net = fxnas.searchify(model, "linear", candidates, example_inputs=x).eval()
    sub = fxnas.materialize(net, {k: "ORIG" for k in net.space})
    with torch.no_grad():
        assert_close(first_tensor(sub(x)), y, rtol=1e-3, atol_scale=1e-4)
    arch = net.space.sample(0)
    net.space.apply(arch)
    sub = fxnas.materialize(net, arch).eval()
    with torch.no_grad():
        assert_close(first_tensor(sub(x)), first_tensor(net(x)), rtol=1e-4, atol_scale=1e-5)
    fxnas.export_onnx(sub, x, tmp_path / "hf.onnx")
