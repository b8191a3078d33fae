"""The two models of C-Mixup's regression benchmarks, with named mixing points.

MLP (tabular): input -> block_1 (Linear 128, LeakyReLU 0.1) -> block_2 (Linear 128, LeakyReLU 0.1) -> head.
C-Mixup's manifold variant mixes the output of block_1.

LSTNet (Lai et al., 2018; the series): a convolution over the window, a GRU over its steps, a skip-GRU over steps
`skip` apart, a linear layer, plus a linear autoregressive "highway" on the last `highway` steps of the input.
C-Mixup's manifold variant mixes the convolution's output and, for the highway, the raw input window: here the
module `encoder` returns both as one flat tensor, so one hook at `encoder` mixes both with the same lambda.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class MLP(nn.Module):
    def __init__(self, inputs: int, width: int = 128, outputs: int = 1, slope: float = 0.1):
        super().__init__()
        self.block_1 = nn.Sequential(nn.Linear(inputs, width), nn.LeakyReLU(slope))
        self.block_2 = nn.Sequential(nn.Linear(width, width), nn.LeakyReLU(slope))
        self.head = nn.Linear(width, outputs)

    def forward(self, x):
        return self.head(self.block_2(self.block_1(x)))


class LSTNetEncoder(nn.Module):
    """(B, window, m) -> (B, channels * steps + highway * m): the convolution's ReLU map and the highway window."""

    def __init__(self, series: int, window: int, channels: int, kernel: int, highway: int, dropout: float):
        super().__init__()
        self.conv = nn.Conv2d(1, channels, kernel_size=(kernel, series))
        self.dropout = nn.Dropout(dropout)
        self.highway = highway

    def forward(self, x):
        c = self.dropout(F.relu(self.conv(x.unsqueeze(1)))).squeeze(3)     # (B, C, T')
        z = x[:, -self.highway:, :] if self.highway else x[:, :0, :]
        return torch.cat([c.flatten(1), z.flatten(1)], dim=1)


class LSTNet(nn.Module):
    def __init__(self, series: int = 8, window: int = 168, channels: int = 50, kernel: int = 6, hidden: int = 50,
                 skip_hidden: int = 5, skip: int = 24, highway: int = 24, dropout: float = 0.2):
        super().__init__()
        self.m, self.channels, self.steps = series, channels, window - kernel + 1
        self.skip, self.skip_steps, self.highway_window = skip, (window - kernel) // skip if skip else 0, highway
        self.encoder = LSTNetEncoder(series, window, channels, kernel, highway, dropout)
        self.gru = nn.GRU(channels, hidden)
        self.dropout = nn.Dropout(dropout)
        self.skip_gru = nn.GRU(channels, skip_hidden) if skip else None
        self.linear = nn.Linear(hidden + skip * skip_hidden, series)
        self.highway = nn.Linear(highway, 1) if highway else None

    def forward(self, x):
        b = x.shape[0]
        h = self.encoder(x)
        split = self.channels * self.steps
        c = h[:, :split].view(b, self.channels, self.steps)
        _, r = self.gru(c.permute(2, 0, 1).contiguous())
        r = self.dropout(r.squeeze(0))
        if self.skip_gru is not None:
            pt, k = self.skip_steps, self.skip
            s = c[:, :, -pt * k:].contiguous().view(b, self.channels, pt, k)
            s = s.permute(2, 0, 3, 1).contiguous().view(pt, b * k, self.channels)
            _, s = self.skip_gru(s)
            r = torch.cat([r, self.dropout(s.view(b, -1))], dim=1)
        out = self.linear(r)
        if self.highway is not None:
            z = h[:, split:].view(b, self.highway_window, self.m)
            out = out + self.highway(z.permute(0, 2, 1).reshape(b * self.m, -1)).view(b, self.m)
        return out
