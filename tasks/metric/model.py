"""The embedding network: a backbone (the library's Conv-4 / ResNet-12, or a timm model) whose pooled features
a linear layer maps to `embed_dim`, L2-normalised (Roth et al.'s 128-d unit embedding). The backbone's stages
are the mixing points (`block1..block4` for conv4 / resnet12; a timm ResNet's `layer1..layer4`)."""
from __future__ import annotations

import torch.nn.functional as F
from torch import nn

from mixsuite.errors import UnknownName
from mixsuite.models import Conv4, ResNet12, timm_model

BACKBONES = ("conv4", "resnet12")


def build_backbone(name: str, in_channels: int, *, cifar_stem: bool = True, pretrained: bool = False) -> nn.Module:
    """A backbone returning pooled features of size `out_dim`."""
    if name == "conv4":
        return Conv4(in_channels)
    if name == "resnet12":
        return ResNet12(in_channels)
    if name.startswith("timm:"):
        net = timm_model(name[len("timm:"):], 0, in_chans=in_channels, cifar_stem=cifar_stem, pretrained=pretrained)
        net.out_dim = net.num_features
        return net
    raise UnknownName(f"unknown backbone {name!r}; one of {', '.join(BACKBONES)} or timm:<name>")


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
