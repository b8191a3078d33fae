"""Image classification (CIFAR-10/100, SVHN, Tiny-ImageNet, the shared CIFAR-10 JPEG copy) with ERM, input mixup, manifold mixup, CutMix, dropout and cutout."""
TASK = "task:ImageTask"
