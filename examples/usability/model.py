"""The user's model for the usability setups: torchvision's MobileNetV2 at 0.35 width for 10 classes, as a
user would write it, with nothing in it about NAS (the ModularNAS paper ran its usability study on MobileNetV2)."""

import torchvision
from torch import nn


def build(num_classes: int = 10, width_mult: float = 0.35) -> nn.Module:
    """The entry point a config's ``model: {type: model.py}`` calls."""
    return torchvision.models.mobilenet_v2(num_classes=num_classes, width_mult=width_mult)
