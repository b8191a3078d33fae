"""Feature backbones by name, the factory the few-shot and metric tasks share: each returns pooled features of
size `out_dim`, its stages named as mixing points (`block1..` for conv4 / resnet12; a timm model's own)."""
from __future__ import annotations

from torch import nn

from ..errors import UnknownName
from .conv4 import Conv4
from .resnet12 import ResNet12
from .timm_backbones import timm_model

BACKBONES = ("conv4", "resnet12")   # and timm:<name>


def build_backbone(name: str, in_channels: int, *, cifar_stem: bool = True, pretrained: bool = False) -> nn.Module:
    if name == "conv4":
        return Conv4(in_channels)
    if name == "resnet12":
        return ResNet12(in_channels)
    if name.startswith("timm:"):
        net = timm_model(name[len("timm:"):], 0, in_chans=in_channels, cifar_stem=cifar_stem, pretrained=pretrained)
        net.out_dim = net.num_features
        return net
    raise UnknownName(f"unknown backbone {name!r}; one of {', '.join(BACKBONES)} or timm:<name>")
