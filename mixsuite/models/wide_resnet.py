"""Wide ResNet (Zagoruyko & Komodakis, 2016): WRN-depth-widen, a stem conv, three groups of (depth-4)/6
pre-activation blocks of widths 16k, 32k, 64k (strides 1, 2, 2), then BN-ReLU and global average pooling.

Two block layouts are in use, and they are not the same network:
- `layout="wrn-paper"`, the WRN paper's (and S2M2's code): the first conv of a block strides, dropout sits
  between relu(bn2) and the second conv, and the 1x1 shortcut reads the block's pre-activation relu(bn1(x)).
- `layout="manifold-mixup-code"`, the Manifold Mixup official code's: the second conv strides, dropout follows
  the first conv directly, and the shortcut reads the block's input x.

The stem and the three groups are the mixing points; their names are the caller's (`stem_name`, `stage_names`)
so that a task's configured `mix_layers` and its checkpoints' keys keep their meaning. The timm API
(`forward_features`, `forward_head`, `get_classifier`, `num_features`) lets a task read the pooled features the
same way as a timm model's; `num_classes=0` gives no classifier and `forward` returns the pooled features.
"""
from __future__ import annotations

import torch.nn.functional as F
from torch import nn

LAYOUTS = ("wrn-paper", "manifold-mixup-code")


class WideBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, drop_rate: float, layout: str):
        super().__init__()
        self.paper = layout == "wrn-paper"
        self.bn1 = nn.BatchNorm2d(cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, stride if self.paper else 1, 1, bias=False)
        self.drop = nn.Dropout(drop_rate)
        self.bn2 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1 if self.paper else stride, 1, bias=False)
        self.shortcut = None
        if stride != 1 or cin != cout:
            self.shortcut = nn.Conv2d(cin, cout, 1, stride, bias=False)

    def forward(self, x):
        a = F.relu(self.bn1(x))
        if self.paper:
            skip = x if self.shortcut is None else self.shortcut(a)
            return self.conv2(self.drop(F.relu(self.bn2(self.conv1(a))))) + skip
        skip = x if self.shortcut is None else self.shortcut(x)
        return self.conv2(F.relu(self.bn2(self.drop(self.conv1(a))))) + skip


class WideResNet(nn.Module):
    def __init__(self, depth: int = 28, widen: int = 10, num_classes: int = 0, *, in_channels: int = 3,
                 width: float = 1.0, drop_rate: float = 0.0, stem_stride: int = 1, layout: str = "wrn-paper",
                 stem_name: str = "conv1", stage_names: tuple[str, str, str] = ("layer1", "layer2", "layer3")):
        super().__init__()
        if (depth - 4) % 6:
            raise ValueError(f"WRN depth must be 6n + 4, got {depth}")
        if layout not in LAYOUTS:
            raise ValueError(f"WRN layout must be one of {LAYOUTS}, got {layout!r}")
        if len(stage_names) != 3:
            raise ValueError(f"WRN has three stages; stage_names gives {len(stage_names)}")
        n = (depth - 4) // 6
        w = [max(1, round(c * width)) for c in (16, 16 * widen, 32 * widen, 64 * widen)]
        self.stem_name, self.stage_names = stem_name, tuple(stage_names)
        self.add_module(stem_name, nn.Conv2d(in_channels, w[0], 3, stem_stride, 1, bias=False))
        cin = w[0]
        for i, (name, cout) in enumerate(zip(self.stage_names, w[1:])):
            blocks = [WideBlock(cin if j == 0 else cout, cout, (1 if i == 0 else 2) if j == 0 else 1, drop_rate,
                                layout) for j in range(n)]
            self.add_module(name, nn.Sequential(*blocks))
            cin = cout
        self.bn = nn.BatchNorm2d(cin)
        self.fc = nn.Linear(cin, num_classes) if num_classes else nn.Identity()
        self.num_features = self.out_dim = cin

    def forward_features(self, x):
        h = getattr(self, self.stem_name)(x)
        for name in self.stage_names:
            h = getattr(self, name)(h)
        return F.relu(self.bn(h))

    def forward_head(self, x, pre_logits: bool = False):
        x = x.mean(dim=(2, 3))
        return x if pre_logits else self.fc(x)

    def get_classifier(self):
        return self.fc

    def forward(self, x):
        return self.forward_head(self.forward_features(x))
