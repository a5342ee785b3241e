"""A tiny CNN written as an ordinary user file: residual adds, squeeze-excite, a concat and depthwise convs."""

import torch
from torch import nn


class SqueezeExcite(nn.Module):
    """Channel attention: x * sigmoid(fc(avgpool(x)))."""

    def __init__(self, c: int, r: int = 4) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(c, max(1, c // r), 1)
        self.fc2 = nn.Conv2d(max(1, c // r), c, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.mean((2, 3), keepdim=True)
        return x * torch.sigmoid(self.fc2(torch.relu(self.fc1(s))))


class ResBlock(nn.Module):
    """conv3x3-bn-relu-conv3x3-bn plus a shortcut (1x1 projection when the shape changes)."""

    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.short = nn.Identity() if stride == 1 and cin == cout else nn.Sequential(
            nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(y)) + self.short(x))


class DWBlock(nn.Module):
    """Depthwise 3x3 + pointwise 1x1, squeeze-excite, residual add."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.dw = nn.Conv2d(c, c, 3, 1, 1, groups=c, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.pw = nn.Conv2d(c, c, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c)
        self.se = SqueezeExcite(c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.bn1(self.dw(x)))
        return x + self.se(self.bn2(self.pw(y)))


class TinyNet(nn.Module):
    """Stem, a residual stage, two parallel branches concatenated, a depthwise SE block, a linear head."""

    def __init__(self, num_classes: int = 10, width: int = 16) -> None:
        super().__init__()
        w = width
        self.stem = nn.Sequential(nn.Conv2d(3, w, 3, 1, 1, bias=False), nn.BatchNorm2d(w), nn.ReLU())
        self.res1 = ResBlock(w, w)
        self.res2 = ResBlock(w, 2 * w, stride=2)
        self.branch_a = nn.Sequential(nn.Conv2d(2 * w, w, 3, 1, 1, bias=False), nn.BatchNorm2d(w), nn.ReLU())
        self.branch_b = nn.Sequential(nn.Conv2d(2 * w, w, 5, 1, 2, bias=False), nn.BatchNorm2d(w), nn.ReLU())
        self.dw = DWBlock(2 * w)
        self.head = nn.Linear(2 * w, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.res2(self.res1(self.stem(x)))
        x = torch.cat([self.branch_a(x), self.branch_b(x)], dim=1)
        x = self.dw(x)
        return self.head(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


def build(num_classes: int = 10, width: int = 16) -> nn.Module:
    """The entry point the CLI finds: ``fxnas searchify tiny_net.py`` (or ``tiny_net.py:build``)."""
    return TinyNet(num_classes, width)
