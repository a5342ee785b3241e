"""The Hugging Face zoo: BERT, GPT-2, ViT, Whisper's encoder and Llama built from small configs (random weights),
searched with the ``linear`` pattern: trace ≡ eager, the pattern finds every linear the forward calls (GPT-2's
Conv1D too), all-ORIG ≡ model,
a sampled subnet ≡ the supernet, ONNX ≡ torch.

Plain ``torch.fx`` cannot trace transformers' argument handling; fxnas.trace picks Hugging Face's own fx tracer
(transformers < 5) for a PreTrainedModel, driven by ``fxnas.hf_fx`` so that GPT-2's vmap-built causal mask and
ViT's decorated ``forward`` trace too.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from conftest import assert_close
from torch import nn

import fxnas
from fxnas.linear_like import is_linear_like
from fxnas.passes.patterns import resolve_pattern
from fxnas.slot import SlotSpec

transformers = pytest.importorskip("transformers")

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


def whisper_encoder() -> tuple[nn.Module, torch.Tensor]:
    """Whisper's audio encoder (not on HF's list of fx-supported classes: traced at the example input)."""
    cfg = transformers.WhisperConfig(vocab_size=64, d_model=32, encoder_layers=2, decoder_layers=1,
                                     encoder_attention_heads=4, decoder_attention_heads=4, encoder_ffn_dim=64,
                                     decoder_ffn_dim=64, num_mel_bins=16, max_source_positions=16,
                                     max_target_positions=16, pad_token_id=0, bos_token_id=1, eos_token_id=2,
                                     decoder_start_token_id=1)
    return transformers.WhisperModel(cfg).get_encoder(), torch.randn(1, 16, 32)


def llama() -> tuple[nn.Module, torch.Tensor]:
    """Llama: rotary embeddings, grouped-query attention, RMS norms, a causal mask from create_causal_mask."""
    cfg = transformers.LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                   num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=32)
    return transformers.LlamaModel(cfg), torch.randint(0, 64, (1, 12))


MODELS = {"bert": bert, "gpt2": gpt2, "vit": vit, "whisper_encoder": whisper_encoder, "llama": llama}


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


@pytest.fixture(scope="module", params=list(MODELS))
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
             for m in model.modules() if is_linear_like(m)]  # GPT-2's Conv1D too
    with torch.no_grad():
        model(x)
    for h in hooks:
        h.remove()
    gm = fxnas.trace(model, x, selects=resolve_pattern("linear").selects)  # as searchify traces for the pattern
    assert called and set(fxnas.rewrite(gm, "linear")) == called


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
