"""Models by name: the paper's PreActResNet18/34 and WRN-28-10 (written here), or any timm model as
`timm:<name>` (no pretrained weights), optionally with a CIFAR stem (3x3 stride-1 conv, no max-pool). A timm
model that takes `img_size` (ViTs and other patch-embedding models) is built for the dataset's image size; the
CIFAR stem applies to models with a `conv1` stem only.

Every model answers `forward_features`, `forward_head(x, pre_logits=True)` and `get_classifier()` (timm's
API), so the task reads the last hidden layer the same way for all of them.
"""
from __future__ import annotations

from torch import nn

from mixsuite.errors import UnknownName, UserError
from mixsuite.registry import did_you_mean

from .preact_resnet import preact_resnet18, preact_resnet34
from .wide_resnet import WideResNet

MODELS = {
    "preactresnet18": preact_resnet18,
    "preactresnet34": preact_resnet34,
    "wrn28_10": lambda **kw: WideResNet(28, 10, **kw),
    "wrn28_2": lambda **kw: WideResNet(28, 2, **kw),
}


def build_model(name: str, num_classes: int, *, width: float = 1.0, drop_rate: float = 0.0,
                cifar_stem: bool = True, stem_stride: int = 1, img_size: tuple[int, int] | None = None) -> nn.Module:
    if name.startswith("timm:"):
        return timm_model(name[len("timm:"):], num_classes, drop_rate=drop_rate, cifar_stem=cifar_stem,
                          img_size=img_size)
    if name not in MODELS:
        raise UnknownName(f"unknown model {name!r}; {did_you_mean(name, MODELS)} (or timm:<name>)")
    return MODELS[name](num_classes=num_classes, width=width, drop_rate=drop_rate, stem_stride=stem_stride)


def timm_model(name: str, num_classes: int, *, drop_rate: float = 0.0, cifar_stem: bool = True,
               img_size: tuple[int, int] | None = None) -> nn.Module:
    import timm

    if not timm.is_model(name):
        raise UnknownName(f"unknown timm model {name!r}; {did_you_mean(name, timm.list_models())}")
    kwargs = dict(pretrained=False, num_classes=num_classes, drop_rate=drop_rate)
    sized = False
    if img_size is not None:
        try:  # only the models built for an input size (ViT, DeiT, Swin, ...) take img_size
            model, sized = timm.create_model(name, img_size=img_size, **kwargs), True
        except TypeError as e:
            if "img_size" not in str(e):
                raise
    if not sized:
        model = timm.create_model(name, **kwargs)
    if cifar_stem and not (sized and not isinstance(getattr(model, "conv1", None), nn.Conv2d)):
        set_cifar_stem(model)
    return model


def set_cifar_stem(model: nn.Module) -> None:
    """Replace the ImageNet stem (7x7 stride-2 conv + max-pool) by a 3x3 stride-1 conv and no pooling."""
    conv = getattr(model, "conv1", None)
    if not isinstance(conv, nn.Conv2d):
        raise UserError(f"cifar_stem: {type(model).__name__} has no `conv1` convolution to replace; "
                        "set cifar_stem=false for this model")
    model.conv1 = nn.Conv2d(conv.in_channels, conv.out_channels, 3, 1, 1, bias=conv.bias is not None)
    if hasattr(model, "maxpool"):
        model.maxpool = nn.Identity()


def penultimate(model: nn.Module, x):
    """The last hidden layer (pooled features, before the classifier)."""
    return model.forward_head(model.forward_features(x), pre_logits=True)
