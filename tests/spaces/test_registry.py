"""SPACES and model_builder: torchvision models go through fxnas.modelfile's builder (no downloads)."""

from __future__ import annotations

import pytest
import torch

from fxnas.config import build_model
from fxnas.errors import ConfigError, ModelError
from fxnas.spaces.registry import SPACES, model_builder


def test_torchvision_builder_builds_classification_models():
    net = model_builder("torchvision:resnet18")(num_classes=3).eval()  # eval: BN on a batch of one
    assert net(torch.randn(1, 3, 32, 32)).shape == (1, 3)


def test_torchvision_weights_are_refused():
    with pytest.raises(ModelError, match="would download"):
        model_builder("torchvision:resnet18")(num_classes=3, weights="DEFAULT")
    with pytest.raises(ConfigError, match="would download"):  # as a config writes it: model: {weights: DEFAULT}
        build_model({"type": "torchvision:resnet18", "options": {"weights": "DEFAULT"}}, None, None)


@pytest.mark.parametrize("name,match", [
    ("resnet81", "did you mean resnet18"),
    ("fasterrcnn_resnet50_fpn", "unknown torchvision model 'fasterrcnn_resnet50_fpn'"),  # detection
    ("r3d_18", "unknown torchvision model 'r3d_18'"),  # video
])
def test_torchvision_non_classification_and_unknown_models(name, match):
    with pytest.raises(ModelError, match=match):
        model_builder(f"torchvision:{name}")(num_classes=3)


def test_named_spaces_resolve_lazily():
    assert {"darts", "tiny_net", "nb201"} <= set(SPACES.names())
    from fxnas.spaces.nb201.model import build_nb201

    assert model_builder("nb201") is build_nb201
    assert list(model_builder("nb201")()) == [f"edge{k}" for k in range(6)]
