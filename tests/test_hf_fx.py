"""fxnas.hf_fx: the masks built without vmap equal transformers' own; the tracer's argument handling."""

from __future__ import annotations

import pytest
import torch

from fxnas.hf_fx import broadcast_eager_mask, broadcast_sdpa_mask, fixed_args, traceable_masks

transformers = pytest.importorskip("transformers")
mu = pytest.importorskip("transformers.masking_utils")


@pytest.mark.parametrize("window", [None, 3])
@pytest.mark.parametrize("padded", [False, True])
def test_broadcast_masks_equal_transformers_masks(window: int | None, padded: bool) -> None:
    batch, q, kv = 2, 5, 7
    cache_position = torch.arange(kv - q, kv)
    attention_mask = torch.ones(batch, kv, dtype=torch.bool)
    if padded:
        attention_mask[1, :3] = False  # left padding on the second row
    fn = mu.causal_mask_function if window is None else mu.sliding_window_causal_mask_function(window)
    kw = dict(batch_size=batch, cache_position=cache_position, kv_length=kv, kv_offset=0, mask_function=fn,
              attention_mask=attention_mask if padded else None)
    want = mu.sdpa_mask(**kw, allow_is_causal_skip=False)
    got = broadcast_sdpa_mask(**kw)
    assert got.shape == want.shape == (batch, 1, q, kv)
    assert torch.equal(got, want)
    assert not got.all() and got.any()  # a real mask, not all-attend
    torch.testing.assert_close(broadcast_eager_mask(**kw, dtype=torch.float32),
                               mu.eager_mask(**kw, dtype=torch.float32), rtol=0, atol=0)


def test_traceable_masks_is_scoped() -> None:
    masks = mu.ALL_MASK_ATTENTION_FUNCTIONS
    before = masks["sdpa"]
    with traceable_masks():
        assert masks["sdpa"] is broadcast_sdpa_mask and masks["eager"] is broadcast_eager_mask
    assert masks["sdpa"] is before and "sdpa" not in masks._local_mapping


def test_fixed_args_fix_named_parameters_and_empty_kwargs() -> None:
    cfg = transformers.ViTConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=16,
                                 image_size=16, patch_size=8)
    model = transformers.ViTForImageClassification(cfg)
    got = fixed_args(model, ["pixel_values"], {"interpolate_pos_encoding": True})
    assert got == {"head_mask": None, "labels": None, "interpolate_pos_encoding": True, "**kwargs": {}}
