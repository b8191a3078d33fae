"""Line recognisers that output per-frame log-probabilities (T, B, C) for CTC.

`GatedHTR` follows Moysset & Messina's table (tiling, convolutions, gated convolutions, a max-pool over the
height, two BLSTM + linear layers); `CRNN` is the plain conv + BLSTM baseline. Both name their mixing points
`block1`..`block4` (after each convolution block); `input` is the image. Both downsample the width by 8.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

WIDTH_STRIDE = 8


def frames(widths: torch.Tensor) -> torch.Tensor:
    """Output frames of a line `widths` pixels wide (the models downsample the width by 8, rounding up)."""
    return torch.div(widths + WIDTH_STRIDE - 1, WIDTH_STRIDE, rounding_mode="floor").clamp_min(1)


class GatedConv(nn.Module):
    """x * sigmoid(conv(x)): a 3x3 gate on the features (Bluche & Messina's gated convolution)."""

    def __init__(self, channels: int):
        super().__init__()
        self.gate = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x):
        return x * torch.sigmoid(self.gate(x))


class Tiling(nn.Module):
    """2x2 space-to-depth: (B, C, H, W) -> (B, 4C, H/2, W/2)."""

    def forward(self, x):
        return F.pixel_unshuffle(x, 2)


class SequenceHead(nn.Module):
    """Max over the remaining height, then BLSTM -> linear -> BLSTM -> linear, log-softmax over classes."""

    def __init__(self, channels: int, hidden: int, n_classes: int, dropout: float):
        super().__init__()
        self.lstm1 = nn.LSTM(channels, hidden, bidirectional=True)
        self.lin1 = nn.Linear(2 * hidden, hidden)
        self.lstm2 = nn.LSTM(hidden, hidden, bidirectional=True)
        self.out = nn.Linear(2 * hidden, n_classes)
        self.drop = nn.Dropout(dropout)

    def forward(self, h):
        seq = h.amax(dim=2).permute(2, 0, 1)                # (T, B, C)
        seq = torch.tanh(self.lin1(self.drop(self.lstm1(seq)[0])))
        return self.out(self.drop(self.lstm2(seq)[0])).log_softmax(-1)


class GatedHTR(nn.Module):
    def __init__(self, n_classes: int, width: int = 1, hidden: int = 128, dropout: float = 0.2):
        super().__init__()
        c = [8 * width, 16 * width, 32 * width, 64 * width, 128 * width]
        self.block1 = nn.Sequential(Tiling(), nn.Conv2d(4, c[0], 3, padding=1), nn.Tanh(),
                                    nn.Conv2d(c[0], c[1], (4, 2), stride=(4, 2)), nn.Tanh(), GatedConv(c[1]))
        self.block2 = nn.Sequential(nn.Conv2d(c[1], c[2], 3, padding=1), nn.Tanh(), GatedConv(c[2]))
        self.block3 = nn.Sequential(nn.Conv2d(c[2], c[3], (4, 2), stride=(4, 2)), nn.Tanh(), GatedConv(c[3]))
        self.block4 = nn.Sequential(nn.Conv2d(c[3], c[4], 3, padding=1), nn.Tanh())
        self.head = SequenceHead(c[4], hidden, n_classes, dropout)
        for m in self.modules():  # Glorot for the tanh stack: torch's default init shrinks it towards zero
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.xavier_uniform_(m.weight, gain=nn.init.calculate_gain("tanh"))
                nn.init.zeros_(m.bias)

    def forward(self, x):
        return self.head(self.block4(self.block3(self.block2(self.block1(x)))))


def crnn_block(cin: int, cout: int, pool) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
                         nn.MaxPool2d(pool))


class CRNN(nn.Module):
    def __init__(self, n_classes: int, width: int = 1, hidden: int = 128, dropout: float = 0.2):
        super().__init__()
        c = [16 * width, 32 * width, 64 * width, 128 * width]
        self.block1 = crnn_block(1, c[0], 2)
        self.block2 = crnn_block(c[0], c[1], 2)
        self.block3 = crnn_block(c[1], c[2], 2)
        self.block4 = crnn_block(c[2], c[3], (2, 1))
        self.head = SequenceHead(c[3], hidden, n_classes, dropout)

    def forward(self, x):
        return self.head(self.block4(self.block3(self.block2(self.block1(x)))))


MODELS = {"gated": GatedHTR, "crnn": CRNN}


def build_model(name: str, n_classes: int, width: int, hidden: int, dropout: float) -> nn.Module:
    if name not in MODELS:
        raise ValueError(f"model must be one of {', '.join(MODELS)}, got {name!r}")
    return MODELS[name](n_classes, width, hidden, dropout)
