"""Wide ResNet (Zagoruyko & Komodakis, 2016) for 32x32 inputs: WRN-depth-k, pre-activation blocks,
optional dropout between the two convolutions of each block; a width multiplier scales every stage.

Mixing points: `layer1`, `layer2`, `layer3` (the three groups; `layer1` includes conv1's output)."""
from __future__ import annotations

import torch.nn.functional as F
from torch import nn


class WideBlock(nn.Module):
    def __init__(self, in_planes: int, planes: int, stride: int, drop_rate: float):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.conv1 = nn.Conv2d(in_planes, planes, 3, 1, 1, bias=False)
        self.drop = nn.Dropout(drop_rate)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.shortcut = None
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Conv2d(in_planes, planes, 1, stride, bias=False)

    def forward(self, x):
        out = self.drop(self.conv1(F.relu(self.bn1(x))))
        out = self.conv2(F.relu(self.bn2(out)))
        return out + (self.shortcut(x) if self.shortcut is not None else x)


class WideResNet(nn.Module):
    def __init__(self, depth: int = 28, widen: int = 10, num_classes: int = 10, width: float = 1.0,
                 drop_rate: float = 0.0, stem_stride: int = 1):
        super().__init__()
        if (depth - 4) % 6:
            raise ValueError(f"WRN depth must be 6n + 4, got {depth}")
        n = (depth - 4) // 6
        w = [max(1, round(c * width)) for c in (16, 16 * widen, 32 * widen, 64 * widen)]
        self.conv1 = nn.Conv2d(3, w[0], 3, stem_stride, 1, bias=False)
        stages, in_planes = [], w[0]
        for i, planes in enumerate(w[1:]):
            blocks = []
            for j in range(n):
                blocks.append(WideBlock(in_planes, planes, (1 if i == 0 else 2) if j == 0 else 1, drop_rate))
                in_planes = planes
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3 = stages
        self.bn = nn.BatchNorm2d(in_planes)
        self.fc = nn.Linear(in_planes, num_classes)
        self.num_features = in_planes

    def forward_features(self, x):
        return F.relu(self.bn(self.layer3(self.layer2(self.layer1(self.conv1(x))))))

    def forward_head(self, x, pre_logits: bool = False):
        x = x.mean(dim=(2, 3))
        return x if pre_logits else self.fc(x)

    def get_classifier(self):
        return self.fc

    def forward(self, x):
        return self.forward_head(self.forward_features(x))
