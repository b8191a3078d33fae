"""PreActResNet18/34 for 32x32 inputs (He et al., 2016, identity mappings), with a width multiplier.

Mixing points are module names: `layer1` is the output of conv1 + the first stage (the paper's k = 1),
`layer2` and `layer3` the next stages; `input` is handled by the mixer itself.
"""
from __future__ import annotations

import torch.nn.functional as F
from torch import nn


class PreActBlock(nn.Module):
    """BN-ReLU-conv3x3-BN-ReLU-conv3x3, shortcut taken after the first BN-ReLU when the shape changes."""

    def __init__(self, in_planes: int, planes: int, stride: int = 1):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.shortcut = None
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Conv2d(in_planes, planes, 1, stride, bias=False)

    def forward(self, x):
        out = F.relu(self.bn1(x))
        skip = self.shortcut(out) if self.shortcut is not None else x
        out = self.conv1(out)
        out = self.conv2(F.relu(self.bn2(out)))
        return out + skip


class PreActResNet(nn.Module):
    """conv3x3 -> 4 stages of PreActBlocks -> BN-ReLU -> global average pool -> (dropout) -> linear."""

    def __init__(self, blocks=(2, 2, 2, 2), num_classes: int = 10, width: float = 1.0, drop_rate: float = 0.0,
                 stem_stride: int = 1):
        super().__init__()
        widths = [max(1, round(64 * width * 2 ** i)) for i in range(4)]
        self.conv1 = nn.Conv2d(3, widths[0], 3, stem_stride, 1, bias=False)   # stride 2 for 64x64 Tiny-ImageNet
        stages, in_planes = [], widths[0]
        for i, (n, planes) in enumerate(zip(blocks, widths)):
            strides = [1 if i == 0 else 2] + [1] * (n - 1)
            layer = []
            for s in strides:
                layer.append(PreActBlock(in_planes, planes, s))
                in_planes = planes
            stages.append(nn.Sequential(*layer))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.bn = nn.BatchNorm2d(in_planes)
        self.drop = nn.Dropout(drop_rate)
        self.fc = nn.Linear(in_planes, num_classes)
        self.num_features = in_planes

    def forward_features(self, x):
        x = self.layer1(self.conv1(x))
        x = self.layer4(self.layer3(self.layer2(x)))
        return F.relu(self.bn(x))

    def forward_head(self, x, pre_logits: bool = False):
        x = x.mean(dim=(2, 3))
        return x if pre_logits else self.fc(self.drop(x))

    def get_classifier(self):
        return self.fc

    def forward(self, x):
        return self.forward_head(self.forward_features(x))


def preact_resnet18(**kw) -> PreActResNet:
    return PreActResNet((2, 2, 2, 2), **kw)


def preact_resnet34(**kw) -> PreActResNet:
    return PreActResNet((3, 4, 6, 3), **kw)
