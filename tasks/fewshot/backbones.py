"""Few-shot backbones with named mixing points `block1..block3` (`input` is the backbone's input).

Conv-4 and ResNet-12 are the standard small backbones; WRN-28-10 is S2M2's (640-d features).
Each returns a flat feature vector of size `out_dim`.
"""
from __future__ import annotations

import torch
from torch import nn


def conv_block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
                         nn.MaxPool2d(2))


class Conv4(nn.Module):
    def __init__(self, in_channels: int = 1, width: int = 64):
        super().__init__()
        self.block1 = conv_block(in_channels, width)
        self.block2 = conv_block(width, width)
        self.block3 = conv_block(width, width)
        self.block4 = conv_block(width, width)
        self.out_dim = width

    def forward(self, x):
        h = self.block4(self.block3(self.block2(self.block1(x))))
        return h.mean(dim=(2, 3))


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


class WideBasic(nn.Module):
    """Pre-activation wide residual block with dropout between the convolutions."""

    def __init__(self, cin: int, cout: int, stride: int, drop: float):
        super().__init__()
        self.bn1, self.conv1 = nn.BatchNorm2d(cin), nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn2, self.conv2 = nn.BatchNorm2d(cout), nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.drop = nn.Dropout(drop)
        self.shortcut = None if cin == cout and stride == 1 else nn.Conv2d(cin, cout, 1, stride, bias=False)

    def forward(self, x):
        o = torch.relu(self.bn1(x))
        skip = x if self.shortcut is None else self.shortcut(o)
        o = self.conv2(self.drop(torch.relu(self.bn2(self.conv1(o)))))
        return o + skip


class WRN(nn.Module):
    """WRN-depth-widen (28-10 for S2M2): 3 groups of (depth-4)/6 blocks, widths 16k, 32k, 64k."""

    def __init__(self, in_channels: int = 3, depth: int = 28, widen: int = 10, drop: float = 0.5):
        super().__init__()
        n = (depth - 4) // 6
        w = [16, 16 * widen, 32 * widen, 64 * widen]
        self.stem = nn.Conv2d(in_channels, w[0], 3, 1, 1, bias=False)
        group = lambda cin, cout, stride: nn.Sequential(*[WideBasic(cin if i == 0 else cout, cout, stride if i == 0 else 1,
                                                                    drop) for i in range(n)])
        self.block1, self.block2, self.block3 = group(w[0], w[1], 1), group(w[1], w[2], 2), group(w[2], w[3], 2)
        self.bn = nn.BatchNorm2d(w[3])
        self.out_dim = w[3]

    def forward(self, x):
        h = self.block3(self.block2(self.block1(self.stem(x))))
        return torch.relu(self.bn(h)).mean(dim=(2, 3))


BACKBONES = ("conv4", "resnet12", "wrn28-10")


def build_backbone(name: str, in_channels: int, dropout: float = 0.5) -> nn.Module:
    if name == "conv4":
        return Conv4(in_channels)
    if name == "resnet12":
        return ResNet12(in_channels)
    if name == "wrn28-10":
        return WRN(in_channels, 28, 10, dropout)
    raise ValueError(f"backbone must be one of {', '.join(BACKBONES)}, got {name!r}")
