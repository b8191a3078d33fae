"""Any timm model by name (no pretrained weights unless asked), optionally with a small-image stem: the
ImageNet stem (7x7 stride-2 conv + max-pool) would shrink a 32x32 or 28x28 image to a few pixels before the
first stage."""
from __future__ import annotations

from torch import nn

from ..errors import UnknownName, UserError
from ..registry import did_you_mean


def timm_name_problem(name: str) -> str | None:
    """What is wrong with `timm:<name>` (None: timm has such a model); a config rule for `timm:` prefixes."""
    import timm

    if timm.is_model(name):
        return None
    return f"timm has no model {name!r}; {did_you_mean(name, timm.list_models())}"


def timm_model(name: str, num_classes: int = 0, *, in_chans: int = 3, drop_rate: float = 0.0,
               cifar_stem: bool = True, img_size: tuple[int, int] | None = None, pretrained: bool = False) -> nn.Module:
    """`timm.create_model(name)`; num_classes=0 gives no classifier (the model returns its pooled features).
    `img_size`: models built for an input size (ViT, DeiT, Swin, ...) are built for it; others ignore it, and the
    CIFAR stem is then applied only to a model with a `conv1` stem. pretrained=True lets timm fetch the published
    weights (the small-image stem then starts afresh)."""
    import timm

    if not timm.is_model(name):
        raise UnknownName(f"unknown timm model {name!r}; {did_you_mean(name, timm.list_models())}")
    kwargs = dict(pretrained=pretrained, num_classes=num_classes, drop_rate=drop_rate, in_chans=in_chans)
    model, sized = None, False
    if img_size is not None:
        try:  # only the models built for an input size take img_size
            model, sized = timm.create_model(name, img_size=img_size, **kwargs), True
        except TypeError as e:
            if "img_size" not in str(e):
                raise
    if model is None:
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
