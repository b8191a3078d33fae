"""Images with class labels 0..n-1, and the ways to split them by class."""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass
class ClassSplit:
    """Images (N, C, H, W) uint8 and class labels 0..n_classes-1."""

    images: torch.Tensor
    labels: torch.Tensor

    @property
    def n_classes(self) -> int:
        return int(self.labels.max()) + 1 if len(self.labels) else 0

    def subset_classes(self, n: int) -> "ClassSplit":
        """The first n classes."""
        keep = self.labels < n
        return ClassSplit(self.images[keep], self.labels[keep])

    def split_at_class(self, first: int) -> tuple["ClassSplit", "ClassSplit"]:
        """Classes [0, first) and [first, n), each relabelled from 0: two splits that share no class."""
        low = self.labels < first
        return (ClassSplit(self.images[low], self.labels[low]),
                ClassSplit(self.images[~low], self.labels[~low] - first))


def resize_uint8(x: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 (N, C, H, W) -> uint8 (N, C, size, size), area interpolation, in chunks to bound memory."""
    out = [F.interpolate(c.float(), size=(size, size), mode="area").round().clamp(0, 255).to(torch.uint8)
           for c in x.split(2048)]
    return torch.cat(out)
