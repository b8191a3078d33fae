"""Image classification (CIFAR-10/100, SVHN, Tiny-ImageNet, the shared CIFAR-10 JPEG copy): ERM, input and manifold mixup, CutMix, dropout, cutout, PatchUp, NFM, AlignMixup, FMix, ResizeMix."""
TASK = "task:ImageTask"
