"""ResNet-12 (Oreshkin et al. 2018; Lee et al. 2019): four residual blocks `block1..block4` of three 3x3 convs,
global average pooling, an `out_dim`-sized feature vector."""
from __future__ import annotations

from torch import nn


class ResBlock12(nn.Module):
    """Three 3x3 conv-BN (leaky ReLU) with a 1x1 shortcut, then 2x2 max-pool (ResNet-12's block)."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        layers = []
        for i in range(3):
            layers += [nn.Conv2d(cin if i == 0 else cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout)]
            if i < 2:
                layers.append(nn.LeakyReLU(0.1))
        self.body = nn.Sequential(*layers)
        self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout))
        self.out = nn.Sequential(nn.LeakyReLU(0.1), nn.MaxPool2d(2, ceil_mode=True))

    def forward(self, x):
        return self.out(self.body(x) + self.shortcut(x))


class ResNet12(nn.Module):
    def __init__(self, in_channels: int = 3, widths=(64, 160, 320, 640)):
        super().__init__()
        self.block1 = ResBlock12(in_channels, widths[0])
        self.block2 = ResBlock12(widths[0], widths[1])
        self.block3 = ResBlock12(widths[1], widths[2])
        self.block4 = ResBlock12(widths[2], widths[3])
        self.out_dim = widths[3]

    def forward(self, x):
        return self.block4(self.block3(self.block2(self.block1(x)))).mean(dim=(2, 3))
