"""Models by name: the paper's PreActResNet18/34 (written here) and WRN-28-10 (the library's, in the Manifold
Mixup code's block layout), or any timm model as `timm:<name>` (no pretrained weights), optionally with a CIFAR
stem (3x3 stride-1 conv, no max-pool). A timm model that takes `img_size` (ViTs and other patch-embedding
models) is built for the dataset's image size; the CIFAR stem applies to models with a `conv1` stem only.

Every model answers `forward_features`, `forward_head(x, pre_logits=True)` and `get_classifier()` (timm's
API), so the task reads the last hidden layer the same way for all of them.
"""
from __future__ import annotations

from torch import nn

from mixsuite.errors import UnknownName
from mixsuite.models import WideResNet, timm_model, timm_name_problem  # noqa: F401 (the config's rule)
from mixsuite.registry import did_you_mean

from .preact_resnet import preact_resnet18, preact_resnet34

MODELS = {
    "preactresnet18": preact_resnet18,
    "preactresnet34": preact_resnet34,
    "wrn28_10": lambda **kw: WideResNet(28, 10, layout="manifold-mixup-code", **kw),
    "wrn28_2": lambda **kw: WideResNet(28, 2, layout="manifold-mixup-code", **kw),
}


def build_model(name: str, num_classes: int, *, width: float = 1.0, drop_rate: float = 0.0,
                cifar_stem: bool = True, stem_stride: int = 1, img_size: tuple[int, int] | None = None) -> nn.Module:
    if name.startswith("timm:"):
        return timm_model(name[len("timm:"):], num_classes, drop_rate=drop_rate, cifar_stem=cifar_stem,
                          img_size=img_size)
    if name not in MODELS:
        raise UnknownName(f"unknown model {name!r}; {did_you_mean(name, MODELS)} (or timm:<name>)")
    return MODELS[name](num_classes=num_classes, width=width, drop_rate=drop_rate, stem_stride=stem_stride)


def penultimate(model: nn.Module, x):
    """The last hidden layer (pooled features, before the classifier)."""
    return model.forward_head(model.forward_features(x), pre_logits=True)
