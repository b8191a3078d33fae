"""Images with class labels 0..n-1, and the ways to split them by class."""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

ROTATIONS = 4   # a rotation group: one item at 0, 90, 180, 270 degrees


@dataclass
class ClassSplit:
    """Images (N, C, H, W) uint8 and class labels 0..n_classes-1.

    rotation_groups: every rotation of an item is a class of its own, classes 4c..4c+3 being item c rotated by 0,
    90, 180, 270 degrees counter-clockwise (torch.rot90), so a split by class must keep each group whole.
    """

    images: torch.Tensor
    labels: torch.Tensor
    rotation_groups: bool = False

    @property
    def n_classes(self) -> int:
        return int(self.labels.max()) + 1 if len(self.labels) else 0

    def subset_classes(self, n: int) -> "ClassSplit":
        """The first n classes."""
        self._check_cut(n)
        keep = self.labels < n
        return ClassSplit(self.images[keep], self.labels[keep], self.rotation_groups)

    def split_at_class(self, first: int) -> tuple["ClassSplit", "ClassSplit"]:
        """Classes [0, first) and [first, n), each relabelled from 0: two splits that share no class."""
        self._check_cut(first)
        low = self.labels < first
        return (ClassSplit(self.images[low], self.labels[low], self.rotation_groups),
                ClassSplit(self.images[~low], self.labels[~low] - first, self.rotation_groups))

    def rotated_labels(self, labels: torch.Tensor, k: int) -> torch.Tensor:
        """The class of images of `labels` rotated by k * 90 degrees counter-clockwise (torch.rot90): the same
        class unless every rotation is a class (rotation_groups)."""
        if not self.rotation_groups:
            return labels
        return labels - labels % ROTATIONS + (labels % ROTATIONS + k) % ROTATIONS

    def _check_cut(self, n: int) -> None:
        if self.rotation_groups and n % ROTATIONS:
            raise ValueError(f"a cut at class {n} would split an item's {ROTATIONS} rotation classes: "
                             f"use a multiple of {ROTATIONS}")


def resize_uint8(x: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 (N, C, H, W) -> uint8 (N, C, size, size), area interpolation, in chunks to bound memory."""
    out = [F.interpolate(c.float(), size=(size, size), mode="area").round().clamp(0, 255).to(torch.uint8)
           for c in x.split(2048)]
    return torch.cat(out)
