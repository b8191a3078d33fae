"""Few-shot datasets as (images, labels) tensors split by class: base classes to train on, val and novel classes
for episodes.

- Omniglot (the library's loader): background classes are base (the last `val_classes` of them val), the
  evaluation classes novel.
- miniImageNet, tieredImageNet, CUB, CIFAR-FS in the usual layout <root>/<name>/<split>/<class>/<image>.
"""
from __future__ import annotations

from pathlib import Path

from mixsuite.data import ClassSplit, load_class_folder, load_omniglot
from mixsuite.errors import DataNotFound, UnknownName
from mixsuite.registry import did_you_mean

Split = ClassSplit
FOLDER_DATASETS = {"miniimagenet": "miniImageNet", "tieredimagenet": "tieredImageNet", "cub": "CUB",
                   "cifar-fs": "CIFAR-FS"}


def load(dataset: str, root: Path, image_size: int, val_classes: int = 0) -> tuple[Split, Split, Split]:
    """(base, val, novel) splits of `dataset`, resized to image_size."""
    key = dataset.lower()
    if key == "omniglot":
        background, evaluation = load_omniglot(root, image_size)
        base, val = background.split_at_class(background.n_classes - val_classes)
        return base, val, evaluation
    if key in FOLDER_DATASETS:
        return tuple(_image_folder(root, FOLDER_DATASETS[key], split, image_size) for split in ("train", "val", "test"))
    raise UnknownName(f"unknown few-shot dataset {dataset!r}; {did_you_mean(key, ['omniglot', *FOLDER_DATASETS])}")


def _image_folder(root: Path, name: str, split: str, size: int) -> Split:
    folder = root / name / split
    if not folder.is_dir():
        raise DataNotFound(f"{name} split {split!r}", folder,
                           f"Arrange it as {root}/{name}/{{train,val,test}}/<class>/<image> (the standard class splits "
                           "of the few-shot literature) and set data_root or $MIXSUITE_DATA.")
    return load_class_folder(folder, size, f"{name}-{split}")
