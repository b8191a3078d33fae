"""Two interlocked spirals in [-1, 1]^2: class 0 and its point reflection, class 1."""
from __future__ import annotations

import math

import torch


def make_spirals(n_per_class: int, *, turns: float = 1.5, noise: float = 0.02, seed: int = 0):
    """(x, y): x (2n, 2) float32, y (2n,) int64. Points are spread evenly in arc length along each arm."""
    g = torch.Generator().manual_seed(seed)
    t = torch.sqrt(torch.rand(n_per_class, generator=g, dtype=torch.float64))
    theta = t * turns * 2 * math.pi
    arm = torch.stack([t * torch.cos(theta), t * torch.sin(theta)], dim=1)
    x = torch.cat([arm, -arm]) + noise * torch.randn(2 * n_per_class, 2, generator=g, dtype=torch.float64)
    y = torch.cat([torch.zeros(n_per_class), torch.ones(n_per_class)]).long()
    return x.float(), y
