"""An MLP whose hidden state passes through 2 units, so the hidden space can be drawn."""
from __future__ import annotations

from torch import nn


class SpiralNet(nn.Module):
    """input -> hidden1 -> hidden2 -> bottleneck (2-D) -> head. Mixing points: input, hidden1, hidden2, bottleneck."""

    def __init__(self, width: int = 128):
        super().__init__()
        self.hidden1 = nn.Sequential(nn.Linear(2, width), nn.ReLU())
        self.hidden2 = nn.Sequential(nn.Linear(width, width), nn.ReLU())
        self.bottleneck = nn.Linear(width, 2)
        self.head = nn.Sequential(nn.Linear(2, width), nn.ReLU(), nn.Linear(width, 2))

    def encode(self, x):
        return self.bottleneck(self.hidden2(self.hidden1(x)))

    def forward(self, x):
        return self.head(self.encode(x))
