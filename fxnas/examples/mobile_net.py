"""A small MobileNetV2-style CNN written as an ordinary user file: stages of inverted residual blocks
(1x1 expansion, 5x5 depthwise, 1x1 projection, identity shortcuts inside a stage), for 3-channel inputs of
16x16 or more. Nothing in it knows about fxnas: the elastic configs find its width, kernel and depth from
its graph."""

import torch
from torch import nn

# (output channels, blocks, stride of the first block) per stage
STAGES = ((16, 2, 1), (24, 3, 2), (32, 3, 2))


class InvertedResidual(nn.Module):
    """1x1 conv up to ``expand`` x the input channels, a depthwise ``kernel`` conv, a 1x1 conv down; the input
    is added back when the shapes allow it."""

    def __init__(self, cin: int, cout: int, stride: int, expand: int = 4, kernel: int = 5) -> None:
        super().__init__()
        hidden = cin * expand
        self.expand = nn.Sequential(nn.Conv2d(cin, hidden, 1, bias=False), nn.BatchNorm2d(hidden), nn.ReLU6())
        self.depthwise = nn.Sequential(nn.Conv2d(hidden, hidden, kernel, stride, kernel // 2, groups=hidden,
                                                 bias=False), nn.BatchNorm2d(hidden), nn.ReLU6())
        self.project = nn.Sequential(nn.Conv2d(hidden, cout, 1, bias=False), nn.BatchNorm2d(cout))
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.project(self.depthwise(self.expand(x)))
        return x + y if self.residual else y


class MobileNet(nn.Module):
    """A 3x3 stem, the ``STAGES`` of inverted residuals, a 1x1 head conv, global pooling and a classifier."""

    def __init__(self, num_classes: int = 10, width: int = 16, expand: int = 4, kernel: int = 5,
                 head: int = 96) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU6())
        blocks, cin = [], width
        for cout, n, stride in STAGES:
            cout = cout * width // 16
            for i in range(n):
                blocks.append(InvertedResidual(cin, cout, stride if i == 0 else 1, expand, kernel))
                cin = cout
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Sequential(nn.Conv2d(cin, head, 1, bias=False), nn.BatchNorm2d(head), nn.ReLU6())
        self.classifier = nn.Linear(head, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.head(self.blocks(self.stem(x)))
        return self.classifier(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


def build(num_classes: int = 10, width: int = 16, expand: int = 4, kernel: int = 5, head: int = 96) -> nn.Module:
    """The entry point a config's ``model: {type: path/to/mobile_net.py}`` calls."""
    return MobileNet(num_classes, width, expand, kernel, head)
