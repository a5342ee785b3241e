"""User-style models for the elastic tests: splits, concats, grouped convs, norms, squeeze-excite, flatten."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class SplitNet(nn.Module):
    """A stem split in two halves, a branch per half, concatenated; a grouped-conv residual with GroupNorm;
    a gated (GLU) chunk; a 2x2 pool flattened into an MLP head with LayerNorm."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 32, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(32)
        self.a = nn.Conv2d(16, 16, 3, padding=1)
        self.b = nn.Conv2d(16, 16, 5, padding=2)
        self.g = nn.Conv2d(32, 32, 3, padding=1, groups=2, bias=False)
        self.gn = nn.GroupNorm(2, 32)
        self.dw = nn.Conv2d(32, 32, 5, stride=2, padding=2, groups=32)
        self.expand = nn.Conv2d(32, 48, 1)
        self.pool = nn.AdaptiveAvgPool2d(2)
        self.fc1 = nn.Linear(24 * 4, 32)
        self.ln = nn.LayerNorm(32)
        self.fc2 = nn.Linear(32, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn(self.stem(x)))
        left, right = torch.split(x, [16, 16], dim=1)
        y = torch.cat([self.a(left), self.b(right)], dim=1)
        y = y + F.relu(self.gn(self.g(y)))
        y = self.dw(y)
        h, gate = self.expand(y).chunk(2, dim=1)
        y = h * torch.sigmoid(gate)
        y = torch.flatten(self.pool(y), 1)
        return self.fc2(F.gelu(self.ln(self.fc1(y))))


class SENet(nn.Module):
    """Inverted residuals with squeeze-excite (a channel-wise mul), stacked into stages with identity shortcuts."""

    def __init__(self, num_classes: int = 10, c: int = 16) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, c, 3, 2, 1, bias=False), nn.BatchNorm2d(c), nn.ReLU())
        self.blocks = nn.ModuleList(Block(c, 4 * c, 5) for _ in range(3))
        self.down = Block(c, 4 * c, 3, cout=2 * c, stride=2)
        self.more = nn.ModuleList(Block(2 * c, 6 * c, 3) for _ in range(2))
        self.head = nn.Linear(2 * c, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for b in self.blocks:
            x = x + b(x)
        x = self.down(x)
        for b in self.more:
            x = x + b(x)
        return self.head(x.mean((2, 3)))


class Block(nn.Module):
    """Expand 1x1, depthwise kxk, squeeze-excite, project 1x1."""

    def __init__(self, cin: int, mid: int, k: int, cout: int | None = None, stride: int = 1) -> None:
        super().__init__()
        cout = cout or cin
        self.expand = nn.Sequential(nn.Conv2d(cin, mid, 1, bias=False), nn.BatchNorm2d(mid), nn.Hardswish())
        self.dw = nn.Sequential(nn.Conv2d(mid, mid, k, stride, k // 2, groups=mid, bias=False),
                                nn.BatchNorm2d(mid), nn.Hardswish())
        self.se1 = nn.Conv2d(mid, mid // 4, 1)
        self.se2 = nn.Conv2d(mid // 4, mid, 1)
        self.project = nn.Sequential(nn.Conv2d(mid, cout, 1, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.dw(self.expand(x))
        s = F.adaptive_avg_pool2d(y, 1)
        y = y * torch.sigmoid(self.se2(F.relu(self.se1(s))))
        return self.project(y)
