"""The embedding network: a backbone (mixsuite.models.build_backbone: Conv-4, ResNet-12, a timm model) whose
pooled features a linear layer maps to `embed_dim`, L2-normalised (Roth et al.'s 128-d unit embedding). The
backbone's stages are the mixing points (`block1..block4` for conv4 / resnet12; a timm ResNet's `layer1..layer4`)."""
from __future__ import annotations

import torch.nn.functional as F
from torch import nn


class Embedder(nn.Module):
    def __init__(self, backbone: nn.Module, embed_dim: int):
        super().__init__()
        self.backbone = backbone
        self.head = nn.Linear(backbone.out_dim, embed_dim)

    def forward(self, x):
        return F.normalize(self.head(self.backbone(x)).float(), dim=-1)


def freeze_batchnorm(model: nn.Module) -> None:
    """BatchNorm layers in eval mode (running statistics fixed), as Roth et al. train; call after model.train()."""
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.eval()
