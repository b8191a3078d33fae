"""Zero-shot splits, as deep metric learning evaluates: train on some classes, retrieve among classes never seen.

- `omniglot` (the library's loader): train on the background alphabets' characters but the last
  `val_classes` of them, which are the validation classes (model selection); test on the evaluation
  alphabets' 659 characters.
- `cub` (CUB-200-2011, <root>/CUB_200_2011/images/<class>/), `cars196` (<root>/cars196/<class>/, one folder
  per class in class-id order), or `folder` (any <data_folder>/<class>/<image> tree): classes in sorted order,
  the first half trains and the second half tests (the usual split: CUB 100 / 100, Cars196 98 / 98); the last
  `val_classes` of the training half validate.
"""
from __future__ import annotations

from pathlib import Path

import torch

from mixsuite.data import ClassSplit, load_class_folder, load_omniglot
from mixsuite.errors import ConfigError, DataNotFound, UnknownName
from mixsuite.registry import did_you_mean
from mixsuite.splits import require_examples

FOLDERS = {"cub": Path("CUB_200_2011") / "images", "cars196": Path("cars196")}
DATASETS = ("omniglot", *FOLDERS, "folder")


def load(dataset: str, root: Path, image_size: int, val_classes: int, data_folder: str = "") -> tuple[
        ClassSplit, ClassSplit, ClassSplit]:
    """(train, val, test) splits that share no class, labels from 0 in each."""
    key = dataset.lower()
    if key == "omniglot":
        train, test = load_omniglot(root, image_size)
    elif key in FOLDERS or key == "folder":
        if key == "folder" and not data_folder:
            raise ConfigError("dataset=folder needs data_folder=<a folder of <class>/<image> files>")
        folder = Path(data_folder) if key == "folder" else root / FOLDERS[key]
        if not folder.is_dir():
            raise DataNotFound(f"{dataset} images", folder,
                               f"Arrange the images as {folder}/<class>/<image> (one folder per class, in class "
                               "order) and set data_root or $MIXSUITE_DATA (dataset=folder: data_folder).")
        every = load_class_folder(folder, image_size, f"metric-{key}-{folder.name}")
        train, test = every.split_at_class(every.n_classes // 2)
    else:
        raise UnknownName(f"unknown metric-learning dataset {dataset!r}; {did_you_mean(key, DATASETS)}")
    if not 0 <= val_classes < train.n_classes - 1:
        raise ConfigError(f"val_classes={val_classes} must leave at least 2 of the {train.n_classes} training classes")
    train, val = train.split_at_class(train.n_classes - val_classes)
    return train, val, test


def source_of(dataset: str, root: Path, data_folder: str = "") -> str:
    """Where `load` reads `dataset` from, for messages."""
    key = dataset.lower()
    if key == "omniglot":
        folder = next((c for c in (root / "omniglot", root) if (c / "images_background.npz").is_file()), root / "omniglot")
        return f"{folder / 'images_background.npz'} (test: images_evaluation.npz)"
    return str(Path(data_folder) if key == "folder" else root / FOLDERS.get(key, dataset))


def require_data(train: ClassSplit, val: ClassSplit, test: ClassSplit, source: str, batch_size: int,
                 per_class: int, val_classes: int) -> None:
    """Before training: one full class-balanced batch of training groups; at least two images of one class in
    the test (and, when held out, validation) classes, so a query has a neighbour that counts."""
    counts = torch.bincount(train.labels.long()) if len(train.labels) else torch.zeros(0, dtype=torch.long)
    grouped = int((counts // per_class * per_class).sum())
    require_examples("train", grouped, source, f"{len(train.labels)} images in {int((counts > 0).sum())} classes",
                     need=batch_size, unit="images in whole groups",
                     why=f"for one batch of batch_size={batch_size} in groups of samples_per_class={per_class}")
    for split, part in (("val", val), ("test", test)):
        if split == "val" and not val_classes:
            continue
        counts = torch.bincount(part.labels.long()) if len(part.labels) else torch.zeros(0, dtype=torch.long)
        require_examples(split, int(counts[counts >= 2].sum()), source, f"{len(part.labels)} {split} images in "
                         f"{int((counts > 0).sum())} classes", need=2, unit="images in classes of two or more",
                         why="for retrieval (a query and a neighbour of its class)")


def class_balanced_batches(labels: torch.Tensor, batch_size: int, per_class: int,
                           generator: torch.Generator) -> list[torch.Tensor]:
    """One epoch of index batches, each made of batch_size / per_class groups of per_class samples of one class
    (so every sample in a batch has a positive): each class's samples are shuffled and cut into groups (a
    remainder smaller than a group is left out this epoch), the groups shuffled, and the batches cut from them
    (the last incomplete one dropped)."""
    if batch_size % per_class:
        raise ConfigError(f"batch_size={batch_size} must be a multiple of samples_per_class={per_class}")
    groups = []
    for c in labels.unique().tolist():
        members = torch.nonzero(labels == c).flatten()
        members = members[torch.randperm(len(members), generator=generator)]
        groups += list(members[: len(members) // per_class * per_class].view(-1, per_class))
    if not groups:
        raise ConfigError(f"samples_per_class={per_class}: no class has that many training samples")
    order = torch.randperm(len(groups), generator=generator)
    stacked = torch.stack(groups)[order]
    per_batch = batch_size // per_class
    return [stacked[i:i + per_batch].flatten() for i in range(0, len(stacked) - per_batch + 1, per_batch)]


class BalancedBatches:
    """A training loader of class-balanced batches (images, labels), drawn anew each time it is iterated (once an
    epoch); under torchrun each process takes its share of every batch: whole groups of one class."""

    def __init__(self, split, batch_size: int, per_class: int, generator: torch.Generator, rank: int, world: int):
        self.split, self.batch_size, self.per_class, self.generator = split, batch_size, per_class, generator
        self.rank, self.world = rank, world

    def __iter__(self):
        for idx in class_balanced_batches(self.split.labels, self.batch_size, self.per_class, self.generator):
            idx = idx.chunk(self.world)[self.rank]
            yield self.split.images[idx], self.split.labels[idx]
