"""Conv-4 (Vinyals et al. 2016; Snell et al. 2017): four 3x3 conv-BN-ReLU-maxpool blocks `block1..block4`,
global average pooling, an `out_dim`-sized feature vector."""
from __future__ import annotations

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
