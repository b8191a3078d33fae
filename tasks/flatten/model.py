"""The paper's fully connected network: `depth` LeakyReLU layers of `width` units, a LeakyReLU bottleneck of
`bottleneck` units, a linear classifier. Mixing points (by module name): input, hidden1..hidden<depth>, bottleneck."""
from __future__ import annotations

import torch
from torch import nn


class BottleneckMLP(nn.Module):
    def __init__(self, in_dim: int = 784, width: int = 1024, depth: int = 3, bottleneck: int = 12,
                 classes: int = 10, dropout: float = 0.0):
        super().__init__()
        dims = [in_dim] + [width] * depth
        for i in range(depth):   # dropout after each wide layer's activation (0: none)
            layer = [nn.Linear(dims[i], dims[i + 1]), nn.LeakyReLU()] + ([nn.Dropout(dropout)] if dropout else [])
            self.add_module(f"hidden{i + 1}", nn.Sequential(*layer))
        self.depth = depth
        self.bottleneck = nn.Sequential(nn.Linear(width, bottleneck), nn.LeakyReLU())
        self.classifier = nn.Linear(bottleneck, classes)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The bottleneck representation (what the flattening measure is taken of)."""
        for i in range(self.depth):
            x = getattr(self, f"hidden{i + 1}")(x)
        return self.bottleneck(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.encode(x))
