"""Generic backbones that more than one task builds: Conv-4, ResNet-12, Wide ResNet, and timm models with a
small-image stem. No task knowledge: each takes its input channels and sizes and exposes its stages as named
modules (the mixing points a task's `mix_layers` names)."""
from .backbones import build_backbone
from .conv4 import Conv4
from .resnet12 import ResNet12
from .timm_backbones import set_cifar_stem, timm_model, timm_name_problem
from .wide_resnet import WideResNet

__all__ = ["build_backbone", "Conv4", "ResNet12", "WideResNet", "set_cifar_stem", "timm_model", "timm_name_problem"]
