"""The network of the paper's appendix G: `depth` LeakyReLU layers of `width` units, a LeakyReLU bottleneck of
`bottleneck` units, `head_depth` more LeakyReLU layers of `width` units, a linear classifier. Dropout (method
dropout) follows every wide layer, not the bottleneck (as in the paper's Figure 2). Mixing points (by module
name): input, hidden1..hidden<depth>, bottleneck, head1..head<head_depth>."""
from __future__ import annotations

import torch
from torch import nn


def wide_layer(n_in: int, n_out: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(nn.Linear(n_in, n_out), nn.LeakyReLU(), *([nn.Dropout(dropout)] if dropout else []))


class BottleneckMLP(nn.Module):
    def __init__(self, in_dim: int = 784, width: int = 1024, depth: int = 3, bottleneck: int = 12,
                 head_depth: int = 4, classes: int = 10, dropout: float = 0.0):
        super().__init__()
        self.depth, self.head_depth = depth, head_depth
        for i in range(depth):
            self.add_module(f"hidden{i + 1}", wide_layer(in_dim if i == 0 else width, width, dropout))
        self.bottleneck = nn.Sequential(nn.Linear(width, bottleneck), nn.LeakyReLU())
        for i in range(head_depth):
            self.add_module(f"head{i + 1}", wide_layer(bottleneck if i == 0 else width, width, dropout))
        self.classifier = nn.Linear(width if head_depth else bottleneck, classes)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(first hidden layer, bottleneck): the two representations whose spectra are measured."""
        first = x = self.hidden1(x)
        for i in range(1, self.depth):
            x = getattr(self, f"hidden{i + 1}")(x)
        return first, self.bottleneck(x)

    def head(self, code: torch.Tensor) -> torch.Tensor:
        for i in range(self.head_depth):
            code = getattr(self, f"head{i + 1}")(code)
        return self.classifier(code)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encode(x)[1])
