"""Few-shot backbones by name, from the library's generic models, with named mixing points `block1..block3`
(`input` is the backbone's input). Conv-4 and ResNet-12 are the standard small backbones; WRN-28-10 is S2M2's
(640-d features, the WRN paper's block layout). Each returns a flat feature vector of size `out_dim`.
"""
from __future__ import annotations

from torch import nn

from mixsuite.models import WideResNet, build_backbone as shared_backbone


def wrn(in_channels: int, depth: int = 28, widen: int = 10, dropout: float = 0.5) -> WideResNet:
    """S2M2's WRN without a classifier; its stages named as the other few-shot backbones' blocks."""
    return WideResNet(depth, widen, in_channels=in_channels, drop_rate=dropout, layout="wrn-paper", stem_name="stem",
                      stage_names=("block1", "block2", "block3"))


BACKBONES = ("conv4", "resnet12", "wrn28-10")


def build_backbone(name: str, in_channels: int, dropout: float = 0.5) -> nn.Module:
    """S2M2's WRN-28-10, or one of the backbones the library builds by name (conv4, resnet12)."""
    if name == "wrn28-10":
        return wrn(in_channels, 28, 10, dropout)
    return shared_backbone(name, in_channels)
