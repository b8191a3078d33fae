"""Classifier heads and the rotation pretext task."""
from __future__ import annotations

from contextlib import nullcontext

import torch
import torch.nn.functional as F
from torch import nn


class CosineClassifier(nn.Module):
    """scale * cos(feature, class vector) (S2M2's distLinear / Baseline++)."""

    def __init__(self, dim: int, n_classes: int, scale: float = 10.0):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(n_classes, dim) * dim ** -0.5)
        self.scale = scale

    def forward(self, h):
        return self.scale * F.normalize(h, dim=-1) @ F.normalize(self.weight, dim=-1).T


def rotate_batch(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Each image in its 4 rotations (0, 90, 180, 270 degrees counter-clockwise), rotation labels 0..3.

    Returns (4B, C, H, W) ordered rotation-major ([all at 0], [all at 90], ...) and labels (4B,).
    """
    rots = [torch.rot90(x, k, dims=(2, 3)) for k in range(4)]
    labels = torch.arange(4, device=x.device).repeat_interleave(x.shape[0])
    return torch.cat(rots), labels


class FewShotNet(nn.Module):
    """backbone -> features; a class head (cosine or linear) and a 4-way rotation head."""

    def __init__(self, backbone: nn.Module, n_classes: int, head: str = "cosine", scale: float = 10.0):
        super().__init__()
        self.backbone = backbone
        dim = backbone.out_dim
        self.classifier = CosineClassifier(dim, n_classes, scale) if head == "cosine" else nn.Linear(dim, n_classes)
        self.rotation = nn.Linear(dim, 4)

    def forward(self, x):
        return self.classifier(self.backbone(x))


class TrainingForward(nn.Module):
    """Everything one training step computes, in one forward, so that DDP (which wraps this module) sees all
    of it and synchronises the gradients of one backward:

    - the class logits of `x`, its hidden state mixed by `plan` (drawn from `mixer`, hooked on net.backbone);
    - for the rotated images `xr`, their class logits and their rotation logits.

    Returns the logits of x alone when no `xr` is given, else (logits of x or None, class, rotation logits).
    """

    def __init__(self, net: FewShotNet, mixer=None):
        super().__init__()
        self.net, self.mixer = net, mixer

    def forward(self, x=None, plan=None, xr=None):
        logits = None
        if x is not None:
            with self.mixer.apply(plan) if plan is not None else nullcontext():
                logits = self.net(x)
        if xr is None:
            return logits
        h = self.net.backbone(xr)
        return logits, self.net.classifier(h), self.net.rotation(h)
