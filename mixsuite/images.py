"""Images as the models see them: uint8 (B, C, H, W) to float, normalised."""
from __future__ import annotations

import torch


def normalize(x: torch.Tensor, mean, std) -> torch.Tensor:
    """uint8 (B, C, H, W) -> float, (x / 255 - mean) / std; mean and std are numbers, per-channel sequences, or
    tensors that broadcast over (B, C, H, W)."""
    return (x.float() / 255 - _on(mean, x.device)) / _on(std, x.device)


def _on(value, device):
    if isinstance(value, torch.Tensor):
        return value.to(device)
    if isinstance(value, (list, tuple)):
        return torch.tensor(value, device=device).view(1, -1, 1, 1)
    return value
